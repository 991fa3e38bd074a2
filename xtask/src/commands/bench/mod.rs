//! `cargo xtask bench`: the operator at scale against the local control plane (issue 4, "Must show").
//!
//! What it does, in order, everything bounded in time (`--max-minutes`, plus a timeout on every wait):
//! 1. builds the operator binary (`cargo build --release -p aerospike-kubernetes-operator`, or debug with
//!    `--debug`; or takes `--operator-bin`);
//! 2. starts a [`LocalCluster`] (fake nodes, no storage provisioner: the bench clusters are in-memory) and an
//!    in-process [`Simulator`] for all namespaces with short migrations;
//! 3. installs the CRDs (server-side apply, waits for Established) and the `--clusters` namespaces' default
//!    ServiceAccounts;
//! 4. runs the operator binary as a separate process (`run --watch-namespaces "" --no-webhook`, metrics and
//!    health on free loopback ports) under a ServiceAccount of its own bound to the operator's generated
//!    ClusterRole (`aerospike_kubernetes_operator::rbac`), so its requests are told apart from every other
//!    client of the apiserver (those are all `system:masters`, in the `exempt` flow schema): three FlowSchemas
//!    (API Priority and Fairness) match that ServiceAccount only, one for reads (get, list), one for watches, one
//!    for writes (create, update, patch, delete, deletecollection), so the apiserver's own
//!    `apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}` counts the operator's requests by kind;
//!    anything else it sends lands in the stock `service-accounts` schema ("other");
//! 5. creates the AerospikeClusters (size `--size`, `multiPodPerHost: true`, in-memory config) spread round-robin
//!    over the namespaces, a few requests in flight at a time, and measures the wall time from the first create
//!    until every one is phase Completed for its generation (polled every 500 ms, concurrently with the
//!    creates), sampling the operator's RSS (/proc/<pid>/status VmRSS, VmHWM) and CPU (utime+stime of
//!    /proc/<pid>/stat), the control plane's CPU and the machine's load meanwhile;
//! 6. once the operator is quiet, measures the API requests per reconcile of an unchanged cluster: an idle window
//!    (background rate), then a window in which every cluster is annotated once (a metadata-only change: the
//!    operator reconciles it and finds nothing to do). Requests per reconcile: the operator's requests in the
//!    window less the idle rate times the window, over the reconciles in the window, by kind, from the flow
//!    schemas above (the bench's own annotation PATCHes are made as admin, so they are not in them); reconciles
//!    from the operator's `controller_runtime_reconcile_total`. As a cross-check, `apiserver_request_total` by verb
//!    over the resources the operator uses, all clients, minus the bench's own PATCHes (known exactly).
//!    Reconcile latency p50/p99 over step 5 comes from the operator's `controller_runtime_reconcile_time_seconds`
//!    histogram (bucket counts after less before), interpolated within a bucket as Prometheus'
//!    `histogram_quantile` does, so it is only as fine as the buckets;
//! 7. with `--against-floors`, restarts the operator in place (SIGTERM, same flags) and measures the time until
//!    every cluster has a phase series in the new process's metrics (set once a reconcile reaches the status),
//!    the operator's requests by kind from before the stop until it is quiet again, and the writes by verb and
//!    resource (the operator's own writes are the flow-schema count; the by-resource split is of all clients, so
//!    it would also hold the simulator's writes, if it made any);
//! 8. with `--rollout`, changes every cluster's image at once and measures the time until every cluster is
//!    Completed for it and every pod runs it, Ready (see `phases`; with `--against-floors` also the floor of
//!    recreating the replayed pods directly).
//!
//! `--watch-mode list` runs the operator with `--watch-namespaces bench-0,...` (its multi-namespace install mode);
//! `both` runs each count twice, the second time in list mode with steps 1 to 6 only, for its memory and
//! requests beside all-namespaces.
//!
//! With `--against-floors` (issue 16; see `floors`), the run also measures two floors: a controller-runtime
//! manager caching what the reference caches runs beside the operator (its peak RSS), and after the operator's
//! phases a minimal client replays the operator's objects into fresh namespaces (the API server's time); one
//! table with the ratios goes to the terminal and `target/bench/floors.json`. `--clusters 100,300` runs once per
//! count (a fresh plane each) and fits the per-cluster memory slope.
//!
//! Prints a table and writes it as JSON to `target/bench/cluster-scale.json`; the operator's log is kept in
//! `target/bench/operator.log`. Every process it started is stopped at the end, on error, on timeout and on
//! Ctrl-C (and by the kernel if this process dies: they are owned, see [`ako_testbed::cluster::proc`]).
mod floors;
mod measure;
mod metrics;
mod phases;
mod plot;
mod report;
mod sampling;
mod setup;

