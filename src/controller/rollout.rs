//! StatefulSets and the one disruptive step a reconcile may take: a scale-down batch or a restart batch,
//! each only after every pod is Ready and the Aerospike nodes report a stable cluster with no migrations.
use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use serde_json::json;
use tracing::info;

use super::{apply, info_addr, pod_view, publish, publish_related, pvc_api, rack_targets, Context, Error, Outcome, BLOCKED_POLL, PROGRESS_POLL, RESYNC};
use crate::api::{AerospikeCluster, Phase};
use crate::build::{self, Desired};
use crate::info::safety::{self, QuiesceOptions, SafetyError};
use crate::info::{auth, InfoClient};
use std::time::Duration;
use crate::plan::{self, PodView, RestartStep};

fn in_progress(reason: &str, message: String) -> Outcome {
    Outcome { phase: Phase::InProgress, progressing: (true, reason.into(), message), degraded: None, requeue: PROGRESS_POLL }
}

fn blocked(reason: &str, message: String) -> Outcome {
    Outcome {
        phase: Phase::InProgress,
        progressing: (true, reason.into(), message.clone()),
        degraded: Some((reason.into(), message)),
        requeue: BLOCKED_POLL,
    }
}

/// A scale-down in waiting: the StatefulSet, its current and target replicas.
struct Shrink {
    sts: String,
    rack_id: i32,
    current: i32,
    target: i32,
    /// The desired StatefulSet (None for a rack that was removed from the spec).
    desired: Option<StatefulSet>,
}

