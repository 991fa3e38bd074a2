//! Operator-managed values injected before rendering (docs/aerospike-conf.md §6; the reference's mutating webhook).

use serde_json::{Map, Value, json};

use super::{
    ACCESS_ADDRESS_PLACEHOLDER, ALTERNATE_ACCESS_ADDRESS_PLACEHOLDER, ConfError, NODE_ID_PLACEHOLDER, ROOT_PATH,
    TLS_ACCESS_ADDRESS_PLACEHOLDER, TLS_ALTERNATE_ACCESS_ADDRESS_PLACEHOLDER, child_path, index_path, number_as_i128,
};

/// What [`apply_defaults`] needs to know about the cluster and the rack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultsContext {
    /// The AerospikeCluster name: becomes `service.cluster-name`.
    pub cluster_name: String,
    /// The rack id (0 for the default rack): becomes `rack-id` of the rack-enabled namespaces.
    pub rack_id: i32,
    /// `rackConfig.namespaces`: the rack-enabled namespaces. `None` (not set) behaves like an empty list, as
    /// in the reference: no namespace gets a `rack-id`.
    pub rack_namespaces: Option<Vec<String>>,
}

/// Injects the operator-managed values into a (per-rack, merged) aerospikeConfig:
///
/// - `service.node-id: ENV_NODE_ID` (placeholder) and `service.cluster-name: <cluster name>`;
/// - `network.service` with `port`: `access-port` and `alternate-access-port` = port,
///   `access-addresses: ["<access-address>"]`, `alternate-access-addresses: ["<alternate-access-address>"]`;
///   without `port` those four keys are removed. With `tls-name` and `tls-port`: the `tls-*` equivalents, and
///   `tls-authenticate-client: any` unless set; without, the four `tls-*access*` keys are removed;
/// - `network.heartbeat.mode: mesh`;
/// - a `{name: console, any: info}` logging entry when no console entry exists;
/// - `rack-id: <rack id>` on the namespaces listed in `rackConfig.namespaces`; a user `rack-id` on other
///   namespaces is removed (the operator owns it), and a `rack-id: 0` left over from an older release is
///   replaced.
///
/// `network`, `network.service`, `network.heartbeat` and `network.fabric` are required (as in the
/// reference). A user value that contradicts an injected one is an error naming its path, e.g.
/// `aerospikeConfig.network.heartbeat.mode` for `mode: multicast`. Applying the defaults twice gives the
/// same result as applying them once.
pub fn apply_defaults(config: &mut Value, ctx: &DefaultsContext) -> Result<(), ConfError> {
    let found = super::type_name(config);
    let Value::Object(root) = config else {
        return Err(ConfError::WrongType { path: ROOT_PATH.to_string(), expected: "an object", found });
    };
    namespace_defaults(root, ctx)?;
    service_defaults(root, ctx)?;
    network_defaults(root)?;
    logging_defaults(root)?;
    Ok(())
}

/// The object under `key`, created empty when absent (or null) if `create`.
fn object_at<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
    create: bool,
) -> Result<&'a mut Map<String, Value>, ConfError> {
    let path = child_path(path, key);
    if map.get(key).is_none_or(Value::is_null) {
        if !create {
            return Err(ConfError::missing(path));
        }
        map.insert(key.to_string(), Value::Object(Map::new()));
    }
    match map.get_mut(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(ConfError::wrong_type(path, "an object", other)),
        None => Err(ConfError::missing(path)),
    }
}

