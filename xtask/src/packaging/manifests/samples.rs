//! The sample AerospikeClusters of config/samples (and the CSV's alm-examples).

use aerospike_kubernetes_operator::api::{
    AccessControlSpec, AerospikeCluster, AerospikeClusterSpec, AerospikePodSpec, NetworkPolicy, PersistentVolumeSpec,
    Rack, RackConfig, ServerVolumeAttachment, StorageSpec, UserSpec, ValidationPolicy, VolumeMethod, VolumePolicy,
    VolumeSource, VolumeSpec,
};
use k8s_openapi::api::core::v1::SecretVolumeSource;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{Value, json};

const SAMPLE_IMAGE: &str = "aerospike/aerospike-server-enterprise:8.0.0.8";

fn network_config() -> Value {
    json!({"service": {"port": 3000}, "fabric": {"port": 3001}, "heartbeat": {"port": 3002}})
}

fn feature_key_volume() -> VolumeSpec {
    VolumeSpec {
        name: "aerospike-config-secret".into(),
        source: VolumeSource {
            secret: Some(SecretVolumeSource { secret_name: Some("aerospike-secret".into()), ..Default::default() }),
            ..Default::default()
        },
        aerospike: Some(ServerVolumeAttachment { path: "/etc/aerospike/secret".into(), mount_options: None }),
        ..Default::default()
    }
}

