//! Publishes where each pod landed for its init step, and keeps the per-pod NodePort Services (the decisions are
//! in `desired::pod_network`; this is the thin I/O around them).
//!
//! - Per-pod Services: when several pods share a node and a node address is advertised, each pod gets a NodePort
//!   Service named after it (the reference's), created for every pod the racks should have, deleted when its pod
//!   is gone for good (scale-down) or the policy no longer needs them. A restarted pod keeps its Service, so its
//!   node port stays the same.
//! - Pod facts: for each scheduled pod, the node's addresses and labels, the pod's CNI networks and NodePorts go
//!   into its rack ConfigMap under `pod-network.json`, applied with a field manager of its own so the desired
//!   ConfigMap's apply leaves the key alone. A Node is read only when a pod's entry is missing or names another
//!   node, so an unchanged cluster costs no requests.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use k8s_openapi::api::core::v1::{ConfigMap, Node, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use super::cached_pod::CachedPod;
use super::{Context, Error, apply};
use crate::api::AerospikeCluster;
use crate::desired::Desired;
use crate::desired::pod_network::{self, PodNetwork};

/// Field manager of the `pod-network.json` key of rack ConfigMaps.
pub const FIELD_MANAGER: &str = "aerospike-kubernetes-operator-pod-network";
/// Per-pod Service applies in flight at once for one cluster.
const POD_SERVICES_AT_ONCE: usize = 8;

/// Names of the pods the racks should have (`<rack>-<ordinal>`), whether they exist yet or not.
fn expected_pods(desired: &Desired) -> BTreeSet<String> {
    desired.racks.iter().flat_map(|r| (0..r.size.max(0)).map(move |i| format!("{}-{i}", r.name))).collect()
}

