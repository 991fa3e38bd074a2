//! The operator's admission webhooks against a real kube-apiserver (the local control plane): the webhook server
//! runs in this process with a self-signed certificate and registers itself by URL on loopback, as a developer's
//! operator on the local plane does (`--webhook-self-signed --webhook-register --webhook-url
//! https://127.0.0.1:PORT`). Each rule: a refused example whose message names the exact field, and a valid
//! example that passes; defaults on created objects; an update of an immutable field refused.
//!
//! This test binary owns its control plane: the webhooks (failurePolicy Fail) never reach other tests' clusters.
mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aerospike_kubernetes_operator::webhook::register;
use ako_testbed::cluster::LocalCluster;
use common::serve_webhooks;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const OPERATOR_NS: &str = "webhook-operator";
const NS: &str = "webhook-test";

/// JSON-pointer edits of [`valid`].
type Edits = Vec<(&'static str, Value)>;

/// Starts (once) the shared control plane, the CRD, and the webhook server on a thread of its own (each test has
/// its own runtime; the server must outlive them all). Returns when the API server calls the webhooks.
fn setup() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        serve_webhooks(OPERATOR_NS, || async {
            let cluster = LocalCluster::shared().await.map_err(|e| format!("{e:#}"))?;
            let client = cluster.client().await;
            install_crd(&client).await;
            namespace(&client, NS).await;
            Ok(client)
        })
    });
}

async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in aerospike_kubernetes_operator::api::crds() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &PatchParams::apply("webhook-tests").force(), &Patch::Apply(&crd)).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c = crds.get(&name).await.unwrap();
            let established = c
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            assert!(Instant::now() < deadline, "CRD {name} not Established");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating namespace {name}: {e}"),
    }
}

async fn client() -> Client {
    setup();
    LocalCluster::shared().await.unwrap().client().await
}

fn clusters(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("asdb.aerospike.com", "v1", "AerospikeCluster");
    Api::namespaced_with(client.clone(), NS, &ApiResource::from_gvk_with_plural(&gvk, "aerospikeclusters"))
}

/// A cluster every rule accepts: 3 pods in two racks, a persistent work directory, a Block device for the
/// namespace, security with an admin user.
fn valid(name: &str) -> Value {
    json!({
        "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "size": 3,
            "image": "aerospike/aerospike-server-enterprise:7.1.0.0",
            "storage": {"volumes": [
                {"name": "workdir", "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}},
                 "aerospike": {"path": "/opt/aerospike"}},
                {"name": "ns", "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Block", "size": "5Gi"}},
                 "aerospike": {"path": "/dev/xvdf"}},
                {"name": "aerospike-config-secret", "source": {"secret": {"secretName": "aerospike-secret"}},
                 "aerospike": {"path": "/etc/aerospike/secret"}}
            ]},
            "rackConfig": {"namespaces": ["test"], "racks": [{"id": 1, "zone": "local-a"}, {"id": 2, "zone": "local-b"}]},
            "aerospikeAccessControl": {"users": [{"name": "admin", "secretName": "auth-secret", "roles": ["sys-admin", "user-admin"]}]},
            "podSpec": {"aerospikeContainer": {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}}}},
            "aerospikeConfig": {
                "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
                "security": {},
                "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
                "namespaces": [
                    {"name": "test", "replication-factor": 2, "storage-engine": {"type": "device", "devices": ["/dev/xvdf"]}},
                    {"name": "mem", "replication-factor": 2, "storage-engine": {"type": "memory", "data-size": 1073741824}}
                ]
            }
        }
    })
}

/// Sets (or with `null` removes) the value at a JSON pointer; an index one past the end appends.
fn set(v: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match v.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}")) {
        Value::Object(m) if value.is_null() => {
            m.remove(key);
        }
        Value::Object(m) => {
            m.insert(key.into(), value);
        }
        Value::Array(a) => {
            let i: usize = key.parse().unwrap();
            if i == a.len() { a.push(value) } else { a[i] = value }
        }
        _ => panic!("{parent} is a scalar"),
    }
}

fn with(name: &str, edits: &[(&str, Value)]) -> Value {
    let mut v = valid(name);
    for (p, value) in edits {
        set(&mut v, p, value.clone());
    }
    v
}

