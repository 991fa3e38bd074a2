//! The static checks the basic and OLM scorecard tests make (the tests of [`crate::packaging::scorecard`]'s
//! configuration), run against a bundle directory without a cluster (`cargo xtask scorecard`).
use serde_json::Value;

use super::Contents;
use crate::packaging::manifests;

/// Result of one test: its name and what failed (empty: passed).
#[derive(Debug)]
pub struct Outcome {
    pub test: &'static str,
    pub errors: Vec<String>,
}

fn owned<'a>(csv: &'a Value, kind: &str) -> Option<&'a Value> {
    csv["spec"]["customresourcedefinitions"]["owned"].as_array()?.iter().find(|o| o["kind"] == kind)
}

fn crd_for<'a>(crds: &'a [Value], kind: &str) -> Option<&'a Value> {
    crds.iter().find(|c| c["spec"]["names"]["kind"] == kind)
}

fn covered(descriptors: &Value, field: &str) -> bool {
    descriptors
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["path"].as_str())
        .any(|p| p == field || p.split(['.', '[']).next() == Some(field))
}

/// Runs the six tests' static checks against a parsed bundle.
pub fn check(b: &Contents) -> Vec<Outcome> {
    let csv = &b.csv;
    let examples: Vec<Value> = csv["metadata"]["annotations"]["alm-examples"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let name = |cr: &Value| {
        format!("{} {}", cr["kind"].as_str().unwrap_or("?"), cr["metadata"]["name"].as_str().unwrap_or("?"))
    };
    let mut results = Vec::new();

    // basic-check-spec: every example has a non-empty spec.
    let mut errors = Vec::new();
    if examples.is_empty() {
        errors.push("alm-examples has no custom resources".to_string());
    }
    for cr in &examples {
        if cr["spec"].as_object().is_none_or(|s| s.is_empty()) {
            errors.push(format!("{}: spec is missing or empty", name(cr)));
        }
    }
    results.push(Outcome { test: "basic-check-spec", errors });

    // olm-bundle-validation: the bundle checks.
    results.push(Outcome { test: "olm-bundle-validation", errors: super::check(b) });

    // olm-crds-have-validation: each example's spec fields are in the CRD schema, and the example validates.
    let mut errors = Vec::new();
    for cr in &examples {
        let kind = cr["kind"].as_str().unwrap_or_default();
        let Some(crd) = crd_for(&b.crds, kind) else {
            errors.push(format!("{}: no CRD in the bundle", name(cr)));
            continue;
        };
        for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
            let schema = &v["schema"]["openAPIV3Schema"];
            let spec_props = &schema["properties"]["spec"]["properties"];
            if !spec_props.is_object() {
                errors.push(format!("{} version {}: no schema for spec", kind, v["name"]));
                continue;
            }
            for field in cr["spec"].as_object().into_iter().flatten().map(|(k, _)| k) {
                if spec_props.get(field).is_none() {
                    errors.push(format!("{}: spec.{field} has no validation in the CRD", name(cr)));
                }
            }
        }
        if let Err(e) = manifests::check_cr(&b.crds, &name(cr), cr) {
            errors.push(e.to_string());
        }
    }
    results.push(Outcome { test: "olm-crds-have-validation", errors });

    // olm-crds-have-resources: every owned CRD lists the resources it creates.
    let mut errors = Vec::new();
    for o in csv["spec"]["customresourcedefinitions"]["owned"].as_array().into_iter().flatten() {
        let resources = o["resources"].as_array().cloned().unwrap_or_default();
        if resources.is_empty() {
            errors.push(format!("owned CRD {}: no resources listed", o["name"]));
        }
        for r in &resources {
            if r["kind"].as_str().is_none_or(str::is_empty) || r["version"].as_str().is_none_or(str::is_empty) {
                errors.push(format!("owned CRD {}: resource {r} needs kind and version", o["name"]));
            }
        }
    }
    results.push(Outcome { test: "olm-crds-have-resources", errors });

    // olm-spec-descriptors / olm-status-descriptors: every field users set (each example's spec fields, and
    // every top-level spec field of the schema) and every status field of the schema has a descriptor.
    for (test, section, key) in
        [("olm-spec-descriptors", "spec", "specDescriptors"), ("olm-status-descriptors", "status", "statusDescriptors")]
    {
        let mut errors = Vec::new();
        let kinds: Vec<&str> = csv["spec"]["customresourcedefinitions"]["owned"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["kind"].as_str())
            .collect();
        for kind in kinds {
            let o = owned(csv, kind).expect("listed above");
            let Some(crd) = crd_for(&b.crds, kind) else { continue };
            for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
                let props = &v["schema"]["openAPIV3Schema"]["properties"][section]["properties"];
                for field in props.as_object().into_iter().flatten().map(|(k, _)| k) {
                    if !covered(&o[key], field) {
                        errors.push(format!("{kind}: {section}.{field} has no {key} entry"));
                    }
                }
            }
            for cr in examples.iter().filter(|cr| cr["kind"] == kind) {
                for field in cr[section].as_object().into_iter().flatten().map(|(k, _)| k) {
                    if !covered(&o[key], field) {
                        errors.push(format!("{}: {section}.{field} has no {key} entry", name(cr)));
                    }
                }
            }
        }
        results.push(Outcome { test, errors });
    }
    results
}
