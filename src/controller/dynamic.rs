//! Config changes at run time (`enableDynamicConfigUpdate`): which racks' changes a server takes without a restart,
//! and carrying them over to a pod with `set-config` / `log-set`, checked with `get-config`.
//!
//! The change is planned from the config last rolled out completely (the applied spec in status) to the desired one;
//! only pods that run the applied config qualify (a pod left on an older config by an interrupted rollout restarts).
//! A pod that took the change gets the new conf-hash annotation, so the rollout sees it as current; one that refused
//! it is annotated with the failure and restarted like any stale pod (the reference's fallback).
use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::cached_pod::CachedPod;
use super::pods::{ANNOTATION_FAILED, ANNOTATION_RESTARTS_AT_UPDATE};
use crate::aerospike_conf::dynamic::{ChangePlan, Update, UpdateContext, plan_change, same_value};
use crate::api::AerospikeCluster;
use crate::asinfo::{AerospikeNode, ConfigContext, InfoClient, InfoError, InfoErrorKind, ServerVersion};
use crate::desired;
use crate::resolve::Resolved;

/// A rack's change that servers take at run time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InPlaceChange {
    pub from_hash: String,
    pub to_hash: String,
    pub updates: Vec<Update>,
}

/// Per rack id: the change from the applied config to the desired one, where every difference is dynamic for the
/// server version of the spec's image. Empty unless `enableDynamicConfigUpdate` is true.
pub(crate) fn in_place_changes(
    cluster: &AerospikeCluster,
    resolved: &Resolved,
    applied: Option<&Resolved>,
) -> BTreeMap<i32, InPlaceChange> {
    let mut out = BTreeMap::new();
    if cluster.spec.enable_dynamic_config_update != Some(true) {
        return out;
    }
    let Some(applied) = applied else { return out };
    // An image without a version (a digest) cannot be matched with the table: every change restarts.
    let Some(version) = crate::validate::image::parse(&cluster.spec.image).version else { return out };
    let (major, minor) = (version.first().copied().unwrap_or(0) as u32, version.get(1).copied().unwrap_or(0) as u32);
    for rack in &resolved.racks {
        let Some(new) = &rack.config else { continue };
        let Some(old) = applied.racks.iter().find(|r| r.name == rack.name).and_then(|r| r.config.as_ref()) else {
            continue;
        };
        if old.hash == new.hash {
            continue;
        }
        if let ChangePlan::InPlace(updates) = plan_change(&old.value, &new.value, major, minor) {
            out.insert(rack.id, InPlaceChange { from_hash: old.hash.clone(), to_hash: new.hash.clone(), updates });
        }
    }
    out
}

/// What happened to one pod.
#[derive(Debug)]
pub(crate) enum PodResult {
    Updated,
    /// The node refused or did not take a change: `partial` when some updates had been applied before.
    Refused {
        partial: bool,
        detail: String,
    },
}

/// Apply `change` to the node at `addr` and read every value back. Connection problems are errors (retried on the
/// next reconcile); refusals and values that did not take are a [`PodResult::Refused`].
pub(crate) async fn update_node(
    info: &dyn InfoClient,
    addr: SocketAddr,
    change: &InPlaceChange,
) -> Result<PodResult, InfoError> {
    let node = AerospikeNode::new(info, addr);
    let version = node.build().await?;
    let mut applied = 0usize;
    let mut sinks: Option<BTreeMap<String, String>> = None;
    for update in &change.updates {
        let sent = match &update.context {
            UpdateContext::Logging(sink) => {
                if sinks.is_none() {
                    sinks = Some(node.log_sinks().await?);
                }
                // The config's `console` sink is the server's `stderr`.
                let name = if sink == "console" { "stderr" } else { sink.as_str() };
                match sinks.as_ref().and_then(|s| s.get(name)) {
                    Some(id) => node.log_set(id, &update.key, &update.value).await,
                    None => {
                        let detail = format!("{}: the node has no log sink {name:?}", update.path);
                        return Ok(PodResult::Refused { partial: applied > 0, detail });
                    }
                }
            }
            other => {
                let context = config_context(other).expect("not logging");
                node.set_config(context, &update.key, &update.value, &version).await
            }
        };
        match sent {
            Ok(()) => applied += 1,
            Err(e) if refused(&e) => {
                let detail = format!("{} = {}: {}", update.path, update.value, e.kind);
                return Ok(PodResult::Refused { partial: applied > 0, detail });
            }
            Err(e) => return Err(e),
        }
    }
    verify(&node, change, &version).await
}

/// Read back every value set: a value the server reports differently did not take.
async fn verify(
    node: &AerospikeNode<'_>,
    change: &InPlaceChange,
    version: &ServerVersion,
) -> Result<PodResult, InfoError> {
    let mut read: BTreeMap<&UpdateContext, BTreeMap<String, String>> = BTreeMap::new();
    for update in &change.updates {
        let Some(context) = config_context(&update.context) else { continue };
        if !read.contains_key(&update.context) {
            let values = match node.get_config(context, version).await {
                Ok(v) => v,
                Err(e) if refused(&e) => BTreeMap::new(),
                Err(e) => return Err(e),
            };
            read.insert(&update.context, values);
        }
        // Servers name storage keys `storage-engine.<key>` in get-config; a key the server does not report at all
        // cannot be checked and counts as taken (it answered ok).
        let values = &read[&update.context];
        let reported = values.get(&update.key).or_else(|| values.get(&format!("storage-engine.{}", update.key)));
        if let Some(reported) = reported
            && !same_value(&update.value, reported)
        {
            let detail = format!("{}: set to {} but the node reports {reported}", update.path, update.value);
            return Ok(PodResult::Refused { partial: true, detail });
        }
    }
    Ok(PodResult::Updated)
}

fn config_context(c: &UpdateContext) -> Option<ConfigContext<'_>> {
    Some(match c {
        UpdateContext::Service => ConfigContext::Service,
        UpdateContext::Network => ConfigContext::Network,
        UpdateContext::Namespace(ns) => ConfigContext::Namespace(ns),
        UpdateContext::Set { namespace, set } => ConfigContext::Set { namespace, set },
        UpdateContext::Logging(_) => return None,
    })
}

/// The node answered and said no (as opposed to not answering).
fn refused(e: &InfoError) -> bool {
    matches!(e.kind, InfoErrorKind::Server(_) | InfoErrorKind::Unexpected(_) | InfoErrorKind::InvalidArgument(_))
}

/// Record the outcome on the pod: the new conf hash (and the server restart count) when it took the change, the
/// failure otherwise.
pub(crate) async fn record(
    api: &Api<Pod>,
    pod: &CachedPod,
    change: &InPlaceChange,
    result: &PodResult,
) -> kube::Result<()> {
    let annotations = match result {
        PodResult::Updated => json!({
            desired::ANNOTATION_CONF_HASH: change.to_hash,
            ANNOTATION_RESTARTS_AT_UPDATE: super::pods::server_restarts(pod).to_string(),
            ANNOTATION_FAILED: null,
        }),
        PodResult::Refused { partial, .. } => {
            let status = if *partial { "PartiallyFailed" } else { "Failed" };
            json!({ ANNOTATION_FAILED: format!("{status}:{}", change.to_hash) })
        }
    };
    // A pod recreated meanwhile was made from the new template: the annotations say nothing false about it.
    let patch = json!({"metadata": {"annotations": annotations}});
    api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
}
