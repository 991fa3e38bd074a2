//! Read-only helpers over an aerospikeConfig for the controller and the webhooks. They never fail: an
//! absent or malformed value reads as "not set" (validation is the webhook's job, with [`super::render`]
//! and [`super::apply_defaults`] reporting shapes).

use serde_json::Value;

use super::number_as_i128;

/// What the controller and the validating webhook need to know about one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Position in `namespaces` (for error paths such as `aerospikeConfig.namespaces[<index>]`).
    pub index: usize,
    /// `name`; empty when missing or not a string.
    pub name: String,
    /// `replication-factor`, 2 when not set.
    pub replication_factor: u32,
    /// `strong-consistency: true`.
    pub strong_consistency: bool,
    /// `storage-engine` type: the plain string (`memory`) or the map's `type` (`device`, `pmem`, ...);
    /// `None` when not set.
    pub storage_engine: Option<String>,
    /// `storage-engine.devices` as written (an entry may be `<device>:<shadow device>`).
    pub devices: Vec<String>,
    /// `storage-engine.files`.
    pub files: Vec<String>,
}

fn at<'a>(config: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(config, |v, k| v.get(*k))
}

fn port_at(config: &Value, path: &[&str]) -> Option<u16> {
    let p = number_as_i128(at(config, path)?)?;
    u16::try_from(p).ok().filter(|p| *p != 0)
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// `network.service.port`, 3000 when not set (or not a valid port).
pub fn service_port(config: &Value) -> u16 {
    port_at(config, &["network", "service", "port"]).unwrap_or(3000)
}

/// `network.service.tls-name` and `tls-port` when both are set.
pub fn service_tls(config: &Value) -> Option<(String, u16)> {
    let name = at(config, &["network", "service", "tls-name"])?.as_str().filter(|s| !s.is_empty())?;
    Some((name.to_string(), port_at(config, &["network", "service", "tls-port"])?))
}

/// `network.service.port` is set, or no TLS port replaces it (the server then listens on 3000).
pub fn has_plain_service_port(config: &Value) -> bool {
    at(config, &["network", "service", "port"]).is_some_and(|v| !v.is_null()) || service_tls(config).is_none()
}

/// How the operator reaches a node's service: plain TCP on `port`, or TLS on `tls-port` verifying the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEndpoint {
    Plain(u16),
    Tls { name: String, port: u16 },
}

impl ServiceEndpoint {
    pub fn port(&self) -> u16 {
        match self {
            ServiceEndpoint::Plain(p) | ServiceEndpoint::Tls { port: p, .. } => *p,
        }
    }
}

/// Where the operator connects, from a node's config: TLS whenever `network.service` has a `tls-name` and a
/// `tls-port` (the reference's rule), else the plain `port` (3000 when not set). `applied` is the config the
/// pods ran before (the status copy): while TLS is being added to a cluster that served plain TCP, the pods do
/// not listen on the TLS port yet, so the plain port is used as long as the spec keeps one.
pub fn operator_endpoint(config: &Value, applied: Option<&Value>) -> ServiceEndpoint {
    let plain = port_at(config, &["network", "service", "port"]);
    match service_tls(config) {
        Some((name, port)) => {
            let rolling_in = applied
                .is_some_and(|a| service_tls(a).is_none() && port_at(a, &["network", "service", "port"]).is_some());
            match plain {
                Some(p) if rolling_in => ServiceEndpoint::Plain(p),
                _ => ServiceEndpoint::Tls { name, port },
            }
        }
        None => ServiceEndpoint::Plain(plain.unwrap_or(3000)),
    }
}

/// `tls-authenticate-client` of `network.service`: `None` when the node does not ask for client certificates
/// (`false`), `Some(empty)` for `any` (the server's default), else the names a client certificate must carry.
pub fn tls_authenticate_client(config: &Value) -> Option<Vec<String>> {
    match at(config, &["network", "service", "tls-authenticate-client"]) {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Bool(false)) => None,
        Some(Value::String(s)) if s == "false" => None,
        Some(Value::String(s)) if s == "any" => Some(Vec::new()),
        other => Some(string_list(other).into_iter().filter(|n| n != "any").collect()),
    }
}

