//! Checks an object against a CRD's structural OpenAPI v3 schema the way the API server does before admission:
//! types, required fields, unknown fields (what strict field validation refuses), enums, bounds, lengths,
//! patterns and list-map/set uniqueness. CEL rules (`x-kubernetes-validations`) are not evaluated here.
use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Every violation found, each as `path: message` (path like `spec.rackConfig.racks[0].id`).
pub fn check(schema: &Value, object: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    walk(schema, object, "", &mut errors);
    errors
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_string() } else { format!("{path}.{field}") }
}

fn at(path: &str) -> &str {
    if path.is_empty() { "<root>" } else { path }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    let flag = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
    if v.is_null() {
        if !flag("nullable") {
            errors.push(format!("{}: must not be null", at(path)));
        }
        return;
    }
    if flag("x-kubernetes-int-or-string") {
        if !matches!(type_name(v), "integer" | "string") {
            errors.push(format!("{}: must be an integer or a string, found {}", at(path), type_name(v)));
        }
        return;
    }
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let found = type_name(v);
        let ok = found == t || (t == "number" && found == "integer");
        if !ok {
            errors.push(format!("{}: must be of type {t}, found {found} ({v})", at(path)));
            return;
        }
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errors.push(format!("{}: {v} is not one of {}", at(path), list.join(", ")));
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && x < min
            {
                errors.push(format!("{}: {n} is below the minimum {min}", at(path)));
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && x > max
            {
                errors.push(format!("{}: {n} is above the maximum {max}", at(path)));
            }
        }
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                errors.push(format!("{}: {v} is shorter than {min} characters", at(path)));
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errors.push(format!("{}: {v} is longer than {max} characters", at(path)));
            }
            if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
                match compiled(pattern) {
                    Ok(re) if !re.is_match(text) => {
                        errors.push(format!("{}: {v} does not match the pattern {pattern}", at(path)))
                    }
                    Ok(_) => {}
                    Err(e) => errors.push(format!("{}: schema pattern {pattern} is invalid: {e}", at(path))),
                }
            }
        }
        Value::Array(items) => check_array(s, items, path, errors),
        Value::Object(fields) => check_object(s, fields, path, errors),
        _ => {}
    }
}

/// Compiled patterns, kept for the process (the same few patterns are checked many times).
fn compiled(pattern: &str) -> Result<regex::Regex, regex::Error> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: Mutex<Option<HashMap<String, regex::Regex>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(re) = map.get(pattern) {
        return Ok(re.clone());
    }
    let re = regex::Regex::new(pattern)?;
    map.insert(pattern.to_string(), re.clone());
    Ok(re)
}

fn check_array(s: &Map<String, Value>, items: &[Value], path: &str, errors: &mut Vec<String>) {
    if let Some(min) = s.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        errors.push(format!("{}: has {} items, at least {min} required", at(path), items.len()));
    }
    if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
        && (items.len() as u64) > max
    {
        errors.push(format!("{}: has {} items, at most {max} allowed", at(path), items.len()));
    }
    if let Some(item_schema) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            walk(item_schema, item, &format!("{}[{i}]", path), errors);
        }
    }
    match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    errors.push(format!("{path}[{i}]: duplicate value {item}"));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let key: Vec<String> =
                    keys.iter().map(|k| item.get(k).map(Value::to_string).unwrap_or_default()).collect();
                if !seen.insert(key.clone()) {
                    errors.push(format!("{path}[{i}]: duplicate entry with {} = {}", keys.join(","), key.join(",")));
                }
            }
        }
        _ => {}
    }
}

fn check_object(s: &Map<String, Value>, fields: &Map<String, Value>, path: &str, errors: &mut Vec<String>) {
    if let Some(required) = s.get("required").and_then(Value::as_array) {
        for r in required.iter().filter_map(Value::as_str) {
            if !fields.contains_key(r) {
                errors.push(format!("{}: required field is missing", join(path, r)));
            }
        }
    }
    let properties = s.get("properties").and_then(Value::as_object);
    let additional = s.get("additionalProperties");
    let preserve = s.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool).unwrap_or(false);
    for (name, field) in fields {
        let field_path = join(path, name);
        // apiVersion, kind and metadata are the API server's own business, not the CRD schema's.
        if path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(prop) = properties.and_then(|p| p.get(name)) {
            walk(prop, field, &field_path, errors);
        } else if let Some(extra) = additional.filter(|a| a.is_object()) {
            walk(extra, field, &field_path, errors);
        } else if !(preserve || additional == Some(&Value::Bool(true))) {
            errors.push(format!("{field_path}: unknown field (the schema has no such field)"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_paths() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"],
            "properties": {"size": {"type": "integer", "minimum": 1.0},
                "racks": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                    "items": {"type": "object", "properties": {"id": {"type": "integer"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "mode": {"type": "string", "enum": ["a", "b"]}}}}});
        let ok = json!({"spec": {"size": 3, "racks": [{"id": 1}, {"id": 2}], "free": {"x": 1}, "mode": "a"}});
        assert!(check(&schema, &ok).is_empty(), "{:?}", check(&schema, &ok));
        let bad = json!({"spec": {"size": 0, "racks": [{"id": 1}, {"id": 1}], "mode": "c", "sise": 1}});
        let errs = check(&schema, &bad);
        assert!(errs.contains(&"spec.size: 0 is below the minimum 1".to_string()), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("spec.racks[1]: duplicate")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("spec.mode: \"c\" is not one of")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("spec.sise: unknown field")), "{errs:?}");
        let missing = json!({"spec": {}});
        assert_eq!(check(&schema, &missing), vec!["spec.size: required field is missing".to_string()]);
    }
}
