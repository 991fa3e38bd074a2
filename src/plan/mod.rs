//! Pure planning of disruptive steps: which pods restart next, how far a rack may scale down now.
//!
//! The controller feeds in what it observed (pods, their hashes and readiness) and what the build step wants;
//! these functions decide the next step and never touch the API. One step per reconcile: the controller
//! performs it, requeues, and plans again from fresh observations, so a restart of the operator in the middle
//! of a rollout resumes where it stopped without restarting a pod twice (a restarted pod carries the new hashes).
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// One Aerospike pod as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct PodView {
    pub name: String,
    pub rack_id: i32,
    pub ordinal: i32,
    /// Ready condition true and not being deleted.
    pub ready: bool,
    /// Has a deletion timestamp.
    pub terminating: bool,
    pub image: Option<String>,
    pub conf_hash: Option<String>,
    pub pod_spec_hash: Option<String>,
    /// Why the pod cannot run (`ImagePullBackOff`, `CrashLoopBackOff`, `Unschedulable`, `Failed`, ...), if it
    /// cannot: it serves nothing, and may be waiting for the spec that fixes it.
    pub failed: Option<String>,
    /// The target conf hash an in-place (dynamic) config update of this pod failed for, if one did: that change
    /// needs a restart of this pod.
    pub in_place_failed_for: Option<String>,
    /// The target (a conf hash, or an operation's `<kind> <id>`) a warm restart of this pod failed for, if one did:
    /// that change needs a pod restart.
    pub warm_restart_failed_for: Option<String>,
    /// The on-demand operation (`<kind> <id>`) this pod still has to be restarted for, if any.
    pub operation: Option<String>,
    /// Why the operator marked this pod for a warm restart (e.g. a block volume grew: the server sees the new size
    /// only when it starts again), if it did.
    pub warm_restart_requested: Option<String>,
    /// Why the pod must leave the node it runs on, if it must (see [`leave_node`]).
    pub leave_node: Option<LeaveNode>,
}

/// Why a pod must leave its node: it is restarted (after the same safety checks as any restart) so the scheduler
/// places it elsewhere, and its node-local claims are released so it can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaveNode {
    /// The node is in spec.k8sNodeBlockList.
    Blocked(String),
    /// Its eviction was asked for (and refused by the eviction webhook, which recorded it) and the node is cordoned.
    Drained(String),
}

/// Whether a pod on `node` must leave it: the node is in `block_list`, or the pod's eviction was asked for
/// (`eviction_requested`) while the node is cordoned (`node_unschedulable`). An eviction request on a node that is
/// schedulable again (uncordoned) moves nothing.
pub fn leave_node(
    node: Option<&str>,
    block_list: &[String],
    eviction_requested: bool,
    node_unschedulable: bool,
) -> Option<LeaveNode> {
    let node = node.filter(|n| !n.is_empty())?;
    if block_list.iter().any(|b| b == node) {
        Some(LeaveNode::Blocked(node.to_string()))
    } else if eviction_requested && node_unschedulable {
        Some(LeaveNode::Drained(node.to_string()))
    } else {
        None
    }
}

/// What a rack should run.
#[derive(Clone, Debug, PartialEq)]
pub struct RackTarget {
    pub id: i32,
    pub size: i32,
    pub image: String,
    pub conf_hash: String,
    pub pod_spec_hash: String,
    /// With `enableDynamicConfigUpdate`: the conf hash from which the change to `conf_hash` is made at run time (every
    /// difference is a dynamic key for the server version), so pods running that conf are updated, not restarted.
    pub in_place_from: Option<String>,
    /// Restart the lowest ordinals first: the rack's StatefulSet has claim templates its older pods lack (a volume
    /// was added), and the StatefulSet controller stops at the lowest pod whose storage it cannot reconcile, creating
    /// no pod above it; restarted from the bottom, every pod it must create is below those it cannot fix.
    pub ascending: bool,
}

/// Why a pod must restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestartReason {
    Image,
    Config,
    PodSpec,
    /// `spec.operations`: `<kind> <id>`.
    Operation(String),
    /// The pod must leave its node.
    LeaveNode(LeaveNode),
    /// The operator marked the pod for a warm restart, saying why.
    Requested(String),
}