pub(super) async fn step(
    cluster: &AerospikeCluster,
    ctx: &Arc<Context>,
    desired: &Desired,
    pods: &[Arc<Pod>],
) -> Result<Outcome, Error> {
    let name = cluster.name_any();
    let ns = cluster.namespace().ok_or(Error::NoNamespace)?;
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let rack_config = cluster.spec.rack_config();

    // 1. StatefulSets: create and scale up at once; scale-down waits for the safety checks below.
    let mut shrinks = Vec::new();
    // Racks whose StatefulSet controller may still work from an older template (see `template_observed`).
    let mut unobserved: Vec<i32> = Vec::new();
    for (rack, sts) in desired.racks.iter().zip(&desired.stateful_sets) {
        let existing = ctx.stores.stateful_sets.get(&ObjectRef::new(&rack.name).within(&ns));
        let current = existing.as_ref().and_then(|s| s.spec.as_ref()?.replicas).unwrap_or(0);
        let replicas = if existing.is_none() || rack.size >= current { rack.size } else { current };
        if replicas < current || (existing.is_some() && rack.size < current) {
            shrinks.push(Shrink { sts: rack.name.clone(), rack_id: rack.id, current, target: rack.size, desired: Some(sts.clone()) });
        }
        let mut sts = sts.clone();
        sts.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        // The hash `apply` stamps on it.
        if !template_observed(existing.as_deref(), &build::desired_hash(&sts)) {
            unobserved.push(rack.id);
        }
        if apply::apply(&sts_api, &ctx.stores.stateful_sets, sts).await? && existing.as_ref().is_some_and(|_| replicas > current) {
            publish(ctx, cluster, EventType::Normal, "ScaledUp", "Scale", &format!("rack {}: {} -> {} pods", rack.id, current, replicas)).await;
        }
    }
    // Racks removed from the spec: drain to zero in batches, then delete their StatefulSet and ConfigMap.
    let wanted: Vec<&str> = desired.racks.iter().map(|r| r.name.as_str()).collect();
    for sts in ctx.stores.stateful_sets.state() {
        if sts.namespace().as_deref() != Some(ns.as_str())
            || sts.labels().get(build::LABEL_CR) != Some(&name)
            || wanted.contains(&sts.name_any().as_str())
        {
            continue;
        }
        let current = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let rack_id = sts.labels().get(build::LABEL_RACK).and_then(|r| r.parse().ok()).unwrap_or(-1);
        let has_pods = pods.iter().any(|p| pod_view(p).is_some_and(|v| v.rack_id == rack_id));
        if current > 0 {
            shrinks.push(Shrink { sts: sts.name_any(), rack_id, current, target: 0, desired: None });
        } else if !has_pods {
            apply::delete(&sts_api, &sts.name_any()).await?;
            let cm_api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
            apply::delete(&cm_api, &sts.name_any()).await?;
            publish(ctx, cluster, EventType::Normal, "RackRemoved", "Delete", &format!("rack {rack_id} removed")).await;
        }
    }

    let views: Vec<PodView> = pods.iter().filter_map(|p| pod_view(p)).collect();
    let not_ready: Vec<&str> = views.iter().filter(|v| !v.ready || v.terminating).map(|v| v.name.as_str()).collect();
    let port_of = |rack_id: i32| {
        desired.racks.iter().find(|r| r.id == rack_id).map(|r| crate::conf::service_port(&r.config)).unwrap_or(3000)
    };
    let addr_of = |p: &Pod| pod_view(p).and_then(|v| info_addr(p, port_of(v.rack_id)));

    // 2. Scale down one batch.
    if let Some(shrink) = shrinks.first() {
        if !not_ready.is_empty() {
            return Ok(in_progress("WaitingForPods", format!("waiting for pods to be ready: {}", not_ready.join(", "))));
        }
        let sd = plan::next_scale_down(shrink.current, shrink.target, rack_config.scale_down_batch_size.as_ref())
            .expect("a shrink has current > target");
        let removed_names: Vec<String> = sd.removed.iter().map(|o| format!("{}-{}", shrink.sts, o)).collect();
        let all: Vec<SocketAddr> = pods.iter().filter_map(|p| addr_of(p)).collect();
        let batch: Vec<SocketAddr> =
            pods.iter().filter(|p| removed_names.contains(&p.name_any())).filter_map(|p| addr_of(p)).collect();
        let info = match info_client(cluster, ctx, &ns).await {
            Ok(info) => info,
            Err(msg) => return Ok(blocked("AdminCredentialsUnavailable", msg)),
        };
        if let Err(e) = safe_to_disrupt(info.as_ref(), &all, views.len(), &batch).await {
            return Ok(block(ctx, cluster, "ScaleDownBlocked", &e).await);
        }
        match &shrink.desired {
            Some(sts) => {
                let mut sts = sts.clone();
                sts.spec.get_or_insert_with(Default::default).replicas = Some(sd.replicas);
                apply::apply(&sts_api, &ctx.stores.stateful_sets, sts).await?;
            }
            None => {
                let patch = json!({"spec": {"replicas": sd.replicas}});
                sts_api.patch(&shrink.sts, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            }
        }
        let msg = format!("rack {}: {} -> {} pods (removing {})", shrink.rack_id, shrink.current, sd.replicas, removed_names.join(", "));
        info!(cluster = %name, "{msg}");
        publish(ctx, cluster, EventType::Normal, "ScaledDown", "Scale", &msg).await;
        return Ok(in_progress("ScalingDown", msg));
    }

    // 3. Rolling restart, one batch.
    let targets = rack_targets(cluster, desired);
    let max_unavailable = cluster.spec.max_unavailable();
    match plan::next_restart(&targets, &views, rack_config.rolling_update_batch_size.as_ref(), &max_unavailable) {
        RestartStep::WaitForReady { not_ready } => {
            Ok(in_progress("WaitingForPods", format!("waiting for pods to be ready: {}", not_ready.join(", "))))
        }
        RestartStep::Restart { rack_id, pods: batch } => {
            if unobserved.contains(&rack_id) {
                // A pod deleted now could be recreated from the previous template, and need a second restart.
                return Ok(in_progress(
                    "WaitingForStatefulSet",
                    format!("waiting for the StatefulSet controller to observe the new template of rack {rack_id}"),
                ));
            }
            let all: Vec<SocketAddr> = pods.iter().filter_map(|p| addr_of(p)).collect();
            let names: Vec<&str> = batch.iter().map(|(n, _)| n.as_str()).collect();
            let batch_addrs: Vec<SocketAddr> =
                pods.iter().filter(|p| names.contains(&p.name_any().as_str())).filter_map(|p| addr_of(p)).collect();
            let info = match info_client(cluster, ctx, &ns).await {
                Ok(info) => info,
                Err(msg) => return Ok(blocked("AdminCredentialsUnavailable", msg)),
            };
            if let Err(e) = safe_to_disrupt(info.as_ref(), &all, views.len(), &batch_addrs).await {
                return Ok(block(ctx, cluster, "RollingRestartBlocked", &e).await);
            }
            let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            for (pod, reason) in &batch {
                // Only the incarnation that was checked: the cache may lag behind (e.g. after an API server
                // restart), and the name may already belong to a pod recreated since.
                let uid = pods.iter().find(|p| p.name_any() == *pod).and_then(|p| p.uid());
                let deleted = match &uid {
                    Some(uid) => apply::delete_incarnation(&pod_api, pod, uid).await?,
                    None => apply::delete(&pod_api, pod).await.map(|()| true)?,
                };
                if !deleted {
                    return Ok(in_progress("RollingRestart", format!("{pod} was replaced since it was checked; re-examining")));
                }
                info!(cluster = %name, pod = %pod, uid = ?uid, reason = reason.as_str(), "pod restarted");
                ctx.metrics.restarts.inc();
                let related = pods.iter().find(|p| p.name_any() == *pod).map(|p| kube::Resource::object_ref(p.as_ref(), &()));
                let note = format!("restarting {pod} in rack {rack_id}: {}", reason.as_str());
                publish_related(ctx, cluster, related, EventType::Normal, "PodRestarted", "RollingRestart", &note).await;
            }
            Ok(in_progress("RollingRestart", format!("restarting {}", names.join(", "))))
        }
        RestartStep::Done => {
            let expected: i32 = desired.racks.iter().map(|r| r.size).sum();
            if views.len() as i32 != expected || !not_ready.is_empty() {
                return Ok(in_progress(
                    "WaitingForPods",
                    format!("{} of {} pods exist, not ready: [{}]", views.len(), expected, not_ready.join(", ")),
                ));
            }
            let was_completed = cluster.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed)
                && cluster.status.as_ref().and_then(|s| s.observed_generation) == cluster.metadata.generation;
            if !was_completed {
                // A rollout just finished: lift any quiesce left by an interrupted batch, drop PVCs of
                // removed pods where the policy says so.
                let all: Vec<SocketAddr> = pods.iter().filter_map(|p| addr_of(p)).collect();
                if all.len() > 1 {
                    let info = match info_client(cluster, ctx, &ns).await {
                        Ok(info) => info,
                        Err(msg) => return Ok(blocked("AdminCredentialsUnavailable", msg)),
                    };
                    if let Err(e) = safety::undo_quiesce(info.as_ref(), &all).await {
                        return Ok(block(ctx, cluster, "QuiesceUndoFailed", &e).await);
                    }
                }
                delete_cascading_pvcs(cluster, ctx, Some(desired)).await?;
            }
            Ok(Outcome {
                phase: Phase::Completed,
                progressing: (false, "Completed".into(), format!("{expected} pods run the desired spec")),
                degraded: None,
                requeue: RESYNC,
            })
        }
    }
}

