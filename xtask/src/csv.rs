//! The ClusterServiceVersion (operators.coreos.com/v1alpha1) as typed values, its editable base
//! (config/manifests/csv-base.yaml) and how a release's CSV is put together from the base and the code.
use std::collections::BTreeMap;
use std::path::Path;

use aerospike_kubernetes_operator::rbac;
use aerospike_kubernetes_operator::webhook::register;
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::RuleWithOperations;
use k8s_openapi::api::apps::v1::DeploymentSpec;
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifests::{self, WatchNamespaces};
use crate::out;
use crate::project::{self, ARCHITECTURES, MIN_KUBE_VERSION, OPERATING_SYSTEMS, OPERATOR_NAMESPACE, PACKAGE, paths};

pub const API_VERSION: &str = "operators.coreos.com/v1alpha1";
pub const KIND: &str = "ClusterServiceVersion";

pub const CAPABILITY_LEVELS: &[&str] =
    &["Basic Install", "Seamless Upgrades", "Full Lifecycle", "Deep Insights", "Auto Pilot"];
pub const CATEGORIES: &[&str] = &[
    "AI/Machine Learning",
    "Application Runtime",
    "Big Data",
    "Cloud Provider",
    "Developer Tools",
    "Database",
    "Integration & Delivery",
    "Logging & Tracing",
    "Monitoring",
    "Networking",
    "OpenShift Optional",
    "Security",
    "Storage",
    "Streaming & Messaging",
];
const ICON_MEDIA_TYPES: &[&str] = &["image/gif", "image/jpeg", "image/png", "image/svg+xml"];
pub const INSTALL_MODES: &[&str] = &["OwnNamespace", "SingleNamespace", "MultiNamespace", "AllNamespaces"];

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterServiceVersion {
    pub api_version: String,
    pub kind: String,
    pub metadata: CsvMetadata,
    pub spec: CsvSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CsvMetadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CsvSpec {
    pub display_name: String,
    pub description: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skips: Vec<String>,
    pub min_kube_version: String,
    pub maturity: String,
    pub provider: Provider,
    pub maintainers: Vec<Maintainer>,
    pub links: Vec<Link>,
    pub keywords: Vec<String>,
    pub icon: Vec<Icon>,
    pub install_modes: Vec<InstallMode>,
    pub install: Install,
    pub customresourcedefinitions: CrdDescriptions,
    pub related_images: Vec<RelatedImage>,
    /// Admission webhooks OLM creates for us: it mints the serving certificate, mounts it at the operator's
    /// default --webhook-cert-dir, creates the Service and the configurations scoped to the OperatorGroup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhookdefinitions: Vec<WebhookDefinition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDefinition {
    #[serde(rename = "type")]
    pub type_: String,
    pub generate_name: String,
    pub deployment_name: String,
    pub container_port: i32,
    pub target_port: i32,
    pub webhook_path: String,
    pub admission_review_versions: Vec<String>,
    pub failure_policy: String,
    pub side_effects: String,
    pub timeout_seconds: i32,
    pub rules: Vec<RuleWithOperations>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Maintainer {
    pub name: String,
    pub email: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub name: String,
    pub url: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Icon {
    pub base64data: String,
    pub mediatype: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct InstallMode {
    #[serde(rename = "type")]
    pub type_: String,
    pub supported: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Install {
    pub strategy: String,
    pub spec: StrategySpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StrategySpec {
    pub deployments: Vec<NamedDeployment>,
    pub permissions: Vec<Permissions>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_permissions: Vec<Permissions>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct NamedDeployment {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label: BTreeMap<String, String>,
    pub spec: DeploymentSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    pub service_account_name: String,
    pub rules: Vec<PolicyRule>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CrdDescriptions {
    #[serde(default)]
    pub owned: Vec<CrdDescription>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrdDescription {
    pub name: String,
    pub version: String,
    pub kind: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spec_descriptors: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_descriptors: Vec<Descriptor>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceReference {
    pub kind: String,
    pub name: String,
    pub version: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Descriptor {
    pub path: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(rename = "x-descriptors", default, skip_serializing_if = "Vec::is_empty")]
    pub x_descriptors: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RelatedImage {
    pub name: String,
    pub image: String,
}

// ---------------------------------------------------------------------------------------------------------------
// The editable base: what people write about the operator (everything else comes from the code).

/// config/manifests/csv-base.yaml: CSV metadata a human edits. Unknown fields are refused, so a typo names the
/// field instead of being silently dropped.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvBase {
    pub metadata: BaseMetadata,
    pub spec: BaseSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BaseMetadata {
    /// capabilities, categories, description, repository, support, ... (alm-examples, containerImage, createdAt
    /// and olm.skipRange are generated).
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaseSpec {
    pub display_name: String,
    pub description: String,
    pub maturity: String,
    pub provider: Provider,
    pub maintainers: Vec<Maintainer>,
    pub links: Vec<Link>,
    pub keywords: Vec<String>,
    pub icon: Vec<Icon>,
    /// Display names, descriptions, resources and descriptors of the owned CRDs. Top-level spec and status
    /// fields that have no descriptor here get one generated from the CRD schema.
    pub customresourcedefinitions: CrdDescriptions,
}

const GENERATED_ANNOTATIONS: &[&str] = &["alm-examples", "containerImage", "createdAt", "olm.skipRange"];

fn descriptor(path: &str, name: &str, description: &str, x: &[&str]) -> Descriptor {
    Descriptor {
        path: path.into(),
        display_name: name.into(),
        description: description.into(),
        x_descriptors: x.iter().map(|s| s.to_string()).collect(),
    }
}

const UI: &str = "urn:alm:descriptor:com.tectonic.ui:";

fn ui(kind: &str) -> String {
    format!("{UI}{kind}")
}

/// What `cargo xtask manifests` writes when config/manifests/csv-base.yaml does not exist yet.
pub fn default_base() -> CsvBase {
    let svg = include_str!("../assets/icon.svg");
    let annotations = BTreeMap::from([
        ("capabilities".to_string(), "Full Lifecycle".to_string()),
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
            description: include_str!("../templates/csv-description.md").into(),
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

// ---------------------------------------------------------------------------------------------------------------
// Putting a release's CSV together.

/// What a release adds to the base.
#[derive(Clone, Debug)]
pub struct Release {
    pub version: semver::Version,
    pub replaces: Option<String>,
    pub skip_range: Option<String>,
    pub created_at: Option<String>,
}

/// "rackConfig" -> "Rack Config", "disablePDB" -> "Disable PDB".
pub fn display_name(field: &str) -> String {
    let chars: Vec<char> = field.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_ascii_uppercase()
            && prev.is_some_and(|p| {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
            });
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
        .into_iter()
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_paragraph(s: &str) -> String {
    s.split("\n\n").next().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Descriptors for top-level `section` ("spec" or "status") fields the base does not describe, from the schema.
fn complete_descriptors(base: &[Descriptor], schema: &Value, section: &str) -> Vec<Descriptor> {
    let mut out: BTreeMap<String, Descriptor> = base.iter().map(|d| (d.path.clone(), d.clone())).collect();
    let props = schema["properties"][section]["properties"].as_object().cloned().unwrap_or_default();
    let spec_props = &schema["properties"]["spec"]["properties"];
    for (field, prop) in &props {
        if out.contains_key(field) {
            continue;
        }
        let mut description = prop["description"].as_str().map(first_paragraph).unwrap_or_default();
        if description.is_empty() && section == "status" {
            if let Some(spec_desc) = spec_props[field]["description"].as_str() {
                description = format!("Applied spec.{field}: {}", first_paragraph(spec_desc));
            } else if spec_props.get(field).is_some() {
                description = format!("Applied value of spec.{field}.");
            } else {
                description = format!("{} as last applied by the operator.", display_name(field));
            }
        }
        let x = match (section, prop["type"].as_str()) {
            ("spec", Some("boolean")) => vec![ui("booleanSwitch")],
            ("spec", Some("integer")) => vec![ui("number")],
            ("spec", Some("string")) => vec![ui("text")],
            ("spec", _) if prop["x-kubernetes-int-or-string"] == true => vec![ui("text")],
            ("status", Some("boolean" | "integer" | "string")) => vec!["urn:alm:descriptor:text".to_string()],
            _ => vec![],
        };
        out.insert(
            field.clone(),
            Descriptor { path: field.clone(), display_name: display_name(field), description, x_descriptors: x },
        );
    }
    out.into_values().collect()
}

/// The owned-CRD descriptions: the base's, completed from the generated CRDs.
pub fn owned_crds(base: &CsvBase, crds: &[Value]) -> Result<Vec<CrdDescription>> {
    let mut owned = Vec::new();
    for crd in crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
        let versions = crd["spec"]["versions"].as_array().cloned().unwrap_or_default();
        for version in versions.iter().filter(|v| v["served"] == true) {
            let v = version["name"].as_str().unwrap_or_default();
            let schema = &version["schema"]["openAPIV3Schema"];
            let from_base = base.spec.customresourcedefinitions.owned.iter().find(|o| o.name == name && o.version == v);
            let b = from_base.cloned().unwrap_or_default();
            owned.push(CrdDescription {
                name: name.to_string(),
                version: v.to_string(),
                kind: kind.to_string(),
                display_name: if b.display_name.is_empty() { display_name(kind) } else { b.display_name },
                description: if b.description.is_empty() {
                    schema["description"].as_str().map(first_paragraph).unwrap_or_default()
                } else {
                    b.description
                },
                resources: b.resources,
                spec_descriptors: complete_descriptors(&b.spec_descriptors, schema, "spec"),
                status_descriptors: complete_descriptors(&b.status_descriptors, schema, "status"),
            });
        }
    }
    for o in &base.spec.customresourcedefinitions.owned {
        if !owned.iter().any(|c| c.name == o.name && c.version == o.version) {
            bail!(
                "{}: spec.customresourcedefinitions.owned: {} {} is not a CRD version the operator serves",
                paths::CSV_BASE,
                o.name,
                o.version
            );
        }
    }
    Ok(owned)
}

/// `alm-examples`: the samples as a JSON array, without their namespace (the console picks one).
pub fn alm_examples(samples: &[(String, Value)]) -> String {
    let examples: Vec<Value> = samples
        .iter()
        .map(|(_, s)| {
            let mut s = s.clone();
            if let Some(m) = s["metadata"].as_object_mut() {
                m.remove("namespace");
            }
            s
        })
        .collect();
    serde_json::to_string_pretty(&examples).expect("values serialise")
}

/// The CSV's webhookdefinitions, read off the configurations the operator itself registers outside OLM (one
/// source for names, paths, rules and policies).
pub fn webhook_definitions() -> Result<Vec<WebhookDefinition>> {
    let target = register::Target::Service {
        name: format!("{PACKAGE}-service"),
        namespace: OPERATOR_NAMESPACE.into(),
        port: project::WEBHOOK_PORT,
    };
    let mutating = out::value(&register::mutating_configuration(&target, None));
    let validating = out::value(&register::validating_configuration(&target, None));
    let mut defs = Vec::new();
    for (type_, config) in [("MutatingAdmissionWebhook", mutating), ("ValidatingAdmissionWebhook", validating)] {
        for w in config["webhooks"].as_array().into_iter().flatten() {
            let field = |pointer: &str| w.pointer(pointer).cloned().unwrap_or(Value::Null);
            let text = |pointer: &str| field(pointer).as_str().unwrap_or_default().to_string();
            defs.push(WebhookDefinition {
                type_: type_.into(),
                generate_name: text("/name"),
                deployment_name: PACKAGE.into(),
                container_port: project::WEBHOOK_PORT,
                target_port: project::WEBHOOK_PORT,
                webhook_path: text("/clientConfig/service/path"),
                admission_review_versions: serde_json::from_value(field("/admissionReviewVersions"))?,
                failure_policy: text("/failurePolicy"),
                side_effects: text("/sideEffects"),
                timeout_seconds: field("/timeoutSeconds").as_i64().unwrap_or(10) as i32,
                rules: serde_json::from_value(field("/rules"))?,
            });
        }
    }
    Ok(defs)
}

/// The CSV of one release.
pub fn build(base: &CsvBase, release: &Release, samples: &[(String, Value)]) -> Result<ClusterServiceVersion> {
    let crds = manifests::crd_values();
    let image = project::operator_image(&release.version);
    let mut annotations = base.metadata.annotations.clone();
    annotations.insert("alm-examples".into(), alm_examples(samples));
    annotations.insert("containerImage".into(), image.clone());
    if let Some(created) = &release.created_at {
        annotations.insert("createdAt".into(), created.clone());
    }
    if let Some(range) = &release.skip_range {
        annotations.insert("olm.skipRange".into(), range.clone());
    }
    let mut labels = BTreeMap::new();
    for arch in ARCHITECTURES {
        labels.insert(format!("operatorframework.io/arch.{arch}"), "supported".to_string());
    }
    for os in OPERATING_SYSTEMS {
        labels.insert(format!("operatorframework.io/os.{os}"), "supported".to_string());
    }
    let mut namespaced = rbac::namespaced_rules();
    namespaced.extend(rbac::leader_election_rules());
    let spec = CsvSpec {
        display_name: base.spec.display_name.clone(),
        description: base.spec.description.clone(),
        version: release.version.to_string(),
        replaces: release.replaces.clone(),
        skips: vec![],
        min_kube_version: MIN_KUBE_VERSION.to_string(),
        maturity: base.spec.maturity.clone(),
        provider: base.spec.provider.clone(),
        maintainers: base.spec.maintainers.clone(),
        links: base.spec.links.clone(),
        keywords: base.spec.keywords.clone(),
        icon: base.spec.icon.clone(),
        install_modes: INSTALL_MODES.iter().map(|m| InstallMode { type_: m.to_string(), supported: true }).collect(),
        install: Install {
            strategy: "deployment".into(),
            spec: StrategySpec {
                deployments: vec![NamedDeployment {
                    name: PACKAGE.into(),
                    label: manifests::operator_labels(),
                    spec: manifests::deployment_spec(&image, WatchNamespaces::OlmTargetNamespaces),
                }],
                permissions: vec![Permissions { service_account_name: PACKAGE.into(), rules: namespaced }],
                // Omitted while the operator needs nothing cluster-scoped (OLM then creates no ClusterRole).
                cluster_permissions: Some(rbac::cluster_rules())
                    .filter(|rules| !rules.is_empty())
                    .map(|rules| Permissions { service_account_name: PACKAGE.into(), rules })
                    .into_iter()
                    .collect(),
            },
        },
        customresourcedefinitions: CrdDescriptions { owned: owned_crds(base, &crds)? },
        related_images: vec![RelatedImage { name: PACKAGE.into(), image }],
        webhookdefinitions: webhook_definitions()?,
    };
    Ok(ClusterServiceVersion {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        metadata: CsvMetadata { name: project::csv_name(&release.version), annotations, labels },
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert_eq!(display_name("rackConfig"), "Rack Config");
        assert_eq!(display_name("disablePDB"), "Disable PDB");
        assert_eq!(display_name("enableRackIDOverride"), "Enable Rack ID Override");
        assert_eq!(display_name("k8sNodeBlockList"), "K8s Node Block List");
        assert_eq!(display_name("AerospikeCluster"), "Aerospike Cluster");
    }

    #[test]
    fn default_base_passes_its_own_checks() {
        let tmp = std::env::temp_dir().join(format!("xtask-csv-base-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("config/manifests")).unwrap();
        std::fs::write(tmp.join(paths::CSV_BASE), out::to_yaml(&default_base()).unwrap()).unwrap();
        assert_eq!(read_base(&tmp).unwrap(), default_base());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
