//! OLM for this repository's package, over the OLM-on-the-plane of [`ako_testbed::olm`] (re-exported here, so
//! `olm::X` names either): the manifests-only catalog of this repository ([`prepare_catalog`]), `cargo xtask
//! cluster up --olm` ([`up_detached`]), the Subscription to our package and its install ([`subscription`],
//! [`wait_installed`]), and the operator under test running in-process with OLM's webhook certificate
//! ([`InProcessOperator`]).
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ako_testbed::olm::*;
use anyhow::{Context, Result, anyhow, bail};
use kube::Client;
use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};

use crate::packaging::catalog;
use crate::project::{DEFAULT_CHANNEL, PACKAGE};

/// The channel our catalog serves.
pub const CHANNEL: &str = DEFAULT_CHANNEL;

// -----------------------------------------------------------------------------------------------------------------
// Catalog preparation.

/// Writes the manifests-only catalog (every bundle with `image: ""`) of the repository at `root` into `out`: what
/// `cargo xtask catalog --manifests-only --out OUT` writes, for `opm serve`.
pub fn prepare_catalog(root: &Path, out: &Path) -> Result<()> {
    let args = catalog::CatalogArgs { manifests_only: true, out: out.to_path_buf() };
    catalog::write(root, &args, None)
        .with_context(|| format!("writing the manifests-only catalog of {}", root.display()))
}

/// installPlanApproval of a Subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    Automatic,
    Manual,
}

/// A Subscription to our package, channel `stable`, from the CatalogSource `source` in `source_namespace`.
pub fn subscription(
    namespace: &str,
    source: &str,
    source_namespace: &str,
    approval: Approval,
    starting_csv: Option<&str>,
) -> Value {
    let mut spec = json!({
        "channel": CHANNEL,
        "name": PACKAGE,
        "source": source,
        "sourceNamespace": source_namespace,
        "installPlanApproval": format!("{approval:?}"),
    });
    if let Some(csv) = starting_csv {
        spec["startingCSV"] = csv.into();
    }
    json!({
        "apiVersion": "operators.coreos.com/v1alpha1",
        "kind": "Subscription",
        "metadata": {"name": PACKAGE, "namespace": namespace},
        "spec": spec,
    })
}

/// Waits until the Subscription (our package's, in `namespace`) has installed `csv_name` (any CSV if `None`), that
/// CSV is Succeeded and the InstallPlan the Subscription names is Complete (OLM may report the CSV Succeeded a moment
/// before it marks the plan Complete). Returns the CSV.
pub async fn wait_installed(
    client: &Client,
    namespace: &str,
    csv_name: Option<&str>,
    timeout: Duration,
) -> Result<DynamicObject> {
    let subs = olm_api(client, OlmKind::Subscription, Some(namespace));
    let csvs = olm_api(client, OlmKind::ClusterServiceVersion, Some(namespace));
    let plans = olm_api(client, OlmKind::InstallPlan, Some(namespace));
    let what = match csv_name {
        Some(n) => format!("{n} installed and Succeeded in {namespace}"),
        None => format!("the Subscription in {namespace} to install a CSV that reaches Succeeded"),
    };
    let result = wait_for(&what, timeout, || {
        let (subs, csvs, plans) = (subs.clone(), csvs.clone(), plans.clone());
        async move {
            let Some(sub) = subs.get_opt(PACKAGE).await? else { return Ok(None) };
            let Some(installed) = sub.data["status"]["installedCSV"].as_str() else { return Ok(None) };
            if csv_name.is_some_and(|n| n != installed) {
                return Ok(None);
            }
            let Some(plan) = sub.data["status"]["installPlanRef"]["name"].as_str() else { return Ok(None) };
            if !plans.get_opt(plan).await?.is_some_and(|p| p.data["status"]["phase"] == "Complete") {
                return Ok(None);
            }
            let csv = csvs.get_opt(installed).await?;
            Ok(csv.filter(|c| csv_phase(c) == "Succeeded"))
        }
    })
    .await;
    match result {
        Ok(csv) => Ok(csv),
        Err(e) => Err(anyhow!("{e:#}\n{}", describe(client, namespace).await)),
    }
}

