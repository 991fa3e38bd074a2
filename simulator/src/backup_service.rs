//! A simulated Aerospike Backup Service (ABS): for every AerospikeBackupService Deployment (label
//! `app.kubernetes.io/name=aerospike-backup-service`) it listens on the ClusterIP and port of the Service of the
//! same name (ClusterIPs are local addresses on the test plane) and answers the REST calls the operator makes:
//! health, version, config read and apply (re-reads the ConfigMap, as ABS re-reads its mounted file), on-demand
//! full and incremental backups, backup listings, restores by type, restore status and cancel.
//!
//! A backup records the simulated record counts per namespace ([`BackupSims::set_records`]) of the routine's
//! source cluster, found from its seed node `host-name` (`<cluster>.<namespace>...`); a restore job sets the
//! destination cluster's counts back to those of the backup named by `backup-data-path` (Full, Incremental) or the
//! routine's last backup before `time` (Timestamp). Jobs run for [`BackupFault::restore_duration`] (default
//! 300 ms) before they are Done.
//!
//! Only clusters with simulated members can be backed up (a backup of another is accepted and then kept nowhere, as
//! ABS's fails) or restored into (the job fails).
//!
//! Fault knobs per service ([`BackupSims::set_fault`]): the next N calls answered 503, every call hung (accepted,
//! never answered), restore jobs that fail with a reason, or stay Running until cancelled.
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Label of the operator's backup service Deployments.
pub const SELECTOR: &str = "app.kubernetes.io/name=aerospike-backup-service";
const CONFIG_KEY: &str = "aerospike-backup-service.yml";

/// Faults of one simulated backup service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackupFault {
    /// Answer this many next calls (any endpoint) with 503.
    pub unavailable_calls: u32,
    /// Accept every call and never answer.
    pub hang: bool,
    /// Restore jobs end Failed with this error.
    pub fail_restore: Option<String>,
    /// Restore jobs stay Running until cancelled.
    pub hold_restore: bool,
    /// How long a restore job runs (default 300 ms).
    pub restore_duration: Option<Duration>,
}

/// One backup a simulated service took.
#[derive(Clone, Debug, PartialEq)]
pub struct SimBackup {
    pub routine: String,
    pub incremental: bool,
    pub key: String,
    /// Milliseconds since the epoch.
    pub created: u64,
    /// Record counts per Aerospike namespace of the source cluster at backup time.
    pub records: BTreeMap<String, u64>,
}

#[derive(Clone, Debug)]
struct Job {
    status: &'static str,
    error: Option<String>,
    /// Destination (k8s namespace, cluster) and the counts it gets when Done.
    destination: Option<(String, String)>,
    records: BTreeMap<String, u64>,
    done_at: Option<std::time::Instant>,
}

#[derive(Default)]
struct Svc {
    config: Value,
    backups: Vec<SimBackup>,
    jobs: BTreeMap<i64, Job>,
    fault: BackupFault,
    /// Calls received, as `METHOD path`.
    calls: Vec<String>,
    addr: Option<SocketAddr>,
    task: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    services: HashMap<(String, String), Svc>,
    records: HashMap<(String, String), BTreeMap<String, u64>>,
    next_job: i64,
}

/// Whether a simulated cluster `(namespace, name)` has members (is reachable).
type Reachable = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// The simulated backup services and the record counts of the simulated clusters.
#[derive(Clone, Default)]
pub struct BackupSims {
    shared: Arc<Mutex<Shared>>,
    /// None: every cluster is reachable (a service simulated without the Aerospike simulator).
    reachable: Option<Reachable>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// `(namespace, cluster)` of a cluster entry from its first seed node's host-name `<cluster>.<namespace>[...]`.
fn cluster_of(entry: &Value) -> Option<(String, String)> {
    let host = entry["seed-nodes"][0]["host-name"].as_str()?;
    let mut parts = host.split('.');
    let cluster = parts.next()?.to_string();
    let ns = parts.next()?.to_string();
    Some((ns, cluster))
}

impl BackupSims {
    /// Backup services that back up and restore only clusters `reachable` says are up.
    pub fn new(reachable: impl Fn(&str, &str) -> bool + Send + Sync + 'static) -> BackupSims {
        BackupSims { shared: Default::default(), reachable: Some(Arc::new(reachable)) }
    }

