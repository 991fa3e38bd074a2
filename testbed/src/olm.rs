//! OLM on the local control plane: OLM's CRDs, the olm and catalog operators as host processes, and `opm serve`
//! serving our catalog (manifests-only bundles) on a loopback port. See ../shared/TOOLCHAIN.md ("OLM without a
//! kubelet") for why this works without pods:
//!
//! - a CatalogSource with `spec.address` makes the catalog operator talk to our `opm serve` directly (no registry
//!   pod), and bundles with `image: ""` carrying their manifests as `olm.bundle.object` properties need no unpack
//!   Job (xtask's `olm::prepare_catalog` writes such a catalog with `cargo xtask catalog --manifests-only`);
//! - the operator Deployment of a CSV runs on kwok's fake nodes, so it becomes Available and the CSV Succeeded; the
//!   operator under test then runs on the host (in-process in tests, the binary in `cargo xtask demo`) with the
//!   WATCH_NAMESPACE OLM computed ([`watch_namespace`]) and the ServiceAccount and RBAC OLM created
//!   ([`service_account_kubeconfig`]).
//!
//! Namespaces, as upstream's install makes them: `olm` (OperatorGroup `olm-operators`) and `operators` (the global
//! OperatorGroup `global-operators`, AllNamespaces). One difference: the catalog operator's global catalog
//! namespace (its `--namespace`) is [`GLOBAL_CATALOG_NAMESPACE`] = `aerospike`, so a CatalogSource `aerospike` in
//! namespace `aerospike` serves Subscriptions in every namespace (upstream's is `olm`).
//!
//! Port 8080: both OLM binaries serve /healthz and /metrics on a hard-coded `:8080` (every interface), and only log
//! a failed bind. In a pod each has the port to itself; on one host the olm and catalog operators already compete
//! for it (one of them logs `address already in use` and works on), and so would a second OLM and any other program
//! wanting :8080 (our operator's default metrics address among them). Nothing here probes :8080: readiness is read
//! from the API (the global OperatorGroup's status, a CatalogSource turning READY). To keep the port's holder
//! predictable and the 2-core machines from running several OLMs at once, only one OLM runs per machine at a time:
//! [`OlmSlot`] is a machine-wide slot (a file in the temp folder naming the holding processes). Tests wait for it
//! (bounded, [`SLOT_WAIT_ENV`]); an OLM left running by `cargo xtask cluster up --olm` or `cargo xtask demo` makes
//! them fail at once, naming the command that stops it. The slot frees itself when its holders exit, however they
//! exit.
//!
//! State folder (the cluster's): `olm-operator.log`, `catalog-operator.log`, `opm-serve.log` (and
//! `opm-serve-<n>.log` for more catalogs), `olm.json` (pids and the catalog address). Detached runs (`cluster up
//! --olm`, `demo`) also add their processes to the cluster's `state.json`, so `cargo xtask cluster down` stops them.
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster::proc::{self, Mode, Proc, Record, Spec};
use crate::cluster::{LocalCluster, StateFile, net};
use crate::tools::{self, Tool};

/// The catalog operator's `--namespace`: CatalogSources here serve Subscriptions of every namespace.
pub const GLOBAL_CATALOG_NAMESPACE: &str = "aerospike";
/// The name of our CatalogSource (in [`GLOBAL_CATALOG_NAMESPACE`]), as the issue and README name it.
pub const CATALOG_SOURCE: &str = "aerospike";
/// OLM's own namespace (the olm operator's `--namespace`).
pub const OLM_NAMESPACE: &str = "olm";
/// Namespace of the global (AllNamespaces) OperatorGroup.
pub const OPERATORS_NAMESPACE: &str = "operators";
pub const GLOBAL_OPERATOR_GROUP: &str = "global-operators";
/// Component names (also log file stems).
pub const OLM_OPERATOR: &str = "olm-operator";
pub const CATALOG_OPERATOR: &str = "catalog-operator";
pub const OPM_SERVE: &str = "opm-serve";
/// Field manager of everything applied from here.
pub const FIELD_MANAGER: &str = "xtask-olm";
/// The annotation OLM puts on the operator's pods (and their template) with the target namespaces.
pub const TARGET_NAMESPACES_ANNOTATION: &str = "olm.targetNamespaces";
/// Seconds to wait for the machine's OLM slot (default [`DEFAULT_SLOT_WAIT`]).
pub const SLOT_WAIT_ENV: &str = "AKO_OLM_SLOT_WAIT_SECS";
const DEFAULT_SLOT_WAIT: Duration = Duration::from_secs(30 * 60);
/// Upper bound of each readiness wait while starting.
const START_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_GRACE: Duration = Duration::from_secs(5);
const OLM_STATE_FILE: &str = "olm.json";
const SELF_CHECK_SOURCE: &str = "olm-self-check";

// -----------------------------------------------------------------------------------------------------------------
// The machine-wide OLM slot.

