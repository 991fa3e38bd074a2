//! `cargo xtask demo`: the main job on an embedded default, on this machine. It builds what it needs (the pinned
//! tools, the operator), starts the local control plane with the Aerospike simulator (`cargo xtask cluster up`),
//! OLM serving this repository's catalog (as `cargo xtask cluster up --olm`), installs the operator through OLM the
//! way config/examples/ shows it (CatalogSource, OperatorGroup for namespace `aerospike`, Subscription to channel
//! `stable`; the CatalogSource points at the local `opm serve` by address), runs the operator binary on the host
//! with the ServiceAccount and the WATCH_NAMESPACE OLM gave it (the operator Deployment's pods are fake: kwok),
//! creates the CSV's first alm-example and waits until it is Completed, then prints what `kubectl get
//! aerospikeclusters` and `kubectl get csv` would show.
//!
//! Everything keeps running in the background afterwards (`export KUBECONFIG=...` to look around);
//! `cargo xtask demo down` stops every process it started (by pid, from the state folder) and removes the folder.
//!
//! State folder (default `$XDG_RUNTIME_DIR/aerospike-operator-demo`, else `/tmp/aerospike-operator-demo`): the
//! cluster's (`state.json`, logs, `kubeconfig`) plus `olm.json`, `operator.kubeconfig` (the ServiceAccount's
//! token), `operator.log`, `demo.json`, `cluster-up.log`, `operator-build.log`.
mod progress;
mod summary;

use progress::*;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use summary::*;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::olm::{self, CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, OlmKind};
use crate::operator_build::{self, OperatorBuild};
use crate::project::PACKAGE;
use ako_testbed::cluster::proc::{self, Mode, Record, Spec};
use ako_testbed::cluster::{StateFile, net};
use ako_testbed::tools::{self, Tool};

const DEMO_FILE: &str = "demo.json";
const OPERATOR: &str = "operator";
const STEPS: usize = 8;

/// The demo: everything from a fresh machine to a reconciled AerospikeCluster installed through OLM.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    #[command(subcommand)]
    command: Option<DemoCommand>,
    /// State folder (default: $XDG_RUNTIME_DIR/aerospike-operator-demo, else /tmp/aerospike-operator-demo).
    #[arg(long, value_name = "DIR", global = true)]
    state_dir: Option<PathBuf>,
    /// Upper bound, in seconds, of each wait (OLM's install, the operator's readiness, the cluster's reconcile).
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(clap::Subcommand, Debug)]
enum DemoCommand {
    /// Stop everything the demo started (by pid) and remove its state folder.
    Down,
}

/// What `demo down` and a second `demo` need to know beyond the cluster's state.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DemoState {
    operator: Record,
    operator_namespace: String,
    watch_namespace: String,
    csv: String,
    cluster: Option<String>,
    health_addr: String,
}

pub fn default_state_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("aerospike-operator-demo"),
        None => PathBuf::from("/tmp/aerospike-operator-demo"),
    }
}

/// Entry point of `cargo xtask demo`.
pub fn run(root: &Path, args: DemoArgs) -> Result<()> {
    let dir = std::path::absolute(args.state_dir.clone().unwrap_or_else(default_state_dir))?;
    match args.command {
        Some(DemoCommand::Down) => down(&dir),
        None => {
            if let Some(state) = StateFile::read(&dir)?
                && state.processes.iter().any(|r| proc::same_process_alive(r.pid, r.start_time))
            {
                bail!(
                    "a demo already runs in {}; stop it with `cargo xtask demo down{}`",
                    dir.display(),
                    state_dir_flag(&dir)
                );
            }
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            let started = Instant::now();
            let result = runtime.block_on(up(root, &dir, Duration::from_secs(args.timeout)));
            if let Err(e) = &result {
                eprintln!(
                    "\nthe demo stopped at an error after {:.0}s; what runs is left running for a look (logs in {}); \
                     clean up with `cargo xtask demo down{}`",
                    started.elapsed().as_secs_f64(),
                    dir.display(),
                    state_dir_flag(&dir)
                );
                return Err(anyhow!("{e:#}"));
            }
            Ok(())
        }
    }
}

