//! Typed info operations on one node: the command strings the operator sends, and parsers for the
//! answers, on top of any [`InfoClient`].
//!
//! Two rules for turning values into errors ([`InfoErrorKind::Server`]):
//! - commands that change state (`quiesce:`, `cluster-stable:...`, `set-config:...`, ...) fail when
//!   the value contains `error` in any case (`cluster-stable` answers a key, never `ok`);
//! - commands that read (`statistics`, `namespace/<ns>`, ...) fail only when the value starts with
//!   `ERROR`, because their values legitimately contain names such as `client_read_error`.
//!
//! Version note: from server 7.2 the namespace of `get-config`/`set-config` is passed as
//! `namespace=<ns>`, before as `id=<ns>`; functions that build such commands take the
//! [`ServerVersion`] (from [`AerospikeNode::build`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use super::client::{InfoClient, InfoError, InfoErrorKind};
use super::wire;

/// The server version from `build`, e.g. `7.2.0.1` or `8.0.0.0-rc1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    pub build: u32,
    /// The answer as given.
    pub raw: String,
}

impl ServerVersion {
    /// Parses the leading dotted numbers; missing parts count as 0. `None` without a major number.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let numeric: &str = raw.split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap_or("");
        let mut parts = numeric.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next().flatten()?;
        let mut next = || parts.next().flatten().unwrap_or(0);
        Some(ServerVersion { major, minor: next(), patch: next(), build: next(), raw: raw.to_string() })
    }

    /// True when this version is `major.minor` or newer.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// The parameter naming a namespace in `get-config`/`set-config`: `namespace` from 7.2,
    /// `id` before.
    pub fn namespace_param(&self) -> &'static str {
        if self.at_least(7, 2) { "namespace" } else { "id" }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// The `statistics` values the safety checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatistics {
    pub cluster_key: String,
    pub cluster_size: u64,
    pub cluster_integrity: bool,
    pub migrate_partitions_remaining: u64,
    /// Absent on servers that do not report it.
    pub migrate_allowed: Option<bool>,
}

/// The `namespace/<ns>` values used for quiesce and strong-consistency checks; absent values
/// (older servers, non-SC namespaces) are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceStats {
    pub pending_quiesce: Option<bool>,
    pub effective_is_quiesced: Option<bool>,
    pub nodes_quiesced: Option<u64>,
    pub unavailable_partitions: Option<u64>,
    pub dead_partitions: Option<u64>,
    /// All values of the answer.
    pub raw: BTreeMap<String, String>,
}

/// The answer of `roster:namespace=<ns>`; entries are `NODEID` or `NODEID@rack`; `null` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    pub roster: Vec<String>,
    pub pending_roster: Vec<String>,
    pub observed_nodes: Vec<String>,
}

impl Roster {
    /// True when `node_id` (compared without the `@rack` suffix, ignoring case) is in `roster`.
    pub fn contains_node(&self, node_id: &str) -> bool {
        self.roster.iter().any(|entry| entry.split('@').next().unwrap_or("").eq_ignore_ascii_case(node_id))
    }
}

/// The answer of `recluster:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recluster {
    /// `ok`: this node is the principal and started a recluster.
    Principal,
    /// `ignored-by-non-principal`.
    NonPrincipal,
    /// Anything else without `error` in it.
    Other(String),
}

/// The context of `get-config`/`set-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigContext<'a> {
    Service,
    Network,
    Security,
    Xdr,
    Namespace(&'a str),
    Set { namespace: &'a str, set: &'a str },
}

fn check_arg(what: &str, value: &str, forbidden: &[char]) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if let Some(c) = value.chars().find(|c| forbidden.contains(c) || c.is_control()) {
        return Err(format!("{what} {value:?} contains {c:?}"));
    }
    Ok(())
}

/// Characters that would change the meaning of a name inside a command.
const NAME_FORBIDDEN: &[char] = &[';', ':', '=', ',', '/'];
/// Characters forbidden in a `set-config` value (`:` is allowed for host:port values).
const VALUE_FORBIDDEN: &[char] = &[';', '='];

