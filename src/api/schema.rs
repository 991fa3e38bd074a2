//! Schema helpers that keep the generated CRD small, structural and explicit.
//!
//! Embedded Kubernetes types (Container, Affinity, ...) bring kilobytes of upstream descriptions each; their
//! meaning is documented upstream, so we drop those descriptions and keep only our own field's description.
//! That keeps the CRD under the 256 KiB that a client-side `kubectl apply` can store.
use std::cell::Cell;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

thread_local! {
    /// Depth of [`copy`] calls on this thread (schema generation is single-threaded).
    static IN_COPY: Cell<u32> = const { Cell::new(0) };
}

/// Schema of a copy of a spec part (the applied spec in status, a rack's effective storage and pod spec): our own
/// fields keep their names, types, enums and required marks, so a misspelt or mistyped field is refused or pruned
/// as in the spec; embedded Kubernetes types (affinity, containers, volume sources, ...) are free-form objects and
/// descriptions are dropped. The spec's own schema validates the originals in full; the copies would otherwise
/// take more than the CRD size budget (see `crd_fits_in_a_client_side_apply_annotation`).
pub fn copy<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    IN_COPY.with(|c| c.set(c.get() + 1));
    let value = generator.subschema_for::<T>().to_value();
    IN_COPY.with(|c| c.set(c.get() - 1));
    let mut value = value;
    strip_descriptions(&mut value);
    strip_nullable(&mut value);
    unrequire_storage_class(&mut value);
    Schema::try_from(value).expect("a schema stays a schema without descriptions")
}

/// A copy accepts a persistent volume without storageClass (required in the spec since API fidelity): a status
/// write must never be refused for a cluster stored before the rule existed.
fn unrequire_storage_class(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("properties").and_then(|p| p.get("storageClass")).is_some()
                && let Some(Value::Array(required)) = m.get_mut("required")
            {
                required.retain(|r| r != "storageClass");
            }
            m.values_mut().for_each(unrequire_storage_class);
        }
        Value::Array(a) => a.iter_mut().for_each(unrequire_storage_class),
        _ => {}
    }
}

/// Keeps only the defaults we mean: schemars writes the `Default` of every `#[serde(default)]` field as a schema
/// `default`, which the API server would then write into users' objects (`storageClass: ""`, `secretName: ""`,
/// ...) where the reference writes nothing. Our own defaults carry `x-ako-default: true` (removed here). A
/// transform of the spec and status structs (whose schemas hold every field inline).
pub fn keep_intended_defaults(schema: &mut Schema) {
    if let Some(m) = schema.as_object_mut() {
        let mut value = Value::Object(std::mem::take(m));
        intended_defaults(&mut value);
        if let Value::Object(done) = value {
            *m = done;
        }
    }
}

fn intended_defaults(schema: &mut Value) {
    let Value::Object(m) = schema else { return };
    if m.remove("x-ako-default") != Some(Value::Bool(true)) {
        m.remove("default");
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.values_mut().for_each(intended_defaults);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = m.get_mut(key) {
            intended_defaults(child);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(children)) = m.get_mut(key) {
            children.iter_mut().for_each(intended_defaults);
        }
    }
}

/// Drops `nullable` (and `null` from types and enums) inside a copy: the operator never writes `null` there, and
/// the API server prunes a `null` of a non-nullable field instead of refusing it. Saves a line per optional field.
fn strip_nullable(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("nullable");
            if let Some(Value::Array(types)) = m.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let t = types.remove(0);
                    m.insert("type".into(), t);
                }
            }
            if let Some(Value::Array(values)) = m.get_mut("enum") {
                values.retain(|e| !e.is_null());
            }
            for (key, child) in m.iter_mut() {
                // A property may be named `type` or `enum`; only keywords were changed above.
                if key != "enum" {
                    strip_nullable(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nullable),
        _ => {}
    }
}

