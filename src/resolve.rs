//! Resolve once: an AerospikeCluster read into its racks, each with its size, StatefulSet name, node-id infix,
//! merged and defaulted aerospikeConfig, rendered aerospike.conf, storage and scheduling. This is the only place
//! `spec.rackConfig` is interpreted; the validation rules (`crate::validate`) and the object builders
//! (`crate::desired`) both read a [`Resolved`], and the controller and the webhook resolve each object once.
//!
//! Resolving never stops at the first problem: a rack whose config cannot be built keeps `config: None`, and
//! every problem is a [`FieldError`] in [`Resolved::errors`], so the webhook reports them all at once.
use serde_json::Value;

use crate::aerospike_conf;
pub use crate::api::FieldError;
use crate::api::{AerospikeCluster, Rack, SchedulingPolicy, StorageSpec};

/// StatefulSet names longer than this make pod names or the `controller-revision-hash` label value (StatefulSet
/// name, `-`, 10 characters) exceed the 63 characters of a label.
const MAX_RACK_NAME: usize = 52;

/// A cluster read into racks, with what could not be resolved.
#[derive(Clone, Debug)]
pub struct Resolved<'a> {
    pub cluster: &'a AerospikeCluster,
    /// In spec order; the default rack 0 when `spec.rackConfig.racks` is empty.
    pub racks: Vec<ResolvedRack<'a>>,
    /// Everything that could not be resolved, each naming its field.
    pub errors: Vec<FieldError>,
}

/// A rack's aerospikeConfig: the global config merged with the rack's override, defaulted and rendered.
#[derive(Clone, Debug, PartialEq)]
pub struct RackConfig {
    /// The merged and defaulted config.
    pub value: Value,
    /// The rendered aerospike.conf template.
    pub conf: String,
    /// `aerospike_conf::config_hash(conf)`.
    pub hash: String,
}

/// One rack of a resolved cluster.
#[derive(Clone, Debug)]
pub struct ResolvedRack<'a> {
    pub id: i32,
    /// Index in `spec.rackConfig.racks` (`None` for the default rack).
    pub index: Option<usize>,
    /// The rack's revision ("" when none).
    pub revision: String,
    /// Node-id infix index (see [`revision_index`]).
    pub revision_index: usize,
    /// `<cluster>-<id>[-<revision>]`: the rack's StatefulSet and ConfigMap name.
    pub name: String,
    /// Pods of this rack ([`rack_sizes`]).
    pub size: i32,
    /// The rack's own aerospikeConfig override.
    pub own_config: Option<&'a Value>,
    /// `None` when the config cannot be built (the reason is in [`Resolved::errors`]).
    pub config: Option<RackConfig>,
    /// The rack's storage (its own, else the global one) and the spec path of what it came from.
    pub storage: StorageSpec,
    pub storage_path: String,
    /// The global scheduling policy overridden field by field by the rack's podSpec.
    pub scheduling: SchedulingPolicy,
    pub zone: String,
    pub region: String,
    pub rack_label: String,
    pub node_name: String,
}

impl ResolvedRack<'_> {
    /// `spec.rackConfig.racks[i]`, or `None` for the default rack.
    pub fn path(&self) -> Option<String> {
        self.index.map(|i| format!("spec.rackConfig.racks[{i}]"))
    }

    /// The merged and defaulted aerospikeConfig, when it could be built.
    pub fn config_value(&self) -> Option<&Value> {
        self.config.as_ref().map(|c| &c.value)
    }
}

/// Reads a cluster into racks. Pure; reads the status only for the node-id infix of racks with a revision.
pub fn resolve(cluster: &AerospikeCluster) -> Resolved<'_> {
    let spec = &cluster.spec;
    let mut errors = Vec::new();
    let cluster_name = cluster.metadata.name.clone().unwrap_or_default();
    let global = spec.aerospike_config.as_ref().filter(|v| !v.is_null());
    if global.is_none() {
        errors.push(FieldError::new("spec.aerospikeConfig", "missing"));
    }
    let rack_namespaces = spec.rack_config.as_ref().map(|rc| rc.namespaces.clone());
    let global_scheduling = spec.pod_spec().scheduling;
    let explicit: Vec<Option<&Rack>> = match &spec.rack_config {
        Some(rc) if !rc.racks.is_empty() => rc.racks.iter().map(Some).collect(),
        _ => vec![None],
    };
    let sizes = rack_sizes(spec.size, explicit.len());

    let mut racks = Vec::with_capacity(explicit.len());
    for (i, (rack, size)) in explicit.into_iter().zip(sizes).enumerate() {
        let index = rack.map(|_| i);
        let id = rack.map_or(0, |r| r.id);
        let revision = rack.map(|r| r.revision.clone()).unwrap_or_default();
        let own_config = rack.and_then(|r| r.aerospike_config.as_ref()).filter(|v| !v.is_null());

        let name = rack_name(&cluster_name, id, &revision);
        if name.len() > MAX_RACK_NAME {
            let path = match index {
                Some(i) if !revision.is_empty() => format!("spec.rackConfig.racks[{i}].revision"),
                _ => "metadata.name".to_string(),
            };
            errors.push(FieldError::new(
                path,
                format!("the rack's StatefulSet name {name:?} is longer than {MAX_RACK_NAME} characters"),
            ));
        }

        let config = global.and_then(|g| {
            rack_config(
                g,
                own_config,
                index,
                &mut errors,
                &aerospike_conf::DefaultsContext {
                    cluster_name: cluster_name.clone(),
                    rack_id: id,
                    rack_namespaces: rack_namespaces.clone(),
                },
            )
        });
        let (storage, storage_path) = match (rack.and_then(|r| r.storage.as_ref()), index) {
            (Some(s), Some(i)) => (s.clone(), format!("spec.rackConfig.racks[{i}].storage")),
            _ => (spec.storage(), "spec.storage".to_string()),
        };
        racks.push(ResolvedRack {
            id,
            index,
            revision_index: revision_index(cluster, id, &revision),
            revision,
            name,
            size,
            own_config,
            config,
            storage,
            storage_path,
            scheduling: merge_policy(&global_scheduling, rack.and_then(|r| r.pod_spec.as_ref())),
            zone: rack.map(|r| r.zone.clone()).unwrap_or_default(),
            region: rack.map(|r| r.region.clone()).unwrap_or_default(),
            rack_label: rack.map(|r| r.rack_label.clone()).unwrap_or_default(),
            node_name: rack.map(|r| r.node_name.clone()).unwrap_or_default(),
        });
    }
    Resolved { cluster, racks, errors }
}

