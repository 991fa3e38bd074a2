//! `cargo xtask simulator run|fault|faults`: the Aerospike simulator of [`ako_simulator`] with the fake storage
//! provisioner of [`ako_testbed::cluster::provisioner`] as a background process of `cargo xtask cluster up`, and
//! its faults file.
use std::path::PathBuf;
use std::time::Duration;

use ako_simulator::{
    FAULTS_FILE, Fault, FaultEntry, NoAnswer, READY_FILE, Simulator, SimulatorOptions, read_faults_file,
    write_faults_file,
};
use anyhow::{Context, Result, bail};
use kube::Client;

/// The Aerospike simulator (and fake storage provisioner) for a local cluster.
#[derive(clap::Args, Debug)]
pub struct SimulatorArgs {
    #[command(subcommand)]
    command: SimulatorCommand,
}

#[derive(clap::Subcommand, Debug)]
enum SimulatorCommand {
    /// Run the simulator and the provisioner in the foreground until SIGTERM/SIGINT (`cluster up` starts this in
    /// the background).
    Run {
        #[arg(long, value_name = "FILE")]
        kubeconfig: PathBuf,
        /// Where the faults file and the ready marker live (default: the cluster's default state folder).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Watch one namespace only.
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long, default_value_t = 2000)]
        migration_ms: u64,
        /// Do not run the fake storage provisioner.
        #[arg(long)]
        no_provisioner: bool,
        /// Print every info request line.
        #[arg(long)]
        log_commands: bool,
    },
    /// Set or clear a fault of a running simulator (through its faults file).
    Fault {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// The pod to affect.
        #[arg(long, conflicts_with = "cluster", required_unless_present_any = ["cluster", "clear_all"])]
        pod: Option<String>,
        /// The AerospikeCluster (all its pods) to affect.
        #[arg(long)]
        cluster: Option<String>,
        /// Accept connections and never answer.
        #[arg(long, conflicts_with = "refuse")]
        hang: bool,
        /// Refuse connections.
        #[arg(long)]
        refuse: bool,
        /// Delay every answer by this many milliseconds.
        #[arg(long)]
        delay_ms: Option<u64>,
        /// Migrations never finish.
        #[arg(long)]
        stuck_migrations: bool,
        /// Strong-consistency namespaces report this many dead partitions.
        #[arg(long, value_name = "N")]
        dead_partitions: Option<u64>,
        /// Namespaces report stop_writes=true (the exporter's aerospike_namespace_stop_writes is 1).
        #[arg(long)]
        stop_writes: bool,
        /// Refuse set-config and log-set (dynamic config updates).
        #[arg(long)]
        refuse_set_config: bool,
        /// Fail warm restarts (the operator then restarts the pod).
        #[arg(long)]
        refuse_warm_restart: bool,
        /// Remove the target's fault.
        #[arg(long)]
        clear: bool,
        /// Remove every fault.
        #[arg(long)]
        clear_all: bool,
    },
    /// List the faults in the faults file.
    Faults {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

/// Entry point of `cargo xtask simulator`.
pub fn run(args: SimulatorArgs) -> Result<()> {
    match args.command {
        SimulatorCommand::Run { kubeconfig, state_dir, namespace, migration_ms, no_provisioner, log_commands } => {
            let dir = state_dir.unwrap_or_else(ako_testbed::cluster::default_state_dir);
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(run_background(kubeconfig, dir, namespace, migration_ms, !no_provisioner, log_commands))
        }
        SimulatorCommand::Fault {
            state_dir,
            namespace,
            pod,
            cluster,
            hang,
            refuse,
            delay_ms,
            stuck_migrations,
            dead_partitions,
            stop_writes,
            refuse_set_config,
            refuse_warm_restart,
            clear,
            clear_all,
        } => {
            let dir = state_dir.unwrap_or_else(ako_testbed::cluster::default_state_dir);
            if !dir.is_dir() {
                bail!("{} does not exist: is a cluster up (`cargo xtask cluster up`)?", dir.display());
            }
            let path = dir.join(FAULTS_FILE);
            let mut entries = read_faults_file(&path)?;
            if clear_all {
                entries.clear();
            } else {
                let entry = FaultEntry {
                    namespace,
                    pod,
                    cluster,
                    no_answer: if hang {
                        Some(NoAnswer::Hang)
                    } else if refuse {
                        Some(NoAnswer::Refuse)
                    } else {
                        None
                    },
                    delay_ms,
                    stuck_migrations,
                    dead_partitions,
                    stop_writes,
                    refuse_set_config,
                    refuse_warm_restart,
                };
                let target = entry.target().context("name exactly one of --pod and --cluster")?;
                entries.retain(|e| e.target().as_ref() != Some(&target));
                if !clear {
                    if entry.fault() == Fault::default() {
                        bail!(
                            "no fault given: use --hang, --refuse, --delay-ms, --stuck-migrations, --dead-partitions, --stop-writes, --refuse-set-config, --refuse-warm-restart or --clear"
                        );
                    }
                    entries.push(entry);
                }
            }
            write_faults_file(&path, &entries)?;
            println!("{} fault(s) in {}", entries.len(), path.display());
            Ok(())
        }
        SimulatorCommand::Faults { state_dir } => {
            let dir = state_dir.unwrap_or_else(ako_testbed::cluster::default_state_dir);
            for e in read_faults_file(&dir.join(FAULTS_FILE))? {
                println!("{}", serde_json::to_string(&e)?);
            }
            Ok(())
        }
    }
}

async fn run_background(
    kubeconfig: PathBuf,
    dir: PathBuf,
    namespace: Option<String>,
    migration_ms: u64,
    provisioner: bool,
    log_commands: bool,
) -> Result<()> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    std::fs::create_dir_all(&dir)?;
    let opts = SimulatorOptions {
        namespace,
        migration_duration: Duration::from_millis(migration_ms),
        faults_file: Some(dir.join(FAULTS_FILE)),
        log_commands,
        ..Default::default()
    };
    let mut simulator = Simulator::start(client.clone(), opts).await;
    let provisioner =
        provisioner.then(|| tokio::spawn(ako_testbed::cluster::provisioner::run(client, dir.join("volumes"))));
    std::fs::write(dir.join(READY_FILE), std::process::id().to_string())?;
    eprintln!("simulator: running (pid {})", std::process::id());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("simulator: stopping");
    simulator.stop();
    if let Some(p) = provisioner {
        p.abort();
    }
    let _ = std::fs::remove_file(dir.join(READY_FILE));
    Ok(())
}
