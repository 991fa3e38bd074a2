//! Property test: arbitrary and mutated AerospikeClusters (deterministic xorshift generator) through defaulting and
//! validation. For every case: no panic; every refusal names a field (`spec.` or `metadata.`); defaulting is
//! idempotent; a valid object stays valid once defaulted and builds the same ConfigMaps and StatefulSets.
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::{Map, Value, json};

use super::{default_cluster, validate};
use crate::api::AerospikeCluster;
use crate::desired::{self, BuildContext};

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
        let a = desired::desired_state(&crate::resolve::resolve(&with_uid), &ctx)
            .map_err(|e| format!("valid but does not build: {e}"))?;
        let b = desired::desired_state(&crate::resolve::resolve(&once_uid), &ctx)
            .map_err(|e| format!("defaulted does not build: {e}"))?;
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

// ---------------------------------------------------------------------------------------------------------------
// Oversized inputs, memory measured.
//
// The webhook runs inside the operator: an object that makes validation allocate without bound can push the
// process past its memory limit. A counting allocator (this test binary only) keeps per-thread totals, so the
// tests running in parallel do not disturb each other's numbers.

mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn add(n: isize) {
        // try_with: the thread's slots may be gone while it exits; those bytes are not ours to count.
        let _ = LIVE.try_with(|live| {
            let now = live.get() + n;
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                add(layout.size() as isize);
            }
            p
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                add(layout.size() as isize);
            }
            p
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            add(-(layout.size() as isize));
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                add(new_size as isize - layout.size() as isize);
            }
            p
        }
    }

    /// Runs `f` and returns its result with the most bytes it held allocated at once (on this thread, above
    /// what was allocated before).
    pub fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
        let start = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(start));
        let r = f();
        let peak = PEAK.with(Cell::get);
        (r, (peak - start).max(0) as usize)
    }
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// What the validating webhook does with a request's object (and the reconciler with a stored one): parse,
/// default, validate (as an update of itself and as a create). Returns the refusals and the peak bytes.
fn admit(bytes: &[u8]) -> (Vec<super::FieldError>, usize) {
    let (errors, peak) = counting::peak_during(|| {
        let Ok(new) = serde_json::from_slice::<AerospikeCluster>(bytes) else { return Vec::new() };
        let mut defaulted = new.clone();
        default_cluster(&mut defaulted);
        let mut errors = validate(&defaulted, Some(&new));
        errors.extend(validate(&new, None));
        errors
    });
    (errors, peak)
}

/// The bound asserted: a few copies of the input (the object, its defaulted copy, error messages quoting the
/// offending string) and a fixed allowance; nothing that grows with the product of two input lengths.
fn memory_bound(input: usize) -> usize {
    24 * input + (4 << 20)
}

