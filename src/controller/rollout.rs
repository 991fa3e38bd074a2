//! StatefulSets and the one disruptive step a reconcile may take: a scale-down batch or a restart batch,
//! each only after every pod is Ready and the Aerospike nodes report a stable cluster with no migrations.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tracing::info;

use super::cached_pod::CachedPod;
use super::dynamic::{InPlaceChange, PodResult};
use super::roster::{StrongConsistency, forget_removed};
use super::{
    BLOCKED_POLL, Context, Error, Outcome, PROGRESS_POLL, RESYNC, Verdict, apply, info_addr, pod_view, publish,
    publish_related, pvc_api, rack_targets,
};
use crate::api::{AerospikeCluster, Phase, StorageSpec};
use crate::asinfo::safety::{self, QuiesceOptions, SafetyError};
use crate::asinfo::{Credentials, InfoClient, TlsClient, auth};
use crate::desired::{self, Desired};
use crate::plan::{self, PodView};
use std::time::Duration;

pub(super) fn in_progress(reason: &str, message: String) -> Outcome {
    Outcome {
        phase: Phase::InProgress,
        progressing: Verdict::new(true, reason, message),
        degraded: None,
        requeue: PROGRESS_POLL,
        operation_restarts: Vec::new(),
        endpoints: BTreeMap::new(),
        volumes: BTreeMap::new(),
        pod_network: BTreeMap::new(),
    }
}

fn blocked(reason: &str, message: String) -> Outcome {
    Outcome {
        phase: Phase::InProgress,
        progressing: Verdict::new(true, reason, message.clone()),
        degraded: Some(Verdict::new(true, reason, message)),
        requeue: BLOCKED_POLL,
        operation_restarts: Vec::new(),
        endpoints: BTreeMap::new(),
        volumes: BTreeMap::new(),
        pod_network: BTreeMap::new(),
    }
}

