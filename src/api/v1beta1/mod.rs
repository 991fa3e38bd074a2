//! The `asdb.aerospike.com/v1beta1` backup API: AerospikeBackupService, AerospikeBackup and AerospikeRestore, with
//! the reference's field names and meaning (its api/v1beta1). The configurations are free-form, as there: they are
//! Aerospike Backup Service (ABS) configuration, checked by the controllers against the service they name.
#[cfg(test)]
mod fidelity;

use std::time::Duration;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements, SecurityContext, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schema;
use super::{ObjectMetaTemplate, SchedulingPolicy};

/// The key of the service's configuration file in its ConfigMap (the file name ABS reads).
pub const BACKUP_SERVICE_CONFIG_YAML: &str = "aerospike-backup-service.yml";
/// Finalizer of AerospikeBackup (removes its entries from the service) and AerospikeRestore (cancels a running job).
pub const BACKUP_FINALIZER: &str = "asdb.aerospike.com/backup-finalizer";
pub const RESTORE_FINALIZER: &str = "asdb.aerospike.com/restore-finalizer";
/// ABS's default HTTP port and context path (service.http in its configuration).
pub const DEFAULT_PORT: i32 = 8080;
pub const DEFAULT_CONTEXT_PATH: &str = "/";

// ---------------------------------------------------------------------------------------------------------------
// Shared parts.

/// A backup service by name and namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct BackupServiceRef {
    /// Name of the AerospikeBackupService.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the AerospikeBackupService.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
}