/// Whether the StatefulSet controller works from the template we apply: the cached StatefulSet carries the
/// desired hash `hash` and its status has observed that generation. Until then, a pod deleted for a restart may be
/// recreated from the previous template (the controller's own cache can lag, e.g. after an API server restart).
fn template_observed(sts: Option<&StatefulSet>, hash: &str) -> bool {
    let Some(sts) = sts else { return false };
    let stamped = sts.annotations().get(apply::ANNOTATION_DESIRED_HASH).map(String::as_str) == Some(hash);
    let observed = sts.status.as_ref().and_then(|s| s.observed_generation);
    stamped && observed.is_some() && observed >= sts.metadata.generation
}

/// Every node answers, the cluster is stable with no migrations, then the batch is quiesced.
/// The info client for `cluster`. With security enabled it logs in as `admin`: with the password in the admin
/// user's Secret first, then with the default one, which a server keeps until access control changes it.
async fn info_client(cluster: &AerospikeCluster, ctx: &Context, ns: &str) -> Result<Arc<dyn InfoClient>, String> {
    if !cluster.spec.security_enabled() {
        return Ok(ctx.info.clone());
    }
    let mut passwords = Vec::new();
    let admin = cluster
        .spec
        .aerospike_access_control
        .as_ref()
        .and_then(|ac| ac.users.iter().find(|u| u.name == auth::DEFAULT_ADMIN_USER));
    if let Some(user) = admin {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
        let what = format!("Secret {ns}/{} (password of user admin in spec.aerospikeAccessControl)", user.secret_name);
        let secret = secrets
            .get_opt(&user.secret_name)
            .await
            .map_err(|e| format!("reading the {what}: {e}"))?
            .ok_or_else(|| format!("the {what} does not exist"))?;
        let password = secret
            .data
            .and_then(|d| d.get("password").cloned())
            .ok_or_else(|| format!("the {what} has no key `password`"))?;
        passwords.push(String::from_utf8(password.0).map_err(|_| format!("the {what}: `password` is not UTF-8"))?);
    }
    if !passwords.iter().any(|p| p == auth::DEFAULT_ADMIN_PASSWORD) {
        passwords.push(auth::DEFAULT_ADMIN_PASSWORD.to_string());
    }
    // bcrypt costs tens of milliseconds the first time for each password: off the async workers.
    let logins = tokio::task::spawn_blocking(move || {
        passwords.iter().map(|p| auth::credentials(auth::DEFAULT_ADMIN_USER, p)).collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| format!("computing the login credential: {e}"))?
    .map_err(|e| format!("the admin password: {e}"))?;
    Ok(ctx.info.with_logins(logins).unwrap_or_else(|| ctx.info.clone()))
}

async fn safe_to_disrupt(
    info: &dyn InfoClient,
    all: &[SocketAddr],
    expected: usize,
    batch: &[SocketAddr],
) -> Result<(), SafetyError> {
    safety::check_cluster_stable(info, all, expected).await?;
    if all.len() > 1 && !batch.is_empty() && batch.len() < all.len() {
        // Short, bounded polls: if the quiesce is not effective yet we return and requeue; repeating it is
        // harmless (quiesce is idempotent), and the reconcile never parks for long.
        let options = QuiesceOptions { poll_interval: Duration::from_millis(200), attempts: 10 };
        safety::quiesce_batch_with(info, all, batch, options).await?;
    }
    Ok(())
}

/// Report a refused disruptive step: the condition names the step (`reason`), the Event names the cause, so
/// that different causes are not folded into one Event series.
async fn block(ctx: &Context, cluster: &AerospikeCluster, reason: &str, e: &SafetyError) -> Outcome {
    let msg = format!("no pod was touched: {e}");
    publish(ctx, cluster, EventType::Warning, safety_reason(e), reason, &msg).await;
    blocked(reason, msg)
}

fn safety_reason(e: &SafetyError) -> &'static str {
    use crate::info::InfoErrorKind;
    match e {
        SafetyError::Unreachable { cause, .. } | SafetyError::Failed { cause, .. }
            if matches!(cause.kind, InfoErrorKind::LoginRefused(_)) =>
        {
            "LoginRefused"
        }
        SafetyError::Unreachable { .. } => "NodeUnreachable",
        SafetyError::MigrationsPending { .. } | SafetyError::MigrationsNotAllowed { .. } => "MigrationsPending",
        SafetyError::QuiesceNotPending { .. } | SafetyError::QuiesceNotEffective { .. } | SafetyError::NoPrincipal { .. } => {
            "QuiesceFailed"
        }
        _ => "ClusterNotStable",
    }
}

