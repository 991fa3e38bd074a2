//! Strong consistency end to end: the operator sets and keeps the roster of an SC namespace on simulated nodes, and
//! takes no disruptive step while partitions are unavailable or dead. Aerospike's official Rust client (crate
//! `aerospike`) reads the roster and the partition counts from every node it tends.
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aerospike::{AdminPolicy, Client, ClientPolicy};
use ako_simulator::{Fault, FaultTarget};
use common::*;
use kube::ResourceExt;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(150);

fn sc_manifest(name: &str, ns: &str, size: i32) -> Value {
    let mut m = cluster_manifest(name, ns, size);
    m["spec"]["aerospikeConfig"]["namespaces"][0]["strong-consistency"] = json!(true);
    m["spec"]["rackConfig"] = json!({"namespaces": ["test"], "racks": [{"id": 1}, {"id": 2}]});
    m
}

/// What every node the official client tends says of namespace `test`: (roster node ids, unavailable, dead).
async fn from_every_node(env: &Env, cluster: &str) -> Vec<(BTreeSet<String>, u64, u64)> {
    let pods = pods(&env.client, &env.ns, cluster).await;
    let seeds = pods
        .iter()
        .filter_map(|p| env.sim.node_addr(&env.ns, &p.name_any()))
        .map(|a| a.to_string())
        .collect::<Vec<_>>();
    let client = Client::new(&ClientPolicy::default(), &seeds.join(",")).await.expect("the client tends the cluster");
    let policy = AdminPolicy::default();
    let mut out = Vec::new();
    for node in client.nodes() {
        let answers = node.info(&policy, &["roster:namespace=test", "namespace/test"]).await.expect("info");
        let roster = answers["roster:namespace=test"]
            .split(':')
            .find_map(|kv| kv.strip_prefix("roster="))
            .unwrap_or("null")
            .split(',')
            .filter(|e| *e != "null" && !e.is_empty())
            .map(|e| e.split('@').next().unwrap_or(e).to_string())
            .collect();
        let stat = |key: &str| -> u64 {
            answers["namespace/test"]
                .split(';')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX)
        };
        out.push((roster, stat("unavailable_partitions"), stat("dead_partitions")));
    }
    let _ = client.close().await;
    out
}

/// The Aerospike node ids of the cluster's pods (as servers answer them: upper case).
async fn members(env: &Env, cluster: &str) -> BTreeSet<String> {
    pods(&env.client, &env.ns, cluster)
        .await
        .iter()
        .map(|p| aerospike_kubernetes_operator::desired::pod_node_id(p).expect("node id").to_ascii_uppercase())
        .collect()
}

