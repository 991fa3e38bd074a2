//! Fault knobs (per pod or per cluster) and the faults file `cargo xtask simulator fault` writes.
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// How a node fails to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoAnswer {
    /// Accepts connections and reads requests, never replies.
    Hang,
    /// Does not listen: connections are refused.
    Refuse,
}

/// Faults of a pod or a cluster. `Fault::default()` is no fault.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fault {
    pub no_answer: Option<NoAnswer>,
    /// Wait this long before each answer.
    pub delay: Option<Duration>,
    /// Migrations never finish (for a pod: its whole cluster reports them, as on a real cluster).
    pub stuck_migrations: bool,
    /// Strong-consistency namespaces report this many dead partitions (data lost with roster nodes; only an
    /// operator's `revive` would bring them back, and ours never does). For a pod: its whole cluster.
    pub dead_partitions: Option<u64>,
    /// Every namespace reports `stop_writes=true` (storage or memory at its stop-writes limit). For a pod: that
    /// node only, as on a real cluster where each node judges its own storage.
    pub stop_writes: bool,
    /// `set-config` and `log-set` are refused (as a server refuses a value out of its bounds).
    pub refuse_set_config: bool,
    /// A warm restart (exec `pod-init warm-restart` in the server container) fails, as in a container whose init
    /// process cannot restart the server.
    pub refuse_warm_restart: bool,
}

impl Fault {
    pub fn hang() -> Fault {
        Fault { no_answer: Some(NoAnswer::Hang), ..Default::default() }
    }
    pub fn refuse() -> Fault {
        Fault { no_answer: Some(NoAnswer::Refuse), ..Default::default() }
    }
    pub fn delay(d: Duration) -> Fault {
        Fault { delay: Some(d), ..Default::default() }
    }
    pub fn stuck_migrations() -> Fault {
        Fault { stuck_migrations: true, ..Default::default() }
    }
    pub fn dead_partitions(n: u64) -> Fault {
        Fault { dead_partitions: Some(n), ..Default::default() }
    }
    pub fn stop_writes() -> Fault {
        Fault { stop_writes: true, ..Default::default() }
    }
    pub fn refuse_set_config() -> Fault {
        Fault { refuse_set_config: true, ..Default::default() }
    }
    pub fn refuse_warm_restart() -> Fault {
        Fault { refuse_warm_restart: true, ..Default::default() }
    }
    /// Field-wise merge; `self` wins where both are set.
    pub(crate) fn or(&self, other: &Fault) -> Fault {
        Fault {
            no_answer: self.no_answer.or(other.no_answer),
            delay: self.delay.or(other.delay),
            stuck_migrations: self.stuck_migrations || other.stuck_migrations,
            dead_partitions: self.dead_partitions.or(other.dead_partitions),
            stop_writes: self.stop_writes || other.stop_writes,
            refuse_set_config: self.refuse_set_config || other.refuse_set_config,
            refuse_warm_restart: self.refuse_warm_restart || other.refuse_warm_restart,
        }
    }
}

/// What a fault applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultTarget {
    Pod {
        namespace: String,
        name: String,
    },
    /// Every pod of the AerospikeCluster `name`.
    Cluster {
        namespace: String,
        name: String,
    },
}

impl FaultTarget {
    pub fn pod(namespace: &str, name: &str) -> Self {
        FaultTarget::Pod { namespace: namespace.into(), name: name.into() }
    }
    pub fn cluster(namespace: &str, name: &str) -> Self {
        FaultTarget::Cluster { namespace: namespace.into(), name: name.into() }
    }
}

/// One entry of the faults file (a JSON array of these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEntry {
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_answer: Option<NoAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub stuck_migrations: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_partitions: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop_writes: bool,
    #[serde(default)]
    pub refuse_set_config: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refuse_warm_restart: bool,
}

impl FaultEntry {
    pub fn target(&self) -> Option<FaultTarget> {
        match (&self.pod, &self.cluster) {
            (Some(p), None) => Some(FaultTarget::pod(&self.namespace, p)),
            (None, Some(c)) => Some(FaultTarget::cluster(&self.namespace, c)),
            _ => None,
        }
    }
    pub fn fault(&self) -> Fault {
        Fault {
            no_answer: self.no_answer,
            delay: self.delay_ms.map(Duration::from_millis),
            stuck_migrations: self.stuck_migrations,
            dead_partitions: self.dead_partitions,
            stop_writes: self.stop_writes,
            refuse_set_config: self.refuse_set_config,
            refuse_warm_restart: self.refuse_warm_restart,
        }
    }
}

// -----------------------------------------------------------------------------------------------------------------
// The faults file.

pub fn read_faults_file(path: &Path) -> Result<Vec<FaultEntry>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn write_faults_file(path: &Path, entries: &[FaultEntry]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(entries)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_merge_prefers_the_pod() {
        let pod = Fault { delay: Some(Duration::from_millis(5)), ..Default::default() };
        let cluster = Fault {
            delay: Some(Duration::from_secs(1)),
            stuck_migrations: true,
            no_answer: Some(NoAnswer::Hang),
            dead_partitions: None,
            stop_writes: false,
            refuse_set_config: false,
            refuse_warm_restart: false,
        };
        let f = pod.or(&cluster);
        assert_eq!(f.delay, Some(Duration::from_millis(5)));
        assert!(f.stuck_migrations);
        assert_eq!(f.no_answer, Some(NoAnswer::Hang));
    }

    #[test]
    fn fault_file_entries_round_trip() {
        let e = FaultEntry {
            namespace: "ns".into(),
            pod: Some("c-0-1".into()),
            cluster: None,
            no_answer: Some(NoAnswer::Refuse),
            delay_ms: None,
            stuck_migrations: false,
            dead_partitions: Some(3),
            stop_writes: true,
            refuse_set_config: false,
            refuse_warm_restart: true,
        };
        let text = serde_json::to_string(&vec![e.clone()]).unwrap();
        assert!(text.contains("\"no_answer\":\"refuse\""), "{text}");
        let back: Vec<FaultEntry> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, vec![e.clone()]);
        assert_eq!(e.target(), Some(FaultTarget::pod("ns", "c-0-1")));
        assert_eq!(
            e.fault(),
            Fault { dead_partitions: Some(3), stop_writes: true, refuse_warm_restart: true, ..Fault::refuse() }
        );
    }
}
