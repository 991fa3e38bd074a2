//! Per-rack decisions: which racks exist, their sizes, names, node-id infixes, configs and storage.
use serde_json::Value;

use super::objects::ClusterMeta;
use super::{BuildError, rack_name, rack_sizes};
use crate::aerospike_conf;
use crate::api::{AerospikeCluster, SchedulingPolicy, StorageSpec};

/// StatefulSet names longer than this make pod names or the `controller-revision-hash` label value (StatefulSet
/// name, `-`, 10 characters) exceed the 63 characters of a label.
const MAX_RACK_NAME: usize = 52;

/// One rack before its pod template is built.
#[derive(Clone, Debug)]
pub(crate) struct RackPlan {
    pub id: i32,
    pub revision: String,
    /// Node-id infix index (see [`revision_index`]).
    pub revision_index: usize,
    pub name: String,
    pub size: i32,
    pub config: Value,
    pub conf: String,
    pub conf_hash: String,
    pub storage: StorageSpec,
    /// Spec path of `storage` for error messages.
    pub storage_path: String,
    /// Global scheduling overridden field by field by the rack's podSpec.
    pub scheduling: SchedulingPolicy,
    pub zone: String,
    pub region: String,
    pub rack_label: String,
    pub node_name: String,
}

/// The racks of a cluster, in spec order (the default rack 0 when rackConfig has no racks).
pub(crate) fn rack_plans(cluster: &AerospikeCluster, meta: &ClusterMeta) -> Result<Vec<RackPlan>, BuildError> {
    let spec = &cluster.spec;
    let global = match &spec.aerospike_config {
        None | Some(Value::Null) => return Err(BuildError::invalid("spec.aerospikeConfig", "missing")),
        Some(v) => v,
    };
    let rack_config = spec.rack_config();
    let rack_namespaces = spec.rack_config.as_ref().map(|rc| rc.namespaces.clone());
    let global_scheduling = spec.pod_spec().scheduling;
    let global_storage = spec.storage();

    let mut racks = rack_config.racks.clone();
    let default_rack = racks.is_empty();
    if default_rack {
        racks.push(crate::api::Rack { id: 0, ..Default::default() });
    }
    let sizes = rack_sizes(spec.size, racks.len());

    let mut plans = Vec::with_capacity(racks.len());
    for (i, (rack, size)) in racks.iter().zip(sizes).enumerate() {
        let index = (!default_rack).then_some(i);
        let rack_path = format!("spec.rackConfig.racks[{i}]");

        let name = rack_name(&meta.name, rack.id, &rack.revision);
        if name.len() > MAX_RACK_NAME {
            let path =
                if rack.revision.is_empty() { "metadata.name".to_string() } else { format!("{rack_path}.revision") };
            return Err(BuildError::invalid(
                path,
                format!("the rack's StatefulSet name {name:?} is longer than {MAX_RACK_NAME} characters"),
            ));
        }

        let own_config = rack.aerospike_config.as_ref().filter(|v| !v.is_null());
        let config_err = |error| BuildError::Config { rack_id: rack.id, rack_index: own_config.and(index), error };
        let mut config = match own_config {
            Some(r) => aerospike_conf::merge_rack_config(global, r),
            None => global.clone(),
        };
        let defaults = aerospike_conf::DefaultsContext {
            cluster_name: meta.name.clone(),
            rack_id: rack.id,
            rack_namespaces: rack_namespaces.clone(),
        };
        aerospike_conf::apply_defaults(&mut config, &defaults).map_err(config_err)?;
        let rendered = aerospike_conf::render(&config).map_err(config_err)?;
        if aerospike_conf::heartbeat_port(&config).is_none() && aerospike_conf::heartbeat_tls_port(&config).is_none() {
            return Err(config_err(aerospike_conf::ConfError::Invalid {
                path: format!("{}.network.heartbeat.port", aerospike_conf::ROOT_PATH),
                reason: "missing: the mesh heartbeat needs a port or a tls-port".to_string(),
            }));
        }
        let conf_hash = aerospike_conf::config_hash(&rendered);

        let (storage, storage_path) = match &rack.storage {
            Some(s) => (s.clone(), format!("{rack_path}.storage")),
            None => (global_storage.clone(), "spec.storage".to_string()),
        };
        plans.push(RackPlan {
            id: rack.id,
            revision: rack.revision.clone(),
            revision_index: revision_index(cluster, rack.id, &rack.revision),
            name,
            size,
            config,
            conf: rendered,
            conf_hash,
            storage,
            storage_path,
            scheduling: super::scheduling::merge_policy(&global_scheduling, rack.pod_spec.as_ref()),
            zone: rack.zone.clone(),
            region: rack.region.clone(),
            rack_label: rack.rack_label.clone(),
            node_name: rack.node_name.clone(),
        });
    }
    Ok(plans)
}

/// Rack id and revision encoded in a pod name `<cluster>-<rackId>[-<revision>]-<ordinal>`.
pub(crate) fn parse_pod_name<'a>(cluster: &str, pod: &'a str) -> Option<(i32, &'a str, u32)> {
    let rest = pod.strip_prefix(cluster)?.strip_prefix('-')?;
    let (middle, ordinal) = rest.rsplit_once('-')?;
    let ordinal = ordinal.parse().ok()?;
    let (id, revision) = middle.split_once('-').unwrap_or((middle, ""));
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((id.parse().ok()?, revision, ordinal))
}

/// Infix index of a node id `<rackId><infix><ordinal>` (`a` = 0 ... `f` = 5).
fn infix_index(node_id: &str, rack_id: i32) -> Option<usize> {
    let c = *node_id.strip_prefix(&rack_id.to_string())?.as_bytes().first()?;
    (b'a'..=b'f').contains(&c).then(|| usize::from(c - b'a'))
}

/// The node-id infix index of a rack (`aerospike_conf::node_id`): 0 (`a`) without a revision. With a revision, node ids
/// must differ from those of the rack's previous revision, whose pods still run while the new revision's pods
/// come up. The status's pods decide, as in the reference: the infix already used by pods of this revision;
/// else the first of `b`..`f` that pods of another revision of this rack do not use. The status must
/// therefore record each pod's node id (`status.pods[*].aerospike.nodeID`, see [`super::pod_node_id`]).
pub fn revision_index(cluster: &AerospikeCluster, rack_id: i32, revision: &str) -> usize {
    if revision.is_empty() {
        return 0;
    }
    let Some(name) = cluster.metadata.name.as_deref() else { return 1 };
    let mut taken = Vec::new();
    if let Some(status) = &cluster.status {
        for (pod, st) in &status.pods {
            let Some((id, rev, _)) = parse_pod_name(name, pod) else { continue };
            if id != rack_id {
                continue;
            }
            let known = if rev.is_empty() { Some(0) } else { infix_index(&st.aerospike.node_id, rack_id) };
            match known {
                Some(i) if rev == revision => return i,
                Some(i) => taken.push(i),
                None => {}
            }
        }
    }
    (1..=5).find(|i| !taken.contains(i)).unwrap_or(1)
}
