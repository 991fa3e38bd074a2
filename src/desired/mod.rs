//! The build step: a resolved AerospikeCluster (`crate::resolve`: racks with their merged, defaulted and rendered
//! configs) in, the objects that should exist out. Pure: no API client, no I/O.
//!
//! [`desired_state`] builds the objects: the headless Service, one ConfigMap and one StatefulSet per rack,
//! the PodDisruptionBudget and the optional seeds LoadBalancer Service. Every object carries the common labels,
//! a controller owner reference to the cluster and the cluster's namespace.
//!
//! Per-pod values (node id, access addresses, mesh seeds) are not known here: the operator binary fills them
//! in when the pod starts, as the pod's init container (`pod-init`, see `crate::podinit`). The contract between
//! the two is the `ENV_*` names, the mount paths and the ConfigMap keys defined in this module.
mod objects;
mod pod;
pub mod pod_network;
mod scheduling;
mod storage;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::StorageSpec;
use crate::resolve::Resolved;

pub use crate::resolve::{rack_name, rack_sizes, revision_index};
pub use objects::with_pod_volumes;

/// Label on every object: the kind of application.
pub const LABEL_APP: &str = "app";
/// Value of [`LABEL_APP`].
pub const APP_NAME: &str = "aerospike-cluster";
/// Label on every object: the AerospikeCluster it belongs to.
pub const LABEL_CR: &str = "aerospike.com/cr";
/// Label on rack objects (ConfigMap, StatefulSet, pods, PVCs): the rack id.
pub const LABEL_RACK: &str = "aerospike.com/rack-id";
/// On PVCs: the volume of spec.storage (or the rack's storage) the claim is for; added by the operator.
pub const LABEL_VOLUME: &str = "aerospike.com/volume";
/// Label on every object the operator creates.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGER_NAME: &str = "aerospike-kubernetes-operator";

/// Pod template annotation: hash of the rendered aerospike.conf template (RIPEMD-160, see `aerospike_conf::config_hash`).
pub const ANNOTATION_CONF_HASH: &str = "aerospike.com/conf-hash";
/// Pod template annotation: hash of the pod template without these two annotations.
pub const ANNOTATION_POD_SPEC_HASH: &str = "aerospike.com/pod-spec-hash";
/// Pod annotation (the reference's): set by the eviction webhook when it refuses an eviction of the pod (the time,
/// RFC 3339). The operator then moves the pod off its node, through the rollout's safety checks, once that node is
/// cordoned. A recreated pod starts without it.
pub const ANNOTATION_EVICTION_BLOCKED: &str = "aerospike.com/eviction-blocked";
/// Pod annotation read (through the Downward API) when enableRackIDOverride is set.
pub const ANNOTATION_OVERRIDE_RACK_ID: &str = "aerospike.com/override-rack-id";

/// Name of the operator's init container.
pub const INIT_CONTAINER_NAME: &str = "aerospike-init";
/// Name of the Aerospike server container.
pub const SERVER_CONTAINER_NAME: &str = "aerospike-server";

/// ConfigMap key: the rack's rendered aerospike.conf template.
pub const CM_TEMPLATE_KEY: &str = "aerospike.template.conf";
/// ConfigMap key: the sorted FQDNs of every pod of the cluster, one per line.
pub const CM_PEERS_KEY: &str = "peers";
/// ConfigMap key: [`RackState::conf_hash`] (same key as the reference operator).
pub const CM_CONF_HASH_KEY: &str = "aerospikeConfHash";
/// ConfigMap key: hash of spec.aerospikeNetworkPolicy (same key as the reference operator).
pub const CM_NETWORK_POLICY_HASH_KEY: &str = "networkPolicyHash";
/// ConfigMap key: [`RackState::pod_spec_hash`] (same key as the reference operator).
pub const CM_POD_SPEC_HASH_KEY: &str = "podSpecHash";
/// ConfigMap key: what the operator knows of each pod's volumes, a JSON map pod name -> [`PodVolumes`]. pod-init
/// has no API access: this is how it learns which volumes are initialised already and which are dirty.
pub const CM_VOLUMES_KEY: &str = "volumes.json";
/// ConfigMap key: the rack's storage.cleanupThreads, how many volumes pod-init initialises or wipes at once (in the
/// ConfigMap, not the pod template, so a change restarts no pod).
pub const CM_CLEANUP_THREADS_KEY: &str = "cleanupThreads";