fn state_dir_flag(dir: &Path) -> String {
    if dir == default_state_dir() { String::new() } else { format!(" --state-dir {}", dir.display()) }
}

async fn up(root: &Path, dir: &Path, timeout: Duration) -> Result<()> {
    let mut p = Progress::new();
    let result = steps(root, dir, timeout, &mut p).await;
    if result.is_err() {
        p.fail();
    }
    result
}

async fn steps(root: &Path, dir: &Path, timeout: Duration, p: &mut Progress) -> Result<()> {
    let total = Instant::now();

    // 1. Tools.
    p.step("Pinned tools (built once per machine)");
    let mut built = Vec::new();
    for tool in [Tool::Etcd, Tool::KubeApiserver, Tool::Kwok, Tool::Olm, Tool::Opm] {
        if tools::installed(tool).is_none() {
            p.status(&format!("building {tool} {} from its Go module (takes minutes)", tool.version()));
            built.push(tool.name());
        } else if p.tty {
            p.status(&format!("{tool} {} is in the cache", tool.version()));
        }
        tokio::task::spawn_blocking(move || tools::ensure(tool)).await??;
    }
    for tool in [Tool::KubeControllerManager, Tool::KubeScheduler, Tool::Catalog] {
        tokio::task::spawn_blocking(move || tools::ensure(tool)).await??;
    }
    tokio::task::spawn_blocking(tools::olm_crds_dir).await??;
    p.done(&if built.is_empty() { "all in the cache".to_string() } else { format!("built {}", built.join(", ")) });

    // 2. The operator binary.
    p.step("Operator binary (cargo build -p aerospike-kubernetes-operator)");
    let log = std::env::temp_dir().join(format!("ako-demo-operator-build-{}.log", std::process::id()));
    let binary = operator_build::build(
        root,
        OperatorBuild { progress: Some((&log, &mut |line: &str| p.status(line))), ..Default::default() },
    )?;
    p.done(&binary.display().to_string());

    // 3. Control plane and simulator.
    p.step("Control plane and Aerospike simulator (cargo xtask cluster up)");
    cluster_up(dir).await?;
    let _ = std::fs::rename(&log, dir.join("operator-build.log"));
    let state = StateFile::read(dir)?.context("cluster up wrote no state.json")?;
    let client = kube_client(&state.kubeconfig).await?;
    p.done(&format!("{} fake nodes, pod IPs in {}", state.nodes, state.pod_cidr));

    // 4. OLM.
    p.step("OLM and our catalog (opm serve)");
    let address = olm::up_detached(dir, root).await?;
    p.done(&format!("catalog at {address}"));

    // 5. The user's objects, as config/examples/ has them, pointed at the local catalog.
    p.step("CatalogSource, OperatorGroup, Subscription");
    let (group, subscription) = install_objects(&client, &address).await?;
    let operator_ns = group["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    p.done(&format!(
        "OperatorGroup {operator_ns}/{} targets {}, channel {}",
        group["metadata"]["name"].as_str().unwrap_or_default(),
        group["spec"]["targetNamespaces"],
        subscription["spec"]["channel"].as_str().unwrap_or_default()
    ));

    // 6. OLM installs it.
    p.step("OLM installs the operator");
    let csv = wait_install(&client, &operator_ns, timeout, p).await?;
    let watch = olm::watch_namespace(&client, &operator_ns, PACKAGE).await?;
    p.done(&format!("{} Succeeded, WATCH_NAMESPACE={watch}", csv.name_any()));

    // 7. The operator, as the pod would run it.
    p.step("Operator on the host, as OLM set it up");
    let demo = start_operator(&client, dir, &state.kubeconfig, &binary, &operator_ns, &watch, &csv, timeout).await?;
    p.done(&format!("pid {}, WATCH_NAMESPACE={watch}, ServiceAccount {operator_ns}/{PACKAGE}", demo.operator.pid));

    // 8. A sample cluster.
    let mut example = olm::alm_examples(&csv)?.into_iter().next().context("the CSV has no alm-examples")?;
    let target = watch.split(',').find(|s| !s.is_empty()).unwrap_or("default").to_string();
    example["metadata"]["namespace"] = target.clone().into();
    let name = example["metadata"]["name"].as_str().context("alm-example without a name")?.to_string();
    p.step(&format!("AerospikeCluster {target}/{name} from alm-examples"));
    olm::apply(&client, &example).await?;
    let mut demo = demo;
    demo.cluster = Some(format!("{target}/{name}"));
    write_demo_state(dir, &demo)?;
    wait_completed(&client, &target, &name, &demo, timeout, p).await?;
    p.done("Completed");

    eprintln!("\ndemo ready in {:.0}s\n", total.elapsed().as_secs_f64());
    summary(&client, dir, &state.kubeconfig, &target, &operator_ns, &demo).await
}

