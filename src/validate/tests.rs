//! One refused example (with the exact field path) and one accepted example per rule, and the defaulting.
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::api::{AerospikeCluster, VolumeMethod};

/// A valid cluster: 3 pods, two racks, a persistent work directory, a Block device, security with an admin.
fn valid_json() -> Value {
    json!({
        "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
        "metadata": {"name": "aerocluster", "namespace": "aerospike", "uid": "11111111-2222-3333-4444-555555555555"},
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
            "rackConfig": {"namespaces": ["test"], "racks": [{"id": 1, "zone": "a"}, {"id": 2, "zone": "b"}]},
            "aerospikeAccessControl": {
                "roles": [{"name": "reader", "privileges": ["read.test", "read-write.test.s1"], "whitelist": ["10.0.0.0/8"]}],
                "users": [
                    {"name": "admin", "secretName": "auth-secret", "roles": ["sys-admin", "user-admin"]},
                    {"name": "app", "secretName": "app-secret", "roles": ["reader"]}
                ]
            },
            "podSpec": {"aerospikeContainer": {"resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}}},
            "aerospikeConfig": {
                "service": {"feature-key-file": "/etc/aerospike/secret/features.conf", "proto-fd-max": 15000},
                "security": {},
                "logging": [{"name": "console", "any": "info"}],
                "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
                "namespaces": [
                    {"name": "test", "replication-factor": 2, "storage-engine": {"type": "device", "devices": ["/dev/xvdf"]}},
                    {"name": "mem", "replication-factor": 2, "storage-engine": {"type": "memory", "data-size": 1073741824}}
                ]
            }
        }
    })
}

fn cluster(v: Value) -> AerospikeCluster {
    serde_json::from_value(v).expect("test cluster parses")
}

fn valid() -> AerospikeCluster {
    cluster(valid_json())
}

/// `valid()` with a JSON pointer set to a value (`null` removes the key).
fn with(pointer: &str, value: Value) -> AerospikeCluster {
    let mut v = valid_json();
    set(&mut v, pointer, value);
    cluster(v)
}

fn set(v: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = v.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
    match target {
        Value::Object(m) => {
            if value.is_null() {
                m.remove(key);
            } else {
                m.insert(key.to_string(), value);
            }
        }
        Value::Array(a) => {
            let i: usize = key.parse().unwrap();
            if i == a.len() { a.push(value) } else { a[i] = value }
        }
        _ => panic!("{parent} is a scalar"),
    }
}

/// The errors, asserting one of them has exactly `path` and a message containing `needle`.
#[track_caller]
fn refused(c: &AerospikeCluster, old: Option<&AerospikeCluster>, path: &str, needle: &str) {
    let errors = validate(c, old);
    assert!(
        errors.iter().any(|e| e.path == path && e.message.contains(needle)),
        "expected {path}: ...{needle}... in {errors:#?}"
    );
    for e in &errors {
        assert!(e.path.starts_with("spec.") || e.path.starts_with("metadata."), "{e}");
        assert!(e.to_string().starts_with(&e.path));
    }
}

#[track_caller]
fn accepted(c: &AerospikeCluster, old: Option<&AerospikeCluster>) {
    let errors = validate(c, old);
    assert!(errors.is_empty(), "unexpected refusals: {errors:#?}");
}

#[test]
fn the_valid_example_passes_before_and_after_defaulting() {
    accepted(&valid(), None);
    let mut d = valid();
    default_cluster(&mut d);
    accepted(&d, None);
    accepted(&d, Some(&valid()));
    accepted(&valid(), Some(&d));
}

#[test]
fn display_is_path_colon_message() {
    let e = FieldError::new("spec.size", "too big");
    assert_eq!(e.to_string(), "spec.size: too big");
    assert_eq!(summary(&[e.clone(), e]), "spec.size: too big; spec.size: too big");
}

// --- image ----------------------------------------------------------------------------------------------------

#[test]
fn image_edition_and_version() {
    refused(
        &with("/spec/image", json!("aerospike/aerospike-server:7.1.0.0")),
        None,
        "spec.image",
        "not an Aerospike Enterprise or Federal image",
    );
    refused(
        &with("/spec/image", json!("aerospike/aerospike-server-enterprise:5.7.0.17")),
        None,
        "spec.image",
        "older than 6.0",
    );
    refused(
        &with("/spec/image", json!("aerospike/aerospike-server-enterprise:latest")),
        None,
        "spec.image",
        "tag \"latest\" does not name a server version",
    );
    refused(&with("/spec/image", json!("aerospike/aerospike-server-enterprise")), None, "spec.image", "without a tag");
    accepted(&with("/spec/image", json!("aerospike/aerospike-server-enterprise:6.0.0.1")), None);
    accepted(&with("/spec/image", json!("registry.local:5000/aerospike/aerospike-server-enterprise:7.2.0.1")), None);
    // Federal: every user must authenticate with a certificate
    let federal = with("/spec/image", json!("aerospike/aerospike-server-federal:7.2.0.1"));
    refused(&federal, None, "spec.aerospikeAccessControl.users[0].authMode", "only PKIOnly users");
    // pinned by digest only: the version is unknown, accepted
    accepted(&with("/spec/image", json!("aerospike/aerospike-server-enterprise@sha256:0123456789abcdef")), None);
}

#[test]
fn keys_removed_in_7_are_refused_for_7_images_only() {
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"]["namespaces"][1]["memory-size"] = json!(1073741824);
    v["spec"]["aerospikeConfig"]["namespaces"][1]["storage-engine"] = json!({"type": "memory"});
    refused(
        &cluster(v.clone()),
        None,
        "spec.aerospikeConfig.namespaces[1].memory-size",
        "removed in Aerospike server 7.0",
    );
    v["spec"]["image"] = json!("aerospike/aerospike-server-enterprise:6.4.0.7");
    accepted(&cluster(v), None);
}

// --- metadata and counts --------------------------------------------------------------------------------------

#[test]
fn cluster_name_rules() {
    refused(&with("/metadata/name", json!("Aero_Cluster")), None, "metadata.name", "not a DNS-1035 label");
    refused(&with("/metadata/name", json!("1cluster")), None, "metadata.name", "not a DNS-1035 label");
    refused(&with("/metadata/name", json!(null)), None, "metadata.name", "required");
    refused(&with("/metadata/namespace", json!(null)), None, "metadata.namespace", "required");
    // service.cluster-name must be the object's name
    refused(
        &with("/spec/aerospikeConfig/service/cluster-name", json!("other")),
        None,
        "spec.aerospikeConfig.service.cluster-name",
        "conflicts with the operator-managed value \"aerocluster\"",
    );
    accepted(&with("/spec/aerospikeConfig/service/cluster-name", json!("aerocluster")), None);
    accepted(&with("/metadata/name", json!("aero-cluster-2")), None);
    // too long for the rack StatefulSet names (the build step's rule, reported with its path)
    refused(&with("/metadata/name", json!("a".repeat(60))), None, "metadata.name", "longer than 52 characters");
}

#[test]
fn size_and_int_or_percent_fields() {
    refused(&with("/spec/size", json!(0)), None, "spec.size", "not between 1 and 256");
    refused(
        &with("/spec/maxUnavailable", json!("lots")),
        None,
        "spec.maxUnavailable",
        "neither a number nor a percentage",
    );
    refused(&with("/spec/maxUnavailable", json!(-1)), None, "spec.maxUnavailable", "negative");
    refused(
        &with("/spec/rackConfig/maxIgnorablePods", json!("120%")),
        None,
        "spec.rackConfig.maxIgnorablePods",
        "percentage",
    );
    accepted(&with("/spec/rackConfig/maxIgnorablePods", json!("10%")), None);
}

// --- namespaces -----------------------------------------------------------------------------------------------

#[test]
fn strong_consistency_replication_factor_vs_size() {
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"]["namespaces"][0]["strong-consistency"] = json!(true);
    v["spec"]["aerospikeConfig"]["namespaces"][0]["replication-factor"] = json!(4);
    v["spec"]["maxUnavailable"] = json!(1);
    refused(
        &cluster(v.clone()),
        None,
        "spec.aerospikeConfig.namespaces[0].replication-factor",
        "replication-factor 4 of the strong-consistency namespace \"test\" is more than the cluster size 3",
    );
    v["spec"]["aerospikeConfig"]["namespaces"][0]["replication-factor"] = json!(3);
    accepted(&cluster(v.clone()), None);
    // AP namespaces may have more copies than pods
    v["spec"]["aerospikeConfig"]["namespaces"][0]["strong-consistency"] = json!(false);
    v["spec"]["aerospikeConfig"]["namespaces"][0]["replication-factor"] = json!(5);
    accepted(&cluster(v), None);
}

#[test]
fn strong_consistency_namespaces_are_the_same_in_every_rack() {
    let mut v = valid_json();
    v["spec"]["rackConfig"]["racks"][1]["aerospikeConfig"] =
        json!({"namespaces": [{"name": "test", "strong-consistency": true}]});
    refused(
        &cluster(v.clone()),
        None,
        "spec.rackConfig.racks[1].aerospikeConfig.namespaces",
        "same strong-consistency namespaces",
    );
    v["spec"]["rackConfig"]["racks"][0]["aerospikeConfig"] =
        json!({"namespaces": [{"name": "test", "strong-consistency": true}]});
    accepted(&cluster(v), None);
}

#[test]
fn max_unavailable_below_the_smallest_replication_factor() {
    refused(
        &with("/spec/maxUnavailable", json!(2)),
        None,
        "spec.maxUnavailable",
        "not below the smallest replication factor 2",
    );
    refused(&with("/spec/maxUnavailable", json!("50%")), None, "spec.maxUnavailable", "50% (2 pods of 3)");
    accepted(&with("/spec/maxUnavailable", json!(1)), None);
    accepted(&with("/spec/maxUnavailable", json!("33%")), None);
    // replication factor 1 namespaces cannot be protected and do not count
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"]["namespaces"][1]["replication-factor"] = json!(1);
    accepted(&cluster(v), None);
}

#[test]
fn namespace_devices_are_block_volumes_of_the_rack_storage() {
    refused(
        &with("/spec/aerospikeConfig/namespaces/0/storage-engine/devices", json!(["/dev/xvdf", "/dev/xvdg"])),
        None,
        "spec.aerospikeConfig.namespaces[0].storage-engine.devices[1]",
        "device /dev/xvdg is not declared in spec.storage.volumes",
    );
    // shadow device syntax: both must be declared
    refused(
        &with("/spec/aerospikeConfig/namespaces/0/storage-engine/devices", json!(["/dev/xvdf:/dev/nvme0"])),
        None,
        "spec.aerospikeConfig.namespaces[0].storage-engine.devices[0]",
        "device /dev/nvme0",
    );
    // a filesystem path is not a device
    refused(
        &with("/spec/aerospikeConfig/namespaces/0/storage-engine/devices", json!(["/opt/aerospike"])),
        None,
        "spec.aerospikeConfig.namespaces[0].storage-engine.devices[0]",
        "not declared",
    );
    // a rack with its own storage is checked against it
    let mut v = valid_json();
    v["spec"]["rackConfig"]["racks"][1]["storage"] = json!({"volumes": []});
    refused(
        &cluster(v),
        None,
        "spec.aerospikeConfig.namespaces[0].storage-engine.devices[0]",
        "spec.rackConfig.racks[1].storage.volumes",
    );
    // one device, one namespace
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"]["namespaces"][1]["storage-engine"] =
        json!({"type": "device", "devices": ["/dev/xvdf"]});
    refused(
        &cluster(v),
        None,
        "spec.aerospikeConfig.namespaces[1].storage-engine.devices[0]",
        "already used by namespace \"test\"",
    );
}

#[test]
fn namespace_files_live_on_filesystem_volumes() {
    let file_ns = |path: &str| json!({"type": "device", "files": [path], "filesize": 1073741824});
    refused(
        &with("/spec/aerospikeConfig/namespaces/1/storage-engine", file_ns("/data/mem.dat")),
        None,
        "spec.aerospikeConfig.namespaces[1].storage-engine.files[0]",
        "file /data/mem.dat is not on a volume",
    );
    refused(
        &with("/spec/aerospikeConfig/namespaces/1/storage-engine", file_ns("mem.dat")),
        None,
        "spec.aerospikeConfig.namespaces[1].storage-engine.files[0]",
        "not an absolute path",
    );
    accepted(&with("/spec/aerospikeConfig/namespaces/1/storage-engine", file_ns("/opt/aerospike/data/mem.dat")), None);
    // a rack override of the files is reported at the rack's path
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"]["namespaces"][1]["storage-engine"] = file_ns("/opt/aerospike/data/mem.dat");
    v["spec"]["rackConfig"]["racks"][0]["aerospikeConfig"] =
        json!({"namespaces": [{"name": "mem", "storage-engine": {"files": ["/mnt/mem.dat"]}}]});
    refused(
        &cluster(v),
        None,
        "spec.rackConfig.racks[0].aerospikeConfig.namespaces[0].storage-engine.files[0]",
        "not on a volume",
    );
}

#[test]
fn rack_enabled_namespaces_exist() {
    refused(
        &with("/spec/rackConfig/namespaces", json!(["tset"])),
        None,
        "spec.rackConfig.namespaces[0]",
        "did you mean \"test\"?",
    );
    accepted(&with("/spec/rackConfig/namespaces", json!(["test", "mem"])), None);
}

// --- racks ----------------------------------------------------------------------------------------------------

#[test]
fn racks_cannot_override_network_or_security() {
    refused(
        &with("/spec/rackConfig/racks/0/aerospikeConfig", json!({"network": {"service": {"port": 3100}}})),
        None,
        "spec.rackConfig.racks[0].aerospikeConfig.network",
        "must be the same in every rack",
    );
    accepted(&with("/spec/rackConfig/racks/0/aerospikeConfig", json!({"service": {"proto-fd-max": 20000}})), None);
}

#[test]
fn rack_id_zero_is_reserved() {
    refused(
        &with("/spec/rackConfig/racks/0/id", json!(0)),
        None,
        "spec.rackConfig.racks[0].id",
        "reserved for the default rack",
    );
}

#[test]
fn batch_sizes_need_two_racks() {
    let mut v = valid_json();
    v["spec"]["rackConfig"]["rollingUpdateBatchSize"] = json!(2);
    v["spec"]["rackConfig"]["scaleDownBatchSize"] = json!("50%");
    v["spec"]["rackConfig"]["namespaces"] = json!(["test", "mem"]);
    accepted(&cluster(v.clone()), None);
    v["spec"]["rackConfig"]["racks"] = json!([{"id": 1}]);
    refused(
        &cluster(v.clone()),
        None,
        "spec.rackConfig.rollingUpdateBatchSize",
        "needs at least two racks (there are 1)",
    );
    refused(&cluster(v.clone()), None, "spec.rackConfig.scaleDownBatchSize", "needs at least two racks");
    // and every namespace rack-aware
    v["spec"]["rackConfig"]["racks"] = json!([{"id": 1}, {"id": 2}]);
    v["spec"]["rackConfig"]["namespaces"] = json!(["test"]);
    refused(&cluster(v), None, "spec.rackConfig.rollingUpdateBatchSize", "namespace \"mem\" is not rack-enabled");
}

// --- aerospikeConfig keys -------------------------------------------------------------------------------------

#[test]
fn unknown_and_mistyped_keys() {
    refused(
        &with("/spec/aerospikeConfig/service/proto-fd-mx", json!(15000)),
        None,
        "spec.aerospikeConfig.service.proto-fd-mx",
        "unknown key \"proto-fd-mx\" in service; did you mean \"proto-fd-max\"?",
    );
    refused(
        &with("/spec/aerospikeConfig/service/proto-fd-max", json!("15000")),
        None,
        "spec.aerospikeConfig.service.proto-fd-max",
        "expected an integer, found a string",
    );
    refused(
        &with("/spec/aerospikeConfig/namespaces/0/replication-factr", json!(2)),
        None,
        "spec.aerospikeConfig.namespaces[0].replication-factr",
        "did you mean \"replication-factor\"?",
    );
    refused(
        &with("/spec/aerospikeConfig/namespaces/0/storage-engine/device", json!(["/dev/xvdf"])),
        None,
        "spec.aerospikeConfig.namespaces[0].storage-engine.device",
        "did you mean \"devices\"?",
    );
    refused(
        &with("/spec/aerospikeConfig/network/heartbeat/interval", json!(true)),
        None,
        "spec.aerospikeConfig.network.heartbeat.interval",
        "expected an integer, found a boolean",
    );
    refused(
        &with("/spec/aerospikeConfig/network/hearbeat", json!({"port": 3002})),
        None,
        "spec.aerospikeConfig.network.hearbeat",
        "did you mean \"heartbeat\"?",
    );
    refused(
        &with("/spec/aerospikeConfig/logging/0/any", json!("verbose")),
        None,
        "spec.aerospikeConfig.logging[0].any",
        "log level \"verbose\"",
    );
    refused(
        &with("/spec/aerospikeConfig/logging/0/migarte", json!("info")),
        None,
        "spec.aerospikeConfig.logging[0].migarte",
        "did you mean \"migrate\"?",
    );
    refused(
        &with("/spec/aerospikeConfig/security/enable-quotas", json!("yes")),
        None,
        "spec.aerospikeConfig.security.enable-quotas",
        "expected true or false",
    );
    refused(
        &with("/spec/aerospikeConfig/namespaces/0/conflict-resolution-policy", json!("generations")),
        None,
        "spec.aerospikeConfig.namespaces[0].conflict-resolution-policy",
        "did you mean \"generation\"?",
    );
    refused(
        &with("/spec/aerospikeConfig/servce", json!({})),
        None,
        "spec.aerospikeConfig.servce",
        "did you mean \"service\"?",
    );
    // rack overrides are checked too
    refused(
        &with("/spec/rackConfig/racks/1/aerospikeConfig", json!({"service": {"migrate-thread": 2}})),
        None,
        "spec.rackConfig.racks[1].aerospikeConfig.service.migrate-thread",
        "did you mean \"migrate-threads\"?",
    );
    // well-typed known keys pass, including 3000.0 for an integer and a string for a list key
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"]["service"]["migrate-threads"] = json!(2.0);
    v["spec"]["aerospikeConfig"]["network"]["heartbeat"]["interval"] = json!(150);
    v["spec"]["aerospikeConfig"]["network"]["service"]["addresses"] = json!("any");
    v["spec"]["aerospikeConfig"]["logging"] = json!([{"name": "/var/log/aerospike.log", "any": "INFO", "migrate": "debug"},
        {"name": "syslog", "facility": "local0", "tag": "asd", "any": "warning"}]);
    v["spec"]["aerospikeConfig"]["namespaces"][0]["sets"] = json!([{"name": "s1", "enable-index": true}]);
    v["spec"]["aerospikeConfig"]["xdr"] = json!({"anything": {"goes": 1}});
    accepted(&cluster(v), None);
}

#[test]
fn syslog_fields_only_on_syslog() {
    refused(
        &with("/spec/aerospikeConfig/logging/0/facility", json!("local0")),
        None,
        "spec.aerospikeConfig.logging[0].facility",
        "only to the log sink named syslog",
    );
}

// --- access control -------------------------------------------------------------------------------------------

#[test]
fn access_control_admin_roles_and_secrets() {
    refused(
        &with("/spec/aerospikeAccessControl", json!(null)),
        None,
        "spec.aerospikeAccessControl",
        "required when security is enabled",
    );
    refused(
        &with("/spec/aerospikeAccessControl/users/0/roles", json!(["sys-admin"])),
        None,
        "spec.aerospikeAccessControl.users",
        "no user named admin with the roles sys-admin and user-admin",
    );
    refused(
        &with("/spec/aerospikeAccessControl/users/1/roles", json!(["raeder"])),
        None,
        "spec.aerospikeAccessControl.users[1].roles[0]",
        "no role named \"raeder\"",
    );
    refused(
        &with("/spec/aerospikeAccessControl/users/1/secretName", json!("")),
        None,
        "spec.aerospikeAccessControl.users[1].secretName",
        "required",
    );
    refused(
        &with("/spec/aerospikeAccessControl/roles/0/privileges", json!(["read.nope"])),
        None,
        "spec.aerospikeAccessControl.roles[0].privileges[0]",
        "no namespace named \"nope\"",
    );
    refused(
        &with("/spec/aerospikeAccessControl/roles/0/privileges", json!(["sys-admin.test"])),
        None,
        "spec.aerospikeAccessControl.roles[0].privileges[0]",
        "global privilege",
    );
    refused(
        &with("/spec/aerospikeAccessControl/roles/0/privileges", json!(["raed"])),
        None,
        "spec.aerospikeAccessControl.roles[0].privileges[0]",
        "unknown privilege",
    );
    refused(
        &with("/spec/aerospikeAccessControl/roles/0/name", json!("read")),
        None,
        "spec.aerospikeAccessControl.roles[0].name",
        "predefined role",
    );
    refused(
        &with("/spec/aerospikeAccessControl/roles/0/whitelist", json!(["10.0.0.0/40"])),
        None,
        "spec.aerospikeAccessControl.roles[0].whitelist[0]",
        "neither an IP address nor a CIDR",
    );
    refused(
        &with("/spec/aerospikeAccessControl/roles/0/readQuota", json!(100)),
        None,
        "spec.aerospikeAccessControl.roles[0].readQuota",
        "enable-quotas",
    );
    let mut pki = valid_json();
    pki["spec"]["aerospikeAccessControl"]["users"][1] =
        json!({"name": "app", "authMode": "PKIOnly", "secretName": "s", "roles": ["reader"]});
    refused(
        &cluster(pki.clone()),
        None,
        "spec.aerospikeAccessControl.users[1].secretName",
        "must be empty for a PKIOnly user",
    );
    pki["spec"]["aerospikeAccessControl"]["users"][1].as_object_mut().unwrap().remove("secretName");
    accepted(&cluster(pki), None);
    // without security, access control is not required
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"].as_object_mut().unwrap().remove("security");
    v["spec"].as_object_mut().unwrap().remove("aerospikeAccessControl");
    accepted(&cluster(v), None);
}

// --- resources ------------------------------------------------------------------------------------------------

#[test]
fn limits_not_below_requests() {
    refused(
        &with("/spec/podSpec/aerospikeContainer/resources/limits/memory", json!("1Gi")),
        None,
        "spec.podSpec.aerospikeContainer.resources.limits.memory",
        "limit 1Gi is below the request 2Gi",
    );
    refused(
        &with(
            "/spec/podSpec/aerospikeInitContainer",
            json!({"resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "100m"}}}),
        ),
        None,
        "spec.podSpec.aerospikeInitContainer.resources.limits.cpu",
        "below the request 500m",
    );
    refused(
        &with(
            "/spec/podSpec/sidecars",
            json!([{"name": "exporter", "image": "x:1", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}}]),
        ),
        None,
        "spec.podSpec.sidecars[0].resources.limits.cpu",
        "below the request 2",
    );
    accepted(&with("/spec/podSpec/aerospikeContainer/resources/limits/memory", json!("4Gi")), None);
}

// --- changes ------------------------------------------------------------------------------------------------

#[test]
fn multi_pod_per_host_is_immutable() {
    let new = with("/spec/podSpec/multiPodPerHost", json!(true));
    refused(&new, Some(&valid()), "spec.podSpec.multiPodPerHost", "cannot change from false to true");
    accepted(&new, Some(&new));
}

#[test]
fn tls_names_and_ports_are_immutable() {
    let mut tls = valid_json();
    tls["spec"]["aerospikeConfig"]["network"]["tls"] = json!([{"name": "t1", "cert-file": "/etc/aerospike/secret/c.pem"},
        {"name": "t2", "cert-file": "/etc/aerospike/secret/c.pem"}]);
    tls["spec"]["aerospikeConfig"]["network"]["service"] = json!({"port": 3000, "tls-name": "t1", "tls-port": 4333});
    let old = cluster(tls.clone());
    accepted(&old, None);
    let mut v = tls.clone();
    v["spec"]["aerospikeConfig"]["network"]["service"]["tls-name"] = json!("t2");
    refused(
        &cluster(v),
        Some(&old),
        "spec.aerospikeConfig.network.service.tls-name",
        "cannot change from \"t1\" to \"t2\"",
    );
    let mut v = tls.clone();
    v["spec"]["aerospikeConfig"]["network"]["service"]["tls-port"] = json!(4334);
    refused(
        &cluster(v),
        Some(&old),
        "spec.aerospikeConfig.network.service.tls-port",
        "cannot change from 4333 to 4334",
    );
    refused(
        &with("/spec/aerospikeConfig/network/heartbeat/port", json!(3012)),
        Some(&valid()),
        "spec.aerospikeConfig.network.heartbeat.port",
        "cannot change",
    );
    // with both a plain and a TLS port, one may go (TLS only: the operator then needs its certificates)
    let mut v = tls.clone();
    v["spec"]["aerospikeConfig"]["network"]["service"].as_object_mut().unwrap().remove("port");
    refused(&cluster(v.clone()), Some(&old), "spec.operatorClientCert", "only a tls-port");
    v["spec"]["aerospikeConfig"]["network"]["service"]["tls-authenticate-client"] = json!("false");
    v["spec"]["operatorClientCert"] = json!({"secretCertSource": {"secretName": "op", "caCertsFilename": "ca.pem"}});
    accepted(&cluster(v), Some(&old));
    // unchanged (and a defaulted old object) passes
    let mut d = old.clone();
    default_cluster(&mut d);
    accepted(&old, Some(&d));
}

#[test]
fn strong_consistency_and_replication_factor_are_immutable() {
    refused(
        &with("/spec/aerospikeConfig/namespaces/0/strong-consistency", json!(true)),
        Some(&valid()),
        "spec.aerospikeConfig.namespaces[0].strong-consistency",
        "cannot change from false to true",
    );
    // An AP namespace's replication factor changes, alone (the reference's rules).
    accepted(&with("/spec/aerospikeConfig/namespaces/1/replication-factor", json!(3)), Some(&valid()));
    let mut two = valid_json();
    two["spec"]["aerospikeConfig"]["namespaces"][0]["replication-factor"] = json!(3);
    two["spec"]["aerospikeConfig"]["namespaces"][1]["replication-factor"] = json!(3);
    refused(&cluster(two), Some(&valid()), "spec.aerospikeConfig.namespaces", "one namespace at a time");
    let mut with_other = valid_json();
    with_other["spec"]["aerospikeConfig"]["namespaces"][1]["replication-factor"] = json!(3);
    with_other["spec"]["image"] = json!("aerospike/aerospike-server-enterprise:7.2.0.1");
    refused(&cluster(with_other), Some(&valid()), "spec.image", "must be the only change of its edit");
    // A strong-consistency namespace keeps its replication factor.
    let mut sc = valid_json();
    sc["spec"]["aerospikeConfig"]["namespaces"][0]["strong-consistency"] = json!(true);
    let sc_old = cluster(sc.clone());
    sc["spec"]["aerospikeConfig"]["namespaces"][0]["replication-factor"] = json!(3);
    refused(
        &cluster(sc),
        Some(&sc_old),
        "spec.aerospikeConfig.namespaces[0].replication-factor",
        "cannot change from 2 to 3 for the strong-consistency namespace",
    );
    // a new namespace is fine
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"]["namespaces"].as_array_mut().unwrap().push(json!({"name": "new", "strong-consistency": true, "storage-engine": {"type": "memory", "data-size": 1073741824}}));
    accepted(&cluster(v), Some(&valid()));
}

#[test]
fn security_can_be_enabled_but_not_disabled() {
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"].as_object_mut().unwrap().remove("security");
    refused(&cluster(v.clone()), Some(&valid()), "spec.aerospikeConfig.security", "cannot disable security");
    // The other way round: an unsecured cluster given security and its users.
    v["spec"].as_object_mut().unwrap().remove("aerospikeAccessControl");
    accepted(&valid(), Some(&cluster(v)));
}

#[test]
fn access_control_cannot_be_removed_once_set() {
    let mut v = valid_json();
    v["spec"].as_object_mut().unwrap().remove("aerospikeAccessControl");
    v["spec"]["aerospikeConfig"].as_object_mut().unwrap().remove("security");
    let errors = validate(&cluster(v), Some(&valid()));
    assert!(
        errors.iter().any(|e| e.path == "spec.aerospikeAccessControl" && e.message.contains("cannot be removed")),
        "{errors:?}"
    );
}

#[test]
fn rack_placement_is_immutable() {
    for (field, value) in [("zone", "c"), ("region", "r"), ("rackLabel", "l"), ("nodeName", "n1")] {
        let new = with(&format!("/spec/rackConfig/racks/1/{field}"), json!(value));
        refused(&new, Some(&valid()), &format!("spec.rackConfig.racks[1].{field}"), "cannot change");
    }
    // a new rack may have any zone
    let mut v = valid_json();
    v["spec"]["rackConfig"]["racks"].as_array_mut().unwrap().push(json!({"id": 3, "zone": "c"}));
    accepted(&cluster(v), Some(&valid()));
}

#[test]
fn persistent_volumes_change_only_with_a_new_revision_except_growing() {
    let pv = json!({"name": "data", "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}},
        "aerospike": {"path": "/data"}});
    // A persistent volume may be added in place (the StatefulSet is recreated with it, the pods restart onto it).
    accepted(&with("/spec/storage/volumes/3", pv.clone()), Some(&valid()));
    // A volume that becomes persistent under the same name is a change.
    let mut v = valid_json();
    v["spec"]["storage"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "data", "aerospike": {"path": "/data"},
        "source": {"emptyDir": {}}}));
    let with_empty = cluster(v.clone());
    v["spec"]["storage"]["volumes"][3] = pv.clone();
    refused(&cluster(v.clone()), Some(&with_empty), "spec.storage.volumes[3].source", "becomes a persistent volume");
    // ... allowed with a new revision of every rack using the global storage; only one rack revised: refused
    v["spec"]["rackConfig"]["racks"][0]["revision"] = json!("v2");
    v["spec"]["rackConfig"]["racks"][1]["revision"] = json!("v2");
    accepted(&cluster(v.clone()), Some(&with_empty));
    v["spec"]["rackConfig"]["racks"][1].as_object_mut().unwrap().remove("revision");
    refused(&cluster(v), Some(&with_empty), "spec.storage.volumes[3].source", "of rack 2:");
    // removal
    let mut v = valid_json();
    v["spec"]["storage"]["volumes"].as_array_mut().unwrap().remove(0);
    refused(&cluster(v), Some(&valid()), "spec.storage.volumes", "persistent volume \"workdir\" is removed");
    // a volume grows in place; it never shrinks, and any other change of it is a change
    accepted(&with("/spec/storage/volumes/1/source/persistentVolume/size", json!("10Gi")), Some(&valid()));
    refused(
        &with("/spec/storage/volumes/1/source/persistentVolume/size", json!("1Gi")),
        Some(&valid()),
        "spec.storage.volumes[1].source.persistentVolume.size",
        "persistent volume \"ns\" shrinks from 5Gi to 1Gi without a new revision",
    );
    refused(
        &with("/spec/storage/volumes/1/source/persistentVolume/storageClass", json!("other")),
        Some(&valid()),
        "spec.storage.volumes[1].source.persistentVolume",
        "is changed",
    );
    // policies and non-persistent volumes may change
    accepted(&with("/spec/storage/volumes/0/cascadeDelete", json!(true)), Some(&valid()));
    accepted(
        &with(
            "/spec/storage/volumes/3",
            json!({"name": "extra", "source": {"emptyDir": {}}, "aerospike": {"path": "/x"}}),
        ),
        Some(&valid()),
    );
}

