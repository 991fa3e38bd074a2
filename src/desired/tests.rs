use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::api::AerospikeCluster;
use crate::resolve::resolve;

const INIT_IMAGE: &str = "ghcr.io/aerospike-rs/aerospike-kubernetes-operator:0.1.0";

fn ctx() -> BuildContext {
    BuildContext { init_image: INIT_IMAGE.to_string() }
}

fn testdata(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/desired/testdata").join(file)
}

fn load(name: &str) -> AerospikeCluster {
    let text = std::fs::read_to_string(testdata(&format!("{name}.input.yaml"))).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn build(cluster: &AerospikeCluster) -> Desired {
    desired_state(&resolve(cluster), &ctx()).unwrap_or_else(|e| panic!("build failed: {e}"))
}

/// All desired objects as one YAML stream: a summary of the racks, then the objects in apply order.
fn to_yaml(d: &Desired) -> String {
    let racks: Vec<Value> = d
        .racks
        .iter()
        .map(|r| {
            json!({"id": r.id, "revision": r.revision, "name": r.name, "size": r.size,
                   "confHash": r.conf_hash, "podSpecHash": r.pod_spec_hash})
        })
        .collect();
    let mut docs = vec![serde_saphyr::to_string(&json!({ "racks": racks })).unwrap()];
    docs.push(serde_saphyr::to_string(&d.headless_service).unwrap());
    if let Some(lb) = &d.lb_service {
        docs.push(serde_saphyr::to_string(lb).unwrap());
    }
    docs.extend(d.config_maps.iter().map(|o| serde_saphyr::to_string(o).unwrap()));
    docs.extend(d.stateful_sets.iter().map(|o| serde_saphyr::to_string(o).unwrap()));
    if let Some(pdb) = &d.pdb {
        docs.push(serde_saphyr::to_string(pdb).unwrap());
    }
    docs.join("---\n")
}

/// Compares the objects built from `<name>.input.yaml` with `<name>.expected.yaml`; with UPDATE_GOLDEN=1 the
/// expected file is rewritten instead (review the diff before keeping it).
fn golden(name: &str) {
    let actual = to_yaml(&build(&load(name)));
    let path = testdata(&format!("{name}.expected.yaml"));
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1 and review it", path.display()));
    assert_eq!(expected, actual, "{name}: objects differ from {}", path.display());
}

#[test]
fn golden_no_storage() {
    golden("no-storage");
}

#[test]
fn golden_persistent_storage() {
    golden("persistent-storage");
}

#[test]
fn golden_three_racks() {
    golden("three-racks");
}

#[test]
fn golden_multi_pod_per_host() {
    golden("multi-pod-per-host");
}

fn pod_spec(d: &Desired, rack: usize) -> &PodSpec {
    d.stateful_sets[rack].spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

fn container<'a>(spec: &'a PodSpec, name: &str) -> &'a Container {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn env_value(c: &Container, name: &str) -> Option<String> {
    c.env.as_ref()?.iter().find(|e| e.name == name).and_then(|e| e.value.clone())
}

fn err(cluster: &AerospikeCluster) -> String {
    desired_state(&resolve(cluster), &ctx()).unwrap_err().to_string()
}

#[test]
fn rack_sizes_follow_the_reference_rule() {
    assert_eq!(rack_sizes(5, 3), vec![2, 2, 1]);
    assert_eq!(rack_sizes(6, 3), vec![2, 2, 2]);
    assert_eq!(rack_sizes(7, 3), vec![3, 2, 2]);
    assert_eq!(rack_sizes(2, 3), vec![1, 1, 0]);
    assert_eq!(rack_sizes(4, 1), vec![4]);
    assert_eq!(rack_sizes(3, 0), Vec::<i32>::new());
    assert_eq!(rack_sizes(256, 8).iter().sum::<i32>(), 256);
}

