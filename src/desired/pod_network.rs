//! What a pod's init step needs to know about where the pod landed, decided from observed objects (pure).
//!
//! The reference's init container reads the Node, the pod's annotations and its per-pod Service through the API.
//! Our Aerospike pods have no API token, so the operator publishes the same facts in the rack ConfigMap the init
//! container already mounts (key [`CM_POD_NETWORK_KEY`], one entry per scheduled pod) and `pod-init` waits until its
//! entry is there and names the node it runs on:
//! - the node's InternalIP and ExternalIP (hostInternal / hostExternal; ExternalIP falls back to the host IP when
//!   the node has none, as the reference does),
//! - the node labels `aerospike.com/configured-access-address` / `-alternate-access-address` (configuredIP),
//! - the pod's CNI network-status annotation, per network name (customInterface),
//! - the NodePorts of the pod's own Service (multiPodPerHost with a node network type).
//!
//! The per-pod NodePort Services themselves are built here too ([`pod_service`]).
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::{Deserialize, Serialize};

use super::PodRead;
use crate::api::NetworkPolicy;

/// Rack ConfigMap key: JSON map of pod name -> [`PodNetwork`], written by the operator (its own field manager, so
/// the desired ConfigMap's apply leaves it alone).
pub const CM_POD_NETWORK_KEY: &str = "pod-network.json";
/// Node label: the address advertised for `configuredIP` access (reference name).
pub const LABEL_CONFIGURED_ACCESS: &str = "aerospike.com/configured-access-address";
/// Node label: the address advertised for `configuredIP` alternate access (reference name).
pub const LABEL_CONFIGURED_ALTERNATE_ACCESS: &str = "aerospike.com/configured-alternate-access-address";
/// Pod annotation written by the CNI (Multus): the pod's networks and their IPs.
pub const ANNOTATION_NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";
/// Pod annotation the user sets for Multus: the extra networks a pod joins (checked by the webhook).
pub const ANNOTATION_NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
/// Label on the per-pod Services: the pod they serve (also their name).
pub const LABEL_POD_SERVICE: &str = "aerospike.com/pod-service";
/// Service port names of the per-pod Services (the reference's, read back by its init container too).
pub const PORT_SERVICE: &str = "service";
pub const PORT_TLS_SERVICE: &str = "tls-service";

/// What pod-init needs about one scheduled pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodNetwork {
    /// The node the facts are about; pod-init only trusts an entry naming its own node.
    pub node: String,
    pub host_internal_ip: String,
    pub host_external_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_access_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_alternate_access_ip: Option<String>,
    /// NodePort of the pod's Service for the service port (multiPodPerHost with a node network type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_port: Option<u16>,
    /// NodePort for the TLS service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_tls_port: Option<u16>,
    /// CNI network name -> the pod's IPs on it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Vec<String>>,
}

/// The access types of a policy with their defaults (access, alternateAccess, tlsAccess, tlsAlternateAccess).
pub fn access_types(policy: &NetworkPolicy) -> [String; 4] {
    let t = |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| default.to_string());
    [
        t(&policy.access, "hostInternal"),
        t(&policy.alternate_access, "hostExternal"),
        t(&policy.tls_access, "hostInternal"),
        t(&policy.tls_alternate_access, "hostExternal"),
    ]
}

/// Some access type advertises a node address (hostInternal, hostExternal, configuredIP): the reference's
/// "node network".
pub fn uses_node_network(policy: &NetworkPolicy) -> bool {
    access_types(policy).iter().any(|t| t != "pod" && t != "customInterface")
}

/// Per-pod NodePort Services are needed: several pods share a node and a node address is advertised, so each
/// pod's service port must be reachable on its own node port (the reference's podServiceNeeded).
pub fn pod_service_needed(multi_pod_per_host: bool, host_network: bool, policy: &NetworkPolicy) -> bool {
    multi_pod_per_host && !host_network && uses_node_network(policy)
}

/// Whether pod-init needs a [`PodNetwork`] entry at all (pod-only policies without custom fabric do not).
pub fn entry_needed(policy: &NetworkPolicy) -> bool {
    access_types(policy).iter().any(|t| t != "pod") || policy.fabric.is_some() || policy.tls_fabric.is_some()
}

