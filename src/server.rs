//! The operator's HTTP endpoints: /healthz (the process is alive), /readyz (caches synced and, with leader
//! election, either leading or standing by; and the admission webhooks served, when they are on: the webhook
//! configurations refuse every write to an AerospikeCluster while they cannot be called), /metrics (Prometheus
//! text format).
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::metrics::Metrics;
use crate::webhook;

#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
    webhook: Arc<OnceLock<webhook::Status>>,
}

impl Health {
    /// The controller's part: caches synced (or standing by for the Lease).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
    /// Makes readiness also require the admission webhooks to be served.
    pub fn include_webhook(&self, status: webhook::Status) {
        let _ = self.webhook.set(status);
    }
    /// Ready, or why not.
    pub fn readiness(&self) -> Result<(), String> {
        let mut not = Vec::new();
        if !self.ready.load(Ordering::SeqCst) {
            not.push("controller: caches not synced yet".to_string());
        }
        match self.webhook.get().map(webhook::Status::get) {
            None | Some(webhook::State::Serving) => {}
            Some(webhook::State::Starting(why)) => not.push(format!("admission webhook: not serving yet: {why}")),
            Some(webhook::State::Failed(e)) => not.push(format!("admission webhook: failed: {e}")),
            Some(webhook::State::Stopped) => not.push("admission webhook: stopped".to_string()),
        }
        if not.is_empty() { Ok(()) } else { Err(not.join("; ")) }
    }
    pub fn is_ready(&self) -> bool {
        self.readiness().is_ok()
    }
}

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: Metrics,
}

pub fn router(health: Health, metrics: Metrics) -> Router {
    Router::new()
        .route(crate::cli::HEALTHZ_PATH, get(|| async { "ok" }))
        .route(
            crate::cli::READYZ_PATH,
            get(|State(s): State<AppState>| async move {
                match s.health.readiness() {
                    Ok(()) => (StatusCode::OK, "ok".to_string()),
                    Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
                }
            }),
        )
        .route(
            crate::cli::METRICS_PATH,
            get(|State(s): State<AppState>| async move {
                ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.encode())
            }),
        )
        .with_state(AppState { health, metrics })
}

/// Serve `router` on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
