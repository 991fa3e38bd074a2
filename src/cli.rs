//! The contract between the operator binary and the manifests that start it: the image, the ports and HTTP
//! paths it serves, and the flags and environment variables of `run`. `main.rs` parses with [`RunArgs`], and the
//! manifest generator (xtask) writes the Deployment, Services and probes from the same names, so the two cannot
//! drift apart (xtask's tests parse the generated Deployment's arguments with [`RunArgs`]).
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::telemetry::LogFormat;

/// The operator image repository; a release is tagged with its version.
pub const IMAGE_REPOSITORY: &str = "ghcr.io/aerospike-rs/aerospike-kubernetes-operator";
/// The image of this build (also the Aerospike pods' init image unless `--init-image` says otherwise).
pub const DEFAULT_IMAGE: &str =
    concat!("ghcr.io/aerospike-rs/aerospike-kubernetes-operator", ":", env!("CARGO_PKG_VERSION"));

/// Port of `/metrics` (`--metrics-addr`).
pub const METRICS_PORT: u16 = 8080;
/// Port of `/healthz` and `/readyz` (`--health-addr`).
pub const HEALTH_PORT: u16 = 8081;
/// Port of the admission webhooks (`--webhook-addr`); also the port of the Services in front of them.
pub const WEBHOOK_PORT: u16 = 9443;

/// HTTP paths of the health and metrics endpoints.
pub const HEALTHZ_PATH: &str = "/healthz";
pub const READYZ_PATH: &str = "/readyz";
pub const METRICS_PATH: &str = "/metrics";

/// Flags of `run` the manifests set (without the leading `--`).
pub mod flags {
    pub const LEADER_ELECT: &str = "leader-elect";
    pub const METRICS_ADDR: &str = "metrics-addr";
    pub const HEALTH_ADDR: &str = "health-addr";
    pub const LOG_FORMAT: &str = "log-format";
    pub const WEBHOOK_ADDR: &str = "webhook-addr";
    pub const WEBHOOK_SELF_SIGNED: &str = "webhook-self-signed";
    pub const WEBHOOK_REGISTER: &str = "webhook-register";
    pub const WEBHOOK_SERVICE: &str = "webhook-service";
}

/// Environment variables of `run` the manifests set.
pub mod env {
    /// Namespaces to watch (OLM fills it from the OperatorGroup's target namespaces).
    pub const WATCH_NAMESPACE: &str = "WATCH_NAMESPACE";
    /// The pod's namespace (Downward API): the Lease and the webhook Secret live there.
    pub const POD_NAMESPACE: &str = "POD_NAMESPACE";
}

fn any_addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
}

/// The flags of `aerospike-kubernetes-operator run`.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Namespaces to watch: empty for all, one name, or a comma-separated list (OLM sets it from the
    /// OperatorGroup's target namespaces).
    #[arg(long, env = env::WATCH_NAMESPACE, default_value = "")]
    pub watch_namespaces: String,
    /// Address of the Prometheus /metrics endpoint.
    #[arg(long = flags::METRICS_ADDR, env = "METRICS_ADDR", default_value_t = any_addr(METRICS_PORT))]
    pub metrics_addr: SocketAddr,
    /// Address of /healthz and /readyz.
    #[arg(long = flags::HEALTH_ADDR, env = "HEALTH_ADDR", default_value_t = any_addr(HEALTH_PORT))]
    pub health_addr: SocketAddr,
    /// Take a Lease before reconciling, so only one replica acts.
    #[arg(long = flags::LEADER_ELECT, env = "LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease (defaults to the pod's namespace).
    #[arg(long, env = env::POD_NAMESPACE, default_value = "default")]
    pub lease_namespace: String,
    /// Image used for the Aerospike pods' init step (the operator's own image).
    #[arg(long, env = "OPERATOR_IMAGE", default_value = DEFAULT_IMAGE)]
    pub init_image: String,
    /// Log format.
    #[arg(long = flags::LOG_FORMAT, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Timeout of one Aerospike info request, in milliseconds.
    #[arg(long, env = "INFO_TIMEOUT_MS", default_value_t = 2000)]
    pub info_timeout_ms: u64,
    /// Reconciles in flight at once, over all watched namespaces; 0 for no bound. More memory for more clusters
    /// worked on at once (README: Measurements).
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = crate::controller::MAX_CONCURRENT_RECONCILES)]
    pub max_concurrent_reconciles: u16,
    /// Admission webhooks (the Secret of --webhook-self-signed lives in the POD_NAMESPACE namespace).
    #[command(flatten)]
    pub webhook: Box<WebhookArgs>,
}

/// Where OLM mounts the serving certificate it generates for `webhookdefinitions`.
pub const DEFAULT_CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs";

/// The webhook flags of `aerospike-kubernetes-operator run`.
#[derive(clap::Args, Clone, Debug)]
pub struct WebhookArgs {
    /// Do not serve the admission webhooks.
    #[arg(long = "no-webhook", env = "WEBHOOK_DISABLED", default_value_t = false)]
    pub webhook_disabled: bool,
    /// Address of the admission webhook server (HTTPS).
    #[arg(long = flags::WEBHOOK_ADDR, env = "WEBHOOK_ADDR",
          default_value_t = std::net::SocketAddr::from(([0, 0, 0, 0], WEBHOOK_PORT)))]
    pub webhook_addr: SocketAddr,
    /// Directory with the serving certificate (tls.crt, tls.key), reloaded when it changes. OLM mounts its
    /// certificate here.
    #[arg(long, env = "WEBHOOK_CERT_DIR", default_value = DEFAULT_CERT_DIR)]
    pub webhook_cert_dir: PathBuf,
    /// Create and rotate a CA and serving certificate (kept in the Secret aerospike-operator-webhook-cert of the
    /// operator's namespace) and keep the webhook configurations' caBundle current: no cert-manager needed.
    #[arg(long = flags::WEBHOOK_SELF_SIGNED, env = "WEBHOOK_SELF_SIGNED", default_value_t = false)]
    pub webhook_self_signed: bool,
    /// Create or update the MutatingWebhookConfiguration and ValidatingWebhookConfiguration at start.
    #[arg(long = flags::WEBHOOK_REGISTER, env = "WEBHOOK_REGISTER", default_value_t = false)]
    pub webhook_register: bool,
    /// The webhook Service as name.namespace[:port] (port 443 by default).
    #[arg(long = flags::WEBHOOK_SERVICE, env = "WEBHOOK_SERVICE", conflicts_with = "webhook_url")]
    pub webhook_service: Option<String>,
    /// The webhook base URL for an operator outside the cluster, e.g. https://127.0.0.1:9443.
    #[arg(long, env = "WEBHOOK_URL")]
    pub webhook_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_image_is_of_the_repository() {
        assert!(DEFAULT_IMAGE.starts_with(&format!("{IMAGE_REPOSITORY}:")));
    }
}
