//! AerospikeBackupService: ConfigMap, Deployment and Service, and the phase from the Deployment's rollout.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, PodSpec, PodTemplateSpec, SecretVolumeSource, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use tracing::warn;

use super::config::{self, Entries};
use super::{APP_NAME, Ctx, Error, LABEL_INSTANCE, LABEL_NAME, apply, condition, write_status};
use crate::api::v1beta1::{
    AerospikeBackup, AerospikeBackupService, AerospikeBackupServiceStatus, BACKUP_SERVICE_CONFIG_YAML,
    BackupServicePhase,
};

/// Where the configuration file is mounted (ABS reads `<dir>/aerospike-backup-service.yml`).
pub const CONFIG_DIR: &str = "/etc/aerospike-backup-service";
/// Pod annotation: hash of the configuration's `service` section, the part ABS cannot take at run time.
pub const ANNOTATION_SERVICE_HASH: &str = "asdb.aerospike.com/service-config-hash";
const CONTAINER: &str = "aerospike-backup-service";

pub fn labels(name: &str) -> BTreeMap<String, String> {
    [(LABEL_NAME.to_string(), APP_NAME.to_string()), (LABEL_INSTANCE.to_string(), name.to_string())].into()
}

fn owner(svc: &AerospikeBackupService) -> OwnerReference {
    svc.controller_owner_ref(&()).expect("a stored object has a name and uid")
}

fn meta(svc: &AerospikeBackupService) -> ObjectMeta {
    ObjectMeta {
        name: Some(svc.name_any()),
        namespace: svc.namespace(),
        labels: Some(labels(&svc.name_any())),
        owner_references: Some(vec![owner(svc)]),
        ..Default::default()
    }
}

