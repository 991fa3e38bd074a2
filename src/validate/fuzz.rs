//! Property test: arbitrary and mutated AerospikeClusters (deterministic xorshift generator) through defaulting and
//! validation. For every case: no panic; every refusal names a field (`spec.` or `metadata.`); defaulting is
//! idempotent; a valid object stays valid once defaulted and builds the same ConfigMaps and StatefulSets.
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::{Map, Value, json};

use super::{default_cluster, validate};
use crate::api::AerospikeCluster;
use crate::build::{self, BuildContext};

/// xorshift64*: small, deterministic, good enough to explore shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &[
    "aerocluster",
    "a",
    "x-1",
    "Bad_Name",
    "",
    "1abc",
    "a-very-long-cluster-name-that-is-far-too-long-for-racks",
    "ok-",
];
const IMAGES: &[&str] = &[
    "aerospike/aerospike-server-enterprise:7.1.0.0",
    "aerospike/aerospike-server-enterprise:6.0.0.1",
    "aerospike/aerospike-server-enterprise:8.0.0.8",
    "aerospike/aerospike-server-federal:7.2.0.1",
    "aerospike/aerospike-server:7.1.0.0",
    "aerospike/aerospike-server-enterprise:5.7.0.1",
    "aerospike/aerospike-server-enterprise:latest",
    "aerospike/aerospike-server-enterprise@sha256:0123",
    "",
];
const KEYS: &[&str] = &[
    "service",
    "network",
    "namespaces",
    "logging",
    "security",
    "xdr",
    "port",
    "tls-port",
    "tls-name",
    "heartbeat",
    "fabric",
    "name",
    "replication-factor",
    "strong-consistency",
    "storage-engine",
    "devices",
    "files",
    "type",
    "mode",
    "access-port",
    "cluster-name",
    "node-id",
    "rack-id",
    "proto-fd-max",
    "any",
    "data-size",
    "sets",
    "tls",
    "index-type",
    "mounts",
    "work-directory",
    "enable-quotas",
    "garbage",
    "service-threads",
    "memory-size",
];
const STRINGS: &[&str] = &[
    "",
    "test",
    "mesh",
    "multicast",
    "memory",
    "device",
    "flash",
    "/dev/xvdf",
    "/dev/xvdg:/dev/xvdh",
    "/opt/aerospike/x.dat",
    "rel.dat",
    "info",
    "verbose",
    "any",
    "false",
    "t1",
    "50%",
    "1Gi",
    "abc",
    "aerocluster",
    "ENV_NODE_ID",
    "Block",
    "Filesystem",
    "sys-admin",
    "user-admin",
    "read.test",
    "admin",
    "10.0.0.0/8",
    "::1",
    "2",
    "-1",
    "120%",
    "500m",
];

fn random_scalar(r: &mut Rng) -> Value {
    match r.below(7) {
        0 => Value::Null,
        1 => json!(r.chance(50)),
        2 => json!(r.below(5000) as i64 - 10),
        3 => json!((r.below(100000) as f64) / 7.0),
        4 => json!(u64::MAX - r.below(10) as u64),
        _ => json!(*r.pick(STRINGS)),
    }
}

fn random_value(r: &mut Rng, depth: usize) -> Value {
    if depth == 0 || r.chance(45) {
        return random_scalar(r);
    }
    if r.chance(40) {
        let n = r.below(4);
        Value::Array((0..n).map(|_| random_value(r, depth - 1)).collect())
    } else {
        let n = r.below(5);
        let mut m = Map::new();
        for _ in 0..n {
            m.insert((*r.pick(KEYS)).to_string(), random_value(r, depth - 1));
        }
        Value::Object(m)
    }
}

