//! Known aerospikeConfig keys and value types for the common sections (service, network, namespaces, logging,
//! security), the union of what servers 6.0 to 8.1 accept (facts from Aerospike's published configuration
//! schemas). Unknown keys and values of the wrong type are refused with a "did you mean" suggestion; `xdr` and
//! `mod-lua` are left to the server.
//!
//! Lives beside the renderer's tables (`super`): the test below holds the two to one view of which keys are lists.
//!
//! The table errs on the side of accepting: a key any supported server version knows is accepted for every
//! version, except the few storage keys server 7.0 removed, which are refused for a known 7.x or later image.
use serde_json::Value;

use crate::aerospike_conf::type_name;
use crate::api::FieldError;
use crate::suggest::suggestion;

/// The JSON type a key takes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// An integral number (3000 and 3000.0 both count).
    Int,
    Bool,
    Str,
    /// A list of strings; a single string counts as a one-element list (the renderer's rule).
    StrList,
    /// One of the listed strings.
    Enum(&'static [&'static str]),
    /// A boolean or a string (a key whose type changed between server versions).
    BoolOrStr,
    /// `tls-authenticate-client`: `any`, `false` or a list of client names.
    TlsAuthenticateClient,
    /// A nested section with its own keys.
    Section(&'static [(&'static str, Kind)]),
    /// A list of named sections.
    SectionList(&'static [(&'static str, Kind)]),
    /// `storage-engine`, `index-type`, `sindex-type`: a section, or a plain string naming its type.
    Typed(&'static [(&'static str, Kind)]),
    /// Not checked (content owned by the server, e.g. xdr).
    Any,
}

use Kind::*;

const LOG_LEVELS: &[&str] = &["critical", "warning", "info", "debug", "detail"];

pub(crate) const SERVICE: &[(&str, Kind)] = &[
    ("advertise-ipv6", Bool),
    ("auto-pin", Enum(&["none", "cpu", "numa", "adq"])),
    ("batch-index-threads", Int),
    ("batch-max-buffers-per-queue", Int),
    ("batch-max-requests", Int),
    ("batch-max-unused-buffers", Int),
    ("cgroup-mem-tracking", Bool),
    ("cluster-name", Str),
    ("debug-allocations", BoolOrStr),
    ("disable-udf-execution", Bool),
    ("enable-benchmarks-fabric", Bool),
    ("enable-health-check", Bool),
    ("enable-hist-info", Bool),
    ("enforce-best-practices", Bool),
    ("feature-key-file", Str),
    ("feature-key-files", StrList),
    ("group", Str),
    ("indent-allocations", Bool),
    ("info-max-ms", Int),
    ("info-threads", Int),
    ("keep-caps-ssd-health", Bool),
    ("log-local-time", Bool),
    ("log-millis", Bool),
    ("microsecond-histograms", Bool),
    ("migrate-fill-delay", Int),
    ("migrate-max-num-incoming", Int),
    ("migrate-threads", Int),
    ("min-cluster-size", Int),
    ("node-id", Str),
    ("node-id-interface", Str),
    ("os-group-perms", Bool),
    ("pidfile", Str),
    ("poison-allocations", Bool),
    ("proto-fd-idle-ms", Int),
    ("proto-fd-max", Int),
    ("quarantine-allocations", Int),
    ("query-max-done", Int),
    ("query-threads-limit", Int),
    ("run-as-daemon", Bool),
    ("salt-allocations", Bool),
    ("secrets-address-port", Str),
    ("secrets-tls-context", Str),
    ("secrets-uds-path", Str),
    ("service-threads", Int),
    ("sindex-builder-threads", Int),
    ("sindex-gc-period", Int),
    ("stay-quiesced", Bool),
    ("ticker-interval", Int),
    ("tls-refresh-period", Int),
    ("transaction-max-ms", Int),
    ("transaction-retry-ms", Int),
    ("user", Str),
    ("vault-ca", Str),
    ("vault-namespace", Str),
    ("vault-path", Str),
    ("vault-token-file", Str),
    ("vault-url", Str),
    ("work-directory", Str),
];

