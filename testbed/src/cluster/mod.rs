//! A real Kubernetes control plane on loopback, without a kubelet: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and kwok (fake nodes; pods bound to them become Running and Ready), plus a fake storage
//! provisioner. Binaries come from [`crate::tools::ensure`] (built once per machine).
//!
//! Two front ends share one implementation:
//! - `cargo xtask cluster up|down|env|status` for people (the command is xtask's, over [`Plane`]): the processes
//!   (and, with `up`, the Aerospike simulator and provisioner in one background `cargo xtask simulator run`
//!   process) outlive the command, are recorded in `<state dir>/state.json`, and `down` stops exactly those pids.
//! - [`LocalCluster`] for tests: a temporary state folder, processes owned by the test process (killed on drop, and
//!   by the kernel if the test process dies), the provisioner on a thread of its own.
//!
//! Layout of a state folder: `kubeconfig` (admin, `system:masters`), `<component>.log`, `<component>.kubeconfig`,
//! `pki/`, `etcd-data/`, `state.json`.
//!
//! Networking: every component listens on 127.0.0.1 on ports picked free at start (a component that loses a port
//! race is restarted on another). Pod IPs come from a `127.<n>.0.0/16` range claimed for this cluster only (see
//! [`net::CidrClaim`]), so each fake pod IP is an address of this machine and two clusters never share one.
//!
//! Fake nodes: `kwok-node-<i>`, labelled `kubernetes.io/hostname`, `topology.kubernetes.io/zone` (`local-a`,
//! `local-b`, `local-c` in turn) and `topology.kubernetes.io/region=local`.
//!
//! Known limits of a plane without kubelet and with loopback pod IPs: no container runs (pods are Running and
//! Ready as soon as they are bound); Services get no endpoints (the apiserver refuses loopback addresses in
//! Endpoints and EndpointSlices, so those three controllers are turned off) and there is no cluster DNS.
pub mod net;
pub mod nodes;
pub mod pki;
pub mod proc;
pub mod provisioner;

use std::ffi::OsString;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::{Deserialize, Serialize};

use crate::tools::{self, Tool};
use net::CidrClaim;
use pki::Pki;
use proc::{Mode, Proc, Record, Spec};

pub use nodes::{REGION, ZONES, node_name};

/// kwok's pod stages (see the file for why they are ours).
const KWOK_POD_STAGES: &str = include_str!("kwok-pod-stages.yaml");
/// Component names, also the stem of their log files.
pub const ETCD: &str = "etcd";
pub const APISERVER: &str = "kube-apiserver";
pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";
pub const SCHEDULER: &str = "kube-scheduler";
pub const KWOK: &str = "kwok";
pub const SIMULATOR: &str = "simulator";
/// SIGTERM-to-SIGKILL grace when stopping.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Attempts per component when its port was taken between picking and binding.
const PORT_ATTEMPTS: usize = 3;
/// Set to keep a [`LocalCluster`]'s temporary state folder (logs) after it stops.
pub const KEEP_STATE_ENV: &str = "AKO_KEEP_CLUSTER_STATE";

/// Options of [`LocalCluster::start`].
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Number of fake nodes (spread over the 3 zones).
    pub nodes: usize,
    /// State folder; `None`: a new temporary folder, removed on stop.
    pub state_dir: Option<PathBuf>,
    /// Upper bound for each readiness wait (etcd, apiserver, controllers, nodes).
    pub timeout: Duration,
    /// Run the fake storage provisioner (on a thread of its own).
    pub provisioner: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions { nodes: 6, state_dir: None, timeout: Duration::from_secs(120), provisioner: true }
    }
}

/// The state file (`state.json`): what `down`, `env` and `status` need.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateFile {
    pub mode: Mode,
    pub owner_pid: u32,
    pub kubeconfig: PathBuf,
    pub apiserver: String,
    pub pod_cidr: String,
    pub cidr_octet: u8,
    pub nodes: usize,
    pub processes: Vec<Record>,
}

pub const STATE_FILE: &str = "state.json";