fn base_config(r: &mut Rng) -> Value {
    let engine = match r.below(4) {
        0 => json!({"type": "memory", "data-size": 1073741824}),
        1 => json!({"type": "device", "devices": ["/dev/xvdf"]}),
        2 => json!({"type": "device", "files": ["/opt/aerospike/data/t.dat"], "filesize": 1073741824}),
        _ => json!("memory"),
    };
    let mut cfg = json!({
        "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
        "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
        "namespaces": [{"name": "test", "replication-factor": 1 + r.below(3), "storage-engine": engine}]
    });
    if r.chance(30) {
        cfg["security"] = json!({});
    }
    if r.chance(20) {
        cfg["namespaces"][0]["strong-consistency"] = json!(true);
    }
    if r.chance(20) {
        cfg["network"]["tls"] = json!([{"name": "t1"}]);
        cfg["network"]["service"]["tls-name"] = json!("t1");
        cfg["network"]["service"]["tls-port"] = json!(4333);
    }
    cfg
}

fn volume(r: &mut Rng, i: usize) -> Value {
    let name = format!("{}{i}", r.pick(&["vol", "aerospike-conf", "work", "Bad"]));
    let source = match r.below(5) {
        0 => json!({"emptyDir": {}}),
        1 => json!({"secret": {"secretName": "s"}}),
        2 => json!({}),
        3 => json!({"persistentVolume": {"storageClass": "ssd", "volumeMode": "Block", "size": "1Gi"}, "emptyDir": {}}),
        _ => {
            json!({"persistentVolume": {"storageClass": "ssd", "volumeMode": r.pick(&["Block", "Filesystem"]), "size": r.pick(&["1Gi", "5Gi"])}})
        }
    };
    let path = *r.pick(&[
        "/dev/xvdf",
        "/opt/aerospike",
        "/opt/aerospike/data",
        "/etc/aerospike/secret",
        "/etc/aerospike",
        "rel",
    ]);
    let mut v = json!({"name": name, "source": source, "aerospike": {"path": path}});
    if r.chance(20) {
        v["initMethod"] = json!(*r.pick(&["none", "dd", "deleteFiles", "blkdiscard", "headerCleanup"]));
    }
    if r.chance(10) {
        v["sidecars"] = json!([{"containerName": r.pick(&["exporter", "nope"]), "path": "/w"}]);
    }
    v
}

/// A cluster built from valid parts only (names, images, volumes, racks), varied in shape.
fn tame_cluster(r: &mut Rng) -> Value {
    let engine = match r.below(3) {
        0 => json!({"type": "memory", "data-size": 1073741824}),
        1 => json!({"type": "device", "devices": ["/dev/xvdf"]}),
        _ => json!({"type": "device", "files": ["/opt/aerospike/data/t.dat"], "filesize": 1073741824}),
    };
    let rf = 1 + r.below(3);
    let mut cfg = json!({
        "service": {"feature-key-file": "/etc/aerospike/secret/features.conf", "proto-fd-max": 1000 + r.below(20000)},
        "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
        "namespaces": [{"name": "test", "replication-factor": rf, "storage-engine": engine},
                       {"name": "mem", "replication-factor": 2, "storage-engine": {"type": "memory", "data-size": 1073741824}}]
    });
    if r.chance(40) {
        cfg["logging"] = json!([{"name": "console", "any": r.pick(&["info", "warning", "DEBUG"])}]);
    }
    let security = r.chance(40);
    if security {
        cfg["security"] = json!({});
    }
    let mut spec = json!({
        "size": 2 + r.below(5),
        "image": *r.pick(&IMAGES[..4]),
        "aerospikeConfig": cfg,
        "storage": {"volumes": [
            {"name": "workdir", "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}},
             "aerospike": {"path": "/opt/aerospike"}},
            {"name": "ns", "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Block", "size": "5Gi"}},
             "aerospike": {"path": "/dev/xvdf"}, "cascadeDelete": r.chance(50)},
            {"name": "secret", "source": {"secret": {"secretName": "s"}}, "aerospike": {"path": "/etc/aerospike/secret"}}
        ]}
    });
    if r.chance(50) {
        spec["maxUnavailable"] = json!(1);
    }
    if r.chance(60) {
        let n = 1 + r.below(3);
        let racks: Vec<Value> = (0..n)
            .map(|i| {
                let mut rack = json!({"id": i + 1, "zone": *r.pick(&["a", "b", "c"])});
                if r.chance(30) {
                    rack["aerospikeConfig"] = json!({"service": {"proto-fd-max": 20000}, "namespaces": [{"name": "mem", "replication-factor": 2}]});
                }
                if r.chance(30) {
                    rack["revision"] = json!(*r.pick(&["v1", "v2"]));
                }
                rack
            })
            .collect();
        spec["rackConfig"] = json!({"racks": racks, "namespaces": ["test"]});
    }
    if security {
        spec["aerospikeAccessControl"] =
            json!({"users": [{"name": "admin", "secretName": "auth", "roles": ["sys-admin", "user-admin"]}]});
    }
    json!({
        "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
        "metadata": {"name": *r.pick(&NAMES[..3]), "namespace": "aerospike", "uid": "u-1"},
        "spec": spec,
    })
}

