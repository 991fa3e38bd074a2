//! Grafana dashboards (JSON model, schema 39): the operator, and an Aerospike cluster from the exporter's metrics.
use serde_json::{Value, json};

/// One panel: a title, a kind (`timeseries`, `stat`, `table`), and its queries (expr, legend).
struct Panel {
    title: &'static str,
    kind: &'static str,
    unit: &'static str,
    queries: Vec<(String, &'static str)>,
}

fn panel(title: &'static str, kind: &'static str, unit: &'static str, queries: &[(&str, &'static str)]) -> Panel {
    Panel { title, kind, unit, queries: queries.iter().map(|(e, l)| (e.to_string(), *l)).collect() }
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn model(uid: &str, title: &str, variables: Vec<Value>, panels: Vec<Panel>) -> Value {
    let mut list = vec![json!({
        "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
    })];
    list.extend(variables);
    let panels: Vec<Value> = panels
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            // Two panels per row, 12 columns wide, 8 high.
            let (x, y) = ((i % 2) * 12, (i / 2) * 8);
            let targets: Vec<Value> = p
                .queries
                .iter()
                .enumerate()
                .map(|(j, (expr, legend))| {
                    json!({
                        "refId": char::from(b'A' + j as u8).to_string(),
                        "datasource": datasource(),
                        "expr": expr,
                        "legendFormat": legend,
                        "format": if p.kind == "table" { "table" } else { "time_series" },
                        "instant": p.kind == "table",
                    })
                })
                .collect();
            json!({
                "id": i + 1,
                "type": p.kind,
                "title": p.title,
                "datasource": datasource(),
                "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "options": {},
                "targets": targets,
            })
        })
        .collect();
    json!({
        "uid": uid,
        "title": title,
        "tags": ["aerospike"],
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "",
        "annotations": {"list": []},
        "templating": {"list": list},
        "panels": panels,
    })
}

/// A query variable over a label of `metric`.
fn variable(name: &str, label: &str, query: &str) -> Value {
    json!({
        "name": name, "label": label, "type": "query", "datasource": datasource(),
        "query": {"query": query, "refId": "var"}, "definition": query,
        "includeAll": true, "multi": true, "allValue": ".*", "refresh": 2, "sort": 1,
    })
}

fn operator() -> Value {
    let c = r#"controller="aerospikecluster""#;
    let panels = vec![
        panel(
            "Clusters by phase",
            "stat",
            "none",
            &[("sum by (phase) (aerospike_ako_aerospikecluster_phase)", "{{phase}}")],
        ),
        panel(
            "Clusters not Completed",
            "table",
            "none",
            &[(
                r#"aerospike_ako_aerospikecluster_phase{phase!="Completed"} == 1"#,
                "{{cluster_namespace}}/{{cluster_name}} {{phase}}",
            )],
        ),
        panel(
            "Reconciles per second by result",
            "timeseries",
            "ops",
            &[(&format!("sum by (result) (rate(controller_runtime_reconcile_total{{{c}}}[5m]))"), "{{result}}")],
        ),
        panel(
            "Reconcile latency",
            "timeseries",
            "s",
            &[
                (
                    &format!(
                        "histogram_quantile(0.5, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket{{{c}}}[5m])))"
                    ),
                    "p50",
                ),
                (
                    &format!(
                        "histogram_quantile(0.99, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket{{{c}}}[5m])))"
                    ),
                    "p99",
                ),
            ],
        ),
        panel(
            "Rollout progress (pods updated of desired)",
            "timeseries",
            "percentunit",
            &[(
                "aerospike_ako_rollout_pods_updated / aerospike_ako_rollout_pods_desired",
                "{{cluster_namespace}}/{{cluster_name}}",
            )],
        ),
        panel(
            "Pods restarted by the operator (1h)",
            "timeseries",
            "none",
            &[(
                "sum by (cluster_namespace, cluster_name) (increase(aerospike_ako_pod_restarts_total[1h]))",
                "{{cluster_namespace}}/{{cluster_name}}",
            )],
        ),
        panel(
            "Safety refusals by cause (1h)",
            "timeseries",
            "none",
            &[(
                "sum by (cluster_namespace, cluster_name, cause) (increase(aerospike_ako_safety_refusals_total[1h]))",
                "{{cluster_namespace}}/{{cluster_name}} {{cause}}",
            )],
        ),
        panel(
            "Reconcile failures by reason",
            "timeseries",
            "ops",
            &[("sum by (reason) (rate(aerospike_ako_reconcile_failures_total[5m]))", "{{reason}}")],
        ),
        panel(
            "Webhook admissions by result",
            "timeseries",
            "ops",
            &[(
                "sum by (webhook, result) (rate(aerospike_ako_webhook_admissions_total[5m]))",
                "{{webhook}} {{result}}",
            )],
        ),
        panel(
            "Leader",
            "stat",
            "none",
            &[(
                r#"max by (instance) (leader_election_master_status{name="aerospike-kubernetes-operator"})"#,
                "{{instance}}",
            )],
        ),
        panel("Operator version", "table", "none", &[("aerospike_ako_build_info", "{{version}}")]),
    ];
    model("aerospike-ko-operator", "Aerospike Kubernetes Operator", vec![], panels)
}

