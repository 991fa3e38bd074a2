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
//!    from the operator's `aerospike_operator_reconciles`. As a cross-check, `apiserver_request_total` by verb
//!    over the resources the operator uses, all clients, minus the bench's own PATCHes (known exactly).
//!
//! Prints a table and writes it as JSON to `target/bench/cluster-scale.json`; the operator's log is kept in
//! `target/bench/operator.log`. Every process it started is stopped at the end, on error, on timeout and on
//! Ctrl-C (and by the kernel if this process dies: they are owned, see [`ako_testbed::cluster::proc`]).
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::BufRead;
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

use crate::project::PACKAGE;
use ako_simulator::{Simulator, SimulatorOptions};
use ako_testbed::cluster::proc::{self, Mode, Proc, Spec};
use ako_testbed::cluster::{self, ClusterOptions, LocalCluster};

/// Where the report and the operator's log go, under the repository root.
const OUT_DIR: &str = "target/bench";
const REPORT_FILE: &str = "cluster-scale.json";
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
    /// AerospikeClusters to create.
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    /// Namespaces to spread them over (round-robin).
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Nodes per cluster (spec.size).
    #[arg(long, default_value_t = 3)]
    size: i32,
    /// Fake nodes of the control plane (250 pods each; multiPodPerHost, so no hostPort limit).
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
    /// Upper bound of the whole run after the build, in minutes.
    #[arg(long, default_value_t = 40)]
    max_minutes: u64,
    /// Upper bound of the operator build, in minutes.
    #[arg(long, default_value_t = 40)]
    build_minutes: u64,
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
            let exe = build_operator(root, args.debug, Duration::from_secs(args.build_minutes * 60))?;
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

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let max = Duration::from_secs(args.max_minutes * 60);
    let setup = Setup { exe, profile, build_seconds, no_webhook, out_dir: out_dir.clone(), load_start };
    let report = runtime.block_on(async {
        tokio::select! {
            r = tokio::time::timeout(max, bench(&args, &setup)) => match r {
                Ok(r) => r,
                Err(_) => Err(anyhow!("the bench did not finish within --max-minutes {}", args.max_minutes)),
            },
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    })?;
    // (Every process the bench started was stopped when `bench` returned: the guards live in it.)
    drop(runtime);
    let path = out_dir.join(REPORT_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    print_table(&report);
    println!("\nwritten to {}", path.display());
    Ok(())
}

struct Setup {
    exe: PathBuf,
    profile: String,
    build_seconds: f64,
    no_webhook: bool,
    out_dir: PathBuf,
    load_start: [f64; 3],
}

/// `cargo build [--release] -p aerospike-kubernetes-operator`; cargo's messages go to our stderr.
fn build_operator(root: &Path, debug: bool, limit: Duration) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", PACKAGE, "--message-format=json-render-diagnostics"]);
    if !debug {
        cmd.arg("--release");
    }
    eprintln!("bench: cargo build {}-p {PACKAGE}", if debug { "" } else { "--release " });
    let mut child = cmd
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running cargo build")?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut exe = None;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(msg) = serde_json::from_str::<Value>(&line) else { continue };
            if msg["reason"] == "compiler-artifact"
                && msg["target"]["name"] == PACKAGE
                && let Some(p) = msg["executable"].as_str()
            {
                exe = Some(PathBuf::from(p));
            }
        }
        exe
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill(); // our own child
            let _ = child.wait();
            bail!("cargo build did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let exe = reader.join().ok().flatten();
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    exe.ok_or_else(|| anyhow!("cargo build did not report the {PACKAGE} executable"))
}

// -----------------------------------------------------------------------------------------------------------------
// The run.

