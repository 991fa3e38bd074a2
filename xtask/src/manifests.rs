//! `cargo xtask manifests`: the plain Kubernetes install under config/ (CRDs, RBAC, the operator Deployment),
//! the sample AerospikeClusters, the scorecard configuration (scorecard/), and (once) the editable CSV base.
use std::collections::BTreeMap;
use std::path::Path;

use aerospike_kubernetes_operator::api::{
    self, AccessControlSpec, AerospikeCluster, AerospikeClusterSpec, AerospikePodSpec, NetworkPolicy,
    PersistentVolumeSpec, Rack, RackConfig, ServerVolumeAttachment, StorageSpec, UserSpec, VolumeMethod, VolumePolicy,
    VolumeSource, VolumeSpec,
};
use aerospike_kubernetes_operator::{rbac, webhook};
use anyhow::{Result, bail};
use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Namespace,
    ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, Service, ServiceAccount, ServicePort,
    ServiceSpec, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::out::{self, Staged};
use crate::project::{
    self, CONTAINER, HEALTH_PORT, METRICS_PORT, OPERATOR_NAMESPACE, PACKAGE, WEBHOOK_PORT, WEBHOOK_SERVICE, paths,
};
use crate::{csv, schema_check, scorecard};

#[derive(clap::Args, Debug, Default)]
pub struct ManifestsArgs {
    /// Rewrite config/manifests/csv-base.yaml from the built-in defaults (it is otherwise kept as edited).
    #[arg(long)]
    pub reset_csv_base: bool,
}

/// The typed objects every generator starts from.
pub fn crds() -> Vec<CustomResourceDefinition> {
    api::crds()
}

/// The CRDs as JSON values, generated once per process (schema generation is the slow part of every command).
pub fn crd_values() -> Vec<Value> {
    static CRDS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    CRDS.get_or_init(|| crds().iter().map(out::value).collect()).clone()
}

/// Labels on the operator's pods, Deployment and Services.
pub fn operator_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), PACKAGE.to_string()),
        ("app.kubernetes.io/component".to_string(), "operator".to_string()),
    ])
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), PACKAGE.to_string()),
            ("app.kubernetes.io/part-of".to_string(), PACKAGE.to_string()),
        ])),
        ..Default::default()
    }
}

fn typed<K: Resource + serde::Serialize>(obj: &K) -> Value {
    let mut v = out::value(obj);
    v["apiVersion"] = K::API_VERSION.into();
    v["kind"] = K::KIND.into();
    v
}

/// Where WATCH_NAMESPACE comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchNamespaces {
    /// Plain install: empty, i.e. every namespace (the ClusterRole is bound cluster-wide).
    All,
    /// OLM install: the OperatorGroup's target namespaces, from the pod annotation `olm.targetNamespaces`.
    OlmTargetNamespaces,
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.to_string(), value: Some(value.to_string()), ..Default::default() }
}

fn env_from_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: field_path.to_string(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn probe(path: &str, initial_delay: i32, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("health".to_string()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        ..Default::default()
    }
}

fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.to_string())),
        ("memory".to_string(), Quantity(memory.to_string())),
    ])
}