/// `valid()` with its racks keeping their own storage: rack 1 a Block volume `data1` (init dd), rack 2 none.
fn with_rack_storage() -> Value {
    let mut v = valid_json();
    v["spec"]["rackConfig"]["racks"][0]["storage"] = json!({"volumes": [
        {"name": "workdir", "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}},
         "aerospike": {"path": "/opt/aerospike"}},
        {"name": "ns", "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Block", "size": "5Gi"}},
         "aerospike": {"path": "/dev/xvdf"}, "initMethod": "dd"},
        {"name": "aerospike-config-secret", "source": {"secret": {"secretName": "aerospike-secret"}},
         "aerospike": {"path": "/etc/aerospike/secret"}}
    ]});
    v
}

#[test]
fn init_and_wipe_methods_of_existing_volumes_are_immutable() {
    let old = valid();
    // the volume's own field (Block volume "ns": none by default)
    refused(
        &with("/spec/storage/volumes/1/initMethod", json!("dd")),
        Some(&old),
        "spec.storage.volumes[1].initMethod",
        "init method of persistent volume \"ns\" cannot change from none to dd",
    );
    refused(
        &with("/spec/storage/volumes/0/wipeMethod", json!("none")),
        Some(&old),
        "spec.storage.volumes[0].wipeMethod",
        "wipe method of persistent volume \"workdir\" cannot change from deleteFiles to none",
    );
    // the class default a volume inherits
    refused(
        &with("/spec/storage/blockVolumePolicy", json!({"initMethod": "blkdiscard"})),
        Some(&old),
        "spec.storage.blockVolumePolicy.initMethod",
        "init method of persistent volume \"ns\" cannot change from none to blkdiscard",
    );
    refused(
        &with("/spec/storage/filesystemVolumePolicy", json!({"initMethod": "deleteFiles"})),
        Some(&old),
        "spec.storage.filesystemVolumePolicy.initMethod",
        "persistent volume \"workdir\"",
    );
    refused(
        &with("/spec/storage/blockVolumePolicy", json!({"wipeMethod": "blkdiscard"})),
        Some(&old),
        "spec.storage.blockVolumePolicy.wipeMethod",
        "wipe method of persistent volume \"ns\" cannot change from dd to blkdiscard",
    );
    // removing the volume's own setting falls back to a different class default: named at the volume
    let set_dd = with("/spec/storage/volumes/1/initMethod", json!("dd"));
    refused(&old, Some(&set_dd), "spec.storage.volumes[1].initMethod", "cannot change from dd to none");
    // a rack's own storage
    let old_racks = cluster(with_rack_storage());
    let mut v = with_rack_storage();
    v["spec"]["rackConfig"]["racks"][0]["storage"]["volumes"][1]["initMethod"] = json!("blkdiscard");
    refused(
        &cluster(v),
        Some(&old_racks),
        "spec.rackConfig.racks[0].storage.volumes[1].initMethod",
        "init method of persistent volume \"ns\" cannot change from dd to blkdiscard",
    );
    // the same effective method written another way is no change
    accepted(&with("/spec/storage/volumes/1/initMethod", json!("none")), Some(&old));
    accepted(&with("/spec/storage/blockVolumePolicy", json!({"initMethod": "none", "wipeMethod": "dd"})), Some(&old));
    let mut v = valid_json();
    v["spec"]["storage"]["blockVolumePolicy"] = json!({"initMethod": "dd"});
    v["spec"]["storage"]["volumes"][1]["initMethod"] = json!("none");
    accepted(&cluster(v), Some(&old));
    // defaulting (the effective* fields) changes nothing
    let mut d = valid();
    default_cluster(&mut d);
    accepted(&d, Some(&old));
    accepted(&old, Some(&d));
}