/// The operator process; stopped (SIGTERM, then SIGKILL) when dropped.
struct Operator {
    proc: Option<Proc>,
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

async fn bench(args: &BenchArgs, setup: &Setup) -> Result<Value> {
    if args.clusters == 0 || args.namespaces == 0 {
        bail!("--clusters and --namespaces must be at least 1");
    }
    let total = Instant::now();
    // Declared first, dropped last: the simulator and the operator go before the control plane.
    let cluster = LocalCluster::start(ClusterOptions {
        nodes: args.nodes,
        state_dir: None,
        timeout: Duration::from_secs(180),
        provisioner: false,
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
    let mut op_args: Vec<OsString> = ["run", "--watch-namespaces", "", "--metrics-addr"]
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
    let mut operator = Operator { proc: Some(proc::spawn(spec, Mode::Owned)?), metrics, health, log };
    wait_operator_ready(&mut operator, Duration::from_secs(120)).await?;
    let ready_seconds = op_started.elapsed().as_secs_f64();
    let op_pid = operator.pid();
    eprintln!("bench: operator pid {op_pid} ready in {ready_seconds:.1}s (metrics on {})", operator.metrics);

    // Processes whose CPU is accounted: the operator, each control-plane component, this process (simulator).
    let mut watched: Vec<(String, u32)> = vec![("operator".into(), op_pid)];
    watched.extend(cluster.pids());
    watched.push(("xtask (simulator, bench client)".into(), std::process::id()));

    // ---- Phase 1: create the clusters, wait for Completed.
    let sampler = Sampler::start(op_pid);
    let cpu_before = cpu_of(&watched);
    let machine_before = (machine_busy(), Instant::now());
    let op_metrics_before = operator_metrics(operator.metrics).await?;
    let api_before = ApiMetrics::fetch(&client).await?;
    let load_before = loadavg();
    let names: Vec<(String, String)> =
        (0..args.clusters).map(|i| (namespaces[i % namespaces.len()].clone(), format!("bench-{i:03}"))).collect();
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
    eprintln!("bench: all {} Completed in {wall:.1}s", names.len());

    let mut completion: Vec<f64> = done.values().copied().collect();
    completion.sort_by(f64::total_cmp);
    let mut latency: Vec<f64> = done.iter().map(|(k, t)| t - created.get(k).copied().unwrap_or(0.0)).collect();
    latency.sort_by(f64::total_cmp);
    let cpu_run: BTreeMap<String, f64> = watched
        .iter()
        .map(|(n, _)| (n.clone(), cpu_after.get(n).copied().unwrap_or(0.0) - cpu_before.get(n).copied().unwrap_or(0.0)))
        .collect();
    let op_cpu_total = cpu_after.get("operator").copied().unwrap_or(0.0);
    let run_reconciles = op_metrics_after.reconciles - op_metrics_before.reconciles;
    let run_failures = op_metrics_after.failures - op_metrics_before.failures;
    let run_op = api_after.operator().minus(&api_before.operator());
    let run_by_verb = api_after.delta(&api_before).operator_resources();

    // ---- Phase 2: requests per reconcile of an unchanged cluster.
    let quiet_seconds = wait_quiet(&mut operator, Duration::from_secs(5), Duration::from_secs(120)).await?;
    let idle = measure_window(&client, &mut operator, Duration::from_secs(args.idle_seconds), &[], 0).await?;
    let pokes = if args.pokes == 0 { names.len() } else { args.pokes };
    let targets: Vec<(String, String)> = (0..pokes).map(|i| names[i % names.len()].clone()).collect();
    let poked = measure_window(&client, &mut operator, Duration::ZERO, &targets, pokes as u64).await?;
    operator.ensure_running()?;

    // Stop everything before reporting (the guards would do it too).
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
        "operator_binary": {"path": setup.exe.display().to_string(), "profile": setup.profile, "build_seconds": round(setup.build_seconds, 1),
                            "no_webhook": setup.no_webhook, "identity": format!("system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA} (ClusterRole from rbac::namespaced_rules + cluster_rules)")},
        "setup": {"clusters": args.clusters, "namespaces": args.namespaces, "size": args.size, "pods": args.clusters as i64 * args.size as i64,
                  "fake_nodes": args.nodes, "multi_pod_per_host": true, "storage": "in-memory", "migration_ms": args.migration_ms,
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
            "reconciles": run_reconciles,
            "reconcile_failures": run_failures,
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
        "total_seconds_after_build": round(total.elapsed().as_secs_f64(), 1),
    }))
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
            "aerospikeConfig": {
                "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
                "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
                "namespaces": [{"name": "test", "replication-factor": 2,
                                "storage-engine": {"type": "memory", "data-size": 1073741824}}]
            }
        }
    })
}

