//! An Aerospike simulator: for every running pod of an AerospikeCluster (label `app=aerospike-cluster`) it listens
//! on `<podIP>:<service port>` and answers the info protocol the operator speaks (see
//! `aerospike_kubernetes_operator::info`), from a simulated cluster state.
//!
//! Model, per AerospikeCluster (namespace + label `aerospike.com/cr`):
//! - a pod joins when it is Running with a pod IP, and leaves when it is deleted (or terminating); a pod recreated
//!   under the same name is a restart (new node state: quiesce and set-config values are gone);
//! - every membership change draws a new cluster key and starts migrations that last
//!   [`SimulatorOptions::migration_duration`] (`migrate_partitions_remaining` > 0 and `cluster-stable` answering
//!   `ERROR::unstable-cluster` meanwhile);
//! - `quiesce:` marks the node (`pending_quiesce=true`) until `quiesce-undo:` or a restart; `recluster:` is
//!   answered `ok` by the principal (the lowest node id) only, and there makes pending quiesce/roster effective
//!   (`effective_is_quiesced`, `nodes_quiesced`), which changes the cluster key and starts migrations;
//! - node ids are the operator's (`<rack><a-f><ordinal>`, answered upper case like a real server), the server
//!   version is the image tag, namespaces (and strong-consistency, replication-factor, service port) come from the
//!   AerospikeCluster's `spec.aerospikeConfig`.
//!
//! - security: when `spec.aerospikeConfig` has a `security` section, a node accepts info requests only on a
//!   connection that logged in (admin LOGIN as `admin` with bcrypt of [`SimulatorOptions::admin_password`],
//!   "admin" unless set: the password a server keeps until access control changes it); a wrong login is
//!   answered with result 65 and an info request without one closes the connection. Without security, a login
//!   is answered with 52 (security not enabled), which clients accept.
//!
//! Fault knobs ([`Fault`]), per pod or per cluster, set in-process ([`Simulator::set_fault`]) or through a JSON file
//! that the `cargo xtask simulator fault` command writes: a node that accepts connections and never answers
//! ([`NoAnswer::Hang`]) or refuses them ([`NoAnswer::Refuse`]), migrations that never finish, slow answers.
//! Every request line is recorded per pod ([`Simulator::commands_for`], [`Simulator::history_for`]).
//!
//! Answers are computed by an [`InfoHandler`] (the operator's info-server trait) per node; the connection loop is
//! our own rather than `info::server::serve`, because the fault knobs need to delay or withhold answers and to
//! stop listening.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aerospike_kubernetes_operator::build as ako_build;
use aerospike_kubernetes_operator::info::wire::{self, Header};
use aerospike_kubernetes_operator::info::{InfoHandler, ServerVersion, auth};
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::cluster::net::random_u64;

/// Written into the state folder by `simulator run` once it watches pods.
pub const READY_FILE: &str = "simulator.ready";
/// The faults file in the state folder (`cargo xtask simulator fault` writes it, the simulator polls it).
pub const FAULTS_FILE: &str = "simulator-faults.json";
/// Label selecting the operator's Aerospike pods.
pub const POD_SELECTOR: &str = "app=aerospike-cluster";

/// Partitions per namespace in Aerospike; the migration counter counts down from here.
const PARTITIONS: u64 = 4096;
/// Recorded entries kept per pod (the oldest are dropped), so a long-running simulator stays small.
const HISTORY_LIMIT: usize = 20_000;

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

/// How a node fails to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoAnswer {
    /// Accepts connections and reads requests, never replies.
    Hang,
    /// Does not listen: connections are refused.
    Refuse,
}

/// Faults of a pod or a cluster. `Fault::default()` is no fault.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fault {
    pub no_answer: Option<NoAnswer>,
    /// Wait this long before each answer.
    pub delay: Option<Duration>,
    /// Migrations never finish (for a pod: its whole cluster reports them, as on a real cluster).
    pub stuck_migrations: bool,
}

impl Fault {
    pub fn hang() -> Fault {
        Fault { no_answer: Some(NoAnswer::Hang), ..Default::default() }
    }
    pub fn refuse() -> Fault {
        Fault { no_answer: Some(NoAnswer::Refuse), ..Default::default() }
    }
    pub fn delay(d: Duration) -> Fault {
        Fault { delay: Some(d), ..Default::default() }
    }
    pub fn stuck_migrations() -> Fault {
        Fault { stuck_migrations: true, ..Default::default() }
    }
    /// Field-wise merge; `self` wins where both are set.
    fn or(&self, other: &Fault) -> Fault {
        Fault {
            no_answer: self.no_answer.or(other.no_answer),
            delay: self.delay.or(other.delay),
            stuck_migrations: self.stuck_migrations || other.stuck_migrations,
        }
    }
}

/// What a fault applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultTarget {
    Pod {
        namespace: String,
        name: String,
    },
    /// Every pod of the AerospikeCluster `name`.
    Cluster {
        namespace: String,
        name: String,
    },
}

impl FaultTarget {
    pub fn pod(namespace: &str, name: &str) -> Self {
        FaultTarget::Pod { namespace: namespace.into(), name: name.into() }
    }
    pub fn cluster(namespace: &str, name: &str) -> Self {
        FaultTarget::Cluster { namespace: namespace.into(), name: name.into() }
    }
}

/// One entry of the faults file (a JSON array of these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEntry {
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_answer: Option<NoAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub stuck_migrations: bool,
}

