//! The operator against a real control plane (kube-apiserver, etcd, controllers, scheduler, kwok nodes) and
//! simulated Aerospike nodes that speak the info protocol on each pod's loopback address. Each test has its
//! own namespace, simulator and in-process operator scoped to that namespace.
mod common;

use std::time::Duration;

use aerospike_kubernetes_operator::api::Phase;
use ako_simulator::{Fault, FaultTarget, What};
use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolumeClaim, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const T: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_three_nodes_reaches_completed_then_upgrade_rolls_each_pod_once() {
    let env = env("e2e-create").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 3)).await;
    let c = wait_completed(&env.client, &env.ns, "aero", T).await;

    // 1. Objects, pods and status.
    let svc: Api<Service> = Api::namespaced(env.client.clone(), &env.ns);
    let headless = svc.get("aero").await.expect("headless service");
    assert_eq!(headless.spec.as_ref().unwrap().cluster_ip.as_deref(), Some("None"));
    assert_eq!(headless.spec.as_ref().unwrap().publish_not_ready_addresses, Some(true));
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.ns);
    let cm = cms.get("aero-0").await.expect("rack ConfigMap");
    assert!(cm.data.as_ref().unwrap()["aerospike.template.conf"].contains("cluster-name    aero"));
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(env.client.clone(), &env.ns);
    pdbs.get("aero").await.expect("PodDisruptionBudget");
    let sts = stateful_sets(&env.client, &env.ns, "aero").await;
    assert_eq!(sts.keys().collect::<Vec<_>>(), vec!["aero-0"]);
    let st = c.status.clone().unwrap();
    assert_eq!(st.phase, Some(Phase::Completed));
    assert_eq!(st.observed_generation, c.metadata.generation);
    assert_eq!(condition(&c, "Available").unwrap().0, "True");
    assert_eq!(condition(&c, "Degraded").unwrap().0, "False");
    // The nodes start after their pods are Ready (the simulator starts each once the pod's init step could run):
    // a wait, not a fault. Before, every new cluster got a NodeUnreachable Warning and a 10 s back-off here.
    assert_eq!(warnings_about(&env.client, &env.ns, "aero").await, vec![], "no Warning while the nodes start");
    assert_eq!(st.pods.len(), 3);
    for (name, p) in &st.pods {
        assert!(p.pod_ip.starts_with("127."), "{name} has a loopback IP: {}", p.pod_ip);
        assert!(!p.aerospike.node_id.is_empty() && !p.aerospike_config_hash.is_empty());
    }
    assert_eq!(st.size, Some(3));
    assert_eq!(st.image.as_deref(), Some(IMAGE_OLD));
    env.sim.wait_for_members(&env.ns, "aero", 3, T).await.unwrap();

    // 3. Image upgrade: batch by batch, each pod quiesced first, at most maxUnavailable (1) down, once each.
    let mut watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "aero", 3).await;
    patch_spec(&env.client, &env.ns, "aero", json!({"image": IMAGE_NEW})).await;
    watch.until_completed(&env.client, &env.ns, "aero", 3, T).await;
    for p in pods(&env.client, &env.ns, "aero").await {
        assert_eq!(image(&p), IMAGE_NEW);
    }
    for (pod, uids) in &watch.uids {
        assert_eq!(
            uids.len(),
            2,
            "{pod} restarted exactly once:\n{}\nevents: {:#?}",
            watch.describe(pod),
            event_reasons(&env.client, &env.ns, "aero").await
        );
        let history = env.sim.history_for(&format!("{}/{pod}", env.ns));
        let old = &uids[0];
        let quiesced = history
            .iter()
            .position(|r| &r.uid == old && matches!(&r.what, What::Command { command, .. } if command == "quiesce:"));
        let left = history.iter().position(|r| &r.uid == old && r.what == What::Left);
        assert!(
            quiesced.is_some() && left.is_some() && quiesced < left,
            "{pod} quiesced before its restart: {history:#?}"
        );
    }
    assert!(watch.max_unavailable <= 1, "at most maxUnavailable pods down, saw {}", watch.max_unavailable);
    assert_eq!(warnings_about(&env.client, &env.ns, "aero").await, vec![], "no Warning while restarted nodes start");
    let reasons = event_reasons(&env.client, &env.ns, "aero").await;
    // The Recorder folds repeats into one Event series per related object: one series per restarted pod.
    assert!(reasons.iter().any(|(r, _)| r == "PodRestarted"), "{reasons:?}");
    let mut restarted: Vec<String> = event_relations(&env.client, &env.ns, "aero")
        .await
        .into_iter()
        .filter(|(reason, _)| reason == "PodRestarted")
        .map(|(_, pod)| pod)
        .collect();
    restarted.sort();
    assert_eq!(restarted, watch.uids.keys().cloned().collect::<Vec<_>>(), "a PodRestarted Event names each pod");

    // A reconcile with nothing changed writes nothing: trigger one and compare resourceVersions.
    let before = versions(&env).await;
    let api = api(&env.client, &env.ns);
    api.patch("aero", &PatchParams::default(), &Patch::Merge(&json!({"metadata": {"annotations": {"e2e/poke": "1"}}})))
        .await
        .unwrap();
    let poked = api.get("aero").await.unwrap().resource_version();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(api.get("aero").await.unwrap().resource_version(), poked, "no status write for an unchanged cluster");
    assert_eq!(versions(&env).await, before, "no write to owned objects for an unchanged cluster");
    finish(&env, op).await;
}

