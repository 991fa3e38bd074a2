//! Shared pieces of the operator's end-to-end tests: a control plane with the CRD installed, a namespace per
//! test, the Aerospike simulator scoped to it, and the operator's controller running in-process against it.
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aerospike_kubernetes_operator::api::{AerospikeCluster, Phase};
use aerospike_kubernetes_operator::asinfo::TcpInfoClient;
use aerospike_kubernetes_operator::controller::{self, RunConfig, Scope};
use aerospike_kubernetes_operator::desired::BuildContext;
use aerospike_kubernetes_operator::metrics::Metrics;
use ako_simulator::{Simulator, SimulatorOptions};
use ako_testbed::cluster::{ClusterOptions, LocalCluster};
use ako_testbed::tools::KubernetesRelease;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const IMAGE_OLD: &str = "aerospike/aerospike-server-enterprise:7.1.0.0";
pub const IMAGE_NEW: &str = "aerospike/aerospike-server-enterprise:7.2.0.1";

/// One control plane per test binary, with enough fake nodes that concurrent tests never compete for a
/// node's hostPort 3000 (every Aerospike pod takes it unless multiPodPerHost). Its Kubernetes release is the one
/// `AKO_KUBERNETES` names (default: the oldest supported), unless [`cluster_on`] started it first.
pub async fn cluster() -> &'static LocalCluster {
    shared_cluster(None).await
}

/// [`cluster`] on a given Kubernetes release: a test binary for one release calls it before anything else starts
/// the plane (and it panics when the plane already runs another release).
pub async fn cluster_on(kubernetes: KubernetesRelease) -> &'static LocalCluster {
    let c = shared_cluster(Some(kubernetes)).await;
    assert_eq!(c.kubernetes(), kubernetes, "this test binary's plane was started on another Kubernetes release");
    c
}

async fn shared_cluster(kubernetes: Option<KubernetesRelease>) -> &'static LocalCluster {
    static SHARED: tokio::sync::OnceCell<LocalCluster> = tokio::sync::OnceCell::const_new();
    extern "C" fn stop_shared() {
        if let Some(c) = SHARED.get() {
            c.stop();
        }
    }
    SHARED
        .get_or_init(|| async {
            let mut opts = ClusterOptions { nodes: 30, ..Default::default() };
            if let Some(k) = kubernetes {
                opts.kubernetes = k;
            }
            let c = LocalCluster::start(opts).await.expect("local control plane starts");
            unsafe { libc::atexit(stop_shared) };
            install_crd(&c.client().await).await;
            c
        })
        .await
}

async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in aerospike_kubernetes_operator::api::crds() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &PatchParams::apply("e2e").force(), &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("the apiserver refused CRD {name}: {e}"));
        wait_for(&format!("CRD {name} Established"), Duration::from_secs(60), || async {
            let crd = crds.get(&name).await.ok()?;
            let established = crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        })
        .await;
    }
}

pub async fn create_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// A test's world: client, its namespace, a simulator for that namespace.
pub struct Env {
    pub client: Client,
    pub ns: String,
    pub sim: Simulator,
}

pub async fn env(ns: &str) -> Env {
    let c = cluster().await;
    let client = c.client().await;
    create_namespace(&client, ns).await;
    let sim = Simulator::start(
        client.clone(),
        SimulatorOptions {
            namespace: Some(ns.into()),
            migration_duration: Duration::from_millis(800),
            ..Default::default()
        },
    )
    .await;
    Env { client, ns: ns.into(), sim }
}

/// The operator's controller, in-process, watching `scope`. Aborting the handle is a crash: every
/// future is dropped wherever it was.
pub fn start_operator(client: &Client, scope: Scope) -> JoinHandle<()> {
    start_operator_with_metrics(client, scope, Metrics::default())
}

