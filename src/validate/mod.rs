//! Admission rules for AerospikeCluster, pure: [`default_cluster`] (what the mutating webhook writes) and
//! [`validate`] (what the validating webhook and the reconciler refuse). Every refusal is a [`FieldError`]
//! naming the field (`spec.rackConfig.racks[1].zone`) and the rule.
//!
//! The rules (see each function for details):
//! - metadata: a name that is a DNS-1035 label (it names the Service and the Aerospike cluster), a namespace;
//! - image: Enterprise or Federal, server 6.0 or later read from the tag (see [`image`] for tags without a
//!   version);
//! - size 1..=256; maxUnavailable, rollingUpdateBatchSize, scaleDownBatchSize, maxIgnorablePods a count or a
//!   percentage;
//! - aerospikeConfig: known keys and value types for service, network, namespaces, logging and security, with a
//!   "did you mean" suggestion; the operator-managed values (docs/aerospike-conf.md §6) not contradicted; no network or
//!   security override in a rack;
//! - namespaces: strong-consistency replication factor not above the size, the same strong-consistency
//!   namespaces in every rack; devices are Block persistent volumes and files, index mounts live on filesystem
//!   volumes of the rack's storage; a device or file used by one namespace only; rack-enabled namespaces exist;
//! - maxUnavailable below the smallest replication factor (of namespaces with 2 or more copies);
//! - batch sizes only with two racks or more, every namespace rack-enabled and replicated;
//! - access control with security enabled: a user `admin` with sys-admin and user-admin, roles that exist,
//!   passwords from Secrets (secretName) except PKI-only users, valid privileges and whitelists;
//! - resource limits not below requests (server, init, sidecar and init containers);
//! - the work directory on a persistent Filesystem volume unless `validationPolicy.skipWorkDirValidate` (see
//!   [`work_dir`]; a cluster that already ran without one is warned, not refused);
//! - on update ([`validate`] with `old`): multiPodPerHost, TLS names and ports, strong-consistency (and with it the
//!   replication factor; an AP namespace's changes alone, one namespace at a time), security on/off, rack zone/region/rackLabel/nodeName, the seeds LoadBalancer, and
//!   persistent volumes (removed or changed only with a new rack revision; one may be added, and a size may grow in
//!   place, never shrink), and the effective init and
//!   wipe methods of existing persistent volumes (a changed method would run on their data at the next restart);
//! - operations: one at a time, on a deployed cluster, on its own pods, fixed once given, not with a scale-up, racks
//!   added or removed or an image change;
//! - finally everything the build step refuses (it runs when nothing else was found).
mod access;
mod defaults;
pub(crate) mod image;
mod immutable;
mod network;
mod operations;
pub(crate) mod quantity;
mod tls;
mod warnings;
mod work_dir;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::aerospike_conf;
pub use crate::api::FieldError;
use crate::api::{AerospikeCluster, AerospikeClusterSpec, Rack};
use crate::desired::{self, BuildContext, BuildError};
use crate::resolve::{Resolved, ResolvedRack, resolve};

pub use defaults::default_cluster;
pub use warnings::warnings;

impl From<BuildError> for FieldError {
    fn from(e: BuildError) -> Self {
        let path = e.path();
        let text = e.to_string();
        let message = text.strip_prefix(&format!("{path}: ")).unwrap_or(&text).to_string();
        FieldError { path, message }
    }
}