impl RestartReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            RestartReason::Image => "image changed",
            RestartReason::Config => "aerospike.conf changed",
            RestartReason::PodSpec => "pod spec changed",
            RestartReason::Operation(_) => "on-demand operation",
            RestartReason::LeaveNode(LeaveNode::Blocked(_)) => "its node is in k8sNodeBlockList",
            RestartReason::LeaveNode(LeaveNode::Drained(_)) => "evicted from a cordoned node",
            RestartReason::Requested(_) => "warm restart requested",
        }
    }
}

/// The reason a pod differs from its rack's target, if it does.
pub fn restart_reason(pod: &PodView, rack: &RackTarget) -> Option<RestartReason> {
    if pod.image.as_deref() != Some(rack.image.as_str()) {
        Some(RestartReason::Image)
    } else if pod.conf_hash.as_deref() != Some(rack.conf_hash.as_str()) {
        Some(RestartReason::Config)
    } else if pod.pod_spec_hash.as_deref() != Some(rack.pod_spec_hash.as_str()) {
        Some(RestartReason::PodSpec)
    } else if let Some(leave) = &pod.leave_node {
        Some(RestartReason::LeaveNode(leave.clone()))
    } else if let Some(why) = &pod.warm_restart_requested {
        Some(RestartReason::Requested(why.clone()))
    } else {
        pod.operation.clone().map(RestartReason::Operation)
    }
}

/// How a pod is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartKind {
    /// The server process restarts in the pod with a rewritten aerospike.conf: pod, IP and volumes stay.
    Warm,
    /// The pod is deleted and recreated from the StatefulSet's template.
    Pod,
}

/// How `pod` restarts for `reason`, as the reference decides: an aerospike.conf change and a
/// WarmRestart operation need only the server process restarted; an image or pod-spec change, or a pod that must
/// leave its node, needs a new pod. A warm restart that failed for the same target falls back to a pod restart.
pub fn restart_kind(pod: &PodView, rack: &RackTarget, reason: &RestartReason) -> RestartKind {
    // A pod that must leave its node, or whose pod spec differs too (an edit of the config and the pod spec at once),
    // needs a new pod whatever else it restarts for: one restart, not a warm one and then a pod one.
    if pod.leave_node.is_some()
        || pod.image.as_deref() != Some(rack.image.as_str())
        || pod.pod_spec_hash.as_deref() != Some(rack.pod_spec_hash.as_str())
    {
        return RestartKind::Pod;
    }
    let target = match reason {
        RestartReason::Config => rack.conf_hash.as_str(),
        RestartReason::Operation(op) if op.starts_with("WarmRestart ") => op.as_str(),
        RestartReason::Requested(why) => why.as_str(),
        RestartReason::Image | RestartReason::PodSpec | RestartReason::LeaveNode(_) | RestartReason::Operation(_) => {
            return RestartKind::Pod;
        }
    };
    if pod.warm_restart_failed_for.as_deref() == Some(target) { RestartKind::Pod } else { RestartKind::Warm }
}

/// The target a warm restart for `reason` brings the pod to (recorded when it fails).
pub fn warm_restart_target(rack: &RackTarget, reason: &RestartReason) -> String {
    match reason {
        RestartReason::Operation(op) | RestartReason::Requested(op) => op.clone(),
        _ => rack.conf_hash.clone(),
    }
}

/// Whether the pod differs from its rack's target only by a config change it takes at run time (and no such update
/// of this pod to this target has failed).
pub fn updates_in_place(pod: &PodView, rack: &RackTarget) -> bool {
    restart_reason(pod, rack) == Some(RestartReason::Config)
        && pod.pod_spec_hash.as_deref() == Some(rack.pod_spec_hash.as_str())
        && rack.in_place_from.is_some()
        && pod.conf_hash == rack.in_place_from
        && pod.in_place_failed_for.as_deref() != Some(rack.conf_hash.as_str())
}

fn target_of<'a>(racks: &'a [RackTarget], pod: &PodView) -> Option<&'a RackTarget> {
    racks.iter().find(|r| r.id == pod.rack_id)
}

