//! Prometheus metrics: reconcile counts, failures by reason, durations, and clusters by phase.
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub namespace: String,
    pub name: String,
    pub phase: String,
}

#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Counter,
    pub failures: Family<ReasonLabel, Counter>,
    pub duration: Histogram,
    /// Same name as the reference's gauge, so existing dashboards keep working: 1 for the current phase.
    pub phase: Family<PhaseLabels, Gauge>,
    pub restarts: Counter,
    pub registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let reconciles = Counter::default();
        let failures = Family::<ReasonLabel, Counter>::default();
        let duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        let restarts = Counter::default();
        let phase = Family::<PhaseLabels, Gauge>::default();
        registry.register("aerospike_operator_reconciles", "Reconciliations run", reconciles.clone());
        registry.register(
            "aerospike_operator_reconcile_failures",
            "Reconciliations that failed, by reason",
            failures.clone(),
        );
        registry.register(
            "aerospike_operator_reconcile_duration_seconds",
            "Time spent in one reconciliation",
            duration.clone(),
        );
        registry.register(
            "aerospike_operator_pod_restarts",
            "Aerospike pods restarted by the operator",
            restarts.clone(),
        );
        registry.register(
            "aerospike_ako_aerospikecluster_phase",
            "AerospikeCluster phase (1 = current)",
            phase.clone(),
        );
        Metrics { reconciles, failures, duration, phase, restarts, registry: Arc::new(registry) }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("metrics encode");
        out
    }

    /// Starts a timer that records the reconcile duration when dropped.
    pub fn reconcile_timer(&self) -> ReconcileTimer {
        self.reconciles.inc();
        ReconcileTimer { start: Instant::now(), histogram: self.duration.clone() }
    }

    pub fn failure(&self, reason: &str) {
        self.failures.get_or_create(&ReasonLabel { reason: reason.to_string() }).inc();
    }

    pub fn set_phase(&self, namespace: &str, name: &str, phase: &str) {
        for p in ["InProgress", "Completed", "Error"] {
            let labels = PhaseLabels { namespace: namespace.into(), name: name.into(), phase: p.into() };
            self.phase.get_or_create(&labels).set(i64::from(p == phase));
        }
    }

    pub fn forget(&self, namespace: &str, name: &str) {
        for p in ["InProgress", "Completed", "Error"] {
            self.phase.remove(&PhaseLabels { namespace: namespace.into(), name: name.into(), phase: p.into() });
        }
    }
}

pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}