/// Wipe methods fit the volume mode as the reference's: Block dd or blkdiscard, Filesystem deleteFiles (the schema
/// also refuses the init-only methods; this names the volume for a mode mismatch).
#[test]
fn wipe_methods_fit_the_volume_mode() {
    refused(
        &with("/spec/storage/volumes/1/wipeMethod", json!("deleteFiles")),
        None,
        "spec.storage.volumes[1].wipeMethod",
        "deleteFiles is no wipe method for the Block volume \"ns\" (use dd or blkdiscard)",
    );
    refused(
        &with("/spec/storage/filesystemVolumePolicy", json!({"wipeMethod": "dd"})),
        None,
        "spec.storage.filesystemVolumePolicy.wipeMethod",
        "dd is no wipe method for the Filesystem volume \"workdir\"",
    );
    refused(
        &with("/spec/storage/volumes/1/wipeMethod", json!("headerCleanup")),
        None,
        "spec.storage.volumes[1].wipeMethod",
        "headerCleanup is no wipe method",
    );
    accepted(&with("/spec/storage/volumes/1/wipeMethod", json!("blkdiscard")), None);
}

#[test]
fn new_volumes_take_any_method() {
    // a new persistent volume (with the new revision every added persistent volume needs) with any methods
    let mut v = valid_json();
    v["spec"]["storage"]["volumes"].as_array_mut().unwrap().push(json!({"name": "data",
        "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Block", "size": "1Gi"}},
        "aerospike": {"path": "/dev/xvdg"}, "initMethod": "blkdiscard", "wipeMethod": "blkdiscard"}));
    v["spec"]["rackConfig"]["racks"][0]["revision"] = json!("v2");
    v["spec"]["rackConfig"]["racks"][1]["revision"] = json!("v2");
    accepted(&cluster(v.clone()), Some(&valid()));
    // a new rack revision replaces the StatefulSet and its claims: the methods of its volumes may change with it
    v["spec"]["storage"]["volumes"][1]["initMethod"] = json!("dd");
    accepted(&cluster(v.clone()), Some(&valid()));
    // ... but not for a rack that keeps its revision
    v["spec"]["rackConfig"]["racks"][1].as_object_mut().unwrap().remove("revision");
    refused(&cluster(v), Some(&valid()), "spec.storage.volumes[1].initMethod", "rack 2");
    // a new rack takes any method
    let mut v = valid_json();
    let volumes = v["spec"]["storage"]["volumes"].clone();
    v["spec"]["rackConfig"]["racks"].as_array_mut().unwrap().push(json!({"id": 3, "zone": "c", "storage": {
        "blockVolumePolicy": {"initMethod": "dd"}, "volumes": volumes}}));
    accepted(&cluster(v), Some(&valid()));
}

