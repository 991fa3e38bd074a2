//! The CSV base (config/manifests/csv-base.yaml): the built-in defaults it starts from, and reading an edited one
//! back with its checks.
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine as _;

use super::*;
use crate::out;
use crate::project::{OPERATOR_NAMESPACE, paths};

const GENERATED_ANNOTATIONS: &[&str] = &["alm-examples", "containerImage", "createdAt", "olm.skipRange"];

pub(super) fn descriptor(path: &str, name: &str, description: &str, x: &[&str]) -> Descriptor {
    Descriptor {
        path: path.into(),
        display_name: name.into(),
        description: description.into(),
        x_descriptors: x.iter().map(|s| s.to_string()).collect(),
    }
}

const UI: &str = "urn:alm:descriptor:com.tectonic.ui:";

pub(super) fn ui(kind: &str) -> String {
    format!("{UI}{kind}")
}

/// What `cargo xtask manifests` writes when config/manifests/csv-base.yaml does not exist yet.
pub fn default_base() -> CsvBase {
    let svg = include_str!("../../../assets/icon.svg");
    let annotations = BTreeMap::from([
        ("capabilities".to_string(), "Deep Insights".to_string()),
        ("categories".to_string(), "Database".to_string()),
        (
            "description".to_string(),
            "Runs Aerospike Enterprise clusters on Kubernetes: deploy, scale, reconfigure and upgrade them safely."
                .to_string(),
        ),
        ("repository".to_string(), "https://github.com/aerospike-rs/aerospike-kubernetes-operator".to_string()),
        ("support".to_string(), "aerospike-rs".to_string()),
        ("operatorframework.io/suggested-namespace".to_string(), OPERATOR_NAMESPACE.to_string()),
    ]);
    let podcount = ui("podCount");
    let boolean = ui("booleanSwitch");
    let text = ui("text");
    let resources = ui("resourceRequirements");
    let cluster = CrdDescription {
        name: "aerospikeclusters.asdb.aerospike.com".into(),
        version: "v1".into(),
        kind: "AerospikeCluster".into(),
        display_name: "Aerospike Cluster".into(),
        description: "An Aerospike Enterprise cluster: its size, server image and configuration, storage, racks \
                      and access control."
            .into(),
        resources: [
            ("StatefulSet", "<cluster>-<rack id>", "v1"),
            ("Service", "<cluster>", "v1"),
            ("ConfigMap", "<cluster>-<rack id>", "v1"),
            ("PodDisruptionBudget", "<cluster>", "v1"),
            ("Pod", "<cluster>-<rack id>-<ordinal>", "v1"),
            ("PersistentVolumeClaim", "<volume>-<pod>", "v1"),
            ("Secret", "<user password secrets>", "v1"),
            ("Event", "<events about the cluster>", "v1"),
        ]
        .iter()
        .map(|(k, n, v)| ResourceReference { kind: k.to_string(), name: n.to_string(), version: v.to_string() })
        .collect(),
        spec_descriptors: vec![
            descriptor("size", "Size", "Number of Aerospike nodes (pods), spread over the racks.", &[&podcount]),
            descriptor(
                "image",
                "Server Image",
                "Aerospike server image (Enterprise or Federal, 6.0 or later).",
                &[&text],
            ),
            descriptor(
                "maxUnavailable",
                "Max Unavailable",
                "Pods that may be unavailable at once (number or percentage).",
                &[&text],
            ),
            descriptor(
                "aerospikeConfig",
                "Aerospike Configuration",
                "The Aerospike server configuration (service, network, namespaces, logging, security, xdr).",
                &[],
            ),
            descriptor(
                "storage",
                "Storage",
                "Volumes attached to the Aerospike pods and their init, wipe and delete policies.",
                &[],
            ),
            descriptor("storage.volumes", "Volumes", "Volumes to attach to the pods.", &[]),
            descriptor(
                "rackConfig",
                "Rack Configuration",
                "Rack-aware placement and the pace of rolling changes.",
                &[],
            ),
            descriptor("rackConfig.racks", "Racks", "The racks: zone, region, node label or node of each.", &[]),
            descriptor(
                "aerospikeAccessControl",
                "Access Control",
                "Roles and users created in Aerospike when security is enabled.",
                &[],
            ),
            descriptor("podSpec", "Pod Settings", "Additional configuration of the Aerospike pods.", &[]),
            descriptor(
                "podSpec.multiPodPerHost",
                "Multiple Pods per Host",
                "Allow several Aerospike pods on one Kubernetes node. Immutable.",
                &[&boolean],
            ),
            descriptor("podSpec.hostNetwork", "Host Network", "Use the node's network namespace.", &[&boolean]),
            descriptor(
                "podSpec.aerospikeContainer.resources",
                "Server Resources",
                "CPU and memory requests and limits of the Aerospike server container.",
                &[&resources],
            ),
            descriptor("paused", "Paused", "Stop applying changes until set back to false.", &[&boolean]),
        ],
        status_descriptors: vec![
            descriptor(
                "phase",
                "Phase",
                "InProgress while changes roll out, Completed when done, Error when the operator cannot proceed.",
                &["urn:alm:descriptor:io.kubernetes.phase"],
            ),
            descriptor(
                "conditions",
                "Conditions",
                "Available, Progressing, Degraded and ReconcileSuccess, with reasons and messages.",
                &["urn:alm:descriptor:io.kubernetes.conditions"],
            ),
            descriptor("size", "Size", "Number of pods of the applied spec.", &[&podcount]),
            descriptor("readyPods", "Ready Pods", "Pods that are Ready.", &["urn:alm:descriptor:text"]),
            descriptor("image", "Server Image", "Server image of the applied spec.", &["urn:alm:descriptor:text"]),
            descriptor(
                "pods",
                "Pods",
                "Per-pod state: addresses, node id, rack and the hashes of what each pod runs.",
                &[],
            ),
        ],
    };
    CsvBase {
        metadata: BaseMetadata { annotations },
        spec: BaseSpec {
            display_name: "Aerospike Kubernetes Operator".into(),
            description: include_str!("../../../templates/csv-description.md").into(),
            maturity: "alpha".into(),
            provider: Provider { name: "aerospike-rs".into(), url: "https://github.com/aerospike-rs".into() },
            maintainers: vec![Maintainer {
                name: "aerospike-rs maintainers".into(),
                email: "maintainers@aerospike-rs.dev".into(),
            }],
            links: vec![
                Link {
                    name: "Source Code".into(),
                    url: "https://github.com/aerospike-rs/aerospike-kubernetes-operator".into(),
                },
                Link { name: "Aerospike".into(), url: "https://aerospike.com".into() },
            ],
            keywords: ["aerospike", "database", "nosql", "key-value", "operator"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            icon: vec![Icon {
                base64data: base64::engine::general_purpose::STANDARD.encode(svg),
                mediatype: "image/svg+xml".into(),
            }],
            customresourcedefinitions: CrdDescriptions { owned: vec![cluster] },
        },
    }
}

/// Reads and checks config/manifests/csv-base.yaml; errors name the file and the field.
pub fn read_base(root: &Path) -> Result<CsvBase> {
    let path = root.join(paths::CSV_BASE);
    if !path.exists() {
        bail!("{}: missing (run `cargo xtask manifests` to create it)", paths::CSV_BASE);
    }
    let base: CsvBase = out::read_yaml(&path)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().replacen(&path.display().to_string(), paths::CSV_BASE, 1)))?;
    let f = paths::CSV_BASE;
    let a = &base.metadata.annotations;
    for key in GENERATED_ANNOTATIONS {
        if a.contains_key(*key) {
            bail!("{f}: metadata.annotations.{key} is generated by `cargo xtask bundle`; remove it from the base");
        }
    }
    match a.get("capabilities") {
        Some(c) if CAPABILITY_LEVELS.contains(&c.as_str()) => {}
        Some(c) => bail!("{f}: metadata.annotations.capabilities `{c}` is not one of {CAPABILITY_LEVELS:?}"),
        None => bail!("{f}: metadata.annotations.capabilities is missing"),
    }
    let categories = a.get("categories").with_context(|| format!("{f}: metadata.annotations.categories is missing"))?;
    for c in categories.split(',').map(str::trim) {
        if !CATEGORIES.contains(&c) {
            bail!("{f}: metadata.annotations.categories: `{c}` is not one of {CATEGORIES:?}");
        }
    }
    if a.get("description").is_none_or(|d| d.trim().is_empty()) {
        bail!("{f}: metadata.annotations.description (the one-line summary) is missing");
    }
    let s = &base.spec;
    if s.display_name.trim().is_empty() {
        bail!("{f}: spec.displayName is empty");
    }
    if s.description.trim().is_empty() {
        bail!("{f}: spec.description is empty");
    }
    if s.provider.name.trim().is_empty() {
        bail!("{f}: spec.provider.name is empty");
    }
    if s.maintainers.is_empty() {
        bail!("{f}: spec.maintainers is empty");
    }
    for (i, m) in s.maintainers.iter().enumerate() {
        let ok =
            m.email.split_once('@').is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !m.email.contains(' '));
        if m.name.trim().is_empty() || !ok {
            bail!("{f}: spec.maintainers[{i}]: needs a name and a valid email (found `{}` / `{}`)", m.name, m.email);
        }
    }
    for (i, l) in s.links.iter().enumerate() {
        if l.name.trim().is_empty() || !(l.url.starts_with("https://") || l.url.starts_with("http://")) {
            bail!("{f}: spec.links[{i}]: needs a name and an absolute http(s) url (found `{}`)", l.url);
        }
    }
    if s.icon.len() != 1 {
        bail!("{f}: spec.icon must have exactly one element");
    }
    let icon = &s.icon[0];
    if !ICON_MEDIA_TYPES.contains(&icon.mediatype.as_str()) {
        bail!("{f}: spec.icon[0].mediatype `{}` is not one of {ICON_MEDIA_TYPES:?}", icon.mediatype);
    }
    if base64::engine::general_purpose::STANDARD.decode(&icon.base64data).is_err() {
        bail!("{f}: spec.icon[0].base64data is not valid base64");
    }
    for (i, crd) in s.customresourcedefinitions.owned.iter().enumerate() {
        for (j, d) in crd.spec_descriptors.iter().chain(&crd.status_descriptors).enumerate() {
            if d.path.trim().is_empty() || d.display_name.trim().is_empty() {
                bail!("{f}: spec.customresourcedefinitions.owned[{i}]: descriptor {j} needs a path and a displayName");
            }
        }
    }
    Ok(base)
}
