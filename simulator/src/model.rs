//! The simulated state: pods as nodes of clusters, cluster keys, migrations, quiesce and roster, and what each
//! node was asked.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinHandle;

use crate::faults::{Fault, FaultTarget};
use crate::security::Security;

/// Partitions per namespace in Aerospike; the migration counter counts down from here.
pub(crate) const PARTITIONS: u64 = 4096;
/// Recorded entries kept per pod (the oldest are dropped), so a long-running simulator stays small.
pub(crate) const HISTORY_LIMIT: usize = 20_000;

/// Something that happened to a simulated node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// The pod became a cluster member (Running with this IP).
    Joined { ip: IpAddr, node_id: String },
    /// A request line was received; `answered` is false when a fault withheld the answer. Logins are recorded as
    /// `login:accepted=<bool>`, admin writes to users and roles as `admin:<command>:result=<code>`.
    Command { command: String, answered: bool },
    /// The pod left the cluster (deleted, terminating, or no longer running).
    Left,
    /// The server process was restarted in place (exec `warm-restart`): a `Left` and a `Joined` of the same pod
    /// incarnation follow.
    WarmRestarted,
}

/// A [`What`] with when and for which pod incarnation (uid).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub at: SystemTime,
    pub uid: String,
    pub what: What,
}

pub(crate) type PodKey = (String, String);
pub(crate) type ClusterKey = (String, String);

#[derive(Clone, Debug)]
pub(crate) struct NamespaceInfo {
    pub(crate) name: String,
    pub(crate) strong_consistency: bool,
    pub(crate) replication_factor: u64,
}

/// What the simulator reads from the AerospikeCluster.
#[derive(Clone, Debug)]
pub(crate) struct ClusterSpec {
    pub(crate) namespaces: Vec<NamespaceInfo>,
    /// The plain service port (the TLS port when the service has no plain port: see `plain`).
    pub(crate) port: u16,
    /// Whether the service listens on the plain port (false for a TLS-only service).
    pub(crate) plain: bool,
    /// The service's TLS (`tls-port`), with the certificate of its `network.tls` entry.
    pub(crate) tls: Option<std::sync::Arc<crate::tls::ServiceTls>>,
    pub(crate) security: bool,
    /// `security.enable-quotas`: roles may have read/write quotas.
    pub(crate) quotas: bool,
}

pub(crate) struct Node {
    pub(crate) uid: String,
    pub(crate) ip: IpAddr,
    pub(crate) port: u16,
    pub(crate) plain: bool,
    /// `tls-port` and `tls-name` of the service, when it has TLS.
    pub(crate) tls: Option<(u16, String)>,
    pub(crate) cluster: ClusterKey,
    pub(crate) node_id: String,
    pub(crate) rack_id: i32,
    pub(crate) build: String,
    pub(crate) quiesce_pending: bool,
    pub(crate) quiesce_effective: bool,
    /// set-config values: context -> key -> value.
    pub(crate) config: BTreeMap<String, BTreeMap<String, String>>,
    /// What the node tells clients (service-clear-std, ...), from its pod's aerospike.conf.
    pub(crate) advertised: crate::podinit::Advertised,
    pub(crate) task: JoinHandle<()>,
}

pub(crate) struct ClusterState {
    pub(crate) key: String,
    pub(crate) migrate_from: Instant,
    pub(crate) migrate_until: Instant,
    pub(crate) members: BTreeSet<PodKey>,
    pub(crate) spec: ClusterSpec,
    /// namespace -> (roster, pending roster).
    pub(crate) rosters: BTreeMap<String, (Vec<String>, Vec<String>)>,
    /// Bumped on every rebalance: the partition, peers and rebalance generations clients tend by.
    pub(crate) generation: u64,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) nodes: HashMap<PodKey, Node>,
    pub(crate) clusters: HashMap<ClusterKey, ClusterState>,
    pub(crate) api_faults: HashMap<FaultTarget, Fault>,
    pub(crate) file_faults: HashMap<FaultTarget, Fault>,
    pub(crate) history: HashMap<PodKey, Vec<Recorded>>,
    /// Users, roles and sessions per cluster: kept while the cluster has no members, as a server keeps them in
    /// its system metadata across restarts.
    pub(crate) security: HashMap<ClusterKey, Security>,
    /// Pods (and their uid) whose init step is still waiting: their node joins once it finishes.
    pub(crate) pending: HashMap<PodKey, String>,
    /// Pods whose kwok `Exec` object this simulator applied (module `exec`).
    pub(crate) exec_objects: std::collections::HashSet<PodKey>,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<State>,
    pub(crate) opts: Mutex<SimulatorOptions>,
    /// Bumped on every fault change: node tasks re-check whether to listen.
    pub(crate) faults_changed: tokio::sync::watch::Sender<u64>,
    /// Where exec in simulated pods is served (set once at start; none if the listener could not start).
    pub(crate) exec: std::sync::OnceLock<ExecEndpoint>,
    /// The ConfigMaps of the scope as a kubelet sees them: from one watch (its watch-based ConfigMap manager), not
    /// read per pod (see `pods::watch_config_maps`).
    pub(crate) config_maps: kube::runtime::reflector::Store<k8s_openapi::api::core::v1::ConfigMap>,
    /// Bumped on every ConfigMap change: pods whose init step waits re-check their rack ConfigMap.
    pub(crate) config_maps_changed: tokio::sync::watch::Sender<u64>,
}