async fn install_crds(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in aerospike_kubernetes_operator::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&crd))
            .await
            .with_context(|| format!("the apiserver refused CRD {name}"))?;
        poll(&format!("CRD {name} Established"), Duration::from_secs(60), || async {
            let crd = crds.get(&name).await.ok()?;
            crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
        })
        .await?;
    }
    Ok(())
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating namespace {name}")),
    }
}

/// Pods cannot be created before their namespace's `default` ServiceAccount exists; waiting here keeps that
/// out of the measured time.
async fn wait_default_service_account(client: &Client, ns: &str) -> Result<()> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    poll(&format!("ServiceAccount {ns}/default"), Duration::from_secs(60), || async {
        api.get_opt("default").await.ok().flatten().map(|_| ())
    })
    .await
}

/// A ServiceAccount for the operator, bound to a ClusterRole of the operator's own rules, and a kubeconfig with a
/// token of it (in the cluster's state folder, removed with it).
async fn operator_kubeconfig(client: &Client, cluster: &LocalCluster) -> Result<PathBuf> {
    let pp = PatchParams::apply(MANAGER).force();
    let sa: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": OPERATOR_SA, "namespace": OPERATOR_NS}
    }))?;
    Api::<ServiceAccount>::namespaced(client.clone(), OPERATOR_NS).patch(OPERATOR_SA, &pp, &Patch::Apply(&sa)).await?;
    let mut rules = aerospike_kubernetes_operator::rbac::namespaced_rules();
    rules.extend(aerospike_kubernetes_operator::rbac::cluster_rules());
    let role = ClusterRole {
        metadata: kube::api::ObjectMeta { name: Some(OPERATOR_ROLE.into()), ..Default::default() },
        rules: Some(rules),
        ..Default::default()
    };
    let mut role_json = serde_json::to_value(&role)?;
    role_json["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
    role_json["kind"] = json!("ClusterRole");
    Api::<ClusterRole>::all(client.clone()).patch(OPERATOR_ROLE, &pp, &Patch::Apply(&role_json)).await?;
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": OPERATOR_ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NS}]
    }))?;
    Api::<ClusterRoleBinding>::all(client.clone()).patch(OPERATOR_ROLE, &pp, &Patch::Apply(&binding)).await?;
    install_flow_schemas(client).await?;
    let request = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(4 * 3600), ..Default::default() },
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::namespaced(client.clone(), OPERATOR_NS)
        .create_token_request(OPERATOR_SA, &PostParams::default(), &request)
        .await
        .context("requesting a token for the operator's ServiceAccount")?
        .status
        .map(|s| s.token)
        .ok_or_else(|| anyhow!("the TokenRequest came back without a token"))?;
    let admin = std::fs::read_to_string(cluster.kubeconfig_path())?;
    let mut doc: serde_json::Value = serde_saphyr::from_str(&admin)?;
    let user = "aerospike-operator";
    doc["users"] = json!([{"name": user, "user": {"token": token}}]);
    if let Some(contexts) = doc["contexts"].as_array_mut() {
        for c in contexts {
            c["context"]["user"] = serde_json::Value::from(user);
        }
    }
    let path = cluster.state_dir().join("operator.kubeconfig");
    ako_testbed::cluster::pki::write_private(&path, &serde_saphyr::to_string(&doc)?)?;
    Ok(path)
}

