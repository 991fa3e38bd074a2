//! Checks the reconciler runs before destructive steps (restarts, scale-down), and the quiesce
//! sequence around them.
//!
//! Every failure is a [`SafetyError`] whose message names the node and the reason in plain words,
//! because it is copied verbatim into Kubernetes conditions and Events.
//!
//! Nodes are queried concurrently; when several fail, the error reported is the first in the order
//! of the `nodes` slice, so repeated reconciles report the same problem.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures::future::join_all;

use super::client::{InfoClient, InfoError, InfoErrorKind};
use super::ops::{AerospikeNode, NamespaceStats, Recluster};

/// Why a destructive step must not run now.
#[derive(Debug, thiserror::Error)]
pub enum SafetyError {
    #[error("no Aerospike nodes to check")]
    NoNodes,
    #[error("{queried} Aerospike nodes were queried but the cluster should have {expected}")]
    NodeCountMismatch { queried: usize, expected: usize },
    /// The node could not be reached or stopped answering.
    #[error("node {node} did not answer: {}", .cause.kind)]
    Unreachable { node: SocketAddr, cause: InfoError },
    /// The node answered with an error or something we cannot use.
    #[error("node {node} failed `{}`: {}", .cause.command, .cause.kind)]
    Failed { node: SocketAddr, cause: InfoError },
    #[error(
        "node {node} is in cluster {key} but node {reference_node} is in cluster {reference_key}: \
         the nodes have not formed one cluster"
    )]
    ClusterKeyMismatch { node: SocketAddr, key: String, reference_node: SocketAddr, reference_key: String },
    #[error("node {node} sees a cluster of {reported} nodes but {expected} nodes were queried")]
    ClusterSizeMismatch { node: SocketAddr, reported: u64, expected: usize },
    #[error("node {node} reports cluster_integrity=false: the cluster is split or still forming")]
    IntegrityFault { node: SocketAddr },
    #[error("node {node} does not allow migrations yet (migrate_allowed=false)")]
    MigrationsNotAllowed { node: SocketAddr },
    #[error("node {node} still has {remaining} partition migrations to finish")]
    MigrationsPending { node: SocketAddr, remaining: u64 },
    #[error("node {node} reports the cluster is not stable: {answer}")]
    Unstable { node: SocketAddr, answer: String },
    #[error("node {node} is in the quiesce batch but not among the cluster nodes")]
    BatchNodeNotInCluster { node: SocketAddr },
    #[error("the quiesce batch contains all {size} nodes; at least one node must stay unquiesced")]
    BatchIsWholeCluster { size: usize },
    #[error("node {node} did not mark namespace {namespace} for quiesce (pending_quiesce={observed})")]
    QuiesceNotPending { node: SocketAddr, namespace: String, observed: String },
    #[error(
        "namespace {namespace} on node {node} is not quiesced after recluster \
         (effective_is_quiesced={effective}, nodes_quiesced={nodes_quiesced})"
    )]
    QuiesceNotEffective { node: SocketAddr, namespace: String, effective: String, nodes_quiesced: String },
    #[error("no node answered `recluster:` with ok (only the principal does): {answers}")]
    NoPrincipal { node: SocketAddr, answers: String },
    /// A strong-consistency namespace cannot serve some partitions: taking a node down now could lose data or
    /// availability. Dead partitions are never revived by the operator.
    #[error(
        "strong-consistency namespace {namespace} on node {node} has {unavailable} unavailable and {dead} dead \
         partitions"
    )]
    PartitionsUnavailable { node: SocketAddr, namespace: String, unavailable: u64, dead: u64 },
}

impl SafetyError {
    /// Wraps an info failure: unreachable nodes become [`SafetyError::Unreachable`], bad answers
    /// [`SafetyError::Failed`].
    pub fn from_info(cause: InfoError) -> Self {
        let node = cause.addr;
        if cause.is_unreachable() {
            SafetyError::Unreachable { node, cause }
        } else {
            SafetyError::Failed { node, cause }
        }
    }

