//! config/monitoring: how Prometheus watches the operator and the Aerospike nodes, from one source.
//!
//! - `podmonitor.yaml`, `servicemonitor.yaml`, `prometheusrule.yaml`: Prometheus Operator objects (the exporters
//!   of pods labelled `app=aerospike-cluster` on the port named `exporter`; the operator's metrics Service; the
//!   alert rules);
//! - `prometheus.yml` and `rules/*.rules.yml`: the same for a plain Prometheus (Kubernetes service discovery);
//! - `rules/tests/*.test.yml`: promtool's unit tests of every alert (it fires, it stays silent);
//! - `dashboards/*.json`: Grafana dashboards of the operator and of an Aerospike cluster;
//! - `aerospikecluster-with-exporter.yaml`: a cluster with the official exporter as a sidecar.
//!
//! They are not in the OLM bundle: OLM would refuse the install on a cluster without the Prometheus Operator's
//! CRDs. README says how to apply them.
pub mod dashboards;
pub mod rules;

use anyhow::Result;
use serde_json::{Value, json};

use crate::out::{self, Staged};
use crate::packaging::manifests;
use crate::project::{OPERATOR_NAMESPACE, PACKAGE};

pub const DIR: &str = "config/monitoring";
/// The exporter's port, as its image and the reference's docs declare it.
pub const EXPORTER_PORT: i32 = 9145;
pub const EXPORTER_PORT_NAME: &str = "exporter";
pub const EXPORTER_IMAGE: &str = "aerospike/aerospike-prometheus-exporter:1.16.1";
/// The label every Aerospike pod carries (the reference's too).
pub const POD_LABEL: (&str, &str) = ("app", "aerospike-cluster");
/// The sample cluster with the exporter sidecar.
pub const SAMPLE_FILE: &str = "aerospikecluster-with-exporter.yaml";
pub const PROMETHEUS_CONFIG: &str = "prometheus.yml";

fn part_of() -> Value {
    json!({"app.kubernetes.io/part-of": PACKAGE})
}

/// Sets `job` on every target, so rules and dashboards select the exporters with `job="aerospike"` and the
/// operator with `job="aerospike-kubernetes-operator"` whichever way Prometheus found them.
fn job_relabeling(job: &str) -> Value {
    json!({"targetLabel": "job", "replacement": job, "action": "replace"})
}

pub fn pod_monitor() -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "aerospike-exporter", "namespace": OPERATOR_NAMESPACE, "labels": part_of()},
        "spec": {
            "namespaceSelector": {"any": true},
            "selector": {"matchLabels": {POD_LABEL.0: POD_LABEL.1}},
            "podMetricsEndpoints": [{
                "port": EXPORTER_PORT_NAME,
                "path": "/metrics",
                "interval": "15s",
                "relabelings": [job_relabeling(rules::EXPORTER_JOB)],
            }],
        },
    })
}

pub fn service_monitor() -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": format!("{PACKAGE}-metrics"), "namespace": OPERATOR_NAMESPACE, "labels": part_of()},
        "spec": {
            // OLM installs the operator in a namespace of the user's choice.
            "namespaceSelector": {"any": true},
            "selector": {"matchLabels": {"app.kubernetes.io/name": PACKAGE}},
            "endpoints": [{
                "port": "metrics",
                "path": "/metrics",
                "interval": "15s",
                "relabelings": [job_relabeling(rules::OPERATOR_JOB)],
            }],
        },
    })
}

pub fn prometheus_rule() -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": format!("{PACKAGE}-rules"), "namespace": OPERATOR_NAMESPACE, "labels": part_of()},
        "spec": {"groups": rules::groups().iter().map(rules::group_value).collect::<Vec<_>>()},
    })
}

/// The scrape job of the exporters for a plain Prometheus: the PodMonitor's selection, with the target labels
/// the Prometheus Operator adds (namespace, pod, container).
pub fn exporter_scrape_job() -> Value {
    let keep = |label: &str, regex: &str| json!({"source_labels": [label], "regex": regex, "action": "keep"});
    let copy = |label: &str, target: &str| json!({"source_labels": [label], "target_label": target});
    json!({
        "job_name": rules::EXPORTER_JOB,
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            keep(&format!("__meta_kubernetes_pod_label_{}", POD_LABEL.0), POD_LABEL.1),
            keep("__meta_kubernetes_pod_container_port_name", EXPORTER_PORT_NAME),
            copy("__meta_kubernetes_namespace", "namespace"),
            copy("__meta_kubernetes_pod_name", "pod"),
            copy("__meta_kubernetes_pod_container_name", "container"),
        ],
    })
}

/// The operator's job for a plain Prometheus: the endpoints of its metrics Service.
pub fn operator_scrape_job() -> Value {
    let keep = |label: &str, regex: &str| json!({"source_labels": [label], "regex": regex, "action": "keep"});
    let copy = |label: &str, target: &str| json!({"source_labels": [label], "target_label": target});
    json!({
        "job_name": rules::OPERATOR_JOB,
        "kubernetes_sd_configs": [{"role": "endpoints"}],
        "relabel_configs": [
            keep("__meta_kubernetes_service_label_app_kubernetes_io_name", PACKAGE),
            keep("__meta_kubernetes_endpoint_port_name", "metrics"),
            copy("__meta_kubernetes_namespace", "namespace"),
            copy("__meta_kubernetes_pod_name", "pod"),
        ],
    })
}

pub fn rule_file_paths() -> Vec<String> {
    rules::groups().iter().map(|g| format!("rules/{}", g.file)).collect()
}

