//! API fidelity: our generated CRD compared, property path by property path, with the reference operator's
//! AerospikeCluster v1 schema (`reference/aerospikecluster-v1-paths.tsv`, from its config/crd/bases at 4.5.0).
//!
//! For every reference path: it exists in ours (or lies under a part of ours that keeps unknown fields), with the
//! same type, the same enum values, the same default, the same required mark and the same numeric limits. Every
//! difference must match an entry of [`ALLOWED`], which says why it is deliberate; an entry that matches nothing
//! fails the test too, so the list cannot go stale. Run with `--nocapture` to print the summary.
//!
//! `AKO_FIDELITY_CRD=<file>` compares a CRD file (e.g. an older generated one) instead of `crds()`.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

const REFERENCE: &str = include_str!("reference/aerospikecluster-v1-paths.tsv");

/// Kinds of difference, from the worst (the API server drops the field) to the mildest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// No such path in ours: the API server prunes the field.
    Missing,
    /// Under a free-form part of ours: kept as written, but neither typed nor validated.
    Open,
    Type,
    Enum,
    Default,
    Required,
    Limit,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A deliberate difference: `pattern` (`*` matches any run of characters) over the reference path, the kind of
/// difference it covers, and why.
pub(crate) struct Allowed {
    kind: Kind,
    pattern: &'static str,
    reason: &'static str,
}

pub(crate) const fn allow(kind: Kind, pattern: &'static str, reason: &'static str) -> Allowed {
    Allowed { kind, pattern, reason }
}

/// Every deliberate difference from the reference's schema. README's "API differences" section lists the same.
const ALLOWED: &[Allowed] = &[
    // Temporary: someone is typing OperatorClientCertSpec (src/api/access.rs) in another branch; remove these two
    // entries when that lands.
    allow(
        Kind::Open,
        "status.operatorClientCertSpec.*",
        "the status copy stays open for CRD size; the spec's field is typed",
    ),
    // Copies of the spec (status, a rack's effective storage and pod spec) type our own fields but keep embedded
    // Kubernetes types open: the spec's schema validates the originals in full, and full copies would not fit in
    // the CRD size budget (a plain `kubectl apply` stores the CRD in a 256 KiB annotation).
    allow(Kind::Open, "status.podSpec.affinity.*", "copy: embedded Kubernetes type open (size budget)"),
    allow(Kind::Open, "status.podSpec.tolerations[].*", "copy: embedded Kubernetes type open (size budget)"),
    allow(Kind::Open, "status.podSpec.sidecars[].*", "copy: embedded Kubernetes type open (size budget)"),
    allow(Kind::Open, "status.podSpec.initContainers[].*", "copy: embedded Kubernetes type open (size budget)"),
    allow(Kind::Open, "status.podSpec.securityContext.*", "copy: embedded Kubernetes type open (size budget)"),
    allow(Kind::Open, "status.podSpec.dnsConfig.*", "copy: embedded Kubernetes type open (size budget)"),
    allow(Kind::Open, "status.podSpec.imagePullSecrets[].*", "copy: embedded Kubernetes type open (size budget)"),
    allow(Kind::Open, "status.podSpec.aerospikeContainer.*", "copy: embedded Kubernetes type open (size budget)"),
    allow(Kind::Open, "status.podSpec.aerospikeInitContainer.*", "copy: embedded Kubernetes type open (size budget)"),
    allow(Kind::Open, "*.effectivePodSpec.affinity.*", "copy: embedded Kubernetes type open (size budget)"),
    allow(Kind::Open, "*.effectivePodSpec.tolerations[].*", "copy: embedded Kubernetes type open (size budget)"),
    allow(
        Kind::Open,
        "status.rackConfig.racks[].podSpec.affinity.*",
        "copy: embedded Kubernetes type open (size budget)",
    ),
    allow(
        Kind::Open,
        "status.rackConfig.racks[].podSpec.tolerations[].*",
        "copy: embedded Kubernetes type open (size budget)",
    ),
    allow(Kind::Open, "*torage.volumes[].source.*.*", "copy: embedded Kubernetes volume source open (size budget)"),
    allow(
        Kind::Open,
        "status.rackConfig.racks[].storage.*",
        "copy of a copy: open (size budget); spec and status.storage typed",
    ),
    allow(Kind::Open, "status.rackConfig.racks[].effectiveStorage.*", "copy of a copy: open (size budget)"),
    // Stricter on purpose.
    allow(Kind::Limit, "*.racks[].id", "rack id 0 is the default rack the operator derives itself (min 1)"),
    allow(Kind::Limit, "*.roles[].readQuota", "quotas are unsigned in Aerospike: a negative one is refused (min 0)"),
    allow(Kind::Limit, "*.roles[].writeQuota", "quotas are unsigned in Aerospike: a negative one is refused (min 0)"),
    allow(Kind::Enum, "*.podSpec.dnsPolicy", "only the four DNS policies Kubernetes accepts for a pod"),
    // Looser on purpose: copies accept a persistent volume without storageClass (the spec requires it), so a status
    // write never fails for a cluster stored before the rule existed.
    allow(Kind::Required, "status.*storageClass", "copy: objects stored before storageClass was required"),
    allow(Kind::Required, "*.effectiveStorage.*storageClass", "copy: objects stored before storageClass was required"),
    // k8s-openapi models the name of these references as a required string (Kubernetes' Go types have an optional
    // one defaulting to ""); an empty name is refused by pod validation anyway.
    allow(Kind::Required, "spec.podSpec.*Ref.name", "k8s-openapi: name is a required string"),
    allow(Kind::Required, "spec.podSpec.imagePullSecrets[].name", "k8s-openapi: name is a required string"),
    allow(Kind::Required, "spec.*torage.volumes[].source.configMap.name", "k8s-openapi: name is a required string"),
    // Embedded Kubernetes types: k8s-openapi's schemas carry no defaults; the API server applies these defaults when
    // it stores the StatefulSet's pod template, so the pods are the same.
    allow(Kind::Default, "spec.podSpec.sidecars[].*", "core defaulting applies it to the pod template"),
    allow(Kind::Default, "spec.podSpec.initContainers[].*", "core defaulting applies it to the pod template"),
    allow(Kind::Default, "spec.podSpec.imagePullSecrets[].name", "core defaulting applies it to the pod template"),
    allow(
        Kind::Default,
        "spec.*torage.volumes[].source.configMap.name",
        "core defaulting applies it to the pod template",
    ),
];

