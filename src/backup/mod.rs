//! Backup and restore: the controllers of AerospikeBackupService, AerospikeBackup and AerospikeRestore
//! (`asdb.aerospike.com/v1beta1`), driving Aerospike Backup Service (ABS) through its REST API.
//!
//! - `service`: a ConfigMap holding `aerospike-backup-service.yml` (the service's own configuration plus the
//!   clusters and routines of every AerospikeBackup naming it), a Deployment and a Service, by server-side apply;
//!   only a change of the `service` section (where ABS listens) rolls the pod, the rest the service takes at run
//!   time through its config-apply call.
//! - `backup`: checks a backup's configuration against its service, asks the service to apply the configuration
//!   and reads it back until the service runs the backup's entries (a requeue, never a wait), starts on-demand
//!   backups once per id, and on deletion waits until the service no longer has the entries (a finalizer).
//! - `restore`: starts the job once, records its id, reads its status every pollingPeriod (a requeue), maps the
//!   service's states to phases, cancels a running job when the restore is deleted.
//!
//! Pure parts live in `config` (merge, checks, phases) and the REST calls in `client`.
mod aerospike_backup;
pub mod client;
pub mod config;
mod restore;
mod service;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, reflector};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use std::collections::HashMap;
use tracing::warn;

use crate::api::v1beta1::{AerospikeBackup, AerospikeBackupService, AerospikeRestore, BackupServiceRef};
use client::{AbsClient, AbsError};

/// Labels of the backup service's objects.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const APP_NAME: &str = "aerospike-backup-service";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Abs(#[from] AbsError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Other(String),
}

/// What the three controllers share.
pub struct Ctx {
    pub client: Client,
    pub recorder: Recorder,
    /// Namespaces watched (None: all): where AerospikeBackups naming a service are looked for.
    pub scope: Vec<Option<String>>,
    /// Deadline of one REST call.
    pub call_timeout: Duration,
    /// Server-side apply field manager (the operator's, as for clusters).
    pub field_manager: String,
}

impl Ctx {
    async fn event<K: Resource<DynamicType = ()>>(&self, obj: &K, type_: EventType, reason: &str, note: &str) {
        let event = KubeEvent {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            warn!(error = %e, reason, "could not publish event");
        }
    }

    /// The backup service the reference names, if it exists.
    async fn service(&self, r: &BackupServiceRef) -> Result<Option<AerospikeBackupService>, Error> {
        Ok(Api::<AerospikeBackupService>::namespaced(self.client.clone(), &r.namespace).get_opt(&r.name).await?)
    }

    /// A REST client for a backup service: its Service's ClusterIP and the port and context path in its status.
    async fn abs(&self, svc: &AerospikeBackupService) -> Result<AbsClient, Error> {
        let ns = svc.namespace().unwrap_or_default();
        let name = svc.name_any();
        let k8s_svc = Api::<Service>::namespaced(self.client.clone(), &ns).get_opt(&name).await?;
        let ip = k8s_svc
            .and_then(|s| s.spec?.cluster_ip)
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .ok_or_else(|| Error::Other(format!("backup service {ns}/{name}: its Service has no ClusterIP yet")))?;
        let st = svc.status.clone().unwrap_or_default();
        let (port, context) = config::listen(&svc.spec.config);
        let port = st.port.unwrap_or(port);
        let mut c = AbsClient::new(SocketAddr::new(ip, port as u16), st.context_path.as_deref().unwrap_or(&context));
        c.timeout = self.call_timeout;
        Ok(c)
    }
}

/// A condition of `type_`, its transition time kept when the status does not change.
pub(crate) fn condition(
    old: &[Condition],
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.chars().take(2000).collect(),
        last_transition_time: since,
        observed_generation: generation,
    }
}