    fn is_reachable(&self, (ns, cluster): &(String, String)) -> bool {
        self.reachable.as_ref().is_none_or(|r| r(ns, cluster))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the record count of an Aerospike namespace of a simulated cluster.
    pub fn set_records(&self, namespace: &str, cluster: &str, aerospike_namespace: &str, count: u64) {
        self.lock()
            .records
            .entry((namespace.into(), cluster.into()))
            .or_default()
            .insert(aerospike_namespace.into(), count);
    }

    /// Record counts per Aerospike namespace of a simulated cluster.
    pub fn records_of(&self, namespace: &str, cluster: &str) -> BTreeMap<String, u64> {
        self.lock().records.get(&(namespace.into(), cluster.into())).cloned().unwrap_or_default()
    }

    /// Sets (replaces) the faults of a backup service.
    pub fn set_fault(&self, namespace: &str, service: &str, fault: BackupFault) {
        self.lock().services.entry((namespace.into(), service.into())).or_default().fault = fault;
    }

    /// The backups a service took, in order.
    pub fn backups_of(&self, namespace: &str, service: &str) -> Vec<SimBackup> {
        self.lock().services.get(&(namespace.into(), service.into())).map(|s| s.backups.clone()).unwrap_or_default()
    }

    /// The configuration a service runs.
    pub fn config_of(&self, namespace: &str, service: &str) -> Option<Value> {
        self.lock().services.get(&(namespace.into(), service.into())).map(|s| s.config.clone())
    }

    /// The calls a service received (`METHOD path?query`), in order.
    pub fn calls_of(&self, namespace: &str, service: &str) -> Vec<String> {
        self.lock().services.get(&(namespace.into(), service.into())).map(|s| s.calls.clone()).unwrap_or_default()
    }

    /// Where a service listens, once it does.
    pub fn addr_of(&self, namespace: &str, service: &str) -> Option<SocketAddr> {
        self.lock().services.get(&(namespace.into(), service.into())).and_then(|s| s.addr)
    }

    pub(crate) fn stop(&self) {
        for s in self.lock().services.values_mut() {
            if let Some(t) = s.task.take() {
                t.abort();
            }
            s.addr = None;
        }
    }
}

/// Watches backup service Deployments and serves each one while it exists.
pub(crate) async fn watch(sims: BackupSims, client: Client, namespace: Option<String>) {
    let api: Api<Deployment> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut events = watcher::watcher(api, watcher::Config::default().labels(SELECTOR)).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(d) | Event::InitApply(d)) => start(&sims, &client, &d).await,
            Ok(Event::Delete(d)) => {
                let key = (d.namespace().unwrap_or_default(), d.name_any());
                if let Some(s) = sims.lock().services.get_mut(&key)
                    && let Some(t) = s.task.take()
                {
                    t.abort();
                    s.addr = None;
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("simulator: watching backup services: {e}"),
        }
    }
}

/// The configuration in the service's ConfigMap (what ABS reads from its mounted file).
async fn read_config(client: &Client, ns: &str, name: &str) -> Option<Value> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns).get_opt(name).await.ok()??;
    let text = cm.data?.get(CONFIG_KEY)?.clone();
    serde_saphyr::from_str(&text).ok()
}

