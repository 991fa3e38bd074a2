//! Ways a rollout could lose data, each tried against a real control plane and the simulator: a pod that never
//! comes back, a scale-down faster than the migrations, and cascadeDelete judged by the wrong rack's policy.
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use ako_simulator::What;
use common::*;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ResourceQuota};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const T: Duration = Duration::from_secs(120);

/// Issue 18, item 1. The in-memory cluster (3 pods, replication factor 2) under a ResourceQuota of 2 pods: the first
/// pod restarted for an image change is never recreated. Before the fix the operator went on to delete the next pod
/// (two of three nodes down: in-memory data lost); now nothing more is deleted, and a condition and an Event say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_never_comes_back_stops_the_rollout() {
    let env = env("e2e-quota").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 3)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    let before: BTreeMap<String, String> =
        pods(&env.client, &env.ns, "aero").await.iter().map(|p| (p.name_any(), p.uid().unwrap())).collect();
    assert_eq!(before.len(), 3);

    let quotas: Api<ResourceQuota> = Api::namespaced(env.client.clone(), &env.ns);
    let quota: ResourceQuota =
        serde_json::from_value(json!({"metadata": {"name": "two-pods"}, "spec": {"hard": {"pods": "2"}}})).unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    // Quota admission enforces only once the quota controller has recorded what is used.
    wait_for("quota usage recorded", T, || async {
        let q = quotas.get("two-pods").await.ok()?;
        q.status?.used?.get("pods").map(|_| ())
    })
    .await;

    patch_spec(&env.client, &env.ns, "aero", json!({"image": IMAGE_NEW})).await;
    // The first batch: aero-0-2 goes and its recreation is refused.
    let api = api(&env.client, &env.ns);
    let degraded = wait_for("a Degraded condition naming the missing pod", T, || async {
        let names: Vec<String> = pods(&env.client, &env.ns, "aero").await.iter().map(|p| p.name_any()).collect();
        assert!(
            names.contains(&"aero-0-1".to_string()) && names.contains(&"aero-0-0".to_string()),
            "pods left: {names:?}"
        );
        let c = api.get("aero").await.unwrap();
        condition(&c, "Degraded").filter(|(status, reason, _)| status == "True" && reason == "PodsMissing")
    })
    .await;
    assert!(degraded.2.contains("aero-0-2"), "the condition names the missing pod: {degraded:?}");
    // A while longer: the rollout stays stopped.
    let watch_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < watch_until {
        let now: BTreeMap<String, String> =
            pods(&env.client, &env.ns, "aero").await.iter().map(|p| (p.name_any(), p.uid().unwrap())).collect();
        for pod in ["aero-0-0", "aero-0-1"] {
            assert_eq!(now.get(pod), before.get(pod), "{pod} was not touched while aero-0-2 was missing");
        }
        assert!(!now.contains_key("aero-0-2"), "the quota keeps aero-0-2 from being recreated");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reasons = event_reasons(&env.client, &env.ns, "aero").await;
    assert!(
        reasons.iter().any(|(r, note)| r == "PodMissing" && note.contains("aero-0-2")),
        "a Warning Event names the missing pod: {reasons:?}"
    );
    quotas.delete("two-pods", &DeleteParams::default()).await.unwrap();
    finish(&env, op).await;
}

/// Issue 18, item 2. A scale-down quiesces the removed node, which starts migrating its partitions away; the
/// simulator holds those migrations for 12 s. The StatefulSet may only shrink once they are done (before the fix it
/// shrank right after the quiesce, taking partitions that had no other copy yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_waits_for_the_migrations_off_the_removed_node() {
    let env = env("e2e-scale-migrations").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 3)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    env.sim.wait_for_members(&env.ns, "aero", 3, T).await.unwrap();
    let hold = Duration::from_secs(12);
    env.sim.set_migration_duration(hold);

    patch_spec(&env.client, &env.ns, "aero", json!({"size": 2})).await;
    let api = api(&env.client, &env.ns);
    let waiting_seen = std::cell::Cell::new(false);
    let shrunk_at = wait_for("the StatefulSet shrinks to 2", T, || async {
        let c = api.get("aero").await.unwrap();
        if let Some((_, reason, _)) = condition(&c, "Progressing") {
            waiting_seen.set(waiting_seen.get() || reason == "WaitingForMigrations");
        }
        if let Some((status, reason, msg)) = condition(&c, "Degraded") {
            assert_ne!(status, "True", "waiting for migrations is progress, not a fault: {reason}: {msg}");
        }
        let sts = stateful_sets(&env.client, &env.ns, "aero").await;
        (sts["aero-0"].spec.as_ref().unwrap().replicas == Some(2)).then(SystemTime::now)
    })
    .await;
    let history = env.sim.history_for(&format!("{}/aero-0-2", env.ns));
    let quiesced_at = history
        .iter()
        .find(|r| matches!(&r.what, What::Command { command, .. } if command == "quiesce:"))
        .map(|r| r.at)
        .expect("aero-0-2 was quiesced before it was removed");
    let waited = shrunk_at.duration_since(quiesced_at).unwrap_or_default();
    assert!(waited >= hold, "replicas lowered {waited:?} after the quiesce, before the {hold:?} of migrations ended");
    assert!(waiting_seen.get(), "status said the scale-down waits for migrations");
    env.sim.set_migration_duration(Duration::from_secs(2));
    wait_completed(&env.client, &env.ns, "aero", T).await;
    finish(&env, op).await;
}