async fn kube_client(kubeconfig: &Path) -> Result<Client> {
    let yaml = std::fs::read_to_string(kubeconfig).with_context(|| format!("reading {}", kubeconfig.display()))?;
    olm::client_from_kubeconfig_yaml(&yaml).await
}

/// Runs `cargo xtask cluster up --state-dir DIR` (this binary), keeping its output in DIR/cluster-up.log.
async fn cluster_up(dir: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let dir_owned = dir.to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(exe).arg("cluster").arg("up").arg("--state-dir").arg(&dir_owned).stdin(Stdio::null()).output()
    })
    .await?
    .context("running `cargo xtask cluster up`")?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("`cargo xtask cluster up --state-dir {}` failed ({}):\n{text}", dir.display(), output.status);
    }
    std::fs::write(dir.join("cluster-up.log"), text)?;
    Ok(())
}

/// The CatalogSource, OperatorGroup and Subscription of config/examples/ (SingleNamespace, Automatic), with the
/// CatalogSource served by address from the global catalog namespace. Returns the group and subscription applied.
async fn install_objects(client: &Client, address: &str) -> Result<(Value, Value)> {
    let examples = crate::packaging::examples::examples();
    let doc = |file: &str| -> Result<Value> {
        examples
            .iter()
            .find(|e| e.file == file)
            .and_then(|e| e.docs.first().cloned())
            .ok_or_else(|| anyhow!("config/examples has no {file}"))
    };
    let mut source = doc("catalog-source.yaml")?;
    source["metadata"]["name"] = CATALOG_SOURCE.into();
    source["metadata"]["namespace"] = GLOBAL_CATALOG_NAMESPACE.into();
    let spec = source["spec"].as_object_mut().context("CatalogSource without spec")?;
    // No image, no pod, no registry poll: the local opm serve, by address.
    for key in ["image", "updateStrategy", "grpcPodConfig"] {
        spec.remove(key);
    }
    spec.insert("address".into(), address.into());
    let group = doc("operator-group-single-namespace.yaml")?;
    let mut subscription = doc("subscription-automatic.yaml")?;
    subscription["spec"]["source"] = CATALOG_SOURCE.into();
    subscription["spec"]["sourceNamespace"] = GLOBAL_CATALOG_NAMESPACE.into();

    olm::ensure_namespace(client, GLOBAL_CATALOG_NAMESPACE).await?;
    olm::apply(client, &source).await?;
    let operator_ns = group["metadata"]["namespace"].as_str().context("OperatorGroup without namespace")?;
    olm::ensure_namespace(client, operator_ns).await?;
    for t in group["spec"]["targetNamespaces"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        olm::ensure_namespace(client, t).await?;
    }
    olm::apply(client, &group).await?;
    olm::apply(client, &subscription).await?;
    Ok((group, subscription))
}

