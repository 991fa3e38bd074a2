//! The admission handlers on AdmissionReview bodies, and a certificate rotation under continuous traffic.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::*;

fn cluster_json() -> Value {
    json!({
        "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
        "metadata": {"name": "aerocluster", "namespace": "aerospike"},
        "spec": {
            "size": 2,
            "image": "aerospike/aerospike-server-enterprise:7.1.0.0",
            "validationPolicy": {"skipWorkDirValidate": true},
            "storage": {"volumes": [{"name": "aerospike-config-secret", "source": {"secret": {"secretName": "aerospike-secret"}},
                "aerospike": {"path": "/etc/aerospike/secret"}}]},
            "aerospikeConfig": {
                "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
                "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
                "namespaces": [{"name": "test", "replication-factor": 2, "storage-engine": {"type": "memory", "data-size": 1073741824}}]
            }
        }
    })
}

fn review_body(operation: &str, object: &Value, old: Option<&Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4",
            "kind": {"group": "asdb.aerospike.com", "version": "v1", "kind": "AerospikeCluster"},
            "resource": {"group": "asdb.aerospike.com", "version": "v1", "resource": "aerospikeclusters"},
            "name": "aerocluster", "namespace": "aerospike", "operation": operation,
            "userInfo": {"username": "tester"},
            "object": object, "oldObject": old, "dryRun": false
        }
    }))
    .unwrap()
}

fn response(path: &str, body: &[u8]) -> Value {
    let out: Value = serde_json::from_slice(&review(path, body)).unwrap();
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(out["kind"], "AdmissionReview");
    assert_eq!(out["response"]["uid"], "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4");
    out["response"].clone()
}

fn apply_patch(object: &Value, resp: &Value) -> Value {
    assert_eq!(resp["patchType"], "JSONPatch");
    // kube serialises the patch bytes as a JSON list of numbers, which the API server reads like base64.
    let bytes: Vec<u8> = serde_json::from_value(resp["patch"].clone()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut doc = object.clone();
    json_patch::patch(&mut doc, &patch.0).unwrap();
    doc
}

#[test]
fn mutating_webhook_patches_in_the_defaults() {
    let obj = cluster_json();
    let resp = response(MUTATE_PATH, &review_body("CREATE", &obj, None));
    assert_eq!(resp["allowed"], true);
    let patched = apply_patch(&obj, &resp);
    assert_eq!(patched["spec"]["maxUnavailable"], 1);
    assert_eq!(patched["spec"]["aerospikeConfig"]["network"]["heartbeat"]["mode"], "mesh");
    assert_eq!(patched["spec"]["aerospikeConfig"]["service"]["cluster-name"], "aerocluster");
    assert_eq!(patched["spec"]["storage"]["filesystemVolumePolicy"]["effectiveWipeMethod"], "deleteFiles");
    // only spec changes
    assert_eq!(patched["metadata"], obj["metadata"]);
    // a second pass has nothing to add
    let again = response(MUTATE_PATH, &review_body("UPDATE", &patched, Some(&patched)));
    assert_eq!(again["allowed"], true);
    assert!(again.get("patch").is_none(), "{again}");
}

#[test]
fn mutating_webhook_leaves_unreadable_objects_to_the_schema() {
    let mut obj = cluster_json();
    obj["spec"]["size"] = json!("two");
    let resp = response(MUTATE_PATH, &review_body("CREATE", &obj, None));
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none());
}

#[test]
fn validating_webhook_names_the_fields() {
    let mut obj = cluster_json();
    obj["spec"]["image"] = json!("aerospike/aerospike-server-enterprise:5.7.0.1");
    obj["spec"]["aerospikeConfig"]["service"]["proto-fd-mx"] = json!(1);
    let resp = response(VALIDATE_PATH, &review_body("CREATE", &obj, None));
    assert_eq!(resp["allowed"], false);
    assert_eq!(resp["status"]["code"], 403);
    let msg = resp["status"]["message"].as_str().unwrap();
    assert!(msg.contains("spec.image: server version 5.7.0.1 is older than 6.0"), "{msg}");
    assert!(msg.contains("spec.aerospikeConfig.service.proto-fd-mx: unknown key"), "{msg}");
    let ok = response(VALIDATE_PATH, &review_body("CREATE", &cluster_json(), None));
    assert_eq!(ok["allowed"], true);
}

