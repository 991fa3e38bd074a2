//! TLS for the webhook server: a certificate store the TLS handshakes read from (swapped atomically on
//! rotation), a listener that completes handshakes off the accept loop, and the watcher of OLM's certificate files.
//!
//! Rotation never drops a request: connections already open keep the session they negotiated, and every new
//! handshake picks the current certificate from the store, which is replaced in one pointer swap.
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many TLS handshakes may be in progress at once.
const MAX_PENDING_HANDSHAKES: usize = 64;
/// At most one warning about evicted handshakes per this period.
const EVICTION_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The serving certificate, shared by every handshake.
#[derive(Default)]
pub struct CertStore {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore").field("loaded", &self.is_loaded()).finish()
    }
}

impl CertStore {
    pub fn new() -> Arc<CertStore> {
        Arc::new(CertStore::default())
    }

    /// Replaces the certificate for the handshakes that start from now on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(key);
    }

    pub fn is_loaded(&self) -> bool {
        self.current.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// The certificate chain currently served (DER), for logs and tests.
    pub fn current_chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|k| k.cert.clone()).unwrap_or_default()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A certificate chain and its private key from PEM.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().context("reading the certificate PEM")?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in the PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem).context("reading the private key PEM")?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).context("unsupported private key")?;
    let ck = CertifiedKey::new(chain, signer);
    ck.keys_match().context("the private key does not belong to the certificate")?;
    Ok(Arc::new(ck))
}

/// The server TLS configuration: certificates from `store`, HTTP/1.1, no client certificates.
pub fn server_config(store: Arc<CertStore>) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(store);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session resumption: a resumed session would keep presenting the certificate of the first handshake,
    // so after a rotation every new connection must make a full handshake with the current certificate.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Ok(Arc::new(cfg))
}

/// Bounds on the connections being set up (TCP accepted, TLS handshake not finished).
#[derive(Clone, Copy, Debug)]
pub struct HandshakeLimits {
    /// How long a client may take to complete the TLS handshake.
    pub timeout: Duration,
    /// How many handshakes may be in progress at once. A new connection beyond this evicts the oldest one
    /// still in its handshake, so clients that open connections and never finish the handshake (slow loris)
    /// cannot keep a real client out: a real handshake takes milliseconds, theirs are the oldest.
    pub max_pending: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits { timeout: HANDSHAKE_TIMEOUT, max_pending: MAX_PENDING_HANDSHAKES }
    }
}

/// A TCP listener whose connections come out TLS-terminated; handshakes run in their own tasks, so a slow
/// client never holds up others, and at most [`HandshakeLimits::max_pending`] of them at a time.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub async fn bind(addr: SocketAddr, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        TlsListener::bind_with(addr, config, HandshakeLimits::default()).await
    }

    pub async fn bind_with(
        addr: SocketAddr,
        config: Arc<ServerConfig>,
        limits: HandshakeLimits,
    ) -> io::Result<TlsListener> {
        let tcp = TcpListener::bind(addr).await?;
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, acceptor, tx, limits));
        Ok(TlsListener { rx, local })
    }

    /// The next TLS-terminated connection; `None` when the accept loop has ended (the listener is dead).
    pub async fn next(&mut self) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
        self.rx.recv().await
    }
}

/// Accepts TCP connections and runs their handshakes (bounded in number and time) until `tx` is closed.
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    limits: HandshakeLimits,
) {
    let max_pending = limits.max_pending.max(1);
    let mut pending: JoinSet<()> = JoinSet::new();
    // The handshakes in progress, oldest first (tasks evicted or finished are removed).
    let mut order: VecDeque<AbortHandle> = VecDeque::new();
    let mut evicted = 0u64;
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            r = tcp.accept() => r,
            Some(done) = pending.join_next_with_id(), if !pending.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                order.retain(|h| h.id() != id);
                continue;
            }
            () = tx.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "webhook accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while order.len() >= max_pending {
            let Some(oldest) = order.pop_front() else { break };
            oldest.abort();
            evicted += 1;
            if last_warning.is_none_or(|t| t.elapsed() >= EVICTION_WARNING_EVERY) {
                warn!(
                    max_pending,
                    evicted, "webhook: too many connections in TLS handshake; closing the oldest (slow clients?)"
                );
                last_warning = Some(Instant::now());
            }
        }
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        let handle = pending.spawn(async move {
            match tokio::time::timeout(limits.timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => debug!(%peer, error = %e, "webhook TLS handshake failed"),
                Err(_) => debug!(%peer, "webhook TLS handshake timed out"),
            }
        });
        order.push_back(handle);
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.next().await {
            Some(conn) => conn,
            // The accept loop only ends with the listener: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// `tls.crt` and `tls.key` of a certificate directory (OLM mounts them at /tmp/k8s-webhook-server/serving-certs).
pub fn cert_files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("tls.crt"), dir.join("tls.key"))
}

/// What [`reload_from_dir`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Same content as last time.
    Unchanged,
    /// A new certificate is in the store.
    Loaded,
    /// Missing, half-written or invalid files: the previous certificate stays in use.
    NotReady,
}

/// Loads the directory's certificate into `store` when the files' content differs from `last`.
pub fn reload_from_dir(store: &CertStore, dir: &Path, last: &mut Option<(Vec<u8>, Vec<u8>)>) -> Reload {
    let (cert_path, key_path) = cert_files(dir);
    let (Ok(cert), Ok(key)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) else {
        return Reload::NotReady;
    };
    if last.as_ref().is_some_and(|(c, k)| *c == cert && *k == key) {
        return Reload::Unchanged;
    }
    match certified_key(&cert, &key) {
        Ok(ck) => {
            let rotated = last.is_some();
            store.set(ck);
            *last = Some((cert, key));
            if rotated {
                info!(dir = %dir.display(), "webhook serving certificate rotated");
            } else {
                info!(dir = %dir.display(), "webhook serving certificate loaded");
            }
            Reload::Loaded
        }
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "webhook certificate files not usable (yet); keeping the current one");
            Reload::NotReady
        }
    }
}

/// Watches a certificate directory forever: every `every` it compares the files' modification times and sizes
/// with the last seen, and reloads on a change (also every tenth round regardless, in case a replacement kept
/// both). Kubelet-projected Secrets and OLM replace the files atomically through a symlink swap.
pub async fn watch_dir(store: Arc<CertStore>, dir: PathBuf, every: Duration, mut last: Option<(Vec<u8>, Vec<u8>)>) {
    let (c, k) = cert_files(&dir);
    let mut seen = (modified(&c), modified(&k));
    let mut pending = last.is_none();
    let mut round = 0u64;
    loop {
        tokio::time::sleep(every).await;
        round += 1;
        let now = (modified(&c), modified(&k));
        if now != seen {
            seen = now;
            pending = true;
        }
        if pending || round.is_multiple_of(10) {
            pending = reload_from_dir(&store, &dir, &mut last) == Reload::NotReady;
        }
    }
}

fn modified(p: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}
