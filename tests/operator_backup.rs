//! Backup and restore (issue 12): AerospikeBackupService, AerospikeBackup and AerospikeRestore reconciled by the
//! in-process operator against the simulated backup service (one per backup service Deployment, on its Service's
//! ClusterIP), which backs up and restores the simulated clusters' record counts.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aerospike_kubernetes_operator::api::v1beta1::{
    AerospikeBackup, AerospikeBackupService, AerospikeRestore, BackupServicePhase, BackupType, RestorePhase,
};
use aerospike_kubernetes_operator::backup::client::AbsClient;
use ako_simulator::backup_service::BackupFault;
use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const SERVICE: &str = "abs";

fn service_manifest(ns: &str) -> Value {
    json!({
        "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeBackupService",
        "metadata": {"name": SERVICE, "namespace": ns},
        "spec": {
            "image": "aerospike/aerospike-backup-service:3.5.0",
            "config": {
                "service": {"http": {"port": 8081}},
                "backup-policies": {"default": {"parallel": 2}},
                "storage": {"local": {"local-storage": {"path": "/backups"}}}
            },
            "service": {"type": "ClusterIP"}
        }
    })
}

/// A backup of cluster `src` of `ns` with the routine `<ns>-<name>-daily` (names carry the reference's prefix).
fn backup_manifest(ns: &str, name: &str, service: &str, storage: &str, on_demand: Option<(&str, &str)>) -> Value {
    let prefix = format!("{ns}-{name}");
    let mut m = json!({
        "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeBackup",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "backupService": {"name": service, "namespace": ns},
            "config": {
                "aerospike-cluster": {format!("{prefix}-src"): {
                    "seed-nodes": [{"host-name": format!("src.{ns}.svc.cluster.local"), "port": 3000}]}},
                "backup-routines": {format!("{prefix}-daily"): {
                    "source-cluster": format!("{prefix}-src"), "storage": storage, "backup-policy": "default",
                    "interval-cron": "@daily"}}
            }
        }
    });
    if let Some((id, kind)) = on_demand {
        m["spec"]["onDemandBackups"] = json!([{"id": id, "type": kind, "routineName": format!("{prefix}-daily")}]);
    }
    m
}

fn restore_manifest(ns: &str, name: &str, kind: &str, config: Value) -> Value {
    json!({
        "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeRestore",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"backupService": {"name": SERVICE, "namespace": ns}, "type": kind, "config": config,
                 "pollingPeriod": "1s"}
    })
}

/// A Timestamp restore of the routine's last backup into cluster `dst`.
fn by_time_config(ns: &str, routine: &str) -> Value {
    json!({"destination": destination(ns, "dst"), "source": {"local-storage": {"path": "/backups"}},
           "routine": routine, "time": 99_999_999_999_999u64})
}

fn destination(ns: &str, cluster: &str) -> Value {
    json!({"seed-nodes": [{"host-name": format!("{cluster}.{ns}.svc.cluster.local"), "port": 3000}]})
}

async fn create<K>(client: &Client, ns: &str, manifest: &Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(manifest.clone()).expect("manifest parses");
    Api::<K>::namespaced(client.clone(), ns).create(&PostParams::default(), &obj).await.expect("create")
}

/// AerospikeClusters of one node each, running in the simulator (a backup service reaches only those). One after
/// the other: kwok once gave the first two pods of a fresh plane, created at the same instant, the same IP (the
/// simulator then keeps only one of them as a node, as it must for an address that moved).
async fn clusters(env: &Env, names: &[&str]) {
    for name in names {
        common::create(&env.client, &env.ns, &cluster_manifest(name, &env.ns, 1)).await;
        env.sim.wait_for_members(&env.ns, name, 1, WAIT).await.unwrap();
    }
}

async fn service_ready(env: &Env) -> AbsClient {
    create::<AerospikeBackupService>(&env.client, &env.ns, &service_manifest(&env.ns)).await;
    let api: Api<AerospikeBackupService> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for("backup service Completed", WAIT, || async {
        let s = api.get(SERVICE).await.ok()?;
        (s.status?.phase == BackupServicePhase::Completed).then_some(())
    })
    .await;
    let addr =
        wait_for("simulated backup service listening", WAIT, || async { env.sim.backup.addr_of(&env.ns, SERVICE) })
            .await;
    AbsClient::new(addr, "/")
}

