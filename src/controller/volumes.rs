//! Growing persistent volumes in place (the reference's volume expansion): when a volume's size grows in the spec
//! (same rack revision), each claim of the rack is patched to the new size, the operator waits until the storage
//! reports the new capacity, then recreates the rack's StatefulSet (its volumeClaimTemplates cannot change) by
//! deleting it with orphan propagation: the pods keep running and the new StatefulSet adopts them. No pod restarts,
//! no data moves. A StorageClass that does not allow expansion is reported with the API server's refusal. A Block
//! volume is seen at its new size only by a server started afterwards: before the StatefulSet is recreated (which
//! forgets the old size), the pods of a grown Block volume are marked for a warm restart, which the rollout does.
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy};
use serde_json::json;

use crate::desired;
use crate::validate::quantity;

/// The volumeClaimTemplates of `desired` that request more storage than those of `existing`: (volume, new size).
pub(crate) fn grown_templates(existing: &StatefulSet, desired: &StatefulSet) -> Vec<(String, String)> {
    let storage = |t: &PersistentVolumeClaim| -> Option<String> {
        t.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?.get("storage").map(|q| q.0.clone())
    };
    let templates =
        |s: &StatefulSet| s.spec.as_ref().and_then(|s| s.volume_claim_templates.clone()).unwrap_or_default();
    let old = templates(existing);
    templates(desired)
        .iter()
        .filter_map(|t| {
            let name = t.metadata.name.clone()?;
            let want = storage(t)?;
            let have = old.iter().find(|o| o.metadata.name.as_deref() == Some(name.as_str())).and_then(storage)?;
            (quantity::parse(&want)? > quantity::parse(&have)?).then_some((name, want))
        })
        .collect()
}

/// The volumeClaimTemplates `desired` has and `existing` does not: persistent volumes added to the rack. The
/// StatefulSet is recreated with them (its templates cannot change); the pods then restart onto them.
pub(crate) fn added_templates(existing: &StatefulSet, desired: &StatefulSet) -> Vec<String> {
    let names = |s: &StatefulSet| -> Vec<String> {
        let templates = s.spec.as_ref().and_then(|s| s.volume_claim_templates.as_ref());
        templates.into_iter().flatten().filter_map(|t| t.metadata.name.clone()).collect()
    };
    let old = names(existing);
    names(desired).into_iter().filter(|n| !old.contains(n)).collect()
}

/// Deletes StatefulSet `sts` leaving its pods running (they are adopted by its successor).
pub(crate) async fn delete_orphaning(sets: &Api<StatefulSet>, sts: &str) -> kube::Result<()> {
    let orphan = DeleteParams { propagation_policy: Some(PropagationPolicy::Orphan), ..Default::default() };
    match sets.delete(sts, &orphan).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The volumeClaimTemplates of `sts` in Block mode.
pub(crate) fn block_templates(sts: &StatefulSet) -> Vec<String> {
    let templates = sts.spec.as_ref().and_then(|s| s.volume_claim_templates.as_ref());
    templates
        .into_iter()
        .flatten()
        .filter(|t| t.spec.as_ref().and_then(|s| s.volume_mode.as_deref()) == Some("Block"))
        .filter_map(|t| t.metadata.name.clone())
        .collect()
}

/// The rack whose volumes grow.
pub(crate) struct Rack<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) id: i32,
    pub(crate) stateful_set: &'a str,
}

/// Where the expansion of one rack stands.
#[derive(Debug, PartialEq)]
pub(crate) enum Expansion {
    /// Claims patched or still growing: (claims not at their size yet).
    Growing(Vec<String>),
    /// The API server refused to grow a claim.
    Refused(String),
    /// Every claim has its size: the StatefulSet was deleted (orphaning its pods) to be recreated with the new
    /// templates.
    Recreating,
}

