//! The per-rack merge of the global aerospikeConfig with a rack's override (docs/aerospike-conf.md §1).

use serde_json::{Map, Value};

/// Merges a rack's `aerospikeConfig` override into the global one and returns the rack's effective config.
///
/// - maps merge recursively, the rack winning on conflicts;
/// - scalars and lists of scalars are replaced by the rack's value (a rack `null` replaces too, which
///   removes the field from the rendered file);
/// - lists of objects (namespaces, sets, dcs, tls, logging...) are matched by `name`: entries keep the
///   global order, matching entries are merged recursively, rack entries with new (or no) names are
///   appended; an empty list on one side takes the other side's entries;
/// - a `storage-engine` map is replaced whole when one side uses `files` and the other `devices`.
///
/// A `null` rack value (no override) returns the global config; a rack value that is not an object
/// replaces a global one entirely.
pub fn merge_rack_config(global: &Value, rack: &Value) -> Value {
    match (global, rack) {
        (_, Value::Null) => global.clone(),
        (Value::Object(g), Value::Object(r)) => Value::Object(merge_maps(g, r)),
        _ => rack.clone(),
    }
}

fn merge_maps(global: &Map<String, Value>, rack: &Map<String, Value>) -> Map<String, Value> {
    let mut out = global.clone();
    for (key, rv) in rack {
        let merged = match global.get(key) {
            Some(gv) => merge_value(key, gv, rv),
            None => rv.clone(),
        };
        out.insert(key.clone(), merged);
    }
    out
}

fn merge_value(key: &str, global: &Value, rack: &Value) -> Value {
    match (global, rack) {
        (Value::Object(g), Value::Object(r)) => {
            if key == "storage-engine" && storage_kinds_differ(g, r) {
                rack.clone()
            } else {
                Value::Object(merge_maps(g, r))
            }
        }
        (Value::Array(g), Value::Array(r)) if is_object_list(g, r) => Value::Array(merge_named_lists(g, r)),
        _ => rack.clone(),
    }
}

/// One side uses `files` and the other `devices`.
fn storage_kinds_differ(g: &Map<String, Value>, r: &Map<String, Value>) -> bool {
    let uses = |m: &Map<String, Value>, k: &str| m.get(k).is_some_and(|v| !v.is_null());
    (uses(g, "files") && uses(r, "devices")) || (uses(g, "devices") && uses(r, "files"))
}

/// Both lists hold only objects, and at least one is non-empty.
fn is_object_list(g: &[Value], r: &[Value]) -> bool {
    (!g.is_empty() || !r.is_empty()) && g.iter().all(Value::is_object) && r.iter().all(Value::is_object)
}

