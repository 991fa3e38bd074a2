//! Storage-backed StatefulSets on the local control plane: the scheduler places the pods on fake nodes, kwok runs
//! them on loopback pod IPs, and the fake provisioner's volumes get their claims Bound (and cleaned up).
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ako_testbed::cluster::LocalCluster;
use ako_testbed::cluster::provisioner::PROVISIONED_BY_LABEL;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

async fn namespace(client: &Client, name: &str) {
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
}

fn pod_ready(p: &Pod) -> bool {
    let status = p.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_with_claims_runs_on_loopback_ips_with_bound_volumes() {
    let cluster = LocalCluster::shared().await.unwrap();
    let client = cluster.client().await;
    let ns = "storage";
    namespace(&client, ns).await;
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {
            "replicas": 3,
            "serviceName": "data",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": "storage-test"}},
            "template": {
                "metadata": {"labels": {"app": "storage-test"}},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/never-pulled:1"}]}
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "disk"},
                // A class that does not exist as a StorageClass: the binder accepts the pre-bound volume anyway.
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-ssd", "volumeMode": "Block",
                    "resources": {"requests": {"storage": "3Gi"}}}
            }]
        }
    }))
    .unwrap();
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    sts_api.create(&PostParams::default(), &sts).await.unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + Duration::from_secs(90);
    let ready = loop {
        let list = pods.list(&ListParams::default().labels("app=storage-test")).await.unwrap().items;
        if list.len() == 3 && list.iter().all(pod_ready) {
            break list;
        }
        let states: Vec<String> = list
            .iter()
            .map(|p| {
                format!("{}: {:?}", p.metadata.name.clone().unwrap(), p.status.as_ref().and_then(|s| s.phase.clone()))
            })
            .collect();
        assert!(Instant::now() < deadline, "pods not Running and Ready in 90s: {states:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let octet: u8 = cluster.pod_cidr().split('.').nth(1).unwrap().parse().unwrap();
    let mut ips = Vec::new();
    for p in &ready {
        let ip: Ipv4Addr = p.status.as_ref().unwrap().pod_ip.as_deref().unwrap().parse().unwrap();
        assert!(ip.is_loopback(), "{ip}");
        assert_eq!(ip.octets()[1], octet, "{ip} outside {}", cluster.pod_cidr());
        // An address of this machine: something can listen on it.
        std::net::TcpListener::bind((ip, 0)).unwrap();
        ips.push(ip);
    }
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "distinct pod IPs");

    let sts = sts_api.get("data").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sts = sts;
    while sts.status.as_ref().and_then(|s| s.ready_replicas) != Some(3) {
        assert!(Instant::now() < deadline, "statefulset readyReplicas: {:?}", sts.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
        sts = sts_api.get("data").await.unwrap();
    }

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let claims = pvcs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(claims.len(), 3);
    let mut volume_names = Vec::new();
    for claim in &claims {
        let name = claim.metadata.name.clone().unwrap();
        assert_eq!(claim.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Bound"), "{name}");
        let volume = claim.spec.as_ref().unwrap().volume_name.clone().unwrap();
        let pv = pvs.get(&volume).await.unwrap();
        let spec = pv.spec.unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some("local-ssd"));
        assert_eq!(spec.volume_mode.as_deref(), Some("Block"));
        assert_eq!(spec.capacity.unwrap()["storage"].0, "3Gi");
        assert_eq!(spec.claim_ref.unwrap().uid, claim.metadata.uid);
        assert!(pv.metadata.labels.unwrap().contains_key(PROVISIONED_BY_LABEL));
        volume_names.push(volume);
    }

    // Deleting the workload and its claims releases the volumes, which the provisioner then deletes.
    sts_api.delete("data", &DeleteParams::default()).await.unwrap();
    for claim in &claims {
        pvcs.delete(claim.metadata.name.as_deref().unwrap(), &DeleteParams::default()).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut left = Vec::new();
        for v in &volume_names {
            if pvs.get_opt(v).await.unwrap().is_some() {
                left.push(v.clone());
            }
        }
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "volumes not deleted after their claims: {left:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