async fn roster_is(env: &Env, cluster: &str, want: &BTreeSet<String>) {
    let views = from_every_node(env, cluster).await;
    assert_eq!(views.len(), want.len().max(views.len()), "the client tends every node");
    for (roster, unavailable, dead) in views {
        assert_eq!(&roster, want, "the roster on every node");
        assert_eq!((unavailable, dead), (0, 0), "every partition available");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roster_follows_the_nodes_and_no_step_is_taken_while_partitions_are_lost() {
    let env = env("e2e-sc").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &sc_manifest("sc", &env.ns, 4)).await;

    // 1. Up: the roster is the four nodes, and the namespace is available.
    wait_completed(&env.client, &env.ns, "sc", T).await;
    let four = members(&env, "sc").await;
    assert_eq!(four.len(), 4);
    roster_is(&env, "sc", &four).await;
    let events = event_reasons(&env.client, &env.ns, "sc").await;
    assert!(events.iter().any(|(r, _)| r == "RosterSet"), "{events:?}");

    // 2. Scale to 6 and back to 4: the roster follows.
    patch_spec(&env.client, &env.ns, "sc", json!({"size": 6})).await;
    wait_completed(&env.client, &env.ns, "sc", T).await;
    let six = members(&env, "sc").await;
    assert_eq!(six.len(), 6);
    roster_is(&env, "sc", &six).await;
    patch_spec(&env.client, &env.ns, "sc", json!({"size": 4})).await;
    wait_completed(&env.client, &env.ns, "sc", T).await;
    let back = members(&env, "sc").await;
    assert_eq!(back.len(), 4);
    roster_is(&env, "sc", &back).await;

    // 3. A node in rosterNodeBlockList is left out of the roster (it stays in the cluster).
    let blocked = back.iter().next_back().unwrap().clone();
    patch_spec(&env.client, &env.ns, "sc", json!({"rosterNodeBlockList": [blocked]})).await;
    wait_completed(&env.client, &env.ns, "sc", T).await;
    let mut without = back.clone();
    without.remove(&blocked);
    roster_is(&env, "sc", &without).await;
    assert_eq!(members(&env, "sc").await, back, "the blocked node is still a member");

    // 4. Dead partitions: an upgrade deletes no pod (and nothing revives them); once they are gone, it proceeds.
    env.sim.set_fault(FaultTarget::cluster(&env.ns, "sc"), Fault::dead_partitions(7));
    let uids: Vec<_> = pods(&env.client, &env.ns, "sc").await.iter().map(|p| p.uid()).collect();
    patch_spec(&env.client, &env.ns, "sc", json!({"image": IMAGE_NEW})).await;
    let c = wait_for("Degraded=True", T, || async {
        let c = api(&env.client, &env.ns).get("sc").await.ok()?;
        (condition(&c, "Degraded")?.0 == "True").then_some(c)
    })
    .await;
    let (_, reason, message) = condition(&c, "Degraded").unwrap();
    assert_eq!(reason, "RollingRestartBlocked");
    assert!(message.contains("namespace test") && message.contains("7 dead"), "{message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now: Vec<_> = pods(&env.client, &env.ns, "sc").await.iter().map(|p| p.uid()).collect();
    assert_eq!(now, uids, "no pod deleted while partitions are dead");
    let events = event_reasons(&env.client, &env.ns, "sc").await;
    assert!(events.iter().any(|(r, _)| r == "PartitionsUnavailable"), "{events:?}");
    env.sim.clear_faults();
    wait_completed(&env.client, &env.ns, "sc", T).await;
    assert!(pods(&env.client, &env.ns, "sc").await.iter().all(|p| image(p) == IMAGE_NEW));
    finish(&env, op).await;
}

/// A scale-down that the checks before it allowed but that left partitions unavailable is rolled back as the
/// reference does: the StatefulSet goes back to its size, the removed pod comes back, the cluster says why, and the
/// scale-down is not tried again until the spec changes. Replication factor 1: every partition has one roster replica,
/// so the partitions of the removed node are unavailable once it is gone (the simulator's SC model), while before the
/// removal all are available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_down_that_loses_partitions_is_rolled_back() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let env = env("e2e-sc-rollback").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut m = cluster_manifest("scr", &env.ns, 3);
    m["spec"]["aerospikeConfig"]["namespaces"][0]["strong-consistency"] = json!(true);
    m["spec"]["aerospikeConfig"]["namespaces"][0]["replication-factor"] = json!(1);
    create(&env.client, &env.ns, &m).await;
    wait_completed(&env.client, &env.ns, "scr", T).await;

    let sets: kube::Api<StatefulSet> = kube::Api::namespaced(env.client.clone(), &env.ns);
    let replicas = || async { sets.get("scr-0").await.ok()?.spec?.replicas };
    patch_spec(&env.client, &env.ns, "scr", json!({"size": 2})).await;

    let message = wait_for("the scale-down rolled back", T, || async {
        let c = api(&env.client, &env.ns).get("scr").await.ok()?;
        let (status, reason, message) = condition(&c, "Degraded")?;
        (status == "True" && reason == "ScaleDownRolledBack" && replicas().await == Some(3)).then_some(message)
    })
    .await;
    assert!(message.contains("scr-0") && message.contains("unavailable"), "{message}");
    wait_for("the removed pod back", T, || async {
        (pods(&env.client, &env.ns, "scr").await.len() == 3).then_some(())
    })
    .await;
    let events = event_reasons(&env.client, &env.ns, "scr").await;
    assert!(events.iter().any(|(r, _)| r == "ScaleDownRolledBack"), "{events:?}");

    // Not tried again for this spec, though the partitions are available again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(replicas().await, Some(3), "no second attempt for the same spec");
    // A new spec (the size the cluster has) ends it.
    patch_spec(&env.client, &env.ns, "scr", json!({"size": 3})).await;
    let c = wait_completed(&env.client, &env.ns, "scr", T).await;
    assert_eq!(c.status.unwrap().size, Some(3));
    finish(&env, op).await;
}
