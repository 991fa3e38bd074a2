//! The pod template of a rack: the operator's init container (pod-init), the server container, the user's
//! init containers and sidecars, volumes and scheduling; and the rack's hashes.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ObjectFieldSelector, PersistentVolumeClaim, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecurityContext,
    TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::objects::ClusterMeta;
use super::storage::{Attachments, storage_parts};
use super::*;
use crate::aerospike_conf;
use crate::api::{AerospikeCluster, AerospikeInitContainerSpec, NetworkPolicy};
use crate::resolve::{RackConfig, ResolvedRack};

/// User and group the init container runs as when it touches no data volume.
const INIT_NON_ROOT_ID: i64 = 65532;

/// A rack's template, claims and state.
pub(crate) struct BuiltRack {
    pub state: RackState,
    pub template: PodTemplateSpec,
    pub claims: Vec<PersistentVolumeClaim>,
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.to_string(), value: Some(value.into()), value_from: None }
}

fn env_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".to_string()),
                field_path: field_path.to_string(),
            }),
            ..Default::default()
        }),
    }
}

/// The init container image: the operator image, with the registry, registry namespace and name:tag parts
/// each replaced when spec.podSpec.aerospikeInitContainer sets them.
pub(crate) fn init_image(default: &str, spec: Option<&AerospikeInitContainerSpec>) -> String {
    let Some(spec) = spec else { return default.to_string() };
    let set = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
    let (registry, namespace, name) =
        (set(&spec.image_registry), set(&spec.image_registry_namespace), set(&spec.image_name_and_tag));
    if registry.is_none() && namespace.is_none() && name.is_none() {
        return default.to_string();
    }
    // Split the default `[registry/][namespace/]name[:tag]`; the first part is a registry only when it looks
    // like a host (a dot, a port or localhost), as container runtimes decide.
    let parts: Vec<&str> = default.split('/').collect();
    let is_host = |p: &str| p.contains('.') || p.contains(':') || p == "localhost";
    let (d_registry, d_namespace, d_name) = match parts.as_slice() {
        [name] => (String::new(), String::new(), name.to_string()),
        [first, name] if is_host(first) => (first.to_string(), String::new(), name.to_string()),
        [ns, name] => (String::new(), ns.to_string(), name.to_string()),
        [first, middle @ .., name] => (first.to_string(), middle.join("/"), name.to_string()),
        [] => (String::new(), String::new(), String::new()),
    };
    [registry.unwrap_or(d_registry), namespace.unwrap_or(d_namespace), name.unwrap_or(d_name)]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// The network policy with the schema's defaults (access and tlsAccess hostInternal, alternateAccess and
/// tlsAlternateAccess hostExternal) left out: pod-init applies the same defaults, and the pod template (which
/// carries the policy) stays the same whether the API server wrote them or not, so the CRD defaults restart no pod.
pub(crate) fn network_policy_without_defaults(policy: Option<&NetworkPolicy>) -> NetworkPolicy {
    let mut p = policy.cloned().unwrap_or_default();
    for (value, default) in [
        (&mut p.access, "hostInternal"),
        (&mut p.alternate_access, "hostExternal"),
        (&mut p.tls_access, "hostInternal"),
        (&mut p.tls_alternate_access, "hostExternal"),
    ] {
        if value.as_deref() == Some(default) {
            *value = None;
        }
    }
    p
}

/// The restricted-style security context of the init container. With volumes to initialise or wipe it runs as root
/// (files written by the server and the devices belong to root), still without privilege escalation and with only
/// the two capabilities needed to delete files it does not own (BLKDISCARD needs no capability, only a writable fd).
fn init_security_context(touches_volumes: bool) -> SecurityContext {
    let id = if touches_volumes { 0 } else { INIT_NON_ROOT_ID };
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: touches_volumes.then(|| vec!["DAC_OVERRIDE".to_string(), "FOWNER".to_string()]),
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(!touches_volumes),
        run_as_user: Some(id),
        run_as_group: Some(id),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_string(), localhost_profile: None }),
        ..Default::default()
    }
}

