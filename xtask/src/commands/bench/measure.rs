//! The waits and the measurement windows of the run.
use super::*;

pub(super) async fn wait_operator_ready(op: &mut Operator, limit: Duration) -> Result<()> {
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
pub(super) async fn wait_all_completed(
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
    let every = poll_interval(names.len());
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
        tokio::time::sleep(every).await;
    }
}

/// Waits until the operator's reconcile counter stays unchanged for `still`; returns the seconds waited.
pub(super) async fn wait_quiet(op: &mut Operator, still: Duration, limit: Duration) -> Result<f64> {
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
pub(super) struct Window {
    pub(super) seconds: f64,
    pub(super) reconciles: f64,
    pub(super) failures: f64,
    pub(super) op: OpRequests,
    pub(super) by_verb: RequestCounts,
}

impl Window {
    pub(super) fn json(&self) -> Value {
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
pub(super) async fn measure_window(
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
        // 120 s and a quarter second per annotated cluster.
        let limit = Duration::from_secs(120 + targets.len() as u64 / 4);
        let deadline = Instant::now() + limit;
        loop {
            op.ensure_running()?;
            let n = operator_metrics(op.metrics).await?.reconciles;
            if n >= before_op.reconciles + expect as f64 {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "only {} of {expect} reconciles after the annotations within {limit:?}",
                    n - before_op.reconciles
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        wait_quiet(op, Duration::from_secs(3), limit).await?;
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

/// Where the operator's watch caches get their bytes: the JSON size of every object it caches (the same kinds
/// and label selectors as its watches), per cluster, whole and without managedFields (and, for ConfigMaps,
/// without data). The in-memory size of a deserialized object follows its JSON size, so this ranks the caches.
pub(super) async fn cache_json_sizes(client: &Client, clusters: usize) -> Result<Value> {
    use aerospike_kubernetes_operator::desired::{APP_NAME, LABEL_APP, LABEL_MANAGED_BY, MANAGER_NAME};
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use kube::api::{ApiResource, DynamicObject};
    let owned = format!("{LABEL_MANAGED_BY}={MANAGER_NAME}");
    let pods = format!("{LABEL_APP}={APP_NAME}");
    let kinds: [(ApiResource, &str); 6] = [
        (ApiResource::erase::<AerospikeCluster>(&()), ""),
        (ApiResource::erase::<StatefulSet>(&()), &owned),
        (ApiResource::erase::<Service>(&()), &owned),
        (ApiResource::erase::<ConfigMap>(&()), &owned),
        (ApiResource::erase::<PodDisruptionBudget>(&()), &owned),
        (ApiResource::erase::<Pod>(&()), &pods),
    ];
    let per = |v: usize| round(v as f64 / clusters.max(1) as f64, 0);
    let mut out = serde_json::Map::new();
    for (ar, labels) in kinds {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = api.list(&ListParams::default().labels(labels)).await?;
        let (mut whole, mut slim, mut managed) = (0usize, 0usize, 0usize);
        for o in &list.items {
            let mut v = serde_json::to_value(o)?;
            whole += serde_json::to_vec(&v)?.len();
            if let Some(m) = v["metadata"].as_object_mut().and_then(|m| m.remove("managedFields")) {
                managed += serde_json::to_vec(&m)?.len();
            }
            if ar.kind == "ConfigMap"
                && let Some(o) = v.as_object_mut()
            {
                o.remove("data");
            }
            slim += serde_json::to_vec(&v)?.len();
        }
        out.insert(
            ar.plural.clone(),
            json!({"objects": list.items.len(), "json_bytes_per_cluster": per(whole),
                   "managed_fields_bytes_per_cluster": per(managed), "kept_after_slimming_bytes_per_cluster": per(slim)}),
        );
    }
    Ok(Value::Object(out))
}