// -----------------------------------------------------------------------------------------------------------------
// The operator under test, in-process.

/// The operator's controllers running in this process (as `aerospike-kubernetes-operator run` would), with the
/// given client (e.g. the ServiceAccount OLM created, see [`service_account_kubeconfig`]) and WATCH_NAMESPACE.
/// Stopped on drop.
pub struct InProcessOperator {
    task: tokio::task::JoinHandle<Result<()>>,
    webhook: Option<WebhookTasks>,
}

struct WebhookTasks {
    server: tokio::task::JoinHandle<Result<()>>,
    mirror: tokio::task::JoinHandle<()>,
    cert_dir: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// The Service OLM creates in front of the operator's webhook port for the CSV's webhookdefinitions.
pub fn webhook_service_name() -> String {
    format!("{PACKAGE}-service")
}

/// The Secret with the serving certificate OLM mints for that Service (tls.crt, tls.key, olmCAKey), mounted
/// into the operator's pods at the default --webhook-cert-dir.
pub fn webhook_secret_name() -> String {
    format!("{}-cert", webhook_service_name())
}

/// Where OLM's webhook Service sends the API server: its ClusterIP and port. With the local control plane's
/// loopback Service CIDR, a process on this machine can listen there in place of the operator's pod.
pub async fn webhook_service_address(admin: &Client, install_ns: &str) -> Result<std::net::SocketAddr> {
    let svc = Api::<k8s_openapi::api::core::v1::Service>::namespaced(admin.clone(), install_ns)
        .get(&webhook_service_name())
        .await
        .with_context(|| format!("OLM's webhook Service {install_ns}/{}", webhook_service_name()))?;
    let spec = svc.spec.context("the webhook Service has no spec")?;
    let ip: std::net::IpAddr =
        spec.cluster_ip.as_deref().context("the webhook Service has no ClusterIP")?.parse().context("ClusterIP")?;
    let port =
        spec.ports.as_ref().and_then(|p| p.first()).map(|p| p.port).context("the webhook Service has no port")?;
    Ok(std::net::SocketAddr::new(ip, u16::try_from(port)?))
}

/// Copies OLM's webhook certificate Secret into `dir` as tls.crt and tls.key (what the kubelet does for the
/// operator pod's volume); files are replaced atomically and only when they change. Returns whether anything
/// was written.
pub async fn mirror_webhook_certificate(admin: &Client, install_ns: &str, dir: &Path) -> Result<bool> {
    let secret = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), install_ns)
        .get(&webhook_secret_name())
        .await
        .with_context(|| format!("OLM's webhook certificate Secret {install_ns}/{}", webhook_secret_name()))?;
    let data = secret.data.unwrap_or_default();
    let mut wrote = false;
    fs::create_dir_all(dir)?;
    for key in ["tls.crt", "tls.key"] {
        let value = data.get(key).with_context(|| format!("Secret {} has no {key}", webhook_secret_name()))?;
        let path = dir.join(key);
        if fs::read(&path).ok().as_deref() != Some(&value.0[..]) {
            let tmp = dir.join(format!(".{key}.tmp"));
            fs::write(&tmp, &value.0)?;
            fs::rename(&tmp, &path)?;
            wrote = true;
        }
    }
    Ok(wrote)
}

