//! The Aerospike simulator on the local control plane, driven through the operator's own info client and safety
//! checks: it answers on each pod IP, forms one cluster, migrates after membership changes, quiesces, and honours
//! every fault knob. Each test has its own namespace and its own simulator watching only that namespace.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aerospike_kubernetes_operator::asinfo::{
    self, AerospikeNode, InfoErrorKind, QuiesceOptions, QuiesceOutcome, SafetyError, TcpInfoClient,
};
use ako_simulator::{Fault, FaultTarget, Simulator, SimulatorOptions, What};
use ako_testbed::cluster::LocalCluster;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const MIGRATIONS: Duration = Duration::from_millis(1500);

/// A namespace with a 3-pod "Aerospike" StatefulSet (the operator's labels, rack 1) and a simulator for it.
/// Returns the pods' info addresses in ordinal order.
async fn setup(ns: &str, cr: &str) -> (Client, Simulator, Vec<SocketAddr>) {
    let cluster = LocalCluster::shared().await.unwrap();
    let client = cluster.client().await;
    let namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    let sim = Simulator::start(
        client.clone(),
        SimulatorOptions { namespace: Some(ns.into()), migration_duration: MIGRATIONS, ..Default::default() },
    )
    .await;
    let labels = json!({"app": "aerospike-cluster", "aerospike.com/cr": cr, "aerospike.com/rack-id": "1"});
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": format!("{cr}-1")},
        "spec": {
            "replicas": 3,
            "serviceName": cr,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "aerospike-server", "image": "aerospike/aerospike-server-enterprise:7.2.0.1"}]}
            }
        }
    }))
    .unwrap();
    Api::<StatefulSet>::namespaced(client.clone(), ns).create(&PostParams::default(), &sts).await.unwrap();
    sim.wait_for_members(ns, cr, 3, Duration::from_secs(90)).await.unwrap();
    let addrs = (0..3)
        .map(|i| sim.node_addr(ns, &format!("{cr}-1-{i}")).unwrap_or_else(|| panic!("{cr}-1-{i} has no address")))
        .collect();
    (client, sim, addrs)
}

fn info_client() -> TcpInfoClient {
    TcpInfoClient::new(Duration::from_secs(1), Duration::from_millis(800))
}

