use super::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::asinfo::client::TcpInfoClient;
use crate::asinfo::server;

#[derive(Clone)]
struct FakeNode {
    up: bool,
    key: String,
    size: u64,
    integrity: bool,
    migrate_allowed: bool,
    remaining: u64,
    stable_answer: Option<String>,
    namespaces: Vec<String>,
    quiesce_answer: String,
    pending: bool,
    effective: bool,
    node_id: String,
    strong_consistency: bool,
    in_roster: bool,
}

impl FakeNode {
    fn new(i: usize, size: u64) -> Self {
        FakeNode {
            up: true,
            key: "A1B2C3".into(),
            size,
            integrity: true,
            migrate_allowed: true,
            remaining: 0,
            stable_answer: None,
            namespaces: vec!["test".into(), "bar".into()],
            quiesce_answer: "ok".into(),
            pending: false,
            effective: false,
            node_id: format!("0A{i}"),
            strong_consistency: false,
            in_roster: true,
        }
    }
}

/// An in-memory cluster: node 0 is the principal; `recluster:` turns pending into effective.
struct FakeCluster {
    nodes: Mutex<BTreeMap<SocketAddr, FakeNode>>,
    order: Vec<SocketAddr>,
    log: Mutex<Vec<(SocketAddr, String)>>,
    /// When false, recluster does not make quiesce effective (a stuck server).
    recluster_applies: bool,
}

impl FakeCluster {
    fn new(n: usize) -> Self {
        let order: Vec<SocketAddr> = (0..n).map(|i| format!("10.0.0.{}:3000", i + 5).parse().unwrap()).collect();
        let nodes = order.iter().enumerate().map(|(i, a)| (*a, FakeNode::new(i, n as u64))).collect();
        FakeCluster { nodes: Mutex::new(nodes), order, log: Mutex::new(Vec::new()), recluster_applies: true }
    }

    fn edit(&self, i: usize, f: impl FnOnce(&mut FakeNode)) {
        f(self.nodes.lock().unwrap().get_mut(&self.order[i]).unwrap());
    }

    fn node(&self, i: usize) -> FakeNode {
        self.nodes.lock().unwrap()[&self.order[i]].clone()
    }

    fn sent(&self, command: &str) -> Vec<SocketAddr> {
        self.log.lock().unwrap().iter().filter(|(_, c)| c == command).map(|(a, _)| *a).collect()
    }

    fn answer(&self, addr: SocketAddr, command: &str) -> Option<String> {
        let mut nodes = self.nodes.lock().unwrap();
        let quiesced = nodes.values().filter(|n| n.effective).count();
        if command == "recluster:" && self.recluster_applies {
            for n in nodes.values_mut() {
                n.effective = n.pending;
            }
        }
        let principal = self.order[0] == addr;
        let n = nodes.get_mut(&addr)?;
        Some(match command {
            "statistics" => format!(
                "cluster_key={};cluster_size={};cluster_integrity={};migrate_allowed={};\
                 migrate_partitions_remaining={};client_read_error=0",
                n.key, n.size, n.integrity, n.migrate_allowed, n.remaining
            ),
            c if c.starts_with("cluster-stable:") => n.stable_answer.clone().unwrap_or_else(|| n.key.clone()),
            "namespaces" => n.namespaces.join(";"),
            "build" => "7.2.0.1".into(),
            "node" => n.node_id.clone(),
            c if c.starts_with("get-config:context=namespace;namespace=") => {
                format!("replication-factor=2;strong-consistency={}", n.strong_consistency)
            }
            c if c.starts_with("roster:namespace=") => {
                let roster = if n.in_roster { format!("{}@1", n.node_id) } else { "Z9@1".into() };
                format!("roster={roster}:pending_roster=null:observed_nodes={roster}")
            }
            "quiesce:" => {
                if n.quiesce_answer == "ok" {
                    n.pending = true;
                }
                n.quiesce_answer.clone()
            }
            "quiesce-undo:" => {
                n.pending = false;
                "ok".into()
            }
            "recluster:" => if principal { "ok" } else { "ignored-by-non-principal" }.into(),
            c if c.starts_with("namespace/") => format!(
                "objects=1;pending_quiesce={};effective_is_quiesced={};nodes_quiesced={}",
                n.pending, n.effective, quiesced
            ),
            _ => return None,
        })
    }
}

