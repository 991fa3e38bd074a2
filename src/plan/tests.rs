use super::*;

fn rack(id: i32, size: i32) -> RackTarget {
    RackTarget {
        id,
        size,
        image: "new".into(),
        conf_hash: "c2".into(),
        pod_spec_hash: "p2".into(),
        in_place_from: None,
        ascending: false,
    }
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
        in_place_failed_for: None,
        warm_restart_failed_for: None,
        operation: None,
        warm_restart_requested: None,
        leave_node: None,
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
    let mut pods = vec![pod(1, 0, "new", "c2"), pod(1, 1, "new", "c2"), pod(2, 0, "old", "c2"), pod(2, 1, "old", "c2")];
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
    assert_eq!(next, Next::WaitForPods { not_ready: vec!["aero-1-0".into()] }, "without it, one failed pod stops all");
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
    assert_eq!(MigrationProgress::observe(&mut e, 100, t0 + Duration::from_secs(30), forget), Duration::from_secs(30));
    // One partition fewer: moving again.
    assert_eq!(MigrationProgress::observe(&mut e, 99, t0 + Duration::from_secs(40), forget), Duration::ZERO);
    // A higher count (a new rebalance) is not progress, and does not reset the stall clock.
    assert_eq!(MigrationProgress::observe(&mut e, 500, t0 + Duration::from_secs(50), forget), Duration::from_secs(10));
    // After a quiet spell longer than `forget`, a sighting starts afresh.
    assert_eq!(MigrationProgress::observe(&mut e, 500, t0 + Duration::from_secs(200), forget), Duration::ZERO);
    assert_eq!(e.unwrap().fewest_remaining, 500);
}

#[test]
fn ordinals() {
    assert_eq!(ordinal("aero-1-10"), Some(10));
    assert_eq!(ordinal("aero"), None);
}

#[test]
fn dynamic_config_changes_update_ready_pods_in_place_and_restart_nothing() {
    let sets = [set("aero-1", 1, Some(3), 3)];
    let target = RackTarget { in_place_from: Some("c1".into()), ..rack(1, 3) };
    let mut pods: Vec<PodView> = (0..3).map(|i| pod(1, i, "new", "c1")).collect();
    let every = vec!["aero-1-0".to_string(), "aero-1-1".into(), "aero-1-2".into()];
    assert_eq!(decide(&sets, &pods, std::slice::from_ref(&target)), Next::UpdateInPlace { pods: every });

    // A pod not Ready yet is updated once it is; meanwhile the rollout does not count as done.
    pods[0].conf_hash = Some("c2".into());
    pods[1].conf_hash = Some("c2".into());
    pods[2].ready = false;
    assert_eq!(
        decide(&sets, &pods, std::slice::from_ref(&target)),
        Next::WaitForSize { pods: 3, expected: 3, not_ready: vec!["aero-1-2".into()] }
    );
    pods[2].ready = true;
    assert_eq!(
        decide(&sets, &pods, std::slice::from_ref(&target)),
        Next::UpdateInPlace { pods: vec!["aero-1-2".into()] }
    );
    pods[2].conf_hash = Some("c2".into());
    assert_eq!(decide(&sets, &pods, std::slice::from_ref(&target)), Next::Done { size: 3 });
}

#[test]
fn a_pod_whose_in_place_update_failed_or_that_runs_another_config_restarts() {
    let sets = [set("aero-1", 1, Some(2), 2)];
    let target = RackTarget { in_place_from: Some("c1".into()), ..rack(1, 2) };
    let mut pods: Vec<PodView> = (0..2).map(|i| pod(1, i, "new", "c1")).collect();
    pods[1].in_place_failed_for = Some("c2".into());
    // The other pod is still updated in place first; then only the failed one restarts.
    assert_eq!(
        decide(&sets, &pods, std::slice::from_ref(&target)),
        Next::UpdateInPlace { pods: vec!["aero-1-0".into()] }
    );
    pods[0].conf_hash = Some("c2".into());
    assert_eq!(
        decide(&sets, &pods, std::slice::from_ref(&target)),
        Next::Restart { rack_id: 1, pods: vec![("aero-1-1".into(), RestartReason::Config)] }
    );
    // A failure recorded for an older target does not count against a new one.
    pods[1].in_place_failed_for = Some("c0".into());
    assert_eq!(
        decide(&sets, &pods, std::slice::from_ref(&target)),
        Next::UpdateInPlace { pods: vec!["aero-1-1".into()] }
    );
    // A pod on a conf other than the one the change is planned from (or with its pod spec changed too) restarts.
    pods[1].conf_hash = Some("c0".into());
    assert!(matches!(decide(&sets, &pods, std::slice::from_ref(&target)), Next::Restart { .. }));
    pods[1].conf_hash = Some("c1".into());
    pods[1].pod_spec_hash = Some("p1".into());
    assert!(matches!(decide(&sets, &pods, std::slice::from_ref(&target)), Next::Restart { .. }));
    // Without in_place_from (dynamic updates off, or a static change) every changed pod restarts.
    pods[1].pod_spec_hash = Some("p2".into());
    assert!(matches!(decide(&sets, &pods, &[rack(1, 2)]), Next::Restart { .. }));
}

