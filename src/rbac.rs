//! What the operator reads and writes: the one list from which every Role, ClusterRole and the CSV's
//! permissions are generated. Add a rule here when the controller starts touching something new.
//!
//! Least privilege: only the verbs the code uses, and objects with fixed names (the Lease, the webhook configurations,
//! the webhook certificate Secret) restricted to those names. `create` cannot be restricted by name (the API server
//! authorizes it before the object exists), so it is a rule of its own.
use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::leader::LEASE_NAME;
use crate::webhook::{certs, register};

const MANAGE: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// `rule` for the named objects only.
fn named(group: &str, resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule { resource_names: Some(names.iter().map(|s| s.to_string()).collect()), ..rule(group, resources, verbs) }
}

/// Rules needed in every namespace the operator watches.
pub fn namespaced_rules() -> Vec<PolicyRule> {
    vec![
        rule("asdb.aerospike.com", &["aerospikeclusters"], &["get", "list", "watch", "update", "patch"]),
        rule("asdb.aerospike.com", &["aerospikeclusters/status"], &["get", "update", "patch"]),
        rule("asdb.aerospike.com", &["aerospikeclusters/finalizers"], &["update"]),
        // Backup and restore (v1beta1): the three kinds, and the backup service's Deployment.
        rule(
            "asdb.aerospike.com",
            &["aerospikebackupservices", "aerospikebackups", "aerospikerestores"],
            &["get", "list", "watch", "update", "patch"],
        ),
        rule(
            "asdb.aerospike.com",
            &["aerospikebackupservices/status", "aerospikebackups/status", "aerospikerestores/status"],
            &["get", "update", "patch"],
        ),
        rule(
            "asdb.aerospike.com",
            &["aerospikebackupservices/finalizers", "aerospikebackups/finalizers", "aerospikerestores/finalizers"],
            &["update"],
        ),
        rule("apps", &["statefulsets", "deployments"], MANAGE),
        rule("", &["services", "configmaps"], MANAGE),
        rule("policy", &["poddisruptionbudgets"], MANAGE),
        // Pods are deleted one batch at a time to roll them, annotated (patch) with the config they run after an
        // in-place update or a warm restart and with an eviction the webhook refused, and exec'd into for a warm
        // restart (the server process restarts in place); PVCs only where cascadeDelete says so, and labelled with
        // their volume (patch) so that each is judged by its own rack's policy.
        rule("", &["pods"], &["get", "list", "watch", "patch", "delete"]),
        rule("", &["pods/exec"], &["create"]),
        rule("", &["persistentvolumeclaims"], &["get", "list", "watch", "patch", "delete"]),
        // Passwords of Aerospike users referenced by aerospikeAccessControl: read one by one when needed, never listed
        // or watched (the names are the user's, so they cannot be listed here).
        rule("", &["secrets"], &["get"]),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ]
}

/// Cluster-scoped rules the controller needs beyond the namespaced ones: the Node a pod runs on, read by name once
/// per pod placement (its addresses and configured-access labels, which the pod's init step advertises).
pub fn cluster_rules() -> Vec<PolicyRule> {
    vec![rule("", &["nodes"], &["get"])]
}

/// Rules in the operator's own namespace for leader election: the one Lease, by name.
pub fn leader_election_rules() -> Vec<PolicyRule> {
    vec![
        rule("coordination.k8s.io", &["leases"], &["create"]),
        named("coordination.k8s.io", &["leases"], &["get", "update"], &[LEASE_NAME]),
    ]
}

/// Rules for the admission webhooks, in two places.
pub struct WebhookRules {
    /// Cluster-scoped (a ClusterRole): create, update and patch the operator's own webhook configurations
    /// (`--webhook-register`, and the caBundle kept current by `--webhook-self-signed`).
    pub cluster: Vec<PolicyRule>,
    /// In the operator's own namespace only (a Role there): the Secret `aerospike-operator-webhook-cert` holding the
    /// self-signed CA and serving certificate (`--webhook-self-signed`).
    pub own_namespace: Vec<PolicyRule>,
}

/// What the webhook server needs beyond the controller's rules. Under OLM (certificates and configurations
/// managed by OLM) none of it is used; the plain install grants it.
pub fn webhook_rules() -> WebhookRules {
    WebhookRules {
        cluster: vec![
            rule("admissionregistration.k8s.io", &["mutatingwebhookconfigurations"], &["create"]),
            named(
                "admissionregistration.k8s.io",
                &["mutatingwebhookconfigurations"],
                &["get", "update", "patch"],
                &[register::MUTATING_CONFIGURATION],
            ),
            rule("admissionregistration.k8s.io", &["validatingwebhookconfigurations"], &["create"]),
            named(
                "admissionregistration.k8s.io",
                &["validatingwebhookconfigurations"],
                &["get", "update", "patch"],
                &[register::VALIDATING_CONFIGURATION],
            ),
        ],
        own_namespace: vec![
            rule("", &["secrets"], &["create"]),
            named("", &["secrets"], &["get", "update"], &[certs::SECRET_NAME]),
        ],
    }
}
