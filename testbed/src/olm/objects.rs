//! OLM's objects: typed access to its kinds, server-side apply, CatalogSource and OperatorGroup builders, status
//! readers.

use anyhow::{Context, Result};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use super::FIELD_MANAGER;

/// OLM's kinds this project uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OlmKind {
    CatalogSource,
    OperatorGroup,
    Subscription,
    InstallPlan,
    ClusterServiceVersion,
    OperatorCondition,
}

impl OlmKind {
    pub fn api_resource(self) -> ApiResource {
        let (version, kind, plural) = match self {
            OlmKind::CatalogSource => ("v1alpha1", "CatalogSource", "catalogsources"),
            OlmKind::OperatorGroup => ("v1", "OperatorGroup", "operatorgroups"),
            OlmKind::Subscription => ("v1alpha1", "Subscription", "subscriptions"),
            OlmKind::InstallPlan => ("v1alpha1", "InstallPlan", "installplans"),
            OlmKind::ClusterServiceVersion => ("v1alpha1", "ClusterServiceVersion", "clusterserviceversions"),
            OlmKind::OperatorCondition => ("v2", "OperatorCondition", "operatorconditions"),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("operators.coreos.com", version, kind), plural)
    }
}

/// An API of an OLM kind, in `namespace` (`None`: all namespaces).
pub fn olm_api(client: &Client, kind: OlmKind, namespace: Option<&str>) -> Api<DynamicObject> {
    let ar = kind.api_resource();
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// The API of the AerospikeCluster custom resource.
pub fn aerospike_clusters(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("asdb.aerospike.com", "v1", "AerospikeCluster"),
        "aerospikeclusters",
    );
    Api::namespaced_with(client.clone(), namespace, &ar)
}

/// Server-side applies any object given as JSON (apiVersion, kind, metadata.name, metadata.namespace if
/// namespaced), as [`FIELD_MANAGER`], forcing conflicts.
pub async fn apply(client: &Client, obj: &Value) -> Result<DynamicObject> {
    let api_version = obj["apiVersion"].as_str().context("object without apiVersion")?;
    let kind = obj["kind"].as_str().context("object without kind")?;
    let name = obj["metadata"]["name"].as_str().context("object without metadata.name")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(obj))
        .await
        .with_context(|| format!("applying {kind} {name}"))
}

/// Creates a namespace unless it exists.
pub async fn ensure_namespace(client: &Client, name: &str) -> Result<()> {
    apply(client, &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})).await.map(drop)
}

/// A CatalogSource served from `address` (no image, no pod).
pub fn catalog_source(name: &str, namespace: &str, address: &str) -> Value {
    json!({
        "apiVersion": "operators.coreos.com/v1alpha1",
        "kind": "CatalogSource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "sourceType": "grpc",
            "address": address,
            "displayName": "Aerospike Kubernetes Operator",
            "publisher": "aerospike-rs",
        }
    })
}

/// An OperatorGroup: `targets` `None` for AllNamespaces (no targetNamespaces).
pub fn operator_group(name: &str, namespace: &str, targets: Option<&[&str]>) -> Value {
    let spec = match targets {
        Some(t) => json!({"targetNamespaces": t}),
        None => json!({}),
    };
    json!({
        "apiVersion": "operators.coreos.com/v1",
        "kind": "OperatorGroup",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// `status.connectionState.lastObservedState` of a CatalogSource (READY, CONNECTING, TRANSIENT_FAILURE, ...).
pub fn catalog_source_state(source: &DynamicObject) -> String {
    source.data["status"]["connectionState"]["lastObservedState"].as_str().unwrap_or("").to_string()
}

/// `status.phase` of a CSV.
pub fn csv_phase(csv: &DynamicObject) -> String {
    csv.data["status"]["phase"].as_str().unwrap_or("").to_string()
}

/// The CSV's `metadata.annotations["alm-examples"]`, parsed.
pub fn alm_examples(csv: &DynamicObject) -> Result<Vec<Value>> {
    let text = csv.annotations().get("alm-examples").context("the CSV has no alm-examples annotation")?;
    serde_json::from_str(text).context("parsing the CSV's alm-examples")
}

/// `status.phase` of an AerospikeCluster.
pub fn cluster_phase(cluster: &DynamicObject) -> String {
    cluster.data["status"]["phase"].as_str().unwrap_or("").to_string()
}
