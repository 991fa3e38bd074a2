//! Speed of the pure parts the reconcile runs every time: building the desired state of a large cluster and
//! rendering aerospike.conf. Run with `cargo bench --bench build`.
use aerospike_kubernetes_operator::aerospike_conf;
use aerospike_kubernetes_operator::api::{AerospikeCluster, AerospikeClusterSpec, Rack, RackConfig};
use aerospike_kubernetes_operator::desired::{BuildContext, desired_state};
use aerospike_kubernetes_operator::resolve::resolve;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;

fn config() -> serde_json::Value {
    json!({
        "service": {"feature-key-file": "/etc/aerospike/secret/features.conf", "proto-fd-max": 15000},
        "security": {},
        "logging": [{"name": "console", "any": "info"}, {"name": "/var/log/aerospike.log", "any": "info", "migrate": "debug"}],
        "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}, "info": {"port": 3003}},
        "namespaces": [
            {"name": "test", "replication-factor": 2, "storage-engine": {"type": "device", "devices": ["/dev/nvme0n1", "/dev/nvme1n1"], "write-block-size": 1048576}},
            {"name": "bar", "replication-factor": 3, "storage-engine": {"type": "memory", "data-size": 1073741824}}
        ],
        "xdr": {"dcs": [{"name": "dc1", "node-address-ports": ["10.0.0.1:3000"], "namespaces": [{"name": "test"}]}]}
    })
}

fn big_cluster() -> AerospikeCluster {
    let racks = (1..=8).map(|id| Rack { id, zone: format!("zone-{id}"), ..Default::default() }).collect();
    let mut c = AerospikeCluster::new(
        "bench",
        AerospikeClusterSpec {
            size: 256,
            image: "aerospike/aerospike-server-enterprise:7.1.0.0".into(),
            aerospike_config: Some(config()),
            rack_config: Some(RackConfig { namespaces: vec!["test".into()], racks, ..Default::default() }),
            ..Default::default()
        },
    );
    c.metadata.namespace = Some("default".into());
    c.metadata.uid = Some("00000000-0000-0000-0000-000000000000".into());
    c
}

fn benches(c: &mut Criterion) {
    let cluster = big_cluster();
    let ctx = BuildContext { init_image: "operator:bench".into() };
    // Resolve and build, as the reconciler does once per reconcile.
    c.bench_function("resolve + desired_state 256 nodes 8 racks", |b| {
        b.iter(|| desired_state(&resolve(black_box(&cluster)), &ctx).unwrap())
    });
    let mut cfg = config();
    aerospike_conf::apply_defaults(
        &mut cfg,
        &aerospike_conf::DefaultsContext {
            cluster_name: "bench".into(),
            rack_id: 1,
            rack_namespaces: Some(vec!["test".into()]),
        },
    )
    .unwrap();
    c.bench_function("render aerospike.conf", |b| b.iter(|| aerospike_conf::render(black_box(&cfg)).unwrap()));
}

criterion_group!(group, benches);
criterion_main!(group);