/// Resolve a count or percentage against `total`; percentages round up and every batch is at least 1.
/// User numbers: arithmetic saturates (a percentage such as `99999999999999999%` means "all"), never overflows.
pub fn resolve_batch(value: Option<&IntOrString>, total: i32, default: i32) -> i32 {
    let n = match value {
        None => default,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => match s.trim_end_matches('%').parse::<i64>() {
            Ok(p) if s.ends_with('%') => {
                let scaled = p.saturating_mul(i64::from(total.max(0))).saturating_add(99) / 100;
                scaled.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
            }
            Ok(p) => p.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            Err(_) => default,
        },
    };
    n.max(1)
}

/// The pods a set of StatefulSets should have (`(name, replicas)`: ordinals `0..replicas`) that are not observed.
/// A pod that was deleted and never recreated (refused by a ResourceQuota, an admission policy, Pod Security
/// admission) is missing: the cluster is smaller than the spec asks, and no further pod may be disrupted.
pub fn missing_pods(stateful_sets: &[(String, i32)], pods: &[PodView]) -> Vec<String> {
    let observed: std::collections::BTreeSet<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    stateful_sets
        .iter()
        .flat_map(|(sts, replicas)| (0..*replicas).map(move |o| format!("{sts}-{o}")))
        .filter(|name| !observed.contains(name.as_str()))
        .collect()
}

/// The next step of a rolling restart.
#[derive(Clone, Debug, PartialEq)]
pub enum RestartStep {
    /// Every pod matches its target.
    Done,
    /// Some pods are not ready (or are terminating): no new batch until they are.
    WaitForReady { not_ready: Vec<String> },
    /// Restart these pods now (all in one rack), after the data-plane safety checks.
    Restart { rack_id: i32, pods: Vec<(String, RestartReason)> },
}

/// Plan the next restart batch.
///
/// Rules: nothing starts while any pod of the cluster is unready or terminating (the previous batch must be
/// Ready first); a batch stays within one rack (racks in id order); its size is the rack's
/// rollingUpdateBatchSize (default 1) capped by maxUnavailable (resolved against the cluster size);
/// within a rack the highest ordinals go first, like a StatefulSet rolling update.
pub fn next_restart(
    racks: &[RackTarget],
    pods: &[PodView],
    rolling_update_batch_size: Option<&IntOrString>,
    max_unavailable: &IntOrString,
) -> RestartStep {
    let mut not_ready: Vec<String> =
        pods.iter().filter(|p| !p.ready || p.terminating).map(|p| p.name.clone()).collect();
    not_ready.sort();
    let mut racks: Vec<&RackTarget> = racks.iter().collect();
    racks.sort_by_key(|r| r.id);
    let pending: Vec<(&RackTarget, Vec<(&PodView, RestartReason)>)> = racks
        .iter()
        .map(|rack| {
            let mut stale: Vec<(&PodView, RestartReason)> = pods
                .iter()
                .filter(|p| p.rack_id == rack.id && !p.terminating && !updates_in_place(p, rack))
                .filter_map(|p| restart_reason(p, rack).map(|r| (p, r)))
                .collect();
            if rack.ascending {
                stale.sort_by_key(|(p, _)| p.ordinal);
            } else {
                stale.sort_by_key(|(p, _)| std::cmp::Reverse(p.ordinal));
            }
            (*rack, stale)
        })
        .filter(|(_, stale)| !stale.is_empty())
        .collect();
    let Some((rack, stale)) = pending.into_iter().next() else {
        return RestartStep::Done;
    };
    if !not_ready.is_empty() {
        return RestartStep::WaitForReady { not_ready };
    }
    let cluster_size: i32 = racks.iter().fold(0i32, |sum, r| sum.saturating_add(r.size));
    let budget = resolve_batch(Some(max_unavailable), cluster_size, 1);
    let batch = resolve_batch(rolling_update_batch_size, rack.size, 1).min(budget) as usize;
    RestartStep::Restart {
        rack_id: rack.id,
        pods: stale.into_iter().take(batch).map(|(p, r)| (p.name.clone(), r)).collect(),
    }
}

