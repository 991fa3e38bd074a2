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
        // Pods are deleted one batch at a time to roll them; PVCs only where cascadeDelete says so, and labelled
        // with their volume (patch) so that each is judged by its own rack's policy.
        rule("", &["pods"], &["get", "list", "watch", "delete"]),
        rule("", &["persistentvolumeclaims"], &["get", "list", "watch", "patch", "delete"]),
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
        cluster: vec![rule(
            "admissionregistration.k8s.io",
            &["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
            &["get", "create", "update", "patch"],
        )],
        own_namespace: vec![rule("", &["secrets"], &["get", "create", "update"])],
    }
}
