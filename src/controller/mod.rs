//! The reconciler: read (caches) -> validate and build (pure) -> apply (server-side apply) -> one disruptive
//! step at most, behind data-plane safety checks -> status. It never sleeps: waiting is a requeue.
mod access;
mod apply;
mod by_cluster;
pub mod cached_pod;
mod dynamic;
mod local_storage;
mod pod_network;
mod pods;
mod rollout;
mod roster;
mod slim;
pub mod status;
mod tls;
mod volume_init;
mod volumes;
mod warm_restart;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::api::{AerospikeCluster, AerospikeClusterStatus, FINALIZER, InstanceSummary, Phase, PodStatus};
use crate::asinfo::InfoClient;
use crate::desired::{self, BuildContext, Desired};
use crate::metrics::Metrics;
pub use apply::FIELD_MANAGER;
use cached_pod::CachedPod;
use status::{AVAILABLE, DEGRADED, PROGRESSING, set_condition};

use pods::observe_pods;
/// How long a settled cluster waits before the next drift check, and how fast a rollout is re-examined.
pub(crate) use pods::{info_addr, pod_view, rack_targets};

const RESYNC: Duration = Duration::from_secs(300);
const PROGRESS_POLL: Duration = Duration::from_secs(2);
const BLOCKED_POLL: Duration = Duration::from_secs(10);
/// Objects per page of a watch's initial list. A page is deserialized whole, in full (the caches slim each object
/// after), so kube's default of 500 held up to 500 full pods at once when the operator (re)started: at 100 clusters
/// the restarted process peaked higher than the one that created them. More, smaller pages cost a few requests at
/// start only.
const LIST_PAGE_SIZE: u32 = 50;
/// A cluster's reconcile starts once its triggers have been quiet this long. Creating a cluster sets off bursts of
/// events (our own applies coming back, each pod scheduled, started and Ready within milliseconds); reconciling each
/// one wrote a status for each. With it, 100 clusters made 4.3 status writes each instead of 8.5, and reached
/// Completed in 14.2 s instead of 19.7 s (`cargo xtask bench --clusters 100`, README: Measurements), for a quarter
/// second more per step of a lone cluster.
const RECONCILE_DEBOUNCE: Duration = Duration::from_millis(250);
/// Reconciles in flight at once over every watched namespace, unless `--max-concurrent-reconciles` says otherwise;
/// more wait in the controller's queue (never the same cluster twice at once either way). Unbounded, creating 100
/// clusters had about 250 in flight, nearly all waiting on a busy API server, and they were most of the operator's
/// peak memory: each reconcile's state, the desired objects it builds, and an HTTP/1.1 connection with its buffers
/// per concurrent request (a heap profile: 5.5 of 24.4 MB peak heap in reconcile futures, about 4 MB in 129
/// connections). With the bound, memory no longer grows with the reconciles in flight (README: Measurements).
/// 32 rather than 64: on the bench's plane, where the API server is the bottleneck, 32 reached Completed as fast
/// (100, 300 and 1000 clusters) with 13 to 17 % less peak memory and a third of the p99 latency; 16 was slower at
/// 100 clusters (README: Measurements, "The bound on reconciles in flight").
pub const MAX_CONCURRENT_RECONCILES: u16 = 32;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("object has no namespace")]
    NoNamespace,
    #[error("reconcile panicked (a bug; the other clusters keep going): {0}")]
    Panic(String),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(s)) if s.code == 403 => "forbidden",
            Error::Kube(_) => "kube",
            Error::Finalizer(_) => "finalizer",
            Error::NoNamespace => "no_namespace",
            Error::Panic(_) => "panic",
        }
    }
}

/// Caches of the objects the operator owns in one watch scope, filled by the controller's watches.
#[derive(Clone)]
pub struct Stores {
    pub stateful_sets: Store<StatefulSet>,
    pub services: Store<Service>,
    pub config_maps: Store<ConfigMap>,
    pub pdbs: Store<PodDisruptionBudget>,
    pub pods: Store<CachedPod>,
    /// Which cached StatefulSets, Services and pods belong to which cluster, so a reconcile reads its own.
    pub index: Indexes,
}

/// Per-cluster indexes over [`Stores`] (see `by_cluster`).
#[derive(Clone, Default)]
pub struct Indexes {
    stateful_sets: by_cluster::ByCluster,
    services: by_cluster::ByCluster,
    pods: by_cluster::ByCluster,
}

impl Stores {
    /// The cached StatefulSets labelled as `cluster`'s in `namespace`.
    pub fn cluster_stateful_sets(&self, namespace: &str, cluster: &str) -> Vec<Arc<StatefulSet>> {
        self.index.stateful_sets.get(&self.stateful_sets, namespace, cluster)
    }

    /// The cached Services labelled as `cluster`'s in `namespace`.
    pub fn cluster_services(&self, namespace: &str, cluster: &str) -> Vec<Arc<Service>> {
        self.index.services.get(&self.services, namespace, cluster)
    }

    /// The cached pods labelled as `cluster`'s in `namespace` (labels only: see `pods::observe_pods`).
    pub fn cluster_pods(&self, namespace: &str, cluster: &str) -> Vec<Arc<CachedPod>> {
        self.index.pods.get(&self.pods, namespace, cluster)
    }

    /// Resolves once every cache holds its first complete list. Awaited by one future only (see
    /// [`Context::caches_ready`]): kube's readiness signal wakes a single waiter.
    async fn ready(&self) {
        let _ = self.stateful_sets.wait_until_ready().await;
        let _ = self.services.wait_until_ready().await;
        let _ = self.config_maps.wait_until_ready().await;
        let _ = self.pdbs.wait_until_ready().await;
        let _ = self.pods.wait_until_ready().await;
    }
}

