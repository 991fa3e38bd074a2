//! API fidelity of the backup kinds: our generated CRDs against the reference's v1beta1 schemas
//! (`../reference/backup-v1beta1-paths.tsv`), with the same comparison and allow-list discipline as the
//! AerospikeCluster's (`api::fidelity`): every difference is listed with its reason, and an entry that explains
//! nothing fails the test.
use serde_json::Value;

use crate::api::fidelity::{Allowed, Kind, allow, assert_explained, compare_with, parse_lines};

const REFERENCE: &str = include_str!("../reference/backup-v1beta1-paths.tsv");

/// The reference's lines of one kind, without the kind column; and its printer columns (`name:jsonPath`).
fn reference_of(kind: &str) -> (Vec<String>, Vec<String>) {
    let prefix = format!("{kind} v1beta1\t");
    let mut lines = Vec::new();
    let mut columns = Vec::new();
    for line in REFERENCE.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(&prefix) else { continue };
        match rest.strip_prefix("printerColumns\t") {
            Some(cols) => columns = parse_columns(cols.trim_end_matches('\t')),
            None => lines.push(rest.to_string()),
        }
    }
    (lines, columns)
}

/// `Image:.spec.image Service Type:.spec.service.type` -> ["Image:.spec.image", "Service Type:.spec.service.type"]:
/// names may hold spaces, paths start with `.`.
fn parse_columns(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
        if word.contains(":.") {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

fn crd_of(kind: &str) -> Value {
    let crd = super::super::crds().into_iter().find(|c| c.spec.names.kind == kind).expect("we serve the kind");
    serde_json::to_value(crd).unwrap()
}

const COPY: &str = "status copy of the spec: embedded Kubernetes type open (size budget)";

const SERVICE_ALLOWED: &[Allowed] = &[
    allow(Kind::Open, "status.podSpec.affinity.*", COPY),
    allow(Kind::Open, "status.podSpec.tolerations[].*", COPY),
    allow(Kind::Open, "status.podSpec.imagePullSecrets[].*", COPY),
    allow(Kind::Open, "status.podSpec.serviceContainer.*", COPY),
    allow(Kind::Open, "status.secrets[].volumeMount.*", COPY),
    // k8s-openapi models these names as required strings (Kubernetes' Go types: optional, default "").
    allow(Kind::Required, "spec.podSpec.imagePullSecrets[].name", "k8s-openapi: name is a required string"),
    allow(Kind::Default, "spec.podSpec.imagePullSecrets[].name", "core defaulting applies it to the pod template"),
];

const BACKUP_ALLOWED: &[Allowed] = &[];

const RESTORE_ALLOWED: &[Allowed] = &[allow(
    Kind::Type,
    "spec.config",
    "keeps unknown fields, but declares `time` so the schema can require it for a Timestamp restore",
)];

fn check(kind: &str, allowed: &[Allowed]) {
    let (lines, columns) = reference_of(kind);
    assert!(lines.len() > 5, "{kind}: {} reference lines", lines.len());
    let reference = parse_lines(lines.iter().map(String::as_str));
    let crd = crd_of(kind);
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1beta1");
    let (total, diffs) = compare_with(&version["schema"]["openAPIV3Schema"], &reference);
    println!("{kind}:");
    assert_explained(total, &diffs, allowed);
    let ours: Vec<String> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}:{}", c["name"].as_str().unwrap(), c["jsonPath"].as_str().unwrap()))
        .collect();
    assert_eq!(ours, columns, "{kind}: printer columns");
    assert_eq!(version["subresources"]["status"], serde_json::json!({}), "{kind}: status subresource");
}

#[test]
fn backup_service_is_served_as_the_reference_or_differs_on_purpose() {
    check("AerospikeBackupService", SERVICE_ALLOWED);
}

#[test]
fn backup_is_served_as_the_reference_or_differs_on_purpose() {
    check("AerospikeBackup", BACKUP_ALLOWED);
}

#[test]
fn restore_is_served_as_the_reference_or_differs_on_purpose() {
    check("AerospikeRestore", RESTORE_ALLOWED);
}

#[test]
fn the_reference_lists_are_read_whole() {
    let (lines, columns) = reference_of("AerospikeRestore");
    let reference = parse_lines(lines.iter().map(String::as_str));
    let ty = reference.iter().find(|p| p.path == "spec.type").unwrap();
    assert!(ty.required);
    assert_eq!(ty.limits["enum"], "Full|Incremental|Timestamp");
    assert_eq!(columns.len(), 4);
    assert_eq!(columns[0], "Backup Service Name:.spec.backupService.name");
    let (service, _) = reference_of("AerospikeBackupService");
    assert!(service.len() > 300, "{}", service.len());
}
