//! Access control, network access policy, operator client certificates and extra Services.
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ObjectMetaTemplate;
use super::schema;

/// Roles and users the operator creates in Aerospike (security enabled).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessControlSpec {
    /// Client policy of admin operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_policy: Option<AdminPolicy>,
    /// Roles; names are unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = by_name)]
    pub roles: Vec<RoleSpec>,
    /// Users; names are unique. One user needs the sys-admin and user-admin roles.
    #[schemars(transform = by_name)]
    pub users: Vec<UserSpec>,
}

fn by_name(s: &mut schemars::Schema) {
    schema::list_map(s, "name");
}

fn set(s: &mut schemars::Schema) {
    schema::list_set(s);
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AdminPolicy {
    /// Timeout of admin operations in milliseconds.
    #[schemars(range(min = 0))]
    pub timeout: i64,
}

/// An Aerospike role and its privileges.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleSpec {
    /// Role name.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Privileges, e.g. read-write or read.test (privilege.namespace.set).
    #[schemars(transform = set, inner(length(max = 128)))]
    pub privileges: Vec<String>,
    /// Addresses allowed for this role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = set, inner(length(max = 64)))]
    pub whitelist: Vec<String>,
    /// Read quota in records per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub read_quota: Option<u32>,
    /// Write quota in records per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub write_quota: Option<u32>,
}

/// An Aerospike user whose password comes from a Secret (key `password`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    /// User name.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Secret in the cluster's namespace holding the password under the key `password`.
    #[serde(default)]
    #[schemars(length(max = 253))]
    pub secret_name: String,
    /// Roles granted to the user.
    #[schemars(transform = set, inner(length(max = 63)))]
    pub roles: Vec<String>,
    /// Internal (password) or PKIOnly (certificate) authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "auth_mode")]
    pub auth_mode: Option<String>,
}

fn auth_mode(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["Internal", "PKIOnly"]})
}

fn network_type(default: &str) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["pod", "hostInternal", "hostExternal", "configuredIP", "customInterface"],
        "default": default,
        "x-ako-default": true
    })
}

/// Network type defaulting to hostInternal (access, tlsAccess), as in the reference's schema.
fn host_internal(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    network_type("hostInternal")
}

/// Network type defaulting to hostExternal (alternateAccess, tlsAlternateAccess), as in the reference's schema.
fn host_external(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    network_type("hostExternal")
}

fn fabric_type(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["customInterface"]})
}

/// Which addresses the Aerospike nodes advertise to clients.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct NetworkPolicy {
    /// Access address type (default hostInternal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "host_internal")]
    pub access: Option<String>,
    #[serde(rename = "customAccessNetworkNames", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1), inner(length(max = 253)))]
    pub custom_access_network_names: Vec<String>,
    /// Alternate access address type (default hostExternal).
    #[serde(default, rename = "alternateAccess", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "host_external")]
    pub alternate_access: Option<String>,
    #[serde(rename = "customAlternateAccessNetworkNames", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1), inner(length(max = 253)))]
    pub custom_alternate_access_network_names: Vec<String>,
    /// TLS access address type (default hostInternal).
    #[serde(default, rename = "tlsAccess", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "host_internal")]
    pub tls_access: Option<String>,
    #[serde(rename = "customTLSAccessNetworkNames", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1), inner(length(max = 253)))]
    pub custom_tls_access_network_names: Vec<String>,
    /// TLS alternate access address type (default hostExternal).
    #[serde(default, rename = "tlsAlternateAccess", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "host_external")]
    pub tls_alternate_access: Option<String>,
    #[serde(rename = "customTLSAlternateAccessNetworkNames", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1), inner(length(max = 253)))]
    pub custom_tls_alternate_access_network_names: Vec<String>,
    /// Fabric address type (empty: all interfaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "fabric_type")]
    pub fabric: Option<String>,
    #[serde(rename = "customFabricNetworkNames", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1), inner(length(max = 253)))]
    pub custom_fabric_network_names: Vec<String>,
    /// TLS fabric address type (empty: all interfaces).
    #[serde(default, rename = "tlsFabric", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "fabric_type")]
    pub tls_fabric: Option<String>,
    #[serde(rename = "customTLSFabricNetworkNames", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1), inner(length(max = 253)))]
    pub custom_tls_fabric_network_names: Vec<String>,
}

