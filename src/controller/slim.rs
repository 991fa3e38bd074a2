//! What the watch caches keep of each object: what the reconciler reads, not what the apiserver sends. Every
//! cached object loses its managedFields (the apiserver's bookkeeping of server-side apply, often larger than
//! the object's own fields, and never read here) and kubectl's last-applied annotation; ConfigMaps also lose
//! their data but for the per-pod records the reconciler reads back (volume entries, network facts): otherwise it
//! only compares the desired-hash annotation that `apply` stamps on them (the rendered configuration is rebuilt
//! from the spec on every reconcile, so a cached copy would hold it twice).
//!
//! Typed, a cached object is several times its JSON (a heap profile at 100 clusters: a pod's spec, its containers'
//! probes, mounts, resources and security contexts above all, was most of the caches' memory), so pods, StatefulSets
//! and Services keep only the spec fields the reconciler reads: a pod its node, its containers' names and images,
//! its init containers' env (node id, volume-entry support) and its claim volumes; a StatefulSet everything but
//! its pod template (compared by the desired hash, never read); a Service its ports (the NodePorts published for
//! each pod). A cached object is never written back (every write is built from the spec), so nothing dropped here
//! can reach the API server.
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodSpec, Service, ServiceSpec, Volume};

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

/// [`slim`], and a pod spec cut to what the reconciler reads (see the module docs).
pub(super) fn slim_pod(pod: &mut Pod) {
    slim(pod);
    let Some(spec) = pod.spec.take() else { return };
    let named = |c: Container| Container { name: c.name, image: c.image, ..Default::default() };
    pod.spec = Some(PodSpec {
        node_name: spec.node_name,
        containers: spec.containers.into_iter().map(named).collect(),
        init_containers: spec
            .init_containers
            .map(|cs| cs.into_iter().map(|mut c| Container { env: c.env.take(), ..named(c) }).collect()),
        // Only claims: the rollout looks for the StatefulSet's claim templates among them, which become claim
        // volumes (a `Volume` is large even empty, with every source inline).
        volumes: spec.volumes.map(|vs| {
            vs.into_iter()
                .filter(|v| v.persistent_volume_claim.is_some())
                .map(|v| Volume {
                    name: v.name,
                    persistent_volume_claim: v.persistent_volume_claim,
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    });
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

    /// A pod as the StatefulSet controller makes it, with the fields the reconciler never reads.
    fn full_pod() -> Pod {
        let probe = serde_json::json!({"tcpSocket": {"port": 3000}, "periodSeconds": 10});
        let container = |name: &str, image: &str| {
            serde_json::json!({
                "name": name, "image": image, "readinessProbe": probe, "livenessProbe": probe,
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                "securityContext": {"privileged": false}, "ports": [{"containerPort": 3000, "name": "service"}],
                "volumeMounts": [{"name": "data", "mountPath": "/opt/aerospike/data"}],
                "env": [{"name": "MY_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            })
        };
        let mut init = container(desired::INIT_CONTAINER_NAME, "init:1");
        init["env"] = serde_json::json!([
            {"name": desired::ENV_RACK_ID, "value": "1"},
            {"name": desired::ENV_RACK_REVISION_INDEX, "value": "0"},
            {"name": desired::ENV_POD_UID, "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        ]);
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "c-1-0", "namespace": "ns", "uid": "u1",
                "labels": {desired::LABEL_RACK: "1", desired::LABEL_CR: "c"},
                "annotations": {desired::ANNOTATION_CONF_HASH: "h1", desired::ANNOTATION_POD_SPEC_HASH: "p1"},
                "managedFields": [{"manager": "kube-controller-manager"}],
            },
            "spec": {
                "nodeName": "n1",
                "containers": [container(desired::SERVER_CONTAINER_NAME, "aerospike:8"), container("exporter", "e:1")],
                "initContainers": [init],
                "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data-c-1-0"}},
                    {"name": "conf", "emptyDir": {}},
                ],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "a"}}}]}},
                "tolerations": [{"key": "k", "operator": "Exists"}],
            },
            "status": {
                "phase": "Running", "podIP": "10.0.0.1", "hostIP": "192.168.0.1",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": desired::SERVER_CONTAINER_NAME, "ready": true, "restartCount": 2,
                    "image": "aerospike:8", "imageID": "", "state": {"running": {}}}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_slim_pod_reads_as_the_full_one() {
        let full = full_pod();
        let mut cut = full.clone();
        slim_pod(&mut cut);
        assert!(serde_json::to_string(&cut).unwrap().len() * 2 < serde_json::to_string(&full).unwrap().len());
        for ignore_sidecars in [false, true] {
            assert_eq!(
                crate::controller::pods::pod_view(&cut, ignore_sidecars),
                crate::controller::pods::pod_view(&full, ignore_sidecars)
            );
        }
        assert!(crate::controller::pods::pod_view(&cut, false).unwrap().image.is_some());
        assert_eq!(desired::pod_node_id(&cut), desired::pod_node_id(&full));
        assert!(desired::pod_node_id(&cut).is_some());
        assert_eq!(crate::controller::pods::node_name(&cut), Some("n1"));
        assert_eq!(crate::controller::pods::server_restarts(&cut), 2);
        let init = |p: &Pod| p.spec.as_ref().unwrap().init_containers.clone().unwrap();
        assert_eq!(init(&cut)[0].env, init(&full)[0].env);
        let claims = |p: &Pod| -> Vec<(String, Option<String>)> {
            let vs = p.spec.as_ref().unwrap().volumes.clone().unwrap();
            vs.into_iter()
                .filter(|v| v.persistent_volume_claim.is_some())
                .map(|v| (v.name, v.persistent_volume_claim.map(|c| c.claim_name)))
                .collect()
        };
        assert_eq!(claims(&cut), claims(&full));
        assert_eq!(claims(&cut).len(), 1);
        assert_eq!(cut.spec.as_ref().unwrap().volumes.as_ref().unwrap().len(), 1);
        assert_eq!((cut.metadata.labels, cut.metadata.annotations), (full.metadata.labels, full.metadata.annotations));
        assert_eq!(cut.status, full.status);
        assert_eq!(cut.metadata.managed_fields, None);
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