impl StateFile {
    pub fn read(dir: &Path) -> Result<Option<StateFile>> {
        let path = dir.join(STATE_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        fs::rename(&tmp, dir.join(STATE_FILE))?;
        Ok(())
    }

    pub fn alive(&self) -> Vec<&Record> {
        self.processes.iter().filter(|r| proc::same_process_alive(r.pid, r.start_time)).collect()
    }
}

/// Ports of one control plane.
#[derive(Clone, Copy, Debug, Default)]
struct Ports {
    etcd_client: u16,
    etcd_peer: u16,
    apiserver: u16,
    controller_manager: u16,
    scheduler: u16,
}

/// The running processes and everything needed to start them again (owned by [`LocalCluster`], or detached by
/// `cargo xtask cluster up`).
pub struct Plane {
    mode: Mode,
    dir: PathBuf,
    pki: Pki,
    pub claim: CidrClaim,
    ports: Ports,
    procs: Vec<Proc>,
    nodes: usize,
    timeout: Duration,
    bins: Bins,
}

struct Bins {
    etcd: PathBuf,
    apiserver: PathBuf,
    controller_manager: PathBuf,
    scheduler: PathBuf,
    kwok: PathBuf,
}

impl Bins {
    /// Locates (building on first use) every binary. Blocking: may wait for a build.
    fn ensure() -> Result<Bins> {
        Ok(Bins {
            etcd: tools::ensure(Tool::Etcd)?,
            apiserver: tools::ensure(Tool::KubeApiserver)?,
            controller_manager: tools::ensure(Tool::KubeControllerManager)?,
            scheduler: tools::ensure(Tool::KubeScheduler)?,
            kwok: tools::ensure(Tool::Kwok)?,
        })
    }
}

fn os(s: impl Into<String>) -> OsString {
    OsString::from(s.into())
}

/// What "ready" means for a component.
enum Check {
    /// Accepts TCP connections on 127.0.0.1:port.
    Tcp(u16),
    /// The apiserver's /readyz says ok.
    Readyz,
    /// GET https://127.0.0.1:port/healthz says ok (TLS verified against our CA).
    Healthz(u16),
}

impl Plane {
    pub async fn start(opts: &ClusterOptions, mode: Mode, dir: PathBuf) -> Result<Plane> {
        let bins = tokio::task::spawn_blocking(Bins::ensure).await.context("locating the tools")??;
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = std::path::absolute(&dir)?;
        let claim = CidrClaim::acquire(std::process::id())?;
        let pki = tokio::task::spawn_blocking({
            let pki_dir = dir.join("pki");
            let service_ip = claim.kubernetes_service_ip();
            move || Pki::generate(&pki_dir, service_ip)
        })
        .await??;
        let mut plane = Plane {
            mode,
            dir,
            pki,
            claim,
            ports: Ports::default(),
            procs: Vec::new(),
            nodes: opts.nodes,
            timeout: opts.timeout,
            bins,
        };
        match plane.boot().await {
            Ok(()) => Ok(plane),
            Err(e) => {
                plane.stop_processes();
                plane.claim.release();
                Err(e)
            }
        }
        // (An owned plane dropped half-way through `boot` stops its processes in Drop.)
    }