/// prometheus.yml for users without the Prometheus Operator (rule files relative to it).
pub fn prometheus_config() -> Value {
    json!({
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": rule_file_paths(),
        "scrape_configs": [operator_scrape_job(), exporter_scrape_job()],
    })
}

/// `config` with every job's Kubernetes service discovery replaced by file discovery from `<dir>/<job>.json`,
/// keeping its relabelling. Debian's Prometheus is built without Kubernetes discovery: the local plane's tests
/// write those files with the same `__meta_kubernetes_*` labels Kubernetes discovery gives, so the committed
/// relabelling is what selects the targets.
pub fn with_file_sd(mut config: Value, dir: &std::path::Path) -> Value {
    if let Some(jobs) = config["scrape_configs"].as_array_mut() {
        for job in jobs {
            let name = job["job_name"].as_str().unwrap_or_default().to_string();
            if let Some(obj) = job.as_object_mut()
                && obj.remove("kubernetes_sd_configs").is_some()
            {
                let file = dir.join(format!("{name}.json"));
                obj.insert("file_sd_configs".into(), json!([{"files": [file], "refresh_interval": "1s"}]));
            }
        }
    }
    config
}

/// The exporter sidecar as users add it under `spec.podSpec.sidecars`: the server on localhost, the admin
/// user's password from its Secret, and the cluster and rack as labels on every metric.
pub fn exporter_sidecar(cluster: &str, admin_secret: &str) -> Value {
    json!({
        "name": "exporter",
        "image": EXPORTER_IMAGE,
        "ports": [{"name": EXPORTER_PORT_NAME, "containerPort": EXPORTER_PORT}],
        "env": [
            {"name": "AS_HOST", "value": "localhost"},
            {"name": "AS_PORT", "value": "3000"},
            {"name": "AS_AUTH_MODE", "value": "internal"},
            {"name": "AS_AUTH_USER", "value": "admin"},
            {"name": "AS_AUTH_PASSWORD", "valueFrom": {"secretKeyRef": {"name": admin_secret, "key": "password"}}},
            {"name": "AEROSPIKE_RACK_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['aerospike.com/rack-id']"}}},
            {"name": "METRIC_LABELS", "value": format!("cluster=\"{cluster}\",rack=\"$(AEROSPIKE_RACK_ID)\"")},
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
    })
}

pub const SAMPLE_CLUSTER: &str = "aerocluster-monitored";

/// A secured two-rack in-memory cluster with the exporter sidecar.
pub fn sample_cluster() -> Value {
    json!({
        "apiVersion": "asdb.aerospike.com/v1",
        "kind": "AerospikeCluster",
        "metadata": {"name": SAMPLE_CLUSTER, "namespace": "aerospike"},
        "spec": {
            "size": 3,
            "image": "aerospike/aerospike-server-enterprise:8.0.0.8",
            "rackConfig": {"namespaces": ["test"], "racks": [{"id": 1}, {"id": 2}]},
            "podSpec": {"sidecars": [exporter_sidecar(SAMPLE_CLUSTER, "auth-secret")]},
            "validationPolicy": {"skipWorkDirValidate": true},
            "storage": {"volumes": [{
                "name": "aerospike-config-secret",
                "source": {"secret": {"secretName": "aerospike-secret"}},
                "aerospike": {"path": "/etc/aerospike/secret"},
            }]},
            "aerospikeAccessControl": {"users": [{
                "name": "admin",
                "secretName": "auth-secret",
                "roles": ["sys-admin", "user-admin"],
            }]},
            "aerospikeConfig": {
                "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
                "security": {},
                "network": {"service": {"port": 3000}, "fabric": {"port": 3001}, "heartbeat": {"port": 3002}},
                "namespaces": [{"name": "test", "replication-factor": 2,
                    "storage-engine": {"type": "memory", "data-size": 1073741824}}],
            },
        },
    })
}

/// Everything under config/monitoring.
pub fn generate(staged: &mut Staged) -> Result<()> {
    const CMD: &str = "manifests";
    staged.own_dir(DIR);
    staged.yaml(CMD, format!("{DIR}/podmonitor.yaml"), out::to_yaml(&pod_monitor())?);
    staged.yaml(CMD, format!("{DIR}/servicemonitor.yaml"), out::to_yaml(&service_monitor())?);
    staged.yaml(CMD, format!("{DIR}/prometheusrule.yaml"), out::to_yaml(&prometheus_rule())?);
    staged.yaml(CMD, format!("{DIR}/{PROMETHEUS_CONFIG}"), out::to_yaml(&prometheus_config())?);
    for g in rules::groups() {
        staged.yaml(
            CMD,
            format!("{DIR}/rules/{}", g.file),
            out::to_yaml(&json!({"groups": [rules::group_value(&g)]}))?,
        );
        let test = g.file.replace(".rules.yml", ".test.yml");
        staged.yaml(CMD, format!("{DIR}/rules/tests/{test}"), out::to_yaml(&rules::unit_tests(&g))?);
    }
    for (file, dashboard) in dashboards::dashboards() {
        let mut text = serde_json::to_string_pretty(&dashboard)?;
        text.push('\n');
        staged.file(format!("{DIR}/dashboards/{file}"), text);
    }
    let sample = sample_cluster();
    let rel = format!("{DIR}/{SAMPLE_FILE}");
    manifests::check_cr(&manifests::crd_values(), &rel, &sample)?;
    staged.yaml(CMD, rel, out::to_yaml(&sample)?);
    Ok(())
}