impl ConfigContext<'_> {
    fn params(&self, version: &ServerVersion) -> Result<String, String> {
        Ok(match self {
            ConfigContext::Service => "context=service".to_string(),
            ConfigContext::Network => "context=network".to_string(),
            ConfigContext::Security => "context=security".to_string(),
            ConfigContext::Xdr => "context=xdr".to_string(),
            ConfigContext::Namespace(ns) => {
                check_arg("namespace", ns, NAME_FORBIDDEN)?;
                format!("context=namespace;{}={ns}", version.namespace_param())
            }
            ConfigContext::Set { namespace, set } => {
                check_arg("namespace", namespace, NAME_FORBIDDEN)?;
                check_arg("set", set, NAME_FORBIDDEN)?;
                format!("context=namespace;{}={namespace};set={set}", version.namespace_param())
            }
        })
    }
}

/// `cluster-stable:size=N;ignore-migrations=false[;namespace=ns]`.
pub fn cluster_stable_command(size: usize, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("cluster-stable:size={size};ignore-migrations=false;namespace={ns}"),
        None => format!("cluster-stable:size={size};ignore-migrations=false"),
    }
}

/// `namespace/<ns>`.
pub fn namespace_stats_command(namespace: &str) -> String {
    format!("namespace/{namespace}")
}

/// `roster:namespace=<ns>` (the same form on all versions).
pub fn roster_command(namespace: &str) -> String {
    format!("roster:namespace={namespace}")
}

/// `roster-set:namespace=<ns>;nodes=<comma list>`.
pub fn roster_set_command(namespace: &str, nodes: &[String]) -> String {
    format!("roster-set:namespace={namespace};nodes={}", nodes.join(","))
}

/// `get-config:<context params>`, e.g. `get-config:context=namespace;namespace=test` (7.2+).
pub fn get_config_command(context: ConfigContext<'_>, version: &ServerVersion) -> Result<String, String> {
    Ok(format!("get-config:{}", context.params(version)?))
}

/// `set-config:<context params>;<key>=<value>`.
pub fn set_config_command(
    context: ConfigContext<'_>,
    key: &str,
    value: &str,
    version: &ServerVersion,
) -> Result<String, String> {
    check_arg("config key", key, NAME_FORBIDDEN)?;
    check_arg("config value", value, VALUE_FORBIDDEN)?;
    Ok(format!("set-config:{};{key}={value}", context.params(version)?))
}

/// `tip-clear:host-port-list=<host:port>`.
pub fn tip_clear_command(host_port: &str) -> String {
    format!("tip-clear:host-port-list={host_port}")
}

/// Command name of `services-alumni-reset`.
pub const SERVICES_ALUMNI_RESET: &str = "services-alumni-reset";
/// Command name of `quiesce:`.
pub const QUIESCE: &str = "quiesce:";
/// Command name of `quiesce-undo:`.
pub const QUIESCE_UNDO: &str = "quiesce-undo:";
/// Command name of `recluster:`.
pub const RECLUSTER: &str = "recluster:";

fn contains_error(value: &str) -> bool {
    value.to_ascii_lowercase().contains("error")
}

fn starts_with_error(value: &str) -> bool {
    value.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("error"))
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// One node, addressed through a shared [`InfoClient`].
#[derive(Clone, Copy)]
pub struct AerospikeNode<'a> {
    client: &'a dyn InfoClient,
    addr: SocketAddr,
}