/// One reference line.
pub(crate) struct RefPath {
    pub(crate) path: String,
    ty: String,
    pub(crate) required: bool,
    pub(crate) limits: BTreeMap<String, String>,
}

fn reference() -> Vec<RefPath> {
    parse_lines(REFERENCE.lines())
}

/// Reference lines (`path<TAB>type<TAB>limits`) as paths; comments and blank lines skipped.
pub(crate) fn parse_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<RefPath> {
    lines
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let mut cols = line.split('\t');
            let raw = cols.next().unwrap();
            let ty = cols.next().unwrap_or_default().to_string();
            let limits_text = cols.next().unwrap_or_default();
            // Limits are `key=value` separated by spaces; a default's value runs to the end of the line.
            let mut limits = BTreeMap::new();
            let mut rest = limits_text;
            while !rest.is_empty() {
                let (word, tail) = match rest.split_once(' ') {
                    Some((w, t)) if !w.starts_with("default=") => (w, t),
                    _ => (rest, ""),
                };
                let (k, v) = word.split_once('=').unwrap_or((word, ""));
                limits.insert(k.to_string(), v.to_string());
                rest = tail;
            }
            RefPath { path: raw.replace('*', ""), ty, required: raw.ends_with('*'), limits }
        })
        .collect()
}

/// Our schema as path -> (node, required by its parent).
fn ours(root: &Value) -> BTreeMap<String, (Value, bool)> {
    fn walk(path: String, v: &Value, required: bool, out: &mut BTreeMap<String, (Value, bool)>) {
        out.insert(path.clone(), (v.clone(), required));
        let req: BTreeSet<&str> =
            v.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, child) in props {
                walk(format!("{path}.{k}"), child, req.contains(k.as_str()), out);
            }
        }
        if let Some(items) = v.get("items") {
            walk(format!("{path}[]"), items, false, out);
        }
        if let Some(values) = v.get("additionalProperties").filter(|a| a.is_object()) {
            walk(format!("{path}{{}}"), values, false, out);
        }
    }
    let mut out = BTreeMap::new();
    for top in ["spec", "status"] {
        walk(top.to_string(), &root["properties"][top], false, &mut out);
    }
    out
}

fn is_open(v: &Value) -> bool {
    v.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) && v.get("properties").is_none()
}