use floors::*;
use measure::*;
use metrics::*;
use phases::*;
use plot::*;
use report::*;
use sampling::*;
use setup::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aerospike_kubernetes_operator::api::{AerospikeCluster, Phase};
use anyhow::{Context, Result, anyhow, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::flowcontrol::v1::FlowSchema;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::operator_build::{self, OperatorBuild};
use crate::project::PACKAGE;
use ako_simulator::{Simulator, SimulatorOptions};
use ako_testbed::cluster::proc::{self, Mode, Proc, Spec};
use ako_testbed::cluster::{self, ClusterOptions, LocalCluster};

/// Where the report and the operator's log go, under the repository root.
const OUT_DIR: &str = "target/bench";
const REPORT_FILE: &str = "cluster-scale.json";
/// The `--against-floors` summary over every count of clusters.
const FLOORS_FILE: &str = "floors.json";
const FLOORS_PLOT: &str = "floors.svg";
/// Namespace of the operator's ServiceAccount (and its name).
const OPERATOR_NS: &str = "aerospike-bench-operator";
const OPERATOR_SA: &str = "aerospike-operator";
const OPERATOR_ROLE: &str = "aerospike-bench-operator";
/// The flow schema a ServiceAccount's requests fall into (the suggested APF configuration): the operator's
/// requests that none of ours match.
const SA_FLOW_SCHEMA: &str = "service-accounts";
/// Our flow schemas for the operator's ServiceAccount: (name, verbs).
const FLOW_READS: &str = "aerospike-bench-operator-reads";
const FLOW_WATCHES: &str = "aerospike-bench-operator-watches";
const FLOW_WRITES: &str = "aerospike-bench-operator-writes";
const FLOW_SCHEMAS: &[(&str, &[&str])] = &[
    (FLOW_READS, &["get", "list"]),
    (FLOW_WATCHES, &["watch"]),
    (FLOW_WRITES, &["create", "update", "patch", "delete", "deletecollection"]),
];
/// Creates in flight at a time.
const CREATE_CONCURRENCY: usize = 8;
const POKE_ANNOTATION: &str = "bench.aerospike.com/poke";
const IMAGE: &str = "aerospike/aerospike-server-enterprise:7.1.0.0";
/// Field manager of the bench's own writes.
const MANAGER: &str = "xtask-bench";
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Resources the operator reads or writes (group, resource); other clients' background traffic (kwok's node
/// leases and node status, the controller-manager's own bookkeeping) is on other resources.
const OPERATOR_RESOURCES: &[(&str, &str)] = &[
    ("asdb.aerospike.com", "aerospikeclusters"),
    ("apps", "statefulsets"),
    ("", "services"),
    ("", "configmaps"),
    ("policy", "poddisruptionbudgets"),
    ("", "pods"),
    ("", "persistentvolumeclaims"),
    ("", "secrets"),
    ("events.k8s.io", "events"),
];

/// `cargo xtask bench`: see the module docs.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// AerospikeClusters to create; a comma-separated list runs the bench once per count, each on a fresh plane,
    /// and fits the per-cluster memory slope across them.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    clusters: Vec<usize>,
    /// Also measure the floors in the same run (issue 16): the API server replaying the operator's objects, and a
    /// controller-runtime manager caching what the reference caches; prints one table with the ratios.
    #[arg(long)]
    against_floors: bool,
    /// Namespaces to spread them over (round-robin).
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Nodes per cluster (spec.size).
    #[arg(long, default_value_t = 3)]
    size: i32,
    /// Fake nodes of the control plane (250 pods each; multiPodPerHost, so no hostPort limit); more when the
    /// pods need them (with `--against-floors`, twice the pods: the floor replays beside ours).
    #[arg(long, default_value_t = 6)]
    nodes: usize,
    /// How long simulated migrations run after each membership change, in milliseconds.
    #[arg(long, default_value_t = 300)]
    migration_ms: u64,
    /// Build and run the debug operator binary instead of the release one.
    #[arg(long)]
    debug: bool,
    /// Use this operator binary instead of building one.
    #[arg(long, value_name = "PATH", conflicts_with = "debug")]
    operator_bin: Option<PathBuf>,
    /// Seconds allowed for every cluster to reach Completed.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Seconds of the idle window that measures background API traffic.
    #[arg(long, default_value_t = 20)]
    idle_seconds: u64,
    /// Annotation writes (one per cluster, round-robin) that trigger reconciles of unchanged clusters; 0: one per
    /// cluster.
    #[arg(long, default_value_t = 0)]
    pokes: usize,
    /// Also change every cluster's image at once once they are Completed and time the rollout; with
    /// `--against-floors`, against deleting the replayed pods directly (see `phases`).
    #[arg(long)]
    rollout: bool,
    /// Also restart the operator in place once the clusters are Completed (implied by `--against-floors`).
    #[arg(long)]
    restart: bool,
    /// How the operator watches: `all` namespaces, the `list` of the bench's namespaces (`--watch-namespaces
    /// bench-0,...`), or `both`: a second run per count in list mode (creates and unchanged reconciles only) for
    /// its memory and requests.
    #[arg(long, value_enum, default_value_t = WatchMode::All)]
    watch_mode: WatchMode,
    /// Upper bound of each count's run after the build, in minutes.
    #[arg(long, default_value_t = 40)]
    max_minutes: u64,
    /// Upper bound of the operator build, in minutes.
    #[arg(long, default_value_t = 40)]
    build_minutes: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchMode {
    All,
    List,
    Both,
}

impl WatchMode {
    /// The modes to run, the first one with every phase.
    fn runs(self) -> Vec<WatchMode> {
        match self {
            WatchMode::Both => vec![WatchMode::All, WatchMode::List],
            m => vec![m],
        }
    }

    fn name(self) -> &'static str {
        match self {
            WatchMode::All => "all",
            WatchMode::List => "list",
            WatchMode::Both => "both",
        }
    }
}

