//! The info client: the [`InfoClient`] trait the controller depends on, and [`TcpInfoClient`], its
//! real implementation over tokio TCP.
//!
//! The trait is object-safe (held as `Arc<dyn InfoClient>`) so reconciler logic can be tested with
//! an in-memory fake instead of a cluster.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::tls::TlsClient;
use super::wire::{self, Header, WireError};

/// One info exchange with one node: send `commands`, get back request line -> value.
///
/// Implementations return transport and framing failures as errors; values such as
/// `ERROR::unstable-cluster` are returned as ordinary values (the typed operations in
/// [`super::ops`] turn them into [`InfoErrorKind::Server`]).
pub trait InfoClient: Send + Sync {
    fn request<'a>(
        &'a self,
        addr: SocketAddr,
        commands: &'a [String],
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, InfoError>>;

    /// The same client logging in on every connection, trying `logins` in order until one is accepted (for
    /// clusters with security enabled). `None` when this client cannot log in (test fakes), which then serves
    /// as it is.
    fn with_logins(&self, _logins: Vec<Credentials>) -> Option<std::sync::Arc<dyn InfoClient>> {
        None
    }

    /// The same client speaking TLS on every connection (for clusters whose service is TLS), keeping its logins.
    /// `None` when this client cannot (test fakes), which then serves as it is.
    fn with_tls(&self, _tls: TlsClient) -> Option<std::sync::Arc<dyn InfoClient>> {
        None
    }
}

/// A failed info exchange. The message always names the command(s) and the node address, e.g.
/// ``info command `statistics` on 10.0.0.5:3000: connection refused``.
#[derive(Debug, thiserror::Error)]
#[error("info command `{command}` on {addr}: {kind}")]
pub struct InfoError {
    pub addr: SocketAddr,
    /// The command, or several joined by `, `.
    pub command: String,
    pub kind: InfoErrorKind,
}

/// What went wrong, without the address (see [`InfoError`] for the full message).
#[derive(Debug, thiserror::Error)]
pub enum InfoErrorKind {
    #[error("connection refused")]
    ConnectRefused,
    #[error("no connection within {}", fmt_duration(*.0))]
    ConnectTimeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no answer within {} ({stage})", fmt_duration(*timeout))]
    Timeout { stage: Stage, timeout: Duration },
    #[error("connection closed by the node ({stage})")]
    Closed { stage: Stage },
    #[error("connection failed ({stage}): {error}")]
    Io { stage: Stage, error: std::io::Error },
    #[error("protocol error: {0}")]
    Protocol(WireError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("login refused with result code {0}{hint}", hint = login_hint(*.0))]
    LoginRefused(u8),
    #[error("the node answered {0}")]
    Server(String),
    #[error("the answer has no line for this command")]
    MissingAnswer,
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// The step of an exchange that failed, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Login,
    SendRequest,
    ReadHeader,
    ReadBody,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Login => "while logging in",
            Stage::SendRequest => "while sending the request",
            Stage::ReadHeader => "while waiting for the response",
            Stage::ReadBody => "while reading the response body",
        })
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

impl InfoError {
    pub fn new(addr: SocketAddr, command: impl Into<String>, kind: InfoErrorKind) -> Self {
        InfoError { addr, command: command.into(), kind }
    }

    /// True when the node could not be reached or did not finish answering (as opposed to
    /// answering something we reject). Safety checks report these as "did not answer".
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self.kind,
            InfoErrorKind::ConnectRefused
                | InfoErrorKind::ConnectTimeout(_)
                | InfoErrorKind::Connect(_)
                | InfoErrorKind::Timeout { .. }
                | InfoErrorKind::Closed { .. }
                | InfoErrorKind::Io { .. }
        )
    }

    /// True for timeouts of either the connect or an I/O step.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, InfoErrorKind::ConnectTimeout(_) | InfoErrorKind::Timeout { .. })
    }
}

