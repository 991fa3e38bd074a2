//! The cluster-level and per-rack objects around the pod template: Services, ConfigMaps, StatefulSets, PDB.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use serde_json::Value;

use super::*;
use crate::aerospike_conf;
use crate::api::{AerospikeCluster, ObjectMetaTemplate};

/// Name, namespace and owner reference shared by every object of a cluster.
#[derive(Clone, Debug)]
pub(crate) struct ClusterMeta {
    pub name: String,
    pub namespace: String,
    pub owner: OwnerReference,
}

impl ClusterMeta {
    pub(crate) fn of(cluster: &AerospikeCluster) -> Result<Self, BuildError> {
        let name = cluster.metadata.name.clone().ok_or_else(|| BuildError::invalid("metadata.name", "missing"))?;
        let namespace =
            cluster.metadata.namespace.clone().ok_or_else(|| BuildError::invalid("metadata.namespace", "missing"))?;
        let owner = cluster.controller_owner_ref(&()).ok_or_else(|| BuildError::invalid("metadata.uid", "missing"))?;
        Ok(ClusterMeta { name, namespace, owner })
    }

    /// Metadata of an object: `labels` win over the user's labels from `extra`.
    fn object_meta(
        &self,
        name: String,
        labels: BTreeMap<String, String>,
        extra: Option<&ObjectMetaTemplate>,
    ) -> ObjectMeta {
        let extra = extra.cloned().unwrap_or_default();
        let mut all = extra.labels;
        all.extend(labels);
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(all),
            annotations: (!extra.annotations.is_empty()).then_some(extra.annotations),
            owner_references: Some(vec![self.owner.clone()]),
            ..Default::default()
        }
    }
}

fn service_port(name: &str, port: u16) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port: i32::from(port),
        target_port: Some(IntOrString::Int(i32::from(port))),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    }
}

/// The client ports of a config: `service` (plain) and `tls-service`.
fn client_ports(config: &Value) -> Vec<ServicePort> {
    let mut ports = Vec::new();
    if aerospike_conf::has_plain_service_port(config) {
        ports.push(service_port("service", aerospike_conf::service_port(config)));
    }
    if let Some((_, p)) = aerospike_conf::service_tls(config) {
        ports.push(service_port("tls-service", p));
    }
    ports
}

fn global_config(cluster: &AerospikeCluster, first_rack: Option<&Value>) -> Value {
    cluster.spec.aerospike_config.clone().or_else(|| first_rack.cloned()).unwrap_or(Value::Null)
}

/// The headless Service `<cluster>`: stable pod DNS names (`<pod>.<cluster>.<namespace>`), also for pods that
/// are not ready yet (Aerospike nodes must find each other before they are ready).
pub(crate) fn headless_service(cluster: &AerospikeCluster, meta: &ClusterMeta, first_rack: Option<&Value>) -> Service {
    let extra = cluster.spec.headless_service.as_ref().and_then(|s| s.metadata.as_ref());
    Service {
        metadata: meta.object_meta(meta.name.clone(), common_labels(&meta.name), extra),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(&meta.name)),
            ports: Some(client_ports(&global_config(cluster, first_rack))),
            ..Default::default()
        }),
        status: None,
    }
}