/// Issue 18, item 3. Rack 1's storage says cascadeDelete, rack 2's does not, and the cluster-wide policy says it does:
/// deleting the cluster removes rack 1's PVCs only. Before the fix every rack's volumes were judged by the
/// cluster-wide policy and matched by name prefix across racks, so rack 2's data went too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_delete_follows_each_racks_own_policy() {
    let env = env("e2e-cascade-racks").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let storage = |cascade: bool| {
        json!({
            "filesystemVolumePolicy": {"cascadeDelete": cascade, "initMethod": "deleteFiles"},
            "volumes": [{"name": "workdir", "aerospike": {"path": "/opt/aerospike"},
                "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}}}]
        })
    };
    let mut m = cluster_manifest("aero", &env.ns, 2);
    m["spec"]["storage"] = storage(true);
    m["spec"]["rackConfig"] = json!({"namespaces": ["test"], "racks": [
        {"id": 1, "storage": storage(true)}, {"id": 2, "storage": storage(false)}]});
    create(&env.client, &env.ns, &m).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), &env.ns);
    let of_rack =
        |rack: i32| ListParams::default().labels(&format!("aerospike.com/cr=aero,aerospike.com/rack-id={rack}"));
    for rack in [1, 2] {
        assert_eq!(pvcs.list(&of_rack(rack)).await.unwrap().items.len(), 1, "rack {rack}: one PVC");
    }

    let api = api(&env.client, &env.ns);
    api.delete("aero", &DeleteParams::default()).await.unwrap();
    wait_for("aero deleted", T, || async { api.get_opt("aero").await.unwrap().is_none().then_some(()) }).await;
    wait_for("rack 1's PVCs gone", T, || async {
        let left = pvcs.list(&of_rack(1)).await.unwrap().items;
        left.iter().all(|p| p.metadata.deletion_timestamp.is_some()).then_some(())
    })
    .await;
    let kept = pvcs.list(&of_rack(2)).await.unwrap().items;
    assert_eq!(kept.len(), 1, "rack 2's PVC survives: its own policy has no cascadeDelete");
    assert!(kept[0].metadata.deletion_timestamp.is_none());
    assert_eq!(
        kept[0].labels().get("aerospike.com/volume").map(String::as_str),
        Some("workdir"),
        "labelled with its volume"
    );
    finish(&env, op).await;
}

/// deleteLocalStorageOnRestart with localStorageClasses: each pod restarted by an upgrade loses its local-storage PVC
/// (and only that one: the other volume's claim survives), comes back with a new claim, and the configured
/// migrate-fill-delay is set to 0 after each restart and back to its value at the end, as the reference does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_storage_is_deleted_with_restarted_pods_only_when_the_policy_says_so() {
    let env = env("e2e-localpv").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut m = cluster_manifest("loc", &env.ns, 2);
    m["spec"]["aerospikeConfig"]["service"]["migrate-fill-delay"] = json!(600);
    m["spec"]["storage"] = json!({
        "localStorageClasses": ["local-nvme"],
        "deleteLocalStorageOnRestart": true,
        "volumes": [
            {"name": "data", "aerospike": {"path": "/opt/aerospike/data"},
             "source": {"persistentVolume": {"storageClass": "local-nvme", "volumeMode": "Filesystem", "size": "1Gi"}}},
            {"name": "workdir", "aerospike": {"path": "/opt/aerospike"},
             "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}}}
        ]
    });
    create(&env.client, &env.ns, &m).await;
    wait_completed(&env.client, &env.ns, "loc", T).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), &env.ns);
    let claims = || async {
        let list = pvcs.list(&ListParams::default().labels("aerospike.com/cr=loc")).await.unwrap().items;
        list.into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| (p.name_any(), p.uid().unwrap()))
            .collect::<BTreeMap<String, String>>()
    };
    let before = claims().await;
    assert_eq!(before.len(), 4, "{before:?}");

    patch_spec(&env.client, &env.ns, "loc", json!({"image": IMAGE_NEW})).await;
    wait_completed(&env.client, &env.ns, "loc", T).await;
    let after = wait_for("four bound claims", T, || async {
        let c = claims().await;
        (c.len() == 4).then_some(c)
    })
    .await;
    for (name, uid) in &before {
        let same = after.get(name) == Some(uid);
        if name.starts_with("data-") {
            assert!(!same, "{name}: the local claim was replaced with its pod");
        } else {
            assert!(same, "{name}: a claim of another storage class is kept");
        }
    }
    let events = event_reasons(&env.client, &env.ns, "loc").await;
    assert_eq!(events.iter().filter(|(r, _)| r == "LocalStorageDeleted").count(), 2, "{events:?}");
    // migrate-fill-delay: 0 on the node that stays after the first restart, 600 everywhere at the end.
    let fill = |pod: &str| -> Vec<String> {
        env.sim
            .commands_for(&format!("{}/{pod}", env.ns))
            .into_iter()
            .filter(|c| c.starts_with("set-config:context=service;migrate-fill-delay="))
            .collect()
    };
    let first_stays = fill("loc-0-0");
    assert!(first_stays.iter().any(|c| c.ends_with("=0")), "{first_stays:?}");
    for pod in ["loc-0-0", "loc-0-1"] {
        assert_eq!(
            fill(pod).last().map(String::as_str),
            Some("set-config:context=service;migrate-fill-delay=600"),
            "{pod}"
        );
    }
    finish(&env, op).await;
}