/// Entry point of `cargo xtask bench`.
pub fn run(root: &Path, args: BenchArgs) -> Result<()> {
    let out_dir = root.join(OUT_DIR);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let load_start = loadavg();
    let (exe, profile, build_seconds) = match &args.operator_bin {
        Some(p) => (std::path::absolute(p)?, "given (--operator-bin)".to_string(), 0.0),
        None => {
            let started = Instant::now();
            eprintln!("bench: cargo build {}-p {PACKAGE}", if args.debug { "" } else { "--release " });
            let exe = operator_build::build(
                root,
                OperatorBuild {
                    release: !args.debug,
                    timeout: Some(Duration::from_secs(args.build_minutes * 60)),
                    ..Default::default()
                },
            )?;
            let profile = if args.debug { "debug" } else { "release" };
            (exe, profile.to_string(), started.elapsed().as_secs_f64())
        }
    };
    let help = Command::new(&exe)
        .args(["run", "--help"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} run --help", exe.display()))?;
    let no_webhook = String::from_utf8_lossy(&help.stdout).contains("--no-webhook");
    eprintln!(
        "bench: operator binary {} ({profile}{}), --no-webhook {}",
        exe.display(),
        if build_seconds > 0.0 { format!(", built in {build_seconds:.0}s") } else { String::new() },
        if no_webhook { "passed" } else { "not supported by this binary" }
    );

    let crfloor = if args.against_floors {
        eprintln!("bench: building the controller-runtime floor ({CRFLOOR_SRC})");
        Some(build_crfloor(root)?)
    } else {
        None
    };
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let max = Duration::from_secs(args.max_minutes * 60);
    let setup = Setup { exe, profile, build_seconds, no_webhook, out_dir: out_dir.clone(), load_start, crfloor };
    let mut reports = Vec::new();
    let modes = args.watch_mode.runs();
    // A count that fails ends the bench, but the counts before it still get their summary and plot.
    let mut failed: Option<anyhow::Error> = None;
    'counts: for &n in &args.clusters {
        let mut primary: Option<Value> = None;
        for (i, &mode) in modes.iter().enumerate() {
            eprintln!("bench: run with {n} clusters, watching {} namespaces", mode.name());
            let report = runtime.block_on(async {
                tokio::select! {
                    r = tokio::time::timeout(max, bench(&args, &setup, n, mode, i == 0)) => match r {
                        Ok(r) => r,
                        Err(_) => Err(anyhow!("the bench did not finish within --max-minutes {}", args.max_minutes)),
                    },
                    _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
                }
            });
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    let e = e.context(format!("the run with {n} clusters, watching {} namespaces", mode.name()));
                    eprintln!("bench: {e:#}");
                    failed = Some(e);
                    reports.extend(primary.take());
                    break 'counts;
                }
            };
            // (Every process the bench started was stopped when `bench` returned: the guards live in it.)
            let mut file =
                if args.clusters.len() == 1 { REPORT_FILE.to_string() } else { format!("cluster-scale-{n}.json") };
            if i > 0 {
                file = file.replace(".json", &format!("-watch-{}.json", mode.name()));
            }
            let path = out_dir.join(file);
            std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            print_table(&report);
            println!("\nwritten to {}", path.display());
            match &mut primary {
                None => primary = Some(report),
                Some(p) => p["watch_modes"][mode.name()] = watch_mode_json(&report),
            }
        }
        if let Some(mut p) = primary {
            let own = watch_mode_json(&p);
            p["watch_modes"][modes[0].name()] = own;
            reports.push(p);
        }
    }
    drop(runtime);
    if args.against_floors && !reports.is_empty() {
        let summary = floors_summary(&reports, started.elapsed().as_secs_f64());
        let path = out_dir.join(FLOORS_FILE);
        std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        let svg_path = out_dir.join(FLOORS_PLOT);
        std::fs::write(&svg_path, floors_svg(&summary)).with_context(|| format!("writing {}", svg_path.display()))?;
        println!("\n{}", floors_table(&summary));
        println!("written to {} and {}", path.display(), svg_path.display());
    }
    failed.map_or(Ok(()), Err)
}