#[test]
fn the_reconciler_refuses_a_method_change_against_the_applied_spec() {
    let applied = valid().spec;
    let mut c = with("/spec/storage/volumes/1/initMethod", json!("dd"));
    let status = crate::api::AerospikeClusterStatus {
        aerospike_config: applied.aerospike_config.clone(),
        storage: applied.storage.clone(),
        rack_config: applied.rack_config.clone(),
        image: Some(applied.image.clone()),
        size: Some(applied.size),
        ..Default::default()
    };
    c.status = Some(status);
    let old = applied_view(&c).unwrap();
    refused(&c, Some(&old), "spec.storage.volumes[1].initMethod", "cannot change from none to dd");
}

#[test]
fn load_balancer_is_immutable() {
    let old = with("/spec/seedsFinderServices", json!({"loadBalancer": {"port": 3000}}));
    let new = with("/spec/seedsFinderServices", json!({"loadBalancer": {"port": 4000}}));
    refused(&new, Some(&old), "spec.seedsFinderServices.loadBalancer", "cannot change");
    accepted(&old, Some(&old));
}

// --- the build step's rules -----------------------------------------------------------------------------------

#[test]
fn build_refusals_come_with_their_paths() {
    refused(
        &with("/spec/podSpec/sidecars", json!([{"name": "aerospike-server", "image": "x:1"}])),
        None,
        "spec.podSpec.sidecars[0].name",
        "operator container",
    );
    refused(
        &with("/spec/aerospikeConfig/network/heartbeat/mode", json!("multicast")),
        None,
        "spec.aerospikeConfig.network.heartbeat.mode",
        "mesh",
    );
    refused(
        &with("/spec/aerospikeConfig/network/fabric", json!(null)),
        None,
        "spec.aerospikeConfig.network.fabric",
        "missing",
    );
}