/// One reconcile's rollout: apply the StatefulSets (creation and scale-up at once), gather what the pods and
/// StatefulSets look like, let the pure [`plan::next_step`] decide, then carry out that one step (after the data-plane
/// safety checks where it disrupts anything).
pub(super) async fn step(
    cluster: &AerospikeCluster,
    ctx: &Arc<Context>,
    desired: &Desired,
    in_place: &BTreeMap<i32, InPlaceChange>,
    removed: &super::volume_init::Removed,
    pods: &[Arc<CachedPod>],
) -> Result<Outcome, Error> {
    let name = cluster.name_any();
    let ns = cluster.namespace().ok_or(Error::NoNamespace)?;
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let rack_config = cluster.spec.rack_config();

    // 0. TLS to the nodes: the certificates are read first, so a missing Secret or key stops the reconcile before
    // anything is changed.
    let endpoint_of =
        |rack_id: i32| desired.racks.iter().find(|r| r.id == rack_id).map(|r| super::tls::endpoint(cluster, &r.config));
    let tls_name = desired.racks.iter().find_map(|r| match super::tls::endpoint(cluster, &r.config) {
        crate::aerospike_conf::ServiceEndpoint::Tls { name, .. } => Some(name),
        crate::aerospike_conf::ServiceEndpoint::Plain(_) => None,
    });
    let tls = match &tls_name {
        Some(name) => match super::tls::client(cluster, ctx, &ns, name).await {
            Ok(t) => Some(t),
            Err(msg) => return Ok(blocked(super::tls::REASON, msg)),
        },
        None => None,
    };

    // 1. StatefulSets: create and scale up at once; a scale-down is a step of its own, decided below.
    let mut sets: Vec<plan::RackSet> = Vec::new();
    for (rack, sts) in desired.racks.iter().zip(&desired.stateful_sets) {
        let existing = ctx.stores.stateful_sets.get(&ObjectRef::new(&rack.name).within(&ns));
        let current = existing.as_ref().and_then(|s| s.spec.as_ref()?.replicas).unwrap_or(0);
        let replicas = if existing.is_none() || rack.size >= current { rack.size } else { current };
        let mut sts = sts.clone();
        sts.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        // A persistent volume added to the rack: the StatefulSet is recreated with its claim template (pods kept);
        // the pods then differ from the new template and restart onto it, batch by batch, rack by rack.
        if let Some(existing) = existing.as_deref() {
            let added = super::volumes::added_templates(existing, &sts);
            if !added.is_empty() {
                super::volumes::delete_orphaning(&sts_api, &rack.name).await?;
                let note = format!(
                    "rack {}: persistent volume(s) {} added; StatefulSet {} recreated with them, pods kept (they restart \
                     onto them one batch at a time)",
                    rack.id,
                    added.join(", "),
                    rack.name
                );
                publish(ctx, cluster, EventType::Normal, "VolumesAdded", "Update", &note).await;
                return Ok(in_progress("RecreatingStatefulSet", note));
            }
        }
        // A persistent volume that grew: its claims first, then the StatefulSet is recreated with it.
        if let Some(existing) = existing.as_deref() {
            let grown = super::volumes::grown_templates(existing, &sts);
            if !grown.is_empty() {
                let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
                let block = super::volumes::block_templates(&sts);
                let step = super::volumes::expand(
                    &pvc_api(ctx, &ns),
                    &sts_api,
                    &pod_api,
                    super::volumes::Rack { cluster: &name, id: rack.id, stateful_set: &rack.name },
                    &grown,
                    &block,
                )
                .await?;
                let sizes: Vec<String> = grown.iter().map(|(v, s)| format!("{v} to {s}")).collect();
                return Ok(match step {
                    super::volumes::Expansion::Growing(claims) => in_progress(
                        "ExpandingVolumes",
                        format!("rack {}: growing {}; waiting for {}", rack.id, sizes.join(", "), claims.join(", ")),
                    ),
                    super::volumes::Expansion::Refused(msg) => {
                        publish(ctx, cluster, EventType::Warning, "VolumeExpansionFailed", "Expand", &msg).await;
                        blocked("VolumeExpansionFailed", msg)
                    }
                    super::volumes::Expansion::Recreating => {
                        let note = format!(
                            "rack {}: claims grown ({}); StatefulSet {} recreated with them, pods kept",
                            rack.id,
                            sizes.join(", "),
                            rack.name
                        );
                        publish(ctx, cluster, EventType::Normal, "VolumesExpanded", "Expand", &note).await;
                        in_progress("RecreatingStatefulSet", note)
                    }
                });
            }
        }
        // The hash `apply` stamps on it.
        let template_observed = template_observed(existing.as_deref(), &desired::desired_hash(&sts));
        sets.push(plan::RackSet {
            name: rack.name.clone(),
            rack_id: rack.id,
            desired: Some(rack.size),
            replicas,
            template_observed,
        });
        if apply::apply(&sts_api, &ctx.stores.stateful_sets, sts).await?
            && existing.as_ref().is_some_and(|_| replicas > current)
        {
            let note = format!("rack {}: {} -> {} pods", rack.id, current, replicas);
            publish(ctx, cluster, EventType::Normal, "ScaledUp", "Scale", &note).await;
        }
    }
    // Racks removed from the spec: drained to zero in batches (below), then their StatefulSet and ConfigMap go.
    let wanted: Vec<&str> = desired.racks.iter().map(|r| r.name.as_str()).collect();
    for sts in ctx.stores.cluster_stateful_sets(&ns, &name) {
        if wanted.contains(&sts.name_any().as_str()) {
            continue;
        }
        let current = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let rack_id = sts.labels().get(desired::LABEL_RACK).and_then(|r| r.parse().ok()).unwrap_or(-1);
        let has_pods = pods.iter().any(|p| {
            pod_view(p, cluster.spec.ignore_sidecar_failure == Some(true)).is_some_and(|v| v.rack_id == rack_id)
        });
        sets.push(plan::RackSet {
            name: sts.name_any(),
            rack_id,
            desired: None,
            replicas: current,
            template_observed: true,
        });
        if current == 0 && !has_pods {
            apply::delete(&sts_api, &sts.name_any()).await?;
            let cm_api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
            apply::delete(&cm_api, &sts.name_any()).await?;
            publish(ctx, cluster, EventType::Normal, "RackRemoved", "Delete", &format!("rack {rack_id} removed")).await;
        }
    }

    // 2. Decide.
    let mut views: Vec<PodView> =
        pods.iter().filter_map(|p| pod_view(p, cluster.spec.ignore_sidecar_failure == Some(true))).collect();
    // spec.operations: the pods the operation under way still has to restart.
    let names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
    let status_ops = cluster.status.as_ref().map(|s| s.operations.as_slice()).unwrap_or_default();
    if let Some((op, left)) = crate::operations::pending(&cluster.spec.operations, status_ops, &names) {
        for v in views.iter_mut().filter(|v| left.contains(&v.name)) {
            v.operation = Some(format!("{} {}", op.kind, op.id));
        }
    }
    // Pods that must leave their node: on a node of spec.k8sNodeBlockList, or evicted (recorded by the eviction
    // webhook) from a node that is cordoned now. Only the nodes of evicted pods are read.
    let cordoned = cordoned_nodes(ctx, pods).await;
    for v in views.iter_mut() {
        let Some(pod) = pods.iter().find(|p| p.name_any() == v.name) else { continue };
        let node = super::pods::node_name(pod);
        v.leave_node = plan::leave_node(
            node,
            &cluster.spec.k8s_node_block_list,
            super::pods::eviction_requested(pod),
            node.is_some_and(|n| cordoned.contains(n)),
        );
    }
    let from: BTreeMap<i32, String> = in_place.iter().map(|(id, c)| (*id, c.from_hash.clone())).collect();
    let mut targets = rack_targets(cluster, desired, &from);
    // A rack whose StatefulSet has claim templates some of its pods lack restarts from the bottom (see
    // `plan::RackTarget::ascending`).
    for (target, (rack, sts)) in targets.iter_mut().zip(desired.racks.iter().zip(&desired.stateful_sets)) {
        let templates: Vec<&str> = sts
            .spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|t| t.metadata.name.as_deref())
            .collect();
        target.ascending = pods.iter().filter(|p| super::of_rack(p, &rack.name)).any(|p| {
            let volumes = p.spec.as_ref().and_then(|s| s.volumes.as_ref());
            templates.iter().any(|t| !volumes.into_iter().flatten().any(|v| v.name == *t))
        });
    }
    let max_unavailable = cluster.spec.max_unavailable();
    let rollout = plan::Rollout {
        sets: &sets,
        pods: &views,
        targets: &targets,
        rolling_update_batch_size: rack_config.rolling_update_batch_size.as_ref(),
        scale_down_batch_size: rack_config.scale_down_batch_size.as_ref(),
        max_unavailable: &max_unavailable,
        max_ignorable_pods: rack_config.max_ignorable_pods.as_ref(),
    };
    let next = plan::next_step(&rollout);
    // Failed pods within maxIgnorablePods: not asked, not counted by the safety checks (their node is down).
    let ignored = plan::ignorable_pods(&rollout);
    let missing_for = note_missing(
        ctx,
        cluster,
        &ns,
        &plan::missing_pods(&sets.iter().map(|s| (s.name.clone(), s.replicas)).collect::<Vec<_>>(), &views),
    );

    // 3. Act. The size the safety checks hold the Aerospike cluster to is what the StatefulSets run, never merely the
    // pods that happen to exist (a pod that never came back would make a smaller cluster look healthy).
    let expected_size = plan::expected_size(&sets).saturating_sub(ignored.len());
    let port_of = |rack_id: i32| endpoint_of(rack_id).map_or(3000, |e| e.port());
    let addr_of = |p: &CachedPod| {
        pod_view(p, cluster.spec.ignore_sidecar_failure == Some(true)).and_then(|v| info_addr(p, port_of(v.rack_id)))
    };
    let all: Vec<SocketAddr> =
        pods.iter().filter(|p| !ignored.contains(&p.name_any())).filter_map(|p| addr_of(p)).collect();
    let answered = ctx.answered.lock().unwrap_or_else(|e| e.into_inner()).get(&format!("{ns}/{name}")).cloned();
    let starting = starting_nodes(
        pods.iter().map(|p| (p.as_ref(), addr_of(p))),
        answered.as_deref().unwrap_or_default(),
        k8s_openapi::jiff::Timestamp::now(),
    );
    // After a check every node passed: these pods' nodes run.
    let all_answered = || {
        let uids = pods.iter().filter(|p| addr_of(p).is_some_and(|a| all.contains(&a))).filter_map(|p| p.uid());
        ctx.answered.lock().unwrap_or_else(|e| e.into_inner()).insert(format!("{ns}/{name}"), uids.collect());
    };
    let addrs_of = |names: &[&str]| -> Vec<SocketAddr> {
        pods.iter().filter(|p| names.contains(&p.name_any().as_str())).filter_map(|p| addr_of(p)).collect()
    };
    let sc = StrongConsistency::of(cluster, desired);
    if let Some(outcome) = after_scale_down(ctx, cluster, &sts_api, &views, &next, &all, &sc, tls.as_ref()).await? {
        return Ok(outcome);
    }
    match next {
        plan::Next::WaitForPods { not_ready } => {
            Ok(in_progress("WaitingForPods", format!("waiting for pods to be ready: {}", not_ready.join(", "))))
        }
        plan::Next::PodsMissing { missing } => Ok(missing_outcome(ctx, cluster, &missing, missing_for).await),
        plan::Next::WaitForTemplate { rack_id } => {
            // A pod deleted now could be recreated from the previous template, and need a second restart.
            Ok(in_progress(
                "WaitingForStatefulSet",
                format!("waiting for the StatefulSet controller to observe the new template of rack {rack_id}"),
            ))
        }
        plan::Next::ScaleDown { stateful_set, rack_id, from, replicas, removed, rack_removed } => {
            let names: Vec<&str> = removed.iter().map(String::as_str).collect();
            let info = match info_client(cluster, ctx, &ns, tls.as_ref()).await {
                Ok(info) => info,
                Err(msg) => return Ok(blocked("AdminCredentialsUnavailable", msg)),
            };
            // Two passes: quiesce the removed nodes (which starts migrating their partitions away), and only once
            // they are effectively quiesced and no migration is left anywhere, lower the replicas. Removing a node
            // earlier would lose the partitions it still holds alone (replication factor 1, or a second failure).
            match removed_ready_to_leave(info.as_ref(), &all, expected_size, &addrs_of(&names), &sc).await {
                Ok(None) => {}
                Ok(Some(state)) => {
                    return Ok(in_progress(
                        "WaitingForMigrations",
                        format!("removing {}: {state}; they leave once their data has migrated", names.join(", ")),
                    ));
                }
                Err(e) => return Ok(block(ctx, cluster, "ScaleDownBlocked", &e, &starting).await),
            }
            let own = desired.racks.iter().zip(&desired.stateful_sets).find(|(r, _)| r.name == stateful_set);
            match own.filter(|_| !rack_removed) {
                Some((_, sts)) => {
                    let mut sts = sts.clone();
                    sts.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
                    apply::apply(&sts_api, &ctx.stores.stateful_sets, sts).await?;
                }
                None => {
                    let patch = json!({"spec": {"replicas": replicas}});
                    sts_api.patch(&stateful_set, &PatchParams::default(), &Patch::Merge(&patch)).await?;
                }
            }
            if !sc.namespaces.is_empty() {
                let record = ScaleDownRecord {
                    stateful_set: stateful_set.clone(),
                    from,
                    to: replicas,
                    generation: cluster.metadata.generation,
                    rolled_back: None,
                };
                ctx.scale_downs.lock().unwrap_or_else(|e| e.into_inner()).insert(format!("{ns}/{name}"), record);
            }
            let msg = format!("rack {rack_id}: {from} -> {replicas} pods (removing {})", names.join(", "));
            info!(cluster = %name, "{msg}");
            publish(ctx, cluster, EventType::Normal, "ScaledDown", "Scale", &msg).await;
            // The nodes that stay forget the removed ones (heartbeat tip list, alumni), as the reference does;
            // best effort: a failure only leaves the server retrying a gone seed.
            let removed_addrs = addrs_of(&names);
            let staying: Vec<SocketAddr> = all.iter().copied().filter(|a| !removed_addrs.contains(a)).collect();
            let config = desired.racks.iter().find(|r| r.id == rack_id).or(desired.racks.first()).map(|r| &r.config);
            let ports: Vec<u16> = config
                .map(|c| {
                    [crate::aerospike_conf::heartbeat_port(c), crate::aerospike_conf::heartbeat_tls_port(c)]
                        .into_iter()
                        .flatten()
                        .collect()
                })
                .unwrap_or_default();
            let hosts: Vec<String> = names
                .iter()
                .flat_map(|pod| ports.iter().map(move |port| (pod, port)))
                .map(|(pod, port)| format!("{}:{port}", desired::pod_fqdn(pod, &name, &ns)))
                .collect();
            forget_removed(info.as_ref(), &staying, &hosts).await;
            Ok(in_progress("ScalingDown", msg))
        }
        plan::Next::UpdateInPlace { pods: names } => {
            let info = match info_client(cluster, ctx, &ns, tls.as_ref()).await {
                Ok(info) => info,
                Err(msg) => return Ok(blocked("AdminCredentialsUnavailable", msg)),
            };
            let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let mut updated = Vec::new();
            let mut refused = Vec::new();
            for pod_name in &names {
                let Some(pod) = pods.iter().find(|p| p.name_any() == *pod_name) else { continue };
                let Some(view) = pod_view(pod, cluster.spec.ignore_sidecar_failure == Some(true)) else { continue };
                let (Some(change), Some(addr)) = (in_place.get(&view.rack_id), addr_of(pod)) else { continue };
                let result = match super::dynamic::update_node(info.as_ref(), addr, change).await {
                    Ok(r) => r,
                    // Not answering is no refusal: retried on the next reconcile, nothing restarted for it.
                    Err(e) => {
                        return Ok(blocked("DynamicConfigUpdatePending", format!("updating {pod_name} in place: {e}")));
                    }
                };
                super::dynamic::record(&pod_api, pod, change, &result).await?;
                let related = Some(kube::Resource::object_ref(pod.as_ref(), &()));
                match result {
                    PodResult::Updated => {
                        let keys: Vec<&str> = change.updates.iter().map(|u| u.path.as_str()).collect();
                        let note = format!("{pod_name}: {} changed at run time, no restart", keys.join(", "));
                        info!(cluster = %name, pod = %pod_name, "{note}");
                        publish_related(
                            ctx,
                            cluster,
                            related,
                            EventType::Normal,
                            "DynamicConfigUpdated",
                            "Configure",
                            &note,
                        )
                        .await;
                        updated.push(pod_name.as_str());
                    }
                    PodResult::Refused { detail, .. } => {
                        let note =
                            format!("{pod_name} refused a dynamic config change ({detail}): it is restarted instead");
                        publish_related(
                            ctx,
                            cluster,
                            related,
                            EventType::Warning,
                            "DynamicConfigUpdateFailed",
                            "Configure",
                            &note,
                        )
                        .await;
                        refused.push(pod_name.as_str());
                    }
                }
            }
            // replication-factor and active-rack take effect with a recluster, once the nodes have the new value.
            let recluster = in_place.values().any(|c| {
                c.updates.iter().any(|u| crate::aerospike_conf::dynamic::RECLUSTER_KEYS.contains(&u.key.as_str()))
            });
            if recluster
                && refused.is_empty()
                && let Err(e) = safety::recluster_all(info.as_ref(), &all).await
            {
                return Ok(block(ctx, cluster, "ReclusterFailed", &e, &starting).await);
            }
            let mut msg = format!("config changed at run time on [{}]", updated.join(", "));
            if !refused.is_empty() {
                msg.push_str(&format!("; refused by [{}], restarted next", refused.join(", ")));
            }
            Ok(in_progress("DynamicConfigUpdate", msg))
        }
        plan::Next::Restart { rack_id, pods: batch } => {
            let names: Vec<&str> = batch.iter().map(|(n, _)| n.as_str()).collect();
            let info = match info_client(cluster, ctx, &ns, tls.as_ref()).await {
                Ok(info) => info,
                Err(msg) => return Ok(blocked("AdminCredentialsUnavailable", msg)),
            };
            match safe_to_disrupt(info.as_ref(), &all, expected_size, &addrs_of(&names), &sc).await {
                Ok(None) => all_answered(),
                Ok(Some(state)) => return Ok(roster_set(ctx, cluster, state).await),
                Err(e) => return Ok(block(ctx, cluster, "RollingRestartBlocked", &e, &starting).await),
            }
            let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            // Warm (the server process in place) or a new pod, per pod. Volumes to wipe (devices taken from
            // namespaces by this change, or dirty from an earlier one) need pod-init, which runs only in a new pod.
            let target = targets.iter().find(|t| t.id == rack_id);
            let status_pods = cluster.status.as_ref().map(|s| &s.pods);
            // Dirty volumes a namespace of the new config uses (the others stay dirty, untouched).
            let used = desired
                .racks
                .iter()
                .find(|r| r.id == rack_id)
                .map(|r| super::volume_init::used_device_volumes(&r.config, &r.storage))
                .unwrap_or_default();
            let kinds: Vec<plan::RestartKind> = batch
                .iter()
                .map(|(p, reason)| {
                    let dirty = status_pods
                        .and_then(|s| s.get(p))
                        .is_some_and(|s| s.dirty_volumes.iter().any(|v| used.contains(v)));
                    match (views.iter().find(|v| v.name == *p), target) {
                        _ if dirty
                            || (removed.devices.contains_key(&rack_id) && *reason == plan::RestartReason::Config) =>
                        {
                            plan::RestartKind::Pod
                        }
                        (Some(v), Some(t)) => plan::restart_kind(v, t, reason),
                        _ => plan::RestartKind::Pod,
                    }
                })
                .collect();
            // deleteLocalStorageOnRestart: the batch's local claims go with the pods; the configured
            // migrate-fill-delay is in force first (a previous batch set it to 0), 0 again after.
            // A pod leaving its node (k8sNodeBlockList, a drain) releases its local claims whatever that policy says:
            // they hold it to the node (the reference does the same).
            let storage = rack_storage(cluster, rack_id);
            let leaving = |pod: &str| views.iter().any(|v| v.name == pod && v.leave_node.is_some());
            let local: Vec<Vec<String>> = batch
                .iter()
                .zip(&kinds)
                .map(|((p, _), kind)| match kind {
                    plan::RestartKind::Pod => super::local_storage::claims_deleted_on_restart(&storage, p, leaving(p)),
                    plan::RestartKind::Warm => Vec::new(),
                })
                .collect();
            let fill_delay = local
                .iter()
                .any(|c| !c.is_empty())
                .then(|| desired.racks.iter().find(|r| r.id == rack_id))
                .flatten()
                .and_then(|r| super::local_storage::configured_fill_delay(&r.config));
            if let Some(delay) = fill_delay
                && let Err(e) = super::local_storage::set_fill_delay(info.as_ref(), &all, delay).await
            {
                return Ok(blocked(
                    "MigrateFillDelayFailed",
                    format!("setting migrate-fill-delay back to {delay}: {e}"),
                ));
            }
            // Files of namespaces the config no longer names go first, as the reference deletes them (in the server
            // container, through the binary pod-init left there).
            if let Some(files) = removed.files.get(&rack_id) {
                let args: Vec<&str> = std::iter::once("delete-files").chain(files.iter().map(String::as_str)).collect();
                for (pod, _) in &batch {
                    if let Err(e) = super::warm_restart::exec_command(&ctx.client, &ns, pod, &args, None).await {
                        let msg =
                            format!("deleting the files of removed namespaces ({}) in {pod}: {e}", files.join(", "));
                        publish(ctx, cluster, EventType::Warning, "FileDeletionFailed", "Delete", &msg).await;
                        return Ok(blocked("FileDeletionFailed", format!("no pod was touched: {msg}")));
                    }
                    info!(cluster = %name, pod = %pod, files = ?files, "deleted the files of removed namespaces");
                }
            }
            let mut restarted: Vec<String> = Vec::new();
            for (((pod, reason), claims), kind) in batch.iter().zip(&local).zip(&kinds) {
                if *kind == plan::RestartKind::Warm {
                    let Some(object) = pods.iter().find(|p| p.name_any() == *pod) else { continue };
                    let related = Some(kube::Resource::object_ref(object.as_ref(), &()));
                    let result = match super::warm_restart::input(desired, rack_id) {
                        Some(input) => super::warm_restart::exec(&ctx.client, &ns, pod, &input)
                            .await
                            .map(|out| (input.conf_hash, out)),
                        None => Err(format!("rack {rack_id} has no ConfigMap template")),
                    };
                    match result {
                        Ok((conf_hash, out)) => {
                            super::warm_restart::record_done(&pod_api, object, &conf_hash).await?;
                            ctx.warm_restarted
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(format!("{ns}/{name}"), tokio::time::Instant::now());
                            restarted.push(pod.clone());
                            info!(cluster = %name, pod = %pod, reason = reason.as_str(), output = %out, "server warm restarted");
                            let why = match reason {
                                plan::RestartReason::Operation(op) => format!("operation {op}"),
                                plan::RestartReason::Requested(why) => why.clone(),
                                other => other.as_str().to_string(),
                            };
                            let note = format!("warm restarting {pod} in rack {rack_id} (server process only): {why}");
                            publish_related(
                                ctx,
                                cluster,
                                related,
                                EventType::Normal,
                                "PodWarmRestarted",
                                "RollingRestart",
                                &note,
                            )
                            .await;
                        }
                        Err(e) => {
                            let target = target.map(|t| plan::warm_restart_target(t, reason)).unwrap_or_default();
                            super::warm_restart::record_failed(&pod_api, object, &target).await?;
                            let note = format!("warm restart of {pod} failed ({e}): the pod is restarted instead");
                            tracing::warn!(cluster = %name, pod = %pod, "{note}");
                            publish_related(
                                ctx,
                                cluster,
                                related,
                                EventType::Warning,
                                "WarmRestartFailed",
                                "RollingRestart",
                                &note,
                            )
                            .await;
                            return Ok(Outcome {
                                operation_restarts: restarted,
                                ..in_progress("RollingRestart", note)
                            });
                        }
                    }
                    continue;
                }
                if !claims.is_empty() {
                    let deleted = super::local_storage::delete_claims(&pvc_api(ctx, &ns), claims).await?;
                    if !deleted.is_empty() {
                        let related = pods
                            .iter()
                            .find(|p| p.name_any() == *pod)
                            .map(|p| kube::Resource::object_ref(p.as_ref(), &()));
                        let why = if leaving(pod) { "it leaves its node" } else { "deleteLocalStorageOnRestart" };
                        let note = format!(
                            "deleting the local-storage PVCs of {pod} with its restart ({why}): {}",
                            deleted.join(", ")
                        );
                        publish_related(
                            ctx,
                            cluster,
                            related,
                            EventType::Normal,
                            "LocalStorageDeleted",
                            "Delete",
                            &note,
                        )
                        .await;
                    }
                }
                // Only the incarnation that was checked: the cache may lag behind (e.g. after an API server
                // restart), and the name may already belong to a pod recreated since.
                let uid = pods.iter().find(|p| p.name_any() == *pod).and_then(|p| p.uid());
                let deleted = match &uid {
                    Some(uid) => apply::delete_incarnation(&pod_api, pod, uid).await?,
                    None => apply::delete(&pod_api, pod).await.map(|()| true)?,
                };
                if !deleted {
                    return Ok(Outcome {
                        operation_restarts: restarted,
                        ..in_progress(
                            "RollingRestart",
                            format!("{pod} was replaced since it was checked; re-examining"),
                        )
                    });
                }
                restarted.push(pod.clone());
                info!(cluster = %name, pod = %pod, uid = ?uid, reason = reason.as_str(), "pod restarted");
                ctx.metrics.pod_restarted(&ns, &name);
                let related =
                    pods.iter().find(|p| p.name_any() == *pod).map(|p| kube::Resource::object_ref(p.as_ref(), &()));
                let why = match reason {
                    plan::RestartReason::Operation(op) if op.starts_with("WarmRestart") => {
                        format!("operation {op} (a pod restart: the warm restart failed)")
                    }
                    plan::RestartReason::Operation(op) => format!("operation {op}"),
                    plan::RestartReason::Requested(why) => format!("{why} (a pod restart: the warm restart failed)"),
                    plan::RestartReason::LeaveNode(plan::LeaveNode::Blocked(node)) => {
                        format!("its node {node} is in k8sNodeBlockList; it is placed elsewhere")
                    }
                    plan::RestartReason::LeaveNode(plan::LeaveNode::Drained(node)) => {
                        format!("its eviction was asked for and node {node} is cordoned; it is placed elsewhere")
                    }
                    other => other.as_str().to_string(),
                };
                let note = format!("restarting {pod} in rack {rack_id}: {why}");
                publish_related(ctx, cluster, related, EventType::Normal, "PodRestarted", "RollingRestart", &note)
                    .await;
            }
            if fill_delay.is_some() {
                // The restarted nodes come back empty: the others refill them at once (set back before the next
                // batch and when the rollout is done). Best effort: a failure only delays the refill.
                let batch_addrs = addrs_of(&names);
                let staying: Vec<SocketAddr> = all.iter().copied().filter(|a| !batch_addrs.contains(a)).collect();
                if let Err(e) = super::local_storage::set_fill_delay(info.as_ref(), &staying, 0).await {
                    tracing::warn!(cluster = %name, "setting migrate-fill-delay to 0 after a restart: {e}");
                }
            }
            // Any restart of a pod the operation asks for serves it (a spec change's restart included).
            Ok(Outcome {
                operation_restarts: restarted,
                ..in_progress("RollingRestart", format!("restarting {}", names.join(", ")))
            })
        }
        plan::Next::ReplaceFailed { rack_id, pods: failed } => {
            // No safety check: these pods serve nothing. Only the incarnation seen failing is deleted.
            let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let storage = rack_storage(cluster, rack_id);
            for (pod, why) in &failed {
                let related =
                    pods.iter().find(|p| p.name_any() == *pod).map(|p| kube::Resource::object_ref(p.as_ref(), &()));
                // deleteLocalStorageOnPodRecovery: its local claims first, so the replacement may land elsewhere.
                let claims = super::local_storage::claims_deleted_on_recovery(&storage, pod);
                let deleted = super::local_storage::delete_claims(&pvc_api(ctx, &ns), &claims).await?;
                if !deleted.is_empty() {
                    let note = format!(
                        "deleting the local-storage PVCs of failed pod {pod} (deleteLocalStorageOnPodRecovery): {}",
                        deleted.join(", ")
                    );
                    publish_related(
                        ctx,
                        cluster,
                        related.clone(),
                        EventType::Normal,
                        "LocalStorageDeleted",
                        "Delete",
                        &note,
                    )
                    .await;
                }
                if let Some(uid) = pods.iter().find(|p| p.name_any() == *pod).and_then(|p| p.uid()) {
                    apply::delete_incarnation(&pod_api, pod, &uid).await?;
                }
                let note = format!("replacing failed pod {pod} of rack {rack_id} ({why}) with the current spec");
                info!(cluster = %name, pod = %pod, "{note}");
                publish_related(ctx, cluster, related, EventType::Warning, "FailedPodReplaced", "Recover", &note).await;
            }
            let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
            Ok(in_progress("ReplacingFailedPods", format!("replacing failed pods {}", names.join(", "))))
        }
        plan::Next::WaitForSize { pods: exist, expected, not_ready } => Ok(in_progress(
            "WaitingForPods",
            format!("{exist} of {expected} pods exist, not ready: [{}]", not_ready.join(", ")),
        )),
        plan::Next::Done { size } => {
            // A node restarted in place keeps a Ready pod: done only once the cluster has it back.
            if warm_restart_settling(ctx, cluster).is_some() {
                let info = match info_client(cluster, ctx, &ns, tls.as_ref()).await {
                    Ok(info) => info,
                    Err(msg) => return Ok(blocked("AdminCredentialsUnavailable", msg)),
                };
                if let Err(e) = safety::check_cluster_stable(info.as_ref(), &all, expected_size).await {
                    return Ok(block(ctx, cluster, "RollingRestartBlocked", &e, &starting).await);
                }
                all_answered();
                ctx.warm_restarted.lock().unwrap_or_else(|e| e.into_inner()).remove(&format!("{ns}/{name}"));
            }
            let was_completed = cluster.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed)
                && cluster.status.as_ref().and_then(|s| s.observed_generation) == cluster.metadata.generation;
            if !was_completed {
                // A rollout just finished: lift any quiesce left by an interrupted batch, drop PVCs of
                // removed pods where the policy says so.
                if all.len() > 1 {
                    let info = match info_client(cluster, ctx, &ns, tls.as_ref()).await {
                        Ok(info) => info,
                        Err(msg) => return Ok(blocked("AdminCredentialsUnavailable", msg)),
                    };
                    if let Err(e) = safety::undo_quiesce(info.as_ref(), &all).await {
                        return Ok(block(ctx, cluster, "QuiesceUndoFailed", &e, &starting).await);
                    }
                    all_answered();
                    // The configured migrate-fill-delay back where deleteLocalStorageOnRestart set it to 0.
                    for rack in &desired.racks {
                        let Some(delay) = super::local_storage::configured_fill_delay(&rack.config) else { continue };
                        // Set to 0 only after local claims went with a restart (deleteLocalStorageOnRestart, or a
                        // pod that left its node).
                        if !super::local_storage::has_local_volumes(&rack_storage(cluster, rack.id)) {
                            continue;
                        }
                        if let Err(e) = super::local_storage::set_fill_delay(info.as_ref(), &all, delay).await {
                            return Ok(blocked(
                                "MigrateFillDelayFailed",
                                format!("setting migrate-fill-delay back to {delay}: {e}"),
                            ));
                        }
                        break;
                    }
                }
                delete_cascading_pvcs(cluster, ctx, Some(desired)).await?;
            }
            // Strong consistency: the roster follows the nodes (once they are stable), and every partition must
            // be available before the rollout counts as done.
            if !sc.namespaces.is_empty() {
                let info = match info_client(cluster, ctx, &ns, tls.as_ref()).await {
                    Ok(info) => info,
                    Err(msg) => return Ok(blocked("AdminCredentialsUnavailable", msg)),
                };
                let checked = match safety::check_cluster_stable(info.as_ref(), &all, expected_size).await {
                    Ok(_) => sc.check(info.as_ref(), &all).await,
                    Err(e) => Err(e),
                };
                match checked {
                    Ok(None) => {}
                    Ok(Some(state)) => return Ok(roster_set(ctx, cluster, state).await),
                    Err(e) => return Ok(block(ctx, cluster, "StrongConsistencyBlocked", &e, &starting).await),
                }
            }
            // Every pod runs the spec: users and roles next (also on every resync, so a password changed in
            // its Secret takes effect without an edit of the cluster).
            if let Err(b) = super::access::reconcile(cluster, ctx, &ns, &all, tls.as_ref()).await? {
                return Ok(blocked(b.reason, b.message));
            }
            // What each node advertises to clients, for status: read once per pod incarnation and config.
            let mut endpoints = BTreeMap::new();
            let stale: Vec<&Arc<CachedPod>> = pods.iter().filter(|p| endpoints_unknown(cluster, p)).collect();
            if !stale.is_empty() {
                let info = match info_client(cluster, ctx, &ns, tls.as_ref()).await {
                    Ok(info) => info,
                    Err(msg) => return Ok(blocked("AdminCredentialsUnavailable", msg)),
                };
                for pod in stale {
                    let Some(addr) = addr_of(pod) else { continue };
                    match crate::asinfo::AerospikeNode::new(info.as_ref(), addr).access_endpoints().await {
                        Ok(e) => {
                            endpoints.insert(pod.name_any(), e);
                        }
                        // Status only: retried on the next resync.
                        Err(e) => {
                            tracing::warn!(cluster = %name, pod = %pod.name_any(), "reading access endpoints: {e}")
                        }
                    }
                }
            }
            let with_users = cluster.spec.security_enabled() && cluster.spec.aerospike_access_control.is_some();
            Ok(Outcome {
                phase: Phase::Completed,
                progressing: Verdict::new(false, "Completed", format!("{size} pods run the desired spec")),
                degraded: None,
                requeue: if with_users { super::access::SECRET_POLL } else { RESYNC },
                operation_restarts: Vec::new(),
                endpoints,
                volumes: BTreeMap::new(),
                pod_network: BTreeMap::new(),
            })
        }
    }
}

