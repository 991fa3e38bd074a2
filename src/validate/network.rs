//! spec.aerospikeNetworkPolicy: the reference's rules for custom interfaces (CNI networks through Multus).
use crate::api::{AerospikeCluster, FieldError};
use crate::desired::pod_network::ANNOTATION_NETWORKS;

/// Each customInterface type needs its network names, no host networking, and every name among the pod
/// annotation `k8s.v1.cni.cncf.io/networks` (entries without a namespace are in the cluster's namespace; a name
/// matches with or without that namespace).
pub(super) fn check(cluster: &AerospikeCluster, out: &mut Vec<FieldError>) {
    let Some(policy) = &cluster.spec.aerospike_network_policy else { return };
    let pod_spec = cluster.spec.pod_spec.clone().unwrap_or_default();
    let ns = cluster.metadata.namespace.clone().unwrap_or_default();
    let annotation = pod_spec.metadata.as_ref().and_then(|m| m.annotations.get(ANNOTATION_NETWORKS)).cloned();
    // Multus also takes a JSON list of {name, namespace}; its names count the same way.
    let declared: Vec<String> = match annotation.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(text) if text.starts_with('[') => serde_json::from_str::<Vec<serde_json::Value>>(text)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| {
                let name = v.get("name")?.as_str()?;
                let namespace = v.get("namespace").and_then(|n| n.as_str()).unwrap_or(&ns);
                Some(format!("{namespace}/{name}"))
            })
            .collect(),
        Some(text) => text
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            // `ns/name@interface`: the interface part is not in the name.
            .map(|n| n.split('@').next().unwrap_or(n))
            .map(|n| if n.contains('/') { n.to_string() } else { format!("{ns}/{n}") })
            .collect(),
    };
    let kinds = [
        ("access", &policy.access, &policy.custom_access_network_names, "customAccessNetworkNames"),
        (
            "alternateAccess",
            &policy.alternate_access,
            &policy.custom_alternate_access_network_names,
            "customAlternateAccessNetworkNames",
        ),
        ("tlsAccess", &policy.tls_access, &policy.custom_tls_access_network_names, "customTLSAccessNetworkNames"),
        (
            "tlsAlternateAccess",
            &policy.tls_alternate_access,
            &policy.custom_tls_alternate_access_network_names,
            "customTLSAlternateAccessNetworkNames",
        ),
        ("fabric", &policy.fabric, &policy.custom_fabric_network_names, "customFabricNetworkNames"),
        ("tlsFabric", &policy.tls_fabric, &policy.custom_tls_fabric_network_names, "customTLSFabricNetworkNames"),
    ];
    for (kind, ty, names, names_field) in kinds {
        if ty.as_deref() != Some("customInterface") {
            continue;
        }
        let base = "spec.aerospikeNetworkPolicy";
        if names.is_empty() {
            out.push(FieldError::new(
                format!("{base}.{names_field}"),
                format!("is required with {kind} type customInterface"),
            ));
            continue;
        }
        if pod_spec.host_network {
            out.push(FieldError::new(
                format!("{base}.{kind}"),
                "customInterface is not allowed with spec.podSpec.hostNetwork",
            ));
        }
        for (i, name) in names.iter().enumerate() {
            let namespaced = if name.contains('/') { name.clone() } else { format!("{ns}/{name}") };
            if !declared.contains(&namespaced) {
                out.push(FieldError::new(
                    format!("{base}.{names_field}[{i}]"),
                    format!(
                        "network {name:?} is not in the pod annotation {ANNOTATION_NETWORKS} \
                         (spec.podSpec.metadata.annotations)"
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(policy: serde_json::Value, pod_spec: serde_json::Value) -> Vec<String> {
        let cluster: AerospikeCluster = serde_json::from_value(json!({
            "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
            "metadata": {"name": "c", "namespace": "db"},
            "spec": {"size": 1, "image": "aerospike/aerospike-server-enterprise:8.0.0.5",
                     "aerospikeNetworkPolicy": policy, "podSpec": pod_spec}
        }))
        .unwrap();
        let mut out = Vec::new();
        check(&cluster, &mut out);
        out.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn custom_interface_rules() {
        let annotated = json!({"metadata": {"annotations": {ANNOTATION_NETWORKS: "net-a, other/net-b@eth2"}}});
        assert!(
            errors(
                json!({"access": "customInterface", "customAccessNetworkNames": ["net-a", "db/net-a", "other/net-b"]}),
                annotated.clone()
            )
            .is_empty()
        );
        let e = errors(json!({"access": "customInterface"}), annotated.clone());
        assert!(
            e[0].contains("spec.aerospikeNetworkPolicy.customAccessNetworkNames") && e[0].contains("required"),
            "{e:?}"
        );
        let e = errors(json!({"fabric": "customInterface", "customFabricNetworkNames": ["net-b"]}), annotated.clone());
        assert!(e[0].contains("customFabricNetworkNames[0]") && e[0].contains("\"net-b\""), "{e:?}");
        let e = errors(
            json!({"tlsAccess": "customInterface", "customTLSAccessNetworkNames": ["net-a"]}),
            json!({"hostNetwork": true, "metadata": {"annotations": {ANNOTATION_NETWORKS: "net-a"}}}),
        );
        assert!(
            e.iter().any(|m| m.contains("spec.aerospikeNetworkPolicy.tlsAccess") && m.contains("hostNetwork")),
            "{e:?}"
        );
        let json_list =
            json!({"metadata": {"annotations": {ANNOTATION_NETWORKS: r#"[{"name": "net-c", "namespace": "x"}]"#}}});
        assert!(
            errors(json!({"access": "customInterface", "customAccessNetworkNames": ["x/net-c"]}), json_list).is_empty()
        );
        // Types other than customInterface need no names.
        assert!(errors(json!({"access": "configuredIP", "alternateAccess": "hostExternal"}), json!({})).is_empty());
    }
}
