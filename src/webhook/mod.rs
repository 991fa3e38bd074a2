//! Admission webhooks for AerospikeCluster, served by the operator process over TLS:
//! `POST /mutate-asdb-aerospike-com-v1-aerospikecluster` (defaulting, [`crate::validate::default_cluster`]) and
//! `POST /validate-asdb-aerospike-com-v1-aerospikecluster` ([`crate::validate::validate`]), the reference's paths.
//!
//! Certificates come from one of two places:
//! - a directory with `tls.crt` and `tls.key` (default: OLM's mount path), reloaded when the files change;
//! - `--webhook-self-signed`: a CA and serving certificate the operator creates and keeps in the Secret
//!   `aerospike-operator-webhook-cert` of its namespace ([`certs`]), and whose CA it keeps in the webhook
//!   configurations' caBundle.
//!
//! With `--webhook-register` the operator creates (server-side apply) its own MutatingWebhookConfiguration and
//! ValidatingWebhookConfiguration ([`register`]) pointing at `--webhook-service name.namespace[:port]` or at
//! `--webhook-url https://HOST:PORT` (an operator running as a process next to a local control plane).
pub mod certs;
pub mod conn;
pub mod eviction;
pub mod register;
pub mod tls;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::routing::{get, post};
use kube::Client;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::Value;
use tracing::{error, info, warn};

use crate::api::AerospikeCluster;
use crate::api::v1beta1::AerospikeBackup;
pub use crate::cli::{DEFAULT_CERT_DIR, WebhookArgs};
use crate::validate;

/// Path of the mutating (defaulting) webhook.
pub const MUTATE_PATH: &str = "/mutate-asdb-aerospike-com-v1-aerospikecluster";
/// Path of the validating webhook.
pub const VALIDATE_PATH: &str = "/validate-asdb-aerospike-com-v1-aerospikecluster";
/// Path of the AerospikeBackup validating webhook (the reference's path).
pub const VALIDATE_BACKUP_PATH: &str = "/validate-asdb-aerospike-com-v1beta1-aerospikebackup";

/// How long a client may take to send a request's headers (also how long a keep-alive connection may idle).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection on which no byte moves for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request's body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest AdmissionReview body read (axum's default body limit, as before).
const MAX_BODY: usize = 2 * 1024 * 1024;
/// Restarts of a failed webhook server wait this long at first, doubling up to [`MAX_RESTART_DELAY`].
const FIRST_RESTART_DELAY: Duration = Duration::from_secs(1);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);
/// How often the certificate directory is checked for a rotated certificate.
const DIR_POLL: Duration = Duration::from_secs(5);
/// How often the self-signed certificate and the caBundle are checked (renewal, other replicas, drift).
const SELF_SIGNED_POLL: Duration = Duration::from_secs(60);

/// Where the serving certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    Dir(PathBuf),
    SelfSigned,
}

/// A checked webhook setup.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub addr: SocketAddr,
    pub certs: CertSource,
    pub register: bool,
    pub target: Option<register::Target>,
    /// The operator's namespace (the self-signed certificate's Secret lives there).
    pub namespace: String,
    /// Poll period of the certificate directory.
    pub dir_poll: Duration,
}

impl WebhookArgs {
    /// The setup these flags describe (`None` with `--no-webhook`); `namespace` is the operator's namespace.
    pub fn config(&self, namespace: &str) -> anyhow::Result<Option<WebhookConfig>> {
        if self.webhook_disabled {
            return Ok(None);
        }
        let target = match (&self.webhook_service, &self.webhook_url) {
            (Some(s), None) => Some(register::Target::parse_service(s)?),
            (None, Some(u)) => Some(register::Target::parse_url(u)?),
            (None, None) => None,
            (Some(_), Some(_)) => anyhow::bail!("--webhook-service and --webhook-url exclude each other"),
        };
        if self.webhook_register && target.is_none() {
            anyhow::bail!(
                "--webhook-register needs --webhook-service name.namespace or --webhook-url https://HOST:PORT"
            );
        }
        Ok(Some(WebhookConfig {
            addr: self.webhook_addr,
            certs: if self.webhook_self_signed {
                CertSource::SelfSigned
            } else {
                CertSource::Dir(self.webhook_cert_dir.clone())
            },
            register: self.webhook_register,
            target,
            namespace: namespace.to_string(),
            dir_poll: DIR_POLL,
        }))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Admission.

fn parse_review(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, String> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| format!("not an AdmissionReview: {e}"))?;
    review.try_into().map_err(|_| "AdmissionReview without a request".to_string())
}

fn cluster_of(obj: &DynamicObject, namespace: Option<&String>) -> Result<(Value, AerospikeCluster), String> {
    let raw = serde_json::to_value(obj).map_err(|e| e.to_string())?;
    let mut cluster: AerospikeCluster = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
    if cluster.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        cluster.metadata.namespace = namespace.cloned();
    }
    Ok((raw, cluster))
}