#[test]
fn validating_webhook_warns_of_fields_it_does_not_act_on() {
    let ok = response(VALIDATE_PATH, &review_body("CREATE", &cluster_json(), None));
    assert_eq!(ok["allowed"], true);
    assert!(ok.get("warnings").is_none_or(Value::is_null), "a plain cluster gets no warning: {ok}");
    let mut obj = cluster_json();
    obj["spec"]["enableDynamicConfigUpdate"] = json!(true);
    obj["spec"]["podService"] = json!({});
    obj["spec"]["validationPolicy"] = json!({"skipWorkDirValidate": true, "skipXdrDlogFileValidate": true});
    let resp = response(VALIDATE_PATH, &review_body("CREATE", &obj, None));
    assert_eq!(resp["allowed"], true);
    let warnings: Vec<&str> = resp["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(!warnings.iter().any(|w| w.starts_with("spec.enableDynamicConfigUpdate")), "implemented: {warnings:?}");
    assert!(!warnings.iter().any(|w| w.starts_with("spec.podService")), "implemented: {warnings:?}");
    assert!(
        warnings.iter().any(|w| w.starts_with("spec.validationPolicy.skipXdrDlogFileValidate: deprecated")),
        "{warnings:?}"
    );
    // An operation restarts existing pods: refused when the cluster is created.
    let mut obj = cluster_json();
    obj["spec"]["operations"] = json!([{"id": "op1", "kind": "WarmRestart"}]);
    let resp = response(VALIDATE_PATH, &review_body("CREATE", &obj, None));
    assert_eq!(resp["allowed"], false);
    let msg = resp["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("spec.operations: an operation cannot be given before the cluster has been deployed"),
        "{msg}"
    );
}

#[test]
fn validating_webhook_judges_changes_only() {
    let old = cluster_json();
    let mut new = old.clone();
    new["spec"]["podSpec"] = json!({"multiPodPerHost": true});
    let resp = response(VALIDATE_PATH, &review_body("UPDATE", &new, Some(&old)));
    assert_eq!(resp["allowed"], false);
    assert!(resp["status"]["message"].as_str().unwrap().starts_with("spec.podSpec.multiPodPerHost: cannot change"));
    // a metadata-only update of an object that breaks a rule (e.g. the operator's finalizer) goes through
    let mut bad = cluster_json();
    bad["spec"]["image"] = json!("aerospike/aerospike-server-enterprise:latest");
    let mut with_finalizer = bad.clone();
    with_finalizer["metadata"]["finalizers"] = json!(["asdb.aerospike.com/storage-finalizer"]);
    let resp = response(VALIDATE_PATH, &review_body("UPDATE", &with_finalizer, Some(&bad)));
    assert_eq!(resp["allowed"], true);
}

#[test]
fn garbage_is_an_invalid_review() {
    let out: Value = serde_json::from_slice(&review(VALIDATE_PATH, b"{nope")).unwrap();
    assert_eq!(out["response"]["allowed"], false);
}

#[test]
fn flags() {
    use clap::Parser;
    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        w: WebhookArgs,
    }
    let t = T::parse_from(["t"]);
    let cfg = t.w.config("ops").unwrap().unwrap();
    assert_eq!(cfg.addr, "0.0.0.0:9443".parse().unwrap());
    assert_eq!(cfg.certs, CertSource::Dir(DEFAULT_CERT_DIR.into()));
    let t =
        T::parse_from(["t", "--webhook-self-signed", "--webhook-register", "--webhook-url", "https://127.0.0.1:9443"]);
    let cfg = t.w.config("ops").unwrap().unwrap();
    assert_eq!(cfg.certs, CertSource::SelfSigned);
    assert_eq!(cfg.target, Some(register::Target::Url("https://127.0.0.1:9443".into())));
    assert!(T::parse_from(["t", "--webhook-register"]).w.config("ops").is_err());
    assert!(T::parse_from(["t", "--no-webhook"]).w.config("ops").unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------------------------
// Certificate rotation under load.

fn material(names: &[&str]) -> certs::Material {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    certs::renew(&certs::Stored::default(), &names, time::OffsetDateTime::now_utc()).unwrap().material()
}

fn der(pem: &str) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn client(cas: &[&str]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(der(ca)).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(cfg))
}

async fn connect(
    tls: &TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<(TlsStream<TcpStream>, CertificateDer<'static>)> {
    let tcp = TcpStream::connect(addr).await?;
    let stream = tls.connect(ServerName::try_from("localhost").unwrap(), tcp).await?;
    let cert = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned().expect("a server certificate");
    Ok((stream, cert.into_owned()))
}

/// One HTTP/1.1 request on an open connection; returns the status code and body.
async fn request(
    stream: &mut TlsStream<TcpStream>,
    path: &str,
    body: &[u8],
    close: bool,
) -> std::io::Result<(u16, Vec<u8>)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed before the response"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, buf[header_end..].to_vec()))
}

fn write_atomically(dir: &std::path::Path, name: &str, content: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_drops_no_request() {
    let a = material(&["localhost", "127.0.0.1"]);
    let b = material(&["localhost", "127.0.0.1"]);
    assert_ne!(a.ca_bundle_pem, b.ca_bundle_pem, "two independent CAs");
    let dir = std::env::temp_dir().join(format!("ako-webhook-rotation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_atomically(&dir, "tls.crt", &a.cert_pem);
    write_atomically(&dir, "tls.key", &a.key_pem);

    let store = tls::CertStore::new();
    let mut last = None;
    assert_eq!(tls::reload_from_dir(&store, &dir, &mut last), tls::Reload::Loaded);
    tokio::spawn(tls::watch_dir(store.clone(), dir.clone(), Duration::from_millis(50), last));
    let listener =
        tls::TlsListener::bind("127.0.0.1:0".parse().unwrap(), tls::server_config(store).unwrap()).await.unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    tokio::spawn(serve(listener, std::future::pending()));

    let connector = client(&[&a.ca_bundle_pem, &b.ca_bundle_pem]);
    let body = Arc::new(review_body("CREATE", &cluster_json(), None));
    let (cert_a, cert_b) = (der(&a.cert_pem), der(&b.cert_pem));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (saw_a, saw_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));

    // Two clients opening a new connection per request...
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (connector, body, stop, ok, failed) =
            (connector.clone(), body.clone(), stop.clone(), ok.clone(), failed.clone());
        let (saw_a, saw_b, cert_a, cert_b) = (saw_a.clone(), saw_b.clone(), cert_a.clone(), cert_b.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let result = async {
                    let (mut s, cert) = connect(&connector, addr).await?;
                    let (status, resp) = request(&mut s, VALIDATE_PATH, &body, true).await?;
                    Ok::<_, std::io::Error>((cert, status, resp))
                }
                .await;
                match result {
                    Ok((cert, 200, resp)) if String::from_utf8_lossy(&resp).contains("\"allowed\":true") => {
                        ok.fetch_add(1, Ordering::SeqCst);
                        if cert == cert_a {
                            saw_a.fetch_add(1, Ordering::SeqCst);
                        } else if cert == cert_b {
                            saw_b.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    other => {
                        eprintln!(
                            "request failed: {:?}",
                            other.map(|(_, s, r)| (s, String::from_utf8_lossy(&r).to_string()))
                        );
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    // ...and one keep-alive connection opened before the rotation and used throughout.
    let keep_alive = {
        let (connector, body, stop) = (connector.clone(), body.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut s, cert) = connect(&connector, addr).await.unwrap();
            let mut served = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let (status, resp) = request(&mut s, VALIDATE_PATH, &body, false).await.expect("keep-alive request");
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
                served += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (cert, served)
        })
    };

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before_rotation = ok.load(Ordering::SeqCst);
    write_atomically(&dir, "tls.crt", &b.cert_pem);
    write_atomically(&dir, "tls.key", &b.key_pem);
    let rotated_at = Instant::now();
    while saw_b.load(Ordering::SeqCst) == 0 {
        assert!(
            rotated_at.elapsed() < Duration::from_secs(10),
            "new connections never presented certificate B (ok {}, failed {}, saw A {})",
            ok.load(Ordering::SeqCst),
            failed.load(Ordering::SeqCst),
            saw_a.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // After B was seen, every new connection presents B.
    let a_after = saw_a.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let (keep_alive_cert, keep_alive_served) = keep_alive.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    eprintln!(
        "rotation: {ok} requests ok ({before_rotation} before the swap), {failed} failed, {} with cert A, {} with cert B, \
         {keep_alive_served} on the keep-alive connection",
        saw_a.load(Ordering::SeqCst),
        saw_b.load(Ordering::SeqCst)
    );
    assert_eq!(failed, 0);
    assert!(before_rotation > 0 && saw_a.load(Ordering::SeqCst) > 0);
    assert!(saw_b.load(Ordering::SeqCst) > 0);
    assert!(
        saw_a.load(Ordering::SeqCst) <= a_after + 2,
        "certificate A after B was served (beyond in-flight handshakes)"
    );
    assert_eq!(keep_alive_cert, cert_a, "the keep-alive connection was opened before the rotation");
    assert!(keep_alive_served > 10);
}

// ---------------------------------------------------------------------------------------------------------------
// Slow clients.

/// A webhook server on a loopback port with a fresh certificate; returns its address and a client for it.
async fn start_server(handshakes: tls::HandshakeLimits) -> (SocketAddr, TlsConnector) {
    let m = material(&["localhost", "127.0.0.1"]);
    let store = tls::CertStore::new();
    store.set(tls::certified_key(m.cert_pem.as_bytes(), m.key_pem.as_bytes()).unwrap());
    let listener =
        tls::TlsListener::bind_with("127.0.0.1:0".parse().unwrap(), tls::server_config(store).unwrap(), handshakes)
            .await
            .unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    tokio::spawn(serve(listener, std::future::pending()));
    (addr, client(&[&m.ca_bundle_pem]))
}

/// Reads until the peer closes (Ok) or `within` passes (Err).
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(s: &mut S, within: Duration) -> Result<Duration, ()> {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    match tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    {
        Ok(()) => Ok(start.elapsed()),
        Err(_) => Err(()),
    }
}

async fn admission_request(connector: &TlsConnector, addr: SocketAddr) -> std::io::Result<(u16, Vec<u8>)> {
    let (mut s, _) = connect(connector, addr).await?;
    request(&mut s, VALIDATE_PATH, &review_body("CREATE", &cluster_json(), None), true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_sends_headers_is_closed() {
    let (addr, connector) = start_server(tls::HandshakeLimits::default()).await;
    // TLS done, then silence: the server must not keep it open for ever.
    let (mut silent, _) = connect(&connector, addr).await.unwrap();
    let limit = HEADER_READ_TIMEOUT + Duration::from_secs(5);
    let took = closed_within(&mut silent, limit).await;
    eprintln!("silent connection closed after {took:?} (header-read timeout {HEADER_READ_TIMEOUT:?})");
    let took = took.unwrap_or_else(|()| panic!("a connection that sent no request was still open after {limit:?}"));
    assert!(took >= HEADER_READ_TIMEOUT - Duration::from_millis(500), "closed too early: {took:?}");
    // A keep-alive connection that goes quiet after a request is closed the same way.
    let (mut s, _) = connect(&connector, addr).await.unwrap();
    let (status, _) =
        request(&mut s, VALIDATE_PATH, &review_body("CREATE", &cluster_json(), None), false).await.unwrap();
    assert_eq!(status, 200);
    assert!(closed_within(&mut s, limit).await.is_ok(), "an idle keep-alive connection was never closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_do_not_keep_out_a_real_request() {
    let max_pending = 16;
    let (addr, connector) = start_server(tls::HandshakeLimits { timeout: Duration::from_secs(30), max_pending }).await;
    // Connections that never start the TLS handshake...
    let mut raw = Vec::new();
    for _ in 0..200 {
        raw.push(TcpStream::connect(addr).await.unwrap());
    }
    // ...and connections that finish it and never send a request.
    let mut silent = Vec::new();
    for _ in 0..100 {
        silent.push(connect(&connector, addr).await.unwrap().0);
    }
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), admission_request(&connector, addr))
        .await
        .expect("a real admission request was not served within 5 s")
        .unwrap();
    eprintln!("admission request served in {:?} next to 300 silent connections", started.elapsed());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("\"allowed\":true"));
    // At most `max_pending` connections were left in their handshake: the others were closed.
    let mut closed = 0;
    for s in &mut raw {
        if closed_within(s, Duration::from_millis(20)).await.is_ok() {
            closed += 1;
        }
    }
    eprintln!("{closed} of {} silent TCP connections closed", raw.len());
    assert!(closed >= raw.len() - max_pending, "only {closed} of {} were closed", raw.len());
}

// ---------------------------------------------------------------------------------------------------------------
// Readiness follows the webhook server.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET /readyz of `health`'s router served on a loopback port: the status code and body.
async fn readyz(addr: SocketAddr) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

async fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_webhook_and_drops_when_it_fails() {
    // An API client that is never called (certificates from a directory, no registration).
    let kube_client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let health = crate::server::Health::default();
    health.set_ready(true); // the controller's part
    let health_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health_addr = health_listener.local_addr().unwrap();
    let app = crate::server::router(health.clone(), crate::metrics::Metrics::default());
    tokio::spawn(async move { axum::serve(health_listener, app).await });

    // A certificate directory with unusable files: the webhook cannot serve.
    let dir = std::env::temp_dir().join(format!("ako-webhook-readiness-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_atomically(&dir, "tls.crt", "not a certificate");
    write_atomically(&dir, "tls.key", "not a key");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = WebhookConfig {
        addr,
        certs: CertSource::Dir(dir.clone()),
        register: false,
        target: None,
        namespace: "ops".into(),
        dir_poll: Duration::from_millis(50),
    };
    let status = Status::default();
    health.include_webhook(status.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let supervisor = tokio::spawn(supervise(kube_client.clone(), cfg.clone(), status.clone(), stop_rx));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!health.is_ready(), "ready while the webhook has no usable certificate");
    let (code, body) = readyz(health_addr).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("admission webhook"), "{body}");

    // A good certificate: it serves, and the process is ready.
    let m = material(&["localhost", "127.0.0.1"]);
    write_atomically(&dir, "tls.crt", &m.cert_pem);
    write_atomically(&dir, "tls.key", &m.key_pem);
    wait_until("ready once the webhook serves", Duration::from_secs(5), || health.is_ready()).await;
    assert_eq!(readyz(health_addr).await.0, 200);
    let (code, _) = admission_request(&client(&[&m.ca_bundle_pem]), addr).await.unwrap();
    assert_eq!(code, 200, "ready means the webhook answers");

    // A second server on the same address cannot listen: it fails, says so, and is not ready.
    let second = Status::default();
    let failing = crate::server::Health::default();
    failing.set_ready(true);
    failing.include_webhook(second.clone());
    let err = run_with_status(kube_client.clone(), cfg, &second, std::future::pending()).await.unwrap_err();
    assert!(format!("{err:#}").contains("cannot listen"), "{err:#}");
    assert!(matches!(second.get(), State::Failed(_)), "{:?}", second.get());
    let why = failing.readiness().unwrap_err();
    assert!(why.contains("admission webhook: failed") && why.contains("cannot listen"), "{why}");

    // Shutdown: no longer ready.
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), supervisor).await.expect("the webhook stops").unwrap();
    assert!(!health.is_ready());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_backup_is_refused_naming_each_field_at_fault() {
    let backup = |routine_cluster: &str| {
        json!({
            "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeBackup",
            "metadata": {"name": "b", "namespace": "db"},
            "spec": {
                "backupService": {"name": "abs", "namespace": "ops"},
                "config": {
                    "aerospike-cluster": {"db-b-c": {"seed-nodes": [{"host-name": "c.db.svc", "port": 3000}]}},
                    "backup-routines": {"db-b-r": {"source-cluster": routine_cluster, "storage": "local",
                        "backup-policy": "p"}}
                }
            }
        })
    };
    let ok = response(VALIDATE_BACKUP_PATH, &review_body("CREATE", &backup("db-b-c"), None));
    assert_eq!(ok["allowed"], true, "{ok}");
    let resp = response(VALIDATE_BACKUP_PATH, &review_body("CREATE", &backup("other"), None));
    assert_eq!(resp["allowed"], false);
    assert_eq!(
        resp["status"]["message"],
        "spec.config.backup-routines.db-b-r.source-cluster: other is not this backup's aerospike-cluster"
    );
    // A spec stored before the rule may still get its finalizer.
    let resp = response(VALIDATE_BACKUP_PATH, &review_body("UPDATE", &backup("other"), Some(&backup("other"))));
    assert_eq!(resp["allowed"], true);
}