const NET_SERVICE: &[(&str, Kind)] = &[
    ("access-addresses", StrList),
    ("access-port", Int),
    ("addresses", StrList),
    ("alternate-access-addresses", StrList),
    ("alternate-access-port", Int),
    ("disable-localhost", Bool),
    ("port", Int),
    ("tls-access-addresses", StrList),
    ("tls-access-port", Int),
    ("tls-addresses", StrList),
    ("tls-alternate-access-addresses", StrList),
    ("tls-alternate-access-port", Int),
    ("tls-authenticate-client", TlsAuthenticateClient),
    ("tls-name", Str),
    ("tls-port", Int),
];

const NET_ADMIN: &[(&str, Kind)] = &[
    ("addresses", StrList),
    ("disable-localhost", Bool),
    ("port", Int),
    ("tls-addresses", StrList),
    ("tls-authenticate-client", TlsAuthenticateClient),
    ("tls-name", Str),
    ("tls-port", Int),
];

const HEARTBEAT: &[(&str, Kind)] = &[
    ("addresses", StrList),
    ("connect-timeout-ms", Int),
    ("interval", Int),
    ("mesh-seed-address-ports", StrList),
    ("mode", Enum(&["mesh", "multicast"])),
    ("mtu", Int),
    ("multicast-groups", StrList),
    ("multicast-ttl", Int),
    ("port", Int),
    ("protocol", Enum(&["none", "v3"])),
    ("timeout", Int),
    ("tls-addresses", StrList),
    ("tls-mesh-seed-address-ports", StrList),
    ("tls-name", Str),
    ("tls-port", Int),
];

const FABRIC: &[(&str, Kind)] = &[
    ("addresses", StrList),
    ("channel-bulk-fds", Int),
    ("channel-bulk-recv-threads", Int),
    ("channel-ctrl-fds", Int),
    ("channel-ctrl-recv-threads", Int),
    ("channel-meta-fds", Int),
    ("channel-meta-recv-threads", Int),
    ("channel-rw-fds", Int),
    ("channel-rw-recv-pools", Int),
    ("channel-rw-recv-threads", Int),
    ("keepalive-enabled", Bool),
    ("keepalive-intvl", Int),
    ("keepalive-probes", Int),
    ("keepalive-time", Int),
    ("latency-max-ms", Int),
    ("port", Int),
    ("recv-rearm-threshold", Int),
    ("send-threads", Int),
    ("tls-addresses", StrList),
    ("tls-name", Str),
    ("tls-port", Int),
];

const NET_INFO: &[(&str, Kind)] = &[("addresses", StrList), ("port", Int)];

const TLS: &[(&str, Kind)] = &[
    ("name", Str),
    ("ca-file", Str),
    ("ca-path", Str),
    ("cert-blacklist", Str),
    ("cert-file", Str),
    ("cipher-suite", Str),
    ("key-file", Str),
    ("key-file-password", Str),
    ("pki-user-append-ou", Bool),
    ("protocols", Str),
];

pub(crate) const NETWORK: &[(&str, Kind)] = &[
    ("service", Section(NET_SERVICE)),
    ("admin", Section(NET_ADMIN)),
    ("heartbeat", Section(HEARTBEAT)),
    ("fabric", Section(FABRIC)),
    ("info", Section(NET_INFO)),
    ("tls", SectionList(TLS)),
];

const SETS: &[(&str, Kind)] = &[
    ("name", Str),
    ("default-read-touch-ttl-pct", Int),
    ("default-ttl", Int),
    ("disable-eviction", Bool),
    ("enable-index", Bool),
    ("stop-writes-count", Int),
    ("stop-writes-size", Int),
];

const GEO2DSPHERE: &[(&str, Kind)] = &[
    ("strict", Bool),
    ("min-level", Int),
    ("max-level", Int),
    ("max-cells", Int),
    ("level-mod", Int),
    ("earth-radius-meters", Int),
];

const INDEX_TYPE: &[(&str, Kind)] = &[
    ("type", Enum(&["shmem", "pmem", "flash"])),
    ("evict-mounts-pct", Int),
    ("mounts", StrList),
    ("mounts-budget", Int),
    ("mounts-high-water-pct", Int),
    ("mounts-size-limit", Int),
];

const SINDEX: &[(&str, Kind)] = &[("num-partitions", Int)];