/// Pod volume (emptyDir) shared by the init and server containers; pod-init writes aerospike.conf into it.
pub const CONF_VOLUME: &str = "aerospike-conf";
/// Where [`CONF_VOLUME`] is mounted in both containers.
pub const CONF_DIR: &str = "/etc/aerospike";
/// The file pod-init writes and the server reads.
pub const CONF_FILE: &str = "/etc/aerospike/aerospike.conf";
/// Pod volume of the rack ConfigMap (init container only).
pub const TEMPLATE_VOLUME: &str = "aerospike-conf-template";
/// Where [`TEMPLATE_VOLUME`] is mounted in the init container.
pub const TEMPLATE_DIR: &str = "/etc/aerospike-template";
/// Volumes that pod-init initialises are mounted (or, for Block volumes, attached) at `<this>/<volume name>`
/// in the init container.
pub const INIT_VOLUMES_DIR: &str = "/aerospike-volumes";

/// Environment of the init container (Downward API): the pod's name.
pub const ENV_POD_NAME: &str = "POD_NAME";
/// Downward API: the pod's namespace.
pub const ENV_POD_NAMESPACE: &str = "POD_NAMESPACE";
/// Downward API: status.podIP.
pub const ENV_POD_IP: &str = "POD_IP";
/// Downward API: status.hostIP.
pub const ENV_HOST_IP: &str = "HOST_IP";
/// Downward API: spec.nodeName.
pub const ENV_NODE_NAME: &str = "NODE_NAME";
/// The AerospikeCluster name (= headless Service name, the middle label of every peer FQDN).
pub const ENV_CLUSTER_NAME: &str = "AEROSPIKE_CLUSTER_NAME";
/// The rack id.
pub const ENV_RACK_ID: &str = "AEROSPIKE_RACK_ID";
/// The rack revision index (0 = no revision): the node-id infix `a` + index (see `aerospike_conf::node_id`).
pub const ENV_RACK_REVISION_INDEX: &str = "AEROSPIKE_RACK_REVISION_INDEX";
/// `network.heartbeat.port`, when set.
pub const ENV_HEARTBEAT_PORT: &str = "AEROSPIKE_HEARTBEAT_PORT";
/// `network.heartbeat.tls-port`, when set.
pub const ENV_HEARTBEAT_TLS_PORT: &str = "AEROSPIKE_HEARTBEAT_TLS_PORT";
/// `network.fabric.port`, when set.
pub const ENV_FABRIC_PORT: &str = "AEROSPIKE_FABRIC_PORT";
/// `network.fabric.tls-port`, when set.
pub const ENV_FABRIC_TLS_PORT: &str = "AEROSPIKE_FABRIC_TLS_PORT";
/// spec.podSpec.hostNetwork (`true` / `false`).
pub const ENV_HOST_NETWORK: &str = "AEROSPIKE_HOST_NETWORK";
/// spec.podSpec.multiPodPerHost (`true` / `false`).
pub const ENV_MULTI_POD_PER_HOST: &str = "AEROSPIKE_MULTI_POD_PER_HOST";
/// spec.aerospikeNetworkPolicy as JSON (`{}` when not set).
pub const ENV_NETWORK_POLICY: &str = "AEROSPIKE_NETWORK_POLICY";
/// The volumes pod-init initialises, as a JSON list of [`InitVolume`].
pub const ENV_INIT_VOLUMES: &str = "AEROSPIKE_INIT_VOLUMES";
/// Downward API: the pod's uid; pod-init acts only on the [`CM_VOLUMES_KEY`] entry written for this uid.
pub const ENV_POD_UID: &str = "AEROSPIKE_POD_UID";
/// Downward API: the pod's [`ANNOTATION_CONF_HASH`]; pod-init waits until the mounted template has this hash.
pub const ENV_CONF_HASH: &str = "AEROSPIKE_CONF_HASH";
/// Downward API (only with enableRackIDOverride): the pod annotation [`ANNOTATION_OVERRIDE_RACK_ID`].
pub const ENV_OVERRIDE_RACK_ID: &str = "AEROSPIKE_OVERRIDE_RACK_ID";
/// Every variable above: what pod-init reads (and records for a later warm restart).
pub const POD_INIT_ENV: [&str; 19] = [
    ENV_POD_NAME,
    ENV_POD_NAMESPACE,
    ENV_POD_IP,
    ENV_HOST_IP,
    ENV_NODE_NAME,
    ENV_CLUSTER_NAME,
    ENV_RACK_ID,
    ENV_RACK_REVISION_INDEX,
    ENV_HEARTBEAT_PORT,
    ENV_HEARTBEAT_TLS_PORT,
    ENV_FABRIC_PORT,
    ENV_FABRIC_TLS_PORT,
    ENV_HOST_NETWORK,
    ENV_MULTI_POD_PER_HOST,
    ENV_NETWORK_POLICY,
    ENV_INIT_VOLUMES,
    ENV_POD_UID,
    ENV_CONF_HASH,
    ENV_OVERRIDE_RACK_ID,
];

/// Inputs of the build step that do not come from the cluster object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildContext {
    /// The operator's own image, run as the pods' init container (`pod-init`).
    pub init_image: String,
}