async fn start(sims: &BackupSims, client: &Client, d: &Deployment) {
    let (ns, name) = (d.namespace().unwrap_or_default(), d.name_any());
    let key = (ns.clone(), name.clone());
    let Ok(Some(svc)) = Api::<Service>::namespaced(client.clone(), &ns).get_opt(&name).await else { return };
    let Some(ip) = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_ref()).and_then(|ip| ip.parse::<IpAddr>().ok())
    else {
        return;
    };
    let Some(port) = svc.spec.as_ref().and_then(|s| s.ports.as_ref()).and_then(|p| p.first()).map(|p| p.port) else {
        return;
    };
    let addr = SocketAddr::new(ip, port as u16);
    if sims.lock().services.get(&key).is_some_and(|s| s.addr == Some(addr) && s.task.is_some()) {
        return;
    }
    let config = read_config(client, &ns, &name).await.unwrap_or(json!({}));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("simulator: backup service {ns}/{name} cannot listen on {addr}: {e}");
            return;
        }
    };
    let app = router(Handle { sims: sims.clone(), client: client.clone(), key: key.clone() });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut shared = sims.lock();
    let s = shared.services.entry(key).or_default();
    if let Some(old) = s.task.replace(task) {
        old.abort();
    }
    s.addr = Some(addr);
    s.config = config;
}

#[derive(Clone)]
struct Handle {
    sims: BackupSims,
    client: Client,
    key: (String, String),
}

impl Handle {
    /// Records the call and applies the faults: `Some(response)` when a fault answers instead.
    async fn gate(&self, call: String) -> Option<Response> {
        let hang = {
            let mut shared = self.sims.lock();
            let s = shared.services.entry(self.key.clone()).or_default();
            s.calls.push(call);
            if s.fault.unavailable_calls > 0 {
                s.fault.unavailable_calls -= 1;
                return Some((StatusCode::SERVICE_UNAVAILABLE, "simulated: unavailable").into_response());
            }
            s.fault.hang
        };
        if hang {
            std::future::pending::<()>().await;
        }
        None
    }

    fn with<T>(&self, f: impl FnOnce(&mut Shared) -> T) -> T {
        f(&mut self.sims.lock())
    }
}

fn router(h: Handle) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/v1/config", get(get_config))
        .route("/v1/config/apply", post(apply_config))
        .route("/v1/backups/full/{routine}", get(list_full).post(backup_full))
        .route("/v1/backups/incremental/{routine}", get(list_incremental).post(backup_incremental))
        .route("/v1/backups/schedule/{routine}", post(backup_full))
        .route("/v1/restore/{kind}", post(restore))
        .route("/v1/restore/status/{job}", get(restore_status))
        .route("/v1/restore/cancel/{job}", post(cancel))
        .with_state(h)
}

async fn health(State(h): State<Handle>) -> Response {
    if let Some(r) = h.gate("GET /health".into()).await {
        return r;
    }
    "Ok".into_response()
}

async fn version(State(h): State<Handle>) -> Response {
    if let Some(r) = h.gate("GET /version".into()).await {
        return r;
    }
    json_response(StatusCode::OK, &json!({"version": "3.5.0-simulated"}))
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (status, [("content-type", "application/json")], v.to_string()).into_response()
}

async fn get_config(State(h): State<Handle>) -> Response {
    if let Some(r) = h.gate("GET /v1/config".into()).await {
        return r;
    }
    let config = h.with(|s| s.services.get(&h.key).map(|s| s.config.clone()).unwrap_or(json!({})));
    json_response(StatusCode::OK, &config)
}

async fn apply_config(State(h): State<Handle>) -> Response {
    if let Some(r) = h.gate("POST /v1/config/apply".into()).await {
        return r;
    }
    match read_config(&h.client, &h.key.0, &h.key.1).await {
        Some(config) => {
            h.with(|s| s.services.entry(h.key.clone()).or_default().config = config);
            StatusCode::OK.into_response()
        }
        None => (StatusCode::BAD_REQUEST, "cannot read the configuration file").into_response(),
    }
}