fn random_cluster(r: &mut Rng) -> Value {
    let mut spec = json!({
        "size": if r.chance(85) { 1 + r.below(6) as i64 } else { r.below(400) as i64 - 20 },
        "image": *r.pick(IMAGES),
        "aerospikeConfig": base_config(r),
    });
    if r.chance(50) {
        spec["maxUnavailable"] = match r.below(4) {
            0 => json!(r.below(4)),
            1 => json!(format!("{}%", r.below(120))),
            2 => json!("x"),
            _ => json!(-1),
        };
    }
    if r.chance(70) {
        let n = r.below(5);
        spec["storage"] = json!({"volumes": (0..n).map(|i| volume(r, i)).collect::<Vec<_>>()});
        if r.chance(30) {
            spec["storage"]["blockVolumePolicy"] = json!({"initMethod": r.pick(&["dd", "none", "deleteFiles"])});
        }
    }
    if r.chance(60) {
        let n = r.below(4);
        let racks: Vec<Value> = (0..n)
            .map(|i| {
                let mut rack = json!({"id": if r.chance(90) { i as i64 + 1 } else { r.below(3) as i64 }});
                if r.chance(40) {
                    rack["zone"] = json!(*r.pick(&["a", "b", "c"]));
                }
                if r.chance(30) {
                    rack["aerospikeConfig"] = if r.chance(60) {
                        json!({"namespaces": [{"name": "test", "replication-factor": 1 + r.below(4)}]})
                    } else {
                        random_value(r, 3)
                    };
                }
                if r.chance(20) {
                    rack["revision"] = json!(*r.pick(&["v1", "v2"]));
                }
                if r.chance(15) {
                    rack["storage"] = json!({"volumes": [volume(r, 9)]});
                }
                rack
            })
            .collect();
        spec["rackConfig"] = json!({"racks": racks});
        if r.chance(50) {
            spec["rackConfig"]["namespaces"] = json!([*r.pick(&["test", "nope"])]);
        }
        if r.chance(30) {
            spec["rackConfig"]["rollingUpdateBatchSize"] = json!(1 + r.below(3));
        }
    }
    if r.chance(40) {
        spec["aerospikeAccessControl"] = json!({
            "roles": if r.chance(50) { json!([{"name": r.pick(&["r1", "read", ""]), "privileges": [r.pick(STRINGS)], "whitelist": [r.pick(STRINGS)]}]) } else { json!([]) },
            "users": [{"name": r.pick(&["admin", "app", ""]), "secretName": r.pick(&["s", ""]),
                       "roles": if r.chance(60) { json!(["sys-admin", "user-admin"]) } else { json!([r.pick(STRINGS)]) }}]
        });
    }
    if r.chance(30) {
        spec["podSpec"] = json!({
            "multiPodPerHost": r.chance(50),
            "aerospikeContainer": {"resources": {"requests": {"cpu": r.pick(&["1", "500m", "x"])}, "limits": {"cpu": r.pick(&["2", "100m", "1"])}}},
        });
    }
    json!({
        "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
        "metadata": {"name": *r.pick(NAMES), "namespace": if r.chance(95) { "aerospike" } else { "" }, "uid": "u-1"},
        "spec": spec,
    })
}

/// All JSON pointers of a value.
fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{here}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{here}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