/// The next scale-down step of one rack.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleDown {
    /// Replicas to set now.
    pub replicas: i32,
    /// Pods this removes (highest ordinals), to quiesce first.
    pub removed: Vec<i32>,
}

/// Plan one scale-down batch: from `current` replicas towards `desired`, at most scaleDownBatchSize
/// (count or percentage of the current rack size, default 1) at a time. None when no scale-down is needed.
pub fn next_scale_down(current: i32, desired: i32, scale_down_batch_size: Option<&IntOrString>) -> Option<ScaleDown> {
    if desired >= current {
        return None;
    }
    let batch = resolve_batch(scale_down_batch_size, current, 1);
    let replicas = (current - batch).max(desired);
    Some(ScaleDown { replicas, removed: (replicas..current).rev().collect() })
}

/// One StatefulSet of the cluster: what it runs now and what the spec asks of it.
#[derive(Clone, Debug, PartialEq)]
pub struct RackSet {
    pub name: String,
    pub rack_id: i32,
    /// Replicas the spec asks for; None for a rack removed from the spec (drained to 0, then deleted).
    pub desired: Option<i32>,
    /// Replicas it runs now (scale-ups are applied at once, before the rollout decides).
    pub replicas: i32,
    /// The StatefulSet controller works from the template last applied (a pod deleted before that could be
    /// recreated from the previous template and need a second restart).
    pub template_observed: bool,
}

/// What the rollout decides from: the StatefulSets, the pods, what each rack should run, and the spec's limits.
#[derive(Clone, Debug)]
pub struct Rollout<'a> {
    pub sets: &'a [RackSet],
    pub pods: &'a [PodView],
    pub targets: &'a [RackTarget],
    pub rolling_update_batch_size: Option<&'a IntOrString>,
    pub scale_down_batch_size: Option<&'a IntOrString>,
    pub max_unavailable: &'a IntOrString,
    /// `rackConfig.maxIgnorablePods`: per rack, this many failed pods (count, or percentage of the rack) do not
    /// hold up the rollout of the others.
    pub max_ignorable_pods: Option<&'a IntOrString>,
}

/// The one step a reconcile takes next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Pods are not Ready or are terminating: no disruptive step until they are.
    WaitForPods { not_ready: Vec<String> },
    /// Pods the StatefulSets should run do not exist: no disruptive step (the cluster is smaller than it looks).
    PodsMissing { missing: Vec<String> },
    /// Lower `stateful_set` from `from` to `replicas`, removing the pods `removed` (after quiescing them).
    ScaleDown { stateful_set: String, rack_id: i32, from: i32, replicas: i32, removed: Vec<String>, rack_removed: bool },
    /// The rack's StatefulSet controller has not observed the new template yet.
    WaitForTemplate { rack_id: i32 },
    /// Carry the config change over to these Ready pods at run time (`set-config`), no restart.
    UpdateInPlace { pods: Vec<String> },
    /// Restart these pods of one rack (after the data-plane safety checks).
    Restart { rack_id: i32, pods: Vec<(String, RestartReason)> },
    /// Replace these failed pods of one rack with the current spec now, whatever the state of the cluster: they
    /// serve nothing, and the spec they do not run yet may be what heals them (a bad image set back).
    ReplaceFailed { rack_id: i32, pods: Vec<(String, String)> },
    /// Every pod runs the desired spec, but not every pod of the desired size exists and is Ready yet.
    WaitForSize { pods: usize, expected: i32, not_ready: Vec<String> },
    /// Every pod exists, is Ready and runs the desired spec.
    Done { size: i32 },
}

/// The size the safety checks hold the Aerospike cluster to: what the StatefulSets run, never merely the pods that
/// happen to exist (a pod that never came back would make a smaller cluster look healthy).
pub fn expected_size(sets: &[RackSet]) -> usize {
    sets.iter().fold(0usize, |sum, s| sum.saturating_add(s.replicas.max(0) as usize))
}