/// Writes `status` (the whole status, by merge patch) unless it is what the object already has.
async fn write_status<K>(
    obj: &K,
    old: serde_json::Value,
    status: serde_json::Value,
    client: &Client,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    if old == status {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(client.clone(), &obj.meta().namespace.clone().unwrap_or_default());
    api.patch_status(
        &obj.meta().name.clone().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await?;
    Ok(())
}

/// Adds or removes a finalizer (a JSON merge of the whole list, guarded by the resourceVersion).
async fn set_finalizer<K>(obj: &K, finalizer: &str, present: bool, client: &Client) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let mut list: Vec<String> = obj.meta().finalizers.clone().unwrap_or_default();
    let has = list.iter().any(|f| f == finalizer);
    if has == present {
        return Ok(());
    }
    if present {
        list.push(finalizer.to_string());
    } else {
        list.retain(|f| f != finalizer);
    }
    let api: Api<K> = Api::namespaced(client.clone(), &obj.meta().namespace.clone().unwrap_or_default());
    let patch = json!({"metadata": {"finalizers": list, "resourceVersion": obj.meta().resource_version}});
    api.patch(&obj.meta().name.clone().unwrap_or_default(), &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(())
}

/// Runs the three controllers over `scope` (one entry per watched namespace, `None` for all) until shutdown; the
/// reporter's controller name is also the field manager of every apply.
pub async fn run(client: Client, scope: Vec<Option<String>>, reporter: Reporter) {
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        field_manager: reporter.controller.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        scope: scope.clone(),
        call_timeout: Duration::from_secs(10),
    });
    // Each kind is watched once per namespace of the scope. A backup may name a service in another watched
    // namespace, so each watch also tells the other kind's controller of the namespace concerned, through a
    // channel. (Watching the other kind in every namespace from every namespace's controller made the watches grow
    // with the square of the namespaces: 300 for 10.)
    let mut service_triggers = HashMap::new();
    let mut backup_triggers = HashMap::new();
    let mut service_rx = HashMap::new();
    let mut backup_rx = HashMap::new();
    let mut backup_stores = Vec::new();
    let mut backup_writers = HashMap::new();
    for ns in &scope {
        let (tx, rx) = mpsc::unbounded::<ObjectRef<AerospikeBackupService>>();
        service_triggers.insert(ns.clone(), tx);
        service_rx.insert(ns.clone(), rx);
        let (tx, rx) = mpsc::unbounded::<ObjectRef<AerospikeBackup>>();
        backup_triggers.insert(ns.clone(), tx);
        backup_rx.insert(ns.clone(), rx);
        let (store, writer) = reflector::store::<AerospikeBackup>();
        backup_stores.push((ns.clone(), store));
        backup_writers.insert(ns.clone(), writer);
    }
    let (service_triggers, backup_triggers) = (Arc::new(service_triggers), Arc::new(backup_triggers));
    let backup_stores = Arc::new(backup_stores);
    let scope = Arc::new(scope);

    let mut runs: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
    for ns in scope.iter() {
        let owned = watcher::Config::default().labels(&format!("{LABEL_NAME}={APP_NAME}"));
        // A service's change (storage, policies, readiness) concerns the backups naming it, wherever they are.
        let to_backups = {
            let (triggers, stores) = (backup_triggers.clone(), backup_stores.clone());
            move |svc: &AerospikeBackupService| {
                let (svc_ns, svc_name) = (svc.namespace().unwrap_or_default(), svc.name_any());
                for (ns, store) in stores.iter() {
                    let naming = store.state().into_iter().filter(|b| {
                        b.spec.backup_service.namespace == svc_ns && b.spec.backup_service.name == svc_name
                    });
                    for b in naming {
                        if let Some(tx) = triggers.get(ns) {
                            let _ = tx.unbounded_send(ObjectRef::from_obj(&*b));
                        }
                    }
                }
            }
        };
        let (service_store, service_writer) = reflector::store();
        let services =
            watcher(scoped::<AerospikeBackupService>(&client, ns), watcher::Config::default().any_semantic())
                .inspect(move |e| touched(e).into_iter().for_each(&to_backups));
        let service_controller =
            Controller::for_stream(reflector(service_writer, services).applied_objects(), service_store)
                .owns(scoped::<Deployment>(&client, ns), owned)
                .reconcile_on(service_rx.remove(ns).expect("one receiver per namespace"));
        // A backup concerns its service.
        let to_service = {
            let (triggers, scope) = (service_triggers.clone(), scope.clone());
            move |b: &AerospikeBackup| {
                let r = &b.spec.backup_service;
                if let Some(tx) = controller_for(&scope, &r.namespace).and_then(|c| triggers.get(&c)) {
                    let _ = tx.unbounded_send(ObjectRef::new(&r.name).within(&r.namespace));
                }
            }
        };
        let backup_store =
            backup_stores.iter().find(|(n, _)| n == ns).map(|(_, s)| s.clone()).expect("a store per namespace");
        let backups = watcher(scoped::<AerospikeBackup>(&client, ns), watcher::Config::default().any_semantic())
            .inspect(move |e| touched(e).into_iter().for_each(&to_service));
        let writer = backup_writers.remove(ns).expect("one writer per namespace");
        let backup_controller = Controller::for_stream(reflector(writer, backups).applied_objects(), backup_store)
            .reconcile_on(backup_rx.remove(ns).expect("one receiver per namespace"));
        let c = ctx.clone();
        runs.push(Box::pin(
            service_controller.shutdown_on_signal().run(service::reconcile, service::error_policy, c).for_each(log),
        ));
        let c = ctx.clone();
        runs.push(Box::pin(
            backup_controller
                .shutdown_on_signal()
                .run(aerospike_backup::reconcile, aerospike_backup::error_policy, c)
                .for_each(log),
        ));
        let c = ctx.clone();
        runs.push(Box::pin(
            Controller::new(scoped::<AerospikeRestore>(&client, ns), watcher::Config::default().any_semantic())
                .shutdown_on_signal()
                .run(restore::reconcile, restore::error_policy, c)
                .for_each(log),
        ));
    }
    futures::future::join_all(runs).await;
}