async fn wait_on_demand_done(env: &Env, name: &str, id: &str) -> AerospikeBackup {
    let api: Api<AerospikeBackup> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for(&format!("on-demand backup {id} recorded"), WAIT, || async {
        let b = api.get(name).await.ok()?;
        let done = b.status.as_ref()?.on_demand_backups.first()?.id == id;
        done.then_some(b)
    })
    .await
}

async fn wait_restore(env: &Env, name: &str, phase: RestorePhase) -> AerospikeRestore {
    let api: Api<AerospikeRestore> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for(&format!("restore {name} {phase:?}"), WAIT, || async {
        let r = api.get(name).await.ok()?;
        let st = r.status.as_ref()?;
        // InProgress counts once the job is started (a new object is InProgress before that).
        (st.phase == phase && (phase != RestorePhase::InProgress || st.job_id.is_some())).then_some(r)
    })
    .await
}

async fn wait_gone<K>(client: &Client, ns: &str, name: &str)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("{name} deleted"), WAIT, || async { api.get_opt(name).await.ok()?.is_none().then_some(()) })
        .await;
}

#[tokio::test]
async fn backups_full_then_incremental_restore_into_a_second_cluster() {
    let env = env("bk-flow").await;
    let _op = start_operator(&env.client, ns_scope(&env.ns));
    let ns = env.ns.clone();
    clusters(&env, &["src", "dst"]).await;
    env.sim.backup.set_records(&ns, "src", "test", 1000);
    let abs = service_ready(&env).await;

    create::<AerospikeBackup>(
        &env.client,
        &ns,
        &backup_manifest(&ns, "nightly", SERVICE, "local", Some(("full-1", "Full"))),
    )
    .await;
    wait_on_demand_done(&env, "nightly", "full-1").await;
    let routine = format!("{ns}-nightly-daily");
    assert!(env.sim.backup.config_of(&ns, SERVICE).unwrap()["backup-routines"].get(&routine).is_some());

    // New data, then an incremental backup (a new id).
    env.sim.backup.set_records(&ns, "src", "test", 1500);
    let api: Api<AerospikeBackup> = Api::namespaced(env.client.clone(), &ns);
    let od = json!({"spec": {"onDemandBackups": [{"id": "incr-1", "type": "Incremental", "routineName": routine}]}});
    api.patch("nightly", &PatchParams::default(), &Patch::Merge(&od)).await.unwrap();
    wait_on_demand_done(&env, "nightly", "incr-1").await;

    // The service's listings show both, with the counts at their time.
    let full = abs.backups(&routine, BackupType::Full).await.unwrap();
    let incremental = abs.backups(&routine, BackupType::Incremental).await.unwrap();
    assert_eq!(full.len(), 1, "{full:?}");
    assert_eq!(incremental.len(), 1, "{incremental:?}");
    assert_eq!(full[0]["record-count"], 1000);
    assert_eq!(incremental[0]["record-count"], 1500);
    assert_eq!(env.sim.backup.backups_of(&ns, SERVICE).len(), 2);

    // Restore the full backup into the second cluster.
    let config = json!({"destination": destination(&ns, "dst"), "source": {"local-storage": {"path": "/backups"}},
                        "backup-data-path": full[0]["key"]});
    create::<AerospikeRestore>(&env.client, &ns, &restore_manifest(&ns, "to-dst", "Full", config)).await;
    let r = wait_restore(&env, "to-dst", RestorePhase::Completed).await;
    assert_eq!(r.status.unwrap().restore_result.unwrap()["status"], "Done");
    assert_eq!(env.sim.backup.records_of(&ns, "dst"), BTreeMap::from([("test".to_string(), 1000)]));

    // Deleting the backup removes its routine and cluster from the service.
    api.delete("nightly", &DeleteParams::default()).await.unwrap();
    wait_gone::<AerospikeBackup>(&env.client, &ns, "nightly").await;
    let config = env.sim.backup.config_of(&ns, SERVICE).unwrap();
    assert!(config.get("backup-routines").is_none_or(|r| r.get(&routine).is_none()), "{config}");
    assert!(config.get("aerospike-clusters").is_none_or(|c| c.get(format!("{ns}-nightly-src")).is_none()));
}