/// resourceVersions of every object the operator owns for `aero`.
async fn versions(env: &Env) -> Vec<(String, String)> {
    let lp = ListParams::default().labels("aerospike.com/cr=aero");
    let mut v = Vec::new();
    let sts = stateful_sets(&env.client, &env.ns, "aero").await;
    v.extend(sts.values().map(|s| (format!("sts/{}", s.name_any()), s.resource_version().unwrap())));
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.ns);
    v.extend(
        cms.list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .map(|s| (format!("cm/{}", s.name_any()), s.resource_version().unwrap())),
    );
    let svc: Api<Service> = Api::namespaced(env.client.clone(), &env.ns);
    v.extend(
        svc.list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .map(|s| (format!("svc/{}", s.name_any()), s.resource_version().unwrap())),
    );
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(env.client.clone(), &env.ns);
    v.extend(
        pdbs.list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .map(|s| (format!("pdb/{}", s.name_any()), s.resource_version().unwrap())),
    );
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_then_down_in_batches_only_without_migrations() {
    let env = env("e2e-scale").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 3)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;

    patch_spec(&env.client, &env.ns, "aero", json!({"size": 5})).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    assert_eq!(pods(&env.client, &env.ns, "aero").await.len(), 5);
    env.sim.wait_for_members(&env.ns, "aero", 5, T).await.unwrap();

    // Scale down 5 -> 2: replicas must step 5, 4, 3, 2 (batch 1), each step only after migrations finished.
    patch_spec(&env.client, &env.ns, "aero", json!({"size": 2})).await;
    let mut seen = vec![5];
    let api = api(&env.client, &env.ns);
    let deadline = std::time::Instant::now() + T;
    loop {
        let sts = stateful_sets(&env.client, &env.ns, "aero").await;
        let r = sts["aero-0"].spec.as_ref().unwrap().replicas.unwrap();
        if *seen.last().unwrap() != r {
            seen.push(r);
        }
        let c = api.get("aero").await.unwrap();
        let st = c.status.unwrap_or_default();
        if st.phase == Some(Phase::Completed) && st.observed_generation == c.metadata.generation {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "scale-down did not complete; replicas seen {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, vec![5, 4, 3, 2], "one pod per batch");
    assert_eq!(pods(&env.client, &env.ns, "aero").await.len(), 2);
    // Each removed pod was quiesced before it left.
    for removed in ["aero-0-4", "aero-0-3", "aero-0-2"] {
        let h = env.sim.commands_for(&format!("{}/{removed}", env.ns));
        assert!(h.iter().any(|c| c == "quiesce:"), "{removed} quiesced: {h:?}");
    }
    // The nodes that stay forgot each removed one (heartbeat tip list and alumni), as the reference does.
    for stays in ["aero-0-0", "aero-0-1"] {
        let h = env.sim.commands_for(&format!("{}/{stays}", env.ns));
        for removed in ["aero-0-4", "aero-0-3", "aero-0-2"] {
            let tip = format!("tip-clear:host-port-list={removed}.aero.{}:3002", env.ns);
            assert!(h.contains(&tip), "{stays} got {tip}: {h:?}");
        }
        assert!(h.iter().any(|c| c == "services-alumni-reset"), "{stays}: {h:?}");
    }
    finish(&env, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_change_rolls_pods_onto_the_new_conf() {
    let env = env("e2e-config").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 2)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    let mut watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "aero", 2).await;
    let mut m = cluster_manifest("aero", &env.ns, 2);
    m["spec"]["aerospikeConfig"]["service"]["proto-fd-max"] = json!(20000);
    patch_spec(&env.client, &env.ns, "aero", json!({"aerospikeConfig": m["spec"]["aerospikeConfig"]})).await;
    watch.until_completed(&env.client, &env.ns, "aero", 2, T).await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.ns);
    let cm = cms.get("aero-0").await.unwrap();
    let data = cm.data.unwrap();
    assert!(data["aerospike.template.conf"].contains("proto-fd-max    20000"));
    for p in pods(&env.client, &env.ns, "aero").await {
        assert_eq!(
            p.annotations().get("aerospike.com/conf-hash"),
            Some(&data["aerospikeConfHash"]),
            "{} runs the new conf",
            p.name_any()
        );
    }
    // A config change restarts each server in place, once, one at a time (the pods stay).
    assert!(watch.uids.values().all(|u| u.len() == 1), "no pod replaced: {:?}", watch.uids);
    let mut windows = Vec::new();
    for i in 0..2 {
        let history = env.sim.history_for(&format!("{}/aero-0-{i}", env.ns));
        let warm: Vec<usize> =
            history.iter().enumerate().filter(|(_, r)| r.what == What::WarmRestarted).map(|(i, _)| i).collect();
        assert_eq!(warm.len(), 1, "aero-0-{i} restarted in place once: {history:?}");
        let back = history[warm[0]..].iter().find(|r| matches!(r.what, What::Joined { .. })).expect("rejoined");
        windows.push((history[warm[0]].at, back.at));
    }
    windows.sort();
    assert!(windows[0].1 <= windows[1].0, "one server down at a time: {windows:?}");
    finish(&env, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_racks_across_zones_and_removing_a_rack_drains_it() {
    let env = env("e2e-racks").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut m = cluster_manifest("aero", &env.ns, 3);
    m["spec"]["rackConfig"] = json!({"namespaces": ["test"], "racks": [
        {"id": 1, "zone": "local-a"}, {"id": 2, "zone": "local-b"}, {"id": 3, "zone": "local-c"}]});
    create(&env.client, &env.ns, &m).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    let sts = stateful_sets(&env.client, &env.ns, "aero").await;
    assert_eq!(sts.keys().cloned().collect::<Vec<_>>(), vec!["aero-1", "aero-2", "aero-3"]);
    let nodes: Api<Node> = Api::all(env.client.clone());
    for p in pods(&env.client, &env.ns, "aero").await {
        let rack = p.labels()["aerospike.com/rack-id"].clone();
        let node = nodes.get(p.spec.as_ref().unwrap().node_name.as_ref().unwrap()).await.unwrap();
        let zone = node.labels()["topology.kubernetes.io/zone"].clone();
        let expected = match rack.as_str() {
            "1" => "local-a",
            "2" => "local-b",
            _ => "local-c",
        };
        assert_eq!(zone, expected, "pod {} of rack {rack} runs in its zone", p.name_any());
    }
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.ns);
    assert!(cms.get("aero-2").await.unwrap().data.unwrap()["aerospike.template.conf"].contains("rack-id    2"));

    patch_spec(
        &env.client,
        &env.ns,
        "aero",
        json!({"rackConfig": {"namespaces": ["test"], "racks": [
        {"id": 1, "zone": "local-a"}, {"id": 2, "zone": "local-b"}]}}),
    )
    .await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    wait_for("rack 3 StatefulSet deleted", T, || async {
        let sts = stateful_sets(&env.client, &env.ns, "aero").await;
        (!sts.contains_key("aero-3")).then_some(())
    })
    .await;
    let pods = pods(&env.client, &env.ns, "aero").await;
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p.labels()["aerospike.com/rack-id"] != "3"));
    wait_for("rack 3 ConfigMap deleted", T, || async { cms.get_opt("aero-3").await.unwrap().is_none().then_some(()) })
        .await;
    finish(&env, op).await;
}

