//! Prometheus metrics of the operator.
//!
//! Names and label names follow the reference operator where it has the metric, so dashboards and alerts built for
//! it keep working: its own `aerospike_ako_aerospikecluster_phase`, and the controller-runtime metrics every Go
//! operator exposes (`controller_runtime_reconcile_*`, `leader_election_master_status`). Ours carry the
//! `aerospike_ako_` prefix and the reference's `cluster_name`/`cluster_namespace` labels. README lists them all.
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `controller` label of the controller-runtime metrics: controller-runtime names it after the kind, lowercased.
pub const CONTROLLER: &str = "aerospikecluster";
/// The `name` label of `leader_election_master_status`: the Lease's name.
pub const LEASE_NAME: &str = "aerospike-kubernetes-operator";
/// The phases `aerospike_ako_aerospikecluster_phase` always reports (1 for the current one, 0 for the others).
pub const PHASES: [&str; 3] = ["InProgress", "Completed", "Error"];
/// Every `reason` of `aerospike_ako_reconcile_failures_total` (the controller's error kinds).
pub const FAILURE_REASONS: &[&str] = &["conflict", "forbidden", "kube", "finalizer", "no_namespace", "panic"];
/// Every `cause` of `aerospike_ako_safety_refusals_total`: the Warning Events' reasons for a refused step.
pub const REFUSAL_CAUSES: &[&str] = &[
    "NodeUnreachable",
    "LoginRefused",
    "MigrationsPending",
    "QuiesceFailed",
    "PartitionsUnavailable",
    "ClusterNotStable",
    "PodMissing",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// The reference's label names for a cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub cluster_name: String,
    pub cluster_namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub cluster_name: String,
    pub cluster_namespace: String,
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub cluster_name: String,
    pub cluster_namespace: String,
    pub cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerResultLabels {
    pub controller: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabel {
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `mutating` or `validating`.
    pub webhook: String,
    /// `allowed`, `denied` or `invalid` (a body that is no AdmissionReview).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

/// Admissions are counted where they are answered, in the webhook's handlers, which have no handle on the
/// process's [`Metrics`]: one family for the process, registered in every registry.
static ADMISSIONS: LazyLock<Family<AdmissionLabels, Counter>> = LazyLock::new(Family::default);

/// Count one admission review answered by `webhook` (`mutating`/`validating`) with `result`.
pub fn webhook_admission(webhook: &str, result: &str) {
    ADMISSIONS.get_or_create(&AdmissionLabels { webhook: webhook.into(), result: result.into() }).inc();
}

#[derive(Clone)]
pub struct Metrics {
    /// The reference's gauge: 1 for the cluster's current phase, 0 for the others; removed with the cluster.
    pub phase: Family<PhaseLabels, Gauge>,
    reconciles: Family<ControllerResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabel, Counter>,
    reconcile_time: Family<ControllerLabel, Histogram>,
    failures: Family<ReasonLabel, Counter>,
    pods_updated: Family<ClusterLabels, Gauge>,
    pods_desired: Family<ClusterLabels, Gauge>,
    restarts: Family<ClusterLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    leader: Family<LeaseLabel, Gauge>,
    pub registry: Arc<Registry>,
}

fn reconcile_histogram() -> Histogram {
    // controller-runtime's buckets start at 5 ms; ours reconcile in milliseconds and block on nothing.
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::default();
        let phase = Family::<PhaseLabels, Gauge>::default();
        let reconciles = Family::<ControllerResultLabels, Counter>::default();
        let reconcile_errors = Family::<ControllerLabel, Counter>::default();
        let reconcile_time =
            Family::<ControllerLabel, Histogram>::new_with_constructor(reconcile_histogram as fn() -> Histogram);
        let failures = Family::<ReasonLabel, Counter>::default();
        let pods_updated = Family::<ClusterLabels, Gauge>::default();
        let pods_desired = Family::<ClusterLabels, Gauge>::default();
        let restarts = Family::<ClusterLabels, Counter>::default();
        let refusals = Family::<RefusalLabels, Counter>::default();
        let leader = Family::<LeaseLabel, Gauge>::default();
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").into() }).set(1);
        // Zero from the start, as controller-runtime does, so rates and `increase()` see the first error.
        for result in ["success", "error"] {
            let _ = reconciles
                .get_or_create(&ControllerResultLabels { controller: CONTROLLER.into(), result: result.into() });
        }
        let _ = reconcile_errors.get_or_create(&ControllerLabel { controller: CONTROLLER.into() });
        for reason in FAILURE_REASONS {
            let _ = failures.get_or_create(&ReasonLabel { reason: (*reason).into() });
        }
        for webhook in ["mutating", "validating", "eviction"] {
            for result in ["allowed", "denied", "invalid"] {
                let _ = ADMISSIONS.get_or_create(&AdmissionLabels { webhook: webhook.into(), result: result.into() });
            }
        }
        // Counters are registered without `_total`: the encoder appends it.
        r.register("aerospike_ako_aerospikecluster_phase", "Phase of AerospikeCluster CRs", phase.clone());
        r.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconciles.clone(),
        );
        r.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            reconcile_errors.clone(),
        );
        r.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            reconcile_time.clone(),
        );
        r.register(
            "leader_election_master_status",
            "1 while this instance leads (or runs without leader election), 0 while it stands by",
            leader.clone(),
        );
        r.register("aerospike_ako_reconcile_failures", "Reconciliations that failed, by reason", failures.clone());
        r.register(
            "aerospike_ako_rollout_pods_updated",
            "Pods of the cluster that run the desired image, aerospike.conf and pod spec",
            pods_updated.clone(),
        );
        r.register("aerospike_ako_rollout_pods_desired", "Pods the cluster's spec asks for", pods_desired.clone());
        r.register("aerospike_ako_pod_restarts", "Aerospike pods restarted by the operator", restarts.clone());
        r.register(
            "aerospike_ako_safety_refusals",
            "Disruptive steps refused by a safety check, by cause",
            refusals.clone(),
        );
        r.register(
            "aerospike_ako_webhook_admissions",
            "Admission reviews answered, by webhook and result",
            ADMISSIONS.clone(),
        );
        r.register("aerospike_ako_build_info", "The operator's version (always 1)", build);
        Metrics {
            phase,
            reconciles,
            reconcile_errors,
            reconcile_time,
            failures,
            pods_updated,
            pods_desired,
            restarts,
            refusals,
            leader,
            registry: Arc::new(r),
        }
    }
}