/// Certificates the operator uses to reach TLS-enabled clusters: the CA that signed the nodes' certificates and,
/// for mutual TLS, its own client certificate and key. One of `secretCertSource` and `certPathInOperator`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorClientCertSpec {
    /// If specified, this name is expected in tls-authenticate-client (the name in the operator's certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub tls_client_name: Option<String>,
    /// Certificates from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_cert_source: Option<SecretCertSource>,
    /// Certificates from paths in the operator's filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_path_in_operator: Option<CertPathInOperator>,
}

/// Certificates in a Secret (keys of its data).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretCertSource {
    /// The Secret with the client certificate and key (and the CA unless caCertsSource names another).
    #[schemars(length(max = 253))]
    pub secret_name: String,
    /// Namespace of the Secret; the cluster's namespace when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 63))]
    pub secret_namespace: String,
    /// Key of the CA certificates (PEM) in the Secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub ca_certs_filename: String,
    /// Key of the client certificate (PEM) in the Secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub client_cert_filename: String,
    /// Key of the client private key (PEM) in the Secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub client_key_filename: String,
    /// Another Secret whose every key is a CA certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certs_source: Option<CaCertsSource>,
}

/// A Secret of CA certificates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaCertsSource {
    #[schemars(length(max = 253))]
    pub secret_name: String,
    /// Namespace of the Secret; the cluster's namespace when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 63))]
    pub secret_namespace: String,
}

/// Certificate files in the operator's filesystem.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertPathInOperator {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 4096))]
    pub ca_certs_path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 4096))]
    pub client_cert_path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 4096))]
    pub client_key_path: String,
}

/// Extra Services through which clients find the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeedsFinderServices {
    /// A LoadBalancer Service `<cluster>-lb` for clients outside Kubernetes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSpec {
    /// Local or Cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "traffic_policy")]
    pub external_traffic_policy: Option<String>,
    /// Annotations of the Service (cloud load-balancer settings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(transform = schema::annotation_values)]
    pub annotations: BTreeMap<String, String>,
    /// Name of the exposed port.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15))]
    pub port_name: Option<String>,
    /// Exposed port; defaults to the target port.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: Option<i32>,
    /// Target port; defaults to the service (or TLS) port of aerospikeConfig.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 65535))]
    pub target_port: Option<i32>,
    /// Client address ranges allowed through the load balancer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 64)))]
    pub load_balancer_source_ranges: Vec<String>,
}

fn traffic_policy(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["Local", "Cluster"]})
}

/// Metadata customisation of a Service the operator creates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ServiceSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMetaTemplate>,
}

/// Validation switches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = require_skip_work_dir_validate)]
pub struct ValidationPolicy {
    /// Do not require the work directory on a persistent volume.
    #[serde(default)]
    pub skip_work_dir_validate: bool,
    /// Do not require the XDR digest log on a persistent volume.
    #[serde(default)]
    pub skip_xdr_dlog_file_validate: bool,
}

/// The reference requires skipWorkDirValidate (its schema default supplies it); parsing stays lenient.
fn require_skip_work_dir_validate(s: &mut schemars::Schema) {
    s.insert("required".into(), serde_json::json!(["skipWorkDirValidate"]));
}

/// An on-demand operation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationSpec {
    /// WarmRestart (restart the server process) or PodRestart (recreate the pod).
    #[schemars(schema_with = "operation_kind")]
    pub kind: String,
    /// Identifier of this operation; a new id runs the operation again.
    #[schemars(length(min = 1, max = 20))]
    pub id: String,
    /// Pods to operate on; all pods when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 253)))]
    pub pod_list: Vec<String>,
}

fn operation_kind(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["WarmRestart", "PodRestart"]})
}