const STORAGE_ENGINE: &[(&str, Kind)] = &[
    ("type", Enum(&["memory", "device", "pmem"])),
    ("cache-replica-writes", Bool),
    ("cold-start-empty", Bool),
    ("commit-min-size", Int),
    ("commit-to-device", Bool),
    ("compression", Enum(&["none", "lz4", "snappy", "zstd"])),
    ("compression-acceleration", Int),
    ("compression-level", Int),
    ("data-in-memory", Bool),
    ("data-size", Int),
    ("defrag-lwm-pct", Int),
    ("defrag-queue-min", Int),
    ("defrag-sleep", Int),
    ("defrag-startup-minimum", Int),
    ("devices", StrList),
    ("direct-files", Bool),
    ("disable-odsync", Bool),
    ("enable-benchmarks-storage", Bool),
    ("encryption", Enum(&["aes-128", "aes-256"])),
    ("encryption-key-file", Str),
    ("encryption-old-key-file", Str),
    ("evict-used-pct", Int),
    ("files", StrList),
    ("filesize", Int),
    ("flush-max-ms", Int),
    ("flush-size", Int),
    ("max-write-cache", Int),
    ("min-avail-pct", Int),
    ("post-write-cache", Int),
    ("post-write-queue", Int),
    ("read-page-cache", Bool),
    ("scheduler-mode", Str),
    ("serialize-tomb-raider", Bool),
    ("sindex-startup-device-scan", Bool),
    ("stop-writes-avail-pct", Int),
    ("stop-writes-used-pct", Int),
    ("tomb-raider-sleep", Int),
    ("write-block-size", Int),
];

pub(crate) const NAMESPACE: &[(&str, Kind)] = &[
    ("name", Str),
    ("active-rack", Int),
    ("allow-ttl-without-nsup", Bool),
    ("apply-ttl-reductions", Bool),
    ("auto-revive", Bool),
    ("background-query-max-rps", Int),
    ("conflict-resolution-policy", Enum(&["generation", "last-update-time"])),
    ("conflict-resolve-writes", Bool),
    ("data-in-index", Bool),
    ("default-read-touch-ttl-pct", Int),
    ("default-ttl", Int),
    ("disable-cold-start-eviction", Bool),
    ("disable-mrt-writes", Bool),
    ("disable-write-dup-res", Bool),
    ("disallow-expunge", Bool),
    ("disallow-null-setname", Bool),
    ("enable-benchmarks-batch-sub", Bool),
    ("enable-benchmarks-ops-sub", Bool),
    ("enable-benchmarks-read", Bool),
    ("enable-benchmarks-udf", Bool),
    ("enable-benchmarks-udf-sub", Bool),
    ("enable-benchmarks-write", Bool),
    ("enable-hist-proxy", Bool),
    ("evict-hist-buckets", Int),
    ("evict-indexes-memory-pct", Int),
    ("evict-sys-memory-pct", Int),
    ("evict-tenths-pct", Int),
    ("high-water-disk-pct", Int),
    ("high-water-memory-pct", Int),
    ("ignore-migrate-fill-delay", Bool),
    ("index-stage-size", Int),
    ("indexes-memory-budget", Int),
    ("inline-short-queries", Bool),
    ("max-record-size", Int),
    ("memory-size", Int),
    ("migrate-order", Int),
    ("migrate-retransmit-ms", Int),
    ("migrate-skip-unreadable", Bool),
    ("migrate-sleep", Int),
    ("mrt-duration", Int),
    ("nsup-hist-period", Int),
    ("nsup-period", Int),
    ("nsup-threads", Int),
    ("partition-tree-sprigs", Int),
    ("prefer-uniform-balance", Bool),
    ("rack-id", Int),
    ("read-consistency-level-override", Enum(&["all", "off", "one"])),
    ("reject-non-xdr-writes", Bool),
    ("reject-xdr-writes", Bool),
    ("replication-factor", Int),
    ("single-bin", Bool),
    ("single-query-threads", Int),
    ("sindex-stage-size", Int),
    ("stop-writes-pct", Int),
    ("stop-writes-sys-memory-pct", Int),
    ("strong-consistency", Bool),
    ("strong-consistency-allow-expunge", Bool),
    ("tomb-raider-eligible-age", Int),
    ("tomb-raider-period", Int),
    ("tomb-raider-unmark-threads", Int),
    ("transaction-pending-limit", Int),
    ("truncate-threads", Int),
    ("write-commit-level-override", Enum(&["all", "master", "off"])),
    ("xdr-bin-tombstone-ttl", Int),
    ("xdr-tomb-raider-period", Int),
    ("xdr-tomb-raider-threads", Int),
    ("geo2dsphere-within", Section(GEO2DSPHERE)),
    ("index-type", Typed(INDEX_TYPE)),
    ("sindex-type", Typed(INDEX_TYPE)),
    ("sindex", Section(SINDEX)),
    ("sets", SectionList(SETS)),
    ("storage-engine", Typed(STORAGE_ENGINE)),
];

