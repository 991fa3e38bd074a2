//! `aerospike-kubernetes-operator pod-init`: the operator binary running as each Aerospike pod's init container.
//!
//! It turns the rack's aerospike.conf template (from the rack ConfigMap, mounted at [`desired::TEMPLATE_DIR`])
//! into the pod's own aerospike.conf (node id, access addresses, mesh seeds, host-network addresses) and
//! initialises and wipes the pod's data volumes. Everything it needs comes from its environment (set by the
//! StatefulSet template, see the `ENV_*` constants of [`crate::desired`]) and from the mounted files: it needs no
//! Kubernetes API access, and the pod has no service-account token. Which volumes are initialised already and
//! which are dirty it learns from the operator's entry for its pod uid in the rack ConfigMap
//! ([`desired::CM_VOLUMES_KEY`], see `controller::volume_init`).
//!
//! The decisions are pure functions ([`PodEnv::from_lookup`], [`pod_context`], [`render_conf`],
//! [`volume_entry`], [`method_steps`], [`volume_action`]); [`run`] is the thin I/O shell around them.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::aerospike_conf::{self, PodContext};
use crate::api::{NetworkPolicy, VolumeMethod};
use crate::desired::pod_network::{self, PodNetwork};
use crate::desired::{self, InitVolume, PodVolumes};

pub mod warm_restart;

/// Marker file written at the root of a filesystem volume once pod-init has initialised it.
pub const INIT_MARKER: &str = ".aerospike-kubernetes-operator-initialized";

/// Command-line flags of `pod-init`; the defaults match the StatefulSet the build step creates.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct PodInitArgs {
    /// Directory where the rack ConfigMap (template and peers) is mounted.
    #[arg(long, default_value = desired::TEMPLATE_DIR)]
    pub config_map_dir: PathBuf,
    /// Where to write the pod's aerospike.conf.
    #[arg(long, default_value = desired::CONF_FILE)]
    pub output: PathBuf,
    /// How long to wait for the mounted ConfigMap to carry the template this pod was created for (its
    /// conf-hash annotation) before going on with what is mounted.
    #[arg(long, default_value_t = 120)]
    pub conf_wait_seconds: u64,
    /// How long to wait for the operator to record this pod's volumes in the mounted ConfigMap (only pods with
    /// volumes to initialise or wipe wait); then pod-init fails and the kubelet runs it again.
    #[arg(long, default_value_t = 300)]
    pub volumes_wait_seconds: u64,
}

impl Default for PodInitArgs {
    fn default() -> Self {
        PodInitArgs {
            config_map_dir: PathBuf::from(desired::TEMPLATE_DIR),
            output: PathBuf::from(desired::CONF_FILE),
            conf_wait_seconds: 120,
            volumes_wait_seconds: 300,
        }
    }
}

/// What pod-init reads from its environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodEnv {
    pub pod_name: String,
    pub namespace: String,
    pub pod_ip: String,
    pub host_ip: Option<String>,
    pub cluster_name: String,
    pub rack_id: i32,
    pub revision_index: usize,
    pub heartbeat_port: Option<u16>,
    pub heartbeat_tls_port: Option<u16>,
    pub fabric_port: Option<u16>,
    pub fabric_tls_port: Option<u16>,
    pub host_network: bool,
    pub multi_pod_per_host: bool,
    pub network_policy: NetworkPolicy,
    pub init_volumes: Vec<InitVolume>,
    /// The pod's uid (empty when not known).
    pub pod_uid: String,
    /// How many volumes to initialise or wipe at once (at least 1).
    pub cleanup_threads: usize,
    /// The pod's conf-hash annotation (empty when not known).
    pub conf_hash: String,
    pub override_rack_id: Option<i32>,
    /// The node the pod runs on (Downward API spec.nodeName).
    pub node_name: Option<String>,
    /// What the operator published about where the pod landed (rack ConfigMap key
    /// [`pod_network::CM_POD_NETWORK_KEY`]); not from the environment: [`run`] reads it from the mounted ConfigMap.
    pub network: Option<PodNetwork>,
}

impl PodEnv {
    /// Reads the environment through `get` (pure: tests pass a map). Empty values count as absent.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let opt = |key: &str| get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let req = |key: &str| opt(key).with_context(|| format!("environment variable {key} is not set"));
        let port = |key: &str| -> anyhow::Result<Option<u16>> {
            opt(key).map(|v| v.parse::<u16>().with_context(|| format!("{key}={v:?} is not a port"))).transpose()
        };
        let flag = |key: &str| opt(key).is_some_and(|v| v == "true");
        Ok(PodEnv {
            pod_name: req(desired::ENV_POD_NAME)?,
            namespace: req(desired::ENV_POD_NAMESPACE)?,
            pod_ip: opt(desired::ENV_POD_IP).unwrap_or_default(),
            host_ip: opt(desired::ENV_HOST_IP),
            cluster_name: req(desired::ENV_CLUSTER_NAME)?,
            rack_id: req(desired::ENV_RACK_ID)?
                .parse()
                .with_context(|| format!("{} is not a number", desired::ENV_RACK_ID))?,
            revision_index: match opt(desired::ENV_RACK_REVISION_INDEX) {
                Some(v) => {
                    v.parse().with_context(|| format!("{}={v:?} is not a number", desired::ENV_RACK_REVISION_INDEX))?
                }
                None => 0,
            },
            heartbeat_port: port(desired::ENV_HEARTBEAT_PORT)?,
            heartbeat_tls_port: port(desired::ENV_HEARTBEAT_TLS_PORT)?,
            fabric_port: port(desired::ENV_FABRIC_PORT)?,
            fabric_tls_port: port(desired::ENV_FABRIC_TLS_PORT)?,
            host_network: flag(desired::ENV_HOST_NETWORK),
            multi_pod_per_host: flag(desired::ENV_MULTI_POD_PER_HOST),
            network_policy: match opt(desired::ENV_NETWORK_POLICY) {
                Some(v) => serde_json::from_str(&v)
                    .with_context(|| format!("{} is not a network policy", desired::ENV_NETWORK_POLICY))?,
                None => NetworkPolicy::default(),
            },
            init_volumes: match opt(desired::ENV_INIT_VOLUMES) {
                Some(v) => serde_json::from_str(&v)
                    .with_context(|| format!("{} is not a list of volumes", desired::ENV_INIT_VOLUMES))?,
                None => Vec::new(),
            },
            pod_uid: opt(desired::ENV_POD_UID).unwrap_or_default(),
            // Read from the mounted ConfigMap by `run` (see `cleanup_threads`).
            cleanup_threads: 1,
            conf_hash: opt(desired::ENV_CONF_HASH).unwrap_or_default(),
            override_rack_id: opt(desired::ENV_OVERRIDE_RACK_ID)
                .map(|v| {
                    v.parse().with_context(|| {
                        format!("annotation {} = {v:?} is not a rack id", desired::ANNOTATION_OVERRIDE_RACK_ID)
                    })
                })
                .transpose()?,
            node_name: opt(desired::ENV_NODE_NAME),
            network: None,
        })
    }
}

