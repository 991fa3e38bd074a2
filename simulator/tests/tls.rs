//! TLS on simulated nodes, judged by Aerospike's official Rust client (crate `aerospike`) and the operator's own
//! info client: a TLS-only cluster (only `tls-port`) whose certificate comes from a Secret mounted where its
//! `network.tls` entry says, with and without client certificates (`tls-authenticate-client`).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aerospike::{Client, ClientPolicy, Host, TlsPolicy};
use aerospike_kubernetes_operator::asinfo::tls::{TlsClient, TlsMaterial, client_config};
use aerospike_kubernetes_operator::asinfo::{InfoClient, TcpInfoClient};
use ako_simulator::{Simulator, SimulatorOptions};
use ako_testbed::cluster::LocalCluster;
use ako_testbed::cluster::pki::TestCa as Pki;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client as Kube};
use serde_json::{Value, json};

const NODES: usize = 3;
const TLS_NAME: &str = "sim-tls";
const TLS_PORT: u16 = 4333;

async fn plane() -> Kube {
    let client = LocalCluster::shared().await.unwrap().client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in aerospike_kubernetes_operator::api::crds() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &PatchParams::apply("simulator-tests").force(), &Patch::Apply(&crd)).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let conditions = crds.get(&name).await.unwrap().status.and_then(|s| s.conditions).unwrap_or_default();
            if conditions.iter().any(|c| c.type_ == "Established" && c.status == "True") {
                break;
            }
            assert!(Instant::now() < deadline, "CRD {name} not Established");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    client
}

/// A TLS-only simulated cluster of 3 nodes in namespace `ns`; returns the TLS seeds.
async fn tls_cluster(ns: &str, pki: &Pki, authenticate: Value) -> (Simulator, Vec<SocketAddr>) {
    let kube = plane().await;
    let namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(kube.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    let (cert, key) = pki.leaf(TLS_NAME);
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "server-tls"},
        "stringData": {"server.pem": cert, "server.key": key, "ca.pem": pki.ca}}))
    .unwrap();
    Api::<Secret>::namespaced(kube.clone(), ns).create(&PostParams::default(), &secret).await.unwrap();
    let config = json!({
        "network": {
            "service": {"tls-name": TLS_NAME, "tls-port": TLS_PORT, "tls-authenticate-client": authenticate},
            "heartbeat": {"port": 3002}, "fabric": {"port": 3001},
            "tls": [{"name": TLS_NAME, "cert-file": "/etc/aerospike/secret/server.pem",
                "key-file": "/etc/aerospike/secret/server.key", "ca-file": "/etc/aerospike/secret/ca.pem"}]
        },
        "namespaces": [{"name": "test", "replication-factor": 2, "storage-engine": {"type": "memory"}}]
    });
    let gvk = GroupVersionKind::gvk("asdb.aerospike.com", "v1", "AerospikeCluster");
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(kube.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, "aerospikeclusters"));
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster", "metadata": {"name": "tls"},
        "spec": {"size": NODES, "image": "aerospike/aerospike-server-enterprise:8.0.0.5", "aerospikeConfig": config,
            "storage": {"volumes": [{"name": "tls", "source": {"secret": {"secretName": "server-tls"}},
                "aerospike": {"path": "/etc/aerospike/secret"}}]}}
    }))
    .unwrap();
    clusters.create(&PostParams::default(), &object).await.unwrap();
    let opts = SimulatorOptions {
        namespace: Some(ns.into()),
        migration_duration: Duration::from_millis(200),
        ..Default::default()
    };
    let sim = Simulator::start(kube.clone(), opts).await;
    let labels = json!({"app": "aerospike-cluster", "aerospike.com/cr": "tls", "aerospike.com/rack-id": "0"});
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "tls-0"},
        "spec": {"replicas": NODES, "serviceName": "tls", "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                {"name": "aerospike-server", "image": "aerospike/aerospike-server-enterprise:8.0.0.5"}]}}}
    }))
    .unwrap();
    Api::<StatefulSet>::namespaced(kube.clone(), ns).create(&PostParams::default(), &sts).await.unwrap();
    sim.wait_for_members(ns, "tls", NODES, Duration::from_secs(90)).await.unwrap();
    let seeds: Vec<SocketAddr> = (0..NODES)
        .map(|i| {
            let (addr, name) = sim.node_tls(ns, &format!("tls-0-{i}")).expect("a TLS address");
            assert_eq!((addr.port(), name.as_str()), (TLS_PORT, TLS_NAME));
            // TLS only: the simulated node has no plain listener.
            assert_eq!(sim.node_addr(ns, &format!("tls-0-{i}")), Some(addr));
            addr
        })
        .collect();
    (sim, seeds)
}