fn deny(req: &AdmissionRequest<DynamicObject>, message: String) -> AdmissionResponse {
    let mut resp = AdmissionResponse::from(req).deny(message);
    resp.result.code = 403;
    resp.result.reason = "Forbidden".into();
    resp
}

/// The defaulting webhook's answer: a JSON patch with the defaults, or no patch.
pub fn mutate(req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let allow = AdmissionResponse::from(req);
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return allow;
    }
    let Some(obj) = &req.object else { return allow };
    if obj.metadata.deletion_timestamp.is_some() {
        return allow;
    }
    // An object that does not even parse is left to the API server's schema validation, which names the field.
    let Ok((raw, mut cluster)) = cluster_of(obj, req.namespace.as_ref()) else { return allow };
    let before = match serde_json::to_value(&cluster) {
        Ok(v) => v,
        Err(_) => return allow,
    };
    validate::default_cluster(&mut cluster);
    let Ok(after) = serde_json::to_value(&cluster) else { return allow };
    let mut patch = json_patch::diff(&before, &after);
    if patch.0.is_empty() {
        return allow;
    }
    // The diff is computed on the typed form; if it does not apply to the object as sent (a field spelled
    // differently), replace the whole spec instead, as the reference does.
    let mut probe = raw.clone();
    if json_patch::patch(&mut probe, &patch.0).is_err() {
        let path = json_patch::jsonptr::PointerBuf::parse("/spec").expect("a valid pointer");
        patch = json_patch::Patch(vec![json_patch::PatchOperation::Replace(json_patch::ReplaceOperation {
            path,
            value: after["spec"].clone(),
        })]);
    }
    match allow.clone().with_patch(patch) {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "could not serialise the defaulting patch");
            allow
        }
    }
}

/// The validating webhook's answer: allowed, or denied with every refusal as `path: rule`.
pub fn validate_review(req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let allow = AdmissionResponse::from(req);
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return allow;
    }
    let Some(obj) = &req.object else { return allow };
    let (raw, new) = match cluster_of(obj, req.namespace.as_ref()) {
        Ok(x) => x,
        Err(e) => return deny(req, format!("spec: cannot read the AerospikeCluster: {e}")),
    };
    let old = match (&req.operation, &req.old_object) {
        (Operation::Update, Some(o)) => cluster_of(o, req.namespace.as_ref()).ok(),
        _ => None,
    };
    if let Some((old_raw, _)) = &old {
        // Finalizer, label and deletion updates must go through even for an object that predates a rule:
        // only spec changes are judged.
        if new.metadata.deletion_timestamp.is_some() || old_raw.get("spec") == raw.get("spec") {
            return allow;
        }
    }
    let (errors, warnings) = validate::review(&new, old.as_ref().map(|(_, c)| c));
    if errors.is_empty() {
        // Accepted, but say which fields the operator does not act on yet (kubectl prints these).
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        let mut allow = allow;
        allow.warnings = (!warnings.is_empty()).then_some(warnings);
        return allow;
    }
    info!(
        name = new.metadata.name.as_deref().unwrap_or_default(),
        namespace = new.metadata.namespace.as_deref().unwrap_or_default(),
        refusals = errors.len(),
        "AerospikeCluster refused"
    );
    deny(req, validate::summary(&errors))
}