    /// The node the error is about, if it is about one.
    pub fn node(&self) -> Option<SocketAddr> {
        use SafetyError::*;
        match self {
            NoNodes | NodeCountMismatch { .. } | BatchIsWholeCluster { .. } => None,
            Unreachable { node, .. }
            | Failed { node, .. }
            | ClusterKeyMismatch { node, .. }
            | ClusterSizeMismatch { node, .. }
            | IntegrityFault { node }
            | MigrationsNotAllowed { node }
            | MigrationsPending { node, .. }
            | Unstable { node, .. }
            | BatchNodeNotInCluster { node }
            | QuiesceNotPending { node, .. }
            | QuiesceNotEffective { node, .. }
            | NoPrincipal { node, .. }
            | PartitionsUnavailable { node, .. } => Some(*node),
        }
    }
}

impl From<InfoError> for SafetyError {
    fn from(cause: InfoError) -> Self {
        SafetyError::from_info(cause)
    }
}

/// What a successful stability check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StableCluster {
    pub cluster_key: String,
    pub cluster_size: usize,
}

/// Runs `f` on every node concurrently; results in node order, first error (in node order) wins.
async fn on_all<T, F, Fut>(nodes: &[SocketAddr], f: F) -> Result<Vec<T>, SafetyError>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = Result<T, InfoError>>,
{
    let f = &f;
    join_all(nodes.iter().map(|&node| f(node)))
        .await
        .into_iter()
        .collect::<Result<Vec<T>, InfoError>>()
        .map_err(SafetyError::from_info)
}

/// Reads `statistics` from every node and requires: every node answers; `nodes.len()` equals
/// `expected_size` (the size the cluster should have, so a missing pod is not mistaken for a
/// smaller healthy cluster); the same cluster_key everywhere; cluster_size equal to the number of
/// nodes queried; cluster_integrity true; migrate_allowed true (when reported); and
/// migrate_partitions_remaining 0 on all. Checks are applied in that order over all nodes.
pub async fn check_cluster_stable(
    client: &dyn InfoClient,
    nodes: &[SocketAddr],
    expected_size: usize,
) -> Result<StableCluster, SafetyError> {
    if nodes.is_empty() {
        return Err(SafetyError::NoNodes);
    }
    if nodes.len() != expected_size {
        return Err(SafetyError::NodeCountMismatch { queried: nodes.len(), expected: expected_size });
    }
    let stats = on_all(nodes, |node| async move { AerospikeNode::new(client, node).statistics().await }).await?;
    let all = || nodes.iter().copied().zip(stats.iter());

    let (reference_node, reference) = (nodes[0], &stats[0]);
    if let Some((node, s)) = all().find(|(_, s)| s.cluster_key != reference.cluster_key) {
        return Err(SafetyError::ClusterKeyMismatch {
            node,
            key: s.cluster_key.clone(),
            reference_node,
            reference_key: reference.cluster_key.clone(),
        });
    }
    if let Some((node, s)) = all().find(|(_, s)| s.cluster_size != nodes.len() as u64) {
        return Err(SafetyError::ClusterSizeMismatch { node, reported: s.cluster_size, expected: nodes.len() });
    }
    if let Some((node, _)) = all().find(|(_, s)| !s.cluster_integrity) {
        return Err(SafetyError::IntegrityFault { node });
    }
    if let Some((node, _)) = all().find(|(_, s)| s.migrate_allowed == Some(false)) {
        return Err(SafetyError::MigrationsNotAllowed { node });
    }
    if let Some((node, s)) = all().find(|(_, s)| s.migrate_partitions_remaining > 0) {
        return Err(SafetyError::MigrationsPending { node, remaining: s.migrate_partitions_remaining });
    }
    Ok(StableCluster { cluster_key: reference.cluster_key.clone(), cluster_size: nodes.len() })
}