#[test]
fn names_labels_and_owner() {
    let d = build(&load("three-racks"));
    let names: Vec<_> = d.racks.iter().map(|r| (r.id, r.name.as_str(), r.size)).collect();
    assert_eq!(names, vec![(1, "aerocluster-1", 2), (2, "aerocluster-2", 2), (3, "aerocluster-3-v2", 1)]);
    for (i, r) in d.racks.iter().enumerate() {
        assert_eq!(d.stateful_sets[i].metadata.name.as_deref(), Some(r.name.as_str()));
        assert_eq!(d.config_maps[i].metadata.name.as_deref(), Some(r.name.as_str()));
        let volumes = pod_spec(&d, i).volumes.as_ref().unwrap();
        let template = volumes.iter().find(|v| v.name == TEMPLATE_VOLUME).unwrap();
        assert_eq!(template.config_map.as_ref().unwrap().name, r.name, "the pod mounts its own rack's ConfigMap");
    }
    assert_eq!(d.headless_service.metadata.name.as_deref(), Some("aerocluster"));
    assert_eq!(d.lb_service.as_ref().unwrap().metadata.name.as_deref(), Some("aerocluster-lb"));
    assert_eq!(d.pdb.as_ref().unwrap().metadata.name.as_deref(), Some("aerocluster"));

    let metas = std::iter::once(&d.headless_service.metadata)
        .chain(d.lb_service.iter().map(|s| &s.metadata))
        .chain(d.config_maps.iter().map(|o| &o.metadata))
        .chain(d.stateful_sets.iter().map(|o| &o.metadata))
        .chain(d.pdb.iter().map(|o| &o.metadata));
    for m in metas {
        let labels = m.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_APP], APP_NAME);
        assert_eq!(labels[LABEL_CR], "aerocluster");
        assert_eq!(labels[LABEL_MANAGED_BY], MANAGER_NAME);
        assert_eq!(m.namespace.as_deref(), Some("aerospike"));
        let owner = &m.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("AerospikeCluster", "aerocluster", Some(true))
        );
    }
    assert_eq!(d.stateful_sets[2].metadata.labels.as_ref().unwrap()[LABEL_RACK], "3");

    // Peers: every pod of the cluster, sorted, revision included in the names.
    let peers = &d.config_maps[0].data.as_ref().unwrap()[CM_PEERS_KEY];
    assert_eq!(
        peers,
        "aerocluster-1-0.aerocluster.aerospike\naerocluster-1-1.aerocluster.aerospike\n\
         aerocluster-2-0.aerocluster.aerospike\naerocluster-2-1.aerocluster.aerospike\n\
         aerocluster-3-v2-0.aerocluster.aerospike"
    );
    assert!(d.config_maps.iter().all(|c| &c.data.as_ref().unwrap()[CM_PEERS_KEY] == peers));
    assert_eq!(pod_fqdn("aerocluster-1-0", "aerocluster", "aerospike"), "aerocluster-1-0.aerocluster.aerospike");
}

#[test]
fn revision_infix_comes_from_the_status() {
    let mut c = load("three-racks");
    let d = build(&c);
    let init = container(pod_spec(&d, 2), INIT_CONTAINER_NAME);
    assert_eq!(env_value(init, ENV_RACK_REVISION_INDEX).as_deref(), Some("1"), "first revision: b");
    assert_eq!(
        env_value(container(pod_spec(&d, 0), INIT_CONTAINER_NAME), ENV_RACK_REVISION_INDEX).as_deref(),
        Some("0")
    );

    // Pods of the previous revision v1 use infix b: the new revision must pick another one.
    let mut status = crate::api::AerospikeClusterStatus::default();
    let mut old = crate::api::PodStatus::default();
    old.aerospike.node_id = "3b0".into();
    status.pods.insert("aerocluster-3-v1-0".into(), old);
    c.status = Some(status.clone());
    assert_eq!(revision_index(&c, 3, "v2"), 2);
    // Once pods of v2 exist their infix is kept, whatever else is there.
    let mut new = crate::api::PodStatus::default();
    new.aerospike.node_id = "3d0".into();
    status.pods.insert("aerocluster-3-v2-0".into(), new);
    c.status = Some(status);
    assert_eq!(revision_index(&c, 3, "v2"), 3);
    assert_eq!(revision_index(&c, 3, ""), 0);
    // Pods of a rack without revision use infix a.
    let mut status = crate::api::AerospikeClusterStatus::default();
    status.pods.insert("aerocluster-3-0".into(), Default::default());
    c.status = Some(status);
    assert_eq!(revision_index(&c, 3, "v2"), 1);
}

#[test]
fn node_id_of_a_built_pod() {
    let d = build(&load("three-racks"));
    let template = d.stateful_sets[2].spec.as_ref().unwrap().template.clone();
    let pod = Pod {
        metadata: ObjectMeta { name: Some("aerocluster-3-v2-4".into()), ..Default::default() },
        spec: template.spec,
        status: None,
    };
    assert_eq!(pod_node_id(&pod).as_deref(), Some("3b4"));
}