fn storage_manifest(name: &str, ns: &str, cascade: bool) -> serde_json::Value {
    let mut m = cluster_manifest(name, ns, 2);
    m["spec"]["storage"] = json!({
        "filesystemVolumePolicy": {"cascadeDelete": cascade, "initMethod": "deleteFiles"},
        "volumes": [{"name": "workdir", "aerospike": {"path": "/opt/aerospike"},
            "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}}}]
    });
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_storage_is_kept_on_delete_unless_cascade_delete() {
    let env = env("e2e-storage").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &storage_manifest("keep", &env.ns, false)).await;
    create(&env.client, &env.ns, &storage_manifest("drop", &env.ns, true)).await;
    wait_completed(&env.client, &env.ns, "keep", T).await;
    wait_completed(&env.client, &env.ns, "drop", T).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), &env.ns);
    let of = |name: &str| ListParams::default().labels(&format!("aerospike.com/cr={name}"));
    for name in ["keep", "drop"] {
        let list = pvcs.list(&of(name)).await.unwrap().items;
        assert_eq!(list.len(), 2, "{name}: one PVC per pod");
        assert!(list.iter().all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")));
    }
    let api = api(&env.client, &env.ns);
    for name in ["keep", "drop"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in ["keep", "drop"] {
        wait_for(&format!("{name} deleted"), T, || async { api.get_opt(name).await.unwrap().is_none().then_some(()) })
            .await;
    }
    wait_for("cascadeDelete PVCs gone", T, || async {
        let left: Vec<_> = pvcs
            .list(&of("drop"))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        left.is_empty().then_some(())
    })
    .await;
    let kept = pvcs.list(&of("keep")).await.unwrap().items;
    assert_eq!(kept.len(), 2, "PVCs without cascadeDelete survive the cluster");
    assert!(kept.iter().all(|p| p.metadata.deletion_timestamp.is_none()));
    finish(&env, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_cluster_changes_nothing_until_resumed() {
    let env = env("e2e-paused").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 2)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    let uids: Vec<_> = pods(&env.client, &env.ns, "aero").await.iter().map(|p| p.uid()).collect();
    patch_spec(&env.client, &env.ns, "aero", json!({"paused": true, "image": IMAGE_NEW, "size": 3})).await;
    let c = wait_for("Progressing=False Paused", T, || async {
        let c = api(&env.client, &env.ns).get("aero").await.ok()?;
        (condition(&c, "Progressing")?.1 == "Paused").then_some(c)
    })
    .await;
    assert_eq!(condition(&c, "Progressing").unwrap().0, "False");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let now: Vec<_> = pods(&env.client, &env.ns, "aero").await.iter().map(|p| p.uid()).collect();
    assert_eq!(now, uids, "no pod changed while paused");
    assert_eq!(stateful_sets(&env.client, &env.ns, "aero").await["aero-0"].spec.as_ref().unwrap().replicas, Some(2));
    patch_spec(&env.client, &env.ns, "aero", json!({"paused": null})).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    let pods = pods(&env.client, &env.ns, "aero").await;
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| image(p) == IMAGE_NEW));
    finish(&env, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_node_or_endless_migrations_stop_the_rollout_before_any_pod_is_deleted() {
    let env = env("e2e-safety").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 3)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    env.sim.wait_for_members(&env.ns, "aero", 3, T).await.unwrap();

    for (fault, target, expect, event) in [
        (Fault::hang(), FaultTarget::pod(&env.ns, "aero-0-1"), "did not answer", "NodeUnreachable"),
        (Fault::stuck_migrations(), FaultTarget::cluster(&env.ns, "aero"), "migrations", "MigrationsPending"),
    ] {
        let uids: Vec<_> = pods(&env.client, &env.ns, "aero").await.iter().map(|p| p.uid()).collect();
        env.sim.set_fault(target, fault);
        let image = if expect == "migrations" { IMAGE_OLD } else { IMAGE_NEW };
        patch_spec(&env.client, &env.ns, "aero", json!({"image": image})).await;
        let c = wait_for("Degraded=True", T, || async {
            let c = api(&env.client, &env.ns).get("aero").await.ok()?;
            (condition(&c, "Degraded")?.0 == "True").then_some(c)
        })
        .await;
        let (_, reason, message) = condition(&c, "Degraded").unwrap();
        assert_eq!(reason, "RollingRestartBlocked");
        assert!(message.contains(expect), "the condition says why: {message}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let now: Vec<_> = pods(&env.client, &env.ns, "aero").await.iter().map(|p| p.uid()).collect();
        assert_eq!(now, uids, "no pod deleted while unsafe");
        let events = event_reasons(&env.client, &env.ns, "aero").await;
        assert!(events.iter().any(|(r, n)| r == event && n.contains(expect)), "{events:?}");
        env.sim.clear_faults();
        let c = wait_completed(&env.client, &env.ns, "aero", T).await;
        assert_eq!(condition(&c, "Degraded").unwrap().0, "False");
        assert!(pods(&env.client, &env.ns, "aero").await.iter().all(|p| self::image_is(p, image)));
    }
    finish(&env, op).await;
}

fn image_is(p: &k8s_openapi::api::core::v1::Pod, want: &str) -> bool {
    image(p) == want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_only_the_operator_can_judge_is_reported_and_other_clusters_keep_going() {
    let env = env("e2e-badinput").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut bad = cluster_manifest("bad", &env.ns, 2);
    bad["spec"]["aerospikeConfig"]["network"]["heartbeat"]["mode"] = json!("multicast");
    create(&env.client, &env.ns, &bad).await;
    create(&env.client, &env.ns, &cluster_manifest("good", &env.ns, 2)).await;
    let c = wait_for("bad cluster in phase Error", T, || async {
        let c = api(&env.client, &env.ns).get("bad").await.ok()?;
        (c.status.as_ref()?.phase == Some(Phase::Error)).then_some(c)
    })
    .await;
    let (status, reason, message) = condition(&c, "Degraded").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "InvalidSpec"));
    assert!(message.contains("aerospikeConfig.network.heartbeat.mode"), "names the field: {message}");
    let events = event_reasons(&env.client, &env.ns, "bad").await;
    assert!(events.iter().any(|(r, _)| r == "InvalidSpec"), "{events:?}");
    assert!(stateful_sets(&env.client, &env.ns, "bad").await.is_empty(), "nothing built from a bad spec");
    wait_completed(&env.client, &env.ns, "good", T).await;
    // Fixing the input recovers.
    let mut fixed = cluster_manifest("bad", &env.ns, 2);
    fixed["spec"]["aerospikeConfig"]["network"]["heartbeat"]["mode"] = json!("mesh");
    patch_spec(&env.client, &env.ns, "bad", json!({"aerospikeConfig": fixed["spec"]["aerospikeConfig"]})).await;
    wait_completed(&env.client, &env.ns, "bad", T).await;
    finish(&env, op).await;
}

/// A cluster with security enabled: the operator's safety checks log in as `admin` (bcrypt of the password, with
/// the fixed salt), first with the password in the admin user's Secret, then with the default one a server keeps
/// until access control changes it (which it does once the cluster is first Completed; see
/// operator_access_control). The rollout goes through either way; with neither accepted it stops before deleting
/// any pod, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_cluster_rolls_after_logging_in_and_an_unknown_password_stops_it() {
    use k8s_openapi::api::core::v1::Secret;
    let env = env("e2e-secured").await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "auth-secret"}, "stringData": {"password": "from-the-secret"}
    }))
    .unwrap();
    secrets.create(&Default::default(), &secret).await.unwrap();
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut manifest = cluster_manifest("sec", &env.ns, 3);
    manifest["spec"]["aerospikeConfig"]["security"] = json!({});
    manifest["spec"]["aerospikeAccessControl"] =
        json!({"users": [{"name": "admin", "secretName": "auth-secret", "roles": ["sys-admin", "user-admin"]}]});
    create(&env.client, &env.ns, &manifest).await;
    wait_completed(&env.client, &env.ns, "sec", T).await;
    env.sim.wait_for_members(&env.ns, "sec", 3, T).await.unwrap();

    // 1. A new server has the default password: the Secret's is refused, the default one is accepted (then access
    //    control gives admin the Secret's password).
    let logins = |pod: &str| -> Vec<String> {
        env.sim
            .history_for(&format!("{}/{pod}", env.ns))
            .into_iter()
            .filter_map(|r| match r.what {
                What::Command { command, .. } if command.starts_with("login:") => Some(command),
                _ => None,
            })
            .collect()
    };
    let mut watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "sec", 3).await;
    patch_spec(&env.client, &env.ns, "sec", json!({"image": IMAGE_NEW})).await;
    watch.until_completed(&env.client, &env.ns, "sec", 3, T).await;
    for (pod, uids) in &watch.uids {
        assert_eq!(uids.len(), 2, "{pod} restarted exactly once:\n{}", watch.describe(pod));
    }
    let seen = logins("sec-0-0");
    assert!(
        seen.windows(2).any(|w| w == ["login:accepted=false", "login:accepted=true"]),
        "the Secret's password first, then the default: {seen:?}"
    );
    // Info was only ever answered after a login: no unauthenticated request got an answer.
    let history = env.sim.history_for(&format!("{}/sec-0-0", env.ns));
    assert!(
        !history
            .iter()
            .any(|r| matches!(&r.what, What::Command { command, answered: false } if !command.starts_with("login:"))),
        "every info request logged in first"
    );

    // 2. The server now has the Secret's password: accepted at the first try.
    env.sim.set_admin_password("from-the-secret");
    let before = logins("sec-0-1").len();
    watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "sec", 3).await;
    patch_spec(&env.client, &env.ns, "sec", json!({"image": IMAGE_OLD})).await;
    watch.until_completed(&env.client, &env.ns, "sec", 3, T).await;
    let after: Vec<String> = logins("sec-0-1").split_off(before);
    assert!(!after.is_empty() && after.iter().all(|l| l == "login:accepted=true"), "{after:?}");

    // 3. Neither password works: nothing is deleted, the condition and an Event say the login was refused.
    env.sim.set_admin_password("changed-behind-our-back");
    let uids: Vec<_> = pods(&env.client, &env.ns, "sec").await.iter().map(|p| p.uid()).collect();
    patch_spec(&env.client, &env.ns, "sec", json!({"image": IMAGE_NEW})).await;
    let c = wait_for("Degraded=True", T, || async {
        let c = api(&env.client, &env.ns).get("sec").await.ok()?;
        (condition(&c, "Degraded")?.0 == "True").then_some(c)
    })
    .await;
    let (_, reason, message) = condition(&c, "Degraded").unwrap();
    assert_eq!(reason, "RollingRestartBlocked");
    assert!(message.contains("login refused with result code 65"), "{message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now: Vec<_> = pods(&env.client, &env.ns, "sec").await.iter().map(|p| p.uid()).collect();
    assert_eq!(now, uids, "no pod deleted without a login");
    let events = event_reasons(&env.client, &env.ns, "sec").await;
    assert!(events.iter().any(|(r, _)| r == "LoginRefused"), "{events:?}");
    env.sim.set_admin_password("admin");
    wait_completed(&env.client, &env.ns, "sec", T).await;
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
        let warm = |p: &&Pod| env.sim.warm_restarts(&format!("{}/{}", env.ns, p.name_any())) == 1;
        (rack2.len() == 2 && rack2.iter().all(|p| ready(p) && rack2_before.contains(&p.uid()) && warm(p))).then_some(())
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

/// `ignoreSidecarFailure: true`: a pod whose sidecar (an exporter, say) crash-loops while the Aerospike server runs
/// does not hold up the rollout of the other rack, and its server stays in the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_sidecar_failure_lets_a_rollout_go_past_a_failing_sidecar() {
    use k8s_openapi::api::core::v1::Pod;
    let env = env("e2e-sidecar").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut manifest = cluster_manifest("side", &env.ns, 4);
    manifest["spec"]["rackConfig"] = json!({"namespaces": ["test"], "racks": [{"id": 1}, {"id": 2}]});
    manifest["spec"]["podSpec"] =
        json!({"sidecars": [{"name": "exporter", "image": "aerospike/aerospike-prometheus-exporter:1.16.1"}]});
    manifest["spec"]["ignoreSidecarFailure"] = json!(true);
    create(&env.client, &env.ns, &manifest).await;
    wait_completed(&env.client, &env.ns, "side", T).await;

    // side-1-0's exporter crash-loops; the pod is not Ready, its server is.
    let pod_api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let failing = json!({"status": {
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [
            {"name": "aerospike-server", "image": IMAGE_OLD, "imageID": "", "ready": true, "restartCount": 0,
             "state": {"running": {}}},
            {"name": "exporter", "image": "aerospike/aerospike-prometheus-exporter:1.16.1", "imageID": "",
             "ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ]
    }});
    pod_api.patch_status("side-1-0", &PatchParams::default(), &Patch::Merge(&failing)).await.unwrap();
    let failing_uid = pod_api.get("side-1-0").await.unwrap().uid();

    let rack2_before: Vec<_> = pods(&env.client, &env.ns, "side")
        .await
        .iter()
        .filter(|p| p.name_any().starts_with("side-2-"))
        .map(|p| p.uid())
        .collect();
    let racks = json!([{"id": 1}, {"id": 2, "aerospikeConfig": {"service": {"proto-fd-max": 20000}}}]);
    patch_spec(&env.client, &env.ns, "side", json!({"rackConfig": {"racks": racks}})).await;
    wait_for("rack 2 rolled onto the new config", T, || async {
        let now = pods(&env.client, &env.ns, "side").await;
        let rack2: Vec<_> = now.iter().filter(|p| p.name_any().starts_with("side-2-")).collect();
        let warm = |p: &&Pod| env.sim.warm_restarts(&format!("{}/{}", env.ns, p.name_any())) == 1;
        (rack2.len() == 2 && rack2.iter().all(|p| ready(p) && rack2_before.contains(&p.uid()) && warm(p))).then_some(())
    })
    .await;
    assert_eq!(pod_api.get("side-1-0").await.unwrap().uid(), failing_uid, "the pod with the failing sidecar stays");
    // (Rack 2's last pod may still be starting its server: kwok marks pods Ready at once, a simulated node joins when
    // its pod's init step has finished.)
    let members = env.sim.members(&env.ns, "side");
    assert!(members.contains(&"side-1-0".to_string()), "its server is still a cluster member: {members:?}");
    finish(&env, op).await;
}
