//! The newest Kubernetes this project supports (the API version of the Kubernetes types the operator is built
//! with), end to end: a control plane of that release (built from its Go modules on first use, like the default
//! plane of the oldest supported release), the generated CRDs, the admission webhooks registered by URL on loopback
//! (as webhook_admission.rs does on the oldest plane), the operator in-process with the Aerospike simulator.
//! - the API server reports the newest version;
//! - a sample from config/samples reaches Completed;
//! - every default of the reference's schema (src/api/reference/aerospikecluster-v1-paths.tsv, `default=`) is
//!   checked through this API server with the mutating webhook registered: on the stored object when our CRD or
//!   webhook applies it, on the StatefulSet's pod template when core defaulting does (the embedded Kubernetes
//!   types, allow-listed in src/api/fidelity.rs), and, where our schema requires the field the reference
//!   defaults to "" (k8s-openapi's required names), by the API server refusing an object without it.
//! - the backup kinds' defaults (src/api/reference/backup-v1beta1-paths.tsv) through the same API server: on the
//!   object it would store (a dry run), and on the status subresource written without the field.
//!
//! Run it with `cargo test -p ako-e2e --test kube_newest`; the whole suite runs on the newest plane with
//! `AKO_KUBERNETES=newest`.
mod common;

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use ako_testbed::tools::KubernetesRelease;
use common::*;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const NEWEST: KubernetesRelease = KubernetesRelease::Newest;
const WEBHOOK_NS: &str = "newest-webhook";
const T: Duration = Duration::from_secs(150);
const REFERENCE: &str = include_str!("../src/api/reference/aerospikecluster-v1-paths.tsv");
/// The three backup kinds' list: `Kind version<TAB>path<TAB>type<TAB>limits`.
const BACKUP_REFERENCE: &str = include_str!("../src/api/reference/backup-v1beta1-paths.tsv");

/// Starts (once) the newest plane with the CRDs, and the webhook server on a thread of its own (each test has its
/// own runtime; the server must outlive them all). Returns when the API server calls the validating webhook.
fn setup() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| serve_webhooks(WEBHOOK_NS, || async { Ok(cluster_on(NEWEST).await.client().await) }));
}

/// A test's world on the newest plane, with the webhooks serving.
async fn newest_env(ns: &str) -> Env {
    setup();
    cluster_on(NEWEST).await;
    env(ns).await
}

/// The API of `kind` (`AerospikeCluster` in v1, the backup kinds in v1beta1) in `ns`.
fn dynamic_api(client: &Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let version = if kind == "AerospikeCluster" { "v1" } else { "v1beta1" };
    let gvk = GroupVersionKind::gvk("asdb.aerospike.com", version, kind);
    let plural = format!("{}s", kind.to_lowercase());
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, &plural))
}

/// Creates `obj` (its `kind`) as a dry run: the object as the API server would store it (after defaulting and the
/// mutating webhook), or its message.
async fn dry_run_object(client: &Client, ns: &str, obj: &Value) -> Result<Value, String> {
    let kind = obj["kind"].as_str().unwrap();
    let dynamic: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    let pp = PostParams { dry_run: true, ..Default::default() };
    match dynamic_api(client, ns, kind).create(&pp, &dynamic).await {
        Ok(o) => Ok(serde_json::to_value(o).unwrap()),
        Err(kube::Error::Api(s)) => Err(s.message),
        Err(other) => Err(other.to_string()),
    }
}

