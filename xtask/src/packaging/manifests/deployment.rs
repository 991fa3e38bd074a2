//! The operator's objects in the plain install and the bundle: its Deployment (one spec for both, watching all
//! namespaces or OLM's targets), Services, PodDisruptionBudget, webhook configuration and RBAC.
use std::collections::BTreeMap;

use aerospike_kubernetes_operator::{rbac, webhook};
use anyhow::{Result, bail};
use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Namespace,
    ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::operator_labels;
use crate::out;
use crate::project::{
    self, CONTAINER, HEALTH_PORT, METRICS_PORT, OPERATOR_NAMESPACE, PACKAGE, WEBHOOK_PORT, WEBHOOK_SERVICE,
};

pub(super) fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
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

pub(super) fn typed<K: Resource + serde::Serialize>(obj: &K) -> Value {
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
pub(super) fn webhook_objects() -> Vec<Value> {
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

pub(super) fn rbac_objects() -> Result<Vec<(&'static str, Vec<Value>)>> {
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

pub(super) fn manager_objects(version: &semver::Version) -> Vec<Value> {
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
