//! Module-level tests: the worked example of docs/aerospike-conf.md §9, golden files, the whole pipeline, and a
//! property-style robustness test.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

const WORKED_EXAMPLE: &str = "
logging {

    console {
        context any    info
    }
}

namespace test {
    replication-factor    2

    storage-engine memory {
        data-size    1073741824
    }
}

network {

    fabric {
        port    3001
    }

    heartbeat {
        mode    mesh
        port    3002
    }

    service {
        access-address    <access-address>
        access-port    3000
        alternate-access-address    <alternate-access-address>
        alternate-access-port    3000
        port    3000
    }
}

security {
}

service {
    cluster-name    aerocluster
    feature-key-file    /etc/aerospike/secret/features.conf
    node-id    ENV_NODE_ID
}
";

fn ctx(rack_id: i32) -> DefaultsContext {
    DefaultsContext { cluster_name: "aerocluster".into(), rack_id, rack_namespaces: None }
}

fn pipeline(input: &Value, c: &DefaultsContext) -> Result<String, ConfError> {
    let mut v = input.clone();
    apply_defaults(&mut v, c)?;
    render(&v)
}

#[test]
fn worked_example_byte_for_byte() {
    let input = json!({
        "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
        "security": {},
        "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
        "namespaces": [{"name": "test", "replication-factor": 2,
            "storage-engine": {"type": "memory", "data-size": 1073741824}}]
    });
    assert_eq!(pipeline(&input, &ctx(0)).unwrap(), WORKED_EXAMPLE);
}

#[test]
fn worked_example_with_float_numbers() {
    // The API server hands numbers over as floats.
    let input: Value = serde_json::from_str(
        r#"{"service": {"feature-key-file": "/etc/aerospike/secret/features.conf"}, "security": {},
            "network": {"service": {"port": 3000.0}, "heartbeat": {"port": 3002.0}, "fabric": {"port": 3001.0}},
            "namespaces": [{"name": "test", "replication-factor": 2.0,
                "storage-engine": {"type": "memory", "data-size": 1.073741824e9}}]}"#,
    )
    .unwrap();
    assert_eq!(pipeline(&input, &ctx(0)).unwrap(), WORKED_EXAMPLE);
}

// ---------------------------------------------------------------------------------------------------------
// Golden files: testdata/<name>.json holds {"defaults": null | {...}, "config": {...}}; the expected
// aerospike.conf is testdata/<name>.conf, written by hand from the rules.

fn golden(input: &str, expected: &str) {
    let doc: Value = serde_json::from_str(input).expect("golden input is JSON");
    let mut config = doc["config"].clone();
    if let Some(d) = doc.get("defaults").filter(|d| !d.is_null()) {
        let c = DefaultsContext {
            cluster_name: d["cluster_name"].as_str().unwrap().to_string(),
            rack_id: d["rack_id"].as_i64().unwrap() as i32,
            rack_namespaces: d["rack_namespaces"]
                .as_array()
                .map(|l| l.iter().map(|s| s.as_str().unwrap().to_string()).collect()),
        };
        apply_defaults(&mut config, &c).expect("defaults apply");
    }
    let out = render(&config).expect("renders");
    assert_eq!(out, expected);
    check_layout(&out);
}

macro_rules! golden_test {
    ($name:ident) => {
        #[test]
        fn $name() {
            golden(
                include_str!(concat!("testdata/", stringify!($name), ".json")),
                include_str!(concat!("testdata/", stringify!($name), ".conf")),
            );
        }
    };
}

mod golden {
    use super::golden;
    golden_test!(memory);
    golden_test!(device);
    golden_test!(file);
    golden_test!(logging);
    golden_test!(mesh);
    golden_test!(security);
    golden_test!(xdr);
    golden_test!(tls);
}

