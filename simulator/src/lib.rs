//! An Aerospike simulator: for every running pod of an AerospikeCluster (label `app=aerospike-cluster`) it listens
//! on `<podIP>:<service port>` and answers the info protocol the operator speaks (see
//! `aerospike_kubernetes_operator::asinfo`), from a simulated cluster state.
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
//! - security: when `spec.aerospikeConfig` has a `security` section, nodes speak the admin protocol (module
//!   `admin`) over per-cluster users, roles and sessions (module `security`, kept while nodes restart): LOGIN and
//!   AUTHENTICATE, user and role administration, queries, with the server's result codes and role checks
//!   (`user-admin` for administration). The user `admin` starts with [`SimulatorOptions::admin_password`]
//!   ("admin" unless set; [`Simulator::set_admin_password`] changes it on every cluster). Info requests are answered
//!   only on a connection that logged in (otherwise it is closed); a wrong password gets result 65. Without
//!   security, every admin command is answered 52 (security not enabled), which clients accept as a login.
//!   [`Simulator::users_of`] and [`Simulator::roles_of`] show the store;
//! - TLS (module `tls`): a service with a `tls-port` is served over TLS with the certificate its `network.tls`
//!   entry names, read from the Secret volumes mounted at those paths; client certificates are required as
//!   `tls-authenticate-client` says. Both the plain and the TLS port listen when both are configured;
//! - what official clients tend by (module `partitions`): peers lists, generations, features, rack ids and the
//!   partition maps (4096 partitions, one master each among the members sorted by node id). The official Rust,
//!   Python and Go clients judge all this in tests/official_clients.rs.
//!
//! - the exporter sidecar (module `exporter`): a pod with a container port named `exporter` is served
//!   `http://<podIP>:<port>/metrics` with the official aerospike-prometheus-exporter's metric names and labels,
//!   read from the node's own info answers (`aerospike_node_up` 0 while a fault keeps the node from answering).
//!
//! Fault knobs ([`Fault`]), per pod or per cluster, set in-process ([`Simulator::set_fault`]) or through a JSON file
//! that the `cargo xtask simulator fault` command writes: a node that accepts connections and never answers
//! ([`NoAnswer::Hang`]) or refuses them ([`NoAnswer::Refuse`]), migrations that never finish, slow answers.
//! Every request line is recorded per pod ([`Simulator::commands_for`], [`Simulator::history_for`]).
//!
//! Answers are computed by an [`InfoHandler`](aerospike_kubernetes_operator::asinfo::InfoHandler) (the operator's
//! info-server trait) per node; the connection loop is our own rather than `asinfo::server::serve`, because the fault
//! knobs need to delay or withhold answers and to stop listening.
//!
//! Modules: `model` (the simulated clusters, nodes and options), `answers` (every info command answered from the
//! model), `partitions` (partition maps and peers), `exporter` (the exporter sidecar's /metrics), `admin` and `security` (the admin protocol and its state),
//! `pods` (the pod watcher: joins and leaves), `server` (one listener per node, admin messages, fault knobs on each
//! connection), `faults` (the knobs and the faults file). [`Simulator`] is the handle; the command line (`cargo
//! xtask simulator run|fault|faults`) lives in xtask.
mod admin;
mod answers;
pub mod backup_service;
mod config;
mod exec;
mod exporter;
mod faults;
mod model;
mod partitions;
mod podinit;
mod pods;
mod security;
mod server;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use kube::Client;
use tokio::task::JoinHandle;

pub use exporter::EXPORTER_PORT_NAME;
pub use faults::{Fault, FaultEntry, FaultTarget, NoAnswer, read_faults_file, write_faults_file};
use model::{Inner, State};
pub use model::{Recorded, SimulatorOptions, What};
pub use pods::POD_SELECTOR;
use pods::{watch_config_maps, watch_pods};
pub use security::{PRIVILEGES, RolePrivilege, SecurityRole, SecurityUser, privilege_name};

/// Written into the state folder by `simulator run` once it watches pods.
pub const READY_FILE: &str = "simulator.ready";
/// The faults file in the state folder (`cargo xtask simulator fault` writes it, the simulator polls it).
pub const FAULTS_FILE: &str = "simulator-faults.json";

/// Applies the faults file whenever it changes (polled every 250 ms).
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