impl FaultEntry {
    fn target(&self) -> Option<FaultTarget> {
        match (&self.pod, &self.cluster) {
            (Some(p), None) => Some(FaultTarget::pod(&self.namespace, p)),
            (None, Some(c)) => Some(FaultTarget::cluster(&self.namespace, c)),
            _ => None,
        }
    }
    fn fault(&self) -> Fault {
        Fault {
            no_answer: self.no_answer,
            delay: self.delay_ms.map(Duration::from_millis),
            stuck_migrations: self.stuck_migrations,
        }
    }
}

/// Something that happened to a simulated node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// The pod became a cluster member (Running with this IP).
    Joined { ip: IpAddr, node_id: String },
    /// A request line was received; `answered` is false when a fault withheld the answer.
    Command { command: String, answered: bool },
    /// The pod left the cluster (deleted, terminating, or no longer running).
    Left,
}

/// A [`What`] with when and for which pod incarnation (uid).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub at: SystemTime,
    pub uid: String,
    pub what: What,
}

type PodKey = (String, String);
type ClusterKey = (String, String);

#[derive(Clone, Debug)]
struct NamespaceInfo {
    name: String,
    strong_consistency: bool,
    replication_factor: u64,
}

/// What the simulator reads from the AerospikeCluster.
#[derive(Clone, Debug)]
struct ClusterSpec {
    namespaces: Vec<NamespaceInfo>,
    port: u16,
    security: bool,
}

struct Node {
    uid: String,
    ip: IpAddr,
    port: u16,
    cluster: ClusterKey,
    node_id: String,
    rack_id: i32,
    build: String,
    quiesce_pending: bool,
    quiesce_effective: bool,
    /// set-config values: context -> key -> value.
    config: BTreeMap<String, BTreeMap<String, String>>,
    task: JoinHandle<()>,
}

struct ClusterState {
    key: String,
    migrate_from: Instant,
    migrate_until: Instant,
    members: BTreeSet<PodKey>,
    spec: ClusterSpec,
    /// namespace -> (roster, pending roster).
    rosters: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

#[derive(Default)]
struct State {
    nodes: HashMap<PodKey, Node>,
    clusters: HashMap<ClusterKey, ClusterState>,
    api_faults: HashMap<FaultTarget, Fault>,
    file_faults: HashMap<FaultTarget, Fault>,
    history: HashMap<PodKey, Vec<Recorded>>,
}

struct Inner {
    state: Mutex<State>,
    opts: Mutex<SimulatorOptions>,
    /// Bumped on every fault change: node tasks re-check whether to listen.
    faults_changed: tokio::sync::watch::Sender<u64>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn migration_duration(&self) -> Duration {
        self.opts.lock().unwrap_or_else(|e| e.into_inner()).migration_duration
    }

    fn admin_password(&self) -> String {
        self.opts.lock().unwrap_or_else(|e| e.into_inner()).admin_password.clone()
    }

    fn fault_of(&self, key: &PodKey) -> Fault {
        let state = self.lock();
        state.fault_of(key)
    }