/// FlowSchemas that sort the operator's requests by kind (see the module docs), in the stock `workload-low`
/// priority level like the `service-accounts` schema they take the requests from; waits until the apiserver's
/// APF controller has processed them (it sets their `Dangling` condition).
async fn install_flow_schemas(client: &Client) -> Result<()> {
    let api: Api<FlowSchema> = Api::all(client.clone());
    for (name, verbs) in FLOW_SCHEMAS {
        let fs = json!({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
            "metadata": {"name": name},
            "spec": {
                "matchingPrecedence": 300,
                "priorityLevelConfiguration": {"name": "workload-low"},
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [{
                    "subjects": [{"kind": "ServiceAccount", "serviceAccount": {"name": OPERATOR_SA, "namespace": OPERATOR_NS}}],
                    "resourceRules": [{"verbs": verbs, "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": true}]
                }]
            }
        });
        api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&fs))
            .await
            .with_context(|| format!("creating FlowSchema {name}"))?;
    }
    for (name, _) in FLOW_SCHEMAS {
        poll(&format!("FlowSchema {name} processed by the apiserver"), Duration::from_secs(60), || async {
            let fs = api.get(name).await.ok()?;
            let conds = fs.status?.conditions?;
            conds
                .iter()
                .any(|c| c.type_.as_deref() == Some("Dangling") && c.status.as_deref() == Some("False"))
                .then_some(())
        })
        .await?;
    }
    Ok(())
}