/// Everything decided about one rack.
#[derive(Clone, Debug, PartialEq)]
pub struct RackState {
    pub id: i32,
    /// The rack's revision ("" when none).
    pub revision: String,
    /// `<cluster>-<id>[-<revision>]`: the name of the rack's ConfigMap and StatefulSet.
    pub name: String,
    /// Number of pods of this rack.
    pub size: i32,
    /// The merged and defaulted aerospikeConfig of this rack.
    pub config: serde_json::Value,
    /// The rendered aerospike.conf template.
    pub conf: String,
    /// `aerospike_conf::config_hash(conf)`, also the pod annotation [`ANNOTATION_CONF_HASH`].
    pub conf_hash: String,
    /// Hash of the pod template, also the pod annotation [`ANNOTATION_POD_SPEC_HASH`].
    pub pod_spec_hash: String,
    /// The rack's storage (the rack's own, else the global one).
    pub storage: StorageSpec,
}

/// The objects that should exist for one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub racks: Vec<RackState>,
    pub headless_service: Service,
    pub lb_service: Option<Service>,
    /// One per rack, in the order of `racks`.
    pub config_maps: Vec<ConfigMap>,
    /// One per rack, in the order of `racks`.
    pub stateful_sets: Vec<StatefulSet>,
    pub pdb: Option<PodDisruptionBudget>,
}

/// Why the desired state cannot be built. Every message starts with the path of the field concerned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// A field of the cluster object is missing or invalid.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl BuildError {
    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        BuildError::Invalid { path: path.into(), reason: reason.into() }
    }

    /// The spec field path the error is about, e.g. `spec.aerospikeConfig.network.heartbeat.mode`.
    pub fn path(&self) -> String {
        let BuildError::Invalid { path, .. } = self;
        path.clone()
    }
}

/// A volume pod-init initialises (the JSON elements of [`ENV_INIT_VOLUMES`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitVolume {
    /// Volume name.
    pub name: String,
    /// Mount path (filesystem) or device path (Block) in the init container.
    pub path: String,
    /// Block volume (attached as a device) rather than a mounted filesystem.
    #[serde(default)]
    pub block: bool,
    /// The effective init method.
    pub method: crate::api::VolumeMethod,
    /// The effective wipe method, for a volume that can become dirty (a Block volume attached to the server: a
    /// device a namespace may stop using).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wipe: Option<crate::api::VolumeMethod>,
}

/// One pod's entry of [`CM_VOLUMES_KEY`], written by the operator once it has seen the pod (this `uid`) and its
/// claims. The entry of a pod uid never changes afterwards: what pod-init acted on is what the operator records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumes {
    /// The pod's uid (a recreated pod gets a new entry).
    pub uid: String,
    /// Volumes initialised on the claims the pod has now: pod-init does not initialise them again.
    #[serde(default)]
    pub initialized: Vec<String>,
    /// Volumes to wipe with their wipe method: dirty (a namespace stopped using their device) and used by a
    /// namespace of the config this entry was made for.
    #[serde(default)]
    pub dirty: Vec<String>,
    /// Dirty volumes no namespace of that config uses: not wiped now, they stay dirty until one does (as the
    /// reference waits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_dirty: Vec<String>,
    /// The conf hash of the config `dirty` and `keep_dirty` were split by (set when either is non-empty): pod-init
    /// refuses to act on a ConfigMap template with another hash, so a split made for one config never wipes or
    /// skips for another; the pod is then recreated and gets a new entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf_hash: Option<String>,
}

/// Labels that select every pod (and object) of a cluster: `app` and `aerospike.com/cr`.
pub fn selector_labels(cluster_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL_APP.to_string(), APP_NAME.to_string()), (LABEL_CR.to_string(), cluster_name.to_string())])
}

/// Labels that select the pods of one rack: [`selector_labels`] plus `aerospike.com/rack-id`.
pub fn rack_selector_labels(cluster_name: &str, rack_id: i32) -> BTreeMap<String, String> {
    let mut labels = selector_labels(cluster_name);
    labels.insert(LABEL_RACK.to_string(), rack_id.to_string());
    labels
}

/// Labels of every object of a cluster: [`selector_labels`] plus `app.kubernetes.io/managed-by`.
pub fn common_labels(cluster_name: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(cluster_name);
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGER_NAME.to_string());
    labels
}

/// Labels of the objects of one rack: [`common_labels`] plus `aerospike.com/rack-id`.
pub fn rack_labels(cluster_name: &str, rack_id: i32) -> BTreeMap<String, String> {
    let mut labels = common_labels(cluster_name);
    labels.insert(LABEL_RACK.to_string(), rack_id.to_string());
    labels
}