/// Same value for aerospike.conf purposes: numbers compared by value (3000 == 3000.0), a string equal to a
/// one-element list of that string.
fn equivalent(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => match (number_as_i128(a), number_as_i128(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_f64() == b.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equivalent(p, q)),
        (Value::String(s), Value::Array(l)) | (Value::Array(l), Value::String(s)) => {
            l.len() == 1 && l[0].as_str() == Some(s.as_str())
        }
        _ => a == b,
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Sets `key` to `value`; an existing different value is a conflict.
fn set_managed(map: &mut Map<String, Value>, key: &str, value: Value, path: &str) -> Result<(), ConfError> {
    if let Some(existing) = map.get(key).filter(|v| !v.is_null())
        && !equivalent(existing, &value)
    {
        return Err(ConfError::Conflict {
            path: child_path(path, key),
            found: describe(existing),
            expected: describe(&value),
        });
    }
    map.insert(key.to_string(), value);
    Ok(())
}

fn namespace_defaults(root: &mut Map<String, Value>, ctx: &DefaultsContext) -> Result<(), ConfError> {
    let path = child_path(ROOT_PATH, "namespaces");
    let list = match root.get_mut("namespaces") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(ConfError::wrong_type(path, "a list", other)),
    };
    let rack_namespaces: &[String] = ctx.rack_namespaces.as_deref().unwrap_or(&[]);
    for (i, entry) in list.iter_mut().enumerate() {
        let ns_path = index_path(&path, i);
        let found = super::type_name(entry);
        let Value::Object(ns) = entry else {
            return Err(ConfError::WrongType { path: ns_path, expected: "an object", found });
        };
        let name_path = child_path(&ns_path, "name");
        let name = match ns.get("name") {
            None | Some(Value::Null) => return Err(ConfError::missing(name_path)),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(ConfError::invalid(name_path, "empty name"));
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(ConfError::wrong_type(name_path, "a string", other)),
        };
        if rack_namespaces.contains(&name) {
            // rack-id 0 was written by older releases for every namespace: replace it.
            if ctx.rack_id != 0 && ns.get("rack-id").is_some_and(|v| number_as_i128(v) == Some(0)) {
                ns.remove("rack-id");
            }
            set_managed(ns, "rack-id", json!(ctx.rack_id), &ns_path)?;
        } else {
            ns.remove("rack-id");
        }
    }
    Ok(())
}

fn service_defaults(root: &mut Map<String, Value>, ctx: &DefaultsContext) -> Result<(), ConfError> {
    let path = child_path(ROOT_PATH, "service");
    let service = object_at(root, "service", ROOT_PATH, true)?;
    set_managed(service, "node-id", json!(NODE_ID_PLACEHOLDER), &path)?;
    set_managed(service, "cluster-name", json!(ctx.cluster_name), &path)?;
    Ok(())
}

/// A port field: absent/null -> None; an integral number in 0..=65535 -> the value; anything else is an error.
fn port_field(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<Value>, ConfError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match number_as_i128(v) {
            Some(p) if (0..=65535).contains(&p) => Ok(Some(v.clone())),
            _ => Err(ConfError::invalid(child_path(path, key), format!("{} is not a valid port", describe(v)))),
        },
    }
}

fn network_defaults(root: &mut Map<String, Value>) -> Result<(), ConfError> {
    let net_path = child_path(ROOT_PATH, "network");
    let network = object_at(root, "network", ROOT_PATH, false)?;

    let path = child_path(&net_path, "service");
    let service = object_at(network, "service", &net_path, false)?;
    match port_field(service, "port", &path)? {
        Some(port) => {
            set_managed(service, "access-port", port.clone(), &path)?;
            set_managed(service, "access-addresses", json!([ACCESS_ADDRESS_PLACEHOLDER]), &path)?;
            set_managed(service, "alternate-access-port", port, &path)?;
            set_managed(service, "alternate-access-addresses", json!([ALTERNATE_ACCESS_ADDRESS_PLACEHOLDER]), &path)?;
        }
        None => {
            for key in ["access-port", "access-addresses", "alternate-access-port", "alternate-access-addresses"] {
                service.remove(key);
            }
        }
    }
    let tls_name = match service.get("tls-name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
        Some(other) => {
            return Err(ConfError::wrong_type(child_path(&path, "tls-name"), "a string", other));
        }
    };
    let tls_port = port_field(service, "tls-port", &path)?;
    match (tls_name, tls_port) {
        (Some(_), Some(port)) => {
            set_managed(service, "tls-access-port", port.clone(), &path)?;
            set_managed(service, "tls-access-addresses", json!([TLS_ACCESS_ADDRESS_PLACEHOLDER]), &path)?;
            set_managed(service, "tls-alternate-access-port", port, &path)?;
            set_managed(
                service,
                "tls-alternate-access-addresses",
                json!([TLS_ALTERNATE_ACCESS_ADDRESS_PLACEHOLDER]),
                &path,
            )?;
            if service.get("tls-authenticate-client").is_none_or(Value::is_null) {
                service.insert("tls-authenticate-client".to_string(), json!("any"));
            }
        }
        _ => {
            for key in [
                "tls-access-port",
                "tls-access-addresses",
                "tls-alternate-access-port",
                "tls-alternate-access-addresses",
            ] {
                service.remove(key);
            }
        }
    }

    let path = child_path(&net_path, "heartbeat");
    let heartbeat = object_at(network, "heartbeat", &net_path, false)?;
    set_managed(heartbeat, "mode", json!("mesh"), &path)?;

    object_at(network, "fabric", &net_path, false)?;
    Ok(())
}