fn type_of(v: &Value) -> &str {
    if v.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return "int-or-string";
    }
    v.get("type").and_then(Value::as_str).unwrap_or("(none)")
}

/// The reference's default text as a value: YAML flow syntax (`1`, `hostInternal`, `{skipWorkDirValidate: false}`).
fn default_value(text: &str) -> Value {
    if text.is_empty() {
        return Value::String(String::new());
    }
    serde_saphyr::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

pub(crate) struct Diff {
    kind: Kind,
    path: String,
    detail: String,
}

fn compare(root: &Value) -> (usize, Vec<Diff>) {
    compare_with(root, &reference())
}

pub(crate) fn compare_with(root: &Value, reference: &[RefPath]) -> (usize, Vec<Diff>) {
    let ours = ours(root);
    let mut diffs = Vec::new();
    let mut diff = |kind, path: &str, detail: String| diffs.push(Diff { kind, path: path.to_string(), detail });
    for r in reference {
        let Some((node, required)) = ours.get(&r.path) else {
            // The nearest ancestor of ours decides: open (kept) or missing (pruned).
            let mut ancestor = r.path.as_str();
            let open = loop {
                match ancestor.rfind(['.', '[', '{']) {
                    Some(i) => ancestor = &ancestor[..i],
                    None => break false,
                }
                if let Some((n, _)) = ours.get(ancestor) {
                    break is_open(n);
                }
            };
            let kind = if open { Kind::Open } else { Kind::Missing };
            diff(kind, &r.path, format!("not in our schema ({})", if open { "kept, not validated" } else { "pruned" }));
            continue;
        };
        let ty = type_of(node);
        if r.ty != ty {
            diff(Kind::Type, &r.path, format!("type {} in the reference, {ty} in ours", r.ty));
        }
        // Ours open where the reference has a schema shows in the children (Open); the reverse would prune.
        if r.limits.contains_key("free-form") && !is_open(node) {
            diff(Kind::Type, &r.path, "free-form in the reference, a schema in ours".to_string());
        }
        if let Some(values) = r.limits.get("enum") {
            let theirs: BTreeSet<&str> = values.split('|').collect();
            let mine: BTreeSet<&str> =
                node.get("enum").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            if theirs != mine {
                diff(Kind::Enum, &r.path, format!("enum {theirs:?} in the reference, {mine:?} in ours"));
            }
        } else if node.get("enum").is_some() {
            diff(Kind::Enum, &r.path, format!("enum {} in ours only", node["enum"]));
        }
        let theirs = r.limits.get("default").map(|d| default_value(d));
        if theirs.as_ref() != node.get("default") {
            diff(
                Kind::Default,
                &r.path,
                format!("default {theirs:?} in the reference, {:?} in ours", node.get("default")),
            );
        }
        if r.required != *required {
            diff(Kind::Required, &r.path, format!("required {} in the reference, {required} in ours", r.required));
        }
        for (key, ours_key) in [("min", "minimum"), ("max", "maximum"), ("maxLength", "maxLength")] {
            let theirs = r.limits.get(key).and_then(|v| v.parse::<f64>().ok());
            let mine = number(node.get(ours_key));
            // A maxLength of ours on a string the reference leaves unbounded is deliberate (every free string of the
            // spec is bounded, see `every_free_string_of_the_spec_is_bounded`); any other difference is reported.
            if theirs != mine && !(key == "maxLength" && theirs.is_none()) {
                diff(Kind::Limit, &r.path, format!("{key} {theirs:?} in the reference, {ours_key} {mine:?} in ours"));
            }
        }
    }
    (reference.len(), diffs)
}

pub(crate) fn matches(pattern: &str, path: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == path,
        Some((head, tail)) => {
            path.starts_with(head)
                && (0..=path.len() - head.len())
                    .any(|i| path.is_char_boundary(head.len() + i) && matches(tail, &path[head.len() + i..]))
        }
    }
}

fn our_crd() -> Value {
    match std::env::var("AKO_FIDELITY_CRD") {
        Ok(file) => serde_saphyr::from_str(&std::fs::read_to_string(file).unwrap()).unwrap(),
        Err(_) => serde_json::to_value(&super::crds()[0]).unwrap(),
    }
}

#[test]
fn every_reference_path_is_served_the_same_or_differs_on_purpose() {
    let crd = our_crd();
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let (total, diffs) = compare(root);
    assert_explained(total, &diffs, ALLOWED);
}

