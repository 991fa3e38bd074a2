//! Which Pod Security level a cluster meets, measured by the API server's own Pod Security admission (issue 18,
//! item 11). With `multiPodPerHost: true` a cluster reconciles in a namespace that enforces `baseline`, and the API
//! server's `restricted` verdict on its pods names only what a root Aerospike server needs (a non-root user and the
//! capabilities it keeps), never privilege escalation or a missing seccomp profile. The default cluster (clients
//! reach each pod through a hostPort) needs `privileged`, for the hostPort alone.
mod common;

use std::time::Duration;

use aerospike_kubernetes_operator::api::AerospikeCluster;
use aerospike_kubernetes_operator::desired::{BuildContext, desired_state};
use aerospike_kubernetes_operator::resolve::resolve;
use common::*;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(120);

fn enforce(level: &str) -> Value {
    json!({"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": level, "pod-security.kubernetes.io/enforce-version": "latest"}}})
}

async fn namespace_enforcing(client: &kube::Client, name: &str, level: &str) {
    create_namespace(client, name).await;
    Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(&enforce(level)))
        .await
        .unwrap();
}

/// The API server's verdict on a pod of `manifest`'s first rack in a namespace enforcing `level` (a dry run):
/// None when admitted, else the refusal.
async fn verdict(client: &kube::Client, manifest: &Value, level: &str) -> Option<String> {
    let mut manifest = manifest.clone();
    manifest["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000001"); // owner of what is built
    let cluster: AerospikeCluster = serde_json::from_value(manifest).unwrap();
    let ctx = BuildContext { init_image: "ghcr.io/aerospike-rs/aerospike-kubernetes-operator:test".into() };
    let desired = desired_state(&resolve(&cluster), &ctx).unwrap();
    let template = desired.stateful_sets[0].spec.as_ref().unwrap().template.clone();
    let mut pod = Pod { spec: template.spec, ..Default::default() };
    pod.metadata.name = Some("aero-candidate".into());
    let ns = format!("e2e-pss-{level}");
    namespace_enforcing(client, &ns, level).await;
    let api = Api::<Pod>::namespaced(client.clone(), &ns);
    let answer = api.create(&PostParams { dry_run: true, ..Default::default() }, &pod).await;
    assert!(api.list(&ListParams::default()).await.unwrap().items.is_empty(), "a dry run creates nothing");
    answer.err().map(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_security_levels_of_aerospike_pods() {
    let env = env("e2e-pss").await;
    let mut shared_host = cluster_manifest("aero", &env.ns, 2);
    shared_host["spec"]["podSpec"] = json!({"multiPodPerHost": true});

    // Reconciled for real where `baseline` is enforced.
    Api::<Namespace>::all(env.client.clone())
        .patch(&env.ns, &PatchParams::default(), &Patch::Merge(&enforce("baseline")))
        .await
        .unwrap();
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &shared_host).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    assert_eq!(pods(&env.client, &env.ns, "aero").await.len(), 2);

    // `restricted`: only the root user and the kept capabilities stand in the way.
    let refused = verdict(&env.client, &shared_host, "restricted").await.expect("a root server is not `restricted`");
    assert!(refused.contains("violates PodSecurity \"restricted:latest\""), "{refused}");
    assert!(refused.contains("runAsNonRoot"), "{refused}");
    for never in ["allowPrivilegeEscalation", "seccompProfile", "privileged", "hostPath", "hostPort"] {
        assert!(!refused.contains(never), "the pod should not fail `restricted` on {never}: {refused}");
    }

    // The default cluster: `baseline` refuses the hostPort, and nothing else.
    let default = cluster_manifest("aero", &env.ns, 2);
    let refused = verdict(&env.client, &default, "baseline").await.expect("hostPort is not `baseline`");
    assert!(refused.contains("hostPort"), "{refused}");
    for never in ["privileged", "capabilities", "hostPath", "seccomp"] {
        assert!(!refused.contains(never), "the default pod should not fail `baseline` on {never}: {refused}");
    }
    finish(&env, op).await;
}