/// Everything a reconcile needs; one per watch scope.
pub struct Context {
    pub client: Client,
    pub info: Arc<dyn InfoClient>,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub build: BuildContext,
    pub stores: Stores,
    /// Since when each missing pod (`<ns>/<cluster>/<pod>`) has been missing: a pod being recreated is normal, one
    /// that stays missing is reported (see `rollout::missing_gate`). In memory: a restart only resets the grace.
    pub missing_since: std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
    /// How each cluster's (`<ns>/<cluster>`) migrations have moved: waiting for migrations is progress, migrations
    /// that stop moving are a fault (see `rollout::block`).
    pub migrations: std::sync::Mutex<std::collections::HashMap<String, crate::plan::MigrationProgress>>,
    /// Admin sessions for access control (Aerospike's own client).
    pub admin: Arc<dyn crate::access::admin::AdminConnector>,
    /// Fingerprints of the passwords each cluster accepted (see `access::fingerprint`), so a cluster in sync is
    /// not logged in to user by user on every reconcile. In memory: a restart checks each once by a login.
    pub accepted_passwords: std::sync::Mutex<std::collections::HashMap<(String, String), [u8; 32]>>,
    /// When each cluster's (uid) users and roles were last read back and found in sync.
    pub access_checked: std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
    /// Each cluster's (uid) TLS client configuration from spec.operatorClientCert, with the resourceVersions of
    /// the Secrets it was read from (see `tls`).
    pub tls_configs: std::sync::Mutex<std::collections::HashMap<String, (String, Arc<rustls::ClientConfig>)>>,
    /// When each cluster (`<ns>/<cluster>`) last warm-restarted a node: its pod stays Ready while the server restarts,
    /// so for a while a node that does not answer is a restart under way, not a fault (see `rollout::block`).
    pub warm_restarted: std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
    /// The last scale-down of each strong-consistency cluster (`<ns>/<cluster>`), checked once its pods are gone and
    /// rolled back if it left partitions unavailable (see `rollout::after_scale_down`). In memory: an operator
    /// restart in between forgets it (the partitions are still reported, nothing is rolled back).
    pub(crate) scale_downs: std::sync::Mutex<std::collections::HashMap<String, rollout::ScaleDownRecord>>,
    /// The pods (uids) of each cluster (`<ns>/<cluster>`) whose nodes all answered its last passed safety check: a
    /// pod not among them that became Ready recently may still be starting its server (see
    /// `rollout::NODE_START_GRACE`). In memory: after an operator restart every pod Ready for less than the grace
    /// counts as starting.
    pub(crate) answered: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
    /// True once every cache holds its first complete list ([`Stores::ready`]). Reconciles wait for it: one that ran
    /// before would compare the desired objects with empty caches and apply them all again (after an operator
    /// restart: writes for every cluster although nothing changed). A watch channel because any number of
    /// reconciles wait at once, and kube's own readiness signal wakes only the last one that polled it.
    pub(crate) caches_ready: tokio::sync::watch::Receiver<bool>,
    /// The bound on reconciles in flight, shared by every watch scope (None: unbounded); see
    /// [`MAX_CONCURRENT_RECONCILES`].
    pub(crate) in_flight: Option<Arc<tokio::sync::Semaphore>>,
}

impl Context {
    fn accepted_password(&self, uid: &str, user: &str, password: &crate::access::Password) -> bool {
        let key = (uid.to_string(), user.to_string());
        let known = self.accepted_passwords.lock().unwrap_or_else(|e| e.into_inner()).get(&key).copied();
        known == Some(access::fingerprint(uid, user, password))
    }

    fn remember_password(&self, uid: &str, user: &str, password: &crate::access::Password) {
        let key = (uid.to_string(), user.to_string());
        let print = access::fingerprint(uid, user, password);
        self.accepted_passwords.lock().unwrap_or_else(|e| e.into_inner()).insert(key, print);
    }
}

/// Which namespaces to watch: all, or an explicit list (OLM's OwnNamespace, SingleNamespace and
/// MultiNamespace modes all become a list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Namespaces(Vec<String>),
}

impl Scope {
    /// Parse WATCH_NAMESPACE: empty means all namespaces, else a comma-separated list.
    pub fn parse(value: &str) -> Scope {
        let mut list: Vec<String> =
            value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        list.sort();
        list.dedup();
        if list.is_empty() { Scope::All } else { Scope::Namespaces(list) }
    }

    /// One entry per watch: `None` watches all namespaces.
    fn watches(&self) -> Vec<Option<String>> {
        match self {
            Scope::All => vec![None],
            Scope::Namespaces(ns) => ns.iter().cloned().map(Some).collect(),
        }
    }
}

fn scoped_api<K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>>(
    client: &Client,
    namespace: Option<&str>,
) -> Api<K> {
    match namespace {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    }
}

pub struct RunConfig {
    pub scope: Scope,
    pub build: BuildContext,
    pub info: Arc<dyn InfoClient>,
    pub metrics: Metrics,
    pub instance: String,
    /// Reconciles in flight at once over all scopes (0: unbounded); see [`MAX_CONCURRENT_RECONCILES`].
    pub concurrency: u16,
}

/// Fail fast with a clear message when the CRD is missing or RBAC forbids listing clusters.
pub async fn preflight(client: &Client, scope: &Scope) -> anyhow::Result<()> {
    for ns in scope.watches() {
        let api: Api<AerospikeCluster> = scoped_api(client, ns.as_deref());
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => anyhow::bail!(
                "the AerospikeCluster CRD (aerospikeclusters.asdb.aerospike.com) is not installed: \
                 install it with `aerospike-kubernetes-operator crd | kubectl apply -f -`"
            ),
            Err(kube::Error::Api(s)) if s.code == 403 => anyhow::bail!(
                "RBAC forbids listing aerospikeclusters ({}): grant the operator's ClusterRole/Role in the \
                 watched namespaces",
                s.message
            ),
            Err(e) => anyhow::bail!("cannot list aerospikeclusters: {e}"),
        }
    }
    Ok(())
}

