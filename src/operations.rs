//! On-demand operations (`spec.operations`, at most one): which pods still have to restart for it, and the progress
//! kept in `status.operations` (the reference's bookkeeping: per operation id, the pods done so far; the status copy
//! of the spec at Completed marks it finished). Pure: spec, status and pod names in, decisions out.
use std::collections::BTreeSet;

use crate::api::OperationSpec;

/// The operation under way and the pods it still has to restart (`all`: the cluster's pods now).
pub fn pending(
    spec: &[OperationSpec],
    status: &[OperationSpec],
    all: &[String],
) -> Option<(OperationSpec, BTreeSet<String>)> {
    let op = spec.first()?;
    if spec == status {
        return None;
    }
    let wanted: BTreeSet<String> =
        if op.pod_list.is_empty() { all.iter().cloned().collect() } else { op.pod_list.iter().cloned().collect() };
    let done: BTreeSet<String> = match status.iter().find(|s| s.id == op.id) {
        // The status copy of a finished operation lists no pods: all done.
        Some(s) if s.pod_list.is_empty() => return None,
        Some(s) => s.pod_list.iter().cloned().collect(),
        None => BTreeSet::new(),
    };
    let left: BTreeSet<String> = wanted.difference(&done).cloned().collect();
    Some((op.clone(), left))
}

/// `status.operations` after `restarted` pods were restarted for `op`: the pods it asked for are added to its entry.
pub fn record(
    status: &[OperationSpec],
    op: &OperationSpec,
    all: &[String],
    restarted: &[String],
) -> Vec<OperationSpec> {
    let wanted: BTreeSet<&String> =
        if op.pod_list.is_empty() { all.iter().collect() } else { op.pod_list.iter().collect() };
    let mut out: Vec<OperationSpec> = status.to_vec();
    if !restarted.iter().any(|p| wanted.contains(p)) {
        return out;
    }
    let index = match out.iter().position(|s| s.id == op.id) {
        Some(i) => i,
        None => {
            out.push(OperationSpec { id: op.id.clone(), kind: op.kind.clone(), pod_list: Vec::new() });
            out.len() - 1
        }
    };
    let entry = &mut out[index];
    let mut done: BTreeSet<String> = entry.pod_list.iter().cloned().collect();
    done.extend(restarted.iter().filter(|p| wanted.contains(p)).cloned());
    entry.pod_list = done.into_iter().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: &str, kind: &str, pods: &[&str]) -> OperationSpec {
        OperationSpec { id: id.into(), kind: kind.into(), pod_list: pods.iter().map(|p| p.to_string()).collect() }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_new_operation_asks_for_its_pods_and_progress_narrows_it() {
        let all = names(&["a-0", "a-1", "a-2"]);
        let spec = vec![op("op1", "WarmRestart", &["a-0", "a-2"])];
        let (o, left) = pending(&spec, &[], &all).unwrap();
        assert_eq!(o.id, "op1");
        assert_eq!(left.into_iter().collect::<Vec<_>>(), names(&["a-0", "a-2"]));
        let status = record(&[], &spec[0], &all, &names(&["a-2", "a-1"]));
        assert_eq!(status, vec![op("op1", "WarmRestart", &["a-2"])], "a-1 was not asked for");
        let (_, left) = pending(&spec, &status, &all).unwrap();
        assert_eq!(left.into_iter().collect::<Vec<_>>(), names(&["a-0"]));
        let status = record(&status, &spec[0], &all, &names(&["a-0"]));
        assert_eq!(status, spec, "every asked pod done: the record equals the spec");
        assert_eq!(pending(&spec, &status, &all), None);
        // At Completed the status copies the spec: finished.
        assert_eq!(pending(&spec, &spec, &all), None);
    }

    #[test]
    fn an_empty_pod_list_means_every_pod_and_a_new_id_runs_again() {
        let all = names(&["a-0", "a-1"]);
        let spec = vec![op("op1", "PodRestart", &[])];
        assert_eq!(pending(&spec, &[], &all).unwrap().1.len(), 2);
        assert_eq!(pending(&spec, &spec, &all), None);
        let again = vec![op("op2", "PodRestart", &[])];
        assert_eq!(pending(&again, &spec, &all).unwrap().1.len(), 2);
        assert_eq!(pending(&[], &spec, &all), None);
    }
}
