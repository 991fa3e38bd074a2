//! Leader election on a Lease, so that of several replicas only one reconciles.
//!
//! `acquire` waits until this instance holds the Lease `aerospike-kubernetes-operator`; the returned
//! [`Leadership`] renews it every [`LeaseConfig::retry_period`] with a plain get/replace guarded by the
//! resourceVersion, and [`Leadership::lost`] resolves as soon as this instance may no longer act:
//!
//! - **Fencing.** When no renewal succeeded within [`LeaseConfig::renew_deadline`] (the lease duration minus a
//!   safety margin) of when it was sent, measured on the monotonic clock, the leadership is lost, whether or not
//!   anyone could be told. A standby only takes the Lease once it has seen the same record unchanged for the whole
//!   lease duration on its own monotonic clock (as client-go does: no comparison of wall clocks across machines), and
//!   it cannot have seen a renewal before it was sent, so a partitioned leader stops at least the margin before a
//!   standby starts.
//! - **Someone else holds it.** A renewal that finds another holder loses leadership at once.
//!
//! The process then stops acting (main exits and the Deployment restarts it as a standby), which is simpler and
//! safer than trying to pause controllers in place. On SIGTERM main stops the controllers first and then
//! [`Leadership::release`]s the Lease, so a standby takes over at its next poll instead of after the lease duration.
//!
//! The record keeps the usual meaning (holderIdentity, leaseDurationSeconds, acquireTime, renewTime,
//! leaseTransitions), and a release clears holder, times and duration as kube-lease-manager (used before) does, so
//! replicas of either version understand each other's Lease during a rolling update.
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

pub const LEASE_NAME: &str = "aerospike-kubernetes-operator";

/// Timings of the election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Written as leaseDurationSeconds: how long a standby waits after the last change it saw before taking over.
    pub duration: Duration,
    /// The leader stops acting when no renewal succeeded within this much of when it was sent (less than
    /// `duration`: the difference is the safety margin for clock-rate differences and scheduling delays).
    pub renew_deadline: Duration,
    /// How often the leader renews and a standby looks at the Lease.
    pub retry_period: Duration,
}