struct Setup {
    exe: PathBuf,
    profile: String,
    build_seconds: f64,
    no_webhook: bool,
    out_dir: PathBuf,
    load_start: [f64; 3],
    /// The controller-runtime floor's binary, with `--against-floors`.
    crfloor: Option<PathBuf>,
}

// -----------------------------------------------------------------------------------------------------------------
// The run.

/// The operator process; stopped (SIGTERM, then SIGKILL) when dropped.
struct Operator {
    proc: Option<Proc>,
    /// What started it, to start it again in place (`phases::restart_in_place`).
    spec: Spec,
    metrics: SocketAddr,
    health: SocketAddr,
    log: PathBuf,
}

impl Operator {
    fn pid(&self) -> u32 {
        self.proc.as_ref().map(|p| p.pid).unwrap_or(0)
    }

    /// Fails with the log's tail if the process has exited.
    fn ensure_running(&mut self) -> Result<()> {
        if let Some(p) = &mut self.proc
            && let Some(status) = p.exit_status()
        {
            bail!(
                "the operator exited ({status}); see {}\n--- last lines ---\n{}",
                self.log.display(),
                proc::log_tail(&self.log, 30)
            );
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            proc::stop_all(&mut [p], Duration::from_secs(10));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One run with `clusters` clusters, the operator watching as `mode` says. The `primary` run of a count also
/// measures the floors, the restart (with `--against-floors`) and the rollout (with `--rollout`).
async fn bench(args: &BenchArgs, setup: &Setup, clusters: usize, mode: WatchMode, primary: bool) -> Result<Value> {
    if clusters == 0 || args.namespaces == 0 {
        bail!("--clusters and --namespaces must be at least 1");
    }
    let floors = setup.crfloor.is_some() && primary;
    let rollout = args.rollout && primary;
    let restart = (args.restart || floors) && primary;
    let node_ports = node_ports_needed(clusters, args.size, floors);
    // Each of those Services takes a ClusterIP too, from the plane's Service range; past it the clusters (or the
    // floor's replay) would never be done.
    if node_ports > SERVICE_IPS {
        bail!(
            "{clusters} clusters of {} pods need {node_ports} NodePort Services (one per pod with multiPodPerHost{}), \
             more ClusterIPs than the local plane's Service range holds ({SERVICE_IPS}){}",
            args.size,
            if floors { ", twice with the API-server floor's replay" } else { "" },
            if floors { "; run this count without --against-floors" } else { "" }
        );
    }
    // Waits that grow with the clusters: 120 s and a quarter second per cluster.
    let scaled = Duration::from_secs(120 + clusters as u64 / 4);
    let total = Instant::now();
    // Declared first, dropped last: the simulator and the operator go before the control plane.
    let cluster = LocalCluster::start(ClusterOptions {
        nodes: fake_nodes(args.nodes, clusters, args.size, floors),
        state_dir: None,
        timeout: Duration::from_secs(180),
        provisioner: false,
        // The default NodePort range (2,768) is too small past about 900 pods.
        node_ports: Some(node_port_range(node_ports)),
        ..Default::default()
    })
    .await?;
    let client = cluster.client().await;
    install_crds(&client).await?;
    let mut sim = Simulator::start(
        client.clone(),
        SimulatorOptions {
            namespace: None,
            migration_duration: Duration::from_millis(args.migration_ms),
            ..Default::default()
        },
    )
    .await;

    let namespaces: Vec<String> = (0..args.namespaces).map(|i| format!("bench-{i}")).collect();
    for ns in namespaces.iter().map(String::as_str).chain([OPERATOR_NS]) {
        create_namespace(&client, ns).await?;
    }
    for ns in &namespaces {
        wait_default_service_account(&client, ns).await?;
    }
    let kubeconfig = operator_kubeconfig(&client, &cluster).await?;

    // The operator.
    let metrics = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), cluster::net::free_port()?);
    let health = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), cluster::net::free_port()?);
    let log = setup.out_dir.join("operator.log");
    let _ = std::fs::remove_file(&log);
    let watch = if mode == WatchMode::List { namespaces.join(",") } else { String::new() };
    let mut op_args: Vec<OsString> = ["run", "--watch-namespaces", &watch, "--metrics-addr"]
        .into_iter()
        .map(OsString::from)
        .chain([metrics.to_string().into(), "--health-addr".into(), health.to_string().into()])
        .collect();
    if setup.no_webhook {
        op_args.push("--no-webhook".into());
    }
    let spec = Spec {
        name: "operator".into(),
        program: setup.exe.clone(),
        args: op_args,
        env: vec![("KUBECONFIG".into(), kubeconfig.into_os_string()), ("RUST_LOG".into(), "info".into())],
        log: log.clone(),
        cwd: cluster.state_dir().to_path_buf(),
    };
    let op_started = Instant::now();
    let mut operator = Operator { proc: Some(proc::spawn(spec.clone(), Mode::Owned)?), spec, metrics, health, log };
    wait_operator_ready(&mut operator, Duration::from_secs(120)).await?;
    let ready_seconds = op_started.elapsed().as_secs_f64();
    let op_pid = operator.pid();
    eprintln!("bench: operator pid {op_pid} ready in {ready_seconds:.1}s (metrics on {})", operator.metrics);

    // Processes whose CPU is accounted: the operator, each control-plane component, this process (simulator).
    let mut watched: Vec<(String, u32)> = vec![("operator".into(), op_pid)];
    watched.extend(cluster.pids());
    watched.push(("xtask (simulator, bench client)".into(), std::process::id()));

    // The controller-runtime floor caches beside the operator through the run (see `floors`).
    let mut crfloor = match setup.crfloor.as_ref().filter(|_| floors) {
        Some(bin) => {
            let f = start_crfloor(bin, &cluster, &setup.out_dir).await?;
            watched.push(("crfloor (controller-runtime floor)".into(), f.pid()));
            eprintln!("bench: crfloor pid {} synced", f.pid());
            Some(f)
        }
        None => None,
    };

    // ---- Phase 1: create the clusters, wait for Completed.
    let sampler = Sampler::start(op_pid);
    let crfloor_sampler = crfloor.as_ref().map(|f| Sampler::start(f.pid()));
    let cpu_before = cpu_of(&watched);
    let machine_before = (machine_busy(), Instant::now());
    let op_metrics_before = operator_metrics(operator.metrics).await?;
    let api_before = ApiMetrics::fetch(&client).await?;
    let load_before = loadavg();
    let names: Vec<(String, String)> =
        (0..clusters).map(|i| (namespaces[i % namespaces.len()].clone(), format!("bench-{i:03}"))).collect();
    let t0 = Instant::now();
    let creates = async {
        let created: Vec<((String, String), f64)> = futures::stream::iter(names.iter().cloned())
            .map(|(ns, name)| {
                let client = client.clone();
                let size = args.size;
                async move {
                    let obj: AerospikeCluster = serde_json::from_value(cluster_manifest(&name, &ns, size))?;
                    Api::<AerospikeCluster>::namespaced(client, &ns)
                        .create(&PostParams::default(), &obj)
                        .await
                        .with_context(|| format!("creating AerospikeCluster {ns}/{name}"))?;
                    anyhow::Ok(((ns, name), t0.elapsed().as_secs_f64()))
                }
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .try_collect()
            .await?;
        let seconds = t0.elapsed().as_secs_f64();
        eprintln!("bench: {} AerospikeClusters created in {seconds:.1}s; waiting for Completed", created.len());
        anyhow::Ok((created.into_iter().collect::<BTreeMap<_, _>>(), seconds))
    };
    let ((created, create_seconds), done) = futures::try_join!(
        creates,
        wait_all_completed(&client, &mut operator, &names, t0, Duration::from_secs(args.timeout))
    )?;
    let wall = t0.elapsed().as_secs_f64();
    let load_after = loadavg();
    let api_after = ApiMetrics::fetch(&client).await?;
    let op_metrics_after = operator_metrics(operator.metrics).await?;
    let machine_after = (machine_busy(), Instant::now());
    let cpu_after = cpu_of(&watched);
    let samples = sampler.stop();
    let status_end = proc_status(op_pid).unwrap_or_default();
    let crfloor_end = crfloor.as_ref().and_then(|f| proc_status(f.pid()));
    let crfloor_samples = crfloor_sampler.map(Sampler::stop);
    eprintln!("bench: all {} Completed in {wall:.1}s", names.len());

    let mut completion: Vec<f64> = done.values().copied().collect();
    completion.sort_by(f64::total_cmp);
    let mut latency: Vec<f64> = done.iter().map(|(k, t)| t - created.get(k).copied().unwrap_or(0.0)).collect();
    latency.sort_by(f64::total_cmp);
    let cpu_run = cpu_delta(&cpu_before, &cpu_after);
    let op_cpu_total = cpu_after.get("operator").copied().unwrap_or(0.0);
    let run_reconciles = op_metrics_after.reconciles - op_metrics_before.reconciles;
    let run_failures = op_metrics_after.failures - op_metrics_before.failures;
    let run_buckets = bucket_delta(&op_metrics_after.reconcile_buckets, &op_metrics_before.reconcile_buckets);
    let run_op = api_after.operator().minus(&api_before.operator());
    let run_by_verb = api_after.delta(&api_before).operator_resources();

    // ---- Phase 2: requests per reconcile of an unchanged cluster.
    let quiet_seconds = wait_quiet(&mut operator, Duration::from_secs(5), scaled).await?;
    let idle = measure_window(&client, &mut operator, Duration::from_secs(args.idle_seconds), &[], 0).await?;
    let pokes = if args.pokes == 0 { names.len() } else { args.pokes };
    let targets: Vec<(String, String)> = (0..pokes).map(|i| names[i % names.len()].clone()).collect();
    let poked = measure_window(&client, &mut operator, Duration::ZERO, &targets, pokes as u64).await?;
    operator.ensure_running()?;

    let cache_sizes = cache_json_sizes(&client, clusters).await?;
    // What the floor replays: the objects as the creates left them, before the restart and the rollout.
    let captured = if floors { Some(capture(&client, &names).await?) } else { None };

    // ---- Phase 3 (--restart, --against-floors): the operator restarted in place.
    let restart = if restart {
        let r = restart_in_place(&client, &mut operator, &names, scaled).await?;
        eprintln!(
            "bench: restart: every cluster reconciled {:.1}s after the start, {} operator writes",
            r.all_reconciled_seconds, r.op.writes
        );
        Some(r)
    } else {
        None
    };

    // ---- Phase 4 (--rollout): every cluster's image changed at once.
    let pods = clusters * args.size.max(0) as usize;
    let rollout_ours = if rollout {
        let r = rollout_ours(&client, &mut operator, &names, pods, Duration::from_secs(args.timeout)).await?;
        eprintln!("bench: rollout: {pods} pods on {ROLLOUT_IMAGE} and every cluster Completed in {:.1}s", r.seconds);
        Some(r)
    } else {
        None
    };

    // ---- Phase 5 (--against-floors): the API-server floor, with the operator stopped. crfloor keeps watching (its
    // memory was read above): the API server serves the same extra watcher as during ours.
    let api_floor = if let Some(captured) = captured {
        operator.stop();
        for ns in &namespaces {
            let fns = floor_namespace(ns);
            create_namespace(&client, &fns).await?;
            wait_default_service_account(&client, &fns).await?;
        }
        let per_cluster = (run_by_verb.cluster_status_writes() / names.len() as f64).round() as usize;
        let before = ApiMetrics::fetch(&client).await?;
        let cpu_before = cpu_of(&watched);
        let mut floor =
            run_api_floor(&client, &captured, per_cluster, args.size, Duration::from_secs(args.timeout)).await?;
        let cpu_after = cpu_of(&watched);
        floor.cpu_seconds_by_process = cpu_delta(&cpu_before, &cpu_after);
        floor.cpu_seconds_by_process.remove("operator");
        let after = ApiMetrics::fetch(&client).await?;
        eprintln!(
            "bench: API-server floor: {} objects for {} clusters in {:.1}s",
            floor.objects_created,
            captured.len(),
            floor.seconds
        );
        Some((floor, after.delta(&before).operator_resources()))
    } else {
        None
    };
    let rollout_floor = if rollout && api_floor.is_some() {
        let r = rollout_floor(&client, pods, Duration::from_secs(args.timeout)).await?;
        eprintln!("bench: rollout floor: {} pods recreated on {ROLLOUT_IMAGE} in {:.1}s", r.pods, r.seconds);
        Some(r)
    } else {
        None
    };

    // Stop everything before reporting (the guards would do it too).
    if let Some(f) = &mut crfloor {
        f.stop();
    }
    operator.stop();
    sim.stop();
    cluster.stop();
    let load_end = loadavg();

    let idle_rate = |v: f64| v / idle.seconds.max(1e-9);
    let net = |poke_value: f64, idle_value: f64| poke_value - idle_rate(idle_value) * poked.seconds;
    let per = |v: f64| if poked.reconciles > 0.0 { v / poked.reconciles } else { f64::NAN };
    let net_op = OpRequests {
        reads: net(poked.op.reads, idle.op.reads),
        watches: net(poked.op.watches, idle.op.watches),
        writes: net(poked.op.writes, idle.op.writes),
        other: net(poked.op.other, idle.op.other),
    };
    let own_patches = pokes as f64;
    let poke_cls = poked.by_verb.classes();
    let idle_cls = idle.by_verb.classes();

    let pct = |q: f64| percentile(&completion, q);
    let lat = |q: f64| percentile(&latency, q);
    let mib = |kb: u64| kb as f64 / 1024.0;
    Ok(json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "watch_mode": mode.name(),
        "operator_watch_namespaces": watch,
        "operator_binary": {"path": setup.exe.display().to_string(), "profile": setup.profile, "build_seconds": round(setup.build_seconds, 1),
                            "no_webhook": setup.no_webhook, "identity": format!("system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA} (ClusterRole from rbac::namespaced_rules + cluster_rules)")},
        "setup": {"clusters": clusters, "namespaces": args.namespaces, "size": args.size, "pods": clusters as i64 * args.size as i64,
                  "fake_nodes": fake_nodes(args.nodes, clusters, args.size, floors), "multi_pod_per_host": true, "storage": "in-memory", "migration_ms": args.migration_ms,
                  "operator_ready_seconds": round(ready_seconds, 2)},
        "scale": {
            "wall_seconds_to_all_completed": round(wall, 2),
            "create_requests_seconds": round(create_seconds, 2),
            "per_cluster_completed_seconds": {"min": round(pct(0.0), 2), "p50": round(pct(0.5), 2), "p90": round(pct(0.9), 2), "max": round(pct(1.0), 2)},
            "per_cluster_create_to_completed_seconds": {"min": round(lat(0.0), 2), "p50": round(lat(0.5), 2), "p90": round(lat(0.9), 2), "max": round(lat(1.0), 2)},
            "create_concurrency": CREATE_CONCURRENCY,
            "operator_peak_rss_mib": round(mib(status_end.hwm_kb), 1),
            "operator_max_sampled_rss_mib": round(mib(samples.max_rss_kb), 1),
            "operator_rss_at_start_of_run_mib": round(mib(samples.first_rss_kb), 1),
            "operator_rss_at_end_mib": round(mib(status_end.rss_kb), 1),
            "operator_cpu_seconds_run": round(cpu_run.get("operator").copied().unwrap_or(0.0), 2),
            "operator_cpu_seconds_startup": round(op_cpu_total - cpu_run.get("operator").copied().unwrap_or(0.0), 2),
            "operator_threads_max": samples.max_threads,
            "operator_open_fds_max": samples.max_fds,
            "reconciles": run_reconciles,
            "reconcile_failures": run_failures,
            "reconcile_latency_seconds": {
                "p50": round(histogram_quantile(0.5, &run_buckets), 4),
                "p99": round(histogram_quantile(0.99, &run_buckets), 4),
                "method": "controller_runtime_reconcile_time_seconds over the run (bucket counts after less before), \
                           linear interpolation within the bucket as Prometheus' histogram_quantile",
                "buckets": run_buckets.iter().map(|(le, n)| json!([if le.is_finite() { json!(le) } else { json!("+Inf") }, n])).collect::<Vec<_>>(),
            },
            "operator_api_requests": run_op.json(),
            "operator_api_requests_per_reconcile": round(run_op.total() / run_reconciles.max(1.0), 2),
            "operator_api_requests_since_it_started": api_after.operator().json(),
            "operator_resource_requests_by_verb_all_clients": run_by_verb.by_verb_json(),
            "cpu_seconds_by_process": cpu_run.iter().map(|(k, v)| (k.clone(), json!(round(*v, 2)))).collect::<serde_json::Map<_, _>>(),
            "machine_busy_cpu_seconds": round(machine_after.0 - machine_before.0, 1),
            "machine_cpu_seconds_available": round((machine_after.1 - machine_before.1).as_secs_f64() * num_cpus() as f64, 1),
            "rss_samples": samples.count,
        },
        "unchanged_reconcile": {
            "trigger": format!("merge patch of annotation {POKE_ANNOTATION} on {pokes} clusters (as admin)"),
            "idle_window": idle.json(),
            "poke_window": poked.json(),
            "operator_requests_net": net_op.json(),
            "reads_per_reconcile": round(per(net_op.reads), 3),
            "writes_per_reconcile": round(per(net_op.writes), 3),
            "watches_per_reconcile": round(per(net_op.watches), 3),
            "other_per_reconcile": round(per(net_op.other), 3),
            "requests_per_reconcile": round(per(net_op.total()), 3),
            "cross_check_all_clients_operator_resources": {
                "bench_own_requests_in_poke_window": {"PATCH aerospikeclusters": pokes},
                "poke_window_minus_own": {"reads": poke_cls.reads, "writes": poke_cls.writes - own_patches, "watches": poke_cls.watches},
                "idle_window": {"reads": idle_cls.reads, "writes": idle_cls.writes, "watches": idle_cls.watches},
            },
            "quiet_wait_seconds": round(quiet_seconds, 1),
        },
        "load": {"loadavg_before_build": setup.load_start, "loadavg_before_create": load_before, "loadavg_after_completed": load_after,
                 "loadavg_end": load_end, "loadavg1_max_during_run": samples.max_load1},
        "operator_cache_json_sizes": cache_sizes,
        "floors": floors_json(wall, mib(status_end.hwm_kb), &api_floor, crfloor_end.map(|s| mib(s.hwm_kb)), crfloor_samples.as_ref().map(|s| mib(s.max_rss_kb)), &cpu_run),
        "restart": restart.as_ref().map(Restart::json),
        "rollout": rollout_json(rollout_ours.as_ref(), rollout_floor.as_ref()),
        "total_seconds_after_build": round(total.elapsed().as_secs_f64(), 1),
    }))
}