/// A few random edits: replace a value, delete a key, add a key.
fn mutate(r: &mut Rng, v: &mut Value) {
    for _ in 0..1 + r.below(3) {
        let mut ps = Vec::new();
        pointers(&v["spec"], "/spec".into(), &mut ps);
        if ps.is_empty() {
            return;
        }
        let p = r.pick(&ps).clone();
        let (parent, key) = p.rsplit_once('/').unwrap();
        let replacement = random_value(r, 2);
        let Some(target) = v.pointer_mut(parent) else { continue };
        match target {
            Value::Object(m) => match r.below(3) {
                0 => {
                    m.remove(key);
                }
                1 => {
                    m.insert((*r.pick(KEYS)).to_string(), replacement);
                }
                _ => {
                    m.insert(key.to_string(), replacement);
                }
            },
            Value::Array(a) => {
                let i: usize = key.parse().unwrap_or(0);
                if r.chance(30) && i < a.len() {
                    a.remove(i);
                } else if i < a.len() {
                    a[i] = replacement;
                }
            }
            _ => {}
        }
    }
}

fn check_case(new: &AerospikeCluster, old: Option<&AerospikeCluster>) -> Result<bool, String> {
    let errors = validate(new, old);
    for e in &errors {
        if !(e.path.starts_with("spec.") || e.path.starts_with("metadata.")) {
            return Err(format!("refusal without a field path: {e}"));
        }
    }
    let mut once = new.clone();
    default_cluster(&mut once);
    let mut twice = once.clone();
    default_cluster(&mut twice);
    if once != twice {
        return Err("defaulting is not idempotent".into());
    }
    let defaulted_errors = validate(&once, old);
    for e in &defaulted_errors {
        if !(e.path.starts_with("spec.") || e.path.starts_with("metadata.")) {
            return Err(format!("refusal without a field path after defaulting: {e}"));
        }
    }
    if errors.is_empty() {
        if !defaulted_errors.is_empty() {
            return Err(format!("valid, but refused once defaulted: {defaulted_errors:?}"));
        }
        let ctx = BuildContext { init_image: "op:1".into() };
        let mut with_uid = new.clone();
        with_uid.metadata.uid = Some("u".into());
        let mut once_uid = once.clone();
        once_uid.metadata.uid = Some("u".into());
        let a = build::desired_state(&with_uid, &ctx).map_err(|e| format!("valid but does not build: {e}"))?;
        let b = build::desired_state(&once_uid, &ctx).map_err(|e| format!("defaulted does not build: {e}"))?;
        if a.config_maps != b.config_maps || a.stateful_sets != b.stateful_sets {
            return Err("defaulting changed the built objects".into());
        }
    }
    Ok(errors.is_empty())
}

#[test]
fn arbitrary_and_mutated_specs() {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut cases, mut valid, mut unparsable, mut updates) = (0usize, 0usize, 0usize, 0usize);
    for i in 0..8000 {
        // Shapes: tame (valid parts), tame then mutated, arbitrary, arbitrary then mutated.
        let mut v = if i % 4 < 2 { tame_cluster(&mut r) } else { random_cluster(&mut r) };
        if i % 2 == 1 {
            mutate(&mut r, &mut v);
        }
        let Ok(new) = serde_json::from_value::<AerospikeCluster>(v.clone()) else {
            unparsable += 1;
            continue;
        };
        // Every third case is an update of an earlier shape of itself.
        let old = (i % 3 == 0)
            .then(|| {
                let mut o = v.clone();
                mutate(&mut r, &mut o);
                serde_json::from_value::<AerospikeCluster>(o).ok()
            })
            .flatten();
        updates += usize::from(old.is_some());
        let result = catch_unwind(AssertUnwindSafe(|| check_case(&new, old.as_ref())));
        match result {
            Ok(Ok(ok)) => valid += usize::from(ok),
            Ok(Err(msg)) => panic!("case {i}: {msg}\n{}", serde_json::to_string_pretty(&v).unwrap()),
            Err(_) => panic!("case {i} panicked:\n{}", serde_json::to_string_pretty(&v).unwrap()),
        }
        cases += 1;
    }
    eprintln!(
        "fuzz: {cases} cases through defaulting + validation ({valid} valid, {updates} updates); {unparsable} generated objects did not parse"
    );
    assert!(cases >= 5000, "only {cases} cases");
    assert!(valid >= 500, "the generator should reach valid objects too ({valid})");
}