/// The entry for one pod, or None while it cannot be complete: not scheduled yet (no node or host IP), its Node not
/// read, or its Service without the NodePorts pod-init needs.
pub fn pod_network(
    pod: &impl PodRead,
    node: Option<&Node>,
    service: Option<&Service>,
    needs_ports: bool,
) -> Option<PodNetwork> {
    let node_name = pod.node_name().filter(|n| !n.is_empty())?.to_string();
    let host_ip = pod.host_ip().filter(|n| !n.is_empty())?.to_string();
    let node = node?;
    let mut entry = PodNetwork {
        node: node_name,
        host_internal_ip: host_ip.clone(),
        host_external_ip: host_ip,
        ..Default::default()
    };
    // The reference takes IPv4 addresses of the node's status.
    let ipv4 = |a: &str| a.parse::<std::net::Ipv4Addr>().is_ok();
    for address in node.status.as_ref().and_then(|s| s.addresses.as_ref()).into_iter().flatten() {
        match address.type_.as_str() {
            "InternalIP" if ipv4(&address.address) => entry.host_internal_ip = address.address.clone(),
            "ExternalIP" if ipv4(&address.address) => entry.host_external_ip = address.address.clone(),
            _ => {}
        }
    }
    let labels = node.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    entry.configured_access_ip = label(LABEL_CONFIGURED_ACCESS);
    entry.configured_alternate_access_ip = label(LABEL_CONFIGURED_ALTERNATE_ACCESS);
    entry.networks = network_status(pod);
    if needs_ports {
        let ports = service?.spec.as_ref()?.ports.as_ref()?;
        let node_port = |name: &str| {
            ports.iter().find(|p| p.name.as_deref() == Some(name)).and_then(|p| p.node_port).map(|p| p as u16)
        };
        entry.mapped_port = node_port(PORT_SERVICE);
        entry.mapped_tls_port = node_port(PORT_TLS_SERVICE);
        if entry.mapped_port.is_none() && entry.mapped_tls_port.is_none() {
            return None;
        }
    }
    Some(entry)
}

/// The pod's networks from the CNI's network-status annotation (name -> IPs); empty when absent or unreadable
/// (pod-init then says which network it misses).
pub fn network_status(pod: &impl PodRead) -> BTreeMap<String, Vec<String>> {
    #[derive(Deserialize)]
    struct Status {
        name: String,
        #[serde(default)]
        ips: Vec<String>,
    }
    let Some(text) = pod.meta().annotations.as_ref().and_then(|a| a.get(ANNOTATION_NETWORK_STATUS)) else {
        return BTreeMap::new();
    };
    let list: Vec<Status> = serde_json::from_str(text).unwrap_or_default();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in list {
        out.entry(s.name).or_default().extend(s.ips);
    }
    out
}

/// The rack ConfigMap's value for [`CM_POD_NETWORK_KEY`] (sorted, stable).
pub fn render(entries: &BTreeMap<String, PodNetwork>) -> String {
    serde_json::to_string_pretty(entries).expect("plain data serialises")
}

