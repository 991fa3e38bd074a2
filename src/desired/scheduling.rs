//! Pod placement: the user's scheduling policy (global, overridden per rack) merged with the operator's rules:
//! node affinity to the rack's zone, region, rack label and node, away from blocked nodes, and one pod per
//! host unless multiPodPerHost.
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm, PodAntiAffinity,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::selector_labels;
use crate::resolve::ResolvedRack;

pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
pub const RACK_LABEL: &str = "aerospike.com/rack-label";
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

fn requirement(key: &str, operator: &str, values: Vec<String>) -> NodeSelectorRequirement {
    NodeSelectorRequirement { key: key.to_string(), operator: operator.to_string(), values: Some(values) }
}

/// The operator's required node match expressions for a rack.
fn rack_node_requirements(plan: &ResolvedRack, block_list: &[String]) -> Vec<NodeSelectorRequirement> {
    let mut out = Vec::new();
    for (key, value) in [
        (ZONE_LABEL, &plan.zone),
        (REGION_LABEL, &plan.region),
        (RACK_LABEL, &plan.rack_label),
        (HOSTNAME_LABEL, &plan.node_name),
    ] {
        if !value.is_empty() {
            out.push(requirement(key, "In", vec![value.clone()]));
        }
    }
    if !block_list.is_empty() {
        let mut nodes = block_list.to_vec();
        nodes.sort();
        nodes.dedup();
        out.push(requirement(HOSTNAME_LABEL, "NotIn", nodes));
    }
    out
}

/// The pod affinity: the user's affinity with the operator's node requirements added to every required node
/// selector term (terms are ORed, so each must carry them), and the per-host anti-affinity appended.
pub(crate) fn affinity(
    plan: &ResolvedRack,
    cluster_name: &str,
    block_list: &[String],
    multi_pod_per_host: bool,
) -> Option<Affinity> {
    let mut affinity = plan.scheduling.affinity.clone().unwrap_or_default();

    let ours = rack_node_requirements(plan, block_list);
    if !ours.is_empty() {
        let node = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
        let required = node
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(|| NodeSelector { node_selector_terms: Vec::new() });
        if required.node_selector_terms.is_empty() {
            required.node_selector_terms.push(NodeSelectorTerm::default());
        }
        for term in &mut required.node_selector_terms {
            term.match_expressions.get_or_insert_with(Vec::new).extend(ours.iter().cloned());
        }
    }

    if !multi_pod_per_host {
        let anti = affinity.pod_anti_affinity.get_or_insert_with(PodAntiAffinity::default);
        anti.required_during_scheduling_ignored_during_execution.get_or_insert_with(Vec::new).push(PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(cluster_name)),
                ..Default::default()
            }),
            topology_key: HOSTNAME_LABEL.to_string(),
            ..Default::default()
        });
    }

    (affinity != Affinity::default()).then_some(affinity)
}