fn cluster(namespace: &str, name: &str) -> ClusterLabels {
    ClusterLabels { cluster_name: name.into(), cluster_namespace: namespace.into() }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("metrics encode");
        out
    }

    /// Starts a timer for one reconcile; [`ReconcileTimer::finish`] records its duration and result.
    pub fn reconcile_timer(&self) -> ReconcileTimer {
        ReconcileTimer { start: Instant::now(), metrics: self.clone() }
    }

    /// A failed reconcile's reason (the error's kind).
    pub fn failure(&self, reason: &str) {
        debug_assert!(FAILURE_REASONS.contains(&reason), "unlisted failure reason {reason}");
        self.failures.get_or_create(&ReasonLabel { reason: reason.to_string() }).inc();
    }

    pub fn set_phase(&self, namespace: &str, name: &str, phase: &str) {
        for p in PHASES {
            let labels =
                PhaseLabels { cluster_name: name.into(), cluster_namespace: namespace.into(), phase: p.into() };
            self.phase.get_or_create(&labels).set(i64::from(p == phase));
        }
    }

    /// Rollout progress: `updated` of `desired` pods run the spec.
    pub fn set_rollout(&self, namespace: &str, name: &str, updated: i64, desired: i64) {
        self.pods_updated.get_or_create(&cluster(namespace, name)).set(updated);
        self.pods_desired.get_or_create(&cluster(namespace, name)).set(desired);
        // The cluster's counters exist from its first reconcile on, at 0, so `increase()` sees their first step.
        let _ = self.restarts.get_or_create(&cluster(namespace, name));
        for cause in REFUSAL_CAUSES {
            let labels = RefusalLabels {
                cluster_name: name.into(),
                cluster_namespace: namespace.into(),
                cause: (*cause).into(),
            };
            let _ = self.refusals.get_or_create(&labels);
        }
    }

    pub fn pod_restarted(&self, namespace: &str, name: &str) {
        self.restarts.get_or_create(&cluster(namespace, name)).inc();
    }

    /// A disruptive step the safety checks refused, by cause (the Warning Event's reason).
    pub fn safety_refusal(&self, namespace: &str, name: &str, cause: &str) {
        debug_assert!(REFUSAL_CAUSES.contains(&cause), "unlisted refusal cause {cause}");
        let labels =
            RefusalLabels { cluster_name: name.into(), cluster_namespace: namespace.into(), cause: cause.into() };
        self.refusals.get_or_create(&labels).inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.get_or_create(&LeaseLabel { name: LEASE_NAME.into() }).set(i64::from(leading));
    }

    /// Drops every series of a deleted cluster.
    pub fn forget(&self, namespace: &str, name: &str) {
        for p in PHASES {
            self.phase.remove(&PhaseLabels {
                cluster_name: name.into(),
                cluster_namespace: namespace.into(),
                phase: p.into(),
            });
        }
        self.pods_updated.remove(&cluster(namespace, name));
        self.pods_desired.remove(&cluster(namespace, name));
        self.restarts.remove(&cluster(namespace, name));
        for cause in REFUSAL_CAUSES {
            self.refusals.remove(&RefusalLabels {
                cluster_name: name.into(),
                cluster_namespace: namespace.into(),
                cause: (*cause).into(),
            });
        }
    }
}

pub struct ReconcileTimer {
    start: Instant,
    metrics: Metrics,
}

impl ReconcileTimer {
    /// Records the reconcile's duration and whether it succeeded.
    pub fn finish(self, ok: bool) {
        let controller = ControllerLabel { controller: CONTROLLER.into() };
        self.metrics.reconcile_time.get_or_create(&controller).observe(self.start.elapsed().as_secs_f64());
        let result = if ok { "success" } else { "error" };
        let labels = ControllerResultLabels { controller: CONTROLLER.into(), result: result.into() };
        self.metrics.reconciles.get_or_create(&labels).inc();
        if !ok {
            self.metrics.reconcile_errors.get_or_create(&controller).inc();
        }
    }
}

#[cfg(test)]
mod tests;