/// Sends `cluster-stable:size=<nodes.len()>;ignore-migrations=false[;namespace=ns]` to every node
/// and requires the same key from all; returns it. An answer containing `error` is
/// [`SafetyError::Unstable`].
pub async fn check_cluster_stable_command(
    client: &dyn InfoClient,
    nodes: &[SocketAddr],
    namespace: Option<&str>,
) -> Result<String, SafetyError> {
    if nodes.is_empty() {
        return Err(SafetyError::NoNodes);
    }
    let size = nodes.len();
    let keys = on_all(nodes, |node| async move {
        match AerospikeNode::new(client, node).cluster_stable(size, namespace).await {
            Err(InfoError { kind: InfoErrorKind::Server(answer), .. }) => Ok(Err((node, answer))),
            other => other.map(Ok),
        }
    })
    .await?
    .into_iter()
    .collect::<Result<Vec<String>, _>>()
    .map_err(|(node, answer)| SafetyError::Unstable { node, answer })?;
    if let Some((node, key)) = nodes.iter().zip(&keys).find(|(_, k)| **k != keys[0]) {
        return Err(SafetyError::ClusterKeyMismatch {
            node: *node,
            key: key.clone(),
            reference_node: nodes[0],
            reference_key: keys[0].clone(),
        });
    }
    Ok(keys[0].clone())
}

