//! The ClusterServiceVersion (operators.coreos.com/v1alpha1) as typed values ([`types`]), its editable base
//! (config/manifests/csv-base.yaml, [`base`]) and how a release's CSV is put together from the base and the code.
mod base;
mod types;

pub use base::*;
use std::collections::BTreeMap;
pub use types::*;

use aerospike_kubernetes_operator::rbac;
use aerospike_kubernetes_operator::webhook::register;
use anyhow::{Result, bail};
use serde_json::Value;

use super::manifests::{self, WatchNamespaces};
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