/// The names of `network.tls[]`.
pub fn tls_names(config: &Value) -> Vec<String> {
    at(config, &["network", "tls"])
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|t| t.get("name")?.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `network.heartbeat.port`.
pub fn heartbeat_port(config: &Value) -> Option<u16> {
    port_at(config, &["network", "heartbeat", "port"])
}

/// `network.heartbeat.tls-port`.
pub fn heartbeat_tls_port(config: &Value) -> Option<u16> {
    port_at(config, &["network", "heartbeat", "tls-port"])
}

/// `network.fabric.port`.
pub fn fabric_port(config: &Value) -> Option<u16> {
    port_at(config, &["network", "fabric", "port"])
}

/// `network.fabric.tls-port`.
pub fn fabric_tls_port(config: &Value) -> Option<u16> {
    port_at(config, &["network", "fabric", "tls-port"])
}

/// The namespaces of a config, in CR order (entries that are not objects are left out).
pub fn namespaces(config: &Value) -> Vec<NamespaceInfo> {
    let Some(list) = config.get("namespaces").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter(|(_, ns)| ns.is_object())
        .map(|(index, ns)| {
            let engine = ns.get("storage-engine");
            NamespaceInfo {
                index,
                name: ns.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                replication_factor: ns
                    .get("replication-factor")
                    .and_then(number_as_i128)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(2),
                strong_consistency: match ns.get("strong-consistency") {
                    Some(Value::Bool(b)) => *b,
                    Some(Value::String(s)) => s == "true",
                    _ => false,
                },
                storage_engine: match engine {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Object(m)) => m.get("type").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                },
                devices: string_list(engine.and_then(|e| e.get("devices"))),
                files: string_list(engine.and_then(|e| e.get("files"))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn ports() {
        let c = json!({"network": {"service": {"port": 3100.0, "tls-name": "t", "tls-port": 4333},
            "heartbeat": {"port": 3002, "tls-port": 3012}, "fabric": {"port": 3001}}});
        assert_eq!(service_port(&c), 3100);
        assert_eq!(service_tls(&c), Some(("t".to_string(), 4333)));
        assert_eq!(heartbeat_port(&c), Some(3002));
        assert_eq!(heartbeat_tls_port(&c), Some(3012));
        assert_eq!(fabric_port(&c), Some(3001));
        assert_eq!(fabric_tls_port(&c), None);
        let empty = json!({});
        assert_eq!(service_port(&empty), 3000);
        assert_eq!(service_port(&json!({"network": {"service": {"port": "x"}}})), 3000);
        assert_eq!(service_port(&json!({"network": {"service": {"port": 70000}}})), 3000);
        assert_eq!(heartbeat_port(&json!({"network": "x"})), None);
        assert_eq!(service_tls(&json!({"network": {"service": {"tls-port": 4333}}})), None);
    }

    #[test]
    fn namespace_infos() {
        let c = json!({"namespaces": [
            {"name": "mem", "storage-engine": "memory"},
            {"name": "dev", "replication-factor": 3, "strong-consistency": true,
             "storage-engine": {"type": "device", "devices": ["/dev/a", "/dev/b:/dev/c"]}},
            "junk",
            {"replication-factor": 1.0, "storage-engine": {"type": "device", "files": "/opt/f.dat"}}
        ]});
        assert_eq!(
            namespaces(&c),
            vec![
                NamespaceInfo {
                    index: 0,
                    name: "mem".into(),
                    replication_factor: 2,
                    strong_consistency: false,
                    storage_engine: Some("memory".into()),
                    devices: vec![],
                    files: vec![]
                },
                NamespaceInfo {
                    index: 1,
                    name: "dev".into(),
                    replication_factor: 3,
                    strong_consistency: true,
                    storage_engine: Some("device".into()),
                    devices: vec!["/dev/a".into(), "/dev/b:/dev/c".into()],
                    files: vec![]
                },
                NamespaceInfo {
                    index: 3,
                    name: String::new(),
                    replication_factor: 1,
                    strong_consistency: false,
                    storage_engine: Some("device".into()),
                    devices: vec![],
                    files: vec!["/opt/f.dat".into()]
                },
            ]
        );
        assert_eq!(namespaces(&json!({"namespaces": {"a": {}}})), vec![]);
    }

    #[test]
    fn the_operator_uses_tls_when_the_service_has_a_tls_port() {
        let tls_only = json!({"network": {"service": {"tls-name": "t1", "tls-port": 4333}}});
        assert_eq!(operator_endpoint(&tls_only, None), ServiceEndpoint::Tls { name: "t1".into(), port: 4333 });
        let both = json!({"network": {"service": {"port": 3000, "tls-name": "t1", "tls-port": 4333}}});
        assert_eq!(operator_endpoint(&both, None), ServiceEndpoint::Tls { name: "t1".into(), port: 4333 });
        assert_eq!(operator_endpoint(&both, Some(&both)).port(), 4333);
        // TLS being added: the pods still run the plain config, so the plain port as long as there is one.
        let plain = json!({"network": {"service": {"port": 3000}}});
        assert_eq!(operator_endpoint(&both, Some(&plain)), ServiceEndpoint::Plain(3000));
        assert_eq!(operator_endpoint(&tls_only, Some(&plain)).port(), 4333);
        assert_eq!(operator_endpoint(&plain, None), ServiceEndpoint::Plain(3000));
        assert_eq!(operator_endpoint(&json!({}), None), ServiceEndpoint::Plain(3000));
        // A tls-port without tls-name is not TLS for the operator (validation refuses it).
        assert_eq!(operator_endpoint(&json!({"network": {"service": {"tls-port": 4333}}}), None).port(), 3000);
    }

    #[test]
    fn tls_authenticate_client_forms() {
        let svc = |v: Value| json!({"network": {"service": {"tls-authenticate-client": v}}});
        assert_eq!(tls_authenticate_client(&json!({})), Some(vec![]));
        assert_eq!(tls_authenticate_client(&svc(json!("any"))), Some(vec![]));
        assert_eq!(tls_authenticate_client(&svc(json!("false"))), None);
        assert_eq!(tls_authenticate_client(&svc(json!(false))), None);
        assert_eq!(tls_authenticate_client(&svc(json!(["op", "app"]))), Some(vec!["op".into(), "app".into()]));
        assert_eq!(tls_authenticate_client(&svc(json!("op"))), Some(vec!["op".into()]));
        let tls = json!({"network": {"tls": [{"name": "a"}, {"name": "b", "cert-file": "/x"}]}});
        assert_eq!(tls_names(&tls), vec!["a".to_string(), "b".to_string()]);
    }
}
