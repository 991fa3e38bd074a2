//! Serving one node: the listeners on `<podIP>:<port>` and `<podIP>:<tls-port>` (TLS), logins, and the fault knobs on
//! each connection.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use aerospike_kubernetes_operator::asinfo::wire::{self, Header};
use aerospike_kubernetes_operator::asinfo::{InfoHandler, auth};
use anyhow::Result;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::admin;
use crate::answers::NodeHandler;
use crate::faults::NoAnswer;
use crate::model::{Inner, PodKey, What};
use crate::tls::{ServiceTls, client_name_accepted};

// -----------------------------------------------------------------------------------------------------------------
// Serving one node.

/// Serves a node on each of its listeners: the plain service port and, with TLS, the `tls-port`.
pub(crate) async fn node_task(
    inner: Arc<Inner>,
    key: PodKey,
    uid: String,
    listeners: Vec<(SocketAddr, Option<Arc<ServiceTls>>)>,
    secured: bool,
    log_commands: bool,
) {
    let handler = Arc::new(NodeHandler { inner: inner.clone(), key: key.clone(), uid: uid.clone(), secured });
    let mut tasks = JoinSet::new();
    for (addr, tls) in listeners {
        tasks.spawn(listen(inner.clone(), handler.clone(), addr, tls, log_commands));
    }
    while tasks.join_next().await.is_some() {}
}

async fn listen(
    inner: Arc<Inner>,
    handler: Arc<NodeHandler>,
    addr: SocketAddr,
    tls: Option<Arc<ServiceTls>>,
    log_commands: bool,
) {
    let key = handler.key.clone();
    let mut changed = inner.faults_changed.subscribe();
    let mut warned = false;
    loop {
        while inner.fault_of(&key).no_answer == Some(NoAnswer::Refuse) {
            if changed.changed().await.is_err() {
                return;
            }
        }
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                // E.g. the previous holder of a recycled IP has not closed its socket yet.
                if !warned {
                    eprintln!("simulator: {}/{}: cannot listen on {addr} yet: {e}", key.0, key.1);
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((socket, peer)) = accepted {
                        let _ = socket.set_nodelay(true);
                        connections.spawn(accept(socket, peer.ip(), tls.clone(), handler.clone(), log_commands));
                    }
                }
                r = changed.changed() => {
                    if r.is_err() {
                        return;
                    }
                    if inner.fault_of(&key).no_answer == Some(NoAnswer::Refuse) {
                        break; // stop listening and drop open connections, like a dead process
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }
}

/// One connection: plain, or TLS (a failed handshake or a client certificate without a listed name closes it).
async fn accept(
    socket: TcpStream,
    peer: IpAddr,
    tls: Option<Arc<ServiceTls>>,
    handler: Arc<NodeHandler>,
    log_commands: bool,
) {
    let Some(tls) = tls else { return serve_connection(socket, peer, None, handler, log_commands).await };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(socket)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let what = What::Command { command: format!("tls:refused={e}"), answered: false };
            handler.inner.lock().record(&handler.key, &handler.uid, what);
            return;
        }
        Err(_) => return,
    };
    let leaf = stream.get_ref().1.peer_certificates().and_then(|c| c.first());
    if !client_name_accepted(leaf, &tls.client_names) {
        let what = What::Command { command: "tls:refused=client certificate name".into(), answered: false };
        handler.inner.lock().record(&handler.key, &handler.uid, what);
        return;
    }
    let certificate_user = leaf.and_then(|c| crate::tls::common_name(c));
    serve_connection(stream, peer, certificate_user, handler, log_commands).await
}

pub(crate) async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: S,
    peer: IpAddr,
    certificate_user: Option<String>,
    handler: Arc<NodeHandler>,
    log_commands: bool,
) {
    // The user this connection authenticated as (LOGIN or AUTHENTICATE), on a secured node.
    let mut user: Option<String> = None;
    loop {
        let mut header = [0u8; wire::HEADER_LEN];
        if socket.read_exact(&mut header).await.is_err() {
            return;
        }
        let header = Header::parse(header);
        let msg_type = header.msg_type;
        if msg_type != wire::MSG_TYPE_INFO && msg_type != wire::MSG_TYPE_ADMIN {
            return;
        }
        let Ok(len) = header.check(msg_type) else { return };
        let mut body = vec![0u8; len];
        if socket.read_exact(&mut body).await.is_err() {
            return;
        }
        let commands = if msg_type == wire::MSG_TYPE_INFO {
            match wire::parse_info_request_body(&body) {
                Ok(c) => c,
                Err(_) => return,
            }
        } else {
            Vec::new()
        };
        let fault = handler.inner.fault_of(&handler.key);
        if log_commands {
            for c in &commands {
                eprintln!("simulator: {}/{} <- {c}", handler.key.0, handler.key.1);
            }
        }
        if fault.no_answer == Some(NoAnswer::Hang) {
            {
                let mut state = handler.inner.lock();
                for c in &commands {
                    state.record(&handler.key, &handler.uid, What::Command { command: c.clone(), answered: false });
                }
            }
            // Keep the connection open, read and drop whatever comes, never answer.
            let _ = tokio::io::copy(&mut socket, &mut tokio::io::sink()).await;
            return;
        }
        if let Some(delay) = fault.delay {
            tokio::time::sleep(delay).await;
        }
        if msg_type == wire::MSG_TYPE_INFO && handler.secured && user.is_none() {
            let mut state = handler.inner.lock();
            for c in &commands {
                state.record(&handler.key, &handler.uid, What::Command { command: c.clone(), answered: false });
            }
            return; // a secured node does not answer an unauthenticated connection
        }
        let reply = if msg_type == wire::MSG_TYPE_INFO {
            let answers: Vec<(String, String)> = commands
                .into_iter()
                .map(|c| {
                    let mut v = handler.handle(&c);
                    if v.contains('\n') {
                        v = "ERROR::value-contains-newline".into();
                    }
                    (c, v)
                })
                .collect();
            match wire::encode_info_response(&answers) {
                Ok(r) => r,
                Err(_) => return,
            }
        } else if !handler.secured {
            // Security is not enabled here, which clients accept as a login.
            let command = wire::admin_command(&body).unwrap_or(admin::cmd::LOGIN);
            wire::encode_admin_reply(command, wire::ADMIN_RESULT_SECURITY_NOT_ENABLED)
        } else {
            // The admin's credential while its password is the simulator's option. bcrypt is slow (cached per
            // password): off the async workers.
            let password = handler.inner.admin_password();
            let default_admin =
                tokio::task::spawn_blocking(move || auth::credentials(auth::DEFAULT_ADMIN_USER, &password))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|c| c.credential)
                    .unwrap_or_default();
            let mut state = handler.inner.lock();
            let (reply, login) =
                state.admin(&handler.key, &default_admin, peer, certificate_user.as_deref(), &mut user, &body);
            if let Some(accepted) = login {
                let what = What::Command { command: format!("login:accepted={accepted}"), answered: true };
                state.record(&handler.key, &handler.uid, what);
            }
            // Writes to users and roles, with the result code (byte 1 of the admin header after the 8-byte
            // protocol header), so tests can count them.
            if let Some(name) = wire::admin_command(&body).ok().and_then(admin::write_name) {
                let result = reply.get(9).copied().unwrap_or(u8::MAX);
                let what = What::Command { command: format!("admin:{name}:result={result}"), answered: true };
                state.record(&handler.key, &handler.uid, what);
            }
            reply
        };
        if socket.write_all(&reply).await.is_err() {
            return;
        }
    }
}