impl Default for LeaseConfig {
    /// Lease 15 s, fenced 10 s after the last renewal (a 5 s margin), renewed and polled every 2 s: a crashed or
    /// partitioned leader is replaced within about 15-19 s, one stopped by SIGTERM within about 2 s.
    fn default() -> Self {
        LeaseConfig {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaseConfig {
    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// The longest one request may take: long enough for a slow API server, short enough that a hung connection
    /// is given up while there is time for another try before the deadline.
    fn attempt_timeout(&self) -> Duration {
        self.retry_period * 2
    }
}

/// Holding the Lease. Dropping it stops renewing without releasing (a crash, as far as the others can tell).
pub struct Leadership {
    /// When this instance must stop acting (monotonic); `None` once leadership is lost.
    deadline: watch::Receiver<Option<Instant>>,
    renewer: JoinHandle<()>,
    api: Api<Lease>,
    identity: String,
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Wait until `identity` holds the Lease in `namespace` (default timings), then keep renewing it.
pub async fn acquire(client: Client, namespace: &str, identity: &str) -> anyhow::Result<Leadership> {
    acquire_with(client, namespace, identity, LeaseConfig::default()).await
}

/// [`acquire`] with the given timings.
pub async fn acquire_with(
    client: Client,
    namespace: &str,
    identity: &str,
    cfg: LeaseConfig,
) -> anyhow::Result<Leadership> {
    anyhow::ensure!(
        cfg.renew_deadline < cfg.duration && !cfg.retry_period.is_zero() && cfg.retry_period < cfg.renew_deadline,
        "leader election timings must satisfy 0 < retry period < renew deadline < lease duration: {cfg:?}"
    );
    let api: Api<Lease> = Api::namespaced(client, namespace);
    info!(identity, namespace, "waiting for leadership");
    let mut observed: Option<Observed> = None;
    let (lease, deadline) = loop {
        let sent = Instant::now();
        match tokio::time::timeout(cfg.attempt_timeout(), try_acquire(&api, identity, &cfg, &mut observed)).await {
            Ok(Ok(Some(lease))) => break (lease, sent + cfg.renew_deadline),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => warn!(error = %e, "leader election: reading or taking the Lease failed"),
            Err(_) => warn!(timeout = ?cfg.attempt_timeout(), "leader election: the API server did not answer"),
        }
        tokio::time::sleep(cfg.retry_period).await;
    };
    let transitions = lease.spec.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0);
    info!(identity, transitions, "leading");
    let (tx, rx) = watch::channel(Some(deadline));
    let renewer = tokio::spawn(renew_loop(api.clone(), identity.to_string(), cfg, lease, deadline, tx));
    Ok(Leadership { deadline: rx, renewer, api, identity: identity.to_string() })
}

impl Leadership {
    /// Resolves when this instance must stop acting: no renewal succeeded within the renew deadline, another
    /// instance holds the Lease, or the renewals stopped.
    pub async fn lost(&mut self) {
        loop {
            let Some(deadline) = *self.deadline.borrow_and_update() else { return };
            tokio::select! {
                biased;
                changed = self.deadline.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// Whether this instance may act now (a renewal succeeded within the renew deadline).
    pub fn is_leading(&self) -> bool {
        self.deadline.borrow().is_some_and(|d| Instant::now() < d)
    }

    /// Stop renewing and give the Lease up, so a standby takes over at its next poll. Call it after everything
    /// that acts has stopped. Does nothing when another instance holds the Lease by now.
    pub async fn release(self) -> anyhow::Result<()> {
        self.renewer.abort();
        let api = self.api.clone();
        let identity = self.identity.clone();
        tokio::time::timeout(Duration::from_secs(5), async move {
            for _ in 0..3 {
                let lease = api.get(LEASE_NAME).await.context("reading the Lease")?;
                let Some(spec) = lease.spec.as_ref().filter(|s| holder(s) == Some(identity.as_str())) else {
                    info!(holder = ?lease.spec.as_ref().and_then(holder), "not releasing the Lease: held by another");
                    return Ok(());
                };
                let released = Lease { metadata: lease.metadata.clone(), spec: Some(released(spec)) };
                match api.replace(LEASE_NAME, &PostParams::default(), &released).await {
                    Ok(_) => {
                        info!(identity, "released the Lease");
                        return Ok(());
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(e).context("releasing the Lease"),
                }
            }
            anyhow::bail!("releasing the Lease: it kept changing")
        })
        .await
        .context("releasing the Lease: the API server did not answer within 5 s")?
    }
}

/// Renew every retry period until the deadline passes without a successful renewal, or another holder is found.
async fn renew_loop(
    api: Api<Lease>,
    identity: String,
    cfg: LeaseConfig,
    mut lease: Lease,
    mut deadline: Instant,
    tx: watch::Sender<Option<Instant>>,
) {
    loop {
        tokio::time::sleep(cfg.retry_period).await;
        let sent = Instant::now();
        if sent >= deadline {
            break;
        }
        let attempt_end = deadline.min(sent + cfg.attempt_timeout());
        match tokio::time::timeout_at(attempt_end, renew(&api, &identity, &lease)).await {
            Ok(Ok(Renewal::Renewed(l))) => {
                lease = *l;
                deadline = sent + cfg.renew_deadline;
                tx.send_replace(Some(deadline));
                debug!(identity, "renewed the Lease");
            }
            Ok(Ok(Renewal::HeldBy(other))) => {
                error!(identity, holder = ?other, "another instance holds the Lease: no longer leading");
                tx.send_replace(None);
                return;
            }
            Ok(Err(e)) => {
                warn!(error = format!("{e:#}"), left = ?deadline.saturating_duration_since(Instant::now()), "renewing the Lease failed")
            }
            Err(_) => warn!(left = ?deadline.saturating_duration_since(Instant::now()), "renewing the Lease timed out"),
        }
    }
    error!(identity, renew_deadline = ?cfg.renew_deadline, "no renewal of the Lease succeeded in time: no longer leading");
    tx.send_replace(None);
}

enum Renewal {
    Renewed(Box<Lease>),
    HeldBy(Option<String>),
}

/// One renewal: replace our last write with a new renewTime; if the Lease changed since, read it and renew that
/// if we still hold it.
async fn renew(api: &Api<Lease>, identity: &str, last: &Lease) -> anyhow::Result<Renewal> {
    let mut current = last.clone();
    for _ in 0..2 {
        let Some(spec) = current.spec.as_ref().filter(|s| holder(s) == Some(identity)) else {
            return Ok(Renewal::HeldBy(current.spec.as_ref().and_then(holder).map(str::to_string)));
        };
        let next = Lease { metadata: current.metadata.clone(), spec: Some(renewed(spec, now())) };
        match api.replace(LEASE_NAME, &PostParams::default(), &next).await {
            Ok(l) => return Ok(Renewal::Renewed(Box::new(l))),
            Err(kube::Error::Api(e)) if e.code == 409 => current = api.get(LEASE_NAME).await?,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("the Lease changed twice during one renewal")
}

/// A record as a standby first saw it.
struct Observed {
    resource_version: String,
    at: Instant,
}

/// One look at the Lease: create it, take it (free, ours, or unchanged for its duration), or leave it.
async fn try_acquire(
    api: &Api<Lease>,
    identity: &str,
    cfg: &LeaseConfig,
    observed: &mut Option<Observed>,
) -> kube::Result<Option<Lease>> {
    let Some(lease) = api.get_opt(LEASE_NAME).await? else {
        let new = Lease {
            metadata: ObjectMeta { name: Some(LEASE_NAME.into()), ..Default::default() },
            spec: Some(taken(&LeaseSpec::default(), identity, cfg.duration_seconds(), now(), true)),
        };
        return match api.create(&PostParams::default(), &new).await {
            Ok(l) => Ok(Some(l)),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(None), // another replica created it first
            Err(e) => Err(e),
        };
    };
    let rv = lease.resource_version().unwrap_or_default();
    let seen_at = match observed {
        Some(o) if o.resource_version == rv => o.at,
        _ => {
            let at = Instant::now();
            *observed = Some(Observed { resource_version: rv, at });
            at
        }
    };
    let spec = lease.spec.clone().unwrap_or_default();
    if !may_take(&spec, identity, seen_at.elapsed(), cfg.duration) {
        debug!(holder = ?holder(&spec), "the Lease is held by another instance");
        return Ok(None);
    }
    if let Some(previous) = holder(&spec).filter(|h| *h != identity) {
        info!(previous, "the Lease expired: taking it over");
    }
    let next = Lease {
        metadata: lease.metadata.clone(),
        spec: Some(taken(&spec, identity, cfg.duration_seconds(), now(), false)),
    };
    match api.replace(LEASE_NAME, &PostParams::default(), &next).await {
        Ok(l) => Ok(Some(l)),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(None), // it changed: look again next time
        Err(e) => Err(e),
    }
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// The holder, if any (an empty holderIdentity means free, as in client-go).
fn holder(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref().filter(|h| !h.is_empty())
}

/// Whether `identity` may take a Lease whose current record it has seen unchanged for `unchanged_for`: when it
/// is free, already ours (a restart of this same instance), or not renewed for its whole duration. A record
/// without a duration is given `default_duration`.
fn may_take(spec: &LeaseSpec, identity: &str, unchanged_for: Duration, default_duration: Duration) -> bool {
    match holder(spec) {
        None => true,
        Some(h) if h == identity => true,
        Some(_) => {
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map_or(default_duration, Duration::from_secs);
            unchanged_for >= duration
        }
    }
}

/// The record once `identity` takes it at `now`: a new holder counts a transition (a new Lease starts at 0);
/// taking back our own keeps acquireTime and the count.
fn taken(spec: &LeaseSpec, identity: &str, duration_seconds: i32, now: MicroTime, new: bool) -> LeaseSpec {
    let ours = holder(spec) == Some(identity);
    let transitions = spec.lease_transitions.unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(identity.into()),
        lease_duration_seconds: Some(duration_seconds),
        acquire_time: if ours { spec.acquire_time.clone().or_else(|| Some(now.clone())) } else { Some(now.clone()) },
        renew_time: Some(now),
        lease_transitions: Some(if ours || new { transitions } else { transitions.saturating_add(1) }),
        ..spec.clone()
    }
}

/// The record renewed at `now`.
fn renewed(spec: &LeaseSpec, now: MicroTime) -> LeaseSpec {
    LeaseSpec { renew_time: Some(now), ..spec.clone() }
}

/// The record given up: no holder, no times, no duration (what kube-lease-manager writes); the count stays.
fn released(spec: &LeaseSpec) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        acquire_time: None,
        renew_time: None,
        lease_duration_seconds: None,
        ..spec.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> MicroTime {
        MicroTime(Timestamp::from_second(1_700_000_000 + s).unwrap())
    }

    fn held(by: &str, duration: Option<i32>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(by.into()),
            lease_duration_seconds: duration,
            acquire_time: Some(t(0)),
            renew_time: Some(t(5)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn a_lease_held_by_another_is_taken_only_after_its_duration_unchanged() {
        let spec = held("a", Some(15), 0);
        assert!(!may_take(&spec, "b", Duration::ZERO, D));
        assert!(!may_take(&spec, "b", Duration::from_millis(14_999), D));
        assert!(may_take(&spec, "b", Duration::from_secs(15), D));
        // The record's own duration counts, not ours.
        let long = held("a", Some(60), 0);
        assert!(!may_take(&long, "b", Duration::from_secs(59), D));
        assert!(may_take(&long, "b", Duration::from_secs(60), D));
        // No (or a nonsensical) duration: ours.
        for d in [None, Some(0), Some(-3)] {
            assert!(!may_take(&held("a", d, 0), "b", Duration::from_secs(14), D));
            assert!(may_take(&held("a", d, 0), "b", Duration::from_secs(15), D));
        }
    }

    #[test]
    fn a_free_lease_or_our_own_is_taken_at_once() {
        assert!(may_take(&LeaseSpec::default(), "b", Duration::ZERO, D));
        assert!(may_take(&held("", Some(15), 3), "b", Duration::ZERO, D), "empty holder means free");
        assert!(may_take(&released(&held("a", Some(15), 3)), "b", Duration::ZERO, D));
        assert!(may_take(&held("b", Some(15), 3), "b", Duration::ZERO, D), "a restart of the same instance");
    }

    #[test]
    fn taking_over_counts_a_transition_and_sets_both_times() {
        let next = taken(&held("a", Some(15), 4), "b", 15, t(100), false);
        assert_eq!(next.holder_identity.as_deref(), Some("b"));
        assert_eq!(next.lease_duration_seconds, Some(15));
        assert_eq!(next.acquire_time, Some(t(100)));
        assert_eq!(next.renew_time, Some(t(100)));
        assert_eq!(next.lease_transitions, Some(5));
        // After a release too (client-go counts it the same way).
        let next = taken(&released(&held("a", Some(15), 4)), "b", 15, t(100), false);
        assert_eq!(next.lease_transitions, Some(5));
        assert_eq!(taken(&held("a", Some(15), i32::MAX), "b", 15, t(1), false).lease_transitions, Some(i32::MAX));
    }

    #[test]
    fn a_new_lease_starts_at_zero_transitions_and_taking_back_our_own_keeps_the_record() {
        let new = taken(&LeaseSpec::default(), "a", 15, t(1), true);
        assert_eq!(new.lease_transitions, Some(0));
        assert_eq!(new.holder_identity.as_deref(), Some("a"));
        let again = taken(&held("a", Some(15), 2), "a", 15, t(100), false);
        assert_eq!(again.acquire_time, Some(t(0)));
        assert_eq!(again.renew_time, Some(t(100)));
        assert_eq!(again.lease_transitions, Some(2));
    }

    #[test]
    fn renewing_moves_only_the_renew_time_and_releasing_clears_the_holder_but_keeps_the_count() {
        let spec = held("a", Some(15), 2);
        assert_eq!(renewed(&spec, t(9)), LeaseSpec { renew_time: Some(t(9)), ..spec.clone() });
        let free = released(&spec);
        assert_eq!(holder(&free), None);
        assert_eq!((free.acquire_time, free.renew_time, free.lease_duration_seconds), (None, None, None));
        assert_eq!(free.lease_transitions, Some(2));
    }

    fn leadership(deadline: Option<Instant>) -> (Leadership, watch::Sender<Option<Instant>>) {
        let (tx, rx) = watch::channel(deadline);
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let api = Api::namespaced(client, "default");
        (Leadership { deadline: rx, renewer: tokio::spawn(std::future::pending()), api, identity: "a".into() }, tx)
    }

    // Virtual time: the clock only moves when every task waits, so the instants below are exact (the test once
    // failed on wall-clock timings under load).
    #[tokio::test(start_paused = true)]
    async fn leadership_is_lost_at_the_deadline_unless_a_renewal_moves_it() {
        let start = Instant::now();
        let (mut l, tx) = leadership(Some(start + Duration::from_millis(300)));
        assert!(l.is_leading());
        let extend = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.send_replace(Some(Instant::now() + Duration::from_millis(300)));
        };
        let ((), ()) = tokio::join!(l.lost(), extend);
        let lost_after = start.elapsed();
        assert_eq!(lost_after, Duration::from_millis(500), "lost at the deadline the renewal moved it to");
        assert!(!l.is_leading());
    }

    #[tokio::test]
    async fn leadership_is_lost_at_once_when_another_holds_the_lease_or_the_renewals_stop() {
        let far = Instant::now() + Duration::from_secs(60);
        let (mut l, tx) = leadership(Some(far));
        tx.send_replace(None);
        tokio::time::timeout(Duration::from_secs(1), l.lost()).await.expect("lost at once");
        assert!(!l.is_leading());
        let (mut l, tx) = leadership(Some(far));
        drop(tx);
        tokio::time::timeout(Duration::from_secs(1), l.lost()).await.expect("lost when the renewer ends");
    }

    #[test]
    fn timings_are_checked() {
        let cfg = LeaseConfig::default();
        assert!(cfg.retry_period < cfg.renew_deadline && cfg.renew_deadline < cfg.duration);
        assert_eq!(cfg.duration_seconds(), 15);
    }
}
