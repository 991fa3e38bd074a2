//! Safe node drains: a validating webhook on Eviction (`pods/eviction` CREATE, `POST /validate-eviction`, the
//! reference's path and annotation). An eviction deletes a pod at once, whatever Aerospike still needs from it:
//! partitions it alone holds, migrations under way. So an eviction of one of the operator's Aerospike pods is
//! refused while it runs, and the operator moves the pod itself, through the rollout's safety checks (every node up,
//! the cluster stable, no migrations pending, the node quiesced), once its node is cordoned:
//!
//! - on a cordoned node (`kubectl drain` cordons first): refused with 429 Too Many Requests, which `kubectl drain`
//!   retries every 5 s, as it does for a PodDisruptionBudget; the request is recorded on the pod (annotation
//!   [`desired::ANNOTATION_EVICTION_BLOCKED`]), the operator restarts the pod once it is safe, the StatefulSet
//!   recreates it and the scheduler places it on another node (its node-local claims released);
//! - on a schedulable node: refused with 403 Forbidden (nothing is recorded; the operator moves nothing off a node
//!   that may take the pod straight back);
//! - a retried eviction (kubectl drain evicts by name, every 5 s) that meets the pod's new incarnation, moved off the
//!   still-cordoned node it was refused on: 404 Not Found, which `kubectl drain` counts as done, so the drain ends
//!   without an error. The refusal on the cordoned node is recorded on the StatefulSet
//!   (`aerospike.com/eviction-blocked-<ordinal>`: uid and node), which any operator replica serving the webhook reads;
//! - allowed: any other pod, a pod already terminating, not scheduled or no longer running.
//!
//! [`decide`] is pure; [`review`] reads the pod, its StatefulSet and its node, and records the request.
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::desired;

/// Path of the eviction webhook (the reference's).
pub const VALIDATE_EVICTION_PATH: &str = "/validate-eviction";

/// The webhook's answer to one eviction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Let the API server evict (why, for the log).
    Allow(&'static str),
    /// Refuse: HTTP `code` and `reason` (what `kubectl drain` acts on: it retries a 429), the message for the caller,
    /// and whether to record the request on the pod (so the operator moves it).
    Refuse { code: u16, reason: &'static str, message: String, record: bool },
}

/// Whether `pod` is one of the operator's Aerospike pods: labelled with the cluster and controlled by a StatefulSet
/// the operator manages for that cluster. `stateful_set` is the pod's controlling StatefulSet, read by name.
pub fn is_operator_pod(pod: &Pod, stateful_set: Option<&StatefulSet>) -> bool {
    let labels = pod.labels();
    let Some(cluster) = labels.get(desired::LABEL_CR) else { return false };
    if labels.get(desired::LABEL_APP).map(String::as_str) != Some(desired::APP_NAME) {
        return false;
    }
    let Some(owner) = pod.owner_references().iter().find(|o| o.controller == Some(true)) else { return false };
    let Some(sts) = stateful_set else { return false };
    owner.kind == "StatefulSet"
        && owner.api_version == "apps/v1"
        && sts.uid().as_deref() == Some(owner.uid.as_str())
        && sts.labels().get(desired::LABEL_CR) == Some(cluster)
        && sts.labels().get(desired::LABEL_MANAGED_BY).map(String::as_str) == Some(desired::MANAGER_NAME)
}

/// The StatefulSet annotation recording a refused eviction of its pod with `ordinal` (see the module docs).
pub fn blocked_annotation(ordinal: impl std::fmt::Display) -> String {
    format!("aerospike.com/eviction-blocked-{ordinal}")
}

/// The value of [`blocked_annotation`]: the refused incarnation and its node.
pub fn blocked_value(uid: &str, node: &str) -> String {
    format!("{uid} {node}")
}

/// The cordoned node an earlier incarnation of `pod` was refused eviction on (pure): the record is for another uid
/// on another node, and that node is still cordoned (`cordoned`).
pub fn moved_from<'a>(pod: &Pod, record: Option<&'a str>, cordoned: impl Fn(&str) -> bool) -> Option<&'a str> {
    let (uid, node) = record?.split_once(' ')?;
    let here = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    (pod.uid().as_deref() != Some(uid) && here != Some(node) && cordoned(node)).then_some(node)
}