const LDAP: &[(&str, Kind)] = &[
    ("disable-tls", Bool),
    ("login-threads", Int),
    ("polling-period", Int),
    ("query-base-dn", Str),
    ("query-user-dn", Str),
    ("query-user-password-file", Str),
    ("role-query-base-dn", Str),
    ("role-query-patterns", StrList),
    ("role-query-search-ou", Bool),
    ("server", Str),
    ("tls-ca-file", Str),
    ("token-hash-method", Enum(&["sha-256", "sha-512"])),
    ("user-dn-pattern", Str),
    ("user-query-pattern", Str),
];

const SECURITY_LOG: &[(&str, Kind)] = &[
    ("report-authentication", Bool),
    ("report-data-op", StrList),
    ("report-data-op-role", StrList),
    ("report-data-op-user", StrList),
    ("report-sys-admin", Bool),
    ("report-user-admin", Bool),
    ("report-violation", Bool),
];

pub(crate) const SECURITY: &[(&str, Kind)] = &[
    ("default-password-file", Str),
    ("enable-quotas", Bool),
    ("privilege-refresh-period", Int),
    ("session-ttl", Int),
    ("tps-weight", Int),
    ("ldap", Section(LDAP)),
    ("log", Section(SECURITY_LOG)),
];

/// Logging contexts (any key of a logging entry other than name, facility, path and tag).
const LOG_CONTEXTS: &[&str] = &[
    "aggr",
    "alloc",
    "any",
    "appeal",
    "arenax",
    "as",
    "audit",
    "batch",
    "batch-sub",
    "bin",
    "clustering",
    "config",
    "deprecation",
    "drv-mem",
    "drv_pmem",
    "drv_ssd",
    "exchange",
    "exp",
    "fabric",
    "flat",
    "geo",
    "hardware",
    "hb",
    "health",
    "hlc",
    "index",
    "info",
    "info-command",
    "info-port",
    "key-busy",
    "masking",
    "migrate",
    "misc",
    "mrt-audit",
    "mrt-monitor",
    "msg",
    "namespace",
    "nsup",
    "os",
    "particle",
    "partition",
    "proto",
    "proxy",
    "proxy-divert",
    "query",
    "rbuffer",
    "record",
    "roster",
    "rw",
    "rw-client",
    "scan",
    "secrets",
    "security",
    "service",
    "service-list",
    "sindex",
    "skew",
    "smd",
    "socket",
    "storage",
    "tls",
    "truncate",
    "tsvc",
    "udf",
    "vault",
    "vmapx",
    "xdr",
    "xdr-client",
    "xmem",
];

const FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user", "uucp", "local0",
    "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

const TOP: &[(&str, Kind)] = &[
    ("service", Section(SERVICE)),
    ("network", Section(NETWORK)),
    ("namespaces", SectionList(NAMESPACE)),
    ("logging", Any), // checked by `check_logging`
    ("security", Section(SECURITY)),
    ("xdr", Any),
    ("mod-lua", Any),
];

