//! The aerospike.conf writer (docs/aerospike-conf.md §2-§5).
//!
//! Layout, byte for byte as the reference writer: 4 spaces of indent per level; a field line is
//! `indent key    value`; every section header is preceded by an empty line; at every level the keys are
//! sorted by the byte order of their JSON (plural) key, all fields before all sections; entries of a list
//! of sections keep their CR order.

use serde_json::{Map, Value};

use super::keys::{
    is_list_field, is_named_section, is_typed_section, list_separator, must_be_object, must_be_object_list,
    must_be_object_or_string, singular, string_stays_scalar,
};
use super::{ConfError, ROOT_PATH, child_path, format_number, index_path};

const INDENT: &str = "    ";
const GAP: &str = "    ";
/// Deeper configs are rejected (the real schema is at most 5 levels deep).
const MAX_DEPTH: usize = 32;

/// Renders an aerospikeConfig JSON object (usually after [`super::merge_rack_config`] and
/// [`super::apply_defaults`]) into aerospike.conf text.
///
/// Errors (always naming the JSON path): a top level that is not an object; a wrong shape for a
/// well-known key (e.g. `namespaces` not a list of objects, `network` not an object, a typed section
/// without a string `type`); a list mixing element types; keys that are empty or contain whitespace,
/// braces or control characters; values or section names containing control characters (a line break
/// would inject configuration); section names containing whitespace or braces.
pub fn render(config: &Value) -> Result<String, ConfError> {
    let map = config.as_object().ok_or_else(|| ConfError::wrong_type(ROOT_PATH, "an object", config))?;
    let mut out = String::new();
    write_body(&mut out, map, 0, ROOT_PATH, None)?;
    Ok(out)
}

/// What a JSON list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Empty,
    Strings,
    Objects,
    /// Numbers and/or booleans: dropped by the writer.
    Scalars,
    /// Anything else (strings with objects, nulls, nested lists...).
    Mixed,
}

pub(crate) fn classify(items: &[Value]) -> ListKind {
    if items.is_empty() {
        return ListKind::Empty;
    }
    if items.iter().all(Value::is_string) {
        ListKind::Strings
    } else if items.iter().all(Value::is_object) {
        ListKind::Objects
    } else if items.iter().all(|v| v.is_number() || v.is_boolean()) {
        ListKind::Scalars
    } else {
        ListKind::Mixed
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str(INDENT);
    }
}

fn open_section(out: &mut String, depth: usize, header: &str) {
    out.push('\n');
    indent(out, depth);
    out.push_str(header);
    out.push_str(" {\n");
}

fn close_section(out: &mut String, depth: usize) {
    indent(out, depth);
    out.push_str("}\n");
}

fn field_line(out: &mut String, depth: usize, key: &str, value: &str) {
    indent(out, depth);
    out.push_str(key);
    out.push_str(GAP);
    out.push_str(value);
    out.push('\n');
}

fn check_key(key: &str, path: &str) -> Result<(), ConfError> {
    if key.is_empty() {
        return Err(ConfError::invalid(path, "empty key"));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}' || c == '#') {
        return Err(ConfError::invalid(path, "key contains whitespace, a brace, '#' or a control character"));
    }
    Ok(())
}

fn check_text(text: &str, path: &str) -> Result<(), ConfError> {
    if text.chars().any(char::is_control) {
        return Err(ConfError::invalid(path, "value contains a control character (e.g. a line break)"));
    }
    Ok(())
}

fn check_section_name(name: &str, path: &str) -> Result<(), ConfError> {
    if name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}' || c == '#') {
        return Err(ConfError::invalid(path, "name contains whitespace, a brace, '#' or a control character"));
    }
    Ok(())
}

/// The text of a scalar value: strings verbatim, booleans `true`/`false`, numbers as integers.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(format_number(n)),
        _ => None,
    }
}