/// Every difference matches an allow-list entry and every entry matches a difference.
pub(crate) fn assert_explained(total: usize, diffs: &[Diff], allowed: &[Allowed]) {
    let mut used = vec![0usize; allowed.len()];
    let mut unexplained = Vec::new();
    for d in diffs {
        match allowed.iter().position(|a| a.kind == d.kind && matches(a.pattern, &d.path)) {
            Some(i) => used[i] += 1,
            None => unexplained.push(format!("{} {}: {}", d.kind, d.path, d.detail)),
        }
    }
    println!("{total} reference paths, {} differences, all explained:", diffs.len() - unexplained.len());
    for (a, n) in allowed.iter().zip(&used) {
        println!("  {n:4} {} {}: {}", a.kind, a.pattern, a.reason);
    }
    let mut by_kind = BTreeMap::new();
    for line in &unexplained {
        *by_kind.entry(line.split(' ').next().unwrap().to_string()).or_insert(0) += 1;
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained differences {by_kind:?}:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    let stale: Vec<_> = allowed.iter().zip(&used).filter(|(_, n)| **n == 0).map(|(a, _)| a.pattern).collect();
    assert!(stale.is_empty(), "allow-list entries that match no difference (remove them): {stale:?}");
}

#[test]
fn the_pattern_matcher_matches_what_it_says() {
    assert!(matches("spec.a.*", "spec.a.b.c"));
    assert!(matches("*.racks[].id", "spec.rackConfig.racks[].id"));
    assert!(matches("*torage.volumes[].source.*.*", "status.storage.volumes[].source.secret.items"));
    assert!(!matches("*torage.volumes[].source.*.*", "status.storage.volumes[].source.secret"));
    assert!(!matches("spec.a", "spec.ab"));
}

#[test]
fn the_reference_list_is_read_whole() {
    let r = reference();
    assert!(r.len() > 2900, "{}", r.len());
    let timeout = r.iter().find(|p| p.path == "spec.aerospikeAccessControl.adminPolicy.timeout").unwrap();
    assert!(timeout.required);
    assert_eq!(timeout.limits["min"], "0");
    let vp = r.iter().find(|p| p.path == "spec.validationPolicy").unwrap();
    assert_eq!(default_value(&vp.limits["default"]), serde_json::json!({"skipWorkDirValidate": false}));
    let access = r.iter().find(|p| p.path == "spec.aerospikeNetworkPolicy.access").unwrap();
    assert_eq!(access.limits["default"], "hostInternal");
    assert!(access.limits["enum"].contains("customInterface"));
}

/// What the API server keeps of `value` under `schema` (structural pruning): unknown fields are dropped except
/// under `x-kubernetes-preserve-unknown-fields`.
fn prune(value: &Value, schema: &Value) -> Value {
    match value {
        Value::Object(m) if !is_open(schema) || schema.get("properties").is_some() => {
            let props = schema.get("properties").and_then(Value::as_object);
            let values = schema.get("additionalProperties").filter(|a| a.is_object());
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                if let Some(s) = props.and_then(|p| p.get(k)).or(values) {
                    out.insert(k.clone(), prune(v, s));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| schema.get("items").map_or(i.clone(), |s| prune(i, s))).collect())
        }
        other => other.clone(),
    }
}

