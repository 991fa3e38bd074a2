//! `cargo xtask <task>`: every project task is a Rust command here, listed by `cargo xtask --help`.
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use xtask::commands;

#[derive(Parser)]
#[command(name = "xtask", about = "Project tasks for the Aerospike Kubernetes Operator")]
struct Cli {
    /// Repository root to read and write (defaults to this workspace).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build, locate or list the pinned third-party tools (Go modules built into a cache).
    Tools(ako_testbed::tools::ToolsArgs),
    /// Write config/ (CRDs, RBAC, the operator Deployment, sample AerospikeClusters, CSV base) and scorecard/.
    Manifests(commands::manifests::ManifestsArgs),
    /// Write the OLM bundle of a release (bundle/, bundle.Dockerfile).
    Bundle(commands::bundle::BundleArgs),
    /// Add bundle/ to the file-based catalog (catalog/, catalog.Dockerfile).
    Catalog(commands::catalog::CatalogCommand),
    /// Write the OLM install examples (config/examples/ and its README).
    Examples,
    /// Check config/, bundle/ and catalog/ (upgrade graph, drift), then run operator-sdk and opm if built.
    Validate(commands::validate::ValidateArgs),
    /// Run the scorecard tests' static checks against bundle/ (no cluster needed).
    Scorecard,
    /// A local Kubernetes control plane on loopback (etcd, apiserver, controllers, scheduler, kwok fake nodes).
    Cluster(commands::cluster::ClusterArgs),
    /// The Aerospike simulator for the local control plane (run it, or set its fault knobs).
    Simulator(commands::simulator::SimulatorArgs),
    /// A real Prometheus against the local plane with config/monitoring's scrape jobs and alert rules.
    Prometheus(commands::prometheus::PrometheusArgs),
    /// The main job locally: control plane + OLM, the operator installed from our catalog, a sample cluster
    /// reconciled (`demo down` stops it all).
    Demo(commands::demo::DemoArgs),
    /// Build an OCI image without Docker (operator, bundle, catalog, opm-base), reproducibly; write its layout
    /// and/or push it (`image dockerfiles` writes Dockerfile and catalog.Dockerfile).
    Image(commands::image::ImageArgs),
    /// Check the dependency tree against deny.toml with the pinned cargo-deny (licences, bans, sources,
    /// advisories where the RustSec database can be fetched).
    Deny,
    /// Benchmark the operator against the local control plane (100 clusters to Completed, RSS, CPU, API
    /// requests per unchanged reconcile); writes target/bench/cluster-scale.json.
    Bench(commands::bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, without a backtrace: errors here name the file and field at fault.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let root = cli.root.unwrap_or_else(xtask::project::default_root);
    match cli.task {
        Task::Tools(args) => ako_testbed::tools::run(args),
        Task::Manifests(args) => commands::manifests::run(&root, &args),
        Task::Bundle(args) => commands::bundle::run(&root, &args),
        Task::Catalog(args) => commands::catalog::run(&root, &args),
        Task::Examples => commands::examples::run(&root),
        Task::Validate(args) => commands::validate::run(&root, &args),
        Task::Scorecard => commands::scorecard::run(&root),
        Task::Cluster(args) => commands::cluster::run(args),
        Task::Simulator(args) => commands::simulator::run(args),
        Task::Prometheus(args) => commands::prometheus::run(args),
        Task::Demo(args) => commands::demo::run(&root, args),
        Task::Deny => commands::deny::run(&root),
        Task::Bench(args) => commands::bench::run(&root, args),
        Task::Image(args) => commands::image::run(&root, &args),
    }
}
