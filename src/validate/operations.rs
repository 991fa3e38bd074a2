//! Rules for `spec.operations`, as the reference's webhook has them: one operation at a time, only on a cluster that
//! exists (it restarts existing pods), pods named in `podList` must be the cluster's (by the spec's StatefulSets), an operation's content is fixed
//! once given (a new id runs another), and no operation arrives together with a scale-up, a rack added or removed or
//! an image change (the new pods would not exist for it).
use crate::api::{AerospikeCluster, FieldError};
use crate::resolve::ResolvedRack;

pub(super) fn check(
    new: &AerospikeCluster,
    old: Option<&AerospikeCluster>,
    racks: &[ResolvedRack],
    out: &mut Vec<FieldError>,
) {
    let spec = &new.spec;
    if spec.operations.len() > 1 {
        out.push(FieldError::new("spec.operations", "at most one operation at a time"));
    }
    let Some(op) = spec.operations.first() else { return };
    let status = new.status.as_ref();
    if status.and_then(|s| s.aerospike_config.as_ref()).is_none() {
        out.push(FieldError::new(
            "spec.operations",
            "an operation cannot be given before the cluster has been deployed once (it restarts existing pods)",
        ));
        return;
    }
    let status = status.expect("checked");
    if let Some(previous) = old.and_then(|o| o.spec.operations.iter().find(|p| p.id == op.id))
        && previous != op
    {
        out.push(FieldError::new(
            "spec.operations[0]",
            format!("operation {} cannot be changed once given; give it a new id to run another", op.id),
        ));
    }
    // The pods the spec's StatefulSets have (not the pods that exist this instant: one being restarted is still the
    // cluster's).
    let names: std::collections::BTreeSet<String> =
        racks.iter().flat_map(|r| (0..r.size).map(move |o| format!("{}-{o}", r.name))).collect();
    let unknown: Vec<&str> = op.pod_list.iter().filter(|p| !names.contains(*p)).map(String::as_str).collect();
    if !unknown.is_empty() {
        out.push(FieldError::new(
            "spec.operations[0].podList",
            format!("not pods of this cluster: {}", unknown.join(", ")),
        ));
    }
    if spec.operations != status.operations {
        let racks = |c: Option<&crate::api::RackConfig>| c.map_or(0, |r| r.racks.len());
        let old_racks = old.map(|o| racks(o.spec.rack_config.as_ref()));
        let reason = if status.size.is_some_and(|s| spec.size > s) {
            Some("a scale-up")
        } else if racks(spec.rack_config.as_ref()) != racks(status.rack_config.as_ref())
            || old_racks.is_some_and(|n| n != racks(spec.rack_config.as_ref()))
        {
            Some("racks added or removed")
        } else if status.image.as_ref().is_some_and(|i| *i != spec.image)
            || old.is_some_and(|o| o.spec.image != spec.image)
        {
            Some("an image change")
        } else {
            None
        };
        if let Some(reason) = reason {
            out.push(FieldError::new(
                "spec.operations",
                format!("cannot be given together with {reason}: the new pods would not exist for it yet"),
            ));
        }
    }
}