fn logging_defaults(root: &mut Map<String, Value>) -> Result<(), ConfError> {
    let path = child_path(ROOT_PATH, "logging");
    if root.get("logging").is_none_or(Value::is_null) {
        root.insert("logging".to_string(), Value::Array(Vec::new()));
    }
    let list = match root.get_mut("logging") {
        Some(Value::Array(list)) => list,
        Some(other) => return Err(ConfError::wrong_type(path, "a list", other)),
        None => return Err(ConfError::missing(path)),
    };
    if let Some((i, bad)) = list.iter().enumerate().find(|(_, v)| !v.is_object()) {
        return Err(ConfError::wrong_type(index_path(&path, i), "an object", bad));
    }
    if !list.iter().any(|e| e.get("name").and_then(Value::as_str) == Some("console")) {
        list.push(json!({"name": "console", "any": "info"}));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn ctx() -> DefaultsContext {
        DefaultsContext { cluster_name: "aerocluster".into(), rack_id: 0, rack_namespaces: None }
    }

    fn base() -> Value {
        json!({
            "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
            "namespaces": [{"name": "test", "replication-factor": 2}]
        })
    }

    fn apply(mut v: Value, c: &DefaultsContext) -> Result<Value, ConfError> {
        apply_defaults(&mut v, c).map(|()| v)
    }

    #[test]
    fn injects_service_network_logging() {
        let v = apply(base(), &ctx()).unwrap();
        assert_eq!(
            v,
            json!({
                "service": {"node-id": "ENV_NODE_ID", "cluster-name": "aerocluster"},
                "network": {
                    "service": {"port": 3000, "access-port": 3000, "alternate-access-port": 3000,
                        "access-addresses": ["<access-address>"], "alternate-access-addresses": ["<alternate-access-address>"]},
                    "heartbeat": {"port": 3002, "mode": "mesh"},
                    "fabric": {"port": 3001}
                },
                "namespaces": [{"name": "test", "replication-factor": 2}],
                "logging": [{"name": "console", "any": "info"}]
            })
        );
    }

    #[test]
    fn idempotent() {
        let c = DefaultsContext { rack_id: 2, rack_namespaces: Some(vec!["test".into()]), ..ctx() };
        let once = apply(base(), &c).unwrap();
        let twice = apply(once.clone(), &c).unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn tls_defaults() {
        let mut v = base();
        v["network"]["service"] = json!({"tls-name": "svc", "tls-port": 4333});
        let v = apply(v, &ctx()).unwrap();
        assert_eq!(
            v["network"]["service"],
            json!({"tls-name": "svc", "tls-port": 4333, "tls-access-port": 4333, "tls-alternate-access-port": 4333,
                "tls-access-addresses": ["<tls-access-address>"],
                "tls-alternate-access-addresses": ["<tls-alternate-access-address>"],
                "tls-authenticate-client": "any"})
        );
        // a user tls-authenticate-client is kept
        let mut v = base();
        v["network"]["service"] =
            json!({"port": 3000, "tls-name": "svc", "tls-port": 4333, "tls-authenticate-client": ["cli"]});
        let v = apply(v, &ctx()).unwrap();
        assert_eq!(v["network"]["service"]["tls-authenticate-client"], json!(["cli"]));
        // tls-port without tls-name: no tls defaults, stale tls access keys removed
        let mut v = base();
        v["network"]["service"] = json!({"port": 3000, "tls-port": 4333, "tls-access-port": 1});
        let v = apply(v, &ctx()).unwrap();
        assert_eq!(v["network"]["service"].get("tls-access-port"), None);
        assert_eq!(v["network"]["service"].get("tls-authenticate-client"), None);
    }

    #[test]
    fn no_service_port_removes_access_keys() {
        let mut v = base();
        v["network"]["service"] =
            json!({"access-port": 1, "access-addresses": ["x"], "tls-name": "a", "tls-port": 4333});
        let v = apply(v, &ctx()).unwrap();
        assert_eq!(v["network"]["service"].get("access-port"), None);
        assert_eq!(v["network"]["service"].get("access-addresses"), None);
    }

    #[test]
    fn equal_user_values_are_accepted() {
        let mut v = base();
        v["service"] = json!({"cluster-name": "aerocluster", "node-id": "ENV_NODE_ID"});
        v["network"]["service"] = json!({"port": 3000.0, "access-port": 3000, "access-addresses": "<access-address>"});
        v["network"]["heartbeat"]["mode"] = json!("mesh");
        v["logging"] =
            json!([{"name": "/var/log/aerospike.log", "any": "info"}, {"name": "console", "any": "warning"}]);
        let v = apply(v, &ctx()).unwrap();
        assert_eq!(v["logging"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn contradictions_are_errors_naming_the_path() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"network": {"heartbeat": {"mode": "multicast"}}}), "aerospikeConfig.network.heartbeat.mode"),
            (json!({"service": {"cluster-name": "other"}}), "aerospikeConfig.service.cluster-name"),
            (json!({"service": {"node-id": "a1"}}), "aerospikeConfig.service.node-id"),
            (json!({"network": {"service": {"access-port": 3001}}}), "aerospikeConfig.network.service.access-port"),
            (
                json!({"network": {"service": {"alternate-access-addresses": ["1.2.3.4"]}}}),
                "aerospikeConfig.network.service.alternate-access-addresses",
            ),
            (
                json!({"network": {"service": {"tls-name": "t", "tls-port": 4333, "tls-access-port": 1}}}),
                "aerospikeConfig.network.service.tls-access-port",
            ),
        ];
        for (patch, path) in cases {
            let v = crate::aerospike_conf::merge_rack_config(&base(), &patch);
            let e = apply(v, &ctx()).expect_err(path);
            assert_eq!(e.path(), path, "{e}");
            assert!(e.to_string().starts_with(path), "{e}");
        }
        let e = apply(
            crate::aerospike_conf::merge_rack_config(
                &base(),
                &json!({"network": {"heartbeat": {"mode": "multicast"}}}),
            ),
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "aerospikeConfig.network.heartbeat.mode: value \"multicast\" conflicts with the operator-managed value \"mesh\""
        );
    }

    #[test]
    fn shape_errors_name_the_path() {
        let e = apply(json!("x"), &ctx()).unwrap_err();
        assert_eq!(e.to_string(), "aerospikeConfig: expected an object, found a string");
        let mut v = base();
        v["namespaces"] = json!({"test": {}});
        assert_eq!(apply(v, &ctx()).unwrap_err().path(), "aerospikeConfig.namespaces");
        let mut v = base();
        v["namespaces"] = json!([{"name": "a"}, {"replication-factor": 1}]);
        assert_eq!(apply(v, &ctx()).unwrap_err().to_string(), "aerospikeConfig.namespaces[1].name: missing");
        let mut v = base();
        v["network"].as_object_mut().unwrap().remove("fabric");
        assert_eq!(apply(v, &ctx()).unwrap_err().to_string(), "aerospikeConfig.network.fabric: missing");
        let mut v = base();
        v.as_object_mut().unwrap().remove("network");
        assert_eq!(apply(v, &ctx()).unwrap_err().to_string(), "aerospikeConfig.network: missing");
        let mut v = base();
        v["network"]["service"]["port"] = json!("3000");
        assert_eq!(apply(v, &ctx()).unwrap_err().path(), "aerospikeConfig.network.service.port");
        let mut v = base();
        v["logging"] = json!([{"name": "console"}, 3]);
        assert_eq!(apply(v, &ctx()).unwrap_err().path(), "aerospikeConfig.logging[1]");
        let mut v = base();
        v["service"] = json!([]);
        assert_eq!(apply(v, &ctx()).unwrap_err().path(), "aerospikeConfig.service");
    }

    #[test]
    fn rack_id_on_rack_enabled_namespaces_only() {
        let mut v = base();
        v["namespaces"] = json!([{"name": "a"}, {"name": "b", "rack-id": 7}, {"name": "c", "rack-id": 0}]);
        let c = DefaultsContext { rack_id: 3, rack_namespaces: Some(vec!["a".into(), "c".into()]), ..ctx() };
        let out = apply(v.clone(), &c).unwrap();
        assert_eq!(out["namespaces"], json!([{"name": "a", "rack-id": 3}, {"name": "b"}, {"name": "c", "rack-id": 3}]));
        // not set: no rack-id anywhere
        let out = apply(v.clone(), &ctx()).unwrap();
        assert_eq!(out["namespaces"], json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        // a different user rack-id on a rack-enabled namespace is a conflict
        let c = DefaultsContext { rack_id: 3, rack_namespaces: Some(vec!["b".into()]), ..ctx() };
        assert_eq!(apply(v, &c).unwrap_err().path(), "aerospikeConfig.namespaces[1].rack-id");
    }
}