/// Run the controllers (one per namespace of the scope) until shutdown.
pub async fn run(client: Client, cfg: RunConfig, ready: impl Fn() + Send + Sync + 'static) -> anyhow::Result<()> {
    let reporter = Reporter { controller: FIELD_MANAGER.into(), instance: Some(cfg.instance.clone()) };
    let ready = Arc::new(ready);
    let in_flight = (cfg.concurrency > 0).then(|| Arc::new(tokio::sync::Semaphore::new(usize::from(cfg.concurrency))));
    let mut runs = Vec::new();
    for ns in cfg.scope.watches() {
        let ns = ns.as_deref();
        let ctx_client = client.clone();
        let api: Api<AerospikeCluster> = scoped_api(&client, ns);
        let sts_api: Api<StatefulSet> = scoped_api(&client, ns);
        let svc_api: Api<Service> = scoped_api(&client, ns);
        let cm_api: Api<ConfigMap> = scoped_api(&client, ns);
        let pdb_api: Api<PodDisruptionBudget> = scoped_api(&client, ns);
        let pod_api: Api<CachedPod> = scoped_api(&client, ns);
        let owned = watcher::Config::default()
            .labels(&format!("{}={}", desired::LABEL_MANAGED_BY, desired::MANAGER_NAME))
            .page_size(LIST_PAGE_SIZE);
        let pods_cfg = watcher::Config::default()
            .labels(&format!("{}={}", desired::LABEL_APP, desired::APP_NAME))
            .page_size(LIST_PAGE_SIZE);
        let (sts_store, sts_writer) = reflector::store();
        let (svc_store, svc_writer) = reflector::store();
        let (cm_store, cm_writer) = reflector::store();
        let (pdb_store, pdb_writer) = reflector::store();
        let (pod_store, pod_writer) = reflector::store();
        let (caches_ready_tx, caches_ready) = tokio::sync::watch::channel(false);
        let index = Indexes::default();
        // Each cache keeps only what the reconciler reads (see `slim`); the indexes follow the same events.
        let sts_stream =
            reflector::reflector(sts_writer, watcher(sts_api, owned.clone()).modify(slim::slim_stateful_set))
                .inspect(index.stateful_sets.observer())
                .default_backoff()
                .applied_objects();
        let svc_stream = reflector::reflector(svc_writer, watcher(svc_api, owned.clone()).modify(slim::slim_service))
            .inspect(index.services.observer())
            .default_backoff()
            .applied_objects();
        let cm_stream = reflector::reflector(cm_writer, watcher(cm_api, owned.clone()).modify(slim::slim_config_map))
            .default_backoff()
            .applied_objects();
        let pdb_stream = reflector::reflector(pdb_writer, watcher(pdb_api, owned.clone()).modify(slim::slim))
            .default_backoff()
            .applied_objects();
        let pod_stream = reflector::reflector(pod_writer, watcher(pod_api, pods_cfg).modify(slim::slim))
            .inspect(index.pods.observer())
            .default_backoff()
            .touched_objects();
        let stores = Stores {
            stateful_sets: sts_store,
            services: svc_store,
            config_maps: cm_store,
            pdbs: pdb_store,
            pods: pod_store,
            index,
        };
        let ctx = Arc::new(Context {
            client: ctx_client.clone(),
            info: cfg.info.clone(),
            metrics: cfg.metrics.clone(),
            recorder: Recorder::new(ctx_client.clone(), reporter.clone()),
            build: cfg.build.clone(),
            stores: stores.clone(),
            missing_since: Default::default(),
            migrations: Default::default(),
            warm_restarted: Default::default(),
            scale_downs: Default::default(),
            answered: Default::default(),
            admin: Arc::new(crate::access::admin::AerospikeConnector),
            accepted_passwords: Default::default(),
            access_checked: Default::default(),
            tls_configs: Default::default(),
            caches_ready,
            in_flight: in_flight.clone(),
        });
        let ready = ready.clone();
        // The AerospikeCluster watch gets its own backoff like the others, and the controller adds none over
        // the merged streams (see `NoSharedBackoff`).
        let (cluster_store, cluster_writer) = reflector::store();
        let cluster_stream = reflector::reflector(
            cluster_writer,
            watcher(api, watcher::Config::default().any_semantic().page_size(LIST_PAGE_SIZE)).modify(slim::slim),
        )
        .default_backoff()
        .applied_objects();
        let controller = Controller::for_stream(cluster_stream, cluster_store)
            .with_config(
                kube::runtime::controller::Config::default().debounce(RECONCILE_DEBOUNCE).concurrency(cfg.concurrency),
            )
            .trigger_backoff(NoSharedBackoff)
            .owns_stream(sts_stream)
            .owns_stream(svc_stream)
            .owns_stream(cm_stream)
            .owns_stream(pdb_stream)
            .watches_stream(pod_stream, |pod: CachedPod| {
                let cr = pod.labels().get(desired::LABEL_CR)?.clone();
                Some(ObjectRef::<AerospikeCluster>::new(&cr).within(&pod.namespace()?))
            })
            .shutdown_on_signal();
        let main_store = controller.store();
        runs.push(async move {
            let stores2 = stores.clone();
            let readiness = async move {
                let _ = main_store.wait_until_ready().await;
                stores2.ready().await;
                let _ = caches_ready_tx.send(true);
                ready();
            };
            let run = controller.run(reconcile, error_policy, ctx).for_each(|res| async move {
                if let Err(e) = res {
                    warn!(error = %e, "reconcile failed");
                }
            });
            futures::join!(readiness, run);
        });
    }
    // Backup and restore (v1beta1) run beside the clusters' controllers, over the same scope.
    futures::join!(futures::future::join_all(runs), crate::backup::run(client.clone(), cfg.scope.watches(), reporter));
    Ok(())
}

/// The controller's backoff over its merged watch streams: none. By default kube-runtime pauses *all* of a
/// controller's input streams after an error from *any* of them, for an exponential backoff (up to 30 s plus
/// jitter) that only resets on the next event. The streams also drive the reflectors behind [`Stores`], so when
/// the API server goes away every watch fails, the shared backoff escalates, and the caches (pods included) stay
/// frozen for minutes after the API server is back, while requeued reconciles keep acting on that stale view
/// (old pod IPs, pods already deleted). Every stream above backs off on its own instead (`default_backoff`), so one
/// failing watch never holds up the others and none retries in a tight loop.
struct NoSharedBackoff;

impl Iterator for NoSharedBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for NoSharedBackoff {
    fn reset(&mut self) {}
}

fn error_policy(cluster: Arc<AerospikeCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(cluster = %cluster.name_any(), error = %error, "reconcile error");
    ctx.metrics.failure(error.metric_label());
    Action::requeue(BLOCKED_POLL)
}