fn name_of(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

fn merge_named_lists(global: &[Value], rack: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = global
        .iter()
        .map(|g| match name_of(g).and_then(|n| rack.iter().find(|r| name_of(r) == Some(n))) {
            Some(r) => merge_value("", g, r),
            None => g.clone(),
        })
        .collect();
    for r in rack {
        let matched = name_of(r).is_some_and(|n| global.iter().any(|g| name_of(g) == Some(n)));
        if !matched {
            out.push(r.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn maps_merge_recursively_and_scalars_are_replaced() {
        let g =
            json!({"service": {"proto-fd-max": 15000, "cluster-name": "c"}, "network": {"service": {"port": 3000}}});
        let r = json!({"service": {"proto-fd-max": 18000}, "security": {}});
        assert_eq!(
            merge_rack_config(&g, &r),
            json!({"service": {"proto-fd-max": 18000, "cluster-name": "c"}, "network": {"service": {"port": 3000}},
                   "security": {}})
        );
    }

    #[test]
    fn object_lists_match_by_name_keep_global_order_and_append_new() {
        let g = json!({"namespaces": [
            {"name": "a", "replication-factor": 2, "storage-engine": {"type": "memory"}},
            {"name": "b", "replication-factor": 1},
            {"name": "c"}
        ]});
        let r = json!({"namespaces": [
            {"name": "d", "replication-factor": 3},
            {"name": "b", "replication-factor": 2, "nsup-period": 120},
            {"name": "a", "storage-engine": {"data-size": 1024}}
        ]});
        assert_eq!(
            merge_rack_config(&g, &r),
            json!({"namespaces": [
                {"name": "a", "replication-factor": 2, "storage-engine": {"type": "memory", "data-size": 1024}},
                {"name": "b", "replication-factor": 2, "nsup-period": 120},
                {"name": "c"},
                {"name": "d", "replication-factor": 3}
            ]})
        );
    }

    #[test]
    fn nested_object_lists_merge_too() {
        let g = json!({"namespaces": [{"name": "a", "sets": [{"name": "s1", "disable-eviction": true}]}]});
        let r = json!({"namespaces": [{"name": "a", "sets": [{"name": "s2"}, {"name": "s1", "enable-index": true}]}]});
        assert_eq!(
            merge_rack_config(&g, &r),
            json!({"namespaces": [{"name": "a", "sets": [
                {"name": "s1", "disable-eviction": true, "enable-index": true}, {"name": "s2"}]}]})
        );
    }

    #[test]
    fn storage_engine_replaced_whole_between_files_and_devices() {
        let g = json!({"namespaces": [{"name": "a", "storage-engine":
            {"type": "device", "files": ["/opt/a.dat"], "filesize": 1073741824, "data-in-memory": true}}]});
        let r = json!({"namespaces": [{"name": "a", "storage-engine": {"type": "device", "devices": ["/dev/xvdb"]}}]});
        assert_eq!(
            merge_rack_config(&g, &r),
            json!({"namespaces": [{"name": "a", "storage-engine": {"type": "device", "devices": ["/dev/xvdb"]}}]})
        );
        // and the other way round
        assert_eq!(
            merge_rack_config(&r, &g),
            json!({"namespaces": [{"name": "a", "storage-engine":
                {"type": "device", "files": ["/opt/a.dat"], "filesize": 1073741824, "data-in-memory": true}}]})
        );
        // same kind on both sides: merged
        let r2 = json!({"namespaces": [{"name": "a", "storage-engine": {"files": ["/opt/b.dat"]}}]});
        assert_eq!(
            merge_rack_config(&g, &r2),
            json!({"namespaces": [{"name": "a", "storage-engine":
                {"type": "device", "files": ["/opt/b.dat"], "filesize": 1073741824, "data-in-memory": true}}]})
        );
    }

    #[test]
    fn scalar_lists_are_replaced_not_concatenated() {
        let g = json!({"network": {"heartbeat": {"addresses": ["a", "b"]}}, "xdr": {"dcs": [{"name": "d",
            "node-address-ports": ["1.1.1.1:3000", "2.2.2.2:3000"]}]}});
        let r = json!({"network": {"heartbeat": {"addresses": ["c"]}}, "xdr": {"dcs": [{"name": "d",
            "node-address-ports": ["3.3.3.3:3000"]}]}});
        assert_eq!(
            merge_rack_config(&g, &r),
            json!({"network": {"heartbeat": {"addresses": ["c"]}}, "xdr": {"dcs": [{"name": "d",
                "node-address-ports": ["3.3.3.3:3000"]}]}})
        );
        // a scalar list replaced by an empty list
        assert_eq!(merge_rack_config(&json!({"a": ["x"]}), &json!({"a": []})), json!({"a": []}));
    }

    #[test]
    fn null_and_non_object_racks() {
        let g = json!({"service": {"a": 1}});
        assert_eq!(merge_rack_config(&g, &Value::Null), g);
        assert_eq!(merge_rack_config(&Value::Null, &g), g);
        assert_eq!(merge_rack_config(&g, &json!({"service": {"a": null}})), json!({"service": {"a": null}}));
        assert_eq!(merge_rack_config(&g, &json!({})), g);
        // type changes: the rack wins
        assert_eq!(merge_rack_config(&g, &json!({"service": "x"})), json!({"service": "x"}));
        // an empty object list on the rack side keeps the global entries
        let gl = json!({"logging": [{"name": "console", "any": "info"}]});
        assert_eq!(merge_rack_config(&gl, &json!({"logging": []})), gl);
    }
}
