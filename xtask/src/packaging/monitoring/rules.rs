//! The alert rules (one list, the source of the rule files, the PrometheusRule and promtool's unit tests): each
//! alert carries the series it must fire on and a healthy series it must stay silent on.
use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The `job` label the scrape objects give the exporters' and the operator's targets (the reference's rules filter
/// on `job="aerospike"`, so they work on the same scrape).
pub const EXPORTER_JOB: &str = "aerospike";
pub const OPERATOR_JOB: &str = "aerospike-kubernetes-operator";

pub struct Alert {
    pub name: &'static str,
    pub expr: &'static str,
    pub for_: &'static str,
    pub severity: &'static str,
    pub summary: &'static str,
    /// What it means and what to do (runbook style).
    pub description: &'static str,
    /// promtool: input series (`series`, `values` at 1m steps) on which the alert fires at `eval_time`, with these
    /// labels (besides `severity`).
    pub fires: &'static [(&'static str, &'static str)],
    pub fires_labels: &'static [(&'static str, &'static str)],
    /// promtool: healthy input series on which it stays silent at `eval_time`.
    pub silent: &'static [(&'static str, &'static str)],
    pub eval_time: &'static str,
}

pub struct Group {
    pub name: &'static str,
    /// The rule file (under config/monitoring/rules).
    pub file: &'static str,
    pub alerts: Vec<Alert>,
}

const NODE_LABELS: &[(&str, &str)] = &[
    ("job", "aerospike"),
    ("instance", "10.0.0.1:9145"),
    ("namespace", "aerospike"),
    ("pod", "c-1-0"),
    ("cluster_name", "c"),
    ("service", "10.0.0.1:3000"),
];
const NS_LABELS: &[(&str, &str)] = &[
    ("job", "aerospike"),
    ("instance", "10.0.0.1:9145"),
    ("namespace", "aerospike"),
    ("pod", "c-1-0"),
    ("cluster_name", "c"),
    ("service", "10.0.0.1:3000"),
    ("ns", "test"),
];

// `concat!` takes literals only: the series of NODE_LABELS and NS_LABELS, spelled out.
macro_rules! node {
    ($metric:literal) => {
        concat!(
            $metric,
            r#"{job="aerospike",instance="10.0.0.1:9145",namespace="aerospike",pod="c-1-0",cluster_name="c",service="10.0.0.1:3000"}"#
        )
    };
}
macro_rules! ns {
    ($metric:literal) => {
        concat!(
            $metric,
            r#"{job="aerospike",instance="10.0.0.1:9145",namespace="aerospike",pod="c-1-0",cluster_name="c",service="10.0.0.1:3000",ns="test"}"#
        )
    };
}

pub fn groups() -> Vec<Group> {
    vec![
        Group {
            name: "aerospike-kubernetes-operator",
            file: "aerospike-kubernetes-operator.rules.yml",
            alerts: vec![
                Alert {
                    name: "AerospikeClusterNotCompleted",
                    expr: r#"max by (cluster_namespace, cluster_name) (aerospike_ako_aerospikecluster_phase{phase!="Completed"}) == 1"#,
                    for_: "30m",
                    severity: "warning",
                    summary: "AerospikeCluster {{ $labels.cluster_namespace }}/{{ $labels.cluster_name }} has not been Completed for 30 minutes",
                    description: "The operator has been rolling out or refusing the spec of {{ $labels.cluster_namespace }}/{{ $labels.cluster_name }} for 30 minutes. Run `kubectl -n {{ $labels.cluster_namespace }} describe aerospikecluster {{ $labels.cluster_name }}`: the Progressing and Degraded conditions and the Warning Events say what it waits for (pods not Ready, migrations, an unreachable node, an invalid spec).",
                    fires: &[(
                        r#"aerospike_ako_aerospikecluster_phase{job="aerospike-kubernetes-operator",cluster_name="c",cluster_namespace="aerospike",phase="InProgress"}"#,
                        "1x50",
                    )],
                    fires_labels: &[("cluster_name", "c"), ("cluster_namespace", "aerospike")],
                    silent: &[
                        (
                            r#"aerospike_ako_aerospikecluster_phase{job="aerospike-kubernetes-operator",cluster_name="c",cluster_namespace="aerospike",phase="InProgress"}"#,
                            "1x20 0x30",
                        ),
                        (
                            r#"aerospike_ako_aerospikecluster_phase{job="aerospike-kubernetes-operator",cluster_name="c",cluster_namespace="aerospike",phase="Completed"}"#,
                            "0x20 1x30",
                        ),
                    ],
                    eval_time: "45m",
                },
                Alert {
                    name: "AerospikeOperatorReconcileErrors",
                    expr: r#"sum by (controller) (increase(controller_runtime_reconcile_errors_total{controller="aerospikecluster"}[10m])) > 0"#,
                    for_: "15m",
                    severity: "warning",
                    summary: "The Aerospike operator's reconciles keep failing",
                    description: "Reconciles of AerospikeClusters have returned errors for 15 minutes (aerospike_ako_reconcile_failures_total says of which kind: conflict, forbidden, kube, ...). Read the operator's logs (`kubectl -n aerospike-operator logs deploy/aerospike-kubernetes-operator`); forbidden usually means RBAC does not cover a watched namespace.",
                    fires: &[(
                        r#"controller_runtime_reconcile_errors_total{job="aerospike-kubernetes-operator",instance="10.0.0.9:8080",controller="aerospikecluster"}"#,
                        "0+1x40",
                    )],
                    fires_labels: &[("controller", "aerospikecluster")],
                    silent: &[(
                        r#"controller_runtime_reconcile_errors_total{job="aerospike-kubernetes-operator",instance="10.0.0.9:8080",controller="aerospikecluster"}"#,
                        "0+1x5 5x35",
                    )],
                    eval_time: "35m",
                },
                Alert {
                    name: "AerospikeOperatorSafetyRefusals",
                    expr: "sum by (cluster_namespace, cluster_name, cause) (increase(aerospike_ako_safety_refusals_total[10m])) > 0",
                    for_: "15m",
                    severity: "warning",
                    summary: "Rollout of {{ $labels.cluster_namespace }}/{{ $labels.cluster_name }} refused for 15 minutes: {{ $labels.cause }}",
                    description: "The operator keeps refusing a restart or scale-down of {{ $labels.cluster_namespace }}/{{ $labels.cluster_name }} because a safety check fails ({{ $labels.cause }}): no pod is touched while a node does not answer, migrations do not progress, partitions are unavailable or a pod is missing. The cluster's Degraded condition and Warning Events name the node or namespace; fix that and the rollout resumes by itself.",
                    fires: &[(
                        r#"aerospike_ako_safety_refusals_total{job="aerospike-kubernetes-operator",cluster_name="c",cluster_namespace="aerospike",cause="NodeUnreachable"}"#,
                        "0+2x40",
                    )],
                    fires_labels: &[
                        ("cluster_name", "c"),
                        ("cluster_namespace", "aerospike"),
                        ("cause", "NodeUnreachable"),
                    ],
                    silent: &[(
                        r#"aerospike_ako_safety_refusals_total{job="aerospike-kubernetes-operator",cluster_name="c",cluster_namespace="aerospike",cause="NodeUnreachable"}"#,
                        "0+2x3 6x37",
                    )],
                    eval_time: "35m",
                },
                Alert {
                    name: "AerospikeOperatorNoLeader",
                    expr: r#"(max(leader_election_master_status{name="aerospike-kubernetes-operator"}) or vector(0)) < 1"#,
                    for_: "5m",
                    severity: "critical",
                    summary: "No Aerospike operator instance is leading",
                    description: "No instance of the operator reports holding the Lease aerospike-kubernetes-operator (or none is scraped): AerospikeClusters are not reconciled. Check the operator Deployment's pods (`kubectl -n aerospike-operator get pods`) and the Lease (`kubectl -n aerospike-operator get lease aerospike-kubernetes-operator -o yaml`).",
                    fires: &[(
                        r#"leader_election_master_status{job="aerospike-kubernetes-operator",instance="10.0.0.9:8080",name="aerospike-kubernetes-operator"}"#,
                        "0x20",
                    )],
                    fires_labels: &[],
                    silent: &[
                        (
                            r#"leader_election_master_status{job="aerospike-kubernetes-operator",instance="10.0.0.9:8080",name="aerospike-kubernetes-operator"}"#,
                            "0x20",
                        ),
                        (
                            r#"leader_election_master_status{job="aerospike-kubernetes-operator",instance="10.0.0.10:8080",name="aerospike-kubernetes-operator"}"#,
                            "1x20",
                        ),
                    ],
                    eval_time: "15m",
                },
            ],
        },
        Group {
            name: "aerospike",
            file: "aerospike.rules.yml",
            alerts: vec![
                Alert {
                    name: "AerospikeExporterDown",
                    expr: r#"up{job="aerospike"} == 0"#,
                    for_: "1m",
                    severity: "warning",
                    summary: "Aerospike exporter {{ $labels.namespace }}/{{ $labels.pod }} cannot be scraped",
                    description: "Prometheus cannot scrape the exporter sidecar of {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.instance }}): its node is not monitored. Check the pod's `exporter` container and that the port named `exporter` is declared.",
                    fires: &[(
                        r#"up{job="aerospike",instance="10.0.0.1:9145",namespace="aerospike",pod="c-1-0"}"#,
                        "0x10",
                    )],
                    fires_labels: &[
                        ("job", "aerospike"),
                        ("instance", "10.0.0.1:9145"),
                        ("namespace", "aerospike"),
                        ("pod", "c-1-0"),
                    ],
                    silent: &[(
                        r#"up{job="aerospike",instance="10.0.0.1:9145",namespace="aerospike",pod="c-1-0"}"#,
                        "1x10",
                    )],
                    eval_time: "5m",
                },
                Alert {
                    name: "AerospikeNodeDown",
                    expr: r#"aerospike_node_up{job="aerospike"} == 0"#,
                    for_: "30s",
                    severity: "critical",
                    summary: "Aerospike node {{ $labels.namespace }}/{{ $labels.pod }} is down",
                    description: "The exporter beside {{ $labels.namespace }}/{{ $labels.pod }} cannot reach its Aerospike server ({{ $labels.service }}) for 30 seconds: the asd process is not running or not answering. Check the server container's logs and restarts; the operator refuses further restarts in the cluster until the node answers again.",
                    fires: &[(node!("aerospike_node_up"), "1 1 0x10")],
                    fires_labels: NODE_LABELS,
                    silent: &[(node!("aerospike_node_up"), "1x10")],
                    eval_time: "5m",
                },
                Alert {
                    name: "AerospikeClusterSizeMismatch",
                    expr: r#"min by (namespace, cluster_name) (aerospike_node_stats_cluster_size{job="aerospike"}) < count by (namespace, cluster_name) (aerospike_node_up{job="aerospike"})"#,
                    for_: "1m",
                    severity: "critical",
                    summary: "Aerospike cluster {{ $labels.namespace }}/{{ $labels.cluster_name }} has fewer members than exporters",
                    description: "A node of {{ $labels.cluster_name }} in {{ $labels.namespace }} sees a smaller cluster than there are Aerospike pods: a node is down or the cluster has split. Compare `asadm -e info` on the nodes; check the heartbeat network and the pods that restarted.",
                    fires: &[
                        (
                            r#"aerospike_node_stats_cluster_size{job="aerospike",namespace="aerospike",cluster_name="c",pod="c-1-0"}"#,
                            "2x10",
                        ),
                        (
                            r#"aerospike_node_stats_cluster_size{job="aerospike",namespace="aerospike",cluster_name="c",pod="c-1-1"}"#,
                            "2x10",
                        ),
                        (
                            r#"aerospike_node_up{job="aerospike",namespace="aerospike",cluster_name="c",pod="c-1-0"}"#,
                            "1x10",
                        ),
                        (
                            r#"aerospike_node_up{job="aerospike",namespace="aerospike",cluster_name="c",pod="c-1-1"}"#,
                            "1x10",
                        ),
                        (
                            r#"aerospike_node_up{job="aerospike",namespace="aerospike",cluster_name="c",pod="c-1-2"}"#,
                            "0x10",
                        ),
                    ],
                    fires_labels: &[("namespace", "aerospike"), ("cluster_name", "c")],
                    silent: &[
                        (
                            r#"aerospike_node_stats_cluster_size{job="aerospike",namespace="aerospike",cluster_name="c",pod="c-1-0"}"#,
                            "2x10",
                        ),
                        (
                            r#"aerospike_node_stats_cluster_size{job="aerospike",namespace="aerospike",cluster_name="c",pod="c-1-1"}"#,
                            "2x10",
                        ),
                        (
                            r#"aerospike_node_up{job="aerospike",namespace="aerospike",cluster_name="c",pod="c-1-0"}"#,
                            "1x10",
                        ),
                        (
                            r#"aerospike_node_up{job="aerospike",namespace="aerospike",cluster_name="c",pod="c-1-1"}"#,
                            "1x10",
                        ),
                    ],
                    eval_time: "5m",
                },
                Alert {
                    name: "AerospikeStopWrites",
                    expr: r#"aerospike_namespace_stop_writes{job="aerospike"} == 1"#,
                    for_: "30s",
                    severity: "critical",
                    summary: "Namespace {{ $labels.ns }} stops writes on {{ $labels.namespace }}/{{ $labels.pod }}",
                    description: "Node {{ $labels.pod }} refuses writes to namespace {{ $labels.ns }}: storage or memory reached its stop-writes limit (stop-writes-avail-pct, stop-writes-used-pct, stop-writes-sys-memory-pct) or clocks skewed. Free space (delete or expire data, add nodes or storage) or raise the limits with care.",
                    fires: &[(ns!("aerospike_namespace_stop_writes"), "0 0 1x10")],
                    fires_labels: NS_LABELS,
                    silent: &[(ns!("aerospike_namespace_stop_writes"), "0x10")],
                    eval_time: "5m",
                },
                Alert {
                    name: "AerospikeNamespaceDataCloseToStopWrites",
                    expr: r#"(aerospike_namespace_data_avail_pct{job="aerospike"} - aerospike_namespace_storage_engine_stop_writes_avail_pct{job="aerospike"}) <= 10"#,
                    for_: "5m",
                    severity: "warning",
                    summary: "Namespace {{ $labels.ns }} on {{ $labels.namespace }}/{{ $labels.pod }} is close to stop-writes (storage)",
                    description: "The available storage of namespace {{ $labels.ns }} on {{ $labels.pod }} is within 10 points of stop-writes-avail-pct: writes will stop soon. Add storage or nodes, lower the data's TTLs, or check that defragmentation keeps up.",
                    fires: &[
                        (ns!("aerospike_namespace_data_avail_pct"), "12x10"),
                        (ns!("aerospike_namespace_storage_engine_stop_writes_avail_pct"), "5x10"),
                    ],
                    fires_labels: NS_LABELS,
                    silent: &[
                        (ns!("aerospike_namespace_data_avail_pct"), "60x10"),
                        (ns!("aerospike_namespace_storage_engine_stop_writes_avail_pct"), "5x10"),
                    ],
                    eval_time: "8m",
                },
                Alert {
                    name: "AerospikeSystemMemoryCloseToStopWrites",
                    expr: r#"(aerospike_namespace_stop_writes_sys_memory_pct{job="aerospike"} - ignoring (ns) group_left () (100 - aerospike_node_stats_system_free_mem_pct{job="aerospike"})) <= 10"#,
                    for_: "5m",
                    severity: "warning",
                    summary: "Namespace {{ $labels.ns }} on {{ $labels.namespace }}/{{ $labels.pod }} is close to stop-writes (system memory)",
                    description: "The node's used memory is within 10 points of the namespace's stop-writes-sys-memory-pct: writes to {{ $labels.ns }} will stop soon. Give the pods more memory (spec.podSpec.aerospikeContainer.resources), add nodes, or reduce the index and data kept in memory.",
                    fires: &[
                        (ns!("aerospike_namespace_stop_writes_sys_memory_pct"), "90x10"),
                        (node!("aerospike_node_stats_system_free_mem_pct"), "15x10"),
                    ],
                    fires_labels: NS_LABELS,
                    silent: &[
                        (ns!("aerospike_namespace_stop_writes_sys_memory_pct"), "90x10"),
                        (node!("aerospike_node_stats_system_free_mem_pct"), "60x10"),
                    ],
                    eval_time: "8m",
                },
                Alert {
                    name: "AerospikeLowSystemMemory",
                    expr: r#"aerospike_node_stats_system_free_mem_pct{job="aerospike"} < 20"#,
                    for_: "5m",
                    severity: "warning",
                    summary: "Aerospike node {{ $labels.namespace }}/{{ $labels.pod }} has less than 20% free memory",
                    description: "System memory on {{ $labels.pod }} is running out; the kernel may kill asd. Raise the container's memory, add nodes, or reduce memory use.",
                    fires: &[(node!("aerospike_node_stats_system_free_mem_pct"), "15x10")],
                    fires_labels: NODE_LABELS,
                    silent: &[(node!("aerospike_node_stats_system_free_mem_pct"), "60x10")],
                    eval_time: "8m",
                },
                Alert {
                    name: "AerospikeHighWaterMarkBreached",
                    expr: r#"aerospike_namespace_hwm_breached{job="aerospike"} == 1"#,
                    for_: "5m",
                    severity: "warning",
                    summary: "Namespace {{ $labels.ns }} on {{ $labels.namespace }}/{{ $labels.pod }} is above its eviction high-water mark",
                    description: "Namespace {{ $labels.ns }} on {{ $labels.pod }} breached an eviction threshold (evict-used-pct / high-water marks): records with TTLs are being evicted early. Add capacity or review the thresholds.",
                    fires: &[(ns!("aerospike_namespace_hwm_breached"), "1x10")],
                    fires_labels: NS_LABELS,
                    silent: &[(ns!("aerospike_namespace_hwm_breached"), "0x10")],
                    eval_time: "8m",
                },
                Alert {
                    name: "AerospikeMigrationsStuck",
                    expr: r#"(sum by (namespace, cluster_name, ns) (aerospike_namespace_migrate_tx_partitions_remaining{job="aerospike"} + aerospike_namespace_migrate_rx_partitions_remaining{job="aerospike"}) > 0) and (sum by (namespace, cluster_name, ns) (changes(aerospike_namespace_migrate_tx_partitions_remaining{job="aerospike"}[15m]) + changes(aerospike_namespace_migrate_rx_partitions_remaining{job="aerospike"}[15m])) == 0)"#,
                    for_: "15m",
                    severity: "warning",
                    summary: "Migrations of {{ $labels.ns }} in {{ $labels.namespace }}/{{ $labels.cluster_name }} are stuck",
                    description: "Partitions of namespace {{ $labels.ns }} remain to migrate but not one moved for 30 minutes; the operator holds restarts and scale-downs meanwhile (Degraded, MigrationsPending). Check the fabric network between the pods and the nodes' logs for migration errors.",
                    fires: &[
                        (ns!("aerospike_namespace_migrate_tx_partitions_remaining"), "100x60"),
                        (ns!("aerospike_namespace_migrate_rx_partitions_remaining"), "0x60"),
                    ],
                    fires_labels: &[("namespace", "aerospike"), ("cluster_name", "c"), ("ns", "test")],
                    silent: &[
                        (ns!("aerospike_namespace_migrate_tx_partitions_remaining"), "4000-50x60"),
                        (ns!("aerospike_namespace_migrate_rx_partitions_remaining"), "0x60"),
                    ],
                    eval_time: "45m",
                },
                Alert {
                    name: "AerospikeUnavailablePartitions",
                    expr: r#"aerospike_namespace_unavailable_partitions{job="aerospike"} > 0"#,
                    for_: "1m",
                    severity: "critical",
                    summary: "Namespace {{ $labels.ns }} has unavailable partitions ({{ $labels.namespace }}/{{ $labels.pod }})",
                    description: "Strong-consistency namespace {{ $labels.ns }} cannot serve some partitions: roster nodes are missing from the cluster. Bring the missing nodes back (check pods and their storage); the operator restarts nothing while partitions are unavailable.",
                    fires: &[(ns!("aerospike_namespace_unavailable_partitions"), "12x10")],
                    fires_labels: NS_LABELS,
                    silent: &[(ns!("aerospike_namespace_unavailable_partitions"), "0x10")],
                    eval_time: "5m",
                },
                Alert {
                    name: "AerospikeDeadPartitions",
                    expr: r#"aerospike_namespace_dead_partitions{job="aerospike"} > 0"#,
                    for_: "1m",
                    severity: "critical",
                    summary: "Namespace {{ $labels.ns }} has dead partitions ({{ $labels.namespace }}/{{ $labels.pod }})",
                    description: "Strong-consistency namespace {{ $labels.ns }} has dead partitions: every roster node is present but data may have been lost (more than replication-factor nodes shut down uncleanly). Only an administrator's `revive` makes them available again, after judging the loss; the operator never revives.",
                    fires: &[(ns!("aerospike_namespace_dead_partitions"), "3x10")],
                    fires_labels: NS_LABELS,
                    silent: &[(ns!("aerospike_namespace_dead_partitions"), "0x10")],
                    eval_time: "5m",
                },
                Alert {
                    name: "AerospikeClockSkew",
                    expr: r#"aerospike_node_stats_cluster_clock_skew_ms{job="aerospike"} > 2000"#,
                    for_: "1m",
                    severity: "warning",
                    summary: "Clock skew of {{ $labels.namespace }}/{{ $labels.cluster_name }} above 2 s",
                    description: "The nodes' clocks differ by more than 2 seconds; past the cluster's limit (about 27 s with strong consistency or nsup) writes stop. Check NTP on the Kubernetes nodes that run the pods.",
                    fires: &[(node!("aerospike_node_stats_cluster_clock_skew_ms"), "5000x10")],
                    fires_labels: NODE_LABELS,
                    silent: &[(node!("aerospike_node_stats_cluster_clock_skew_ms"), "10x10")],
                    eval_time: "5m",
                },
                Alert {
                    name: "AerospikeClockSkewStopWrites",
                    expr: r#"aerospike_namespace_clock_skew_stop_writes{job="aerospike"} == 1"#,
                    for_: "30s",
                    severity: "critical",
                    summary: "Namespace {{ $labels.ns }} stops writes for clock skew ({{ $labels.namespace }}/{{ $labels.pod }})",
                    description: "Clock skew between the nodes exceeded the limit and namespace {{ $labels.ns }} refuses writes. Fix time synchronisation on the Kubernetes nodes; writes resume once the skew is back under the limit.",
                    fires: &[(ns!("aerospike_namespace_clock_skew_stop_writes"), "1x10")],
                    fires_labels: NS_LABELS,
                    silent: &[(ns!("aerospike_namespace_clock_skew_stop_writes"), "0x10")],
                    eval_time: "5m",
                },
            ],
        },
    ]
}

/// A rule as Prometheus' rule files spell it.
fn rule(a: &Alert) -> Value {
    json!({
        "alert": a.name,
        "expr": a.expr,
        "for": a.for_,
        "labels": {"severity": a.severity},
        "annotations": {"summary": a.summary, "description": a.description},
    })
}

/// A group as rule files and PrometheusRule objects spell it.
pub fn group_value(g: &Group) -> Value {
    json!({"name": g.name, "rules": g.alerts.iter().map(rule).collect::<Vec<_>>()})
}

/// Fills `{{ $labels.x }}` as Prometheus' templates do (the only template form the annotations use).
pub fn render(template: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = template.to_string();
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    out
}

/// promtool's unit tests of one rule file: per alert, one test where it fires and one where it stays silent.
pub fn unit_tests(g: &Group) -> Value {
    let series = |s: &[(&str, &str)]| -> Vec<Value> {
        s.iter().map(|(series, values)| json!({"series": series, "values": values})).collect()
    };
    let mut tests = Vec::new();
    for a in &g.alerts {
        let labels: BTreeMap<String, String> =
            a.fires_labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut exp_labels = labels.clone();
        exp_labels.insert("severity".into(), a.severity.into());
        tests.push(json!({
            "name": format!("{} fires", a.name),
            "interval": "1m",
            "input_series": series(a.fires),
            "alert_rule_test": [{
                "eval_time": a.eval_time,
                "alertname": a.name,
                "exp_alerts": [{
                    "exp_labels": exp_labels,
                    "exp_annotations": {
                        "summary": render(a.summary, &labels),
                        "description": render(a.description, &labels),
                    },
                }],
            }],
        }));
        tests.push(json!({
            "name": format!("{} stays silent", a.name),
            "interval": "1m",
            "input_series": series(a.silent),
            "alert_rule_test": [{"eval_time": a.eval_time, "alertname": a.name, "exp_alerts": []}],
        }));
    }
    json!({"rule_files": [format!("../{}", g.file)], "evaluation_interval": "1m", "tests": tests})
}
