//! `spec.storage`: volumes attached to Aerospike pods and the policies that initialise, wipe and delete them.
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, SecretVolumeSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ObjectMetaTemplate;
use super::schema;

/// How a volume is initialised on first use or wiped after a storage format change.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum VolumeMethod {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "dd")]
    Dd,
    #[serde(rename = "blkdiscard")]
    Blkdiscard,
    #[serde(rename = "blkdiscardWithHeaderCleanup")]
    BlkdiscardWithHeaderCleanup,
    #[serde(rename = "headerCleanup")]
    HeaderCleanup,
    #[serde(rename = "deleteFiles")]
    DeleteFiles,
}

impl VolumeMethod {
    /// The name as written in the spec (`dd`, `deleteFiles`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeMethod::None => "none",
            VolumeMethod::Dd => "dd",
            VolumeMethod::Blkdiscard => "blkdiscard",
            VolumeMethod::BlkdiscardWithHeaderCleanup => "blkdiscardWithHeaderCleanup",
            VolumeMethod::HeaderCleanup => "headerCleanup",
            VolumeMethod::DeleteFiles => "deleteFiles",
        }
    }
}

/// The wipe methods (the reference's): init methods that only prepare a new volume (none, headerCleanup,
/// blkdiscardWithHeaderCleanup) do not wipe one.
fn wipe_method(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["dd", "blkdiscard", "deleteFiles"]})
}

/// Policies for a class of volumes (filesystem or block) or for one volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumePolicy {
    /// How volumes are initialised when a pod first starts. Defaults to "none".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_method: Option<VolumeMethod>,
    /// How volumes are wiped when a namespace's storage format changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "wipe_method")]
    pub wipe_method: Option<VolumeMethod>,
    /// Delete the PersistentVolumeClaims when their pod is removed from the cluster or the cluster is deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cascade_delete: Option<bool>,
    /// Effective init method after defaults (written by the reference's webhook; accepted for compatibility).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_init_method: Option<VolumeMethod>,
    /// Effective wipe method after defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "wipe_method")]
    pub effective_wipe_method: Option<VolumeMethod>,
    /// Effective cascade delete after defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_cascade_delete: Option<bool>,
}

/// Volumes attached to the pods and their policies.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Default policies for filesystem volumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem_volume_policy: Option<VolumePolicy>,
    /// Default policies for block volumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_volume_policy: Option<VolumePolicy>,
    /// Maximum number of cleanup threads (dd or blkdiscard) per init container. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 1, "x-ako-default" = true))]
    pub cleanup_threads: Option<i32>,
    /// Storage classes that provision node-local volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 253)))]
    pub local_storage_classes: Vec<String>,
    /// Delete local-storage PVCs when their pod restarts (so it can move to another node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_local_storage_on_restart: Option<bool>,
    /// Delete local-storage PVCs when their pod is recovered after a failure (so it can move to another node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_local_storage_on_pod_recovery: Option<bool>,
    /// Volumes to attach to the pods; names are unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = volumes_by_name, length(max = 100))]
    pub volumes: Vec<VolumeSpec>,
}

fn volumes_by_name(s: &mut schemars::Schema) {
    schema::list_map(s, "name");
}

/// One volume: where it comes from and where it is mounted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// Volume name, unique in the pod; also names the PVC of a persistent volume.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Where the volume comes from (exactly one source).
    #[serde(default)]
    pub source: VolumeSource,
    /// Mount in the Aerospike server container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aerospike: Option<ServerVolumeAttachment>,
    /// Mounts in sidecar containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecars: Vec<VolumeAttachment>,
    /// Mounts in user init containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<VolumeAttachment>,
    /// Per-volume init method, overriding the class policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_method: Option<VolumeMethod>,
    /// Per-volume wipe method, overriding the class policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "wipe_method")]
    pub wipe_method: Option<VolumeMethod>,
    /// Per-volume cascade delete, overriding the class policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cascade_delete: Option<bool>,
    /// Effective values written by the reference's webhook (accepted for compatibility).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_init_method: Option<VolumeMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "wipe_method")]
    pub effective_wipe_method: Option<VolumeMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_cascade_delete: Option<bool>,
}