/// One step of the expansion of `rack`'s StatefulSet to the `grown` sizes; `block`: its volumes in Block mode.
pub(crate) async fn expand(
    pvcs: &Api<PersistentVolumeClaim>,
    sets: &Api<StatefulSet>,
    pods: &Api<Pod>,
    rack: Rack<'_>,
    grown: &[(String, String)],
    block: &[String],
) -> kube::Result<Expansion> {
    let Rack { cluster, id: rack_id, stateful_set: sts } = rack;
    let mut restart: Vec<(String, String)> = Vec::new();
    let selector = format!("{}={cluster},{}={rack_id}", desired::LABEL_CR, desired::LABEL_RACK);
    let mut growing = Vec::new();
    for claim in pvcs.list(&ListParams::default().labels(&selector)).await? {
        if claim.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = claim.name_any();
        let Some((volume, size, ordinal)) = grown.iter().find_map(|(volume, size)| {
            let ordinal = name.strip_prefix(&format!("{volume}-{sts}-"))?.parse::<u32>().ok()?;
            Some((volume, size, ordinal))
        }) else {
            continue;
        };
        if block.contains(volume) {
            restart.push((format!("{sts}-{ordinal}"), format!("block volume {volume} grew to {size}")));
        }
        let want = quantity::parse(size).unwrap_or(0.0);
        let get = |q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
            q.and_then(|q| quantity::parse(&q.0)).unwrap_or(0.0)
        };
        let requested = get(claim.spec.as_ref().and_then(|s| s.resources.as_ref()?.requests.as_ref()?.get("storage")));
        if requested < want {
            let patch = json!({"spec": {"resources": {"requests": {"storage": size}}}});
            match pvcs.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 403 || e.code == 422 => {
                    return Ok(Expansion::Refused(format!("growing {name} to {size}: {}", e.message)));
                }
                Err(e) => return Err(e),
            }
        }
        let capacity = get(claim.status.as_ref().and_then(|s| s.capacity.as_ref()?.get("storage")));
        if capacity < want {
            growing.push(name);
        }
    }
    if !growing.is_empty() {
        growing.sort();
        return Ok(Expansion::Growing(growing));
    }
    // Marked first: once the StatefulSet has the new size, nothing else remembers that these servers need it.
    for (pod, why) in &restart {
        super::warm_restart::request(pods, pod, why).await?;
    }
    delete_orphaning(sets, sts).await?;
    Ok(Expansion::Recreating)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(sizes: &[(&str, &str)]) -> StatefulSet {
        let templates: Vec<serde_json::Value> = sizes
            .iter()
            .map(|(n, s)| json!({"metadata": {"name": n}, "spec": {"resources": {"requests": {"storage": s}}}}))
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "a-1"}, "spec": {
            "selector": {}, "serviceName": "a", "template": {}, "volumeClaimTemplates": templates}}))
        .unwrap()
    }

    #[test]
    fn only_templates_that_grow_count() {
        let old = sts(&[("data", "1Gi"), ("work", "2Gi")]);
        assert_eq!(grown_templates(&old, &sts(&[("data", "1Gi"), ("work", "2Gi")])), vec![]);
        assert_eq!(
            grown_templates(&old, &sts(&[("data", "2Gi"), ("work", "2Gi")])),
            vec![("data".into(), "2Gi".into())]
        );
        // Same size written differently, a smaller size, a new template: no expansion.
        assert_eq!(grown_templates(&old, &sts(&[("data", "1024Mi"), ("work", "1Gi"), ("new", "5Gi")])), vec![]);
    }

    #[test]
    fn added_templates_are_new_names_only() {
        let old = sts(&[("data", "1Gi")]);
        assert_eq!(added_templates(&old, &sts(&[("data", "2Gi")])), Vec::<String>::new());
        assert_eq!(added_templates(&old, &sts(&[("data", "1Gi"), ("logs", "1Gi")])), vec!["logs".to_string()]);
        assert_eq!(added_templates(&sts(&[("data", "1Gi"), ("logs", "1Gi")]), &old), Vec::<String>::new());
    }

    #[test]
    fn block_templates_are_those_in_block_mode() {
        let mut s = sts(&[("data", "1Gi"), ("dev", "1Gi"), ("work", "1Gi")]);
        let templates = s.spec.as_mut().unwrap().volume_claim_templates.as_mut().unwrap();
        templates[1].spec.as_mut().unwrap().volume_mode = Some("Block".into());
        templates[2].spec.as_mut().unwrap().volume_mode = Some("Filesystem".into());
        assert_eq!(block_templates(&s), vec!["dev".to_string()]);
    }
}