#[tokio::test]
async fn restore_jobs_cancelled_on_delete_and_failed_with_the_reason() {
    let env = env("bk-restore").await;
    let _op = start_operator(&env.client, ns_scope(&env.ns));
    let ns = env.ns.clone();
    clusters(&env, &["src", "dst"]).await;
    env.sim.backup.set_records(&ns, "src", "test", 10);
    service_ready(&env).await;
    create::<AerospikeBackup>(&env.client, &ns, &backup_manifest(&ns, "b", SERVICE, "local", Some(("1", "Full"))))
        .await;
    wait_on_demand_done(&env, "b", "1").await;
    let routine = format!("{ns}-b-daily");
    let by_time = by_time_config(&ns, &routine);

    // A job that keeps running is cancelled when its restore is deleted.
    env.sim.backup.set_fault(&ns, SERVICE, BackupFault { hold_restore: true, ..Default::default() });
    create::<AerospikeRestore>(&env.client, &ns, &restore_manifest(&ns, "held", "Timestamp", by_time.clone())).await;
    let r = wait_restore(&env, "held", RestorePhase::InProgress).await;
    let job = r.status.unwrap().job_id.unwrap();
    Api::<AerospikeRestore>::namespaced(env.client.clone(), &ns)
        .delete("held", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone::<AerospikeRestore>(&env.client, &ns, "held").await;
    let calls = env.sim.backup.calls_of(&ns, SERVICE);
    assert!(calls.contains(&format!("POST /v1/restore/cancel/{job}")), "{calls:#?}");

    // A job the service fails: phase Failed, and the condition carries the service's reason.
    env.sim.backup.set_fault(
        &ns,
        SERVICE,
        BackupFault { fail_restore: Some("no space left on device".into()), ..Default::default() },
    );
    create::<AerospikeRestore>(&env.client, &ns, &restore_manifest(&ns, "fails", "Timestamp", by_time)).await;
    let r = wait_restore(&env, "fails", RestorePhase::Failed).await;
    let st = r.status.unwrap();
    let degraded = st.conditions.iter().find(|c| c.type_ == "Degraded").expect("a Degraded condition");
    assert_eq!(degraded.reason, "RestoreFailed");
    assert!(degraded.message.contains("no space left on device"), "{}", degraded.message);
    assert_eq!(env.sim.backup.records_of(&ns, "dst"), BTreeMap::new(), "nothing restored");

    // A restore into a cluster that does not run fails with the service's reason too.
    env.sim.backup.set_fault(&ns, SERVICE, BackupFault::default());
    let mut nowhere = by_time_config(&ns, &routine);
    nowhere["destination"] = destination(&ns, "absent");
    create::<AerospikeRestore>(&env.client, &ns, &restore_manifest(&ns, "nowhere", "Timestamp", nowhere)).await;
    let r = wait_restore(&env, "nowhere", RestorePhase::Failed).await;
    let degraded = r.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Degraded").unwrap();
    assert!(degraded.message.contains("absent: no member answers"), "{}", degraded.message);
}

#[tokio::test]
async fn a_service_unavailable_or_hung_for_a_while_gives_exactly_one_backup() {
    let env = env("bk-flaky").await;
    let _op = start_operator(&env.client, ns_scope(&env.ns));
    let ns = env.ns.clone();
    clusters(&env, &["src"]).await;
    service_ready(&env).await;
    // Enough 503s to fail several reconciles' calls in a row (each call is tried three times).
    env.sim.backup.set_fault(&ns, SERVICE, BackupFault { unavailable_calls: 10, ..Default::default() });
    create::<AerospikeBackup>(&env.client, &ns, &backup_manifest(&ns, "b", SERVICE, "local", Some(("only", "Full"))))
        .await;
    wait_on_demand_done(&env, "b", "only").await;
    let calls = env.sim.backup.calls_of(&ns, SERVICE);
    assert!(calls.len() > 10, "the 503s were seen: {calls:#?}");
    assert_eq!(env.sim.backup.backups_of(&ns, SERVICE).len(), 1);
    // Later reconciles do not start it again: force one and wait until it has read the service's config.
    let seen = env.sim.backup.calls_of(&ns, SERVICE).len();
    let api: Api<AerospikeBackup> = Api::namespaced(env.client.clone(), &ns);
    let touch = json!({"metadata": {"annotations": {"test/touch": "1"}}});
    api.patch("b", &PatchParams::default(), &Patch::Merge(&touch)).await.unwrap();
    wait_for("another reconcile reads the config", WAIT, || async {
        let calls = env.sim.backup.calls_of(&ns, SERVICE);
        calls[seen..].iter().any(|c| c == "GET /v1/config").then_some(())
    })
    .await;
    assert_eq!(env.sim.backup.backups_of(&ns, SERVICE).len(), 1, "no duplicate on-demand backup");

    // A service that accepts calls and never answers: the backup says which call timed out, and recovers.
    env.sim.backup.set_fault(&ns, SERVICE, BackupFault { hang: true, ..Default::default() });
    let touch = json!({"metadata": {"annotations": {"test/touch": "2"}}});
    api.patch("b", &PatchParams::default(), &Patch::Merge(&touch)).await.unwrap();
    let condition = |type_: &'static str| {
        let api = api.clone();
        async move {
            wait_for(&format!("b {type_}"), WAIT, || async {
                api.get("b").await.ok()?.status?.conditions.into_iter().find(|c| c.type_ == type_)
            })
            .await
        }
    };
    let c = condition("Degraded").await;
    assert_eq!(c.reason, "BackupServiceUnavailable");
    assert!(c.message.starts_with("backup service get config: no answer within"), "{}", c.message);
    env.sim.backup.set_fault(&ns, SERVICE, BackupFault::default());
    condition("Available").await;
    assert_eq!(env.sim.backup.backups_of(&ns, SERVICE).len(), 1, "no duplicate on-demand backup");
}