/// An object as the reference writes it (spec and status, with the fields this schema used to drop) is stored
/// by our CRD and read back by the operator unchanged: a cluster can move from the reference to this operator
/// and back without losing fields.
#[test]
fn an_object_the_reference_wrote_survives_our_schema_and_types() {
    let storage = serde_json::json!({
        "cleanupThreads": 1, "deleteLocalStorageOnRestart": true, "deleteLocalStorageOnPodRecovery": true,
        "localStorageClasses": ["local-ssd"],
        "filesystemVolumePolicy": {"initMethod": "deleteFiles", "wipeMethod": "deleteFiles",
            "effectiveInitMethod": "deleteFiles", "effectiveWipeMethod": "deleteFiles", "effectiveCascadeDelete": true,
            "cascadeDelete": true},
        "blockVolumePolicy": {"effectiveInitMethod": "none", "effectiveWipeMethod": "dd", "effectiveCascadeDelete": false},
        "volumes": [{"name": "workdir", "aerospike": {"path": "/opt/aerospike"},
            "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi",
                "accessModes": ["ReadWriteOnce"]}},
            "effectiveInitMethod": "deleteFiles", "effectiveWipeMethod": "deleteFiles", "effectiveCascadeDelete": true}]
    });
    let scheduling = serde_json::json!({"nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]});
    let pod_spec = serde_json::json!({
        "multiPodPerHost": true, "effectiveDNSPolicy": "ClusterFirst", "nodeSelector": {"disk": "ssd"},
        "sidecars": [{"name": "exporter", "image": "aerospike/aerospike-prometheus-exporter:1.16.1",
            "restartPolicy": "Always",
            "restartPolicyRules": [{"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}],
            "env": [{"name": "TOKEN", "valueFrom": {"fileKeyRef": {"volumeName": "config", "path": "env",
                "key": "TOKEN", "optional": false}}}]}]
    });
    let network = serde_json::json!({"access": "hostInternal", "alternateAccess": "hostExternal",
        "tlsAccess": "hostInternal", "tlsAlternateAccess": "hostExternal"});
    let rack_config = serde_json::json!({"namespaces": ["test"], "racks": [{"id": 1, "zone": "us-a",
        "effectiveAerospikeConfig": {"service": {}}, "effectiveStorage": storage, "effectivePodSpec": scheduling,
        "storage": storage, "podSpec": scheduling}]});
    let object = serde_json::json!({
        "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
        "metadata": {"name": "aerocluster", "namespace": "aerospike"},
        "spec": {
            "size": 2, "image": "aerospike/aerospike-server-enterprise:8.1.0.0", "maxUnavailable": 1,
            "storage": storage, "podSpec": pod_spec, "rackConfig": rack_config, "aerospikeNetworkPolicy": network,
            "aerospikeConfig": {"service": {"feature-key-file": "/etc/aerospike/secret/features.conf"}},
            "validationPolicy": {"skipWorkDirValidate": false, "skipXdrDlogFileValidate": false},
            "enableRackIDOverride": true,
            "ignoreSidecarFailure": true
        },
        "status": {
            "phase": "Completed", "size": 2, "image": "aerospike/aerospike-server-enterprise:8.1.0.0",
            "isReadinessProbeEnabled": true, "enableRackIDOverride": true, "ignoreSidecarFailure": true,
            "storage": storage, "podSpec": pod_spec, "rackConfig": rack_config, "aerospikeNetworkPolicy": network,
            "validationPolicy": {"skipWorkDirValidate": false, "skipXdrDlogFileValidate": false},
            "aerospikeConfig": {"service": {"feature-key-file": "/etc/aerospike/secret/features.conf"}},
            "pods": {"aerocluster-1-0": {
                "image": "aerospike/aerospike-server-enterprise:8.1.0.0", "podIP": "10.0.0.1", "podPort": 3000,
                "servicePort": 30000, "podAdminPort": 3008, "serviceAdminPort": 30008, "rackIDOverridden": true,
                "aerospikeConfigHash": "a", "networkPolicyHash": "b", "podSpecHash": "c",
                "dynamicConfigUpdateStatus": "Failed",
                "aerospike": {"clusterName": "aerocluster", "nodeID": "1a0", "rackID": 1}}}
        }
    });
    let crd = serde_json::to_value(&super::crds()[0]).unwrap();
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut stored = object.clone();
    for part in ["spec", "status"] {
        stored[part] = prune(&object[part], &root["properties"][part]);
    }
    pretty_assertions::assert_eq!(stored, object, "the API server would drop fields");
    let read: super::AerospikeCluster = serde_json::from_value(stored).unwrap();
    let back = serde_json::to_value(&read).unwrap();
    pretty_assertions::assert_eq!(back["spec"], object["spec"], "the operator would lose spec fields");
    pretty_assertions::assert_eq!(back["status"], object["status"], "the operator would lose status fields");
}

#[test]
fn pruning_drops_what_the_schema_does_not_know() {
    let crd = serde_json::to_value(&super::crds()[0]).unwrap();
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let object = serde_json::json!({"spec": {"size": 1, "sizee": 2, "podSpec": {"effectiveDnsPolicy": "x"},
        "aerospikeConfig": {"anything": {"goes": 1}}}});
    let kept = prune(&object["spec"], &root["properties"]["spec"]);
    assert_eq!(kept, serde_json::json!({"size": 1, "podSpec": {}, "aerospikeConfig": {"anything": {"goes": 1}}}));
}