#[test]
fn anti_affinity_unless_multi_pod_per_host() {
    let d = build(&load("no-storage"));
    let anti = pod_spec(&d, 0).affinity.as_ref().unwrap().pod_anti_affinity.as_ref().unwrap();
    let terms = anti.required_during_scheduling_ignored_during_execution.as_ref().unwrap();
    assert_eq!(terms.len(), 1);
    assert_eq!(terms[0].topology_key, "kubernetes.io/hostname");
    assert_eq!(terms[0].label_selector.as_ref().unwrap().match_labels, Some(selector_labels("aerocluster")));
    let server = container(pod_spec(&d, 0), SERVER_CONTAINER_NAME);
    assert_eq!(server.ports.as_ref().unwrap()[0].host_port, Some(3000), "service port published on the node");

    let d = build(&load("multi-pod-per-host"));
    assert!(pod_spec(&d, 0).affinity.is_none(), "{:?}", pod_spec(&d, 0).affinity);
    let server = container(pod_spec(&d, 0), SERVER_CONTAINER_NAME);
    assert!(server.ports.as_ref().unwrap().iter().all(|p| p.host_port.is_none()));
}

#[test]
fn node_affinity_merges_with_user_terms_and_block_list() {
    let mut c = load("three-racks");
    // A second user term: terms are ORed, so both must carry the rack's requirements.
    let user = c.spec.pod_spec.as_mut().unwrap().scheduling.affinity.as_mut().unwrap();
    let terms = &mut user
        .node_affinity
        .as_mut()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_mut()
        .unwrap()
        .node_selector_terms;
    terms.push(
        serde_json::from_value(json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}]}))
            .unwrap(),
    );
    let d = build(&c);

    let terms_of = |rack: usize| {
        let a = pod_spec(&d, rack).affinity.as_ref().unwrap();
        serde_json::to_value(
            &a.node_affinity
                .as_ref()
                .unwrap()
                .required_during_scheduling_ignored_during_execution
                .as_ref()
                .unwrap()
                .node_selector_terms,
        )
        .unwrap()
    };
    let block = json!({"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["node-a", "node-b"]});
    assert_eq!(
        terms_of(0),
        json!([
            {"matchExpressions": [
                {"key": "node-pool", "operator": "In", "values": ["aerospike"]},
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]},
                block
            ]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}],
             "matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]},
                block
            ]}
        ])
    );
    let rack3 = terms_of(2);
    assert_eq!(
        rack3[0]["matchExpressions"][1],
        json!({"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1c"]})
    );
    assert_eq!(
        rack3[0]["matchExpressions"][2],
        json!({"key": "aerospike.com/rack-label", "operator": "In", "values": ["r3"]})
    );

    // No user affinity: one term with the operator's requirements only (region and node name too).
    let mut c = load("no-storage");
    c.spec.k8s_node_block_list = vec!["bad".into()];
    c.spec.rack_config =
        Some(serde_json::from_value(json!({"racks": [{"id": 4, "region": "eu", "nodeName": "n1"}]})).unwrap());
    let d = build(&c);
    assert_eq!(
        terms_of_single(&d),
        json!([{"matchExpressions": [
            {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["eu"]},
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]},
            {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["bad"]}
        ]}])
    );
}

fn terms_of_single(d: &Desired) -> Value {
    let a = pod_spec(d, 0).affinity.as_ref().unwrap();
    serde_json::to_value(
        &a.node_affinity
            .as_ref()
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()
            .node_selector_terms,
    )
    .unwrap()
}

#[test]
fn rack_scheduling_overrides_field_by_field() {
    let d = build(&load("three-racks"));
    let rack1 = pod_spec(&d, 0);
    let rack2 = pod_spec(&d, 1);
    assert_eq!(rack1.tolerations.as_ref().unwrap()[0].key.as_deref(), Some("aerospike"));
    assert_eq!(rack2.tolerations.as_ref().unwrap()[0].key.as_deref(), Some("dedicated"));
    assert_eq!(rack2.tolerations.as_ref().unwrap().len(), 1);
    // Rack 2 did not override the node selector: inherited.
    assert_eq!(rack2.node_selector.as_ref().unwrap()["disktype"], "ssd");
}

#[test]
fn pdb_absent_with_disable_pdb() {
    let mut c = load("no-storage");
    let d = build(&c);
    let pdb = d.pdb.unwrap();
    let spec = pdb.spec.unwrap();
    assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(spec.selector.unwrap().match_labels, Some(selector_labels("aerocluster")));
    c.spec.disable_pdb = Some(true);
    assert!(build(&c).pdb.is_none());
    c.spec.disable_pdb = Some(false);
    c.spec.max_unavailable = Some(IntOrString::String("50%".into()));
    assert_eq!(build(&c).pdb.unwrap().spec.unwrap().max_unavailable, Some(IntOrString::String("50%".into())));
}