fn long(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// A valid cluster with security, to carry the oversized values.
fn carrier() -> Value {
    json!({
        "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
        "metadata": {"name": "aerocluster", "namespace": "aerospike", "uid": "u-1"},
        "spec": {
            "size": 2, "image": "aerospike/aerospike-server-enterprise:7.1.0.0",
            "rackConfig": {"namespaces": ["test"], "racks": [{"id": 1}, {"id": 2}]},
            "aerospikeAccessControl": {"users": [{"name": "admin", "secretName": "auth", "roles": ["sys-admin", "user-admin"]}]},
            "aerospikeConfig": {
                "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
                "security": {},
                "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
                "namespaces": [{"name": "test", "replication-factor": 2, "storage-engine": {"type": "memory", "data-size": 1073741824}}]
            }
        }
    })
}

/// The oversized cases: (what, object).
fn oversized_cases() -> Vec<(&'static str, Value)> {
    let mut cases = Vec::new();
    // Two 10,000-character names compared with each other: a rack-enabled namespace that is not in aerospikeConfig.
    let mut v = carrier();
    v["spec"]["aerospikeConfig"]["namespaces"][0]["name"] = json!(long('a', 10_000));
    v["spec"]["rackConfig"]["namespaces"] = json!([long('b', 10_000)]);
    cases.push(("rack-enabled namespace vs namespace names, 10,000 characters each", v));
    // The same with role names: a user's role that no role defines.
    let mut v = carrier();
    v["spec"]["aerospikeAccessControl"]["roles"] = json!([{"name": long('r', 10_000), "privileges": ["read"]}]);
    v["spec"]["aerospikeAccessControl"]["users"][0]["roles"] = json!(["sys-admin", "user-admin", long('q', 10_000)]);
    cases.push(("user role vs role names, 10,000 characters each", v));
    // aerospikeConfig is free-form (no maxLength possible): a 1 MB unknown key against the known keys.
    let mut v = carrier();
    v["spec"]["aerospikeConfig"]["service"][long('k', 1 << 20)] = json!(1);
    cases.push(("1 MB unknown aerospikeConfig key", v));
    // A 1 MB log level and a 1 MB enum value.
    let mut v = carrier();
    v["spec"]["aerospikeConfig"]["logging"] = json!([{"name": "console", "any": long('i', 1 << 20)}]);
    v["spec"]["aerospikeConfig"]["network"]["heartbeat"]["mode"] = json!(long('m', 1 << 20));
    cases.push(("1 MB log level and heartbeat mode", v));
    // A 100,000-character privilege.
    let mut v = carrier();
    v["spec"]["aerospikeAccessControl"]["roles"] = json!([{"name": "r1", "privileges": [long('p', 100_000)]}]);
    v["spec"]["aerospikeAccessControl"]["users"][0]["roles"] = json!(["sys-admin", "user-admin", "r1"]);
    cases.push(("100,000-character privilege", v));
    // Many misses against many names, each 64 characters (the longest that still gets a suggestion): 10,000 role
    // references no role defines against 1,000 roles.
    let mut v = carrier();
    let name = |c: char, i: usize| format!("{}{i:08}", long(c, 56));
    v["spec"]["aerospikeAccessControl"]["roles"] =
        Value::Array((0..1000).map(|i| json!({"name": name('r', i), "privileges": ["read"]})).collect());
    let mut refs = vec![json!("sys-admin"), json!("user-admin")];
    refs.extend((0..10_000).map(|i| json!(name('q', i))));
    v["spec"]["aerospikeAccessControl"]["users"][0]["roles"] = Value::Array(refs);
    cases.push(("10,000 unknown role references against 1,000 roles, 64 characters each", v));
    cases
}

#[test]
fn oversized_inputs_stay_within_a_memory_bound() {
    let (_, baseline) = admit(&serde_json::to_vec(&carrier()).unwrap());
    eprintln!("memory: carrier object: peak {baseline} bytes");
    let mut over = Vec::new();
    for (what, v) in oversized_cases() {
        let bytes = serde_json::to_vec(&v).unwrap();
        let started = std::time::Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| admit(&bytes)));
        let took = started.elapsed();
        let Ok((errors, peak)) = result else { panic!("{what}: panicked") };
        let bound = memory_bound(bytes.len());
        eprintln!(
            "memory: {what}: input {} bytes, peak {peak} bytes (bound {bound}), {} refusals, {took:?}",
            bytes.len(),
            errors.len()
        );
        assert!(!errors.is_empty(), "{what}: accepted");
        for e in &errors {
            assert!(e.path.starts_with("spec.") || e.path.starts_with("metadata."), "{what}: {e}");
        }
        if peak > bound {
            over.push(format!("{what}: peak {peak} bytes > bound {bound} (input {} bytes)", bytes.len()));
        }
    }
    assert!(over.is_empty(), "validation allocates beyond the bound:\n{}", over.join("\n"));
}

/// Every string leaf and key of `v` under `spec`, as JSON pointers to their parents and the key or index.
fn blow_up(r: &mut Rng, v: &mut Value) {
    let mut ps = Vec::new();
    pointers(&v["spec"], "/spec".into(), &mut ps);
    ps.push("/metadata/name".into());
    for _ in 0..1 + r.below(4) {
        let p = r.pick(&ps).clone();
        let len = *r.pick(&[65, 300, 4_000, 20_000, 100_000]);
        let c = *r.pick(&['a', 'z', '-', '\u{e9}']);
        let big = long(c, len);
        let Some((parent, key)) = p.rsplit_once('/') else { continue };
        match v.pointer_mut(parent) {
            // Rename the key, or replace the value.
            Some(Value::Object(m)) if r.chance(30) => {
                if let Some(x) = m.remove(key) {
                    m.insert(big, x);
                }
            }
            Some(Value::Object(m)) => {
                m.insert(key.to_string(), json!(big));
            }
            Some(Value::Array(a)) => {
                if let Some(x) = key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    *x = json!(big);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn oversized_strings_anywhere_stay_within_the_memory_bound() {
    let mut r = Rng(0xD1B5_4A32_D192_ED03);
    let (mut cases, mut worst) = (0usize, (0usize, 0usize));
    for i in 0..300 {
        let mut v = if i % 2 == 0 { tame_cluster(&mut r) } else { random_cluster(&mut r) };
        blow_up(&mut r, &mut v);
        let bytes = serde_json::to_vec(&v).unwrap();
        let Ok((errors, peak)) = catch_unwind(AssertUnwindSafe(|| admit(&bytes))) else {
            panic!("case {i} panicked:\n{}", String::from_utf8_lossy(&bytes[..bytes.len().min(4000)]))
        };
        for e in &errors {
            assert!(e.path.starts_with("spec.") || e.path.starts_with("metadata."), "case {i}: {e}");
        }
        let bound = memory_bound(bytes.len());
        assert!(peak <= bound, "case {i}: peak {peak} bytes > bound {bound} (input {} bytes)", bytes.len());
        if peak > worst.0 {
            worst = (peak, bytes.len());
        }
        cases += 1;
    }
    eprintln!("memory: {cases} oversized cases, largest peak {} bytes (input {} bytes)", worst.0, worst.1);
}