/// [`copy`] that may be `null` (the reference writes `null` for some empty applied parts).
pub fn copy_nullable<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut s = copy::<T>(generator);
    s.insert("nullable".into(), true.into());
    s
}

/// Whether a [`copy`] is being generated.
pub fn in_copy() -> bool {
    IN_COPY.with(Cell::get) > 0
}

/// Replaces an object schema by a free-form object, and the item schema of a list likewise; keeps nullability.
/// Other schemas (int-or-string, strings) only lose their descriptions.
fn free_form_in_place(v: &mut Value) {
    let Value::Object(m) = v else { return };
    // An `Option<T>` is `type: [T's type, "null"]` until the generator's final transforms make it `nullable`.
    let types: Vec<String> = match m.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let has = |t: &str| types.iter().any(|x| x == t);
    let nullable = has("null") || m.get("nullable") == Some(&Value::Bool(true));
    if has("object") {
        m.clear();
        m.insert("type".into(), "object".into());
        m.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    } else if has("array") {
        m.retain(|k, _| k == "items");
        m.insert("type".into(), "array".into());
        if let Some(items) = m.get_mut("items") {
            free_form_in_place(items);
        }
    } else {
        strip_descriptions(v);
        return;
    }
    if nullable {
        m.insert("nullable".into(), true.into());
    }
}

/// Schema of an embedded Kubernetes type with its upstream descriptions removed. Inside a [`copy`] it is a
/// free-form object (or list of them): the original in the spec has the full schema.
pub fn k8s<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    if IN_COPY.with(Cell::get) > 0 {
        let mut value = generator.subschema_for::<T>().to_value();
        free_form_in_place(&mut value);
        return Schema::try_from(value).expect("a free-form schema is a schema");
    }
    let mut value = generator.subschema_for::<T>().to_value();
    strip_descriptions(&mut value);
    Schema::try_from(value).expect("a schema stays a schema without descriptions")
}

/// A free-form object: the Aerospike server configuration, and copies of applied spec parts kept in status.
pub fn free_form(_: &mut SchemaGenerator) -> Schema {
    let mut m = Map::new();
    m.insert("type".into(), "object".into());
    m.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    Schema::from(m)
}

/// Same as [`free_form`] but may be null (the reference writes `null` for an empty applied config).
pub fn free_form_nullable(g: &mut SchemaGenerator) -> Schema {
    let mut s = free_form(g);
    s.insert("nullable".into(), true.into());
    s
}

/// A list of objects the API server treats as a map keyed by `key`: duplicates are refused with a field path.
pub fn list_map(schema: &mut Schema, key: &str) {
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), Value::Array(vec![key.into()]));
}

/// Upper bounds of map values, from Kubernetes' own limits.
pub mod max {
    /// A label value (also a node selector's).
    pub const LABEL: u32 = 63;
    /// All annotations of an object together may not exceed 256 KiB.
    pub const ANNOTATION: u32 = 256 * 1024;
}

/// The values of a string map (labels, annotations, node selectors) at most `max` characters.
pub fn map_values_max(schema: &mut Schema, max: u32) {
    if let Some(Value::Object(values)) = schema.get_mut("additionalProperties") {
        values.insert("maxLength".into(), max.into());
    }
}

pub fn label_values(schema: &mut Schema) {
    map_values_max(schema, max::LABEL);
}

pub fn annotation_values(schema: &mut Schema) {
    map_values_max(schema, max::ANNOTATION);
}

/// A list of strings treated as a set: duplicates are refused.
pub fn list_set(schema: &mut Schema) {
    schema.insert("x-kubernetes-list-type".into(), "set".into());
}

pub fn strip_descriptions(v: &mut Value) {
    match v {
        Value::Object(m) => {
            // `description` is a keyword only where it is a string; a property *named* description is an object.
            if matches!(m.get("description"), Some(Value::String(_))) {
                m.remove("description");
            }
            for (_, child) in m.iter_mut() {
                strip_descriptions(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}
