//! `aerospike-kubernetes-operator`: `run` (the controller, default), `pod-init` (the Aerospike pods' init
//! step), `crd` (print the CRDs).
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use kube::Client;
use tracing::{error, info};

use aerospike_kubernetes_operator::asinfo::TcpInfoClient;
use aerospike_kubernetes_operator::cli::RunArgs;
use aerospike_kubernetes_operator::controller::{self, RunConfig, Scope};
use aerospike_kubernetes_operator::desired::BuildContext;
use aerospike_kubernetes_operator::metrics::Metrics;
use aerospike_kubernetes_operator::server::{self, Health};
use aerospike_kubernetes_operator::telemetry::{self, LogFormat};
use aerospike_kubernetes_operator::{api, leader, podinit, webhook};

#[derive(Parser)]
#[command(name = "aerospike-kubernetes-operator", version, about = "Kubernetes operator for Aerospike clusters")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (the default).
    Run(RunArgs),
    /// Render this pod's aerospike.conf and prepare its volumes (runs as the pods' init container).
    PodInit(podinit::PodInitArgs),
    /// Re-render aerospike.conf from the input on stdin and restart the server process in place (the operator
    /// execs this in the server container: see `podinit::warm_restart`).
    WarmRestart,
    /// Delete the files of namespaces the config no longer names (the operator execs this before a restart).
    DeleteFiles {
        /// Absolute paths; `<dir>/*` deletes the directory's contents.
        paths: Vec<String>,
    },
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
}

#[derive(Parser)]
struct RunOnly {
    #[command(flatten)]
    args: RunArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => {
            print!("{}", api::crds_yaml());
            Ok(())
        }
        Some(Command::PodInit(args)) => {
            telemetry::init(LogFormat::Text);
            podinit::run(args)
        }
        Some(Command::DeleteFiles { paths }) => podinit::warm_restart::delete_files(&paths),
        Some(Command::WarmRestart) => {
            telemetry::init(LogFormat::Text);
            podinit::warm_restart::run()
        }
        Some(Command::Run(args)) => run(args),
        // No subcommand: run with flags from the environment (how the Deployment starts it).
        None => run(RunOnly::parse_from(["aerospike-kubernetes-operator"]).args),
    }
}

#[tokio::main]
async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let scope = Scope::parse(&args.watch_namespaces);
    info!(?scope, version = env!("CARGO_PKG_VERSION"), "starting");
    let client = Client::try_default().await.context("no Kubernetes configuration (in-cluster or KUBECONFIG)")?;
    let metrics = Metrics::default();
    let health = Health::default();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let http = tokio::spawn(server::serve(args.health_addr, server::router(health.clone(), metrics.clone()), shutdown));
    if args.metrics_addr != args.health_addr {
        let mut rx = stop_rx.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        tokio::spawn(server::serve(args.metrics_addr, server::router(health.clone(), metrics.clone()), shutdown));
    }

    // Admission webhooks: every replica serves them (standbys too), so they start before leader election.
    // Not ready while they are not served (a failure is logged and retried).
    if let Some(cfg) = args.webhook.config(&args.lease_namespace)? {
        let status = webhook::Status::default();
        health.include_webhook(status.clone());
        tokio::spawn(webhook::supervise(client.clone(), cfg, status, stop_rx.clone()));
    }

    controller::preflight(&client, &scope).await?;

    let instance = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("operator-{}", std::process::id()));
    // With leader election, wait for the Lease before acting; losing it (or no renewal in time: fenced) ends the
    // process (the Deployment restarts it as a standby), which is how a split brain is avoided. SIGTERM stops the
    // controllers, then releases the Lease so a standby takes over at once.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut leadership = None;
    metrics.set_leader(!args.leader_elect);
    if args.leader_elect {
        health.set_ready(true); // a standby is ready: it only waits
        tokio::select! {
            l = leader::acquire(client.clone(), &args.lease_namespace, &instance) => leadership = Some(l?),
            _ = terminated(&mut sigterm) => {
                info!("stopping: signalled while waiting for leadership");
                return Ok(());
            }
        }
    }

    metrics.set_leader(true);
    let cfg = RunConfig {
        scope,
        build: BuildContext { init_image: args.init_image.clone() },
        info: Arc::new(TcpInfoClient::new(
            Duration::from_millis(args.info_timeout_ms),
            Duration::from_millis(args.info_timeout_ms),
        )),
        metrics,
        instance,
        concurrency: args.max_concurrent_reconciles,
    };
    let ready_health = health.clone();
    let controllers = controller::run(client, cfg, move || ready_health.set_ready(true));
    let result = match leadership {
        Some(mut leadership) => {
            let result = tokio::select! {
                r = controllers => Some(r),
                _ = leadership.lost() => None,
                _ = terminated(&mut sigterm) => Some(Ok(())),
            };
            // The controllers are dropped by now: nothing acts any more.
            match result {
                Some(r) => {
                    if let Err(e) = leadership.release().await {
                        error!(
                            error = format!("{e:#}"),
                            "could not release the Lease (a standby takes it once it expires)"
                        );
                    }
                    r
                }
                None => {
                    error!("lost leadership: exiting so a standby can take over");
                    Err(anyhow::anyhow!("lost leadership"))
                }
            }
        }
        None => tokio::select! {
            r = controllers => r,
            _ = terminated(&mut sigterm) => Ok(()),
        },
    };
    let _ = stop_tx.send(true);
    let _ = http.await;
    info!("stopped");
    result
}

/// SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
async fn terminated(sigterm: &mut tokio::signal::unix::Signal) {
    tokio::select! {
        _ = sigterm.recv() => info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => info!("interrupted: stopping"),
    }
}
