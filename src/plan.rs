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
pub fn resolve_batch(value: Option<&IntOrString>, total: i32, default: i32) -> i32 {
    let n = match value {
        None => default,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => match s.trim_end_matches('%').parse::<i64>() {
            Ok(p) if s.ends_with('%') => ((p * total as i64 + 99) / 100) as i32,
            Ok(p) => p as i32,
            Err(_) => default,
        },
    };
    n.max(1)
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
    let cluster_size: i32 = racks.iter().map(|r| r.size).sum();
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
    fn ordinals() {
        assert_eq!(ordinal("aero-1-10"), Some(10));
        assert_eq!(ordinal("aero"), None);
    }
}
