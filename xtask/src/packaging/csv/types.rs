//! The ClusterServiceVersion (operators.coreos.com/v1alpha1) and its editable base as typed values.
use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::RuleWithOperations;
use k8s_openapi::api::apps::v1::DeploymentSpec;
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterServiceVersion {
    pub api_version: String,
    pub kind: String,
    pub metadata: CsvMetadata,
    pub spec: CsvSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CsvMetadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CsvSpec {
    pub display_name: String,
    pub description: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skips: Vec<String>,
    pub min_kube_version: String,
    pub maturity: String,
    pub provider: Provider,
    pub maintainers: Vec<Maintainer>,
    pub links: Vec<Link>,
    pub keywords: Vec<String>,
    pub icon: Vec<Icon>,
    pub install_modes: Vec<InstallMode>,
    pub install: Install,
    pub customresourcedefinitions: CrdDescriptions,
    pub related_images: Vec<RelatedImage>,
    /// Admission webhooks OLM creates for us: it mints the serving certificate, mounts it at the operator's
    /// default --webhook-cert-dir, creates the Service and the configurations scoped to the OperatorGroup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhookdefinitions: Vec<WebhookDefinition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDefinition {
    #[serde(rename = "type")]
    pub type_: String,
    pub generate_name: String,
    pub deployment_name: String,
    pub container_port: i32,
    pub target_port: i32,
    pub webhook_path: String,
    pub admission_review_versions: Vec<String>,
    pub failure_policy: String,
    pub side_effects: String,
    pub timeout_seconds: i32,
    pub rules: Vec<RuleWithOperations>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Maintainer {
    pub name: String,
    pub email: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub name: String,
    pub url: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Icon {
    pub base64data: String,
    pub mediatype: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct InstallMode {
    #[serde(rename = "type")]
    pub type_: String,
    pub supported: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Install {
    pub strategy: String,
    pub spec: StrategySpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StrategySpec {
    pub deployments: Vec<NamedDeployment>,
    pub permissions: Vec<Permissions>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_permissions: Vec<Permissions>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct NamedDeployment {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label: BTreeMap<String, String>,
    pub spec: DeploymentSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    pub service_account_name: String,
    pub rules: Vec<PolicyRule>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CrdDescriptions {
    #[serde(default)]
    pub owned: Vec<CrdDescription>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrdDescription {
    pub name: String,
    pub version: String,
    pub kind: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spec_descriptors: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_descriptors: Vec<Descriptor>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceReference {
    pub kind: String,
    pub name: String,
    pub version: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Descriptor {
    pub path: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(rename = "x-descriptors", default, skip_serializing_if = "Vec::is_empty")]
    pub x_descriptors: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RelatedImage {
    pub name: String,
    pub image: String,
}

// ---------------------------------------------------------------------------------------------------------------
// The editable base: what people write about the operator (everything else comes from the code).

/// config/manifests/csv-base.yaml: CSV metadata a human edits. Unknown fields are refused, so a typo names the
/// field instead of being silently dropped.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvBase {
    pub metadata: BaseMetadata,
    pub spec: BaseSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BaseMetadata {
    /// capabilities, categories, description, repository, support, ... (alm-examples, containerImage, createdAt
    /// and olm.skipRange are generated).
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaseSpec {
    pub display_name: String,
    pub description: String,
    pub maturity: String,
    pub provider: Provider,
    pub maintainers: Vec<Maintainer>,
    pub links: Vec<Link>,
    pub keywords: Vec<String>,
    pub icon: Vec<Icon>,
    /// Display names, descriptions, resources and descriptors of the owned CRDs. Top-level spec and status
    /// fields that have no descriptor here get one generated from the CRD schema.
    pub customresourcedefinitions: CrdDescriptions,
}
