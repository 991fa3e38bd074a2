//! What the official clients tend by, beyond the operator's commands: partition ownership maps (`replicas` and
//! its older forms), peers lists, the generations, features, rack ids.
//!
//! Ownership is deterministic: the members sorted by node id, replica `r` of partition `p` belongs to member
//! `(p + r) % n`, so every partition has exactly one master (and distinct replicas) among the current members.
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::model::{ClusterKey, NamespaceInfo, PodKey, State};

/// Partitions per namespace.
pub(crate) const PARTITIONS: usize = 4096;

/// Feature flags a server of the simulated versions announces (clients pick protocols from them).
pub(crate) const FEATURES: &str = "batch-any;batch-index;blob-bits;cdt-list;cdt-map;cluster-stable;float;geo;\
    sindex-exists;peers;pipelining;pscans;query-show;relaxed-sc;replicas;replicas-all;replicas-master;\
    replicas-max;replicas-min;replicas-prole;truncate-namespace;udf;partition-query;partition-scan;lut-now";

impl State {
    /// Partitions of a strong-consistency namespace that no present node can serve: all of them while the roster
    /// is empty (a new SC namespace is unavailable until a roster is set), else those whose roster replicas are all
    /// absent. Roster replica `r` of partition `p` is entry `(p + r) % n` of the roster interleaved across racks,
    /// so, as with rack-aware placement, one rack holds at most one copy while there are enough racks. AP
    /// namespaces: 0.
    pub(crate) fn unavailable_partitions(&self, cluster: &ClusterKey, ns: &NamespaceInfo) -> usize {
        let Some(c) = self.clusters.get(cluster).filter(|_| ns.strong_consistency) else { return 0 };
        let roster = c.rosters.get(&ns.name).map(|(active, _)| active.as_slice()).unwrap_or_default();
        if roster.is_empty() {
            return PARTITIONS;
        }
        let present: BTreeSet<String> =
            c.members.iter().filter_map(|m| self.nodes.get(m)).map(|n| n.node_id.to_ascii_uppercase()).collect();
        let ordered = interleave_racks(roster);
        let n = ordered.len();
        let rf = (ns.replication_factor as usize).clamp(1, n);
        (0..PARTITIONS).filter(|p| (0..rf).all(|r| !present.contains(&ordered[(p + r) % n]))).count()
    }

    /// Members of `cluster` ordered by node id: (pod, node id, ip, port).
    fn ordered_members(&self, cluster: &ClusterKey) -> Vec<(PodKey, String, IpAddr, u16)> {
        let Some(c) = self.clusters.get(cluster) else { return Vec::new() };
        let mut members: Vec<_> = c
            .members
            .iter()
            .filter_map(|m| self.nodes.get(m).map(|n| (m.clone(), n.node_id.clone(), n.ip, n.port)))
            .collect();
        members.sort_by(|a, b| a.1.cmp(&b.1));
        members
    }

    /// The partition maps of node `key`: `form` is `replicas` (`ns:regime,count,map,...`), `replicas-all`
    /// (`ns:count,map,...`) or `replicas-master` (`ns:map`).
    pub(crate) fn replicas(&self, key: &PodKey, cluster: &ClusterKey, form: &str) -> String {
        let members = self.ordered_members(cluster);
        let Some(me) = members.iter().position(|m| &m.0 == key) else { return String::new() };
        let n = members.len();
        let Some(c) = self.clusters.get(cluster) else { return String::new() };
        c.spec
            .namespaces
            .iter()
            .map(|ns| {
                let count = if form == "replicas-master" { 1 } else { (ns.replication_factor as usize).clamp(1, n) };
                let maps: Vec<String> = (0..count).map(|r| STANDARD.encode(bitmap(me, r, n))).collect();
                match form {
                    "replicas" => format!("{}:{},{count},{}", ns.name, u8::from(ns.strong_consistency), maps.join(",")),
                    "replicas-all" => format!("{}:{count},{}", ns.name, maps.join(",")),
                    _ => format!("{}:{}", ns.name, maps.join(",")),
                }
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    /// `peers-*` of node `key`: `generation,default port,[[node id,tls name,[address]],...]`, every other member
    /// (none for a kind of port the service does not have).
    pub(crate) fn peers(&self, key: &PodKey, cluster: &ClusterKey, tls: bool) -> String {
        let generation = self.clusters.get(cluster).map_or(0, |c| c.generation);
        let me = self.nodes.get(key);
        let (port, name) = match (tls, me) {
            (true, Some(n)) => match &n.tls {
                Some((p, name)) => (*p, name.clone()),
                None => return format!("{generation},{},[]", n.port),
            },
            (false, Some(n)) if !n.plain => return format!("{generation},{},[]", n.port),
            (_, n) => (n.map_or(3000, |n| n.port), String::new()),
        };
        let peers: Vec<String> = self
            .ordered_members(cluster)
            .into_iter()
            .filter(|m| &m.0 != key)
            .map(|(pod, id, ip, p)| {
                let p = if tls { self.nodes.get(&pod).and_then(|n| n.tls.as_ref()).map_or(p, |t| t.0) } else { p };
                let host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
                let address = if p == port { host } else { format!("{host}:{p}") };
                format!("[{id},{name},[{address}]]")
            })
            .collect();
        format!("{generation},{port},[{}]", peers.join(","))
    }
}

/// The bitmap (MSB first) of the partitions whose replica `r` member `me` of `n` holds.
fn bitmap(me: usize, r: usize, n: usize) -> Vec<u8> {
    let mut bits = vec![0u8; PARTITIONS / 8];
    for p in (0..PARTITIONS).filter(|p| (p + r) % n == me) {
        bits[p >> 3] |= 0x80 >> (p & 7);
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_has_exactly_one_owner_per_replica() {
        for n in 1..=5 {
            for r in 0..n.min(3) {
                let maps: Vec<Vec<u8>> = (0..n).map(|me| bitmap(me, r, n)).collect();
                for p in 0..PARTITIONS {
                    let owners = maps.iter().filter(|m| m[p >> 3] & (0x80 >> (p & 7)) != 0).count();
                    assert_eq!(owners, 1, "n={n} r={r} p={p}");
                }
            }
        }
        // Master and replica of a partition are different members.
        assert_eq!(bitmap(0, 0, 3)[0], 0b1001_0010);
        assert_eq!(bitmap(0, 1, 3)[0], 0b0010_0100);
        assert_eq!(STANDARD.encode(bitmap(0, 0, 1)).len(), 684);
    }
}

/// Roster entries (`NODEID@rack`) as node ids, racks taken in turn (rack order, then node id within a rack).
fn interleave_racks(roster: &[String]) -> Vec<String> {
    let mut racks: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for entry in roster {
        let (node, rack) = entry.split_once('@').unwrap_or((entry, ""));
        racks.entry(rack).or_default().push(node.to_ascii_uppercase());
    }
    for nodes in racks.values_mut() {
        nodes.sort();
    }
    let mut out = Vec::with_capacity(roster.len());
    for i in 0.. {
        let before = out.len();
        out.extend(racks.values().filter_map(|nodes| nodes.get(i).cloned()));
        if out.len() == before {
            break;
        }
    }
    out
}

#[cfg(test)]
mod roster_tests {
    use super::interleave_racks;

    #[test]
    fn roster_entries_alternate_racks() {
        let roster: Vec<String> = ["1A0@1", "1A1@1", "2A0@2", "2A1@2", "2A2@2"].iter().map(|s| s.to_string()).collect();
        assert_eq!(interleave_racks(&roster), vec!["1A0", "2A0", "1A1", "2A1", "2A2"]);
    }
}
