//! The cluster-level Aerospike steps around a rollout: strong-consistency rosters (set from the observed nodes,
//! checked for unavailable or dead partitions) and forgetting the nodes a scale-down removed.
use std::net::SocketAddr;

use crate::api::AerospikeCluster;
use crate::asinfo::InfoClient;
use crate::asinfo::safety::{self, SafetyError};
use crate::desired::Desired;

/// `tip-clear` of each removed `host:port` and `services-alumni-reset` on every node that stays (failures logged).
pub(super) async fn forget_removed(info: &dyn InfoClient, staying: &[SocketAddr], hosts: &[String]) {
    for &node in staying {
        let n = crate::asinfo::ops::AerospikeNode::new(info, node);
        for host in hosts {
            if let Err(e) = n.tip_clear(host).await {
                tracing::warn!(node = %node, host = %host, error = %e, "tip-clear failed");
            }
        }
        if let Err(e) = n.services_alumni_reset().await {
            tracing::warn!(node = %node, error = %e, "services-alumni-reset failed");
        }
    }
}

/// The strong-consistency namespaces of a cluster and what its roster leaves out.
pub(super) struct StrongConsistency<'a> {
    pub(super) namespaces: Vec<String>,
    block_list: &'a [String],
    blocked_racks: Vec<i32>,
}

impl<'a> StrongConsistency<'a> {
    pub(super) fn of(cluster: &'a AerospikeCluster, desired: &Desired) -> Self {
        let mut namespaces: Vec<String> = desired
            .racks
            .iter()
            .flat_map(|r| crate::aerospike_conf::namespaces(&r.config))
            .filter(|n| n.strong_consistency)
            .map(|n| n.name)
            .collect();
        namespaces.sort();
        namespaces.dedup();
        let blocked_racks = cluster
            .spec
            .rack_config
            .iter()
            .flat_map(|rc| &rc.racks)
            .filter(|r| r.force_block_from_roster == Some(true))
            .map(|r| r.id)
            .collect();
        StrongConsistency { namespaces, block_list: &cluster.spec.roster_node_block_list, blocked_racks }
    }

    /// After a stability check: sets the rosters that differ from the observed nodes (`Some`: the rollout waits
    /// for the recluster), else requires every partition to be available.
    pub(super) async fn check(&self, info: &dyn InfoClient, all: &[SocketAddr]) -> Result<Option<String>, SafetyError> {
        if self.namespaces.is_empty() {
            return Ok(None);
        }
        let desired =
            |observed: &[String]| crate::roster::desired_roster(observed, self.block_list, &self.blocked_racks);
        let changed = safety::set_rosters(info, all, &self.namespaces, desired).await?;
        if !changed.is_empty() {
            return Ok(Some(format!("roster set for strong-consistency namespace(s) {}", changed.join(", "))));
        }
        safety::check_partitions_available(info, all, &self.namespaces).await?;
        Ok(None)
    }
}
