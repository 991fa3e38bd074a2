//! Configuration changes without restarts: compare the config a pod runs with the one it should run and, when every
//! difference is a key the server version changes at run time ([`keys::dynamic`](super::keys::dynamic)), list the
//! `set-config` / `log-set` updates that carry it over. Pure: JSON in, updates out.
//!
//! What needs a restart: any key of a context not updated in place (security, xdr, mod-lua, network service/info/
//! tls), a key removed (its server default is not known here), a list or section value, a namespace, set or log
//! sink added or removed, a storage or index type changed, and every key the table does not mark dynamic.
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::keys::dynamic::is_dynamic;
use super::number_as_i128;

/// Where an update goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum UpdateContext {
    Service,
    /// `heartbeat.<key>` or `fabric.<key>` in `set-config:context=network`.
    Network,
    Namespace(String),
    Set {
        namespace: String,
        set: String,
    },
    /// A log sink by its name in the config (`console` or a file path): `log-set:id=<sink id>;<context>=<level>`.
    Logging(String),
}

/// One in-place update.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Update {
    pub context: UpdateContext,
    /// The key as the server's command names it (`heartbeat.interval`, `defrag-lwm-pct`, `index-type.mounts-budget`).
    pub key: String,
    pub value: String,
    /// The config path, for messages: `namespaces[test].default-ttl`.
    pub path: String,
}

/// Keys whose new value takes effect only after a `recluster:` (the reference reclusters after setting them).
pub const RECLUSTER_KEYS: &[&str] = &["replication-factor", "active-rack"];

/// How a config change reaches a running server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangePlan {
    /// Nothing differs.
    None,
    /// Every difference is dynamic: these updates carry it over.
    InPlace(Vec<Update>),
    /// These differences (config paths) need the server restarted.
    Restart(Vec<String>),
}

/// Plan the change from `old` to `new` (both merged, defaulted rack configs) on server `major.minor`.
pub fn plan_change(old: &Value, new: &Value, major: u32, minor: u32) -> ChangePlan {
    let mut d = Diff { version: (major, minor), updates: Vec::new(), restart: Vec::new() };
    d.top(old, new);
    if !d.restart.is_empty() {
        d.restart.sort();
        d.restart.dedup();
        ChangePlan::Restart(d.restart)
    } else if d.updates.is_empty() {
        ChangePlan::None
    } else {
        d.updates.sort();
        ChangePlan::InPlace(d.updates)
    }
}