/// Structural check of rendered text: every line is empty, a header (`name {`, preceded by an empty
/// line), a closing brace or a field (`key    value`), with 4 spaces of indent per open section and
/// balanced braces.
fn check_layout(text: &str) {
    let mut depth = 0usize;
    let mut prev_empty = true;
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            prev_empty = true;
            continue;
        }
        let body = line.trim_start_matches(' ');
        let indent = line.len() - body.len();
        if body == "}" {
            assert!(depth > 0, "line {n}: unbalanced close in {text:?}");
            depth -= 1;
            assert_eq!(indent, depth * 4, "line {n}: {line:?}");
        } else if !body.contains("    ") && body.ends_with(" {") {
            assert!(prev_empty, "line {n}: header without a blank line before it: {line:?}");
            assert_eq!(indent, depth * 4, "line {n}: {line:?}");
            depth += 1;
        } else {
            assert!(body.contains("    "), "line {n}: not a field line: {line:?}");
            assert_eq!(indent, depth * 4, "line {n}: {line:?}");
        }
        prev_empty = false;
    }
    assert_eq!(depth, 0, "unclosed section in {text:?}");
    assert!(text.is_empty() || text.ends_with('\n'));
}

// ---------------------------------------------------------------------------------------------------------
// Whole pipeline: global + rack merge, defaults, render, hash, per-pod finalisation.

fn rack_cluster() -> (Value, Value, Value) {
    let global = json!({
        "service": {"feature-key-file": "/etc/aerospike/secret/features.conf", "proto-fd-max": 15000},
        "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
        "namespaces": [
            {"name": "test", "replication-factor": 2, "storage-engine": {"type": "device",
                "files": ["/opt/aerospike/data/test.dat"], "filesize": 2_147_483_648_u64}},
            {"name": "cache", "replication-factor": 1, "storage-engine": {"type": "memory", "data-size": 1073741824}}
        ]
    });
    let rack1 = json!({"service": {"proto-fd-max": 18000}});
    let rack2 = json!({"service": {"proto-fd-max": 18000}});
    (global, rack1, rack2)
}

fn rack_ctx(rack_id: i32) -> DefaultsContext {
    DefaultsContext { rack_namespaces: Some(vec!["test".into()]), ..ctx(rack_id) }
}

#[test]
fn racks_differing_only_by_rack_id_hash_alike() {
    let (global, rack1, rack2) = rack_cluster();
    let r1 = pipeline(&merge_rack_config(&global, &rack1), &rack_ctx(1)).unwrap();
    let r2 = pipeline(&merge_rack_config(&global, &rack2), &rack_ctx(2)).unwrap();
    assert_ne!(r1, r2);
    assert!(r1.contains("\nnamespace test {\n    rack-id    1\n"), "{r1}");
    assert!(r2.contains("\nnamespace test {\n    rack-id    2\n"), "{r2}");
    assert!(!r1.contains("namespace cache {\n    rack-id"));
    assert_eq!(r1.replace("rack-id    1", "rack-id    2"), r2);
    assert_eq!(config_hash(&r1), config_hash(&r2));
    // A real difference changes the hash.
    let r3 = pipeline(&merge_rack_config(&global, &json!({"service": {"proto-fd-max": 19000}})), &rack_ctx(1)).unwrap();
    assert_ne!(config_hash(&r1), config_hash(&r3));
    // proto-fd-max from the rack
    assert!(r1.contains("    proto-fd-max    18000\n"));
}

#[test]
fn rack_storage_override_replaces_files_by_devices() {
    let (global, _, _) = rack_cluster();
    let rack =
        json!({"namespaces": [{"name": "test", "storage-engine": {"type": "device", "devices": ["/dev/xvdf"]}}]});
    let out = pipeline(&merge_rack_config(&global, &rack), &rack_ctx(1)).unwrap();
    assert!(
        out.contains(
            "\nnamespace test {\n    rack-id    1\n    replication-factor    2\n\n    storage-engine device {\n        \
             device    /dev/xvdf\n    }\n}\n"
        ),
        "{out}"
    );
    assert!(!out.contains("filesize"));
    // namespace order is the global one
    assert!(out.find("namespace test").unwrap() < out.find("namespace cache").unwrap());
}

