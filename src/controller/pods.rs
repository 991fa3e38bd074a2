//! What the controller sees of a cluster's pods: which pods are the cluster's (controlled by its StatefulSets), a
//! pod's view for the rollout decision (ready, failed, what it runs), and where its node listens.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use kube::ResourceExt;

use super::Context;
use super::cached_pod::CachedPod;
use crate::api::AerospikeCluster;
use crate::desired::{self, Desired};
use crate::plan::{self, PodView, RackTarget};

/// The cluster's pods from the cache, newest view: pods controlled by one of the cluster's StatefulSets. Labels
/// alone are not enough: anyone who may create a pod can copy them, and such a pod must never be counted, restarted
/// or sent the admin credential by the safety checks.
pub(super) fn observe_pods(ctx: &Context, name: &str, ns: &str) -> Vec<Arc<CachedPod>> {
    let stateful_sets: Vec<String> =
        ctx.stores.cluster_stateful_sets(ns, name).iter().filter_map(|s| s.metadata.uid.clone()).collect();
    let mut pods: Vec<Arc<CachedPod>> =
        ctx.stores.cluster_pods(ns, name).into_iter().filter(|p| controlled_by_one_of(p, &stateful_sets)).collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods
}

/// Whether `pod`'s controller is one of the StatefulSets with these uids.
pub(super) fn controlled_by_one_of(pod: &CachedPod, stateful_set_uids: &[String]) -> bool {
    pod.owner_references().iter().any(|o| {
        o.controller == Some(true)
            && o.kind == "StatefulSet"
            && o.api_version == "apps/v1"
            && stateful_set_uids.contains(&o.uid)
    })
}

/// Why a pod cannot run, as the reference's failed-pod check sees it: a container waiting on an image it cannot pull,
/// crash-looping or misconfigured, a pod the scheduler cannot place, or a Failed pod.
pub(super) fn failure(pod: &CachedPod, ignore_sidecars: bool) -> Option<String> {
    const WAITING: &[&str] = &[
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
    ];
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() == Some("Failed") {
        return Some("Failed".into());
    }
    let containers = status.init_container_statuses.iter().flatten().chain(
        status
            .container_statuses
            .iter()
            .flatten()
            .filter(|c| !ignore_sidecars || c.name == desired::SERVER_CONTAINER_NAME),
    );
    if let Some(reason) = containers
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .find(|r| WAITING.contains(&r.as_str()))
    {
        return Some(reason);
    }
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
        .map(|_| "Unschedulable".into())
}

/// The rollout's view of a pod. With `ignore_sidecars` (`spec.ignoreSidecarFailure`) only the Aerospike server and the
/// init containers count: a failing sidecar (an exporter, say) neither makes the pod unready nor failed for the rollout.
pub(crate) fn pod_view(pod: &CachedPod, ignore_sidecars: bool) -> Option<PodView> {
    let name = pod.name_any();
    let rack_id = pod.labels().get(desired::LABEL_RACK)?.parse().ok()?;
    let ordinal = plan::ordinal(&name)?;
    let pod_ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let server_ready = || {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.name == desired::SERVER_CONTAINER_NAME && c.ready))
    };
    let ready = pod_ready || (ignore_sidecars && server_ready());
    let annotations = pod.annotations();
    let image = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == desired::SERVER_CONTAINER_NAME))
        .and_then(|c| c.image.clone());
    Some(PodView {
        failed: failure(pod, ignore_sidecars),
        name,
        rack_id,
        ordinal,
        ready,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        image,
        conf_hash: running_conf_hash(pod),
        pod_spec_hash: annotations.get(desired::ANNOTATION_POD_SPEC_HASH).cloned(),
        in_place_failed_for: failed_target(pod),
        warm_restart_failed_for: pod.annotations().get(ANNOTATION_WARM_FAILED).cloned(),
        // Set by the rollout from spec and status.operations.
        operation: None,
        warm_restart_requested: pod.annotations().get(ANNOTATION_WARM_REQUESTED).cloned(),
        // Set by the rollout from spec.k8sNodeBlockList, the eviction record and the node.
        leave_node: None,
    })
}

