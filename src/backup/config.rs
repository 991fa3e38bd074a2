//! The backup service's configuration (pure): what an AerospikeBackup adds to it, the checks of that against the
//! service, the merged configuration the service runs, whether the running one has it, and restore states.
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::api::FieldError;
use crate::api::v1beta1::{AerospikeBackup, AerospikeBackupService, DEFAULT_CONTEXT_PATH, DEFAULT_PORT, RestorePhase};

pub const SERVICE: &str = "service";
pub const CLUSTERS: &str = "aerospike-clusters";
pub const CLUSTER: &str = "aerospike-cluster";
pub const ROUTINES: &str = "backup-routines";
pub const POLICIES: &str = "backup-policies";
pub const STORAGE: &str = "storage";
pub const SECRET_AGENTS: &str = "secret-agents";

/// The service's HTTP port and context path (`service.http` of its configuration).
pub fn listen(config: &Value) -> (i32, String) {
    let http = &config[SERVICE]["http"];
    let port = http["port"].as_i64().and_then(|p| i32::try_from(p).ok()).unwrap_or(DEFAULT_PORT);
    let context = http["context-path"].as_str().unwrap_or(DEFAULT_CONTEXT_PATH).to_string();
    (port, context)
}

/// Checks of a backup service's own configuration.
pub fn check_service(service: &AerospikeBackupService) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(config) = service.spec.config.as_object() else {
        return vec![FieldError::new("spec.config", "must be an object (the backup service configuration)")];
    };
    for key in [CLUSTERS, ROUTINES] {
        if config.contains_key(key) {
            errors.push(FieldError::new(
                format!("spec.config.{key}"),
                "clusters and routines belong in AerospikeBackup objects, not the service",
            ));
        }
    }
    let (port, _) = listen(&service.spec.config);
    if !(1..=65535).contains(&port) {
        errors.push(FieldError::new("spec.config.service.http.port", format!("{port} is not a port")));
    }
    errors
}

/// What one AerospikeBackup puts into its service's configuration: its cluster and routines, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entries {
    pub clusters: BTreeMap<String, Value>,
    pub routines: BTreeMap<String, Value>,
}