fn tls_config(pki: &Pki, client_name: Option<&str>) -> rustls::ClientConfig {
    let client = client_name.map(|n| {
        let (c, k) = pki.leaf(n);
        (c.into_bytes(), k.into_bytes())
    });
    client_config(&TlsMaterial { ca_pem: pki.ca.clone().into_bytes(), client }).unwrap()
}

async fn official(seeds: &[SocketAddr], config: rustls::ClientConfig) -> Result<Client, aerospike::Error> {
    let policy = ClientPolicy {
        timeout: 3_000,
        tend_interval: 250,
        tls_policy: Some(TlsPolicy::new(config)),
        ..Default::default()
    };
    let hosts: Vec<Host> = seeds.iter().map(|a| Host::new_tls(&a.ip().to_string(), TLS_NAME, a.port())).collect();
    let client = Client::new(&policy, &hosts).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.nodes().len() != NODES || !client.partition_map_complete() {
        assert!(Instant::now() < deadline, "the client tends {:?} over TLS", client.node_names());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(client)
}

fn info(config: rustls::ClientConfig, name: &str) -> Arc<dyn InfoClient> {
    let tls = TlsClient { config: Arc::new(config), server_name: name.into() };
    TcpInfoClient::new(Duration::from_secs(2), Duration::from_secs(3)).with_tls(tls).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn official_client_tends_a_tls_only_cluster() {
    let pki = Pki::new();
    let (sim, seeds) = tls_cluster("sim-tls-server", &pki, json!("false")).await;
    let client = official(&seeds, tls_config(&pki, None)).await.unwrap();
    assert_eq!(client.nodes().len(), NODES, "every node found through peers-tls-std");
    client.close().await.unwrap();

    // The operator's info client: the right name answers, another name or another CA is refused, plain TCP gets
    // no answer.
    let node = info(tls_config(&pki, None), TLS_NAME).request(seeds[0], &["node".to_string()]).await.unwrap();
    assert!(!node["node"].is_empty());
    let err = info(tls_config(&pki, None), "other-name").request(seeds[0], &["node".into()]).await.unwrap_err();
    assert!(err.to_string().contains("TLS: handshake failed"), "{err}");
    let stranger = Pki::new();
    let err = info(tls_config(&stranger, None), TLS_NAME).request(seeds[0], &["node".into()]).await.unwrap_err();
    assert!(err.to_string().contains("TLS: handshake failed"), "{err}");
    let plain = TcpInfoClient::new(Duration::from_secs(2), Duration::from_secs(2));
    assert!(plain.request(seeds[0], &["node".into()]).await.is_err());
    drop(sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_requires_a_listed_client_certificate() {
    let pki = Pki::new();
    let (sim, seeds) = tls_cluster("sim-tls-mutual", &pki, json!(["operator"])).await;
    let client = official(&seeds, tls_config(&pki, Some("operator"))).await.unwrap();
    assert_eq!(client.nodes().len(), NODES);
    client.close().await.unwrap();

    let ok = info(tls_config(&pki, Some("operator")), TLS_NAME).request(seeds[1], &["build".into()]).await.unwrap();
    assert_eq!(ok["build"], "8.0.0.5");
    // No certificate, or one without a listed name: the node closes the connection.
    for refused in [None, Some("someone-else")] {
        let err = info(tls_config(&pki, refused), TLS_NAME).request(seeds[1], &["build".into()]).await.unwrap_err();
        assert!(err.is_unreachable() || err.to_string().contains("TLS"), "{refused:?}: {err}");
    }
    let refusals: Vec<String> =
        sim.commands_for("sim-tls-mutual/tls-0-1").into_iter().filter(|c| c.starts_with("tls:refused")).collect();
    assert!(refusals.iter().any(|c| c == "tls:refused=client certificate name"), "{refusals:?}");
    assert!(refusals.len() >= 2, "{refusals:?}");
}
