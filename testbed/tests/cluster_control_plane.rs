//! The local control plane itself: it starts, its nodes are Ready and zoned, two run side by side, the apiserver
//! restarts with its data, and stopping leaves no process or folder behind.
use std::collections::BTreeMap;
use std::time::Duration;

use ako_testbed::cluster::{self, ClusterOptions, LocalCluster};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

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

/// The fake kubelet ends each deleted pod once: a StatefulSet pod deleted N times has exactly N+1 incarnations,
/// each Ready with a loopback IP. (kwok's built-in stages deleted by name a second time, which now and then killed
/// the incarnation the StatefulSet had just recreated.) Services get loopback ClusterIPs from the cluster's range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pod_deletion_ends_exactly_one_incarnation_and_services_get_loopback_cluster_ips() {
    use futures::StreamExt;
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{Pod, Service};
    use kube::runtime::watcher;

    let cluster = LocalCluster::start(ClusterOptions::default()).await.unwrap();
    let client = cluster.client().await;
    let ns = "incarnations";
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap())
        .await
        .unwrap();
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2, "podManagementPolicy": "Parallel", "updateStrategy": {"type": "OnDelete"},
            "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "example.com/c:1"}],
                                  "terminationGracePeriodSeconds": 30}}
        }
    }))
    .unwrap();
    Api::<StatefulSet>::namespaced(client.clone(), ns).create(&PostParams::default(), &sts).await.unwrap();

    // Every incarnation of web-1, from a watch (so none is missed however short it lives).
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let watch = tokio::spawn({
        let (pods, seen) = (pods.clone(), seen.clone());
        async move {
            let cfg = watcher::Config::default().fields("metadata.name=web-1");
            let mut events = watcher(pods, cfg).boxed();
            while let Some(Ok(event)) = events.next().await {
                if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = event {
                    let uid = p.metadata.uid.unwrap_or_default();
                    let mut seen = seen.lock().unwrap();
                    if !seen.contains(&uid) {
                        seen.push(uid);
                    }
                }
            }
        }
    });
    let ready_incarnation = |previous: Option<String>| {
        let pods = pods.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(p) = pods.get_opt("web-1").await.unwrap() {
                    let ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                    let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
                    if ready && p.metadata.deletion_timestamp.is_none() && p.metadata.uid != previous {
                        assert!(ip.starts_with("127."), "pod IP {ip}");
                        return p.metadata.uid.unwrap();
                    }
                }
                assert!(std::time::Instant::now() < deadline, "web-1 not recreated and Ready in time");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let mut uid = ready_incarnation(None).await;
    const DELETIONS: usize = 12;
    for _ in 0..DELETIONS {
        pods.delete("web-1", &Default::default()).await.unwrap();
        uid = ready_incarnation(Some(uid)).await;
    }
    // Give a stray second delete every chance to land before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    watch.abort();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), DELETIONS + 1, "incarnations of web-1: {seen:?}");
    assert_eq!(seen.last(), Some(&uid), "the last incarnation is the one still running");

    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "probe"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 9443}]}
    }))
    .unwrap();
    let svc = Api::<Service>::namespaced(client.clone(), ns).create(&PostParams::default(), &svc).await.unwrap();
    let ip: std::net::Ipv4Addr = svc.spec.unwrap().cluster_ip.unwrap().parse().unwrap();
    let (base, len) = cluster.service_cidr().split_once('/').unwrap();
    let (base, len) = (u32::from(base.parse::<std::net::Ipv4Addr>().unwrap()), len.parse::<u32>().unwrap());
    let mask = u32::MAX << (32 - len);
    assert!(
        ip.is_loopback() && u32::from(ip) & mask == base & mask,
        "ClusterIP {ip} outside the plane's Service CIDR {}",
        cluster.service_cidr()
    );
    // The Service range sits inside the plane's own loopback /16, next to its pods.
    assert_eq!(ip.octets()[1].to_string(), cluster.pod_cidr().split('.').nth(1).unwrap());
}