#[test]
fn pods_of_an_operation_restart_in_batches_after_spec_changes() {
    let sets = [set("aero-1", 1, Some(3), 3)];
    let mut pods = rack_pods(3, "new");
    pods[0].operation = Some("PodRestart op1".into());
    pods[2].operation = Some("PodRestart op1".into());
    let op = RestartReason::Operation("PodRestart op1".into());
    assert_eq!(decide(&sets, &pods, &[rack(1, 3)]), Next::Restart { rack_id: 1, pods: vec![("aero-1-2".into(), op)] });
    // A spec change of the same pod is its reason (the restart serves both).
    pods[2].image = Some("old".into());
    assert_eq!(
        decide(&sets, &pods, &[rack(1, 3)]),
        Next::Restart { rack_id: 1, pods: vec![("aero-1-2".into(), RestartReason::Image)] }
    );
}

#[test]
fn config_changes_and_warm_restart_operations_restart_in_place() {
    let r = rack(1, 3);
    let conf = pod(1, 0, "new", "c1");
    let reason = restart_reason(&conf, &r).unwrap();
    assert_eq!(reason, RestartReason::Config);
    assert_eq!(restart_kind(&conf, &r, &reason), RestartKind::Warm);
    assert_eq!(warm_restart_target(&r, &reason), "c2");

    // An image or pod-spec change needs a new pod.
    let image = pod(1, 0, "old", "c1");
    assert_eq!(restart_kind(&image, &r, &restart_reason(&image, &r).unwrap()), RestartKind::Pod);
    let mut spec = pod(1, 0, "new", "c2");
    spec.pod_spec_hash = Some("p1".into());
    assert_eq!(restart_kind(&spec, &r, &restart_reason(&spec, &r).unwrap()), RestartKind::Pod);

    // Operations: WarmRestart in place, PodRestart a new pod.
    let mut warm = pod(1, 0, "new", "c2");
    warm.operation = Some("WarmRestart op1".into());
    let reason = restart_reason(&warm, &r).unwrap();
    assert_eq!(restart_kind(&warm, &r, &reason), RestartKind::Warm);
    assert_eq!(warm_restart_target(&r, &reason), "WarmRestart op1");
    let mut cold = pod(1, 0, "new", "c2");
    cold.operation = Some("PodRestart op2".into());
    assert_eq!(restart_kind(&cold, &r, &restart_reason(&cold, &r).unwrap()), RestartKind::Pod);
}

#[test]
fn a_failed_warm_restart_falls_back_to_a_pod_restart_for_that_target_only() {
    let r = rack(1, 3);
    let mut p = pod(1, 0, "new", "c1");
    p.warm_restart_failed_for = Some("c2".into());
    assert_eq!(restart_kind(&p, &r, &RestartReason::Config), RestartKind::Pod);
    // A later change (another target) is tried warm again.
    p.warm_restart_failed_for = Some("c0".into());
    assert_eq!(restart_kind(&p, &r, &RestartReason::Config), RestartKind::Warm);
    // Failed for an operation: that operation restarts the pod; the config change is still tried warm.
    p.warm_restart_failed_for = Some("WarmRestart op1".into());
    assert_eq!(restart_kind(&p, &r, &RestartReason::Operation("WarmRestart op1".into())), RestartKind::Pod);
    assert_eq!(restart_kind(&p, &r, &RestartReason::Config), RestartKind::Warm);
}

#[test]
fn a_requested_warm_restart_is_one_until_it_fails() {
    let r = rack(1, 3);
    let mut p = pod(1, 0, "new", "c2");
    assert_eq!(restart_reason(&p, &r), None);
    p.warm_restart_requested = Some("volume data grew to 2Gi".into());
    let reason = restart_reason(&p, &r).unwrap();
    assert_eq!(reason, RestartReason::Requested("volume data grew to 2Gi".into()));
    assert_eq!(restart_kind(&p, &r, &reason), RestartKind::Warm);
    p.warm_restart_failed_for = Some(warm_restart_target(&r, &reason));
    assert_eq!(restart_kind(&p, &r, &reason), RestartKind::Pod);
}

