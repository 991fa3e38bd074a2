//! `cargo xtask <task>`: every project task is a Rust command here, listed by `cargo xtask --help`.
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Project tasks for the Aerospike Kubernetes Operator")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build, locate or list the pinned third-party tools (Go modules built into a cache).
    Tools(xtask::tools::ToolsArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Tools(args) => xtask::tools::run(args),
    }
}
