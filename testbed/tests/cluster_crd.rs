//! The operator's CRD against a real kube-apiserver: accepted, Established, and refusing bad input with the field
//! path in the message.
use std::time::{Duration, Instant};

use ako_testbed::cluster::LocalCluster;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// The shared cluster with our CRD installed and Established (once per test binary).
async fn cluster_with_crd() -> Client {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    let cluster = LocalCluster::shared().await.unwrap();
    let client = cluster.client().await;
    INSTALLED
        .get_or_init(|| async {
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            for crd in aerospike_kubernetes_operator::api::crds() {
                let name = crd.metadata.name.clone().unwrap();
                // Server-side apply, as `kubectl apply --server-side` would: no 256 KiB last-applied annotation.
                crds.patch(&name, &PatchParams::apply("cluster-tests").force(), &Patch::Apply(&crd))
                    .await
                    .unwrap_or_else(|e| panic!("the apiserver refused CRD {name}: {e}"));
                wait_established(&crds, &name).await;
            }
        })
        .await;
    client
}

async fn wait_established(crds: &Api<CustomResourceDefinition>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let crd = crds.get(name).await.unwrap();
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        if conditions.iter().any(|c| c.type_ == "Established" && c.status == "True") {
            return;
        }
        if let Some(c) = conditions.iter().find(|c| c.type_ == "NamesAccepted" && c.status == "False") {
            panic!("CRD {name} names not accepted: {:?}", c.message);
        }
        assert!(Instant::now() < deadline, "CRD {name} not Established within 60s: {conditions:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn cluster_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("asdb.aerospike.com", "v1", "AerospikeCluster");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, "aerospikeclusters"))
}

async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating namespace {name}: {e}"),
    }
}

fn valid(name: &str) -> Value {
    json!({
        "apiVersion": "asdb.aerospike.com/v1",
        "kind": "AerospikeCluster",
        "metadata": {"name": name},
        "spec": {
            "size": 3,
            "image": "aerospike/aerospike-server-enterprise:8.0.0.5",
            "rackConfig": {"namespaces": ["test"], "racks": [{"id": 1}, {"id": 2}]},
            "aerospikeConfig": {
                "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
                "namespaces": [{"name": "test", "replication-factor": 2,
                    "storage-engine": {"type": "memory", "data-size": 1073741824}}]
            }
        }
    })
}

async fn create(client: &Client, ns: &str, body: Value) -> Result<DynamicObject, kube::Error> {
    let obj: DynamicObject = serde_json::from_value(body).unwrap();
    cluster_api(client, ns).create(&PostParams::default(), &obj).await
}

/// The apiserver's message for a refused create.
async fn refusal(client: &Client, ns: &str, body: Value) -> String {
    match create(client, ns, body).await {
        Ok(o) => panic!("accepted: {:?}", o.metadata.name),
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 422, "expected 422 Invalid: {e:?}");
            e.message
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_is_accepted_established_and_serves_valid_objects() {
    let client = cluster_with_crd().await;
    namespace(&client, "crd-valid").await;
    let created = create(&client, "crd-valid", valid("ok")).await.unwrap();
    assert_eq!(created.data["spec"]["size"], 3);
    // The scale subresource is served (the CRD declares it).
    let scale: Value = client
        .request(
            http::Request::get("/apis/asdb.aerospike.com/v1/namespaces/crd-valid/aerospikeclusters/ok/scale")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(scale["spec"]["replicas"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_field_paths() {
    let client = cluster_with_crd().await;
    let ns = "crd-invalid";
    namespace(&client, ns).await;

    let mut zero = valid("zero");
    zero["spec"]["size"] = json!(0);
    let msg = refusal(&client, ns, zero).await;
    assert!(msg.contains("spec.size"), "{msg}");

    let mut huge = valid("huge");
    huge["spec"]["size"] = json!(300);
    let msg = refusal(&client, ns, huge).await;
    assert!(msg.contains("spec.size"), "{msg}");

    let mut duplicate = valid("duplicate");
    duplicate["spec"]["rackConfig"]["racks"] = json!([{"id": 1}, {"id": 1}]);
    let msg = refusal(&client, ns, duplicate).await;
    assert!(msg.contains("spec.rackConfig.racks[1]"), "{msg}");
    assert!(msg.contains("Duplicate value"), "{msg}");

    let mut wrong_type = valid("wrong-type");
    wrong_type["spec"]["size"] = json!("three");
    let msg = refusal(&client, ns, wrong_type).await;
    assert!(msg.contains("spec.size"), "{msg}");

    // Nothing was stored.
    let list = cluster_api(&client, ns).list(&Default::default()).await.unwrap();
    assert!(list.items.is_empty(), "{:?}", list.items.iter().map(|o| o.metadata.name.clone()).collect::<Vec<_>>());
}