/// The canonical text as `desired_hash` defined it before it streamed serde_json's own text: compact JSON with the
/// keys of every object sorted here, whatever serde_json's map order. Hashes written by earlier operator versions
/// (pod-spec hashes above all: a changed one restarts pods) are SHA-256 of this text.
fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[test]
fn the_hash_is_of_the_canonical_text_with_sorted_keys() {
    let canonical_hash = |v: &Value| {
        let mut text = String::new();
        write_canonical(v, &mut text);
        hex::encode(Sha256::digest(text.as_bytes()))
    };
    // serde_json's map keeps keys sorted (its `preserve_order` feature is off); desired_hash relies on it.
    let mut map = serde_json::Map::new();
    map.insert("b".into(), json!(1));
    map.insert("a".into(), json!(2));
    assert_eq!(Value::Object(map).to_string(), r#"{"a":2,"b":1}"#, "serde_json's preserve_order is on");
    let tricky = json!({"z": "é\"\n\u{1}", "a": [1.5, -2, 1e300, null, true, {"y": {}, "x": []}], "A": "", "é": 0});
    assert_eq!(desired_hash(&tricky), canonical_hash(&tricky));
    for sample in ["persistent-storage", "three-racks", "multi-pod-per-host", "no-storage"] {
        let d = build(&load(sample));
        let objects: Vec<Value> = d
            .stateful_sets
            .iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .chain(d.config_maps.iter().map(|o| serde_json::to_value(o).unwrap()))
            .chain(std::iter::once(serde_json::to_value(&d.headless_service).unwrap()))
            .chain(d.pdb.iter().map(|o| serde_json::to_value(o).unwrap()))
            .collect();
        for v in &objects {
            assert_eq!(desired_hash(v), canonical_hash(v), "{sample}");
        }
        assert_eq!(desired_hash(&d.stateful_sets[0]), canonical_hash(&objects[0]));
    }
}

#[test]
fn hashes_are_stable_and_follow_changes() {
    let c = load("persistent-storage");
    let a = build(&c);
    let b = build(&load("persistent-storage"));
    assert_eq!(a, b);
    assert_eq!(desired_hash(&a.stateful_sets[0]), desired_hash(&b.stateful_sets[0]));
    // Key order does not matter.
    assert_eq!(
        desired_hash(&json!({"a": 1, "b": {"x": [1, 2], "y": null}})),
        desired_hash(&json!({"b": {"y": null, "x": [1, 2]}, "a": 1}))
    );
    assert_ne!(desired_hash(&json!({"a": 1})), desired_hash(&json!({"a": 2})));
    // The pod-spec hash is the hash of the template without the hash annotations.
    let template = &a.stateful_sets[0].spec.as_ref().unwrap().template;
    let annotations = template.metadata.as_ref().unwrap().annotations.as_ref().unwrap();
    assert_eq!(annotations[ANNOTATION_POD_SPEC_HASH], a.racks[0].pod_spec_hash);
    assert_eq!(annotations[ANNOTATION_CONF_HASH], a.racks[0].conf_hash);
    assert_eq!(a.racks[0].conf_hash, crate::aerospike_conf::config_hash(&a.racks[0].conf));
    let mut bare = template.clone();
    bare.metadata.as_mut().unwrap().annotations = None;
    assert_eq!(pod::pod_spec_hash(&bare), a.racks[0].pod_spec_hash);

    // A new server image: new pod-spec hash, same conf hash.
    let mut c2 = c.clone();
    c2.spec.image = "aerospike/aerospike-server-enterprise:7.2.0.1".into();
    let d = build(&c2);
    assert_ne!(d.racks[0].pod_spec_hash, a.racks[0].pod_spec_hash);
    assert_eq!(d.racks[0].conf_hash, a.racks[0].conf_hash);

    // A config change: new conf hash, same pod-spec hash.
    let mut c3 = c.clone();
    c3.spec.aerospike_config.as_mut().unwrap()["namespaces"][0]["replication-factor"] = json!(3);
    let d = build(&c3);
    assert_ne!(d.racks[0].conf_hash, a.racks[0].conf_hash);
    assert_eq!(d.racks[0].pod_spec_hash, a.racks[0].pod_spec_hash);
    assert_ne!(desired_hash(&d.config_maps[0]), desired_hash(&a.config_maps[0]));

    // A new operator (init) image must not restart the pods, but the StatefulSet is updated.
    let d = desired_state(&resolve(&c), &BuildContext { init_image: "operator:0.2.0".into() }).unwrap();
    assert_eq!(d.racks[0].pod_spec_hash, a.racks[0].pod_spec_hash);
    assert_ne!(desired_hash(&d.stateful_sets[0]), desired_hash(&a.stateful_sets[0]));

    // A scale change touches neither hash, only replicas and the peers.
    let mut c4 = c.clone();
    c4.spec.size = 4;
    let d = build(&c4);
    assert_eq!((&d.racks[0].conf_hash, &d.racks[0].pod_spec_hash), (&a.racks[0].conf_hash, &a.racks[0].pod_spec_hash));
    assert_eq!(d.stateful_sets[0].spec.as_ref().unwrap().replicas, Some(4));
}

#[test]
fn the_node_block_list_changes_the_affinity_but_not_the_pod_spec_hash() {
    let c = load("persistent-storage");
    let a = build(&c);
    let mut blocked = c.clone();
    blocked.spec.k8s_node_block_list = vec!["node-b".into(), "node-a".into()];
    let d = build(&blocked);
    // Pods are compared by this hash: unchanged, so no pod restarts for the list itself (the rollout moves only the
    // pods on the listed nodes).
    assert_eq!(d.racks[0].pod_spec_hash, a.racks[0].pod_spec_hash);
    assert_eq!(d.racks[0].conf_hash, a.racks[0].conf_hash);
    // The template the StatefulSet recreates pods from keeps them off the listed nodes.
    let template = &d.stateful_sets[0].spec.as_ref().unwrap().template;
    let affinity = serde_json::to_value(&template.spec.as_ref().unwrap().affinity).unwrap();
    let terms = &affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    assert!(
        terms
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["matchExpressions"].as_array().unwrap().contains(
                &json!({"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["node-a", "node-b"]})
            )),
        "{affinity}"
    );
    assert_ne!(desired_hash(&d.stateful_sets[0]), desired_hash(&a.stateful_sets[0]));
    // Any other template change still changes the hash, with or without a block list.
    let mut image = blocked.clone();
    image.spec.image = "aerospike/aerospike-server-enterprise:7.2.0.1".into();
    assert_ne!(build(&image).racks[0].pod_spec_hash, d.racks[0].pod_spec_hash);
}

#[test]
fn config_errors_name_the_field() {
    let mut c = load("no-storage");
    c.spec.aerospike_config = None;
    assert_eq!(err(&c), "spec.aerospikeConfig: missing");

    let mut c = load("no-storage");
    c.spec.aerospike_config.as_mut().unwrap()["network"]["heartbeat"]["mode"] = json!("multicast");
    let e = err(&c);
    assert!(e.starts_with("spec.aerospikeConfig.network.heartbeat.mode: "), "{e}");
    assert_eq!(desired_state(&resolve(&c), &ctx()).unwrap_err().path(), "spec.aerospikeConfig.network.heartbeat.mode");

    let mut c = load("no-storage");
    c.spec.aerospike_config.as_mut().unwrap()["network"].as_object_mut().unwrap().remove("heartbeat");
    assert!(err(&c).starts_with("spec.aerospikeConfig.network.heartbeat: missing"), "{}", err(&c));

    let mut c = load("no-storage");
    c.spec.aerospike_config.as_mut().unwrap()["network"]["heartbeat"] = json!({"mode": "mesh"});
    assert!(err(&c).starts_with("spec.aerospikeConfig.network.heartbeat.port: missing"), "{}", err(&c));

    // An error in a rack's own config says which rack and where its override is.
    let mut c = load("three-racks");
    c.spec.rack_config.as_mut().unwrap().racks[2].aerospike_config =
        Some(json!({"namespaces": [{"replication-factor": 3}]}));
    let e = err(&c);
    assert!(e.starts_with("spec.aerospikeConfig.namespaces[1].name: missing"), "{e}");
    assert!(e.contains("spec.rackConfig.racks[2].aerospikeConfig"), "{e}");

    // Every network type builds (pod-init resolves configuredIP and customInterface from what the operator
    // publishes); the webhook checks custom network names.
    let mut c = load("no-storage");
    c.spec.aerospike_network_policy = Some(serde_json::from_value(json!({"tlsAccess": "configuredIP"})).unwrap());
    build(&c);
}

#[test]
fn storage_errors_name_the_field() {
    let mut c = load("persistent-storage");
    c.spec.storage.as_mut().unwrap().filesystem_volume_policy.as_mut().unwrap().init_method =
        Some(crate::api::VolumeMethod::Dd);
    assert!(err(&c).starts_with("spec.storage.filesystemVolumePolicy.initMethod: dd does not apply"), "{}", err(&c));

    let mut c = load("persistent-storage");
    c.spec.storage.as_mut().unwrap().volumes[1].init_method = Some(crate::api::VolumeMethod::DeleteFiles);
    assert!(err(&c).starts_with("spec.storage.volumes[1].initMethod: deleteFiles does not apply"), "{}", err(&c));

    let mut c = load("persistent-storage");
    c.spec.storage.as_mut().unwrap().volumes[0].sidecars[0].container_name = "nope".into();
    assert!(err(&c).starts_with("spec.storage.volumes[0].sidecars[0].containerName: "), "{}", err(&c));

    let mut c = load("persistent-storage");
    c.spec.storage.as_mut().unwrap().volumes[2].name = CONF_VOLUME.into();
    assert!(err(&c).starts_with("spec.storage.volumes[2].name: "), "{}", err(&c));

    let mut c = load("persistent-storage");
    c.spec.storage.as_mut().unwrap().volumes[2].source = Default::default();
    assert!(err(&c).starts_with("spec.storage.volumes[2].source: "), "{}", err(&c));

    // A rack's own storage is reported under the rack.
    let mut c = load("three-racks");
    let mut storage = load("persistent-storage").spec.storage.unwrap();
    storage.volumes[0].sidecars.clear();
    storage.volumes[1].init_method = Some(crate::api::VolumeMethod::DeleteFiles);
    c.spec.rack_config.as_mut().unwrap().racks[1].storage = Some(storage);
    assert!(err(&c).starts_with("spec.rackConfig.racks[1].storage.volumes[1].initMethod: "), "{}", err(&c));

    let mut c = load("no-storage");
    c.metadata.name = Some("a-very-long-cluster-name-that-goes-on-and-on-and-on-x".into());
    assert!(err(&c).starts_with("metadata.name: "), "{}", err(&c));
}

#[test]
fn storage_becomes_claims_mounts_and_init_volumes() {
    let d = build(&load("persistent-storage"));
    let sts = d.stateful_sets[0].spec.as_ref().unwrap();
    let claims = sts.volume_claim_templates.as_ref().unwrap();
    assert_eq!(claims.iter().map(|c| c.metadata.name.clone().unwrap()).collect::<Vec<_>>(), vec!["workdir", "ns"]);
    assert_eq!(claims[1].spec.as_ref().unwrap().volume_mode.as_deref(), Some("Block"));
    assert_eq!(claims[0].metadata.labels.as_ref().unwrap()["team"], "storage");
    assert_eq!(claims[0].metadata.labels.as_ref().unwrap()[LABEL_RACK], "0");

    let spec = pod_spec(&d, 0);
    let server = container(spec, SERVER_CONTAINER_NAME);
    let mounts: Vec<_> =
        server.volume_mounts.as_ref().unwrap().iter().map(|m| (m.name.as_str(), m.mount_path.as_str())).collect();
    assert_eq!(
        mounts,
        vec![
            (CONF_VOLUME, CONF_DIR),
            ("workdir", "/opt/aerospike"),
            ("aerospike-config-secret", "/etc/aerospike/secret")
        ]
    );
    assert_eq!(server.volume_devices.as_ref().unwrap()[0].device_path, "/dev/xvdf");
    let sidecar = container(spec, "exporter");
    assert_eq!(sidecar.volume_mounts.as_ref().unwrap()[0].read_only, Some(true));

    let init = container(spec, INIT_CONTAINER_NAME);
    let volumes: Vec<InitVolume> = serde_json::from_str(&env_value(init, ENV_INIT_VOLUMES).unwrap()).unwrap();
    assert_eq!(
        volumes,
        vec![
            InitVolume {
                name: "workdir".into(),
                path: "/aerospike-volumes/workdir".into(),
                block: false,
                method: crate::api::VolumeMethod::DeleteFiles,
                wipe: None,
            },
            InitVolume {
                name: "ns".into(),
                path: "/aerospike-volumes/ns".into(),
                block: true,
                method: crate::api::VolumeMethod::Dd,
                wipe: Some(crate::api::VolumeMethod::Dd),
            },
        ]
    );
    // Root (files of the server belong to root), but no privilege escalation and all but two capabilities dropped.
    let sc = init.security_context.as_ref().unwrap();
    assert_eq!(
        (sc.run_as_user, sc.allow_privilege_escalation, sc.read_only_root_filesystem),
        (Some(0), Some(false), Some(true))
    );
    // Without volumes to initialise: non-root.
    let d = build(&load("no-storage"));
    let sc = container(pod_spec(&d, 0), INIT_CONTAINER_NAME).security_context.clone().unwrap();
    assert_eq!((sc.run_as_non_root, sc.run_as_user), (Some(true), Some(65532)));
    assert_eq!(pod_spec(&d, 0).automount_service_account_token, Some(false));
    // The server container: no privilege escalation, RuntimeDefault seccomp, NET_RAW and the like dropped.
    let sc = container(pod_spec(&d, 0), SERVER_CONTAINER_NAME).security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()), Some("RuntimeDefault"));
    let caps = sc.capabilities.unwrap();
    assert_eq!(caps.drop, Some(vec!["ALL".to_string()]));
    assert!(!caps.add.unwrap().iter().any(|c| c == "NET_RAW" || c == "SYS_ADMIN"));
    // The user's own security context replaces it.
    let mut c = load("no-storage");
    let mine = k8s_openapi::api::core::v1::SecurityContext { run_as_user: Some(1000), ..Default::default() };
    c.spec.pod_spec.get_or_insert_with(Default::default).aerospike_container =
        Some(crate::api::AerospikeContainerSpec { security_context: Some(mine.clone()), ..Default::default() });
    let d = build(&c);
    assert_eq!(container(pod_spec(&d, 0), SERVER_CONTAINER_NAME).security_context, Some(mine));
}

