//! Status: phase, standard conditions and the pods map, computed from observations (pure), then written
//! only when something changed, as a JSON merge patch of what changed.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Map, Value};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// Set a condition, keeping lastTransitionTime when the status did not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if status { "True" } else { "False" }.to_string();
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = now.clone();
        }
        c.status = status;
        c.reason = reason.to_string();
        c.message = message.to_string();
        c.observed_generation = generation;
    } else {
        conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: generation,
            last_transition_time: now.clone(),
        });
    }
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`: changed members, recursively into objects; arrays
/// and scalars whole; `null` for a member `new` no longer has. None if they are equal.
///
/// Why not a server-side apply of the whole status: the status carries the applied spec and the per-pod map, and
/// the API server decodes, type-checks and field-tracks the whole applied object on every apply (a CPU profile of
/// its 300-cluster creation: a fifth of its CPU went to our status applies). A patch of what changed is a fraction
/// of that.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = merge_diff(ov, nv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    // A member set to null is absent for a merge patch; nothing to add.
                    None if nv.is_null() => {}
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys().filter(|k| !n.contains_key(*k)) {
                patch.insert(k.clone(), Value::Null);
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What a merge patch does to a document (RFC 7386), to check [`merge_diff`] against.
    fn merge_apply(target: &mut Value, patch: &Value) {
        let Value::Object(p) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        let t = target.as_object_mut().expect("an object");
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_apply(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }

    #[test]
    fn merge_diff_patches_only_what_changed() {
        let old = json!({"phase": "InProgress", "size": 3, "pods": {"a": {"image": "x", "ip": "1"}, "b": {"image": "x"}},
                         "conditions": [{"type": "Available", "status": "False"}], "message": "gone"});
        let new = json!({"phase": "Completed", "size": 3, "pods": {"a": {"image": "y", "ip": "1"}, "c": {"image": "y"}},
                         "conditions": [{"type": "Available", "status": "True"}]});
        let patch = merge_diff(&old, &new).expect("a change");
        assert_eq!(
            patch,
            json!({"phase": "Completed", "pods": {"a": {"image": "y"}, "b": null, "c": {"image": "y"}},
                   "conditions": [{"type": "Available", "status": "True"}], "message": null})
        );
        let mut patched = old.clone();
        merge_apply(&mut patched, &patch);
        assert_eq!(patched, new);
        assert_eq!(merge_diff(&new, &new), None);
    }

    #[test]
    fn merge_diff_from_nothing_and_of_type_changes() {
        for (old, new) in [
            (json!({}), json!({"phase": "Completed", "pods": {"a": {}}})),
            (json!({"x": {"y": 1}}), json!({"x": [1, 2]})),
            (json!({"x": [1, 2]}), json!({"x": {"y": 1}})),
            (json!({"x": {"y": {"z": 1}}}), json!({"x": {"y": {}}})),
        ] {
            let mut patched = old.clone();
            merge_apply(&mut patched, &merge_diff(&old, &new).expect("a change"));
            assert_eq!(patched, new, "{old} -> {new}");
        }
    }

    fn t(s: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut c = vec![];
        set_condition(&mut c, AVAILABLE, false, "Creating", "m", Some(1), &t(10));
        set_condition(&mut c, AVAILABLE, false, "Creating", "m2", Some(2), &t(20));
        assert_eq!(c[0].last_transition_time, t(10));
        assert_eq!(c[0].message, "m2");
        set_condition(&mut c, AVAILABLE, true, "Ready", "ok", Some(2), &t(30));
        assert_eq!(c[0].last_transition_time, t(30));
        set_condition(&mut c, DEGRADED, false, "AsExpected", "", Some(2), &t(30));
        assert_eq!(c.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(), vec![AVAILABLE, DEGRADED]);
    }
}