fn login_hint(code: u8) -> &'static str {
    if code == super::wire::ADMIN_RESULT_INVALID_CREDENTIAL { " (user or password not accepted)" } else { "" }
}

/// Joins commands for error messages.
pub(crate) fn describe_commands(commands: &[String]) -> String {
    commands.join(", ")
}

/// Login material for clusters with security enabled: the user and the credential, i.e. the
/// bcrypt hash of the password (cost 10, salt `$2a$10$7EqJtq98hPqEX7fNZaFWoO`; see [`super::auth`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub credential: String,
}

impl Credentials {
    /// A PKI login: no user and no credential; the server reads the user from the TLS client certificate, so it
    /// only works over TLS with a client certificate.
    pub fn pki() -> Credentials {
        Credentials { user: String::new(), credential: String::new() }
    }

    pub fn is_pki(&self) -> bool {
        self.user.is_empty() && self.credential.is_empty()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_pki() {
            return f.write_str("Credentials(PKI)");
        }
        f.debug_struct("Credentials").field("user", &self.user).finish_non_exhaustive()
    }
}

/// Info client over plain TCP: one connection per request, closed afterwards.
///
/// The connect is bounded by `connect_timeout`; everything after it (login, sending, reading the
/// header and the body) shares one `io_timeout` budget, so a request never takes longer than
/// `connect_timeout + io_timeout`. With [`Credentials`], every connection logs in first (admin
/// LOGIN); result 0 and 52 (security not enabled) both count as success. With several, a refused
/// login is retried on a new connection with the next one.
#[derive(Debug, Clone)]
pub struct TcpInfoClient {
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub credentials: Vec<Credentials>,
    /// TLS on every connection (the handshake shares the I/O budget), verifying the node's `tls-name`.
    pub tls: Option<TlsClient>,
}

impl Default for TcpInfoClient {
    fn default() -> Self {
        TcpInfoClient::new(Duration::from_secs(5), Duration::from_secs(10))
    }
}

impl TcpInfoClient {
    pub fn new(connect_timeout: Duration, io_timeout: Duration) -> Self {
        TcpInfoClient { connect_timeout, io_timeout, credentials: Vec::new(), tls: None }
    }