// --- the applied view ---------------------------------------------------------------------------------------

#[test]
fn applied_view_reads_status() {
    let mut c = valid();
    assert!(applied_view(&c).is_none());
    let mut status = crate::api::AerospikeClusterStatus::default();
    let s = valid().spec;
    status.aerospike_config = s.aerospike_config.clone();
    status.storage = s.storage.clone();
    status.rack_config = s.rack_config.clone();
    status.image = Some(s.image.clone());
    status.size = Some(3);
    status.multi_pod_per_host = Some(true);
    c.status = Some(status);
    let old = applied_view(&c).unwrap();
    assert_eq!(old.spec.pod_spec().multi_pod_per_host(), true);
    // the reconciler's check: multiPodPerHost differs from the applied spec
    refused(&c, Some(&old), "spec.podSpec.multiPodPerHost", "cannot change from true to false");
}

// --- defaulting -----------------------------------------------------------------------------------------------

#[test]
fn defaults_are_written_into_the_object() {
    let mut c = valid();
    c.spec.max_unavailable = None;
    default_cluster(&mut c);
    assert_eq!(c.spec.max_unavailable, Some(IntOrString::Int(1)));
    let st = c.spec.storage.as_ref().unwrap();
    assert_eq!(st.cleanup_threads, Some(1));
    let fs = st.filesystem_volume_policy.as_ref().unwrap();
    assert_eq!(
        (fs.effective_init_method, fs.effective_wipe_method, fs.effective_cascade_delete),
        (Some(VolumeMethod::None), Some(VolumeMethod::DeleteFiles), Some(false))
    );
    let bl = st.block_volume_policy.as_ref().unwrap();
    assert_eq!(bl.effective_wipe_method, Some(VolumeMethod::Dd));
    assert_eq!(st.volumes[1].effective_wipe_method, Some(VolumeMethod::Dd));
    assert_eq!(st.volumes[0].effective_wipe_method, Some(VolumeMethod::DeleteFiles));

    let cfg = c.spec.aerospike_config.as_ref().unwrap();
    assert_eq!(cfg["service"]["node-id"], "ENV_NODE_ID");
    assert_eq!(cfg["service"]["cluster-name"], "aerocluster");
    assert_eq!(cfg["network"]["heartbeat"]["mode"], "mesh");
    assert_eq!(cfg["network"]["service"]["access-port"], 3000);
    assert_eq!(cfg["namespaces"][0]["rack-id"], 0);

    let racks = &c.spec.rack_config.as_ref().unwrap().racks;
    let eff = racks[1].effective_aerospike_config.as_ref().unwrap();
    assert_eq!(eff["namespaces"][0]["rack-id"], 2);
    assert_eq!(eff["service"]["cluster-name"], "aerocluster");
    let eff_storage = racks[0].effective_storage.as_ref().unwrap();
    assert_eq!(eff_storage["volumes"][0]["effectiveInitMethod"], "none");
}

