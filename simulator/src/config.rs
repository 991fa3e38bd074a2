//! The configuration a simulated node runs: read from the aerospike.conf template of its rack ConfigMap when the node
//! starts (as pod-init gives the server the template of the pod's conf hash), kept per scope as `get-config` reports
//! it, and changed by `set-config` / `log-set` only where the server version allows a change at run time (the
//! operator's dynamic-key table, `aerospike_conf::keys::dynamic`; a static key is refused as a server refuses it).
//!
//! Scopes: `service`; `network` (keys `heartbeat.interval`, `service.port`, ...); `namespace:<ns>` (storage keys as
//! `storage-engine.<key>`, the storage type as `storage-engine`, index types likewise); `namespace:<ns>:set:<set>`;
//! `log:<sink>` (`stderr` for the console) with a level per log context.
use std::collections::BTreeMap;

use aerospike_kubernetes_operator::aerospike_conf::keys::dynamic::is_dynamic;

pub(crate) type Scopes = BTreeMap<String, BTreeMap<String, String>>;

/// Parse an aerospike.conf text into scopes. Unknown sections are skipped; the parser never fails.
pub(crate) fn parse(conf: &str) -> Scopes {
    let mut out = Scopes::new();
    let mut stack: Vec<(String, String)> = Vec::new();
    for line in conf.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if line == "}" {
            stack.pop();
            continue;
        }
        if let Some(header) = line.strip_suffix('{') {
            let mut words = header.split_whitespace();
            let section = words.next().unwrap_or_default().to_string();
            let name = words.collect::<Vec<_>>().join(" ");
            if let Some((scope, key)) = typed_section(&stack, &section, &name) {
                out.entry(scope).or_default().insert(key, name.clone());
            }
            stack.push((section, name));
            continue;
        }
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if let Some((scope, key)) = scope_of(&stack, key) {
            out.entry(scope).or_default().insert(key, value.trim().to_string());
        }
    }
    out
}

/// `storage-engine device {` inside a namespace: the type is a value of its own (`storage-engine=device`).
fn typed_section(stack: &[(String, String)], section: &str, kind: &str) -> Option<(String, String)> {
    match (stack, section) {
        ([(ns, name)], "storage-engine" | "index-type" | "sindex-type") if ns == "namespace" && !kind.is_empty() => {
            Some((format!("namespace:{name}"), section.to_string()))
        }
        _ => None,
    }
}

fn scope_of(stack: &[(String, String)], key: &str) -> Option<(String, String)> {
    let names: Vec<(&str, &str)> = stack.iter().map(|(s, n)| (s.as_str(), n.as_str())).collect();
    Some(match names.as_slice() {
        [("service", _)] => ("service".into(), key.into()),
        [("network", _), (sub, _)] => ("network".into(), format!("{sub}.{key}")),
        [("namespace", ns)] => (format!("namespace:{ns}"), key.into()),
        [("namespace", ns), ("set", set)] => (format!("namespace:{ns}:set:{set}"), key.into()),
        [("namespace", ns), ("geo2dsphere-within", _)] => {
            (format!("namespace:{ns}"), format!("geo2dsphere-within-{key}"))
        }
        [("namespace", ns), (sub, _)] => (format!("namespace:{ns}"), format!("{sub}.{key}")),
        [("logging", _), ("console", _)] => ("log:stderr".into(), key.into()),
        [("logging", _), ("file", path)] => (format!("log:{path}"), key.into()),
        _ => return None,
    })
}

/// The dynamic-key table path of `key` set in `scope` on a node running `scopes`, or None if the key cannot be set
/// there at all.
pub(crate) fn table_path(scopes: &Scopes, scope: &str, key: &str) -> Option<String> {
    if scope == "service" {
        return Some(format!("service.{key}"));
    }
    if scope == "network" {
        return Some(format!("network.{key}"));
    }
    if let Some(rest) = scope.strip_prefix("namespace:") {
        if rest.contains(":set:") {
            return Some(format!("namespaces.sets.{key}"));
        }
        let ns = scopes.get(scope);
        // `index-type.mounts-budget` -> namespaces.index-type.<type>.mounts-budget
        for typed in ["index-type", "sindex-type"] {
            if let Some(k) = key.strip_prefix(&format!("{typed}.")) {
                let kind = ns.and_then(|n| n.get(typed))?;
                return Some(format!("namespaces.{typed}.{kind}.{k}"));
            }
        }
        if let Some(k) = key.strip_prefix("geo2dsphere-within-") {
            return Some(format!("namespaces.geo2dsphere-within.{k}"));
        }
        // A storage key is set without its section: the namespace's storage type decides.
        if let Some(kind) = ns.and_then(|n| n.get("storage-engine"))
            && ns.is_some_and(|n| n.contains_key(&format!("storage-engine.{key}")))
        {
            return Some(format!("namespaces.storage-engine.{kind}.{key}"));
        }
        return Some(format!("namespaces.{key}"));
    }
    if scope.starts_with("log:") {
        return Some(format!("logging.{key}"));
    }
    None
}