/// The value as a `set-config` argument: scalars only.
pub fn command_value(v: &Value) -> Option<String> {
    match v {
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(_) => number_as_i128(v).map(|n| n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Whether the value a server reports (`get-config`) is the value set: numbers with the conf file's unit suffixes
/// (`1d`, `4K`) equal their plain form, booleans and words compare without case.
pub fn same_value(wanted: &str, reported: &str) -> bool {
    if wanted.eq_ignore_ascii_case(reported) {
        return true;
    }
    match (with_units(wanted), with_units(reported)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn with_units(s: &str) -> Option<u128> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u128>() {
        return Some(n);
    }
    let (digits, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: u128 = digits.parse().ok()?;
    let factor: u128 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "K" | "k" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        "P" => 1 << 50,
        _ => return None,
    };
    n.checked_mul(factor)
}

type Object = Map<String, Value>;

struct Diff {
    version: (u32, u32),
    updates: Vec<Update>,
    restart: Vec<String>,
}

fn keys<'a>(a: &'a Map<String, Value>, b: &'a Map<String, Value>) -> BTreeSet<&'a String> {
    a.keys().chain(b.keys()).collect()
}

fn empty() -> &'static Map<String, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    &EMPTY
}

fn object(v: Option<&Value>) -> Option<&Map<String, Value>> {
    match v {
        None | Some(Value::Null) => Some(empty()),
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// Entries of a list of named objects by name; None if it is not one.
fn by_name(v: Option<&Value>) -> Option<Vec<(&str, &Map<String, Value>)>> {
    match v {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().map(|i| Some((i.get("name")?.as_str()?, i.as_object()?))).collect::<Option<Vec<_>>>()
        }
        _ => None,
    }
}

/// A typed section (`storage-engine`, `index-type`, `sindex-type`): its type and its other keys.
fn typed(v: Option<&Value>) -> Option<(Option<&str>, &Map<String, Value>)> {
    match v {
        None | Some(Value::Null) => Some((None, empty())),
        Some(Value::String(t)) => Some((Some(t.as_str()), empty())),
        Some(Value::Object(m)) => Some((m.get("type").and_then(Value::as_str), m)),
        _ => None,
    }
}

impl Diff {
    fn top(&mut self, old: &Value, new: &Value) {
        let (Some(o), Some(n)) = (object(Some(old)), object(Some(new))) else {
            self.restart.push("aerospikeConfig".into());
            return;
        };
        for key in keys(o, n) {
            let (a, b) = (o.get(key), n.get(key));
            if a == b {
                continue;
            }
            match key.as_str() {
                "service" => self.section(a, b, "service", "service", "", &UpdateContext::Service),
                "network" => self.network(a, b),
                "namespaces" => self.namespaces(a, b),
                "logging" => self.logging(a, b),
                other => self.restart.push(other.to_string()),
            }
        }
    }

    /// A flat section: each scalar key changed or added is an update if `table_prefix.<key>` is dynamic.
    fn section(
        &mut self,
        a: Option<&Value>,
        b: Option<&Value>,
        path: &str,
        table_prefix: &str,
        key_prefix: &str,
        context: &UpdateContext,
    ) {
        let (Some(o), Some(n)) = (object(a), object(b)) else {
            self.restart.push(path.to_string());
            return;
        };
        for key in keys(o, n) {
            self.key(
                o.get(key),
                n.get(key),
                &format!("{path}.{key}"),
                &format!("{table_prefix}.{key}"),
                key_prefix,
                key,
                context,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn key(
        &mut self,
        a: Option<&Value>,
        b: Option<&Value>,
        path: &str,
        table_path: &str,
        key_prefix: &str,
        key: &str,
        context: &UpdateContext,
    ) {
        if a == b {
            return;
        }
        let value = b.filter(|v| !v.is_null()).and_then(command_value);
        match value {
            Some(value) if is_dynamic(table_path, self.version.0, self.version.1) => self.updates.push(Update {
                context: context.clone(),
                key: format!("{key_prefix}{key}"),
                value,
                path: path.to_string(),
            }),
            _ => self.restart.push(path.to_string()),
        }
    }

    fn network(&mut self, a: Option<&Value>, b: Option<&Value>) {
        let (Some(o), Some(n)) = (object(a), object(b)) else {
            self.restart.push("network".into());
            return;
        };
        for sub in keys(o, n) {
            let (x, y) = (o.get(sub), n.get(sub));
            if x == y {
                continue;
            }
            match sub.as_str() {
                "heartbeat" | "fabric" => self.section(
                    x,
                    y,
                    &format!("network.{sub}"),
                    &format!("network.{sub}"),
                    &format!("{sub}."),
                    &UpdateContext::Network,
                ),
                other => self.restart.push(format!("network.{other}")),
            }
        }
    }

    /// The entries of two lists of named objects present on both sides, by name; the list that is not one, or an
    /// entry on one side only, needs a restart (recorded under `path` / `path[name]`).
    fn paired<'v>(
        &mut self,
        a: Option<&'v Value>,
        b: Option<&'v Value>,
        path: &str,
    ) -> Vec<(&'v str, &'v Object, &'v Object)> {
        let (Some(o), Some(n)) = (by_name(a), by_name(b)) else {
            self.restart.push(path.to_string());
            return Vec::new();
        };
        let names: BTreeSet<&str> = o.iter().chain(&n).map(|(name, _)| *name).collect();
        let mut out = Vec::new();
        for name in names {
            match (o.iter().find(|(m, _)| *m == name), n.iter().find(|(m, _)| *m == name)) {
                (Some((_, x)), Some((_, y))) => out.push((name, *x, *y)),
                _ => self.restart.push(format!("{path}[{name}]")),
            }
        }
        out
    }

    fn namespaces(&mut self, a: Option<&Value>, b: Option<&Value>) {
        for (name, x, y) in self.paired(a, b, "namespaces") {
            let path = format!("namespaces[{name}]");
            let context = UpdateContext::Namespace(name.to_string());
            for key in keys(x, y) {
                let (p, q) = (x.get(key), y.get(key));
                if p == q {
                    continue;
                }
                let at = format!("{path}.{key}");
                match key.as_str() {
                    "sets" => self.sets(name, p, q, &at),
                    "storage-engine" | "index-type" | "sindex-type" => {
                        let prefix = if key == "storage-engine" { String::new() } else { format!("{key}.") };
                        self.typed(p, q, &at, &format!("namespaces.{key}"), &prefix, &context);
                    }
                    "geo2dsphere-within" => {
                        self.section(p, q, &at, "namespaces.geo2dsphere-within", "geo2dsphere-within-", &context)
                    }
                    _ => self.key(p, q, &at, &format!("namespaces.{key}"), "", key, &context),
                }
            }
        }
    }

    fn typed(
        &mut self,
        a: Option<&Value>,
        b: Option<&Value>,
        path: &str,
        table_prefix: &str,
        key_prefix: &str,
        context: &UpdateContext,
    ) {
        let (Some((ta, x)), Some((tb, y))) = (typed(a), typed(b)) else {
            self.restart.push(path.to_string());
            return;
        };
        let Some(kind) = ta.filter(|_| ta == tb) else {
            self.restart.push(format!("{path}.type"));
            return;
        };
        for key in keys(x, y).into_iter().filter(|k| *k != "type") {
            self.key(
                x.get(key),
                y.get(key),
                &format!("{path}.{key}"),
                &format!("{table_prefix}.{kind}.{key}"),
                key_prefix,
                key,
                context,
            );
        }
    }

    fn sets(&mut self, namespace: &str, a: Option<&Value>, b: Option<&Value>, path: &str) {
        for (set, x, y) in self.paired(a, b, path) {
            let at = format!("{path}[{set}]");
            let context = UpdateContext::Set { namespace: namespace.to_string(), set: set.to_string() };
            for key in keys(x, y).into_iter().filter(|k| *k != "name") {
                self.key(
                    x.get(key),
                    y.get(key),
                    &format!("{at}.{key}"),
                    &format!("namespaces.sets.{key}"),
                    "",
                    key,
                    &context,
                );
            }
        }
    }

    fn logging(&mut self, a: Option<&Value>, b: Option<&Value>) {
        for (sink, x, y) in self.paired(a, b, "logging") {
            let at = format!("logging[{sink}]");
            let context = UpdateContext::Logging(sink.to_string());
            for key in keys(x, y).into_iter().filter(|k| *k != "name") {
                self.key(x.get(key), y.get(key), &format!("{at}.{key}"), &format!("logging.{key}"), "", key, &context);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Value {
        json!({
            "service": {"proto-fd-max": 15000, "cluster-name": "aero"},
            "network": {"service": {"port": 3000}, "heartbeat": {"mode": "mesh", "port": 3002, "interval": 150}},
            "logging": [{"name": "console", "any": "info"}],
            "namespaces": [{
                "name": "test", "replication-factor": 2, "default-ttl": 0,
                "storage-engine": {"type": "device", "devices": ["/dev/xvdb"], "defrag-lwm-pct": 50},
                "sets": [{"name": "s1", "stop-writes-count": 1000}]
            }]
        })
    }

    fn edit(f: impl FnOnce(&mut Value)) -> Value {
        let mut v = base();
        f(&mut v);
        v
    }

    fn update(context: UpdateContext, key: &str, value: &str, path: &str) -> Update {
        Update { context, key: key.into(), value: value.into(), path: path.into() }
    }

    #[test]
    fn an_unchanged_config_needs_nothing() {
        assert_eq!(plan_change(&base(), &base(), 7, 0), ChangePlan::None);
    }

    #[test]
    fn dynamic_keys_of_every_context_become_updates() {
        let new = edit(|v| {
            v["service"]["proto-fd-max"] = json!(20000);
            v["network"]["heartbeat"]["interval"] = json!(250);
            v["namespaces"][0]["default-ttl"] = json!("30d");
            v["namespaces"][0]["storage-engine"]["defrag-lwm-pct"] = json!(60);
            v["namespaces"][0]["sets"][0]["stop-writes-count"] = json!(5000);
            v["logging"][0]["migrate"] = json!("debug");
        });
        let ns = || UpdateContext::Namespace("test".into());
        let set = UpdateContext::Set { namespace: "test".into(), set: "s1".into() };
        let mut want = vec![
            update(UpdateContext::Service, "proto-fd-max", "20000", "service.proto-fd-max"),
            update(UpdateContext::Network, "heartbeat.interval", "250", "network.heartbeat.interval"),
            update(ns(), "default-ttl", "30d", "namespaces[test].default-ttl"),
            update(ns(), "defrag-lwm-pct", "60", "namespaces[test].storage-engine.defrag-lwm-pct"),
            update(set, "stop-writes-count", "5000", "namespaces[test].sets[s1].stop-writes-count"),
            update(UpdateContext::Logging("console".into()), "migrate", "debug", "logging[console].migrate"),
        ];
        want.sort();
        assert_eq!(plan_change(&base(), &new, 7, 0), ChangePlan::InPlace(want));
    }

    #[test]
    fn one_static_difference_restarts_and_names_every_static_path() {
        let new = edit(|v| {
            v["service"]["proto-fd-max"] = json!(20000);
            v["namespaces"][0]["partition-tree-sprigs"] = json!(512);
            v["network"]["service"]["port"] = json!(3100);
        });
        assert_eq!(
            plan_change(&base(), &new, 7, 0),
            ChangePlan::Restart(vec!["namespaces[test].partition-tree-sprigs".into(), "network.service".into()])
        );
    }

    #[test]
    fn removals_additions_lists_and_types_restart() {
        let cases: Vec<(Value, &str)> = vec![
            (edit(|v| _ = v["service"].as_object_mut().unwrap().remove("proto-fd-max")), "service.proto-fd-max"),
            (
                edit(|v| v["namespaces"][0]["storage-engine"]["devices"] = json!(["/dev/a", "/dev/b"])),
                "namespaces[test].storage-engine.devices",
            ),
            (
                edit(|v| v["namespaces"][0]["storage-engine"]["type"] = json!("memory")),
                "namespaces[test].storage-engine.type",
            ),
            (edit(|v| v["namespaces"].as_array_mut().unwrap().push(json!({"name": "bar"}))), "namespaces[bar]"),
            (edit(|v| v["namespaces"][0]["sets"] = json!([])), "namespaces[test].sets[s1]"),
            (edit(|v| v["security"] = json!({})), "security"),
            (edit(|v| v["logging"][0]["name"] = json!("/var/log/a.log")), "logging[/var/log/a.log]"),
        ];
        for (new, path) in cases {
            match plan_change(&base(), &new, 7, 0) {
                ChangePlan::Restart(paths) => assert!(paths.contains(&path.to_string()), "{path}: {paths:?}"),
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_server_version_decides() {
        // memory-size was dynamic until 6.4 and is gone with 7.0.
        let old = edit(|v| v["namespaces"][0]["memory-size"] = json!(1_073_741_824));
        let new = edit(|v| v["namespaces"][0]["memory-size"] = json!(2_147_483_648u64));
        assert!(matches!(plan_change(&old, &new, 6, 4), ChangePlan::InPlace(_)));
        assert!(matches!(plan_change(&old, &new, 7, 0), ChangePlan::Restart(_)));
    }

    #[test]
    fn active_rack_and_replication_factor_are_set_then_reclustered() {
        let new = edit(|v| v["namespaces"][0]["active-rack"] = json!(1));
        let ChangePlan::InPlace(updates) = plan_change(&base(), &new, 7, 2) else {
            panic!("active-rack is dynamic on 7.2")
        };
        assert_eq!(updates[0].key, "active-rack");
        assert!(RECLUSTER_KEYS.contains(&updates[0].key.as_str()));
        assert!(matches!(plan_change(&base(), &new, 7, 1), ChangePlan::Restart(_)), "not before 7.2");
        let rf = edit(|v| v["namespaces"][0]["replication-factor"] = json!(3));
        let ChangePlan::InPlace(updates) = plan_change(&base(), &rf, 7, 0) else { panic!("replication-factor") };
        assert!(RECLUSTER_KEYS.contains(&updates[0].key.as_str()));
    }

    #[test]
    fn reported_values_match_with_units() {
        assert!(same_value("30d", "2592000"));
        assert!(same_value("4K", "4096"));
        assert!(same_value("true", "TRUE"));
        assert!(same_value("20000", "20000"));
        assert!(!same_value("20000", "15000"));
        assert!(!same_value("30d", "30"));
    }
}