/// The operator's Deployment spec: two replicas with leader election, restricted Pod Security Standard.
pub fn deployment_spec(image: &str, watch: WatchNamespaces) -> DeploymentSpec {
    let labels = operator_labels();
    use aerospike_kubernetes_operator::cli::{env as env_var, flags};
    let watch_env = match watch {
        WatchNamespaces::All => env(env_var::WATCH_NAMESPACE, ""),
        WatchNamespaces::OlmTargetNamespaces => {
            env_from_field(env_var::WATCH_NAMESPACE, "metadata.annotations['olm.targetNamespaces']")
        }
    };
    let mut args: Vec<String> = vec![
        "run".to_string(),
        format!("--{}", flags::LEADER_ELECT),
        format!("--{}=0.0.0.0:{METRICS_PORT}", flags::METRICS_ADDR),
        format!("--{}=0.0.0.0:{HEALTH_PORT}", flags::HEALTH_ADDR),
        format!("--{}=0.0.0.0:{WEBHOOK_PORT}", flags::WEBHOOK_ADDR),
        format!("--{}=json", flags::LOG_FORMAT),
    ];
    if watch == WatchNamespaces::All {
        // Plain install: no OLM to mint the certificate and register the webhooks, so the operator does both
        // (no cert-manager). Under OLM the certificate is mounted at the default --webhook-cert-dir.
        args.extend([
            format!("--{}", flags::WEBHOOK_SELF_SIGNED),
            format!("--{}", flags::WEBHOOK_REGISTER),
            format!("--{}={WEBHOOK_SERVICE}.{OPERATOR_NAMESPACE}:{WEBHOOK_PORT}", flags::WEBHOOK_SERVICE),
        ]);
    }
    let container = Container {
        name: CONTAINER.to_string(),
        image: Some(image.to_string()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        args: Some(args),
        env: Some(vec![watch_env, env_from_field(env_var::POD_NAMESPACE, "metadata.namespace")]),
        ports: Some(vec![
            ContainerPort {
                name: Some("metrics".to_string()),
                container_port: METRICS_PORT,
                protocol: Some("TCP".to_string()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("health".to_string()),
                container_port: HEALTH_PORT,
                protocol: Some("TCP".to_string()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("webhook".to_string()),
                container_port: WEBHOOK_PORT,
                protocol: Some("TCP".to_string()),
                ..Default::default()
            },
        ]),
        liveness_probe: Some(probe(aerospike_kubernetes_operator::cli::HEALTHZ_PATH, 15, 20)),
        readiness_probe: Some(probe(aerospike_kubernetes_operator::cli::READYZ_PATH, 5, 10)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities("10m", "64Mi")),
            limits: Some(quantities("400m", "512Mi")),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_string()]), ..Default::default() }),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_string(), ..Default::default() }),
            ..Default::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        ..Default::default()
    };
    DeploymentSpec {
        replicas: Some(2),
        selector: LabelSelector { match_labels: Some(labels.clone()), ..Default::default() },
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels.clone()),
                annotations: Some(BTreeMap::from([(
                    "kubectl.kubernetes.io/default-container".to_string(),
                    CONTAINER.to_string(),
                )])),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![container],
                service_account_name: Some(PACKAGE.to_string()),
                termination_grace_period_seconds: Some(10),
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(65532),
                    seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_string(), ..Default::default() }),
                    ..Default::default()
                }),
                // Two replicas on different nodes when the cluster has them.
                affinity: Some(Affinity {
                    pod_anti_affinity: Some(PodAntiAffinity {
                        preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                            weight: 100,
                            pod_affinity_term: PodAffinityTerm {
                                label_selector: Some(LabelSelector {
                                    match_labels: Some(labels),
                                    ..Default::default()
                                }),
                                topology_key: "kubernetes.io/hostname".to_string(),
                                ..Default::default()
                            },
                        }]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        },
        ..Default::default()
    }
}