impl InfoClient for FakeCluster {
    fn request<'a>(
        &'a self,
        addr: SocketAddr,
        commands: &'a [String],
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, InfoError>> {
        Box::pin(async move {
            let up = self.nodes.lock().unwrap().get(&addr).is_some_and(|n| n.up);
            if !up {
                return Err(InfoError::new(addr, commands.join(", "), InfoErrorKind::ConnectRefused));
            }
            let mut out = BTreeMap::new();
            for c in commands {
                self.log.lock().unwrap().push((addr, c.clone()));
                if let Some(v) = self.answer(addr, c) {
                    out.insert(c.clone(), v);
                }
            }
            Ok(out)
        })
    }
}

fn fast() -> QuiesceOptions {
    QuiesceOptions { poll_interval: Duration::from_millis(1), attempts: 3 }
}

#[tokio::test]
async fn stable_cluster_passes() {
    let c = FakeCluster::new(3);
    let stable = check_cluster_stable(&c, &c.order, 3).await.unwrap();
    assert_eq!(stable, StableCluster { cluster_key: "A1B2C3".into(), cluster_size: 3 });
}

#[tokio::test]
async fn mismatched_cluster_keys() {
    let c = FakeCluster::new(3);
    c.edit(2, |n| n.key = "FFFF".into());
    let err = check_cluster_stable(&c, &c.order, 3).await.unwrap_err();
    assert!(matches!(&err, SafetyError::ClusterKeyMismatch { node, key, .. } if *node == c.order[2] && key == "FFFF"));
    assert_eq!(
        err.to_string(),
        "node 10.0.0.7:3000 is in cluster FFFF but node 10.0.0.5:3000 is in cluster A1B2C3: \
         the nodes have not formed one cluster"
    );
}

#[tokio::test]
async fn size_mismatch() {
    let c = FakeCluster::new(3);
    // Only two of the three nodes queried: they still see three.
    let err = check_cluster_stable(&c, &c.order[..2], 2).await.unwrap_err();
    assert!(matches!(err, SafetyError::ClusterSizeMismatch { reported: 3, expected: 2, .. }));
    assert_eq!(err.to_string(), "node 10.0.0.5:3000 sees a cluster of 3 nodes but 2 nodes were queried");
    // Querying fewer nodes than the cluster should have is refused before any request.
    let err = check_cluster_stable(&c, &c.order[..2], 3).await.unwrap_err();
    assert!(matches!(err, SafetyError::NodeCountMismatch { queried: 2, expected: 3 }));
    assert!(matches!(check_cluster_stable(&c, &[], 0).await, Err(SafetyError::NoNodes)));
}

#[tokio::test]
async fn migrations_pending() {
    let c = FakeCluster::new(3);
    c.edit(1, |n| n.remaining = 17);
    let err = check_cluster_stable(&c, &c.order, 3).await.unwrap_err();
    assert!(matches!(err, SafetyError::MigrationsPending { node, remaining: 17 } if node == c.order[1]));
    assert_eq!(err.to_string(), "node 10.0.0.6:3000 still has 17 partition migrations to finish");
}

#[tokio::test]
async fn integrity_and_migrate_allowed() {
    let c = FakeCluster::new(2);
    c.edit(1, |n| n.integrity = false);
    let err = check_cluster_stable(&c, &c.order, 2).await.unwrap_err();
    assert!(matches!(err, SafetyError::IntegrityFault { node } if node == c.order[1]));
    c.edit(1, |n| {
        n.integrity = true;
        n.migrate_allowed = false;
    });
    let err = check_cluster_stable(&c, &c.order, 2).await.unwrap_err();
    assert!(matches!(err, SafetyError::MigrationsNotAllowed { node } if node == c.order[1]));
}

#[tokio::test]
async fn one_node_down() {
    let c = FakeCluster::new(3);
    c.edit(1, |n| n.up = false);
    let err = check_cluster_stable(&c, &c.order, 3).await.unwrap_err();
    assert!(matches!(err, SafetyError::Unreachable { node, .. } if node == c.order[1]));
    assert_eq!(err.to_string(), "node 10.0.0.6:3000 did not answer: connection refused");
    assert_eq!(err.node(), Some(c.order[1]));
}