/// The answer to an eviction of `pod` (None: it does not exist). `operator_pod`: see [`is_operator_pod`];
/// `node_cordoned`: the pod's node has spec.unschedulable; `moved_from`: see [`moved_from`].
pub fn decide(pod: Option<&Pod>, operator_pod: bool, node_cordoned: bool, moved_from: Option<&str>) -> Decision {
    let Some(pod) = pod else { return Decision::Allow("no such pod") };
    if !operator_pod {
        return Decision::Allow("not an Aerospike pod of this operator");
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Decision::Allow("already terminating");
    }
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) else {
        return Decision::Allow("not scheduled on a node");
    };
    if matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")) {
        return Decision::Allow("no longer running");
    }
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let cluster = pod.labels().get(desired::LABEL_CR).cloned().unwrap_or_default();
    let what = format!("Aerospike pod {ns}/{name} (AerospikeCluster {cluster})");
    if node_cordoned {
        Decision::Refuse {
            code: 429,
            reason: "TooManyRequests",
            message: format!(
                "{what} is not evicted directly: deleting it before its data has migrated could lose data. The \
                 operator moves it off cordoned node {node} itself once that is safe (every node up, no migrations \
                 pending, the node quiesced); retry until the pod has left the node (kubectl drain retries on its own)"
            ),
            record: true,
        }
    } else if let Some(drained) = moved_from {
        Decision::Refuse {
            code: 404,
            reason: "NotFound",
            message: format!(
                "{what} was already moved off cordoned node {drained} by the operator (its eviction there was refused \
                 until that was safe); the pod of that name now runs on node {node}: nothing is left to evict"
            ),
            record: false,
        }
    } else {
        Decision::Refuse {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{what} runs on node {node}, which is not cordoned: it is not evicted (deleting it before its data has \
                 migrated could lose data), and the operator moves Aerospike pods only off cordoned nodes. Cordon the \
                 node first (kubectl drain does); a pod already moved off a drained node has nothing left there"
            ),
            record: false,
        }
    }
}

