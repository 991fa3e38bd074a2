//! /metrics as Prometheus reads it: the names and label names users' dashboards and alerts rely on.
use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// (name, labels, value) of every sample of the text format.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let labels = body
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').expect("label=value");
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        out.push((name.to_string(), labels, value.parse().expect("a number")));
    }
    out
}

fn label_names(text: &str, name: &str) -> BTreeSet<String> {
    samples(text).into_iter().filter(|(n, _, _)| n == name).flat_map(|(_, l, _)| l.into_keys()).collect()
}

fn value(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    samples(text)
        .into_iter()
        .find(|(n, l, _)| n == name && want.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| v)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn phase_gauge_has_the_reference_name_labels_and_values() {
    let m = Metrics::default();
    m.set_phase("aerospike", "aerocluster", "Completed");
    let text = m.encode();
    assert!(text.contains("# TYPE aerospike_ako_aerospikecluster_phase gauge"), "{text}");
    assert_eq!(
        label_names(&text, "aerospike_ako_aerospikecluster_phase"),
        set(&["cluster_name", "cluster_namespace", "phase"])
    );
    let phase = |p| {
        value(
            &text,
            "aerospike_ako_aerospikecluster_phase",
            &[("cluster_name", "aerocluster"), ("cluster_namespace", "aerospike"), ("phase", p)],
        )
    };
    assert_eq!(phase("Completed"), Some(1.0));
    assert_eq!(phase("InProgress"), Some(0.0));
    assert_eq!(phase("Error"), Some(0.0));

    m.set_phase("aerospike", "aerocluster", "Error");
    let text = m.encode();
    assert_eq!(
        value(&text, "aerospike_ako_aerospikecluster_phase", &[("cluster_name", "aerocluster"), ("phase", "Error")]),
        Some(1.0)
    );
}

#[test]
fn a_deleted_cluster_leaves_no_series() {
    let m = Metrics::default();
    m.set_phase("ns", "gone", "InProgress");
    m.set_rollout("ns", "gone", 1, 3);
    m.pod_restarted("ns", "gone");
    m.safety_refusal("ns", "gone", "MigrationsPending");
    m.set_phase("ns", "kept", "Completed");
    m.forget("ns", "gone");
    let text = m.encode();
    assert!(
        !samples(&text).iter().any(|(_, l, _)| l.get("cluster_name").map(String::as_str) == Some("gone")),
        "{text}"
    );
    assert_eq!(
        value(&text, "aerospike_ako_aerospikecluster_phase", &[("cluster_name", "kept"), ("phase", "Completed")]),
        Some(1.0)
    );
}

#[test]
fn controller_runtime_metrics_count_reconciles_by_result() {
    let m = Metrics::default();
    m.reconcile_timer().finish(true);
    m.reconcile_timer().finish(true);
    m.reconcile_timer().finish(false);
    let text = m.encode();
    let total =
        |result| value(&text, "controller_runtime_reconcile_total", &[("controller", CONTROLLER), ("result", result)]);
    assert_eq!(total("success"), Some(2.0));
    assert_eq!(total("error"), Some(1.0));
    assert_eq!(value(&text, "controller_runtime_reconcile_errors_total", &[("controller", CONTROLLER)]), Some(1.0));
    assert_eq!(
        value(&text, "controller_runtime_reconcile_time_seconds_count", &[("controller", CONTROLLER)]),
        Some(3.0)
    );
    assert_eq!(label_names(&text, "controller_runtime_reconcile_time_seconds_bucket"), set(&["controller", "le"]));
    assert!(text.contains("# TYPE controller_runtime_reconcile_time_seconds histogram"), "{text}");
}

#[test]
fn ours_carry_the_cluster_labels_and_their_causes() {
    let m = Metrics::default();
    m.failure("conflict");
    m.set_rollout("aerospike", "c1", 2, 3);
    m.pod_restarted("aerospike", "c1");
    m.safety_refusal("aerospike", "c1", "NodeUnreachable");
    m.safety_refusal("aerospike", "c1", "NodeUnreachable");
    m.set_leader(true);
    let text = m.encode();
    let c1 = [("cluster_name", "c1"), ("cluster_namespace", "aerospike")];
    assert_eq!(value(&text, "aerospike_ako_reconcile_failures_total", &[("reason", "conflict")]), Some(1.0));
    assert_eq!(value(&text, "aerospike_ako_rollout_pods_updated", &c1), Some(2.0));
    assert_eq!(value(&text, "aerospike_ako_rollout_pods_desired", &c1), Some(3.0));
    assert_eq!(value(&text, "aerospike_ako_pod_restarts_total", &c1), Some(1.0));
    assert_eq!(
        value(&text, "aerospike_ako_safety_refusals_total", &[("cluster_name", "c1"), ("cause", "NodeUnreachable")]),
        Some(2.0)
    );
    assert_eq!(
        label_names(&text, "aerospike_ako_safety_refusals_total"),
        set(&["cause", "cluster_name", "cluster_namespace"])
    );
    assert_eq!(value(&text, "leader_election_master_status", &[("name", LEASE_NAME)]), Some(1.0));
    m.set_leader(false);
    assert_eq!(value(&m.encode(), "leader_election_master_status", &[("name", LEASE_NAME)]), Some(0.0));
    assert_eq!(value(&text, "aerospike_ako_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
}

#[test]
fn webhook_admissions_are_counted_by_result() {
    // The family is process-wide (other tests answer reviews too): compare before and after.
    let read = |result| {
        value(
            &Metrics::default().encode(),
            "aerospike_ako_webhook_admissions_total",
            &[("webhook", "validating"), ("result", result)],
        )
        .unwrap_or(0.0)
    };
    let before = read("invalid");
    crate::webhook::review(crate::webhook::VALIDATE_PATH, b"not json");
    assert_eq!(read("invalid"), before + 1.0);
}

/// Every name README documents is one /metrics serves, and the other way round.
#[test]
fn readme_documents_every_metric() {
    let m = Metrics::default();
    m.set_phase("a", "b", "Completed");
    m.set_rollout("a", "b", 1, 1);
    m.pod_restarted("a", "b");
    m.safety_refusal("a", "b", "PodMissing");
    m.failure("kube");
    m.set_leader(true);
    m.reconcile_timer().finish(true);
    crate::metrics::webhook_admission("mutating", "allowed");
    let served: BTreeSet<String> = m
        .encode()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            if kind == "counter" { format!("{name}_total") } else { name.to_string() }
        })
        .collect();
    let readme = include_str!("../../README.md");
    let section = readme.split("### Operator metrics").nth(1).expect("README has a section `### Operator metrics`");
    let section = section.split("\n#").next().unwrap();
    let documented: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(|n| n.split('{').next().unwrap().to_string())
        .collect();
    assert_eq!(documented, served);
}

#[test]
fn counters_start_at_zero_so_the_first_increase_is_seen() {
    let m = Metrics::default();
    m.set_rollout("ns", "c", 0, 3);
    let text = m.encode();
    let c = [("cluster_name", "c"), ("cluster_namespace", "ns")];
    assert_eq!(value(&text, "aerospike_ako_pod_restarts_total", &c), Some(0.0));
    for cause in REFUSAL_CAUSES {
        assert_eq!(
            value(&text, "aerospike_ako_safety_refusals_total", &[("cluster_name", "c"), ("cause", cause)]),
            Some(0.0),
            "{cause}"
        );
    }
    for reason in FAILURE_REASONS {
        assert_eq!(value(&text, "aerospike_ako_reconcile_failures_total", &[("reason", reason)]), Some(0.0));
    }
    assert_eq!(
        value(&text, "controller_runtime_reconcile_total", &[("controller", CONTROLLER), ("result", "error")]),
        Some(0.0)
    );
}
