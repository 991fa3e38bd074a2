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

/// Issue 11: a persistent volume grows in place. Its claims are patched to the new size (the local plane's provisioner
/// plays the external resizer), the StatefulSet is recreated with the new template while its pods keep running, and
/// nothing restarts or loses a claim. A StorageClass without allowVolumeExpansion: the API server's refusal is
/// reported, nothing else changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_grows_in_place_without_restarts() {
    use k8s_openapi::api::storage::v1::StorageClass;
    let env = env("e2e-grow").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let classes: Api<StorageClass> = Api::all(env.client.clone());
    for (name, expand) in [("e2e-expandable", true), ("e2e-fixed", false)] {
        let sc: StorageClass = serde_json::from_value(json!({
            "metadata": {"name": name}, "provisioner": "xtask-fake-provisioner", "allowVolumeExpansion": expand}))
        .unwrap();
        match classes.create(&PostParams::default(), &sc).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("{e}"),
        }
    }
    let manifest = |name: &str, class: &str, size: &str| {
        let mut m = cluster_manifest(name, &env.ns, 2);
        m["spec"]["storage"] = json!({"volumes": [{"name": "data", "aerospike": {"path": "/opt/aerospike/data"},
            "source": {"persistentVolume": {"storageClass": class, "volumeMode": "Filesystem", "size": size}}}]});
        m
    };
    create(&env.client, &env.ns, &manifest("grow", "e2e-expandable", "1Gi")).await;
    create(&env.client, &env.ns, &manifest("fixed", "e2e-fixed", "1Gi")).await;
    wait_completed(&env.client, &env.ns, "grow", T).await;
    wait_completed(&env.client, &env.ns, "fixed", T).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), &env.ns);
    let claims = |cr: &'static str| {
        let pvcs = pvcs.clone();
        async move {
            let list = pvcs.list(&ListParams::default().labels(&format!("aerospike.com/cr={cr}"))).await.unwrap().items;
            list.into_iter()
                .map(|p| {
                    let cap = p.status.as_ref().and_then(|s| s.capacity.as_ref()?.get("storage").cloned());
                    (p.name_any(), (p.uid().unwrap(), cap.map(|q| q.0).unwrap_or_default()))
                })
                .collect::<BTreeMap<String, (String, String)>>()
        }
    };
    let uids = |cr: &'static str| {
        let (client, ns) = (env.client.clone(), env.ns.clone());
        async move {
            pods(&client, &ns, cr).await.iter().map(|p| (p.name_any(), p.uid().unwrap())).collect::<BTreeMap<_, _>>()
        }
    };
    let (pods_before, claims_before) = (uids("grow").await, claims("grow").await);
    assert_eq!(claims_before.len(), 2);

    let storage = manifest("grow", "e2e-expandable", "2Gi")["spec"]["storage"].clone();
    patch_spec(&env.client, &env.ns, "grow", json!({"storage": storage})).await;
    wait_completed(&env.client, &env.ns, "grow", T).await;
    let claims_after = claims("grow").await;
    assert_eq!(claims_after.len(), 2);
    for (name, (uid, _)) in &claims_before {
        assert_eq!(claims_after[name], (uid.clone(), "2Gi".to_string()), "{name}: same claim, grown");
    }
    assert_eq!(uids("grow").await, pods_before, "no pod restarted");
    let sts = stateful_sets(&env.client, &env.ns, "grow").await;
    let template = &sts["grow-0"].spec.as_ref().unwrap().volume_claim_templates.as_ref().unwrap()[0];
    assert_eq!(
        template.spec.as_ref().unwrap().resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
        "2Gi"
    );
    let events = event_reasons(&env.client, &env.ns, "grow").await;
    assert!(events.iter().any(|(r, _)| r == "VolumesExpanded"), "{events:?}");

    // Shrinking is refused (the reconciler's own check, as the webhook's), naming the field.
    let storage = manifest("grow", "e2e-expandable", "1Gi")["spec"]["storage"].clone();
    patch_spec(&env.client, &env.ns, "grow", json!({"storage": storage})).await;
    let message = wait_for("shrink refused", T, || async {
        let c = api(&env.client, &env.ns).get("grow").await.ok()?;
        let (status, reason, message) = condition(&c, "Degraded")?;
        (status == "True" && reason == "InvalidSpec").then_some(message)
    })
    .await;
    assert!(
        message.contains("spec.storage.volumes[0].source.persistentVolume.size") && message.contains("shrinks"),
        "{message}"
    );

    // A class that does not allow expansion: reported, nothing restarted or replaced.
    let fixed_pods = uids("fixed").await;
    let storage = manifest("fixed", "e2e-fixed", "2Gi")["spec"]["storage"].clone();
    patch_spec(&env.client, &env.ns, "fixed", json!({"storage": storage})).await;
    let message = wait_for("expansion refused", T, || async {
        let c = api(&env.client, &env.ns).get("fixed").await.ok()?;
        let (status, reason, message) = condition(&c, "Degraded")?;
        (status == "True" && reason == "VolumeExpansionFailed").then_some(message)
    })
    .await;
    assert!(message.contains("data-fixed-0-"), "{message}");
    assert_eq!(uids("fixed").await, fixed_pods);
    assert!(claims("fixed").await.values().all(|(_, cap)| cap == "1Gi"));

    // A Block volume grown: the same in place, and each server restarts in place once (it sees a device's size only
    // when it starts), marked on the pod before the StatefulSet forgets the old size. The Filesystem one above: none.
    let block = |size: &str| {
        let mut m = cluster_manifest("growblock", &env.ns, 2);
        m["spec"]["storage"] = json!({"volumes": [{"name": "dev", "aerospike": {"path": "/dev/xvdb"},
            "source": {"persistentVolume": {"storageClass": "e2e-expandable", "volumeMode": "Block", "size": size}}}]});
        m
    };
    create(&env.client, &env.ns, &block("1Gi")).await;
    wait_completed(&env.client, &env.ns, "growblock", T).await;
    let block_pods = uids("growblock").await;
    patch_spec(&env.client, &env.ns, "growblock", json!({"storage": block("2Gi")["spec"]["storage"].clone()})).await;
    wait_for("block claims grown and servers restarted", T, || async {
        let done = claims("growblock").await.values().all(|(_, cap)| cap == "2Gi")
            && (0..2).all(|i| env.sim.warm_restarts(&format!("{}/growblock-0-{i}", env.ns)) == 1);
        done.then_some(())
    })
    .await;
    wait_completed(&env.client, &env.ns, "growblock", T).await;
    assert_eq!(uids("growblock").await, block_pods, "no pod replaced");
    for i in 0..2 {
        assert_eq!(env.sim.warm_restarts(&format!("{}/growblock-0-{i}", env.ns)), 1, "growblock-0-{i}: once");
        assert_eq!(env.sim.warm_restarts(&format!("{}/grow-0-{i}", env.ns)), 0, "a grown Filesystem volume: none");
    }
    let events = event_reasons(&env.client, &env.ns, "growblock").await;
    assert!(
        events.iter().any(|(r, note)| r == "PodWarmRestarted" && note.contains("block volume dev grew to 2Gi")),
        "{events:?}"
    );
    for p in pods(&env.client, &env.ns, "growblock").await {
        assert!(
            !p.annotations().contains_key("aerospike.com/warm-restart-requested"),
            "{}: mark cleared",
            p.name_any()
        );
    }
    finish(&env, op).await;
}