/// The StatefulSet ordinal of a pod: the number after its last `-`.
pub fn ordinal(pod_name: &str) -> anyhow::Result<u32> {
    pod_name
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .with_context(|| format!("pod name {pod_name:?} does not end in -<ordinal>"))
}

/// The addresses advertised for one access kind (`access`, `alternateAccess`, `tlsAccess`, `tlsAlternateAccess`) of
/// `network_type`, and the mapped port to advertise with them (a NodePort), if any. `notes` collects what the log
/// should explain.
fn addresses(
    kind: &str,
    network_type: &str,
    custom_names: &[String],
    env: &PodEnv,
    notes: &mut Vec<String>,
) -> anyhow::Result<(Vec<String>, Option<u16>)> {
    let pod_ip = || -> anyhow::Result<Vec<String>> {
        if env.pod_ip.is_empty() {
            bail!("{} is not set (needed for {kind} addresses of type {network_type})", desired::ENV_POD_IP);
        }
        Ok(vec![env.pod_ip.clone()])
    };
    let entry = env.network.as_ref();
    let tls = kind.starts_with("tls");
    // A node address with several pods per node: the pod's own NodePort (the reference's mapped port).
    let mapped = |entry: &PodNetwork| if tls { entry.mapped_tls_port } else { entry.mapped_port };
    match network_type {
        "pod" => Ok((pod_ip()?, None)),
        "hostInternal" | "hostExternal" | "configuredIP" => {
            let shared_node = env.multi_pod_per_host && !env.host_network;
            let Some(entry) = entry else {
                if network_type == "configuredIP" {
                    bail!(
                        "{kind}: type configuredIP needs the node's {} label, published by the operator in the rack \
                         ConfigMap ({}), which has no entry for this pod",
                        if kind.contains("lternate") {
                            pod_network::LABEL_CONFIGURED_ALTERNATE_ACCESS
                        } else {
                            pod_network::LABEL_CONFIGURED_ACCESS
                        },
                        pod_network::CM_POD_NETWORK_KEY
                    );
                }
                if shared_node {
                    // Without the pod's NodePort the node's address would lead nowhere: advertise the pod address.
                    notes.push(format!(
                        "{kind}: type {network_type} with multiPodPerHost and no NodePort published for this pod: \
                         advertising the pod IP"
                    ));
                    return Ok((pod_ip()?, None));
                }
                if network_type == "hostExternal" {
                    notes.push(format!(
                        "{kind}: type hostExternal and no node facts published for this pod: advertising the node's \
                         internal IP"
                    ));
                }
                return match &env.host_ip {
                    Some(ip) => Ok((vec![ip.clone()], None)),
                    None => bail!(
                        "{} is not set (needed for {kind} addresses of type {network_type})",
                        desired::ENV_HOST_IP
                    ),
                };
            };
            let ip = match network_type {
                "hostInternal" => entry.host_internal_ip.clone(),
                "hostExternal" => entry.host_external_ip.clone(),
                _ => {
                    let (label, value) = if kind.contains("lternate") {
                        (pod_network::LABEL_CONFIGURED_ALTERNATE_ACCESS, &entry.configured_alternate_access_ip)
                    } else {
                        (pod_network::LABEL_CONFIGURED_ACCESS, &entry.configured_access_ip)
                    };
                    value.clone().with_context(|| {
                        format!("{kind}: type configuredIP: node {} has no label {label}", entry.node)
                    })?
                }
            };
            let port = if shared_node {
                Some(mapped(entry).with_context(|| {
                    format!("{kind}: type {network_type} with multiPodPerHost: the pod's Service has no NodePort")
                })?)
            } else {
                None
            };
            Ok((vec![ip], port))
        }
        "customInterface" => Ok((custom_ips(kind, custom_names, env)?, None)),
        other => bail!("{kind}: unknown network type {other:?}"),
    }
}

/// The pod's IPs on the named CNI networks (customInterface), from the network-status the operator published. A
/// name without a namespace also matches `<pod namespace>/<name>` (Multus reports namespaced names).
fn custom_ips(kind: &str, names: &[String], env: &PodEnv) -> anyhow::Result<Vec<String>> {
    let entry = env.network.as_ref().with_context(|| {
        format!(
            "{kind}: type customInterface needs the pod's network status ({}), published by the operator in the \
             rack ConfigMap ({}), which has no entry for this pod",
            pod_network::ANNOTATION_NETWORK_STATUS,
            pod_network::CM_POD_NETWORK_KEY
        )
    })?;
    let mut ips = Vec::new();
    for name in names {
        let namespaced = format!("{}/{name}", env.namespace);
        let found = entry
            .networks
            .get(name)
            .or_else(|| (!name.contains('/')).then(|| entry.networks.get(&namespaced)).flatten());
        match found {
            Some(list) if !list.is_empty() => ips.extend(list.iter().cloned()),
            Some(_) => bail!(
                "{kind}: network {name:?} has no IPs in the pod annotation {}",
                pod_network::ANNOTATION_NETWORK_STATUS
            ),
            None => bail!(
                "{kind}: network {name:?} is not in the pod annotation {} (networks there: {:?})",
                pod_network::ANNOTATION_NETWORK_STATUS,
                entry.networks.keys().collect::<Vec<_>>()
            ),
        }
    }
    if ips.is_empty() {
        bail!("{kind}: type customInterface names no network");
    }
    Ok(ips)
}

/// The per-pod values for [`aerospike_conf::finalize_for_pod`], and notes for the log. `tls`: the template has TLS
/// access addresses to fill in.
pub fn pod_context(env: &PodEnv, peers: &str, tls: bool) -> anyhow::Result<(PodContext, Vec<String>)> {
    let mut notes = Vec::new();
    let np = &env.network_policy;
    let [access_t, alternate_t, tls_access_t, tls_alternate_t] = pod_network::access_types(np);
    let fabric = |kind: &str, ty: &Option<String>, names: &[String]| -> anyhow::Result<Vec<String>> {
        match ty.as_deref() {
            None => Ok(Vec::new()),
            Some("customInterface") => custom_ips(kind, names, env),
            Some(other) => bail!("{kind}: network type {other:?} is not allowed (only customInterface)"),
        }
    };
    let fabric_addresses = fabric("fabric", &np.fabric, &np.custom_fabric_network_names)?;
    let tls_fabric_addresses = fabric("tlsFabric", &np.tls_fabric, &np.custom_tls_fabric_network_names)?;
    let (access_ips, access_port) = addresses("access", &access_t, &np.custom_access_network_names, env, &mut notes)?;
    let (alternate_access_ips, alternate_access_port) =
        addresses("alternateAccess", &alternate_t, &np.custom_alternate_access_network_names, env, &mut notes)?;
    let ((tls_access_ips, tls_access_port), (tls_alternate_access_ips, tls_alternate_access_port)) = if tls {
        (
            addresses("tlsAccess", &tls_access_t, &np.custom_tls_access_network_names, env, &mut notes)?,
            addresses(
                "tlsAlternateAccess",
                &tls_alternate_t,
                &np.custom_tls_alternate_access_network_names,
                env,
                &mut notes,
            )?,
        )
    } else {
        Default::default()
    };
    let ctx = PodContext {
        node_id: aerospike_conf::node_id(env.rack_id, env.revision_index, ordinal(&env.pod_name)?),
        pod_ip: env.pod_ip.clone(),
        host_ip: env.host_ip.clone(),
        access_ips,
        alternate_access_ips,
        tls_access_ips,
        tls_alternate_access_ips,
        access_port,
        alternate_access_port,
        tls_access_port,
        tls_alternate_access_port,
        fabric_addresses,
        tls_fabric_addresses,
        self_fqdn: desired::pod_fqdn(&env.pod_name, &env.cluster_name, &env.namespace),
        peers: peers.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect(),
        heartbeat_port: env.heartbeat_port,
        tls_heartbeat_port: env.heartbeat_tls_port,
        fabric_port: env.fabric_port,
        tls_fabric_port: env.fabric_tls_port,
        host_network: env.host_network,
        rack_id_override: env.override_rack_id,
    };
    Ok((ctx, notes))
}