/// The machine's one OLM slot (see the module docs). Held while an [`Olm`] of this process runs; handed over to the
/// OLM processes themselves when they outlive the command that started them.
pub struct OlmSlot {
    token: u64,
    released: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SlotHolder {
    /// (pid, start time): the slot is held while any of them runs.
    processes: Vec<(u32, u64)>,
    token: u64,
    /// True when held by OLM processes that outlive their command (`cluster up --olm`, `demo`).
    detached: bool,
    /// What holds it (a command line), for messages.
    what: String,
    state_dir: PathBuf,
}

/// Tokens of the slots this process holds (a holder naming this process is alive only while its guard is).
static HELD_TOKENS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn slot_path() -> PathBuf {
    std::env::temp_dir().join("ako-olm-slot.json")
}

/// Runs `f` with the slot file's lock held (an flock on a sibling file, so reads and writes are atomic).
fn with_slot_lock<T>(f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    use std::os::fd::AsRawFd;
    let path = slot_path();
    let lock_path = path.with_extension("lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    // SAFETY: flock on a valid descriptor; the lock goes with the file when it is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("locking {}", lock_path.display()));
    }
    let result = f(&path);
    drop(lock);
    result
}

fn read_holder(path: &Path) -> Option<SlotHolder> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

fn holder_alive(h: &SlotHolder) -> bool {
    h.processes.iter().any(|&(pid, start)| {
        if pid == std::process::id() {
            !h.detached && HELD_TOKENS.lock().unwrap_or_else(|e| e.into_inner()).contains(&h.token)
        } else {
            proc::same_process_alive(pid, start)
        }
    })
}

fn describe_holder(h: &SlotHolder) -> String {
    let pids: Vec<String> = h.processes.iter().map(|(p, _)| p.to_string()).collect();
    format!("{} (pid {}, state folder {})", h.what, pids.join(","), h.state_dir.display())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

impl OlmSlot {
    /// Takes the slot, waiting up to `wait` while another test process holds it. Fails at once when OLM processes
    /// of a detached run hold it (they do not stop by themselves).
    pub async fn acquire(what: &str, state_dir: &Path, wait: Duration) -> Result<OlmSlot> {
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            let token = net::random_u64();
            let taken = with_slot_lock(|path| {
                if let Some(h) = read_holder(path)
                    && holder_alive(&h)
                {
                    return Ok(Err(h));
                }
                let me = std::process::id();
                let holder = SlotHolder {
                    processes: vec![(me, proc::start_time(me).unwrap_or(0))],
                    token,
                    detached: false,
                    what: what.to_string(),
                    state_dir: state_dir.to_path_buf(),
                };
                HELD_TOKENS.lock().unwrap_or_else(|e| e.into_inner()).push(token);
                write_atomic(path, serde_json::to_string_pretty(&holder)?.as_bytes())?;
                Ok(Ok(()))
            })?;
            let holder = match taken {
                Ok(()) => return Ok(OlmSlot { token, released: false }),
                Err(h) => h,
            };
            if holder.detached {
                bail!(
                    "another OLM runs on this machine: {}. Only one OLM runs per machine (OLM binds :8080); stop it \
                     with `cargo xtask demo down` or `cargo xtask cluster down --state-dir {}`",
                    describe_holder(&holder),
                    holder.state_dir.display()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "the machine's OLM slot was not free within {wait:?}: held by {} (set {SLOT_WAIT_ENV} to wait longer)",
                    describe_holder(&holder)
                );
            }
            if !told {
                eprintln!("olm: waiting for the machine's OLM slot, held by {}", describe_holder(&holder));
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// How long tests wait for the slot: `$AKO_OLM_SLOT_WAIT_SECS`, else 30 minutes.
    pub fn default_wait() -> Duration {
        std::env::var(SLOT_WAIT_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_SLOT_WAIT)
    }

    /// Hands the slot to `processes` (detached OLM processes): it stays taken while any of them runs.
    fn hand_over(mut self, processes: &[&Proc], what: &str) -> Result<()> {
        let token = self.token;
        let result = with_slot_lock(|path| {
            let mut h =
                read_holder(path).filter(|h| h.token == token).ok_or_else(|| anyhow!("the OLM slot was lost"))?;
            h.processes = processes.iter().map(|p| (p.pid, p.start_time)).collect();
            h.detached = true;
            h.what = what.to_string();
            write_atomic(path, serde_json::to_string_pretty(&h)?.as_bytes())
        });
        HELD_TOKENS.lock().unwrap_or_else(|e| e.into_inner()).retain(|t| *t != token);
        self.released = true;
        result
    }

    fn release(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        let token = self.token;
        let _ = with_slot_lock(|path| {
            if read_holder(path).is_some_and(|h| h.token == token) {
                let _ = fs::remove_file(path);
            }
            Ok(())
        });
        HELD_TOKENS.lock().unwrap_or_else(|e| e.into_inner()).retain(|t| *t != token);
    }
}

impl Drop for OlmSlot {
    fn drop(&mut self) {
        self.release();
    }
}

// -----------------------------------------------------------------------------------------------------------------
// Starting OLM.

/// The recorded OLM of a state folder (`olm.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OlmState {
    pub catalog_address: String,
    pub catalog_dir: PathBuf,
    pub processes: Vec<Record>,
}

impl OlmState {
    pub fn read(state_dir: &Path) -> Result<Option<OlmState>> {
        let path = state_dir.join(OLM_STATE_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn write(&self, state_dir: &Path) -> Result<()> {
        write_atomic(&state_dir.join(OLM_STATE_FILE), serde_json::to_string_pretty(self)?.as_bytes())
    }
}

/// The catalog address recorded in a state folder, if OLM was started there (`cargo xtask cluster env`).
pub fn catalog_address_in(state_dir: &Path) -> Result<Option<String>> {
    Ok(OlmState::read(state_dir)?.map(|s| s.catalog_address))
}

struct Bins {
    olm: PathBuf,
    catalog: PathBuf,
    opm: PathBuf,
    crds: PathBuf,
}

impl Bins {
    async fn ensure() -> Result<Bins> {
        tokio::task::spawn_blocking(|| -> Result<Bins> {
            Ok(Bins {
                olm: tools::ensure(Tool::Olm)?,
                catalog: tools::ensure(Tool::Catalog)?,
                opm: tools::ensure(Tool::Opm)?,
                crds: tools::olm_crds_dir()?,
            })
        })
        .await
        .context("locating OLM's tools")?
    }
}

/// What a start needs.
struct Ctx<'a> {
    client: Client,
    kubeconfig: &'a Path,
    dir: &'a Path,
    mode: Mode,
}

/// A running opm serve.
struct Served {
    proc: Proc,
    address: String,
}

impl Ctx<'_> {
    fn spec(&self, name: &str, program: PathBuf, args: Vec<OsString>, env: Vec<(OsString, OsString)>) -> Spec {
        Spec {
            name: name.to_string(),
            program,
            args,
            env,
            log: self.dir.join(format!("{name}.log")),
            cwd: self.dir.to_path_buf(),
        }
    }

    /// Runs `opm serve <catalog_dir>` on a free loopback port and waits until it accepts connections.
    async fn serve(&self, opm: &Path, catalog_dir: &Path, name: &str) -> Result<Served> {
        let catalog_dir = std::path::absolute(catalog_dir)?;
        if !catalog_dir.is_dir() {
            bail!("{}: no such catalog folder", catalog_dir.display());
        }
        let mut last = String::new();
        for _attempt in 0..3 {
            let port = net::free_port()?;
            let cache = self.dir.join(format!("opm-cache-{port}"));
            let args: Vec<OsString> = vec![
                "serve".into(),
                catalog_dir.clone().into(),
                "-p".into(),
                port.to_string().into(),
                "-t".into(),
                "/dev/null".into(),
                // Its pprof endpoint defaults to localhost:6060, which a second opm serve could not bind (fatal).
                "--pprof-addr=".into(),
                "--cache-dir".into(),
                cache.into(),
                "--cache-enforce-integrity=false".into(),
            ];
            let spec = self.spec(name, opm.to_path_buf(), args, Vec::new());
            let log = spec.log.clone();
            let mut p = proc::spawn(spec, self.mode)?;
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Some(status) = p.exit_status() {
                    last = format!("exited ({status})\n{}", proc::log_tail(&log, 15));
                    break;
                }
                if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.is_ok() {
                    return Ok(Served { proc: p, address: format!("127.0.0.1:{port}") });
                }
                if Instant::now() >= deadline {
                    let tail = proc::log_tail(&log, 15);
                    proc::stop_all(std::slice::from_mut(&mut p), STOP_GRACE);
                    bail!(
                        "opm serve did not listen on port {port} within {START_TIMEOUT:?}; see {}\n{tail}",
                        log.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !last.contains("address already in use") {
                break;
            }
        }
        bail!("opm serve {} failed: {last}", catalog_dir.display())
    }

    /// Starts the olm and catalog operators. `env -u` keeps two variables of the caller's environment from
    /// changing them: CI (turns on OLM's label-validating round tripper, meant for OLM's own CI) and
    /// GLOBAL_CATALOG_NAMESPACE (overrides the catalog operator's --namespace).
    fn operators(&self, bins: &Bins) -> Result<Vec<Proc>> {
        let env_bin = PathBuf::from("/usr/bin/env");
        let unset = |program: &Path| -> Vec<OsString> {
            vec!["-u".into(), "CI".into(), "-u".into(), "GLOBAL_CATALOG_NAMESPACE".into(), program.into()]
        };
        let kubeconfig = (OsString::from("KUBECONFIG"), self.kubeconfig.as_os_str().to_owned());
        // olm reads KUBECONFIG (its --kubeconfig flag is not parsed).
        let mut olm_args = unset(&bins.olm);
        olm_args.extend([format!("--namespace={OLM_NAMESPACE}"), "--writeStatusName=".into()].map(OsString::from));
        let mut catalog_args = unset(&bins.catalog);
        catalog_args.extend(
            [
                format!("--kubeconfig={}", self.kubeconfig.display()),
                format!("--namespace={GLOBAL_CATALOG_NAMESPACE}"),
                "--writeStatusName=".into(),
            ]
            .map(OsString::from),
        );
        let mut procs = Vec::new();
        for spec in [
            self.spec(OLM_OPERATOR, env_bin.clone(), olm_args, vec![kubeconfig.clone()]),
            self.spec(CATALOG_OPERATOR, env_bin.clone(), catalog_args, vec![kubeconfig.clone()]),
        ] {
            match proc::spawn(spec, self.mode) {
                Ok(p) => procs.push(p),
                Err(e) => {
                    proc::stop_all(&mut procs, STOP_GRACE);
                    return Err(e);
                }
            }
        }
        Ok(procs)
    }
}

/// YAML and JSON files directly in `dir`, sorted by name.
fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_file() && matches!(ext, "yaml" | "yml" | "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Every document of a YAML stream (empty documents are skipped).
fn read_yaml_stream(path: &Path) -> Result<Vec<Value>> {
    let text = fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(docs.into_iter().filter(|v| !v.is_null()).collect())
}

/// Server-side applies OLM's CRDs and waits until each is Established.
async fn install_crds(client: &Client, crds_dir: &Path) -> Result<Vec<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for path in manifest_files(crds_dir)? {
        for doc in read_yaml_stream(&path)? {
            if doc["kind"] != "CustomResourceDefinition" {
                continue;
            }
            let name = doc["metadata"]["name"].as_str().context("CRD without a name")?.to_string();
            api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&doc))
                .await
                .with_context(|| format!("applying the CRD {name} from {}", path.display()))?;
            names.push(name);
        }
    }
    if names.is_empty() {
        bail!("no CRDs in {}", crds_dir.display());
    }
    for name in &names {
        wait_crd_established(client, name, Duration::from_secs(60)).await?;
    }
    Ok(names)
}

/// Waits until the CRD `name` has condition Established=True.
pub async fn wait_crd_established(client: &Client, name: &str, timeout: Duration) -> Result<CustomResourceDefinition> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deadline = Instant::now() + timeout;
    loop {
        let crd = api.get_opt(name).await?;
        if let Some(crd) = &crd
            && crd_established(crd)
        {
            return Ok(crd.clone());
        }
        if Instant::now() >= deadline {
            let conditions = crd.and_then(|c| c.status).and_then(|s| s.conditions).unwrap_or_default();
            let conditions: Vec<String> = conditions
                .iter()
                .map(|c| format!("{}={} ({})", c.type_, c.status, c.message.clone().unwrap_or_default()))
                .collect();
            bail!("the CRD {name} was not Established within {timeout:?}; conditions: {}", conditions.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn crd_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
}

/// Namespaces and OperatorGroups of upstream's install, plus the global catalog namespace.
async fn install_namespaces(client: &Client) -> Result<()> {
    for ns in [OLM_NAMESPACE, OPERATORS_NAMESPACE, GLOBAL_CATALOG_NAMESPACE] {
        ensure_namespace(client, ns).await?;
    }
    apply(client, &operator_group(GLOBAL_OPERATOR_GROUP, OPERATORS_NAMESPACE, None)).await?;
    apply(client, &operator_group("olm-operators", OLM_NAMESPACE, Some(&[OLM_NAMESPACE]))).await?;
    Ok(())
}

/// Waits until both operators work: the olm operator has written the global OperatorGroup's status, and the catalog
/// operator reports a CatalogSource pointing at `address` READY (a throw-away one in namespace `olm`).
async fn wait_operators_ready(client: &Client, procs: &mut [Proc], address: &str, dir: &Path) -> Result<()> {
    let groups = olm_api(client, OlmKind::OperatorGroup, Some(OPERATORS_NAMESPACE));
    let sources = olm_api(client, OlmKind::CatalogSource, Some(OLM_NAMESPACE));
    apply(client, &catalog_source(SELF_CHECK_SOURCE, OLM_NAMESPACE, address)).await?;
    let deadline = Instant::now() + START_TIMEOUT;
    let (mut olm_ok, mut catalog_ok) = (false, false);
    loop {
        for p in procs.iter_mut() {
            if let Some(status) = p.exit_status() {
                bail!(
                    "{} exited ({status}) while starting; see {}\n{}",
                    p.spec.name,
                    p.spec.log.display(),
                    proc::log_tail(&p.spec.log, 20)
                );
            }
        }
        if !olm_ok {
            olm_ok = groups
                .get_opt(GLOBAL_OPERATOR_GROUP)
                .await?
                .is_some_and(|g| g.data["status"]["namespaces"].as_array().is_some_and(|n| !n.is_empty()));
        }
        if !catalog_ok {
            catalog_ok = sources.get_opt(SELF_CHECK_SOURCE).await?.is_some_and(|s| catalog_source_state(&s) == "READY");
        }
        if olm_ok && catalog_ok {
            sources.delete(SELF_CHECK_SOURCE, &DeleteParams::default()).await?;
            return Ok(());
        }
        if Instant::now() >= deadline {
            let culprit = if olm_ok { CATALOG_OPERATOR } else { OLM_OPERATOR };
            let log = dir.join(format!("{culprit}.log"));
            bail!(
                "OLM did not become ready within {START_TIMEOUT:?} (olm operator wrote the global OperatorGroup status: \
                 {olm_ok}; catalog operator reported the CatalogSource at {address} READY: {catalog_ok}); see {}\n{}",
                log.display(),
                proc::log_tail(&log, 25)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Everything [`Olm`] and the detached start share: CRDs, namespaces, opm serve, the operators, readiness.
async fn start_processes(ctx: &Ctx<'_>, catalog_dir: &Path) -> Result<(Vec<Proc>, String)> {
    let started = Instant::now();
    let bins = Bins::ensure().await?;
    install_crds(&ctx.client, &bins.crds).await?;
    install_namespaces(&ctx.client).await?;
    let served = ctx.serve(&bins.opm, catalog_dir, OPM_SERVE).await?;
    let address = served.address.clone();
    let mut procs = vec![served.proc];
    match ctx.operators(&bins) {
        Ok(ps) => procs.extend(ps),
        Err(e) => {
            proc::stop_all(&mut procs, STOP_GRACE);
            return Err(e);
        }
    }
    if ctx.mode == Mode::Detached {
        // Recorded at once, so `cluster down` finds them even if this command is interrupted while waiting.
        let records: Vec<Record> = procs.iter().map(Proc::record).collect();
        if let Err(e) = add_to_cluster_state(ctx.dir, &records) {
            proc::stop_all(&mut procs, STOP_GRACE);
            return Err(e);
        }
    }
    if let Err(e) = wait_operators_ready(&ctx.client, &mut procs, &address, ctx.dir).await {
        procs.reverse();
        proc::stop_all(&mut procs, STOP_GRACE);
        return Err(e);
    }
    eprintln!("olm: ready, catalog served at {address} ({:.1}s)", started.elapsed().as_secs_f64());
    Ok((procs, address))
}

/// OLM for a [`LocalCluster`] of this process: stopped (SIGTERM, then SIGKILL) by [`Olm::stop`] or on drop, and
/// killed by the kernel if this process dies first.
pub struct Olm {
    dir: PathBuf,
    kubeconfig: PathBuf,
    catalog_address: String,
    catalog_dir: PathBuf,
    procs: Mutex<Vec<Proc>>,
    slot: Mutex<Option<OlmSlot>>,
}

impl Olm {
    /// Installs OLM's CRDs, namespaces `olm`, `operators` (with the global OperatorGroup) and `aerospike` (the global
    /// catalog namespace), runs the olm and catalog operators and `opm serve <catalog_dir>` (a manifests-only
    /// catalog, see xtask's `olm::prepare_catalog`), and waits until they work. Waits for the machine's OLM slot first.
    pub async fn start(cluster: &LocalCluster, catalog_dir: &Path) -> Result<Olm> {
        let dir = cluster.state_dir().to_path_buf();
        let what = format!("a test process ({})", std::env::args().next().unwrap_or_default());
        let slot = OlmSlot::acquire(&what, &dir, OlmSlot::default_wait()).await?;
        let ctx =
            Ctx { client: cluster.client().await, kubeconfig: cluster.kubeconfig_path(), dir: &dir, mode: Mode::Owned };
        let (procs, address) = start_processes(&ctx, catalog_dir).await?;
        let olm = Olm {
            dir: dir.clone(),
            kubeconfig: cluster.kubeconfig_path().to_path_buf(),
            catalog_address: address,
            catalog_dir: std::path::absolute(catalog_dir)?,
            procs: Mutex::new(procs),
            slot: Mutex::new(Some(slot)),
        };
        olm.write_state()?;
        Ok(olm)
    }

    fn write_state(&self) -> Result<()> {
        let procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        OlmState {
            catalog_address: self.catalog_address.clone(),
            catalog_dir: self.catalog_dir.clone(),
            processes: procs.iter().map(Proc::record).collect(),
        }
        .write(&self.dir)
    }

    /// `127.0.0.1:<port>` of the `opm serve` started with OLM: the `spec.address` of a CatalogSource.
    pub fn catalog_address(&self) -> &str {
        &self.catalog_address
    }

    /// Serves another catalog folder (e.g. one with a newer release) with another `opm serve`, stopped with OLM.
    /// Returns its address.
    pub async fn serve_catalog(&self, catalog_dir: &Path) -> Result<String> {
        let opm = tokio::task::spawn_blocking(|| tools::ensure(Tool::Opm)).await??;
        let client = kube_client(&self.kubeconfig).await?;
        let ctx = Ctx { client, kubeconfig: &self.kubeconfig, dir: &self.dir, mode: Mode::Owned };
        let n = self.procs.lock().unwrap_or_else(|e| e.into_inner()).len();
        let served = ctx.serve(&opm, catalog_dir, &format!("{OPM_SERVE}-{n}")).await?;
        let address = served.address.clone();
        self.procs.lock().unwrap_or_else(|e| e.into_inner()).push(served.proc);
        self.write_state()?;
        Ok(address)
    }

    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// Log of a component ([`OLM_OPERATOR`], [`CATALOG_OPERATOR`], [`OPM_SERVE`]).
    pub fn log_path(&self, component: &str) -> PathBuf {
        self.dir.join(format!("{component}.log"))
    }

    /// Pids of the running OLM processes.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|p| (p.spec.name.clone(), p.pid)).collect()
    }

    /// [`describe`] of `namespace` plus the last lines of the OLM logs: what a timeout message shows.
    pub async fn diagnose(&self, client: &Client, namespace: &str) -> String {
        let mut text = describe(client, namespace).await;
        for c in [OLM_OPERATOR, CATALOG_OPERATOR] {
            let log = self.log_path(c);
            text.push_str(&format!("\n--- last lines of {} ---\n{}\n", log.display(), proc::log_tail(&log, 12)));
        }
        text
    }

    /// Polls `check` until it returns `Some`, for at most `timeout`; on timeout the error names `what`, the last
    /// check error, and [`Olm::diagnose`] of `namespace`.
    pub async fn wait<T, F, Fut>(
        &self,
        client: &Client,
        namespace: &str,
        what: &str,
        timeout: Duration,
        check: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        match wait_for(what, timeout, check).await {
            Ok(v) => Ok(v),
            Err(e) => Err(anyhow!("{e:#}\n{}", self.diagnose(client, namespace).await)),
        }
    }

    /// Stops the OLM processes (idempotent; also on drop) and frees the machine's OLM slot.
    pub fn stop(&self) {
        let mut procs = std::mem::take(&mut *self.procs.lock().unwrap_or_else(|e| e.into_inner()));
        // The operators first, then the catalogs they talk to.
        procs.reverse();
        proc::stop_all(&mut procs, STOP_GRACE);
        let _ = fs::remove_file(self.dir.join(OLM_STATE_FILE));
        if let Some(mut slot) = self.slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            slot.release();
        }
    }
}

impl Drop for Olm {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn kube_client(kubeconfig: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig).with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// OLM for the cluster of a state folder made by `cargo xtask cluster up` (`--olm`, and `cargo xtask demo`): the
/// processes outlive this command, are added to the folder's `state.json` (so `cluster down` stops them) and
/// `olm.json`, and hold the machine's OLM slot. The catalog is what `write_catalog` writes (xtask's
/// `olm::up_detached` passes the repository's manifests-only catalog) into `<state dir>/catalog`. Returns the
/// catalog address.
pub async fn up_detached(
    state_dir: &Path,
    write_catalog: impl FnOnce(&Path) -> Result<()> + Send + 'static,
) -> Result<String> {
    let state = StateFile::read(state_dir)?
        .ok_or_else(|| anyhow!("no cluster in {}; start one with `cargo xtask cluster up`", state_dir.display()))?;
    if let Some(olm) = OlmState::read(state_dir)?
        && olm.processes.iter().any(|r| proc::same_process_alive(r.pid, r.start_time))
    {
        bail!("OLM already runs for the cluster in {} (catalog at {})", state_dir.display(), olm.catalog_address);
    }
    let slot = OlmSlot::acquire("`cargo xtask cluster up --olm`", state_dir, OlmSlot::default_wait()).await?;
    let catalog_dir = state_dir.join("catalog");
    let _ = fs::remove_dir_all(&catalog_dir);
    let out = catalog_dir.clone();
    tokio::task::spawn_blocking(move || write_catalog(&out)).await??;
    let client = kube_client(&state.kubeconfig).await?;
    let ctx = Ctx { client, kubeconfig: &state.kubeconfig, dir: state_dir, mode: Mode::Detached };
    let (procs, address) = start_processes(&ctx, &catalog_dir).await?;
    let records: Vec<Record> = procs.iter().map(Proc::record).collect();
    let recorded = (|| -> Result<()> {
        OlmState { catalog_address: address.clone(), catalog_dir: catalog_dir.clone(), processes: records.clone() }
            .write(state_dir)?;
        slot.hand_over(&procs.iter().collect::<Vec<_>>(), "OLM of `cargo xtask cluster up --olm`")
    })();
    if let Err(e) = recorded {
        proc::stop_records(&records, STOP_GRACE);
        return Err(e);
    }
    Ok(address)
}

/// Adds processes to the cluster's `state.json`, so `cargo xtask cluster down` stops them too.
pub fn add_to_cluster_state(state_dir: &Path, records: &[Record]) -> Result<()> {
    let mut state = StateFile::read(state_dir)?.ok_or_else(|| anyhow!("no state.json in {}", state_dir.display()))?;
    state.processes.extend(records.iter().cloned());
    write_atomic(&state_dir.join("state.json"), serde_json::to_string_pretty(&state)?.as_bytes())
}

// -----------------------------------------------------------------------------------------------------------------
// Objects.

/// OLM's kinds this project uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OlmKind {
    CatalogSource,
    OperatorGroup,
    Subscription,
    InstallPlan,
    ClusterServiceVersion,
    OperatorCondition,
}

impl OlmKind {
    pub fn api_resource(self) -> ApiResource {
        let (version, kind, plural) = match self {
            OlmKind::CatalogSource => ("v1alpha1", "CatalogSource", "catalogsources"),
            OlmKind::OperatorGroup => ("v1", "OperatorGroup", "operatorgroups"),
            OlmKind::Subscription => ("v1alpha1", "Subscription", "subscriptions"),
            OlmKind::InstallPlan => ("v1alpha1", "InstallPlan", "installplans"),
            OlmKind::ClusterServiceVersion => ("v1alpha1", "ClusterServiceVersion", "clusterserviceversions"),
            OlmKind::OperatorCondition => ("v2", "OperatorCondition", "operatorconditions"),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("operators.coreos.com", version, kind), plural)
    }
}

/// An API of an OLM kind, in `namespace` (`None`: all namespaces).
pub fn olm_api(client: &Client, kind: OlmKind, namespace: Option<&str>) -> Api<DynamicObject> {
    let ar = kind.api_resource();
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// The API of the AerospikeCluster custom resource.
pub fn aerospike_clusters(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("asdb.aerospike.com", "v1", "AerospikeCluster"),
        "aerospikeclusters",
    );
    Api::namespaced_with(client.clone(), namespace, &ar)
}

/// Server-side applies any object given as JSON (apiVersion, kind, metadata.name, metadata.namespace if
/// namespaced), as [`FIELD_MANAGER`], forcing conflicts.
pub async fn apply(client: &Client, obj: &Value) -> Result<DynamicObject> {
    let api_version = obj["apiVersion"].as_str().context("object without apiVersion")?;
    let kind = obj["kind"].as_str().context("object without kind")?;
    let name = obj["metadata"]["name"].as_str().context("object without metadata.name")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(obj))
        .await
        .with_context(|| format!("applying {kind} {name}"))
}

/// Creates a namespace unless it exists.
pub async fn ensure_namespace(client: &Client, name: &str) -> Result<()> {
    apply(client, &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})).await.map(drop)
}

/// A CatalogSource served from `address` (no image, no pod).
pub fn catalog_source(name: &str, namespace: &str, address: &str) -> Value {
    json!({
        "apiVersion": "operators.coreos.com/v1alpha1",
        "kind": "CatalogSource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "sourceType": "grpc",
            "address": address,
            "displayName": "Aerospike Kubernetes Operator",
            "publisher": "aerospike-rs",
        }
    })
}

/// An OperatorGroup: `targets` `None` for AllNamespaces (no targetNamespaces).
pub fn operator_group(name: &str, namespace: &str, targets: Option<&[&str]>) -> Value {
    let spec = match targets {
        Some(t) => json!({"targetNamespaces": t}),
        None => json!({}),
    };
    json!({
        "apiVersion": "operators.coreos.com/v1",
        "kind": "OperatorGroup",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// `status.connectionState.lastObservedState` of a CatalogSource (READY, CONNECTING, TRANSIENT_FAILURE, ...).
pub fn catalog_source_state(source: &DynamicObject) -> String {
    source.data["status"]["connectionState"]["lastObservedState"].as_str().unwrap_or("").to_string()
}

/// `status.phase` of a CSV.
pub fn csv_phase(csv: &DynamicObject) -> String {
    csv.data["status"]["phase"].as_str().unwrap_or("").to_string()
}

/// The CSV's `metadata.annotations["alm-examples"]`, parsed.
pub fn alm_examples(csv: &DynamicObject) -> Result<Vec<Value>> {
    let text = csv.annotations().get("alm-examples").context("the CSV has no alm-examples annotation")?;
    serde_json::from_str(text).context("parsing the CSV's alm-examples")
}

// -----------------------------------------------------------------------------------------------------------------
// Waiting and reading state.

/// Polls `check` (every 500 ms) until it returns `Some`, for at most `timeout`. A check error is remembered and
/// retried (the API may be briefly unavailable); the timeout error names `what` and the last error.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last: Option<String> = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = Some(format!("{e:#}")),
        }
        if Instant::now() >= deadline {
            match last {
                Some(e) => bail!("timed out after {timeout:?} waiting for {what} (last error: {e})"),
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The WATCH_NAMESPACE OLM computed for the operator Deployment `deployment` in `namespace`: the
/// `olm.targetNamespaces` annotation of its pod template, which the Deployment's Downward API env resolves.
/// Fails if the container does not take WATCH_NAMESPACE from that annotation.
pub async fn watch_namespace(client: &Client, namespace: &str, deployment: &str) -> Result<String> {
    let d = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(deployment)
        .await
        .with_context(|| format!("reading the operator Deployment {namespace}/{deployment}"))?;
    let template = d.spec.as_ref().map(|s| &s.template).context("Deployment without spec")?;
    let annotations = template.metadata.as_ref().and_then(|m| m.annotations.clone()).unwrap_or_default();
    let value = annotations.get(TARGET_NAMESPACES_ANNOTATION).with_context(|| {
        format!("the pod template of {namespace}/{deployment} has no {TARGET_NAMESPACES_ANNOTATION} annotation")
    })?;
    let from_annotation = template.spec.as_ref().is_some_and(|s| {
        s.containers.iter().any(|c| {
            c.env.iter().flatten().any(|e| {
                e.name == "WATCH_NAMESPACE"
                    && e.value_from.as_ref().and_then(|v| v.field_ref.as_ref()).is_some_and(|f| {
                        f.field_path == format!("metadata.annotations['{TARGET_NAMESPACES_ANNOTATION}']")
                    })
            })
        })
    });
    if !from_annotation {
        bail!(
            "no container of {namespace}/{deployment} takes WATCH_NAMESPACE from the {TARGET_NAMESPACES_ANNOTATION} annotation"
        );
    }
    Ok(value.clone())
}

/// A kubeconfig (YAML) for the ServiceAccount `namespace/name` with a fresh token (TokenRequest, `ttl`), on the API
/// server and CA of `admin_kubeconfig`: the operator then acts with exactly the RBAC OLM gave it.
pub async fn service_account_kubeconfig(
    client: &Client,
    admin_kubeconfig: &Path,
    namespace: &str,
    name: &str,
    ttl: Duration,
) -> Result<String> {
    let request = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(ttl.as_secs() as i64), ..Default::default() },
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("requesting a token for the ServiceAccount {namespace}/{name}"))?
        .status
        .context("TokenRequest without status")?
        .token;
    let admin = Kubeconfig::read_from(admin_kubeconfig)?;
    let cluster =
        admin.clusters.first().and_then(|c| c.cluster.clone()).context("the admin kubeconfig has no cluster")?;
    let user = format!("system:serviceaccount:{namespace}:{name}");
    let yaml = serde_saphyr::to_string(&json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": cluster.server,
            "certificate-authority-data": cluster.certificate_authority_data,
        }}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": user, "namespace": namespace}}],
        "current-context": "operator",
    }))?;
    Ok(yaml)
}

/// A client from a kubeconfig given as YAML.
pub async fn client_from_kubeconfig_yaml(yaml: &str) -> Result<Client> {
    let kc = Kubeconfig::from_yaml(yaml)?;
    Ok(Client::try_from(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?)?)
}

/// Whether `user` may `verb` `resource` (of `group`) in `namespace` (`None`: cluster-wide), by a
/// SubjectAccessReview: how tests check the RBAC OLM created.
pub async fn can_i(
    client: &Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> Result<bool> {
    can_i_on(client, user, verb, group, resource, namespace, None).await
}

/// [`can_i`] on one object by name (`None`: any object of the resource).
pub async fn can_i_on(
    client: &Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<bool> {
    use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
    let mut groups = vec!["system:authenticated".to_string()];
    if let Some((ns, _)) = user.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':')) {
        groups.extend(["system:serviceaccounts".to_string(), format!("system:serviceaccounts:{ns}")]);
    }
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            groups: Some(groups),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_string()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                namespace: namespace.map(str::to_string),
                name: name.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone()).create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// A readable account of OLM's view of `namespace`: the Subscriptions' status, InstallPlans, CSVs (phase, reason,
/// conditions) and the global catalog's connection state. Used in timeout messages.
pub async fn describe(client: &Client, namespace: &str) -> String {
    let mut out = format!("--- OLM objects in namespace {namespace} ---\n");
    let list = |kind| async move { olm_api(client, kind, Some(namespace)).list(&ListParams::default()).await };
    match list(OlmKind::Subscription).await {
        Ok(l) => {
            for s in l.items {
                let st = &s.data["status"];
                out.push_str(&format!(
                    "Subscription {}: state={} currentCSV={} installedCSV={} installPlan={}\n",
                    s.name_any(),
                    st["state"].as_str().unwrap_or("-"),
                    st["currentCSV"].as_str().unwrap_or("-"),
                    st["installedCSV"].as_str().unwrap_or("-"),
                    st["installPlanRef"]["name"].as_str().unwrap_or("-"),
                ));
                for c in st["conditions"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "  condition {}={} {}: {}\n",
                        c["type"], c["status"], c["reason"], c["message"]
                    ));
                }
            }
        }
        Err(e) => out.push_str(&format!("(listing Subscriptions: {e})\n")),
    }
    match list(OlmKind::InstallPlan).await {
        Ok(l) => {
            for p in l.items {
                out.push_str(&format!(
                    "InstallPlan {}: phase={} approval={} approved={} csvs={}\n",
                    p.name_any(),
                    p.data["status"]["phase"].as_str().unwrap_or("-"),
                    p.data["spec"]["approval"].as_str().unwrap_or("-"),
                    p.data["spec"]["approved"],
                    p.data["spec"]["clusterServiceVersionNames"],
                ));
                for c in p.data["status"]["conditions"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "  condition {}={} {}: {}\n",
                        c["type"], c["status"], c["reason"], c["message"]
                    ));
                }
            }
        }
        Err(e) => out.push_str(&format!("(listing InstallPlans: {e})\n")),
    }
    match list(OlmKind::ClusterServiceVersion).await {
        Ok(l) => {
            for c in l.items {
                let st = &c.data["status"];
                out.push_str(&format!(
                    "CSV {}: phase={} reason={} message={}\n",
                    c.name_any(),
                    st["phase"].as_str().unwrap_or("-"),
                    st["reason"].as_str().unwrap_or("-"),
                    st["message"].as_str().unwrap_or("-"),
                ));
                let conditions = st["conditions"].as_array().cloned().unwrap_or_default();
                for k in conditions.iter().rev().take(4).rev() {
                    out.push_str(&format!("  {} {}: {}\n", k["phase"], k["reason"], k["message"]));
                }
            }
        }
        Err(e) => out.push_str(&format!("(listing CSVs: {e})\n")),
    }
    match olm_api(client, OlmKind::OperatorGroup, Some(namespace)).list(&ListParams::default()).await {
        Ok(l) => {
            for g in l.items {
                out.push_str(&format!(
                    "OperatorGroup {}: targets={} status.namespaces={}\n",
                    g.name_any(),
                    g.data["spec"]["targetNamespaces"],
                    g.data["status"]["namespaces"]
                ));
            }
        }
        Err(e) => out.push_str(&format!("(listing OperatorGroups: {e})\n")),
    }
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for ns in [GLOBAL_CATALOG_NAMESPACE, namespace] {
        if let Ok(l) = olm_api(client, OlmKind::CatalogSource, Some(ns)).list(&ListParams::default()).await {
            for s in l.items {
                sources.insert(
                    format!("{ns}/{}", s.name_any()),
                    format!(
                        "address={} state={}",
                        s.data["spec"]["address"].as_str().unwrap_or("-"),
                        catalog_source_state(&s)
                    ),
                );
            }
        }
    }
    for (k, v) in sources {
        out.push_str(&format!("CatalogSource {k}: {v}\n"));
    }
    out
}

/// `status.phase` of an AerospikeCluster.
pub fn cluster_phase(cluster: &DynamicObject) -> String {
    cluster.data["status"]["phase"].as_str().unwrap_or("").to_string()
}