/// `<pod>.<cluster>.<namespace>`: a pod's name through the headless Service.
pub fn pod_fqdn(pod: &str, cluster: &str, namespace: &str) -> String {
    format!("{pod}.{cluster}.{namespace}")
}

/// Hash (SHA-256, lower-case hex) of an object's JSON form with object keys sorted: the same object gives
/// the same hash in every run and every process (and operator version: a changed hash of a pod template restarts
/// pods). serde_json's `Map` is a `BTreeMap` here (its `preserve_order` feature is off), so its compact text already
/// lists every object's keys in byte order: that text is streamed into the hash, without building it. Hashing
/// was half of the operator's allocations in a 300-cluster heap profile when the text was built key by key.
pub fn desired_hash<T: Serialize>(obj: &T) -> String {
    /// Feeds written bytes to the hash.
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let value = serde_json::to_value(obj).expect("Kubernetes objects serialise to JSON");
    let mut hashing = Hashing(Sha256::new());
    serde_json::to_writer(&mut hashing, &value).expect("a JSON value serialises");
    hex::encode(hashing.0.finalize())
}

/// What the functions here read of a running pod: the API's `Pod`, or the controller's cached copy of one.
pub trait PodRead {
    fn meta(&self) -> &ObjectMeta;
    /// spec.nodeName.
    fn node_name(&self) -> Option<&str>;
    /// status.hostIP.
    fn host_ip(&self) -> Option<&str>;
    /// The literal value of env variable `key` of init container `container`.
    fn init_env(&self, container: &str, key: &str) -> Option<&str>;
}

impl PodRead for Pod {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn node_name(&self) -> Option<&str> {
        self.spec.as_ref()?.node_name.as_deref()
    }
    fn host_ip(&self) -> Option<&str> {
        self.status.as_ref()?.host_ip.as_deref()
    }
    fn init_env(&self, container: &str, key: &str) -> Option<&str> {
        let init = self.spec.as_ref()?.init_containers.as_ref()?.iter().find(|c| c.name == container)?;
        init.env.as_ref()?.iter().find(|e| e.name == key)?.value.as_deref()
    }
}

/// The Aerospike node id of a pod built by this module, read from the pod alone (its name and the env of its
/// init container), so the controller can record node ids without asking Aerospike.
pub fn pod_node_id(pod: &impl PodRead) -> Option<String> {
    let name = pod.meta().name.as_deref()?;
    let ordinal: u32 = name.rsplit_once('-')?.1.parse().ok()?;
    let value = |key: &str| pod.init_env(INIT_CONTAINER_NAME, key);
    let rack_id: i32 = value(ENV_RACK_ID)?.parse().ok()?;
    let index: usize = value(ENV_RACK_REVISION_INDEX).and_then(|v| v.parse().ok()).unwrap_or(0);
    Some(crate::aerospike_conf::node_id(rack_id, index, ordinal))
}

/// The desired objects of a resolved cluster. Pure. Refuses a cluster that did not resolve (the first of
/// [`Resolved::errors`]); the validation rules run before, so the reconciler reports all of them.
pub fn desired_state(resolved: &Resolved, ctx: &BuildContext) -> Result<Desired, BuildError> {
    if let Some(e) = resolved.errors.first() {
        return Err(BuildError::invalid(e.path.clone(), e.message.clone()));
    }
    let cluster = resolved.cluster;
    let meta = objects::ClusterMeta::of(cluster)?;
    let racks = &resolved.racks;

    let mut rack_states = Vec::with_capacity(racks.len());
    let mut templates = Vec::with_capacity(racks.len());
    for rack in racks {
        // Resolving without errors gives every rack its config; a rack without one is a resolve defect.
        let config = rack.config.as_ref().ok_or_else(|| {
            BuildError::invalid(rack.path().unwrap_or_else(|| "spec.aerospikeConfig".into()), "config not resolved")
        })?;
        let built = pod::pod_template(cluster, &meta, rack, config, ctx)?;
        rack_states.push(built.state);
        templates.push((built.template, built.claims));
    }

    let peers = objects::peers(&meta, &rack_states);
    let network_policy_hash =
        desired_hash(&pod::network_policy_without_defaults(cluster.spec.aerospike_network_policy.as_ref()));
    let config_maps = rack_states.iter().map(|r| objects::config_map(&meta, r, &peers, &network_policy_hash)).collect();
    let stateful_sets = rack_states
        .iter()
        .zip(templates)
        .map(|(r, (template, claims))| objects::stateful_set(&meta, r, template, claims))
        .collect();
    let first = rack_states.first().map(|r| &r.config);
    Ok(Desired {
        headless_service: objects::headless_service(cluster, &meta, first),
        lb_service: objects::lb_service(cluster, &meta, first),
        pdb: objects::pdb(cluster, &meta),
        config_maps,
        stateful_sets,
        racks: rack_states,
    })
}
