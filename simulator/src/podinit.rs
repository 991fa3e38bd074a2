//! What a simulated node advertises to clients, decided as on a real pod: the pod's aerospike.conf is computed by the
//! operator's own pod-init code (`podinit::render_conf`) from the pod's init-container environment (Downward API
//! fields resolved from the pod object) and its rack ConfigMap (template, peers, and the facts the operator
//! publishes about where the pod landed). The access, alternate-access and TLS lines of that conf are what
//! `service-clear-std`, `service-clear-alt`, `service-tls-std` and `service-tls-alt` answer.
//!
//! Simulated: the node still listens on its pod IP (on the local plane node addresses and NodePorts lead nowhere),
//! and the `peers-*` answers keep giving those listening addresses so clients can tend the cluster.
use std::collections::BTreeMap;

use aerospike_kubernetes_operator::desired as ako_desired;
use aerospike_kubernetes_operator::desired::pod_network;
use aerospike_kubernetes_operator::podinit::{self, PodEnv};
use k8s_openapi::api::core::v1::Pod;

/// `host:port` lists a node advertises.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Advertised {
    pub(crate) clear_std: Vec<String>,
    pub(crate) clear_alt: Vec<String>,
    pub(crate) tls_std: Vec<String>,
    pub(crate) tls_alt: Vec<String>,
}

/// The value of a Downward API field path on `pod`.
fn field(pod: &Pod, path: &str) -> Option<String> {
    let status = pod.status.as_ref();
    match path {
        "metadata.name" => pod.metadata.name.clone(),
        "metadata.namespace" => pod.metadata.namespace.clone(),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        "spec.nodeName" => pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        _ => {
            let key = path.strip_prefix("metadata.annotations['")?.strip_suffix("']")?;
            pod.metadata.annotations.as_ref()?.get(key).cloned()
        }
    }
}

/// The init container's environment as the kubelet would give it.
fn environment(pod: &Pod) -> BTreeMap<String, String> {
    let init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .and_then(|c| c.iter().find(|c| c.name == ako_desired::INIT_CONTAINER_NAME));
    let mut out = BTreeMap::new();
    for var in init.and_then(|c| c.env.as_ref()).into_iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(from)) => from.field_ref.as_ref().and_then(|f| field(pod, &f.field_path)),
            _ => None,
        };
        if let Some(v) = value {
            out.insert(var.name.clone(), v);
        }
    }
    out
}

/// What the node advertises, or why pod-init would not finish yet (it waits, as the real step does).
pub(crate) fn advertised(pod: &Pod, config_map: &BTreeMap<String, String>) -> Result<Advertised, String> {
    let vars = environment(pod);
    let mut env = PodEnv::from_lookup(|k| vars.get(k).cloned()).map_err(|e| e.to_string())?;
    if pod_network::entry_needed(&env.network_policy) {
        let text = config_map.get(pod_network::CM_POD_NETWORK_KEY).map(String::as_str).unwrap_or_default();
        env.network = Some(podinit::network_entry(text, &env).ok_or("no pod-network entry for this pod yet")?);
    }
    let template = config_map.get(ako_desired::CM_TEMPLATE_KEY).ok_or("no template")?;
    let peers = config_map.get(ako_desired::CM_PEERS_KEY).map(String::as_str).unwrap_or_default();
    let (conf, _) = podinit::render_conf(template, peers, &env).map_err(|e| format!("{e:#}"))?;
    Ok(from_conf(&conf))
}

/// The advertised lists from a pod's aerospike.conf (`network.service`).
fn from_conf(conf: &str) -> Advertised {
    let mut stack: Vec<String> = Vec::new();
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in conf.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if line == "}" {
            stack.pop();
        } else if let Some(header) = line.strip_suffix('{') {
            stack.push(header.split_whitespace().next().unwrap_or_default().to_string());
        } else if stack == ["network", "service"] {
            let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            values.entry(key.to_string()).or_default().push(value.trim().to_string());
        }
    }
    let one = |k: &str| values.get(k).and_then(|v| v.first()).cloned();
    let list = |addresses: &str, port_key: &str, default_port: Option<String>| -> Vec<String> {
        let Some(port) = one(port_key).or(default_port) else { return Vec::new() };
        values.get(addresses).into_iter().flatten().map(|a| format!("{a}:{port}")).collect()
    };
    Advertised {
        clear_std: list("access-address", "access-port", one("port")),
        clear_alt: list("alternate-access-address", "alternate-access-port", one("port")),
        tls_std: list("tls-access-address", "tls-access-port", one("tls-port")),
        tls_alt: list("tls-alternate-access-address", "tls-alternate-access-port", one("tls-port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEMPLATE: &str = "network {\n    service {\n        access-address    <access-address>\n        access-port    3000\n        alternate-access-address    <alternate-access-address>\n        alternate-access-port    3000\n        port    3000\n    }\n    heartbeat {\n        port    3002\n    }\n}\nservice {\n    node-id    ENV_NODE_ID\n}\n";

    fn pod(policy: &str) -> Pod {
        let env = json!([
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "AEROSPIKE_CLUSTER_NAME", "value": "c"},
            {"name": "AEROSPIKE_RACK_ID", "value": "0"},
            {"name": "AEROSPIKE_NETWORK_POLICY", "value": policy},
        ]);
        serde_json::from_value(json!({
            "metadata": {"name": "c-0-1", "namespace": "db"},
            "spec": {"nodeName": "n1", "containers": [],
                     "initContainers": [{"name": ako_desired::INIT_CONTAINER_NAME, "env": env}]},
            "status": {"podIP": "10.0.0.9", "hostIP": "192.168.1.4"}
        }))
        .unwrap()
    }

    #[test]
    fn advertises_what_pod_init_writes() {
        let mut cm = BTreeMap::from([
            (ako_desired::CM_TEMPLATE_KEY.to_string(), TEMPLATE.to_string()),
            (ako_desired::CM_PEERS_KEY.to_string(), "c-0-0.c.db\nc-0-1.c.db\n".to_string()),
        ]);
        let err = advertised(&pod("{}"), &cm).unwrap_err();
        assert!(err.contains("no pod-network entry"), "{err}");
        let entry = pod_network::PodNetwork {
            node: "n1".into(),
            host_internal_ip: "192.168.1.4".into(),
            host_external_ip: "34.0.0.4".into(),
            ..Default::default()
        };
        cm.insert(pod_network::CM_POD_NETWORK_KEY.into(), pod_network::render(&[("c-0-1".to_string(), entry)].into()));
        let a = advertised(&pod("{}"), &cm).unwrap();
        assert_eq!(a.clear_std, ["192.168.1.4:3000"]);
        assert_eq!(a.clear_alt, ["34.0.0.4:3000"]);
        assert!(a.tls_std.is_empty());
        // A pod-only policy needs no entry.
        cm.remove(pod_network::CM_POD_NETWORK_KEY);
        let pod_only = r#"{"access":"pod","alternateAccess":"pod","tlsAccess":"pod","tlsAlternateAccess":"pod"}"#;
        let a = advertised(&pod(pod_only), &cm).unwrap();
        assert_eq!((a.clear_std, a.clear_alt), (vec!["10.0.0.9:3000".to_string()], vec!["10.0.0.9:3000".to_string()]));
    }
}
