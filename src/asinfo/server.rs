//! A small info-protocol server: the test double for [`super::client`] now, the network front of
//! an Aerospike simulator later.
//!
//! Behaviour:
//! - Each connection may carry any number of requests; it is served until the peer closes it.
//! - Info requests (type 1): every command line is answered with `handler.handle(line)`, echoing
//!   the line exactly, in request order. A request without commands gets an empty answer (a real
//!   server would list its default values).
//! - Admin requests (type 2), e.g. the LOGIN a client sends first when it has credentials: every
//!   admin command is answered with result 52 "security not enabled", which clients treat as a
//!   successful login, so they do not hang waiting. No fields are returned.
//! - Anything else (another protocol version or message type, a body over 1 MiB, a body that is not
//!   UTF-8) closes that connection.
//!
//! Stopping: [`spawn`] returns a `JoinHandle`; aborting it (or dropping the future of [`serve`])
//! also stops every open connection, because connections run in a `JoinSet` owned by the loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::wire::{self, Header, WireError};

/// Answers one info command line. Called synchronously on a runtime worker, so it must be quick
/// (simulator state behind a mutex is fine; no blocking I/O).
pub trait InfoHandler: Send + Sync {
    fn handle(&self, command: &str) -> String;
}

impl<F> InfoHandler for F
where
    F: Fn(&str) -> String + Send + Sync,
{
    fn handle(&self, command: &str) -> String {
        self(command)
    }
}

/// Accepts connections forever and serves each in its own task (see the module docs).
pub async fn serve(listener: TcpListener, handler: Arc<dyn InfoHandler>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handler = Arc::clone(&handler);
                    connections.spawn(async move {
                        if let Err(error) = serve_connection(socket, &*handler).await {
                            tracing::debug!(%peer, %error, "info connection closed");
                        }
                    });
                }
                Err(error) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "info server accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Runs [`serve`] on a new task; abort the handle to stop the server and its connections.
pub fn spawn(listener: TcpListener, handler: Arc<dyn InfoHandler>) -> JoinHandle<()> {
    tokio::spawn(serve(listener, handler))
}

/// Binds `addr` (port 0 picks a free port), spawns the server and returns the bound address.
pub async fn bind_and_spawn(
    addr: SocketAddr,
    handler: Arc<dyn InfoHandler>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, spawn(listener, handler)))
}

/// Why a connection was closed by the server.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad request: {0}")]
    Wire(#[from] WireError),
    #[error("unsupported message type {0}")]
    UnsupportedType(u8),
}

