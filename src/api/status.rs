//! Observed state: the reference's status fields (applied spec, pods map, phase) plus standard conditions.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;
use super::{
    AccessControlSpec, AerospikePodSpec, NetworkPolicy, OperationSpec, OperatorClientCertSpec, RackConfig,
    SeedsFinderServices, ServiceSpec, StorageSpec, ValidationPolicy,
};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    InProgress,
    Completed,
    Error,
}

/// Observed state of an Aerospike cluster. The applied-spec fields mirror the spec last rolled out completely;
/// their schemas are copies of the spec's (see [`schema::copy`]), without descriptions and with embedded
/// Kubernetes types left open, to keep the CRD small. The operator client certificate stays free-form for now.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::keep_intended_defaults)]
pub struct AerospikeClusterStatus {
    /// The generation of the spec this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Available, Progressing, Degraded and ReconcileSuccess, with reasons and messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    /// InProgress while changes roll out, Completed when done, Error when the operator cannot proceed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Label selector of the pods (for the scale subresource).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Number of pods (the applied size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i32>,
    /// Pods that are Ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_pods: Option<i32>,
    /// Applied image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<IntOrString>>")]
    pub max_unavailable: Option<IntOrString>,
    #[serde(rename = "disablePDB", skip_serializing_if = "Option::is_none")]
    pub disable_pdb: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_dynamic_config_update: Option<bool>,
    /// Whether the readiness probe is on every pod (the PodDisruptionBudget needs it).
    #[serde(default)]
    pub is_readiness_probe_enabled: bool,
    /// Applied Aerospike configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_form_nullable")]
    pub aerospike_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy::<Option<StorageSpec>>")]
    pub storage: Option<StorageSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy::<Option<AccessControlSpec>>")]
    pub aerospike_access_control: Option<AccessControlSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy::<Option<ValidationPolicy>>")]
    pub validation_policy: Option<ValidationPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy_nullable::<RackConfig>")]
    pub rack_config: Option<RackConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy::<Option<NetworkPolicy>>")]
    pub aerospike_network_policy: Option<NetworkPolicy>,
    #[serde(default, rename = "operatorClientCertSpec", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_form")]
    pub operator_client_cert: Option<OperatorClientCertSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy::<Option<AerospikePodSpec>>")]
    pub pod_spec: Option<AerospikePodSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy::<Option<SeedsFinderServices>>")]
    pub seeds_finder_services: Option<SeedsFinderServices>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy::<Option<ServiceSpec>>")]
    pub headless_service: Option<ServiceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy::<Option<ServiceSpec>>")]
    pub pod_service: Option<ServiceSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roster_node_block_list: Vec<String>,
    #[serde(rename = "k8sNodeBlockList", default, skip_serializing_if = "Vec::is_empty")]
    pub k8s_node_block_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::copy::<Vec<OperationSpec>>")]
    pub operations: Vec<OperationSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_sidecar_failure: Option<bool>,
    #[serde(rename = "enableRackIDOverride", skip_serializing_if = "Option::is_none")]
    pub enable_rack_id_override: Option<bool>,
    /// Deprecated in the reference (now under podSpec); kept so its status objects parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_pod_per_host: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<ResourceRequirements>>")]
    pub resources: Option<ResourceRequirements>,
    /// Per-pod state keyed by pod name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pods: BTreeMap<String, PodStatus>,
}

fn conditions(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = schema::k8s::<Vec<Condition>>(g);
    schema::list_map(&mut s, "type");
    s
}

/// What the operator knows about one Aerospike pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = pod_status_required)]
pub struct PodStatus {
    /// Image the pod runs.
    #[serde(default)]
    pub image: String,
    /// Image of the init container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub init_image: String,
    #[serde(rename = "podIP", default)]
    pub pod_ip: String,
    #[serde(rename = "hostInternalIP", default, skip_serializing_if = "String::is_empty")]
    pub host_internal_ip: String,
    #[serde(rename = "hostExternalIP", default, skip_serializing_if = "String::is_empty")]
    pub host_external_ip: String,
    /// Port in-cluster clients connect to.
    #[serde(default)]
    pub pod_port: i32,
    /// Port clients outside Kubernetes connect to.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub service_port: i32,
    /// Admin port in the pod (Aerospike 8.1 admin listener; the reference writes it, this operator does not
    /// configure one yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_admin_port: Option<i32>,
    /// Admin port for clients outside Kubernetes (written by the reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_admin_port: Option<i32>,
    /// The pod's rack id came from its aerospike.com/override-rack-id annotation (enableRackIDOverride).
    #[serde(rename = "rackIDOverridden", skip_serializing_if = "Option::is_none")]
    pub rack_id_overridden: Option<bool>,
    /// The Aerospike server in this pod.
    #[serde(default)]
    pub aerospike: InstanceSummary,
    /// Volumes already initialised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub initialized_volumes: Vec<String>,
    /// Volumes to clean before reuse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirty_volumes: Vec<String>,
    /// Hash of the rendered aerospike.conf the pod runs (RIPEMD-160, compatible with the reference).
    #[serde(default)]
    pub aerospike_config_hash: String,
    /// Hash of the network policy the pod runs.
    #[serde(default)]
    pub network_policy_hash: String,
    /// Hash of the pod template the pod runs.
    #[serde(default)]
    pub pod_spec_hash: String,
    /// Empty when the last dynamic update succeeded; Failed or PartiallyFailed otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(schema_with = "dynamic_config_update_status")]
    pub dynamic_config_update_status: String,
}

fn dynamic_config_update_status(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["Failed", "PartiallyFailed", ""]})
}

/// The fields the reference requires in a pod's status (the operator always writes them).
fn pod_status_required(s: &mut schemars::Schema) {
    s.insert(
        "required".into(),
        serde_json::json!(["aerospikeConfigHash", "image", "networkPolicyHash", "podIP", "podPort", "podSpecHash"]),
    );
}

fn instance_summary_required(s: &mut schemars::Schema) {
    s.insert("required".into(), serde_json::json!(["clusterName", "nodeID"]));
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(transform = instance_summary_required)]
pub struct InstanceSummary {
    #[serde(rename = "clusterName", default)]
    pub cluster_name: String,
    #[serde(rename = "nodeID", default)]
    pub node_id: String,
    #[serde(rename = "rackID", default)]
    pub rack_id: i32,
    #[serde(rename = "tlsName", default, skip_serializing_if = "String::is_empty")]
    pub tls_name: String,
    #[serde(rename = "accessEndpoints", default, skip_serializing_if = "Vec::is_empty")]
    pub access_endpoints: Vec<String>,
    #[serde(rename = "alternateAccessEndpoints", default, skip_serializing_if = "Vec::is_empty")]
    pub alternate_access_endpoints: Vec<String>,
    #[serde(rename = "tlsAccessEndpoints", default, skip_serializing_if = "Vec::is_empty")]
    pub tls_access_endpoints: Vec<String>,
    #[serde(rename = "tlsAlternateAccessEndpoints", default, skip_serializing_if = "Vec::is_empty")]
    pub tls_alternate_access_endpoints: Vec<String>,
}