/// [`start_operator`] recording into `metrics` (to read what it did, e.g. which clusters it has reconciled).
pub fn start_operator_with_metrics(client: &Client, scope: Scope, metrics: Metrics) -> JoinHandle<()> {
    // The operator's log goes to the test's captured output, shown when a test fails (AKO_TEST_LOG sets the
    // filter, e.g. aerospike_kubernetes_operator=debug).
    let filter = std::env::var("AKO_TEST_LOG").unwrap_or_else(|_| "aerospike_kubernetes_operator=info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let client = client.clone();
    tokio::spawn(async move {
        let cfg = RunConfig {
            scope,
            build: BuildContext { init_image: "ghcr.io/aerospike-rs/aerospike-kubernetes-operator:test".into() },
            info: Arc::new(TcpInfoClient::new(Duration::from_millis(500), Duration::from_millis(1000))),
            metrics,
            instance: "e2e".into(),
            concurrency: controller::MAX_CONCURRENT_RECONCILES,
        };
        controller::run(client, cfg, || {}).await.expect("controller runs");
    })
}

pub fn ns_scope(ns: &str) -> Scope {
    Scope::Namespaces(vec![ns.into()])
}

/// A small in-memory cluster in the reference's manifest format.
pub fn cluster_manifest(name: &str, ns: &str, size: i32) -> Value {
    json!({
        "apiVersion": "asdb.aerospike.com/v1",
        "kind": "AerospikeCluster",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "size": size,
            "image": IMAGE_OLD,
            // In memory, no work directory on a persistent volume: skipping the check says so.
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

pub fn api(client: &Client, ns: &str) -> Api<AerospikeCluster> {
    Api::namespaced(client.clone(), ns)
}

pub async fn create(client: &Client, ns: &str, manifest: &Value) -> AerospikeCluster {
    let obj: AerospikeCluster = serde_json::from_value(manifest.clone()).expect("manifest parses");
    api(client, ns).create(&PostParams::default(), &obj).await.expect("create AerospikeCluster")
}

/// JSON merge patch of the spec.
pub async fn patch_spec(client: &Client, ns: &str, name: &str, spec: Value) {
    api(client, ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(&json!({"spec": spec})))
        .await
        .expect("patch spec");
}

/// Poll `check` every 250 ms until it yields a value, or panic after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait until the cluster is Completed for its current generation; on timeout, show its status.
pub async fn wait_completed(client: &Client, ns: &str, name: &str, timeout: Duration) -> AerospikeCluster {
    let api = api(client, ns);
    let deadline = Instant::now() + timeout;
    loop {
        let c = api.get(name).await.expect("get cluster");
        let st = c.status.clone().unwrap_or_default();
        if st.phase == Some(Phase::Completed) && st.observed_generation == c.metadata.generation {
            return c;
        }
        if Instant::now() > deadline {
            let pods = pods(client, ns, name).await;
            let summary: Vec<String> = pods.iter().map(|p| format!("{} ready={}", p.name_any(), ready(p))).collect();
            panic!(
                "{ns}/{name} not Completed within {timeout:?}: phase {:?}, conditions {:#?}, pods {summary:?}",
                st.phase, st.conditions
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn condition(c: &AerospikeCluster, type_: &str) -> Option<(String, String, String)> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == type_)
        .map(|x| (x.status.clone(), x.reason.clone(), x.message.clone()))
}

pub async fn pods(client: &Client, ns: &str, name: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut pods =
        api.list(&ListParams::default().labels(&format!("aerospike.com/cr={name}"))).await.expect("list pods").items;
    pods.sort_by_key(|p| p.name_any());
    pods
}

pub fn ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn image(p: &Pod) -> String {
    p.spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .find(|c| c.name == "aerospike-server")
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

pub async fn stateful_sets(client: &Client, ns: &str, name: &str) -> BTreeMap<String, StatefulSet> {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(&format!("aerospike.com/cr={name}")))
        .await
        .expect("list statefulsets")
        .items
        .into_iter()
        .map(|s| (s.name_any(), s))
        .collect()
}

/// The Events regarding the cluster `name`.
async fn events_about(client: &Client, ns: &str, name: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    let events = api.list(&ListParams::default()).await.expect("list events").items;
    events.into_iter().filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)).collect()
}

/// (reason, note) of the Events regarding the cluster `name`.
pub async fn event_reasons(client: &Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let events = events_about(client, ns, name).await;
    events.into_iter().map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default())).collect()
}

/// (reason, note) of the Warning Events regarding the cluster `name`.
pub async fn warnings_about(client: &Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let events = events_about(client, ns, name).await;
    events
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// (reason, related object's name) of the Events about cluster `name` that name a related object.
pub async fn event_relations(client: &Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let events = events_about(client, ns, name).await;
    events.into_iter().filter_map(|e| Some((e.reason.unwrap_or_default(), e.related?.name?))).collect()
}

/// Watches pods while a rollout runs: every uid seen per pod name, and the worst unavailability.
pub struct RolloutObserver {
    pub uids: BTreeMap<String, Vec<String>>,
    pub max_unavailable: usize,
    /// What each incarnation looked like when first seen (for failure messages): image, revision, node, age.
    pub seen: BTreeMap<String, String>,
    start: Instant,
}

impl RolloutObserver {
    pub fn new() -> Self {
        RolloutObserver { uids: BTreeMap::new(), max_unavailable: 0, seen: BTreeMap::new(), start: Instant::now() }
    }

    /// The incarnations of `pod` as first seen, for an assertion message.
    pub fn describe(&self, pod: &str) -> String {
        let uids = self.uids.get(pod).cloned().unwrap_or_default();
        uids.iter()
            .map(|u| format!("{u}: {}", self.seen.get(u).map(String::as_str).unwrap_or("?")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn observe(&mut self, client: &Client, ns: &str, name: &str, size: usize) {
        let pods = pods(client, ns, name).await;
        for p in &pods {
            let uid = p.uid().unwrap_or_default();
            let seen = self.uids.entry(p.name_any()).or_default();
            if !seen.contains(&uid) {
                seen.push(uid.clone());
                let image = p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone());
                let revision = p.labels().get("controller-revision-hash").cloned();
                let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
                self.seen.insert(
                    uid,
                    format!("first seen at {:?}: image {image:?}, revision {revision:?}, node {node:?}, ready {}, deleting {}",
                        self.start.elapsed(), ready(p), p.metadata.deletion_timestamp.is_some()),
                );
            }
        }
        let ready = pods.iter().filter(|p| ready(p)).count();
        self.max_unavailable = self.max_unavailable.max(size.saturating_sub(ready));
    }

    /// Observe until the cluster is Completed for its current generation.
    pub async fn until_completed(&mut self, client: &Client, ns: &str, name: &str, size: usize, timeout: Duration) {
        let api = api(client, ns);
        let deadline = Instant::now() + timeout;
        loop {
            self.observe(client, ns, name, size).await;
            let c = api.get(name).await.unwrap();
            let st = c.status.clone().unwrap_or_default();
            if st.phase == Some(Phase::Completed) && st.observed_generation == c.metadata.generation {
                return;
            }
            assert!(Instant::now() < deadline, "{name} not Completed within {timeout:?}: {:#?}", st.conditions);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// End a test: delete its clusters while the operator still runs (so finalizers are handled), stop the
/// operator, delete the namespace. Frees the nodes' hostPorts for the other tests of the binary.
pub async fn finish(env: &Env, op: JoinHandle<()>) {
    let api = api(&env.client, &env.ns);
    let _ = api.delete_collection(&kube::api::DeleteParams::default(), &ListParams::default()).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while !api.list(&ListParams::default()).await.map(|l| l.items.is_empty()).unwrap_or(true) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    op.abort();
    let nss: Api<Namespace> = Api::all(env.client.clone());
    let _ = nss.delete(&env.ns, &kube::api::DeleteParams::default()).await;
}

/// The operator binary: `cargo build -p aerospike-kubernetes-operator` (debug), once per test binary; the
/// executable's path.
/// `AKO_OPERATOR_BIN` names a prebuilt one instead.
pub fn operator_binary() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("AKO_OPERATOR_BIN") {
            return PathBuf::from(bin);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.current_dir(root).args([
            "build",
            "-p",
            "aerospike-kubernetes-operator",
            "--bin",
            "aerospike-kubernetes-operator",
            "--message-format=json-render-diagnostics",
        ]);
        // The variables cargo sets for the test it runs: ring's build script reruns when they change.
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if ["CARGO_PKG_", "CARGO_BIN_EXE_", "CARGO_MANIFEST_"].iter().any(|p| k.starts_with(p))
                || ["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"]
                    .contains(&k.as_ref())
                || k == "CARGO_RUSTC_CURRENT_DIR"
            {
                cmd.env_remove(&key);
            }
        }
        let out = cmd.stderr(Stdio::inherit()).output().expect("run cargo build");
        assert!(out.status.success(), "building the operator failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "aerospike-kubernetes-operator")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the operator executable")
    })
}

/// Serves the operator's webhooks (self-signed, registered by URL on loopback, their configuration in `namespace`) on
/// a thread of its own with its own runtime, so the server outlives each test's runtime. `client` gives the plane's
/// client (and does whatever set-up the binary needs first). Returns once the API server calls the validating webhook:
/// a dry-run AerospikeCluster with a refused image is refused by it.
pub fn serve_webhooks<F, Fut>(namespace: &'static str, client: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Client, String>>,
{
    use aerospike_kubernetes_operator::webhook::{self, CertSource, WebhookConfig, register};
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let client = match client().await {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            create_namespace(&client, namespace).await;
            let cfg = WebhookConfig {
                addr: format!("127.0.0.1:{port}").parse().unwrap(),
                certs: CertSource::SelfSigned,
                register: true,
                target: Some(register::Target::parse_url(&format!("https://127.0.0.1:{port}")).unwrap()),
                namespace: namespace.into(),
                dir_poll: Duration::from_secs(5),
            };
            let server = tokio::spawn(webhook::run(client.clone(), cfg, std::future::pending()));
            let mut probe: AerospikeCluster =
                serde_json::from_value(cluster_manifest("webhook-probe", namespace, 1)).unwrap();
            probe.spec.image = "aerospike/aerospike-server-enterprise:5.7.0.17".into();
            let api: Api<AerospikeCluster> = Api::namespaced(client.clone(), namespace);
            let dry = PostParams { dry_run: true, ..Default::default() };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match api.create(&dry, &probe).await {
                    Err(kube::Error::Api(e))
                        if e.message.contains("vaerospikecluster.kb.io") && e.message.contains("spec.image") =>
                    {
                        break;
                    }
                    other => {
                        if server.is_finished() || Instant::now() > deadline {
                            let _ = tx.send(Err(format!("webhooks not serving: last answer {other:?}")));
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            let _ = tx.send(Ok(()));
            let result = server.await;
            eprintln!("webhook server ended: {result:?}");
        });
    });
    rx.recv().expect("the webhook thread answers").expect("webhooks ready");
}