/// The simulator. Stops on [`Simulator::stop`] or drop.
pub struct Simulator {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
    /// The simulated backup services (one per AerospikeBackupService Deployment) and clusters' record counts.
    pub backup: backup_service::BackupSims,
}

impl Simulator {
    /// Starts watching pods; returns once the initial list is processed (or after 10 s if the apiserver is slow).
    pub async fn start(client: Client, opts: SimulatorOptions) -> Simulator {
        let (faults_changed, _) = tokio::sync::watch::channel(0u64);
        let (config_maps_changed, _) = tokio::sync::watch::channel(0u64);
        let (config_maps, config_map_writer) = kube::runtime::reflector::store();
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            opts: Mutex::new(opts.clone()),
            faults_changed,
            exec: Default::default(),
            config_maps,
            config_maps_changed,
        });
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
        let members = inner.clone();
        let backup = backup_service::BackupSims::new(move |ns, cluster| {
            members.lock().clusters.get(&(ns.to_string(), cluster.to_string())).is_some_and(|c| !c.members.is_empty())
        });
        let mut tasks = Vec::new();
        // Exec first: a pod's Exec object is applied when it joins.
        match exec::start(inner.clone(), client.clone(), opts.clone()).await {
            Ok((endpoint, task)) => {
                let _ = inner.exec.set(endpoint);
                tasks.push(task);
            }
            Err(e) => eprintln!("simulator: no exec in simulated pods: {e}"),
        }
        tasks.extend([
            tokio::spawn(watch_config_maps(inner.clone(), client.clone(), opts.namespace.clone(), config_map_writer)),
            tokio::spawn(watch_pods(inner.clone(), client.clone(), opts.clone(), synced_tx)),
            tokio::spawn(backup_service::watch(backup.clone(), client, opts.namespace.clone())),
        ]);
        if let Some(file) = opts.faults_file.clone() {
            tasks.push(tokio::spawn(poll_faults_file(inner.clone(), file)));
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), synced_rx).await;
        Simulator { inner, tasks, backup }
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

    /// Changes the password of the user `admin` on every secured cluster, from the next login on (as if access
    /// control changed it behind the operator's back), and the one clusters secured from now on start with.
    pub fn set_admin_password(&self, password: &str) {
        self.inner.opts.lock().unwrap_or_else(|e| e.into_inner()).admin_password = password.to_string();
        for security in self.inner.lock().security.values_mut() {
            if let Some(admin) = security.users.get_mut(aerospike_kubernetes_operator::asinfo::auth::DEFAULT_ADMIN_USER)
            {
                admin.credential = None; // the option's password
            }
        }
    }

    /// The users of a secured AerospikeCluster, by name (empty until a node of it first saw an admin message).
    pub fn users_of(&self, namespace: &str, cluster: &str) -> Vec<SecurityUser> {
        let state = self.inner.lock();
        state.security.get(&(namespace.to_string(), cluster.to_string())).map(|s| s.all_users()).unwrap_or_default()
    }

    /// The roles of a secured AerospikeCluster: the predefined ones, then those created, by name.
    pub fn roles_of(&self, namespace: &str, cluster: &str) -> Vec<SecurityRole> {
        let state = self.inner.lock();
        state.security.get(&(namespace.to_string(), cluster.to_string())).map(|s| s.all_roles()).unwrap_or_default()
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

    /// How many times `pod`'s server was restarted in place (exec `warm-restart`), over all its incarnations.
    pub fn warm_restarts(&self, pod: &str) -> usize {
        self.history_for(pod).iter().filter(|r| r.what == What::WarmRestarted).count()
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

    /// The info address of a member pod (its TLS address when the service is TLS only).
    pub fn node_addr(&self, namespace: &str, pod: &str) -> Option<SocketAddr> {
        self.inner.lock().nodes.get(&(namespace.to_string(), pod.to_string())).map(|n| SocketAddr::new(n.ip, n.port))
    }

    /// The TLS address and tls-name of a member pod whose service has a `tls-port`.
    pub fn node_tls(&self, namespace: &str, pod: &str) -> Option<(SocketAddr, String)> {
        let state = self.inner.lock();
        let n = state.nodes.get(&(namespace.to_string(), pod.to_string()))?;
        n.tls.as_ref().map(|(port, name)| (SocketAddr::new(n.ip, *port), name.clone()))
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
        self.backup.stop();
        if let Some(endpoint) = self.inner.exec.get() {
            let _ = std::fs::remove_file(&endpoint.script);
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