/// The drop rules of docs/aerospike-conf.md §3 for scalar fields: empty or `NULL` values, `*port*` keys with value 0,
/// `enable-benchmarks-*` when false.
fn is_dropped(key: &str, value: &str) -> bool {
    value.is_empty()
        || value.eq_ignore_ascii_case("NULL")
        || (key.contains("port") && value == "0")
        || (key.starts_with("enable-benchmarks-") && value == "false")
}

/// A scalar field line, after the drop rules. `secrets-address-port` has its colons replaced by spaces.
fn write_scalar_field(out: &mut String, depth: usize, key: &str, v: &Value, path: &str) -> Result<(), ConfError> {
    let Some(text) = scalar_text(v) else {
        return Err(ConfError::wrong_type(path, "a string, number or boolean", v));
    };
    check_text(&text, path)?;
    if is_dropped(key, &text) {
        return Ok(());
    }
    let text = if key == "secrets-address-port" { text.replace(':', " ") } else { text };
    field_line(out, depth, key, &text);
    Ok(())
}

/// One line per element, under the singular key; separators of docs/aerospike-conf.md §5 become spaces.
fn write_string_list<'a>(
    out: &mut String,
    depth: usize,
    key: &str,
    items: impl Iterator<Item = (usize, &'a str)>,
    path: &str,
) -> Result<(), ConfError> {
    let name = singular(key);
    let sep = list_separator(name);
    for (i, item) in items {
        check_text(item, &index_path(path, i))?;
        match sep {
            Some(c) => field_line(out, depth, name, &item.replace(c, " ")),
            None => field_line(out, depth, name, item),
        }
    }
    Ok(())
}

fn write_body(
    out: &mut String,
    map: &Map<String, Value>,
    depth: usize,
    path: &str,
    parent: Option<&str>,
) -> Result<(), ConfError> {
    if depth > MAX_DEPTH {
        return Err(ConfError::invalid(path, "nested too deeply"));
    }
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();

    // Pass 1: shape checks and field lines.
    for key in &keys {
        let key = key.as_str();
        let value = &map[key];
        let path = child_path(path, key);
        check_key(key, &path)?;
        // `name` identifies list entries (it is in their header); it is never a field.
        if value.is_null() || key == "name" {
            continue;
        }
        if must_be_object(parent, key) && !value.is_object() {
            return Err(ConfError::wrong_type(path, "an object", value));
        }
        if must_be_object_or_string(key) && !(value.is_object() || value.is_string()) {
            return Err(ConfError::wrong_type(path, "an object or a string", value));
        }
        if must_be_object_list(key) {
            let Value::Array(items) = value else {
                return Err(ConfError::wrong_type(path, "a list", value));
            };
            if let Some((i, bad)) = items.iter().enumerate().find(|(_, v)| !v.is_object()) {
                return Err(ConfError::wrong_type(index_path(&path, i), "an object", bad));
            }
            continue;
        }
        match value {
            Value::Object(_) | Value::Null => {}
            Value::Array(items) => match classify(items) {
                ListKind::Strings => {
                    let strs = items.iter().enumerate().filter_map(|(i, v)| v.as_str().map(|s| (i, s)));
                    write_string_list(out, depth, key, strs, &path)?;
                }
                ListKind::Mixed => {
                    return Err(ConfError::invalid(
                        path,
                        "list mixes element types (expected only strings or only objects)",
                    ));
                }
                ListKind::Empty | ListKind::Objects | ListKind::Scalars => {}
            },
            Value::String(s) if is_list_field(key) && !string_stays_scalar(key, s) => {
                write_string_list(out, depth, key, std::iter::once((0, s.as_str())), &path)?;
            }
            scalar => write_scalar_field(out, depth, key, scalar, &path)?,
        }
    }

    // Pass 2: sections.
    for key in &keys {
        let key = key.as_str();
        let path = child_path(path, key);
        if key == "name" {
            continue;
        }
        match &map[key] {
            Value::Object(section) => write_section(out, depth, key, section, &path)?,
            Value::Array(items) if classify(items) == ListKind::Objects => {
                if key == "logging" {
                    write_logging(out, depth, items, &path)?;
                } else if is_named_section(singular(key)) {
                    write_named_sections(out, depth, singular(key), items, &path)?;
                }
                // Other lists of objects are dropped.
            }
            _ => {}
        }
    }
    Ok(())
}