/// Sends `recluster:` to every node; one of them (the principal) must answer `ok`. Returns the
/// principal.
pub async fn recluster_all(client: &dyn InfoClient, nodes: &[SocketAddr]) -> Result<SocketAddr, SafetyError> {
    let Some(&first) = nodes.first() else {
        return Err(SafetyError::NoNodes);
    };
    let answers = on_all(nodes, |node| async move { AerospikeNode::new(client, node).recluster().await }).await?;
    if let Some((node, _)) = nodes.iter().zip(&answers).find(|(_, a)| **a == Recluster::Principal) {
        return Ok(*node);
    }
    let answers = nodes
        .iter()
        .zip(&answers)
        .map(|(node, a)| match a {
            Recluster::Principal => format!("{node} answered ok"),
            Recluster::NonPrincipal => format!("{node} answered ignored-by-non-principal"),
            Recluster::Other(v) => format!("{node} answered {v}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(SafetyError::NoPrincipal { node: first, answers })
}

/// Every node serves every partition of the strong-consistency `namespaces` (no unavailable or dead partitions).
pub async fn check_partitions_available(
    client: &dyn InfoClient,
    nodes: &[SocketAddr],
    namespaces: &[String],
) -> Result<(), SafetyError> {
    for namespace in namespaces {
        let stats =
            on_all(nodes, |node| async move { AerospikeNode::new(client, node).namespace_stats(namespace).await })
                .await?;
        for (node, s) in nodes.iter().zip(stats) {
            let (unavailable, dead) = (s.unavailable_partitions.unwrap_or(0), s.dead_partitions.unwrap_or(0));
            if unavailable > 0 || dead > 0 {
                return Err(SafetyError::PartitionsUnavailable {
                    node: *node,
                    namespace: namespace.clone(),
                    unavailable,
                    dead,
                });
            }
        }
    }
    Ok(())
}

/// Brings the roster of each strong-consistency namespace to `desired(observed nodes)` (see `crate::roster`):
/// `roster-set` on every node, then one `recluster:`. Returns the namespaces whose roster was set (empty when all
/// were current: nothing is sent then).
pub async fn set_rosters(
    client: &dyn InfoClient,
    nodes: &[SocketAddr],
    namespaces: &[String],
    desired: impl Fn(&[String]) -> Vec<String>,
) -> Result<Vec<String>, SafetyError> {
    let Some(&first) = nodes.first() else { return Err(SafetyError::NoNodes) };
    let mut changed = Vec::new();
    for namespace in namespaces {
        let current = AerospikeNode::new(client, first).roster(namespace).await?;
        let want = desired(&current.observed_nodes);
        if want.is_empty() || !crate::roster::needs_set(&current.roster, &current.pending_roster, &want) {
            continue;
        }
        let want = &want;
        on_all(nodes, |node| async move { AerospikeNode::new(client, node).roster_set(namespace, want).await }).await?;
        changed.push(namespace.clone());
    }
    if !changed.is_empty() {
        recluster_all(client, nodes).await?;
    }
    Ok(changed)
}

/// How long [`quiesce_batch_with`] waits for the server to reflect each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuiesceOptions {
    /// Pause between two reads of `namespace/<ns>`.
    pub poll_interval: Duration,
    /// Reads per (node, namespace) and step before giving up.
    pub attempts: u32,
}

impl Default for QuiesceOptions {
    /// 30 reads 1 s apart per step (the reference polls 30 times, 2 s apart).
    fn default() -> Self {
        QuiesceOptions { poll_interval: Duration::from_secs(1), attempts: 30 }
    }
}

/// Result of a successful [`quiesce_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuiesceOutcome {
    /// The batch is quiesced: its nodes hold no partitions any more.
    Quiesced { cluster_key: String, principal: SocketAddr },
    /// Nothing was sent: quiesce only makes sense with at least two nodes, and an empty batch has
    /// nothing to quiesce.
    Skipped { reason: &'static str },
}

/// [`quiesce_batch_with`] with [`QuiesceOptions::default`].
pub async fn quiesce_batch(
    client: &dyn InfoClient,
    all_nodes: &[SocketAddr],
    batch: &[SocketAddr],
) -> Result<QuiesceOutcome, SafetyError> {
    quiesce_batch_with(client, all_nodes, batch, QuiesceOptions::default()).await
}

/// Quiesces `batch` (a subset of `all_nodes`) before restarting or removing it:
///
/// 1. validation and read-only checks, no side effects: the batch is a proper subset;
///    `cluster-stable` agrees on all nodes; each batch node lists its namespaces; namespaces with
///    strong consistency are only verified where the node is in the roster (a node outside the
///    roster holds no partitions of that namespace, so it never reports them quiesced);
/// 2. `quiesce:` on each batch node, in order; stops at the first failure, leaving the earlier
///    batch nodes marked (pending only: nothing moves until a recluster);
/// 3. waits for `pending_quiesce=true` on every (batch node, namespace);
/// 4. `recluster:` on all nodes (one must be the principal): from here partitions move away;
/// 5. waits for `effective_is_quiesced=true` and `nodes_quiesced>=1`.
///
/// On error after step 2 the batch stays (pending or effectively) quiesced: nodes keep serving
/// proxied traffic and nothing is lost, and [`undo_quiesce`], which the reconciler runs on every
/// pass, reverts it. With fewer than two nodes or an empty batch nothing is sent.
pub async fn quiesce_batch_with(
    client: &dyn InfoClient,
    all_nodes: &[SocketAddr],
    batch: &[SocketAddr],
    options: QuiesceOptions,
) -> Result<QuiesceOutcome, SafetyError> {
    if batch.is_empty() {
        return Ok(QuiesceOutcome::Skipped { reason: "the batch is empty" });
    }
    if let Some(&node) = batch.iter().find(|n| !all_nodes.contains(n)) {
        return Err(SafetyError::BatchNodeNotInCluster { node });
    }
    if all_nodes.len() < 2 {
        return Ok(QuiesceOutcome::Skipped { reason: "a single-node cluster has no node to hand partitions to" });
    }
    // Duplicates in the batch are ignored.
    let batch: Vec<SocketAddr> = {
        let mut seen = BTreeSet::new();
        batch.iter().copied().filter(|n| seen.insert(*n)).collect()
    };
    if batch.len() >= all_nodes.iter().collect::<BTreeSet<_>>().len() {
        return Err(SafetyError::BatchIsWholeCluster { size: all_nodes.len() });
    }

    // 1. Read-only checks.
    let cluster_key = check_cluster_stable_command(client, all_nodes, None).await?;
    let plan = on_all(&batch, |node| namespaces_to_verify(client, node)).await?;
    tracing::info!(batch = ?batch, %cluster_key, "quiescing Aerospike nodes");

    // 2. Quiesce.
    for &node in &batch {
        AerospikeNode::new(client, node).quiesce().await?;
    }

    // 3. Pending on every batch node.
    for (&node, namespaces) in batch.iter().zip(&plan) {
        for ns in namespaces {
            wait_for(
                client,
                node,
                ns,
                options,
                |s| s.pending_quiesce == Some(true),
                |s| SafetyError::QuiesceNotPending { node, namespace: ns.clone(), observed: show(s.pending_quiesce) },
            )
            .await?;
        }
    }

    // 4. Recluster.
    let principal = recluster_all(client, all_nodes).await?;

    // 5. Effective.
    for (&node, namespaces) in batch.iter().zip(&plan) {
        for ns in namespaces {
            wait_for(
                client,
                node,
                ns,
                options,
                |s| s.effective_is_quiesced == Some(true) && s.nodes_quiesced.is_some_and(|n| n >= 1),
                |s| SafetyError::QuiesceNotEffective {
                    node,
                    namespace: ns.clone(),
                    effective: show(s.effective_is_quiesced),
                    nodes_quiesced: show(s.nodes_quiesced),
                },
            )
            .await?;
        }
    }
    tracing::info!(batch = ?batch, %principal, "Aerospike nodes quiesced");
    Ok(QuiesceOutcome::Quiesced { cluster_key, principal })
}

/// Whether every node of `batch` reports `effective_is_quiesced=true` for each namespace it holds partitions of
/// (the namespaces [`quiesce_batch_with`] verifies): a quiesce sent earlier has taken effect.
pub async fn effectively_quiesced(client: &dyn InfoClient, batch: &[SocketAddr]) -> Result<bool, SafetyError> {
    let plan = on_all(batch, |node| namespaces_to_verify(client, node)).await?;
    for (&node, namespaces) in batch.iter().zip(&plan) {
        for ns in namespaces {
            let stats = AerospikeNode::new(client, node).namespace_stats(ns).await.map_err(SafetyError::from_info)?;
            if stats.effective_is_quiesced != Some(true) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn show<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "missing".to_string(), |v| v.to_string())
}

/// The namespaces of `node` whose quiesce state must be verified.
async fn namespaces_to_verify(client: &dyn InfoClient, addr: SocketAddr) -> Result<Vec<String>, InfoError> {
    let node = AerospikeNode::new(client, addr);
    let namespaces = node.namespaces().await?;
    if namespaces.is_empty() {
        return Ok(namespaces);
    }
    let version = node.build().await?;
    let mut node_id = None;
    let mut out = Vec::with_capacity(namespaces.len());
    for ns in namespaces {
        if node.namespace_strong_consistency(&ns, &version).await? {
            let id = match &node_id {
                Some(id) => id,
                None => node_id.insert(node.node_id().await?),
            };
            if !node.roster(&ns).await?.contains_node(id) {
                tracing::debug!(node = %addr, namespace = %ns, "not in the roster: quiesce not verified");
                continue;
            }
        }
        out.push(ns);
    }
    Ok(out)
}

/// Polls `namespace/<ns>` on `node` until `done`, at most `options.attempts` times.
async fn wait_for(
    client: &dyn InfoClient,
    node: SocketAddr,
    namespace: &str,
    options: QuiesceOptions,
    done: impl Fn(&NamespaceStats) -> bool,
    failure: impl Fn(&NamespaceStats) -> SafetyError,
) -> Result<(), SafetyError> {
    let target = AerospikeNode::new(client, node);
    let mut last = NamespaceStats::default();
    for attempt in 0..options.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(options.poll_interval).await;
        }
        last = target.namespace_stats(namespace).await?;
        if done(&last) {
            return Ok(());
        }
    }
    Err(failure(&last))
}

/// Reverts quiesce on every node of `nodes` that still has `pending_quiesce=true` (read from its
/// first namespace), then reclusters all `nodes` so the undo takes effect. Returns the nodes that
/// were undone (empty: nothing sent beyond the reads).
///
/// All reads happen first: if any node cannot report its state, nothing is changed. If a
/// `quiesce-undo:` fails, the nodes undone before it stay undone and no recluster is sent; the
/// next pass repeats the undo (it is idempotent).
pub async fn undo_quiesce(client: &dyn InfoClient, nodes: &[SocketAddr]) -> Result<Vec<SocketAddr>, SafetyError> {
    let pending = on_all(nodes, |addr| async move {
        let node = AerospikeNode::new(client, addr);
        let Some(first) = node.namespaces().await?.into_iter().next() else {
            return Ok(false);
        };
        Ok(node.namespace_stats(&first).await?.pending_quiesce == Some(true))
    })
    .await?;
    let quiesced: Vec<SocketAddr> = nodes.iter().zip(pending).filter(|(_, p)| *p).map(|(n, _)| *n).collect();
    if quiesced.is_empty() {
        return Ok(quiesced);
    }
    tracing::info!(nodes = ?quiesced, "undoing quiesce on Aerospike nodes");
    for &node in &quiesced {
        AerospikeNode::new(client, node).quiesce_undo().await?;
    }
    recluster_all(client, nodes).await?;
    Ok(quiesced)
}

#[cfg(test)]
mod tests;
