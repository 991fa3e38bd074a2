//! `spec.podSpec`: what the operator adds to the Aerospike pods beyond the server container it builds.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, LocalObjectReference, PodDNSConfig, PodSecurityContext, ResourceRequirements, SecurityContext,
    Toleration,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;

/// Labels and annotations to put on objects the operator creates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ObjectMetaTemplate {
    /// Annotations to add.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(transform = schema::annotation_values)]
    pub annotations: BTreeMap<String, String>,
    /// Labels to add.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(transform = schema::label_values)]
    pub labels: BTreeMap<String, String>,
}

/// Pod placement on Kubernetes nodes (global, or overridden per rack).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingPolicy {
    /// Affinity rules, merged with the operator's rack and anti-affinity rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<Affinity>>")]
    pub affinity: Option<Affinity>,
    /// Tolerations for the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::k8s::<Vec<Toleration>>")]
    pub tolerations: Vec<Toleration>,
    /// Node selector for the pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(transform = schema::label_values)]
    pub node_selector: BTreeMap<String, String>,
}

/// Settings of the aerospike-server container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AerospikeContainerSpec {
    /// Security context of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<SecurityContext>>")]
    pub security_context: Option<SecurityContext>,
    /// CPU and memory requests and limits of the server container; limits must not be below requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<ResourceRequirements>>")]
    pub resources: Option<ResourceRequirements>,
}

/// Settings of the init container that renders each pod's aerospike.conf and prepares its volumes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AerospikeInitContainerSpec {
    /// Registry of the init image (e.g. a private mirror). The init step runs the operator's own image.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub image_registry: Option<String>,
    /// Namespace within the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub image_registry_namespace: Option<String>,
    /// Image name and tag, replacing the operator image for the init step.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub image_name_and_tag: Option<String>,
    /// Security context of the init container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<SecurityContext>>")]
    pub security_context: Option<SecurityContext>,
    /// Resources of the init container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<ResourceRequirements>>")]
    pub resources: Option<ResourceRequirements>,
}

/// Additional configuration of the Aerospike pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AerospikePodSpec {
    /// The aerospike-server container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aerospike_container: Option<AerospikeContainerSpec>,
    /// The aerospike-init container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aerospike_init_container: Option<AerospikeInitContainerSpec>,
    /// Labels and annotations for the pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMetaTemplate>,
    /// Sidecar containers added to each pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::k8s::<Vec<Container>>")]
    pub sidecars: Vec<Container>,
    /// Init containers run after the operator's own init step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::k8s::<Vec<Container>>")]
    pub init_containers: Vec<Container>,
    #[serde(flatten)]
    pub scheduling: SchedulingPolicy,
    /// Allow several Aerospike pods on one Kubernetes node (no per-host anti-affinity). Immutable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_pod_per_host: Option<bool>,
    /// Use the node's network namespace. Requires multiPodPerHost false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    /// Pod DNS policy; defaults to ClusterFirstWithHostNet with hostNetwork, else ClusterFirst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "dns_policy")]
    pub dns_policy: Option<String>,
    /// Effective DNS policy written by the reference's webhook (accepted for compatibility). Read under its
    /// former misspelt name too.
    #[serde(rename = "effectiveDNSPolicy", alias = "effectiveDnsPolicy", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub effective_dns_policy: Option<String>,
    /// DNS parameters in addition to those from dnsPolicy; required with dnsPolicy None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<PodDNSConfig>>")]
    pub dns_config: Option<PodDNSConfig>,
    /// Pod-level security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<PodSecurityContext>>")]
    pub security_context: Option<PodSecurityContext>,
    /// Secrets used to pull the images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::k8s::<Vec<LocalObjectReference>>")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

fn dns_policy(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]})
}

impl AerospikePodSpec {
    pub fn multi_pod_per_host(&self) -> bool {
        self.multi_pod_per_host.unwrap_or(false)
    }
}