/// The cordoned (spec.unschedulable) nodes among those running a pod whose eviction was refused and recorded. A node
/// that cannot be read counts as schedulable: its pods stay where they are (logged; retried on the next reconcile).
async fn cordoned_nodes(ctx: &Context, pods: &[Arc<CachedPod>]) -> std::collections::BTreeSet<String> {
    let mut names: Vec<&str> =
        pods.iter().filter(|p| super::pods::eviction_requested(p)).filter_map(|p| super::pods::node_name(p)).collect();
    names.sort();
    names.dedup();
    let mut cordoned = std::collections::BTreeSet::new();
    if names.is_empty() {
        return cordoned;
    }
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(ctx.client.clone());
    for name in names {
        match nodes.get_opt(name).await {
            Ok(Some(node)) if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) => {
                cordoned.insert(name.to_string());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(node = %name, error = %e, "could not read the node of an evicted pod"),
        }
    }
    cordoned
}

/// Whether status has no endpoints for this pod as it runs now (a new pod IP or config since they were read).
fn endpoints_unknown(cluster: &AerospikeCluster, pod: &CachedPod) -> bool {
    let Some(entry) = cluster.status.as_ref().and_then(|s| s.pods.get(&pod.name_any())) else { return true };
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).unwrap_or_default();
    let hash = pod.annotations().get(desired::ANNOTATION_CONF_HASH).map(String::as_str).unwrap_or_default();
    entry.aerospike.access_endpoints.is_empty() && entry.aerospike.tls_access_endpoints.is_empty()
        || entry.pod_ip != ip
        || entry.aerospike_config_hash != hash
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