async fn reconcile(cluster: Arc<AerospikeCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    // Only at start-up does this wait: for the first lists, which the controller's own streams are fetching.
    let _ = ctx.caches_ready.clone().wait_for(|ready| *ready).await;
    let bound = ctx.in_flight.clone();
    within(bound.as_ref(), || async move {
        let timer = ctx.metrics.reconcile_timer();
        let result = contain_panics(reconcile_unguarded(cluster, ctx.clone())).await;
        timer.finish(result.is_ok());
        result
    })
    .await
}

/// Runs the future `work` makes once `bound` (shared by every watch scope; the controller's own bound is per scope,
/// one per namespace in a list install) has a permit for it. The future is made and boxed only then: one waiting
/// for its permit holds this small future, not a reconcile's whole state (about 55 KB in a 300-cluster heap profile).
async fn within<F: std::future::Future>(
    bound: Option<&Arc<tokio::sync::Semaphore>>,
    work: impl FnOnce() -> F,
) -> F::Output {
    let _permit = match bound {
        Some(bound) => bound.clone().acquire_owned().await.ok(),
        None => None,
    };
    Box::pin(work()).await
}

/// A panic in one reconcile becomes that reconcile's error (logged, counted, retried with the error policy's
/// backoff) instead of unwinding through the controller and ending the process, and with it every other cluster.
async fn contain_panics<T>(work: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            tracing::error!(panic = %msg, "reconcile panicked");
            Err(Error::Panic(msg))
        }
    }
}