/// The merged, defaulted and rendered config of one rack, or `None` with the reason in `errors`.
fn rack_config(
    global: &Value,
    own: Option<&Value>,
    index: Option<usize>,
    errors: &mut Vec<FieldError>,
    ctx: &aerospike_conf::DefaultsContext,
) -> Option<RackConfig> {
    let rack_path = index.map(|i| format!("spec.rackConfig.racks[{i}].aerospikeConfig"));
    // network and security are cluster-wide: a rack may not override them, and merging them would only add
    // conflicts with the global defaults on top of that one clear error.
    if let (Some(own), Some(path)) = (own, &rack_path) {
        let shared: Vec<&str> = ["network", "security"].into_iter().filter(|s| own.get(*s).is_some()).collect();
        for section in &shared {
            errors.push(FieldError::new(
                format!("{path}.{section}"),
                format!("{section} must be the same in every rack: set it in spec.aerospikeConfig.{section} only"),
            ));
        }
        if !shared.is_empty() {
            return None;
        }
    }
    let note = match (own, index) {
        (Some(_), Some(i)) => format!(
            " (rack {}: spec.aerospikeConfig merged with spec.rackConfig.racks[{i}].aerospikeConfig)",
            ctx.rack_id
        ),
        _ => String::new(),
    };
    let refuse = |e: aerospike_conf::ConfError, errors: &mut Vec<FieldError>| {
        let text = e.to_string();
        let reason = text.strip_prefix(&format!("{}: ", e.path())).unwrap_or(&text).to_string();
        errors.push(FieldError::new(format!("spec.{}", e.path()), format!("{reason}{note}")));
    };
    let mut value = match own {
        Some(r) => aerospike_conf::merge_rack_config(global, r),
        None => global.clone(),
    };
    if let Err(e) = aerospike_conf::apply_defaults(&mut value, ctx) {
        refuse(e, errors);
        return None;
    }
    let conf = match aerospike_conf::render(&value) {
        Ok(conf) => conf,
        Err(e) => {
            refuse(e, errors);
            return None;
        }
    };
    if aerospike_conf::heartbeat_port(&value).is_none() && aerospike_conf::heartbeat_tls_port(&value).is_none() {
        refuse(
            aerospike_conf::ConfError::Invalid {
                path: format!("{}.network.heartbeat.port", aerospike_conf::ROOT_PATH),
                reason: "missing: the mesh heartbeat needs a port or a tls-port".to_string(),
            },
            errors,
        );
        return None;
    }
    let hash = aerospike_conf::config_hash(&conf);
    Some(RackConfig { value, conf, hash })
}

/// The rack's podSpec overrides the global one field by field (a field the rack leaves empty is inherited).
fn merge_policy(global: &SchedulingPolicy, rack: Option<&SchedulingPolicy>) -> SchedulingPolicy {
    let Some(rack) = rack else { return global.clone() };
    SchedulingPolicy {
        affinity: rack.affinity.clone().or_else(|| global.affinity.clone()),
        tolerations: if rack.tolerations.is_empty() { global.tolerations.clone() } else { rack.tolerations.clone() },
        node_selector: if rack.node_selector.is_empty() {
            global.node_selector.clone()
        } else {
            rack.node_selector.clone()
        },
    }
}

/// Pods per rack: `size / n` each, the first `size % n` racks one more (the reference's rule).
pub fn rack_sizes(size: i32, rack_count: usize) -> Vec<i32> {
    if rack_count == 0 {
        return Vec::new();
    }
    let n = i32::try_from(rack_count).unwrap_or(i32::MAX);
    let size = size.max(0);
    (0..n).map(|i| size / n + i32::from(i < size % n)).collect()
}

/// `<cluster>-<rackId>[-<revision>]`: the rack's StatefulSet and ConfigMap name.
pub fn rack_name(cluster: &str, rack_id: i32, revision: &str) -> String {
    if revision.is_empty() { format!("{cluster}-{rack_id}") } else { format!("{cluster}-{rack_id}-{revision}") }
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

/// The node-id infix index of a rack (`aerospike_conf::node_id`): 0 (`a`) without a revision. With a revision, node
/// ids must differ from those of the rack's previous revision, whose pods still run while the new revision's pods
/// come up. The status's pods decide, as in the reference: the infix already used by pods of this revision;
/// else the first of `b`..`f` that pods of another revision of this rack do not use. The status must
/// therefore record each pod's node id (`status.pods[*].aerospike.nodeID`, see `desired::pod_node_id`).
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