/// The info client for `cluster`. With security enabled it logs in as `admin`: with the password in the admin
/// user's Secret first, then with the default one, which a server keeps until access control changes it. A
/// PKIOnly admin (or a Federal image, where every user is PKIOnly) logs in with the operator's client certificate
/// first (PKI), falling back to the default password a new cluster still has. With `tls`, every connection is TLS.
async fn info_client(
    cluster: &AerospikeCluster,
    ctx: &Context,
    ns: &str,
    tls: Option<&TlsClient>,
) -> Result<Arc<dyn InfoClient>, String> {
    let base = match tls {
        Some(t) => ctx.info.with_tls(t.clone()).unwrap_or_else(|| ctx.info.clone()),
        None => ctx.info.clone(),
    };
    if !cluster.spec.security_enabled() {
        return Ok(base);
    }
    let mut passwords = Vec::new();
    let admin = cluster
        .spec
        .aerospike_access_control
        .as_ref()
        .and_then(|ac| ac.users.iter().find(|u| u.name == auth::DEFAULT_ADMIN_USER));
    let pki = tls.is_some()
        && (admin.is_some_and(|u| u.auth_mode.as_deref() == Some("PKIOnly"))
            || crate::validate::image::is_federal(&cluster.spec.image));
    if let Some(user) = admin.filter(|u| u.auth_mode.as_deref() != Some("PKIOnly")) {
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
    let logins = if pki { std::iter::once(Credentials::pki()).chain(logins).collect() } else { logins };
    Ok(base.with_logins(logins).unwrap_or(base))
}

/// Every node answers, the cluster is stable with no migrations, then the batch is quiesced.
async fn safe_to_disrupt(
    info: &dyn InfoClient,
    all: &[SocketAddr],
    expected: usize,
    batch: &[SocketAddr],
    sc: &StrongConsistency<'_>,
) -> Result<Option<String>, SafetyError> {
    safety::check_cluster_stable(info, all, expected).await?;
    if let Some(state) = sc.check(info, all).await? {
        return Ok(Some(state));
    }
    if all.len() > 1 && !batch.is_empty() && batch.len() < all.len() {
        // Short, bounded polls: if the quiesce is not effective yet we return and requeue; repeating it is
        // harmless (quiesce is idempotent), and the reconcile never parks for long.
        let options = QuiesceOptions { poll_interval: Duration::from_millis(200), attempts: 10 };
        safety::quiesce_batch_with(info, all, batch, options).await?;
    }
    Ok(None)
}

/// A roster was set: an Event, and the rollout waits for the recluster's migrations.
async fn roster_set(ctx: &Context, cluster: &AerospikeCluster, state: String) -> Outcome {
    publish(ctx, cluster, EventType::Normal, "RosterSet", "Roster", &state).await;
    in_progress("SettingRoster", state)
}

/// Whether the nodes of a scale-down batch may leave now (None) or what the rollout waits for (Some). They may leave
/// once effectively quiesced (a previous pass quiesced them) and the cluster, held to its expected size, is stable
/// with no migration left. Otherwise the cluster is checked and the batch quiesced now, which starts migrating
/// their partitions away, and the next pass waits for those migrations.
async fn removed_ready_to_leave(
    info: &dyn InfoClient,
    all: &[SocketAddr],
    expected: usize,
    batch: &[SocketAddr],
    sc: &StrongConsistency<'_>,
) -> Result<Option<String>, SafetyError> {
    if all.len() < 2 || batch.is_empty() || batch.len() >= all.len() {
        // Nothing to hand partitions to (or nothing to remove): no quiesce, no migration to wait for.
        safety::check_cluster_stable(info, all, expected).await?;
        return sc.check(info, all).await;
    }
    if safety::effectively_quiesced(info, batch).await? {
        // Migrations pending here are expected: the partitions are moving off the batch (see `block`). The nodes
        // leave the roster once they have left the cluster (the next Done sets it).
        safety::check_cluster_stable(info, all, expected).await?;
        safety::check_partitions_available(info, all, &sc.namespaces).await?;
        return Ok(None);
    }
    safety::check_cluster_stable(info, all, expected).await?;
    if let Some(state) = sc.check(info, all).await? {
        return Ok(Some(state));
    }
    let options = QuiesceOptions { poll_interval: Duration::from_millis(200), attempts: 10 };
    safety::quiesce_batch_with(info, all, batch, options).await?;
    Ok(Some("quiesced, migrations starting".to_string()))
}

/// How long a pod may be missing before the rollout reports it as a fault rather than a pod being recreated.
const MISSING_POD_GRACE: Duration = Duration::from_secs(20);

/// Record which pods the StatefulSets should run but do not exist (every reconcile, so a pod that comes back is
/// forgotten); returns how long the longest-missing one has been missing.
fn note_missing(ctx: &Context, cluster: &AerospikeCluster, ns: &str, missing: &[String]) -> Duration {
    let prefix = format!("{ns}/{}/", cluster.name_any());
    let key = |pod: &str| format!("{prefix}{pod}");
    let now = tokio::time::Instant::now();
    let mut since = ctx.missing_since.lock().unwrap_or_else(|e| e.into_inner());
    since.retain(|k, _| !k.starts_with(&prefix) || missing.iter().any(|m| key(m) == *k));
    missing.iter().map(|m| now - *since.entry(key(m)).or_insert(now)).max().unwrap_or_default()
}

/// No disruptive step while a pod the StatefulSets should run does not exist. A pod being recreated is a normal
/// moment of a rollout (in progress); one missing for longer than [`MISSING_POD_GRACE`] gets a `Degraded`
/// condition and a Warning Event naming it and the likely causes.
async fn missing_outcome(ctx: &Context, cluster: &AerospikeCluster, missing: &[String], longest: Duration) -> Outcome {
    let names = missing.join(", ");
    if longest < MISSING_POD_GRACE {
        return in_progress("WaitingForPods", format!("waiting for pods to be created: {names}"));
    }
    let msg = format!(
        "no pod is restarted or removed while pods of the cluster are missing: {names} (missing for {}s; the \
         StatefulSet's Events say why it cannot create them, e.g. a ResourceQuota, an admission policy or Pod \
         Security admission)",
        longest.as_secs()
    );
    ctx.metrics.safety_refusal(&cluster.namespace().unwrap_or_default(), &cluster.name_any(), "PodMissing");
    publish(ctx, cluster, EventType::Warning, "PodMissing", "RollingRestart", &msg).await;
    blocked("PodsMissing", msg)
}

/// How long migrations may go without a single partition finishing before the cluster is reported `Degraded`.
/// Until then waiting for them is progress: migrations follow every membership change (a scale-up, a restart, the
/// quiesce of a batch) and run for minutes or hours on a real cluster.
const MIGRATION_STALL_GRACE: Duration = Duration::from_secs(30);

/// Report a refused disruptive step: the condition names the step (`reason`), the Event names the cause, so
/// that different causes are not folded into one Event series. Pending migrations that still move are a wait, not
/// a refusal.
async fn block(
    ctx: &Context,
    cluster: &AerospikeCluster,
    reason: &str,
    e: &SafetyError,
    starting: &[StartingNode],
) -> Outcome {
    if let Some(since) = warm_restart_settling(ctx, cluster) {
        return in_progress(
            "WaitingForWarmRestart",
            format!("a node restarted in place {} s ago and the cluster has not settled yet: {e}", since.as_secs()),
        );
    }
    if let Some(msg) = still_starting(e, starting) {
        return in_progress("WaitingForNodeStart", msg);
    }
    let mut msg = format!("no pod was touched: {e}");
    if let SafetyError::MigrationsPending { remaining, .. } = e {
        let key = format!("{}/{}", cluster.namespace().unwrap_or_default(), cluster.name_any());
        let stalled = {
            let mut all = ctx.migrations.lock().unwrap_or_else(|e| e.into_inner());
            let mut entry = all.get(&key).copied();
            let stalled = plan::MigrationProgress::observe(
                &mut entry,
                *remaining,
                std::time::Instant::now(),
                2 * MIGRATION_STALL_GRACE,
            );
            all.extend(entry.map(|e| (key, e)));
            stalled
        };
        if stalled < MIGRATION_STALL_GRACE {
            return in_progress("WaitingForMigrations", format!("waiting for migrations to finish: {e}"));
        }
        msg = format!("{msg} (not one partition finished migrating in {}s)", stalled.as_secs());
    }
    let cause = safety_reason(e);
    ctx.metrics.safety_refusal(&cluster.namespace().unwrap_or_default(), &cluster.name_any(), cause);
    publish(ctx, cluster, EventType::Warning, cause, reason, &msg).await;
    blocked(reason, msg)
}

/// A scale-down of a strong-consistency cluster, until its removed pods are gone and the partitions were checked.
#[derive(Clone, Debug)]
pub(crate) struct ScaleDownRecord {
    pub(crate) stateful_set: String,
    pub(crate) from: i32,
    pub(crate) to: i32,
    /// The cluster generation it was made for: a new spec ends the record.
    pub(crate) generation: Option<i64>,
    /// Why it was rolled back, once it was: the same scale-down is not tried again for this generation.
    pub(crate) rolled_back: Option<String>,
}

/// After a scale-down of a strong-consistency cluster, as the reference does: once the removed pods are gone, a
/// namespace with unavailable or dead partitions means the removal lost what the checks before it did not see; the
/// StatefulSet goes back to its size (the pods come back on their claims, which are still there) and that
/// scale-down is not tried again until the spec changes. `Some`: the outcome of this reconcile.
#[allow(clippy::too_many_arguments)]
async fn after_scale_down(
    ctx: &Context,
    cluster: &AerospikeCluster,
    sts_api: &Api<StatefulSet>,
    views: &[PodView],
    next: &plan::Next,
    all: &[SocketAddr],
    sc: &StrongConsistency<'_>,
    tls: Option<&TlsClient>,
) -> Result<Option<Outcome>, Error> {
    let ns = cluster.namespace().unwrap_or_default();
    let key = format!("{ns}/{}", cluster.name_any());
    let record = ctx.scale_downs.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
    let Some(record) = record else { return Ok(None) };
    if record.generation != cluster.metadata.generation || sc.namespaces.is_empty() {
        ctx.scale_downs.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        return Ok(None);
    }
    if let Some(why) = &record.rolled_back {
        return Ok(match next {
            plan::Next::ScaleDown { stateful_set, .. } if *stateful_set == record.stateful_set => Some(blocked(
                "ScaleDownRolledBack",
                format!(
                    "{} was scaled back to {} pods after its scale-down to {} left {why}; it is not tried again until                      the spec changes",
                    record.stateful_set, record.from, record.to
                ),
            )),
            _ => None,
        });
    }
    if !plan::scale_down_settled(&record.stateful_set, record.to, views) {
        return Ok(None);
    }
    let info = match info_client(cluster, ctx, &ns, tls).await {
        Ok(info) => info,
        Err(msg) => return Ok(Some(blocked("AdminCredentialsUnavailable", msg))),
    };
    match safety::check_partitions_available(info.as_ref(), all, &sc.namespaces).await {
        Ok(()) => {
            ctx.scale_downs.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            Ok(None)
        }
        Err(e @ SafetyError::PartitionsUnavailable { .. }) => {
            let patch = json!({"spec": {"replicas": record.from}});
            sts_api.patch(&record.stateful_set, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            let why = e.to_string();
            let msg = format!(
                "scaling {} back from {} to {} pods: the scale-down left {why}",
                record.stateful_set, record.to, record.from
            );
            tracing::warn!(cluster = %cluster.name_any(), "{msg}");
            publish(ctx, cluster, EventType::Warning, "ScaleDownRolledBack", "Scale", &msg).await;
            if let Some(r) = ctx.scale_downs.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&key) {
                r.rolled_back = Some(why);
            }
            Ok(Some(blocked("ScaleDownRolledBack", msg)))
        }
        // Not answering now is no verdict: checked again on the next reconcile.
        Err(_) => Ok(None),
    }
}

/// A pod that became Ready less than [`NODE_START_GRACE`] ago, with the address its Aerospike node answers on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StartingNode {
    pub(crate) pod: String,
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) ready_for: Duration,
}