#[test]
fn defaults_apply_to_the_default_rack_and_rack_overrides() {
    let mut v = valid_json();
    v["spec"]["rackConfig"]["racks"][0]["aerospikeConfig"] = json!({"service": {"proto-fd-max": 20000}});
    let mut c = cluster(v);
    default_cluster(&mut c);
    let racks = &c.spec.rack_config.as_ref().unwrap().racks;
    assert_eq!(racks[0].effective_aerospike_config.as_ref().unwrap()["service"]["proto-fd-max"], 20000);
    assert_eq!(racks[1].effective_aerospike_config.as_ref().unwrap()["service"]["proto-fd-max"], 15000);

    // no racks: the default rack is not written into racks (id 0 is reserved by the schema)
    let mut v = valid_json();
    v["spec"].as_object_mut().unwrap().remove("rackConfig");
    let mut c = cluster(v);
    default_cluster(&mut c);
    assert!(c.spec.rack_config.is_none());
    assert_eq!(c.spec.aerospike_config.as_ref().unwrap()["network"]["heartbeat"]["mode"], "mesh");
}

#[test]
fn defaulting_is_idempotent_and_does_not_change_what_is_built() {
    let ctx = crate::desired::BuildContext { init_image: "op:1".into() };
    let mut v = valid_json();
    v["spec"]["rackConfig"]["racks"][0]["aerospikeConfig"] =
        json!({"namespaces": [{"name": "mem", "replication-factor": 3}]});
    for c in [valid(), cluster(v)] {
        let mut once = c.clone();
        default_cluster(&mut once);
        let mut twice = once.clone();
        default_cluster(&mut twice);
        assert_eq!(once, twice);
        let a = crate::desired::desired_state(&crate::resolve::resolve(&c), &ctx).unwrap();
        let b = crate::desired::desired_state(&crate::resolve::resolve(&once), &ctx).unwrap();
        assert_eq!(a.config_maps, b.config_maps);
        assert_eq!(a.stateful_sets, b.stateful_sets);
        assert_eq!(a.pdb, b.pdb);
    }
}

#[test]
fn defaulting_leaves_broken_configs_for_validation() {
    let mut c = with("/spec/aerospikeConfig/network/heartbeat/mode", json!("multicast"));
    let before = c.spec.aerospike_config.clone();
    default_cluster(&mut c);
    assert_eq!(c.spec.aerospike_config, before);
    refused(&c, None, "spec.aerospikeConfig.network.heartbeat.mode", "conflicts");
}