    fn bump_faults(&self) {
        self.faults_changed.send_modify(|v| *v += 1);
    }
}

impl State {
    fn fault_of(&self, key: &PodKey) -> Fault {
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

    fn record(&mut self, key: &PodKey, uid: &str, what: What) {
        let history = self.history.entry(key.clone()).or_default();
        if history.len() >= HISTORY_LIMIT {
            history.drain(..HISTORY_LIMIT / 10);
        }
        history.push(Recorded { at: SystemTime::now(), uid: uid.to_string(), what });
    }

    /// A membership or partition-ownership change: new key, migrations from now.
    fn rebalance(cluster: &mut ClusterState, duration: Duration) {
        cluster.key = new_cluster_key();
        cluster.migrate_from = Instant::now();
        cluster.migrate_until = cluster.migrate_from + duration;
    }

    fn migrations_stuck(&self, cluster: &ClusterKey) -> bool {
        let Some(c) = self.clusters.get(cluster) else { return false };
        c.members.iter().any(|m| self.fault_of(m).stuck_migrations)
    }

    fn remaining_migrations(&self, cluster: &ClusterKey) -> u64 {
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
    fn leave(&mut self, key: &PodKey, duration: Duration) -> Option<Node> {
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

    fn principal(&self, cluster: &ClusterKey) -> Option<PodKey> {
        let c = self.clusters.get(cluster)?;
        c.members
            .iter()
            .filter_map(|m| self.nodes.get(m).map(|n| (m, n)))
            .min_by_key(|(_, n)| (u64::from_str_radix(&n.node_id, 16).unwrap_or(u64::MAX), n.node_id.clone()))
            .map(|(m, _)| m.clone())
    }

    /// The answer of node `key` (incarnation `uid`) to one request line.
    fn answer(&mut self, key: &PodKey, uid: &str, command: &str, duration: Duration) -> String {
        let Some(node) = self.nodes.get(key).filter(|n| n.uid == uid) else {
            return "ERROR::node-stopped".into();
        };
        let cluster_key = node.cluster.clone();
        let Some(cluster) = self.clusters.get(&cluster_key) else {
            return "ERROR::no-cluster".into();
        };
        let (name, params) = match command.split_once(':') {
            Some((n, p)) => (n, parse_params(p)),
            None => (command, BTreeMap::new()),
        };
        let size = cluster.members.len();
        let find_ns = |ns: &str| cluster.spec.namespaces.iter().find(|n| n.name == ns).cloned();
        let ns_param = || params.get("namespace").or_else(|| params.get("id")).cloned();
        match name {
            "node" => node.node_id.clone(),
            "build" => node.build.clone(),
            "version" => format!("Aerospike Enterprise Edition build {}", node.build),
            "edition" => "Aerospike Enterprise Edition".into(),
            "cluster-name" => cluster_key.1.clone(),
            "status" => "ok".into(),
            "service" | "service-clear-std" => format!("{}:{}", node.ip, node.port),
            "services" | "services-alumni" => cluster
                .members
                .iter()
                .filter(|m| *m != key)
                .filter_map(|m| self.nodes.get(m).map(|n| format!("{}:{}", n.ip, n.port)))
                .collect::<Vec<_>>()
                .join(";"),
            "statistics" => {
                let remaining = self.remaining_migrations(&cluster_key);
                let cluster = &self.clusters[&cluster_key];
                format!(
                    "cluster_size={size};cluster_key={};cluster_generation=1;cluster_principal={};\
                     cluster_integrity=true;cluster_is_member=true;cluster_clock_skew_ms=0;\
                     migrate_allowed=true;migrate_partitions_remaining={remaining};\
                     client_connections=1;uptime=1;objects=0",
                    cluster.key,
                    self.principal(&cluster_key).and_then(|p| self.nodes.get(&p)).map_or("0", |n| n.node_id.as_str()),
                )
            }
            "namespaces" => cluster.spec.namespaces.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(";"),
            "namespace" => "ERROR::namespace-not-specified".into(),
            _ if name.starts_with("namespace/") => {
                let ns = &name["namespace/".len()..];
                let Some(info) = find_ns(ns) else { return "ERROR::unknown-namespace".into() };
                let remaining = self.remaining_migrations(&cluster_key);
                let cluster = &self.clusters[&cluster_key];
                let node = &self.nodes[key];
                let quiesced =
                    cluster.members.iter().filter(|m| self.nodes.get(*m).is_some_and(|n| n.quiesce_effective)).count();
                format!(
                    "objects=0;master_objects=0;prole_objects=0;replication-factor={rf};\
                     effective_replication_factor={erf};strong-consistency={sc};stop_writes=false;\
                     hwm_breached=false;unavailable_partitions=0;dead_partitions=0;\
                     migrate_tx_partitions_remaining={remaining};migrate_rx_partitions_remaining={remaining};\
                     pending_quiesce={};effective_is_quiesced={};nodes_quiesced={quiesced}",
                    node.quiesce_pending,
                    node.quiesce_effective,
                    rf = info.replication_factor,
                    erf = info.replication_factor.min(size as u64),
                    sc = info.strong_consistency,
                )
            }
            "cluster-stable" => {
                if let Some(want) = params.get("size")
                    && want.parse::<usize>().ok() != Some(size)
                {
                    return "ERROR::cluster-not-specified-size".into();
                }
                if let Some(ns) = params.get("namespace")
                    && find_ns(ns).is_none()
                {
                    return "ERROR::unknown-namespace".into();
                }
                let ignore = params.get("ignore-migrations").is_some_and(|v| v == "true" || v == "yes");
                if !ignore && self.remaining_migrations(&cluster_key) > 0 {
                    return "ERROR::unstable-cluster".into();
                }
                self.clusters[&cluster_key].key.clone()
            }
            "quiesce" => {
                self.nodes.get_mut(key).expect("checked").quiesce_pending = true;
                "ok".into()
            }
            "quiesce-undo" => {
                self.nodes.get_mut(key).expect("checked").quiesce_pending = false;
                "ok".into()
            }
            "recluster" => {
                if self.principal(&cluster_key).as_ref() != Some(key) {
                    return "ignored-by-non-principal".into();
                }
                let members: Vec<PodKey> = self.clusters[&cluster_key].members.iter().cloned().collect();
                let mut changed = false;
                for m in &members {
                    if let Some(n) = self.nodes.get_mut(m)
                        && n.quiesce_effective != n.quiesce_pending
                    {
                        n.quiesce_effective = n.quiesce_pending;
                        changed = true;
                    }
                }
                let cluster = self.clusters.get_mut(&cluster_key).expect("checked");
                for (roster, pending) in cluster.rosters.values_mut() {
                    if !pending.is_empty() && roster != pending {
                        *roster = pending.clone();
                        changed = true;
                    }
                }
                if changed {
                    State::rebalance(cluster, duration);
                }
                "ok".into()
            }
            "roster" => {
                let Some(ns) = ns_param() else { return "ERROR::namespace-not-specified".into() };
                if find_ns(&ns).is_none() {
                    return "ERROR::unknown-namespace".into();
                }
                let observed: Vec<String> = cluster
                    .members
                    .iter()
                    .filter_map(|m| self.nodes.get(m))
                    .map(|n| format!("{}@{}", n.node_id, n.rack_id))
                    .collect();
                let (roster, pending) = cluster.rosters.get(&ns).cloned().unwrap_or_default();
                let list = |v: &[String]| if v.is_empty() { "null".to_string() } else { v.join(",") };
                format!("roster={}:pending_roster={}:observed_nodes={}", list(&roster), list(&pending), list(&observed))
            }
            "roster-set" => {
                let Some(ns) = ns_param() else { return "ERROR::namespace-not-specified".into() };
                if find_ns(&ns).is_none() {
                    return "ERROR::unknown-namespace".into();
                }
                let nodes: Vec<String> = params
                    .get("nodes")
                    .map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
                    .unwrap_or_default();
                if nodes.is_empty() {
                    return "ERROR::no-nodes".into();
                }
                let cluster = self.clusters.get_mut(&cluster_key).expect("checked");
                cluster.rosters.entry(ns).or_default().1 = nodes;
                "ok".into()
            }
            "get-config" => {
                let context = params.get("context").cloned().unwrap_or_else(|| "service".into());
                let mut values: BTreeMap<String, String> = BTreeMap::new();
                let scope = match context.as_str() {
                    "namespace" => {
                        let Some(ns) = ns_param() else { return "ERROR::namespace-not-specified".into() };
                        let Some(info) = find_ns(&ns) else { return "ERROR::unknown-namespace".into() };
                        values.insert("replication-factor".into(), info.replication_factor.to_string());
                        values.insert("strong-consistency".into(), info.strong_consistency.to_string());
                        values.insert("rack-id".into(), node.rack_id.to_string());
                        format!("namespace:{ns}")
                    }
                    "service" => {
                        values.insert("cluster-name".into(), cluster_key.1.clone());
                        values.insert("migrate-fill-delay".into(), "0".into());
                        values.insert("node-id".into(), node.node_id.clone());
                        context.clone()
                    }
                    "network" => {
                        values.insert("service.port".into(), node.port.to_string());
                        context.clone()
                    }
                    _ => context.clone(),
                };
                if let Some(set) = node.config.get(&scope) {
                    values.extend(set.clone());
                }
                values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";")
            }
            "set-config" => {
                let Some(context) = params.get("context").cloned() else {
                    return "ERROR::missing-context".into();
                };
                let mut rest: BTreeMap<String, String> = params.clone();
                rest.remove("context");
                let scope = if context == "namespace" {
                    let Some(ns) = rest.remove("namespace").or_else(|| rest.remove("id")) else {
                        return "ERROR::namespace-not-specified".into();
                    };
                    if find_ns(&ns).is_none() {
                        return "ERROR::unknown-namespace".into();
                    }
                    match rest.remove("set") {
                        Some(set) => format!("namespace:{ns}:set:{set}"),
                        None => format!("namespace:{ns}"),
                    }
                } else {
                    context
                };
                if rest.is_empty() {
                    return "ERROR::no-parameter".into();
                }
                self.nodes.get_mut(key).expect("checked").config.entry(scope).or_default().extend(rest);
                "ok".into()
            }
            "tip-clear" | "services-alumni-reset" | "log-set" | "tip" | "peers-reset" => "ok".into(),
            "latencies" | "latency" => String::new(),
            "racks" => {
                let mut racks: BTreeMap<i32, Vec<String>> = BTreeMap::new();
                for n in cluster.members.iter().filter_map(|m| self.nodes.get(m)) {
                    racks.entry(n.rack_id).or_default().push(n.node_id.clone());
                }
                cluster
                    .spec
                    .namespaces
                    .iter()
                    .map(|ns| {
                        let racks: Vec<String> =
                            racks.iter().map(|(id, nodes)| format!("rack_{id}={}", nodes.join(","))).collect();
                        format!("ns={}:{}", ns.name, racks.join(":"))
                    })
                    .collect::<Vec<_>>()
                    .join(";")
            }
            _ => "ERROR::unrecognized-command".into(),
        }
    }
}

fn new_cluster_key() -> String {
    format!("{:012X}", random_u64() & 0xFFFF_FFFF_FFFF)
}

/// `k=v;k=v` after the command name.
fn parse_params(p: &str) -> BTreeMap<String, String> {
    p.split(';')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

/// The answering side of one node: the operator's [`InfoHandler`] over the shared state.
struct NodeHandler {
    inner: Arc<Inner>,
    key: PodKey,
    uid: String,
    /// Security is enabled: info needs a LOGIN as `admin` with the simulator's current admin password.
    secured: bool,
}

impl InfoHandler for NodeHandler {
    fn handle(&self, command: &str) -> String {
        let duration = self.inner.migration_duration();
        let mut state = self.inner.lock();
        let value = state.answer(&self.key, &self.uid, command, duration);
        state.record(&self.key, &self.uid, What::Command { command: command.to_string(), answered: true });
        value
    }
}

/// The simulator. Stops on [`Simulator::stop`] or drop.
pub struct Simulator {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulator {
    /// Starts watching pods; returns once the initial list is processed (or after 10 s if the apiserver is slow).
    pub async fn start(client: Client, opts: SimulatorOptions) -> Simulator {
        let (faults_changed, _) = tokio::sync::watch::channel(0u64);
        let inner =
            Arc::new(Inner { state: Mutex::new(State::default()), opts: Mutex::new(opts.clone()), faults_changed });
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
        let mut tasks = vec![tokio::spawn(watch_pods(inner.clone(), client, opts.clone(), synced_tx))];
        if let Some(file) = opts.faults_file.clone() {
            tasks.push(tokio::spawn(poll_faults_file(inner.clone(), file)));
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), synced_rx).await;
        Simulator { inner, tasks }
    }

    /// Sets (replaces) the fault of a pod or a cluster; `Fault::default()` clears it.
    pub fn set_fault(&self, target: FaultTarget, fault: Fault) {
        {
            let mut state = self.inner.lock();
            if fault == Fault::default() {
                state.api_faults.remove(&target);
            } else {
                state.api_faults.insert(target, fault);
            }
        }
        self.inner.bump_faults();
    }

    /// Clears every fault set through [`Self::set_fault`].
    pub fn clear_faults(&self) {
        self.inner.lock().api_faults.clear();
        self.inner.bump_faults();
    }

    /// Changes the admin password secured nodes accept from the next login on (as if access control changed it).
    pub fn set_admin_password(&self, password: &str) {
        self.inner.opts.lock().unwrap_or_else(|e| e.into_inner()).admin_password = password.to_string();
    }

    /// Changes how long migrations run after the next membership changes.
    pub fn set_migration_duration(&self, d: Duration) {
        self.inner.opts.lock().unwrap_or_else(|e| e.into_inner()).migration_duration = d;
    }

    /// Every request line pod `pod` received, over all its incarnations, in order. `pod` is `namespace/name`, or
    /// just `name` (any namespace).
    pub fn commands_for(&self, pod: &str) -> Vec<String> {
        self.history_for(pod)
            .into_iter()
            .filter_map(|r| match r.what {
                What::Command { command, .. } => Some(command),
                _ => None,
            })
            .collect()
    }

    /// Everything recorded for `pod` (joins, commands, leaves), in order. Same `pod` forms as
    /// [`Self::commands_for`].
    pub fn history_for(&self, pod: &str) -> Vec<Recorded> {
        let state = self.inner.lock();
        let mut out: Vec<Recorded> = state
            .history
            .iter()
            .filter(|((ns, name), _)| match pod.split_once('/') {
                Some((pns, pname)) => ns == pns && name == pname,
                None => name == pod,
            })
            .flat_map(|(_, h)| h.iter().cloned())
            .collect();
        out.sort_by_key(|r| r.at);
        out
    }

    /// Forgets all recorded history.
    pub fn clear_history(&self) {
        self.inner.lock().history.clear();
    }

    /// The current cluster key of an AerospikeCluster, if any of its pods is a member.
    pub fn cluster_key(&self, namespace: &str, cluster: &str) -> Option<String> {
        self.inner.lock().clusters.get(&(namespace.to_string(), cluster.to_string())).map(|c| c.key.clone())
    }

    /// Names of the member pods of an AerospikeCluster.
    pub fn members(&self, namespace: &str, cluster: &str) -> Vec<String> {
        self.inner
            .lock()
            .clusters
            .get(&(namespace.to_string(), cluster.to_string()))
            .map(|c| c.members.iter().map(|(_, n)| n.clone()).collect())
            .unwrap_or_default()
    }

    /// The info address of a member pod.
    pub fn node_addr(&self, namespace: &str, pod: &str) -> Option<SocketAddr> {
        self.inner.lock().nodes.get(&(namespace.to_string(), pod.to_string())).map(|n| SocketAddr::new(n.ip, n.port))
    }

    /// Waits until the AerospikeCluster has exactly `n` members.
    pub async fn wait_for_members(&self, namespace: &str, cluster: &str, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let members = self.members(namespace, cluster);
            if members.len() == n {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{namespace}/{cluster} has {} simulated members ({members:?}), not {n}, after {timeout:?}",
                    members.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops watching and every listener (idempotent; also done on drop).
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let mut state = self.inner.lock();
        for (_, node) in state.nodes.drain() {
            node.task.abort();
        }
        state.clusters.clear();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
    }
}

// -----------------------------------------------------------------------------------------------------------------
// Watching pods.

async fn watch_pods(
    inner: Arc<Inner>,
    client: Client,
    opts: SimulatorOptions,
    synced: tokio::sync::oneshot::Sender<()>,
) {
    let pods: Api<Pod> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut synced = Some(synced);
    let mut seen: Option<HashSet<PodKey>> = None;
    let mut events = watcher::watcher(pods, watcher::Config::default().labels(POD_SELECTOR)).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => seen = Some(HashSet::new()),
            Ok(Event::InitApply(pod)) => {
                if let Some(seen) = &mut seen {
                    seen.insert(pod_key(&pod));
                }
                on_pod(&inner, &client, &opts, &pod).await;
            }
            Ok(Event::InitDone) => {
                // After a re-list (e.g. the apiserver restarted), pods that disappeared meanwhile leave.
                if let Some(seen) = seen.take() {
                    let duration = inner.migration_duration();
                    let mut state = inner.lock();
                    let gone: Vec<PodKey> = state.nodes.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                    for key in gone {
                        state.leave(&key, duration);
                    }
                }
                if let Some(tx) = synced.take() {
                    let _ = tx.send(());
                }
            }
            Ok(Event::Apply(pod)) => on_pod(&inner, &client, &opts, &pod).await,
            Ok(Event::Delete(pod)) => {
                let duration = inner.migration_duration();
                let mut state = inner.lock();
                let key = pod_key(&pod);
                if state.nodes.get(&key).is_some_and(|n| Some(&n.uid) == pod.metadata.uid.as_ref()) {
                    state.leave(&key, duration);
                }
            }
            Err(e) => eprintln!("simulator: watching pods: {e}"),
        }
    }
}

fn pod_key(pod: &Pod) -> PodKey {
    (pod.namespace().unwrap_or_default(), pod.name_any())
}

/// The pod's IP if it should be a cluster member now.
fn running_ip(pod: &Pod) -> Option<IpAddr> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    status.pod_ip.as_deref()?.parse().ok()
}

async fn on_pod(inner: &Arc<Inner>, client: &Client, opts: &SimulatorOptions, pod: &Pod) {
    let key = pod_key(pod);
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let ip = running_ip(pod);
    let duration = inner.migration_duration();
    {
        let mut state = inner.lock();
        let current = state.nodes.get(&key).map(|n| (n.uid.clone(), n.ip));
        match (current, ip) {
            (Some((u, i)), Some(ip)) if u == uid && i == ip => return, // no change
            (Some(_), _) => {
                state.leave(&key, duration);
            }
            (None, None) => return,
            (None, Some(_)) => {}
        }
        if ip.is_none() {
            return;
        }
    }
    let ip = ip.expect("checked");
    let cr = pod.labels().get(ako_build::LABEL_CR).cloned().unwrap_or_else(|| "unknown".into());
    let cluster_key = (key.0.clone(), cr.clone());
    let spec = cluster_spec(client, &key.0, &cr, opts).await;

    let rack_id: i32 = pod.labels().get(ako_build::LABEL_RACK).and_then(|r| r.parse().ok()).unwrap_or(0);
    let node_id = ako_build::pod_node_id(pod)
        .unwrap_or_else(|| {
            let ordinal = key.1.rsplit_once('-').map_or("0", |(_, o)| o);
            format!("{rack_id}a{ordinal}")
        })
        .to_ascii_uppercase();
    let build = server_version(pod).unwrap_or_else(|| opts.default_build.clone());
    let addr = SocketAddr::new(ip, spec.port);

    let mut state = inner.lock();
    // A pod event may have raced us while the spec was fetched.
    if state.nodes.contains_key(&key) {
        return;
    }
    // Another pod may still hold this address (kwok recycles IPs): it is gone, so it leaves now.
    let holder: Option<PodKey> =
        state.nodes.iter().find(|(_, n)| n.ip == ip && n.port == spec.port).map(|(k, _)| k.clone());
    if let Some(holder) = holder {
        state.leave(&holder, duration);
    }
    let task = tokio::spawn(node_task(inner.clone(), key.clone(), uid.clone(), addr, spec.security, opts.log_commands));
    state.nodes.insert(
        key.clone(),
        Node {
            uid: uid.clone(),
            ip,
            port: spec.port,
            cluster: cluster_key.clone(),
            node_id: node_id.clone(),
            rack_id,
            build,
            quiesce_pending: false,
            quiesce_effective: false,
            config: BTreeMap::new(),
            task,
        },
    );
    let now = Instant::now();
    let cluster = state.clusters.entry(cluster_key).or_insert_with(|| ClusterState {
        key: String::new(),
        migrate_from: now,
        migrate_until: now,
        members: BTreeSet::new(),
        spec: spec.clone(),
        rosters: BTreeMap::new(),
    });
    cluster.spec = spec;
    cluster.members.insert(key.clone());
    State::rebalance(cluster, duration);
    state.record(&key, &uid, What::Joined { ip, node_id });
}

/// The server version from the image tag (`...:8.0.0.5` or `...:8.0.0.5_1`).
fn server_version(pod: &Pod) -> Option<String> {
    let containers = &pod.spec.as_ref()?.containers;
    let c = containers.iter().find(|c| c.name == ako_build::SERVER_CONTAINER_NAME).or(containers.first())?;
    let image = c.image.as_deref()?;
    let last = image.rsplit('/').next()?;
    let tag = last.split_once(':')?.1;
    let v = ServerVersion::parse(tag)?;
    (v.major >= 4).then(|| format!("{}.{}.{}.{}", v.major, v.minor, v.patch, v.build))
}

/// Namespaces and service port from the AerospikeCluster's `spec.aerospikeConfig`; defaults (`test`, the default
/// port) if it cannot be read within 3 s.
async fn cluster_spec(client: &Client, namespace: &str, name: &str, opts: &SimulatorOptions) -> ClusterSpec {
    let default = ClusterSpec {
        namespaces: vec![NamespaceInfo { name: "test".into(), strong_consistency: false, replication_factor: 2 }],
        port: opts.default_port,
        security: false,
    };
    let gvk = GroupVersionKind::gvk("asdb.aerospike.com", "v1", "AerospikeCluster");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "aerospikeclusters");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let object = match tokio::time::timeout(Duration::from_secs(3), api.get_opt(name)).await {
        Ok(Ok(Some(o))) => o,
        _ => return default,
    };
    let config = &object.data["spec"]["aerospikeConfig"];
    let namespaces: Vec<NamespaceInfo> = config["namespaces"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|ns| {
                    Some(NamespaceInfo {
                        name: ns["name"].as_str()?.to_string(),
                        strong_consistency: ns["strong-consistency"].as_bool().unwrap_or(false),
                        replication_factor: ns["replication-factor"].as_u64().unwrap_or(2),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    ClusterSpec {
        namespaces: if namespaces.is_empty() { default.namespaces } else { namespaces },
        port: config["network"]["service"]["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(opts.default_port),
        security: !config["security"].is_null(),
    }
}

// -----------------------------------------------------------------------------------------------------------------
// Serving one node.

async fn node_task(inner: Arc<Inner>, key: PodKey, uid: String, addr: SocketAddr, secured: bool, log_commands: bool) {
    let mut changed = inner.faults_changed.subscribe();
    let mut warned = false;
    loop {
        while inner.fault_of(&key).no_answer == Some(NoAnswer::Refuse) {
            if changed.changed().await.is_err() {
                return;
            }
        }
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                // E.g. the previous holder of a recycled IP has not closed its socket yet.
                if !warned {
                    eprintln!("simulator: {}/{}: cannot listen on {addr} yet: {e}", key.0, key.1);
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = Arc::new(NodeHandler { inner: inner.clone(), key: key.clone(), uid: uid.clone(), secured });
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((socket, _)) = accepted {
                        connections.spawn(serve_connection(socket, handler.clone(), log_commands));
                    }
                }
                r = changed.changed() => {
                    if r.is_err() {
                        return;
                    }
                    if inner.fault_of(&key).no_answer == Some(NoAnswer::Refuse) {
                        break; // stop listening and drop open connections, like a dead process
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }
}

async fn serve_connection(mut socket: TcpStream, handler: Arc<NodeHandler>, log_commands: bool) {
    let _ = socket.set_nodelay(true);
    let mut logged_in = false;
    loop {
        let mut header = [0u8; wire::HEADER_LEN];
        if socket.read_exact(&mut header).await.is_err() {
            return;
        }
        let header = Header::parse(header);
        let msg_type = header.msg_type;
        if msg_type != wire::MSG_TYPE_INFO && msg_type != wire::MSG_TYPE_ADMIN {
            return;
        }
        let Ok(len) = header.check(msg_type) else { return };
        let mut body = vec![0u8; len];
        if socket.read_exact(&mut body).await.is_err() {
            return;
        }
        let commands = if msg_type == wire::MSG_TYPE_INFO {
            match wire::parse_info_request_body(&body) {
                Ok(c) => c,
                Err(_) => return,
            }
        } else {
            Vec::new()
        };
        let fault = handler.inner.fault_of(&handler.key);
        if log_commands {
            for c in &commands {
                eprintln!("simulator: {}/{} <- {c}", handler.key.0, handler.key.1);
            }
        }
        if fault.no_answer == Some(NoAnswer::Hang) {
            {
                let mut state = handler.inner.lock();
                for c in &commands {
                    state.record(&handler.key, &handler.uid, What::Command { command: c.clone(), answered: false });
                }
            }
            // Keep the connection open, read and drop whatever comes, never answer.
            let _ = tokio::io::copy(&mut socket, &mut tokio::io::sink()).await;
            return;
        }
        if let Some(delay) = fault.delay {
            tokio::time::sleep(delay).await;
        }
        if msg_type == wire::MSG_TYPE_INFO && handler.secured && !logged_in {
            let mut state = handler.inner.lock();
            for c in &commands {
                state.record(&handler.key, &handler.uid, What::Command { command: c.clone(), answered: false });
            }
            return; // a secured node does not answer an unauthenticated connection
        }
        let reply = if msg_type == wire::MSG_TYPE_INFO {
            let answers: Vec<(String, String)> = commands
                .into_iter()
                .map(|c| {
                    let mut v = handler.handle(&c);
                    if v.contains('\n') {
                        v = "ERROR::value-contains-newline".into();
                    }
                    (c, v)
                })
                .collect();
            match wire::encode_info_response(&answers) {
                Ok(r) => r,
                Err(_) => return,
            }
        } else {
            let Ok(command) = wire::admin_command(&body) else { return };
            if !handler.secured {
                // Security is not enabled here, which clients accept as a login.
                wire::encode_admin_reply(command, wire::ADMIN_RESULT_SECURITY_NOT_ENABLED)
            } else {
                // bcrypt is slow (cached per password): off the async workers.
                let password = handler.inner.admin_password();
                let expected =
                    tokio::task::spawn_blocking(move || auth::credentials(auth::DEFAULT_ADMIN_USER, &password))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .map(|c| c.credential)
                        .unwrap_or_default();
                {
                    let fields = wire::admin_fields(&body).unwrap_or_default();
                    let field = |id: u8| fields.iter().find(|(f, _)| *f == id).map(|(_, d)| d.as_slice());
                    logged_in = command == wire::ADMIN_LOGIN
                        && field(wire::ADMIN_FIELD_USER) == Some(auth::DEFAULT_ADMIN_USER.as_bytes())
                        && !expected.is_empty()
                        && field(wire::ADMIN_FIELD_CREDENTIAL) == Some(expected.as_bytes());
                    handler.inner.lock().record(
                        &handler.key,
                        &handler.uid,
                        What::Command { command: format!("login:accepted={logged_in}"), answered: true },
                    );
                    let result = if logged_in { wire::ADMIN_RESULT_OK } else { wire::ADMIN_RESULT_INVALID_CREDENTIAL };
                    wire::encode_admin_reply(command, result)
                }
            }
        };
        if socket.write_all(&reply).await.is_err() {
            return;
        }
    }
}

// -----------------------------------------------------------------------------------------------------------------
// The faults file.

fn read_faults_file(path: &Path) -> Result<Vec<FaultEntry>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_faults_file(path: &Path, entries: &[FaultEntry]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(entries)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

async fn poll_faults_file(inner: Arc<Inner>, path: PathBuf) {
    let mut last: Option<(SystemTime, u64)> = None;
    loop {
        let stamp = std::fs::metadata(&path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if stamp != last {
            last = stamp;
            match read_faults_file(&path) {
                Ok(entries) => {
                    let map: HashMap<FaultTarget, Fault> =
                        entries.iter().filter_map(|e| Some((e.target()?, e.fault()))).collect();
                    eprintln!("simulator: {} fault(s) from {}", map.len(), path.display());
                    inner.lock().file_faults = map;
                    inner.bump_faults();
                }
                Err(e) => eprintln!("simulator: {e:#}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// -----------------------------------------------------------------------------------------------------------------
// `cargo xtask simulator ...`

/// The Aerospike simulator (and fake storage provisioner) for a local cluster.
#[derive(clap::Args, Debug)]
pub struct SimulatorArgs {
    #[command(subcommand)]
    command: SimulatorCommand,
}

#[derive(clap::Subcommand, Debug)]
enum SimulatorCommand {
    /// Run the simulator and the provisioner in the foreground until SIGTERM/SIGINT (`cluster up` starts this in
    /// the background).
    Run {
        #[arg(long, value_name = "FILE")]
        kubeconfig: PathBuf,
        /// Where the faults file and the ready marker live (default: the cluster's default state folder).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Watch one namespace only.
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long, default_value_t = 2000)]
        migration_ms: u64,
        /// Do not run the fake storage provisioner.
        #[arg(long)]
        no_provisioner: bool,
        /// Print every info request line.
        #[arg(long)]
        log_commands: bool,
    },
    /// Set or clear a fault of a running simulator (through its faults file).
    Fault {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// The pod to affect.
        #[arg(long, conflicts_with = "cluster", required_unless_present_any = ["cluster", "clear_all"])]
        pod: Option<String>,
        /// The AerospikeCluster (all its pods) to affect.
        #[arg(long)]
        cluster: Option<String>,
        /// Accept connections and never answer.
        #[arg(long, conflicts_with = "refuse")]
        hang: bool,
        /// Refuse connections.
        #[arg(long)]
        refuse: bool,
        /// Delay every answer by this many milliseconds.
        #[arg(long)]
        delay_ms: Option<u64>,
        /// Migrations never finish.
        #[arg(long)]
        stuck_migrations: bool,
        /// Remove the target's fault.
        #[arg(long)]
        clear: bool,
        /// Remove every fault.
        #[arg(long)]
        clear_all: bool,
    },
    /// List the faults in the faults file.
    Faults {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

/// Entry point of `cargo xtask simulator`.
pub fn run(args: SimulatorArgs) -> Result<()> {
    match args.command {
        SimulatorCommand::Run { kubeconfig, state_dir, namespace, migration_ms, no_provisioner, log_commands } => {
            let dir = state_dir.unwrap_or_else(crate::cluster::default_state_dir);
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(run_background(kubeconfig, dir, namespace, migration_ms, !no_provisioner, log_commands))
        }
        SimulatorCommand::Fault {
            state_dir,
            namespace,
            pod,
            cluster,
            hang,
            refuse,
            delay_ms,
            stuck_migrations,
            clear,
            clear_all,
        } => {
            let dir = state_dir.unwrap_or_else(crate::cluster::default_state_dir);
            if !dir.is_dir() {
                bail!("{} does not exist: is a cluster up (`cargo xtask cluster up`)?", dir.display());
            }
            let path = dir.join(FAULTS_FILE);
            let mut entries = read_faults_file(&path)?;
            if clear_all {
                entries.clear();
            } else {
                let entry = FaultEntry {
                    namespace,
                    pod,
                    cluster,
                    no_answer: if hang {
                        Some(NoAnswer::Hang)
                    } else if refuse {
                        Some(NoAnswer::Refuse)
                    } else {
                        None
                    },
                    delay_ms,
                    stuck_migrations,
                };
                let target = entry.target().context("name exactly one of --pod and --cluster")?;
                entries.retain(|e| e.target().as_ref() != Some(&target));
                if !clear {
                    if entry.fault() == Fault::default() {
                        bail!("no fault given: use --hang, --refuse, --delay-ms, --stuck-migrations or --clear");
                    }
                    entries.push(entry);
                }
            }
            write_faults_file(&path, &entries)?;
            println!("{} fault(s) in {}", entries.len(), path.display());
            Ok(())
        }
        SimulatorCommand::Faults { state_dir } => {
            let dir = state_dir.unwrap_or_else(crate::cluster::default_state_dir);
            for e in read_faults_file(&dir.join(FAULTS_FILE))? {
                println!("{}", serde_json::to_string(&e)?);
            }
            Ok(())
        }
    }
}

async fn run_background(
    kubeconfig: PathBuf,
    dir: PathBuf,
    namespace: Option<String>,
    migration_ms: u64,
    provisioner: bool,
    log_commands: bool,
) -> Result<()> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    std::fs::create_dir_all(&dir)?;
    let opts = SimulatorOptions {
        namespace,
        migration_duration: Duration::from_millis(migration_ms),
        faults_file: Some(dir.join(FAULTS_FILE)),
        log_commands,
        ..Default::default()
    };
    let mut simulator = Simulator::start(client.clone(), opts).await;
    let provisioner = provisioner.then(|| tokio::spawn(crate::cluster::provisioner::run(client, dir.join("volumes"))));
    std::fs::write(dir.join(READY_FILE), std::process::id().to_string())?;
    eprintln!("simulator: running (pid {})", std::process::id());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("simulator: stopping");
    simulator.stop();
    if let Some(p) = provisioner {
        p.abort();
    }
    let _ = std::fs::remove_file(dir.join(READY_FILE));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_keys() {
        let p = parse_params("size=3;ignore-migrations=false;namespace=test");
        assert_eq!(p["size"], "3");
        assert_eq!(p["namespace"], "test");
        let k = new_cluster_key();
        assert_eq!(k.len(), 12);
        assert!(k.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn fault_merge_prefers_the_pod() {
        let pod = Fault { delay: Some(Duration::from_millis(5)), ..Default::default() };
        let cluster =
            Fault { delay: Some(Duration::from_secs(1)), stuck_migrations: true, no_answer: Some(NoAnswer::Hang) };
        let f = pod.or(&cluster);
        assert_eq!(f.delay, Some(Duration::from_millis(5)));
        assert!(f.stuck_migrations);
        assert_eq!(f.no_answer, Some(NoAnswer::Hang));
    }

    #[test]
    fn fault_file_entries_round_trip() {
        let e = FaultEntry {
            namespace: "ns".into(),
            pod: Some("c-0-1".into()),
            cluster: None,
            no_answer: Some(NoAnswer::Refuse),
            delay_ms: None,
            stuck_migrations: false,
        };
        let text = serde_json::to_string(&vec![e.clone()]).unwrap();
        assert!(text.contains("\"no_answer\":\"refuse\""), "{text}");
        let back: Vec<FaultEntry> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, vec![e.clone()]);
        assert_eq!(e.target(), Some(FaultTarget::pod("ns", "c-0-1")));
        assert_eq!(e.fault(), Fault::refuse());
    }
}
