//! `cargo xtask prometheus`: a real Prometheus against the local plane (`cargo xtask cluster up`), with
//! config/monitoring's scrape jobs and alert rules: the exporters of every Aerospike pod (the simulator serves
//! them) and the operator's /metrics (`cargo run -- run` serves them on 127.0.0.1:8080). Debian's Prometheus has no
//! Kubernetes discovery, so this command lists the pods every second and hands them to Prometheus' file
//! discovery with the labels Kubernetes discovery would give (the committed relabelling then selects).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ako_testbed::prometheus::{self, Prometheus};
use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::json;

use crate::packaging::monitoring::{self, rules};
use crate::project::{self, PACKAGE};

#[derive(clap::Args, Debug)]
pub struct PrometheusArgs {
    /// The local plane's kubeconfig (default: $KUBECONFIG, as `cargo xtask cluster env` sets it).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Where the operator serves /metrics (`--metrics-addr`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    operator: SocketAddr,
    /// Prometheus' own address (UI and API).
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Scrape and rule evaluation interval.
    #[arg(long, default_value = "5s")]
    interval: String,
}

pub fn run(args: PrometheusArgs) -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(serve(args))
}

async fn serve(args: PrometheusArgs) -> Result<()> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&args.kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    let dir = ako_testbed::cluster::default_state_dir().join("prometheus");
    std::fs::create_dir_all(&dir)?;
    let rules_dir = project::default_root().join(monitoring::DIR);
    let mut config = monitoring::prometheus_config();
    config["global"] = json!({"scrape_interval": args.interval, "evaluation_interval": args.interval});
    config["rule_files"] = json!(monitoring::rule_file_paths().iter().map(|f| rules_dir.join(f)).collect::<Vec<_>>());
    let config = monitoring::with_file_sd(config, &dir);
    let operator = json!([{
        "targets": [args.operator.to_string()],
        "labels": {
            "__meta_kubernetes_service_label_app_kubernetes_io_name": PACKAGE,
            "__meta_kubernetes_endpoint_port_name": "metrics",
            "__meta_kubernetes_namespace": "local",
            "__meta_kubernetes_pod_name": "host-process",
        },
    }]);
    prometheus::write_targets(&dir.join(format!("{}.json", rules::OPERATOR_JOB)), &operator)?;
    let pods: Api<Pod> = Api::all(client);
    let exporters = dir.join(format!("{}.json", rules::EXPORTER_JOB));
    let list = pods.list(&ListParams::default()).await.context("listing pods on the local plane")?;
    prometheus::write_targets(&exporters, &prometheus::pod_targets(&list.items))?;
    let prom = Prometheus::start_on(&config, &dir.join("server"), args.listen).await?;
    eprintln!("Prometheus on http://{} (log: {}/server/prometheus.log); Ctrl-C stops it", prom.addr, dir.display());
    eprintln!("  try: aerospike_ako_aerospikecluster_phase, aerospike_node_up, ALERTS");
    // Prometheus is stopped on the way out (drop), on Ctrl-C or SIGTERM.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    prometheus::write_targets(&exporters, &prometheus::pod_targets(&list.items))?;
                }
            }
        }
    }
    drop(prom);
    Ok(())
}