/// The seeds LoadBalancer Service `<cluster>-lb`, when spec.seedsFinderServices.loadBalancer is set.
pub(crate) fn lb_service(
    cluster: &AerospikeCluster,
    meta: &ClusterMeta,
    first_rack: Option<&Value>,
) -> Option<Service> {
    let lb = cluster.spec.seeds_finder_services.as_ref()?.load_balancer.as_ref()?;
    let config = global_config(cluster, first_rack);
    let target = lb.target_port.unwrap_or_else(|| match aerospike_conf::service_tls(&config) {
        Some((_, p)) => i32::from(p),
        None => i32::from(aerospike_conf::service_port(&config)),
    });
    let extra = ObjectMetaTemplate { annotations: lb.annotations.clone(), labels: BTreeMap::new() };
    Some(Service {
        metadata: meta.object_meta(format!("{}-lb", meta.name), common_labels(&meta.name), Some(&extra)),
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".to_string()),
            selector: Some(selector_labels(&meta.name)),
            external_traffic_policy: lb.external_traffic_policy.clone(),
            load_balancer_source_ranges: (!lb.load_balancer_source_ranges.is_empty())
                .then(|| lb.load_balancer_source_ranges.clone()),
            ports: Some(vec![ServicePort {
                name: Some(lb.port_name.clone().unwrap_or_else(|| "aerospike".to_string())),
                port: lb.port.unwrap_or(target),
                target_port: Some(IntOrString::Int(target)),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    })
}

/// The PodDisruptionBudget `<cluster>` over all pods of the cluster, unless spec.disablePDB.
pub(crate) fn pdb(cluster: &AerospikeCluster, meta: &ClusterMeta) -> Option<PodDisruptionBudget> {
    if cluster.spec.disable_pdb.unwrap_or(false) {
        return None;
    }
    Some(PodDisruptionBudget {
        metadata: meta.object_meta(meta.name.clone(), common_labels(&meta.name), None),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(cluster.spec.max_unavailable()),
            selector: Some(LabelSelector { match_labels: Some(selector_labels(&meta.name)), ..Default::default() }),
            ..Default::default()
        }),
        status: None,
    })
}

/// Sorted FQDNs of every pod of the cluster, one per line.
pub(crate) fn peers(meta: &ClusterMeta, racks: &[RackState]) -> String {
    let mut all: Vec<String> = racks
        .iter()
        .flat_map(|r| (0..r.size).map(move |o| pod_fqdn(&format!("{}-{o}", r.name), &meta.name, &meta.namespace)))
        .collect();
    all.sort();
    all.join("\n")
}

/// The rack ConfigMap `<cluster>-<rackId>[-<revision>]`: the template pod-init reads, the peers, the hashes.
pub(crate) fn config_map(meta: &ClusterMeta, rack: &RackState, peers: &str, network_policy_hash: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta.object_meta(rack.name.clone(), rack_labels(&meta.name, rack.id), None),
        data: Some(BTreeMap::from([
            (CM_TEMPLATE_KEY.to_string(), rack.conf.clone()),
            (CM_PEERS_KEY.to_string(), peers.to_string()),
            (CM_CONF_HASH_KEY.to_string(), rack.conf_hash.clone()),
            (CM_NETWORK_POLICY_HASH_KEY.to_string(), network_policy_hash.to_string()),
            (CM_POD_SPEC_HASH_KEY.to_string(), rack.pod_spec_hash.clone()),
            // Filled by the controller from the pods and claims it observes (see `with_pod_volumes`).
            (CM_VOLUMES_KEY.to_string(), "{}".to_string()),
            (CM_CLEANUP_THREADS_KEY.to_string(), rack.storage.cleanup_threads.unwrap_or(1).max(1).to_string()),
        ])),
        ..Default::default()
    }
}

/// `cm` with the per-pod volume entries (the controller's observations) under [`CM_VOLUMES_KEY`].
pub fn with_pod_volumes(mut cm: ConfigMap, entries: &BTreeMap<String, PodVolumes>) -> ConfigMap {
    let text = serde_json::to_string(entries).expect("pod volume entries serialise");
    cm.data.get_or_insert_with(Default::default).insert(CM_VOLUMES_KEY.to_string(), text);
    cm
}

/// The rack StatefulSet: Parallel pod management and OnDelete updates (the operator decides every restart).
pub(crate) fn stateful_set(
    meta: &ClusterMeta,
    rack: &RackState,
    template: PodTemplateSpec,
    claims: Vec<PersistentVolumeClaim>,
) -> StatefulSet {
    StatefulSet {
        metadata: meta.object_meta(rack.name.clone(), rack_labels(&meta.name, rack.id), None),
        spec: Some(StatefulSetSpec {
            replicas: Some(rack.size),
            service_name: Some(meta.name.clone()),
            pod_management_policy: Some("Parallel".to_string()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_string()),
                rolling_update: None,
            }),
            selector: LabelSelector {
                match_labels: Some(rack_selector_labels(&meta.name, rack.id)),
                ..Default::default()
            },
            template,
            volume_claim_templates: (!claims.is_empty()).then_some(claims),
            ..Default::default()
        }),
        status: None,
    }
}
