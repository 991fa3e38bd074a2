//! Watch scopes, crash safety, leader election and an API server restart, each against a real control plane.
//! The tests of this binary run one at a time: the all-namespaces operator would otherwise meet the clusters
//! of the other tests, and an API server restart would disturb them.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aerospike_kubernetes_operator::controller::Scope;
use aerospike_kubernetes_operator::leader;
use aerospike_kubernetes_operator::metrics::Metrics;
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

/// resourceVersion of every object the operator writes for the clusters of `ns` (their status included), by kind and
/// name.
async fn written_objects(client: &kube::Client, ns: &str) -> std::collections::BTreeMap<String, String> {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{ConfigMap, Service};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use kube::ResourceExt;
    use kube::api::ListParams;
    let lp = ListParams::default();
    let mut out = std::collections::BTreeMap::new();
    let mut add = |kind: &str, items: Vec<(String, Option<String>)>| {
        for (name, rv) in items {
            out.insert(format!("{kind}/{name}"), rv.unwrap_or_default());
        }
    };
    let rv = |m: &kube::api::ObjectMeta| (m.name.clone().unwrap_or_default(), m.resource_version.clone());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    add(
        "ConfigMap",
        cms.list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .filter(|o| o.name_any() != "kube-root-ca.crt")
            .map(|o| rv(&o.metadata))
            .collect(),
    );
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    add("Service", svcs.list(&lp).await.unwrap().items.iter().map(|o| rv(&o.metadata)).collect());
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    add("StatefulSet", sts.list(&lp).await.unwrap().items.iter().map(|o| rv(&o.metadata)).collect());
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    add("PodDisruptionBudget", pdbs.list(&lp).await.unwrap().items.iter().map(|o| rv(&o.metadata)).collect());
    add("AerospikeCluster", api(client, ns).list(&lp).await.unwrap().items.iter().map(|o| rv(&o.metadata)).collect());
    out
}

/// An operator restarted with nothing changed reconciles every cluster again and writes nothing: no ConfigMap,
/// Service, StatefulSet, PodDisruptionBudget or status. (Its first reconciles must not run before its caches hold
/// the objects: it would compare against empty caches and apply everything again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restart_with_nothing_changed_writes_nothing() {
    let _serial = SERIAL.lock().await;
    let env = env("restart-quiet").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let names: Vec<String> = (0..3).map(|i| format!("aero{i}")).collect();
    for name in &names {
        create(&env.client, &env.ns, &cluster_manifest(name, &env.ns, 2)).await;
    }
    for name in &names {
        wait_completed(&env.client, &env.ns, name, T).await;
    }
    // Settled: the same objects at the same versions twice, 2 s apart.
    let mut before = written_objects(&env.client, &env.ns).await;
    let deadline = std::time::Instant::now() + T;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = written_objects(&env.client, &env.ns).await;
        if now == before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the clusters never settled");
        before = now;
    }
    op.abort();

    let metrics = Metrics::default();
    let op = start_operator_with_metrics(&env.client, ns_scope(&env.ns), metrics.clone());
    // Every cluster reconciled by the new operator: its phase gauge is set by each reconcile's status step.
    wait_for("every cluster reconciled after the restart", T, || async {
        let text = metrics.encode();
        let completed = |n: &String| {
            text.lines().any(|l| {
                l.starts_with("aerospike_ako_aerospikecluster_phase{")
                    && l.contains(&format!("cluster_name=\"{n}\""))
                    && l.contains("phase=\"Completed\"")
                    && l.ends_with(" 1")
            })
        };
        names.iter().all(completed).then_some(())
    })
    .await;
    // Reconciles the watches trigger after the first ones (their initial events) have had time to run too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = written_objects(&env.client, &env.ns).await;
    let changed: Vec<&String> = after.keys().filter(|k| before.get(*k) != after.get(*k)).collect();
    assert!(changed.is_empty(), "written after a restart with nothing changed: {changed:?}");
    assert_eq!(before.len(), after.len());
    finish(&env, op).await;
}