/// How long after its pod became Ready an Aerospike node that does not answer yet, or has not joined the others
/// yet, counts as starting rather than as a fault. A Ready pod only says the container runs (or, with a readiness
/// probe, that the port accepts); the server still loads its namespaces and joins the cluster. Until then a
/// refused check is a wait, polled at the progress rate, not a Warning and a 10 s back-off: that back-off was most
/// of the time a new cluster took to reach Completed.
const NODE_START_GRACE: Duration = Duration::from_secs(60);

/// The pods that became Ready within [`NODE_START_GRACE`] of `now` (their Ready condition's transition time) and
/// whose nodes have not yet all passed a safety check (`answered`: pod uids): a node that answered since its pod
/// became Ready runs, and one that then stops answering is a fault.
pub(crate) fn starting_nodes<'a>(
    pods: impl Iterator<Item = (&'a CachedPod, Option<SocketAddr>)>,
    answered: &[String],
    now: k8s_openapi::jiff::Timestamp,
) -> Vec<StartingNode> {
    pods.filter_map(|(pod, addr)| {
        if pod.uid().is_some_and(|uid| answered.contains(&uid)) {
            return None;
        }
        let ready =
            pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready" && c.status == "True")?;
        let since = ready.last_transition_time.as_ref()?.0;
        let ready_for = Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO);
        (ready_for < NODE_START_GRACE).then(|| StartingNode { pod: pod.name_any(), addr, ready_for })
    })
    .collect()
}

