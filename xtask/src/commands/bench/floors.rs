//! The floors of `--against-floors` (issue 16), measured in the same run as the operator:
//! - the API-server floor: the objects our operator left for each cluster (ConfigMaps, Services, StatefulSets,
//!   PDBs) and as many status writes per cluster as it made, replayed by a minimal client into fresh namespaces
//!   of the same plane, with the bench's create concurrency for the AerospikeClusters and no limit across
//!   clusters (like the operator's controller); done when every replayed StatefulSet has its pods ready and the
//!   cluster's final status is written;
//!   Each status write but the last is the final status with phase InProgress and a numbered condition message,
//!   so that each changes the object as each of the operator's does;
//! - the controller-runtime floor: `crfloor/` (Go), a manager that only caches what the reference caches, running
//!   beside the operator during the run; its peak RSS (read before the replay). It keeps running through the
//!   replays, so the API server feeds the same extra watcher in every timed phase, ours and the floors'.
use super::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};

/// The Go program of the controller-runtime floor, relative to the repository root.
pub(super) const CRFLOOR_SRC: &str = "xtask/src/commands/bench/crfloor";
/// Prefix of the namespaces the API-server floor replays into.
pub(super) const FLOOR_NS_PREFIX: &str = "floor-";

// -----------------------------------------------------------------------------------------------------------------
// The controller-runtime floor.

/// Builds `crfloor` (once per source, into the tool cache, from its pinned go.mod and go.sum).
pub(super) fn build_crfloor(root: &Path) -> Result<PathBuf> {
    ako_testbed::gojudge::ensure_go_program(&root.join(CRFLOOR_SRC), "crfloor")
        .context("building the controller-runtime floor (crfloor)")
}

/// The running `crfloor`; stopped when dropped.
pub(super) struct CrFloor {
    proc: Option<Proc>,
    log: PathBuf,
}

impl CrFloor {
    pub(super) fn pid(&self) -> u32 {
        self.proc.as_ref().map(|p| p.pid).unwrap_or(0)
    }

    pub(super) fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            proc::stop_all(&mut [p], Duration::from_secs(10));
        }
    }
}

impl Drop for CrFloor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `crfloor` as admin (its requests do not land in the operator's flow schemas) and waits until its
/// informers have synced.
pub(super) async fn start_crfloor(bin: &Path, cluster: &LocalCluster, out_dir: &Path) -> Result<CrFloor> {
    let log = out_dir.join("crfloor.log");
    let _ = std::fs::remove_file(&log);
    let spec = Spec {
        name: "crfloor".into(),
        program: bin.to_path_buf(),
        args: vec![],
        env: vec![("KUBECONFIG".into(), cluster.kubeconfig_path().as_os_str().to_owned())],
        log: log.clone(),
        cwd: cluster.state_dir().to_path_buf(),
    };
    let mut floor = CrFloor { proc: Some(proc::spawn(spec, Mode::Owned)?), log };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(p) = &mut floor.proc
            && let Some(status) = p.exit_status()
        {
            bail!("crfloor exited ({status}):\n{}", proc::log_tail(&floor.log, 30));
        }
        if std::fs::read_to_string(&floor.log).unwrap_or_default().lines().any(|l| l.trim() == "synced") {
            return Ok(floor);
        }
        if Instant::now() >= deadline {
            bail!("crfloor did not sync its caches within 120s:\n{}", proc::log_tail(&floor.log, 30));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// -----------------------------------------------------------------------------------------------------------------
// The API-server floor.

/// One cluster's objects as our operator left them, ready to be created again elsewhere.
#[derive(Clone, Debug, Default)]
pub(super) struct ClusterObjects {
    pub(super) namespace: String,
    pub(super) name: String,
    /// In creation order: ConfigMaps, Services, StatefulSets, PDBs.
    pub(super) objects: Vec<(Kind, Value)>,
    pub(super) status: Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    ConfigMap,
    Service,
    StatefulSet,
    PodDisruptionBudget,
}

impl Kind {
    fn resource(self) -> ApiResource {
        match self {
            Kind::ConfigMap => ApiResource::erase::<ConfigMap>(&()),
            Kind::Service => ApiResource::erase::<Service>(&()),
            Kind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            Kind::PodDisruptionBudget => ApiResource::erase::<PodDisruptionBudget>(&()),
        }
    }
}

/// Pure: `obj` as the apiserver returned it, made creatable in namespace `ns` under an owner whose uid is now
/// `owner_uid`: server-set metadata and status dropped, allocated Service IPs released.
pub(super) fn creatable(mut obj: Value, ns: &str, owner_uid: &str) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink"] {
            meta.remove(k);
        }
        meta.insert("namespace".into(), json!(ns));
        if let Some(owners) = meta.get_mut("ownerReferences").and_then(Value::as_array_mut) {
            for o in owners {
                o["uid"] = json!(owner_uid);
            }
        }
    }
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
    }
    if obj["kind"] == "Service"
        && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
    {
        if spec.get("clusterIP").and_then(Value::as_str) != Some("None") {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        // Node ports are allocated too.
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports {
                if let Some(p) = p.as_object_mut() {
                    p.remove("nodePort");
                }
            }
        }
    }
    obj
}