/// Keys server 7.0 removed (with what replaced them), refused when the image is 7.0 or later.
const REMOVED_IN_7: &[(&str, &str)] = &[
    ("memory-size", "use storage-engine data-size (memory) or the storage-engine's own limits"),
    ("data-in-index", "data-in-index no longer exists; use storage-engine memory"),
    ("high-water-disk-pct", "use storage-engine evict-used-pct"),
    ("high-water-memory-pct", "use evict-sys-memory-pct"),
    ("stop-writes-pct", "use stop-writes-sys-memory-pct or storage-engine stop-writes-used-pct"),
    ("single-bin", "single-bin namespaces no longer exist"),
    ("data-in-memory", "use storage-engine memory with devices or files for persistence"),
    ("min-avail-pct", "use stop-writes-avail-pct"),
];

/// Checks the keys and value types of one aerospikeConfig object (the global one or a rack's override).
/// `path` names it (`spec.aerospikeConfig` or `spec.rackConfig.racks[i].aerospikeConfig`); `major` is the server
/// major version when the image tells it.
pub(crate) fn check_config(config: &Value, path: &str, major: Option<u64>, out: &mut Vec<FieldError>) {
    let Value::Object(map) = config else {
        if !config.is_null() {
            out.push(FieldError::new(path, format!("expected an object, found {}", type_name(config))));
        }
        return;
    };
    for (key, value) in map {
        let p = format!("{path}.{key}");
        match lookup(TOP, key) {
            Some(_) if key == "logging" => check_logging(value, &p, out),
            Some(kind) => check_value(value, kind, &p, major, out),
            None => out.push(unknown(&p, key, TOP.iter().map(|(k, _)| *k), "aerospikeConfig")),
        }
    }
}

fn lookup(table: &[(&str, Kind)], key: &str) -> Option<Kind> {
    table.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind)
}

fn is_int(v: &Value) -> bool {
    match v.as_number() {
        Some(n) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0),
        None => false,
    }
}

fn wrong(path: &str, expected: &str, found: &Value) -> FieldError {
    FieldError::new(path, format!("expected {expected}, found {}", type_name(found)))
}

fn check_value(v: &Value, kind: Kind, path: &str, major: Option<u64>, out: &mut Vec<FieldError>) {
    // null removes a key (a rack override may null a global value): always accepted.
    if v.is_null() {
        return;
    }
    match kind {
        Any => {}
        Int => {
            if !is_int(v) {
                out.push(wrong(path, "an integer", v));
            }
        }
        Bool => {
            if !v.is_boolean() {
                out.push(wrong(path, "true or false", v));
            }
        }
        Str => {
            if !v.is_string() {
                out.push(wrong(path, "a string", v));
            }
        }
        BoolOrStr => {
            if !v.is_boolean() && !v.is_string() {
                out.push(wrong(path, "a boolean or a string", v));
            }
        }
        StrList => match v {
            Value::String(_) => {}
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        out.push(wrong(&format!("{path}[{i}]"), "a string", item));
                    }
                }
            }
            other => out.push(wrong(path, "a list of strings", other)),
        },
        Enum(values) => match v.as_str() {
            Some(s) if values.contains(&s) => {}
            Some(s) => out.push(FieldError::new(
                path,
                format!("{s:?} is not one of {}{}", values.join(", "), suggestion(s, values.iter().copied())),
            )),
            None => out.push(wrong(path, &format!("one of {}", values.join(", ")), v)),
        },
        TlsAuthenticateClient => match v {
            Value::String(_) => {}
            Value::Bool(false) => {}
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        out.push(wrong(&format!("{path}[{i}]"), "a client name", item));
                    }
                }
            }
            other => out.push(wrong(path, "any, false or a list of client names", other)),
        },
        Section(table) => check_section(v, table, path, major, out),
        Typed(table) => match v {
            Value::String(s) => {
                if let Some((_, Enum(types))) = table.iter().find(|(k, _)| *k == "type")
                    && !types.contains(&s.as_str())
                {
                    out.push(FieldError::new(
                        path,
                        format!("{s:?} is not one of {}{}", types.join(", "), suggestion(s, types.iter().copied())),
                    ));
                }
            }
            _ => check_section(v, table, path, major, out),
        },
        SectionList(table) => match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    check_section(item, table, &p, major, out);
                }
            }
            other => out.push(wrong(path, "a list of objects", other)),
        },
    }
}