fn cluster() -> Value {
    let sel = r#"job="aerospike",namespace=~"$namespace",cluster_name=~"$cluster""#;
    let q = |template: &str| template.replace("SEL", sel);
    let panels = vec![
        panel("Nodes up", "stat", "none", &[(&q("sum(aerospike_node_up{SEL})"), "up")]),
        panel("Nodes down", "stat", "none", &[(&q("count(aerospike_node_up{SEL} == 0) or vector(0)"), "down")]),
        panel(
            "Cluster size seen by each node",
            "timeseries",
            "none",
            &[(&q("aerospike_node_stats_cluster_size{SEL}"), "{{pod}}")],
        ),
        panel(
            "Partitions left to migrate",
            "timeseries",
            "none",
            &[(
                &q(
                    "sum by (ns) (aerospike_namespace_migrate_tx_partitions_remaining{SEL} + aerospike_namespace_migrate_rx_partitions_remaining{SEL})",
                ),
                "{{ns}}",
            )],
        ),
        panel(
            "Unavailable and dead partitions",
            "timeseries",
            "none",
            &[
                (&q("sum by (ns) (aerospike_namespace_unavailable_partitions{SEL})"), "unavailable {{ns}}"),
                (&q("sum by (ns) (aerospike_namespace_dead_partitions{SEL})"), "dead {{ns}}"),
            ],
        ),
        panel("Stop writes", "stat", "none", &[(&q("max by (ns) (aerospike_namespace_stop_writes{SEL})"), "{{ns}}")]),
        panel(
            "Storage available (lowest node)",
            "timeseries",
            "percent",
            &[
                (&q("min by (ns) (aerospike_namespace_data_avail_pct{SEL})"), "available {{ns}}"),
                (
                    &q("max by (ns) (aerospike_namespace_storage_engine_stop_writes_avail_pct{SEL})"),
                    "stop-writes {{ns}}",
                ),
            ],
        ),
        panel(
            "System free memory",
            "timeseries",
            "percent",
            &[(&q("aerospike_node_stats_system_free_mem_pct{SEL}"), "{{pod}}")],
        ),
        panel(
            "Master objects",
            "timeseries",
            "short",
            &[(&q("sum by (ns) (aerospike_namespace_master_objects{SEL})"), "{{ns}}")],
        ),
        panel(
            "Client connections",
            "timeseries",
            "short",
            &[(&q("aerospike_node_stats_client_connections{SEL}"), "{{pod}}")],
        ),
        panel(
            "Clock skew",
            "timeseries",
            "ms",
            &[(&q("max(aerospike_node_stats_cluster_clock_skew_ms{SEL})"), "skew")],
        ),
    ];
    let variables = vec![
        variable("namespace", "Namespace", r#"label_values(aerospike_node_up{job="aerospike"}, namespace)"#),
        variable(
            "cluster",
            "Cluster",
            r#"label_values(aerospike_node_up{job="aerospike",namespace=~"$namespace"}, cluster_name)"#,
        ),
    ];
    model("aerospike-ko-cluster", "Aerospike cluster overview", variables, panels)
}

/// The dashboards, by file name.
pub fn dashboards() -> Vec<(&'static str, Value)> {
    vec![("aerospike-kubernetes-operator.json", operator()), ("aerospike-cluster.json", cluster())]
}

/// Every panel query of `dashboard` (the variables' queries too).
pub fn queries(dashboard: &Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().into_iter().flatten();
    panels
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect()
}

/// The metric names a PromQL query reads: identifiers followed by a selector, a range, `)` or the end, that are
/// not functions, keywords or label names. Good enough for our own queries (tested below).
pub fn metric_names(expr: &str) -> Vec<String> {
    const WORDS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "rate",
        "increase",
        "changes",
        "histogram_quantile",
        "vector",
        "or",
        "and",
        "unless",
        "bool",
        "offset",
    ];
    let bytes = expr.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    let mut in_braces = false;
    let mut in_parens_after_by = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c == '"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == '[' {
            // A range or subquery duration (`[5m]`).
            while i < bytes.len() && bytes[i] != b']' {
                i += 1;
            }
            continue;
        }
        if c == '{' {
            in_braces = true;
        } else if c == '}' {
            in_braces = false;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':') {
                i += 1;
            }
            let word = &expr[start..i];
            let rest = expr[i..].trim_start();
            let label_list = in_parens_after_by > 0;
            if WORDS.contains(&word) {
                if matches!(word, "by" | "without" | "on" | "ignoring" | "group_left" | "group_right") {
                    in_parens_after_by = 1;
                }
                continue;
            }
            if !in_braces && !label_list && !rest.starts_with('(') && !rest.starts_with('=') {
                names.push(word.to_string());
            }
            continue;
        }
        if c == ')' && in_parens_after_by > 0 {
            in_parens_after_by = 0;
        }
        i += 1;
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skip_functions_labels_and_strings() {
        assert_eq!(
            metric_names(
                r#"histogram_quantile(0.99, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket{controller="x"}[5m])))"#
            ),
            ["controller_runtime_reconcile_time_seconds_bucket"]
        );
        assert_eq!(
            metric_names(
                r#"(a_pct{job="aerospike"} - ignoring (ns) group_left () (100 - b_pct{job="aerospike"})) <= 10"#
            ),
            ["a_pct", "b_pct"]
        );
        assert_eq!(
            metric_names("aerospike_ako_rollout_pods_updated / aerospike_ako_rollout_pods_desired"),
            ["aerospike_ako_rollout_pods_desired", "aerospike_ako_rollout_pods_updated"]
        );
        assert_eq!(metric_names(r#"count(up{job="aerospike"} == 0) or vector(0)"#), ["up"]);
        assert_eq!(metric_names("sum by (reason) (rate(x_total[5m]))"), ["x_total"]);
    }
}
