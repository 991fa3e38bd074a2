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
}

/// What a rack should run.
#[derive(Clone, Debug, PartialEq)]
pub struct RackTarget {
    pub id: i32,
    pub size: i32,
    pub image: String,
    pub conf_hash: String,
    pub pod_spec_hash: String,
}

/// Why a pod must restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestartReason {
    Image,
    Config,
    PodSpec,
}

impl RestartReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            RestartReason::Image => "image changed",
            RestartReason::Config => "aerospike.conf changed",
            RestartReason::PodSpec => "pod spec changed",
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
    } else {
        None
    }
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
                .filter(|p| p.rack_id == rack.id && !p.terminating)
                .filter_map(|p| restart_reason(p, rack).map(|r| (p, r)))
                .collect();
            stale.sort_by_key(|(p, _)| std::cmp::Reverse(p.ordinal));
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

/// Decide the next step. Order: a scale-down batch (first rack needing one), else a restart batch, else done; no
/// disruptive step while a pod is unready, terminating or missing.
pub fn next_step(r: &Rollout) -> Next {
    if let Some(next) = replace_failed(r) {
        return next;
    }
    let ignorable = ignorable_pods(r);
    let every_pod = r.pods;
    let pods: Vec<PodView> = r.pods.iter().filter(|p| !ignorable.contains(&p.name)).cloned().collect();
    let r = &Rollout { pods: &pods, ..r.clone() };
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

/// The ordinal of a StatefulSet pod from its name (`<sts>-<n>`).
pub fn ordinal(pod_name: &str) -> Option<i32> {
    pod_name.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rack(id: i32, size: i32) -> RackTarget {
        RackTarget { id, size, image: "new".into(), conf_hash: "c2".into(), pod_spec_hash: "p2".into() }
    }

    fn pod(rack_id: i32, ordinal: i32, image: &str, conf: &str) -> PodView {
        PodView {
            name: format!("aero-{rack_id}-{ordinal}"),
            rack_id,
            ordinal,
            ready: true,
            terminating: false,
            image: Some(image.into()),
            conf_hash: Some(conf.into()),
            pod_spec_hash: Some("p2".into()),
            failed: None,
        }
    }

    fn names(step: &RestartStep) -> Vec<String> {
        match step {
            RestartStep::Restart { pods, .. } => pods.iter().map(|(n, _)| n.clone()).collect(),
            other => panic!("expected a restart, got {other:?}"),
        }
    }

    #[test]
    fn nothing_to_do_when_every_pod_matches() {
        let pods = vec![pod(1, 0, "new", "c2"), pod(1, 1, "new", "c2")];
        assert_eq!(next_restart(&[rack(1, 2)], &pods, None, &IntOrString::Int(1)), RestartStep::Done);
    }

    #[test]
    fn one_pod_at_a_time_by_default_highest_ordinal_first() {
        let pods: Vec<_> = (0..3).map(|i| pod(1, i, "old", "c2")).collect();
        let step = next_restart(&[rack(1, 3)], &pods, None, &IntOrString::Int(1));
        assert_eq!(names(&step), vec!["aero-1-2"]);
        match step {
            RestartStep::Restart { pods, rack_id } => {
                assert_eq!(rack_id, 1);
                assert_eq!(pods[0].1, RestartReason::Image);
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn batch_size_is_capped_by_max_unavailable() {
        let pods: Vec<_> = (0..6).map(|i| pod(1, i, "new", "c1")).collect();
        let batch = IntOrString::Int(4);
        let step = next_restart(&[rack(1, 6)], &pods, Some(&batch), &IntOrString::Int(2));
        assert_eq!(names(&step), vec!["aero-1-5", "aero-1-4"]);
        let step = next_restart(&[rack(1, 6)], &pods, Some(&batch), &IntOrString::Int(10));
        assert_eq!(names(&step).len(), 4);
    }

    #[test]
    fn percentages_round_up() {
        let pods: Vec<_> = (0..5).map(|i| pod(1, i, "new", "c1")).collect();
        let step = next_restart(
            &[rack(1, 5)],
            &pods,
            Some(&IntOrString::String("50%".into())),
            &IntOrString::String("100%".into()),
        );
        assert_eq!(names(&step).len(), 3);
    }

    #[test]
    fn waits_while_a_pod_is_unready_even_in_another_rack() {
        let mut pods = vec![pod(1, 0, "old", "c2"), pod(2, 0, "new", "c2")];
        pods[1].ready = false;
        let step = next_restart(&[rack(1, 1), rack(2, 1)], &pods, None, &IntOrString::Int(1));
        assert_eq!(step, RestartStep::WaitForReady { not_ready: vec!["aero-2-0".into()] });
    }

    #[test]
    fn racks_go_in_id_order_and_batches_stay_in_one_rack() {
        let pods = vec![pod(2, 0, "old", "c2"), pod(1, 0, "old", "c2"), pod(1, 1, "new", "c2")];
        let step = next_restart(&[rack(2, 1), rack(1, 2)], &pods, Some(&IntOrString::Int(5)), &IntOrString::Int(5));
        assert_eq!(names(&step), vec!["aero-1-0"]);
    }

    #[test]
    fn a_pod_with_no_hash_annotation_is_restarted_for_config() {
        let mut p = pod(1, 0, "new", "c2");
        p.conf_hash = None;
        assert_eq!(restart_reason(&p, &rack(1, 1)), Some(RestartReason::Config));
    }

    #[test]
    fn scale_down_in_batches() {
        assert_eq!(next_scale_down(5, 5, None), None);
        assert_eq!(next_scale_down(3, 5, None), None);
        assert_eq!(next_scale_down(5, 2, None), Some(ScaleDown { replicas: 4, removed: vec![4] }));
        let two = IntOrString::Int(2);
        assert_eq!(next_scale_down(5, 2, Some(&two)), Some(ScaleDown { replicas: 3, removed: vec![4, 3] }));
        assert_eq!(next_scale_down(3, 2, Some(&two)), Some(ScaleDown { replicas: 2, removed: vec![2] }));
        let half = IntOrString::String("50%".into());
        assert_eq!(next_scale_down(4, 0, Some(&half)), Some(ScaleDown { replicas: 2, removed: vec![3, 2] }));
    }

    #[test]
    fn user_numbers_never_overflow() {
        // Each of these panicked with "attempt to multiply with overflow" (debug) before the arithmetic saturated.
        let huge = IntOrString::String(format!("{}%", i64::MAX));
        assert_eq!(resolve_batch(Some(&huge), 3, 1), i32::MAX);
        let huge_count = IntOrString::String(format!("{}", i64::MAX));
        assert_eq!(resolve_batch(Some(&huge_count), 3, 1), i32::MAX);
        let negative = IntOrString::String(format!("{}%", i64::MIN));
        assert_eq!(resolve_batch(Some(&negative), 3, 1), 1);
        assert_eq!(resolve_batch(Some(&IntOrString::Int(i32::MIN)), 3, 1), 1);
        let pods: Vec<_> = (0..3).map(|i| pod(1, i, "old", "c2")).collect();
        let step = next_restart(&[rack(1, 3), rack(2, i32::MAX)], &pods, Some(&huge), &huge);
        assert_eq!(names(&step).len(), 3);
        assert_eq!(next_scale_down(3, 0, Some(&huge)), Some(ScaleDown { replicas: 0, removed: vec![2, 1, 0] }));
    }

    #[test]
    fn missing_pods_are_the_ordinals_below_replicas_not_observed() {
        let pods = vec![pod(0, 0, "new", "c2"), pod(0, 1, "new", "c2")];
        let pods: Vec<PodView> = pods
            .into_iter()
            .map(|mut p| {
                p.name = format!("aero-0-{}", p.ordinal);
                p
            })
            .collect();
        assert_eq!(missing_pods(&[("aero-0".into(), 3)], &pods), vec!["aero-0-2"]);
        assert_eq!(missing_pods(&[("aero-0".into(), 2)], &pods), Vec::<String>::new());
        assert_eq!(missing_pods(&[("aero-0".into(), 1), ("aero-1".into(), 1)], &pods), vec!["aero-1-0"]);
    }

    #[test]
    fn claims_match_their_volume_and_stateful_set_exactly() {
        let v = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let owner = claim_owner("data-aero-1-2", &v(&["data", "wal"]), &v(&["aero-1", "aero-10"]));
        assert_eq!(owner, Some(ClaimOwner { volume: "data".into(), stateful_set: "aero-1".into(), ordinal: 2 }));
        // Rack 10's claim is not rack 1's, though it starts with `data-aero-1`.
        assert_eq!(claim_owner("data-aero-10-0", &v(&["data"]), &v(&["aero-1"])), None);
        // A volume whose name extends another's.
        let owner = claim_owner("data-x-aero-1-0", &v(&["data", "data-x"]), &v(&["aero-1"]));
        assert_eq!(owner.map(|o| o.volume), Some("data-x".into()));
        assert_eq!(claim_owner("data-aero-1-zero", &v(&["data"]), &v(&["aero-1"])), None);
    }

    fn set(name: &str, rack_id: i32, desired: Option<i32>, replicas: i32) -> RackSet {
        RackSet { name: name.into(), rack_id, desired, replicas, template_observed: true }
    }

    /// Pods `aero-<rack>-<ordinal>` of rack 1 for ordinals `0..n`, on the given image.
    fn rack_pods(n: i32, image: &str) -> Vec<PodView> {
        (0..n).map(|i| pod(1, i, image, "c2")).collect()
    }

    fn decide(sets: &[RackSet], pods: &[PodView], targets: &[RackTarget]) -> Next {
        let one = IntOrString::Int(1);
        next_step(&Rollout {
            sets,
            pods,
            targets,
            rolling_update_batch_size: None,
            scale_down_batch_size: None,
            max_unavailable: &one,
            max_ignorable_pods: None,
        })
    }

    #[test]
    fn step_done_when_every_pod_exists_ready_and_current() {
        let sets = [set("aero-1", 1, Some(3), 3)];
        assert_eq!(decide(&sets, &rack_pods(3, "new"), &[rack(1, 3)]), Next::Done { size: 3 });
        assert_eq!(expected_size(&sets), 3);
    }

    #[test]
    fn step_restarts_one_stale_pod_then_waits_for_it() {
        let sets = [set("aero-1", 1, Some(3), 3)];
        let next = decide(&sets, &rack_pods(3, "old"), &[rack(1, 3)]);
        assert_eq!(next, Next::Restart { rack_id: 1, pods: vec![("aero-1-2".into(), RestartReason::Image)] });
        let mut pods = rack_pods(3, "old");
        pods[2].terminating = true;
        assert_eq!(decide(&sets, &pods, &[rack(1, 3)]), Next::WaitForPods { not_ready: vec!["aero-1-2".into()] });
    }

    #[test]
    fn a_failed_pod_on_an_old_spec_is_replaced_at_once() {
        // aero-1-2 got the bad image and cannot pull it; the spec is set back to "new": the failed pod is replaced
        // although it is not ready (a normal restart would wait for it forever).
        let sets = [set("aero-1", 1, Some(3), 3)];
        let mut pods = rack_pods(3, "new");
        pods[2].image = Some("bad".into());
        pods[2].ready = false;
        pods[2].failed = Some("ImagePullBackOff".into());
        assert_eq!(
            decide(&sets, &pods, &[rack(1, 3)]),
            Next::ReplaceFailed { rack_id: 1, pods: vec![("aero-1-2".into(), "ImagePullBackOff".into())] }
        );
        // Not before the StatefulSet controller works from the current template.
        let unobserved = [RackSet { template_observed: false, ..set("aero-1", 1, Some(3), 3) }];
        assert_eq!(decide(&unobserved, &pods, &[rack(1, 3)]), Next::WaitForTemplate { rack_id: 1 });
        // A failed pod that already runs the spec is not replaced again and again: the rollout waits for it.
        pods[2].image = Some("new".into());
        assert_eq!(
            decide(&sets, &pods, &[rack(1, 3)]),
            Next::WaitForSize { pods: 3, expected: 3, not_ready: vec!["aero-1-2".into()] }
        );
        // A pod that is merely not ready yet (no failure) is waited for, not replaced.
        pods[2].image = Some("bad".into());
        pods[2].failed = None;
        assert_eq!(decide(&sets, &pods, &[rack(1, 3)]), Next::WaitForPods { not_ready: vec!["aero-1-2".into()] });
    }

    #[test]
    fn max_ignorable_pods_lets_the_rollout_go_past_failed_pods() {
        // Rack 1's aero-1-0 crash-loops on the current spec; rack 2 needs a restart.
        let sets = [set("aero-1", 1, Some(2), 2), set("aero-2", 2, Some(2), 2)];
        let mut pods =
            vec![pod(1, 0, "new", "c2"), pod(1, 1, "new", "c2"), pod(2, 0, "old", "c2"), pod(2, 1, "old", "c2")];
        pods[0].ready = false;
        pods[0].failed = Some("CrashLoopBackOff".into());
        let targets = [rack(1, 2), rack(2, 2)];
        let one = IntOrString::Int(1);
        let step = |max: Option<&IntOrString>, pods: &[PodView]| {
            let rollout = Rollout {
                sets: &sets,
                pods,
                targets: &targets,
                rolling_update_batch_size: None,
                scale_down_batch_size: None,
                max_unavailable: &one,
                max_ignorable_pods: max,
            };
            (next_step(&rollout), ignorable_pods(&rollout))
        };
        let (next, ignored) = step(None, &pods);
        assert_eq!(
            next,
            Next::WaitForPods { not_ready: vec!["aero-1-0".into()] },
            "without it, one failed pod stops all"
        );
        assert!(ignored.is_empty());
        let (next, ignored) = step(Some(&one), &pods);
        assert_eq!(next, Next::Restart { rack_id: 2, pods: vec![("aero-2-1".into(), RestartReason::Image)] });
        assert_eq!(ignored, vec!["aero-1-0".to_string()]);
        // Once the others are done, the cluster still waits for the ignored pod (not Done).
        for p in &mut pods[2..] {
            p.image = Some("new".into());
        }
        let (next, _) = step(Some(&one), &pods);
        assert_eq!(next, Next::WaitForSize { pods: 4, expected: 4, not_ready: vec!["aero-1-0".into()] });
        // A pod merely not ready (no failure) is never ignored, and the budget is per rack.
        pods[0].failed = None;
        assert_eq!(step(Some(&one), &pods).1, Vec::<String>::new());
        pods[0].failed = Some("CrashLoopBackOff".into());
        pods[1].failed = Some("CrashLoopBackOff".into());
        pods[1].ready = false;
        assert_eq!(step(Some(&IntOrString::String("50%".into())), &pods).1, vec!["aero-1-0".to_string()]);
    }

    #[test]
    fn step_stops_while_a_pod_is_missing() {
        // aero-1-2 was restarted and never recreated: the two pods left look like a healthy cluster.
        let sets = [set("aero-1", 1, Some(3), 3)];
        let pods = rack_pods(2, "old");
        assert_eq!(decide(&sets, &pods, &[rack(1, 3)]), Next::PodsMissing { missing: vec!["aero-1-2".into()] });
        // Also before a scale-down batch.
        let sets = [set("aero-1", 1, Some(1), 3)];
        assert_eq!(decide(&sets, &pods, &[rack(1, 1)]), Next::PodsMissing { missing: vec!["aero-1-2".into()] });
        // With nothing left to restart, a missing pod means waiting for the size.
        let sets = [set("aero-1", 1, Some(3), 3)];
        let next = decide(&sets, &rack_pods(2, "new"), &[rack(1, 3)]);
        assert_eq!(next, Next::WaitForSize { pods: 2, expected: 3, not_ready: vec![] });
    }

    #[test]
    fn step_scales_down_before_restarting_and_drains_removed_racks() {
        let sets = [set("aero-1", 1, Some(1), 3)];
        let next = decide(&sets, &rack_pods(3, "old"), &[rack(1, 1)]);
        let want = Next::ScaleDown {
            stateful_set: "aero-1".into(),
            rack_id: 1,
            from: 3,
            replicas: 2,
            removed: vec!["aero-1-2".into()],
            rack_removed: false,
        };
        assert_eq!(next, want);
        let mut pods = rack_pods(3, "new");
        pods.push(pod(2, 0, "new", "c2"));
        let sets = [set("aero-1", 1, Some(3), 3), set("aero-2", 2, None, 1)];
        match decide(&sets, &pods, &[rack(1, 3)]) {
            Next::ScaleDown { stateful_set, replicas: 0, rack_removed: true, removed, .. } => {
                assert_eq!((stateful_set.as_str(), removed), ("aero-2", vec!["aero-2-0".to_string()]));
            }
            other => panic!("expected the removed rack to drain, got {other:?}"),
        }
        let mut pods = rack_pods(3, "new");
        pods[0].ready = false;
        assert_eq!(
            decide(&[set("aero-1", 1, Some(1), 3)], &pods, &[rack(1, 1)]),
            Next::WaitForPods { not_ready: vec!["aero-1-0".into()] }
        );
    }

    #[test]
    fn step_waits_for_the_statefulset_to_observe_the_template() {
        let mut s = set("aero-1", 1, Some(3), 3);
        s.template_observed = false;
        assert_eq!(decide(&[s.clone()], &rack_pods(3, "old"), &[rack(1, 3)]), Next::WaitForTemplate { rack_id: 1 });
        // Nothing to restart: an unobserved template does not hold up completion checks.
        assert_eq!(decide(&[s], &rack_pods(3, "new"), &[rack(1, 3)]), Next::Done { size: 3 });
    }

    #[test]
    fn migrations_that_keep_moving_never_stall() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let forget = Duration::from_secs(60);
        let mut e = None;
        assert_eq!(MigrationProgress::observe(&mut e, 100, t0, forget), Duration::ZERO);
        // Same number 30 s later: stalled for 30 s.
        assert_eq!(
            MigrationProgress::observe(&mut e, 100, t0 + Duration::from_secs(30), forget),
            Duration::from_secs(30)
        );
        // One partition fewer: moving again.
        assert_eq!(MigrationProgress::observe(&mut e, 99, t0 + Duration::from_secs(40), forget), Duration::ZERO);
        // A higher count (a new rebalance) is not progress, and does not reset the stall clock.
        assert_eq!(
            MigrationProgress::observe(&mut e, 500, t0 + Duration::from_secs(50), forget),
            Duration::from_secs(10)
        );
        // After a quiet spell longer than `forget`, a sighting starts afresh.
        assert_eq!(MigrationProgress::observe(&mut e, 500, t0 + Duration::from_secs(200), forget), Duration::ZERO);
        assert_eq!(e.unwrap().fewest_remaining, 500);
    }

    #[test]
    fn ordinals() {
        assert_eq!(ordinal("aero-1-10"), Some(10));
        assert_eq!(ordinal("aero"), None);
    }
}