/// The pure core of pod-init: the rack template, the peers file and the environment in, the pod's
/// aerospike.conf out (plus notes for the log).
pub fn render_conf(template: &str, peers: &str, env: &PodEnv) -> anyhow::Result<(String, Vec<String>)> {
    let tls = template.contains(aerospike_conf::TLS_ACCESS_ADDRESS_PLACEHOLDER)
        || template.contains(aerospike_conf::TLS_ALTERNATE_ACCESS_ADDRESS_PLACEHOLDER);
    let (ctx, notes) = pod_context(env, peers, tls)?;
    Ok((aerospike_conf::finalize_for_pod(template, &ctx), notes))
}

/// This pod's entry in the published [`pod_network::CM_POD_NETWORK_KEY`] text, if it is there and about the node the
/// pod runs on (an entry left from an earlier incarnation on another node does not count).
pub fn network_entry(text: &str, env: &PodEnv) -> Option<PodNetwork> {
    let entry = pod_network::parse(text).remove(&env.pod_name)?;
    match &env.node_name {
        Some(node) if *node != entry.node => None,
        _ => Some(entry),
    }
}

/// Whether the mounted template is the one the pod was created for (its conf-hash annotation). A ConfigMap
/// volume lags behind the API for a while after an update; the pod must not start with the old template.
pub fn template_is_current(template: &str, env: &PodEnv) -> bool {
    env.conf_hash.is_empty() || aerospike_conf::config_hash(template) == env.conf_hash
}

/// The header region `headerCleanup` zeroes: the first 8 MiB of the device, as the reference's init image does
/// (where Aerospike keeps its device header).
pub const HEADER_BYTES: u64 = 8 << 20;

/// One operation on a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Delete the contents of the mounted directory (`deleteFiles`).
    DeleteFiles,
    /// Write zeroes over the whole device (`dd`).
    ZeroDevice,
    /// Discard the whole device with the BLKDISCARD ioctl (`blkdiscard`).
    Discard,
    /// Write zeroes over the first [`HEADER_BYTES`] (`headerCleanup`).
    ZeroHeader,
}

/// The steps of an init or wipe method on a volume of the given mode (pure); an error for a method that does not
/// fit the mode (the webhook refuses those, this guards a hand-made environment).
pub fn method_steps(method: VolumeMethod, block: bool) -> Result<Vec<Step>, String> {
    let steps = match (method, block) {
        (VolumeMethod::None, _) => vec![],
        (VolumeMethod::DeleteFiles, false) => vec![Step::DeleteFiles],
        (VolumeMethod::Dd, true) => vec![Step::ZeroDevice],
        (VolumeMethod::Blkdiscard, true) => vec![Step::Discard],
        (VolumeMethod::HeaderCleanup, true) => vec![Step::ZeroHeader],
        // Discarded blocks need not read back as zeroes: the header is zeroed after the discard.
        (VolumeMethod::BlkdiscardWithHeaderCleanup, true) => vec![Step::Discard, Step::ZeroHeader],
        (m, block) => {
            return Err(format!(
                "{} does not apply to a {} volume",
                m.as_str(),
                if block { "Block" } else { "Filesystem" }
            ));
        }
    };
    Ok(steps)
}

/// What to do with one volume (pure result of [`volume_action`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeAction {
    /// Wipe steps (the volume is dirty), run first.
    pub wipe: Vec<Step>,
    /// Init steps (the volume is not initialised on this claim yet).
    pub init: Vec<Step>,
    /// The volume was initialised before (nothing to initialise).
    pub already_initialized: bool,
}

impl VolumeAction {
    pub fn is_empty(&self) -> bool {
        self.wipe.is_empty() && self.init.is_empty()
    }
}

/// Decides what to do with a volume (pure). `entry` is the operator's record of this pod incarnation's volumes;
/// `marker_exists`: a filesystem volume carries [`INIT_MARKER`] (written on the claim itself, so it also counts when
/// the status was lost; a replaced claim has none).
pub fn volume_action(volume: &InitVolume, entry: &PodVolumes, marker_exists: bool) -> Result<VolumeAction, String> {
    let initialized = entry.initialized.contains(&volume.name) || (!volume.block && marker_exists);
    let dirty = entry.dirty.contains(&volume.name);
    let mut action = VolumeAction { already_initialized: initialized, ..Default::default() };
    if dirty {
        let wipe = volume.wipe.ok_or_else(|| format!("volume {:?} is dirty but has no wipe method", volume.name))?;
        action.wipe = method_steps(wipe, volume.block)?;
    }
    if !initialized {
        action.init = method_steps(volume.method, volume.block)?;
    }
    Ok(action)
}

/// Whether the entry's split of dirty volumes (wipe now, keep dirty) was made for the config in the ConfigMap
/// (pure). A split made for another config could wipe a device no namespace uses yet, or leave one a namespace now
/// uses unwiped: pod-init stops instead, the pod is replaced as failed, and its new entry is made for the current
/// config.
pub fn entry_fits_template(entry: &PodVolumes, template: &str) -> Result<(), String> {
    match &entry.conf_hash {
        Some(hash) if *hash != aerospike_conf::config_hash(template) => Err(format!(
            "the dirty volumes of pod uid {} (wipe {:?}, keep {:?}) were decided for config {hash}, but the rack \
             ConfigMap now holds config {}: stopping before any volume is touched (the operator replaces this pod)",
            entry.uid,
            entry.dirty,
            entry.keep_dirty,
            aerospike_conf::config_hash(template)
        )),
        _ => Ok(()),
    }
}