/// Answers one eviction review: reads the pod, its StatefulSet and its node, decides, and records a refused
/// request on the pod.
pub async fn review(client: &Client, req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let allow = AdmissionResponse::from(req);
    if req.operation != Operation::Create {
        return allow;
    }
    let name = match (req.name.as_str(), req.object.as_ref().and_then(|o| o.metadata.name.as_deref())) {
        (n, _) if !n.is_empty() => n.to_string(),
        (_, Some(n)) => n.to_string(),
        _ => return allow,
    };
    let Some(ns) = req.namespace.clone() else { return allow };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod = match pods.get_opt(&name).await {
        Ok(p) => p,
        Err(e) => {
            return refuse(
                req,
                500,
                "InternalError",
                format!("cannot read pod {ns}/{name} to judge its eviction: {e}"),
            );
        }
    };
    let owner = pod.as_ref().and_then(|p| {
        let labelled = p.labels().get(desired::LABEL_APP).map(String::as_str) == Some(desired::APP_NAME);
        let owner = p.owner_references().iter().find(|o| o.controller == Some(true) && o.kind == "StatefulSet")?;
        labelled.then(|| owner.name.clone())
    });
    let stateful_set = match &owner {
        Some(sts) => match Api::<StatefulSet>::namespaced(client.clone(), &ns).get_opt(sts).await {
            Ok(s) => s,
            Err(e) => {
                return refuse(
                    req,
                    500,
                    "InternalError",
                    format!("cannot read StatefulSet {ns}/{sts} of pod {name}: {e}"),
                );
            }
        },
        None => None,
    };
    let operator_pod = pod.as_ref().is_some_and(|p| is_operator_pod(p, stateful_set.as_ref()));
    let node = pod.as_ref().and_then(|p| p.spec.as_ref()?.node_name.clone()).filter(|n| !n.is_empty());
    let cordoned = match (&node, operator_pod) {
        (Some(node), true) => match Api::<Node>::all(client.clone()).get_opt(node).await {
            Ok(n) => n.and_then(|n| n.spec?.unschedulable) == Some(true),
            Err(e) => {
                // Refused as on a schedulable node: nothing recorded, the caller retries.
                warn!(node = %node, error = %e, "eviction webhook: cannot read the node");
                false
            }
        },
        _ => false,
    };
    // A refusal recorded for an earlier incarnation of this pod, on a node that is still cordoned.
    let ordinal = crate::plan::ordinal(&name);
    let record =
        stateful_set.as_ref().zip(ordinal).and_then(|(s, o)| s.annotations().get(&blocked_annotation(o)).cloned());
    let mut moved = None;
    if let (Some(p), Some(record), false) = (&pod, &record, cordoned)
        && let Some(drained) = moved_from(p, Some(record), |_| true)
    {
        let still_cordoned = match Api::<Node>::all(client.clone()).get_opt(drained).await {
            Ok(n) => n.and_then(|n| n.spec?.unschedulable) == Some(true),
            Err(_) => false,
        };
        moved = still_cordoned.then(|| drained.to_string());
    }
    match decide(pod.as_ref(), operator_pod, cordoned, moved.as_deref()) {
        Decision::Allow(why) => {
            if operator_pod {
                info!(namespace = %ns, pod = %name, why, "eviction of an Aerospike pod allowed");
            }
            allow
        }
        Decision::Refuse { code, reason, mut message, record } => {
            if record
                && let Some(p) = &pod
                && !p.annotations().contains_key(desired::ANNOTATION_EVICTION_BLOCKED)
            {
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let patch = json!({"metadata": {"annotations": {desired::ANNOTATION_EVICTION_BLOCKED: now}}});
                if let Err(e) = pods.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    warn!(namespace = %ns, pod = %name, error = %e, "eviction webhook: cannot record the request");
                    message
                        .push_str(&format!(" (the request could not be recorded on the pod: {e}; a retry records it)"));
                }
            }
            // Also on the StatefulSet, which outlives the pod: a retry that meets the moved pod is told it is done.
            if let (true, Some(p), Some(sts), Some(node), Some(ordinal)) = (record, &pod, &stateful_set, &node, ordinal)
            {
                let value = blocked_value(&p.uid().unwrap_or_default(), node);
                let key = blocked_annotation(ordinal);
                if sts.annotations().get(&key) != Some(&value) {
                    let patch = json!({"metadata": {"annotations": {key: value}}});
                    let api = Api::<StatefulSet>::namespaced(client.clone(), &ns);
                    if let Err(e) = api.patch(&sts.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                        warn!(namespace = %ns, pod = %name, error = %e, "eviction webhook: cannot record on the StatefulSet");
                    }
                }
            }
            info!(namespace = %ns, pod = %name, code, recorded = record, "eviction of an Aerospike pod refused");
            refuse(req, code, reason, message)
        }
    }
}