/// The conf hash of the aerospike.conf the server runs: the pod's annotation, unless the server container restarted
/// since an in-place update moved the annotation on (it then reads the file pod-init wrote at pod start: unknown).
fn running_conf_hash(pod: &CachedPod) -> Option<String> {
    let hash = pod.annotations().get(desired::ANNOTATION_CONF_HASH).cloned();
    match restarts_at_update(pod) {
        Some(at) if server_restarts(pod) > at => None,
        _ => hash,
    }
}

/// The server container's restart count.
pub(crate) fn server_restarts(pod: &CachedPod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == desired::SERVER_CONTAINER_NAME))
        .map_or(0, |c| c.restart_count)
}

/// What each rack should run; `in_place_from`: by rack id, the conf hash from which its config change is made at run
/// time.
pub(crate) fn rack_targets(
    cluster: &AerospikeCluster,
    desired: &Desired,
    in_place_from: &BTreeMap<i32, String>,
) -> Vec<RackTarget> {
    desired
        .racks
        .iter()
        .map(|r| RackTarget {
            id: r.id,
            size: r.size,
            image: cluster.spec.image.clone(),
            conf_hash: r.conf_hash.clone(),
            pod_spec_hash: r.pod_spec_hash.clone(),
            in_place_from: in_place_from.get(&r.id).cloned(),
            // Set by the rollout, which sees the pods.
            ascending: false,
        })
        .collect()
}

/// The info address of a pod: its IP and the service port of its rack's config.
pub(crate) fn info_addr(pod: &CachedPod, port: u16) -> Option<SocketAddr> {
    let ip = pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

// In-place (dynamic) config updates, as recorded on the pod by `dynamic::record`.

/// `<Failed|PartiallyFailed>:<target conf hash>`: an in-place update of this pod to that config was refused.
pub(crate) const ANNOTATION_FAILED: &str = "aerospike.com/dynamic-config-failed";
/// The server container's restart count when an in-place update moved the conf-hash annotation on: a later
/// container restart reads the file written at pod start again, so the annotation no longer says what runs.
pub(crate) const ANNOTATION_RESTARTS_AT_UPDATE: &str = "aerospike.com/server-restarts-at-config-update";

/// The target conf hash an in-place update of `pod` failed for.
pub(crate) fn failed_target(pod: &CachedPod) -> Option<String> {
    pod.annotations().get(ANNOTATION_FAILED)?.split_once(':').map(|(_, hash)| hash.to_string())
}

/// `Failed` or `PartiallyFailed` when the last in-place update of `pod` failed (status.pods[].dynamicConfigUpdateStatus).
pub(crate) fn failure_status(pod: &CachedPod) -> Option<String> {
    pod.annotations().get(ANNOTATION_FAILED)?.split_once(':').map(|(status, _)| status.to_string())
}

/// The server restart count recorded at the last in-place update.
pub(crate) fn restarts_at_update(pod: &CachedPod) -> Option<i32> {
    pod.annotations().get(ANNOTATION_RESTARTS_AT_UPDATE)?.parse().ok()
}

/// The node a pod runs on (spec.nodeName), if it is scheduled.
pub(crate) fn node_name(pod: &CachedPod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref().filter(|n| !n.is_empty())
}

/// Whether the eviction webhook refused an eviction of this pod and recorded it (the reference's annotation).
pub(crate) fn eviction_requested(pod: &CachedPod) -> bool {
    pod.annotations().contains_key(desired::ANNOTATION_EVICTION_BLOCKED)
}

// Warm restarts, as recorded on the pod by `warm_restart`.

/// `<target>`: a warm restart of this pod to that target (a conf hash, or `<kind> <id>` of an operation) failed; the
/// pod is restarted instead.
pub(crate) const ANNOTATION_WARM_FAILED: &str = "aerospike.com/warm-restart-failed";
/// Why the operator wants this pod's server restarted in place (set before the cause can be forgotten, e.g. before
/// the StatefulSet of a grown block volume is recreated); cleared by the warm restart.
pub(crate) const ANNOTATION_WARM_REQUESTED: &str = "aerospike.com/warm-restart-requested";