#[test]
fn a_pod_that_must_leave_its_node_gets_a_new_pod_even_for_a_config_change() {
    let r = rack(1, 3);
    let mut p = pod(1, 0, "new", "c1");
    p.leave_node = Some(LeaveNode::Blocked("n1".into()));
    assert_eq!(restart_reason(&p, &r), Some(RestartReason::Config));
    assert_eq!(restart_kind(&p, &r, &RestartReason::Config), RestartKind::Pod);
}

#[test]
fn a_pod_leaves_a_blocked_node_or_a_cordoned_node_it_was_evicted_from() {
    let blocked = vec!["n2".to_string()];
    assert_eq!(leave_node(Some("n2"), &blocked, false, false), Some(LeaveNode::Blocked("n2".into())));
    assert_eq!(leave_node(Some("n1"), &blocked, false, false), None);
    // An eviction moves the pod only while its node is cordoned.
    assert_eq!(leave_node(Some("n1"), &blocked, true, true), Some(LeaveNode::Drained("n1".into())));
    assert_eq!(leave_node(Some("n1"), &blocked, true, false), None);
    assert_eq!(leave_node(Some("n1"), &blocked, false, true), None);
    // Not scheduled: nothing to leave.
    assert_eq!(leave_node(None, &blocked, true, true), None);
    assert_eq!(leave_node(Some(""), &[String::new()], true, true), None);
}

#[test]
fn only_the_pods_that_must_leave_their_node_restart_one_batch_at_a_time() {
    let sets = [set("aero-1", 1, Some(3), 3)];
    let mut pods = rack_pods(3, "new");
    pods[1].leave_node = Some(LeaveNode::Blocked("n2".into()));
    let next = decide(&sets, &pods, &[rack(1, 3)]);
    assert_eq!(
        next,
        Next::Restart {
            rack_id: 1,
            pods: vec![("aero-1-1".into(), RestartReason::LeaveNode(LeaveNode::Blocked("n2".into())))]
        }
    );
    // Through the same gates as any restart: not while another pod is unready, not before the StatefulSet has the
    // template that keeps the new pod off the node.
    pods[0].ready = false;
    assert_eq!(decide(&sets, &pods, &[rack(1, 3)]), Next::WaitForPods { not_ready: vec!["aero-1-0".into()] });
    pods[0].ready = true;
    let unobserved = [RackSet { template_observed: false, ..set("aero-1", 1, Some(3), 3) }];
    assert_eq!(decide(&unobserved, &pods, &[rack(1, 3)]), Next::WaitForTemplate { rack_id: 1 });
    // A spec change of the same pod is the reason named, and the pod leaves its node with that restart all the same.
    let mut stale = pods.clone();
    stale[1].image = Some("old".into());
    assert_eq!(
        decide(&sets, &stale, &[rack(1, 3)]),
        Next::Restart { rack_id: 1, pods: vec![("aero-1-1".into(), RestartReason::Image)] }
    );
}

#[test]
fn a_scale_down_has_settled_once_its_removed_pods_are_gone() {
    let mut pods = vec![pod(1, 0, "new", "c2"), pod(1, 1, "new", "c2"), pod(1, 2, "new", "c2")];
    assert!(!scale_down_settled("aero-1", 2, &pods), "aero-1-2 is still there");
    pods[2].terminating = true;
    assert!(!scale_down_settled("aero-1", 2, &pods), "terminating is not gone");
    pods.pop();
    assert!(scale_down_settled("aero-1", 2, &pods));
    // Another StatefulSet's pods with high ordinals do not count.
    let other = pod(2, 5, "new", "c2");
    assert!(scale_down_settled("aero-1", 2, &[other]));
}

#[test]
fn a_rack_with_an_added_volume_restarts_from_the_lowest_ordinal() {
    let pods = vec![pod(1, 0, "new", "c2"), pod(1, 1, "new", "c2"), pod(1, 2, "new", "c2")];
    let mut pods = pods;
    for p in &mut pods {
        p.pod_spec_hash = Some("p1".into());
    }
    let down = next_restart(&[rack(1, 3)], &pods, None, &IntOrString::Int(1));
    assert_eq!(names(&down), ["aero-1-2"]);
    let up = next_restart(&[RackTarget { ascending: true, ..rack(1, 3) }], &pods, None, &IntOrString::Int(1));
    assert_eq!(names(&up), ["aero-1-0"]);
}

#[test]
fn a_config_and_pod_spec_change_together_is_one_pod_restart() {
    let r = rack(1, 3);
    let mut p = pod(1, 0, "new", "c1");
    p.pod_spec_hash = Some("p1".into());
    let reason = restart_reason(&p, &r).unwrap();
    assert_eq!(reason, RestartReason::Config, "the config is named first");
    assert_eq!(restart_kind(&p, &r, &reason), RestartKind::Pod, "but the pod spec needs a new pod");
}
