//! The OLM install examples (config/examples/ and its README): CatalogSource, OperatorGroups, Subscriptions.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use crate::out::{self, Staged};
use crate::project::{self, CATALOG_IMAGE, DEFAULT_CHANNEL, OPERATOR_NAMESPACE, PACKAGE, paths};

/// Namespace of the CatalogSource: OLM's global catalog namespace in an upstream install.
pub const CATALOG_NAMESPACE: &str = "olm";
pub const CATALOG_SOURCE: &str = "aerospike-operator-catalog";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Object<S: Serialize> {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: S,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CatalogSourceSpec {
    source_type: &'static str,
    image: String,
    display_name: &'static str,
    publisher: &'static str,
    update_strategy: UpdateStrategy,
    grpc_pod_config: GrpcPodConfig,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateStrategy {
    registry_poll: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GrpcPodConfig {
    security_context_config: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionSpec {
    channel: &'static str,
    name: &'static str,
    source: &'static str,
    source_namespace: &'static str,
    install_plan_approval: &'static str,
    #[serde(rename = "startingCSV", skip_serializing_if = "Option::is_none")]
    starting_csv: Option<String>,
}

fn meta(name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some(namespace.into()), ..Default::default() }
}

/// One example file: name, what it is for, the documents.
pub struct Example {
    pub file: &'static str,
    pub title: &'static str,
    pub about: &'static str,
    pub docs: Vec<Value>,
}

/// An OperatorGroup in the operator's namespace (the OLM objects' one builder); no targets is AllNamespaces.
fn operator_group(name: &str, targets: &[&str]) -> Value {
    ako_testbed::olm::operator_group(name, OPERATOR_NAMESPACE, (!targets.is_empty()).then_some(targets))
}

fn subscription(approval: &'static str, starting: Option<String>) -> Value {
    out::value(&Object {
        api_version: "operators.coreos.com/v1alpha1",
        kind: "Subscription",
        metadata: meta(PACKAGE, OPERATOR_NAMESPACE),
        spec: SubscriptionSpec {
            channel: DEFAULT_CHANNEL,
            name: PACKAGE,
            source: CATALOG_SOURCE,
            source_namespace: CATALOG_NAMESPACE,
            install_plan_approval: approval,
            starting_csv: starting,
        },
    })
}

pub fn examples() -> Vec<Example> {
    let catalog_source = out::value(&Object {
        api_version: "operators.coreos.com/v1alpha1",
        kind: "CatalogSource",
        metadata: meta(CATALOG_SOURCE, CATALOG_NAMESPACE),
        spec: CatalogSourceSpec {
            source_type: "grpc",
            image: CATALOG_IMAGE.into(),
            display_name: "Aerospike Kubernetes Operator",
            publisher: "aerospike-rs",
            update_strategy: UpdateStrategy { registry_poll: BTreeMap::from([("interval", "30m")]) },
            grpc_pod_config: GrpcPodConfig { security_context_config: "restricted" },
        },
    });
    let version = project::workspace_version();
    vec![
        Example {
            file: "catalog-source.yaml",
            title: "CatalogSource",
            about: "Makes the catalog image known to OLM (in OLM's global catalog namespace `olm`).",
            docs: vec![catalog_source],
        },
        Example {
            file: "operator-group-own-namespace.yaml",
            title: "OperatorGroup: OwnNamespace",
            about: "The operator watches only the namespace it is installed in.",
            docs: vec![operator_group(PACKAGE, &[OPERATOR_NAMESPACE])],
        },
        Example {
            file: "operator-group-single-namespace.yaml",
            title: "OperatorGroup: SingleNamespace",
            about: "The operator runs in `aerospike-operator` and watches one other namespace, `aerospike`.",
            docs: vec![operator_group(PACKAGE, &["aerospike"])],
        },
        Example {
            file: "operator-group-multi-namespace.yaml",
            title: "OperatorGroup: MultiNamespace",
            about: "The operator watches two namespaces, `aerospike-a` and `aerospike-b`.",
            docs: vec![operator_group(PACKAGE, &["aerospike-a", "aerospike-b"])],
        },
        Example {
            file: "operator-group-all-namespaces.yaml",
            title: "OperatorGroup: AllNamespaces",
            about: "No target namespaces: the operator watches every namespace.",
            docs: vec![operator_group(PACKAGE, &[])],
        },
        Example {
            file: "subscription-automatic.yaml",
            title: "Subscription: automatic upgrades",
            about: "Installs from channel `stable` and upgrades as soon as a new release is in the catalog.",
            docs: vec![subscription("Automatic", None)],
        },
        Example {
            file: "subscription-manual.yaml",
            title: "Subscription: manual approval",
            about: "Installs a given release and waits for an approved InstallPlan before each upgrade.",
            docs: vec![subscription("Manual", Some(project::csv_name(&version)))],
        },
    ]
}

/// The README, from its tera template (xtask/templates/).
fn readme(context: &tera::Context) -> Result<String> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_template("examples-README.md", include_str!("../../templates/examples-README.md.tera"))
        .context("parsing the examples README template")?;
    tera.render("examples-README.md", context).context("rendering template examples-README.md")
}

/// Stages config/examples/.
pub fn generate(staged: &mut Staged) -> Result<()> {
    staged.own_dir(paths::CONFIG_EXAMPLES);
    let mut items = Vec::new();
    for ex in examples() {
        let yaml = if ex.docs.len() == 1 { out::to_yaml(&ex.docs[0])? } else { out::to_yaml_stream(&ex.docs)? };
        staged.yaml("examples", format!("{}/{}", paths::CONFIG_EXAMPLES, ex.file), yaml.clone());
        let mut item = tera::Context::new();
        item.insert("file", ex.file);
        item.insert("title", ex.title);
        item.insert("about", ex.about);
        item.insert("yaml", yaml.trim_end());
        items.push(item.into_json());
    }
    let mut c = tera::Context::new();
    c.insert("examples", &items);
    c.insert("package", PACKAGE);
    c.insert("namespace", OPERATOR_NAMESPACE);
    c.insert("catalog_namespace", CATALOG_NAMESPACE);
    c.insert("catalog_source", CATALOG_SOURCE);
    c.insert("channel", DEFAULT_CHANNEL);
    staged.file(format!("{}/README.md", paths::CONFIG_EXAMPLES), readme(&c)?);
    Ok(())
}

/// Writes config/examples/ (`cargo xtask examples`).
pub fn write(root: &Path) -> Result<()> {
    let mut staged = Staged::new(root);
    generate(&mut staged)?;
    let count = staged.files().len();
    staged.commit()?;
    eprintln!("examples: wrote {count} files under {}/", paths::CONFIG_EXAMPLES);
    Ok(())
}