#[test]
fn init_image_overrides() {
    let spec = |r: Option<&str>, n: Option<&str>, t: Option<&str>| crate::api::AerospikeInitContainerSpec {
        image_registry: r.map(Into::into),
        image_registry_namespace: n.map(Into::into),
        image_name_and_tag: t.map(Into::into),
        ..Default::default()
    };
    let d = "ghcr.io/aerospike-rs/aerospike-kubernetes-operator:0.1.0";
    assert_eq!(pod::init_image(d, None), d);
    assert_eq!(pod::init_image(d, Some(&spec(None, None, None))), d);
    assert_eq!(
        pod::init_image(d, Some(&spec(Some("mirror.local:5000"), None, None))),
        "mirror.local:5000/aerospike-rs/aerospike-kubernetes-operator:0.1.0"
    );
    assert_eq!(pod::init_image(d, Some(&spec(None, Some("team"), Some("op:1")))), "ghcr.io/team/op:1");
    assert_eq!(pod::init_image("operator:dev", Some(&spec(Some("r.io"), None, None))), "r.io/operator:dev");
    assert_eq!(
        pod::init_image("library/operator:dev", Some(&spec(Some("r.io"), None, None))),
        "r.io/library/operator:dev"
    );
}

#[test]
fn pod_init_contract() {
    let d = build(&load("three-racks"));
    let spec = pod_spec(&d, 2);
    let init = container(spec, INIT_CONTAINER_NAME);
    assert_eq!(spec.init_containers.as_ref().unwrap()[0].name, INIT_CONTAINER_NAME, "runs first");
    assert_eq!(init.image.as_deref(), Some(INIT_IMAGE));
    assert_eq!(init.args, Some(vec!["pod-init".to_string()]));
    assert_eq!(env_value(init, ENV_CLUSTER_NAME).as_deref(), Some("aerocluster"));
    assert_eq!(env_value(init, ENV_RACK_ID).as_deref(), Some("3"));
    assert_eq!(env_value(init, ENV_HEARTBEAT_PORT).as_deref(), Some("3002"));
    assert_eq!(env_value(init, ENV_NETWORK_POLICY).as_deref(), Some("{}"));
    let downward: Vec<_> = init
        .env
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e.name.as_str(), e.value_from.as_ref()?.field_ref.as_ref()?.field_path.as_str())))
        .collect();
    assert_eq!(
        downward,
        vec![
            (ENV_POD_NAME, "metadata.name"),
            (ENV_POD_NAMESPACE, "metadata.namespace"),
            (ENV_POD_IP, "status.podIP"),
            (ENV_HOST_IP, "status.hostIP"),
            (ENV_NODE_NAME, "spec.nodeName"),
            (ENV_CONF_HASH, "metadata.annotations['aerospike.com/conf-hash']"),
        ]
    );
    let mounts: Vec<_> =
        init.volume_mounts.as_ref().unwrap().iter().map(|m| (m.name.as_str(), m.mount_path.as_str())).collect();
    assert_eq!(mounts, vec![(CONF_VOLUME, CONF_DIR), (TEMPLATE_VOLUME, TEMPLATE_DIR)]);
    // The pod-init CLI defaults point at these paths.
    let args = crate::podinit::PodInitArgs::default();
    assert_eq!(args.config_map_dir, PathBuf::from(TEMPLATE_DIR));
    assert_eq!(args.output, PathBuf::from(CONF_FILE));

    // enableRackIDOverride adds the annotation through the Downward API.
    let mut c = load("three-racks");
    c.spec.enable_rack_id_override = Some(true);
    let d = build(&c);
    let init = container(pod_spec(&d, 0), INIT_CONTAINER_NAME);
    assert!(init.env.as_ref().unwrap().iter().any(|e| e.name == ENV_OVERRIDE_RACK_ID));

    // The ConfigMap carries what pod-init reads: the rack's template (with its own rack-id) and the peers.
    let data = d.config_maps[2].data.as_ref().unwrap();
    assert!(data[CM_TEMPLATE_KEY].contains("    rack-id    3\n"), "{}", data[CM_TEMPLATE_KEY]);
    assert!(data[CM_TEMPLATE_KEY].contains("    replication-factor    3\n"), "rack override applied");
    assert!(d.config_maps[0].data.as_ref().unwrap()[CM_TEMPLATE_KEY].contains("    replication-factor    2\n"));
}

