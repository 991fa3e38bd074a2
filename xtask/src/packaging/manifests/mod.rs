//! The plain Kubernetes install under config/ (CRDs, RBAC, the operator Deployment, the webhook), the sample
//! AerospikeClusters and the scorecard configuration (scorecard/): the objects every later packaging step starts
//! from (`cargo xtask manifests` writes them, and once the editable CSV base of [`super::csv`]).
mod deployment;
mod samples;

pub use deployment::*;
pub use samples::*;
use std::collections::BTreeMap;
use std::path::Path;

use aerospike_kubernetes_operator::api::{self};
use anyhow::{Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use super::{schema_check, scorecard};
use crate::out::{self, Staged};
use crate::project::{self, PACKAGE, paths};

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
        staged.yaml("manifests", format!("{}/{name}.yaml", paths::CONFIG_CRD), out::to_yaml(crd)?);
    }

    staged.own_dir(paths::CONFIG_RBAC);
    for (file, objects) in rbac_objects()? {
        staged.yaml("manifests", format!("{}/{file}", paths::CONFIG_RBAC), out::to_yaml_stream(&objects)?);
    }

    staged.own_dir(paths::CONFIG_MANAGER);
    staged.yaml(
        "manifests",
        format!("{}/manager.yaml", paths::CONFIG_MANAGER),
        out::to_yaml_stream(&manager_objects(&version))?,
    );

    staged.own_dir(paths::CONFIG_WEBHOOK);
    staged.yaml(
        "manifests",
        format!("{}/webhook.yaml", paths::CONFIG_WEBHOOK),
        out::to_yaml_stream(&webhook_objects())?,
    );

    staged.own_dir(paths::CONFIG_SAMPLES);
    let clusters = samples().into_iter().map(|(file, sample)| (file, out::value(&sample)));
    for (file, v) in clusters.chain(backup_samples()) {
        let rel = format!("{}/{file}", paths::CONFIG_SAMPLES);
        check_cr(&crds, &rel, &v)?;
        staged.yaml("manifests", rel, out::to_yaml(&v)?);
    }

    staged.own_dir(paths::SCORECARD);
    staged.yaml("manifests", format!("{}/config.yaml", paths::SCORECARD), out::to_yaml(&scorecard::config())?);
    Ok(())
}