async fn serve_connection(mut socket: TcpStream, handler: &dyn InfoHandler) -> Result<(), ConnectionError> {
    let _ = socket.set_nodelay(true);
    loop {
        let mut header = [0u8; wire::HEADER_LEN];
        match socket.read_exact(&mut header).await {
            Ok(_) => {}
            // The peer closed the connection between requests: the normal end.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let header = Header::parse(header);
        let expected_type = match header.msg_type {
            wire::MSG_TYPE_INFO | wire::MSG_TYPE_ADMIN => header.msg_type,
            other => return Err(ConnectionError::UnsupportedType(other)),
        };
        let len = header.check(expected_type)?;
        let mut body = vec![0u8; len];
        socket.read_exact(&mut body).await?;

        let reply = if expected_type == wire::MSG_TYPE_INFO {
            let commands = wire::parse_info_request_body(&body)?;
            let answers: Vec<(String, String)> = commands
                .into_iter()
                .map(|command| {
                    let mut value = handler.handle(&command);
                    if value.contains('\n') {
                        tracing::warn!(%command, "info handler returned a value with a newline");
                        value = "ERROR::value-contains-newline".to_string();
                    }
                    (command, value)
                })
                .collect();
            wire::encode_info_response(&answers)?
        } else {
            let command = wire::admin_command(&body)?;
            wire::encode_admin_reply(command, wire::ADMIN_RESULT_SECURITY_NOT_ENABLED)
        };
        socket.write_all(&reply).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(handler: Arc<dyn InfoHandler>) -> (SocketAddr, JoinHandle<()>) {
        bind_and_spawn("127.0.0.1:0".parse().unwrap(), handler).await.unwrap()
    }

    async fn read_reply(sock: &mut TcpStream) -> (Header, Vec<u8>) {
        let mut header = [0u8; 8];
        sock.read_exact(&mut header).await.unwrap();
        let header = Header::parse(header);
        let mut body = vec![0u8; header.length as usize];
        sock.read_exact(&mut body).await.unwrap();
        (header, body)
    }

    #[tokio::test]
    async fn answers_several_requests_on_one_connection_echoing_lines() {
        let (addr, server) = start(Arc::new(|c: &str| format!("<{c}>"))).await;
        let mut sock = TcpStream::connect(addr).await.unwrap();
        for round in 0..3 {
            let cmd = format!("namespace/test{round}");
            let request = wire::encode_info_request(&[cmd.as_str(), "build"]).unwrap();
            sock.write_all(&request).await.unwrap();
            let (header, body) = read_reply(&mut sock).await;
            assert_eq!((header.version, header.msg_type), (2, 1));
            assert_eq!(body, format!("{cmd}\t<{cmd}>\nbuild\t<build>\n").into_bytes());
        }
        server.abort();
    }

    #[tokio::test]
    async fn answers_admin_login_with_security_not_enabled() {
        let (addr, server) = start(Arc::new(|_: &str| String::new())).await;
        let mut sock = TcpStream::connect(addr).await.unwrap();
        sock.write_all(&wire::encode_login_request("admin", b"x").unwrap()).await.unwrap();
        let (header, body) = read_reply(&mut sock).await;
        assert_eq!((header.version, header.msg_type, header.length), (2, 2, 16));
        assert_eq!(wire::admin_result(&body).unwrap(), 52);
        // The same connection then serves info requests.
        sock.write_all(&wire::encode_info_request(&["node"]).unwrap()).await.unwrap();
        let (_, body) = read_reply(&mut sock).await;
        assert_eq!(body, b"node\t\n");
        server.abort();
    }

    #[tokio::test]
    async fn closes_connection_on_bad_header() {
        let (addr, server) = start(Arc::new(|_: &str| String::new())).await;
        for bad in [[3u8, 1, 0, 0, 0, 0, 0, 0], [2, 3, 0, 0, 0, 0, 0, 0], [2, 1, 0, 0, 0, 0x20, 0, 0]] {
            let mut sock = TcpStream::connect(addr).await.unwrap();
            sock.write_all(&bad).await.unwrap();
            let mut rest = Vec::new();
            let n = tokio::time::timeout(Duration::from_secs(2), sock.read_to_end(&mut rest))
                .await
                .expect("server must close the connection")
                .unwrap_or(0);
            assert_eq!(n, 0);
        }
        server.abort();
    }

    #[tokio::test]
    async fn newline_in_handler_value_is_replaced() {
        let (addr, server) = start(Arc::new(|_: &str| "a\nb".to_string())).await;
        let mut sock = TcpStream::connect(addr).await.unwrap();
        sock.write_all(&wire::encode_info_request(&["x"]).unwrap()).await.unwrap();
        let (_, body) = read_reply(&mut sock).await;
        assert_eq!(body, b"x\tERROR::value-contains-newline\n");
        server.abort();
    }

    #[tokio::test]
    async fn abort_stops_open_connections() {
        let (addr, server) = start(Arc::new(|_: &str| "v".to_string())).await;
        let mut sock = TcpStream::connect(addr).await.unwrap();
        sock.write_all(&wire::encode_info_request(&["x"]).unwrap()).await.unwrap();
        read_reply(&mut sock).await;
        server.abort();
        let _ = server.await;
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(2), sock.read_to_end(&mut rest))
            .await
            .expect("connection must be closed after abort")
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