/// The AerospikeBackup validating webhook: its configuration on its own (one cluster, routines of it, names with
/// the `<namespace>-<name>` prefix, nothing of the service's, on-demand backups of known routines). What needs the
/// backup service (does it exist, has it the storage) the reconciler reports in the `Degraded` condition.
pub fn validate_backup_review(req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let allow = AdmissionResponse::from(req);
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return allow;
    }
    let Some(obj) = &req.object else { return allow };
    let parse = |o: &DynamicObject| -> Result<(Value, AerospikeBackup), String> {
        let raw = serde_json::to_value(o).map_err(|e| e.to_string())?;
        let mut b: AerospikeBackup = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
        if b.metadata.namespace.as_deref().is_none_or(str::is_empty) {
            b.metadata.namespace = req.namespace.clone();
        }
        Ok((raw, b))
    };
    let (raw, backup) = match parse(obj) {
        Ok(x) => x,
        Err(e) => return deny(req, format!("spec: cannot read the AerospikeBackup: {e}")),
    };
    if backup.metadata.deletion_timestamp.is_some() {
        return allow;
    }
    // Finalizer and status updates of an object stored before a rule go through: only spec changes are judged.
    if let (Operation::Update, Some(old)) = (&req.operation, &req.old_object)
        && parse(old).is_ok_and(|(old_raw, _)| old_raw.get("spec") == raw.get("spec"))
    {
        return allow;
    }
    match crate::backup::config::entries(&backup) {
        Ok(_) => allow,
        Err(errors) => deny(req, errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")),
    }
}

/// Handles one AdmissionReview body for `path`; the response body is an AdmissionReview.
pub fn review(path: &str, body: &[u8]) -> Vec<u8> {
    let webhook = if path == MUTATE_PATH { "mutating" } else { "validating" };
    let response = match parse_review(body) {
        Ok(req) if path == MUTATE_PATH => mutate(&req),
        Ok(req) if path == VALIDATE_BACKUP_PATH => validate_backup_review(&req),
        Ok(req) => validate_review(&req),
        Err(reason) => {
            crate::metrics::webhook_admission(webhook, "invalid");
            return serde_json::to_vec(&AdmissionResponse::invalid(reason).into_review()).unwrap_or_default();
        }
    };
    crate::metrics::webhook_admission(webhook, if response.allowed { "allowed" } else { "denied" });
    serde_json::to_vec(&response.into_review()).unwrap_or_default()
}

/// The webhook routes (plus `/healthz` for probes on the webhook port).
pub fn router() -> Router {
    Router::new()
        .route(MUTATE_PATH, post(|body: Body| answer(MUTATE_PATH, body)))
        .route(VALIDATE_PATH, post(|body: Body| answer(VALIDATE_PATH, body)))
        .route(VALIDATE_BACKUP_PATH, post(|body: Body| answer(VALIDATE_BACKUP_PATH, body)))
        .route("/healthz", get(|| async { "ok" }))
}

/// [`router`] plus the eviction webhook ([`eviction::VALIDATE_EVICTION_PATH`]), which reads pods, their StatefulSets
/// and nodes and records refused evictions through `client`.
pub fn router_with(client: Client) -> Router {
    router().route(
        eviction::VALIDATE_EVICTION_PATH,
        post(move |body: Body| {
            let client = client.clone();
            async move { answer_eviction(client, body).await }
        }),
    )
}

async fn answer_eviction(client: Client, body: Body) -> axum::response::Response {
    use axum::response::IntoResponse;
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, format!("cannot read the request body: {e}")).into_response();
        }
        Err(_) => return (StatusCode::REQUEST_TIMEOUT, "request body not received in time").into_response(),
    };
    let response = match parse_review(&bytes) {
        Ok(req) => eviction::review(&client, &req).await,
        Err(reason) => {
            crate::metrics::webhook_admission("eviction", "invalid");
            let body = serde_json::to_vec(&AdmissionResponse::invalid(reason).into_review()).unwrap_or_default();
            return ([(CONTENT_TYPE, "application/json")], body).into_response();
        }
    };
    crate::metrics::webhook_admission("eviction", if response.allowed { "allowed" } else { "denied" });
    ([(CONTENT_TYPE, "application/json")], serde_json::to_vec(&response.into_review()).unwrap_or_default())
        .into_response()
}