#[tokio::test]
async fn malformed_statistics_is_failed_not_unreachable() {
    struct Bad;
    impl InfoClient for Bad {
        fn request<'a>(
            &'a self,
            _addr: SocketAddr,
            commands: &'a [String],
        ) -> BoxFuture<'a, Result<BTreeMap<String, String>, InfoError>> {
            Box::pin(async move { Ok(commands.iter().map(|c| (c.clone(), "cluster_size=1".into())).collect()) })
        }
    }
    let node: SocketAddr = "10.0.0.9:3000".parse().unwrap();
    let err = check_cluster_stable(&Bad, &[node], 1).await.unwrap_err();
    assert_eq!(err.to_string(), "node 10.0.0.9:3000 failed `statistics`: unexpected answer: cluster_key is missing");
}

/// The same check over real TCP against three `serve` instances, plus a stopped one.
#[tokio::test]
async fn stable_over_tcp() {
    let mut addrs = Vec::new();
    let mut servers = Vec::new();
    for remaining in [0, 0, 0] {
        let handler: Arc<dyn server::InfoHandler> = Arc::new(move |c: &str| match c {
            "statistics" => format!(
                "cluster_key=9F;cluster_size=3;cluster_integrity=true;migrate_allowed=true;\
                 migrate_partitions_remaining={remaining}"
            ),
            _ => String::new(),
        });
        let (addr, handle) = server::bind_and_spawn("127.0.0.1:0".parse().unwrap(), handler).await.unwrap();
        addrs.push(addr);
        servers.push(handle);
    }
    let client = TcpInfoClient::new(Duration::from_millis(500), Duration::from_millis(500));
    let stable = check_cluster_stable(&client, &addrs, 3).await.unwrap();
    assert_eq!(stable.cluster_key, "9F");

    servers[2].abort();
    let _ = (&mut servers[2]).await;
    let err = check_cluster_stable(&client, &addrs, 3).await.unwrap_err();
    assert!(matches!(err, SafetyError::Unreachable { node, .. } if node == addrs[2]), "{err}");
    assert_eq!(err.to_string(), format!("node {} did not answer: connection refused", addrs[2]));
    for s in servers {
        s.abort();
    }
}

#[tokio::test]
async fn cluster_stable_command_check() {
    let c = FakeCluster::new(3);
    assert_eq!(check_cluster_stable_command(&c, &c.order, None).await.unwrap(), "A1B2C3");
    assert_eq!(c.sent("cluster-stable:size=3;ignore-migrations=false").len(), 3);
    c.edit(1, |n| n.stable_answer = Some("ERROR::unstable-cluster".into()));
    let err = check_cluster_stable_command(&c, &c.order, None).await.unwrap_err();
    assert_eq!(err.to_string(), "node 10.0.0.6:3000 reports the cluster is not stable: ERROR::unstable-cluster");
    c.edit(1, |n| n.stable_answer = Some("B00B".into()));
    let err = check_cluster_stable_command(&c, &c.order, None).await.unwrap_err();
    assert!(matches!(err, SafetyError::ClusterKeyMismatch { .. }));
}

#[tokio::test]
async fn quiesce_batch_happy_path() {
    let c = FakeCluster::new(3);
    let batch = [c.order[1]];
    let outcome = quiesce_batch_with(&c, &c.order, &batch, fast()).await.unwrap();
    assert_eq!(outcome, QuiesceOutcome::Quiesced { cluster_key: "A1B2C3".into(), principal: c.order[0] });
    assert_eq!(c.sent("quiesce:"), vec![c.order[1]]);
    assert_eq!(c.sent("recluster:").len(), 3);
    let n = c.node(1);
    assert!(n.pending && n.effective);
    assert!(!c.node(0).pending && !c.node(2).pending);
    // Both namespaces were verified on the batch node, before and after recluster.
    assert_eq!(c.sent("namespace/test"), vec![c.order[1], c.order[1]]);
    assert_eq!(c.sent("namespace/bar"), vec![c.order[1], c.order[1]]);

    // Undo finds the node pending, undoes it and reclusters everyone.
    let undone = undo_quiesce(&c, &c.order).await.unwrap();
    assert_eq!(undone, vec![c.order[1]]);
    assert_eq!(c.sent("quiesce-undo:"), vec![c.order[1]]);
    assert_eq!(c.sent("recluster:").len(), 6);
    assert!(!c.node(1).pending && !c.node(1).effective);
    // Nothing left to undo: no further writes.
    assert!(undo_quiesce(&c, &c.order).await.unwrap().is_empty());
    assert_eq!(c.sent("quiesce-undo:").len(), 1);
    assert_eq!(c.sent("recluster:").len(), 6);
}