async fn backup_full(State(h): State<Handle>, Path(routine): Path<String>, uri: Uri) -> Response {
    take_backup(h, routine, false, uri).await
}

async fn backup_incremental(State(h): State<Handle>, Path(routine): Path<String>, uri: Uri) -> Response {
    take_backup(h, routine, true, uri).await
}

async fn take_backup(h: Handle, routine: String, incremental: bool, uri: Uri) -> Response {
    if let Some(r) = h.gate(format!("POST {uri}")).await {
        return r;
    }
    h.with(|shared| {
        let Some(s) = shared.services.get(&h.key) else { return StatusCode::NOT_FOUND.into_response() };
        let Some(r) = s.config["backup-routines"].get(&routine) else {
            return (StatusCode::NOT_FOUND, format!("routine {routine} not found")).into_response();
        };
        let source = r["source-cluster"].as_str().unwrap_or_default();
        let Some(cluster) = cluster_of(&s.config["aerospike-clusters"][source]) else {
            return (StatusCode::BAD_REQUEST, format!("cluster {source} has no seed node")).into_response();
        };
        // ABS accepts the request and the backup then fails: nothing is kept.
        if !h.sims.is_reachable(&cluster) {
            eprintln!("simulator: backup of {}/{} failed: no member answers", cluster.0, cluster.1);
            return StatusCode::ACCEPTED.into_response();
        }
        let records = shared.records.get(&cluster).cloned().unwrap_or_default();
        let s = shared.services.get_mut(&h.key).expect("looked up above");
        // Keys are unique even for backups in the same millisecond.
        let created = now_ms().max(s.backups.last().map_or(0, |b| b.created + 1));
        let kind = if incremental { "incremental" } else { "backup" };
        let key = format!("{routine}/{kind}/{created}");
        s.backups.push(SimBackup { routine, incremental, key, created, records });
        StatusCode::ACCEPTED.into_response()
    })
}

async fn list_full(State(h): State<Handle>, Path(routine): Path<String>) -> Response {
    list(h, routine, false).await
}

async fn list_incremental(State(h): State<Handle>, Path(routine): Path<String>) -> Response {
    list(h, routine, true).await
}

/// One entry per backup and namespace, as ABS lists them.
async fn list(h: Handle, routine: String, incremental: bool) -> Response {
    let kind = if incremental { "incremental" } else { "full" };
    if let Some(r) = h.gate(format!("GET /v1/backups/{kind}/{routine}")).await {
        return r;
    }
    let items: Vec<Value> = h.with(|shared| {
        let backups = shared.services.get(&h.key).map(|s| s.backups.clone()).unwrap_or_default();
        backups
            .iter()
            .filter(|b| b.routine == routine && b.incremental == incremental)
            .flat_map(|b| {
                b.records.iter().map(move |(ns, n)| {
                    json!({"key": format!("{}/data/{ns}", b.key), "created": b.created, "timestamp": b.created,
                           "namespace": ns, "record-count": n})
                })
            })
            .collect()
    });
    json_response(StatusCode::OK, &Value::Array(items))
}