fn write_section(
    out: &mut String,
    depth: usize,
    key: &str,
    section: &Map<String, Value>,
    path: &str,
) -> Result<(), ConfError> {
    if section.is_empty() {
        // An empty `security {}` enables security, so it is kept; other empty maps are skipped.
        if key == "security" {
            open_section(out, depth, key);
            close_section(out, depth);
        }
        return Ok(());
    }
    if is_typed_section(key) {
        let type_path = child_path(path, "type");
        let kind = match section.get("type") {
            None | Some(Value::Null) => return Err(ConfError::missing(type_path)),
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(ConfError::wrong_type(type_path, "a string", other)),
        };
        if kind.is_empty() {
            return Err(ConfError::invalid(type_path, "empty type"));
        }
        check_section_name(kind, &type_path)?;
        if section.len() == 1 {
            // `storage-engine    memory`
            return write_scalar_field(out, depth, key, &section["type"], &type_path);
        }
        let mut body = section.clone();
        body.remove("type");
        open_section(out, depth, &format!("{key} {kind}"));
        write_body(out, &body, depth + 1, path, Some(key))?;
        close_section(out, depth);
        return Ok(());
    }
    open_section(out, depth, key);
    write_body(out, section, depth + 1, path, Some(key))?;
    close_section(out, depth);
    Ok(())
}

/// The name of a list entry: a non-empty string, else `None` (the entry is skipped).
fn entry_name<'a>(entry: &'a Map<String, Value>, path: &str) -> Result<Option<&'a str>, ConfError> {
    match entry.get("name") {
        Some(Value::String(name)) if !name.is_empty() => {
            check_section_name(name, &child_path(path, "name"))?;
            Ok(Some(name))
        }
        _ => Ok(None),
    }
}

/// `namespace test {`, `set s1 {`, `dc dc1 {`, `tls svc {`; entries without a name are skipped.
fn write_named_sections(
    out: &mut String,
    depth: usize,
    section: &str,
    items: &[Value],
    path: &str,
) -> Result<(), ConfError> {
    for (i, item) in items.iter().enumerate() {
        let path = index_path(path, i);
        let Some(entry) = item.as_object() else {
            continue;
        };
        let Some(name) = entry_name(entry, &path)? else {
            continue;
        };
        open_section(out, depth, &format!("{section} {name}"));
        write_body(out, entry, depth + 1, &path, Some(section))?;
        close_section(out, depth);
    }
    Ok(())
}