/// Decide the next step. Order: failed pods replaced, in-place config updates, a scale-down batch (first rack needing one), else a restart batch, else done; no
/// disruptive step while a pod is unready, terminating or missing.
pub fn next_step(r: &Rollout) -> Next {
    if let Some(next) = replace_failed(r) {
        return next;
    }
    let ignorable = ignorable_pods(r);
    let every_pod = r.pods;
    let pods: Vec<PodView> = r.pods.iter().filter(|p| !ignorable.contains(&p.name)).cloned().collect();
    let r = &Rollout { pods: &pods, ..r.clone() };
    // Dynamic config updates disturb nothing: first, on every Ready pod that can take one.
    let mut in_place: Vec<String> = r
        .pods
        .iter()
        .filter(|p| p.ready && !p.terminating && target_of(r.targets, p).is_some_and(|t| updates_in_place(p, t)))
        .map(|p| p.name.clone())
        .collect();
    if !in_place.is_empty() {
        in_place.sort();
        return Next::UpdateInPlace { pods: in_place };
    }
    let mut not_ready: Vec<String> =
        r.pods.iter().filter(|p| !p.ready || p.terminating).map(|p| p.name.clone()).collect();
    not_ready.sort();
    let replicas: Vec<(String, i32)> = r.sets.iter().map(|s| (s.name.clone(), s.replicas)).collect();
    let missing = missing_pods(&replicas, every_pod);
    let shrink = r.sets.iter().find(|s| s.replicas > s.desired.unwrap_or(0));
    if let Some(set) = shrink {
        if !not_ready.is_empty() {
            return Next::WaitForPods { not_ready };
        }
        if !missing.is_empty() {
            return Next::PodsMissing { missing };
        }
        let target = set.desired.unwrap_or(0);
        if let Some(sd) = next_scale_down(set.replicas, target, r.scale_down_batch_size) {
            return Next::ScaleDown {
                stateful_set: set.name.clone(),
                rack_id: set.rack_id,
                from: set.replicas,
                replicas: sd.replicas,
                removed: sd.removed.iter().map(|o| format!("{}-{o}", set.name)).collect(),
                rack_removed: set.desired.is_none(),
            };
        }
    }
    match next_restart(r.targets, r.pods, r.rolling_update_batch_size, r.max_unavailable) {
        RestartStep::WaitForReady { not_ready } => Next::WaitForPods { not_ready },
        RestartStep::Restart { rack_id, pods } => {
            if !missing.is_empty() {
                Next::PodsMissing { missing }
            } else if r.sets.iter().any(|s| s.rack_id == rack_id && s.desired.is_some() && !s.template_observed) {
                Next::WaitForTemplate { rack_id }
            } else {
                Next::Restart { rack_id, pods }
            }
        }
        RestartStep::Done => {
            let expected = r.sets.iter().filter_map(|s| s.desired).fold(0i32, i32::saturating_add);
            if r.pods.len() + ignorable.len() != expected.max(0) as usize || !not_ready.is_empty() {
                Next::WaitForSize { pods: r.pods.len() + ignorable.len(), expected, not_ready }
            } else if !ignorable.is_empty() {
                // Everything else is done; the ignored pods still fail, so the cluster is not complete.
                Next::WaitForSize { pods: r.pods.len() + ignorable.len(), expected, not_ready: ignorable }
            } else {
                Next::Done { size: expected }
            }
        }
    }
}

/// Failed pods the rollout goes on without (`rackConfig.maxIgnorablePods` per rack; none when unset): they are left
/// out of the readiness wait and of the safety checks' node list and expected size. Lowest ordinals first.
pub fn ignorable_pods(r: &Rollout) -> Vec<String> {
    let Some(max) = r.max_ignorable_pods else { return Vec::new() };
    let mut out = Vec::new();
    for set in r.sets {
        let budget = match max {
            IntOrString::Int(i) => (*i).max(0),
            IntOrString::String(_) => resolve_batch(Some(max), set.replicas, 0),
        };
        let mut failed: Vec<&PodView> = r
            .pods
            .iter()
            .filter(|p| p.rack_id == set.rack_id && p.failed.is_some() && !p.terminating)
            .filter(|p| p.name.strip_suffix(&format!("-{}", p.ordinal)) == Some(set.name.as_str()))
            .collect();
        failed.sort_by_key(|p| p.ordinal);
        out.extend(failed.into_iter().take(budget.max(0) as usize).map(|p| p.name.clone()));
    }
    out.sort();
    out
}