async fn dry_run(client: &Client, ns: &str, obj: &Value) -> Result<(), String> {
    dry_run_object(client, ns, obj).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plane_runs_the_newest_kubernetes() {
    setup();
    let cluster = cluster_on(NEWEST).await;
    let info = cluster.client().await.apiserver_version().await.expect("GET /version");
    assert_eq!(info.git_version, NEWEST.version());
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", NEWEST.minor()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_reaches_completed() {
    let env = newest_env("newest-sample").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples/asdb_v1_aerospikecluster_in_memory.yaml");
    let mut sample = ako_testbed::yaml::read_yaml_stream(&path).unwrap().remove(0);
    sample["metadata"]["namespace"] = json!(env.ns);
    let name = sample["metadata"]["name"].as_str().unwrap().to_string();
    let size = sample["spec"]["size"].as_i64().unwrap() as usize;
    create(&env.client, &env.ns, &sample).await;
    let c = wait_completed(&env.client, &env.ns, &name, T).await;
    let status = c.status.unwrap();
    assert_eq!(status.size, Some(size as i32));
    assert_eq!(pods(&env.client, &env.ns, &name).await.iter().filter(|p| ready(p)).count(), size);
    assert_eq!(status.pods.len(), size);
    finish(&env, op).await;
}

// -----------------------------------------------------------------------------------------------------------------
// Every reference default, through this API server.

/// One `default=` line of the reference's path list.
struct RefDefault {
    path: String,
    value: Value,
}

fn reference_defaults() -> Vec<RefDefault> {
    parse_defaults(REFERENCE, false).into_iter().map(|(_, d)| d).collect()
}

/// The `default=` lines of a path list, with the kind column of the backup list (`AerospikeBackup v1beta1`).
fn parse_defaults(text: &str, with_kind: bool) -> Vec<(String, RefDefault)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let mut cols = line.splitn(if with_kind { 4 } else { 3 }, '\t');
            let kind = if with_kind { cols.next()?.split_whitespace().next()?.to_string() } else { String::new() };
            let path = cols.next()?.trim_end_matches('*').to_string();
            let _type = cols.next()?;
            let limits = cols.next()?;
            let at = limits.find("default=")?;
            Some((kind, RefDefault { path, value: default_value(&limits[at + "default=".len()..]) }))
        })
        .collect()
}

/// The reference's default text (YAML flow: `1`, `TCP`, `False`, ``, `{skipWorkDirValidate: false}`) as JSON.
fn default_value(text: &str) -> Value {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let map = inner
            .split(',')
            .filter(|kv| !kv.trim().is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once(':').expect("key: value");
                (k.trim().trim_end_matches('*').to_string(), default_value(v))
            })
            .collect();
        return Value::Object(map);
    }
    match text {
        "true" | "True" => json!(true),
        "false" | "False" => json!(false),
        _ => text.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(text)),
    }
}

/// The values at `path` (dots; `[]`: every item; `{}`: every map value) under `root`: for each parent object
/// that exists, the leaf (None when absent).
fn leaves<'a>(root: &'a Value, path: &str) -> Vec<Option<&'a Value>> {
    let segments: Vec<&str> = path.split('.').collect();
    let (leaf, parents) = segments.split_last().unwrap();
    let mut nodes = vec![root];
    for seg in parents {
        let (key, each) = match seg.strip_suffix("[]").or_else(|| seg.strip_suffix("{}")) {
            Some(k) => (k, true),
            None => (*seg, false),
        };
        nodes = nodes
            .into_iter()
            .filter_map(|n| n.get(key))
            .flat_map(|v| match (each, v) {
                (true, Value::Array(a)) => a.iter().collect::<Vec<_>>(),
                (true, Value::Object(m)) => m.values().collect(),
                (true, _) => vec![],
                (false, v) => vec![v],
            })
            .filter(|v| v.is_object())
            .collect();
    }
    nodes.into_iter().map(|n| n.get(*leaf)).collect()
}

/// Removes the leaf of `path` wherever its parent exists; returns how many were removed.
fn remove_leaves(root: &mut Value, path: &str) -> usize {
    fn walk(v: &mut Value, segs: &[&str]) -> usize {
        let [seg, rest @ ..] = segs else { return 0 };
        if rest.is_empty() {
            return v.as_object_mut().and_then(|m| m.remove(*seg)).map_or(0, |_| 1);
        }
        let (key, each) = match seg.strip_suffix("[]").or_else(|| seg.strip_suffix("{}")) {
            Some(k) => (k, true),
            None => (*seg, false),
        };
        let Some(child) = v.get_mut(key) else { return 0 };
        match (each, child) {
            (true, Value::Array(a)) => a.iter_mut().map(|c| walk(c, rest)).sum(),
            (true, Value::Object(m)) => m.values_mut().map(|c| walk(c, rest)).sum(),
            (true, _) => 0,
            (false, c) => walk(c, rest),
        }
    }
    walk(root, &path.split('.').collect::<Vec<_>>())
}