/// Why a refused safety check is a node still starting (see [`NODE_START_GRACE`]), if it is: the node that does not
/// answer belongs to a pod that just became Ready, or the nodes disagree about the cluster while such a pod's node
/// joins.
pub(crate) fn still_starting(e: &SafetyError, starting: &[StartingNode]) -> Option<String> {
    // No ages in the messages: they go to status, which is written only when it changes.
    match e {
        SafetyError::Unreachable { node, cause }
            if !matches!(cause.kind, crate::asinfo::InfoErrorKind::LoginRefused(_)) =>
        {
            let pod = starting.iter().find(|n| n.addr == Some(*node))?;
            Some(format!("pod {} just became Ready and its Aerospike node does not answer yet: {e}", pod.pod))
        }
        SafetyError::ClusterSizeMismatch { .. }
        | SafetyError::ClusterKeyMismatch { .. }
        | SafetyError::IntegrityFault { .. }
            if !starting.is_empty() =>
        {
            let pods: Vec<&str> = starting.iter().map(|n| n.pod.as_str()).collect();
            Some(format!("waiting for the nodes of pods that just became Ready to join [{}]: {e}", pods.join(", ")))
        }
        _ => None,
    }
}

/// How long ago the cluster warm-restarted a node, if that was within [`WARM_RESTART_SETTLE`].
fn warm_restart_settling(ctx: &Context, cluster: &AerospikeCluster) -> Option<Duration> {
    let key = format!("{}/{}", cluster.namespace().unwrap_or_default(), cluster.name_any());
    let at = *ctx.warm_restarted.lock().unwrap_or_else(|e| e.into_inner()).get(&key)?;
    let since = tokio::time::Instant::now().saturating_duration_since(at);
    (since < WARM_RESTART_SETTLE).then_some(since)
}

