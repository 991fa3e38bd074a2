//! What the operator reads and writes: the one list from which every Role, ClusterRole and the CSV's
//! permissions are generated. Add a rule here when the controller starts touching something new.
use k8s_openapi::api::rbac::v1::PolicyRule;

const READ: &[&str] = &["get", "list", "watch"];
const MANAGE: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Rules needed in every namespace the operator watches.
pub fn namespaced_rules() -> Vec<PolicyRule> {
    vec![
        rule("asdb.aerospike.com", &["aerospikeclusters"], &["get", "list", "watch", "update", "patch"]),
        rule("asdb.aerospike.com", &["aerospikeclusters/status"], &["get", "update", "patch"]),
        rule("asdb.aerospike.com", &["aerospikeclusters/finalizers"], &["update"]),
        rule("apps", &["statefulsets"], MANAGE),
        rule("", &["services", "configmaps"], MANAGE),
        rule("policy", &["poddisruptionbudgets"], MANAGE),
        // Pods are deleted one batch at a time to roll them; PVCs only where cascadeDelete says so.
        rule("", &["pods"], &["get", "list", "watch", "delete"]),
        rule("", &["persistentvolumeclaims"], &["get", "list", "watch", "delete"]),
        // Passwords of Aerospike users referenced by aerospikeAccessControl.
        rule("", &["secrets"], READ),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ]
}

/// Cluster-scoped rules: node addresses and zone labels of the pods' hosts.
pub fn cluster_rules() -> Vec<PolicyRule> {
    vec![rule("", &["nodes"], READ)]
}

/// Rules in the operator's own namespace for leader election.
pub fn leader_election_rules() -> Vec<PolicyRule> {
    vec![rule("coordination.k8s.io", &["leases"], &["get", "list", "watch", "create", "update", "patch"])]
}
