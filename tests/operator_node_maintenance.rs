//! Node maintenance (issue 11) on the local control plane: a node drain through the Eviction API, as `kubectl drain`
//! does it, with the operator's eviction webhook registered; and spec.k8sNodeBlockList moving only the pods on the
//! listed nodes. The webhook server runs in this process (self-signed, registered by URL on loopback) on a thread
//! of its own, so it outlives each test's runtime; this test binary owns its control plane.
mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use ako_simulator::What;
use common::*;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::api::{EvictParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const T: Duration = Duration::from_secs(120);
const WEBHOOK_NS: &str = "e2e-maint-operator";

/// Starts (once) the webhook server on a thread of its own and returns when the API server calls it: an invalid
/// AerospikeCluster is refused by the validating webhook registered in the same configuration as the eviction one.
fn webhooks() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| serve_webhooks(WEBHOOK_NS, || async { Ok(cluster().await.client().await) }));
}

/// A client that, like kubectl, does not retry a 429 itself (kube's default client does): the caller sees each
/// refusal, as `kubectl drain` does before it retries.
async fn kubectl_like_client() -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster().await.kubeconfig_path()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    config.default_retry = false;
    Client::try_from(config).unwrap()
}

fn node_of(p: &Pod) -> String {
    p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
}

async fn cordon(client: &Client, node: &str, unschedulable: bool) {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(node, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"unschedulable": unschedulable}})))
        .await
        .unwrap();
}

/// The cluster's pods on `node`, as `kubectl drain` lists them (field selector on spec.nodeName).
async fn pods_on(client: &Client, ns: &str, cluster: &str, node: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp =
        ListParams::default().labels(&format!("aerospike.com/cr={cluster}")).fields(&format!("spec.nodeName={node}"));
    api.list(&lp).await.unwrap().items
}

