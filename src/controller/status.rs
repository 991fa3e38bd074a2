//! Status: phase, standard conditions and the pods map, computed from observations (pure), then written
//! only when something changed.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

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

#[cfg(test)]
mod tests {
    use super::*;

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