#[test]
fn accepted_fields_the_operator_does_not_act_on_are_named() {
    let resolved_warnings = |c: &AerospikeCluster| -> Vec<String> {
        crate::validate::warnings(&crate::resolve::resolve(c)).iter().map(|w| w.path.clone()).collect()
    };
    assert_eq!(resolved_warnings(&valid()), Vec::<String>::new(), "the valid cluster uses only what works");
    let mut v = valid_json();
    v["spec"]["enableDynamicConfigUpdate"] = json!(true);
    v["spec"]["storage"]["volumes"][1]["initMethod"] = json!("dd");
    v["spec"]["storage"]["blockVolumePolicy"] = json!({"wipeMethod": "blkdiscard"});
    v["spec"]["storage"]["volumes"][0]["wipeMethod"] = json!("deleteFiles");
    v["spec"]["aerospikeConfig"]["namespaces"][1]["strong-consistency"] = json!(true);
    let c = cluster(v);
    assert!(validate(&c, None).is_empty(), "accepted: {:?}", validate(&c, None));
    let paths = resolved_warnings(&c);
    // Implemented: no longer named (dynamic config, block init and wipe methods, a filesystem volume's wipe method:
    // files of a removed namespace are deleted).
    for done in [
        "spec.enableDynamicConfigUpdate",
        "spec.storage.volumes[1].initMethod",
        "spec.storage.volumes[1].wipeMethod",
        "spec.storage.volumes[0].wipeMethod",
    ] {
        assert!(!paths.iter().any(|p| p == done), "{done} in {paths:?}");
    }
    // Each field once, however many racks share the storage.
    let unique: std::collections::BTreeSet<&String> = paths.iter().collect();
    assert_eq!(unique.len(), paths.len(), "{paths:?}");
}

#[test]
fn a_pki_only_admin_needs_the_operators_client_certificate() {
    let mut v = valid_json();
    v["spec"]["aerospikeAccessControl"]["users"][0] =
        json!({"name": "admin", "authMode": "PKIOnly", "roles": ["sys-admin", "user-admin"]});
    refused(
        &cluster(v.clone()),
        None,
        "spec.aerospikeAccessControl.users[0].authMode",
        "PKIOnly for admin needs spec.operatorClientCert",
    );
    v["spec"]["operatorClientCert"] = json!({"secretCertSource": {"secretName": "op-tls",
        "caCertsFilename": "ca.pem", "clientCertFilename": "cert.pem", "clientKeyFilename": "key.pem"}});
    let errors = validate(&cluster(v), None);
    assert!(!errors.iter().any(|e| e.path == "spec.aerospikeAccessControl.users[0].authMode"), "{errors:?}");
}

/// The schema and the defaulting webhook write `cleanupThreads: 1` and `validationPolicy: {skipWorkDirValidate:
/// false}` into every object: those defaults are what the operator does, so they are not warned about; values
/// beyond them still are.
#[test]
fn defaults_are_not_warned_about() {
    let resolved_warnings = |c: &AerospikeCluster| -> Vec<String> {
        crate::validate::warnings(&crate::resolve::resolve(c)).iter().map(|w| w.path.clone()).collect()
    };
    let mut v = valid_json();
    v["spec"]["validationPolicy"] = json!({"skipWorkDirValidate": false});
    let mut c = cluster(v);
    default_cluster(&mut c);
    assert_eq!(c.spec.storage.as_ref().unwrap().cleanup_threads, Some(1));
    assert_eq!(resolved_warnings(&c), Vec::<String>::new());

    let mut v = valid_json();
    v["spec"]["validationPolicy"] = json!({"skipWorkDirValidate": true, "skipXdrDlogFileValidate": true});
    v["spec"]["storage"]["cleanupThreads"] = json!(4);
    v["spec"]["storage"]["deleteLocalStorageOnPodRecovery"] = json!(true);
    v["spec"]["storage"]["volumes"][1]["initMethod"] = json!("blkdiscardWithHeaderCleanup");
    let paths = resolved_warnings(&cluster(v));
    // Deprecated in the reference, read by no check: the only one named.
    assert_eq!(paths, vec!["spec.validationPolicy.skipXdrDlogFileValidate".to_string()]);
}

/// `valid()` served over TLS only, with the operator's certificates from a Secret.
fn tls_only_json() -> Value {
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"]["network"]["tls"] = json!([{"name": "t1", "cert-file": "/etc/aerospike/secret/s.pem",
        "key-file": "/etc/aerospike/secret/s.key", "ca-file": "/etc/aerospike/secret/ca.pem"}]);
    v["spec"]["aerospikeConfig"]["network"]["service"] = json!({"tls-name": "t1", "tls-port": 4333});
    v["spec"]["operatorClientCert"] = json!({"tlsClientName": "op", "secretCertSource": {"secretName": "op-tls",
        "caCertsFilename": "ca.pem", "clientCertFilename": "c.pem", "clientKeyFilename": "k.pem"}});
    v
}

#[test]
fn tls_rules_name_the_field() {
    accepted(&cluster(tls_only_json()), None);

    // A TLS-only service needs the operator's certificates.
    let mut v = tls_only_json();
    v["spec"]["operatorClientCert"] = Value::Null;
    refused(&cluster(v), None, "spec.operatorClientCert", "only a tls-port");
    // With a plain port as well the operator uses that one, so none is needed.
    let mut v = tls_only_json();
    v["spec"]["operatorClientCert"] = Value::Null;
    v["spec"]["aerospikeConfig"]["network"]["service"]["port"] = json!(3000);
    accepted(&cluster(v), None);

    // A tls-name must be a network.tls entry.
    let mut v = tls_only_json();
    v["spec"]["aerospikeConfig"]["network"]["service"]["tls-name"] = json!("t9");
    refused(&cluster(v), None, "spec.aerospikeConfig.network.service.tls-name", "\"t9\" is not declared");
    let mut v = tls_only_json();
    v["spec"]["aerospikeConfig"]["network"]["heartbeat"]["tls-name"] = json!("nope");
    refused(&cluster(v), None, "spec.aerospikeConfig.network.heartbeat.tls-name", "declared: t1");

    // The certificate source: one of the two, a CA, cert and key together.
    let mut v = tls_only_json();
    v["spec"]["operatorClientCert"]["certPathInOperator"] = json!({"caCertsPath": "/ca.pem"});
    refused(&cluster(v), None, "spec.operatorClientCert", "not both");
    let mut v = tls_only_json();
    v["spec"]["operatorClientCert"]["secretCertSource"]["caCertsFilename"] = json!("");
    refused(&cluster(v), None, "spec.operatorClientCert.secretCertSource.caCertsFilename", "required");
    let mut v = tls_only_json();
    v["spec"]["operatorClientCert"]["secretCertSource"]["clientKeyFilename"] = json!("");
    refused(&cluster(v), None, "spec.operatorClientCert.secretCertSource.clientKeyFilename", "together");

    // Nodes that authenticate clients (`any` by default) need the operator's client certificate...
    let mut v = tls_only_json();
    for k in ["clientCertFilename", "clientKeyFilename"] {
        v["spec"]["operatorClientCert"]["secretCertSource"][k] = json!("");
    }
    refused(&cluster(v.clone()), None, "spec.operatorClientCert", "a client certificate is required");
    v["spec"]["aerospikeConfig"]["network"]["service"]["tls-authenticate-client"] = json!("false");
    accepted(&cluster(v), None);
    // ...and, when they list names, one the operator's certificate carries.
    let mut v = tls_only_json();
    v["spec"]["aerospikeConfig"]["network"]["service"]["tls-authenticate-client"] = json!(["app", "op"]);
    accepted(&cluster(v.clone()), None);
    v["spec"]["operatorClientCert"]["tlsClientName"] = json!("other");
    refused(
        &cluster(v),
        None,
        "spec.operatorClientCert.tlsClientName",
        "not in network.service.tls-authenticate-client",
    );
}