/// Entry point of `aerospike-kubernetes-operator pod-init`.
pub fn run(args: PodInitArgs) -> anyhow::Result<()> {
    let mut env = PodEnv::from_lookup(|k| std::env::var(k).ok())?;
    tracing::info!(pod = %env.pod_name, rack = env.rack_id, "pod-init starting");

    if !env.init_volumes.is_empty() {
        let threads = std::fs::read_to_string(args.config_map_dir.join(desired::CM_CLEANUP_THREADS_KEY)).ok();
        env.cleanup_threads = cleanup_threads(threads.as_deref());
        let entry = wait_for_volume_entry(&args, &env)?;
        let template_path = args.config_map_dir.join(desired::CM_TEMPLATE_KEY);
        let template = std::fs::read_to_string(&template_path).unwrap_or_default();
        entry_fits_template(&entry, &template).map_err(|e| anyhow::anyhow!(e))?;
        init_volumes(&env, &entry)?;
    }

    let template_path = args.config_map_dir.join(desired::CM_TEMPLATE_KEY);
    let peers_path = args.config_map_dir.join(desired::CM_PEERS_KEY);
    let deadline = Instant::now() + Duration::from_secs(args.conf_wait_seconds);
    let template = loop {
        let template =
            std::fs::read_to_string(&template_path).with_context(|| format!("reading {}", template_path.display()))?;
        if template_is_current(&template, &env) {
            break template;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                expected = %env.conf_hash,
                found = %aerospike_conf::config_hash(&template),
                "the mounted template is still not the one this pod was created for; using it anyway"
            );
            break template;
        }
        tracing::info!(expected = %env.conf_hash, "waiting for the rack ConfigMap volume to be updated");
        std::thread::sleep(Duration::from_secs(2));
    };
    let peers = std::fs::read_to_string(&peers_path).with_context(|| format!("reading {}", peers_path.display()))?;

    // Where the pod landed (node addresses, NodePorts, CNI networks): published by the operator once the pod is
    // scheduled, so it may take a moment (and a ConfigMap volume refresh) to arrive.
    if pod_network::entry_needed(&env.network_policy) {
        let path = args.config_map_dir.join(pod_network::CM_POD_NETWORK_KEY);
        env.network = loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(entry) = network_entry(&text, &env) {
                break Some(entry);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} has no entry for pod {} on node {} after {} s: the operator publishes it once the pod is \
                     scheduled (is the operator running?)",
                    path.display(),
                    env.pod_name,
                    env.node_name.as_deref().unwrap_or("?"),
                    args.conf_wait_seconds
                );
            }
            tracing::info!(path = %path.display(), "waiting for the operator to publish this pod's network facts");
            std::thread::sleep(Duration::from_secs(2));
        };
    }

    let (text, notes) = render_conf(&template, &peers, &env)?;
    for note in notes {
        tracing::warn!("{note}");
    }
    write_atomically(&args.output, &text)?;
    // For a later warm restart (the operator falls back to a pod restart without these).
    let snapshot = warm_restart::Snapshot::capture(|k| std::env::var(k).ok(), env.network.clone());
    if let Some(dir) = args.output.parent()
        && let Err(e) = warm_restart::prepare(dir, &snapshot)
    {
        tracing::warn!("preparing for warm restarts: {e:#}; the operator will restart this pod instead");
    }
    tracing::info!(path = %args.output.display(), node_id = %aerospike_conf::node_id(env.rack_id, env.revision_index, ordinal(&env.pod_name)?), "wrote aerospike.conf");
    Ok(())
}

/// The mounted [`desired::CM_CLEANUP_THREADS_KEY`] (pure): at least 1, and 1 when absent or not a number.
pub fn cleanup_threads(text: Option<&str>) -> usize {
    text.and_then(|t| t.trim().parse::<usize>().ok()).unwrap_or(1).max(1)
}

/// This pod's entry of the mounted [`desired::CM_VOLUMES_KEY`] (pure): `None` until the operator has written one
/// for this pod uid.
pub fn volume_entry(text: &str, env: &PodEnv) -> anyhow::Result<Option<PodVolumes>> {
    if env.pod_uid.is_empty() {
        bail!("{} is not set: pod-init cannot tell which volumes this pod initialised already", desired::ENV_POD_UID);
    }
    let all: std::collections::BTreeMap<String, PodVolumes> =
        serde_json::from_str(text).with_context(|| format!("{} is not a map of pods", desired::CM_VOLUMES_KEY))?;
    Ok(all.get(&env.pod_name).filter(|e| e.uid == env.pod_uid).cloned())
}

/// Waits for the operator's entry for this pod uid: without it pod-init cannot know what is initialised, and a
/// guess either leaves stale data or wipes live data. The operator writes it once it sees the pod.
fn wait_for_volume_entry(args: &PodInitArgs, env: &PodEnv) -> anyhow::Result<PodVolumes> {
    let path = args.config_map_dir.join(desired::CM_VOLUMES_KEY);
    let deadline = Instant::now() + Duration::from_secs(args.volumes_wait_seconds);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| "{}".to_string());
        if let Some(entry) = volume_entry(&text, env)? {
            return Ok(entry);
        }
        if Instant::now() >= deadline {
            bail!(
                "the operator has not recorded the volumes of pod {} (uid {}) in {} after {}s; is the operator \
                 running? pod-init stops here (nothing initialised) and the kubelet runs it again",
                env.pod_name,
                env.pod_uid,
                path.display(),
                args.volumes_wait_seconds
            );
        }
        tracing::info!(uid = %env.pod_uid, "waiting for the operator to record this pod's volumes");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Initialises and wipes the volumes, `env.cleanup_threads` at a time. Every volume is tried; the errors are
/// reported together, each naming its volume.
fn init_volumes(env: &PodEnv, entry: &PodVolumes) -> anyhow::Result<()> {
    let mut work = Vec::new();
    for volume in &env.init_volumes {
        let marker = Path::new(&volume.path).join(INIT_MARKER);
        let action = volume_action(volume, entry, !volume.block && marker.exists())
            .map_err(|e| anyhow::anyhow!("volume {}: {e}", volume.name))?;
        if action.is_empty() {
            if action.already_initialized {
                tracing::info!(volume = %volume.name, "volume already initialised");
            }
            continue;
        }
        work.push((volume, action));
    }
    let queue = std::sync::Mutex::new(work.into_iter());
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..env.cleanup_threads.max(1) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((volume, action)) = next else { break };
                    if let Err(e) = apply_action(volume, &action) {
                        errors.lock().unwrap_or_else(|e| e.into_inner()).push(format!("volume {}: {e:#}", volume.name));
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }
    Ok(())
}

/// Runs the wipe then the init steps of one volume; a filesystem volume gets its marker once initialised.
fn apply_action(volume: &InitVolume, action: &VolumeAction) -> anyhow::Result<()> {
    let path = Path::new(&volume.path);
    for (purpose, steps) in [("wipe", &action.wipe), ("init", &action.init)] {
        for step in steps {
            let started = Instant::now();
            tracing::info!(volume = %volume.name, path = %path.display(), purpose, ?step, "starting");
            run_step(*step, path)?;
            tracing::info!(volume = %volume.name, purpose, ?step, seconds = started.elapsed().as_secs_f64(), "done");
        }
    }
    if !volume.block && !action.init.is_empty() {
        let marker = path.join(INIT_MARKER);
        std::fs::write(&marker, "initialized by aerospike-kubernetes-operator pod-init\n")
            .with_context(|| format!("writing {}", marker.display()))?;
    }
    Ok(())
}