fn check_section(
    v: &Value,
    table: &'static [(&'static str, Kind)],
    path: &str,
    major: Option<u64>,
    out: &mut Vec<FieldError>,
) {
    let Value::Object(map) = v else {
        out.push(wrong(path, "an object", v));
        return;
    };
    let section = path.rsplit('.').next().unwrap_or(path);
    for (key, value) in map {
        let p = format!("{path}.{key}");
        match lookup(table, key) {
            Some(kind) => {
                if major.is_some_and(|m| m >= 7)
                    && let Some((_, hint)) = REMOVED_IN_7.iter().find(|(k, _)| *k == key)
                    && !value.is_null()
                {
                    out.push(FieldError::new(&p, format!("removed in Aerospike server 7.0: {hint}")));
                    continue;
                }
                check_value(value, kind, &p, major, out);
            }
            None => out.push(unknown(&p, key, table.iter().map(|(k, _)| *k), section)),
        }
    }
}

fn check_logging(v: &Value, path: &str, out: &mut Vec<FieldError>) {
    let Value::Array(entries) = v else {
        if !v.is_null() {
            out.push(wrong(path, "a list of log sinks", v));
        }
        return;
    };
    for (i, entry) in entries.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Value::Object(map) = entry else {
            out.push(wrong(&p, "an object", entry));
            continue;
        };
        let syslog = map.get("name").and_then(Value::as_str) == Some("syslog");
        for (key, value) in map {
            let kp = format!("{p}.{key}");
            match key.as_str() {
                "name" => {
                    if !value.is_string() {
                        out.push(wrong(&kp, "a string", value));
                    }
                }
                "facility" | "path" | "tag" if !syslog => {
                    out.push(FieldError::new(&kp, format!("{key} applies only to the log sink named syslog")))
                }
                "facility" => check_value(value, Enum(FACILITIES), &kp, None, out),
                "path" | "tag" => check_value(value, Str, &kp, None, out),
                context if LOG_CONTEXTS.contains(&context) => match value.as_str() {
                    Some(level) if LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) => {}
                    Some(level) => out.push(FieldError::new(
                        &kp,
                        format!(
                            "log level {level:?} is not one of {}{}",
                            LOG_LEVELS.join(", "),
                            suggestion(&level.to_ascii_lowercase(), LOG_LEVELS.iter().copied())
                        ),
                    )),
                    None => out.push(wrong(&kp, "a log level", value)),
                },
                other => out.push(unknown(
                    &kp,
                    other,
                    LOG_CONTEXTS.iter().copied().chain(["name", "facility", "path", "tag"]),
                    "logging",
                )),
            }
        }
    }
}

fn unknown<'a>(path: &str, key: &str, known: impl Iterator<Item = &'a str>, section: &str) -> FieldError {
    FieldError::new(path, format!("unknown key {key:?} in {section}{}", suggestion(key, known)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aerospike_conf::keys::{is_list_field, singular};

    /// Every key of a table, recursively: (key, kind).
    fn walk(table: &'static [(&'static str, Kind)], out: &mut Vec<(&'static str, Kind)>) {
        for &(key, kind) in table {
            out.push((key, kind));
            if let Section(t) | SectionList(t) | Typed(t) = kind {
                walk(t, out);
            }
        }
    }

    /// The schema (what validation accepts) and the renderer (how aerospike.conf is written) agree on which keys
    /// are lists: a list the renderer did not know would be written as one line, a list key the schema typed as
    /// a scalar would be refused.
    #[test]
    fn the_schema_and_the_renderer_agree_on_list_keys() {
        let mut keys = Vec::new();
        walk(TOP, &mut keys);
        assert!(keys.len() > 200, "the walk reaches the nested sections ({} keys)", keys.len());
        for (key, kind) in keys {
            match kind {
                StrList | TlsAuthenticateClient => {
                    assert!(is_list_field(key), "{key}: a list in the schema, not a list field for the renderer")
                }
                Int | Bool | Enum(_) => {
                    assert!(!is_list_field(key), "{key}: a scalar in the schema, a list field for the renderer")
                }
                _ => {}
            }
            if singular(key) != key {
                assert!(
                    matches!(kind, StrList | SectionList(_) | Any),
                    "{key}: a plural key the renderer makes singular, typed {kind:?} in the schema"
                );
            }
        }
    }
}
