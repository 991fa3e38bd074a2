//! A pod as the watch cache keeps it: the fields the reconciler reads, deserialized straight from the API server's
//! JSON (everything else is skipped while parsing, never built).
//!
//! Why a type of its own: `k8s_openapi`'s `Pod` is 2.4 KB before any of its content, a `Container` 2.1 KB, an
//! `EnvVar` 360 bytes, whatever they hold. In a heap profile of a 300-cluster creation the cached pods were 10.5 of
//! the caches' 25.5 MB even with their spec cut down (`slim`), and parsing every field of every pod event was the
//! bulk of the watch's allocations. The field names and types follow the API's, so code reads `pod.status.pod_ip`
//! either way. A cached pod is never written back: writes to pods are built from names and annotations.
use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use serde::{Deserialize, Deserializer, Serialize};

use crate::desired;

/// Init-container env variables kept: the node id's inputs (`desired::pod_node_id`) and the mark of a pod-init that
/// reads volume entries (`volume_init`).
const KEPT_INIT_ENV: [&str; 3] = [desired::ENV_RACK_ID, desired::ENV_RACK_REVISION_INDEX, desired::ENV_POD_UID];

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct CachedPod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: Option<CachedPodSpec>,
    pub status: Option<CachedPodStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedPodSpec {
    pub node_name: Option<String>,
    #[serde(default)]
    pub containers: Vec<CachedContainer>,
    pub init_containers: Option<Vec<CachedContainer>>,
    /// Claim volumes only: the rollout looks for the StatefulSet's claim templates among them.
    #[serde(default, deserialize_with = "claim_volumes")]
    pub volumes: Option<Vec<CachedVolume>>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedContainer {
    #[serde(default)]
    pub name: String,
    pub image: Option<String>,
    /// Only [`KEPT_INIT_ENV`] (of any container; only the init container's are read).
    #[serde(default, deserialize_with = "kept_env")]
    pub env: Option<Vec<CachedEnvVar>>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct CachedEnvVar {
    #[serde(default)]
    pub name: String,
    /// A literal value (a `valueFrom` reference reads as None, as it does in the API's `EnvVar`).
    pub value: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedVolume {
    #[serde(default)]
    pub name: String,
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedPodStatus {
    pub phase: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "hostIP")]
    pub host_ip: Option<String>,
    pub conditions: Option<Vec<CachedPodCondition>>,
    pub init_container_statuses: Option<Vec<CachedContainerStatus>>,
    pub container_statuses: Option<Vec<CachedContainerStatus>>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedPodCondition {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub status: String,
    pub reason: Option<String>,
    /// How long the pod has been Ready (`rollout::starting_nodes`).
    pub last_transition_time: Option<Time>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedContainerStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restart_count: i32,
    pub state: Option<CachedContainerState>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct CachedContainerState {
    pub waiting: Option<CachedWaiting>,
    pub terminated: Option<CachedTerminated>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct CachedWaiting {
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedTerminated {
    #[serde(default)]
    pub exit_code: i32,
    pub reason: Option<String>,
}

fn kept_env<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<CachedEnvVar>>, D::Error> {
    let env: Option<Vec<CachedEnvVar>> = Option::deserialize(d)?;
    Ok(env.map(|mut env| {
        env.retain(|e| KEPT_INIT_ENV.contains(&e.name.as_str()));
        env
    }))
}

fn claim_volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<CachedVolume>>, D::Error> {
    let volumes: Option<Vec<CachedVolume>> = Option::deserialize(d)?;
    Ok(volumes.map(|mut vs| {
        vs.retain(|v| v.persistent_volume_claim.is_some());
        vs
    }))
}

/// The API's pod kind: a watch or list of `Api<CachedPod>` reads pods.
impl Resource for CachedPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        <Pod as Resource>::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        <Pod as Resource>::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        <Pod as Resource>::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        <Pod as Resource>::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What the pure functions of `desired` read of a pod.
impl desired::PodRead for CachedPod {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn node_name(&self) -> Option<&str> {
        self.spec.as_ref()?.node_name.as_deref()
    }
    fn host_ip(&self) -> Option<&str> {
        self.status.as_ref()?.host_ip.as_deref()
    }
    fn init_env(&self, container: &str, key: &str) -> Option<&str> {
        let init = self.spec.as_ref()?.init_containers.as_ref()?.iter().find(|c| c.name == container)?;
        init.env.as_ref()?.iter().find(|e| e.name == key)?.value.as_deref()
    }
}

/// A pod from the API read as the cache reads it (through its JSON, as the watch does). For tests that build pods.
#[cfg(test)]
impl From<Pod> for CachedPod {
    fn from(pod: Pod) -> CachedPod {
        serde_json::from_value(serde_json::to_value(pod).expect("a pod serialises")).expect("a pod reads as cached")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod as the StatefulSet controller makes it, with the fields the reconciler never reads.
    fn full_pod() -> serde_json::Value {
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
        serde_json::json!({
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
        })
    }

    #[test]
    fn a_cached_pod_reads_as_the_api_pod() {
        let (full, cached): (Pod, CachedPod) =
            (serde_json::from_value(full_pod()).unwrap(), serde_json::from_value(full_pod()).unwrap());
        let kept = serde_json::to_string(&cached).unwrap();
        for gone in ["readinessProbe", "securityContext", "imageID", "MY_POD_NAME", "emptyDir", "affinity", "qosClass"]
        {
            assert!(!kept.contains(gone), "{gone} in {kept}");
        }
        // What the pure functions read, from either type.
        assert_eq!(desired::pod_node_id(&cached), desired::pod_node_id(&full));
        assert!(desired::pod_node_id(&cached).is_some());
        let node = k8s_openapi::api::core::v1::Node::default();
        let net = |p: &dyn Fn() -> Option<desired::pod_network::PodNetwork>| p();
        assert_eq!(
            net(&|| desired::pod_network::pod_network(&cached, Some(&node), None, false)),
            net(&|| desired::pod_network::pod_network(&full, Some(&node), None, false))
        );
        // What the controller reads, against the API pod's own fields.
        let view = crate::controller::pods::pod_view(&cached, false).unwrap();
        assert_eq!((view.name.as_str(), view.rack_id, view.ordinal, view.ready), ("c-1-0", 1, 0, true));
        assert_eq!(view.image.as_deref(), Some("aerospike:8"));
        assert_eq!((view.conf_hash.as_deref(), view.pod_spec_hash.as_deref()), (Some("h1"), Some("p1")));
        assert_eq!(crate::controller::pods::node_name(&cached), Some("n1"));
        assert_eq!(crate::controller::pods::server_restarts(&cached), 2);
        let init_env: Vec<&str> = cached.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0]
            .env
            .iter()
            .flatten()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(init_env, KEPT_INIT_ENV);
        let failed = |sidecars| crate::controller::pods::failure(&cached, sidecars);
        // The exporter sidecar crash-loops: a failure unless sidecars are ignored.
        assert_eq!((failed(false), failed(true)), (Some("CrashLoopBackOff".to_string()), None));
        assert!(super::super::volume_init::init_done(&cached));
        let st = cached.status.as_ref().unwrap();
        assert_eq!(
            (st.pod_ip.as_deref(), st.host_ip.as_deref(), st.phase.as_deref()),
            (Some("10.0.0.1"), Some("192.168.0.1"), Some("Running"))
        );
        let now = k8s_openapi::jiff::Timestamp::from_second(1_767_225_630).unwrap();
        let starting = format!("{:?}", super::super::rollout::starting_nodes([(&cached, None)].into_iter(), &[], now));
        assert!(starting.contains("ready_for: 30s"), "{starting}");
        let claims: Vec<(&str, &str)> = cached
            .spec
            .as_ref()
            .unwrap()
            .volumes
            .iter()
            .flatten()
            .map(|v| (v.name.as_str(), v.persistent_volume_claim.as_ref().unwrap().claim_name.as_str()))
            .collect();
        assert_eq!(claims, [("data", "data-c-1-0")]);
        assert_eq!(
            (&cached.metadata.labels, &cached.metadata.annotations),
            (&full.metadata.labels, &full.metadata.annotations)
        );
        // The watch's own path: kube reads pods of `Api<CachedPod>` at the pods' URL.
        use kube::Resource as _;
        assert_eq!(CachedPod::url_path(&(), Some("ns")), Pod::url_path(&(), Some("ns")));
        assert_eq!(CachedPod::api_version(&()), "v1");
    }
}