impl fmt::Debug for AerospikeNode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AerospikeNode").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl<'a> AerospikeNode<'a> {
    pub fn new(client: &'a dyn InfoClient, addr: SocketAddr) -> Self {
        AerospikeNode { client, addr }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn error(&self, command: &str, kind: InfoErrorKind) -> InfoError {
        InfoError::new(self.addr, command, kind)
    }

    /// Sends one command and returns its value as is.
    pub async fn info(&self, command: &str) -> Result<String, InfoError> {
        let commands = [command.to_string()];
        let mut answer = self.client.request(self.addr, &commands).await?;
        answer.remove(command).ok_or_else(|| self.error(command, InfoErrorKind::MissingAnswer))
    }

    /// A reading command: values starting with `ERROR` are errors.
    async fn read(&self, command: &str) -> Result<String, InfoError> {
        let value = self.info(command).await?;
        if starts_with_error(&value) {
            return Err(self.error(command, InfoErrorKind::Server(value)));
        }
        Ok(value)
    }

    /// A state-changing command: values containing `error` are errors.
    async fn act(&self, command: &str) -> Result<String, InfoError> {
        let value = self.info(command).await?;
        if contains_error(&value) {
            return Err(self.error(command, InfoErrorKind::Server(value)));
        }
        Ok(value)
    }

    /// A command that must answer `ok`.
    async fn act_ok(&self, command: &str) -> Result<(), InfoError> {
        let value = self.act(command).await?;
        if value.trim().eq_ignore_ascii_case("ok") {
            Ok(())
        } else {
            Err(self.error(command, InfoErrorKind::Unexpected(format!("expected ok, got {value:?}"))))
        }
    }

    fn invalid(&self, command: &str, detail: String) -> InfoError {
        self.error(command, InfoErrorKind::InvalidArgument(detail))
    }

    /// `node`: the node id (hex, e.g. `1A0` or `BB9020011AC4202`).
    pub async fn node_id(&self) -> Result<String, InfoError> {
        let value = self.read("node").await?;
        if value.trim().is_empty() {
            return Err(self.error("node", InfoErrorKind::Unexpected("empty node id".into())));
        }
        Ok(value.trim().to_string())
    }

    /// `statistics`, reduced to the values the stability check needs.
    pub async fn statistics(&self) -> Result<NodeStatistics, InfoError> {
        const CMD: &str = "statistics";
        let stats = wire::parse_semicolon_kv(&self.read(CMD).await?);
        let get = |key: &str| {
            stats.get(key).ok_or_else(|| self.error(CMD, InfoErrorKind::Unexpected(format!("{key} is missing"))))
        };
        let number = |key: &str| -> Result<u64, InfoError> {
            let v = get(key)?;
            v.parse().map_err(|_| self.error(CMD, InfoErrorKind::Unexpected(format!("{key}={v} is not a number"))))
        };
        let boolean = |key: &str| -> Result<bool, InfoError> {
            let v = get(key)?;
            parse_bool(v)
                .ok_or_else(|| self.error(CMD, InfoErrorKind::Unexpected(format!("{key}={v} is not true or false"))))
        };
        Ok(NodeStatistics {
            cluster_key: get("cluster_key")?.clone(),
            cluster_size: number("cluster_size")?,
            cluster_integrity: boolean("cluster_integrity")?,
            migrate_partitions_remaining: number("migrate_partitions_remaining")?,
            migrate_allowed: match stats.contains_key("migrate_allowed") {
                true => Some(boolean("migrate_allowed")?),
                false => None,
            },
        })
    }

    /// `namespaces`: the namespace names (`;`-separated on the wire).
    pub async fn namespaces(&self) -> Result<Vec<String>, InfoError> {
        Ok(wire::parse_list(&self.read("namespaces").await?, ';'))
    }

    /// `cluster-stable:size=N;ignore-migrations=false[;namespace=ns]`: the cluster key (hex) when
    /// the node sees a stable cluster of `size` nodes without migrations; any value containing
    /// `error` (e.g. `ERROR::unstable-cluster`) is an error.
    pub async fn cluster_stable(&self, size: usize, namespace: Option<&str>) -> Result<String, InfoError> {
        let command = cluster_stable_command(size, namespace);
        if let Some(ns) = namespace {
            check_arg("namespace", ns, NAME_FORBIDDEN).map_err(|d| self.invalid(&command, d))?;
        }
        let key = self.act(&command).await?.trim().to_string();
        if key.is_empty() {
            return Err(self.error(&command, InfoErrorKind::Unexpected("empty cluster key".into())));
        }
        Ok(key)
    }

    /// `quiesce:`: marks the node to hand off its partitions at the next recluster.
    pub async fn quiesce(&self) -> Result<(), InfoError> {
        self.act(QUIESCE).await.map(drop)
    }

    /// `quiesce-undo:`: reverts `quiesce:` at the next recluster.
    pub async fn quiesce_undo(&self) -> Result<(), InfoError> {
        self.act(QUIESCE_UNDO).await.map(drop)
    }

    /// `recluster:`: only the principal answers `ok`.
    pub async fn recluster(&self) -> Result<Recluster, InfoError> {
        let value = self.act(RECLUSTER).await?;
        Ok(match value.trim() {
            v if v.eq_ignore_ascii_case("ok") => Recluster::Principal,
            v if v.eq_ignore_ascii_case("ignored-by-non-principal") => Recluster::NonPrincipal,
            v => Recluster::Other(v.to_string()),
        })
    }

    /// `namespace/<ns>`.
    pub async fn namespace_stats(&self, namespace: &str) -> Result<NamespaceStats, InfoError> {
        let command = namespace_stats_command(namespace);
        check_arg("namespace", namespace, NAME_FORBIDDEN).map_err(|d| self.invalid(&command, d))?;
        let raw = wire::parse_semicolon_kv(&self.read(&command).await?);
        let bad =
            |key: &str, v: &str| self.error(&command, InfoErrorKind::Unexpected(format!("{key}={v} cannot be parsed")));
        let boolean = |key: &str| -> Result<Option<bool>, InfoError> {
            raw.get(key).map(|v| parse_bool(v).ok_or_else(|| bad(key, v))).transpose()
        };
        let number = |key: &str| -> Result<Option<u64>, InfoError> {
            raw.get(key).map(|v| v.parse().map_err(|_| bad(key, v))).transpose()
        };
        Ok(NamespaceStats {
            pending_quiesce: boolean("pending_quiesce")?,
            effective_is_quiesced: boolean("effective_is_quiesced")?,
            nodes_quiesced: number("nodes_quiesced")?,
            unavailable_partitions: number("unavailable_partitions")?,
            dead_partitions: number("dead_partitions")?,
            raw,
        })
    }

    /// `build`: the server version.
    pub async fn build(&self) -> Result<ServerVersion, InfoError> {
        let value = self.read("build").await?;
        ServerVersion::parse(&value)
            .ok_or_else(|| self.error("build", InfoErrorKind::Unexpected(format!("{value:?} is not a version"))))
    }

    /// `roster:namespace=<ns>`.
    pub async fn roster(&self, namespace: &str) -> Result<Roster, InfoError> {
        let command = roster_command(namespace);
        check_arg("namespace", namespace, NAME_FORBIDDEN).map_err(|d| self.invalid(&command, d))?;
        let fields = wire::parse_kv(&self.read(&command).await?, ':');
        let list = |key: &str| -> Result<Vec<String>, InfoError> {
            let v = fields
                .get(key)
                .ok_or_else(|| self.error(&command, InfoErrorKind::Unexpected(format!("{key} is missing"))))?;
            Ok(if v == "null" { Vec::new() } else { wire::parse_list(v, ',') })
        };
        Ok(Roster {
            roster: list("roster")?,
            pending_roster: list("pending_roster")?,
            observed_nodes: list("observed_nodes")?,
        })
    }

    /// `roster-set:namespace=<ns>;nodes=<a,b>`; must answer `ok`. Takes effect at the next recluster.
    pub async fn roster_set(&self, namespace: &str, nodes: &[String]) -> Result<(), InfoError> {
        let command = roster_set_command(namespace, nodes);
        check_arg("namespace", namespace, NAME_FORBIDDEN).map_err(|d| self.invalid(&command, d))?;
        if nodes.is_empty() {
            return Err(self.invalid(&command, "no roster nodes".into()));
        }
        for node in nodes {
            check_arg("roster node", node, &[';', ':', '=', ',']).map_err(|d| self.invalid(&command, d))?;
        }
        self.act_ok(&command).await
    }

    /// `get-config:<context>` as key -> value.
    pub async fn get_config(
        &self,
        context: ConfigContext<'_>,
        version: &ServerVersion,
    ) -> Result<BTreeMap<String, String>, InfoError> {
        let command =
            get_config_command(context, version).map_err(|d| self.invalid(&format!("get-config:{context:?}"), d))?;
        Ok(wire::parse_semicolon_kv(&self.read(&command).await?))
    }

    /// Whether `namespace` has `strong-consistency true`.
    pub async fn namespace_strong_consistency(
        &self,
        namespace: &str,
        version: &ServerVersion,
    ) -> Result<bool, InfoError> {
        let config = self.get_config(ConfigContext::Namespace(namespace), version).await?;
        match config.get("strong-consistency").map(String::as_str) {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or_else(|| {
                let command = get_config_command(ConfigContext::Namespace(namespace), version).unwrap_or_default();
                self.error(&command, InfoErrorKind::Unexpected(format!("strong-consistency={v}")))
            }),
        }
    }

    /// `set-config:<context>;<key>=<value>`; must answer `ok`.
    pub async fn set_config(
        &self,
        context: ConfigContext<'_>,
        key: &str,
        value: &str,
        version: &ServerVersion,
    ) -> Result<(), InfoError> {
        let command = set_config_command(context, key, value, version)
            .map_err(|d| self.invalid(&format!("set-config:{context:?};{key}={value}"), d))?;
        self.act_ok(&command).await
    }

    /// The endpoints the node advertises to clients: `service-clear-std`, `service-clear-alt`, `service-tls-std`,
    /// `service-tls-alt` (each a `;`-separated list of `host:port`), in that order.
    pub async fn access_endpoints(&self) -> Result<[Vec<String>; 4], InfoError> {
        let commands =
            ["service-clear-std", "service-clear-alt", "service-tls-std", "service-tls-alt"].map(String::from);
        let answers = self.client.request(self.addr, &commands).await?;
        Ok(commands.map(|c| {
            answers
                .get(&c)
                .filter(|v| !starts_with_error(v))
                .map(|v| v.split(';').map(str::trim).filter(|e| !e.is_empty()).map(str::to_string).collect())
                .unwrap_or_default()
        }))
    }

    /// `logs`: the node's log sinks, name -> id (`0:stderr;1:/var/log/aerospike/aerospike.log`).
    pub async fn log_sinks(&self) -> Result<BTreeMap<String, String>, InfoError> {
        let value = self.read("logs").await?;
        Ok(value
            .split(';')
            .filter_map(|e| e.split_once(':'))
            .map(|(id, name)| (name.trim().to_string(), id.trim().to_string()))
            .collect())
    }

    /// `log-set:id=<sink id>;<context>=<level>`; must answer `ok`.
    pub async fn log_set(&self, sink_id: &str, context: &str, level: &str) -> Result<(), InfoError> {
        let command = format!("log-set:id={sink_id};{context}={level}");
        for (what, v) in [("sink id", sink_id), ("log context", context), ("log level", level)] {
            check_arg(what, v, NAME_FORBIDDEN).map_err(|d| self.invalid(&command, d))?;
        }
        self.act_ok(&command).await
    }

    /// `tip-clear:host-port-list=<host:port>`: makes the node forget a removed peer. The answer is
    /// returned but not judged (servers answer differently; the step is best effort).
    pub async fn tip_clear(&self, host_port: &str) -> Result<String, InfoError> {
        let command = tip_clear_command(host_port);
        check_arg("host-port", host_port, &[';', '=']).map_err(|d| self.invalid(&command, d))?;
        self.info(&command).await
    }

    /// `services-alumni-reset`: drops removed peers from the alumni list. Answer not judged.
    pub async fn services_alumni_reset(&self) -> Result<String, InfoError> {
        self.info(SERVICES_ALUMNI_RESET).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use std::sync::Mutex;

    /// A fake client answering from a function of the command; records what it was sent.
    pub(crate) struct FnClient<F> {
        pub answer: F,
        pub sent: Mutex<Vec<(SocketAddr, String)>>,
    }

    impl<F> FnClient<F> {
        pub fn new(answer: F) -> Self {
            FnClient { answer, sent: Mutex::new(Vec::new()) }
        }
    }

    impl<F> InfoClient for FnClient<F>
    where
        F: Fn(SocketAddr, &str) -> Option<String> + Send + Sync,
    {
        fn request<'a>(
            &'a self,
            addr: SocketAddr,
            commands: &'a [String],
        ) -> BoxFuture<'a, Result<BTreeMap<String, String>, InfoError>> {
            Box::pin(async move {
                let mut out = BTreeMap::new();
                for c in commands {
                    self.sent.lock().unwrap().push((addr, c.clone()));
                    if let Some(v) = (self.answer)(addr, c) {
                        out.insert(c.clone(), v);
                    }
                }
                Ok(out)
            })
        }
    }

    fn addr() -> SocketAddr {
        "10.0.0.5:3000".parse().unwrap()
    }

    fn v(s: &str) -> ServerVersion {
        ServerVersion::parse(s).unwrap()
    }

    #[test]
    fn version_parsing_and_switch() {
        let ver = v("7.2.0.1");
        assert_eq!((ver.major, ver.minor, ver.patch, ver.build), (7, 2, 0, 1));
        assert_eq!(ver.namespace_param(), "namespace");
        assert_eq!(v("7.1.0.4").namespace_param(), "id");
        assert_eq!(v("6.4.0.10").namespace_param(), "id");
        assert_eq!(v("8.0.0.0-rc1").namespace_param(), "namespace");
        assert_eq!(v("8").minor, 0);
        assert!(ServerVersion::parse("enterprise").is_none());
        assert!(ServerVersion::parse("").is_none());
    }

    #[test]
    fn command_strings() {
        assert_eq!(cluster_stable_command(3, None), "cluster-stable:size=3;ignore-migrations=false");
        assert_eq!(
            cluster_stable_command(2, Some("test")),
            "cluster-stable:size=2;ignore-migrations=false;namespace=test"
        );
        assert_eq!(
            get_config_command(ConfigContext::Namespace("test"), &v("7.2.0.0")).unwrap(),
            "get-config:context=namespace;namespace=test"
        );
        assert_eq!(
            get_config_command(ConfigContext::Namespace("test"), &v("7.1.0.0")).unwrap(),
            "get-config:context=namespace;id=test"
        );
        assert_eq!(
            set_config_command(ConfigContext::Service, "migrate-fill-delay", "0", &v("6.0")).unwrap(),
            "set-config:context=service;migrate-fill-delay=0"
        );
        assert_eq!(
            set_config_command(
                ConfigContext::Set { namespace: "ns", set: "s1" },
                "disable-eviction",
                "true",
                &v("6.0")
            )
            .unwrap(),
            "set-config:context=namespace;id=ns;set=s1;disable-eviction=true"
        );
        assert!(set_config_command(ConfigContext::Service, "k", "a;b", &v("7.2")).is_err());
        assert!(set_config_command(ConfigContext::Namespace("a;b"), "k", "v", &v("7.2")).is_err());
        assert_eq!(
            roster_set_command("test", &["A1@1".into(), "B2@1".into()]),
            "roster-set:namespace=test;nodes=A1@1,B2@1"
        );
        assert_eq!(tip_clear_command("p-0.c.ns:3002"), "tip-clear:host-port-list=p-0.c.ns:3002");
    }

    #[tokio::test]
    async fn typed_reads() {
        let client = FnClient::new(|_, c: &str| {
            Some(
                match c {
                    "node" => "1A0",
                    "statistics" => "cluster_key=ABC123;cluster_size=3;cluster_integrity=true;migrate_allowed=true;migrate_partitions_remaining=0;client_read_error=4",
                    "namespaces" => "test;bar",
                    "namespace/test" => "pending_quiesce=true;effective_is_quiesced=false;nodes_quiesced=0;unavailable_partitions=0;dead_partitions=0;objects=5",
                    "build" => "7.2.0.1",
                    "roster:namespace=test" => "roster=1A0@1,1A1@1:pending_roster=null:observed_nodes=1A0@1,1A1@1,1A2@1",
                    "get-config:context=namespace;namespace=test" => "replication-factor=2;strong-consistency=true",
                    "recluster:" => "ignored-by-non-principal",
                    _ => return None,
                }
                .to_string(),
            )
        });
        let node = AerospikeNode::new(&client, addr());
        assert_eq!(node.node_id().await.unwrap(), "1A0");
        let stats = node.statistics().await.unwrap();
        assert_eq!(
            stats,
            NodeStatistics {
                cluster_key: "ABC123".into(),
                cluster_size: 3,
                cluster_integrity: true,
                migrate_partitions_remaining: 0,
                migrate_allowed: Some(true),
            }
        );
        assert_eq!(node.namespaces().await.unwrap(), vec!["test", "bar"]);
        let ns = node.namespace_stats("test").await.unwrap();
        assert_eq!(ns.pending_quiesce, Some(true));
        assert_eq!(ns.effective_is_quiesced, Some(false));
        assert_eq!(ns.nodes_quiesced, Some(0));
        assert_eq!(ns.dead_partitions, Some(0));
        assert_eq!(ns.raw["objects"], "5");
        let version = node.build().await.unwrap();
        assert!(version.at_least(7, 2));
        let roster = node.roster("test").await.unwrap();
        assert_eq!(roster.roster, vec!["1A0@1", "1A1@1"]);
        assert!(roster.pending_roster.is_empty());
        assert_eq!(roster.observed_nodes.len(), 3);
        assert!(roster.contains_node("1a0"));
        assert!(!roster.contains_node("1A2"));
        assert!(node.namespace_strong_consistency("test", &version).await.unwrap());
        assert_eq!(node.recluster().await.unwrap(), Recluster::NonPrincipal);

        // An absent line is reported as such, naming command and address.
        let err = node.info("latencies:").await.unwrap_err();
        assert!(matches!(err.kind, InfoErrorKind::MissingAnswer));
        assert_eq!(
            err.to_string(),
            "info command `latencies:` on 10.0.0.5:3000: the answer has no line for this command"
        );
    }

    #[tokio::test]
    async fn error_values_become_errors() {
        let client = FnClient::new(|_, c: &str| {
            Some(
                match c {
                    c if c.starts_with("cluster-stable") => "ERROR::unstable-cluster",
                    "quiesce:" => "error: not allowed",
                    "statistics" => "ERROR::not-ready",
                    "namespace/nope" => "ERROR::unknown-namespace",
                    c if c.starts_with("set-config") => "error",
                    c if c.starts_with("roster-set") => "weird",
                    "recluster:" => "ok",
                    _ => return None,
                }
                .to_string(),
            )
        });
        let node = AerospikeNode::new(&client, addr());
        let err = node.cluster_stable(3, None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "info command `cluster-stable:size=3;ignore-migrations=false` on 10.0.0.5:3000: \
             the node answered ERROR::unstable-cluster"
        );
        assert!(matches!(node.quiesce().await.unwrap_err().kind, InfoErrorKind::Server(_)));
        assert!(matches!(node.statistics().await.unwrap_err().kind, InfoErrorKind::Server(_)));
        assert!(matches!(node.namespace_stats("nope").await.unwrap_err().kind, InfoErrorKind::Server(_)));
        let err = node.set_config(ConfigContext::Service, "migrate-fill-delay", "0", &v("7.2")).await.unwrap_err();
        assert!(matches!(err.kind, InfoErrorKind::Server(_)));
        let err = node.roster_set("test", &["A@1".into()]).await.unwrap_err();
        assert!(matches!(err.kind, InfoErrorKind::Unexpected(_)), "{err}");
        assert_eq!(node.recluster().await.unwrap(), Recluster::Principal);
        // Invalid arguments never reach the node.
        let before = client.sent.lock().unwrap().len();
        assert!(matches!(
            node.roster_set("test", &["A;B".into()]).await.unwrap_err().kind,
            InfoErrorKind::InvalidArgument(_)
        ));
        assert!(node.namespace_stats("a/b").await.is_err());
        assert_eq!(client.sent.lock().unwrap().len(), before);
    }

    #[tokio::test]
    async fn statistics_missing_or_malformed_fields() {
        let client = FnClient::new(|_, _: &str| Some("cluster_key=A;cluster_size=x".to_string()));
        let node = AerospikeNode::new(&client, addr());
        let err = node.statistics().await.unwrap_err();
        assert!(err.to_string().contains("cluster_size=x is not a number"), "{err}");
        let client = FnClient::new(|_, _: &str| Some("cluster_size=2".to_string()));
        let node = AerospikeNode::new(&client, addr());
        let err = node.statistics().await.unwrap_err();
        assert!(err.to_string().contains("cluster_key is missing"), "{err}");
    }
}
