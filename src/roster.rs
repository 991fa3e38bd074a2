//! Strong-consistency rosters, pure: which nodes the roster of an SC namespace should hold. As the reference (its
//! aerospike-management-lib ManageRoster): the nodes the cluster observes, without the node ids of
//! `spec.rosterNodeBlockList` and the nodes of racks with `forceBlockFromRoster`. A node leaves the roster only
//! once it has left the cluster (a scale-down first quiesces it and waits for its data to migrate away).

use std::collections::BTreeSet;

/// A roster entry `NODEID@rack` (or `NODEID`) split into the upper-case node id and the rack id.
fn split(entry: &str) -> (String, Option<i32>) {
    match entry.split_once('@') {
        Some((node, rack)) => (node.to_ascii_uppercase(), rack.parse().ok()),
        None => (entry.to_ascii_uppercase(), None),
    }
}

/// The roster an SC namespace should have: the observed nodes minus the blocked ones, sorted.
pub fn desired_roster(observed: &[String], block_list: &[String], blocked_racks: &[i32]) -> Vec<String> {
    let blocked: BTreeSet<String> = block_list.iter().map(|n| n.to_ascii_uppercase()).collect();
    let mut out: Vec<String> = observed
        .iter()
        .filter(|entry| {
            let (node, rack) = split(entry);
            !blocked.contains(&node) && !rack.is_some_and(|r| blocked_racks.contains(&r))
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a namespace's roster must be set to `desired`: the `active` roster differs from it (compared as sets of
/// node ids with racks, ignoring case), or a different roster is `pending`.
pub fn needs_set(active: &[String], pending: &[String], desired: &[String]) -> bool {
    let set = |v: &[String]| -> BTreeSet<String> { v.iter().map(|e| e.to_ascii_uppercase()).collect() };
    let want = set(desired);
    set(active) != want || (!pending.is_empty() && set(pending) != want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_roster_is_the_observed_nodes_minus_the_blocked_ones() {
        let observed = v(&["1A1@1", "1A0@1", "2A0@2", "2A1@2"]);
        assert_eq!(desired_roster(&observed, &[], &[]), v(&["1A0@1", "1A1@1", "2A0@2", "2A1@2"]));
        assert_eq!(desired_roster(&observed, &v(&["2a1"]), &[]), v(&["1A0@1", "1A1@1", "2A0@2"]));
        assert_eq!(desired_roster(&observed, &[], &[1]), v(&["2A0@2", "2A1@2"]));
    }

    #[test]
    fn a_roster_is_set_when_it_differs_or_another_one_is_pending() {
        let desired = v(&["1A0@1", "1A1@1"]);
        let needs = |active: &[&str], pending: &[&str]| needs_set(&v(active), &v(pending), &desired);
        assert!(needs(&[], &[]), "a new SC namespace has no roster");
        assert!(!needs(&["1a1@1", "1A0@1"], &[]), "same nodes, other order and case");
        assert!(!needs(&["1A0@1", "1A1@1"], &["1A0@1", "1A1@1"]));
        assert!(needs(&["1A0@1", "1A1@1", "1A2@1"], &[]), "a node left");
        assert!(needs(&["1A0@1", "1A1@1"], &["1A0@1"]), "someone else's pending roster");
    }
}
