//! `cargo xtask cluster up|down|env|status`: the local control plane of [`ako_testbed::cluster`] for people, with
//! the Aerospike simulator and provisioner in one background `cargo xtask simulator run` process and, with `--olm`,
//! OLM serving this repository's catalog. The processes outlive the command, are recorded in
//! `<state dir>/state.json`, and `down` stops exactly those pids.
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ako_testbed::cluster::net::CidrClaim;
use ako_testbed::cluster::proc::{self, Mode, Spec};
use ako_testbed::cluster::{ClusterOptions, Plane, SIMULATOR, STATE_FILE, StateFile, default_state_dir};
use ako_testbed::tools::KubernetesRelease;
use anyhow::{Context, Result, anyhow, bail};

fn os(s: impl Into<String>) -> OsString {
    OsString::from(s.into())
}

/// A local Kubernetes control plane (etcd, apiserver, controller-manager, scheduler, kwok) with the Aerospike
/// simulator and a fake storage provisioner.
#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ClusterCommand {
    /// Start the control plane, the simulator and the provisioner in the background; prints how to use it.
    Up {
        /// Number of fake nodes (spread over 3 zones).
        #[arg(long, default_value_t = 6)]
        nodes: usize,
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Seconds each component may take to become ready.
        #[arg(long, default_value_t = 180)]
        timeout: u64,
        /// How long simulated migrations run after each membership change, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        migration_ms: u64,
        /// Do not start the Aerospike simulator and provisioner.
        #[arg(long)]
        no_simulator: bool,
        /// Also run OLM (its CRDs, the olm and catalog operators) and `opm serve` of this repository's catalog.
        #[arg(long)]
        olm: bool,
        /// The Kubernetes release of the plane: `oldest` (the oldest supported, the default) or `newest` (or its
        /// version); built on first use. Default: $AKO_KUBERNETES, else oldest.
        #[arg(long, value_name = "RELEASE")]
        kubernetes: Option<KubernetesRelease>,
    },
    /// Stop the processes recorded in the state folder (by pid) and remove the folder.
    Down {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print `export KUBECONFIG=...` for a shell (`eval "$(cargo xtask cluster env)"`).
    Env {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Show the recorded processes and whether they run.
    Status {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

/// Entry point of `cargo xtask cluster`.
pub fn run(args: ClusterArgs) -> Result<()> {
    match args.command {
        ClusterCommand::Up { nodes, state_dir, timeout, migration_ms, no_simulator, olm, kubernetes } => {
            let dir = state_dir.unwrap_or_else(default_state_dir);
            let kubernetes = match kubernetes {
                Some(k) => k,
                None => KubernetesRelease::from_env()?,
            };
            let opts = ClusterOptions {
                nodes,
                state_dir: Some(dir.clone()),
                timeout: Duration::from_secs(timeout),
                provisioner: false,
                kubernetes,
                node_ports: None,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(up(dir.clone(), &opts, migration_ms, !no_simulator))?;
            if olm {
                match runtime.block_on(crate::olm::up_detached(&dir, &crate::project::default_root())) {
                    Ok(address) => println!("  OLM up; catalog served at CATALOG_ADDRESS={address}"),
                    Err(e) => return Err(e.context("OLM did not start; the cluster stays up")),
                }
            }
            Ok(())
        }
        ClusterCommand::Down { state_dir } => down(&state_dir.unwrap_or_else(default_state_dir)),
        ClusterCommand::Env { state_dir } => {
            let dir = state_dir.unwrap_or_else(default_state_dir);
            let state = StateFile::read(&dir)?
                .ok_or_else(|| anyhow!("no cluster in {}; start one with `cargo xtask cluster up`", dir.display()))?;
            println!("export KUBECONFIG={}", state.kubeconfig.display());
            if let Some(address) = crate::olm::catalog_address_in(&dir)? {
                println!("export CATALOG_ADDRESS={address}");
            }
            Ok(())
        }
        ClusterCommand::Status { state_dir } => {
            let dir = state_dir.unwrap_or_else(default_state_dir);
            let Some(state) = StateFile::read(&dir)? else {
                println!("no cluster in {}", dir.display());
                return Ok(());
            };
            println!("state:      {}", dir.display());
            println!("kubeconfig: {}", state.kubeconfig.display());
            println!("apiserver:  {} (Kubernetes {})", state.apiserver, state.kubernetes.version());
            println!("pod CIDR:   {}", state.pod_cidr);
            for r in &state.processes {
                let running = proc::same_process_alive(r.pid, r.start_time);
                println!(
                    "{:<24} pid {:<8} {:<8} {}",
                    r.name,
                    r.pid,
                    if running { "running" } else { "gone" },
                    r.log.display()
                );
            }
            Ok(())
        }
    }
}

async fn up(dir: PathBuf, opts: &ClusterOptions, migration_ms: u64, simulator: bool) -> Result<()> {
    let started = Instant::now();
    if let Some(state) = StateFile::read(&dir)? {
        let alive = state.alive();
        if !alive.is_empty() {
            let names: Vec<String> = alive.iter().map(|r| format!("{} (pid {})", r.name, r.pid)).collect();
            bail!(
                "a cluster is already running in {}: {}; stop it with `cargo xtask cluster down`",
                dir.display(),
                names.join(", ")
            );
        }
        CidrClaim::release_octet(state.cidr_octet);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing the stale {}", dir.display()))?;
    }
    let mut plane = Plane::start(opts, Mode::Detached, dir.clone()).await?;
    if simulator {
        let exe = std::env::current_exe().context("locating the xtask binary")?;
        let ready = dir.join(ako_simulator::READY_FILE);
        let spec = Spec {
            name: SIMULATOR.into(),
            program: exe,
            args: vec![
                os("simulator"),
                os("run"),
                os("--kubeconfig"),
                plane.kubeconfig_path().into_os_string(),
                os("--state-dir"),
                dir.clone().into_os_string(),
                os("--migration-ms"),
                os(migration_ms.to_string()),
            ],
            env: Vec::new(),
            log: dir.join(format!("{SIMULATOR}.log")),
            cwd: dir.clone(),
        };
        if let Err(e) = plane.spawn(spec) {
            plane.stop_processes();
            plane.claim.release();
            return Err(e);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            if let Err(e) = plane.ensure_running(SIMULATOR).and_then(|()| {
                if Instant::now() >= deadline {
                    bail!("the simulator did not start within 60s; see its log {}", plane.log_of(SIMULATOR).display())
                }
                Ok(())
            }) {
                plane.stop_processes();
                plane.claim.release();
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let kubeconfig = plane.kubeconfig_path();
    println!(
        "cluster up in {:.1}s: Kubernetes {}, {} nodes, pod CIDR {}",
        started.elapsed().as_secs_f64(),
        opts.kubernetes.version(),
        opts.nodes,
        plane.claim.cidr()
    );
    println!("  state and logs: {}", dir.display());
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  stop it with:   cargo xtask cluster down{}", state_dir_flag(&dir));
    // Dropping a detached plane leaves its processes running.
    drop(plane);
    Ok(())
}

fn state_dir_flag(dir: &Path) -> String {
    if dir == default_state_dir() { String::new() } else { format!(" --state-dir {}", dir.display()) }
}

fn down(dir: &Path) -> Result<()> {
    let Some(state) = StateFile::read(dir)? else {
        if dir.exists() {
            bail!("{} has no {STATE_FILE}: not a cluster state folder, left alone", dir.display());
        }
        println!("no cluster in {}", dir.display());
        return Ok(());
    };
    let mut records = state.processes.clone();
    records.reverse();
    let stopped = proc::stop_records(&records, Duration::from_secs(10));
    CidrClaim::release_octet(state.cidr_octet);
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    if stopped.is_empty() {
        println!("nothing was running; removed {}", dir.display());
    } else {
        println!("stopped {}; removed {}", stopped.join(", "), dir.display());
    }
    Ok(())
}
