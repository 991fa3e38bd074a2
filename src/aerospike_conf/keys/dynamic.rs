//! Which aerospike.conf keys a server changes at run time, by server version: the data is `dynamic.tsv` (one place,
//! read by the operator's update planner and by the simulator that judges it).
use std::sync::LazyLock;

/// One row of `dynamic.tsv`: `path` is dynamic from `since` to `until` (inclusive, `None`: every newer version).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    path: String,
    since: (u32, u32),
    until: Option<(u32, u32)>,
}

fn version(s: &str) -> Option<(u32, u32)> {
    let (major, minor) = s.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

static TABLE: LazyLock<Vec<Row>> = LazyLock::new(|| {
    include_str!("dynamic.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let mut cols = line.split('\t');
            let (path, since, until) = (cols.next(), cols.next(), cols.next());
            let row = || -> Option<Row> {
                let until = until.unwrap_or("");
                Some(Row {
                    path: path?.to_string(),
                    since: version(since?)?,
                    until: if until.is_empty() { None } else { Some(version(until)?) },
                })
            };
            // The table is compiled in and checked by a unit test: a malformed row is a build defect.
            row().unwrap_or_else(|| panic!("dynamic.tsv: malformed row {line:?}"))
        })
        .collect()
});

/// Whether the key at `path` is dynamic on server `major.minor`. Paths name list entries by their list
/// (`namespaces.default-ttl`, `namespaces.sets.stop-writes-count`, `logging.migrate`) and typed sections by their
/// type (`namespaces.storage-engine.device.defrag-lwm-pct`, `network.heartbeat.interval`).
pub fn is_dynamic(path: &str, major: u32, minor: u32) -> bool {
    TABLE.iter().any(|r| r.path == path && r.since <= (major, minor) && r.until.is_none_or(|u| (major, minor) <= u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_and_names_a_managed_context() {
        assert!(TABLE.len() > 200, "{} rows", TABLE.len());
        for r in TABLE.iter() {
            let context = r.path.split('.').next().unwrap_or_default();
            assert!(["service", "network", "namespaces", "logging"].contains(&context), "{r:?}");
            assert!(r.until.is_none_or(|u| r.since <= u), "{r:?}");
        }
    }

    #[test]
    fn keys_are_dynamic_only_where_the_server_allows() {
        assert!(is_dynamic("service.proto-fd-max", 7, 0));
        assert!(is_dynamic("namespaces.default-ttl", 6, 0));
        assert!(is_dynamic("network.heartbeat.interval", 8, 1));
        assert!(is_dynamic("namespaces.storage-engine.device.defrag-lwm-pct", 7, 2));
        assert!(is_dynamic("logging.migrate", 7, 0));
        // Dynamic in a version range only: memory-size went with 7.0's storage redesign.
        assert!(is_dynamic("namespaces.memory-size", 6, 4));
        assert!(!is_dynamic("namespaces.memory-size", 7, 0));
        // Newer than the newest schema: rows without an end still hold.
        assert!(is_dynamic("service.proto-fd-max", 9, 3));
        // Static keys, unknown keys, and the storage type matters.
        // The reference changes an AP namespace's replication factor with set-config and a recluster.
        assert!(is_dynamic("namespaces.replication-factor", 7, 0));
        assert!(!is_dynamic("namespaces.partition-tree-sprigs", 7, 0));
        assert!(!is_dynamic("service.no-such-key", 7, 0));
        assert!(!is_dynamic("namespaces.storage-engine.memory.defrag-lwm-pct", 6, 4));
        assert!(is_dynamic("namespaces.storage-engine.memory.defrag-lwm-pct", 7, 0));
    }
}