/// Issue 11, init and wipe bookkeeping (kwok runs no containers: the bytes each method leaves are tested on loop
/// devices in podinit's unit tests). Each pod incarnation gets an entry in the rack ConfigMap's volumes.json (what its
/// pod-init must initialise and wipe); once it runs, status.pods[].initializedVolumes records `<volume>@<claim uid>`.
/// A namespace removed: its device becomes dirty on the pods restarted onto the new config and stays dirty, unwiped,
/// while no namespace uses it (as the reference's init waits); the namespace back: the pods restarted onto that config
/// are told to wipe it first, and once they run it is clean again. A claim replaced with its pod (local storage) is
/// initialised again, the others are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_initialised_once_and_removed_devices_are_wiped() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let env = env("e2e-volinit").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut m = cluster_manifest("vol", &env.ns, 2);
    m["spec"]["storage"] = json!({
        "localStorageClasses": ["local-nvme"],
        "deleteLocalStorageOnRestart": true,
        "volumes": [
            {"name": "workdir", "aerospike": {"path": "/opt/aerospike"}, "initMethod": "deleteFiles",
             "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}}},
            {"name": "d1", "aerospike": {"path": "/dev/xvdf"}, "initMethod": "dd",
             "source": {"persistentVolume": {"storageClass": "local-nvme", "volumeMode": "Block", "size": "1Gi"}}},
            {"name": "d2", "aerospike": {"path": "/dev/xvdg"}, "initMethod": "headerCleanup", "wipeMethod": "blkdiscard",
             "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Block", "size": "1Gi"}}}
        ]
    });
    m["spec"]["aerospikeConfig"]["namespaces"] = json!([
        {"name": "test", "replication-factor": 2, "storage-engine": {"type": "device", "devices": ["/dev/xvdf"]}},
        {"name": "bar", "replication-factor": 2, "storage-engine": {"type": "device", "devices": ["/dev/xvdg"]}}
    ]);
    create(&env.client, &env.ns, &m).await;
    wait_completed(&env.client, &env.ns, "vol", T).await;

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), &env.ns);
    let claims = || async {
        let list = pvcs.list(&ListParams::default().labels("aerospike.com/cr=vol")).await.unwrap().items;
        list.into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| (p.name_any(), p.uid().unwrap()))
            .collect::<BTreeMap<String, String>>()
    };
    // What the status should say once every pod ran on its current claims.
    let expected = |claims: &BTreeMap<String, String>, pod: &str| -> Vec<String> {
        ["d1", "d2", "workdir"].iter().map(|v| format!("{v}@{}", claims[&format!("{v}-{pod}")])).collect()
    };
    let volumes_of = |c: &aerospike_kubernetes_operator::api::AerospikeCluster, pod: &str| {
        let p = c.status.as_ref().and_then(|s| s.pods.get(pod).cloned()).unwrap_or_default();
        (p.initialized_volumes, p.dirty_volumes)
    };
    let entries = || async {
        let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.ns);
        let cm = cms.get("vol-0").await.unwrap();
        let text = cm.data.unwrap()["volumes.json"].clone();
        serde_json::from_str::<BTreeMap<String, serde_json::Value>>(&text).unwrap()
    };
    let pod_uids = || async {
        pods(&env.client, &env.ns, "vol")
            .await
            .iter()
            .map(|p| (p.name_any(), p.uid().unwrap()))
            .collect::<BTreeMap<_, _>>()
    };

    let six_claims = || {
        wait_for("six claims", T, || async {
            let c = claims().await;
            (c.len() == 6).then_some(c)
        })
    };
    let before = six_claims().await;
    wait_for("initialised volumes recorded", T, || async {
        let c = api(&env.client, &env.ns).get("vol").await.ok()?;
        ["vol-0-0", "vol-0-1"].iter().all(|p| volumes_of(&c, p) == (expected(&before, p), vec![])).then_some(())
    })
    .await;
    // The first incarnations were told: nothing initialised yet, nothing dirty.
    let uids = pod_uids().await;
    let first = entries().await;
    for (pod, uid) in &uids {
        assert_eq!(first[pod], json!({"uid": uid, "initialized": [], "dirty": []}), "{pod}");
    }

    // Namespace bar removed: a restart of every pod; d2 (its device) is dirty for them, d1's local claims are replaced.
    let with_bar = m["spec"]["aerospikeConfig"].clone();
    let mut namespaces = with_bar["namespaces"].clone();
    namespaces.as_array_mut().unwrap().pop();
    let mut config = with_bar.clone();
    config["namespaces"] = namespaces;
    patch_spec(&env.client, &env.ns, "vol", json!({"aerospikeConfig": config})).await;
    wait_completed(&env.client, &env.ns, "vol", Duration::from_secs(240)).await;
    let after = six_claims().await;
    let new_uids = pod_uids().await;
    let second = entries().await;
    for (pod, uid) in &new_uids {
        assert_ne!(uids.get(pod), Some(uid), "{pod} was restarted");
        assert_ne!(after[&format!("d1-{pod}")], before[&format!("d1-{pod}")], "{pod}: the local claim was replaced");
        assert_eq!(after[&format!("d2-{pod}")], before[&format!("d2-{pod}")], "{pod}: d2 kept its claim");
        // pod-init was told: initialise d1 (a new claim); workdir and d2 are initialised already; d2 is dirty but no
        // namespace uses it, so it is kept dirty, not wiped, and the split names the config it was made for.
        let hash = second[pod]["confHash"].as_str().unwrap_or_else(|| panic!("{pod}: {}", second[pod]));
        assert_eq!(
            second[pod],
            json!({"uid": uid, "initialized": ["workdir", "d2"], "dirty": [], "keepDirty": ["d2"], "confHash": hash}),
            "{pod}"
        );
    }
    wait_for("the new claims recorded, the unused device still dirty", T, || async {
        let c = api(&env.client, &env.ns).get("vol").await.ok()?;
        ["vol-0-0", "vol-0-1"]
            .iter()
            .all(|p| volumes_of(&c, p) == (expected(&after, p), vec!["d2".to_string()]))
            .then_some(())
    })
    .await;

    // Namespace bar back on d2: the pods restarted onto it wipe the dirty device before the server uses it.
    patch_spec(&env.client, &env.ns, "vol", json!({"aerospikeConfig": with_bar})).await;
    wait_completed(&env.client, &env.ns, "vol", Duration::from_secs(240)).await;
    let last = six_claims().await;
    let third = entries().await;
    for (pod, uid) in &pod_uids().await {
        assert_ne!(new_uids.get(pod), Some(uid), "{pod} was restarted");
        let hash = third[pod]["confHash"].as_str().unwrap_or_else(|| panic!("{pod}: {}", third[pod]));
        assert_eq!(
            third[pod],
            json!({"uid": uid, "initialized": ["workdir", "d2"], "dirty": ["d2"], "confHash": hash}),
            "{pod}: d2 is wiped now"
        );
    }
    wait_for("the wiped device clean", T, || async {
        let c = api(&env.client, &env.ns).get("vol").await.ok()?;
        ["vol-0-0", "vol-0-1"].iter().all(|p| volumes_of(&c, p) == (expected(&last, p), vec![])).then_some(())
    })
    .await;
    finish(&env, op).await;
}