#[test]
fn operator_client_cert_is_no_longer_warned() {
    let c = cluster(tls_only_json());
    let warnings = crate::validate::warnings(&crate::resolve::resolve(&c));
    assert!(warnings.iter().all(|w| !w.path.starts_with("spec.operatorClientCert")), "{warnings:?}");
}

/// `valid_json()` deployed once: the status copies the spec and lists its three pods.
fn deployed_json() -> Value {
    let mut v = valid_json();
    let spec = v["spec"].clone();
    let mut status = spec.clone();
    status["pods"] = json!({
        "aerocluster-1-0": {"image": "x", "podIP": "", "hostInternalIP": "", "podPort": 3000, "servicePort": 3000,
                            "aerospike": {"clusterName": "aerocluster", "nodeID": "1a0"}},
        "aerocluster-2-0": {"image": "x", "podIP": "", "hostInternalIP": "", "podPort": 3000, "servicePort": 3000,
                            "aerospike": {"clusterName": "aerocluster", "nodeID": "2a0"}},
    });
    v["status"] = status;
    v
}

#[test]
fn operations_follow_the_reference_rules() {
    let deployed = cluster(deployed_json());
    let with_op = |op: Value, f: &dyn Fn(&mut Value)| {
        let mut v = deployed_json();
        v["spec"]["operations"] = op;
        f(&mut v);
        cluster(v)
    };
    let op1 = json!([{"id": "op1", "kind": "WarmRestart", "podList": ["aerocluster-2-0"]}]);
    let ok = with_op(op1.clone(), &|_| {});
    assert!(validate(&ok, Some(&deployed)).is_empty(), "{:?}", validate(&ok, Some(&deployed)));
    let warned: Vec<String> =
        crate::validate::warnings(&crate::resolve::resolve(&ok)).iter().map(|w| w.to_string()).collect();
    assert!(!warned.iter().any(|w| w.contains("spec.operations")), "WarmRestart is carried out: {warned:?}");

    // A pod that is not the cluster's.
    let bad = with_op(json!([{"id": "op1", "kind": "PodRestart", "podList": ["aerocluster-1-7"]}]), &|_| {});
    refused(&bad, Some(&deployed), "spec.operations[0].podList", "aerocluster-1-7");
    // Changed once given.
    let changed = with_op(json!([{"id": "op1", "kind": "PodRestart", "podList": ["aerocluster-2-0"]}]), &|_| {});
    refused(&changed, Some(&ok), "spec.operations[0]", "op1 cannot be changed");
    // Two at once.
    let two = with_op(json!([{"id": "a", "kind": "PodRestart"}, {"id": "b", "kind": "PodRestart"}]), &|_| {});
    refused(&two, Some(&deployed), "spec.operations", "at most one");
    // With a scale-up or an image change.
    let up = with_op(op1.clone(), &|v| v["spec"]["size"] = json!(4));
    refused(&up, Some(&deployed), "spec.operations", "a scale-up");
    let image = with_op(op1.clone(), &|v| v["spec"]["image"] = json!("aerospike/aerospike-server-enterprise:7.2.0.1"));
    refused(&image, Some(&deployed), "spec.operations", "an image change");
    // Before the first deployment.
    let mut fresh = valid_json();
    fresh["spec"]["operations"] = op1;
    refused(&cluster(fresh), None, "spec.operations", "before the cluster has been deployed");
}

/// `validationPolicy.skipWorkDirValidate: false` (the default): the work directory must be on a persistent
/// Filesystem volume, as the reference requires; the refusal names the field to change.
#[test]
fn the_work_directory_must_be_on_a_persistent_filesystem_volume() {
    let needle = "is not on a persistent Filesystem volume";
    // No volume at /opt/aerospike.
    let mut v = valid_json();
    v["spec"]["storage"]["volumes"].as_array_mut().unwrap().remove(0);
    refused(&cluster(v.clone()), None, "spec.storage.volumes", &format!("/opt/aerospike {needle}"));
    // Skipping the check accepts it, with no warning.
    v["spec"]["validationPolicy"] = json!({"skipWorkDirValidate": true});
    accepted(&cluster(v.clone()), None);
    assert!(crate::validate::warnings(&crate::resolve::resolve(&cluster(v.clone()))).is_empty());
    // Skipped, but a configured work directory must still be on some volume (any kind).
    v["spec"]["aerospikeConfig"]["service"]["work-directory"] = json!("/data/work");
    refused(&cluster(v.clone()), None, "spec.aerospikeConfig.service.work-directory", "not on any volume");
    v["spec"]["storage"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "scratch", "source": {"emptyDir": {}}, "aerospike": {"path": "/data"}}));
    accepted(&cluster(v), None);

    // An emptyDir at the work directory is not enough.
    let mut v = valid_json();
    v["spec"]["storage"]["volumes"][0] =
        json!({"name": "workdir", "source": {"emptyDir": {}}, "aerospike": {"path": "/opt/aerospike"}});
    refused(&cluster(v), None, "spec.storage.volumes", needle);
    // A configured work directory below a persistent volume's path is on it; a relative one is refused.
    let mut v = valid_json();
    v["spec"]["aerospikeConfig"]["service"]["work-directory"] = json!("/opt/aerospike/work");
    accepted(&cluster(v.clone()), None);
    v["spec"]["aerospikeConfig"]["service"]["work-directory"] = json!("/opt");
    refused(&cluster(v.clone()), None, "spec.aerospikeConfig.service.work-directory", &format!("/opt {needle}"));
    v["spec"]["aerospikeConfig"]["service"]["work-directory"] = json!("work");
    refused(&cluster(v), None, "spec.aerospikeConfig.service.work-directory", "not an absolute path");

    // A rack with storage of its own is judged by it, and named.
    let mut v = valid_json();
    v["spec"]["rackConfig"]["racks"][1]["storage"] = json!({"volumes": [
        {"name": "ns", "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Block", "size": "5Gi"}},
         "aerospike": {"path": "/dev/xvdf"}}]});
    refused(&cluster(v), None, "spec.rackConfig.racks[1].storage.volumes", needle);
}

/// A cluster that already ran with its work directory off persistent storage (stored before the operator had
/// this check) keeps being accepted on update, with a warning; a change that moves it off is refused.
#[test]
fn a_cluster_that_already_ran_without_a_persistent_work_directory_is_warned_not_refused() {
    let mut v = valid_json();
    v["spec"]["storage"]["volumes"].as_array_mut().unwrap().remove(0);
    let old = cluster(v.clone());
    v["spec"]["size"] = json!(4);
    let new = cluster(v);
    accepted(&new, Some(&old));
    let warned = crate::validate::warnings(&crate::resolve::resolve(&new));
    assert!(
        warned.iter().any(|w| w.path == "spec.storage.volumes" && w.message.contains("already ran this way")),
        "{warned:#?}"
    );
    // The same spec on create is refused.
    refused(&new, None, "spec.storage.volumes", "not on a persistent Filesystem volume");
    // Moving a compliant cluster's work directory off its volume is refused on update.
    let mut moved = valid_json();
    moved["spec"]["aerospikeConfig"]["service"]["work-directory"] = json!("/var/aerospike");
    refused(&cluster(moved), Some(&valid()), "spec.aerospikeConfig.service.work-directory", "not on a persistent");
}
