//! What the watch caches keep of each object: what the reconciler reads, not what the apiserver sends. Every
//! cached object loses its managedFields (the apiserver's bookkeeping of server-side apply, often larger than
//! the object's own fields, and never read here) and kubectl's last-applied annotation; ConfigMaps also lose
//! their data but for the per-pod records the reconciler reads back (volume entries, network facts): otherwise it
//! only compares the desired-hash annotation that `apply` stamps on them (the rendered configuration is rebuilt
//! from the spec on every reconcile, so a cached copy would hold it twice).
//!
//! Typed, a cached object is several times its JSON (a heap profile at 100 clusters: a pod's spec, its containers'
//! probes, mounts, resources and security contexts above all, was most of the caches' memory), so StatefulSets and
//! Services keep only the fields the reconciler reads: a StatefulSet everything but its pod template (compared by
//! the desired hash, never read); a Service its ports (the NodePorts published for each pod). Pods are cached as a
//! type of their own that holds only what is read (`cached_pod`). A cached object is never written back (every
//! write is built from the spec), so nothing dropped here can reach the API server.
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceSpec};

use crate::desired::{self, pod_network};

/// ConfigMap keys the reconciler reads back from its cache.
const KEPT_KEYS: [&str; 2] = [desired::CM_VOLUMES_KEY, pod_network::CM_POD_NETWORK_KEY];
use kube::Resource;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops the metadata the reconciler never reads.
pub(super) fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// [`slim`], and the data (see the module docs).
pub(super) fn slim_config_map(cm: &mut ConfigMap) {
    slim(cm);
    if let Some(data) = cm.data.as_mut() {
        data.retain(|k, _| KEPT_KEYS.contains(&k.as_str()));
    }
    cm.data = cm.data.take().filter(|d| !d.is_empty());
    cm.binary_data = None;
}

/// [`slim`], and no pod template (see the module docs).
pub(super) fn slim_stateful_set(sts: &mut StatefulSet) {
    slim(sts);
    if let Some(spec) = sts.spec.as_mut() {
        spec.template = Default::default();
    }
}

/// [`slim`], and a spec of ports alone (see the module docs).
pub(super) fn slim_service(svc: &mut Service) {
    slim(svc);
    if let Some(spec) = svc.spec.take() {
        svc.spec = Some(ServiceSpec { ports: spec.ports, type_: spec.type_, ..Default::default() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
    use std::collections::BTreeMap;

    fn meta() -> ObjectMeta {
        ObjectMeta {
            name: Some("c".into()),
            annotations: Some(BTreeMap::from([
                (LAST_APPLIED.to_string(), "{}".to_string()),
                ("aerospike.com/desired-hash".to_string(), "h".to_string()),
            ])),
            managed_fields: Some(vec![ManagedFieldsEntry::default()]),
            ..Default::default()
        }
    }

    #[test]
    fn slim_keeps_the_desired_hash_and_drops_bookkeeping() {
        let mut cm = ConfigMap {
            metadata: meta(),
            data: Some(BTreeMap::from([
                ("aerospike.template.conf".to_string(), "x".repeat(1000)),
                (pod_network::CM_POD_NETWORK_KEY.to_string(), "{}".to_string()),
            ])),
            ..Default::default()
        };
        slim_config_map(&mut cm);
        assert_eq!(cm.metadata.managed_fields, None);
        assert_eq!(
            cm.metadata.annotations,
            Some(BTreeMap::from([("aerospike.com/desired-hash".to_string(), "h".to_string())]))
        );
        // Only what the reconciler reads back stays.
        assert_eq!(cm.data, Some(BTreeMap::from([(pod_network::CM_POD_NETWORK_KEY.to_string(), "{}".to_string())])));
        let mut bare =
            ConfigMap { data: Some(BTreeMap::from([("peers".to_string(), "a".to_string())])), ..Default::default() };
        slim_config_map(&mut bare);
        assert_eq!(bare.data, None);
        assert_eq!(cm.metadata.name.as_deref(), Some("c"));
    }

    #[test]
    fn a_slim_stateful_set_keeps_replicas_claims_and_status() {
        let full: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c-1", "generation": 3, "annotations": {"aerospike.com/desired-hash": "h"}},
            "spec": {
                "replicas": 3, "serviceName": "c", "selector": {"matchLabels": {"a": "b"}},
                "template": {"spec": {"containers": [{"name": "x", "image": "i"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Block"}}],
            },
            "status": {"replicas": 3, "observedGeneration": 3},
        }))
        .unwrap();
        let mut cut = full.clone();
        slim_stateful_set(&mut cut);
        let (spec, full_spec) = (cut.spec.as_ref().unwrap(), full.spec.as_ref().unwrap());
        assert_eq!(spec.template, Default::default());
        assert_eq!(
            (spec.replicas, &spec.volume_claim_templates),
            (full_spec.replicas, &full_spec.volume_claim_templates)
        );
        assert_eq!((&cut.status, &cut.metadata.annotations), (&full.status, &full.metadata.annotations));
    }

    #[test]
    fn a_slim_service_keeps_its_ports() {
        let full: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c-1-0"},
            "spec": {"type": "NodePort", "selector": {"a": "b"}, "clusterIP": "10.1.1.1",
                "ports": [{"name": "service", "port": 3000, "nodePort": 30001}]},
        }))
        .unwrap();
        let mut cut = full.clone();
        slim_service(&mut cut);
        let spec = cut.spec.unwrap();
        assert_eq!(spec.ports, full.spec.as_ref().unwrap().ports);
        assert_eq!(spec.selector, None);
    }
}