/// `set-config` of `key=value` in `scope` on a node of server `build` (`8.0.0.5`): Ok with the key as stored, or the
/// server's refusal.
pub(crate) fn set(scopes: &mut Scopes, scope: &str, key: &str, value: &str, build: &str) -> Result<(), String> {
    let mut parts = build.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let path = table_path(scopes, scope, key).ok_or_else(|| format!("ERROR:4:unknown context for {key}"))?;
    // Table paths of storage keys carry the type; a key the namespace does not have yet may still be a storage key.
    let dynamic = is_dynamic(&path, major, minor)
        || (scope.starts_with("namespace:") && !scope.contains(":set:") && {
            let kind = scopes.get(scope).and_then(|n| n.get("storage-engine")).cloned().unwrap_or_default();
            is_dynamic(&format!("namespaces.storage-engine.{kind}.{key}"), major, minor)
        });
    if !dynamic {
        return Err(format!("ERROR:4:parameter {key} is not dynamic"));
    }
    let values = scopes.entry(scope.to_string()).or_default();
    let stored = if values.contains_key(&format!("storage-engine.{key}"))
        || !values.contains_key(key) && {
            let kind = values.get("storage-engine").cloned().unwrap_or_default();
            is_dynamic(&format!("namespaces.storage-engine.{kind}.{key}"), major, minor)
        } {
        format!("storage-engine.{key}")
    } else {
        key.to_string()
    };
    values.insert(stored, value.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "
service {
    proto-fd-max    15000
}

logging {

    console {
        any    info
    }
}

network {

    heartbeat {
        interval    150
        mode    mesh
    }
}

namespace test {
    default-ttl    0
    replication-factor    2

    set s1 {
        stop-writes-count    10
    }

    storage-engine device {
        defrag-lwm-pct    50
        file    /opt/aerospike/data/test.dat
    }
}
";

    #[test]
    fn a_conf_reads_into_the_scopes_get_config_reports() {
        let s = parse(CONF);
        assert_eq!(s["service"]["proto-fd-max"], "15000");
        assert_eq!(s["network"]["heartbeat.interval"], "150");
        assert_eq!(s["namespace:test"]["default-ttl"], "0");
        assert_eq!(s["namespace:test"]["storage-engine"], "device");
        assert_eq!(s["namespace:test"]["storage-engine.defrag-lwm-pct"], "50");
        assert_eq!(s["namespace:test:set:s1"]["stop-writes-count"], "10");
        assert_eq!(s["log:stderr"]["any"], "info");
    }

    #[test]
    fn only_dynamic_keys_change_at_run_time() {
        let mut s = parse(CONF);
        set(&mut s, "service", "proto-fd-max", "20000", "7.1.0.0").unwrap();
        assert_eq!(s["service"]["proto-fd-max"], "20000");
        set(&mut s, "namespace:test", "defrag-lwm-pct", "60", "7.1.0.0").unwrap();
        assert_eq!(s["namespace:test"]["storage-engine.defrag-lwm-pct"], "60");
        set(&mut s, "namespace:test", "default-ttl", "100", "7.1.0.0").unwrap();
        set(&mut s, "network", "heartbeat.interval", "250", "7.1.0.0").unwrap();
        set(&mut s, "log:stderr", "migrate", "debug", "7.1.0.0").unwrap();
        let refused = set(&mut s, "namespace:test", "partition-tree-sprigs", "512", "7.1.0.0").unwrap_err();
        assert!(refused.contains("not dynamic"), "{refused}");
        assert!(set(&mut s, "network", "heartbeat.mode", "multicast", "7.1.0.0").is_err());
        // memory-size stopped being a key with 7.0.
        assert!(set(&mut s, "namespace:test", "memory-size", "1G", "6.4.0.0").is_ok());
        assert!(set(&mut s, "namespace:test", "memory-size", "1G", "7.0.0.0").is_err());
        assert!(!s["namespace:test"].contains_key("partition-tree-sprigs"));
    }
}