impl std::fmt::Display for BackupServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Parses a Kubernetes (Go) duration: `90s`, `1m30s`, `1h`, `500ms`, `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("{text:?} is not a duration (like 30s, 1m or 1h30m)"));
        }
        let n: f64 = rest[..digits].parse().map_err(|_| format!("{text:?}: bad number"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("{text:?}: unknown unit {u:?} (ns, us, ms, s, m, h)")),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

fn duration_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = g.subschema_for::<Option<String>>();
    s.insert("maxLength".into(), 64.into());
    s
}

// ---------------------------------------------------------------------------------------------------------------
// AerospikeBackupService.

/// A Secret mounted into the backup service container (credentials of storage and clusters).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretMount {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Where and how it is mounted.
    #[schemars(schema_with = "schema::k8s::<VolumeMount>")]
    pub volume_mount: VolumeMount,
}

/// The Kubernetes Service in front of the backup service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct BackupServiceServiceSpec {
    /// Service type (ClusterIP, NodePort, LoadBalancer).
    #[serde(rename = "type")]
    #[schemars(length(max = 63))]
    pub type_: String,
}

/// Settings of the backup service container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceContainerSpec {
    /// Security context of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<SecurityContext>>")]
    pub security_context: Option<SecurityContext>,
    /// CPU and memory requests and limits of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<ResourceRequirements>>")]
    pub resources: Option<ResourceRequirements>,
}

/// What the operator adds to the backup service pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePodSpec {
    /// The backup service container.
    #[serde(default, rename = "serviceContainer", skip_serializing_if = "Option::is_none")]
    pub service_container: Option<ServiceContainerSpec>,
    /// Labels and annotations of the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMetaTemplate>,
    #[serde(flatten)]
    pub scheduling: SchedulingPolicy,
    /// ServiceAccount of the pod (default: the namespace's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub service_account_name: Option<String>,
    /// Secrets for pulling the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::k8s::<Vec<LocalObjectReference>>")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// An Aerospike Backup Service: a Deployment, its ConfigMap and Service.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "asdb.aerospike.com",
    version = "v1beta1",
    kind = "AerospikeBackupService",
    namespaced,
    status = "AerospikeBackupServiceStatus",
    category = "aerospike",
    derive = "PartialEq",
    derive = "Default",
    doc = "An Aerospike Backup Service (ABS): a Deployment running the service with this configuration, its \
           ConfigMap and Service.",
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image"),
    printcolumn(name = "Service Type", type_ = "string", json_path = ".spec.service.type"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::keep_intended_defaults)]
pub struct AerospikeBackupServiceSpec {
    /// Backup service image (aerospike/aerospike-backup-service).
    #[schemars(length(min = 1, max = 1024))]
    pub image: String,
    /// The service's configuration (aerospike-backup-service.yml): service, backup-policies, storage,
    /// secret-agents. Clusters and routines are added by AerospikeBackups.
    #[schemars(schema_with = "schema::free_form")]
    pub config: Value,
    /// Pod settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec: Option<ServicePodSpec>,
    /// Deprecated (use podSpec.serviceContainer.resources): the container's resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<ResourceRequirements>>")]
    pub resources: Option<ResourceRequirements>,
    /// Secrets mounted into the service.
    #[serde(default, rename = "secrets", skip_serializing_if = "Vec::is_empty")]
    pub secret_mounts: Vec<SecretMount>,
    /// The Kubernetes Service (default ClusterIP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<BackupServiceServiceSpec>,
}

/// Phases of a backup service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BackupServicePhase {
    #[default]
    InProgress,
    Completed,
    Error,
}

/// Observed state of a backup service: the applied spec, where it listens, phase and conditions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AerospikeBackupServiceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_form")]
    pub config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::copy::<Option<ServicePodSpec>>")]
    pub pod_spec: Option<ServicePodSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::k8s::<Option<ResourceRequirements>>")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, rename = "secrets", skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::copy::<Vec<SecretMount>>")]
    pub secret_mounts: Vec<SecretMount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<BackupServiceServiceSpec>,
    /// The service's API context path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub context_path: Option<String>,
    /// InProgress while the Deployment rolls out, Completed when its pods are ready, Error on a bad spec.
    pub phase: BackupServicePhase,
    /// The service's HTTP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Available, Progressing, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::k8s::<Vec<Condition>>")]
    pub conditions: Vec<Condition>,
}

// ---------------------------------------------------------------------------------------------------------------
// AerospikeBackup.

/// Full or incremental backup.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BackupType {
    #[default]
    Full,
    Incremental,
}

/// One on-demand backup of a routine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnDemandBackupSpec {
    /// Unique id of this on-demand backup: a new id starts a new backup.
    #[schemars(length(min = 1, max = 253))]
    pub id: String,
    /// Full (default) or Incremental (ABS 3.5 or later).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Full", "x-ako-default" = true))]
    pub type_: Option<BackupType>,
    /// The routine to back up (a key of config.backup-routines).
    #[schemars(length(max = 253))]
    pub routine_name: String,
    /// Wait this long before starting (a duration: 30s, 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration_schema")]
    pub delay: Option<String>,
}

/// Backups of one Aerospike cluster through a backup service: scheduled routines and on-demand backups.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "asdb.aerospike.com",
    version = "v1beta1",
    kind = "AerospikeBackup",
    namespaced,
    status = "AerospikeBackupStatus",
    category = "aerospike",
    derive = "PartialEq",
    derive = "Default",
    doc = "Backups of one Aerospike cluster by a backup service: its cluster and routines in the service's \
           configuration, and on-demand backups.",
    printcolumn(name = "Backup Service Name", type_ = "string", json_path = ".spec.backupService.name"),
    printcolumn(name = "Backup Service Namespace", type_ = "string", json_path = ".spec.backupService.namespace"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::keep_intended_defaults)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.backupService == oldSelf.backupService", "message": "backupService cannot be changed",
     "fieldPath": ".backupService"}
]))]
pub struct AerospikeBackupSpec {
    /// The backup service that runs the backups (cannot be changed).
    pub backup_service: BackupServiceRef,
    /// ABS configuration with one `aerospike-cluster` and its `backup-routines`; their names start with
    /// `<namespace>-<name>` of this object.
    #[schemars(schema_with = "schema::free_form")]
    pub config: Value,
    /// On-demand backup (at most one; a new id starts a new backup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1))]
    pub on_demand_backups: Vec<OnDemandBackupSpec>,
}

/// Observed state of a backup: the applied spec, the on-demand backups started, conditions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AerospikeBackupStatus {
    /// The backup service in use.
    pub backup_service: BackupServiceRef,
    /// The configuration last applied.
    #[schemars(schema_with = "schema::free_form")]
    pub config: Value,
    /// On-demand backups started (the last one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_demand_backups: Vec<OnDemandBackupSpec>,
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Available (the service runs this configuration), Degraded (why not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::k8s::<Vec<Condition>>")]
    pub conditions: Vec<Condition>,
}

// ---------------------------------------------------------------------------------------------------------------
// AerospikeRestore.

/// What a restore restores.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RestoreType {
    #[default]
    Full,
    Incremental,
    Timestamp,
}

impl RestoreType {
    /// The path segment of ABS's restore call.
    pub fn path(self) -> &'static str {
        match self {
            RestoreType::Full => "full",
            RestoreType::Incremental => "incremental",
            RestoreType::Timestamp => "timestamp",
        }
    }
}

/// A restore through a backup service.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "asdb.aerospike.com",
    version = "v1beta1",
    kind = "AerospikeRestore",
    namespaced,
    status = "AerospikeRestoreStatus",
    category = "aerospike",
    derive = "PartialEq",
    derive = "Default",
    doc = "A restore job of a backup service: started once, followed until it completes or fails.",
    printcolumn(name = "Backup Service Name", type_ = "string", json_path = ".spec.backupService.name"),
    printcolumn(name = "Backup Service Namespace", type_ = "string", json_path = ".spec.backupService.namespace"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::keep_intended_defaults)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.type != 'Timestamp' || has(self.config.time)",
     "message": "a Timestamp restore needs config.time (epoch milliseconds)", "fieldPath": ".config"},
    {"rule": "self == oldSelf", "message": "a restore cannot be changed (create a new one)"}
]))]
pub struct AerospikeRestoreSpec {
    /// The backup service that runs the restore.
    pub backup_service: BackupServiceRef,
    /// Full, Incremental or Timestamp; the config says what to restore accordingly.
    #[serde(rename = "type")]
    pub type_: RestoreType,
    /// ABS restore request: destination, policy, source or routine, backup-data-path or time, secret-agent.
    #[schemars(schema_with = "restore_config_schema")]
    pub config: Value,
    /// How often the job's status is read (a duration; default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration_schema", extend("default" = "1m", "x-ako-default" = true))]
    pub polling_period: Option<String>,
}

/// Free-form, but `time` is declared so that a rule can ask for it (CEL sees declared fields only).
fn restore_config_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = schema::free_form(g);
    s.insert(
        "properties".into(),
        serde_json::json!({"time": {"type": "integer", "format": "int64", "minimum": 0,
            "description": "Restore to this point in time (epoch milliseconds; Timestamp restores)."}}),
    );
    s
}

impl AerospikeRestoreSpec {
    pub fn polling_period(&self) -> Duration {
        self.polling_period.as_deref().and_then(|p| parse_duration(p).ok()).unwrap_or(Duration::from_secs(60))
    }
}

/// Phases of a restore.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RestorePhase {
    #[default]
    InProgress,
    Completed,
    Failed,
}

/// Observed state of a restore: the job, its phase and the service's last answer about it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AerospikeRestoreStatus {
    /// The service's restore job id.
    #[serde(default, rename = "job-id", skip_serializing_if = "Option::is_none")]
    pub job_id: Option<i64>,
    /// The service's last answer about the job (its status, records, errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_form")]
    pub restore_result: Option<Value>,
    /// InProgress while the job runs, Completed when the service says Done, Failed when it failed or was cancelled.
    pub phase: RestorePhase,
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Available, Degraded (why the restore could not start or failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::k8s::<Vec<Condition>>")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_kubernetes_writes_them() {
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn polling_period_defaults_to_a_minute() {
        let mut spec = AerospikeRestoreSpec::default();
        assert_eq!(spec.polling_period(), Duration::from_secs(60));
        spec.polling_period = Some("2s".into());
        assert_eq!(spec.polling_period(), Duration::from_secs(2));
    }
}