/// The Service in front of the operator's metrics port (shipped in config/manager and in the bundle).
pub fn metrics_service(namespace: Option<&str>) -> Service {
    Service {
        metadata: meta(&format!("{PACKAGE}-metrics"), namespace),
        spec: Some(ServiceSpec {
            selector: Some(operator_labels()),
            ports: Some(vec![ServicePort {
                name: Some("metrics".to_string()),
                port: METRICS_PORT,
                protocol: Some("TCP".to_string()),
                target_port: Some(IntOrString::String("metrics".to_string())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The operator's PodDisruptionBudget (config/manager and the bundle): a voluntary disruption (a node drain)
/// keeps one of the two replicas running, so the admission webhooks (failurePolicy Fail) stay answered and
/// writes to AerospikeClusters, the operator's own finalizer included, are not refused meanwhile.
pub fn operator_pdb(namespace: Option<&str>) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(PACKAGE, namespace),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector { match_labels: Some(operator_labels()), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Service in front of the webhook port of a plain install (config/webhook).
pub fn webhook_service() -> Service {
    Service {
        metadata: meta(WEBHOOK_SERVICE, Some(OPERATOR_NAMESPACE)),
        spec: Some(ServiceSpec {
            selector: Some(operator_labels()),
            ports: Some(vec![ServicePort {
                name: Some("webhook".to_string()),
                port: WEBHOOK_PORT,
                protocol: Some("TCP".to_string()),
                target_port: Some(IntOrString::String("webhook".to_string())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The webhook configurations of a plain install, pointing at [`webhook_service`]. Their caBundle is left
/// empty: the operator (`--webhook-self-signed --webhook-register`) fills it and keeps it current.
fn webhook_objects() -> Vec<Value> {
    let target = webhook::register::Target::Service {
        name: WEBHOOK_SERVICE.to_string(),
        namespace: OPERATOR_NAMESPACE.to_string(),
        port: WEBHOOK_PORT,
    };
    vec![
        typed(&webhook_service()),
        typed(&webhook::register::mutating_configuration(&target, None)),
        typed(&webhook::register::validating_configuration(&target, None)),
    ]
}

/// Rules of the ClusterRole of a plain install: cluster rules plus the namespaced rules (bound cluster-wide, so
/// the operator can watch every namespace).
pub fn manager_cluster_rules() -> Vec<PolicyRule> {
    let mut rules = rbac::cluster_rules();
    rules.extend(rbac::namespaced_rules());
    rules.extend(rbac::webhook_rules().cluster);
    rules
}

fn check_no_wildcards(rules: &[PolicyRule], what: &str) -> Result<()> {
    for r in rules {
        let lists = [r.api_groups.as_deref().unwrap_or(&[]), r.resources.as_deref().unwrap_or(&[]), &r.verbs[..]];
        if lists.iter().any(|l| l.iter().any(|s| s.contains('*'))) {
            bail!("src/rbac.rs: {what} contains a wildcard rule {r:?}; list what the controller touches instead");
        }
    }
    Ok(())
}

fn rbac_objects() -> Result<Vec<(&'static str, Vec<Value>)>> {
    let cluster_rules = manager_cluster_rules();
    check_no_wildcards(&cluster_rules, "cluster_rules/namespaced_rules")?;
    check_no_wildcards(&rbac::leader_election_rules(), "leader_election_rules")?;
    check_no_wildcards(&rbac::webhook_rules().own_namespace, "webhook_rules")?;
    let subject = Subject {
        kind: "ServiceAccount".to_string(),
        name: PACKAGE.to_string(),
        namespace: Some(OPERATOR_NAMESPACE.to_string()),
        ..Default::default()
    };
    let sa = ServiceAccount { metadata: meta(PACKAGE, Some(OPERATOR_NAMESPACE)), ..Default::default() };
    let role = ClusterRole { metadata: meta(PACKAGE, None), rules: Some(cluster_rules), ..Default::default() };
    let binding = ClusterRoleBinding {
        metadata: meta(PACKAGE, None),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: PACKAGE.into(),
        },
        subjects: Some(vec![subject.clone()]),
    };
    let le_name = format!("{PACKAGE}-leader-election");
    let le_role =
        Role { metadata: meta(&le_name, Some(OPERATOR_NAMESPACE)), rules: Some(rbac::leader_election_rules()) };
    let le_binding = RoleBinding {
        metadata: meta(&le_name, Some(OPERATOR_NAMESPACE)),
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "Role".into(), name: le_name.clone() },
        subjects: Some(vec![subject.clone()]),
    };
    let wh_name = format!("{PACKAGE}-webhook");
    let wh_role =
        Role { metadata: meta(&wh_name, Some(OPERATOR_NAMESPACE)), rules: Some(rbac::webhook_rules().own_namespace) };
    let wh_binding = RoleBinding {
        metadata: meta(&wh_name, Some(OPERATOR_NAMESPACE)),
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "Role".into(), name: wh_name.clone() },
        subjects: Some(vec![subject.clone()]),
    };
    Ok(vec![
        ("service_account.yaml", vec![typed(&sa)]),
        ("webhook_role.yaml", vec![typed(&wh_role), typed(&wh_binding)]),
        ("cluster_role.yaml", vec![typed(&role)]),
        ("cluster_role_binding.yaml", vec![typed(&binding)]),
        ("leader_election_role.yaml", vec![typed(&le_role), typed(&le_binding)]),
    ])
}

fn manager_objects(version: &semver::Version) -> Vec<Value> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(OPERATOR_NAMESPACE.to_string()),
            labels: Some(BTreeMap::from([
                ("app.kubernetes.io/part-of".to_string(), PACKAGE.to_string()),
                ("pod-security.kubernetes.io/enforce".to_string(), "restricted".to_string()),
            ])),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut deployment_meta = meta(PACKAGE, Some(OPERATOR_NAMESPACE));
    deployment_meta.labels.get_or_insert_default().extend(operator_labels());
    let deployment = Deployment {
        metadata: deployment_meta,
        spec: Some(deployment_spec(&project::operator_image(version), WatchNamespaces::All)),
        ..Default::default()
    };
    vec![
        typed(&namespace),
        typed(&deployment),
        typed(&operator_pdb(Some(OPERATOR_NAMESPACE))),
        typed(&metrics_service(Some(OPERATOR_NAMESPACE))),
    ]
}

// ---------------------------------------------------------------------------------------------------------------
// Samples: AerospikeClusters in the reference's format.

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

/// The openAPIV3Schema of the storage version of the CRD serving `api_version`/`kind`.
pub fn schema_for<'a>(crds: &'a [Value], api_version: &str, kind: &str) -> Option<&'a Value> {
    let (group, version) = api_version.split_once('/')?;
    crds.iter().find(|c| c["spec"]["group"] == group && c["spec"]["names"]["kind"] == kind).and_then(|c| {
        c["spec"]["versions"].as_array()?.iter().find(|v| v["name"] == version).map(|v| &v["schema"]["openAPIV3Schema"])
    })
}

/// Checks one custom resource against the CRDs; the error names `file` and every field at fault.
pub fn check_cr(crds: &[Value], file: &str, cr: &Value) -> Result<()> {
    let api_version = cr["apiVersion"].as_str().unwrap_or_default();
    let kind = cr["kind"].as_str().unwrap_or_default();
    let Some(schema) = schema_for(crds, api_version, kind) else {
        bail!("{file}: apiVersion `{api_version}` kind `{kind}` is not served by the generated CRDs");
    };
    let errors = schema_check::check(schema, cr);
    if !errors.is_empty() {
        bail!("{file}: does not validate against the {kind} CRD:\n  {}", errors.join("\n  "));
    }
    Ok(())
}

/// Reads config/samples/*.yaml (one CR per file), each checked against the CRDs.
pub fn read_samples(root: &Path) -> Result<Vec<(String, Value)>> {
    let crds = crd_values();
    let dir = root.join(paths::CONFIG_SAMPLES);
    let mut samples = Vec::new();
    for path in out::manifest_files(&dir)? {
        let rel = format!("{}/{}", paths::CONFIG_SAMPLES, path.file_name().unwrap().to_string_lossy());
        for doc in out::read_yaml_stream(&path)? {
            check_cr(&crds, &rel, &doc)?;
            samples.push((rel.clone(), doc));
        }
    }
    if samples.is_empty() {
        bail!("{}: no sample custom resources (run `cargo xtask manifests`)", paths::CONFIG_SAMPLES);
    }
    Ok(samples)
}

/// Everything `manifests` writes except the CSV base.
pub fn generate(staged: &mut Staged) -> Result<()> {
    let version = project::workspace_version();
    let crds = crd_values();

    staged.own_dir(paths::CONFIG_CRD);
    for crd in &crds {
        let name = crd["metadata"]["name"].as_str().expect("CRDs are named");
        staged.file(format!("{}/{name}.yaml", paths::CONFIG_CRD), out::to_yaml(crd)?);
    }

    staged.own_dir(paths::CONFIG_RBAC);
    for (file, objects) in rbac_objects()? {
        staged.file(format!("{}/{file}", paths::CONFIG_RBAC), out::to_yaml_stream(&objects)?);
    }

    staged.own_dir(paths::CONFIG_MANAGER);
    staged.file(format!("{}/manager.yaml", paths::CONFIG_MANAGER), out::to_yaml_stream(&manager_objects(&version))?);

    staged.own_dir(paths::CONFIG_WEBHOOK);
    staged.file(format!("{}/webhook.yaml", paths::CONFIG_WEBHOOK), out::to_yaml_stream(&webhook_objects())?);

    staged.own_dir(paths::CONFIG_SAMPLES);
    for (file, sample) in samples() {
        let rel = format!("{}/{file}", paths::CONFIG_SAMPLES);
        let v = out::value(&sample);
        check_cr(&crds, &rel, &v)?;
        staged.file(rel, out::to_yaml(&v)?);
    }

    staged.own_dir(paths::SCORECARD);
    staged.file(format!("{}/config.yaml", paths::SCORECARD), out::to_yaml(&scorecard::config())?);
    Ok(())
}

pub fn run(root: &Path, args: &ManifestsArgs) -> Result<()> {
    let mut staged = Staged::new(root);
    generate(&mut staged)?;
    let base = root.join(paths::CSV_BASE);
    if args.reset_csv_base || !base.exists() {
        staged.file(paths::CSV_BASE, out::to_yaml(&csv::default_base())?);
    } else {
        // An edited base must still parse: fail here rather than at `bundle` time.
        csv::read_base(root)?;
    }
    let count = staged.files().len();
    staged.commit()?;
    eprintln!("manifests: wrote {count} files under config/");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aerospike_kubernetes_operator::cli::{self, RunArgs};
    use aerospike_kubernetes_operator::telemetry::LogFormat;
    use clap::{CommandFactory, FromArgMatches};

    #[derive(clap::Parser)]
    struct Binary {
        #[command(flatten)]
        run: RunArgs,
    }

    /// The Deployment's arguments and environment, read by the binary's own parser: every flag exists and means
    /// what the manifests intend, and every variable the Deployment sets is one the binary reads.
    #[test]
    fn the_deployment_speaks_the_binarys_flags() {
        for watch in [WatchNamespaces::All, WatchNamespaces::OlmTargetNamespaces] {
            let spec = deployment_spec("img", watch);
            let container = &spec.template.spec.as_ref().unwrap().containers[0];
            let args = container.args.clone().unwrap();
            assert_eq!(args[0], "run");
            let matches = Binary::command()
                .try_get_matches_from(
                    std::iter::once("aerospike-kubernetes-operator").chain(args[1..].iter().map(String::as_str)),
                )
                .unwrap_or_else(|e| panic!("{watch:?}: the binary refuses the Deployment's args {args:?}: {e}"));
            let run = Binary::from_arg_matches(&matches).unwrap().run;
            assert!(run.leader_elect);
            assert_eq!(run.metrics_addr.port(), cli::METRICS_PORT);
            assert_eq!(run.health_addr.port(), cli::HEALTH_PORT);
            assert_eq!(run.webhook.webhook_addr.port(), cli::WEBHOOK_PORT);
            assert_eq!(run.log_format, LogFormat::Json);
            let ports: Vec<i32> = container.ports.iter().flatten().map(|p| p.container_port).collect();
            assert_eq!(ports, [METRICS_PORT, HEALTH_PORT, WEBHOOK_PORT]);
            let command = Binary::command();
            let envs: Vec<String> =
                command.get_arguments().filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned())).collect();
            for e in container.env.iter().flatten() {
                assert!(
                    envs.contains(&e.name),
                    "{watch:?}: the Deployment sets {}, which the binary does not read",
                    e.name
                );
            }
        }
    }
}
