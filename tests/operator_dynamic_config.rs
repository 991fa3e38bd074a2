//! `enableDynamicConfigUpdate` end to end: a change of dynamic keys reaches every simulated node with no pod
//! restarted (read back from every node by Aerospike's official Rust client), a static key in the same edit
//! warm-restarts the servers (exec in the pods through the API server and kwok's kubelet API; pods kept), and a node
//! that refuses the change is the only one restarted. The simulator refuses `set-config` of a key that is not dynamic
//! for the server version, as a server does, from the operator's own dynamic-key table.
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aerospike::{AdminPolicy, Client, ClientPolicy};
use ako_simulator::{Fault, FaultTarget};
use common::*;
use kube::ResourceExt;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(150);
const NAME: &str = "dyn";

fn namespaces(extra: Value) -> Value {
    let mut ns = json!({"name": "test", "replication-factor": 2, "nsup-period": 60,
                        "storage-engine": {"type": "memory", "data-size": 1073741824}});
    for (k, v) in extra.as_object().into_iter().flatten() {
        ns[k] = v.clone();
    }
    json!([ns])
}

fn config(proto_fd_max: i64, ns_extra: Value) -> Value {
    json!({
        "service": {"feature-key-file": "/etc/aerospike/secret/features.conf", "proto-fd-max": proto_fd_max},
        "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
        "namespaces": namespaces(ns_extra)
    })
}

/// `proto-fd-max` and the namespace's `nsup-period`, as every node the official client tends reports them.
async fn reported(env: &Env) -> Vec<(String, String)> {
    let seeds: Vec<String> = pods(&env.client, &env.ns, NAME)
        .await
        .iter()
        .filter_map(|p| env.sim.node_addr(&env.ns, &p.name_any()))
        .map(|a| a.to_string())
        .collect();
    let client = Client::new(&ClientPolicy::default(), &seeds.join(",")).await.expect("the client tends the cluster");
    let mut out = Vec::new();
    for node in client.nodes() {
        let commands = ["get-config:context=service", "get-config:context=namespace;id=test"];
        let answers = node.info(&AdminPolicy::default(), &commands).await.expect("info");
        let value = |command: &str, key: &str| {
            answers[command].split(';').find_map(|kv| kv.strip_prefix(&format!("{key}="))).unwrap_or("").to_string()
        };
        out.push((value(commands[0], "proto-fd-max"), value(commands[1], "nsup-period")));
    }
    let _ = client.close().await;
    out
}

async fn uids(env: &Env) -> BTreeMap<String, String> {
    pods(&env.client, &env.ns, NAME).await.iter().map(|p| (p.name_any(), p.uid().unwrap_or_default())).collect()
}

fn restarted(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    before.iter().filter(|(name, uid)| after.get(*name) != Some(uid)).map(|(name, _)| name.clone()).collect()
}

