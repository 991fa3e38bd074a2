//! Watch scopes, crash safety, leader election and an API server restart, each against a real control plane.
//! The tests of this binary run one at a time: the all-namespaces operator would otherwise meet the clusters
//! of the other tests, and an API server restart would disturb them.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aerospike_kubernetes_operator::controller::Scope;
use aerospike_kubernetes_operator::leader;
use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use tokio::sync::Mutex;

const T: Duration = Duration::from_secs(120);
static SERIAL: Mutex<()> = Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_scopes_one_list_and_all_namespaces() {
    let _serial = SERIAL.lock().await;
    let a = env("scope-a").await;
    let b = env("scope-b").await;
    let c = env("scope-c").await;
    for e in [&a, &b, &c] {
        create(&e.client, &e.ns, &cluster_manifest("aero", &e.ns, 2)).await;
    }
    // A list of two namespaces (MultiNamespace); one namespace alone is the same code path with one entry.
    let op = start_operator(&a.client, Scope::parse("scope-a, scope-b"));
    wait_completed(&a.client, "scope-a", "aero", T).await;
    wait_completed(&b.client, "scope-b", "aero", T).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(stateful_sets(&c.client, "scope-c", "aero").await.is_empty(), "outside the scope nothing is touched");
    assert!(api(&c.client, "scope-c").get("aero").await.unwrap().status.is_none(), "not even status");
    op.abort();
    // All namespaces (AllNamespaces; WATCH_NAMESPACE empty).
    assert_eq!(Scope::parse(""), Scope::All);
    let op = start_operator(&a.client, Scope::All);
    wait_completed(&c.client, "scope-c", "aero", T).await;
    for e in [&a, &b] {
        finish(e, tokio::spawn(async {})).await;
    }
    finish(&c, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_killed_mid_rollout_finishes_without_restarting_a_pod_twice() {
    let _serial = SERIAL.lock().await;
    let env = env("crash").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 4)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    let mut watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "aero", 4).await;
    patch_spec(&env.client, &env.ns, "aero", json!({"image": IMAGE_NEW})).await;
    // Kill the operator right after its first restart batch.
    let deadline = std::time::Instant::now() + T;
    while !watch.uids.values().any(|u| u.len() > 1) {
        assert!(std::time::Instant::now() < deadline, "no pod restarted within {T:?}");
        watch.observe(&env.client, &env.ns, "aero", 4).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    op.abort();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    watch.until_completed(&env.client, &env.ns, "aero", 4, T).await;
    for (pod, uids) in &watch.uids {
        assert_eq!(uids.len(), 2, "{pod} restarted exactly once across the operator restart:\n{}", watch.describe(pod));
    }
    assert!(pods(&env.client, &env.ns, "aero").await.iter().all(|p| image(p) == IMAGE_NEW));
    finish(&env, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_with_leader_election_only_one_acts_and_the_other_takes_over() {
    let _serial = SERIAL.lock().await;
    let env = env("leader").await;
    let mut leaders = Vec::new();
    for id in ["replica-1", "replica-2"] {
        let leading = Arc::new(AtomicBool::new(false));
        let (client, ns, flag) = (env.client.clone(), env.ns.clone(), leading.clone());
        let task = tokio::spawn(async move {
            let _leadership = leader::acquire(client.clone(), &ns, id).await.expect("election");
            flag.store(true, Ordering::SeqCst);
            start_operator(&client, Scope::Namespaces(vec![ns])).await.ok();
        });
        leaders.push((id, leading, task));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 2)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    let acting: Vec<_> = leaders.iter().filter(|(_, l, _)| l.load(Ordering::SeqCst)).map(|(id, _, _)| *id).collect();
    assert_eq!(acting, vec!["replica-1"], "exactly one replica leads");
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let holder = leases.get(leader::LEASE_NAME).await.unwrap().spec.unwrap().holder_identity;
    assert_eq!(holder.as_deref(), Some("replica-1"));

    // The leader dies without releasing the Lease; the standby takes over once it expires and acts.
    let (_, _, first) = leaders.remove(0);
    first.abort();
    let (_, second_leading, second) = leaders.remove(0);
    wait_for("the standby to take over", Duration::from_secs(60), || {
        let f = second_leading.clone();
        async move { f.load(Ordering::SeqCst).then_some(()) }
    })
    .await;
    patch_spec(&env.client, &env.ns, "aero", json!({"size": 3})).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    assert_eq!(pods(&env.client, &env.ns, "aero").await.len(), 3);
    finish(&env, second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_restart_during_a_rollout_converges() {
    let _serial = SERIAL.lock().await;
    let env = env("apiserver").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 3)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    let mut watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "aero", 3).await;
    patch_spec(&env.client, &env.ns, "aero", json!({"image": IMAGE_NEW})).await;
    cluster().await.restart_apiserver_after(Duration::from_secs(3)).await.expect("apiserver restarts");
    let env = Env { client: cluster().await.client().await, ns: env.ns.clone(), sim: env.sim };
    watch.until_completed(&env.client, &env.ns, "aero", 3, T).await;
    assert!(watch.uids.values().all(|u| u.len() <= 2), "no pod restarted twice: {:?}", watch.uids);
    assert!(pods(&env.client, &env.ns, "aero").await.iter().all(|p| image(p) == IMAGE_NEW));
    finish(&env, op).await;
}

/// A bad image: the first pod restarted onto it cannot pull it (the plane's kwok reports ImagePullBackOff for
/// repositories named does-not-exist) and the rollout stops there, before any other pod. Setting the image back
/// heals the cluster with no manual pod deletion: the failed pod is replaced with the current spec at once, though
/// it never became ready (a normal restart would wait for it forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_image_set_back_heals_without_deleting_a_pod_by_hand() {
    use kube::ResourceExt;
    const BAD: &str = "registry.example/does-not-exist/aerospike-server-enterprise:7.2.0.1";
    let env = env("e2e-bad-image").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("heal", &env.ns, 3)).await;
    wait_completed(&env.client, &env.ns, "heal", T).await;

    patch_spec(&env.client, &env.ns, "heal", json!({"image": BAD})).await;
    let failed = wait_for("a pod stuck pulling the bad image", T, || async {
        let pods = pods(&env.client, &env.ns, "heal").await;
        pods.into_iter().find(|p| {
            image(p) == BAD
                && p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref())
                            == Some("ImagePullBackOff")
                    })
                })
        })
    })
    .await;
    // The rollout stops at the failed pod: the others keep the old image.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let on_bad = pods(&env.client, &env.ns, "heal").await.iter().filter(|p| image(p) == BAD).count();
    assert_eq!(on_bad, 1, "only the first pod got the bad image");

    patch_spec(&env.client, &env.ns, "heal", json!({"image": IMAGE_OLD})).await;
    wait_completed(&env.client, &env.ns, "heal", T).await;
    let now = pods(&env.client, &env.ns, "heal").await;
    assert!(now.iter().all(|p| image(p) == IMAGE_OLD && ready(p)), "healed");
    let replaced = now.iter().find(|p| p.name_any() == failed.name_any()).unwrap();
    assert_ne!(replaced.uid(), failed.uid(), "the failed pod was replaced by the operator");
    let events = event_reasons(&env.client, &env.ns, "heal").await;
    assert!(events.iter().any(|(r, _)| r == "FailedPodReplaced"), "{events:?}");
    finish(&env, op).await;
}