#[tokio::test]
async fn bad_input_is_refused_or_reported_with_the_field() {
    let env = env("bk-bad").await;
    let _op = start_operator(&env.client, ns_scope(&env.ns));
    let ns = env.ns.clone();
    service_ready(&env).await;
    let api: Api<AerospikeBackup> = Api::namespaced(env.client.clone(), &ns);
    let degraded = |name: &'static str| {
        let api = api.clone();
        async move {
            wait_for(&format!("{name} Degraded"), WAIT, || async {
                let b = api.get(name).await.ok()?;
                b.status?.conditions.into_iter().find(|c| c.type_ == "Degraded")
            })
            .await
        }
    };

    create::<AerospikeBackup>(&env.client, &ns, &backup_manifest(&ns, "nosvc", "missing", "local", None)).await;
    let c = degraded("nosvc").await;
    assert_eq!(c.reason, "BackupServiceNotFound");
    assert!(c.message.starts_with("spec.backupService: "), "{}", c.message);

    create::<AerospikeBackup>(&env.client, &ns, &backup_manifest(&ns, "nostore", SERVICE, "s3", None)).await;
    let c = degraded("nostore").await;
    assert_eq!(c.reason, "InvalidSpec");
    assert_eq!(
        c.message,
        format!("spec.config.backup-routines.{ns}-nostore-daily.storage: the backup service has no storage entry s3")
    );
    let config = env.sim.backup.config_of(&ns, SERVICE).unwrap();
    assert!(config.get("backup-routines").is_none(), "an invalid routine never reaches the service: {config}");

    // The service gains the storage: ABS takes it at run time (config-apply, no new pod) and the backup goes through.
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    let generation = deployments.get(SERVICE).await.unwrap().metadata.generation;
    let services: Api<AerospikeBackupService> = Api::namespaced(env.client.clone(), &ns);
    let s3 = json!({"spec": {"config": {"storage": {"s3": {"s3-storage": {"bucket": "b", "s3-region": "eu"}}}}}});
    services.patch(SERVICE, &PatchParams::default(), &Patch::Merge(&s3)).await.unwrap();
    wait_for("nostore Available", WAIT, || async {
        let b = api.get("nostore").await.ok()?;
        b.status?.conditions.iter().any(|c| c.type_ == "Available").then_some(())
    })
    .await;
    let config = env.sim.backup.config_of(&ns, SERVICE).unwrap();
    assert!(
        config["storage"].get("s3").is_some() && config["backup-routines"].get(format!("{ns}-nostore-daily")).is_some()
    );
    assert_eq!(deployments.get(SERVICE).await.unwrap().metadata.generation, generation, "the pod was not rolled");

    // The API server refuses a Timestamp restore without a time, naming the field.
    let bad: AerospikeRestore = serde_json::from_value(restore_manifest(
        &ns,
        "notime",
        "Timestamp",
        json!({
        "destination": destination(&ns, "dst"), "routine": "r"}),
    ))
    .unwrap();
    let e = Api::<AerospikeRestore>::namespaced(env.client.clone(), &ns)
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("refused");
    let text = e.to_string();
    assert!(text.contains("spec.config: ") && text.contains("needs config.time"), "{text}");
}
