//! What the watch caches keep of each object: what the reconciler reads, not what the apiserver sends. Every
//! cached object loses its managedFields (the apiserver's bookkeeping of server-side apply, often larger than
//! the object's own fields, and never read here) and kubectl's last-applied annotation; ConfigMaps also lose
//! their data but for the per-pod records the reconciler reads back (volume entries, network facts): otherwise it
//! only compares the desired-hash annotation that `apply` stamps on them (the rendered configuration is rebuilt
//! from the spec on every reconcile, so a cached copy would hold it twice).
//!
//! Typed, a cached object is several times its JSON (a heap profile at 100 clusters: a pod's spec, its containers'
//! probes, mounts, resources and security contexts above all, was most of the caches' memory), so pods, StatefulSets
//! and Services keep only the fields the reconciler reads: a pod its node, its containers' names and images, three
//! of its init containers' env variables (node id, volume-entry support), its claim volumes, and of its status the
//! phase, IPs, conditions and container states without their messages; a StatefulSet everything but
//! its pod template (compared by the desired hash, never read); a Service its ports (the NodePorts published for
//! each pod). A cached object is never written back (every write is built from the spec), so nothing dropped here
//! can reach the API server.
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodCondition, PodSpec, PodStatus, Service, ServiceSpec, Volume,
};

use crate::desired::{self, pod_network};

/// ConfigMap keys the reconciler reads back from its cache.
const KEPT_KEYS: [&str; 2] = [desired::CM_VOLUMES_KEY, pod_network::CM_POD_NETWORK_KEY];
/// Init-container env variables the reconciler reads back: the node id's inputs (`desired::pod_node_id`) and the
/// mark of a pod-init that reads volume entries (`volume_init`). The other fifteen were most of a cached pod.
const KEPT_INIT_ENV: [&str; 3] = [desired::ENV_RACK_ID, desired::ENV_RACK_REVISION_INDEX, desired::ENV_POD_UID];
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
        init_containers: spec.init_containers.map(|cs| {
            cs.into_iter()
                .map(|mut c| {
                    let env = c.env.take().map(|mut env| {
                        env.retain(|e| KEPT_INIT_ENV.contains(&e.name.as_str()));
                        env
                    });
                    Container { env, ..named(c) }
                })
                .collect()
        }),
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
    pod.status = pod.status.take().map(slim_pod_status);
}

/// What `pods`, `volume_init` and the status read of a pod's status: its phase and IPs, its conditions' type, status,
/// reason and time, and its containers' readiness, restarts and state (a waiting reason, an exit code).
fn slim_pod_status(st: PodStatus) -> PodStatus {
    let condition = |c: PodCondition| PodCondition {
        type_: c.type_,
        status: c.status,
        reason: c.reason,
        // How long the pod has been Ready (`rollout::starting_nodes`).
        last_transition_time: c.last_transition_time,
        ..Default::default()
    };
    let container = |c: ContainerStatus| ContainerStatus {
        name: c.name,
        ready: c.ready,
        restart_count: c.restart_count,
        state: c.state.map(|s| ContainerState {
            running: s.running,
            waiting: s.waiting.map(|w| ContainerStateWaiting { reason: w.reason, message: None }),
            terminated: s.terminated.map(|t| ContainerStateTerminated {
                exit_code: t.exit_code,
                reason: t.reason,
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    PodStatus {
        phase: st.phase,
        pod_ip: st.pod_ip,
        host_ip: st.host_ip,
        conditions: st.conditions.map(|cs| cs.into_iter().map(condition).collect()),
        init_container_statuses: st.init_container_statuses.map(|cs| cs.into_iter().map(container).collect()),
        container_statuses: st.container_statuses.map(|cs| cs.into_iter().map(container).collect()),
        ..Default::default()
    }
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
            {"name": desired::ENV_CLUSTER_NAME, "value": "c"},
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
                "qosClass": "Burstable", "startTime": "2026-01-01T00:00:00Z",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "PodScheduled", "status": "True", "message": "placed"},
                ],
                "initContainerStatuses": [{"name": desired::INIT_CONTAINER_NAME, "ready": false, "restartCount": 0,
                    "image": "init:1", "imageID": "sha256:1",
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": "x".repeat(500)}}}],
                "containerStatuses": [
                    {"name": desired::SERVER_CONTAINER_NAME, "ready": true, "restartCount": 2,
                        "image": "aerospike:8", "imageID": "sha256:2", "containerID": "containerd://3",
                        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                        "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}},
                    {"name": "exporter", "ready": false, "restartCount": 9, "image": "e:1", "imageID": "",
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}},
                ],
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
        let init_env = |p: &Pod| -> Vec<String> {
            let init = p.spec.as_ref().unwrap().init_containers.clone().unwrap();
            init[0].env.iter().flatten().map(|e| e.name.clone()).collect()
        };
        assert_eq!(init_env(&cut), KEPT_INIT_ENV);
        assert_eq!(init_env(&full).len(), KEPT_INIT_ENV.len() + 1);
        // The status as the readers see it.
        let failed = |p: &Pod, sidecars| crate::controller::pods::failure(p, sidecars);
        assert_eq!(failed(&cut, false), Some("CrashLoopBackOff".to_string()));
        assert_eq!((failed(&cut, false), failed(&cut, true)), (failed(&full, false), failed(&full, true)));
        assert!(super::super::volume_init::init_done(&cut));
        let ips = |p: &Pod| p.status.as_ref().map(|s| (s.pod_ip.clone(), s.host_ip.clone(), s.phase.clone()));
        assert_eq!(ips(&cut), ips(&full));
        let json = |p: &Pod| serde_json::to_string(&p.status).unwrap();
        assert!(json(&cut).len() * 2 < json(&full).len(), "{}", json(&cut));
        let now = k8s_openapi::jiff::Timestamp::from_second(1_767_225_630).unwrap();
        let starting =
            |p: &Pod| format!("{:?}", super::super::rollout::starting_nodes([(p, None)].into_iter(), &[], now));
        assert!(starting(&cut).contains("ready_for: 30s"), "{}", starting(&cut));
        assert_eq!(starting(&cut), starting(&full));
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