/// `maxIgnorablePods: 1`: a pod crash-looping on the current spec does not hold up the rollout of the other rack,
/// and the safety checks hold the Aerospike cluster to the nodes that run (the crashed one has left it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_ignorable_pods_lets_a_rollout_go_past_a_crash_looping_pod() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::ResourceExt;
    use kube::api::{Patch, PatchParams};
    let env = env("e2e-ignorable").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut manifest = cluster_manifest("ign", &env.ns, 4);
    manifest["spec"]["rackConfig"] =
        json!({"namespaces": ["test"], "racks": [{"id": 1}, {"id": 2}], "maxIgnorablePods": 1});
    create(&env.client, &env.ns, &manifest).await;
    wait_completed(&env.client, &env.ns, "ign", T).await;

    // ign-1-0 crash-loops (as a kubelet would report it); its node leaves the Aerospike cluster.
    let pod_api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let crash = json!({"status": {
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [{"name": "aerospike-server", "image": IMAGE_OLD, "imageID": "", "ready": false,
            "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
    }});
    pod_api.patch_status("ign-1-0", &PatchParams::default(), &Patch::Merge(&crash)).await.unwrap();
    env.sim.wait_for_members(&env.ns, "ign", 3, T).await.unwrap();
    let crashed_uid = pod_api.get("ign-1-0").await.unwrap().uid();

    // A config change of rack 2 rolls rack 2 although ign-1-0 is not ready.
    let rack2_before: Vec<_> = pods(&env.client, &env.ns, "ign")
        .await
        .iter()
        .filter(|p| p.name_any().starts_with("ign-2-"))
        .map(|p| p.uid())
        .collect();
    let racks = json!([{"id": 1}, {"id": 2, "aerospikeConfig": {"service": {"proto-fd-max": 20000}}}]);
    patch_spec(&env.client, &env.ns, "ign", json!({"rackConfig": {"racks": racks}})).await;
    wait_for("rack 2 rolled onto the new config", T, || async {
        let now = pods(&env.client, &env.ns, "ign").await;
        let rack2: Vec<_> = now.iter().filter(|p| p.name_any().starts_with("ign-2-")).collect();
        (rack2.len() == 2 && rack2.iter().all(|p| ready(p) && !rack2_before.contains(&p.uid()))).then_some(())
    })
    .await;
    assert_eq!(pod_api.get("ign-1-0").await.unwrap().uid(), crashed_uid, "the ignored pod was left alone");
    let c = api(&env.client, &env.ns).get("ign").await.unwrap();
    assert_ne!(
        c.status.and_then(|s| s.phase),
        Some(aerospike_kubernetes_operator::api::Phase::Completed),
        "not complete while a pod fails"
    );
    finish(&env, op).await;
}