fn refuse(req: &AdmissionRequest<DynamicObject>, code: u16, reason: &str, message: String) -> AdmissionResponse {
    let mut resp = AdmissionResponse::from(req).deny(message);
    resp.result.code = code;
    resp.result.reason = reason.into();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(uid: &str, cluster: &str, managed: bool) -> StatefulSet {
        let mut labels = json!({"aerospike.com/cr": cluster});
        if managed {
            labels["app.kubernetes.io/managed-by"] = json!("aerospike-kubernetes-operator");
        }
        serde_json::from_value(json!({"metadata": {"name": "aero-1", "namespace": "ns", "uid": uid, "labels": labels}}))
            .unwrap()
    }

    fn pod(node: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "aero-1-0", "namespace": "ns",
                "labels": {"app": "aerospike-cluster", "aerospike.com/cr": "aero"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "aero-1", "uid": "u1",
                                     "controller": true}]},
            "spec": {"containers": [], "nodeName": node},
            "status": {"phase": "Running"}
        }))
        .unwrap()
    }

    #[test]
    fn only_pods_of_a_statefulset_the_operator_manages_for_their_cluster_count() {
        let p = pod(Some("n1"));
        assert!(is_operator_pod(&p, Some(&sts("u1", "aero", true))));
        // Labels copied onto someone else's pod, a StatefulSet of another cluster or not the operator's: not ours.
        assert!(!is_operator_pod(&p, None));
        assert!(!is_operator_pod(&p, Some(&sts("u2", "aero", true))));
        assert!(!is_operator_pod(&p, Some(&sts("u1", "other", true))));
        assert!(!is_operator_pod(&p, Some(&sts("u1", "aero", false))));
        let mut unlabelled = p.clone();
        unlabelled.metadata.labels.as_mut().unwrap().remove("app");
        assert!(!is_operator_pod(&unlabelled, Some(&sts("u1", "aero", true))));
    }

    #[test]
    fn an_aerospike_pod_is_refused_and_recorded_only_on_a_cordoned_node() {
        let p = pod(Some("n1"));
        match decide(Some(&p), true, true, None) {
            Decision::Refuse { code, reason, message, record } => {
                assert_eq!((code, reason, record), (429, "TooManyRequests", true));
                assert!(message.contains("Aerospike pod ns/aero-1-0 (AerospikeCluster aero)"), "{message}");
                assert!(message.contains("cordoned node n1"), "{message}");
                assert!(message.contains("retry"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match decide(Some(&p), true, false, None) {
            Decision::Refuse { code, reason, message, record } => {
                assert_eq!((code, reason, record), (403, "Forbidden", false));
                assert!(message.contains("node n1, which is not cordoned"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// kubectl drain retries an eviction by name: once the operator has moved the pod off the cordoned node, the
    /// retry meets the new incarnation elsewhere and is told the pod is gone (404, which ends kubectl's retries).
    #[test]
    fn a_retry_that_meets_the_moved_pod_is_told_it_is_gone() {
        let mut moved = pod(Some("n2"));
        moved.metadata.uid = Some("new".into());
        let record = blocked_value("old", "n1");
        assert_eq!(moved_from(&moved, Some(&record), |n| n == "n1"), Some("n1"));
        match decide(Some(&moved), true, false, Some("n1")) {
            Decision::Refuse { code, reason, message, record } => {
                assert_eq!((code, reason, record), (404, "NotFound", false));
                assert!(
                    message.contains("already moved off cordoned node n1") && message.contains("node n2"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        // Not once the node is uncordoned, not for the incarnation that was refused, not on the same node.
        assert_eq!(moved_from(&moved, Some(&record), |_| false), None);
        assert_eq!(moved_from(&moved, Some(&blocked_value("new", "n1")), |_| true), None);
        assert_eq!(moved_from(&pod(Some("n1")), Some(&record), |_| true), None);
        assert_eq!(moved_from(&moved, None, |_| true), None);
        assert_eq!(blocked_annotation("0"), "aerospike.com/eviction-blocked-0");
    }

    #[test]
    fn everything_else_is_allowed() {
        assert_eq!(decide(None, false, true, None), Decision::Allow("no such pod"));
        let p = pod(Some("n1"));
        assert_eq!(decide(Some(&p), false, true, None), Decision::Allow("not an Aerospike pod of this operator"));
        let mut terminating = p.clone();
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(decide(Some(&terminating), true, true, None), Decision::Allow("already terminating"));
        assert_eq!(decide(Some(&pod(None)), true, true, None), Decision::Allow("not scheduled on a node"));
        let mut failed = p.clone();
        failed.status.as_mut().unwrap().phase = Some("Failed".into());
        assert_eq!(decide(Some(&failed), true, true, None), Decision::Allow("no longer running"));
    }
}