/// A container with every part the reference's schema defaults something in: ports (protocol), env from a
/// ConfigMap, a Secret and a file (fileKeyRef, beta and on by default since Kubernetes 1.35), envFrom both, and
/// the three gRPC probes (service).
fn probe_container(name: &str, port: i32) -> Value {
    json!({
        "name": name,
        "image": "busybox:1.36",
        "ports": [{"containerPort": port}],
        "env": [
            {"name": "FROM_CONFIG_MAP", "valueFrom": {"configMapKeyRef": {"name": "exporter-config", "key": "a"}}},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "exporter-secret", "key": "b"}}},
            {"name": "FROM_FILE", "valueFrom": {"fileKeyRef": {"volumeName": "envfiles", "path": "env", "key": "c"}}}
        ],
        "envFrom": [{"configMapRef": {"name": "exporter-config"}}, {"secretRef": {"name": "exporter-secret"}}],
        "livenessProbe": {"grpc": {"port": port}},
        "readinessProbe": {"grpc": {"port": port}},
        "startupProbe": {"grpc": {"port": port}}
    })
}

/// A cluster that leaves out every field the reference's schema defaults, under parents that exist: the network
/// policy (empty), the validation policy (absent), cleanupThreads of the cluster's and the rack's storage, a
/// ConfigMap volume, image pull secrets, a sidecar and a (restartable) init container. Its work directory is on a
/// persistent volume, as that default validation policy requires.
fn defaults_probe(name: &str, ns: &str) -> Value {
    let mut c = cluster_manifest(name, ns, 2);
    c["spec"].as_object_mut().unwrap().remove("validationPolicy");
    let volumes = json!([
        {"name": "workdir", "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}},
         "aerospike": {"path": "/opt/aerospike"}},
        {"name": "aerospike-config-secret", "source": {"secret": {"secretName": "aerospike-secret"}},
         "aerospike": {"path": "/etc/aerospike/secret"}},
        {"name": "exporter-config", "source": {"configMap": {"name": "exporter-config"}},
         "sidecars": [{"containerName": "exporter", "path": "/etc/exporter"}]},
        {"name": "envfiles", "source": {"emptyDir": {}},
         "sidecars": [{"containerName": "exporter", "path": "/envfiles"}],
         "initContainers": [{"containerName": "prepare", "path": "/envfiles"}]}
    ]);
    let mut init = probe_container("prepare", 9146);
    // Probes are only allowed on restartable (sidecar) init containers.
    init["restartPolicy"] = json!("Always");
    let spec = c["spec"].as_object_mut().unwrap();
    spec.insert("aerospikeNetworkPolicy".into(), json!({}));
    spec.insert("storage".into(), json!({"volumes": volumes}));
    spec.insert(
        "rackConfig".into(),
        json!({"namespaces": ["test"], "racks": [{"id": 1, "storage": {"volumes": volumes}}]}),
    );
    spec.insert(
        "podSpec".into(),
        json!({
            "imagePullSecrets": [{"name": "regcred"}],
            "sidecars": [probe_container("exporter", 9145)],
            "initContainers": [init]
        }),
    );
    c
}

/// For an object default: when every found object has each of the default's fields with its value, the fields
/// beyond those (with their values), which must be zero values (false, 0, "", empty).
fn object_default_met(default: &Value, found: &[Option<&Value>]) -> Option<String> {
    let fields = default.as_object()?;
    let mut extra = std::collections::BTreeMap::new();
    for v in found {
        let obj = v.and_then(Value::as_object)?;
        if fields.iter().any(|(k, dv)| obj.get(k) != Some(dv)) {
            return None;
        }
        for (k, v) in obj.iter().filter(|(k, _)| !fields.contains_key(*k)) {
            let zero = matches!(v, Value::Bool(false) | Value::Null)
                || v.as_i64() == Some(0)
                || v.as_str() == Some("")
                || v.as_array().is_some_and(Vec::is_empty)
                || v.as_object().is_some_and(|m| m.is_empty());
            if !zero {
                return None;
            }
            extra.insert(k.clone(), v.clone());
        }
    }
    Some(if extra.is_empty() { "nothing else".into() } else { format!("{} (zero values)", json!(extra)) })
}

/// How a reference default is met here.
enum Met {
    /// Our CRD or webhook stores it in the object (spec), or the operator's status copy carries it (status).
    Stored,
    /// Core defaulting applies it to the StatefulSet's pod template (embedded Kubernetes types).
    PodTemplate,
    /// A name our schema requires where the reference defaults it to "": refused when missing.
    RequiredHere,
}