/// Files of a namespace removed from the config are deleted in each pod before its server restarts without it, as the
/// reference does (through an exec in the server container; recorded by the simulator, which has no files), one
/// batch at a time; a namespace kept keeps its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_a_removed_namespace_are_deleted_before_the_restart() {
    let env = env("e2e-nsfiles").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut m = cluster_manifest("files", &env.ns, 2);
    m["spec"]["storage"] = json!({"volumes": [{"name": "data", "aerospike": {"path": "/opt/aerospike/data"},
        "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}}}]});
    let file_ns = |name: &str| {
        json!({"name": name, "replication-factor": 2, "storage-engine":
            {"type": "device", "files": [format!("/opt/aerospike/data/{name}.dat")], "filesize": 1073741824}})
    };
    m["spec"]["aerospikeConfig"]["namespaces"] = json!([file_ns("keep"), file_ns("gone")]);
    create(&env.client, &env.ns, &m).await;
    wait_completed(&env.client, &env.ns, "files", T).await;
    let uids: Vec<_> = pods(&env.client, &env.ns, "files").await.iter().map(|p| p.uid()).collect();

    let mut config = m["spec"]["aerospikeConfig"].clone();
    config["namespaces"] = json!([file_ns("keep")]);
    patch_spec(&env.client, &env.ns, "files", json!({"aerospikeConfig": config})).await;
    wait_completed(&env.client, &env.ns, "files", T).await;
    for i in 0..2 {
        let pod = format!("{}/files-0-{i}", env.ns);
        let history = env.sim.history_for(&pod);
        let deleted = history.iter().position(|r| {
            matches!(&r.what, What::Command { command, .. } if command == "exec:delete-files /opt/aerospike/data/gone.dat")
        });
        let restarted = history.iter().position(|r| r.what == What::WarmRestarted);
        assert!(
            deleted.is_some() && restarted.is_some() && deleted < restarted,
            "{pod}: deleted, then restarted: {history:#?}"
        );
        let deletions = env.sim.commands_for(&pod).iter().filter(|c| c.starts_with("exec:delete-files")).count();
        assert_eq!(deletions, 1, "{pod}: once, and only the removed namespace's file");
    }
    let now: Vec<_> = pods(&env.client, &env.ns, "files").await.iter().map(|p| p.uid()).collect();
    assert_eq!(now, uids, "the servers restarted in place");
    finish(&env, op).await;
}

/// Issue 11, beyond the reference: a persistent volume added to one rack without a new revision. That rack's
/// StatefulSet is recreated with the new claim template (its pods kept and adopted), then its pods restart onto it
/// one at a time, each getting its claim; the other rack is not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_added_to_one_rack_rolls_only_that_rack() {
    let env = env("e2e-addvol").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut m = cluster_manifest("addvol", &env.ns, 4);
    m["spec"]["rackConfig"] = json!({"namespaces": ["test"], "racks": [{"id": 1}, {"id": 2}]});
    create(&env.client, &env.ns, &m).await;
    wait_completed(&env.client, &env.ns, "addvol", T).await;
    let mut watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "addvol", 4).await;

    let volume = json!({"name": "data", "aerospike": {"path": "/opt/aerospike/data"},
        "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}}});
    let racks = json!([{"id": 1}, {"id": 2, "storage": {"volumes": [volume]}}]);
    patch_spec(&env.client, &env.ns, "addvol", json!({"rackConfig": {"racks": racks}})).await;
    watch.until_completed(&env.client, &env.ns, "addvol", 4, T).await;
    for (pod, uids) in &watch.uids {
        let expected = if pod.starts_with("addvol-2-") { 2 } else { 1 };
        assert_eq!(uids.len(), expected, "{pod}:\n{}", watch.describe(pod));
    }
    assert!(watch.max_unavailable <= 1, "one pod at a time: {}", watch.max_unavailable);
    let sts = stateful_sets(&env.client, &env.ns, "addvol").await;
    let templates = |name: &str| -> Vec<String> {
        let spec = sts[name].spec.as_ref().unwrap();
        spec.volume_claim_templates.iter().flatten().filter_map(|t| t.metadata.name.clone()).collect()
    };
    assert_eq!(templates("addvol-2"), vec!["data".to_string()]);
    assert_eq!(templates("addvol-1"), Vec::<String>::new());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), &env.ns);
    let mut claims: Vec<String> = pvcs
        .list(&ListParams::default().labels("aerospike.com/cr=addvol"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    claims.sort();
    assert_eq!(claims, ["data-addvol-2-0", "data-addvol-2-1"]);
    let events = event_reasons(&env.client, &env.ns, "addvol").await;
    assert!(events.iter().any(|(r, note)| r == "VolumesAdded" && note.contains("rack 2")), "{events:?}");
    finish(&env, op).await;
}