/// Warm restarts of each pod of `cluster` so far, by pod name (pods without any left out).
fn warm(env: &Env, cluster: &str, size: usize) -> BTreeMap<String, usize> {
    (0..size)
        .map(|i| format!("{cluster}-0-{i}"))
        .map(|p| (p.clone(), env.sim.warm_restarts(&format!("{}/{p}", env.ns))))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn counts(pods: &[&str], n: usize) -> BTreeMap<String, usize> {
    pods.iter().map(|p| (p.to_string(), n)).collect()
}

/// Apply `spec`, wait for Completed, and say how long it took.
async fn change(env: &Env, spec: Value) -> Duration {
    let start = Instant::now();
    patch_spec(&env.client, &env.ns, NAME, spec).await;
    wait_completed(&env.client, &env.ns, NAME, T).await;
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_changes_restart_nothing_static_ones_restart_and_a_refusal_restarts_only_that_pod() {
    let env = env("e2e-dynconf").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut manifest = cluster_manifest(NAME, &env.ns, 3);
    manifest["spec"]["enableDynamicConfigUpdate"] = json!(true);
    manifest["spec"]["aerospikeConfig"] = config(15000, json!({}));
    create(&env.client, &env.ns, &manifest).await;
    wait_completed(&env.client, &env.ns, NAME, T).await;
    let first = uids(&env).await;
    assert_eq!(first.len(), 3);
    assert!(reported(&env).await.iter().all(|v| *v == ("15000".into(), "60".into())));

    // 1. Dynamic keys only: every node takes them, no pod restarts.
    let took = change(&env, json!({"aerospikeConfig": config(20000, json!({"nsup-period": 120}))})).await;
    let after = uids(&env).await;
    assert_eq!(restarted(&first, &after), Vec::<String>::new(), "no pod restarted for a dynamic change");
    let values = reported(&env).await;
    assert_eq!(values.len(), 3);
    assert!(values.iter().all(|v| *v == ("20000".into(), "120".into())), "{values:?}");
    let events = event_reasons(&env.client, &env.ns, NAME).await;
    assert_eq!(events.iter().filter(|(r, _)| r == "DynamicConfigUpdated").count(), 3, "{events:?}");
    let sent: Vec<String> = env.sim.commands_for(&format!("{}/{NAME}-0-0", env.ns));
    assert!(sent.iter().any(|c| c == "set-config:context=service;proto-fd-max=20000"), "{sent:?}");
    assert!(sent.iter().any(|c| c == "set-config:context=namespace;id=test;nsup-period=120"), "{sent:?}");
    let c = api(&env.client, &env.ns).get(NAME).await.unwrap();
    let st = c.status.unwrap();
    assert!(st.pods.values().all(|p| p.dynamic_config_update_status.is_empty()), "{:?}", st.pods);
    eprintln!("dynamic change: 0 pod restarts, {took:?} to Completed");

    // 2. A static key in the same edit: the pods restart, and come back with both values.
    let took = change(
        &env,
        json!({"aerospikeConfig": config(25000, json!({"nsup-period": 120, "partition-tree-sprigs": 512}))}),
    )
    .await;
    let second = uids(&env).await;
    assert_eq!(restarted(&after, &second), Vec::<String>::new(), "a static change keeps the pods");
    let all = [format!("{NAME}-0-0"), format!("{NAME}-0-1"), format!("{NAME}-0-2")];
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_eq!(warm(&env, NAME, 3), counts(&all, 1), "a static change warm-restarts every server once");
    assert!(reported(&env).await.iter().all(|v| *v == ("25000".into(), "120".into())));
    let events = event_reasons(&env.client, &env.ns, NAME).await;
    assert_eq!(events.iter().filter(|(r, _)| r == "PodWarmRestarted").count(), 3, "{events:?}");
    eprintln!("static change: 0 pod restarts, 3 warm restarts, {took:?} to Completed");

    // 3. A node that refuses the change: that pod alone restarts (with the new config), the others take it live.
    let refusing = format!("{NAME}-0-1");
    env.sim.set_fault(FaultTarget::pod(&env.ns, &refusing), Fault::refuse_set_config());
    let took = change(
        &env,
        json!({"aerospikeConfig": config(30000, json!({"nsup-period": 120, "partition-tree-sprigs": 512}))}),
    )
    .await;
    let third = uids(&env).await;
    assert_eq!(restarted(&second, &third), Vec::<String>::new(), "no pod is replaced");
    let mut expected = counts(&all, 1);
    expected.insert(refusing.clone(), 2);
    assert_eq!(warm(&env, NAME, 3), expected, "only the refusing node restarts (warm)");
    assert!(reported(&env).await.iter().all(|v| v.0 == "30000"));
    let events = event_reasons(&env.client, &env.ns, NAME).await;
    assert!(events.iter().any(|(r, note)| r == "DynamicConfigUpdateFailed" && note.contains(&refusing)), "{events:?}");
    env.sim.clear_faults();
    eprintln!("refused change: 1 warm restart, {took:?} to Completed");

    // 4. An AP namespace's replication factor, alone: set on every node and reclustered, no restart (the reference's
    // way with dynamic updates).
    let rf3 = json!({"nsup-period": 120, "partition-tree-sprigs": 512, "replication-factor": 3});
    change(&env, json!({"aerospikeConfig": config(30000, rf3.clone())})).await;
    let rf_done = uids(&env).await;
    assert_eq!(restarted(&third, &rf_done), Vec::<String>::new(), "no pod restarted for the replication factor");
    let sent = env.sim.commands_for(&format!("{}/{NAME}-0-0", env.ns));
    let set_at = sent.iter().position(|c| c == "set-config:context=namespace;id=test;replication-factor=3");
    let recluster_at = sent.iter().rposition(|c| c == "recluster:");
    assert!(set_at.is_some() && recluster_at > set_at, "set, then recluster: {sent:?}");

    // 5. The same kind of change as 1 without dynamic updates: every pod restarts (the number for the note).
    let took = change(&env, json!({"enableDynamicConfigUpdate": false, "aerospikeConfig": config(35000, rf3)})).await;
    let fourth = uids(&env).await;
    assert_eq!(restarted(&rf_done, &fourth), Vec::<String>::new(), "a config change keeps the pods");
    let mut expected = counts(&all, 2);
    expected.insert(refusing.clone(), 3);
    assert_eq!(warm(&env, NAME, 3), expected, "without dynamic updates every server restarts (warm) for it");

    // 6. A server whose warm restart fails: that pod alone is replaced (the reference falls back the same way).
    env.sim.set_fault(FaultTarget::pod(&env.ns, &refusing), Fault::refuse_warm_restart());
    change(
        &env,
        json!({"aerospikeConfig": config(36000, json!({"nsup-period": 120, "partition-tree-sprigs": 512,
                                                                  "replication-factor": 3}))}),
    )
    .await;
    let fifth = uids(&env).await;
    assert_eq!(restarted(&fourth, &fifth), vec![refusing.clone()], "the pod whose warm restart failed is replaced");
    let events = event_reasons(&env.client, &env.ns, NAME).await;
    assert!(events.iter().any(|(r, note)| r == "WarmRestartFailed" && note.contains(&refusing)), "{events:?}");
    assert!(reported(&env).await.iter().all(|v| v.0 == "36000"));
    env.sim.clear_faults();
    eprintln!("dynamic updates off: 0 pod restarts, 3 warm restarts, {took:?} to Completed");
    finish(&env, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_restarts_exactly_its_pods_once_and_bad_operations_are_refused() {
    let env = env("e2e-operations").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let name = "ops";
    create(&env.client, &env.ns, &cluster_manifest(name, &env.ns, 3)).await;
    let c = wait_completed(&env.client, &env.ns, name, T).await;
    // Status says where clients reach each node: what the node advertises (service-clear-std), its node's
    // InternalIP with the default network policy (tests/operator_network.rs covers every access type).
    for p in pods(&env.client, &env.ns, name).await {
        let ip = p.status.as_ref().and_then(|s| s.host_ip.clone()).unwrap();
        let entry = &c.status.as_ref().unwrap().pods[&p.name_any()];
        assert_eq!(entry.aerospike.access_endpoints, vec![format!("{ip}:3000")], "{}", p.name_any());
    }
    let uids = |env: &Env| {
        let (client, ns) = (env.client.clone(), env.ns.clone());
        async move { pods(&client, &ns, name).await.iter().map(|p| (p.name_any(), p.uid().unwrap_or_default())).collect() }
    };
    let before: BTreeMap<String, String> = uids(&env).await;

    // WarmRestart of two named pods: those two restart, no other, and status records the operation.
    let ops =
        json!([{"id": "warm-1", "kind": "WarmRestart", "podList": [format!("{name}-0-0"), format!("{name}-0-2")]}]);
    patch_spec(&env.client, &env.ns, name, json!({"operations": ops})).await;
    let c = wait_completed(&env.client, &env.ns, name, T).await;
    let after: BTreeMap<String, String> = uids(&env).await;
    assert_eq!(restarted(&before, &after), Vec::<String>::new(), "a warm restart keeps the pods");
    let (p0, p2) = (format!("{name}-0-0"), format!("{name}-0-2"));
    assert_eq!(warm(&env, name, 3), counts(&[&p0, &p2], 1), "exactly the two named servers restarted, once");
    let status_ops = serde_json::to_value(&c.status.unwrap().operations).unwrap();
    assert_eq!(status_ops, ops, "status keeps the finished operation");
    let events = event_reasons(&env.client, &env.ns, name).await;
    assert!(
        events.iter().any(|(r, note)| r == "PodWarmRestarted" && note.contains("operation WarmRestart warm-1")),
        "{events:?}"
    );
    // Nothing more happens for it: a resync restarts nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(uids(&env).await, after, "an operation runs once");
    assert_eq!(warm(&env, name, 3), counts(&[&p0, &p2], 1), "an operation runs once");

    // An operation naming a pod that does not exist is refused with the field, and nothing restarts.
    let bad = json!([{"id": "bad", "kind": "PodRestart", "podList": [format!("{name}-0-9")]}]);
    patch_spec(&env.client, &env.ns, name, json!({"operations": bad})).await;
    let c = wait_for("the bad operation refused", T, || async {
        let c = api(&env.client, &env.ns).get(name).await.ok()?;
        let (status, reason, message) = condition(&c, "Degraded")?;
        (status == "True" && reason == "InvalidSpec").then_some(message)
    })
    .await;
    assert!(c.contains("spec.operations[0].podList") && c.contains(&format!("{name}-0-9")), "{c}");
    assert_eq!(uids(&env).await, after, "nothing restarted for a refused operation");

    // PodRestart of every pod (no podList).
    patch_spec(&env.client, &env.ns, name, json!({"operations": [{"id": "all", "kind": "PodRestart"}]})).await;
    wait_completed(&env.client, &env.ns, name, T).await;
    let restarted_all: BTreeMap<String, String> = uids(&env).await;
    assert_eq!(restarted(&after, &restarted_all).len(), 3);

    // An AP namespace's replication factor changes (alone): the pods restart with it, and the nodes report it.
    let mut config = cluster_manifest(name, &env.ns, 3)["spec"]["aerospikeConfig"].clone();
    config["namespaces"][0]["replication-factor"] = json!(3);
    patch_spec(&env.client, &env.ns, name, json!({"aerospikeConfig": config})).await;
    wait_completed(&env.client, &env.ns, name, T).await;
    assert_eq!(restarted(&restarted_all, &uids(&env).await), Vec::<String>::new(), "a config change keeps the pods");
    let p1 = format!("{name}-0-1");
    let mut expected = counts(&[&p0, &p1, &p2], 1);
    expected.insert(p0.clone(), 2);
    expected.insert(p2.clone(), 2);
    assert_eq!(warm(&env, name, 3), expected, "every server restarted in place for it");
    for p in pods(&env.client, &env.ns, name).await {
        let addr = env.sim.node_addr(&env.ns, &p.name_any()).unwrap();
        let client = Client::new(&ClientPolicy::default(), &addr.to_string()).await.unwrap();
        let node = client.nodes().into_iter().find(|n| n.address() == addr.to_string()).unwrap();
        let answer = node.info(&AdminPolicy::default(), &["get-config:context=namespace;id=test"]).await.unwrap();
        assert!(answer["get-config:context=namespace;id=test"].contains("replication-factor=3"), "{answer:?}");
        let _ = client.close().await;
    }
    finish(&env, op).await;
}