/// The service's objects (pure): the ConfigMap with `config`, the Deployment and the Service.
pub fn desired(svc: &AerospikeBackupService, config: &Value) -> (ConfigMap, Deployment, Service) {
    let name = svc.name_any();
    let yaml = serde_saphyr::to_string(config).unwrap_or_default();
    let cm = ConfigMap {
        metadata: meta(svc),
        data: Some([(BACKUP_SERVICE_CONFIG_YAML.to_string(), yaml)].into()),
        ..Default::default()
    };
    let (port, _) = config::listen(config);
    let pod_spec = svc.spec.pod_spec.clone().unwrap_or_default();
    let container_spec = pod_spec.service_container.clone().unwrap_or_default();
    let mut mounts = vec![VolumeMount {
        name: "config".into(),
        mount_path: CONFIG_DIR.into(),
        read_only: Some(true),
        ..Default::default()
    }];
    let mut volumes = vec![Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource { name: name.clone(), ..Default::default() }),
        ..Default::default()
    }];
    for s in &svc.spec.secret_mounts {
        mounts.push(s.volume_mount.clone());
        volumes.push(Volume {
            name: s.volume_mount.name.clone(),
            secret: Some(SecretVolumeSource { secret_name: Some(s.secret_name.clone()), ..Default::default() }),
            ..Default::default()
        });
    }
    let mut pod_labels = pod_spec.metadata.as_ref().map(|m| m.labels.clone()).unwrap_or_default();
    pod_labels.extend(labels(&name));
    let mut annotations = pod_spec.metadata.as_ref().map(|m| m.annotations.clone()).unwrap_or_default();
    annotations.insert(ANNOTATION_SERVICE_HASH.into(), crate::desired::desired_hash(&config[config::SERVICE]));
    let container = Container {
        name: CONTAINER.into(),
        image: Some(svc.spec.image.clone()),
        args: Some(vec!["-c".into(), format!("{CONFIG_DIR}/{BACKUP_SERVICE_CONFIG_YAML}")]),
        ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: port, ..Default::default() }]),
        volume_mounts: Some(mounts),
        resources: container_spec.resources.or_else(|| svc.spec.resources.clone()),
        security_context: container_spec.security_context,
        ..Default::default()
    };
    let deployment = Deployment {
        metadata: meta(svc),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector { match_labels: Some(labels(&name)), ..Default::default() },
            // One service at a time: two would run the same routines twice.
            strategy: Some(DeploymentStrategy { type_: Some("Recreate".into()), ..Default::default() }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes),
                    affinity: pod_spec.scheduling.affinity.clone(),
                    tolerations: Some(pod_spec.scheduling.tolerations.clone()).filter(|t| !t.is_empty()),
                    node_selector: Some(pod_spec.scheduling.node_selector.clone()).filter(|n| !n.is_empty()),
                    service_account_name: pod_spec.service_account_name.clone(),
                    image_pull_secrets: Some(pod_spec.image_pull_secrets.clone()).filter(|s| !s.is_empty()),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let service = Service {
        metadata: meta(svc),
        spec: Some(ServiceSpec {
            type_: Some(
                svc.spec
                    .service
                    .as_ref()
                    .map(|s| s.type_.clone())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "ClusterIP".into()),
            ),
            selector: Some(labels(&name)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port,
                target_port: Some(IntOrString::Int(port)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    (cm, deployment, service)
}

/// The entries of every AerospikeBackup naming this service that is valid and not being deleted.
async fn backups_of(svc: &AerospikeBackupService, ctx: &Ctx) -> Result<Vec<Entries>, Error> {
    let mut out = Vec::new();
    let (ns, name) = (svc.namespace().unwrap_or_default(), svc.name_any());
    for scope in &ctx.scope {
        let api: Api<AerospikeBackup> = match scope {
            Some(n) => Api::namespaced(ctx.client.clone(), n),
            None => Api::all(ctx.client.clone()),
        };
        for b in api.list(&Default::default()).await? {
            let r = &b.spec.backup_service;
            if r.namespace != ns || r.name != name || b.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let Ok(e) = config::entries(&b)
                && config::check_against_service(&e, &svc.spec.config).is_empty()
            {
                out.push(e);
            }
        }
    }
    // Listing order differs between scopes; the file should not.
    out.sort_by(|a, b| a.clusters.keys().cmp(b.clusters.keys()));
    Ok(out)
}

pub(super) async fn reconcile(svc: Arc<AerospikeBackupService>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = svc.namespace().unwrap_or_default();
    let generation = svc.metadata.generation;
    let old = svc.status.clone().unwrap_or_default();
    let mut st = AerospikeBackupServiceStatus { observed_generation: generation, ..old.clone() };
    let errors = config::check_service(&svc);
    if !errors.is_empty() {
        let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        ctx.event(&*svc, EventType::Warning, "InvalidSpec", &message).await;
        st.phase = BackupServicePhase::Error;
        st.conditions = vec![condition(&old.conditions, "Degraded", true, "InvalidSpec", &message, generation)];
        write_status(&*svc, serde_json::to_value(&old)?, serde_json::to_value(&st)?, &ctx.client).await?;
        return Ok(Action::await_change());
    }
    let merged = config::merged(&svc.spec.config, &backups_of(&svc, &ctx).await?);
    let (cm, deployment, service) = desired(&svc, &merged);
    apply(&Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns), &cm, &ctx.field_manager).await?;
    apply(&Api::<Service>::namespaced(ctx.client.clone(), &ns), &service, &ctx.field_manager).await?;
    apply(&Api::<Deployment>::namespaced(ctx.client.clone(), &ns), &deployment, &ctx.field_manager).await?;
    let live = Api::<Deployment>::namespaced(ctx.client.clone(), &ns).get_opt(&svc.name_any()).await?;
    let ready = live.as_ref().is_some_and(|d| {
        let s = d.status.clone().unwrap_or_default();
        s.observed_generation >= d.metadata.generation
            && s.updated_replicas.unwrap_or(0) >= 1
            && s.ready_replicas.unwrap_or(0) >= 1
            && s.replicas.unwrap_or(0) == s.updated_replicas.unwrap_or(0)
    });
    let (port, context) = config::listen(&svc.spec.config);
    st.image = Some(svc.spec.image.clone());
    st.config = Some(svc.spec.config.clone());
    st.pod_spec = svc.spec.pod_spec.clone();
    st.resources = svc.spec.resources.clone();
    st.secret_mounts = svc.spec.secret_mounts.clone();
    st.service = svc.spec.service.clone();
    st.port = Some(port);
    st.context_path = Some(context);
    st.phase = if ready { BackupServicePhase::Completed } else { BackupServicePhase::InProgress };
    let (reason, message) = if ready {
        ("Ready", "the backup service runs the current spec".to_string())
    } else {
        ("RollingOut", "waiting for the backup service Deployment to be ready".to_string())
    };
    st.conditions = vec![
        condition(&old.conditions, "Available", ready, reason, &message, generation),
        condition(&old.conditions, "Progressing", !ready, reason, &message, generation),
    ];
    if ready {
        // The ConfigMap may have changed without a roll (only the `service` section rolls the pod): ABS re-reads
        // its file on config-apply. The mounted file can lag the ConfigMap, so read back and requeue until it runs.
        let abs = ctx.abs(&svc).await?;
        if !config::runs(&merged, &abs.config().await?) {
            abs.apply_config().await?;
            if !config::runs(&merged, &abs.config().await?) {
                write_status(&*svc, serde_json::to_value(&old)?, serde_json::to_value(&st)?, &ctx.client).await?;
                return Ok(Action::requeue(Duration::from_secs(2)));
            }
            ctx.event(&*svc, EventType::Normal, "ConfigApplied", "the backup service runs the new configuration").await;
        }
    }
    if st.phase != old.phase && st.phase == BackupServicePhase::Completed {
        ctx.event(&*svc, EventType::Normal, "Ready", "backup service Deployment ready").await;
    }
    write_status(&*svc, serde_json::to_value(&old)?, serde_json::to_value(&st)?, &ctx.client).await?;
    // The Deployment's changes trigger a reconcile; the periodic one catches a ConfigMap edited by hand.
    Ok(Action::requeue(Duration::from_secs(if ready { 300 } else { 10 })))
}

pub(super) fn error_policy(svc: Arc<AerospikeBackupService>, error: &Error, _ctx: Arc<Ctx>) -> Action {
    warn!(service = %svc.name_any(), error = %error, "backup service reconcile error");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1beta1::AerospikeBackupServiceSpec;
    use serde_json::json;

    fn svc() -> AerospikeBackupService {
        let mut s = AerospikeBackupService::new(
            "abs",
            AerospikeBackupServiceSpec {
                image: "aerospike/aerospike-backup-service:3.5.0".into(),
                config: json!({}),
                ..Default::default()
            },
        );
        s.metadata.namespace = Some("ops".into());
        s.metadata.uid = Some("u".into());
        s
    }

    #[test]
    fn only_the_service_section_rolls_the_pod() {
        let base = json!({"service": {"http": {"port": 8081}}, "storage": {"a": {}}});
        let hash = |c: &Value| {
            let (_, d, _) = desired(&svc(), c);
            d.spec.unwrap().template.metadata.unwrap().annotations.unwrap()[ANNOTATION_SERVICE_HASH].clone()
        };
        let mut more_storage = base.clone();
        more_storage["storage"]["b"] = json!({});
        assert_eq!(hash(&base), hash(&more_storage));
        let mut other_port = base.clone();
        other_port["service"]["http"]["port"] = json!(9090);
        assert_ne!(hash(&base), hash(&other_port));
    }

    #[test]
    fn objects_listen_on_the_configured_port_and_mount_the_file() {
        let (cm, d, s) = desired(&svc(), &json!({"service": {"http": {"port": 8081}}}));
        let yaml = &cm.data.unwrap()[BACKUP_SERVICE_CONFIG_YAML];
        assert!(yaml.contains("port: 8081"), "{yaml}");
        let pod = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.containers[0].ports.as_ref().unwrap()[0].container_port, 8081);
        assert_eq!(pod.containers[0].volume_mounts.as_ref().unwrap()[0].mount_path, CONFIG_DIR);
        let spec = s.spec.unwrap();
        assert_eq!(spec.ports.unwrap()[0].port, 8081);
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    }
}