#[tokio::test]
async fn quiesce_rejected_by_node() {
    let c = FakeCluster::new(3);
    c.edit(2, |n| n.quiesce_answer = "ERROR::quiesce-not-allowed".into());
    let batch = [c.order[1], c.order[2]];
    let err = quiesce_batch_with(&c, &c.order, &batch, fast()).await.unwrap_err();
    assert!(matches!(&err, SafetyError::Failed { node, .. } if *node == c.order[2]), "{err}");
    assert_eq!(err.to_string(), "node 10.0.0.7:3000 failed `quiesce:`: the node answered ERROR::quiesce-not-allowed");
    // Node 1 was marked before node 2 refused; no recluster happened.
    assert_eq!(c.sent("quiesce:"), vec![c.order[1], c.order[2]]);
    assert!(c.sent("recluster:").is_empty());
    assert!(c.node(1).pending && !c.node(1).effective);
}

#[tokio::test]
async fn quiesce_refused_before_side_effects() {
    // Unstable cluster: nothing is quiesced.
    let c = FakeCluster::new(3);
    c.edit(0, |n| n.stable_answer = Some("ERROR::cluster-not-specified-size".into()));
    let err = quiesce_batch_with(&c, &c.order, &[c.order[1]], fast()).await.unwrap_err();
    assert!(matches!(err, SafetyError::Unstable { .. }));
    assert!(c.sent("quiesce:").is_empty());

    // Whole cluster, node outside the cluster, single node, empty batch.
    let c = FakeCluster::new(2);
    let err = quiesce_batch_with(&c, &c.order, &c.order, fast()).await.unwrap_err();
    assert!(matches!(err, SafetyError::BatchIsWholeCluster { size: 2 }));
    let stranger: SocketAddr = "10.9.9.9:3000".parse().unwrap();
    let err = quiesce_batch_with(&c, &c.order, &[stranger], fast()).await.unwrap_err();
    assert_eq!(err.to_string(), "node 10.9.9.9:3000 is in the quiesce batch but not among the cluster nodes");
    let out = quiesce_batch_with(&c, &c.order[..1], &c.order[..1], fast()).await.unwrap();
    assert!(matches!(out, QuiesceOutcome::Skipped { .. }));
    let out = quiesce_batch_with(&c, &c.order, &[], fast()).await.unwrap();
    assert!(matches!(out, QuiesceOutcome::Skipped { .. }));
    assert!(c.log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn quiesce_not_effective_after_recluster() {
    let mut c = FakeCluster::new(3);
    c.recluster_applies = false;
    let err = quiesce_batch_with(&c, &c.order, &[c.order[2]], fast()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "namespace test on node 10.0.0.7:3000 is not quiesced after recluster \
         (effective_is_quiesced=false, nodes_quiesced=0)"
    );
    // Polled `attempts` times.
    assert_eq!(c.sent("namespace/test").len(), 1 + 3);
}

#[tokio::test]
async fn sc_namespace_outside_roster_is_not_verified() {
    let c = FakeCluster::new(3);
    c.edit(1, |n| {
        n.strong_consistency = true;
        n.in_roster = false;
    });
    quiesce_batch_with(&c, &c.order, &[c.order[1]], fast()).await.unwrap();
    assert!(c.sent("namespace/test").is_empty());
    assert_eq!(c.sent("roster:namespace=test"), vec![c.order[1]]);
    assert_eq!(c.sent("node"), vec![c.order[1]]);
}

#[tokio::test]
async fn undo_changes_nothing_when_a_node_cannot_report() {
    let c = FakeCluster::new(3);
    c.edit(0, |n| n.pending = true);
    c.edit(2, |n| n.up = false);
    let err = undo_quiesce(&c, &c.order).await.unwrap_err();
    assert!(matches!(err, SafetyError::Unreachable { node, .. } if node == c.order[2]));
    assert!(c.sent("quiesce-undo:").is_empty());
    assert!(c.node(0).pending);
}

#[tokio::test]
async fn recluster_without_principal() {
    let c = FakeCluster::new(3);
    let err = recluster_all(&c, &c.order[1..]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no node answered `recluster:` with ok (only the principal does): \
         10.0.0.6:3000 answered ignored-by-non-principal, 10.0.0.7:3000 answered ignored-by-non-principal"
    );
}
