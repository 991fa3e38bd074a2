//! The fake nodes kwok manages: their objects, and the readiness test used at start.
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Node;
use serde_json::json;

/// Annotation (and value) that hands a node to kwok (`--manage-nodes-with-annotation-selector`).
pub const KWOK_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");
/// The region label value of every fake node.
pub const REGION: &str = "local";
/// Zone label values; node `i` is in `ZONES[i % 3]`.
pub const ZONES: [&str; 3] = ["local-a", "local-b", "local-c"];

/// Name of fake node `i`.
pub fn node_name(i: usize) -> String {
    format!("kwok-node-{i}")
}

/// The ExternalIP of fake node `i` (TEST-NET-3: advertised by hostExternal, never contacted).
pub fn external_ip(i: usize) -> String {
    format!("203.0.113.{}", i + 1)
}

/// The `aerospike.com/configured-access-address` label of fake node `i` (TEST-NET-2).
pub fn configured_access_ip(i: usize) -> String {
    format!("198.51.100.{}", i + 1)
}

/// The `aerospike.com/configured-alternate-access-address` label of fake node `i`.
pub fn configured_alternate_access_ip(i: usize) -> String {
    format!("198.51.100.{}", i + 101)
}

/// Fake node `i`: annotated for kwok, with hostname/zone/region and configured-address labels, an InternalIP on
/// loopback, an ExternalIP and generous capacity. No conditions: kwok's node-initialize stage sets them (it only acts on nodes not yet Ready).
pub fn node_object(i: usize, ip: Ipv4Addr) -> Node {
    let name = node_name(i);
    let resources = json!({"cpu": "256", "memory": "1Ti", "pods": "250", "ephemeral-storage": "10Ti"});
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION.0: KWOK_ANNOTATION.1, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
                "topology.kubernetes.io/zone": ZONES[i % ZONES.len()],
                "topology.kubernetes.io/region": REGION,
                // What a user labels nodes with for the configuredIP network type (documentation ranges: never
                // contacted, only advertised).
                "aerospike.com/configured-access-address": configured_access_ip(i),
                "aerospike.com/configured-alternate-access-address": configured_alternate_access_ip(i),
            },
        },
        "spec": {},
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "addresses": [
                {"type": "InternalIP", "address": ip.to_string()},
                {"type": "ExternalIP", "address": external_ip(i)},
                {"type": "Hostname", "address": name},
            ],
        },
    }))
    .expect("node object")
}

/// Why a node is not usable for pods yet, or `None` if it is: it must be Ready and carry no `node.kubernetes.io/`
/// taint (the not-ready taint is added at creation and removed by the controller-manager once the node is Ready).
pub fn not_ready_reason(node: &Node) -> Option<String> {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    if ready != Some("True") {
        return Some(format!("condition Ready is {}", ready.unwrap_or("missing")));
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref());
    if let Some(t) = taints.and_then(|t| t.iter().find(|t| t.key.starts_with("node.kubernetes.io/"))) {
        return Some(format!("still tainted {}:{}", t.key, t.effect));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_labels_spread_zones() {
        let zones: Vec<String> = (0..6)
            .map(|i| {
                node_object(i, Ipv4Addr::new(127, 20, 255, 1)).metadata.labels.unwrap()["topology.kubernetes.io/zone"]
                    .clone()
            })
            .collect();
        assert_eq!(zones, ["local-a", "local-b", "local-c", "local-a", "local-b", "local-c"]);
        let n = node_object(0, Ipv4Addr::new(127, 20, 255, 1));
        assert_eq!(n.metadata.annotations.as_ref().unwrap()["kwok.x-k8s.io/node"], "fake");
        assert_eq!(not_ready_reason(&n).unwrap(), "condition Ready is missing");
    }
}