/// ClusterIPs of the local plane's Service range (a /19), less a margin for the other Services.
const SERVICE_IPS: usize = 8000;

/// A NodePort range from 30000 holding twice the `needed` ports, and at least the apiserver's default
/// (30000-32767). Twice: under load the apiserver's allocator leaks ports of failed creates until its repair loop
/// frees them (a 1000-cluster run with room for 3,100 saw all 3,101 allocated for 2,291 NodePort Services).
fn node_port_range(needed: usize) -> (u16, u16) {
    let last = (30000 + 2 * needed).clamp(32767, 65535);
    (30000, last as u16)
}

/// NodePorts the run needs: one per pod (multiPodPerHost gives each pod a NodePort Service for its service port),
/// twice when the API-server floor replays the Services beside ours.
fn node_ports_needed(clusters: usize, size: i32, floors: bool) -> usize {
    let copies = if floors { 2 } else { 1 };
    copies * clusters * size.max(0) as usize
}

/// Pods a fake node takes (kwok's default capacity).
const PODS_PER_NODE: usize = 250;

/// Fake nodes for the run: at least `asked`, and enough for the pods of the floor's replay beside ours.
fn fake_nodes(asked: usize, clusters: usize, size: i32, floors: bool) -> usize {
    let copies = if floors { 2 } else { 1 };
    asked.max((copies * clusters * size.max(0) as usize).div_ceil(PODS_PER_NODE) + 1)
}