/// All refusals as one message (for a webhook denial, a condition or an event).
pub fn summary(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The rules an AerospikeCluster must pass; `old` is the object being replaced (an update), for the rules on
/// changes. An empty result means the object is valid. Resolves each object once, then [`check`], then the
/// build step for whatever else it refuses.
pub fn validate(new: &AerospikeCluster, old: Option<&AerospikeCluster>) -> Vec<FieldError> {
    review(new, old).0
}

/// [`validate`], and for a valid object the [`warnings`] of the fields the operator does not act on yet, from the
/// one resolution (what the validating webhook answers).
pub fn review(new: &AerospikeCluster, old: Option<&AerospikeCluster>) -> (Vec<FieldError>, Vec<FieldError>) {
    // The build step needs a uid for the owner references; an object being created has none yet.
    let with_uid;
    let new = if new.metadata.uid.is_some() {
        new
    } else {
        let mut c = new.clone();
        c.metadata.uid = Some("00000000-0000-0000-0000-000000000000".to_string());
        with_uid = c;
        &with_uid
    };
    let resolved = resolve(new);
    let old = old.map(resolve);
    let mut out = check(&resolved, old.as_ref());
    if out.is_empty()
        && let Err(e) = desired::desired_state(&resolved, &BuildContext { init_image: "validate".into() })
    {
        // Whatever else the build step refuses (reserved names, volume sources...).
        out.push(e.into());
    }
    let warned = if out.is_empty() { warnings(&resolved) } else { Vec::new() };
    (out, warned)
}

/// Every rule but the build step, on resolved objects (the reconciler builds right after, from the same
/// [`Resolved`]).
pub fn check(resolved: &Resolved, old: Option<&Resolved>) -> Vec<FieldError> {
    let mut out = Vec::new();
    let new = resolved.cluster;
    let spec = &new.spec;
    check_metadata(new, &mut out);
    let version = check_image(&spec.image, &mut out);
    let major = version.as_ref().and_then(|v| v.first().copied());
    if !(1..=256).contains(&spec.size) {
        out.push(FieldError::new("spec.size", format!("{} is not between 1 and 256", spec.size)));
    }
    check_int_or_percent(spec.max_unavailable.as_ref(), "spec.maxUnavailable", &mut out);
    if let Some(rc) = &spec.rack_config {
        check_int_or_percent(rc.rolling_update_batch_size.as_ref(), "spec.rackConfig.rollingUpdateBatchSize", &mut out);
        check_int_or_percent(rc.scale_down_batch_size.as_ref(), "spec.rackConfig.scaleDownBatchSize", &mut out);
        check_int_or_percent(rc.max_ignorable_pods.as_ref(), "spec.rackConfig.maxIgnorablePods", &mut out);
    }
    if let Some(cfg) = spec.aerospike_config.as_ref().filter(|v| !v.is_null()) {
        aerospike_conf::keys::schema::check_config(cfg, "spec.aerospikeConfig", major, &mut out);
    }
    check_racks(spec, major, &mut out);

    // Missing config, rack overrides of shared sections, configs that cannot be defaulted or rendered, names.
    out.extend(resolved.errors.iter().cloned());
    let racks = &resolved.racks;
    check_namespaces(new, racks, &mut out);
    check_max_unavailable(spec, racks, &mut out);
    check_batches(spec, racks, &mut out);
    access::check_access_control(new, racks, &mut out);
    tls::check(new, racks, &mut out);
    network::check(new, &mut out);
    check_resources(spec, &mut out);
    operations::check(new, old.map(|o| o.cluster), racks, &mut out);
    work_dir::check(resolved, old, &mut out);
    if let Some(old) = old {
        immutable::check(resolved, old, &mut out);
    }
    let mut seen = BTreeSet::new();
    out.retain(|e| seen.insert(e.clone()));
    out
}

/// The spec last rolled out completely, as the status keeps it (the reference's applied-spec copy), as an
/// object [`validate`] can compare a new spec with: the reconciler's "old" side for the rules on changes, so a
/// change that skipped the webhook is still refused. `None` before the first complete rollout.
pub fn applied_view(cluster: &AerospikeCluster) -> Option<AerospikeCluster> {
    let st = cluster.status.as_ref()?;
    let config = st.aerospike_config.clone().filter(|v| !v.is_null())?;
    let mut pod_spec = st.pod_spec.clone();
    if let Some(m) = st.multi_pod_per_host {
        pod_spec.get_or_insert_with(Default::default).multi_pod_per_host.get_or_insert(m);
    }
    Some(AerospikeCluster {
        metadata: cluster.metadata.clone(),
        spec: AerospikeClusterSpec {
            size: st.size.unwrap_or(cluster.spec.size),
            image: st.image.clone().unwrap_or_else(|| cluster.spec.image.clone()),
            max_unavailable: st.max_unavailable.clone(),
            disable_pdb: st.disable_pdb,
            storage: st.storage.clone(),
            aerospike_access_control: st.aerospike_access_control.clone(),
            aerospike_config: Some(config),
            enable_dynamic_config_update: st.enable_dynamic_config_update,
            validation_policy: st.validation_policy.clone(),
            rack_config: st.rack_config.clone(),
            aerospike_network_policy: st.aerospike_network_policy.clone(),
            operator_client_cert: st.operator_client_cert.clone(),
            pod_spec,
            seeds_finder_services: st.seeds_finder_services.clone(),
            headless_service: st.headless_service.clone(),
            pod_service: st.pod_service.clone(),
            roster_node_block_list: st.roster_node_block_list.clone(),
            k8s_node_block_list: st.k8s_node_block_list.clone(),
            // status.operations is the progress of the operation under way (pods done so far), not a spec copy:
            // comparing it with the spec's operation would refuse the operation as changed.
            operations: Vec::new(),
            ..Default::default()
        },
        status: None,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Metadata, image, counts.

/// DNS-1035 label: lower-case letters, digits and '-', starting with a letter, ending with a letter or digit.
fn is_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

fn check_metadata(c: &AerospikeCluster, out: &mut Vec<FieldError>) {
    match c.metadata.name.as_deref() {
        None | Some("") => out.push(FieldError::new(
            "metadata.name",
            "required (generateName is not supported: the name is the Aerospike cluster-name and the Service name)",
        )),
        Some(name) if !is_dns1035_label(name) => out.push(FieldError::new(
            "metadata.name",
            format!(
                "{name:?} is not a DNS-1035 label (lower-case letters, digits and '-', starting with a letter, at most \
                 63 characters): it names the cluster's Service and its Aerospike cluster-name"
            ),
        )),
        Some(_) => {}
    }
    if c.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        out.push(FieldError::new("metadata.namespace", "required"));
    }
}

/// The image rules; returns the server version when the tag names one.
fn check_image(image: &str, out: &mut Vec<FieldError>) -> Option<Vec<u64>> {
    if image.trim().is_empty() {
        out.push(FieldError::new("spec.image", "required"));
        return None;
    }
    if !image::is_enterprise_or_federal(image) {
        out.push(FieldError::new(
            "spec.image",
            format!(
                "{image:?} is not an Aerospike Enterprise or Federal image (the image name must contain \"enterprise\" \
                 or \"federal\"): Community Edition is not supported"
            ),
        ));
    }
    let r = image::parse(image);
    match (&r.tag, &r.version) {
        (_, Some(v)) if !image::at_least(v, &image::MIN_VERSION) => {
            out.push(FieldError::new(
                "spec.image",
                format!("server version {} is older than 6.0, the oldest this operator supports", image::show(v)),
            ));
            None
        }
        (_, Some(v)) => Some(v.clone()),
        (None, None) if r.digest => None,
        (tag, None) => {
            out.push(FieldError::new(
                "spec.image",
                format!(
                    "{} does not name a server version: use a version tag such as :7.1.0.0 or pin a digest (@sha256:...)",
                    match tag {
                        Some(t) => format!("tag {t:?}"),
                        None => "an image without a tag (:latest)".to_string(),
                    }
                ),
            ));
            None
        }
    }
}

/// A count (>= 0) or a percentage (0% to 100%).
fn check_int_or_percent(v: Option<&IntOrString>, path: &str, out: &mut Vec<FieldError>) {
    match v {
        None => {}
        Some(IntOrString::Int(i)) if *i < 0 => out.push(FieldError::new(path, format!("{i} is negative"))),
        Some(IntOrString::Int(_)) => {}
        Some(IntOrString::String(s)) => {
            let ok = s.strip_suffix('%').and_then(|p| p.parse::<u32>().ok()).is_some_and(|p| p <= 100);
            if !ok {
                out.push(FieldError::new(path, format!("{s:?} is neither a number nor a percentage such as 25%")));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Racks and their effective configs.

fn check_racks(spec: &AerospikeClusterSpec, major: Option<u64>, out: &mut Vec<FieldError>) {
    let Some(rc) = &spec.rack_config else { return };
    let mut ids = BTreeMap::new();
    for (i, rack) in rc.racks.iter().enumerate() {
        let path = format!("spec.rackConfig.racks[{i}]");
        if let Some(first) = ids.insert(rack.id, i) {
            out.push(FieldError::new(
                format!("{path}.id"),
                format!("rack id {} is already used by racks[{first}]", rack.id),
            ));
        }
        if rack.id == 0 && (rc.racks.len() > 1 || !is_bare_default_rack(rack)) {
            out.push(FieldError::new(
                format!("{path}.id"),
                "rack id 0 is reserved for the default rack (used when there are no racks): use ids from 1",
            ));
        }
        if !(0..=1_000_000).contains(&rack.id) {
            out.push(FieldError::new(format!("{path}.id"), format!("{} is not between 1 and 1000000", rack.id)));
        }
        if let Some(own) = rack.aerospike_config.as_ref().filter(|v| !v.is_null()) {
            let cpath = format!("{path}.aerospikeConfig");
            aerospike_conf::keys::schema::check_config(own, &cpath, major, out);
        }
    }
}

fn is_bare_default_rack(r: &Rack) -> bool {
    r.zone.is_empty()
        && r.region.is_empty()
        && r.rack_label.is_empty()
        && r.node_name.is_empty()
        && r.aerospike_config.is_none()
        && r.storage.is_none()
        && r.pod_spec.is_none()
}

/// Walks `keys` from `v`.
fn dig<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().try_fold(v, |v, k| v.get(*k))
}

/// Index of the namespace named `name` in a config's namespaces list.
fn ns_index(config: Option<&Value>, name: &str) -> Option<usize> {
    config?.get("namespaces")?.as_array()?.iter().position(|ns| ns.get("name").and_then(Value::as_str) == Some(name))
}

/// The spec path of a namespace field (`keys` below the namespace entry) as the user wrote it: the rack's
/// override when it sets the field, else the global config when it does, else the entry that declares the
/// namespace.
pub(crate) fn ns_path(spec: &AerospikeClusterSpec, rack: &ResolvedRack, name: &str, keys: &[&str]) -> String {
    let global = spec.aerospike_config.as_ref();
    let tail = if keys.is_empty() { String::new() } else { format!(".{}", keys.join(".")) };
    let in_rack = rack.own_config.and_then(|own| ns_index(Some(own), name).map(|i| (own, i)));
    let rack_path = |i: usize| format!("{}.aerospikeConfig.namespaces[{i}]{tail}", rack.path().unwrap_or_default());
    let global_path = |i: usize| format!("spec.aerospikeConfig.namespaces[{i}]{tail}");
    let defines = |cfg: &Value, i: usize| dig(&cfg["namespaces"][i], keys).is_some();
    if let Some((own, i)) = in_rack
        && rack.path().is_some()
        && defines(own, i)
    {
        return rack_path(i);
    }
    if let Some(g) = global
        && let Some(i) = ns_index(Some(g), name)
        && (defines(g, i) || in_rack.is_none() || rack.path().is_none())
    {
        return global_path(i);
    }
    match in_rack {
        Some((_, i)) if rack.path().is_some() => rack_path(i),
        _ => "spec.aerospikeConfig.namespaces".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Namespaces: replication, strong consistency, storage.

/// Is `dir` the same as `parent` or below it?
fn is_under(parent: &str, dir: &str) -> bool {
    let p = Path::new(parent);
    let d = Path::new(dir);
    d.starts_with(p)
}

fn split_storage_entry(s: &str) -> Vec<&str> {
    s.split(|c: char| c == ':' || c.is_whitespace()).filter(|p| !p.is_empty()).collect()
}

fn check_namespaces(c: &AerospikeCluster, racks: &[ResolvedRack], out: &mut Vec<FieldError>) {
    let spec = &c.spec;
    let mut sc_sets: Vec<(usize, BTreeSet<String>)> = Vec::new();
    let mut all_names = BTreeSet::new();
    for (ri, rack) in racks.iter().enumerate() {
        let Some(config) = rack.config_value() else { continue };
        let block: Vec<&str> = rack
            .storage
            .volumes
            .iter()
            .filter(|v| v.source.persistent_volume.as_ref().is_some_and(|pv| pv.volume_mode == "Block"))
            .filter_map(|v| v.aerospike.as_ref().map(|a| a.path.as_str()))
            .collect();
        let filesystem: Vec<&str> = rack
            .storage
            .volumes
            .iter()
            .filter(|v| v.source.persistent_volume.as_ref().is_none_or(|pv| pv.volume_mode != "Block"))
            .filter_map(|v| v.aerospike.as_ref().map(|a| a.path.as_str()))
            .collect();
        let mut used: BTreeMap<String, String> = BTreeMap::new();
        let mut sc = BTreeSet::new();
        let list = config.get("namespaces").and_then(Value::as_array).cloned().unwrap_or_default();
        for info in aerospike_conf::namespaces(config) {
            let name = info.name.clone();
            all_names.insert(name.clone());
            let ns = &list[info.index];
            if info.strong_consistency {
                sc.insert(name.clone());
                if i64::from(info.replication_factor) > i64::from(spec.size) {
                    out.push(FieldError::new(
                        ns_path(spec, rack, &name, &["replication-factor"]),
                        format!(
                            "replication-factor {} of the strong-consistency namespace {name:?} is more than the cluster \
                             size {}: writes would never reach enough copies",
                            info.replication_factor, spec.size
                        ),
                    ));
                }
            }
            let engine = ns.get("storage-engine");
            for (key, is_device) in [("devices", true), ("files", false)] {
                let entries: Vec<(Option<usize>, &str)> = match engine.and_then(|e| e.get(key)) {
                    Some(Value::String(s)) => vec![(None, s.as_str())],
                    Some(Value::Array(items)) => {
                        items.iter().enumerate().filter_map(|(i, v)| v.as_str().map(|s| (Some(i), s))).collect()
                    }
                    _ => Vec::new(),
                };
                for (i, entry) in entries {
                    let base = ns_path(spec, rack, &name, &["storage-engine", key]);
                    let path = match i {
                        Some(i) => format!("{base}[{i}]"),
                        None => base,
                    };
                    for part in split_storage_entry(entry) {
                        if let Some(other) = used.insert(part.to_string(), name.clone())
                            && other != name
                        {
                            out.push(FieldError::new(
                                &path,
                                format!("{part} is already used by namespace {other:?}: a device or file serves one namespace"),
                            ));
                        }
                        if is_device {
                            if !block.contains(&part) {
                                out.push(FieldError::new(
                                    &path,
                                    format!(
                                        "device {part} is not declared in {}.volumes: add a persistent volume with \
                                         volumeMode Block and aerospike.path {part}",
                                        rack.storage_path
                                    ),
                                ));
                            }
                        } else if !part.starts_with('/') {
                            out.push(FieldError::new(&path, format!("file {part} is not an absolute path")));
                        } else {
                            let dir = Path::new(part).parent().and_then(Path::to_str).unwrap_or("/");
                            if !filesystem.iter().any(|m| is_under(m, dir)) {
                                out.push(FieldError::new(
                                    &path,
                                    format!(
                                        "file {part} is not on a volume: no filesystem volume in {}.volumes is mounted \
                                         at {dir} or above it (aerospike.path)",
                                        rack.storage_path
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            for index_key in ["index-type", "sindex-type"] {
                let Some(Value::Object(it)) = ns.get(index_key) else { continue };
                if !matches!(it.get("type").and_then(Value::as_str), Some("flash" | "pmem")) {
                    continue;
                }
                let mounts: Vec<(usize, &str)> = match it.get("mounts") {
                    Some(Value::Array(items)) => {
                        items.iter().enumerate().filter_map(|(i, v)| v.as_str().map(|s| (i, s))).collect()
                    }
                    Some(Value::String(s)) => vec![(0, s.as_str())],
                    _ => Vec::new(),
                };
                for (i, mount) in mounts {
                    if !filesystem.iter().any(|m| is_under(m, mount)) {
                        out.push(FieldError::new(
                            format!("{}[{i}]", ns_path(spec, rack, &name, &[index_key, "mounts"])),
                            format!("mount {mount} is not on a filesystem volume of {}.volumes", rack.storage_path),
                        ));
                    }
                }
            }
        }
        sc_sets.push((ri, sc));
    }
    if let Some((_, first)) = sc_sets.first() {
        for (ri, set) in &sc_sets[1..] {
            if set != first {
                let rack = &racks[*ri];
                out.push(FieldError::new(
                    format!("{}.aerospikeConfig.namespaces", rack.path().unwrap_or_else(|| "spec".into())),
                    format!(
                        "rack {} has the strong-consistency namespaces {:?}, other racks {:?}: every rack must have the \
                         same strong-consistency namespaces",
                        rack.id, set, first
                    ),
                ));
            }
        }
    }
    if let Some(rc) = &spec.rack_config
        && racks.iter().all(|r| r.config.is_some())
    {
        let mut budget = crate::suggest::SuggestionBudget::new();
        for (i, ns) in rc.namespaces.iter().enumerate() {
            if !all_names.contains(ns) {
                out.push(FieldError::new(
                    format!("spec.rackConfig.namespaces[{i}]"),
                    format!(
                        "no namespace named {ns:?} in aerospikeConfig{}",
                        budget.suggestion(ns, all_names.iter().map(String::as_str))
                    ),
                ));
            }
        }
    }
}

/// The smallest replication factor among namespaces keeping two copies or more, and the namespace.
fn min_replication(racks: &[ResolvedRack]) -> Option<(u32, String)> {
    racks
        .iter()
        .filter_map(ResolvedRack::config_value)
        .flat_map(aerospike_conf::namespaces)
        .filter(|ns| ns.replication_factor >= 2)
        .map(|ns| (ns.replication_factor, ns.name))
        .min()
}

fn check_max_unavailable(spec: &AerospikeClusterSpec, racks: &[ResolvedRack], out: &mut Vec<FieldError>) {
    let mu = spec.max_unavailable();
    if let IntOrString::String(s) = &mu
        && !s.ends_with('%')
    {
        return; // reported by check_int_or_percent
    }
    let count = crate::plan::resolve_batch(Some(&mu), spec.size.max(0), 1);
    if let Some((rf, ns)) = min_replication(racks)
        && i64::from(count) >= i64::from(rf)
    {
        let shown = match &mu {
            IntOrString::Int(i) => i.to_string(),
            IntOrString::String(s) => format!("{s} ({count} pods of {})", spec.size),
        };
        out.push(FieldError::new(
            "spec.maxUnavailable",
            format!(
                "{shown} is not below the smallest replication factor {rf} (namespace {ns:?}): that many pods down at \
                 once can take every copy of a partition"
            ),
        ));
    }
}

fn check_batches(spec: &AerospikeClusterSpec, racks: &[ResolvedRack], out: &mut Vec<FieldError>) {
    let Some(rc) = &spec.rack_config else { return };
    for (field, value) in
        [("rollingUpdateBatchSize", &rc.rolling_update_batch_size), ("scaleDownBatchSize", &rc.scale_down_batch_size)]
    {
        if value.is_none() {
            continue;
        }
        let path = format!("spec.rackConfig.{field}");
        if rc.racks.len() < 2 {
            out.push(FieldError::new(
                &path,
                format!(
                    "needs at least two racks (there are {}): a batch of several pods in the only rack can hold every \
                     copy of a partition",
                    rc.racks.len()
                ),
            ));
            continue;
        }
        let mut reported = BTreeSet::new();
        for ns in racks.iter().filter_map(ResolvedRack::config_value).flat_map(aerospike_conf::namespaces) {
            if !rc.namespaces.contains(&ns.name) && reported.insert(ns.name.clone()) {
                out.push(FieldError::new(
                    &path,
                    format!("namespace {:?} is not rack-enabled (spec.rackConfig.namespaces): batches need every namespace rack-aware", ns.name),
                ));
            } else if ns.replication_factor < 2 && reported.insert(ns.name.clone()) {
                out.push(FieldError::new(
                    &path,
                    format!(
                        "namespace {:?} has replication-factor 1: batches need a second copy in another rack",
                        ns.name
                    ),
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Resources.

fn check_requirements(r: Option<&ResourceRequirements>, path: &str, out: &mut Vec<FieldError>) {
    let Some(r) = r else { return };
    let (Some(limits), Some(requests)) = (&r.limits, &r.requests) else {
        for (kind, map) in [("limits", &r.limits), ("requests", &r.requests)] {
            for (name, q) in map.iter().flatten() {
                if quantity::parse(&q.0).is_none() {
                    out.push(FieldError::new(format!("{path}.{kind}.{name}"), format!("{:?} is not a quantity", q.0)));
                }
            }
        }
        return;
    };
    for (name, q) in requests {
        if quantity::parse(&q.0).is_none() {
            out.push(FieldError::new(format!("{path}.requests.{name}"), format!("{:?} is not a quantity", q.0)));
        }
    }
    for (name, limit) in limits {
        let Some(l) = quantity::parse(&limit.0) else {
            out.push(FieldError::new(format!("{path}.limits.{name}"), format!("{:?} is not a quantity", limit.0)));
            continue;
        };
        if let Some(request) = requests.get(name)
            && let Some(rq) = quantity::parse(&request.0)
            && l < rq
        {
            out.push(FieldError::new(
                format!("{path}.limits.{name}"),
                format!("limit {} is below the request {}", limit.0, request.0),
            ));
        }
    }
}

fn check_resources(spec: &AerospikeClusterSpec, out: &mut Vec<FieldError>) {
    let Some(pod) = &spec.pod_spec else { return };
    check_requirements(
        pod.aerospike_container.as_ref().and_then(|c| c.resources.as_ref()),
        "spec.podSpec.aerospikeContainer.resources",
        out,
    );
    check_requirements(
        pod.aerospike_init_container.as_ref().and_then(|c| c.resources.as_ref()),
        "spec.podSpec.aerospikeInitContainer.resources",
        out,
    );
    for (kind, list) in [("sidecars", &pod.sidecars), ("initContainers", &pod.init_containers)] {
        for (i, c) in list.iter().enumerate() {
            check_requirements(c.resources.as_ref(), &format!("spec.podSpec.{kind}[{i}].resources"), out);
        }
    }
}