#[test]
fn end_to_end_with_pod_init() {
    // The template and peers of a built ConfigMap, finalised by pod-init's pure core for each pod.
    let d = build(&load("no-storage"));
    let data = d.config_maps[0].data.as_ref().unwrap();
    for ordinal in 0..2 {
        let pod = format!("aerocluster-0-{ordinal}");
        let init = container(pod_spec(&d, 0), INIT_CONTAINER_NAME);
        let lookup = |k: &str| -> Option<String> {
            match k {
                ENV_POD_NAME => Some(pod.clone()),
                ENV_POD_NAMESPACE => Some("aerospike".into()),
                ENV_POD_IP => Some(format!("10.0.0.{ordinal}")),
                ENV_HOST_IP => Some("192.168.1.1".into()),
                ENV_CONF_HASH => Some(d.racks[0].conf_hash.clone()),
                _ => env_value(init, k),
            }
        };
        let env = crate::podinit::PodEnv::from_lookup(lookup).unwrap();
        assert!(crate::podinit::template_is_current(&data[CM_TEMPLATE_KEY], &env));
        let (text, _) = crate::podinit::render_conf(&data[CM_TEMPLATE_KEY], &data[CM_PEERS_KEY], &env).unwrap();
        let other = 1 - ordinal;
        assert!(
            text.contains(&format!("mesh-seed-address-port    aerocluster-0-{other}.aerocluster.aerospike 3002\n")),
            "{text}"
        );
        assert!(!text.contains(&format!("aerocluster-0-{ordinal}.aerocluster")), "not its own seed");
        assert!(text.contains(&format!("node-id    0a{ordinal}\n")));
        assert!(text.contains("access-address    192.168.1.1\n"));
        assert!(!text.contains('<'), "every placeholder replaced: {text}");
    }
}