fn how_met(d: &RefDefault) -> Met {
    let in_containers = d.path.contains("podSpec.sidecars[].") || d.path.contains("podSpec.initContainers[].");
    if d.path.ends_with(".name") && d.value == json!("") {
        Met::RequiredHere
    } else if in_containers {
        Met::PodTemplate
    } else {
        Met::Stored
    }
}

/// `spec.podSpec.sidecars[].ports[].protocol` -> `spec.template.spec.containers[].ports[].protocol`.
fn in_pod_template(path: &str) -> String {
    let (_, rest) = path.split_once("podSpec.").unwrap();
    let rest = rest.replacen("sidecars[]", "containers[]", 1);
    format!("spec.template.spec.{rest}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_default_applies_through_the_api_server() {
    let env = newest_env("newest-defaults").await;
    let defaults = reference_defaults();
    assert!(defaults.len() >= 59, "the reference's default lines are read ({})", defaults.len());
    let name = "defaults-probe";
    let probe = defaults_probe(name, &env.ns);

    // Names the reference defaults to "" are required here: the API server refuses an object without one.
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut refused = std::collections::BTreeSet::new();
    for d in defaults.iter().filter(|d| matches!(how_met(d), Met::RequiredHere) && d.path.starts_with("spec.")) {
        let mut without = probe.clone();
        if remove_leaves(&mut without, &d.path) == 0 {
            // Written by our webhook (effectiveStorage), never by the user: checked on the stored object below.
            continue;
        }
        refused.insert(d.path.clone());
        match dry_run(&env.client, &env.ns, &without).await {
            Err(m) => report.push(format!("{}: required here; without it: {m}", d.path)),
            Ok(()) => failures.push(format!("{}: accepted without the name the reference defaults to \"\"", d.path)),
        }
    }

    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &probe).await;
    let stored = serde_json::to_value(api(&env.client, &env.ns).get(name).await.unwrap()).unwrap();
    let completed = serde_json::to_value(wait_completed(&env.client, &env.ns, name, T).await).unwrap();
    let sts = stateful_sets(&env.client, &env.ns, name).await;
    assert_eq!(sts.len(), 1, "one rack, one StatefulSet");
    let sts = serde_json::to_value(sts.into_values().next().unwrap()).unwrap();

    for d in &defaults {
        let (root, path, what) = match how_met(d) {
            Met::Stored if d.path.starts_with("status.") => (&completed, d.path.clone(), "the Completed status"),
            Met::Stored => (&stored, d.path.clone(), "the stored object"),
            Met::PodTemplate => (&sts, in_pod_template(&d.path), "the StatefulSet's pod template"),
            Met::RequiredHere if refused.contains(&d.path) => continue,
            Met::RequiredHere => {
                // Status copies, and the copies our webhook writes (effectiveStorage): the names are there.
                let root = if d.path.starts_with("status.") { &completed } else { &stored };
                let found = leaves(root, &d.path);
                let named = |v: &Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
                if found.is_empty() {
                    failures.push(format!("{}: no parent of the name in the stored object", d.path));
                } else if found.iter().all(named) {
                    report.push(format!("{}: required here; set in all {} found", d.path, found.len()));
                } else {
                    failures.push(format!("{}: a name is missing or empty: {found:?}", d.path));
                }
                continue;
            }
        };
        let found = leaves(root, &path);
        if found.is_empty() {
            failures.push(format!("{}: the probe has no parent of {path} in {what}", d.path));
        } else if found.iter().all(|v| *v == Some(&d.value)) {
            report.push(format!("{}: {} in {what} ({} found)", d.path, d.value, found.len()));
        } else if let Some(extra) = object_default_met(&d.value, &found) {
            // An object default (validationPolicy): the reference's fields with its values; our defaulting webhook
            // writes the whole struct, so the other fields appear with their zero value (the same meaning).
            report.push(format!("{}: {} in {what}, with {extra}", d.path, d.value));
        } else {
            failures.push(format!("{}: reference default {} but {what} has {found:?} at {path}", d.path, d.value));
        }
    }
    eprintln!("{} reference defaults:\n  {}", defaults.len(), report.join("\n  "));
    assert!(failures.is_empty(), "{failures:#?}");

    api(&env.client, &env.ns).delete(name, &DeleteParams::default()).await.unwrap();
    finish(&env, op).await;
}