/// Creates (optionally as a dry run); an error is the API server's message.
async fn create(client: &Client, obj: &Value, dry_run: bool) -> Result<DynamicObject, String> {
    let obj: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    let pp = PostParams { dry_run, ..Default::default() };
    clusters(client).create(&pp, &obj).await.map_err(|e| match e {
        kube::Error::Api(s) => s.message,
        other => other.to_string(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_refuses_with_the_field_path_and_accepts_a_valid_example() {
    let client = client().await;
    // (rule, edits making it invalid, exact path in the refusal, edits making a valid variant)
    let cases: Vec<(&str, Edits, &str, Edits)> = vec![
        (
            "server 6.0 or later",
            vec![("/spec/image", json!("aerospike/aerospike-server-enterprise:5.7.0.17"))],
            "spec.image",
            vec![("/spec/image", json!("aerospike/aerospike-server-enterprise:6.0.0.1"))],
        ),
        (
            "Enterprise or Federal",
            vec![("/spec/image", json!("aerospike/aerospike-server:7.1.0.0"))],
            "spec.image",
            vec![("/spec/image", json!("registry.local:5000/aerospike-server-enterprise:7.2.0.1"))],
        ),
        (
            "a version in the tag",
            vec![("/spec/image", json!("aerospike/aerospike-server-enterprise:latest"))],
            "spec.image",
            vec![("/spec/image", json!("aerospike/aerospike-server-enterprise@sha256:4f2d8f5e6a1b"))],
        ),
        (
            "cluster name is a DNS-1035 label",
            vec![("/metadata/name", json!("1cluster"))],
            "metadata.name",
            vec![("/metadata/name", json!("cluster-1"))],
        ),
        (
            "cluster-name is the object's name",
            vec![("/spec/aerospikeConfig/service/cluster-name", json!("other"))],
            "spec.aerospikeConfig.service.cluster-name",
            vec![("/spec/aerospikeConfig/service/cluster-name", json!("VALIDNAME"))],
        ),
        (
            "strong-consistency replication factor vs size",
            vec![
                ("/spec/aerospikeConfig/namespaces/0/strong-consistency", json!(true)),
                ("/spec/aerospikeConfig/namespaces/0/replication-factor", json!(4)),
            ],
            "spec.aerospikeConfig.namespaces[0].replication-factor",
            vec![
                ("/spec/aerospikeConfig/namespaces/0/strong-consistency", json!(true)),
                ("/spec/aerospikeConfig/namespaces/0/replication-factor", json!(3)),
                ("/spec/aerospikeConfig/namespaces/1/replication-factor", json!(3)),
                ("/spec/maxUnavailable", json!(2)),
            ],
        ),
        (
            "maxUnavailable below the smallest replication factor",
            vec![("/spec/maxUnavailable", json!(2))],
            "spec.maxUnavailable",
            vec![("/spec/maxUnavailable", json!("33%"))],
        ),
        (
            "devices declared in storage",
            vec![("/spec/aerospikeConfig/namespaces/0/storage-engine/devices", json!(["/dev/xvdg"]))],
            "spec.aerospikeConfig.namespaces[0].storage-engine.devices[0]",
            vec![
                (
                    "/spec/storage/volumes/3",
                    json!({"name": "ns2", "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Block", "size": "5Gi"}},
                 "aerospike": {"path": "/dev/xvdg"}}),
                ),
                ("/spec/aerospikeConfig/namespaces/0/storage-engine/devices", json!(["/dev/xvdf", "/dev/xvdg"])),
            ],
        ),
        (
            "files on a volume",
            vec![(
                "/spec/aerospikeConfig/namespaces/1/storage-engine",
                json!({"type": "device", "files": ["/data/mem.dat"], "filesize": 1073741824}),
            )],
            "spec.aerospikeConfig.namespaces[1].storage-engine.files[0]",
            vec![(
                "/spec/aerospikeConfig/namespaces/1/storage-engine",
                json!({"type": "device", "files": ["/opt/aerospike/data/mem.dat"], "filesize": 1073741824}),
            )],
        ),
        (
            "an admin user with sys-admin and user-admin",
            vec![("/spec/aerospikeAccessControl/users/0/roles", json!(["sys-admin"]))],
            "spec.aerospikeAccessControl.users",
            vec![(
                "/spec/aerospikeAccessControl/users/1",
                json!({"name": "app", "secretName": "app-secret", "roles": ["read-write"]}),
            )],
        ),
        (
            "roles exist",
            vec![("/spec/aerospikeAccessControl/users/0/roles/2", json!("reader"))],
            "spec.aerospikeAccessControl.users[0].roles[2]",
            vec![
                ("/spec/aerospikeAccessControl/users/0/roles/2", json!("reader")),
                ("/spec/aerospikeAccessControl/roles", json!([{"name": "reader", "privileges": ["read.test"]}])),
            ],
        ),
        (
            "passwords from Secrets",
            vec![("/spec/aerospikeAccessControl/users/1", json!({"name": "app", "secretName": "", "roles": ["read"]}))],
            "spec.aerospikeAccessControl.users[1].secretName",
            vec![(
                "/spec/aerospikeAccessControl/users/1",
                json!({"name": "app", "authMode": "PKIOnly", "roles": ["read"]}),
            )],
        ),
        (
            "access control with security",
            vec![("/spec/aerospikeAccessControl", Value::Null)],
            "spec.aerospikeAccessControl",
            vec![("/spec/aerospikeAccessControl", Value::Null), ("/spec/aerospikeConfig/security", Value::Null)],
        ),
        (
            "batch sizes need two racks",
            vec![("/spec/rackConfig/racks", json!([{"id": 1}])), ("/spec/rackConfig/rollingUpdateBatchSize", json!(2))],
            "spec.rackConfig.rollingUpdateBatchSize",
            vec![
                ("/spec/rackConfig/rollingUpdateBatchSize", json!(2)),
                ("/spec/rackConfig/namespaces", json!(["test", "mem"])),
            ],
        ),
        (
            "limits not below requests",
            vec![("/spec/podSpec/aerospikeContainer/resources/limits/memory", json!("512Mi"))],
            "spec.podSpec.aerospikeContainer.resources.limits.memory",
            vec![("/spec/podSpec/aerospikeContainer/resources/limits/memory", json!("2Gi"))],
        ),
        (
            "known aerospikeConfig keys",
            vec![("/spec/aerospikeConfig/service/proto-fd-mx", json!(15000))],
            "spec.aerospikeConfig.service.proto-fd-mx",
            vec![("/spec/aerospikeConfig/service/proto-fd-max", json!(15000))],
        ),
        (
            "aerospikeConfig value types",
            vec![("/spec/aerospikeConfig/network/heartbeat/interval", json!("150"))],
            "spec.aerospikeConfig.network.heartbeat.interval",
            vec![("/spec/aerospikeConfig/network/heartbeat/interval", json!(150))],
        ),
        (
            "no network in a rack",
            vec![("/spec/rackConfig/racks/0/aerospikeConfig", json!({"network": {"service": {"port": 3100}}}))],
            "spec.rackConfig.racks[0].aerospikeConfig.network",
            vec![("/spec/rackConfig/racks/0/aerospikeConfig", json!({"service": {"proto-fd-max": 20000}}))],
        ),
    ];
    let mut failures = Vec::new();
    for (i, (rule, bad, path, good)) in cases.iter().enumerate() {
        let name = format!("rule-{i}");
        let mut good = good.clone();
        for (_, v) in good.iter_mut() {
            if *v == json!("VALIDNAME") {
                *v = json!(name.clone());
            }
        }
        match create(&client, &with(&name, bad), true).await {
            Ok(_) => failures.push(format!("{rule}: invalid example accepted")),
            Err(m) if m.contains(&format!("{path}: ")) => eprintln!("{rule}: refused: {m}"),
            Err(m) => failures.push(format!("{rule}: refused without {path}: {m}")),
        }
        let good_obj = with(if good.iter().any(|(p, _)| *p == "/metadata/name") { "ignored" } else { &name }, &good);
        if let Err(m) = create(&client, &good_obj, true).await {
            failures.push(format!("{rule}: valid example refused: {m}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_appear_on_created_objects() {
    let client = client().await;
    let api = clusters(&client);
    let _ = api.delete("defaults", &DeleteParams::default()).await;
    let mut v = valid("defaults");
    set(&mut v, "/spec/rackConfig/racks/0/aerospikeConfig", json!({"service": {"proto-fd-max": 20000}}));
    set(&mut v, "/spec/aerospikeNetworkPolicy", json!({"tlsAccess": "pod"}));
    create(&client, &v, false).await.expect("a valid cluster is created");
    let got = serde_json::to_value(api.get("defaults").await.unwrap()).unwrap();
    let spec = &got["spec"];
    assert_eq!(spec["maxUnavailable"], 1);
    assert_eq!(spec["storage"]["cleanupThreads"], 1);
    // The reference's schema defaults (issue 14), applied by our CRD.
    assert_eq!(
        spec["aerospikeNetworkPolicy"],
        json!({"access": "hostInternal", "alternateAccess": "hostExternal", "tlsAccess": "pod",
            "tlsAlternateAccess": "hostExternal"})
    );
    assert_eq!(spec["validationPolicy"]["skipWorkDirValidate"], false);
    // No implicit schema defaults: a volume source reads back as written.
    assert_eq!(spec["storage"]["volumes"][2]["source"], json!({"secret": {"secretName": "aerospike-secret"}}));
    assert_eq!(spec["storage"]["filesystemVolumePolicy"]["effectiveInitMethod"], "none");
    assert_eq!(spec["storage"]["filesystemVolumePolicy"]["effectiveWipeMethod"], "deleteFiles");
    assert_eq!(spec["storage"]["blockVolumePolicy"]["effectiveWipeMethod"], "dd");
    assert_eq!(spec["storage"]["volumes"][1]["effectiveWipeMethod"], "dd");
    assert_eq!(spec["storage"]["volumes"][0]["effectiveCascadeDelete"], false);
    let cfg = &spec["aerospikeConfig"];
    assert_eq!(cfg["service"]["cluster-name"], "defaults");
    assert_eq!(cfg["service"]["node-id"], "ENV_NODE_ID");
    assert_eq!(cfg["network"]["heartbeat"]["mode"], "mesh");
    assert_eq!(cfg["network"]["service"]["access-port"], 3000);
    assert_eq!(cfg["logging"], json!([{"name": "console", "any": "info"}]));
    let racks = &spec["rackConfig"]["racks"];
    assert_eq!(racks[0]["effectiveAerospikeConfig"]["service"]["proto-fd-max"], 20000);
    assert_eq!(racks[0]["effectiveAerospikeConfig"]["namespaces"][0]["rack-id"], 1);
    assert_eq!(racks[1]["effectiveAerospikeConfig"]["namespaces"][0]["rack-id"], 2);
    assert_eq!(racks[1]["effectiveStorage"]["volumes"][0]["name"], "workdir");
    // The self-signed certificate lives in the operator's namespace, its CA in both configurations.
    let secret: Secret =
        Api::namespaced(client.clone(), OPERATOR_NS).get("aerospike-operator-webhook-cert").await.unwrap();
    let ca = secret.data.unwrap()["ca.crt"].0.clone();
    let m: MutatingWebhookConfiguration = Api::all(client.clone()).get(register::MUTATING_CONFIGURATION).await.unwrap();
    let v: ValidatingWebhookConfiguration =
        Api::all(client.clone()).get(register::VALIDATING_CONFIGURATION).await.unwrap();
    let bundle = |c: &Option<k8s_openapi::ByteString>| c.as_ref().unwrap().0.clone();
    assert_eq!(bundle(&m.webhooks.unwrap()[0].client_config.ca_bundle), ca);
    assert_eq!(bundle(&v.webhooks.unwrap()[0].client_config.ca_bundle), ca);
    api.delete("defaults", &DeleteParams::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_of_immutable_fields_are_refused() {
    let client = client().await;
    let api = clusters(&client);
    let _ = api.delete("immutable", &DeleteParams::default()).await;
    create(&client, &valid("immutable"), false).await.expect("created");
    let patch = |p: Value| {
        let api = api.clone();
        async move {
            api.patch("immutable", &PatchParams::default(), &Patch::Merge(&p)).await.map(|_| ()).map_err(|e| match e {
                kube::Error::Api(s) => s.message,
                other => other.to_string(),
            })
        }
    };
    let current = serde_json::to_value(api.get("immutable").await.unwrap()).unwrap();
    let mut racks = current["spec"]["rackConfig"]["racks"].clone();
    racks[1]["zone"] = json!("local-c");
    let err = patch(json!({"spec": {"rackConfig": {"racks": racks}}})).await.expect_err("zone change refused");
    assert!(err.contains("spec.rackConfig.racks[1].zone: cannot change"), "{err}");

    let mut namespaces = current["spec"]["aerospikeConfig"]["namespaces"].clone();
    namespaces[0]["strong-consistency"] = json!(true);
    let err =
        patch(json!({"spec": {"aerospikeConfig": {"namespaces": namespaces}}})).await.expect_err("SC change refused");
    assert!(err.contains("spec.aerospikeConfig.namespaces[0].strong-consistency: cannot change"), "{err}");

    let err = patch(json!({"spec": {"aerospikeConfig": {"network": {"heartbeat": {"port": 3012}}}}}))
        .await
        .expect_err("port change refused");
    assert!(err.contains("spec.aerospikeConfig.network.heartbeat.port: cannot change"), "{err}");

    let mut volumes = current["spec"]["storage"]["volumes"].clone();
    let removed = volumes.as_array_mut().unwrap().remove(0);
    assert!(removed["source"]["persistentVolume"].is_object(), "{removed}");
    let err = patch(json!({"spec": {"storage": {"volumes": volumes.clone()}}}))
        .await
        .expect_err("PV removed without revision");
    assert!(
        err.contains("spec.storage.volumes: persistent volume") && err.contains("is removed without a new revision"),
        "{err}"
    );
    // ... and accepted with new revisions of the racks that use it (the removed one held the work directory: the
    // policy must now say it is not on persistent storage)
    let mut revised = current["spec"]["rackConfig"]["racks"].clone();
    revised[0]["revision"] = json!("v2");
    revised[1]["revision"] = json!("v2");
    let err =
        patch(json!({"spec": {"storage": {"volumes": volumes.clone()}, "rackConfig": {"racks": revised.clone()}}}))
            .await
            .expect_err("the work directory left without persistent storage");
    assert!(
        err.contains("spec.storage.volumes: the Aerospike work directory /opt/aerospike is not on a persistent"),
        "{err}"
    );
    let skip = json!({"skipWorkDirValidate": true});
    patch(
        json!({"spec": {"storage": {"volumes": volumes}, "rackConfig": {"racks": revised}, "validationPolicy": skip}}),
    )
    .await
    .expect("with revisions");

    // multiPodPerHost: refused (by the CRD's own rule or the webhook), with the field path
    let err =
        patch(json!({"spec": {"podSpec": {"multiPodPerHost": true}}})).await.expect_err("multiPodPerHost refused");
    assert!(err.contains("spec.podSpec.multiPodPerHost"), "{err}");

    // Mutable things still change, and metadata-only updates pass.
    patch(json!({"spec": {"aerospikeConfig": {"service": {"proto-fd-max": 30000}}}})).await.expect("mutable change");
    patch(json!({"metadata": {"labels": {"team": "db"}}})).await.expect("metadata change");
    api.delete("immutable", &DeleteParams::default()).await.unwrap();
}

/// An object as the reference writes it, with the fields our schema used to drop or leave open (issue 14), is
/// stored by the real API server and read back with those fields: spec through both webhooks, status through the
/// status subresource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_the_reference_writes_are_stored_and_read_back() {
    let client = client().await;
    let api = clusters(&client);
    let _ = api.delete("reference-fields", &DeleteParams::default()).await;
    let mut v = valid("reference-fields");
    set(&mut v, "/spec/storage/deleteLocalStorageOnPodRecovery", json!(true));
    set(&mut v, "/spec/podSpec/effectiveDNSPolicy", json!("ClusterFirst"));
    let sidecar = json!({"name": "exporter", "image": "aerospike/aerospike-prometheus-exporter:1.16.1",
        "restartPolicy": "Always",
        "restartPolicyRules": [{"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}],
        "env": [{"name": "TOKEN", "valueFrom": {"fileKeyRef": {"volumeName": "config", "path": "env", "key": "TOKEN"}}}]});
    set(&mut v, "/spec/podSpec/sidecars", json!([sidecar]));
    create(&client, &v, false).await.expect("the reference's fields are accepted");
    let got = serde_json::to_value(api.get("reference-fields").await.unwrap()).unwrap();
    let spec = &got["spec"];
    assert_eq!(spec["storage"]["deleteLocalStorageOnPodRecovery"], true);
    assert_eq!(spec["podSpec"]["effectiveDNSPolicy"], "ClusterFirst");
    assert_eq!(spec["podSpec"]["sidecars"][0], sidecar);
    // Typed copies: the defaulting webhook's effective storage keeps its fields, a misspelt one is pruned.
    assert_eq!(spec["rackConfig"]["racks"][0]["effectiveStorage"]["deleteLocalStorageOnPodRecovery"], true);

    let status = json!({
        "phase": "InProgress", "enableRackIDOverride": true, "ignoreSidecarFailure": true,
        "storage": {"cleanupThreads": 1, "deleteLocalStorageOnPodRecovery": true, "volumes": [{"name": "workdir",
            "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}},
            "aerospike": {"path": "/opt/aerospike"}}]},
        "aerospikeNetworkPolicy": {"access": "hostInternal", "alternateAccess": "hostExternal",
            "tlsAccess": "hostInternal", "tlsAlternateAccess": "hostExternal"},
        "pods": {"reference-fields-1-0": {"image": "aerospike/aerospike-server-enterprise:7.1.0.0",
            "podIP": "10.0.0.1", "podPort": 3000, "podAdminPort": 3008, "serviceAdminPort": 30008,
            "rackIDOverridden": true, "dynamicConfigUpdateStatus": "PartiallyFailed",
            "aerospikeConfigHash": "a", "networkPolicyHash": "b", "podSpecHash": "c",
            "aerospike": {"clusterName": "reference-fields", "nodeID": "1a0", "rackID": 1}}}
    });
    api.patch_status("reference-fields", &PatchParams::default(), &Patch::Merge(&json!({"status": status})))
        .await
        .expect("the reference's status is accepted");
    let got = serde_json::to_value(api.get_status("reference-fields").await.unwrap()).unwrap();
    assert_eq!(got["status"], status);
    // The status copies are typed: a wrong type is refused with its path.
    let wrong = json!({"status": {"storage": {"cleanupThreads": "one"}}});
    let e = api.patch_status("reference-fields", &PatchParams::default(), &Patch::Merge(&wrong)).await.unwrap_err();
    assert!(e.to_string().contains("status.storage.cleanupThreads"), "{e}");
    api.delete("reference-fields", &DeleteParams::default()).await.unwrap();
}

/// AerospikeBackup (v1beta1): the API server calls our backup webhook, which refuses a routine of a cluster the
/// backup does not define and a name without the `<namespace>-<name>` prefix, naming each field; a good one passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_with_a_bad_routine_is_refused_with_its_fields() {
    let client = client().await;
    let gvk = GroupVersionKind::gvk("asdb.aerospike.com", "v1beta1", "AerospikeBackup");
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &ApiResource::from_gvk_with_plural(&gvk, "aerospikebackups"));
    let backup = |routine: &str, source: &str| {
        json!({
            "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeBackup",
            "metadata": {"name": "b", "namespace": NS},
            "spec": {
                "backupService": {"name": "abs", "namespace": NS},
                "config": {
                    "aerospike-cluster": {format!("{NS}-b-c"): {"seed-nodes": [{"host-name": "c", "port": 3000}]}},
                    "backup-routines": {routine: {"source-cluster": source, "storage": "s", "backup-policy": "p"}}
                }
            }
        })
    };
    let dry = PostParams { dry_run: true, ..Default::default() };
    let create = |v: Value| {
        let api = api.clone();
        let dry = dry.clone();
        async move {
            let obj: DynamicObject = serde_json::from_value(v).unwrap();
            api.create(&dry, &obj).await.map_err(|e| e.to_string())
        }
    };
    let e = create(backup("daily", "elsewhere")).await.expect_err("refused");
    assert!(e.contains("vaerospikebackup.kb.io"), "{e}");
    assert!(e.contains("spec.config.backup-routines.daily: the name must start with webhook-test-b"), "{e}");
    assert!(e.contains("spec.config.backup-routines.daily.source-cluster: elsewhere is not"), "{e}");
    create(backup(&format!("{NS}-b-daily"), &format!("{NS}-b-c"))).await.expect("a good backup passes");
}