/// `kubectl drain` of a node hosting an Aerospike pod: the node is cordoned, the eviction of the pod is refused (429,
/// which kubectl drain retries) with a message saying why and what happens, the operator moves the pod itself (quiesced
/// first, after the safety checks), the retried drain finds no Aerospike pod left on the node, the pod runs on another
/// node, the others were never touched, and the cluster ends Completed. A retried eviction of the moved pod is told
/// it is gone (404: kubectl drain ends without an error) and never deletes it; once the node is back, 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_gives_up_its_aerospike_pod_only_through_the_operator() {
    webhooks();
    let env = env("e2e-drain").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 3)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    env.sim.wait_for_members(&env.ns, "aero", 3, T).await.unwrap();

    let before: BTreeMap<String, (String, String)> = pods(&env.client, &env.ns, "aero")
        .await
        .iter()
        .map(|p| (p.name_any(), (p.uid().unwrap(), node_of(p))))
        .collect();
    let drained = "aero-0-1";
    let (old_uid, node) = before[drained].clone();
    let pod_api: Api<Pod> = Api::namespaced(kubectl_like_client().await, &env.ns);

    // Not cordoned: refused, and nothing recorded (the operator moves nothing off a schedulable node).
    let Err(kube::Error::Api(e)) = pod_api.evict(drained, &EvictParams::default()).await else {
        panic!("the eviction of {drained} on an uncordoned node was allowed");
    };
    assert_eq!(e.code, 403, "{e:?}");
    assert!(e.message.contains("vaerospikeeviction.kb.io") && e.message.contains("not cordoned"), "{}", e.message);
    let p = pod_api.get(drained).await.unwrap();
    assert!(!p.annotations().contains_key("aerospike.com/eviction-blocked"), "recorded on an uncordoned node");

    // kubectl drain: cordon, then evict every pod on the node, retrying on 429, until none is left.
    cordon(&env.client, &node, true).await;
    let mut observer = RolloutObserver::new();
    let mut refusals = Vec::new();
    let deadline = std::time::Instant::now() + T;
    loop {
        observer.observe(&env.client, &env.ns, "aero", 3).await;
        let left = pods_on(&env.client, &env.ns, "aero", &node).await;
        if left.is_empty() {
            break;
        }
        for p in &left {
            match pod_api.evict(&p.name_any(), &EvictParams::default()).await {
                // Evictions go by name: when the operator's move finished after this list, the eviction meets the
                // new incarnation on another node and is told the pod is gone (404), as when it is gone between the
                // list and the eviction: kubectl drain counts both done.
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    if e.message.contains("already moved") {
                        assert!(e.message.contains(&format!("off cordoned node {node}")), "{}", e.message);
                    }
                }
                Err(kube::Error::Api(e)) => refusals.push((e.code, e.message)),
                // Allowed only once the operator is deleting it (this list may predate that).
                Ok(_) => {
                    let now = pod_api.get_opt(&p.name_any()).await.unwrap();
                    let deleting = now.is_none_or(|n| n.uid() != p.uid() || n.metadata.deletion_timestamp.is_some());
                    assert!(deleting, "{} evicted while running", p.name_any());
                }
                Err(e) => panic!("{e}"),
            }
        }
        let names: Vec<String> = left.iter().map(|p| p.name_any()).collect();
        assert!(std::time::Instant::now() < deadline, "the drain left {names:?} on {node}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!refusals.is_empty(), "the eviction was refused until the operator had moved the pod");
    for (code, msg) in &refusals {
        assert_eq!(*code, 429, "{msg}");
        assert!(msg.contains(&format!("Aerospike pod {}/{drained} (AerospikeCluster aero)", env.ns)), "{msg}");
        assert!(msg.contains(&format!("cordoned node {node}")) && msg.contains("retry"), "{msg}");
    }

    // The pod runs again on another node; the cluster completes; the others were never restarted.
    let moved = wait_for("the drained pod Ready on another node", T, || async {
        let p = pod_api.get_opt(drained).await.unwrap()?;
        (p.uid().as_deref() != Some(old_uid.as_str()) && ready(&p)).then_some(p)
    })
    .await;
    assert_ne!(node_of(&moved), node);
    observer.until_completed(&env.client, &env.ns, "aero", 3, T).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    for p in pods(&env.client, &env.ns, "aero").await {
        if p.name_any() != drained {
            assert_eq!(p.uid().unwrap(), before[&p.name_any()].0, "{} was restarted", p.name_any());
        }
    }
    assert_eq!(observer.uids[drained].len(), 2, "{}", observer.describe(drained));
    assert!(observer.max_unavailable <= 1, "{} pods were down at once", observer.max_unavailable);

    // No data loss: the old incarnation was quiesced (after the cluster-stable and migration checks on every node)
    // before it left; the new one joined.
    let history = env.sim.history_for(&format!("{}/{drained}", env.ns));
    let of_old: Vec<&What> = history.iter().filter(|r| r.uid == old_uid).map(|r| &r.what).collect();
    let quiesced = of_old.iter().position(|w| matches!(w, What::Command { command, .. } if command == "quiesce:"));
    let left = of_old.iter().position(|w| matches!(w, What::Left));
    assert!(quiesced.is_some() && quiesced < left, "{drained} left before it was quiesced: {of_old:?}");
    for other in before.keys().filter(|n| *n != drained) {
        let asked = env.sim.commands_for(&format!("{}/{other}", env.ns));
        assert!(asked.iter().any(|c| c.starts_with("cluster-stable")), "{other} was not asked: {asked:?}");
    }
    env.sim.wait_for_members(&env.ns, "aero", 3, T).await.unwrap();
    let events = event_reasons(&env.client, &env.ns, "aero").await;
    assert!(events.iter().any(|(r, m)| r == "PodRestarted" && m.contains("cordoned")), "{events:?}");

    // A retried eviction of the moved pod (kubectl drain retries by name, every 5 s): while the drained node is
    // cordoned, it is told the pod is gone (404 ends kubectl's retries without an error); the pod is not touched.
    let Err(kube::Error::Api(e)) = pod_api.evict(drained, &EvictParams::default()).await else {
        panic!("the moved pod was evicted from its new node");
    };
    assert_eq!(e.code, 404, "{e:?}");
    assert!(e.message.contains(&format!("already moved off cordoned node {node}")), "{}", e.message);
    assert_eq!(pod_api.get(drained).await.unwrap().uid(), moved.uid());

    // Once the node is back, an eviction of the pod is refused as on any schedulable node.
    cordon(&env.client, &node, false).await;
    let Err(kube::Error::Api(e)) = pod_api.evict(drained, &EvictParams::default()).await else {
        panic!("the moved pod was evicted from its new node");
    };
    assert_eq!(e.code, 403, "{e:?}");
    assert_eq!(pod_api.get(drained).await.unwrap().uid(), moved.uid());

    finish(&env, op).await;
}

