//! Schema helpers that keep the generated CRD small, structural and explicit.
//!
//! Embedded Kubernetes types (Container, Affinity, ...) bring kilobytes of upstream descriptions each; their
//! meaning is documented upstream, so we drop those descriptions and keep only our own field's description.
//! That keeps the CRD under the 256 KiB that a client-side `kubectl apply` can store.
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

/// Schema of an embedded Kubernetes type with its upstream descriptions removed.
pub fn k8s<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
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
