//! aerospike.conf rendering: `spec.aerospikeConfig` (JSON) in, aerospike.conf text out. Pure: no I/O.
//!
//! Pipeline per rack (docs/aerospike-conf.md §1):
//! 1. [`merge_rack_config`]: the global config merged with the rack's override.
//! 2. [`apply_defaults`]: the operator-managed values (node-id placeholder, cluster-name, access-address
//!    placeholders, mesh heartbeat, console logging, namespace rack-id).
//! 3. [`render`]: the aerospike.conf template text (byte layout compatible with the reference operator).
//! 4. [`config_hash`]: the change-detection hash stored in the rack ConfigMap.
//! 5. [`finalize_for_pod`]: the per-pod init step turning the template into the pod's final file.
//!
//! Helpers for the controller and the webhooks: [`service_port`], [`heartbeat_port`], [`namespaces`] and
//! friends (module `query`), [`node_id`].
//!
//! Every error is a [`ConfError`] whose message starts with the JSON path of the offending field, rooted at
//! `aerospikeConfig` (e.g. `aerospikeConfig.namespaces[1].name: missing`).

mod defaults;
pub mod dynamic;
mod hash;
pub mod keys;
mod merge;
mod pod;
mod query;
mod render;

#[cfg(test)]
mod tests;

pub use defaults::{DefaultsContext, apply_defaults};
pub use hash::config_hash;
pub use merge::merge_rack_config;
pub use pod::{PodContext, finalize_for_pod, node_id};
pub use query::{
    NamespaceInfo, ServiceEndpoint, fabric_port, fabric_tls_port, has_plain_service_port, heartbeat_port,
    heartbeat_tls_port, namespaces, operator_endpoint, service_port, service_tls, tls_authenticate_client, tls_names,
};
pub use render::render;

use serde_json::Value;

/// Root of every error path.
pub const ROOT_PATH: &str = "aerospikeConfig";

/// Placeholder for the node id in the rendered template; replaced per pod (see [`node_id`]).
pub const NODE_ID_PLACEHOLDER: &str = "ENV_NODE_ID";
/// Placeholder values injected into `network.service` by [`apply_defaults`] and replaced per pod.
pub const ACCESS_ADDRESS_PLACEHOLDER: &str = "<access-address>";
/// See [`ACCESS_ADDRESS_PLACEHOLDER`].
pub const ALTERNATE_ACCESS_ADDRESS_PLACEHOLDER: &str = "<alternate-access-address>";
/// See [`ACCESS_ADDRESS_PLACEHOLDER`].
pub const TLS_ACCESS_ADDRESS_PLACEHOLDER: &str = "<tls-access-address>";
/// See [`ACCESS_ADDRESS_PLACEHOLDER`].
pub const TLS_ALTERNATE_ACCESS_ADDRESS_PLACEHOLDER: &str = "<tls-alternate-access-address>";

/// A problem with an aerospikeConfig value. The `Display` text always starts with the JSON path of the
/// field concerned (see [`ConfError::path`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    /// A required field is absent (or null).
    #[error("{path}: missing")]
    Missing { path: String },
    /// A field has the wrong JSON type.
    #[error("{path}: expected {expected}, found {found}")]
    WrongType { path: String, expected: &'static str, found: &'static str },
    /// A user value contradicts a value the operator sets itself.
    #[error("{path}: value {found} conflicts with the operator-managed value {expected}")]
    Conflict { path: String, found: String, expected: String },
    /// Any other invalid value.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl ConfError {
    /// The JSON path of the offending field, e.g. `aerospikeConfig.network.heartbeat.mode`.
    pub fn path(&self) -> &str {
        match self {
            ConfError::Missing { path }
            | ConfError::WrongType { path, .. }
            | ConfError::Conflict { path, .. }
            | ConfError::Invalid { path, .. } => path,
        }
    }

    pub(crate) fn missing(path: impl Into<String>) -> Self {
        ConfError::Missing { path: path.into() }
    }

    pub(crate) fn wrong_type(path: impl Into<String>, expected: &'static str, found: &Value) -> Self {
        ConfError::WrongType { path: path.into(), expected, found: type_name(found) }
    }

    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfError::Invalid { path: path.into(), reason: reason.into() }
    }
}

/// JSON type name used in error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `path.key`
pub(crate) fn child_path(path: &str, key: &str) -> String {
    let mut p = String::with_capacity(path.len() + key.len() + 1);
    p.push_str(path);
    p.push('.');
    p.push_str(key);
    p
}

/// `path[i]`
pub(crate) fn index_path(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Formats a JSON number the way aerospike.conf wants it: a plain decimal integer, never `1e+09` or
/// `2.0`. Fractions are truncated toward zero, as the reference operator does (it converts every JSON
/// number to a 64-bit integer); integral values beyond the 64-bit range print all their digits.
pub(crate) fn format_number(n: &serde_json::Number) -> String {
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0).trunc();
    if f == 0.0 || !f.is_finite() {
        return "0".to_string();
    }
    // 2^64 and -2^63 are exactly representable, so these casts are exact inside the bounds.
    if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
        return (f as u64).to_string();
    }
    if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
        return (f as i64).to_string();
    }
    format!("{f:.0}")
}

/// The integer value of a JSON number if it is integral (also for floats such as `3000.0`).
pub(crate) fn number_as_i128(v: &Value) -> Option<i128> {
    let n = v.as_number()?;
    if let Some(u) = n.as_u64() {
        return Some(u as i128);
    }
    if let Some(i) = n.as_i64() {
        return Some(i as i128);
    }
    let f = n.as_f64()?;
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30 { Some(f as i128) } else { None }
}