/// Delete PVCs whose volume policy says cascadeDelete: all of the cluster's (`desired` None, on deletion),
/// or those of pods beyond their rack's size (after a scale-down).
pub(super) async fn delete_cascading_pvcs(
    cluster: &AerospikeCluster,
    ctx: &Context,
    desired: Option<&Desired>,
) -> Result<usize, Error> {
    let name = cluster.name_any();
    let ns = cluster.namespace().ok_or(Error::NoNamespace)?;
    let storage = cluster.spec.storage();
    let mut cascading: Vec<String> = Vec::new();
    let mut all_volumes = storage.volumes.clone();
    for rack in cluster.spec.rack_config().racks {
        if let Some(s) = rack.storage {
            all_volumes.extend(s.volumes);
        }
    }
    for v in &all_volumes {
        if v.source.persistent_volume.is_some() && v.effective_policy(&storage).cascade_delete {
            cascading.push(v.name.clone());
        }
    }
    if cascading.is_empty() {
        return Ok(0);
    }
    let api = pvc_api(ctx, &ns);
    let pvcs = api.list(&ListParams::default().labels(&format!("{}={}", build::LABEL_CR, name))).await?;
    let mut deleted = 0;
    for pvc in pvcs {
        let pvc_name = pvc.name_any();
        let Some(volume) = cascading.iter().find(|v| pvc_name.starts_with(&format!("{v}-{name}-"))) else { continue };
        if let Some(desired) = desired {
            // `<volume>-<sts>-<ordinal>`: keep it while its ordinal is within the rack's size.
            let rest = &pvc_name[volume.len() + 1..];
            let Some((sts, ordinal)) = rest.rsplit_once('-') else { continue };
            let Ok(ordinal) = ordinal.parse::<i32>() else { continue };
            if desired.racks.iter().any(|r| r.name == sts && ordinal < r.size) {
                continue;
            }
            if ctx.stores.pods.get(&ObjectRef::new(&format!("{sts}-{ordinal}")).within(&ns)).is_some() {
                continue;
            }
        }
        apply::delete(&api, &pvc_name).await?;
        deleted += 1;
    }
    Ok(deleted)
}
