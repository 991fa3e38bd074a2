//! The AerospikeCluster custom resource (asdb.aerospike.com/v1), field for field the reference's API.
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;
use super::{
    AccessControlSpec, AerospikeClusterStatus, AerospikePodSpec, NetworkPolicy, OperationSpec, OperatorClientCertSpec,
    RackConfig, SeedsFinderServices, ServiceSpec, StorageSpec, ValidationPolicy,
};

/// Desired state of an Aerospike cluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
// Several `printcolumn(...)` arguments are how kube declares several columns, not a duplicate.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "asdb.aerospike.com",
    version = "v1",
    kind = "AerospikeCluster",
    namespaced,
    status = "AerospikeClusterStatus",
    shortname = "asc",
    category = "aerospike",
    derive = "PartialEq",
    derive = "Default",
    doc = "An Aerospike Enterprise cluster: StatefulSets per rack, Services, ConfigMaps and a PodDisruptionBudget \
           kept in the state this object describes.",
    scale(
        spec_replicas_path = ".spec.size",
        status_replicas_path = ".status.size",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Size", type_ = "integer", json_path = ".spec.size"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyPods"),
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "MultiPodPerHost",
        type_ = "boolean",
        json_path = ".spec.podSpec.multiPodPerHost",
        priority = "1"
    ),
    printcolumn(name = "HostNetwork", type_ = "boolean", json_path = ".spec.podSpec.hostNetwork", priority = "1"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::keep_intended_defaults)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.podSpec) || !has(self.podSpec.hostNetwork) || !self.podSpec.hostNetwork || !has(self.podSpec.multiPodPerHost) || !self.podSpec.multiPodPerHost",
        "message": "hostNetwork requires multiPodPerHost to be false",
        "fieldPath": ".podSpec.hostNetwork"
    },
    {
        "rule": "!has(oldSelf.podSpec) || !has(oldSelf.podSpec.multiPodPerHost) || (has(self.podSpec) && has(self.podSpec.multiPodPerHost) && self.podSpec.multiPodPerHost == oldSelf.podSpec.multiPodPerHost)",
        "message": "multiPodPerHost cannot be changed",
        "fieldPath": ".podSpec.multiPodPerHost"
    }
]))]
pub struct AerospikeClusterSpec {
    /// Number of Aerospike nodes (pods), spread over the racks.
    #[schemars(range(min = 1, max = 256))]
    pub size: i32,
    /// Aerospike server image (Enterprise or Federal, 6.0 or later).
    #[schemars(length(min = 1, max = 1024))]
    pub image: String,
    /// Pods that may be unavailable at once (number or percentage); sets the PodDisruptionBudget and bounds
    /// every rolling restart. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<IntOrString>>")]
    pub max_unavailable: Option<IntOrString>,
    /// Do not create a PodDisruptionBudget.
    #[serde(rename = "disablePDB", skip_serializing_if = "Option::is_none")]
    pub disable_pdb: Option<bool>,
    /// Volumes and their init, wipe and delete policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Roles and users; required when security is enabled in aerospikeConfig.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aerospike_access_control: Option<AccessControlSpec>,
    /// The Aerospike server configuration as an object (service, network, namespaces, logging, security, xdr).
    #[schemars(schema_with = "schema::free_form")]
    pub aerospike_config: Option<serde_json::Value>,
    /// Apply configuration changes that the server accepts at run time without restarting pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_dynamic_config_update: Option<bool>,
    /// Validation switches. Defaults to `{skipWorkDirValidate: false}` (the reference's schema default).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {"skipWorkDirValidate": false}, "x-ako-default" = true))]
    pub validation_policy: Option<ValidationPolicy>,
    /// Rack-aware placement and the pace of changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rack_config: Option<RackConfig>,
    /// Which addresses nodes advertise to clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aerospike_network_policy: Option<NetworkPolicy>,
    /// Client certificate the operator uses with TLS.
    #[serde(rename = "operatorClientCert", skip_serializing_if = "Option::is_none")]
    pub operator_client_cert: Option<OperatorClientCertSpec>,
    /// Additional pod configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_spec: Option<AerospikePodSpec>,
    /// Extra Services for client discovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seeds_finder_services: Option<SeedsFinderServices>,
    /// Metadata of the headless Service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headless_service: Option<ServiceSpec>,
    /// Metadata of per-pod Services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_service: Option<ServiceSpec>,
    /// Aerospike node ids kept out of the strong-consistency roster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 64)))]
    pub roster_node_block_list: Vec<String>,
    /// Kubernetes nodes the pods must not run on (pods there are moved off).
    #[serde(rename = "k8sNodeBlockList", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1), inner(length(max = 253)))]
    pub k8s_node_block_list: Vec<String>,
    /// Stop applying changes until set back to false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Ignore failing sidecars when judging pod readiness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_sidecar_failure: Option<bool>,
    /// Read the rack id from the pod annotation aerospike.com/override-rack-id.
    #[serde(rename = "enableRackIDOverride", skip_serializing_if = "Option::is_none")]
    pub enable_rack_id_override: Option<bool>,
    /// On-demand operations (at most one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1))]
    pub operations: Vec<OperationSpec>,
}

impl AerospikeClusterSpec {
    pub fn paused(&self) -> bool {
        self.paused.unwrap_or(false)
    }
    pub fn pod_spec(&self) -> AerospikePodSpec {
        self.pod_spec.clone().unwrap_or_default()
    }
    pub fn rack_config(&self) -> RackConfig {
        self.rack_config.clone().unwrap_or_default()
    }
    pub fn storage(&self) -> StorageSpec {
        self.storage.clone().unwrap_or_default()
    }
    pub fn max_unavailable(&self) -> IntOrString {
        self.max_unavailable.clone().unwrap_or(IntOrString::Int(1))
    }
    /// A `security` section (even empty) in aerospikeConfig enables security.
    pub fn security_enabled(&self) -> bool {
        self.aerospike_config.as_ref().and_then(|c| c.get("security")).is_some_and(|s| !s.is_null())
    }
}