/// Failed pods that do not run their rack's current spec, first rack first (`pods`: name and failure). Their rack's
/// StatefulSet must have observed the current template, or the replacement would be the same failed pod.
fn replace_failed(r: &Rollout) -> Option<Next> {
    let mut failed: Vec<(i32, &PodView, &str)> = r
        .pods
        .iter()
        .filter(|p| !p.terminating)
        .filter_map(|p| {
            let why = p.failed.as_deref()?;
            let target = r.targets.iter().find(|t| t.id == p.rack_id)?;
            restart_reason(p, target).map(|_| (p.rack_id, p, why))
        })
        .collect();
    failed.sort_by_key(|(rack, p, _)| (*rack, p.ordinal));
    let rack_id = failed.first()?.0;
    if r.sets.iter().any(|s| s.rack_id == rack_id && s.desired.is_some() && !s.template_observed) {
        return Some(Next::WaitForTemplate { rack_id });
    }
    let pods =
        failed.iter().filter(|(rack, _, _)| *rack == rack_id).map(|(_, p, why)| (p.name.clone(), why.to_string()));
    Some(Next::ReplaceFailed { rack_id, pods: pods.collect() })
}

/// How migrations have moved for one cluster: the fewest partitions seen remaining, when that number last went
/// down, and when migrations were last seen at all. Migrations after a membership change are normal and can run for
/// hours on a real cluster; only migrations that stop moving are a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrationProgress {
    pub fewest_remaining: u64,
    pub last_progress: std::time::Instant,
    pub last_seen: std::time::Instant,
}

impl MigrationProgress {
    /// Record `remaining` partitions seen at `now`; returns how long migrations have not moved. A sighting after a
    /// quiet spell longer than `forget_after` starts afresh (a new membership change, not the old one stalled).
    pub fn observe(
        entry: &mut Option<MigrationProgress>,
        remaining: u64,
        now: std::time::Instant,
        forget_after: std::time::Duration,
    ) -> std::time::Duration {
        let fresh = MigrationProgress { fewest_remaining: remaining, last_progress: now, last_seen: now };
        let e = match entry {
            Some(e) if now.saturating_duration_since(e.last_seen) <= forget_after => e,
            _ => entry.insert(fresh),
        };
        if remaining < e.fewest_remaining {
            e.fewest_remaining = remaining;
            e.last_progress = now;
        }
        e.last_seen = now;
        now.saturating_duration_since(e.last_progress)
    }
}

/// Which volume, StatefulSet and ordinal a PVC belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimOwner {
    pub volume: String,
    pub stateful_set: String,
    pub ordinal: i32,
}

/// A StatefulSet's PVC is named `<volume>-<statefulset>-<ordinal>`. Match `claim` exactly against the candidate
/// volumes and StatefulSets of its rack (never by prefix alone, which would confuse `data` with `data-aero` or rack 1
/// with rack 10); None when nothing or more than one pair matches.
pub fn claim_owner(claim: &str, volumes: &[String], stateful_sets: &[String]) -> Option<ClaimOwner> {
    let mut found = None;
    for volume in volumes {
        for sts in stateful_sets {
            let Some(rest) = claim.strip_prefix(&format!("{volume}-{sts}-")) else { continue };
            let Ok(ordinal) = rest.parse::<i32>() else { continue };
            if found.is_some() {
                return None;
            }
            found = Some(ClaimOwner { volume: volume.clone(), stateful_set: sts.clone(), ordinal });
        }
    }
    found
}

/// Whether the pods a scale-down of StatefulSet `sts` to `to` replicas removed are gone (none of ordinal `to` or
/// above is observed, terminating or not).
pub fn scale_down_settled(sts: &str, to: i32, pods: &[PodView]) -> bool {
    !pods.iter().any(|p| p.ordinal >= to && p.name.strip_suffix(&format!("-{}", p.ordinal)) == Some(sts))
}

/// The ordinal of a StatefulSet pod from its name (`<sts>-<n>`).
pub fn ordinal(pod_name: &str) -> Option<i32> {
    pod_name.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
}

#[cfg(test)]
mod tests;