/// The floor's namespace for one of ours.
pub(super) fn floor_namespace(ns: &str) -> String {
    format!("{FLOOR_NS_PREFIX}{ns}")
}

/// Reads what our operator left for the clusters `names` (objects labelled managed-by us, grouped by their
/// cluster label) and each cluster's status.
pub(super) async fn capture(client: &Client, names: &[(String, String)]) -> Result<Vec<ClusterObjects>> {
    use aerospike_kubernetes_operator::desired::{LABEL_CR, LABEL_MANAGED_BY, MANAGER_NAME};
    let lp = ListParams::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGER_NAME}"));
    let mut by_cluster: BTreeMap<(String, String), ClusterObjects> = names
        .iter()
        .map(|(ns, n)| {
            ((ns.clone(), n.clone()), ClusterObjects { namespace: ns.clone(), name: n.clone(), ..Default::default() })
        })
        .collect();
    for kind in [Kind::ConfigMap, Kind::Service, Kind::StatefulSet, Kind::PodDisruptionBudget] {
        let ar = kind.resource();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        for o in api.list(&lp).await.with_context(|| format!("listing {}", ar.plural))?.items {
            let key = (o.namespace().unwrap_or_default(), o.labels().get(LABEL_CR).cloned().unwrap_or_default());
            if let Some(c) = by_cluster.get_mut(&key) {
                let mut v = serde_json::to_value(&o)?;
                v["apiVersion"] = json!(ar.api_version);
                v["kind"] = json!(ar.kind);
                c.objects.push((kind, v));
            }
        }
    }
    let api: Api<AerospikeCluster> = Api::all(client.clone());
    for c in api.list(&ListParams::default()).await?.items {
        let key = (c.namespace().unwrap_or_default(), c.name_any());
        if let Some(entry) = by_cluster.get_mut(&key) {
            entry.status = serde_json::to_value(&c.status)?;
        }
    }
    Ok(by_cluster.into_values().collect())
}

pub(super) struct ApiFloor {
    pub(super) seconds: f64,
    pub(super) objects_created: usize,
    pub(super) status_writes: usize,
    pub(super) stateful_sets: usize,
    /// CPU seconds by process over the replay (filled in by the caller, which knows the processes).
    pub(super) cpu_seconds_by_process: BTreeMap<String, f64>,
}

/// The `i`th status write of the replay before the last: the captured final status, phase InProgress, its first
/// condition's message numbered. Each write changes the object, as each of the operator's did (it writes a status
/// only when it differs): a repeated identical patch would be a no-op the API server neither stores nor sends to
/// watchers.
pub(super) fn interim_status(status: &Value, i: usize) -> Value {
    let mut st = status.clone();
    if let Some(o) = st.as_object_mut() {
        o.insert("phase".into(), json!("InProgress"));
    }
    match st.get_mut("conditions").and_then(Value::as_array_mut).and_then(|c| c.first_mut()) {
        Some(first) => first["message"] = json!(format!("status write {i} of the replay")),
        None => {
            st["conditions"] = json!([{"type": "Progressing", "status": "True", "reason": "Replay",
            "message": format!("status write {i} of the replay"), "lastTransitionTime": "2026-01-01T00:00:00Z"}])
        }
    }
    json!({ "status": st })
}