impl InProcessOperator {
    /// The operator as OLM deploys it with webhookdefinitions: the controllers, plus the admission webhooks served
    /// with the certificate OLM minted (mirrored from its Secret, as the pod's volume would be, and followed when
    /// OLM rotates it) on the ClusterIP of the Service OLM made, so the API server's calls through OLM's webhook
    /// configurations reach it.
    pub async fn start_with_olm_webhooks(
        client: Client,
        watch_namespace: &str,
        admin: &Client,
        install_ns: &str,
    ) -> Result<InProcessOperator> {
        use aerospike_kubernetes_operator::webhook::{self, CertSource, WebhookConfig};
        let addr = webhook_service_address(admin, install_ns).await?;
        // A previous in-process operator on this address may still be closing its listener.
        wait_for(&format!("{addr} to be free"), Duration::from_secs(30), || async {
            Ok(std::net::TcpListener::bind(addr).ok().map(drop))
        })
        .await?;
        let dir = std::env::temp_dir().join(format!("ako-olm-webhook-{}-{install_ns}", std::process::id()));
        mirror_webhook_certificate(admin, install_ns, &dir).await?;
        let mirror = tokio::spawn({
            let (admin, ns, dir) = (admin.clone(), install_ns.to_string(), dir.clone());
            async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Err(e) = mirror_webhook_certificate(&admin, &ns, &dir).await {
                        eprintln!("mirroring OLM's webhook certificate: {e:#}");
                    }
                }
            }
        });
        let cfg = WebhookConfig {
            addr,
            certs: CertSource::Dir(dir.clone()),
            register: false,
            target: None,
            namespace: install_ns.to_string(),
            dir_poll: Duration::from_millis(500),
        };
        // A graceful stop frees the address for the next operator started on it (an upgrade test restarts it).
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(webhook::run(client.clone(), cfg, async move {
            let _ = stopped.await;
        }));
        wait_for(&format!("the webhook server on {addr}"), Duration::from_secs(30), || async {
            if server.is_finished() {
                bail!("the webhook server stopped");
            }
            Ok(tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()))
        })
        .await?;
        let mut op = InProcessOperator::start(client, watch_namespace).await?;
        op.webhook = Some(WebhookTasks { server, mirror, cert_dir: dir, stop });
        Ok(op)
    }

    pub async fn start(client: Client, watch_namespace: &str) -> Result<InProcessOperator> {
        use aerospike_kubernetes_operator::asinfo::TcpInfoClient;
        use aerospike_kubernetes_operator::controller::{self, RunConfig, Scope};
        use aerospike_kubernetes_operator::desired::BuildContext;
        use aerospike_kubernetes_operator::metrics::Metrics;
        let scope = Scope::parse(watch_namespace);
        controller::preflight(&client, &scope).await?;
        let timeout = Duration::from_millis(2000);
        let cfg = RunConfig {
            scope,
            build: BuildContext { init_image: crate::project::operator_image(&crate::project::workspace_version()) },
            info: std::sync::Arc::new(TcpInfoClient::new(timeout, timeout)),
            metrics: Metrics::default(),
            instance: format!("in-process-{}", std::process::id()),
            concurrency: aerospike_kubernetes_operator::controller::MAX_CONCURRENT_RECONCILES,
        };
        Ok(InProcessOperator { task: tokio::spawn(controller::run(client, cfg, || {})), webhook: None })
    }

    /// Fails if the controllers (or the webhook server) have stopped.
    pub fn ensure_running(&mut self) -> Result<()> {
        if self.task.is_finished() {
            bail!("the in-process operator stopped");
        }
        if self.webhook.as_ref().is_some_and(|w| w.server.is_finished()) {
            bail!("the in-process operator's webhook server stopped");
        }
        Ok(())
    }
}

impl Drop for InProcessOperator {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(w) = self.webhook.take() {
            let _ = w.stop.send(());
            w.mirror.abort();
            let _ = fs::remove_dir_all(&w.cert_dir);
        }
    }
}

/// [`ako_testbed::olm::up_detached`] with this repository's manifests-only catalog (`root`, see
/// [`prepare_catalog`]).
pub async fn up_detached(state_dir: &Path, root: &Path) -> Result<String> {
    let root = root.to_path_buf();
    ako_testbed::olm::up_detached(state_dir, move |out| prepare_catalog(&root, out)).await
}