    async fn boot(&mut self) -> Result<()> {
        let started = Instant::now();
        self.start_component(ETCD, |p| {
            p.ports.etcd_client = net::free_port()?;
            p.ports.etcd_peer = net::free_port()?;
            Ok((p.etcd_spec(), Check::Tcp(p.ports.etcd_client)))
        })
        .await?;
        self.start_component(APISERVER, |p| {
            p.ports.apiserver = net::free_port()?;
            p.write_kubeconfigs()?;
            Ok((p.apiserver_spec(), Check::Readyz))
        })
        .await?;
        eprintln!("cluster: apiserver ready at {} ({:.1}s)", self.apiserver_url(), started.elapsed().as_secs_f64());

        // kwok first, so it is watching when the nodes appear.
        let kwok = self.kwok_spec();
        self.spawn(kwok)?;
        if self.mode == Mode::Detached {
            let pid = self.procs.last().expect("kwok").pid;
            self.claim.set_owner(pid)?;
        }
        let client = self.client().await?;
        let api: Api<Node> = Api::all(client.clone());
        for i in 0..self.nodes {
            match api.create(&PostParams::default(), &nodes::node_object(i, self.claim.node_ip(i))).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e).with_context(|| format!("creating node {}", node_name(i))),
            }
        }
        self.start_component(CONTROLLER_MANAGER, |p| {
            p.ports.controller_manager = net::free_port()?;
            Ok((p.controller_manager_spec(), Check::Healthz(p.ports.controller_manager)))
        })
        .await?;
        self.start_component(SCHEDULER, |p| {
            p.ports.scheduler = net::free_port()?;
            Ok((p.scheduler_spec(), Check::Healthz(p.ports.scheduler)))
        })
        .await?;
        self.wait_nodes_ready(&client).await?;
        self.wait_default_service_account(&client).await?;
        eprintln!(
            "cluster: {} nodes Ready, pod CIDR {} ({:.1}s)",
            self.nodes,
            self.claim.cidr(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn apiserver_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.apiserver)
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    fn admin_kubeconfig(&self) -> String {
        pki::kubeconfig(&self.apiserver_url(), &self.pki.ca.cert_pem, &self.pki.admin, "admin")
    }

    fn write_kubeconfigs(&self) -> Result<()> {
        let url = self.apiserver_url();
        let ca = &self.pki.ca.cert_pem;
        pki::write_private(&self.kubeconfig_path(), &self.admin_kubeconfig())?;
        for (name, pair) in [
            (CONTROLLER_MANAGER, &self.pki.controller_manager),
            (SCHEDULER, &self.pki.scheduler),
            (KWOK, &self.pki.kwok),
        ] {
            pki::write_private(&self.dir.join(format!("{name}.kubeconfig")), &pki::kubeconfig(&url, ca, pair, name))?;
        }
        Ok(())
    }

    async fn client(&self) -> Result<Client> {
        client_from_yaml(&self.admin_kubeconfig()).await
    }

    fn spec(&self, name: &str, program: &Path, args: Vec<OsString>) -> Spec {
        Spec {
            name: name.to_string(),
            program: program.to_path_buf(),
            args,
            env: Vec::new(),
            log: self.dir.join(format!("{name}.log")),
            cwd: self.dir.clone(),
        }
    }

    fn pki_arg(&self, flag: &str, file: &str) -> OsString {
        os(format!("--{flag}={}", self.pki.path(file).display()))
    }

    fn etcd_spec(&self) -> Spec {
        let client = format!("http://127.0.0.1:{}", self.ports.etcd_client);
        let peer = format!("http://127.0.0.1:{}", self.ports.etcd_peer);
        let args = vec![
            os("--name=local"),
            os(format!("--data-dir={}", self.dir.join("etcd-data").display())),
            os(format!("--listen-client-urls={client}")),
            os(format!("--advertise-client-urls={client}")),
            os(format!("--listen-peer-urls={peer}")),
            os(format!("--initial-advertise-peer-urls={peer}")),
            os(format!("--initial-cluster=local={peer}")),
            os("--initial-cluster-state=new"),
            // Test data: durability is not worth the fsync cost on a shared 2-core machine.
            os("--unsafe-no-fsync=true"),
            os("--quota-backend-bytes=4294967296"),
            os("--log-level=warn"),
        ];
        self.spec(ETCD, &self.bins.etcd, args)
    }

    fn apiserver_spec(&self) -> Spec {
        let args = vec![
            os(format!("--etcd-servers=http://127.0.0.1:{}", self.ports.etcd_client)),
            os("--bind-address=127.0.0.1"),
            os("--advertise-address=127.0.0.1"),
            os(format!("--secure-port={}", self.ports.apiserver)),
            self.pki_arg("tls-cert-file", "apiserver.crt"),
            self.pki_arg("tls-private-key-file", "apiserver.key"),
            self.pki_arg("client-ca-file", "ca.crt"),
            os(format!("--cert-dir={}", self.dir.join("apiserver-certs").display())),
            os("--service-account-issuer=https://kubernetes.default.svc.cluster.local"),
            self.pki_arg("service-account-key-file", "sa.pub"),
            self.pki_arg("service-account-signing-key-file", "sa.key"),
            os(format!("--service-cluster-ip-range={}", self.claim.service_cidr())),
            os("--authorization-mode=RBAC"),
            os("--allow-privileged=true"),
            // The apiserver would publish 127.0.0.1 as the `kubernetes` Service endpoint, which validation refuses
            // (loopback); nothing here needs that endpoint.
            os("--endpoint-reconciler-type=none"),
            self.pki_arg("requestheader-client-ca-file", "ca.crt"),
            os(format!("--requestheader-allowed-names={}", pki::FRONT_PROXY_NAME)),
            os("--requestheader-username-headers=X-Remote-User"),
            os("--requestheader-group-headers=X-Remote-Group"),
            os("--requestheader-extra-headers-prefix=X-Remote-Extra-"),
            self.pki_arg("proxy-client-cert-file", "front-proxy.crt"),
            self.pki_arg("proxy-client-key-file", "front-proxy.key"),
            os("--profiling=false"),
        ];
        self.spec(APISERVER, &self.bins.apiserver, args)
    }

    fn component_kubeconfig_args(&self, name: &str) -> Vec<OsString> {
        let kc = self.dir.join(format!("{name}.kubeconfig")).display().to_string();
        vec![
            os(format!("--kubeconfig={kc}")),
            os(format!("--authentication-kubeconfig={kc}")),
            os(format!("--authorization-kubeconfig={kc}")),
        ]
    }

    fn controller_manager_spec(&self) -> Spec {
        let mut args = self.component_kubeconfig_args(CONTROLLER_MANAGER);
        args.extend([
            os("--bind-address=127.0.0.1"),
            os(format!("--secure-port={}", self.ports.controller_manager)),
            self.pki_arg("tls-cert-file", "serving.crt"),
            self.pki_arg("tls-private-key-file", "serving.key"),
            // One instance: leader election would only make it exit when the apiserver restarts.
            os("--leader-elect=false"),
            // Every default controller except the three that publish pod IPs as Service endpoints: validation
            // refuses loopback addresses there, so with loopback pod IPs they could only fail and retry forever.
            os("--controllers=*,-endpoint,-endpointslice,-endpointslicemirroring"),
            os("--use-service-account-credentials=false"),
            self.pki_arg("service-account-private-key-file", "sa.key"),
            self.pki_arg("root-ca-file", "ca.crt"),
            self.pki_arg("cluster-signing-cert-file", "ca.crt"),
            self.pki_arg("cluster-signing-key-file", "ca.key"),
            os(format!("--service-cluster-ip-range={}", self.claim.service_cidr())),
            os("--kube-api-qps=200"),
            os("--kube-api-burst=400"),
            os("--profiling=false"),
        ]);
        self.spec(CONTROLLER_MANAGER, &self.bins.controller_manager, args)
    }

    fn scheduler_spec(&self) -> Spec {
        let mut args = self.component_kubeconfig_args(SCHEDULER);
        args.extend([
            os("--bind-address=127.0.0.1"),
            os(format!("--secure-port={}", self.ports.scheduler)),
            self.pki_arg("tls-cert-file", "serving.crt"),
            self.pki_arg("tls-private-key-file", "serving.key"),
            os("--leader-elect=false"),
            os("--profiling=false"),
        ]);
        self.spec(SCHEDULER, &self.bins.scheduler, args)
    }

    fn kwok_spec(&self) -> Spec {
        let home = self.dir.join("kwok-home");
        let _ = fs::create_dir_all(&home);
        let stages = self.dir.join("kwok-pod-stages.yaml");
        let _ = fs::write(&stages, KWOK_POD_STAGES);
        let args = vec![
            os(format!("--kubeconfig={}", self.dir.join(format!("{KWOK}.kubeconfig")).display())),
            os(format!("--config={}", stages.display())),
            os("--manage-all-nodes=false"),
            os(format!(
                "--manage-nodes-with-annotation-selector={}={}",
                nodes::KWOK_ANNOTATION.0,
                nodes::KWOK_ANNOTATION.1
            )),
            os(format!("--cidr={}", self.claim.cidr())),
            os(format!("--node-ip={}", self.claim.node_ip(254))),
            os("--node-lease-duration-seconds=40"),
        ];
        let mut spec = self.spec(KWOK, &self.bins.kwok, args);
        // kwok also loads ~/.kwok/kwok.yaml when it exists: give it a HOME of its own so a user's file cannot
        // change its stages.
        spec.env.push((os("HOME"), home.into_os_string()));
        spec
    }

    pub fn spawn(&mut self, spec: Spec) -> Result<()> {
        let p = proc::spawn(spec, self.mode)?;
        self.procs.push(p);
        self.write_state()
    }

    fn write_state(&self) -> Result<()> {
        StateFile {
            mode: self.mode,
            owner_pid: std::process::id(),
            kubeconfig: self.kubeconfig_path(),
            apiserver: self.apiserver_url(),
            pod_cidr: self.claim.cidr(),
            cidr_octet: self.claim.octet,
            nodes: self.nodes,
            processes: self.procs.iter().map(Proc::record).collect(),
        }
        .write(&self.dir)
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.procs.iter().position(|p| p.spec.name == name)
    }

    /// Starts a component and waits for it; if it fails because a port was taken meanwhile, starts it again on
    /// new ports (`make` picks them).
    async fn start_component<F>(&mut self, name: &str, make: F) -> Result<()>
    where
        F: Fn(&mut Plane) -> Result<(Spec, Check)>,
    {
        for attempt in 1..=PORT_ATTEMPTS {
            let (spec, check) = make(self)?;
            let log = spec.log.clone();
            self.spawn(spec)?;
            match self.wait_ready(name, &check).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let tail = proc::log_tail(&log, 30);
                    let idx = self.index_of(name).expect("just spawned");
                    let mut failed = self.procs.remove(idx);
                    proc::stop_all(std::slice::from_mut(&mut failed), STOP_GRACE);
                    self.write_state()?;
                    if attempt < PORT_ATTEMPTS && tail.contains("address already in use") {
                        eprintln!("cluster: {name} lost a port race, starting it again on other ports");
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Waits for `check`, failing early if the process exits. Errors name the component and its log.
    async fn wait_ready(&mut self, name: &str, check: &Check) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let probe_client = match check {
            Check::Readyz => Some(self.client().await?),
            Check::Healthz(port) => Some(healthz_client(*port, &self.pki)?),
            Check::Tcp(_) => None,
        };
        loop {
            let idx = self.index_of(name).ok_or_else(|| anyhow!("{name} is not running"))?;
            if let Some(status) = self.procs[idx].exit_status() {
                let log = self.procs[idx].spec.log.clone();
                bail!(
                    "{name} exited ({status}) while starting; see its log {}\n--- last lines ---\n{}",
                    log.display(),
                    proc::log_tail(&log, 25)
                );
            }
            let probe = async {
                match (check, &probe_client) {
                    (Check::Tcp(port), _) => tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, *port))
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string()),
                    (Check::Readyz, Some(c)) => get_ok(c, "/readyz").await,
                    (Check::Healthz(_), Some(c)) => get_ok(c, "/healthz").await,
                    _ => unreachable!(),
                }
            };
            let last = match tokio::time::timeout(Duration::from_secs(5), probe).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => "probe timed out after 5s".to_string(),
            };
            if Instant::now() >= deadline {
                let log = self.procs[idx].spec.log.clone();
                bail!(
                    "{name} did not become ready within {:?} (last probe: {last}); see its log {}\n--- last lines ---\n{}",
                    self.timeout,
                    log.display(),
                    proc::log_tail(&log, 25)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Fails naming `name` and its log if the process has exited.
    pub fn ensure_running(&mut self, name: &str) -> Result<()> {
        if let Some(i) = self.index_of(name)
            && let Some(status) = self.procs[i].exit_status()
        {
            let log = self.procs[i].spec.log.clone();
            bail!(
                "{name} exited ({status}); see its log {}\n--- last lines ---\n{}",
                log.display(),
                proc::log_tail(&log, 25)
            );
        }
        Ok(())
    }

    pub fn log_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    async fn wait_nodes_ready(&mut self, client: &Client) -> Result<()> {
        let api: Api<Node> = Api::all(client.clone());
        let deadline = Instant::now() + self.timeout;
        loop {
            self.ensure_running(KWOK)?;
            self.ensure_running(CONTROLLER_MANAGER)?;
            let list = api.list(&ListParams::default()).await;
            let pending: Vec<String> = match &list {
                Ok(list) => {
                    let mut pending: Vec<String> = list
                        .items
                        .iter()
                        .filter_map(|n| {
                            nodes::not_ready_reason(n)
                                .map(|r| format!("{}: {r}", n.metadata.name.clone().unwrap_or_default()))
                        })
                        .collect();
                    if list.items.len() < self.nodes {
                        pending.push(format!("only {} of {} nodes exist", list.items.len(), self.nodes));
                    }
                    pending
                }
                Err(e) => vec![format!("listing nodes: {e}")],
            };
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                // Not Ready is kwok's job; Ready but still tainted is the controller-manager's.
                let culprit =
                    if pending.iter().any(|p| p.contains("condition Ready")) { KWOK } else { CONTROLLER_MANAGER };
                let log = self.log_of(culprit);
                bail!(
                    "nodes not ready within {:?} ({}); {culprit} is responsible, see its log {}\n--- last lines ---\n{}",
                    self.timeout,
                    pending.join("; "),
                    log.display(),
                    proc::log_tail(&log, 25)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The controller-manager creates the `default` ServiceAccount of every namespace; pods cannot be created in a
    /// namespace before it exists (ServiceAccount admission), so wait for it in `default`.
    async fn wait_default_service_account(&mut self, client: &Client) -> Result<()> {
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        let deadline = Instant::now() + self.timeout;
        loop {
            self.ensure_running(CONTROLLER_MANAGER)?;
            if api.get_opt("default").await.ok().flatten().is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let log = self.log_of(CONTROLLER_MANAGER);
                bail!(
                    "{CONTROLLER_MANAGER} did not create the default ServiceAccount within {:?}; see its log {}\n--- last lines ---\n{}",
                    self.timeout,
                    log.display(),
                    proc::log_tail(&log, 25)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn stop_processes(&mut self) {
        // Reverse start order: clients of the apiserver first, etcd last.
        self.procs.reverse();
        proc::stop_all(&mut self.procs, STOP_GRACE);
        self.procs.clear();
        let _ = self.write_state();
    }

    async fn restart_apiserver(plane: &Mutex<Option<Plane>>, downtime: Duration) -> Result<()> {
        let old = {
            let mut guard = plane.lock().unwrap_or_else(|e| e.into_inner());
            let p = guard.as_mut().ok_or_else(|| anyhow!("the cluster is stopped"))?;
            let idx = p.index_of(APISERVER).ok_or_else(|| anyhow!("{APISERVER} is not running"))?;
            p.procs.remove(idx)
        };
        let spec = old.spec.clone();
        tokio::task::spawn_blocking(move || {
            let mut old = old;
            proc::stop_all(std::slice::from_mut(&mut old), STOP_GRACE);
        })
        .await?;
        tokio::time::sleep(downtime).await;
        // The plane cannot be held across awaits (std mutex); take it out for the wait.
        let mut p = plane
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| anyhow!("the cluster was stopped during the restart"))?;
        let result = async {
            p.spawn(spec)?;
            p.wait_ready(APISERVER, &Check::Readyz).await
        }
        .await;
        *plane.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        result
    }
}

impl Drop for Plane {
    /// Owned processes never outlive their plane (also when a future holding it is dropped half-way); detached
    /// ones are left running on purpose.
    fn drop(&mut self) {
        if self.mode == Mode::Owned {
            self.stop_processes();
            self.claim.release();
        }
    }
}

/// A client from an in-memory kubeconfig.
pub(crate) async fn client_from_yaml(yaml: &str) -> Result<Client> {
    let kubeconfig = Kubeconfig::from_yaml(yaml).context("parsing the kubeconfig")?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("loading the kubeconfig")?;
    Ok(Client::try_from(config)?)
}

fn healthz_client(port: u16, pki: &Pki) -> Result<Client> {
    let mut config = Config::new(format!("https://127.0.0.1:{port}").parse()?);
    config.root_cert = Some(vec![pki.ca_der()?]);
    config.connect_timeout = Some(Duration::from_secs(2));
    Ok(Client::try_from(config)?)
}

async fn get_ok(client: &Client, path: &str) -> std::result::Result<(), String> {
    let request = http::Request::get(path).body(Vec::new()).map_err(|e| e.to_string())?;
    match client.request_text(request).await {
        Ok(body) if body.trim() == "ok" => Ok(()),
        Ok(body) => Err(format!("{path} answered {:?}", body.chars().take(300).collect::<String>())),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

// -----------------------------------------------------------------------------------------------------------------
// The test API.

/// A control plane owned by the current process (see the module docs). Dropping it stops every process and
/// removes its temporary state folder (set `AKO_KEEP_CLUSTER_STATE=1` to keep it).
pub struct LocalCluster {
    plane: Mutex<Option<Plane>>,
    dir: PathBuf,
    kubeconfig_path: PathBuf,
    kubeconfig_yaml: String,
    pod_cidr: String,
    apiserver_url: String,
    nodes: usize,
    remove_dir: bool,
    provisioner: Mutex<Option<BackgroundThread>>,
}

impl LocalCluster {
    /// Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with `opts.nodes` Ready fake
    /// nodes, and (with `opts.provisioner`) the fake storage provisioner. Builds the tools first if needed.
    pub async fn start(opts: ClusterOptions) -> Result<LocalCluster> {
        cleanup_stale_temp_dirs();
        let (dir, remove_dir) = match &opts.state_dir {
            Some(d) => (d.clone(), false),
            None => (new_temp_dir()?, std::env::var_os(KEEP_STATE_ENV).is_none()),
        };
        let plane = match Plane::start(&opts, Mode::Owned, dir.clone()).await {
            Ok(p) => p,
            Err(e) => {
                // Keep the folder: the error points at its logs. Stale folders are removed by later starts.
                return Err(e.context(format!("starting the local cluster in {}", dir.display())));
            }
        };
        let kubeconfig_yaml = plane.admin_kubeconfig();
        let provisioner =
            opts.provisioner.then(|| BackgroundThread::provisioner(kubeconfig_yaml.clone(), plane.dir.join("volumes")));
        Ok(LocalCluster {
            dir: plane.dir.clone(),
            kubeconfig_path: plane.kubeconfig_path(),
            pod_cidr: plane.claim.cidr(),
            apiserver_url: plane.apiserver_url(),
            nodes: plane.nodes,
            kubeconfig_yaml,
            plane: Mutex::new(Some(plane)),
            remove_dir,
            provisioner: Mutex::new(provisioner),
        })
    }

    /// One cluster for the whole process, with default options, started by the first caller: for test binaries
    /// whose tests can share a control plane (each in its own namespace). It is stopped when the process exits
    /// (an `atexit` handler; the kernel's parent-death signal covers abnormal ends). A failed start is reported to
    /// every caller without retrying.
    pub async fn shared() -> Result<&'static LocalCluster> {
        static SHARED: tokio::sync::OnceCell<std::result::Result<LocalCluster, String>> =
            tokio::sync::OnceCell::const_new();
        extern "C" fn stop_shared() {
            if let Some(Ok(cluster)) = SHARED.get() {
                cluster.stop();
            }
        }
        let result = SHARED
            .get_or_init(|| async {
                let started = LocalCluster::start(ClusterOptions::default()).await.map_err(|e| format!("{e:#}"));
                if started.is_ok() {
                    // SAFETY: registers a plain extern "C" function.
                    unsafe {
                        libc::atexit(stop_shared);
                    }
                }
                started
            })
            .await;
        result.as_ref().map_err(|e| anyhow!("the shared local cluster did not start: {e}"))
    }

    /// The admin kubeconfig (`system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// A new client with admin rights.
    pub async fn client(&self) -> Client {
        client_from_yaml(&self.kubeconfig_yaml).await.expect("a client from the generated kubeconfig")
    }

    /// The state folder (logs: `<component>.log`).
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// The log file of a component ([`APISERVER`], [`KWOK`], ...).
    pub fn log_path(&self, component: &str) -> PathBuf {
        self.dir.join(format!("{component}.log"))
    }

    /// The pod CIDR (`127.<n>.0.0/16`): every pod IP of this cluster is in it.
    pub fn pod_cidr(&self) -> &str {
        &self.pod_cidr
    }

    pub fn apiserver_url(&self) -> &str {
        &self.apiserver_url
    }

    /// Names of the fake nodes.
    pub fn node_names(&self) -> Vec<String> {
        (0..self.nodes).map(node_name).collect()
    }

    /// Stops the kube-apiserver (SIGTERM), starts it again on the same port with the same data, and waits for
    /// /readyz. The other components keep running and reconnect by themselves.
    pub async fn restart_apiserver(&self) -> Result<()> {
        Plane::restart_apiserver(&self.plane, Duration::ZERO).await
    }

    /// [`Self::restart_apiserver`] with the apiserver down for `downtime` in between.
    pub async fn restart_apiserver_after(&self, downtime: Duration) -> Result<()> {
        Plane::restart_apiserver(&self.plane, downtime).await
    }

    /// Pids of the running processes by component (for tests checking nothing leaks).
    pub fn pids(&self) -> Vec<(String, u32)> {
        let guard = self.plane.lock().unwrap_or_else(|e| e.into_inner());
        guard.iter().flat_map(|p| p.procs.iter().map(|q| (q.spec.name.clone(), q.pid))).collect()
    }

    /// Stops everything (idempotent; also done on drop).
    pub fn stop(&self) {
        if let Some(t) = self.provisioner.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.stop();
        }
        let plane = self.plane.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(plane) = plane {
            let dir = plane.dir.clone();
            drop(plane); // stops the processes and releases the pod CIDR
            if self.remove_dir {
                let _ = fs::remove_dir_all(&dir);
            }
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

const TEMP_PREFIX: &str = "ako-cluster-";

fn new_temp_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    for _ in 0..10 {
        let dir = base.join(format!("{TEMP_PREFIX}{}-{:08x}", std::process::id(), net::random_u64() as u32));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("could not create a temporary folder in {}", base.display())
}

/// Removes temporary state folders of test processes that are gone (killed before their destructors ran), and
/// releases their pod CIDR claims.
fn cleanup_stale_temp_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) =
            name.strip_prefix(TEMP_PREFIX).and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || proc::pid_alive(pid) {
            continue;
        }
        if let Ok(Some(state)) = StateFile::read(&entry.path()) {
            if !state.alive().is_empty() {
                continue;
            }
            CidrClaim::release_octet(state.cidr_octet);
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}

/// A tokio runtime on a thread of its own, running one background task until stopped. Used for the provisioner of
/// a [`LocalCluster`], so it does not depend on the runtime of the test that started the cluster.
struct BackgroundThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundThread {
    fn provisioner(kubeconfig_yaml: String, volumes_dir: PathBuf) -> BackgroundThread {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-provisioner".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => return eprintln!("provisioner: no runtime: {e}"),
                };
                rt.block_on(async move {
                    let client = match client_from_yaml(&kubeconfig_yaml).await {
                        Ok(c) => c,
                        Err(e) => return eprintln!("provisioner: {e:#}"),
                    };
                    tokio::select! {
                        _ = provisioner::run(client, volumes_dir) => {}
                        _ = rx => {}
                    }
                });
            })
            .expect("spawning the provisioner thread");
        BackgroundThread { stop: Some(tx), thread: Some(thread) }
    }

    fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// -----------------------------------------------------------------------------------------------------------------
// The default state folder (of `cargo xtask cluster` and `cargo xtask simulator`).

/// `$XDG_RUNTIME_DIR/aerospike-operator-cluster`, else `/tmp/aerospike-operator-cluster`.
pub fn default_state_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("aerospike-operator-cluster"),
        None => PathBuf::from("/tmp/aerospike-operator-cluster"),
    }
}
