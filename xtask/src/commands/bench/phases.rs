//! The phases after the clusters are Completed (issue 16): the operator restarted in place, and every cluster's
//! image changed at once (ours, then the floor: the same pods' StatefulSets patched and the pods deleted directly).
use super::*;
use aerospike_kubernetes_operator::desired::{APP_NAME, LABEL_APP, SERVER_CONTAINER_NAME};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;

/// The image every cluster is moved to by the rollout phase: a newer tag the simulator answers as that version
/// (the lifecycle e2e tests' `IMAGE_NEW`).
pub(super) const ROLLOUT_IMAGE: &str = "aerospike/aerospike-server-enterprise:7.2.0.1";

// -----------------------------------------------------------------------------------------------------------------
// Restart in place.

pub(super) struct Restart {
    pub(super) ready_seconds: f64,
    /// Until every cluster has a phase series in the new process (each was reconciled to its status once).
    pub(super) all_reconciled_seconds: f64,
    /// Until the reconcile counter first reached the number of clusters (a cross-check of the above).
    pub(super) counter_reached_seconds: f64,
    pub(super) reconciles: f64,
    pub(super) op: OpRequests,
    pub(super) by_verb: RequestCounts,
    pub(super) peak_rss_mib: f64,
    pub(super) cpu_seconds: f64,
}

