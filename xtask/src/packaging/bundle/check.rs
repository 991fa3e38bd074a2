//! Our own checks of a bundle directory and of bundle.Dockerfile: what a broken generator or a hand edit would get
//! wrong, each problem naming the field at fault.
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::*;
use crate::packaging::{csv, graph, manifests};
use crate::project::{self, PACKAGE, paths};

const OLM_BUNDLE_KINDS: &[&str] = &[
    "ClusterServiceVersion",
    "CustomResourceDefinition",
    "Secret",
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "ServiceAccount",
    "Service",
    "Role",
    "RoleBinding",
    "PrometheusRule",
    "ServiceMonitor",
    "PodDisruptionBudget",
    "PriorityClass",
    "VerticalPodAutoscaler",
    "ConsoleYAMLSample",
    "ConsoleQuickStart",
    "ConsoleCLIDownload",
    "ConsoleLink",
    "NetworkPolicy",
];

/// Our own checks of a bundle (what a broken generator or a hand edit would get wrong). Each problem names the
/// field at fault.
pub fn check(b: &Contents) -> Vec<String> {
    let mut errors = Vec::new();
    let mut err = |s: String| errors.push(s);
    let expect = |k: &str, v: &str, err: &mut dyn FnMut(String)| {
        if b.annotations.get(k).map(String::as_str) != Some(v) {
            err(format!("metadata/annotations.yaml: annotations.{k} must be `{v}`, found {:?}", b.annotations.get(k)));
        }
    };
    expect(MEDIATYPE_KEY, "registry+v1", &mut err);
    expect(MANIFESTS_KEY, "manifests/", &mut err);
    expect(METADATA_KEY, "metadata/", &mut err);
    expect(PACKAGE_KEY, PACKAGE, &mut err);
    if !b.channels.contains(&b.default_channel) {
        err(format!(
            "metadata/annotations.yaml: default channel {} is not one of the channels {}",
            b.default_channel,
            b.channels.join(",")
        ));
    }

    let csv = &b.csv;
    let at = format!("manifests/{CSV_FILE}");
    if csv["apiVersion"] != csv::API_VERSION {
        err(format!("{at}: apiVersion must be {}", csv::API_VERSION));
    }
    let version = csv["spec"]["version"].as_str().and_then(|v| semver::Version::parse(v).ok());
    match &version {
        None => err(format!("{at}: spec.version is not a semantic version")),
        Some(v) => {
            if csv["metadata"]["name"] != project::csv_name(v).as_str() {
                err(format!("{at}: metadata.name must be {}", project::csv_name(v)));
            }
        }
    }
    if let Some(r) = csv["spec"]["replaces"].as_str() {
        let rv = r.strip_prefix(&format!("{PACKAGE}.v")).and_then(|v| semver::Version::parse(v).ok());
        match (rv, &version) {
            (None, _) => err(format!("{at}: spec.replaces `{r}` is not {PACKAGE}.v<version>")),
            (Some(rv), Some(v)) if rv >= *v => {
                err(format!("{at}: spec.replaces `{r}` is not older than spec.version {v}"))
            }
            _ => {}
        }
    }
    if let Some(range) = csv["metadata"]["annotations"]["olm.skipRange"].as_str()
        && let Err(e) = graph::parse_skip_range(range)
    {
        err(format!("{at}: metadata.annotations.olm.skipRange {e}"));
    }
    if csv["spec"]["minKubeVersion"].as_str().and_then(|v| semver::Version::parse(v).ok()).is_none() {
        err(format!("{at}: spec.minKubeVersion is missing or not a version"));
    }
    for mode in csv::INSTALL_MODES {
        let supported = csv["spec"]["installModes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["type"] == *mode && m["supported"] == true);
        if !supported {
            err(format!("{at}: spec.installModes: {mode} must be supported (the binary handles it)"));
        }
    }
    let annotations = &csv["metadata"]["annotations"];
    match annotations["capabilities"].as_str() {
        Some(c) if csv::CAPABILITY_LEVELS.contains(&c) => {}
        other => err(format!("{at}: metadata.annotations.capabilities {other:?} is not a capability level")),
    }
    for c in annotations["categories"].as_str().unwrap_or("").split(',') {
        if !csv::CATEGORIES.contains(&c.trim()) {
            err(format!("{at}: metadata.annotations.categories: `{c}` is not a known category"));
        }
    }
    if annotations.get("createdAt").is_some_and(|c| c.as_str().is_none_or(|c| c.is_empty())) {
        err(format!("{at}: metadata.annotations.createdAt is empty"));
    }
    for key in ["operatorframework.io/os.linux", "operatorframework.io/arch.amd64"] {
        if csv["metadata"]["labels"][key] != "supported" {
            err(format!("{at}: metadata.labels.{key} must be `supported`"));
        }
    }
    if csv["spec"]["icon"].as_array().is_none_or(|i| i.len() != 1) {
        err(format!("{at}: spec.icon must have one element"));
    }
    // Install strategy.
    let strategy = &csv["spec"]["install"];
    if strategy["strategy"] != "deployment" {
        err(format!("{at}: spec.install.strategy must be deployment"));
    }
    let deployments = strategy["spec"]["deployments"].as_array().cloned().unwrap_or_default();
    if deployments.is_empty() {
        err(format!("{at}: spec.install.spec.deployments is empty"));
    }
    let related: Vec<&str> =
        csv["spec"]["relatedImages"].as_array().into_iter().flatten().filter_map(|r| r["image"].as_str()).collect();
    for (i, d) in deployments.iter().enumerate() {
        let pod = &d["spec"]["template"]["spec"];
        let sa = pod["serviceAccountName"].as_str().unwrap_or("default");
        for key in ["permissions", "clusterPermissions"] {
            for (j, p) in strategy["spec"][key].as_array().into_iter().flatten().enumerate() {
                if p["serviceAccountName"] != sa {
                    err(format!("{at}: spec.install.spec.{key}[{j}].serviceAccountName must be the Deployment's {sa}"));
                }
                for r in p["rules"].as_array().into_iter().flatten() {
                    if r.to_string().contains("\"*\"") {
                        err(format!("{at}: spec.install.spec.{key}[{j}]: wildcard rule {r}"));
                    }
                }
            }
        }
        for (j, c) in pod["containers"].as_array().into_iter().flatten().enumerate() {
            let p = format!("{at}: spec.install.spec.deployments[{i}].spec.template.spec.containers[{j}]");
            let req = &c["resources"]["requests"];
            if req["cpu"].is_null() || req["memory"].is_null() {
                err(format!("{p}.resources.requests needs cpu and memory"));
            }
            let image = c["image"].as_str().unwrap_or_default();
            if !related.contains(&image) {
                err(format!("{p}.image {image} is not in spec.relatedImages"));
            }
            if c["name"] == project::CONTAINER && annotations["containerImage"] != image {
                err(format!("{at}: metadata.annotations.containerImage must be the manager image {image}"));
            }
            let watch = c["env"].as_array().into_iter().flatten().find(|e| e["name"] == "WATCH_NAMESPACE");
            if watch.is_none_or(|w| {
                w["valueFrom"]["fieldRef"]["fieldPath"] != "metadata.annotations['olm.targetNamespaces']"
            }) {
                err(format!("{p}.env: WATCH_NAMESPACE must come from metadata.annotations['olm.targetNamespaces']"));
            }
            let sc = &c["securityContext"];
            if sc["allowPrivilegeEscalation"] != false
                || sc["runAsNonRoot"] != true
                || sc["readOnlyRootFilesystem"] != true
            {
                err(format!("{p}.securityContext does not meet the restricted Pod Security Standard"));
            }
        }
    }
    // Owned CRDs <-> CRDs in the bundle.
    let owned: Vec<(String, String)> = csv["spec"]["customresourcedefinitions"]["owned"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (o["name"].as_str().unwrap_or_default().to_string(), o["version"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    for crd in &b.crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        for v in crd["spec"]["versions"].as_array().into_iter().flatten().filter(|v| v["served"] == true) {
            let version = v["name"].as_str().unwrap_or_default();
            if !owned.contains(&(name.to_string(), version.to_string())) {
                err(format!(
                    "{at}: spec.customresourcedefinitions.owned lacks {name} {version}, which the bundle ships"
                ));
            }
        }
    }
    for (name, version) in &owned {
        let shipped = b.crds.iter().any(|c| {
            c["metadata"]["name"] == name.as_str()
                && c["spec"]["versions"].as_array().into_iter().flatten().any(|v| v["name"] == version.as_str())
        });
        if !shipped {
            err(format!(
                "{at}: spec.customresourcedefinitions.owned names {name} {version}, which the bundle does not ship"
            ));
        }
    }
    // alm-examples.
    match annotations["alm-examples"].as_str().map(serde_json::from_str::<Vec<Value>>) {
        None => err(format!("{at}: metadata.annotations.alm-examples is missing")),
        Some(Err(e)) => err(format!("{at}: metadata.annotations.alm-examples is not a JSON array: {e}")),
        Some(Ok(examples)) => {
            for (i, ex) in examples.iter().enumerate() {
                if let Err(e) =
                    manifests::check_cr(&b.crds, &format!("{at}: metadata.annotations.alm-examples[{i}]"), ex)
                {
                    err(e.to_string());
                }
            }
        }
    }
    for o in &b.objects {
        let kind = o["kind"].as_str().unwrap_or_default();
        if !OLM_BUNDLE_KINDS.contains(&kind) {
            err(format!("manifests: {kind} {} is not a kind OLM installs from a bundle", o["metadata"]["name"]));
        }
    }
    errors
}

/// Checks that bundle.Dockerfile labels the image with exactly the bundle's annotations.
pub fn check_dockerfile(root: &Path, annotations: &BTreeMap<String, String>) -> Vec<String> {
    let path = root.join(paths::BUNDLE_DOCKERFILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return vec![format!("{}: missing", paths::BUNDLE_DOCKERFILE)];
    };
    let labels: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("LABEL "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect();
    if labels != *annotations {
        return vec![format!(
            "{}: LABELs {:?} differ from bundle/metadata/annotations.yaml {:?}",
            paths::BUNDLE_DOCKERFILE,
            labels,
            annotations
        )];
    }
    Vec::new()
}