/// Keeps the per-pod Services and the rack ConfigMaps' pod facts current; returns the facts by pod name (for
/// status: hostExternalIP, servicePort).
pub(super) async fn publish(
    ctx: &Context,
    cluster: &AerospikeCluster,
    desired: &Desired,
    pods: &[Arc<CachedPod>],
) -> Result<BTreeMap<String, PodNetwork>, Error> {
    let name = cluster.name_any();
    let ns = cluster.namespace().ok_or(Error::NoNamespace)?;
    let policy = cluster.spec.aerospike_network_policy.clone().unwrap_or_default();
    let pod_spec = cluster.spec.pod_spec.clone().unwrap_or_default();
    let needs_ports = pod_network::pod_service_needed(pod_spec.multi_pod_per_host(), pod_spec.host_network, &policy);
    let live: Vec<&Arc<CachedPod>> = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();

    // Per-pod Services.
    let svc_api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    let mut wanted = BTreeSet::new();
    if needs_ports {
        wanted = expected_pods(desired);
        wanted.extend(live.iter().map(|p| p.name_any()));
        let labels = desired.headless_service.metadata.labels.clone().unwrap_or_default();
        let owner = cluster.controller_owner_ref(&()).ok_or(Error::NoNamespace)?;
        let config = desired.racks.first().map(|r| r.config.clone()).unwrap_or_default();
        let mut ports = Vec::new();
        if crate::aerospike_conf::has_plain_service_port(&config) {
            ports.push((pod_network::PORT_SERVICE, crate::aerospike_conf::service_port(&config)));
        }
        if let Some((_, tls_port)) = crate::aerospike_conf::service_tls(&config) {
            ports.push((pod_network::PORT_TLS_SERVICE, tls_port));
        }
        let metadata = cluster.spec.pod_service.as_ref().and_then(|s| s.metadata.as_ref());
        // Several at once: a NodePort Service's create waits for the API server's port and IP allocators, which
        // under load took seconds each (a 100-cluster creation: about 1 s for a cluster's three Services one
        // after the other, up to 11 s), and each pod's init step waits for its Service.
        let services: Vec<Service> =
            wanted.iter().map(|pod| pod_network::pod_service(pod, &ns, &labels, &owner, metadata, &ports)).collect();
        futures::stream::iter(services)
            .map(|svc| {
                let (api, store) = (svc_api.clone(), ctx.stores.services.clone());
                async move { apply::apply(&api, &store, svc).await }
            })
            .buffer_unordered(POD_SERVICES_AT_ONCE)
            .try_collect::<Vec<bool>>()
            .await?;
    }
    let stale: Vec<String> = ctx
        .stores
        .cluster_services(&ns, &name)
        .iter()
        .filter(|s| s.labels().contains_key(pod_network::LABEL_POD_SERVICE))
        .map(|s| s.name_any())
        .filter(|n| !wanted.contains(n))
        .collect();
    for svc in stale {
        apply::delete(&svc_api, &svc).await?;
    }

    // Pod facts, per rack ConfigMap.
    let mut all = BTreeMap::new();
    if !pod_network::entry_needed(&policy) {
        return Ok(all);
    }
    let node_api: Api<Node> = Api::all(ctx.client.clone());
    let cm_api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let mut nodes: HashMap<String, Option<Node>> = HashMap::new();
    for cm in &desired.config_maps {
        let rack = cm.name_any();
        let current = ctx
            .stores
            .config_maps
            .get(&ObjectRef::new(&rack).within(&ns))
            .and_then(|c| c.data.as_ref().and_then(|d| d.get(pod_network::CM_POD_NETWORK_KEY)).cloned());
        let published = current.as_deref().map(pod_network::parse).unwrap_or_default();
        let mut entries = BTreeMap::new();
        for pod in live.iter().filter(|p| p.name_any().rsplit_once('-').is_some_and(|(r, _)| r == rack)) {
            let pod: &CachedPod = pod;
            let pod_name = pod.name_any();
            let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
            if node_name.is_empty() {
                continue;
            }
            let service =
                needs_ports.then(|| ctx.stores.services.get(&ObjectRef::new(&pod_name).within(&ns))).flatten();
            // An entry already published for this pod on this node stays, unless its NodePorts changed.
            if let Some(old) = published.get(&pod_name).filter(|e| e.node == node_name) {
                let ports_same = !needs_ports || {
                    let fresh = pod_network::pod_network(pod, Some(&Node::default()), service.as_deref(), true);
                    fresh.is_some_and(|f| (f.mapped_port, f.mapped_tls_port) == (old.mapped_port, old.mapped_tls_port))
                };
                let networks_same = pod_network::network_status(pod) == old.networks;
                if ports_same && networks_same {
                    entries.insert(pod_name, old.clone());
                    continue;
                }
            }
            if !nodes.contains_key(&node_name) {
                let node = match node_api.get_opt(&node_name).await {
                    Ok(n) => n,
                    Err(e) => {
                        // E.g. the RBAC of an older release without `nodes get`: the pod still starts, with the
                        // host IP for both node addresses (the reference's fallback) and no configured addresses.
                        warn!(node = %node_name, error = %e, "could not read the node a pod runs on; using its host IP");
                        Some(Node::default())
                    }
                };
                nodes.insert(node_name.clone(), node);
            }
            let node = nodes.get(&node_name).and_then(Option::as_ref);
            if let Some(entry) = pod_network::pod_network(pod, node, service.as_deref(), needs_ports) {
                entries.insert(pod_name, entry);
            }
        }
        let text = pod_network::render(&entries);
        if current.as_deref() != Some(text.as_str()) && !(current.is_none() && entries.is_empty()) {
            let patch = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": rack, "namespace": ns},
                "data": {pod_network::CM_POD_NETWORK_KEY: text},
            });
            apply::patch(&cm_api, None, &rack, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
                .await?;
        }
        all.extend(entries);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_pods_of_every_rack() {
        let cluster: AerospikeCluster = serde_json::from_value(json!({
            "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
            "metadata": {"name": "c", "namespace": "ns", "uid": "u"},
            "spec": {"size": 3, "image": "aerospike/aerospike-server-enterprise:8.0.0.5",
                     "rackConfig": {"racks": [{"id": 1}, {"id": 2}]},
                     "aerospikeConfig": {"service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
                         "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
                         "namespaces": [{"name": "test", "replication-factor": 2,
                         "storage-engine": {"type": "memory", "data-size": 1073741824}}]}}
        }))
        .unwrap();
        let resolved = crate::resolve::resolve(&cluster);
        let build = crate::desired::BuildContext { init_image: "op:1".into() };
        let d = crate::desired::desired_state(&resolved, &build).unwrap();
        let names: Vec<String> = expected_pods(&d).into_iter().collect();
        assert_eq!(names, ["c-1-0", "c-1-1", "c-2-0"]);
    }
}