/// Reads the body (at most [`MAX_BODY`], within [`BODY_READ_TIMEOUT`]) and answers the review.
async fn answer(path: &'static str, body: Body) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => ([(CONTENT_TYPE, "application/json")], review(path, &bytes)).into_response(),
        Ok(Err(e)) => (StatusCode::PAYLOAD_TOO_LARGE, format!("cannot read the request body: {e}")).into_response(),
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request body not received in time").into_response(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The server.

/// Serves the webhooks on `listener` until `shutdown`, with the default [`conn::ServeLimits`]; an error when the
/// listener dies.
pub async fn serve(
    listener: tls::TlsListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    conn::serve(listener, router(), conn::ServeLimits::default(), shutdown).await
}

/// Where the webhook server is, for readiness: the process is ready only while its webhooks are served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Not serving yet (waiting for a certificate, registering); the reason.
    Starting(String),
    /// Listening with a certificate (and registered, when asked to register).
    Serving,
    /// Stopped by an error (it is retried); the error.
    Failed(String),
    /// Stopped on shutdown.
    Stopped,
}

/// The shared [`State`] of the webhook server.
#[derive(Clone, Debug)]
pub struct Status(Arc<Mutex<State>>);

impl Default for Status {
    fn default() -> Self {
        Status(Arc::new(Mutex::new(State::Starting("starting".into()))))
    }
}