/// The object a watch event is about, if it is about one (added, changed, deleted, or listed).
fn touched<K>(e: &Result<watcher::Event<K>, watcher::Error>) -> Option<&K> {
    match e {
        Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o)) => Some(o),
        _ => None,
    }
}

/// The scope entry whose controllers handle objects of namespace `ns`: all namespaces, or that one if listed.
fn controller_for(scope: &[Option<String>], ns: &str) -> Option<Option<String>> {
    if scope.iter().any(Option::is_none) {
        return Some(None);
    }
    scope.iter().find(|s| s.as_deref() == Some(ns)).cloned()
}

/// The objects of one watched namespace (`None`: all).
fn scoped<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match ns {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    }
}

async fn log<T: std::fmt::Debug, E: std::fmt::Display>(res: Result<T, E>) {
    if let Err(e) = res {
        warn!(error = %e, "backup reconcile failed");
    }
}

/// Server-side apply of a whole object by `field_manager`.
async fn apply<K>(api: &Api<K>, obj: &K, field_manager: &str) -> Result<(), Error>
where
    K: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::apply(field_manager).force(), &Patch::Apply(obj)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_go_to_the_controller_of_their_namespace() {
        let listed = vec![Some("a".to_string()), Some("b".to_string())];
        assert_eq!(controller_for(&listed, "b"), Some(Some("b".to_string())));
        assert_eq!(controller_for(&listed, "c"), None, "a namespace not watched has no controller");
        assert_eq!(controller_for(&[None], "c"), Some(None), "all namespaces: the one controller");
    }

    #[test]
    fn every_event_about_an_object_is_passed_on() {
        let svc = AerospikeBackupService::new("s", Default::default());
        for e in [
            watcher::Event::Apply(svc.clone()),
            watcher::Event::Delete(svc.clone()),
            watcher::Event::InitApply(svc.clone()),
        ] {
            assert_eq!(touched(&Ok(e)).map(|s| s.name_any()), Some("s".to_string()));
        }
        assert!(touched::<AerospikeBackupService>(&Ok(watcher::Event::Init)).is_none());
        assert!(touched::<AerospikeBackupService>(&Ok(watcher::Event::InitDone)).is_none());
    }
}