/// spec.k8sNodeBlockList: adding the node of one pod moves that pod only (through the rollout's safety checks), with its
/// local-storage claim released although deleteLocalStorageOnRestart is off; the other pods keep their uids and
/// claims, and the list restarts nothing by itself (the pod-spec hash ignores it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_node_moves_only_its_own_pod() {
    webhooks();
    let env = env("e2e-blocklist").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut m = cluster_manifest("blk", &env.ns, 3);
    m["spec"]["storage"] = json!({
        "localStorageClasses": ["local-nvme"],
        "volumes": [
            {"name": "data", "aerospike": {"path": "/opt/aerospike/data"},
             "source": {"persistentVolume": {"storageClass": "local-nvme", "volumeMode": "Filesystem", "size": "1Gi"}}},
            {"name": "workdir", "aerospike": {"path": "/opt/aerospike"},
             "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}}}
        ]
    });
    create(&env.client, &env.ns, &m).await;
    wait_completed(&env.client, &env.ns, "blk", T).await;
    let before: BTreeMap<String, (String, String)> = pods(&env.client, &env.ns, "blk")
        .await
        .iter()
        .map(|p| (p.name_any(), (p.uid().unwrap(), node_of(p))))
        .collect();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), &env.ns);
    let claims = || async {
        let list = pvcs.list(&ListParams::default().labels("aerospike.com/cr=blk")).await.unwrap().items;
        list.into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| (p.name_any(), p.uid().unwrap()))
            .collect::<BTreeMap<String, String>>()
    };
    let claims_before = claims().await;
    assert_eq!(claims_before.len(), 6, "{claims_before:?}");

    let blocked_pod = "blk-0-2";
    let (old_uid, node) = before[blocked_pod].clone();
    patch_spec(&env.client, &env.ns, "blk", json!({"k8sNodeBlockList": [node]})).await;
    let mut observer = RolloutObserver::new();
    let pod_api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let deadline = std::time::Instant::now() + T;
    let moved = loop {
        observer.observe(&env.client, &env.ns, "blk", 3).await;
        if let Some(p) = pod_api.get_opt(blocked_pod).await.unwrap()
            && p.uid().as_deref() != Some(old_uid.as_str())
            && ready(&p)
        {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "{blocked_pod} did not move: {}", observer.describe(blocked_pod));
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_ne!(node_of(&moved), node);
    observer.until_completed(&env.client, &env.ns, "blk", 3, T).await;
    wait_completed(&env.client, &env.ns, "blk", T).await;

    for p in pods(&env.client, &env.ns, "blk").await {
        if p.name_any() != blocked_pod {
            assert_eq!(p.uid().unwrap(), before[&p.name_any()].0, "{} was restarted", p.name_any());
            assert_eq!(observer.uids[&p.name_any()].len(), 1, "{}", observer.describe(&p.name_any()));
        }
    }
    let claims_after = wait_for("six claims", T, || async {
        let c = claims().await;
        (c.len() == 6).then_some(c)
    })
    .await;
    for (name, uid) in &claims_before {
        let same = claims_after.get(name) == Some(uid);
        if name == &format!("data-{blocked_pod}") {
            assert!(!same, "{name}: the moved pod's local claim was released");
        } else {
            assert!(same, "{name} was kept");
        }
    }
    let events = event_reasons(&env.client, &env.ns, "blk").await;
    assert_eq!(events.iter().filter(|(r, _)| r == "LocalStorageDeleted").count(), 1, "{events:?}");
    assert_eq!(events.iter().filter(|(r, _)| r == "PodRestarted").count(), 1, "{events:?}");
    // The StatefulSet's template keeps new pods off the node.
    let sts = stateful_sets(&env.client, &env.ns, "blk").await;
    let affinity =
        serde_json::to_string(&sts["blk-0"].spec.as_ref().unwrap().template.spec.as_ref().unwrap().affinity).unwrap();
    assert!(affinity.contains(&format!("\"operator\":\"NotIn\",\"values\":[\"{node}\"]")), "{affinity}");
    finish(&env, op).await;
}