/// The source of a volume; only one member may be set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.emptyDir), has(self.secret), has(self.configMap), has(self.persistentVolume), has(self.hostPath)].filter(x, x).size() <= 1",
    "message": "only one volume source may be set"
}]))]
pub struct VolumeSource {
    /// A temporary directory that lives as long as the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<EmptyDirVolumeSource>>")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
    /// A Secret's keys as files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<SecretVolumeSource>>")]
    pub secret: Option<SecretVolumeSource>,
    /// A ConfigMap's keys as files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<ConfigMapVolumeSource>>")]
    pub config_map: Option<ConfigMapVolumeSource>,
    /// A PersistentVolumeClaim made per pod from a volumeClaimTemplate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume: Option<PersistentVolumeSpec>,
    /// A directory of the Kubernetes node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<HostPathVolumeSource>>")]
    pub host_path: Option<HostPathVolumeSource>,
}

/// A persistent volume claimed for each pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = require_storage_class)]
pub struct PersistentVolumeSpec {
    /// Labels and annotations for the PVC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMetaTemplate>,
    /// Storage class (created beforehand by the user). Required by the schema, as in the reference; objects
    /// stored before it was required still parse (and an empty one is not written back).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub storage_class: String,
    /// Filesystem or Block.
    #[schemars(schema_with = "volume_mode")]
    pub volume_mode: String,
    /// Size of the volume, e.g. 10Gi.
    #[schemars(schema_with = "schema::k8s::<Quantity>")]
    pub size: Quantity,
    /// Access modes, e.g. ReadWriteOnce.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "access_modes")]
    pub access_modes: Vec<String>,
    /// A label query over volumes to consider for binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<LabelSelector>>")]
    pub selector: Option<LabelSelector>,
}

fn require_storage_class(s: &mut schemars::Schema) {
    if let Some(serde_json::Value::Array(required)) = s.get_mut("required") {
        required.push("storageClass".into());
    }
}

fn access_modes(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "array", "items": {"type": "string", "enum": ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]}})
}

fn volume_mode(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["Filesystem", "Block"]})
}

/// Mount of a volume in the Aerospike server container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerVolumeAttachment {
    /// Mount path (or device path for a block volume).
    #[schemars(length(min = 1, max = 4096))]
    pub path: String,
    /// Mount options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_options: Option<MountOptions>,
}

/// Mount of a volume in a sidecar or init container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeAttachment {
    /// Container name (a sidecar or init container of podSpec).
    #[schemars(length(max = 63))]
    pub container_name: String,
    /// Mount path.
    #[schemars(length(max = 4096))]
    pub path: String,
    /// Mount options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_options: Option<MountOptions>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MountOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub sub_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub sub_path_expr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub mount_propagation: Option<String>,
}

impl VolumeSpec {
    /// Policy in force for this volume: its own setting, else the class default, else the built-in default.
    pub fn effective_policy(&self, storage: &StorageSpec) -> EffectivePolicy {
        let block = self.source.persistent_volume.as_ref().is_some_and(|pv| pv.volume_mode == "Block");
        let class = if block { &storage.block_volume_policy } else { &storage.filesystem_volume_policy };
        let class = class.clone().unwrap_or_default();
        EffectivePolicy {
            init_method: self.init_method.or(class.init_method).unwrap_or(VolumeMethod::None),
            wipe_method: self.wipe_method.or(class.wipe_method).unwrap_or(if block {
                VolumeMethod::Dd
            } else {
                VolumeMethod::DeleteFiles
            }),
            cascade_delete: self.cascade_delete.or(class.cascade_delete).unwrap_or(false),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectivePolicy {
    pub init_method: VolumeMethod,
    pub wipe_method: VolumeMethod,
    pub cascade_delete: bool,
}

#[cfg(test)]
mod tests {
    use super::VolumeMethod;

    #[test]
    fn method_names_are_the_serialised_names() {
        use VolumeMethod::*;
        for m in [None, Dd, Blkdiscard, BlkdiscardWithHeaderCleanup, HeaderCleanup, DeleteFiles] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
    }
}