impl Status {
    pub fn get(&self) -> State {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn set(&self, state: State) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
    pub fn is_serving(&self) -> bool {
        self.get() == State::Serving
    }
}

/// Aborts the tasks it holds when dropped: a webhook server that stops (or is restarted) leaves nothing running.
#[derive(Default)]
struct Tasks(Vec<tokio::task::AbortHandle>);

impl Tasks {
    fn spawn<F: Future<Output = T> + Send + 'static, T: Send + 'static>(&mut self, f: F) -> tokio::task::JoinHandle<T> {
        let handle = tokio::spawn(f);
        self.0.push(handle.abort_handle());
        handle
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Runs the webhook server ([`run_with_status`]) until `stop` turns true, restarting it after a failure (with a
/// delay doubling from 1 s to 60 s). `status` says whether it serves: a failure is logged as an error and
/// leaves it `Failed` (the process is not ready) until a restart serves again.
pub async fn supervise(client: Client, cfg: WebhookConfig, status: Status, stop: tokio::sync::watch::Receiver<bool>) {
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut delay = FIRST_RESTART_DELAY;
    loop {
        if *stop.borrow() {
            return;
        }
        let started = tokio::time::Instant::now();
        match run_with_status(client.clone(), cfg.clone(), &status, stopped(stop.clone())).await {
            Ok(()) => return,
            Err(e) => {
                if started.elapsed() > MAX_RESTART_DELAY {
                    delay = FIRST_RESTART_DELAY; // it served for a while: a new failure starts over
                }
                error!(
                    error = format!("{e:#}"),
                    retry_in = ?delay,
                    "admission webhook server failed: this replica is NOT READY (writes to AerospikeClusters are \
                     refused while no replica serves the webhooks); restarting it"
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stopped(stop.clone()) => return,
                }
                delay = (delay * 2).min(MAX_RESTART_DELAY);
            }
        }
    }
}

/// [`run_with_status`] without anyone watching the status.
pub async fn run(
    client: Client,
    cfg: WebhookConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_status(client, cfg, &Status::default(), shutdown).await
}

/// Runs the webhook server until `shutdown` (Ok) or a failure (Err), keeping `status` current: `Serving` once it
/// listens with a certificate (and, with `register`, once registered), `Failed` with the error, `Stopped`.
pub async fn run_with_status(
    client: Client,
    cfg: WebhookConfig,
    status: &Status,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let result = run_inner(client, cfg, status, shutdown).await;
    match &result {
        Ok(()) => status.set(State::Stopped),
        Err(e) => status.set(State::Failed(format!("{e:#}"))),
    }
    result
}

/// Runs the webhook server with its certificate management and (optionally) its registration, until
/// `shutdown`. With a certificate directory that is still empty, it waits for the files before listening.
async fn run_inner(
    client: Client,
    cfg: WebhookConfig,
    status: &Status,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut tasks = Tasks::default();
    let store = tls::CertStore::new();
    let names = cfg
        .target
        .as_ref()
        .map(register::Target::certificate_names)
        .unwrap_or_else(|| vec!["localhost".to_string(), "127.0.0.1".to_string()]);
    let ca_bundle: Option<Vec<u8>> = match &cfg.certs {
        CertSource::Dir(dir) => {
            status.set(State::Starting(format!(
                "waiting for a usable serving certificate (tls.crt, tls.key) in {}",
                dir.display()
            )));
            let mut last = None;
            let mut warned = false;
            while tls::reload_from_dir(&store, dir, &mut last) != tls::Reload::Loaded {
                if !warned {
                    warn!(dir = %dir.display(), "waiting for the webhook serving certificate (tls.crt, tls.key)");
                    warned = true;
                }
                tokio::time::sleep(cfg.dir_poll).await;
            }
            tasks.spawn(tls::watch_dir(store.clone(), dir.clone(), cfg.dir_poll, last));
            // A CA next to the certificate (cert-manager style) or the certificate itself for the caBundle.
            std::fs::read(dir.join("ca.crt")).or_else(|_| std::fs::read(dir.join("tls.crt"))).ok()
        }
        CertSource::SelfSigned => {
            status.set(State::Starting(format!("setting up the self-signed certificate in {}", cfg.namespace)));
            let m = certs::ensure(&client, &cfg.namespace, &names).await.context("webhook certificate setup")?;
            store.set(tls::certified_key(m.cert_pem.as_bytes(), m.key_pem.as_bytes())?);
            Some(m.ca_bundle_pem.clone().into_bytes())
        }
    };

    let listener = tls::TlsListener::bind(cfg.addr, tls::server_config(store.clone())?)
        .await
        .with_context(|| format!("cannot listen on {} for the webhooks", cfg.addr))?;
    info!(addr = %cfg.addr, certs = ?cfg.certs, "admission webhooks listening");
    let server =
        tasks.spawn(conn::serve(listener, router_with(client.clone()), conn::ServeLimits::default(), shutdown));

    // Register (or fix the caBundle of) the configurations only once the server answers.
    if cfg.register
        && let Some(target) = &cfg.target
    {
        status.set(State::Starting("registering the webhook configurations".into()));
        register::apply(&client, target, ca_bundle.as_deref())
            .await
            .context("registering the webhook configurations")?;
        info!(?target, "webhook configurations registered");
    } else if cfg.certs == CertSource::SelfSigned
        && let Some(ca) = &ca_bundle
        && let Err(e) = register::sync_ca_bundle(&client, ca).await
    {
        warn!(error = %e, "could not update the webhook configurations' caBundle");
    }
    status.set(State::Serving);
    info!(addr = %cfg.addr, "admission webhooks serving");

    if cfg.certs == CertSource::SelfSigned {
        let (client, store, names, ns, target, register) =
            (client.clone(), store.clone(), names.clone(), cfg.namespace.clone(), cfg.target.clone(), cfg.register);
        tasks.spawn(async move {
            let mut current = ca_bundle;
            loop {
                tokio::time::sleep(SELF_SIGNED_POLL).await;
                match certs::ensure(&client, &ns, &names).await {
                    Ok(m) => {
                        let bundle = m.ca_bundle_pem.clone().into_bytes();
                        // The bundle first, then the certificate it must verify.
                        let synced = match (&target, register) {
                            (Some(t), true) => register::apply(&client, t, Some(&bundle)).await,
                            _ => register::sync_ca_bundle(&client, &bundle).await,
                        };
                        if let Err(e) = synced {
                            warn!(error = %e, "could not update the webhook configurations' caBundle");
                            continue;
                        }
                        current = Some(bundle);
                        let chain = store.current_chain();
                        match tls::certified_key(m.cert_pem.as_bytes(), m.key_pem.as_bytes()) {
                            Ok(ck) if chain != ck.cert => {
                                store.set(ck);
                                info!("webhook serving certificate rotated");
                            }
                            Ok(_) => {}
                            Err(e) => warn!(error = %e, "stored webhook certificate unusable"),
                        }
                    }
                    Err(e) => warn!(error = %e, has_bundle = current.is_some(), "webhook certificate check failed"),
                }
            }
        });
    }

    server.await.context("webhook server task")?.context("webhook server")?;
    Ok(())
}