    /// Adds a login to try (after those already added).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials.push(credentials);
        self
    }

    async fn exchange_logged_in(
        &self,
        addr: SocketAddr,
        commands: &[String],
    ) -> Result<BTreeMap<String, String>, InfoErrorKind> {
        let Some((last, first)) = self.credentials.split_last() else {
            return self.exchange(addr, commands, None).await;
        };
        for creds in first {
            match self.exchange(addr, commands, Some(creds)).await {
                Err(InfoErrorKind::LoginRefused(_)) => continue,
                other => return other,
            }
        }
        self.exchange(addr, commands, Some(last)).await
    }

    async fn exchange(
        &self,
        addr: SocketAddr,
        commands: &[String],
        login: Option<&Credentials>,
    ) -> Result<BTreeMap<String, String>, InfoErrorKind> {
        // Encode first: a bad command must not cost a connection.
        let request = wire::encode_info_request(commands).map_err(|e| match e {
            WireError::InvalidCommand(c) => {
                InfoErrorKind::InvalidArgument(format!("command {c:?} is empty or has a newline or tab"))
            }
            other => InfoErrorKind::Protocol(other),
        })?;

        let mut stream = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(InfoErrorKind::ConnectTimeout(self.connect_timeout)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(InfoErrorKind::ConnectRefused);
            }
            Ok(Err(e)) => return Err(InfoErrorKind::Connect(e)),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let deadline = Instant::now() + self.io_timeout;
        match &self.tls {
            None => self.talk(&mut stream, &request, login, deadline).await,
            Some(tls) => {
                let name = tls.name().map_err(InfoErrorKind::Tls)?;
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                let mut stream = match tokio::time::timeout_at(deadline, connector.connect(name, stream)).await {
                    Err(_) => {
                        return Err(InfoErrorKind::Tls(format!(
                            "no TLS handshake within {}",
                            fmt_duration(self.io_timeout)
                        )));
                    }
                    Ok(Err(e)) => return Err(InfoErrorKind::Tls(format!("handshake failed: {e}"))),
                    Ok(Ok(s)) => s,
                };
                self.talk(&mut stream, &request, login, deadline).await
            }
        }
    }

    /// Login (when given) and one info exchange on an open connection.
    async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        request: &[u8],
        login: Option<&Credentials>,
        deadline: Instant,
    ) -> Result<BTreeMap<String, String>, InfoErrorKind> {
        if let Some(creds) = login {
            let login = if creds.is_pki() {
                wire::encode_pki_login_request()
            } else {
                wire::encode_login_request(&creds.user, creds.credential.as_bytes()).map_err(InfoErrorKind::Protocol)?
            };
            self.write_all(stream, &login, deadline, Stage::Login).await?;
            let body = self.read_message(stream, wire::MSG_TYPE_ADMIN, deadline, Stage::Login).await?;
            match wire::admin_result(&body).map_err(InfoErrorKind::Protocol)? {
                wire::ADMIN_RESULT_OK | wire::ADMIN_RESULT_SECURITY_NOT_ENABLED => {}
                code => return Err(InfoErrorKind::LoginRefused(code)),
            }
        }

        self.write_all(stream, request, deadline, Stage::SendRequest).await?;
        let body = self.read_message(stream, wire::MSG_TYPE_INFO, deadline, Stage::ReadHeader).await?;
        wire::parse_info_body(&body).map_err(InfoErrorKind::Protocol)
    }

    async fn write_all<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        bytes: &[u8],
        deadline: Instant,
        stage: Stage,
    ) -> Result<(), InfoErrorKind> {
        match tokio::time::timeout_at(deadline, stream.write_all(bytes)).await {
            Err(_) => Err(InfoErrorKind::Timeout { stage, timeout: self.io_timeout }),
            Ok(Err(e)) => Err(io_kind(stage, e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads one message of the expected type; `stage` names the header read (the body read is
    /// reported as [`Stage::ReadBody`] unless logging in).
    async fn read_message<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        msg_type: u8,
        deadline: Instant,
        stage: Stage,
    ) -> Result<Vec<u8>, InfoErrorKind> {
        let mut header = [0u8; wire::HEADER_LEN];
        match tokio::time::timeout_at(deadline, stream.read_exact(&mut header)).await {
            Err(_) => {
                return Err(InfoErrorKind::Timeout { stage, timeout: self.io_timeout });
            }
            Ok(Err(e)) => return Err(io_kind(stage, e)),
            Ok(Ok(_)) => {}
        }
        let len = Header::parse(header).check(msg_type).map_err(InfoErrorKind::Protocol)?;
        let body_stage = if stage == Stage::Login { Stage::Login } else { Stage::ReadBody };
        let mut body = vec![0u8; len];
        match tokio::time::timeout_at(deadline, stream.read_exact(&mut body)).await {
            Err(_) => Err(InfoErrorKind::Timeout { stage: body_stage, timeout: self.io_timeout }),
            Ok(Err(e)) => Err(io_kind(body_stage, e)),
            Ok(Ok(_)) => Ok(body),
        }
    }
}

fn io_kind(stage: Stage, error: std::io::Error) -> InfoErrorKind {
    match error.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
            InfoErrorKind::Closed { stage }
        }
        _ => InfoErrorKind::Io { stage, error },
    }
}

impl InfoClient for TcpInfoClient {
    fn with_logins(&self, logins: Vec<Credentials>) -> Option<std::sync::Arc<dyn InfoClient>> {
        Some(std::sync::Arc::new(TcpInfoClient { credentials: logins, ..self.clone() }))
    }

    fn with_tls(&self, tls: TlsClient) -> Option<std::sync::Arc<dyn InfoClient>> {
        Some(std::sync::Arc::new(TcpInfoClient { tls: Some(tls), ..self.clone() }))
    }

    fn request<'a>(
        &'a self,
        addr: SocketAddr,
        commands: &'a [String],
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, InfoError>> {
        Box::pin(async move {
            let result = self.exchange_logged_in(addr, commands).await;
            match result {
                Ok(map) => {
                    tracing::trace!(%addr, commands = ?commands, "info request answered");
                    Ok(map)
                }
                Err(kind) => {
                    let err = InfoError::new(addr, describe_commands(commands), kind);
                    tracing::debug!(error = %err, "info request failed");
                    Err(err)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::net::TcpListener;

    fn client() -> TcpInfoClient {
        TcpInfoClient::new(Duration::from_millis(500), Duration::from_millis(200))
    }

    fn cmds(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    async fn local_listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    /// A hand-written peer: checks the exact request bytes, answers with hand-built bytes.
    #[tokio::test]
    async fn exact_bytes_against_raw_listener() {
        let (listener, addr) = local_listener().await;
        let peer = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut got = vec![0u8; 8 + 22];
            sock.read_exact(&mut got).await.unwrap();
            let mut expected = vec![2u8, 1, 0, 0, 0, 0, 0, 22];
            expected.extend_from_slice(b"statistics\nnamespaces\n");
            assert_eq!(got, expected);
            let body = b"statistics\tcluster_size=2;cluster_key=A1\nnamespaces\ttest;bar\n";
            let mut reply = vec![2u8, 1, 0, 0, 0, 0, 0, body.len() as u8];
            reply.extend_from_slice(body);
            sock.write_all(&reply).await.unwrap();
            // Nothing else may arrive: the client closes after one exchange.
            let mut rest = Vec::new();
            sock.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
        });
        let map = client().request(addr, &cmds(&["statistics", "namespaces"])).await.unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["statistics"], "cluster_size=2;cluster_key=A1");
        assert_eq!(map["namespaces"], "test;bar");
        peer.await.unwrap();
    }

    async fn reply_with(reply: Vec<u8>) -> SocketAddr {
        let (listener, addr) = local_listener().await;
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut header = [0u8; 8];
            sock.read_exact(&mut header).await.unwrap();
            let mut body = vec![0u8; Header::parse(header).length as usize];
            sock.read_exact(&mut body).await.unwrap();
            sock.write_all(&reply).await.unwrap();
            // Keep the socket open for a while so truncation is seen as such, then close.
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        addr
    }

    #[tokio::test]
    async fn rejects_wrong_version_type_and_size() {
        let c = client();
        let commands = cmds(&["node"]);

        let addr = reply_with(vec![3, 1, 0, 0, 0, 0, 0, 0]).await;
        let err = c.request(addr, &commands).await.unwrap_err();
        assert!(matches!(err.kind, InfoErrorKind::Protocol(WireError::BadVersion(3))), "{err}");

        let addr = reply_with(vec![2, 3, 0, 0, 0, 0, 0, 0]).await;
        let err = c.request(addr, &commands).await.unwrap_err();
        assert!(matches!(err.kind, InfoErrorKind::Protocol(WireError::BadType { got: 3, .. })), "{err}");

        let addr = reply_with(vec![2, 1, 0, 0, 0, 0x20, 0, 0]).await;
        let err = c.request(addr, &commands).await.unwrap_err();
        assert!(matches!(err.kind, InfoErrorKind::Protocol(WireError::TooLarge(_))), "{err}");
        assert!(err.to_string().contains(&addr.to_string()));
        assert!(err.to_string().contains("`node`"));
    }

    #[tokio::test]
    async fn truncated_body_is_reported() {
        let mut reply = vec![2u8, 1, 0, 0, 0, 0, 0, 40];
        reply.extend_from_slice(b"node\tBB9");
        let addr = reply_with(reply).await;
        // An I/O deadline well past the peer's 50 ms: on a loaded machine the short one of `client()` could expire
        // before the peer closes, which is a timeout, not the truncation this test is about.
        let client = TcpInfoClient::new(Duration::from_millis(500), Duration::from_secs(10));
        let err = client.request(addr, &cmds(&["node"])).await.unwrap_err();
        assert!(matches!(err.kind, InfoErrorKind::Closed { stage: Stage::ReadBody }), "{err}");
        assert!(err.is_unreachable());
    }

    #[tokio::test]
    async fn silent_listener_times_out_within_io_timeout() {
        let (listener, addr) = local_listener().await;
        let holder = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(sock);
        });
        let started = std::time::Instant::now();
        let err = client().request(addr, &cmds(&["statistics"])).await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(err.is_timeout(), "{err}");
        assert!(matches!(err.kind, InfoErrorKind::Timeout { stage: Stage::ReadHeader, .. }));
        assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(600), "{elapsed:?}");
        let text = err.to_string();
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(text.contains("no answer within 200ms"), "{text}");
        holder.abort();
    }

    #[tokio::test]
    async fn connection_refused_names_address() {
        // Bind then drop to get a port nobody listens on.
        let (listener, addr) = local_listener().await;
        drop(listener);
        let err = client().request(addr, &cmds(&["node"])).await.unwrap_err();
        assert!(matches!(err.kind, InfoErrorKind::ConnectRefused), "{err}");
        assert_eq!(err.to_string(), format!("info command `node` on {addr}: connection refused"));
        assert!(err.is_unreachable());
    }

    #[tokio::test]
    async fn invalid_command_does_not_connect() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let err = client().request(addr, &cmds(&["bad\ncommand"])).await.unwrap_err();
        assert!(matches!(err.kind, InfoErrorKind::InvalidArgument(_)), "{err}");
    }

    #[tokio::test]
    async fn against_own_server() {
        let (listener, addr) = local_listener().await;
        let handler: Arc<dyn super::super::server::InfoHandler> = Arc::new(|cmd: &str| match cmd {
            "node" => "BB9020011AC4202".to_string(),
            other => format!("echo:{other}"),
        });
        let server = super::super::server::spawn(listener, handler);
        let c = client();
        for _ in 0..3 {
            let map = c.request(addr, &cmds(&["node", "build", "namespace/test"])).await.unwrap();
            assert_eq!(map["node"], "BB9020011AC4202");
            assert_eq!(map["build"], "echo:build");
            assert_eq!(map["namespace/test"], "echo:namespace/test");
        }
        // With credentials the client logs in first; our server answers 52 (security off).
        let secured = client().with_credentials(Credentials {
            user: "admin".into(),
            credential: "$2a$10$7EqJtq98hPqEX7fNZaFWoOhash".into(),
        });
        let map = secured.request(addr, &cmds(&["node"])).await.unwrap();
        assert_eq!(map["node"], "BB9020011AC4202");
        server.abort();
    }

    #[tokio::test]
    async fn login_refused_is_reported() {
        let (listener, addr) = local_listener().await;
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut header = [0u8; 8];
            sock.read_exact(&mut header).await.unwrap();
            let h = Header::parse(header);
            assert_eq!(h.msg_type, wire::MSG_TYPE_ADMIN);
            let mut body = vec![0u8; h.length as usize];
            sock.read_exact(&mut body).await.unwrap();
            assert_eq!(wire::admin_command(&body).unwrap(), wire::ADMIN_LOGIN);
            sock.write_all(&wire::encode_admin_reply(wire::ADMIN_LOGIN, 65)).await.unwrap();
        });
        let c = client().with_credentials(Credentials { user: "u".into(), credential: "c".into() });
        let err = c.request(addr, &cmds(&["node"])).await.unwrap_err();
        assert!(matches!(err.kind, InfoErrorKind::LoginRefused(65)), "{err}");
        assert!(!format!("{c:?}").contains("credential:"));
    }
}