/// The CRD defaults the four access types (hostInternal / hostExternal): a policy the API server defaulted builds
/// the same pods and ConfigMaps as the policy the user wrote, so the new schema defaults restart no pod.
#[test]
fn network_policy_defaults_from_the_schema_change_no_pod() {
    let mut written = load("three-racks");
    written.spec.aerospike_network_policy = Some(serde_json::from_value(json!({"tlsAccess": "pod"})).unwrap());
    let mut defaulted = written.clone();
    defaulted.spec.aerospike_network_policy = Some(
        serde_json::from_value(json!({"access": "hostInternal", "alternateAccess": "hostExternal",
            "tlsAccess": "pod", "tlsAlternateAccess": "hostExternal"}))
        .unwrap(),
    );
    assert_eq!(to_yaml(&build(&written)), to_yaml(&build(&defaulted)));
    let none = load("three-racks");
    let mut empty_defaulted = none.clone();
    empty_defaulted.spec.aerospike_network_policy = Some(
        serde_json::from_value(json!({"access": "hostInternal", "alternateAccess": "hostExternal",
            "tlsAccess": "hostInternal", "tlsAlternateAccess": "hostExternal"}))
        .unwrap(),
    );
    let d = build(&empty_defaulted);
    assert_eq!(to_yaml(&build(&none)), to_yaml(&d));
    assert_eq!(env_value(container(pod_spec(&d, 2), INIT_CONTAINER_NAME), ENV_NETWORK_POLICY).as_deref(), Some("{}"));
    // A value other than the default still reaches pod-init.
    let d = build(&written);
    assert_eq!(
        env_value(container(pod_spec(&d, 2), INIT_CONTAINER_NAME), ENV_NETWORK_POLICY).as_deref(),
        Some(r#"{"tlsAccess":"pod"}"#)
    );
}

/// cleanupThreads reaches pod-init through the rack ConfigMap: a change restarts no pod (the pod template is the same).
#[test]
fn cleanup_threads_live_in_the_config_map_not_the_pod_template() {
    let one = build(&load("persistent-storage"));
    let mut c = load("persistent-storage");
    c.spec.storage.as_mut().unwrap().cleanup_threads = Some(4);
    let four = build(&c);
    assert_eq!(one.racks[0].pod_spec_hash, four.racks[0].pod_spec_hash);
    let key = |d: &Desired| d.config_maps[0].data.as_ref().unwrap()[CM_CLEANUP_THREADS_KEY].clone();
    assert_eq!((key(&one), key(&four)), ("1".to_string(), "4".to_string()));
}