async fn restore(State(h): State<Handle>, Path(kind): Path<String>, body: Bytes) -> Response {
    if let Some(r) = h.gate(format!("POST /v1/restore/{kind}")).await {
        return r;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "the request is not JSON").into_response();
    };
    let Some(destination) = cluster_of(&request["destination"]) else {
        return (StatusCode::BAD_REQUEST, "destination: no seed node").into_response();
    };
    h.with(|shared| {
        let Some(s) = shared.services.get(&h.key) else { return StatusCode::NOT_FOUND.into_response() };
        let backup = match kind.as_str() {
            "full" | "incremental" => {
                let path = request["backup-data-path"].as_str().unwrap_or_default();
                s.backups
                    .iter()
                    .find(|b| !path.is_empty() && (path == b.key || path.starts_with(&format!("{}/", b.key))))
            }
            "timestamp" => {
                let routine = request["routine"].as_str().unwrap_or_default();
                let time = request["time"].as_u64().unwrap_or_default();
                s.backups.iter().rfind(|b| b.routine == routine && b.created <= time)
            }
            _ => return (StatusCode::NOT_FOUND, format!("no restore type {kind}")).into_response(),
        };
        let Some(backup) = backup else {
            return (StatusCode::BAD_REQUEST, "no backup matches the request").into_response();
        };
        let mut records = backup.records.clone();
        // A path to one namespace's data restores that namespace only.
        if let Some((_, ns)) = request["backup-data-path"].as_str().and_then(|p| p.rsplit_once("/data/")) {
            records.retain(|k, _| k == ns);
        }
        let fault = s.fault.clone();
        shared.next_job += 1;
        let id = shared.next_job;
        let unreachable = (!h.sims.is_reachable(&destination))
            .then(|| format!("destination {}/{}: no member answers", destination.0, destination.1));
        let job = match (fault.fail_restore.as_ref().or(unreachable.as_ref()), fault.hold_restore) {
            (Some(e), _) => Job { status: "Failed", error: Some(e.clone()), destination: None, records, done_at: None },
            (None, true) => Job { status: "Running", error: None, destination: None, records, done_at: None },
            (None, false) => {
                let d = fault.restore_duration.unwrap_or(Duration::from_millis(300));
                Job {
                    status: "Running",
                    error: None,
                    destination: Some(destination),
                    records,
                    done_at: Some(std::time::Instant::now() + d),
                }
            }
        };
        shared.services.get_mut(&h.key).expect("looked up above").jobs.insert(id, job);
        (StatusCode::ACCEPTED, id.to_string()).into_response()
    })
}

async fn restore_status(State(h): State<Handle>, Path(job): Path<i64>) -> Response {
    if let Some(r) = h.gate(format!("GET /v1/restore/status/{job}")).await {
        return r;
    }
    h.with(|shared| {
        let Some(j) = shared.services.get_mut(&h.key).and_then(|s| s.jobs.get_mut(&job)) else {
            return (StatusCode::NOT_FOUND, format!("no job {job}")).into_response();
        };
        // A job finishes when its time is up: the destination gets the backup's counts.
        if j.status == "Running" && j.done_at.is_some_and(|t| std::time::Instant::now() >= t) {
            j.status = "Done";
            let (dest, records) = (j.destination.clone(), j.records.clone());
            let total: u64 = records.values().sum();
            if let Some(dest) = dest {
                shared.records.entry(dest).or_default().extend(records);
            }
            let j = &shared.services.get(&h.key).expect("found above").jobs[&job];
            return json_response(StatusCode::OK, &json!({"status": j.status, "inserted-records": total}));
        }
        let mut answer = json!({"status": j.status});
        if let Some(e) = &j.error {
            answer["error"] = json!(e);
        }
        json_response(StatusCode::OK, &answer)
    })
}

async fn cancel(State(h): State<Handle>, Path(job): Path<i64>) -> Response {
    if let Some(r) = h.gate(format!("POST /v1/restore/cancel/{job}")).await {
        return r;
    }
    h.with(|shared| match shared.services.get_mut(&h.key).and_then(|s| s.jobs.get_mut(&job)) {
        Some(j) if j.status == "Running" => {
            j.status = "Cancelled";
            StatusCode::OK.into_response()
        }
        Some(_) => (StatusCode::BAD_REQUEST, format!("job {job} is not running")).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no job {job}")).into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_are_found_from_their_seed_host() {
        let entry = json!({"seed-nodes": [{"host-name": "aerocluster.aerospike.svc.cluster.local", "port": 3000}]});
        assert_eq!(cluster_of(&entry), Some(("aerospike".into(), "aerocluster".into())));
        assert_eq!(cluster_of(&json!({})), None);
    }
}
