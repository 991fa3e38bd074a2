//! Monitoring end to end: the committed sample cluster with the exporter sidecar reaches Completed; a real
//! Prometheus (Debian's, with the committed scrape jobs' relabelling and the committed rule files) scrapes the
//! operator's /metrics and every pod's simulated exporter; the reference's phase gauge shows the cluster with the
//! reference's labels; every dashboard query parses and names only metrics Prometheus has; and a stopped node
//! fires AerospikeNodeDown, which resolves when the node answers again.
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aerospike_kubernetes_operator::asinfo::TcpInfoClient;
use aerospike_kubernetes_operator::controller::{self, RunConfig};
use aerospike_kubernetes_operator::desired::BuildContext;
use aerospike_kubernetes_operator::metrics::Metrics;
use aerospike_kubernetes_operator::server::{self, Health};
use ako_simulator::{Fault, FaultTarget};
use ako_testbed::prometheus::{self, Prometheus};
use common::*;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use xtask::packaging::monitoring::{self, dashboards, rules};

const T: Duration = Duration::from_secs(120);

/// The operator in-process with its /metrics served on a loopback port, as the binary serves it.
async fn start_operator_with_metrics(env: &Env) -> (tokio::task::JoinHandle<()>, std::net::SocketAddr) {
    let metrics = Metrics::default();
    metrics.set_leader(true);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    tokio::spawn(server::serve(addr, server::router(Health::default(), metrics.clone()), std::future::pending()));
    let client = env.client.clone();
    let scope = ns_scope(&env.ns);
    let op = tokio::spawn(async move {
        let cfg = RunConfig {
            scope,
            build: BuildContext { init_image: "ghcr.io/aerospike-rs/aerospike-kubernetes-operator:test".into() },
            info: Arc::new(TcpInfoClient::new(Duration::from_millis(500), Duration::from_millis(1000))),
            metrics,
            instance: "e2e".into(),
            concurrency: controller::MAX_CONCURRENT_RECONCILES,
        };
        controller::run(client, cfg, || {}).await.expect("controller runs");
    });
    (op, addr)
}

/// The committed prometheus.yml with the committed rule files, evaluated every second, and file discovery in
/// place of Kubernetes discovery (see `monitoring::with_file_sd`).
fn prometheus_config(dir: &std::path::Path) -> Value {
    let root = xtask::project::default_root().join(monitoring::DIR);
    let mut config = monitoring::prometheus_config();
    config["global"] = json!({"scrape_interval": "1s", "evaluation_interval": "1s"});
    config["rule_files"] = json!(monitoring::rule_file_paths().iter().map(|f| root.join(f)).collect::<Vec<_>>());
    monitoring::with_file_sd(config, dir)
}