/// One step on `path` (a mounted directory for [`Step::DeleteFiles`], else a device or, in tests, a file).
pub fn run_step(step: Step, path: &Path) -> anyhow::Result<()> {
    match step {
        Step::DeleteFiles => delete_contents(path),
        Step::ZeroDevice => zero(path, None),
        Step::ZeroHeader => zero(path, Some(HEADER_BYTES)),
        Step::Discard => discard(path),
    }
}

/// The size of a device or file: seeking to its end works for both.
fn device_size(f: &mut std::fs::File) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let size = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    Ok(size)
}

/// Writes zeroes over the first `limit` bytes (all of it when `None`, or when smaller), then syncs.
fn zero(path: &Path, limit: Option<u64>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f =
        std::fs::OpenOptions::new().write(true).open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = device_size(&mut f).with_context(|| format!("sizing {}", path.display()))?;
    let end = limit.map_or(size, |l| l.min(size));
    let chunk = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < end {
        let n = (end - done).min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).with_context(|| format!("zeroing {} at byte {done}", path.display()))?;
        done += n as u64;
    }
    f.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

/// BLKDISCARD over the whole device. A device that cannot discard (or a file) is an error naming why: skipping
/// would start the server on data the method promised to remove.
fn discard(path: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    // _IO(0x12, 119) from linux/fs.h.
    const BLKDISCARD: libc::c_ulong = 0x1277;
    let mut f =
        std::fs::OpenOptions::new().write(true).open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = device_size(&mut f).with_context(|| format!("sizing {}", path.display()))?;
    let range: [u64; 2] = [0, size];
    // SAFETY: BLKDISCARD reads two u64 (offset, length) from the pointer, which outlives the call; the fd is open.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), BLKDISCARD as _, range.as_ptr()) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        bail!(
            "{} cannot be discarded (BLKDISCARD: {err}); this storage does not support blkdiscard: use the dd or \
             headerCleanup method for this volume",
            path.display()
        );
    }
    Ok(())
}

/// Deletes everything inside `dir` (not `dir` itself, and not the filesystem's lost+found).
fn delete_contents(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name() == "lost+found" {
            continue;
        }
        let path = entry.path();
        let result =
            if entry.file_type()?.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        result.with_context(|| format!("deleting {}", path.display()))?;
    }
    Ok(())
}

