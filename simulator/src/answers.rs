//! The answers: every info command the operator sends, answered from the simulated state, and the node's
//! [`InfoHandler`].
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aerospike_kubernetes_operator::asinfo::InfoHandler;

use crate::model::{Inner, PodKey, State, What};

impl State {
    /// The answer of node `key` (incarnation `uid`) to one request line.
    pub(crate) fn answer(&mut self, key: &PodKey, uid: &str, command: &str, duration: Duration) -> String {
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
            "service" if node.plain => format!("{}:{}", node.ip, node.port),
            "service" => String::new(),
            // What the pod's aerospike.conf advertises (access addresses and ports), as a server answers.
            "service-clear-std" if node.plain => node.advertised.clear_std.join(";"),
            "service-clear-alt" if node.plain => node.advertised.clear_alt.join(";"),
            "service-clear-std" | "service-clear-alt" => String::new(),
            "service-tls-std" if node.tls.is_some() => node.advertised.tls_std.join(";"),
            "service-tls-alt" if node.tls.is_some() => node.advertised.tls_alt.join(";"),
            "service-tls-std" | "service-tls-alt" => String::new(),
            "features" => crate::partitions::FEATURES.into(),
            "partition-generation" | "peers-generation" | "rebalance-generation" => cluster.generation.to_string(),
            "peers-clear-std" | "peers-clear-alt" => self.peers(key, &cluster_key, false),
            "peers-tls-std" | "peers-tls-alt" => self.peers(key, &cluster_key, true),
            "replicas" | "replicas-all" | "replicas-master" => self.replicas(key, &cluster_key, name),
            "rack-ids" => cluster.spec.namespaces.iter().map(|ns| format!("{}:{};", ns.name, node.rack_id)).collect(),
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
                     client_connections=1;uptime=1;objects=0;system_free_mem_pct=80;heap_efficiency_pct=100",
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
                let unavailable = self.unavailable_partitions(&cluster_key, &info);
                let dead = if info.strong_consistency { self.dead_partitions(&cluster_key) } else { 0 };
                let stop_writes = self.fault_of(key).stop_writes;
                format!(
                    "objects=0;master_objects=0;prole_objects=0;replication-factor={rf};\
                     effective_replication_factor={erf};strong-consistency={sc};stop_writes={stop_writes};\
                     hwm_breached=false;unavailable_partitions={unavailable};dead_partitions={dead};\
                     migrate_tx_partitions_remaining={remaining};migrate_rx_partitions_remaining={remaining};\
                     pending_quiesce={};effective_is_quiesced={};nodes_quiesced={quiesced};\
                     clock_skew_stop_writes=false;data_used_pct=1;data_avail_pct=99;\
                     storage-engine.stop-writes-avail-pct=5;storage-engine.stop-writes-used-pct=70;\
                     stop-writes-sys-memory-pct=90",
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
                        match params.get("set") {
                            Some(set) => format!("namespace:{ns}:set:{set}"),
                            None => {
                                values.insert("replication-factor".into(), info.replication_factor.to_string());
                                values.insert("strong-consistency".into(), info.strong_consistency.to_string());
                                values.insert("rack-id".into(), node.rack_id.to_string());
                                format!("namespace:{ns}")
                            }
                        }
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
                if self.fault_of(key).refuse_set_config {
                    return "ERROR:4:refused".into();
                }
                let node = self.nodes.get_mut(key).expect("checked");
                for (k, v) in rest {
                    if let Err(refusal) = crate::config::set(&mut node.config, &scope, &k, &v, &node.build) {
                        return refusal;
                    }
                }
                "ok".into()
            }
            "logs" => {
                let mut sinks: Vec<&str> =
                    node.config.keys().filter_map(|s| s.strip_prefix("log:")).filter(|s| *s != "stderr").collect();
                sinks.insert(0, "stderr");
                sinks.iter().enumerate().map(|(i, s)| format!("{i}:{s}")).collect::<Vec<_>>().join(";")
            }
            "log-set" => {
                let mut sinks: Vec<String> = node
                    .config
                    .keys()
                    .filter_map(|s| s.strip_prefix("log:"))
                    .filter(|s| *s != "stderr")
                    .map(str::to_string)
                    .collect();
                sinks.insert(0, "stderr".into());
                let Some(sink) = params.get("id").and_then(|id| id.parse::<usize>().ok()).and_then(|i| sinks.get(i))
                else {
                    return "ERROR::bad-sink-id".into();
                };
                if self.fault_of(key).refuse_set_config {
                    return "ERROR:4:refused".into();
                }
                let scope = format!("log:{sink}");
                let node = self.nodes.get_mut(key).expect("checked");
                for (k, v) in params.iter().filter(|(k, _)| *k != "id") {
                    if let Err(refusal) = crate::config::set(&mut node.config, &scope, k, v, &node.build) {
                        return refusal;
                    }
                }
                "ok".into()
            }
            "tip-clear" | "services-alumni-reset" | "tip" | "peers-reset" => "ok".into(),
            "latencies" | "latency" => String::new(),
            // No records are simulated, so there are no sets.
            "sets" => String::new(),
            _ if name.starts_with("sets/") => String::new(),
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

/// `k=v;k=v` after the command name.
pub(crate) fn parse_params(p: &str) -> BTreeMap<String, String> {
    p.split(';')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

/// The answering side of one node: the operator's [`InfoHandler`] over the shared state.
pub(crate) struct NodeHandler {
    pub(crate) inner: Arc<Inner>,
    pub(crate) key: PodKey,
    pub(crate) uid: String,
    /// Security is enabled: info needs a LOGIN as `admin` with the simulator's current admin password.
    pub(crate) secured: bool,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::new_cluster_key;

    #[test]
    fn params_and_keys() {
        let p = parse_params("size=3;ignore-migrations=false;namespace=test");
        assert_eq!(p["size"], "3");
        assert_eq!(p["namespace"], "test");
        let k = new_cluster_key();
        assert_eq!(k.len(), 12);
        assert!(k.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