/// Reads [`CM_POD_NETWORK_KEY`]; a missing or unreadable value is an empty map.
pub fn parse(text: &str) -> BTreeMap<String, PodNetwork> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The per-pod NodePort Service of `pod` (the reference's: named as the pod, selecting it by its StatefulSet pod
/// name label, `externalTrafficPolicy: Local`, not-ready addresses published, one port per Aerospike service port).
pub fn pod_service(
    pod: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    owner: &OwnerReference,
    metadata: Option<&crate::api::ObjectMetaTemplate>,
    ports: &[(&str, u16)],
) -> Service {
    let mut all_labels = metadata.map(|m| m.labels.clone()).unwrap_or_default();
    all_labels.extend(labels.clone());
    all_labels.insert(LABEL_POD_SERVICE.into(), pod.into());
    let annotations = metadata.map(|m| m.annotations.clone()).filter(|a| !a.is_empty());
    Service {
        metadata: ObjectMeta {
            name: Some(pod.into()),
            namespace: Some(namespace.into()),
            labels: Some(all_labels),
            annotations,
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("NodePort".into()),
            publish_not_ready_addresses: Some(true),
            external_traffic_policy: Some("Local".into()),
            selector: Some(BTreeMap::from([("statefulset.kubernetes.io/pod-name".into(), pod.into())])),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port)| ServicePort {
                        name: Some((*name).into()),
                        port: i32::from(*port),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn policy(v: serde_json::Value) -> NetworkPolicy {
        serde_json::from_value(v).unwrap()
    }

    fn pod(annotations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "c-0-1", "annotations": annotations},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"hostIP": "10.1.0.7"}
        }))
        .unwrap()
    }

    fn node(addresses: serde_json::Value, labels: serde_json::Value) -> Node {
        serde_json::from_value(
            json!({"metadata": {"name": "n1", "labels": labels}, "status": {"addresses": addresses}}),
        )
        .unwrap()
    }

    #[test]
    fn node_addresses_and_labels() {
        let n = node(
            json!([{"type": "InternalIP", "address": "10.1.0.7"}, {"type": "ExternalIP", "address": "2001:db8::1"},
                   {"type": "ExternalIP", "address": "34.1.2.3"}]),
            json!({LABEL_CONFIGURED_ACCESS: "192.0.2.10", LABEL_CONFIGURED_ALTERNATE_ACCESS: " "}),
        );
        let e = pod_network(&pod(json!({})), Some(&n), None, false).unwrap();
        assert_eq!(e.node, "n1");
        assert_eq!(e.host_internal_ip, "10.1.0.7");
        assert_eq!(e.host_external_ip, "34.1.2.3", "IPv4 ExternalIP wins");
        assert_eq!(e.configured_access_ip.as_deref(), Some("192.0.2.10"));
        assert_eq!(e.configured_alternate_access_ip, None, "a blank label is no address");
    }

    #[test]
    fn external_ip_falls_back_to_the_host_ip() {
        let n = node(json!([{"type": "InternalIP", "address": "10.1.0.7"}]), json!({}));
        let e = pod_network(&pod(json!({})), Some(&n), None, false).unwrap();
        assert_eq!(e.host_external_ip, "10.1.0.7");
    }

    #[test]
    fn incomplete_until_scheduled_node_read_and_ports_allocated() {
        let n = node(json!([]), json!({}));
        let mut unscheduled = pod(json!({}));
        unscheduled.status = None;
        assert_eq!(pod_network(&unscheduled, Some(&n), None, false), None);
        assert_eq!(pod_network(&pod(json!({})), None, None, false), None);
        assert_eq!(pod_network(&pod(json!({})), Some(&n), None, true), None, "needs the pod's Service");
        let svc: Service = serde_json::from_value(json!({"spec": {"ports": [
            {"name": "service", "port": 3000, "nodePort": 31001}, {"name": "tls-service", "port": 4333, "nodePort": 31002}
        ]}}))
        .unwrap();
        let e = pod_network(&pod(json!({})), Some(&n), Some(&svc), true).unwrap();
        assert_eq!((e.mapped_port, e.mapped_tls_port), (Some(31001), Some(31002)));
    }

    #[test]
    fn cni_network_status_by_name() {
        let status = json!([
            {"name": "cbr0", "ips": ["10.244.1.5"], "default": true},
            {"name": "aerospike/net-a", "interface": "net1", "ips": ["192.168.50.5", "192.168.50.6"]}
        ]);
        let p = pod(json!({ANNOTATION_NETWORK_STATUS: status.to_string()}));
        let nets = network_status(&p);
        assert_eq!(nets["aerospike/net-a"], ["192.168.50.5", "192.168.50.6"]);
        assert_eq!(nets["cbr0"], ["10.244.1.5"]);
        assert!(network_status(&pod(json!({ANNOTATION_NETWORK_STATUS: "not json"}))).is_empty());
    }

    #[test]
    fn which_policies_need_what() {
        let default = policy(json!({}));
        assert!(uses_node_network(&default), "alternateAccess defaults to hostExternal");
        assert!(entry_needed(&default));
        let pod_only =
            policy(json!({"access": "pod", "alternateAccess": "pod", "tlsAccess": "pod", "tlsAlternateAccess": "pod"}));
        assert!(!uses_node_network(&pod_only));
        assert!(!entry_needed(&pod_only));
        assert!(!pod_service_needed(true, false, &pod_only));
        assert!(pod_service_needed(true, false, &default));
        assert!(!pod_service_needed(false, false, &default), "one pod per node uses the host port");
        assert!(!pod_service_needed(true, true, &default), "host networking binds the node's ports");
        let custom = policy(json!({"access": "customInterface", "alternateAccess": "pod", "tlsAccess": "pod",
                                   "tlsAlternateAccess": "pod", "customAccessNetworkNames": ["n"]}));
        assert!(!uses_node_network(&custom));
        assert!(entry_needed(&custom));
    }

    #[test]
    fn entries_round_trip() {
        let mut m = BTreeMap::new();
        m.insert("c-0-0".to_string(), PodNetwork { node: "n".into(), mapped_port: Some(30000), ..Default::default() });
        assert_eq!(parse(&render(&m)), m);
        assert!(parse("garbage").is_empty());
    }
}