/// After a warm restart the pod stays Ready while its server restarts and rejoins: for this long, safety checks that
/// fail are waited out rather than reported as faults.
const WARM_RESTART_SETTLE: Duration = Duration::from_secs(120);

fn safety_reason(e: &SafetyError) -> &'static str {
    use crate::asinfo::InfoErrorKind;
    match e {
        SafetyError::Unreachable { cause, .. } | SafetyError::Failed { cause, .. }
            if matches!(cause.kind, InfoErrorKind::LoginRefused(_)) =>
        {
            "LoginRefused"
        }
        SafetyError::Unreachable { .. } => "NodeUnreachable",
        SafetyError::MigrationsPending { .. } | SafetyError::MigrationsNotAllowed { .. } => "MigrationsPending",
        SafetyError::QuiesceNotPending { .. }
        | SafetyError::QuiesceNotEffective { .. }
        | SafetyError::NoPrincipal { .. } => "QuiesceFailed",
        SafetyError::PartitionsUnavailable { .. } => "PartitionsUnavailable",
        _ => "ClusterNotStable",
    }
}

/// The storage in force for a rack: the spec's (the rack's own, else the cluster's), or for a rack no longer in the
/// spec, the last applied one recorded in status.
fn rack_storage(cluster: &AerospikeCluster, rack_id: i32) -> StorageSpec {
    let spec = &cluster.spec;
    let racks = spec.rack_config().racks;
    if racks.is_empty() && rack_id == 0 {
        return spec.storage();
    }
    if let Some(rack) = racks.iter().find(|r| r.id == rack_id) {
        return rack.storage.clone().unwrap_or_else(|| spec.storage());
    }
    let status = cluster.status.as_ref();
    let applied = status.and_then(|s| s.rack_config.as_ref()).and_then(|rc| rc.racks.iter().find(|r| r.id == rack_id));
    applied
        .and_then(|r| r.storage.clone())
        .or_else(|| status.and_then(|s| s.storage.clone()))
        .unwrap_or_else(|| spec.storage())
}

