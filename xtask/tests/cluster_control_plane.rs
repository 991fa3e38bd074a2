//! The local control plane itself: it starts, its nodes are Ready and zoned, two run side by side, the apiserver
//! restarts with its data, and stopping leaves no process or folder behind.
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use xtask::cluster::{self, ClusterOptions, LocalCluster};

fn alive(pid: u32) -> bool {
    // A zombie is gone for our purposes (its parent reaps it).
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|s| s.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

async fn ready_nodes(client: &Client) -> Vec<Node> {
    Api::<Node>::all(client.clone()).list(&ListParams::default()).await.unwrap().items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_starts_with_ready_zoned_nodes() {
    let cluster = LocalCluster::start(ClusterOptions::default()).await.unwrap();
    assert!(cluster.kubeconfig_path().is_file());
    for component in [cluster::ETCD, cluster::APISERVER, cluster::CONTROLLER_MANAGER, cluster::SCHEDULER, cluster::KWOK]
    {
        assert!(cluster.log_path(component).is_file(), "no log for {component}");
    }
    let client = cluster.client().await;

    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.33.13");

    let nodes = ready_nodes(&client).await;
    assert_eq!(nodes.len(), 6);
    let mut per_zone: BTreeMap<String, usize> = BTreeMap::new();
    for node in &nodes {
        let name = node.metadata.name.clone().unwrap();
        let labels = node.metadata.labels.clone().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], name);
        assert_eq!(labels["topology.kubernetes.io/region"], cluster::REGION);
        *per_zone.entry(labels["topology.kubernetes.io/zone"].clone()).or_default() += 1;
        let ready = node.status.as_ref().unwrap().conditions.as_ref().unwrap().iter().find(|c| c.type_ == "Ready");
        assert_eq!(ready.map(|c| c.status.as_str()), Some("True"), "{name} not Ready");
        let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        assert!(taints.is_empty(), "{name} still tainted: {taints:?}");
    }
    assert_eq!(per_zone, cluster::ZONES.iter().map(|z| (z.to_string(), 2)).collect());
    assert!(
        cluster.pod_cidr().starts_with("127.") && cluster.pod_cidr().ends_with(".0.0/16"),
        "{}",
        cluster.pod_cidr()
    );

    // The admin identity may do anything; the controllers and scheduler are up (a namespace gets its default
    // ServiceAccount and kube-root-ca.crt from the controller-manager).
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "probe"}})).unwrap())
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "probe");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cms.get_opt("kube-root-ca.crt").await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "kube-root-ca.crt never published");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_side_by_side_do_not_collide_and_stop_cleanly() {
    let opts = ClusterOptions { nodes: 2, ..Default::default() };
    let (a, b) = tokio::join!(LocalCluster::start(opts.clone()), LocalCluster::start(opts));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.apiserver_url(), b.apiserver_url());
    assert_ne!(a.pod_cidr(), b.pod_cidr());
    assert_ne!(a.state_dir(), b.state_dir());

    // Separate data: a namespace made in one is not in the other.
    let (ca, cb) = (a.client().await, b.client().await);
    Api::<Namespace>::all(ca.clone())
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "only-in-a"}})).unwrap())
        .await
        .unwrap();
    assert!(Api::<Namespace>::all(cb.clone()).get_opt("only-in-a").await.unwrap().is_none());
    assert_eq!(ready_nodes(&ca).await.len(), 2);
    assert_eq!(ready_nodes(&cb).await.len(), 2);

    // Stopping one leaves the other working; stopping kills every process and removes the folder.
    let pids_a = a.pids();
    assert_eq!(pids_a.len(), 5, "{pids_a:?}");
    let dir_a = a.state_dir().to_path_buf();
    drop(a);
    for (name, pid) in &pids_a {
        assert!(!alive(*pid), "{name} (pid {pid}) survived the stop");
    }
    assert!(!dir_a.exists(), "{} was not removed", dir_a.display());
    assert_eq!(ready_nodes(&cb).await.len(), 2);

    let pids_b = b.pids();
    b.stop();
    b.stop(); // idempotent
    for (name, pid) in &pids_b {
        assert!(!alive(*pid), "{name} (pid {pid}) survived the stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_restart_keeps_data_and_clients_reconnect() {
    let cluster = LocalCluster::start(ClusterOptions { nodes: 1, ..Default::default() }).await.unwrap();
    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "before"}, "data": {"k": "v"}})).unwrap(),
    )
    .await
    .unwrap();
    let url = cluster.apiserver_url().to_string();
    let before = cluster.pids().into_iter().find(|(n, _)| n == cluster::APISERVER).unwrap().1;

    cluster.restart_apiserver_after(Duration::from_millis(500)).await.unwrap();

    let after = cluster.pids().into_iter().find(|(n, _)| n == cluster::APISERVER).unwrap().1;
    assert_ne!(before, after, "a new apiserver process");
    assert!(!alive(before));
    assert_eq!(cluster.apiserver_url(), url, "same address");
    // The same client object works again (new connections), and the data survived in etcd.
    let cm = cms.get("before").await.unwrap();
    assert_eq!(cm.data.unwrap()["k"], "v");
    // The controllers reconnected: a new namespace still gets its default ServiceAccount.
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "after"}})).unwrap())
        .await
        .unwrap();
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client, "after");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sas.get_opt("default").await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "controller-manager did not reconnect");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_not_ready_in_time_is_named_with_its_log_and_nothing_is_left_running() {
    let dir = std::env::temp_dir().join(format!("ako-cluster-test-timeout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The apiserver cannot be ready within a millisecond of its start (etcd may be: its port opens at once).
    let opts = ClusterOptions { timeout: Duration::from_millis(1), state_dir: Some(dir.clone()), ..Default::default() };
    let err = format!("{:#}", LocalCluster::start(opts).await.err().expect("a start that cannot succeed"));
    let component = [cluster::ETCD, cluster::APISERVER]
        .into_iter()
        .find(|c| err.contains(&format!("{c} did not become ready within 1ms")))
        .unwrap_or_else(|| panic!("no component named: {err}"));
    assert!(err.contains(&format!("see its log {}", dir.join(format!("{component}.log")).display())), "{err}");
    let state = cluster::StateFile::read(&dir).unwrap().expect("state file written");
    assert!(state.processes.is_empty(), "{:?}", state.processes);
    std::fs::remove_dir_all(&dir).unwrap();
}