fn round(v: f64, digits: i32) -> f64 {
    if !v.is_finite() {
        return v;
    }
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn cluster_manifest(name: &str, ns: &str, size: i32) -> Value {
    json!({
        "apiVersion": "asdb.aerospike.com/v1",
        "kind": "AerospikeCluster",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "size": size,
            "image": IMAGE,
            "podSpec": {"multiPodPerHost": true},
            "validationPolicy": {"skipWorkDirValidate": true},
            "aerospikeConfig": {
                "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
                "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
                "namespaces": [{"name": "test", "replication-factor": 2,
                                "storage-engine": {"type": "memory", "data-size": 1073741824}}]
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ports_count_one_per_pod_and_the_floor_twice() {
        assert_eq!(node_ports_needed(300, 3, true), 1800);
        assert_eq!(node_ports_needed(1000, 3, false), 3000);
        assert!(node_ports_needed(1000, 3, false) < SERVICE_IPS);
        assert!(node_ports_needed(1000, 3, true) < SERVICE_IPS);
        assert!(node_ports_needed(1500, 3, true) > SERVICE_IPS);
    }

    #[test]
    fn node_port_range_keeps_the_default_and_grows_past_it() {
        assert_eq!(node_port_range(1300), (30000, 32767));
        assert_eq!(node_port_range(3000), (30000, 36000));
        assert_eq!(node_port_range(100_000), (30000, 65535));
    }
}