/// The backup kinds, each leaving out what the reference's schema defaults (under parents that exist): the service's
/// image pull secrets, an on-demand backup's type, a restore's polling period. Their status as a controller would
/// write it, likewise.
fn backup_probes(ns: &str) -> Vec<(Value, Value)> {
    let prefix = format!("{ns}-b");
    let service = json!({
        "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeBackupService",
        "metadata": {"name": "abs", "namespace": ns},
        "spec": {
            "image": "aerospike/aerospike-backup-service:3.5.0",
            "config": {"service": {"http": {"port": 8081}}, "backup-policies": {"default": {"parallel": 2}},
                       "storage": {"local": {"local-storage": {"path": "/backups"}}}},
            "podSpec": {"imagePullSecrets": [{"name": "regcred"}]},
            "service": {"type": "ClusterIP"}
        }
    });
    let service_status = json!({"phase": "InProgress", "podSpec": {"imagePullSecrets": [{"name": "regcred"}]}});
    let on_demand = json!([{"id": "first", "routineName": format!("{prefix}-daily")}]);
    let backup = json!({
        "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeBackup",
        "metadata": {"name": "b", "namespace": ns},
        "spec": {
            "backupService": {"name": "abs", "namespace": ns},
            "config": {
                "aerospike-cluster": {format!("{prefix}-src"): {"seed-nodes": [{"host-name": "src", "port": 3000}]}},
                "backup-routines": {format!("{prefix}-daily"): {
                    "source-cluster": format!("{prefix}-src"), "storage": "local", "backup-policy": "default",
                    "interval-cron": "@daily"}}
            },
            "onDemandBackups": on_demand
        }
    });

    let backup_status = json!({"backupService": backup["spec"]["backupService"], "config": backup["spec"]["config"],
                               "onDemandBackups": on_demand});
    let restore = json!({
        "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeRestore",
        "metadata": {"name": "r", "namespace": ns},
        "spec": {"backupService": {"name": "abs", "namespace": ns}, "type": "Full",
                 "config": {"destination": {"seed-nodes": [{"host-name": "dst", "port": 3000}]},
                            "source": {"local-storage": {"path": "/backups"}}, "backup-data-path": "b/full"}}
    });
    vec![(service, service_status), (backup, backup_status), (restore, json!({}))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backup_reference_default_applies_through_the_api_server() {
    let env = newest_env("newest-backup-defaults").await;
    let defaults = parse_defaults(BACKUP_REFERENCE, true);
    assert!(defaults.len() >= 5, "the backup kinds' default lines are read ({})", defaults.len());
    let probes = backup_probes(&env.ns);
    let probe = |kind: &str| probes.iter().find(|(o, _)| o["kind"] == kind).unwrap_or_else(|| panic!("{kind}"));
    let mut report = Vec::new();
    let mut failures = Vec::new();
    // Spec defaults: the object the API server would store. Status defaults: the status subresource written
    // without the field (as a controller writing an older status would) and read back.
    let mut created = std::collections::BTreeSet::new();
    for (kind, d) in &defaults {
        let (obj, status) = probe(kind);
        let api = dynamic_api(&env.client, &env.ns, kind);
        let name = obj["metadata"]["name"].as_str().unwrap();
        let on_status = d.path.starts_with("status.");
        let result: Result<Value, String> = match how_met(d) {
            Met::RequiredHere if on_status => {
                // The operator writes status copies from the spec, which requires the name: stored with it. The
                // copy itself may be open (allow-listed in src/api/v1beta1/fidelity.rs); then an item without a
                // name, which the operator never writes, is stored as written: said in the report.
                let mut without = json!({"status": status});
                if remove_leaves(&mut without, &d.path) == 0 {
                    failures.push(format!("{kind} {}: the status probe has no parent", d.path));
                    continue;
                }
                if created.insert(kind.clone()) {
                    api.create(&PostParams::default(), &serde_json::from_value(obj.clone()).unwrap()).await.unwrap();
                }
                let with = json!({"status": status});
                api.patch_status(name, &PatchParams::default(), &Patch::Merge(&with)).await.unwrap();
                let stored = serde_json::to_value(api.get(name).await.unwrap()).unwrap();
                let found = leaves(&stored, &d.path);
                if found.is_empty() || !found.iter().all(|v| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())) {
                    failures.push(format!("{kind} {}: the status copy lost the name: {found:?}", d.path));
                    continue;
                }
                let without_name = match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&without)).await
                {
                    Err(kube::Error::Api(e)) => format!("refused ({})", e.message),
                    Err(e) => panic!("{e}"),
                    Ok(_) => "stored as written (an open status copy)".to_string(),
                };
                report.push(format!(
                    "{kind} {}: required in the spec, the status copy has it; an item without it: {without_name}",
                    d.path
                ));
                continue;
            }
            Met::RequiredHere => {
                let mut without = obj.clone();
                if remove_leaves(&mut without, &d.path) == 0 {
                    failures.push(format!("{kind} {}: the probe has no parent", d.path));
                    continue;
                }
                dry_run_object(&env.client, &env.ns, &without).await.map(|o| o["spec"].clone())
            }
            Met::Stored if on_status => {
                if created.insert(kind.clone()) {
                    api.create(&PostParams::default(), &serde_json::from_value(obj.clone()).unwrap()).await.unwrap();
                }
                let patch = json!({"status": status});
                api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
                Ok(serde_json::to_value(api.get(name).await.unwrap()).unwrap())
            }
            Met::Stored => dry_run_object(&env.client, &env.ns, obj).await,
            Met::PodTemplate => {
                failures.push(format!("{kind} {}: no pod template check for the backup kinds", d.path));
                continue;
            }
        };
        match (how_met(d), result) {
            (Met::RequiredHere, Err(m)) => report.push(format!("{kind} {}: required here; without it: {m}", d.path)),
            (Met::RequiredHere, Ok(v)) => failures.push(format!("{kind} {}: accepted without a name: {v}", d.path)),
            (_, Err(m)) => failures.push(format!("{kind} {}: refused: {m}", d.path)),
            (_, Ok(stored)) => {
                let found = leaves(&stored, &d.path);
                if !found.is_empty() && found.iter().all(|v| *v == Some(&d.value)) {
                    report.push(format!("{kind} {}: {} stored ({} found)", d.path, d.value, found.len()));
                } else {
                    failures.push(format!("{kind} {}: reference default {} but stored {found:?}", d.path, d.value));
                }
            }
        }
    }
    eprintln!("{} backup reference defaults:\n  {}", defaults.len(), report.join("\n  "));
    assert!(failures.is_empty(), "{failures:#?}");
    for kind in created {
        let name = probe(&kind).0["metadata"]["name"].as_str().unwrap().to_string();
        let _ = dynamic_api(&env.client, &env.ns, &kind).delete(&name, &DeleteParams::default()).await;
    }
}