fn has(labels: &BTreeMap<String, String>, want: &[(&str, &str)]) -> bool {
    want.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_scrapes_the_operator_and_exporters_and_node_down_fires_and_resolves() {
    let env = env("monitoring").await;
    let ns = env.ns.clone();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    for name in ["auth-secret", "aerospike-secret"] {
        let s: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": {"password": "monitoring-pw"}}))
                .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let (op, metrics_addr) = start_operator_with_metrics(&env).await;

    // The committed sample, in this test's namespace.
    let mut sample: Value = serde_json::to_value(monitoring::sample_cluster()).unwrap();
    sample["metadata"]["namespace"] = json!(ns);
    let name = monitoring::SAMPLE_CLUSTER;
    create(&env.client, &ns, &sample).await;
    wait_completed(&env.client, &ns, name, T).await;
    let pods = pods(&env.client, &ns, name).await;
    assert_eq!(pods.len(), 3);

    // Discovery: the operator as its metrics Service's endpoint, the pods as Kubernetes lists them.
    let dir = std::env::temp_dir().join(format!("ako-e2e-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let operator_target = json!([{
        "targets": [metrics_addr.to_string()],
        "labels": {
            "__meta_kubernetes_service_label_app_kubernetes_io_name": xtask::project::PACKAGE,
            "__meta_kubernetes_endpoint_port_name": "metrics",
            "__meta_kubernetes_namespace": "aerospike-operator",
            "__meta_kubernetes_pod_name": "aerospike-kubernetes-operator-0",
        },
    }]);
    prometheus::write_targets(&dir.join(format!("{}.json", rules::OPERATOR_JOB)), &operator_target).unwrap();
    let pod_api: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    let exporter_file = dir.join(format!("{}.json", rules::EXPORTER_JOB));
    prometheus::write_targets(
        &exporter_file,
        &prometheus::pod_targets(&pod_api.list(&ListParams::default()).await.unwrap().items),
    )
    .unwrap();
    let discovery = {
        let pod_api = pod_api.clone();
        let file = exporter_file.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(list) = pod_api.list(&ListParams::default()).await {
                    let _ = prometheus::write_targets(&file, &prometheus::pod_targets(&list.items));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let prom = Prometheus::start(&prometheus_config(&dir), &dir.join("prometheus")).await.unwrap();

    // Every pod's exporter and the operator are scraped, and only they: the relabelling kept the exporter port
    // of each pod, not the service, fabric or heartbeat ports.
    wait_for("every exporter and the operator scraped and up", T, || async {
        let targets = prom.targets().await.ok()?;
        let up = |job: &str| targets.iter().filter(|(l, h)| l["job"] == job && h == "up").count();
        let all = |job: &str| targets.iter().filter(|(l, _)| l["job"] == job).count();
        (up(rules::EXPORTER_JOB) == 3 && all(rules::EXPORTER_JOB) == 3 && up(rules::OPERATOR_JOB) == 1).then_some(())
    })
    .await;

    // The reference's gauge, with the reference's labels.
    let phase = wait_for("aerospike_ako_aerospikecluster_phase for the cluster", T, || async {
        let q = format!(r#"aerospike_ako_aerospikecluster_phase{{cluster_name="{name}",cluster_namespace="{ns}"}}"#);
        let r = prom.query(&q).await.ok()?;
        (r.len() == 3).then_some(r)
    })
    .await;
    for (labels, value) in &phase {
        let want = if labels["phase"] == "Completed" { 1.0 } else { 0.0 };
        assert_eq!(*value, want, "{labels:?}");
        assert_eq!(labels["job"], rules::OPERATOR_JOB);
    }

    // Rollout progress: every pod runs the spec.
    for (metric, want) in [("aerospike_ako_rollout_pods_updated", 3.0), ("aerospike_ako_rollout_pods_desired", 3.0)] {
        let r = prom.query(&format!(r#"{metric}{{cluster_name="{name}",cluster_namespace="{ns}"}}"#)).await.unwrap();
        assert!(r.len() == 1 && r[0].1 == want, "{metric}: {r:?}");
    }

    // The exporter's series: one aerospike_node_up per pod with the exporter's and METRIC_LABELS' labels.
    let node_up = wait_for("aerospike_node_up of every pod", T, || async {
        let r = prom.query(&format!(r#"aerospike_node_up{{job="aerospike",namespace="{ns}"}}"#)).await.ok()?;
        (r.len() == 3).then_some(r)
    })
    .await;
    for (labels, value) in &node_up {
        assert_eq!(*value, 1.0, "{labels:?}");
        let pod = &labels["pod"];
        let rack = pod.rsplit('-').nth(1).unwrap();
        assert!(
            has(labels, &[("cluster_name", name), ("cluster", name), ("rack", rack), ("container", "exporter")]),
            "{labels:?}"
        );
        assert!(labels["service"].ends_with(":3000"), "{labels:?}");
    }
    let size = prom.query(&format!(r#"aerospike_node_stats_cluster_size{{namespace="{ns}"}}"#)).await.unwrap();
    assert!(size.len() == 3 && size.iter().all(|(_, v)| *v == 3.0), "{size:?}");

    // Dashboards: every query parses, and names only metrics Prometheus holds after these scrapes.
    let names = prom.metric_names().await.unwrap();
    for (file, d) in dashboards::dashboards() {
        for q in dashboards::queries(&d) {
            let q = q.replace("$namespace", ".*").replace("$cluster", ".*");
            prom.api("query", &[("query", &q)]).await.unwrap_or_else(|e| panic!("{file}: `{q}`: {e}"));
            for m in dashboards::metric_names(&q) {
                assert!(names.contains(&m), "{file}: `{m}` (in `{q}`) is not a metric Prometheus scraped");
            }
        }
    }
    for g in rules::groups() {
        for a in &g.alerts {
            for m in dashboards::metric_names(a.expr) {
                assert!(names.contains(&m), "rule {}: `{m}` is not a metric Prometheus scraped", a.name);
            }
        }
    }

    // A node stops answering: its exporter reports it down and the alert fires after its `for`.
    let victim = pods[0].metadata.name.clone().unwrap();
    env.sim.set_fault(FaultTarget::pod(&ns, &victim), Fault::refuse());
    let firing = wait_for("AerospikeNodeDown firing", T, || async {
        let alerts = prom.alerts().await.ok()?;
        alerts.into_iter().find(|(l, s)| l["alertname"] == "AerospikeNodeDown" && s == "firing")
    })
    .await;
    assert!(
        has(&firing.0, &[("pod", &victim), ("namespace", &ns), ("severity", "critical"), ("cluster", name)]),
        "{firing:?}"
    );
    let others: Vec<_> = prom
        .alerts()
        .await
        .unwrap()
        .into_iter()
        .filter(|(l, _)| l["alertname"] == "AerospikeNodeDown" && l["pod"] != victim)
        .collect();
    assert!(others.is_empty(), "only {victim} is down: {others:?}");

    // It answers again: the alert resolves.
    env.sim.set_fault(FaultTarget::pod(&ns, &victim), Fault::default());
    wait_for("AerospikeNodeDown resolved", T, || async {
        let r = prom.query(r#"ALERTS{alertname="AerospikeNodeDown"}"#).await.ok()?;
        r.is_empty().then_some(())
    })
    .await;

    discovery.abort();
    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
    finish(&env, op).await;
}
