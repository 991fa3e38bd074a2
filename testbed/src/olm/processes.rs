//! Starting OLM: its CRDs and namespaces, the olm and catalog operators and `opm serve` as host processes, their
//! state file, and detached runs for `cargo xtask cluster up --olm` and `cargo xtask demo`.
use std::ffi::OsString;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::{Deserialize, Serialize};

use crate::cluster::proc::{self, Mode, Proc, Record, Spec};
use crate::cluster::{LocalCluster, StateFile, net, wait_crd_established};
use crate::tools::{self, Tool};
use crate::yaml::{manifest_files, read_yaml_stream};

use super::objects::{OlmKind, apply, catalog_source, catalog_source_state, ensure_namespace, olm_api, operator_group};
use super::slot::{OlmSlot, write_atomic};
use super::wait::{describe, wait_for};
use super::{
    CATALOG_OPERATOR, FIELD_MANAGER, GLOBAL_CATALOG_NAMESPACE, GLOBAL_OPERATOR_GROUP, OLM_NAMESPACE, OLM_OPERATOR,
    OLM_STATE_FILE, OPERATORS_NAMESPACE, OPM_SERVE, SELF_CHECK_SOURCE, START_TIMEOUT, STOP_GRACE,
};

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
