//! A real Kubernetes control plane on loopback, without a kubelet: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and kwok (fake nodes; pods bound to them become Running and Ready), plus a fake storage
//! provisioner. Binaries come from [`crate::tools::ensure_for`] (built once per machine), for the Kubernetes
//! release [`ClusterOptions::kubernetes`] names: the oldest supported (default) or the newest.
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
mod local;
pub mod net;
pub mod nodes;
pub mod pki;
mod plane;
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
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::{Deserialize, Serialize};

use crate::tools::{self, KubernetesRelease, Tool};
use net::CidrClaim;
use pki::Pki;
use proc::{Mode, Proc, Record, Spec};

pub use local::LocalCluster;
pub use nodes::{REGION, ZONES, node_name};
pub use plane::Plane;
use plane::*;

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
    /// The Kubernetes release of the apiserver, controller manager, scheduler and etcd (built on first use).
    pub kubernetes: KubernetesRelease,
    /// The apiserver's NodePort range (first, last); `None`: its default, 30000-32767 (2,768 ports). The bench
    /// widens it: with multiPodPerHost every Aerospike pod gets a NodePort Service.
    pub node_ports: Option<(u16, u16)>,
}

impl Default for ClusterOptions {
    /// Six nodes, a temporary folder, the provisioner, and the Kubernetes release `AKO_KUBERNETES` names
    /// (`oldest`, the default, or `newest`), so a whole test suite can run on either end of the supported range.
    ///
    /// # Panics
    /// When `AKO_KUBERNETES` names no known release (a typo must not silently test the default plane).
    fn default() -> Self {
        let kubernetes = KubernetesRelease::from_env().unwrap_or_else(|e| panic!("{e:#}"));
        ClusterOptions {
            nodes: 6,
            state_dir: None,
            timeout: Duration::from_secs(120),
            provisioner: true,
            kubernetes,
            node_ports: None,
        }
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
    /// The Kubernetes release of the plane (state files written before there were two read as the oldest).
    #[serde(default)]
    pub kubernetes: KubernetesRelease,
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

// -----------------------------------------------------------------------------------------------------------------
// The default state folder (of `cargo xtask cluster` and `cargo xtask simulator`).

/// `$XDG_RUNTIME_DIR/aerospike-operator-cluster`, else `/tmp/aerospike-operator-cluster`.
pub fn default_state_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("aerospike-operator-cluster"),
        None => PathBuf::from("/tmp/aerospike-operator-cluster"),
    }
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