/// Stops the operator (SIGTERM), starts it again with the same flags, and waits until it has reconciled every
/// cluster once and gone quiet. The requests are counted from before the stop to the end of the quiet wait, so
/// they include the new process's initial lists and watches.
pub(super) async fn restart_in_place(
    client: &Client,
    op: &mut Operator,
    names: &[(String, String)],
    limit: Duration,
) -> Result<Restart> {
    let before = ApiMetrics::fetch(client).await?;
    op.stop();
    let t0 = Instant::now();
    op.proc = Some(proc::spawn(op.spec.clone(), Mode::Owned)?);
    wait_operator_ready(op, Duration::from_secs(120)).await?;
    let ready_seconds = t0.elapsed().as_secs_f64();
    let wanted: BTreeSet<(String, String)> = names.iter().cloned().collect();
    let mut counter_reached = None;
    let all_reconciled = loop {
        op.ensure_running()?;
        let m = operator_metrics(op.metrics).await?;
        if counter_reached.is_none() && m.reconciles >= names.len() as f64 {
            counter_reached = Some(t0.elapsed().as_secs_f64());
        }
        if wanted.is_subset(&m.clusters_with_phase) {
            break t0.elapsed().as_secs_f64();
        }
        if t0.elapsed() >= limit {
            bail!(
                "after the restart only {} of {} clusters were reconciled within {limit:?}",
                wanted.intersection(&m.clusters_with_phase).count(),
                wanted.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    wait_quiet(op, Duration::from_secs(3), limit).await?;
    let after = ApiMetrics::fetch(client).await?;
    let m = operator_metrics(op.metrics).await?;
    let status = proc_status(op.pid()).unwrap_or_default();
    Ok(Restart {
        ready_seconds,
        all_reconciled_seconds: all_reconciled,
        counter_reached_seconds: counter_reached.unwrap_or(all_reconciled),
        reconciles: m.reconciles,
        op: after.operator().minus(&before.operator()),
        by_verb: after.delta(&before).operator_resources(),
        peak_rss_mib: status.hwm_kb as f64 / 1024.0,
        cpu_seconds: cpu_seconds(op.pid()).unwrap_or(0.0),
    })
}

impl Restart {
    pub(super) fn json(&self) -> Value {
        let writes: serde_json::Map<String, Value> = self
            .by_verb
            .by_verb_json()
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !["GET ", "LIST ", "WATCH ", "WATCHLIST "].iter().any(|p| k.starts_with(p)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        json!({
            "ready_seconds": round(self.ready_seconds, 2),
            "seconds_until_every_cluster_reconciled": round(self.all_reconciled_seconds, 2),
            "seconds_until_reconcile_counter_reached_clusters": round(self.counter_reached_seconds, 2),
            "evidence": "per cluster: aerospike_ako_aerospikecluster_phase of the new process has a series with value 1",
            "reconciles_until_quiet": self.reconciles,
            "operator_requests": self.op.json(),
            "operator_resource_requests_by_verb_all_clients": self.by_verb.by_verb_json(),
            "writes_by_verb_all_clients": writes,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "cpu_seconds": round(self.cpu_seconds, 2),
        })
    }
}

// -----------------------------------------------------------------------------------------------------------------
// Rollout: ours.

pub(super) struct Rollout {
    pub(super) seconds: f64,
    pub(super) patch_seconds: f64,
    pub(super) pods: usize,
    pub(super) reconciles: f64,
    pub(super) op: OpRequests,
}

/// Pods labelled as Aerospike pods, in namespaces `keep` accepts: (total, on `image` and Ready, not terminating).
async fn pods_on_image(client: &Client, image: &str, keep: impl Fn(&str) -> bool) -> Result<(usize, usize)> {
    let api: Api<Pod> = Api::all(client.clone());
    let list = api.list(&ListParams::default().labels(&format!("{LABEL_APP}={APP_NAME}"))).await?;
    let mut total = 0;
    let mut done = 0;
    for p in list.items.iter().filter(|p| keep(&p.namespace().unwrap_or_default())) {
        total += 1;
        let on_image = p
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == SERVER_CONTAINER_NAME))
            .and_then(|c| c.image.as_deref())
            == Some(image);
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if on_image && ready && p.metadata.deletion_timestamp.is_none() {
            done += 1;
        }
    }
    Ok((total, done))
}

/// Waits until `expected` pods in the namespaces `keep` accepts run `image` and are Ready; seconds after `t0`.
async fn wait_pods_on_image(
    client: &Client,
    image: &str,
    expected: usize,
    keep: impl Fn(&str) -> bool + Copy,
    t0: Instant,
    limit: Duration,
) -> Result<f64> {
    let every = poll_interval(expected);
    loop {
        let (total, done) = pods_on_image(client, image, keep).await?;
        if done >= expected && total == expected {
            return Ok(t0.elapsed().as_secs_f64());
        }
        if t0.elapsed() >= limit {
            bail!("{done} of {expected} pods on {image} and Ready within {limit:?} ({total} pods in all)");
        }
        tokio::time::sleep(every).await;
    }
}

/// Changes every cluster's `spec.image` at once (merge patches as admin, the create concurrency in flight) and
/// waits until every cluster is Completed for its new generation and every pod runs the new image, Ready.
pub(super) async fn rollout_ours(
    client: &Client,
    op: &mut Operator,
    names: &[(String, String)],
    pods: usize,
    limit: Duration,
) -> Result<Rollout> {
    let before_op = operator_metrics(op.metrics).await?;
    let before = ApiMetrics::fetch(client).await?;
    let t0 = Instant::now();
    futures::stream::iter(names.iter().cloned())
        .map(|(ns, name)| {
            let client = client.clone();
            async move {
                let patch = json!({"spec": {"image": ROLLOUT_IMAGE}});
                Api::<AerospikeCluster>::namespaced(client, &ns)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .with_context(|| format!("changing the image of {ns}/{name}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let patch_seconds = t0.elapsed().as_secs_f64();
    // Every patch has landed, so a cluster Completed for its generation has seen the new image.
    wait_all_completed(client, op, names, t0, limit).await?;
    let seconds =
        wait_pods_on_image(client, ROLLOUT_IMAGE, pods, |ns| !ns.starts_with(FLOOR_NS_PREFIX), t0, limit).await?;
    let after = ApiMetrics::fetch(client).await?;
    let after_op = operator_metrics(op.metrics).await?;
    Ok(Rollout {
        seconds,
        patch_seconds,
        pods,
        reconciles: after_op.reconciles - before_op.reconciles,
        op: after.operator().minus(&before.operator()),
    })
}

// -----------------------------------------------------------------------------------------------------------------
// Rollout: the floor.

pub(super) struct RolloutFloor {
    pub(super) seconds: f64,
    pub(super) stateful_sets: usize,
    pub(super) pods: usize,
}

/// The rollout floor on the API-server floor's replayed StatefulSets (OnDelete, as ours): each StatefulSet's
/// server image patched, then, once the StatefulSet controller has observed the new revision (else it could
/// recreate a pod from the old one), all its pods deleted at once; done when every pod was recreated on the new
/// image and is Ready. It bounds what the API server, the StatefulSet controller and the plane's pod lifecycle
/// take to replace the pods; it takes no care ours must (one pod at a time per rack, migrations in between).
pub(super) async fn rollout_floor(client: &Client, pods: usize, limit: Duration) -> Result<RolloutFloor> {
    use aerospike_kubernetes_operator::desired::{LABEL_MANAGED_BY, MANAGER_NAME};
    let api: Api<StatefulSet> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGER_NAME}"));
    let sets: Vec<StatefulSet> = api
        .list(&lp)
        .await?
        .items
        .into_iter()
        .filter(|s| s.namespace().unwrap_or_default().starts_with(FLOOR_NS_PREFIX))
        .collect();
    let stateful_sets = sets.len();
    let t0 = Instant::now();
    futures::stream::iter(sets)
        .map(|sts| {
            let client = client.clone();
            async move {
                let ns = sts.namespace().unwrap_or_default();
                let name = sts.name_any();
                let api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
                let patch = json!({"spec": {"template": {"spec": {"containers": [
                    {"name": SERVER_CONTAINER_NAME, "image": ROLLOUT_IMAGE}]}}}});
                let patched = api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch)).await?;
                let generation = patched.metadata.generation.unwrap_or(0);
                poll(&format!("StatefulSet {ns}/{name} observed"), limit, || async {
                    let s = api.get(&name).await.ok()?;
                    (s.status?.observed_generation.unwrap_or(0) >= generation).then_some(())
                })
                .await?;
                let selector = sts
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.match_labels.as_ref())
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
                    .unwrap_or_default();
                Api::<Pod>::namespaced(client, &ns)
                    .delete_collection(&DeleteParams::default(), &ListParams::default().labels(&selector))
                    .await
                    .with_context(|| format!("deleting the pods of {ns}/{name}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let seconds =
        wait_pods_on_image(client, ROLLOUT_IMAGE, pods, |ns| ns.starts_with(FLOOR_NS_PREFIX), t0, limit).await?;
    Ok(RolloutFloor { seconds, stateful_sets, pods })
}

/// How often to poll lists whose size grows with the clusters: every 500 ms up to 1000 objects, then 1 ms per two
/// objects up to 2 s, so the bench's own lists do not load the apiserver it measures.
pub(super) fn poll_interval(objects: usize) -> Duration {
    Duration::from_millis((objects as u64 / 2).clamp(500, 2000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_interval_grows_past_1000_objects_up_to_2_s() {
        assert_eq!(poll_interval(100), Duration::from_millis(500));
        assert_eq!(poll_interval(3000), Duration::from_millis(1500));
        assert_eq!(poll_interval(9000), Duration::from_millis(2000));
    }
}