fn persistent(name: &str, mode: &str, size: &str, path: &str) -> VolumeSpec {
    VolumeSpec {
        name: name.into(),
        source: VolumeSource {
            persistent_volume: Some(PersistentVolumeSpec {
                storage_class: "ssd".into(),
                volume_mode: mode.into(),
                size: Quantity(size.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        aerospike: Some(ServerVolumeAttachment { path: path.into(), mount_options: None }),
        ..Default::default()
    }
}

fn in_memory_namespace(rf: u32) -> Value {
    json!({"name": "test", "replication-factor": rf, "storage-engine": {"type": "memory", "data-size": 1073741824}})
}

/// In-memory samples keep no work directory on a persistent volume: they say so, as the reference's own
/// no-storage sample does (the default policy refuses it: the server's system metadata lives there).
fn no_persistent_work_dir() -> Option<ValidationPolicy> {
    Some(ValidationPolicy { skip_work_dir_validate: true, ..Default::default() })
}

fn cluster(name: &str, spec: AerospikeClusterSpec) -> AerospikeCluster {
    let mut c = AerospikeCluster::new(name, spec);
    c.metadata.namespace = Some("aerospike".into());
    c
}

/// The samples, by file name: each a cluster users can start from.
pub fn samples() -> Vec<(String, AerospikeCluster)> {
    let feature_key = json!({"feature-key-file": "/etc/aerospike/secret/features.conf"});
    let in_memory = cluster(
        "aerocluster-in-memory",
        AerospikeClusterSpec {
            size: 3,
            image: SAMPLE_IMAGE.into(),
            storage: Some(StorageSpec { volumes: vec![feature_key_volume()], ..Default::default() }),
            validation_policy: no_persistent_work_dir(),
            aerospike_config: Some(json!({
                "service": feature_key,
                "network": network_config(),
                "namespaces": [in_memory_namespace(2)],
            })),
            ..Default::default()
        },
    );
    let persistent_cluster = cluster(
        "aerocluster-persistent",
        AerospikeClusterSpec {
            size: 3,
            image: SAMPLE_IMAGE.into(),
            storage: Some(StorageSpec {
                filesystem_volume_policy: Some(VolumePolicy {
                    init_method: Some(VolumeMethod::DeleteFiles),
                    cascade_delete: Some(true),
                    ..Default::default()
                }),
                block_volume_policy: Some(VolumePolicy {
                    init_method: Some(VolumeMethod::Dd),
                    cascade_delete: Some(true),
                    ..Default::default()
                }),
                volumes: vec![
                    persistent("workdir", "Filesystem", "1Gi", "/opt/aerospike"),
                    persistent("ns", "Block", "5Gi", "/dev/xvdf"),
                    feature_key_volume(),
                ],
                ..Default::default()
            }),
            aerospike_access_control: Some(AccessControlSpec {
                users: vec![UserSpec {
                    name: "admin".into(),
                    secret_name: "auth-secret".into(),
                    roles: vec!["sys-admin".into(), "user-admin".into()],
                    auth_mode: None,
                }],
                ..Default::default()
            }),
            aerospike_config: Some(json!({
                "service": feature_key,
                "security": {},
                "network": network_config(),
                "namespaces": [{"name": "test", "replication-factor": 2,
                    "storage-engine": {"type": "device", "devices": ["/dev/xvdf"]}}],
            })),
            ..Default::default()
        },
    );
    let rack = |id: i32, zone: &str| Rack { id, zone: zone.into(), ..Default::default() };
    let racks = cluster(
        "aerocluster-racks",
        AerospikeClusterSpec {
            size: 3,
            image: SAMPLE_IMAGE.into(),
            rack_config: Some(RackConfig {
                namespaces: vec!["test".into()],
                racks: vec![rack(1, "us-east-1a"), rack(2, "us-east-1b"), rack(3, "us-east-1c")],
                ..Default::default()
            }),
            storage: Some(StorageSpec { volumes: vec![feature_key_volume()], ..Default::default() }),
            validation_policy: no_persistent_work_dir(),
            aerospike_config: Some(json!({
                "service": feature_key,
                "network": network_config(),
                "namespaces": [in_memory_namespace(2)],
            })),
            ..Default::default()
        },
    );
    let multi_pod = cluster(
        "aerocluster-multi-pod-per-host",
        AerospikeClusterSpec {
            size: 2,
            image: SAMPLE_IMAGE.into(),
            pod_spec: Some(AerospikePodSpec { multi_pod_per_host: Some(true), ..Default::default() }),
            aerospike_network_policy: Some(NetworkPolicy {
                access: Some("hostInternal".into()),
                alternate_access: Some("hostExternal".into()),
                ..Default::default()
            }),
            storage: Some(StorageSpec { volumes: vec![feature_key_volume()], ..Default::default() }),
            validation_policy: no_persistent_work_dir(),
            aerospike_config: Some(json!({
                "service": feature_key,
                "network": network_config(),
                "namespaces": [in_memory_namespace(1)],
            })),
            ..Default::default()
        },
    );
    vec![
        ("asdb_v1_aerospikecluster_in_memory.yaml".into(), in_memory),
        ("asdb_v1_aerospikecluster_multi_pod_per_host.yaml".into(), multi_pod),
        ("asdb_v1_aerospikecluster_persistent.yaml".into(), persistent_cluster),
        ("asdb_v1_aerospikecluster_racks.yaml".into(), racks),
    ]
}

/// The backup samples (asdb.aerospike.com/v1beta1), by file name: a backup service, a backup of the in-memory
/// sample cluster with a daily routine, and a restore of one of its backups into another cluster. Cluster and
/// routine names start with `<namespace>-<backup name>`, as the backup service's configuration requires.
pub fn backup_samples() -> Vec<(String, Value)> {
    let service = json!({
        "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeBackupService",
        "metadata": {"name": "aerospikebackupservice", "namespace": "aerospike"},
        "spec": {
            "image": "aerospike/aerospike-backup-service:3.5.0",
            "config": {
                "service": {"http": {"port": 8081}},
                "backup-policies": {"daily-policy": {"parallel": 3}},
                "storage": {"local": {"local-storage": {"path": "/tmp/localStorage"}}}
            },
            "service": {"type": "ClusterIP"}
        }
    });
    let backup = json!({
        "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeBackup",
        "metadata": {"name": "aerospikebackup", "namespace": "aerospike"},
        "spec": {
            "backupService": {"name": "aerospikebackupservice", "namespace": "aerospike"},
            "config": {
                "aerospike-cluster": {"aerospike-aerospikebackup-in-memory": {
                    "seed-nodes": [{"host-name": "aerocluster-in-memory.aerospike.svc.cluster.local", "port": 3000}]}},
                "backup-routines": {"aerospike-aerospikebackup-daily": {
                    "backup-policy": "daily-policy", "interval-cron": "@daily", "incr-interval-cron": "@hourly",
                    "namespaces": ["test"], "source-cluster": "aerospike-aerospikebackup-in-memory",
                    "storage": "local"}}
            },
            "onDemandBackups": [{"id": "first-ad-hoc", "type": "Full", "routineName": "aerospike-aerospikebackup-daily"}]
        }
    });
    let restore = json!({
        "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeRestore",
        "metadata": {"name": "aerospikerestore", "namespace": "aerospike"},
        "spec": {
            "backupService": {"name": "aerospikebackupservice", "namespace": "aerospike"},
            "type": "Timestamp",
            "config": {
                "destination": {"seed-nodes": [{"host-name": "aerocluster-persistent.aerospike.svc.cluster.local",
                    "port": 3000}]},
                "policy": {"parallel": 3, "no-generation": true},
                "routine": "aerospike-aerospikebackup-daily",
                "time": 1767225600000u64
            },
            "pollingPeriod": "1m"
        }
    });
    vec![
        ("asdb_v1beta1_aerospikebackupservice.yaml".into(), service),
        ("asdb_v1beta1_aerospikebackup.yaml".into(), backup),
        ("asdb_v1beta1_aerospikerestore.yaml".into(), restore),
    ]
}