/// Waits until the operator's stability check passes on `addrs`.
async fn wait_stable(client: &TcpInfoClient, addrs: &[SocketAddr], timeout: Duration) -> asinfo::StableCluster {
    let deadline = Instant::now() + timeout;
    loop {
        match asinfo::check_cluster_stable(client, addrs, addrs.len()).await {
            Ok(s) => return s,
            Err(e) => assert!(Instant::now() < deadline, "not stable after {timeout:?}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `f` until it returns true.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_forms_a_cluster_and_migrates_after_membership_changes() {
    let (kube, sim, addrs) = setup("sim-basic", "aero").await;
    let client = info_client();

    // One cluster of 3 on the pod IPs, as the operator's client reads it.
    let stable = wait_stable(&client, &addrs, Duration::from_secs(10)).await;
    assert_eq!(stable.cluster_size, 3);
    for (i, addr) in addrs.iter().enumerate() {
        let node = AerospikeNode::new(&client, *addr);
        let stats = node.statistics().await.unwrap();
        assert_eq!(stats.cluster_size, 3);
        assert_eq!(stats.cluster_key, stable.cluster_key);
        assert_eq!(stats.migrate_partitions_remaining, 0);
        assert_eq!(node.node_id().await.unwrap(), format!("1A{i}"));
        assert_eq!(node.build().await.unwrap().raw, "7.2.0.1");
        assert_eq!(node.namespaces().await.unwrap(), ["test"]);
    }
    assert_eq!(sim.cluster_key("sim-basic", "aero"), Some(stable.cluster_key.clone()));
    // cluster-stable agrees; only the principal (lowest node id) answers ok to recluster.
    let key = asinfo::check_cluster_stable_command(&client, &addrs, None).await.unwrap();
    assert_eq!(key, stable.cluster_key);
    assert_eq!(asinfo::recluster_all(&client, &addrs).await.unwrap(), addrs[0]);

    // A pod restart is a membership change: new key, migrations, then stable again with the new pod.
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "sim-basic");
    pods.delete("aero-1-2", &DeleteParams::default()).await.unwrap();
    let node0 = AerospikeNode::new(&client, addrs[0]);
    let old_key = &stable.cluster_key;
    eventually("migrations reported after the pod left", Duration::from_secs(10), || async move {
        node0.statistics().await.is_ok_and(|s| s.migrate_partitions_remaining > 0 && &s.cluster_key != old_key)
    })
    .await;
    let err = asinfo::check_cluster_stable_command(&client, &addrs[..1], None).await.unwrap_err();
    assert!(matches!(err, SafetyError::Unstable { .. }), "{err}");
    sim.wait_for_members("sim-basic", "aero", 3, Duration::from_secs(60)).await.unwrap();
    let addrs: Vec<SocketAddr> = (0..3).map(|i| sim.node_addr("sim-basic", &format!("aero-1-{i}")).unwrap()).collect();
    let after = wait_stable(&client, &addrs, Duration::from_secs(15)).await;
    assert_ne!(after.cluster_key, stable.cluster_key);
    let history: Vec<What> = sim.history_for("sim-basic/aero-1-2").into_iter().map(|r| r.what).collect();
    let lifecycle: Vec<&str> = history
        .iter()
        .filter_map(|w| match w {
            What::Joined { .. } => Some("joined"),
            What::Left => Some("left"),
            What::WarmRestarted => Some("warm-restarted"),
            What::Command { .. } => None,
        })
        .collect();
    assert_eq!(lifecycle, ["joined", "left", "joined"]);

    // Quiesce through the operator's sequence: recorded, reported, undone.
    let options = QuiesceOptions { poll_interval: Duration::from_millis(100), attempts: 50 };
    let outcome = asinfo::quiesce_batch_with(&client, &addrs, &addrs[1..2], options).await.unwrap();
    assert!(matches!(outcome, QuiesceOutcome::Quiesced { principal, .. } if principal == addrs[0]), "{outcome:?}");
    let ns1 = AerospikeNode::new(&client, addrs[1]).namespace_stats("test").await.unwrap();
    assert_eq!((ns1.pending_quiesce, ns1.effective_is_quiesced, ns1.nodes_quiesced), (Some(true), Some(true), Some(1)));
    let commands = sim.commands_for("sim-basic/aero-1-1");
    let quiesce_at = commands.iter().position(|c| c == "quiesce:").expect("quiesce: was sent");
    assert!(commands[..quiesce_at].iter().any(|c| c.starts_with("cluster-stable:size=3")), "{commands:?}");
    assert!(commands[quiesce_at..].iter().any(|c| c == "recluster:"), "{commands:?}");
    assert!(!sim.commands_for("sim-basic/aero-1-2").contains(&"quiesce:".to_string()));
    let undone = asinfo::undo_quiesce(&client, &addrs).await.unwrap();
    assert_eq!(undone, [addrs[1]]);
    let ns1 = AerospikeNode::new(&client, addrs[1]).namespace_stats("test").await.unwrap();
    assert_eq!((ns1.pending_quiesce, ns1.effective_is_quiesced), (Some(false), Some(false)));

    // Scaling down removes the node from the cluster and the listener goes away.
    let gone = addrs[2];
    let sts: Api<StatefulSet> = Api::namespaced(kube.clone(), "sim-basic");
    sts.patch_scale("aero-1", &Default::default(), &kube::api::Patch::Merge(json!({"spec": {"replicas": 2}})))
        .await
        .unwrap();
    sim.wait_for_members("sim-basic", "aero", 2, Duration::from_secs(30)).await.unwrap();
    let stable = wait_stable(&client, &addrs[..2], Duration::from_secs(15)).await;
    assert_eq!(stable.cluster_size, 2);
    let c = &client;
    eventually("the removed pod stops listening", Duration::from_secs(5), || async move {
        AerospikeNode::new(c, gone).info("node").await.is_err()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_honours_every_fault_knob() {
    let (_kube, sim, addrs) = setup("sim-faults", "flaky").await;
    let client = info_client();
    wait_stable(&client, &addrs, Duration::from_secs(10)).await;
    let pod1 = FaultTarget::pod("sim-faults", "flaky-1-1");

    // A node that accepts connections but never answers: the operator's check names it as unreachable.
    sim.set_fault(pod1.clone(), Fault::hang());
    let err = AerospikeNode::new(&client, addrs[1]).statistics().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let err = asinfo::check_cluster_stable(&client, &addrs, 3).await.unwrap_err();
    assert!(matches!(err, SafetyError::Unreachable { node, .. } if node == addrs[1]), "{err}");
    let recorded = sim.history_for("sim-faults/flaky-1-1");
    assert!(recorded.iter().any(|r| r.what == What::Command { command: "statistics".into(), answered: false }));
    // The other nodes still answer.
    AerospikeNode::new(&client, addrs[0]).statistics().await.unwrap();

    // A node that refuses connections.
    sim.set_fault(pod1.clone(), Fault::refuse());
    let (c, a1) = (&client, addrs[1]);
    eventually("connections refused", Duration::from_secs(5), || async move {
        matches!(
            AerospikeNode::new(c, a1).statistics().await,
            Err(e) if matches!(e.kind, InfoErrorKind::ConnectRefused)
        )
    })
    .await;
    let err = asinfo::check_cluster_stable(&client, &addrs, 3).await.unwrap_err();
    assert!(matches!(err, SafetyError::Unreachable { node, .. } if node == addrs[1]), "{err}");

    // Cleared: it listens and answers again, as a member of the same cluster.
    sim.set_fault(pod1.clone(), Fault::default());
    let stable = wait_stable(&client, &addrs, Duration::from_secs(10)).await;
    assert_eq!(stable.cluster_size, 3);

    // Slow answers, for the whole cluster: answered, but late.
    sim.set_fault(FaultTarget::cluster("sim-faults", "flaky"), Fault::delay(Duration::from_millis(400)));
    for addr in &addrs {
        let started = Instant::now();
        AerospikeNode::new(&client, *addr).node_id().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(400), "{addr} answered in {:?}", started.elapsed());
    }
    let impatient = TcpInfoClient::new(Duration::from_secs(1), Duration::from_millis(150));
    let err = AerospikeNode::new(&impatient, addrs[2]).node_id().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    sim.set_fault(FaultTarget::cluster("sim-faults", "flaky"), Fault::default());

    // Migrations that never finish (one node's fault shows on the whole cluster, as on a real one): still
    // pending long after the normal migration time.
    sim.set_fault(FaultTarget::pod("sim-faults", "flaky-1-2"), Fault::stuck_migrations());
    tokio::time::sleep(MIGRATIONS * 2).await;
    let err = asinfo::check_cluster_stable(&client, &addrs, 3).await.unwrap_err();
    assert!(matches!(err, SafetyError::MigrationsPending { remaining, .. } if remaining > 0), "{err}");
    let err = asinfo::check_cluster_stable_command(&client, &addrs, None).await.unwrap_err();
    assert!(matches!(err, SafetyError::Unstable { ref answer, .. } if answer == "ERROR::unstable-cluster"), "{err}");
    sim.clear_faults();
    wait_stable(&client, &addrs, Duration::from_secs(5)).await;

    // A whole cluster that hangs.
    sim.set_fault(FaultTarget::cluster("sim-faults", "flaky"), Fault::hang());
    for addr in &addrs {
        assert!(AerospikeNode::new(&client, *addr).statistics().await.unwrap_err().is_timeout());
    }
    sim.clear_faults();
    wait_stable(&client, &addrs, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_stops_listening_when_stopped() {
    let (_kube, mut sim, addrs) = setup("sim-stop", "brief").await;
    let client = info_client();
    wait_stable(&client, &addrs, Duration::from_secs(10)).await;
    sim.stop();
    let (c, all) = (&client, &addrs);
    eventually("listeners closed", Duration::from_secs(5), || async move {
        for addr in all {
            if AerospikeNode::new(c, *addr).node_id().await.is_ok() {
                return false;
            }
        }
        true
    })
    .await;
    // Listing pods still works: the simulator only stopped itself.
    let pods: Api<Pod> = Api::namespaced(LocalCluster::shared().await.unwrap().client().await, "sim-stop");
    assert_eq!(pods.list(&ListParams::default()).await.unwrap().items.len(), 3);
}

/// The exporter sidecar: a pod declaring a port named `exporter` is served /metrics there, with the official
/// exporter's names and labels (METRIC_LABELS included), values that follow the node (size, stop-writes), and
/// only `aerospike_node_up 0` while the node does not answer. A pod without the port gets no exporter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_serves_an_exporter_beside_nodes_that_declare_one() {
    let (ns, cr) = ("sim-exporter", "watched");
    let cluster = LocalCluster::shared().await.unwrap();
    let client = cluster.client().await;
    let namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    let sim = Simulator::start(
        client.clone(),
        SimulatorOptions { namespace: Some(ns.into()), migration_duration: MIGRATIONS, ..Default::default() },
    )
    .await;
    let labels = json!({"app": "aerospike-cluster", "aerospike.com/cr": cr, "aerospike.com/rack-id": "1"});
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": format!("{cr}-1")},
        "spec": {
            "replicas": 2,
            "serviceName": cr,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [
                    {"name": "aerospike-server", "image": "aerospike/aerospike-server-enterprise:7.2.0.1"},
                    {"name": "exporter", "image": "aerospike/aerospike-prometheus-exporter:1.16.1",
                     "ports": [{"name": "exporter", "containerPort": 9145}],
                     "env": [
                        {"name": "RACK", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['aerospike.com/rack-id']"}}},
                        {"name": "METRIC_LABELS", "value": format!("cluster=\"{cr}\",rack=\"$(RACK)\"")},
                     ]},
                ]}
            }
        }
    }))
    .unwrap();
    Api::<StatefulSet>::namespaced(client.clone(), ns).create(&PostParams::default(), &sts).await.unwrap();
    sim.wait_for_members(ns, cr, 2, Duration::from_secs(90)).await.unwrap();
    let node = sim.node_addr(ns, &format!("{cr}-1-0")).unwrap();
    let exporter = SocketAddr::new(node.ip(), 9145);
    let scrape = || async move {
        match ako_testbed::prometheus::http_get(exporter, "/metrics").await {
            Ok((200, body)) => body,
            other => panic!("GET {exporter}/metrics: {other:?}"),
        }
    };
    let labels = format!(r#"cluster_name="{cr}",service="{node}",cluster="{cr}",rack="1""#);
    eventually("the exporter answers", Duration::from_secs(10), || async move {
        ako_testbed::prometheus::http_get(exporter, "/metrics").await.is_ok()
    })
    .await;
    let body = scrape().await;
    for line in [
        format!("aerospike_node_up{{{labels}}} 1"),
        format!("aerospike_node_stats_cluster_size{{{labels}}} 2"),
        format!(r#"aerospike_namespace_stop_writes{{{labels},ns="test"}} 0"#),
        format!(r#"aerospike_namespace_unavailable_partitions{{{labels},ns="test"}} 0"#),
        "# TYPE aerospike_namespace_data_avail_pct gauge".to_string(),
    ] {
        assert!(body.lines().any(|l| l == line), "no `{line}` in:\n{body}");
    }
    assert_eq!(ako_testbed::prometheus::http_get(exporter, "/other").await.unwrap().0, 404);

    let pod0 = FaultTarget::pod(ns, &format!("{cr}-1-0"));
    sim.set_fault(pod0.clone(), Fault::stop_writes());
    let body = scrape().await;
    assert!(body.contains(&format!(r#"aerospike_namespace_stop_writes{{{labels},ns="test"}} 1"#)), "{body}");

    sim.set_fault(pod0.clone(), Fault::refuse());
    let body = scrape().await;
    assert_eq!(body, format!("# TYPE aerospike_node_up gauge\naerospike_node_up{{{labels}}} 0\n"));

    sim.set_fault(pod0, Fault::default());
    assert!(scrape().await.contains(&format!("aerospike_node_up{{{labels}}} 1")));
    Api::<Namespace>::all(client).delete(ns, &DeleteParams::default()).await.unwrap();
}
