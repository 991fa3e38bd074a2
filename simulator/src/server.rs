//! Serving one node: the listener on `<podIP>:<port>`, logins, and the fault knobs on each connection.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aerospike_kubernetes_operator::asinfo::wire::{self, Header};
use aerospike_kubernetes_operator::asinfo::{InfoHandler, auth};
use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::answers::NodeHandler;
use crate::faults::NoAnswer;
use crate::model::{Inner, PodKey, What};

// -----------------------------------------------------------------------------------------------------------------
// Serving one node.

pub(crate) async fn node_task(
    inner: Arc<Inner>,
    key: PodKey,
    uid: String,
    addr: SocketAddr,
    secured: bool,
    log_commands: bool,
) {
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
        let handler = Arc::new(NodeHandler { inner: inner.clone(), key: key.clone(), uid: uid.clone(), secured });
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((socket, _)) = accepted {
                        connections.spawn(serve_connection(socket, handler.clone(), log_commands));
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

pub(crate) async fn serve_connection(mut socket: TcpStream, handler: Arc<NodeHandler>, log_commands: bool) {
    let _ = socket.set_nodelay(true);
    let mut logged_in = false;
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
        if msg_type == wire::MSG_TYPE_INFO && handler.secured && !logged_in {
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
        } else {
            let Ok(command) = wire::admin_command(&body) else { return };
            if !handler.secured {
                // Security is not enabled here, which clients accept as a login.
                wire::encode_admin_reply(command, wire::ADMIN_RESULT_SECURITY_NOT_ENABLED)
            } else {
                // bcrypt is slow (cached per password): off the async workers.
                let password = handler.inner.admin_password();
                let expected =
                    tokio::task::spawn_blocking(move || auth::credentials(auth::DEFAULT_ADMIN_USER, &password))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .map(|c| c.credential)
                        .unwrap_or_default();
                {
                    let fields = wire::admin_fields(&body).unwrap_or_default();
                    let field = |id: u8| fields.iter().find(|(f, _)| *f == id).map(|(_, d)| d.as_slice());
                    logged_in = command == wire::ADMIN_LOGIN
                        && field(wire::ADMIN_FIELD_USER) == Some(auth::DEFAULT_ADMIN_USER.as_bytes())
                        && !expected.is_empty()
                        && field(wire::ADMIN_FIELD_CREDENTIAL) == Some(expected.as_bytes());
                    handler.inner.lock().record(
                        &handler.key,
                        &handler.uid,
                        What::Command { command: format!("login:accepted={logged_in}"), answered: true },
                    );
                    let result = if logged_in { wire::ADMIN_RESULT_OK } else { wire::ADMIN_RESULT_INVALID_CREDENTIAL };
                    wire::encode_admin_reply(command, result)
                }
            }
        };
        if socket.write_all(&reply).await.is_err() {
            return;
        }
    }
}