#[test]
fn pipeline_then_pod_finalisation() {
    let (global, rack1, _) = rack_cluster();
    let template = pipeline(&merge_rack_config(&global, &rack1), &rack_ctx(1)).unwrap();
    let peers: Vec<String> = (0..11).map(|i| format!("aerocluster-1-{i}.aerocluster.aerospike")).collect();
    let pod = PodContext {
        node_id: node_id(1, 0, 1),
        pod_ip: "10.42.0.7".into(),
        self_fqdn: "aerocluster-1-1.aerocluster.aerospike".into(),
        peers,
        heartbeat_port: heartbeat_port(&global),
        ..Default::default()
    };
    let conf = finalize_for_pod(&template, &pod);
    assert!(conf.contains("    node-id    1a1\n"));
    assert!(conf.contains("        access-address    10.42.0.7\n        access-port    3000\n"));
    assert!(conf.contains("        alternate-access-address    10.42.0.7\n"));
    assert!(!conf.contains("ENV_NODE_ID") && !conf.contains('<'));
    let seeds: Vec<&str> = conf.lines().filter(|l| l.contains("mesh-seed-address-port")).collect();
    assert_eq!(seeds.len(), 10);
    assert!(!seeds.iter().any(|l| l.ends_with("aerocluster-1-1.aerocluster.aerospike 3002")));
    assert!(seeds.iter().any(|l| l.ends_with("aerocluster-1-10.aerocluster.aerospike 3002")));
    assert!(
        conf.contains(
            "\n    heartbeat {\n        mesh-seed-address-port    aerocluster-1-0.aerocluster.aerospike 3002\n"
        )
    );
    check_layout(&conf);
}

#[test]
fn helpers_read_the_config() {
    let (global, _, _) = rack_cluster();
    assert_eq!(service_port(&global), 3000);
    assert_eq!(heartbeat_port(&global), Some(3002));
    let ns = namespaces(&global);
    assert_eq!(ns.len(), 2);
    assert_eq!(ns[0].files, vec!["/opt/aerospike/data/test.dat".to_string()]);
    assert_eq!(ns[1].replication_factor, 1);
}