/// Delete PVCs whose volume policy says cascadeDelete: all of the cluster's (`desired` None, on deletion), or those
/// of pods beyond their rack's size (after a scale-down). Each PVC is judged by its own rack's storage policy: its
/// rack comes from the `aerospike.com/rack-id` label its StatefulSet gave it, its volume from the
/// `aerospike.com/volume` label, which the operator adds on first sight (claim templates of existing StatefulSets
/// cannot change). A PVC that matches no volume of its rack exactly is never deleted.
pub(super) async fn delete_cascading_pvcs(
    cluster: &AerospikeCluster,
    ctx: &Context,
    desired: Option<&Desired>,
) -> Result<usize, Error> {
    let name = cluster.name_any();
    let ns = cluster.namespace().ok_or(Error::NoNamespace)?;
    let api = pvc_api(ctx, &ns);
    let pvcs = api.list(&ListParams::default().labels(&format!("{}={}", desired::LABEL_CR, name))).await?;
    // Candidate StatefulSet names per rack: the spec's, the applied ones in status, and those that exist.
    let mut stateful_sets: Vec<(i32, String)> = Vec::new();
    let mut rack_ids: Vec<(i32, String)> = Vec::new();
    for rc in [Some(cluster.spec.rack_config()), cluster.status.as_ref().and_then(|s| s.rack_config.clone())]
        .into_iter()
        .flatten()
    {
        let racks = if rc.racks.is_empty() { vec![crate::api::Rack { id: 0, ..Default::default() }] } else { rc.racks };
        rack_ids.extend(racks.iter().map(|r| (r.id, r.revision.clone())));
    }
    for (id, revision) in rack_ids {
        stateful_sets.push((id, desired::rack_name(&name, id, &revision)));
    }
    for sts in ctx.stores.cluster_stateful_sets(&ns, &name) {
        if let Some(id) = sts.labels().get(desired::LABEL_RACK).and_then(|r| r.parse().ok()) {
            stateful_sets.push((id, sts.name_any()));
        }
    }
    stateful_sets.sort();
    stateful_sets.dedup();

    let mut deleted = 0;
    for pvc in pvcs {
        let pvc_name = pvc.name_any();
        let Some(rack_id) = pvc.labels().get(desired::LABEL_RACK).and_then(|r| r.parse::<i32>().ok()) else { continue };
        let storage = rack_storage(cluster, rack_id);
        let labelled = pvc.labels().get(desired::LABEL_VOLUME).cloned();
        let volumes: Vec<String> = match &labelled {
            Some(v) => vec![v.clone()],
            None => storage
                .volumes
                .iter()
                .filter(|v| v.source.persistent_volume.is_some())
                .map(|v| v.name.clone())
                .collect(),
        };
        let candidates: Vec<String> =
            stateful_sets.iter().filter(|(id, _)| *id == rack_id).map(|(_, n)| n.clone()).collect();
        let Some(owner) = plan::claim_owner(&pvc_name, &volumes, &candidates) else { continue };
        if labelled.is_none() && pvc.metadata.deletion_timestamp.is_none() {
            let patch = json!({"metadata": {"labels": {desired::LABEL_VOLUME: owner.volume}}});
            api.patch(&pvc_name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        let Some(volume) = storage.volumes.iter().find(|v| v.name == owner.volume) else { continue };
        if !volume.effective_policy(&storage).cascade_delete {
            continue;
        }
        if let Some(desired) = desired {
            // Keep it while its ordinal is within the rack's size, or while its pod still exists.
            if desired.racks.iter().any(|r| r.name == owner.stateful_set && owner.ordinal < r.size) {
                continue;
            }
            let pod = format!("{}-{}", owner.stateful_set, owner.ordinal);
            if ctx.stores.pods.get(&ObjectRef::new(&pod).within(&ns)).is_some() {
                continue;
            }
        }
        apply::delete(&api, &pvc_name).await?;
        deleted += 1;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asinfo::{InfoError, InfoErrorKind};
    use k8s_openapi::jiff::Timestamp;

    fn pod(name: &str, ready_at: Option<i64>) -> CachedPod {
        let conditions: Vec<serde_json::Value> = ready_at
            .map(|s| {
                let at = Timestamp::from_second(s).unwrap().to_string();
                vec![json!({"type": "Ready", "status": "True", "lastTransitionTime": at})]
            })
            .unwrap_or_default();
        let meta = json!({"name": name, "uid": format!("uid-{name}")});
        serde_json::from_value(json!({"metadata": meta, "status": {"conditions": conditions}})).unwrap()
    }

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 3000))
    }

    fn refused(last: u8) -> SafetyError {
        let cause = InfoError { addr: addr(last), command: "namespaces".into(), kind: InfoErrorKind::ConnectRefused };
        SafetyError::from_info(cause)
    }

    #[test]
    fn pods_ready_for_less_than_the_grace_are_starting() {
        let now = Timestamp::from_second(1_000).unwrap();
        let pods = [pod("c-0-0", Some(990)), pod("c-0-1", Some(1_000 - 60)), pod("c-0-2", None)];
        let with_addrs = || pods.iter().zip([addr(1), addr(2), addr(3)]).map(|(p, a)| (p, Some(a)));
        let starting = starting_nodes(with_addrs(), &[], now);
        assert_eq!(
            starting,
            vec![StartingNode { pod: "c-0-0".into(), addr: Some(addr(1)), ready_for: Duration::from_secs(10) }]
        );
        // Its node passed a check since: it runs, and not answering now would be a fault.
        assert_eq!(starting_nodes(with_addrs(), &["uid-c-0-0".to_string()], now), vec![]);
        // Another incarnation's check says nothing about this one.
        assert_eq!(starting_nodes(with_addrs(), &["uid-c-0-1".to_string()], now).len(), 1);
    }

    #[test]
    fn an_unreachable_node_waits_only_when_its_own_pod_is_starting() {
        let starting =
            vec![StartingNode { pod: "c-0-0".into(), addr: Some(addr(1)), ready_for: Duration::from_secs(3) }];
        let msg = still_starting(&refused(1), &starting).expect("the starting pod's node is waited for");
        assert!(msg.contains("c-0-0") && msg.contains("connection refused"), "{msg}");
        // Another node not answering is a fault, even while some pod starts.
        assert_eq!(still_starting(&refused(2), &starting), None);
        // Nothing starting: a fault.
        assert_eq!(still_starting(&refused(1), &[]), None);
        // A refused login is never a start-up.
        let login = SafetyError::Unreachable {
            node: addr(1),
            cause: InfoError { addr: addr(1), command: "login".into(), kind: InfoErrorKind::LoginRefused(80) },
        };
        assert_eq!(still_starting(&login, &starting), None);
    }

    #[test]
    fn a_cluster_still_forming_waits_while_any_pod_starts() {
        let starting =
            vec![StartingNode { pod: "c-0-2".into(), addr: Some(addr(3)), ready_for: Duration::from_secs(1) }];
        let size = SafetyError::ClusterSizeMismatch { node: addr(1), reported: 2, expected: 3 };
        let msg = still_starting(&size, &starting).expect("a node joining is waited for");
        assert!(msg.contains("[c-0-2]"), "{msg}");
        assert_eq!(still_starting(&size, &[]), None);
        // Migrations and other refusals keep their own handling.
        let migrations = SafetyError::MigrationsPending { node: addr(1), remaining: 5 };
        assert_eq!(still_starting(&migrations, &starting), None);
    }
}