/// Waits for the Subscription's CSV Succeeded (and its InstallPlan Complete), showing their states.
async fn wait_install(client: &Client, ns: &str, timeout: Duration, p: &mut Progress) -> Result<DynamicObject> {
    let subs = olm::olm_api(client, OlmKind::Subscription, Some(ns));
    let plans = olm::olm_api(client, OlmKind::InstallPlan, Some(ns));
    let csvs = olm::olm_api(client, OlmKind::ClusterServiceVersion, Some(ns));
    let deadline = Instant::now() + timeout;
    loop {
        let sub = subs.get_opt(PACKAGE).await?;
        let st = sub.as_ref().map(|s| s.data["status"].clone()).unwrap_or_default();
        let mut status = format!("Subscription {}", st["state"].as_str().unwrap_or("resolving"));
        let mut plan_complete = false;
        if let Some(plan) = st["installPlanRef"]["name"].as_str()
            && let Some(plan) = plans.get_opt(plan).await?
        {
            let phase = plan.data["status"]["phase"].as_str().unwrap_or("-").to_string();
            plan_complete = phase == "Complete";
            status.push_str(&format!(", InstallPlan {} {phase}", plan.name_any()));
        }
        let current = st["installedCSV"].as_str().or(st["currentCSV"].as_str());
        if let Some(name) = current
            && let Some(csv) = csvs.get_opt(name).await?
        {
            let phase = olm::csv_phase(&csv);
            status.push_str(&format!(", CSV {name} {}", if phase.is_empty() { "-" } else { &phase }));
            if phase == "Succeeded" && plan_complete && st["installedCSV"].as_str() == Some(name) {
                return Ok(csv);
            }
        }
        p.status(&status);
        if Instant::now() >= deadline {
            bail!(
                "OLM did not install the operator within {timeout:?} ({status})\n{}",
                olm::describe(client, ns).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn write_demo_state(dir: &Path, demo: &DemoState) -> Result<()> {
    let path = dir.join(DEMO_FILE);
    let tmp = dir.join(format!("{DEMO_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_string_pretty(demo)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// Starts the operator binary in the background as the ServiceAccount OLM made (a token in
/// DIR/operator.kubeconfig), with OLM's WATCH_NAMESPACE, its HTTP endpoints on free loopback ports (OLM holds
/// :8080), recorded for `demo down` and `cluster down`; waits for /readyz.
#[allow(clippy::too_many_arguments)]
async fn start_operator(
    client: &Client,
    dir: &Path,
    admin_kubeconfig: &Path,
    binary: &Path,
    operator_ns: &str,
    watch: &str,
    csv: &DynamicObject,
    timeout: Duration,
) -> Result<DemoState> {
    let kubeconfig =
        olm::service_account_kubeconfig(client, admin_kubeconfig, operator_ns, PACKAGE, Duration::from_secs(24 * 3600))
            .await?;
    let kubeconfig_path = dir.join("operator.kubeconfig");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f =
            std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&kubeconfig_path)?;
        std::io::Write::write_all(&mut f, kubeconfig.as_bytes())?;
    }
    // The admission webhooks as OLM wires them: its certificate (mirrored as the pod's volume would hold it) on
    // the ClusterIP of its webhook Service, which the local plane's loopback Service CIDR makes reachable here.
    let webhook_addr = olm::webhook_service_address(client, operator_ns).await?;
    let cert_dir = dir.join("webhook-certs");
    olm::mirror_webhook_certificate(client, operator_ns, &cert_dir).await?;
    let health = format!("127.0.0.1:{}", net::free_port()?);
    let metrics = format!("127.0.0.1:{}", net::free_port()?);
    let env = [
        ("KUBECONFIG", kubeconfig_path.display().to_string()),
        ("WATCH_NAMESPACE", watch.to_string()),
        ("POD_NAMESPACE", operator_ns.to_string()),
        ("POD_NAME", format!("{PACKAGE}-demo")),
        ("HEALTH_ADDR", health.clone()),
        ("METRICS_ADDR", metrics),
        ("WEBHOOK_ADDR", webhook_addr.to_string()),
        ("WEBHOOK_CERT_DIR", cert_dir.display().to_string()),
        ("LOG_FORMAT", "text".to_string()),
        ("NO_COLOR", "1".to_string()),
    ];
    let spec = Spec {
        name: OPERATOR.into(),
        program: binary.to_path_buf(),
        args: vec!["run".into()],
        env: env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
        log: dir.join(format!("{OPERATOR}.log")),
        cwd: dir.to_path_buf(),
    };
    let mut operator = proc::spawn(spec, Mode::Detached)?;
    let record = operator.record();
    olm::add_to_cluster_state(dir, std::slice::from_ref(&record))?;
    let demo = DemoState {
        operator: record,
        operator_namespace: operator_ns.to_string(),
        watch_namespace: watch.to_string(),
        csv: csv.name_any(),
        cluster: None,
        health_addr: health.clone(),
    };
    write_demo_state(dir, &demo)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = operator.exit_status() {
            bail!(
                "the operator exited ({status}); its log {}:\n{}",
                demo.operator.log.display(),
                proc::log_tail(&demo.operator.log, 25)
            );
        }
        if http_ok(&health, "/readyz").await {
            return Ok(demo);
        }
        if Instant::now() >= deadline {
            bail!(
                "the operator was not ready within {timeout:?}; its log {}:\n{}",
                demo.operator.log.display(),
                proc::log_tail(&demo.operator.log, 25)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// GET http://addr/path answers 200.
async fn http_ok(addr: &str, path: &str) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        Some(text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt).await.ok().flatten().unwrap_or(false)
}

async fn wait_completed(
    client: &Client,
    ns: &str,
    name: &str,
    demo: &DemoState,
    timeout: Duration,
    p: &mut Progress,
) -> Result<()> {
    let clusters = olm::aerospike_clusters(client, ns);
    let deadline = Instant::now() + timeout;
    loop {
        if !proc::same_process_alive(demo.operator.pid, demo.operator.start_time) {
            bail!(
                "the operator exited; its log {}:\n{}",
                demo.operator.log.display(),
                proc::log_tail(&demo.operator.log, 25)
            );
        }
        let c = clusters.get_opt(name).await?;
        let st = c.as_ref().map(|c| c.data["status"].clone()).unwrap_or_default();
        let size = c.as_ref().and_then(|c| c.data["spec"]["size"].as_i64()).unwrap_or(0);
        let phase = st["phase"].as_str().unwrap_or("pending");
        let status = format!("phase {phase}, {}/{size} pods ready", st["readyPods"].as_i64().unwrap_or(0));
        if phase == "Completed" {
            return Ok(());
        }
        p.status(&status);
        if Instant::now() >= deadline {
            bail!(
                "{ns}/{name} was not Completed within {timeout:?} ({status}); conditions: {}; operator log {}:\n{}",
                st["conditions"],
                demo.operator.log.display(),
                proc::log_tail(&demo.operator.log, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// -----------------------------------------------------------------------------------------------------------------
// `demo down`.

fn down(dir: &Path) -> Result<()> {
    if StateFile::read(dir)?.is_none() {
        // Only the operator could have been started without a cluster state (never, today): stop it if recorded.
        let demo: Option<DemoState> =
            std::fs::read_to_string(dir.join(DEMO_FILE)).ok().and_then(|t| serde_json::from_str(&t).ok());
        if let Some(d) = demo {
            proc::stop_records(std::slice::from_ref(&d.operator), Duration::from_secs(10));
            std::fs::remove_dir_all(dir)?;
            println!("stopped the operator; removed {}", dir.display());
        } else {
            println!("no demo in {}", dir.display());
        }
        return Ok(());
    }
    // The cluster's own `down` stops every recorded process: the operator and OLM were added to its state.json.
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let status = Command::new(exe)
        .arg("cluster")
        .arg("down")
        .arg("--state-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .status()
        .context("running `cargo xtask cluster down`")?;
    if !status.success() {
        bail!("`cargo xtask cluster down --state-dir {}` failed ({status})", dir.display());
    }
    Ok(())
}