/// The names an AerospikeBackup's clusters and routines start with (the reference's `<namespace>-<name>`).
pub fn name_prefix(backup: &AerospikeBackup) -> String {
    format!(
        "{}-{}",
        backup.metadata.namespace.as_deref().unwrap_or_default(),
        backup.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Reads and checks an AerospikeBackup's config on its own: one cluster, at least one routine, prefixed names,
/// routines of that cluster, and nothing that belongs to the service.
pub fn entries(backup: &AerospikeBackup) -> Result<Entries, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(config) = backup.spec.config.as_object() else {
        return Err(vec![FieldError::new(
            "spec.config",
            "must be an object with aerospike-cluster and backup-routines",
        )]);
    };
    for key in [SERVICE, POLICIES, STORAGE, SECRET_AGENTS, CLUSTERS] {
        if config.contains_key(key) {
            errors
                .push(FieldError::new(format!("spec.config.{key}"), "belongs to the AerospikeBackupService's config"));
        }
    }
    let prefix = name_prefix(backup);
    let mut out = Entries::default();
    match config.get(CLUSTER).and_then(Value::as_object) {
        Some(c) if c.len() == 1 => {
            let (name, cluster) = c.iter().next().expect("one entry");
            if !name.starts_with(&prefix) {
                errors.push(FieldError::new(
                    format!("spec.config.{CLUSTER}.{name}"),
                    format!("the name must start with {prefix}"),
                ));
            }
            out.clusters.insert(name.clone(), cluster.clone());
        }
        Some(_) => errors.push(FieldError::new(format!("spec.config.{CLUSTER}"), "exactly one cluster")),
        None => {
            errors.push(FieldError::new(format!("spec.config.{CLUSTER}"), "required: the cluster to back up, by name"))
        }
    }
    match config.get(ROUTINES).and_then(Value::as_object) {
        Some(r) if !r.is_empty() => {
            for (name, routine) in r {
                let path = format!("spec.config.{ROUTINES}.{name}");
                if !name.starts_with(&prefix) {
                    errors.push(FieldError::new(&path, format!("the name must start with {prefix}")));
                }
                match routine.get("source-cluster").and_then(Value::as_str) {
                    Some(c) if out.clusters.contains_key(c) => {}
                    Some(c) => errors.push(FieldError::new(
                        format!("{path}.source-cluster"),
                        format!("{c} is not this backup's aerospike-cluster"),
                    )),
                    None => errors.push(FieldError::new(format!("{path}.source-cluster"), "required")),
                }
                out.routines.insert(name.clone(), routine.clone());
            }
        }
        _ => errors.push(FieldError::new(format!("spec.config.{ROUTINES}"), "required: at least one routine")),
    }
    for (i, od) in backup.spec.on_demand_backups.iter().enumerate() {
        if !out.routines.contains_key(&od.routine_name) {
            errors.push(FieldError::new(
                format!("spec.onDemandBackups[{i}].routineName"),
                format!("{} is not a routine of spec.config.{ROUTINES}", od.routine_name),
            ));
        }
        if let Some(d) = &od.delay
            && let Err(e) = crate::api::v1beta1::parse_duration(d)
        {
            errors.push(FieldError::new(format!("spec.onDemandBackups[{i}].delay"), e));
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// The routines' references into the service's configuration: storage, backup-policy and secret-agent exist there.
pub fn check_against_service(entries: &Entries, service_config: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (name, routine) in &entries.routines {
        for (field, section) in [("storage", STORAGE), ("backup-policy", POLICIES), ("secret-agent", SECRET_AGENTS)] {
            let Some(wanted) = routine.get(field).and_then(Value::as_str) else {
                if field != "secret-agent" {
                    errors.push(FieldError::new(format!("spec.config.{ROUTINES}.{name}.{field}"), "required"));
                }
                continue;
            };
            if service_config[section].get(wanted).is_none() {
                errors.push(FieldError::new(
                    format!("spec.config.{ROUTINES}.{name}.{field}"),
                    format!("the backup service has no {section} entry {wanted}"),
                ));
            }
        }
    }
    errors
}

/// The configuration the service runs: its own, plus every backup's cluster and routines.
pub fn merged(service_config: &Value, backups: &[Entries]) -> Value {
    let mut config = service_config.as_object().cloned().unwrap_or_default();
    let mut clusters = Map::new();
    let mut routines = Map::new();
    for e in backups {
        clusters.extend(e.clusters.iter().map(|(k, v)| (k.clone(), v.clone())));
        routines.extend(e.routines.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if !clusters.is_empty() {
        config.insert(CLUSTERS.into(), Value::Object(clusters));
    }
    if !routines.is_empty() {
        config.insert(ROUTINES.into(), Value::Object(routines));
    }
    Value::Object(config)
}

/// `ours` is within `live`: every field of ours is there with the same value (the service may add defaults).
fn within(ours: &Value, live: &Value) -> bool {
    match (ours, live) {
        (Value::Object(o), Value::Object(l)) => o.iter().all(|(k, v)| l.get(k).is_some_and(|lv| within(v, lv))),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// The service runs `desired`: every field of it is in the running configuration with the same value.
pub fn runs(desired: &Value, live: &Value) -> bool {
    within(desired, live)
}

/// The running configuration has these entries.
pub fn applied(entries: &Entries, live: &Value) -> bool {
    entries.clusters.iter().all(|(k, v)| within(v, &live[CLUSTERS][k]))
        && entries.routines.iter().all(|(k, v)| within(v, &live[ROUTINES][k]))
}

/// The running configuration has none of these names any more.
pub fn removed(entries: &Entries, live: &Value) -> bool {
    entries.clusters.keys().all(|k| live[CLUSTERS].get(k).is_none())
        && entries.routines.keys().all(|k| live[ROUTINES].get(k).is_none())
}

/// The phase of a restore from ABS's job status.
pub fn restore_phase(status: &str) -> RestorePhase {
    match status {
        "Done" => RestorePhase::Completed,
        "Failed" | "Cancelled" | "Canceled" => RestorePhase::Failed,
        _ => RestorePhase::InProgress,
    }
}

/// Why a restore job failed, from its status answer (ABS's `error`).
pub fn restore_failure(result: &Value) -> String {
    let status = result["status"].as_str().unwrap_or("Failed");
    match result.get("error").and_then(Value::as_str).filter(|e| !e.is_empty()) {
        Some(e) => format!("restore job {status}: {e}"),
        None => format!("restore job {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1beta1::{AerospikeBackupSpec, BackupServiceRef, OnDemandBackupSpec};
    use serde_json::json;

    fn backup(config: Value) -> AerospikeBackup {
        let mut b = AerospikeBackup::new(
            "nightly",
            AerospikeBackupSpec {
                backup_service: BackupServiceRef { name: "abs".into(), namespace: "ops".into() },
                config,
                on_demand_backups: vec![],
            },
        );
        b.metadata.namespace = Some("db".into());
        b
    }

    fn good() -> Value {
        json!({
            "aerospike-cluster": {"db-nightly-c1": {"seed-nodes": [{"host-name": "c1.db.svc", "port": 3000}]}},
            "backup-routines": {"db-nightly-r1": {"source-cluster": "db-nightly-c1", "storage": "local",
                "backup-policy": "default", "interval-cron": "@daily"}}
        })
    }

    fn service_config() -> Value {
        json!({"service": {"http": {"port": 8081}}, "storage": {"local": {"local-storage": {"path": "/b"}}},
               "backup-policies": {"default": {"parallel": 2}}})
    }

    #[test]
    fn a_good_backup_gives_its_cluster_and_routines() {
        let e = entries(&backup(good())).unwrap();
        assert_eq!(e.clusters.keys().collect::<Vec<_>>(), ["db-nightly-c1"]);
        assert_eq!(e.routines.keys().collect::<Vec<_>>(), ["db-nightly-r1"]);
        assert!(check_against_service(&e, &service_config()).is_empty());
    }

    #[test]
    fn names_without_the_prefix_and_service_sections_are_refused_with_their_field() {
        let mut c = good();
        c["aerospike-cluster"] = json!({"c1": {}});
        c["storage"] = json!({});
        let errors = entries(&backup(c)).unwrap_err();
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"spec.config.storage"), "{paths:?}");
        assert!(paths.contains(&"spec.config.aerospike-cluster.c1"), "{paths:?}");
        assert!(paths.contains(&"spec.config.backup-routines.db-nightly-r1.source-cluster"), "{paths:?}");
        assert!(errors.iter().any(|e| e.message.contains("must start with db-nightly")));
    }

    #[test]
    fn an_on_demand_backup_of_an_unknown_routine_is_refused() {
        let mut b = backup(good());
        b.spec.on_demand_backups = vec![OnDemandBackupSpec {
            id: "1".into(),
            type_: None,
            routine_name: "other".into(),
            delay: Some("5x".into()),
        }];
        let errors = entries(&b).unwrap_err();
        assert_eq!(errors[0].path, "spec.onDemandBackups[0].routineName");
        assert_eq!(errors[1].path, "spec.onDemandBackups[0].delay");
    }

    #[test]
    fn a_routine_naming_an_unknown_storage_is_reported_with_its_field() {
        let mut c = good();
        c["backup-routines"]["db-nightly-r1"]["storage"] = json!("s3");
        let e = entries(&backup(c)).unwrap();
        let errors = check_against_service(&e, &service_config());
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "spec.config.backup-routines.db-nightly-r1.storage: the backup service has no storage entry s3"
        );
    }

    #[test]
    fn the_merged_config_holds_every_backup_and_is_recognised_as_applied() {
        let e = entries(&backup(good())).unwrap();
        let m = merged(&service_config(), std::slice::from_ref(&e));
        assert_eq!(m["service"]["http"]["port"], 8081);
        assert_eq!(m["backup-routines"]["db-nightly-r1"]["storage"], "local");
        assert!(applied(&e, &m));
        assert!(!removed(&e, &m));
        // The service adds defaults: still applied. A changed value is not.
        let mut live = m.clone();
        live["backup-routines"]["db-nightly-r1"]["retry-delay"] = json!(1000);
        assert!(applied(&e, &live));
        live["backup-routines"]["db-nightly-r1"]["storage"] = json!("other");
        assert!(!applied(&e, &live));
        let without = merged(&service_config(), &[]);
        assert!(without.get("backup-routines").is_none());
        assert!(removed(&e, &without));
        assert!(!applied(&e, &without));
    }

    #[test]
    fn a_new_storage_is_not_run_until_applied() {
        let desired = merged(&service_config(), &[]);
        assert!(runs(&desired, &desired));
        let mut more = desired.clone();
        more["storage"]["s3"] = json!({"s3-storage": {"bucket": "b"}});
        assert!(!runs(&more, &desired), "the running config lacks the new storage");
        assert!(runs(&desired, &more), "extra running entries do not matter");
    }

    #[test]
    fn the_service_listens_where_its_config_says() {
        assert_eq!(listen(&service_config()), (8081, "/".to_string()));
        assert_eq!(listen(&json!({})), (8080, "/".to_string()));
        assert_eq!(listen(&json!({"service": {"http": {"context-path": "/abs"}}})).1, "/abs");
    }

    #[test]
    fn restore_states_map_to_phases() {
        assert_eq!(restore_phase("Running"), RestorePhase::InProgress);
        assert_eq!(restore_phase("Done"), RestorePhase::Completed);
        assert_eq!(restore_phase("Failed"), RestorePhase::Failed);
        assert_eq!(restore_phase("Cancelled"), RestorePhase::Failed);
        assert_eq!(restore_phase("Something new"), RestorePhase::InProgress);
        assert_eq!(restore_failure(&json!({"status": "Failed", "error": "no space"})), "restore job Failed: no space");
    }
}
