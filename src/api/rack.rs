//! `spec.rackConfig`: rack-aware placement. Each rack becomes one StatefulSet and one ConfigMap.
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;
use super::{SchedulingPolicy, StorageSpec};

/// Racks and the policies that pace changes across them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RackConfig {
    /// Aerospike namespaces that are rack aware (they get `rack-id` in each rack's config).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 63)))]
    pub namespaces: Vec<String>,
    /// The racks; ids are unique. Without racks the cluster runs in one default rack with id 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = racks_by_id, length(max = 1000))]
    pub racks: Vec<Rack>,
    /// Pods of a rack restarted together in a rolling update: a number or a percentage of the rack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<IntOrString>>")]
    pub rolling_update_batch_size: Option<IntOrString>,
    /// Pods of a rack removed together when scaling down: a number or a percentage of the rack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<IntOrString>>")]
    pub scale_down_batch_size: Option<IntOrString>,
    /// Pending or failed pods per rack ignored when judging cluster stability: a number or a percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<IntOrString>>")]
    pub max_ignorable_pods: Option<IntOrString>,
}

fn racks_by_id(s: &mut schemars::Schema) {
    schema::list_map(s, "id");
}

/// A rack's storage: its full schema in the spec; free-form in the status copy of the racks (a copy of the spec's
/// rack storage, which its schema validated), to stay within the CRD size budget.
fn rack_storage(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    if schema::in_copy() { schema::free_form(g) } else { g.subschema_for::<Option<StorageSpec>>() }
}

/// A rack's effective storage: a [`schema::copy`] of the storage schema in the spec; free-form in the status copy.
fn effective_storage(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    if schema::in_copy() { schema::free_form(g) } else { schema::copy::<StorageSpec>(g) }
}

/// One rack: where its pods run and what they override.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rack {
    /// Rack id, unique in the cluster (0 is reserved for the default rack).
    #[schemars(range(min = 1, max = 1000000))]
    pub id: i32,
    /// Zone (topology.kubernetes.io/zone) the rack's pods run in. Immutable.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 63))]
    pub zone: String,
    /// Region (topology.kubernetes.io/region) the rack's pods run in. Immutable.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 63))]
    pub region: String,
    /// Pods run on nodes labelled aerospike.com/rack-label=<rackLabel>. Immutable.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 63))]
    pub rack_label: String,
    /// Pods run on this Kubernetes node. Immutable.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub node_name: String,
    /// Aerospike configuration merged over the global aerospikeConfig for this rack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_form")]
    pub aerospike_config: Option<serde_json::Value>,
    /// Storage for this rack, replacing the global storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "rack_storage")]
    pub storage: Option<StorageSpec>,
    /// Scheduling overrides for this rack's pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_spec: Option<SchedulingPolicy>,
    /// Revision of the rack: changing it replaces the rack's StatefulSet (needed to add or remove persistent
    /// volumes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 20))]
    pub revision: String,
    /// Remove this rack's nodes from the strong-consistency roster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_block_from_roster: Option<bool>,
    /// Effective values written by the (reference's or our) defaulting webhook; accepted so exported manifests
    /// apply unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_form")]
    pub effective_aerospike_config: Option<serde_json::Value>,
    /// The rack's storage after defaults (a copy of the schema of `storage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "effective_storage")]
    pub effective_storage: Option<serde_json::Value>,
    /// The rack's scheduling after defaults (a copy of the schema of `podSpec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy::<SchedulingPolicy>")]
    pub effective_pod_spec: Option<serde_json::Value>,
}