/// The replay (see the module docs). `status_writes` per cluster: all but the last right after the cluster is
/// created, the last (the captured final status) once its StatefulSets are ready.
pub(super) async fn run_api_floor(
    client: &Client,
    clusters: &[ClusterObjects],
    status_writes: usize,
    size: i32,
    limit: Duration,
) -> Result<ApiFloor> {
    use aerospike_kubernetes_operator::desired::{LABEL_MANAGED_BY, MANAGER_NAME};
    let status_writes = status_writes.max(1);
    // StatefulSets ready, by (namespace, name), fed by one watch like the operator's own.
    let ready: Arc<Mutex<BTreeMap<(String, String), bool>>> = Arc::default();
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let watch_task = tokio::spawn({
        let ready = ready.clone();
        let api: Api<StatefulSet> = Api::all(client.clone());
        let cfg = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGER_NAME}"));
        async move {
            let mut stream = std::pin::pin!(watcher(api, cfg).default_backoff().applied_objects());
            while let Some(Ok(sts)) = stream.next().await {
                let ns = sts.namespace().unwrap_or_default();
                if !ns.starts_with(FLOOR_NS_PREFIX) {
                    continue;
                }
                let want = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let st = sts.status.clone().unwrap_or_default();
                let is_ready = st.ready_replicas.unwrap_or(0) >= want
                    && st.observed_generation.unwrap_or(0) >= sts.metadata.generation.unwrap_or(0);
                ready.lock().unwrap_or_else(|e| e.into_inner()).insert((ns, sts.name_any()), is_ready);
                tx.send_modify(|v| *v += 1);
            }
        }
    });
    // Let the watch start (its initial list is of other namespaces) before the clock does.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let t0 = Instant::now();
    let chains = futures::stream::iter(clusters.iter().cloned())
        .map(|c| {
            let client = client.clone();
            let ready = ready.clone();
            let mut rx = rx.clone();
            async move {
                let ns = floor_namespace(&c.namespace);
                let cr_api: Api<AerospikeCluster> = Api::namespaced(client.clone(), &ns);
                let obj: AerospikeCluster = serde_json::from_value(cluster_manifest(&c.name, &ns, size))?;
                let post = PostParams::default();
                let cr = match with_retries(|| cr_api.create(&post, &obj)).await {
                    // Created by an attempt whose answer was lost.
                    Err(kube::Error::Api(e)) if e.code == 409 => with_retries(|| cr_api.get(&c.name)).await,
                    other => other,
                }
                .with_context(|| format!("creating {ns}/{}", c.name))?;
                let uid = cr.uid().unwrap_or_default();
                // The rest of the cluster runs unbounded across clusters, as the operator's reconciles do.
                let chain = tokio::spawn(async move {
                    let pp = PostParams::default();
                    for i in 1..status_writes {
                        let interim = interim_status(&c.status, i);
                        let (params, patch) = (PatchParams::default(), Patch::Merge(&interim));
                        with_retries(|| cr_api.patch_status(&c.name, &params, &patch)).await?;
                    }
                    let mut stateful_sets = Vec::new();
                    for (kind, v) in &c.objects {
                        let ar = kind.resource();
                        let body: DynamicObject = serde_json::from_value(creatable(v.clone(), &ns, &uid))?;
                        if *kind == Kind::StatefulSet {
                            stateful_sets.push((ns.clone(), body.name_any()));
                        }
                        let api = Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &ar);
                        match with_retries(|| api.create(&pp, &body)).await {
                            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                            other => other.map(drop),
                        }
                        .with_context(|| format!("creating {} {ns}/{}", ar.kind, body.name_any()))?;
                    }
                    loop {
                        let all = {
                            let r = ready.lock().unwrap_or_else(|e| e.into_inner());
                            stateful_sets.iter().all(|k| r.get(k).copied().unwrap_or(false))
                        };
                        if all {
                            break;
                        }
                        rx.changed().await.map_err(|_| anyhow!("the StatefulSet watch ended"))?;
                    }
                    let last = json!({"status": c.status});
                    let (params, patch) = (PatchParams::default(), Patch::Merge(&last));
                    with_retries(|| cr_api.patch_status(&c.name, &params, &patch)).await?;
                    anyhow::Ok((c.objects.len(), stateful_sets.len()))
                });
                anyhow::Ok(chain)
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<_>>();
    let run = async {
        let mut objects_created = 0;
        let mut stateful_sets = 0;
        for chain in chains.await? {
            let (o, s) = chain.await??;
            objects_created += o;
            stateful_sets += s;
        }
        anyhow::Ok((objects_created, stateful_sets))
    };
    let result = tokio::time::timeout(limit, run).await;
    watch_task.abort();
    let (objects_created, stateful_sets) =
        result.map_err(|_| anyhow!("the API-server floor did not finish within {limit:?}"))??;
    Ok(ApiFloor {
        seconds: t0.elapsed().as_secs_f64(),
        objects_created,
        status_writes: status_writes * clusters.len(),
        stateful_sets,
        cpu_seconds_by_process: BTreeMap::new(),
    })
}

/// A request of the floor's replay, tried again (up to three times) when it failed in transport or the API server
/// said to try again: each ended a whole bench run before, a pooled connection the server had just closed
/// ("connection closed before message completed"), and at 1000 clusters the Service IP allocator's 500 ("provided
/// IP is already allocated", its own race). The operator retries those on its next reconcile. A create retried
/// after a lost answer may meet its own object (409).
async fn with_retries<T, F: std::future::Future<Output = kube::Result<T>>>(
    mut request: impl FnMut() -> F,
) -> kube::Result<T> {
    let mut tries = 0;
    loop {
        match request().await {
            Err(e) if tries < 3 && transient(&e) => {
                tries += 1;
                eprintln!("bench: floor replay: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

/// Whether a failed request may succeed as it is: a transport error, a 5xx or a 429.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_that_may_pass_as_they_are_are_retried() {
        let answer =
            |code: u16| kube::Error::Api(serde_json::from_value(json!({"status": "Failure", "code": code})).unwrap());
        assert!(transient(&answer(500)) && transient(&answer(503)) && transient(&answer(429)));
        assert!(!transient(&answer(409)) && !transient(&answer(404)) && !transient(&answer(422)));
        assert!(transient(&kube::Error::LinesCodecMaxLineLengthExceeded));
    }

    #[test]
    fn creatable_drops_server_fields_and_rewrites_namespace_and_owner() {
        let obj = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "c", "namespace": "bench-0", "uid": "u", "resourceVersion": "7", "generation": 1,
                         "creationTimestamp": "t", "managedFields": [{}], "labels": {"a": "b"},
                         "ownerReferences": [{"uid": "old", "name": "c", "kind": "AerospikeCluster"}]},
            "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 3000, "nodePort": 30000}]},
            "status": {"loadBalancer": {}}
        });
        let out = creatable(obj, "floor-bench-0", "new");
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "c", "namespace": "floor-bench-0", "labels": {"a": "b"},
                             "ownerReferences": [{"uid": "new", "name": "c", "kind": "AerospikeCluster"}]},
                "spec": {"ports": [{"port": 3000}]}
            })
        );
    }

    #[test]
    fn every_interim_status_write_changes_the_status() {
        let fin = json!({"phase": "Completed", "size": 3,
            "conditions": [{"type": "Available", "status": "True", "reason": "PodsReady", "message": "3/3 pods ready"}]});
        let (a, b) = (interim_status(&fin, 1), interim_status(&fin, 2));
        assert_ne!(a, b);
        assert_eq!(a["status"]["phase"], "InProgress");
        assert_eq!(a["status"]["size"], 3, "the rest of the final status is written each time");
        let bare = interim_status(&json!({}), 1);
        assert_ne!(bare, interim_status(&json!({}), 2));
    }

    #[test]
    fn creatable_keeps_headless_services_headless() {
        let obj = json!({"kind": "Service", "metadata": {"name": "c"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"]}});
        let out = creatable(obj, "n", "u");
        assert_eq!(out["spec"]["clusterIP"], "None");
        assert_eq!(out["spec"]["clusterIPs"], json!(["None"]));
    }
}