async fn reconcile_unguarded(cluster: Arc<AerospikeCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = cluster.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<AerospikeCluster> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, cluster, |event| async {
        match event {
            FinalizerEvent::Apply(c) => apply_cluster(c, ctx.clone()).await,
            FinalizerEvent::Cleanup(c) => cleanup(c, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

/// What the reconcile concluded, for status and events.
#[derive(Clone)]
struct Outcome {
    phase: Phase,
    /// The `Progressing` condition: whether a change is under way, and why.
    progressing: Verdict,
    /// The `Degraded` condition when something stops the rollout (None: `Degraded=False`).
    degraded: Option<Verdict>,
    requeue: Duration,
    /// Pods restarted by this reconcile for `spec.operations` (recorded in status.operations).
    operation_restarts: Vec<String>,
    /// What nodes advertise to clients, read this reconcile (status.pods[].aerospike.*AccessEndpoints).
    endpoints: BTreeMap<String, [Vec<String>; 4]>,
    /// status.pods[].initializedVolumes and dirtyVolumes decided this reconcile (see `volume_init`); pods not
    /// named keep theirs.
    volumes: BTreeMap<String, (Vec<String>, Vec<String>)>,
    /// Where each pod landed, as published for its init step (status.pods[].hostExternalIP, servicePort).
    pod_network: BTreeMap<String, crate::desired::pod_network::PodNetwork>,
}

/// A condition's status, reason and message.
#[derive(Clone)]
struct Verdict {
    status: bool,
    reason: String,
    message: String,
}

impl Verdict {
    fn new(status: bool, reason: &str, message: impl Into<String>) -> Verdict {
        Verdict { status, reason: reason.to_string(), message: message.into() }
    }
}

async fn apply_cluster(cluster: Arc<AerospikeCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = cluster.name_any();
    let ns = cluster.namespace().ok_or(Error::NoNamespace)?;
    if cluster.spec.paused() {
        let outcome = Outcome {
            phase: cluster.status.as_ref().and_then(|s| s.phase).unwrap_or(Phase::InProgress),
            progressing: Verdict::new(false, "Paused", "spec.paused is true: no changes are applied"),
            degraded: None,
            requeue: RESYNC,
            operation_restarts: Vec::new(),
            endpoints: BTreeMap::new(),
            volumes: BTreeMap::new(),
            pod_network: BTreeMap::new(),
        };
        write_status(&cluster, &ctx, None, &[], outcome).await?;
        return Ok(Action::await_change());
    }

    // The admission rules run here too, so a change that skipped the webhook is refused the same way; the rules
    // on changes compare with the applied spec kept in status.
    // The cluster is resolved once (racks, configs) and both the rules and the build read it.
    let resolved = crate::resolve::resolve(&cluster);
    let applied = crate::validate::applied_view(&cluster);
    let applied = applied.as_ref().map(crate::resolve::resolve);
    let refusals = crate::validate::check(&resolved, applied.as_ref());
    let built = if refusals.is_empty() {
        desired::desired_state(&resolved, &ctx.build).map_err(|e| e.to_string())
    } else {
        Err(crate::validate::summary(&refusals))
    };
    let desired = match built {
        Ok(d) => d,
        Err(msg) => {
            publish(&ctx, &cluster, EventType::Warning, "InvalidSpec", "Validate", &msg).await;
            let outcome = Outcome {
                phase: Phase::Error,
                progressing: Verdict::new(false, "InvalidSpec", msg.clone()),
                degraded: Some(Verdict::new(true, "InvalidSpec", msg)),
                requeue: RESYNC,
                operation_restarts: Vec::new(),
                endpoints: BTreeMap::new(),
                volumes: BTreeMap::new(),
                pod_network: BTreeMap::new(),
            };
            write_status(&cluster, &ctx, None, &[], outcome).await?;
            // Bad input waits for the user to change the object: no crash loop, no retry storm.
            return Ok(Action::await_change());
        }
    };

    // A new spec: say which of its fields the operator does not act on yet (the webhook said so too, if it ran).
    let new_generation = cluster.status.as_ref().and_then(|s| s.observed_generation) != cluster.metadata.generation;
    if new_generation {
        let warnings = crate::validate::warnings(&resolved);
        if !warnings.is_empty() {
            let note = crate::validate::summary(&warnings);
            publish(&ctx, &cluster, EventType::Warning, "FieldsNotImplemented", "Validate", &note).await;
        }
    }

    // Objects that are safe to apply at once.
    let svc_api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    apply::apply(&svc_api, &ctx.stores.services, desired.headless_service.clone()).await?;
    if let Some(lb) = &desired.lb_service {
        apply::apply(&svc_api, &ctx.stores.services, lb.clone()).await?;
    }
    // What each rack's config change takes away, compared with the applied spec (as the reference): devices (their
    // volumes are wiped by pod-init, which runs only in a new pod, so that change restarts pods, not servers in
    // place; every pod started before the change is applied gets them as dirty) and files (deleted before each pod restarts).
    let mut removed = volume_init::Removed::default();
    for rack in &desired.racks {
        let old = applied.as_ref().and_then(|a| a.racks.iter().find(|r| r.id == rack.id)?.config.as_ref());
        let Some(old) = old else { continue };
        let devices = volume_init::removed_device_volumes(&old.value, &rack.config, &rack.storage);
        if !devices.is_empty() {
            removed.devices.insert(rack.id, devices);
        }
        let files = volume_init::removed_files(&old.value, &rack.config);
        if !files.is_empty() {
            removed.files.insert(rack.id, files);
        }
    }
    // The rack ConfigMaps carry what pod-init must know of each pod's volumes (see `volume_init`).
    let pods = observe_pods(&ctx, &name, &ns);
    let claims = if desired.racks.iter().any(|r| !volume_init::persistent_volumes(&r.storage).is_empty()) {
        let selector = format!("{}={name}", desired::LABEL_CR);
        volume_init::claim_uids(&pvc_api(&ctx, &ns).list(&ListParams::default().labels(&selector)).await?.items)
    } else {
        BTreeMap::new()
    };
    // The volume bookkeeping starts from the status as last written, not the cache's copy: a dirty mark written by
    // the previous reconcile must reach the entry of the pod it restarted, and must not be dropped.
    let old_pods = if claims.is_empty() {
        cluster.status.as_ref().map(|s| s.pods.clone()).unwrap_or_default()
    } else {
        let api: Api<AerospikeCluster> = Api::namespaced(ctx.client.clone(), &ns);
        api.get_status(&name).await?.status.map(|s| s.pods).unwrap_or_default()
    };
    let mut entries = BTreeMap::new();
    let cm_api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    for (rack, cm) in desired.racks.iter().zip(&desired.config_maps) {
        let existing: BTreeMap<String, desired::PodVolumes> = ctx
            .stores
            .config_maps
            .get(&ObjectRef::new(&rack.name).within(&ns))
            .and_then(|cm| cm.data.as_ref()?.get(desired::CM_VOLUMES_KEY).cloned())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let rack_pods: Vec<&CachedPod> = pods.iter().map(|p| p.as_ref()).filter(|p| of_rack(p, &rack.name)).collect();
        let volumes = volume_init::persistent_volumes(&rack.storage);
        let rack_volumes = volume_init::RackVolumes {
            volumes: &volumes,
            config: &rack.config,
            conf_hash: &rack.conf_hash,
            storage: &rack.storage,
            gone: removed.devices.get(&rack.id).map(Vec::as_slice).unwrap_or_default(),
        };
        let rack_entries = volume_init::entries(&rack_volumes, &rack_pods, &existing, &old_pods, &claims);
        apply::apply(&cm_api, &ctx.stores.config_maps, desired::with_pod_volumes(cm.clone(), &rack_entries)).await?;
        entries.insert(rack.name.clone(), (rack_entries, volumes));
    }
    let pdb_api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &ns);
    match &desired.pdb {
        Some(pdb) => {
            apply::apply(&pdb_api, &ctx.stores.pdbs, pdb.clone()).await?;
        }
        None => {
            if ctx.stores.pdbs.get(&ObjectRef::new(&name).within(&ns)).is_some() {
                apply::delete(&pdb_api, &name).await?;
            }
        }
    }

    // Before the rollout step, which may wait for pods whose init step waits for these facts.
    let network = pod_network::publish(&ctx, &cluster, &desired, &pods).await?;
    let in_place = dynamic::in_place_changes(&cluster, &resolved, applied.as_ref());
    let mut outcome = rollout::step(&cluster, &ctx, &desired, &in_place, &removed, &pods).await?;
    outcome.pod_network = network;
    // Pods not seen (being recreated) keep the volume records as last written, not the cache's older copy.
    for (pod, old) in &old_pods {
        outcome.volumes.insert(pod.clone(), (old.initialized_volumes.clone(), old.dirty_volumes.clone()));
    }
    for rack in &desired.racks {
        let Some((rack_entries, volumes)) = entries.get(&rack.name) else { continue };
        for pod in pods.iter().filter(|p| of_rack(p, &rack.name)) {
            let pod_name = pod.name_any();
            let old = old_pods.get(&pod_name).cloned().unwrap_or_default();
            let record = volume_init::record(pod, &old, rack_entries.get(&pod_name), volumes, &claims);
            outcome.volumes.insert(pod_name, record);
        }
    }
    write_status(&cluster, &ctx, Some(&desired), &pods, outcome.clone()).await?;
    Ok(Action::requeue(outcome.requeue))
}

/// Whether `pod` is one of the StatefulSet `sts`'s (`<sts>-<ordinal>`; not a pod of another revision of the rack).
pub(super) fn of_rack(pod: &CachedPod, sts: &str) -> bool {
    pod.name_any().strip_prefix(&format!("{sts}-")).is_some_and(|o| o.parse::<u32>().is_ok())
}

async fn publish(ctx: &Context, cluster: &AerospikeCluster, type_: EventType, reason: &str, action: &str, note: &str) {
    publish_related(ctx, cluster, None, type_, reason, action, note).await
}

/// An Event about the cluster that also names the object it concerns (e.g. the restarted pod). The recorder folds
/// repeats into one series per (reason, object, related object), keeping the first note: naming the pod gives
/// each pod its own series, so `kubectl describe` shows which pods were restarted, not only the first.
async fn publish_related(
    ctx: &Context,
    cluster: &AerospikeCluster,
    related: Option<k8s_openapi::api::core::v1::ObjectReference>,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: related,
    };
    if let Err(e) = ctx.recorder.publish(&event, &cluster.object_ref(&())).await {
        warn!(error = %e, reason, "could not publish event");
    }
}

async fn write_status(
    cluster: &AerospikeCluster,
    ctx: &Context,
    desired: Option<&Desired>,
    pods: &[Arc<CachedPod>],
    outcome: Outcome,
) -> Result<(), Error> {
    let name = cluster.name_any();
    let ns = cluster.namespace().ok_or(Error::NoNamespace)?;
    let old = cluster.status.clone().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let st = compute_status(cluster, desired, pods, &outcome, now);
    ctx.metrics.set_phase(&ns, &name, &format!("{:?}", outcome.phase));
    if let Some(desired) = desired {
        let updated = updated_pods(cluster, desired, pods);
        ctx.metrics.set_rollout(&ns, &name, updated as i64, i64::from(cluster.spec.size));
    }
    if st == old {
        return Ok(());
    }
    let (old_json, new_json) = (serde_json::to_value(&old), serde_json::to_value(&st));
    let (Ok(old_json), Ok(new_json)) = (old_json, new_json) else {
        // Plain data, always serializable; a failure would be a bug, not a reason to stop the reconcile.
        warn!(cluster = %name, namespace = %ns, "the status could not be serialized");
        return Ok(());
    };
    let Some(changed) = status::merge_diff(&old_json, &new_json) else {
        return Ok(());
    };
    // The changes are from the cached status: the resourceVersion makes the patch apply to that status only. If
    // the cache is behind (our previous write, a spec edit), the API server refuses it, and the newer object's
    // watch event reconciles the cluster again from it.
    let patch = json!({"metadata": {"resourceVersion": cluster.metadata.resource_version}, "status": changed});
    let api: Api<AerospikeCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match apply::patch(&api, Some("status"), &name, &params, &Patch::Merge(&patch)).await {
        Err(kube::Error::Api(e)) if e.code == 409 => {
            debug!(cluster = %name, namespace = %ns, "status not written: the cached cluster is behind");
            return Ok(());
        }
        result => {
            result?;
        }
    }
    if old.phase != Some(outcome.phase) {
        info!(cluster = %name, namespace = %ns, phase = ?outcome.phase, "phase changed");
    }
    Ok(())
}

/// Pods that run their rack's desired image, aerospike.conf and pod spec (rollout progress).
fn updated_pods(cluster: &AerospikeCluster, desired: &Desired, pods: &[Arc<CachedPod>]) -> usize {
    let targets = rack_targets(cluster, desired, &BTreeMap::new());
    pods.iter()
        .filter_map(|p| pod_view(p, cluster.spec.ignore_sidecar_failure == Some(true)))
        .filter(|v| !v.terminating)
        .filter(|v| targets.iter().any(|t| t.id == v.rack_id && crate::plan::restart_reason(v, t).is_none()))
        .count()
}

/// The status a reconcile leaves (pure): the per-pod map, phase, observedGeneration and the three conditions, from
/// the previous status, the desired state, the pods and the reconcile's outcome. `now` stamps changed conditions.
fn compute_status(
    cluster: &AerospikeCluster,
    desired: Option<&Desired>,
    pods: &[Arc<CachedPod>],
    outcome: &Outcome,
    now: Time,
) -> AerospikeClusterStatus {
    let name = cluster.name_any();
    let old = cluster.status.clone().unwrap_or_default();
    let mut st = old.clone();
    let generation = cluster.metadata.generation;
    let ready_pods = pods
        .iter()
        .filter_map(|p| pod_view(p, cluster.spec.ignore_sidecar_failure == Some(true)))
        .filter(|v| v.ready && !v.terminating)
        .count() as i32;

    if let Some(desired) = desired {
        let mut map = BTreeMap::new();
        for pod in pods {
            let Some(view) = pod_view(pod, cluster.spec.ignore_sidecar_failure == Some(true)) else { continue };
            let rack = desired.racks.iter().find(|r| r.id == view.rack_id);
            let port = rack.map(|r| crate::aerospike_conf::service_port(&r.config)).unwrap_or(3000);
            let old_entry = old.pods.get(&view.name).cloned().unwrap_or_default();
            let facts = outcome.pod_network.get(&view.name);
            let pod_ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
            // Endpoints read now, else those read before from the same pod IP and config.
            let [access, alternate, tls_access, tls_alternate] = match outcome.endpoints.get(&view.name) {
                Some(e) => e.clone(),
                None if old_entry.pod_ip == pod_ip
                    && Some(&old_entry.aerospike_config_hash) == view.conf_hash.as_ref() =>
                {
                    let a = &old_entry.aerospike;
                    [
                        a.access_endpoints.clone(),
                        a.alternate_access_endpoints.clone(),
                        a.tls_access_endpoints.clone(),
                        a.tls_alternate_access_endpoints.clone(),
                    ]
                }
                None => Default::default(),
            };
            map.insert(
                view.name.clone(),
                PodStatus {
                    image: view.image.clone().unwrap_or_default(),
                    pod_ip,
                    host_internal_ip: facts
                        .map(|f| f.host_internal_ip.clone())
                        .or_else(|| pod.status.as_ref().and_then(|s| s.host_ip.clone()))
                        .unwrap_or_default(),
                    host_external_ip: facts.map(|f| f.host_external_ip.clone()).unwrap_or_default(),
                    pod_port: i32::from(port),
                    // The pod's NodePort when it has one (multiPodPerHost), else the server's port (the reference's).
                    service_port: facts.and_then(|f| f.mapped_port).map_or(i32::from(port), i32::from),
                    aerospike: InstanceSummary {
                        cluster_name: name.clone(),
                        node_id: desired::pod_node_id(pod.as_ref()).unwrap_or_default(),
                        rack_id: view.rack_id,
                        tls_name: rack
                            .and_then(|r| crate::aerospike_conf::service_tls(&r.config))
                            .map(|t| t.0)
                            .unwrap_or_default(),
                        access_endpoints: access,
                        alternate_access_endpoints: alternate,
                        tls_access_endpoints: tls_access,
                        tls_alternate_access_endpoints: tls_alternate,
                    },
                    initialized_volumes: outcome
                        .volumes
                        .get(&view.name)
                        .map_or(old_entry.initialized_volumes.clone(), |v| v.0.clone()),
                    dirty_volumes: outcome
                        .volumes
                        .get(&view.name)
                        .map_or(old_entry.dirty_volumes.clone(), |v| v.1.clone()),
                    aerospike_config_hash: view.conf_hash.clone().unwrap_or_default(),
                    network_policy_hash: old_entry.network_policy_hash,
                    pod_spec_hash: view.pod_spec_hash.clone().unwrap_or_default(),
                    dynamic_config_update_status: pods::failure_status(pod).unwrap_or_default(),
                    ..Default::default()
                },
            );
        }
        // A pod being recreated keeps its entry (its volumes above all: a lost initializedVolumes would have the next
        // pod-init initialise volumes that hold data); entries of pods beyond the racks' sizes go.
        for (pod, entry) in &old.pods {
            let wanted = desired.racks.iter().any(|r| {
                pod.strip_prefix(&format!("{}-", r.name))
                    .and_then(|o| o.parse::<i32>().ok())
                    .is_some_and(|o| o < r.size)
            });
            if wanted && !map.contains_key(pod) {
                let mut entry = entry.clone();
                if let Some((initialized, dirty)) = outcome.volumes.get(pod) {
                    (entry.initialized_volumes, entry.dirty_volumes) = (initialized.clone(), dirty.clone());
                }
                map.insert(pod.clone(), entry);
            }
        }
        st.pods = map;
        st.selector =
            Some(desired::selector_labels(&name).iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","));
        st.ready_pods = Some(ready_pods);
    }

    st.phase = Some(outcome.phase);
    st.observed_generation = generation;
    let available = desired.is_some() && ready_pods >= cluster.spec.size && outcome.phase != Phase::Error;
    set_condition(
        &mut st.conditions,
        AVAILABLE,
        available,
        if available { "PodsReady" } else { "PodsNotReady" },
        &format!("{ready_pods}/{} pods ready", cluster.spec.size),
        generation,
        &now,
    );
    let p = &outcome.progressing;
    set_condition(&mut st.conditions, PROGRESSING, p.status, &p.reason, &p.message, generation, &now);
    match &outcome.degraded {
        Some(d) => set_condition(&mut st.conditions, DEGRADED, true, &d.reason, &d.message, generation, &now),
        None => set_condition(&mut st.conditions, DEGRADED, false, "AsExpected", "", generation, &now),
    }
    // Progress of the operation under way (none once the status copies a finished one: see operations::pending).
    let all: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
    if !outcome.operation_restarts.is_empty()
        && let Some((op, _)) = crate::operations::pending(&cluster.spec.operations, &old.operations, &all)
    {
        st.operations = crate::operations::record(&old.operations, &op, &all, &outcome.operation_restarts);
    }
    if outcome.phase == Phase::Completed {
        copy_applied_spec(cluster, &mut st);
    }
    st
}

/// The reference keeps a copy of the last fully applied spec in status; we do the same.
fn copy_applied_spec(cluster: &AerospikeCluster, st: &mut AerospikeClusterStatus) {
    let s = &cluster.spec;
    st.size = Some(s.size);
    st.image = Some(s.image.clone());
    st.max_unavailable = s.max_unavailable.clone();
    st.disable_pdb = s.disable_pdb;
    st.enable_dynamic_config_update = s.enable_dynamic_config_update;
    st.is_readiness_probe_enabled = true;
    st.aerospike_config = s.aerospike_config.clone();
    st.storage = s.storage.clone();
    st.aerospike_access_control = s.aerospike_access_control.clone();
    st.validation_policy = s.validation_policy.clone();
    st.rack_config = s.rack_config.clone();
    st.aerospike_network_policy = s.aerospike_network_policy.clone();
    st.operator_client_cert = s.operator_client_cert.clone();
    st.pod_spec = s.pod_spec.clone();
    st.seeds_finder_services = s.seeds_finder_services.clone();
    st.headless_service = s.headless_service.clone();
    st.pod_service = s.pod_service.clone();
    st.roster_node_block_list = s.roster_node_block_list.clone();
    st.k8s_node_block_list = s.k8s_node_block_list.clone();
    st.operations = s.operations.clone();
    st.multi_pod_per_host = s.pod_spec.as_ref().and_then(|p| p.multi_pod_per_host);
    st.ignore_sidecar_failure = s.ignore_sidecar_failure;
    st.enable_rack_id_override = s.enable_rack_id_override;
}

/// Deletion: owner references remove StatefulSets, Services, ConfigMaps and the PDB; PVCs outlive them
/// unless their volume's policy says cascadeDelete.
async fn cleanup(cluster: Arc<AerospikeCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = cluster.name_any();
    let ns = cluster.namespace().ok_or(Error::NoNamespace)?;
    let deleted = rollout::delete_cascading_pvcs(&cluster, &ctx, None).await?;
    if deleted > 0 {
        publish(
            &ctx,
            &cluster,
            EventType::Normal,
            "PVCsDeleted",
            "Delete",
            &format!("deleted {deleted} PVCs with cascadeDelete"),
        )
        .await;
    }
    ctx.metrics.forget(&ns, &name);
    ctx.answered.lock().unwrap_or_else(|e| e.into_inner()).remove(&format!("{ns}/{name}"));
    Ok(Action::await_change())
}

pub(crate) fn pvc_api(ctx: &Context, ns: &str) -> Api<PersistentVolumeClaim> {
    Api::namespaced(ctx.client.clone(), ns)
}

#[cfg(test)]
mod tests {
    use super::pods::controlled_by_one_of;
    use super::*;

    #[tokio::test]
    async fn the_bound_on_reconciles_in_flight_holds_across_scopes() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let bound = Arc::new(tokio::sync::Semaphore::new(3));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        // Two scopes' controllers, each starting eight reconciles at once, with one bound between them.
        let work = |bound: Option<Arc<tokio::sync::Semaphore>>| {
            let (now, most) = (now.clone(), most.clone());
            async move {
                within(bound.as_ref(), || async {
                    most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    for _ in 0..5 {
                        tokio::task::yield_now().await;
                    }
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }
        };
        let scope = |bound: Option<Arc<tokio::sync::Semaphore>>| {
            futures::future::join_all((0..8).map(|_| tokio::spawn(work(bound.clone()))))
        };
        futures::join!(scope(Some(bound.clone())), scope(Some(bound.clone())));
        assert_eq!(most.load(Ordering::SeqCst), 3);
        // Unbounded, they all run at once.
        most.store(0, Ordering::SeqCst);
        futures::join!(scope(None), scope(None));
        assert_eq!(most.load(Ordering::SeqCst), 16);
    }

    #[tokio::test]
    async fn a_panicking_reconcile_is_an_error_not_the_end_of_the_process() {
        let failed: Result<(), Error> = contain_panics(async {
            let batch: i32 = std::hint::black_box(i32::MAX);
            let _ = batch + 1; // overflows with debug assertions
            Ok(())
        })
        .await;
        match failed {
            Err(Error::Panic(msg)) => assert!(msg.contains("overflow"), "{msg}"),
            other => panic!("expected Error::Panic, got {:?}", other.map_err(|e| e.to_string())),
        }
        assert_eq!(Error::Panic(String::new()).metric_label(), "panic");
        let fine: Result<i32, Error> = contain_panics(async { Ok(7) }).await;
        assert_eq!(fine.ok(), Some(7));
    }

    #[test]
    fn status_is_computed_from_the_outcome_alone() {
        let cluster: AerospikeCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
            "metadata": {"name": "aero", "namespace": "ns", "generation": 4},
            "spec": {"size": 3, "image": "aerospike/aerospike-server-enterprise:7.2.0.1"}
        }))
        .unwrap();
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let blocked = Outcome {
            phase: Phase::InProgress,
            progressing: Verdict::new(true, "RollingRestartBlocked", "no pod was touched"),
            degraded: Some(Verdict::new(true, "RollingRestartBlocked", "no pod was touched")),
            requeue: BLOCKED_POLL,
            operation_restarts: Vec::new(),
            endpoints: BTreeMap::new(),
            volumes: BTreeMap::new(),
            pod_network: BTreeMap::new(),
        };
        let st = compute_status(&cluster, None, &[], &blocked, now.clone());
        let cond = |st: &AerospikeClusterStatus, t: &str| {
            st.conditions.iter().find(|c| c.type_ == t).map(|c| (c.status.clone(), c.reason.clone())).unwrap()
        };
        assert_eq!((st.phase, st.observed_generation), (Some(Phase::InProgress), Some(4)));
        assert_eq!(cond(&st, DEGRADED), ("True".to_string(), "RollingRestartBlocked".to_string()));
        assert_eq!(cond(&st, PROGRESSING), ("True".to_string(), "RollingRestartBlocked".to_string()));
        // Nothing was built (no desired state): not available, whatever the outcome.
        assert_eq!(cond(&st, AVAILABLE).0, "False");
        // The same outcome twice gives the same status: nothing to write.
        let again = AerospikeCluster { status: Some(st.clone()), ..cluster.clone() };
        assert_eq!(compute_status(&again, None, &[], &blocked, now), st);
    }

    /// Issue 11: a pod being recreated (deleted, not back yet) keeps its status entry, so its initializedVolumes and
    /// dirtyVolumes reach its next incarnation (before, the entry went with the pod and the next pod-init would have
    /// initialised volumes holding data); entries beyond the rack's size go.
    #[test]
    fn a_pod_being_recreated_keeps_its_volume_records() {
        let cluster: AerospikeCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
            "metadata": {"name": "aero", "namespace": "ns", "generation": 4, "uid": "c1"},
            "spec": {"size": 2, "image": "aerospike/aerospike-server-enterprise:7.2.0.1",
                     "aerospikeConfig": {
                         "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
                         "namespaces": [{"name": "test", "replication-factor": 2,
                         "storage-engine": {"type": "memory", "data-size": 1073741824}}]}},
            "status": {"pods": {
                "aero-0-1": {"image": "x", "podIP": "", "podPort": 3000, "aerospike": {}, "aerospikeConfigHash": "",
                             "networkPolicyHash": "", "podSpecHash": "",
                             "initializedVolumes": ["data@u1"], "dirtyVolumes": ["ns"]},
                "aero-0-2": {"image": "x", "podIP": "", "podPort": 3000, "aerospike": {}, "aerospikeConfigHash": "",
                             "networkPolicyHash": "", "podSpecHash": ""}}}
        }))
        .unwrap();
        let desired = desired::desired_state(
            &crate::resolve::resolve(&cluster),
            &BuildContext { init_image: "operator:0.1.0".into() },
        )
        .unwrap();
        let outcome = rollout::in_progress("RollingRestart", String::new());
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let st = compute_status(&cluster, Some(&desired), &[], &outcome, now);
        let kept = &st.pods["aero-0-1"];
        assert_eq!(
            (kept.initialized_volumes.clone(), kept.dirty_volumes.clone()),
            (vec!["data@u1".to_string()], vec!["ns".to_string()])
        );
        assert!(!st.pods.contains_key("aero-0-2"), "beyond the rack's size");
        // The records as last written (the reconcile read them fresh) win over the cache's older copy.
        let fresh = Outcome {
            volumes: BTreeMap::from([(
                "aero-0-1".to_string(),
                (vec!["data@u1".to_string()], vec!["ns".into(), "d2".into()]),
            )]),
            ..outcome
        };
        let st = compute_status(&cluster, Some(&desired), &[], &fresh, Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(st.pods["aero-0-1"].dirty_volumes, vec!["ns".to_string(), "d2".to_string()]);
    }

    /// Issue 18, item 11: a pod that only copies the cluster's labels is not the cluster's.
    #[test]
    fn only_pods_controlled_by_the_clusters_stateful_sets_count() {
        let pod = |owner: serde_json::Value| -> CachedPod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "aero-0-0", "namespace": "ns", "ownerReferences": owner,
                             "labels": {desired::LABEL_CR: "aero", desired::LABEL_APP: desired::APP_NAME}}
            }))
            .unwrap()
        };
        let sts = |uid: &str, controller: bool| {
            serde_json::json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "aero-0", "uid": uid,
                                "controller": controller}])
        };
        let ours = vec!["uid-1".to_string()];
        assert!(controlled_by_one_of(&pod(sts("uid-1", true)), &ours));
        // Labels only; another StatefulSet of the same name (other uid); an owner that is not the controller.
        assert!(!controlled_by_one_of(&pod(serde_json::json!([])), &ours));
        assert!(!controlled_by_one_of(&pod(sts("uid-2", true)), &ours));
        assert!(!controlled_by_one_of(&pod(sts("uid-1", false)), &ours));
    }
}
