//! Key tables of docs/aerospike-conf.md §3-§5: plural (CR) to singular (conf) names, list fields and their
//! separators, section kinds ([`schema`]: the keys and value types validation accepts).

pub mod dynamic;
pub(crate) mod schema;

/// Plural CR keys and their aerospike.conf (singular) names (docs/aerospike-conf.md §4). The last four are
/// legacy XDR keys the reference writer also knows; they only matter for configs of old servers.
const PLURAL_TO_SINGULAR: &[(&str, &str)] = &[
    ("access-addresses", "access-address"),
    ("addresses", "address"),
    ("alternate-access-addresses", "alternate-access-address"),
    ("datacenters", "datacenter"),
    ("dcs", "dc"),
    ("devices", "device"),
    ("feature-key-files", "feature-key-file"),
    ("files", "file"),
    ("ignore-bins", "ignore-bin"),
    ("ignore-sets", "ignore-set"),
    ("mesh-seed-address-ports", "mesh-seed-address-port"),
    ("mounts", "mount"),
    ("multicast-groups", "multicast-group"),
    ("namespaces", "namespace"),
    ("node-address-ports", "node-address-port"),
    ("role-query-patterns", "role-query-pattern"),
    ("sets", "set"),
    ("ship-bins", "ship-bin"),
    ("ship-sets", "ship-set"),
    ("tls-access-addresses", "tls-access-address"),
    ("tls-addresses", "tls-address"),
    ("tls-alternate-access-addresses", "tls-alternate-access-address"),
    ("tls-mesh-seed-address-ports", "tls-mesh-seed-address-port"),
    // legacy XDR
    ("dc-node-address-ports", "dc-node-address-port"),
    ("http-urls", "http-url"),
    ("tls-nodes", "tls-node"),
    ("xdr-remote-datacenters", "xdr-remote-datacenter"),
];

/// Singular names of list fields: a scalar string under one of these keys (or their plurals) is a
/// one-element list (docs/aerospike-conf.md §2). Section names (namespace, set, dc, tls, logging, datacenter)
/// are not list fields.
const LIST_FIELDS: &[&str] = &[
    "access-address",
    "address",
    "alternate-access-address",
    "dc-int-ext-ipmap",
    "dc-node-address-port",
    "device",
    "feature-key-file",
    "file",
    "http-url",
    "ignore-bin",
    "ignore-set",
    "mesh-seed-address-port",
    "mount",
    "multicast-group",
    "node-address-port",
    "report-data-op",
    "report-data-op-role",
    "report-data-op-user",
    "role-query-pattern",
    "ship-bin",
    "ship-set",
    "tls-access-address",
    "tls-address",
    "tls-alternate-access-address",
    "tls-authenticate-client",
    "tls-mesh-seed-address-port",
    "tls-node",
    "xdr-remote-datacenter",
];

/// The conf (singular) name of a CR key; unchanged when the key has no plural form.
pub(crate) fn singular(key: &str) -> &str {
    PLURAL_TO_SINGULAR.iter().find(|(p, _)| *p == key).map(|(_, s)| *s).unwrap_or(key)
}

/// Whether `key` (plural or singular) names a list field.
pub(crate) fn is_list_field(key: &str) -> bool {
    LIST_FIELDS.contains(&singular(key))
}

/// The character replaced by a space in each element of the list field `singular_key` (docs/aerospike-conf.md §5).
pub(crate) fn list_separator(singular_key: &str) -> Option<char> {
    match singular_key {
        "mesh-seed-address-port"
        | "tls-mesh-seed-address-port"
        | "device"
        | "report-data-op"
        | "node-address-port"
        | "feature-key-file" => Some(':'),
        // legacy XDR fields, as in the reference writer
        "dc-node-address-port" | "tls-node" | "dc-int-ext-ipmap" => Some('+'),
        _ => None,
    }
}

/// Whether a scalar string under `key` is kept as a scalar although `key` is a list field (docs/aerospike-conf.md §2).
pub(crate) fn string_stays_scalar(key: &str, value: &str) -> bool {
    key == "feature-key-file" || (key == "tls-authenticate-client" && (value == "any" || value == "false"))
}

/// Singular names of the sections written as `<name> <entry name> {` from a list of objects
/// (docs/aerospike-conf.md §3).
pub(crate) fn is_named_section(singular_key: &str) -> bool {
    matches!(singular_key, "namespace" | "dc" | "set" | "tls" | "file")
}

/// Sections that put their `type` in the header (docs/aerospike-conf.md §3).
pub(crate) fn is_typed_section(key: &str) -> bool {
    matches!(key, "storage-engine" | "index-type" | "sindex-type")
}

/// Keys whose value must be a list of objects (or null); anything else is a shape error.
pub(crate) fn must_be_object_list(key: &str) -> bool {
    matches!(key, "namespaces" | "dcs" | "sets" | "tls" | "logging")
}

/// Keys whose value must be an object (or null) under the given parent key (`None` = top level).
pub(crate) fn must_be_object(parent: Option<&str>, key: &str) -> bool {
    match parent {
        None => matches!(key, "service" | "network" | "security" | "xdr" | "mod-lua"),
        Some("network") => matches!(key, "service" | "heartbeat" | "fabric" | "info" | "admin"),
        _ => false,
    }
}

/// Keys whose value must be an object or a plain string (typed sections).
pub(crate) fn must_be_object_or_string(key: &str) -> bool {
    is_typed_section(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_keys_become_singular() {
        assert_eq!(singular("dcs"), "dc");
        assert_eq!(singular("addresses"), "address");
        assert_eq!(singular("tls-alternate-access-addresses"), "tls-alternate-access-address");
        assert_eq!(singular("mesh-seed-address-ports"), "mesh-seed-address-port");
        assert_eq!(singular("namespaces"), "namespace");
        for unchanged in [
            "logging",
            "tls",
            "report-data-op",
            "report-data-op-user",
            "report-data-op-role",
            "tls-authenticate-client",
            "replication-factor",
        ] {
            assert_eq!(singular(unchanged), unchanged);
        }
    }

    #[test]
    fn list_fields_and_separators() {
        assert!(is_list_field("devices"));
        assert!(is_list_field("device"));
        assert!(is_list_field("report-data-op"));
        assert!(!is_list_field("namespaces"));
        assert!(!is_list_field("port"));
        assert_eq!(list_separator("device"), Some(':'));
        assert_eq!(list_separator("feature-key-file"), Some(':'));
        assert_eq!(list_separator("access-address"), None);
        assert!(string_stays_scalar("feature-key-file", "/x"));
        assert!(string_stays_scalar("tls-authenticate-client", "any"));
        assert!(!string_stays_scalar("tls-authenticate-client", "client1"));
    }
}