/// `logging {` with one block per entry in CR order: `console` and `syslog` bare, every other name as
/// `file <name>`. Inside: `facility`, `path` and `tag` as fields, every other key as a context line.
fn write_logging(out: &mut String, depth: usize, items: &[Value], path: &str) -> Result<(), ConfError> {
    open_section(out, depth, "logging");
    for (i, item) in items.iter().enumerate() {
        let path = index_path(path, i);
        let Some(entry) = item.as_object() else {
            continue;
        };
        let Some(name) = entry_name(entry, &path)? else {
            continue;
        };
        let header = if name == "console" || name == "syslog" { name.to_string() } else { format!("file {name}") };
        open_section(out, depth + 1, &header);
        let mut keys: Vec<&String> = entry.keys().collect();
        keys.sort();
        for key in keys {
            if key == "name" {
                continue;
            }
            let value = &entry[key];
            let key_path = child_path(&path, key);
            check_key(key, &key_path)?;
            if value.is_null() {
                continue;
            }
            let Some(text) = scalar_text(value) else {
                return Err(ConfError::wrong_type(key_path, "a string", value));
            };
            check_text(&text, &key_path)?;
            if is_dropped(key, &text) {
                continue;
            }
            match key.as_str() {
                "facility" | "path" | "tag" => field_line(out, depth + 2, key, &text),
                context => field_line(out, depth + 2, &format!("context {context}"), &text),
            }
        }
        close_section(out, depth + 1);
    }
    close_section(out, depth);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn r(v: Value) -> String {
        render(&v).unwrap_or_else(|e| panic!("render failed: {e}"))
    }

    fn err(v: Value) -> ConfError {
        render(&v).expect_err("render should fail")
    }

    #[test]
    fn numbers_never_print_as_floats() {
        let v: Value = serde_json::from_str(
            r#"{"service": {"a": 1e9, "b": 2.0, "c": -1, "d": 18446744073709551615, "e": 1073741824.0,
                 "f": 2.7, "g": -3.9, "h": 1e30, "i": -0.2}}"#,
        )
        .unwrap();
        assert_eq!(
            r(v),
            "\nservice {\n    a    1000000000\n    b    2\n    c    -1\n    d    18446744073709551615\n    \
             e    1073741824\n    f    2\n    g    -3\n    h    1000000000000000019884624838656\n    i    0\n}\n"
        );
    }

    #[test]
    fn port_zero_null_and_empty_values_are_dropped() {
        let v = json!({"network": {"service": {
            "port": 0, "tls-port": 0.0, "access-port": "0", "alternate-access-port": 3000,
            "tls-name": "NULL", "x-null": "null", "cluster-x": "", "proto": 0,
            "none": null, "name": "dropped"
        }}});
        assert_eq!(
            r(v),
            "\nnetwork {\n\n    service {\n        alternate-access-port    3000\n        proto    0\n    }\n}\n"
        );
        // List elements are printed verbatim, as in the reference (a string under a list field is a list).
        let v = json!({"service": {"tls-authenticate-client": "NULL", "access-addresses": [""]}});
        assert_eq!(r(v), "\nservice {\n    access-address    \n    tls-authenticate-client    NULL\n}\n");
    }

    #[test]
    fn benchmarks_and_booleans() {
        let v = json!({"namespaces": [{"name": "ns", "enable-benchmarks-read": true,
            "enable-benchmarks-write": false, "strong-consistency": false, "data-in-index": true}]});
        assert_eq!(
            r(v),
            "\nnamespace ns {\n    data-in-index    true\n    enable-benchmarks-read    true\n    strong-consistency    false\n}\n"
        );
    }

    #[test]
    fn secrets_address_port_colons_become_spaces() {
        let v = json!({"service": {"secrets-address-port": "secrets.svc:3005:tlsname"}});
        assert_eq!(r(v), "\nservice {\n    secrets-address-port    secrets.svc 3005 tlsname\n}\n");
    }

    #[test]
    fn string_under_list_field_is_one_element_list() {
        let v = json!({"network": {"heartbeat": {"mesh-seed-address-ports": "a.b:3002", "addresses": "any"},
            "service": {"tls-authenticate-client": "any", "feature-key-file": "/a:b"}},
            "service": {"feature-key-files": "/etc/f:/g", "tls-authenticate-client": "cli1"}});
        assert_eq!(
            r(v),
            "\nnetwork {\n\n    heartbeat {\n        address    any\n        mesh-seed-address-port    a.b 3002\n    }\n\n    \
             service {\n        feature-key-file    /a:b\n        tls-authenticate-client    any\n    }\n}\n\n\
             service {\n    feature-key-file    /etc/f /g\n    tls-authenticate-client    cli1\n}\n"
        );
    }

    #[test]
    fn lists_of_numbers_and_unknown_object_lists_are_dropped() {
        let v = json!({"service": {"nums": [1, 2], "flags": [true], "objs": [{"name": "x", "a": 1}], "e": [], "k": 1}});
        assert_eq!(r(v), "\nservice {\n    k    1\n}\n");
    }

    #[test]
    fn empty_maps_skipped_except_security() {
        assert_eq!(r(json!({"mod-lua": {}, "security": {}, "xdr": {}})), "\nsecurity {\n}\n");
        assert_eq!(r(json!({})), "");
    }

    #[test]
    fn typed_sections() {
        let v = json!({"namespaces": [
            {"name": "a", "storage-engine": {"type": "memory"}, "index-type": {"type": "flash", "mounts": ["/mnt/a"], "mounts-budget": 1024},
             "sindex-type": {"type": "shmem"}},
            {"name": "b", "storage-engine": "memory"}
        ]});
        assert_eq!(
            r(v),
            "\nnamespace a {\n\n    index-type flash {\n        mount    /mnt/a\n        mounts-budget    1024\n    }\n    \
             sindex-type    shmem\n    storage-engine    memory\n}\n\nnamespace b {\n    storage-engine    memory\n}\n"
        );
    }

    #[test]
    fn named_sections_without_name_are_skipped() {
        let v = json!({"namespaces": [{"replication-factor": 1}, {"name": "", "x": 1}, {"name": "ok"}]});
        assert_eq!(r(v), "\nnamespace ok {\n}\n");
    }

    #[test]
    fn fields_before_sections_and_sorted_by_plural_key() {
        // "namespaces" sorts before "network" and "nsup-period" by its plural spelling.
        let v = json!({"zz": 1, "network": {"fabric": {"port": 3001}}, "namespaces": [{"name": "n"}], "aa": "x"});
        assert_eq!(
            r(v),
            "aa    x\nzz    1\n\nnamespace n {\n}\n\nnetwork {\n\n    fabric {\n        port    3001\n    }\n}\n"
        );
    }

    #[test]
    fn wrong_shapes_name_the_path() {
        assert_eq!(err(json!([1])).to_string(), "aerospikeConfig: expected an object, found a list");
        assert_eq!(err(json!({"namespaces": {"test": {}}})).path(), "aerospikeConfig.namespaces");
        assert_eq!(err(json!({"namespaces": ["test"]})).path(), "aerospikeConfig.namespaces[0]");
        assert_eq!(err(json!({"network": "x"})).path(), "aerospikeConfig.network");
        assert_eq!(err(json!({"network": {"heartbeat": [1]}})).path(), "aerospikeConfig.network.heartbeat");
        assert_eq!(
            err(json!({"namespaces": [{"name": "a"}, {"name": "b", "storage-engine": {"devices": ["/dev/x"]}}]}))
                .to_string(),
            "aerospikeConfig.namespaces[1].storage-engine.type: missing"
        );
        assert_eq!(
            err(json!({"namespaces": [{"name": "a", "storage-engine": 5}]})).path(),
            "aerospikeConfig.namespaces[0].storage-engine"
        );
        assert_eq!(err(json!({"service": {"x": ["a", 1]}})).path(), "aerospikeConfig.service.x");
        assert_eq!(
            err(json!({"service": {"cluster-name": "a\nnamespace evil {"}})).path(),
            "aerospikeConfig.service.cluster-name"
        );
        assert_eq!(err(json!({"service": {"bad key": 1}})).path(), "aerospikeConfig.service.bad key");
        assert_eq!(err(json!({"namespaces": [{"name": "a b"}]})).path(), "aerospikeConfig.namespaces[0].name");
        assert_eq!(
            err(json!({"logging": [{"name": "console", "any": {"x": 1}}]})).path(),
            "aerospikeConfig.logging[0].any"
        );
        assert_eq!(
            err(json!({"network": {"service": {"access-addresses": ["a", "b\r"]}}})).path(),
            "aerospikeConfig.network.service.access-addresses[1]"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut v = json!({"leaf": 1});
        for _ in 0..200 {
            v = json!({"s": v});
        }
        assert!(err(v).path().starts_with("aerospikeConfig.s.s"));
    }
}