#[test]
fn the_path_walker_reads_lists_maps_and_missing_parents() {
    let v = json!({"a": {"l": [{"x": 1}, {"y": 2}, 3], "m": {"k1": {"x": 4}}}});
    assert_eq!(leaves(&v, "a.l[].x"), [Some(&json!(1)), None]);
    assert_eq!(leaves(&v, "a.m{}.x"), [Some(&json!(4))]);
    assert!(leaves(&v, "a.none[].x").is_empty());
    let mut w = v.clone();
    assert_eq!(remove_leaves(&mut w, "a.l[].x"), 1);
    assert_eq!(w["a"]["l"][0], json!({}));
    assert_eq!(default_value("{skipWorkDirValidate: false}"), json!({"skipWorkDirValidate": false}));
    let default = json!({"a": false});
    let (written, other) = (json!({"a": false, "b": false}), json!({"a": false, "b": true}));
    assert_eq!(object_default_met(&default, &[Some(&written)]).unwrap(), r#"{"b":false} (zero values)"#);
    assert_eq!(object_default_met(&default, &[Some(&other)]), None);
    assert_eq!(object_default_met(&default, &[Some(&json!({"a": true}))]), None);
    assert_eq!(default_value("False"), json!(false));
    assert_eq!(default_value("1"), json!(1));
    assert_eq!(default_value(""), json!(""));
    assert_eq!(
        in_pod_template("status.podSpec.sidecars[].ports[].protocol"),
        "spec.template.spec.containers[].ports[].protocol"
    );
}