#[test]
fn errors_always_start_with_their_path() {
    let cases = [
        render(&json!(null)).unwrap_err(),
        render(&json!({"namespaces": "test"})).unwrap_err(),
        pipeline(&json!({"namespaces": [{"name": "a"}, {}]}), &ctx(0)).unwrap_err(),
        pipeline(&json!({"network": {"service": {}, "heartbeat": {"mode": "multicast"}, "fabric": {}}}), &ctx(0))
            .unwrap_err(),
    ];
    let expected = [
        "aerospikeConfig: expected an object, found null",
        "aerospikeConfig.namespaces: expected a list, found a string",
        "aerospikeConfig.namespaces[1].name: missing",
        "aerospikeConfig.network.heartbeat.mode: value \"multicast\" conflicts with the operator-managed value \"mesh\"",
    ];
    for (e, want) in cases.iter().zip(expected) {
        assert_eq!(e.to_string(), want);
        assert!(e.to_string().starts_with(&format!("{}: ", e.path())));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Property-style robustness: ~2000 arbitrary and mutated configs through every entry point. Nothing may
// panic; every error names a path under `aerospikeConfig`; every success is well-formed conf text.

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "namespaces",
    "network",
    "service",
    "heartbeat",
    "fabric",
    "info",
    "tls",
    "logging",
    "security",
    "xdr",
    "dcs",
    "sets",
    "storage-engine",
    "index-type",
    "sindex-type",
    "type",
    "devices",
    "files",
    "name",
    "port",
    "tls-port",
    "tls-name",
    "access-port",
    "access-addresses",
    "alternate-access-addresses",
    "mode",
    "rack-id",
    "replication-factor",
    "enable-benchmarks-read",
    "secrets-address-port",
    "feature-key-file",
    "tls-authenticate-client",
    "mesh-seed-address-ports",
    "report-data-op",
    "node-address-ports",
    "any",
    "facility",
    "data-size",
    "cluster-name",
    "node-id",
    "strong-consistency",
    "ldap",
    "log",
    "mod-lua",
    "weird key",
    "",
    "a\nb",
    "{",
    "x.y",
];

const STRINGS: &[&str] = &[
    "",
    "NULL",
    "null",
    "memory",
    "device",
    "mesh",
    "multicast",
    "console",
    "syslog",
    "test",
    "a:b:c",
    "10.0.0.1:3000",
    "any",
    "false",
    "true",
    "0",
    "x y",
    "line\nbreak",
    "{",
    "}",
    "#",
    "ENV_NODE_ID",
    "<access-address>",
    "é:ü",
    "rack-id    5",
    "enable-benchmarks-read    true",
    "aerocluster",
    "/dev/sdb:/dev/sdc",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3000",
    "3002",
    "65535",
    "65536",
    "1e9",
    "2.0",
    "2.5",
    "-0.0",
    "1e300",
    "-1e300",
    "18446744073709551615",
    "-9223372036854775808",
    "1073741824.0",
];

fn gen_value(rng: &mut XorShift, depth: usize) -> Value {
    let choices = if depth >= 5 { 5 } else { 9 };
    match rng.below(choices) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => serde_json::from_str(rng.pick(NUMBERS)).unwrap(),
        3 | 4 => {
            if rng.below(4) == 0 {
                let len = rng.below(6);
                Value::String((0..len).map(|_| char::from(b' ' + rng.below(95) as u8)).collect())
            } else {
                Value::String(rng.pick(STRINGS).to_string())
            }
        }
        5 | 6 => {
            let len = rng.below(4);
            let kind = rng.below(4);
            Value::Array(
                (0..len)
                    .map(|_| match kind {
                        0 => Value::String(rng.pick(STRINGS).to_string()),
                        1 => gen_object(rng, depth + 1),
                        _ => gen_value(rng, depth + 1),
                    })
                    .collect(),
            )
        }
        _ => gen_object(rng, depth + 1),
    }
}

fn gen_object(rng: &mut XorShift, depth: usize) -> Value {
    let mut map = serde_json::Map::new();
    for _ in 0..rng.below(6) {
        let key = rng.pick(KEYS).to_string();
        let value = if key == "name" && rng.below(2) == 0 {
            Value::String(rng.pick(&["console", "syslog", "test", "/var/log/a.log", "", "a b"]).to_string())
        } else {
            gen_value(rng, depth)
        };
        map.insert(key, value);
    }
    Value::Object(map)
}

/// Replaces, removes or adds something at a random place of `v`.
fn mutate(rng: &mut XorShift, v: &mut Value, depth: usize) {
    let descend = rng.below(5) != 0 && depth < 8;
    match v {
        Value::Object(map) if !map.is_empty() && descend => {
            let key = map.keys().nth(rng.below(map.len())).unwrap().clone();
            mutate(rng, map.get_mut(&key).unwrap(), depth + 1);
        }
        Value::Array(items) if !items.is_empty() && descend => {
            let i = rng.below(items.len());
            mutate(rng, &mut items[i], depth + 1);
        }
        Value::Object(map) => match rng.below(3) {
            0 if !map.is_empty() => {
                let key = map.keys().nth(rng.below(map.len())).unwrap().clone();
                map.remove(&key);
            }
            1 => {
                map.insert(rng.pick(KEYS).to_string(), gen_value(rng, depth));
            }
            _ => *v = gen_value(rng, depth),
        },
        _ => *v = gen_value(rng, depth),
    }
}