impl Inner {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn migration_duration(&self) -> Duration {
        self.opts.lock().unwrap_or_else(|e| e.into_inner()).migration_duration
    }

    pub(crate) fn admin_password(&self) -> String {
        self.opts.lock().unwrap_or_else(|e| e.into_inner()).admin_password.clone()
    }

    pub(crate) fn fault_of(&self, key: &PodKey) -> Fault {
        let state = self.lock();
        state.fault_of(key)
    }

    pub(crate) fn bump_faults(&self) {
        self.faults_changed.send_modify(|v| *v += 1);
    }
}

impl State {
    pub(crate) fn fault_of(&self, key: &PodKey) -> Fault {
        let pod = FaultTarget::pod(&key.0, &key.1);
        let mut fault = Fault::default();
        for map in [&self.api_faults, &self.file_faults] {
            if let Some(f) = map.get(&pod) {
                fault = fault.or(f);
            }
        }
        if let Some(node) = self.nodes.get(key) {
            let cluster = FaultTarget::cluster(&node.cluster.0, &node.cluster.1);
            for map in [&self.api_faults, &self.file_faults] {
                if let Some(f) = map.get(&cluster) {
                    fault = fault.or(f);
                }
            }
        }
        fault
    }

    pub(crate) fn record(&mut self, key: &PodKey, uid: &str, what: What) {
        let history = self.history.entry(key.clone()).or_default();
        if history.len() >= HISTORY_LIMIT {
            history.drain(..HISTORY_LIMIT / 10);
        }
        history.push(Recorded { at: SystemTime::now(), uid: uid.to_string(), what });
    }

    /// A membership or partition-ownership change: new key, migrations from now.
    pub(crate) fn rebalance(cluster: &mut ClusterState, duration: Duration) {
        cluster.key = new_cluster_key();
        cluster.generation += 1;
        cluster.migrate_from = Instant::now();
        cluster.migrate_until = cluster.migrate_from + duration;
    }

    pub(crate) fn migrations_stuck(&self, cluster: &ClusterKey) -> bool {
        let Some(c) = self.clusters.get(cluster) else { return false };
        c.members.iter().any(|m| self.fault_of(m).stuck_migrations)
    }

    /// Dead partitions a fault makes the cluster's strong-consistency namespaces report.
    pub(crate) fn dead_partitions(&self, cluster: &ClusterKey) -> u64 {
        let Some(c) = self.clusters.get(cluster) else { return 0 };
        c.members.iter().filter_map(|m| self.fault_of(m).dead_partitions).max().unwrap_or(0)
    }

    pub(crate) fn remaining_migrations(&self, cluster: &ClusterKey) -> u64 {
        if self.migrations_stuck(cluster) {
            return PARTITIONS / 2;
        }
        let Some(c) = self.clusters.get(cluster) else { return 0 };
        let now = Instant::now();
        if now >= c.migrate_until {
            return 0;
        }
        let total = (c.migrate_until - c.migrate_from).as_millis().max(1);
        let left = (c.migrate_until - now).as_millis();
        ((left * u128::from(PARTITIONS) / total) as u64).max(1)
    }

    /// Removes a node from its cluster (the pod is gone or not running).
    pub(crate) fn leave(&mut self, key: &PodKey, duration: Duration) -> Option<Node> {
        let node = self.nodes.remove(key)?;
        node.task.abort();
        self.record(key, &node.uid, What::Left);
        if let Some(c) = self.clusters.get_mut(&node.cluster) {
            c.members.remove(key);
            if c.members.is_empty() {
                self.clusters.remove(&node.cluster);
            } else {
                State::rebalance(c, duration);
            }
        }
        Some(node)
    }

    pub(crate) fn principal(&self, cluster: &ClusterKey) -> Option<PodKey> {
        let c = self.clusters.get(cluster)?;
        c.members
            .iter()
            .filter_map(|m| self.nodes.get(m).map(|n| (m, n)))
            .min_by_key(|(_, n)| (u64::from_str_radix(&n.node_id, 16).unwrap_or(u64::MAX), n.node_id.clone()))
            .map(|(m, _)| m.clone())
    }
}

#[derive(Clone, Debug)]
pub struct SimulatorOptions {
    /// Watch pods of this namespace only (`None`: all namespaces).
    pub namespace: Option<String>,
    /// How long migrations run after a membership change.
    pub migration_duration: Duration,
    /// Server version answered to `build` when the image tag is not a version.
    pub default_build: String,
    /// Service port when the cluster's config does not name one.
    pub default_port: u16,
    /// A faults file to poll (see [`FaultEntry`]).
    pub faults_file: Option<PathBuf>,
    /// Print every request line to stderr.
    pub log_commands: bool,
    /// The admin password of clusters with security enabled.
    pub admin_password: String,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            namespace: None,
            migration_duration: Duration::from_secs(2),
            default_build: "8.0.0.5".into(),
            default_port: 3000,
            faults_file: None,
            log_commands: false,
            admin_password: "admin".into(),
        }
    }
}

/// A new cluster key: 12 hex digits, as a server's `cluster-key`.
pub(crate) fn new_cluster_key() -> String {
    format!("{:012X}", random_u64() & 0xFFFF_FFFF_FFFF)
}

/// A random number (no rand dependency: the std hasher is randomly keyed per instance).
pub(crate) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

/// Where exec in simulated pods is served (module `exec`): its loopback listener and the script kwok runs.
#[derive(Clone, Debug)]
pub(crate) struct ExecEndpoint {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) script: std::path::PathBuf,
}