/// The server container's security context when the user gives none: no privilege escalation, the runtime's
/// seccomp profile, and of the runtime's default capabilities only those a root `asd` may use (own and write its
/// files, switch to `service.user`/`group`, bind ports); NET_RAW, MKNOD, SYS_CHROOT, AUDIT_WRITE, SETFCAP and SETPCAP
/// are dropped. It runs as the image's user (root in the official images), so a default cluster meets the Pod
/// Security `baseline` level, not `restricted` (which demands a non-root user and no added capability but
/// NET_BIND_SERVICE); spec.podSpec.aerospikeContainer.securityContext replaces it entirely.
pub(crate) fn server_security_context() -> SecurityContext {
    let caps = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE"];
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: Some(caps.iter().map(|c| c.to_string()).collect()),
        }),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_string(), localhost_profile: None }),
        ..Default::default()
    }
}

/// Ports of the server container from the rack's config. Clients reach the service ports through the node
/// (hostPort) unless several pods share a node; with host networking every port is a host port.
fn server_ports(config: &serde_json::Value, multi_pod_per_host: bool, host_network: bool) -> Vec<ContainerPort> {
    let mut ports = Vec::new();
    let mut add = |name: &str, port: Option<u16>, service: bool| {
        if let Some(p) = port {
            let p = i32::from(p);
            ports.push(ContainerPort {
                name: Some(name.to_string()),
                container_port: p,
                host_port: (host_network || (service && !multi_pod_per_host)).then_some(p),
                ..Default::default()
            });
        }
    };
    add(
        "service",
        Some(aerospike_conf::service_port(config)).filter(|_| aerospike_conf::has_plain_service_port(config)),
        true,
    );
    add("tls-service", aerospike_conf::service_tls(config).map(|(_, p)| p), true);
    add("fabric", aerospike_conf::fabric_port(config), false);
    add("tls-fabric", aerospike_conf::fabric_tls_port(config), false);
    add("heartbeat", aerospike_conf::heartbeat_port(config), false);
    add("tls-heartbeat", aerospike_conf::heartbeat_tls_port(config), false);
    ports
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn with_attachments(mut c: Container, a: Option<&Attachments>) -> Container {
    if let Some(a) = a {
        if !a.mounts.is_empty() {
            c.volume_mounts.get_or_insert_with(Vec::new).extend(a.mounts.iter().cloned());
        }
        if !a.devices.is_empty() {
            c.volume_devices.get_or_insert_with(Vec::new).extend(a.devices.iter().cloned());
        }
    }
    c
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

pub(crate) fn pod_template(
    cluster: &AerospikeCluster,
    meta: &ClusterMeta,
    plan: &ResolvedRack,
    config: &RackConfig,
    ctx: &BuildContext,
) -> Result<BuiltRack, BuildError> {
    let spec = &cluster.spec;
    let pod_spec = spec.pod_spec();
    let multi_pod = pod_spec.multi_pod_per_host();
    let host_network = pod_spec.host_network;
    let network_policy = network_policy_without_defaults(spec.aerospike_network_policy.as_ref());

    let labels = rack_labels(&meta.name, plan.id);
    let sidecar_names: Vec<String> = pod_spec.sidecars.iter().map(|c| c.name.clone()).collect();
    let init_names: Vec<String> = pod_spec.init_containers.iter().map(|c| c.name.clone()).collect();
    for (kind, names) in [("sidecars", &sidecar_names), ("initContainers", &init_names)] {
        if let Some(i) = names.iter().position(|n| n == INIT_CONTAINER_NAME || n == SERVER_CONTAINER_NAME) {
            return Err(BuildError::invalid(
                format!("spec.podSpec.{kind}[{i}].name"),
                format!("{:?} is the name of an operator container", names[i]),
            ));
        }
    }
    let storage = storage_parts(&plan.storage, &plan.storage_path, &labels, &sidecar_names, &init_names)?;

    // The operator's init container.
    let mut init_env = vec![
        env_field(ENV_POD_NAME, "metadata.name"),
        env_field(ENV_POD_NAMESPACE, "metadata.namespace"),
        env_field(ENV_POD_IP, "status.podIP"),
        env_field(ENV_HOST_IP, "status.hostIP"),
        env_field(ENV_NODE_NAME, "spec.nodeName"),
        env_field(ENV_CONF_HASH, &format!("metadata.annotations['{ANNOTATION_CONF_HASH}']")),
    ];
    if spec.enable_rack_id_override.unwrap_or(false) {
        init_env
            .push(env_field(ENV_OVERRIDE_RACK_ID, &format!("metadata.annotations['{ANNOTATION_OVERRIDE_RACK_ID}']")));
    }
    init_env.push(env(ENV_CLUSTER_NAME, &meta.name));
    init_env.push(env(ENV_RACK_ID, plan.id.to_string()));
    init_env.push(env(ENV_RACK_REVISION_INDEX, plan.revision_index.to_string()));
    for (name, port) in [
        (ENV_HEARTBEAT_PORT, aerospike_conf::heartbeat_port(&config.value)),
        (ENV_HEARTBEAT_TLS_PORT, aerospike_conf::heartbeat_tls_port(&config.value)),
        (ENV_FABRIC_PORT, aerospike_conf::fabric_port(&config.value)),
        (ENV_FABRIC_TLS_PORT, aerospike_conf::fabric_tls_port(&config.value)),
    ] {
        if let Some(p) = port {
            init_env.push(env(name, p.to_string()));
        }
    }
    init_env.push(env(ENV_HOST_NETWORK, host_network.to_string()));
    init_env.push(env(ENV_MULTI_POD_PER_HOST, multi_pod.to_string()));
    init_env
        .push(env(ENV_NETWORK_POLICY, serde_json::to_string(&network_policy).expect("the network policy serialises")));
    if !storage.init_volumes.is_empty() {
        init_env
            .push(env(ENV_INIT_VOLUMES, serde_json::to_string(&storage.init_volumes).expect("init volumes serialise")));
        init_env.push(env_field(ENV_POD_UID, "metadata.uid"));
    }
    let init_spec = pod_spec.aerospike_init_container.as_ref();
    let mut init_mounts = vec![mount(CONF_VOLUME, CONF_DIR, false), mount(TEMPLATE_VOLUME, TEMPLATE_DIR, true)];
    init_mounts.extend(storage.init.mounts.iter().cloned());
    let init_container = Container {
        name: INIT_CONTAINER_NAME.to_string(),
        image: Some(init_image(&ctx.init_image, init_spec)),
        args: Some(vec!["pod-init".to_string()]),
        env: Some(init_env),
        volume_mounts: Some(init_mounts),
        volume_devices: non_empty(storage.init.devices.clone()),
        resources: init_spec.and_then(|s| s.resources.clone()),
        security_context: Some(
            init_spec
                .and_then(|s| s.security_context.clone())
                .unwrap_or_else(|| init_security_context(!storage.init_volumes.is_empty())),
        ),
        ..Default::default()
    };

    // The server container.
    let ports = server_ports(&config.value, multi_pod, host_network);
    let probe_port = ports.first().map_or(i32::from(aerospike_conf::service_port(&config.value)), |p| p.container_port);
    let mut server_mounts = vec![mount(CONF_VOLUME, CONF_DIR, false)];
    server_mounts.extend(storage.server.mounts.iter().cloned());
    let server_spec = pod_spec.aerospike_container.clone().unwrap_or_default();
    let server = Container {
        name: SERVER_CONTAINER_NAME.to_string(),
        image: Some(spec.image.clone()),
        ports: non_empty(ports),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(probe_port), host: None }),
            initial_delay_seconds: Some(2),
            period_seconds: Some(5),
            ..Default::default()
        }),
        volume_mounts: Some(server_mounts),
        volume_devices: non_empty(storage.server.devices.clone()),
        resources: server_spec.resources,
        security_context: Some(server_spec.security_context.unwrap_or_else(server_security_context)),
        ..Default::default()
    };

    let mut init_containers = vec![init_container];
    init_containers
        .extend(pod_spec.init_containers.iter().map(|c| with_attachments(c.clone(), storage.containers.get(&c.name))));
    let mut containers = vec![server];
    containers.extend(pod_spec.sidecars.iter().map(|c| with_attachments(c.clone(), storage.containers.get(&c.name))));

    let mut volumes = vec![
        Volume {
            name: CONF_VOLUME.to_string(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        Volume {
            name: TEMPLATE_VOLUME.to_string(),
            config_map: Some(ConfigMapVolumeSource { name: plan.name.clone(), ..Default::default() }),
            ..Default::default()
        },
    ];
    volumes.extend(storage.volumes.iter().cloned());

    let user_meta = pod_spec.metadata.clone().unwrap_or_default();
    let mut pod_labels = user_meta.labels.clone();
    pod_labels.extend(labels.clone());
    let dns_policy = pod_spec
        .dns_policy
        .clone()
        .unwrap_or_else(|| if host_network { "ClusterFirstWithHostNet" } else { "ClusterFirst" }.to_string());
    let mut template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: non_empty_map(user_meta.annotations.clone()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            init_containers: Some(init_containers),
            containers,
            volumes: Some(volumes),
            automount_service_account_token: Some(false),
            // Without the block list here: it is left out of the hash (below) and set after it.
            affinity: scheduling::affinity(plan, &meta.name, &[], multi_pod),
            tolerations: non_empty(plan.scheduling.tolerations.clone()),
            node_selector: non_empty_map(plan.scheduling.node_selector.clone()),
            host_network: host_network.then_some(true),
            dns_policy: Some(dns_policy),
            dns_config: pod_spec.dns_config.clone(),
            security_context: pod_spec.security_context.clone(),
            image_pull_secrets: non_empty(pod_spec.image_pull_secrets.clone()),
            ..Default::default()
        }),
    };

    // spec.k8sNodeBlockList is not part of the hash: a change to it moves only the pods on the listed nodes (the
    // rollout restarts them, see `plan::LeaveNode`); the others keep running with the affinity they were placed by.
    let pod_spec_hash = pod_spec_hash(&template);
    if let Some(s) = template.spec.as_mut() {
        s.affinity = scheduling::affinity(plan, &meta.name, &spec.k8s_node_block_list, multi_pod);
    }
    let annotations = template.metadata.as_mut().expect("set above").annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(ANNOTATION_CONF_HASH.to_string(), config.hash.clone());
    annotations.insert(ANNOTATION_POD_SPEC_HASH.to_string(), pod_spec_hash.clone());

    Ok(BuiltRack {
        state: RackState {
            id: plan.id,
            revision: plan.revision.clone(),
            name: plan.name.clone(),
            size: plan.size,
            config: config.value.clone(),
            conf: config.conf.clone(),
            conf_hash: config.hash.clone(),
            pod_spec_hash,
            storage: plan.storage.clone(),
        },
        template,
        claims: storage.claims,
    })
}

fn non_empty_map(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

/// Hash of a pod template (before the hash annotations are added). The init container's image is left out:
/// it is the operator's own image, and an operator upgrade must not restart every Aerospike pod; pods pick up
/// the new init image whenever they restart for another reason.
pub(crate) fn pod_spec_hash(template: &PodTemplateSpec) -> String {
    let mut t = template.clone();
    if let Some(inits) = t.spec.as_mut().and_then(|s| s.init_containers.as_mut()) {
        for c in inits.iter_mut().filter(|c| c.name == INIT_CONTAINER_NAME) {
            c.image = None;
        }
    }
    desired_hash(&t)
}