fn check_error(e: &ConfError, what: &str, input: &Value) {
    let text = e.to_string();
    assert!(e.path().starts_with(ROOT_PATH), "{what}: error without a path: {text} for {input}");
    assert!(text.starts_with(&format!("{}: ", e.path())), "{what}: message does not start with the path: {text}");
}

fn exercise(v: &Value, base: &Value, c: &DefaultsContext) {
    match render(v) {
        Ok(text) => {
            check_layout(&text);
            assert_eq!(render(v).unwrap(), text, "render is deterministic");
            let _ = config_hash(&text);
        }
        Err(e) => check_error(&e, "render", v),
    }
    let mut d = v.clone();
    match apply_defaults(&mut d, c) {
        Ok(()) => {
            let mut again = d.clone();
            apply_defaults(&mut again, c).expect("defaults are idempotent");
            assert_eq!(again, d, "defaults are idempotent");
            match render(&d) {
                Ok(text) => {
                    check_layout(&text);
                    let pod = PodContext {
                        node_id: node_id(c.rack_id, 0, 3),
                        pod_ip: "10.0.0.3".into(),
                        self_fqdn: "c-1-3.c.ns".into(),
                        peers: vec!["c-1-3.c.ns".into(), "c-1-30.c.ns".into()],
                        heartbeat_port: heartbeat_port(&d),
                        tls_heartbeat_port: heartbeat_tls_port(&d),
                        ..Default::default()
                    };
                    let conf = finalize_for_pod(&text, &pod);
                    assert!(!conf.contains("ENV_NODE_ID"));
                    check_layout(&conf);
                }
                Err(e) => check_error(&e, "render after defaults", &d),
            }
        }
        Err(e) => check_error(&e, "apply_defaults", v),
    }
    let merged = merge_rack_config(base, v);
    if let Err(e) = render(&merged) {
        check_error(&e, "render of merged", &merged);
    }
    let _ = namespaces(v);
    let _ = (service_port(v), heartbeat_port(v), service_tls(v), fabric_port(v), fabric_tls_port(v));
}

#[test]
fn arbitrary_and_mutated_configs_never_panic_and_errors_name_a_path() {
    // Golden configs completed with the sections apply_defaults requires.
    let minimal =
        json!({"network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}}});
    let bases: Vec<Value> = [
        include_str!("testdata/tls.json"),
        include_str!("testdata/xdr.json"),
        include_str!("testdata/logging.json"),
        include_str!("testdata/device.json"),
        include_str!("testdata/security.json"),
    ]
    .iter()
    .map(|s| merge_rack_config(&minimal, &serde_json::from_str::<Value>(s).unwrap()["config"]))
    .chain([json!({
        "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"}, "security": {},
        "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
        "namespaces": [{"name": "test", "replication-factor": 2, "storage-engine": {"type": "memory"}}]
    })])
    .collect();
    let c = DefaultsContext { cluster_name: "c".into(), rack_id: 1, rack_namespaces: Some(vec!["test".into()]) };
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut failed) = (0, 0);
    for i in 0..2000 {
        let v = if i % 4 == 0 {
            gen_object(&mut rng, 0)
        } else {
            let mut v = bases[rng.below(bases.len())].clone();
            for _ in 0..1 + rng.below(2) {
                mutate(&mut rng, &mut v, 0);
            }
            v
        };
        let base = &bases[i % bases.len()];
        exercise(&v, base, &c);
        let mut d = v.clone();
        if apply_defaults(&mut d, &c).is_ok() && render(&d).is_ok() {
            ok += 1;
        } else {
            failed += 1;
        }
    }
    eprintln!("property test: {ok} rendered after defaults, {failed} rejected");
    // The generator must reach both outcomes often, or it tests little.
    assert!(ok > 200 && failed > 200, "ok {ok}, failed {failed}");
}