async fn wait_operator_ready(op: &mut Operator, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        op.ensure_running()?;
        if let Ok((200, _)) = http_get(op.health, "/readyz").await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the operator was not ready within {limit:?}; see {}\n--- last lines ---\n{}",
                op.log.display(),
                proc::log_tail(&op.log, 30)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls every AerospikeCluster until all are Completed for their generation; returns when each was first seen
/// so (seconds after `t0`). On timeout, names the stragglers.
async fn wait_all_completed(
    client: &Client,
    op: &mut Operator,
    names: &[(String, String)],
    t0: Instant,
    limit: Duration,
) -> Result<BTreeMap<(String, String), f64>> {
    let api: Api<AerospikeCluster> = Api::all(client.clone());
    let wanted: BTreeSet<(String, String)> = names.iter().cloned().collect();
    let mut done: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut last_report = Instant::now();
    loop {
        op.ensure_running()?;
        let mut pending: Vec<String> = Vec::new();
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                let now = t0.elapsed().as_secs_f64();
                for c in list.items {
                    let key = (c.namespace().unwrap_or_default(), c.name_any());
                    if !wanted.contains(&key) || done.contains_key(&key) {
                        continue;
                    }
                    let st = c.status.clone().unwrap_or_default();
                    if st.phase == Some(Phase::Completed) && st.observed_generation == c.metadata.generation {
                        done.insert(key, now);
                    } else {
                        pending.push(format!("{}/{}: {:?}", key.0, key.1, st.phase));
                    }
                }
            }
            Err(e) => pending.push(format!("listing: {e}")),
        }
        if done.len() == wanted.len() {
            return Ok(done);
        }
        if last_report.elapsed() >= Duration::from_secs(15) {
            eprintln!("bench: {:.0}s: {}/{} Completed", t0.elapsed().as_secs_f64(), done.len(), wanted.len());
            last_report = Instant::now();
        }
        if t0.elapsed() >= limit {
            pending.truncate(10);
            bail!(
                "{} of {} clusters Completed within {limit:?}; still waiting for e.g. {}; operator log {}",
                done.len(),
                wanted.len(),
                pending.join(", "),
                op.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the operator's reconcile counter stays unchanged for `still`; returns the seconds waited.
async fn wait_quiet(op: &mut Operator, still: Duration, limit: Duration) -> Result<f64> {
    let started = Instant::now();
    let mut last = operator_metrics(op.metrics).await?.reconciles;
    let mut since = Instant::now();
    loop {
        op.ensure_running()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = operator_metrics(op.metrics).await?.reconciles;
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= still {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() >= limit {
            bail!("the operator kept reconciling for {limit:?} after every cluster was Completed");
        }
    }
}

/// One measured window: apiserver and operator counters before and after.
struct Window {
    seconds: f64,
    reconciles: f64,
    failures: f64,
    op: OpRequests,
    by_verb: RequestCounts,
}

impl Window {
    fn json(&self) -> Value {
        json!({
            "seconds": round(self.seconds, 2),
            "reconciles": self.reconciles,
            "reconcile_failures": self.failures,
            "operator_requests": self.op.json(),
            "operator_resource_requests_by_verb_all_clients": self.by_verb.by_verb_json(),
        })
    }
}

/// Measures a window. With `targets` empty: an idle window of `idle`. Otherwise annotates each target once
/// (merge patch of metadata only) and ends when the operator has run at least `expect` more reconciles and then
/// stayed quiet for 3 s.
async fn measure_window(
    client: &Client,
    op: &mut Operator,
    idle: Duration,
    targets: &[(String, String)],
    expect: u64,
) -> Result<Window> {
    let before_op = operator_metrics(op.metrics).await?;
    let before = ApiMetrics::fetch(client).await?;
    let started = Instant::now();
    if targets.is_empty() {
        tokio::time::sleep(idle).await;
    } else {
        for (i, (ns, name)) in targets.iter().enumerate() {
            let patch = json!({"metadata": {"annotations": {POKE_ANNOTATION: format!("{i}")}}});
            Api::<AerospikeCluster>::namespaced(client.clone(), ns)
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .with_context(|| format!("annotating {ns}/{name}"))?;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            op.ensure_running()?;
            let n = operator_metrics(op.metrics).await?.reconciles;
            if n >= before_op.reconciles + expect as f64 {
                break;
            }
            if Instant::now() >= deadline {
                bail!("only {} of {expect} reconciles after the annotations within 120s", n - before_op.reconciles);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        wait_quiet(op, Duration::from_secs(3), Duration::from_secs(60)).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = ApiMetrics::fetch(client).await?;
    let after_op = operator_metrics(op.metrics).await?;
    Ok(Window {
        seconds,
        reconciles: after_op.reconciles - before_op.reconciles,
        failures: after_op.failures - before_op.failures,
        op: after.operator().minus(&before.operator()),
        by_verb: after.delta(&before).operator_resources(),
    })
}

// -----------------------------------------------------------------------------------------------------------------
// Metrics.

/// `apiserver_request_total` summed by (verb, group, resource, subresource).
#[derive(Clone, Debug, Default)]
struct RequestCounts(BTreeMap<(String, String, String, String), f64>);

struct Classes {
    reads: f64,
    writes: f64,
    watches: f64,
}

impl RequestCounts {
    fn operator_resources(self) -> RequestCounts {
        RequestCounts(
            self.0
                .into_iter()
                .filter(|((_, g, r, _), _)| OPERATOR_RESOURCES.iter().any(|(og, or)| og == g && or == r))
                .filter(|(_, v)| *v != 0.0)
                .collect(),
        )
    }

    fn classes(&self) -> Classes {
        let mut c = Classes { reads: 0.0, writes: 0.0, watches: 0.0 };
        for ((verb, ..), v) in &self.0 {
            match verb.as_str() {
                "GET" | "LIST" => c.reads += v,
                "WATCH" | "WATCHLIST" => c.watches += v,
                _ => c.writes += v,
            }
        }
        c
    }

    fn by_verb_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for ((verb, group, resource, sub), v) in &self.0 {
            let res = if group.is_empty() { resource.clone() } else { format!("{resource}.{group}") };
            let key = if sub.is_empty() { format!("{verb} {res}") } else { format!("{verb} {res}/{sub}") };
            m.insert(key, json!(v));
        }
        Value::Object(m)
    }
}

/// What the bench reads from the apiserver's /metrics.
struct ApiMetrics {
    requests: RequestCounts,
    /// `apiserver_flowcontrol_dispatched_requests_total` by flow schema.
    flows: BTreeMap<String, f64>,
}

impl ApiMetrics {
    async fn fetch(client: &Client) -> Result<ApiMetrics> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        let text = tokio::time::timeout(Duration::from_secs(30), client.request_text(request))
            .await
            .context("GET /metrics of the apiserver timed out")?
            .context("GET /metrics of the apiserver")?;
        let mut requests = RequestCounts::default();
        let mut flows: BTreeMap<String, f64> = BTreeMap::new();
        for (name, labels, value) in prometheus_samples(&text) {
            match name {
                "apiserver_request_total" => {
                    let l = |k: &str| labels.get(k).cloned().unwrap_or_default();
                    if l("resource").is_empty() {
                        continue; // non-resource URLs (/metrics, /readyz, ...)
                    }
                    *requests.0.entry((l("verb"), l("group"), l("resource"), l("subresource"))).or_default() += value;
                }
                "apiserver_flowcontrol_dispatched_requests_total" => {
                    *flows.entry(labels.get("flow_schema").cloned().unwrap_or_default()).or_default() += value;
                }
                _ => {}
            }
        }
        if requests.0.is_empty() {
            bail!("the apiserver's /metrics has no apiserver_request_total");
        }
        Ok(ApiMetrics { requests, flows })
    }

    fn flow(&self, schema: &str) -> f64 {
        self.flows.get(schema).copied().unwrap_or(0.0)
    }

    /// The operator's requests so far, by kind (from its flow schemas).
    fn operator(&self) -> OpRequests {
        OpRequests {
            reads: self.flow(FLOW_READS),
            watches: self.flow(FLOW_WATCHES),
            writes: self.flow(FLOW_WRITES),
            other: self.flow(SA_FLOW_SCHEMA),
        }
    }

    fn delta(&self, before: &ApiMetrics) -> RequestCounts {
        RequestCounts(
            self.requests
                .0
                .iter()
                .map(|(k, v)| (k.clone(), v - before.requests.0.get(k).copied().unwrap_or(0.0)))
                .collect(),
        )
    }
}

/// Requests of the operator's ServiceAccount, by flow schema.
#[derive(Clone, Copy, Debug, Default)]
struct OpRequests {
    reads: f64,
    watches: f64,
    writes: f64,
    /// In the stock `service-accounts` schema: none of ours matched (non-resource URLs, other verbs).
    other: f64,
}

impl OpRequests {
    fn minus(&self, before: &OpRequests) -> OpRequests {
        OpRequests {
            reads: self.reads - before.reads,
            watches: self.watches - before.watches,
            writes: self.writes - before.writes,
            other: self.other - before.other,
        }
    }

    fn total(&self) -> f64 {
        self.reads + self.watches + self.writes + self.other
    }

    fn json(&self) -> Value {
        json!({"reads": round(self.reads, 1), "watches": round(self.watches, 1), "writes": round(self.writes, 1),
               "other": round(self.other, 1), "total": round(self.total(), 1)})
    }
}

struct OperatorMetrics {
    reconciles: f64,
    failures: f64,
}

async fn operator_metrics(addr: SocketAddr) -> Result<OperatorMetrics> {
    let (code, body) = http_get(addr, "/metrics").await.context("GET the operator's /metrics")?;
    if code != 200 {
        bail!("the operator's /metrics answered {code}");
    }
    let mut m = OperatorMetrics { reconciles: 0.0, failures: 0.0 };
    let mut seen = false;
    for (name, _, value) in prometheus_samples(&body) {
        match name {
            "aerospike_operator_reconciles_total" | "aerospike_operator_reconciles" => {
                m.reconciles += value;
                seen = true;
            }
            "aerospike_operator_reconcile_failures_total" | "aerospike_operator_reconcile_failures" => {
                m.failures += value
            }
            _ => {}
        }
    }
    if !seen {
        bail!("the operator's /metrics has no aerospike_operator_reconciles");
    }
    Ok(m)
}

/// Samples of the Prometheus / OpenMetrics text format: (name, labels, value).
fn prometheus_samples(text: &str) -> Vec<(&str, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
        let name = &line[..name_end];
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if rest.starts_with('{') {
            // key="value" pairs; values may hold escaped quotes, commas and braces.
            let bytes: Vec<char> = rest.chars().collect();
            let mut i = 1;
            let mut consumed = None;
            while i < bytes.len() {
                while i < bytes.len() && (bytes[i] == ',' || bytes[i].is_whitespace()) {
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == '}' {
                    consumed = Some(i + 1);
                    break;
                }
                let key_start = i;
                while i < bytes.len() && bytes[i] != '=' {
                    i += 1;
                }
                let key: String = bytes[key_start..i].iter().collect::<String>().trim().to_string();
                i += 1; // '='
                if i >= bytes.len() || bytes[i] != '"' {
                    break;
                }
                i += 1;
                let mut value = String::new();
                while i < bytes.len() && bytes[i] != '"' {
                    if bytes[i] == '\\' && i + 1 < bytes.len() {
                        i += 1;
                        value.push(match bytes[i] {
                            'n' => '\n',
                            c => c,
                        });
                    } else {
                        value.push(bytes[i]);
                    }
                    i += 1;
                }
                i += 1; // closing quote
                labels.insert(key, value);
            }
            let Some(end) = consumed else { continue };
            let byte_end: usize = bytes[..end].iter().map(|c| c.len_utf8()).sum();
            rest = &rest[byte_end..];
        }
        let Some(value) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        out.push((name, labels, value));
    }
    out
}

/// A plain HTTP/1.0 GET on loopback (the operator's endpoints are plain HTTP): (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), exchange).await.context("timed out")??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("no HTTP header in the answer"))?;
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| anyhow!("bad status line"))?;
    Ok((code, body.to_string()))
}

// -----------------------------------------------------------------------------------------------------------------
// /proc.

#[derive(Clone, Copy, Debug, Default)]
struct ProcStatus {
    rss_kb: u64,
    hwm_kb: u64,
    threads: u64,
}

fn proc_status(pid: u32) -> Option<ProcStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut s = ProcStatus::default();
    for line in text.lines() {
        let field =
            |prefix: &str| -> Option<u64> { line.strip_prefix(prefix)?.split_whitespace().next()?.parse().ok() };
        if let Some(v) = field("VmRSS:") {
            s.rss_kb = v;
        } else if let Some(v) = field("VmHWM:") {
            s.hwm_kb = v;
        } else if let Some(v) = field("Threads:") {
            s.threads = v;
        }
    }
    Some(s)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// utime + stime of `pid` in seconds (fields 14 and 15 of /proc/<pid>/stat).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3: field 14 is index 11, field 15 index 12.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

fn cpu_of(procs: &[(String, u32)]) -> BTreeMap<String, f64> {
    procs.iter().filter_map(|(n, pid)| Some((n.clone(), cpu_seconds(*pid)?))).collect()
}

/// Busy CPU seconds of the whole machine since boot (/proc/stat: all but idle and iowait).
fn machine_busy() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else { return 0.0 };
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else { return 0.0 };
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest counted in user)
    let busy: u64 = v.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4 && *i < 8).map(|(_, x)| *x).sum();
    busy as f64 / clock_ticks()
}

fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<f64> = text.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect();
    [v.first().copied().unwrap_or(0.0), v.get(1).copied().unwrap_or(0.0), v.get(2).copied().unwrap_or(0.0)]
}

#[derive(Clone, Debug, Default)]
struct Samples {
    count: usize,
    first_rss_kb: u64,
    max_rss_kb: u64,
    max_threads: u64,
    max_load1: f64,
}

/// Samples the operator's /proc/<pid>/status (and the load average) every [`SAMPLE_EVERY`] on a thread.
struct Sampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    samples: Arc<Mutex<Samples>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Samples::default()));
        let thread = std::thread::spawn({
            let (stop, samples) = (stop.clone(), samples.clone());
            move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Some(s) = proc_status(pid) {
                        let mut acc = samples.lock().unwrap_or_else(|e| e.into_inner());
                        if acc.count == 0 {
                            acc.first_rss_kb = s.rss_kb;
                        }
                        acc.count += 1;
                        acc.max_rss_kb = acc.max_rss_kb.max(s.rss_kb);
                        acc.max_threads = acc.max_threads.max(s.threads);
                        acc.max_load1 = acc.max_load1.max(loadavg()[0]);
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            }
        });
        Sampler { stop, samples, thread: Some(thread) }
    }

    fn stop(mut self) -> Samples {
        self.halt();
        self.samples.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn halt(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

async fn poll<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// -----------------------------------------------------------------------------------------------------------------
// The table.

fn print_table(r: &Value) {
    let s = &r["scale"];
    let u = &r["unchanged_reconcile"];
    let setup = &r["setup"];
    let row = |k: &str, v: String| println!("  {k:<58} {v}");
    println!(
        "\ncargo xtask bench: {} AerospikeClusters x {} nodes in {} namespaces ({} pods, {} fake nodes), operator {} build",
        setup["clusters"],
        setup["size"],
        setup["namespaces"],
        setup["pods"],
        setup["fake_nodes"],
        r["operator_binary"]["profile"]
    );
    println!("  {:<58} value", "measure");
    row("time to all Completed (s)", format!("{}", s["wall_seconds_to_all_completed"]));
    let p = &s["per_cluster_completed_seconds"];
    row(
        "  per cluster Completed at (s): min / p50 / p90 / max",
        format!("{} / {} / {} / {}", p["min"], p["p50"], p["p90"], p["max"]),
    );
    let q = &s["per_cluster_create_to_completed_seconds"];
    row(
        "  per cluster create -> Completed (s): min / p50 / p90 / max",
        format!("{} / {} / {} / {}", q["min"], q["p50"], q["p90"], q["max"]),
    );
    row(
        "  creating the objects took (s)",
        format!("{} ({} in flight)", s["create_requests_seconds"], s["create_concurrency"]),
    );
    row("operator peak RSS, VmHWM (MiB)", format!("{}", s["operator_peak_rss_mib"]));
    row(
        "  RSS at start of run / max sampled / at end (MiB)",
        format!(
            "{} / {} / {}",
            s["operator_rss_at_start_of_run_mib"], s["operator_max_sampled_rss_mib"], s["operator_rss_at_end_mib"]
        ),
    );
    row("operator CPU seconds over the run (utime+stime)", format!("{}", s["operator_cpu_seconds_run"]));
    row("  operator CPU seconds before the run (startup)", format!("{}", s["operator_cpu_seconds_startup"]));
    row("reconciles during the run / failures", format!("{} / {}", s["reconciles"], s["reconcile_failures"]));
    let o = &s["operator_api_requests"];
    row(
        "operator API requests during the run: reads / watches / writes / other",
        format!("{} / {} / {} / {}", o["reads"], o["watches"], o["writes"], o["other"]),
    );
    row("  per reconcile during the run", format!("{}", s["operator_api_requests_per_reconcile"]));
    let o = &s["operator_api_requests_since_it_started"];
    row(
        "  since the operator started (incl. its initial lists and watches)",
        format!("{} / {} / {} / {}", o["reads"], o["watches"], o["writes"], o["other"]),
    );
    if let Some(m) = s["cpu_seconds_by_process"].as_object() {
        for (k, v) in m {
            row(&format!("  CPU s during the run: {k}"), format!("{v}"));
        }
    }
    row(
        "  machine busy CPU s during the run / available",
        format!("{} / {}", s["machine_busy_cpu_seconds"], s["machine_cpu_seconds_available"]),
    );
    println!("  unchanged clusters (every cluster annotated once):");
    row(
        "  reconciles in the window (idle window)",
        format!("{} ({})", u["poke_window"]["reconciles"], u["idle_window"]["reconciles"]),
    );
    row("API reads (get, list) per reconcile", format!("{}", u["reads_per_reconcile"]));
    row("API writes (create, update, patch, delete) per reconcile", format!("{}", u["writes_per_reconcile"]));
    row("  watches / other per reconcile", format!("{} / {}", u["watches_per_reconcile"], u["other_per_reconcile"]));
    let n = &u["operator_requests_net"];
    row("  operator requests in the window, net of idle: reads/writes", format!("{} / {}", n["reads"], n["writes"]));
    let x = &u["cross_check_all_clients_operator_resources"];
    row(
        "  all clients, operator's resources, minus own PATCHes: r/w/watch",
        format!(
            "{} / {} / {} (idle window {} / {} / {})",
            x["poke_window_minus_own"]["reads"],
            x["poke_window_minus_own"]["writes"],
            x["poke_window_minus_own"]["watches"],
            x["idle_window"]["reads"],
            x["idle_window"]["writes"],
            x["idle_window"]["watches"]
        ),
    );
    let l = &r["load"];
    row(
        "load average before build / before create / after",
        format!("{} / {} / {}", l["loadavg_before_build"], l["loadavg_before_create"], l["loadavg_after_completed"]),
    );
    row("  max 1-min load during the run", format!("{}", l["loadavg1_max_during_run"]));
}