/// Writes `path` through a temporary file in the same directory and a rename, so the server never reads a
/// half-written file.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().context("the output path has no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use std::collections::HashMap;

    const TEMPLATE: &str = "\nnamespace test {\n    rack-id    0\n    replication-factor    2\n}\n\nnetwork {\n\n    fabric {\n        port    3001\n    }\n\n    heartbeat {\n        mode    mesh\n        port    3002\n    }\n\n    service {\n        access-address    <access-address>\n        access-port    3000\n        alternate-access-address    <alternate-access-address>\n        alternate-access-port    3000\n        port    3000\n    }\n}\n\nservice {\n    cluster-name    aerocluster\n    node-id    ENV_NODE_ID\n}\n";

    const PEERS: &str = "aerocluster-0-0.aerocluster.aerospike\naerocluster-0-1.aerocluster.aerospike\naerocluster-0-2.aerocluster.aerospike";

    fn env_map(pod: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = [
            (desired::ENV_POD_NAME, pod),
            (desired::ENV_POD_NAMESPACE, "aerospike"),
            (desired::ENV_POD_IP, "10.0.0.11"),
            (desired::ENV_HOST_IP, "192.168.0.5"),
            (desired::ENV_CLUSTER_NAME, "aerocluster"),
            (desired::ENV_RACK_ID, "0"),
            (desired::ENV_RACK_REVISION_INDEX, "0"),
            (desired::ENV_HEARTBEAT_PORT, "3002"),
            (desired::ENV_FABRIC_PORT, "3001"),
            (desired::ENV_HOST_NETWORK, "false"),
            (desired::ENV_MULTI_POD_PER_HOST, "false"),
            (desired::ENV_NETWORK_POLICY, "{}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn env(pod: &str, extra: &[(&str, &str)]) -> PodEnv {
        let m = env_map(pod, extra);
        PodEnv::from_lookup(|k| m.get(k).cloned()).unwrap()
    }

    #[test]
    fn three_pod_cluster_each_pod_seeds_the_others() {
        for (i, pod) in ["aerocluster-0-0", "aerocluster-0-1", "aerocluster-0-2"].iter().enumerate() {
            let (text, notes) = render_conf(TEMPLATE, PEERS, &env(pod, &[])).unwrap();
            let seeds: Vec<String> = (0..3)
                .filter(|j| *j != i)
                .map(|j| format!("        mesh-seed-address-port    aerocluster-0-{j}.aerocluster.aerospike 3002\n"))
                .collect();
            let expected = format!(
                "\nnamespace test {{\n    rack-id    0\n    replication-factor    2\n}}\n\nnetwork {{\n\n    fabric {{\n        port    3001\n    }}\n\n    heartbeat {{\n{}        mode    mesh\n        port    3002\n    }}\n\n    service {{\n        access-address    192.168.0.5\n        access-port    3000\n        alternate-access-address    192.168.0.5\n        alternate-access-port    3000\n        port    3000\n    }}\n}}\n\nservice {{\n    cluster-name    aerocluster\n    node-id    0a{i}\n}}\n",
                seeds.concat()
            );
            assert_eq!(text, expected, "pod {pod}");
            // hostExternal (the alternate access default) is explained in the log.
            assert_eq!(notes.len(), 1, "{notes:?}");
            assert!(notes[0].contains("hostExternal"));
        }
    }

    #[test]
    fn pod_network_type_and_revision_infix() {
        let e = env(
            "aerocluster-2-v2-1",
            &[
                (desired::ENV_RACK_ID, "2"),
                (desired::ENV_RACK_REVISION_INDEX, "1"),
                (desired::ENV_NETWORK_POLICY, r#"{"access":"pod","alternateAccess":"pod"}"#),
            ],
        );
        let (text, notes) = render_conf(TEMPLATE, PEERS, &e).unwrap();
        assert!(text.contains("        access-address    10.0.0.11\n"), "{text}");
        assert!(text.contains("        alternate-access-address    10.0.0.11\n"));
        assert!(text.contains("    node-id    2b1\n"));
        assert_eq!(text.matches("mesh-seed-address-port").count(), 3, "not a member of the peers: seeds all");
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn multi_pod_per_host_advertises_the_pod_ip() {
        let e = env("aerocluster-0-0", &[(desired::ENV_MULTI_POD_PER_HOST, "true")]);
        let (ctx, notes) = pod_context(&e, PEERS, false).unwrap();
        assert_eq!(ctx.access_ips, vec!["10.0.0.11".to_string()]);
        assert_eq!(ctx.alternate_access_ips, vec!["10.0.0.11".to_string()]);
        assert!(notes.iter().any(|n| n.contains("multiPodPerHost")));
    }

    fn facts() -> PodNetwork {
        PodNetwork {
            node: "node-a".into(),
            host_internal_ip: "192.168.0.5".into(),
            host_external_ip: "34.0.0.5".into(),
            configured_access_ip: Some("198.51.100.1".into()),
            configured_alternate_access_ip: Some("198.51.100.2".into()),
            mapped_port: Some(31000),
            mapped_tls_port: Some(31001),
            networks: [
                ("aerospike/net-a".to_string(), vec!["172.16.0.9".to_string()]),
                ("other/net-b".to_string(), vec!["172.17.0.9".to_string(), "172.17.0.10".to_string()]),
            ]
            .into(),
        }
    }

    #[test]
    fn host_external_advertises_the_nodes_external_ip() {
        let mut e = env("aerocluster-0-0", &[]);
        e.network = Some(facts());
        let (text, notes) = render_conf(TEMPLATE, PEERS, &e).unwrap();
        assert!(text.contains("        access-address    192.168.0.5\n        access-port    3000\n"), "{text}");
        assert!(
            text.contains("        alternate-access-address    34.0.0.5\n        alternate-access-port    3000\n"),
            "{text}"
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn configured_ip_from_the_node_labels() {
        let mut e = env(
            "aerocluster-0-0",
            &[(desired::ENV_NETWORK_POLICY, r#"{"access":"configuredIP","alternateAccess":"configuredIP"}"#)],
        );
        e.network = Some(facts());
        let (ctx, _) = pod_context(&e, PEERS, false).unwrap();
        assert_eq!(ctx.access_ips, ["198.51.100.1"]);
        assert_eq!(ctx.alternate_access_ips, ["198.51.100.2"]);
        e.network.as_mut().unwrap().configured_alternate_access_ip = None;
        let err = pod_context(&e, PEERS, false).unwrap_err().to_string();
        assert!(err.contains("node node-a has no label aerospike.com/configured-alternate-access-address"), "{err}");
    }

    #[test]
    fn multi_pod_per_host_advertises_the_node_port() {
        let mut e = env(
            "aerocluster-0-0",
            &[(desired::ENV_MULTI_POD_PER_HOST, "true"), (desired::ENV_NETWORK_POLICY, r#"{"alternateAccess":"pod"}"#)],
        );
        e.network = Some(facts());
        let (text, notes) = render_conf(TEMPLATE, PEERS, &e).unwrap();
        assert!(text.contains("        access-address    192.168.0.5\n        access-port    31000\n"), "{text}");
        // The pod-typed alternate access keeps the pod address and the server's own port.
        assert!(
            text.contains("        alternate-access-address    10.0.0.11\n        alternate-access-port    3000\n"),
            "{text}"
        );
        assert!(notes.is_empty(), "{notes:?}");
        let (ctx, _) = pod_context(&e, PEERS, true).unwrap();
        assert_eq!(ctx.tls_access_port, Some(31001));
    }

    #[test]
    fn custom_interfaces_by_network_name() {
        let policy = r#"{"access":"customInterface","customAccessNetworkNames":["net-a"],
            "alternateAccess":"customInterface","customAlternateAccessNetworkNames":["other/net-b"],
            "fabric":"customInterface","customFabricNetworkNames":["net-a"]}"#;
        let mut e = env("aerocluster-0-0", &[(desired::ENV_NETWORK_POLICY, policy)]);
        e.network = Some(facts());
        let (ctx, _) = pod_context(&e, PEERS, false).unwrap();
        assert_eq!(ctx.access_ips, ["172.16.0.9"], "a bare name matches <pod namespace>/<name>");
        assert_eq!(ctx.alternate_access_ips, ["172.17.0.9", "172.17.0.10"]);
        assert_eq!(ctx.fabric_addresses, ["172.16.0.9"]);
        e.network_policy.custom_access_network_names = vec!["missing".into()];
        let err = pod_context(&e, PEERS, false).unwrap_err().to_string();
        assert!(
            err.contains("network \"missing\" is not in the pod annotation k8s.v1.cni.cncf.io/network-status"),
            "{err}"
        );
    }

    #[test]
    fn network_entry_must_be_about_this_node() {
        let mut e = env("aerocluster-0-0", &[(desired::ENV_NODE_NAME, "node-a")]);
        let text = pod_network::render(&[("aerocluster-0-0".to_string(), facts())].into());
        assert_eq!(network_entry(&text, &e), Some(facts()));
        e.node_name = Some("node-b".into());
        assert_eq!(network_entry(&text, &e), None, "an entry from an earlier node does not count");
        e.pod_name = "aerocluster-0-1".into();
        assert_eq!(network_entry(&text, &e), None);
        assert_eq!(network_entry("", &e), None);
    }

    #[test]
    fn host_network_tls_heartbeat_and_rack_override() {
        let e = env(
            "aerocluster-1-0",
            &[
                (desired::ENV_HOST_NETWORK, "true"),
                (desired::ENV_HEARTBEAT_PORT, ""),
                (desired::ENV_HEARTBEAT_TLS_PORT, "3012"),
                (desired::ENV_OVERRIDE_RACK_ID, "7"),
                (desired::ENV_RACK_ID, "1"),
            ],
        );
        let (ctx, _) =
            pod_context(&e, "aerocluster-1-0.aerocluster.aerospike\naerocluster-1-1.aerocluster.aerospike\n", true)
                .unwrap();
        assert_eq!(ctx.node_id, "1a0");
        assert_eq!(ctx.heartbeat_port, None);
        assert_eq!(ctx.tls_heartbeat_port, Some(3012));
        assert!(ctx.host_network);
        assert_eq!(ctx.rack_id_override, Some(7));
        assert_eq!(ctx.self_fqdn, "aerocluster-1-0.aerocluster.aerospike");
        assert_eq!(ctx.peers.len(), 2);
        let text = aerospike_conf::finalize_for_pod("    heartbeat {\n    }\n    rack-id    1\n", &ctx);
        assert_eq!(
            text,
            "    heartbeat {\n        tls-address    10.0.0.11\n        tls-mesh-seed-address-port    aerocluster-1-1.aerocluster.aerospike 3012\n    }\n    rack-id    7\n"
        );
    }

    #[test]
    fn environment_errors_are_clear() {
        let mut m = env_map("aerocluster-0-0", &[]);
        m.remove(desired::ENV_POD_NAME);
        let err = PodEnv::from_lookup(|k| m.get(k).cloned()).unwrap_err();
        assert!(err.to_string().contains("POD_NAME"), "{err}");

        let e = env("no-ordinal-x", &[]);
        assert!(render_conf(TEMPLATE, PEERS, &e).unwrap_err().to_string().contains("ordinal"));

        // configuredIP without the operator's facts names the node label it needs.
        let e = env("aerocluster-0-0", &[(desired::ENV_NETWORK_POLICY, r#"{"access":"configuredIP"}"#)]);
        let err = render_conf(TEMPLATE, PEERS, &e).unwrap_err().to_string();
        assert!(err.contains(pod_network::LABEL_CONFIGURED_ACCESS), "{err}");

        let m = env_map("aerocluster-0-0", &[(desired::ENV_HEARTBEAT_PORT, "x")]);
        assert!(PodEnv::from_lookup(|k| m.get(k).cloned()).is_err());
    }

    #[test]
    fn template_hash_check() {
        let mut e = env("aerocluster-0-0", &[]);
        assert!(template_is_current(TEMPLATE, &e), "no expectation: any template");
        e.conf_hash = aerospike_conf::config_hash(TEMPLATE);
        assert!(template_is_current(TEMPLATE, &e));
        assert!(!template_is_current("service {\n}\n", &e));
    }

    fn vol(name: &str, path: &Path, block: bool, method: VolumeMethod, wipe: Option<VolumeMethod>) -> InitVolume {
        InitVolume { name: name.into(), path: path.to_string_lossy().into_owned(), block, method, wipe }
    }

    fn entry(initialized: &[&str], dirty: &[&str]) -> PodVolumes {
        PodVolumes {
            uid: "u1".into(),
            initialized: initialized.iter().map(|s| s.to_string()).collect(),
            dirty: dirty.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// An entry whose dirty split was made for one config is not acted on with another in the ConfigMap.
    #[test]
    fn an_entry_with_dirty_volumes_must_fit_the_template() {
        let mut e = entry(&[], &["ns"]);
        assert_eq!(entry_fits_template(&e, TEMPLATE), Ok(()), "no config named: nothing to compare");
        e.conf_hash = Some(aerospike_conf::config_hash(TEMPLATE));
        assert_eq!(entry_fits_template(&e, TEMPLATE), Ok(()));
        let other = "service {\n}\n";
        let err = entry_fits_template(&e, other).unwrap_err();
        assert!(err.contains("stopping before any volume is touched") && err.contains("wipe [\"ns\"]"), "{err}");
    }

    #[test]
    fn every_method_maps_to_its_steps() {
        use Step::*;
        let cases = [
            (VolumeMethod::None, true, vec![]),
            (VolumeMethod::None, false, vec![]),
            (VolumeMethod::DeleteFiles, false, vec![DeleteFiles]),
            (VolumeMethod::Dd, true, vec![ZeroDevice]),
            (VolumeMethod::Blkdiscard, true, vec![Discard]),
            (VolumeMethod::HeaderCleanup, true, vec![ZeroHeader]),
            (VolumeMethod::BlkdiscardWithHeaderCleanup, true, vec![Discard, ZeroHeader]),
        ];
        for (method, block, steps) in cases {
            assert_eq!(method_steps(method, block), Ok(steps), "{method:?}");
        }
        assert!(method_steps(VolumeMethod::Dd, false).unwrap_err().contains("dd does not apply to a Filesystem"));
        assert!(method_steps(VolumeMethod::DeleteFiles, true).is_err());
    }

    #[test]
    fn volume_actions() {
        let dev = vol("ns", Path::new("/v/ns"), true, VolumeMethod::Dd, Some(VolumeMethod::Blkdiscard));
        // New claim: init. Initialised: nothing. Dirty: wipe (and init too when not initialised).
        assert_eq!(volume_action(&dev, &entry(&[], &[]), false).unwrap().init, vec![Step::ZeroDevice]);
        let done = volume_action(&dev, &entry(&["ns"], &[]), false).unwrap();
        assert!(done.is_empty() && done.already_initialized);
        let dirty = volume_action(&dev, &entry(&["ns"], &["ns"]), false).unwrap();
        assert_eq!((dirty.wipe, dirty.init), (vec![Step::Discard], vec![]));
        let both = volume_action(&dev, &entry(&[], &["ns"]), false).unwrap();
        assert_eq!((both.wipe, both.init), (vec![Step::Discard], vec![Step::ZeroDevice]));
        // A filesystem volume: the marker on the claim counts as initialised too.
        let fs = vol("workdir", Path::new("/v/w"), false, VolumeMethod::DeleteFiles, None);
        assert_eq!(volume_action(&fs, &entry(&[], &[]), false).unwrap().init, vec![Step::DeleteFiles]);
        assert!(volume_action(&fs, &entry(&[], &[]), true).unwrap().is_empty());
        // A block volume's marker flag is ignored (there is none).
        assert_eq!(volume_action(&dev, &entry(&[], &[]), true).unwrap().init, vec![Step::ZeroDevice]);
        // Dirty without a wipe method: an error naming the volume.
        let no_wipe = vol("ns", Path::new("/v/ns"), true, VolumeMethod::None, None);
        assert!(volume_action(&no_wipe, &entry(&[], &["ns"]), false).unwrap_err().contains("\"ns\""));
    }

    #[test]
    fn the_entry_must_be_this_pods_incarnation() {
        let mut e = env("aerocluster-0-0", &[(desired::ENV_POD_UID, "u1")]);
        let text = r#"{"aerocluster-0-0": {"uid": "u0", "initialized": ["ns"], "dirty": []}}"#;
        assert_eq!(volume_entry(text, &e).unwrap(), None, "written for the pod's previous incarnation");
        let text = r#"{"aerocluster-0-0": {"uid": "u1", "initialized": ["ns"], "dirty": ["x"]}}"#;
        assert_eq!(volume_entry(text, &e).unwrap(), Some(entry(&["ns"], &["x"])));
        assert_eq!(volume_entry("{}", &e).unwrap(), None);
        e.pod_uid.clear();
        assert!(volume_entry(text, &e).unwrap_err().to_string().contains(desired::ENV_POD_UID));
        assert_eq!(cleanup_threads(Some("4\n")), 4);
        assert_eq!(cleanup_threads(Some("0")), 1);
        assert_eq!(cleanup_threads(Some("x")), 1);
        assert_eq!(cleanup_threads(None), 1);
    }

    /// A scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("podinit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A recognisable non-zero pattern (never a zero byte).
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 + 1).collect()
    }

    const SIZE: usize = 24 << 20;

    /// What each block method must leave on a device that held `pattern(SIZE)`.
    fn check_after(step_method: VolumeMethod, bytes: &[u8]) {
        let header = HEADER_BYTES as usize;
        let zero = |r: std::ops::Range<usize>| bytes[r.clone()].iter().all(|b| *b == 0);
        match step_method {
            VolumeMethod::Dd | VolumeMethod::Blkdiscard | VolumeMethod::BlkdiscardWithHeaderCleanup => {
                assert!(zero(0..SIZE), "{step_method:?}: every byte reads zero");
            }
            VolumeMethod::HeaderCleanup => {
                assert!(zero(0..header), "the first 8 MiB are zero");
                assert_eq!(&bytes[header..], &pattern(SIZE)[header..], "the rest is untouched");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn zeroing_methods_on_files_leave_exactly_the_promised_bytes() {
        let dir = scratch("files");
        for method in [VolumeMethod::Dd, VolumeMethod::HeaderCleanup] {
            let f = dir.join(method.as_str());
            std::fs::write(&f, pattern(SIZE)).unwrap();
            for step in method_steps(method, true).unwrap() {
                run_step(step, &f).unwrap();
            }
            let bytes = std::fs::read(&f).unwrap();
            assert_eq!(bytes.len(), SIZE, "{method:?}: the size is kept");
            check_after(method, &bytes);
        }
        // A file smaller than the header: zeroed whole, not grown.
        let small = dir.join("small");
        std::fs::write(&small, pattern(4096)).unwrap();
        run_step(Step::ZeroHeader, &small).unwrap();
        assert_eq!(std::fs::read(&small).unwrap(), vec![0u8; 4096]);
        // A file cannot be discarded: a clear error, the bytes untouched.
        let f = dir.join("discard");
        std::fs::write(&f, pattern(4096)).unwrap();
        let err = run_step(Step::Discard, &f).unwrap_err().to_string();
        assert!(err.contains("cannot be discarded") && err.contains("use the dd or headerCleanup"), "{err}");
        assert_eq!(std::fs::read(&f).unwrap(), pattern(4096));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A loop device over a file of `SIZE` bytes holding `pattern(SIZE)`; detached on drop.
    struct Loop {
        dev: PathBuf,
        backing: PathBuf,
    }

    impl Loop {
        /// `None` (the reason printed) where loop devices cannot be made: not root, no losetup, no /dev/loop*.
        fn new(name: &str) -> Option<Loop> {
            let backing = std::env::temp_dir().join(format!("podinit-loop-{name}-{}.img", std::process::id()));
            std::fs::write(&backing, pattern(SIZE)).unwrap();
            let out = std::process::Command::new("losetup").args(["-f", "--show"]).arg(&backing).output();
            match out {
                Ok(o) if o.status.success() => {
                    let dev = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
                    Some(Loop { dev, backing })
                }
                other => {
                    eprintln!("SKIPPED on this machine: no loop device ({other:?})");
                    let _ = std::fs::remove_file(&backing);
                    None
                }
            }
        }

        fn read(&self) -> Vec<u8> {
            use std::io::Read;
            let mut bytes = Vec::new();
            std::fs::File::open(&self.dev).unwrap().read_to_end(&mut bytes).unwrap();
            bytes
        }
    }

    impl Drop for Loop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("losetup").arg("-d").arg(&self.dev).status();
            let _ = std::fs::remove_file(&self.backing);
        }
    }

    /// Every block method on a real block device (a loop device: discard supported), through the same `init_volumes`
    /// pod-init runs, two volumes at a time; then a restart (the entry says initialised) leaves the server's bytes.
    #[test]
    fn block_methods_on_loop_devices() {
        let methods = [
            VolumeMethod::Dd,
            VolumeMethod::Blkdiscard,
            VolumeMethod::HeaderCleanup,
            VolumeMethod::BlkdiscardWithHeaderCleanup,
        ];
        let mut loops = Vec::new();
        for m in methods {
            match Loop::new(m.as_str()) {
                Some(l) => loops.push((m, l)),
                None => return,
            }
        }
        let mut e = env("aerocluster-0-0", &[]);
        e.cleanup_threads = 2;
        e.init_volumes = loops.iter().map(|(m, l)| vol(m.as_str(), &l.dev, true, *m, Some(VolumeMethod::Dd))).collect();
        init_volumes(&e, &entry(&[], &[])).unwrap();
        for (m, l) in &loops {
            let bytes = l.read();
            assert_eq!(bytes.len(), SIZE);
            check_after(*m, &bytes);
        }
        // The server writes; a restart with every volume initialised touches nothing.
        for (_, l) in &loops {
            std::fs::write(&l.dev, pattern(SIZE)).unwrap();
        }
        let names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
        init_volumes(&e, &entry(&names, &[])).unwrap();
        for (_, l) in &loops {
            assert_eq!(l.read(), pattern(SIZE), "initialised once only");
        }
        // A dirty volume is wiped with its wipe method (dd here), the others are left alone.
        init_volumes(&e, &entry(&names, &["headerCleanup"])).unwrap();
        for (m, l) in &loops {
            let want = if *m == VolumeMethod::HeaderCleanup { vec![0u8; SIZE] } else { pattern(SIZE) };
            assert!(l.read() == want, "{m:?} after the wipe of headerCleanup only");
        }
    }

    /// deleteFiles once (the marker), a dirty-free restart keeps the server's files, errors name the volume.
    #[test]
    fn delete_files_once_and_atomic_write() {
        let root = scratch("deletefiles");
        let vol_dir = root.join("workdir");
        std::fs::create_dir_all(vol_dir.join("smd")).unwrap();
        std::fs::create_dir_all(vol_dir.join("lost+found")).unwrap();
        std::fs::write(vol_dir.join("smd/x.smd"), "old").unwrap();
        std::fs::write(vol_dir.join("data.dat"), "old").unwrap();
        let mut e = env("aerocluster-0-0", &[]);
        e.init_volumes = vec![vol("workdir", &vol_dir, false, VolumeMethod::DeleteFiles, None)];
        init_volumes(&e, &entry(&[], &[])).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&vol_dir)
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec![INIT_MARKER.to_string(), "lost+found".to_string()]);
        // Second start (the status lost: the marker on the claim still counts): the server's files survive.
        std::fs::write(vol_dir.join("data.dat"), "new").unwrap();
        init_volumes(&e, &entry(&[], &[])).unwrap();
        assert_eq!(std::fs::read_to_string(vol_dir.join("data.dat")).unwrap(), "new");

        // A block volume whose device cannot discard fails pod-init naming the volume.
        let f = root.join("not-a-device");
        std::fs::write(&f, pattern(4096)).unwrap();
        e.init_volumes = vec![vol("ns1", &f, true, VolumeMethod::Blkdiscard, Some(VolumeMethod::Dd))];
        let err = init_volumes(&e, &entry(&[], &[])).unwrap_err().to_string();
        assert!(err.starts_with("volume ns1: ") && err.contains("cannot be discarded"), "{err}");

        let out = root.join("etc/aerospike.conf");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        write_atomically(&out, "a").unwrap();
        write_atomically(&out, "b").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "b");
        assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn args_defaults_match_the_stateful_set() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: PodInitArgs,
        }
        let cli = Cli::parse_from(["pod-init"]);
        assert_eq!(cli.args, PodInitArgs::default());
        assert_eq!(cli.args.output, Path::new(desired::CONF_DIR).join("aerospike.conf"));
        assert_eq!(cli.args.config_map_dir, PathBuf::from(desired::TEMPLATE_DIR));
    }
}
