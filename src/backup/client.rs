//! A typed async client for exactly the Aerospike Backup Service (ABS) REST calls the controllers make.
//!
//! Every call has a deadline; connection errors and 5xx answers are retried a few times with a short doubling
//! backoff (the reconcile that made the call is not held up for long: when the service stays down the error goes
//! back to the reconcile, which requeues). Errors name the call and, for an HTTP answer, its status.
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;
use tokio::net::TcpStream;

use crate::api::v1beta1::{BackupType, RestoreType};

/// Attempts of a retried call (the first and two retries).
const ATTEMPTS: u32 = 3;
/// Largest answer read (a config or a listing).
const MAX_BODY: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AbsError {
    #[error("backup service {call}: cannot connect to {addr}: {source}")]
    Connect { call: &'static str, addr: String, source: std::io::Error },
    #[error("backup service {call}: no answer within {0:?}", timeout)]
    Timeout { call: &'static str, timeout: Duration },
    #[error("backup service {call}: HTTP {status}: {body}")]
    Status { call: &'static str, status: u16, body: String },
    #[error("backup service {call}: {message}")]
    Protocol { call: &'static str, message: String },
}

impl AbsError {
    /// The HTTP status of an answer that was not a success.
    pub fn status(&self) -> Option<u16> {
        match self {
            AbsError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth another attempt: the service was unreachable or said it is unavailable.
    fn retryable(&self) -> bool {
        match self {
            AbsError::Connect { .. } => true,
            AbsError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Where a backup service listens and how patiently to talk to it.
#[derive(Clone, Debug)]
pub struct AbsClient {
    pub addr: SocketAddr,
    /// ABS's context path (`/` by default): calls are `<context>/v1/...`.
    pub context_path: String,
    /// Deadline of one attempt (connect, send, read the answer).
    pub timeout: Duration,
    /// Wait before the first retry (doubled for the next).
    pub backoff: Duration,
}

impl AbsClient {
    pub fn new(addr: SocketAddr, context_path: &str) -> AbsClient {
        AbsClient {
            addr,
            context_path: context_path.trim_end_matches('/').to_string(),
            timeout: Duration::from_secs(10),
            backoff: Duration::from_millis(200),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1{path}", self.context_path)
    }

    async fn once(
        &self,
        call: &'static str,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes), AbsError> {
        let attempt = async {
            let stream = TcpStream::connect(self.addr).await.map_err(|source| AbsError::Connect {
                call,
                addr: self.addr.to_string(),
                source,
            })?;
            let io = hyper_util::rt::TokioIo::new(stream);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| AbsError::Protocol { call, message: e.to_string() })?;
            let driver = tokio::spawn(conn);
            let bytes = body.map(|b| Bytes::from(serde_json::to_vec(b).unwrap_or_default())).unwrap_or_default();
            let mut req = Request::builder()
                .method(method.clone())
                .uri(self.url(path))
                .header(hyper::header::HOST, self.addr.to_string())
                .header(hyper::header::ACCEPT, "application/json");
            if body.is_some() {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            let req = req.body(Full::new(bytes)).map_err(|e| AbsError::Protocol { call, message: e.to_string() })?;
            let resp = sender.send_request(req).await.map_err(|e| AbsError::Connect {
                call,
                addr: self.addr.to_string(),
                source: std::io::Error::other(e),
            })?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| AbsError::Protocol { call, message: format!("reading the answer: {e}") })?
                .to_bytes();
            driver.abort();
            Ok((status, body))
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(AbsError::Timeout { call, timeout: self.timeout }),
        }
    }

    /// One call with retries; `ok` lists the statuses that are success for it.
    async fn call(
        &self,
        call: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<Bytes, AbsError> {
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            let result = match self.once(call, &method, path, body).await {
                Ok((status, bytes)) if ok.contains(&status.as_u16()) => return Ok(bytes),
                Ok((status, bytes)) => Err(AbsError::Status {
                    call,
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).trim().to_string(),
                }),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.retryable() && attempt < ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "backup service call retried");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn json(call: &'static str, bytes: &[u8]) -> Result<Value, AbsError> {
        serde_json::from_slice(bytes).map_err(|e| AbsError::Protocol { call, message: format!("not JSON: {e}") })
    }

    /// `GET /v1/config`: the configuration the service runs.
    pub async fn config(&self) -> Result<Value, AbsError> {
        let b = self.call("get config", Method::GET, "/config", None, &[200]).await?;
        Self::json("get config", &b)
    }

    /// `POST /v1/config/apply`: the service re-reads its configuration file and runs it.
    pub async fn apply_config(&self) -> Result<(), AbsError> {
        self.call("apply config", Method::POST, "/config/apply", None, &[200, 202, 204]).await.map(|_| ())
    }

    /// `POST /v1/backups/{full|incremental}/{routine}?delay=<ms>` (ABS 3.5 and later): starts an on-demand backup.
    /// Not retried after a timeout (the service may have started it); a 5xx or refused connection did not.
    pub async fn start_backup(&self, routine: &str, kind: BackupType, delay: Duration) -> Result<(), AbsError> {
        let kind = match kind {
            BackupType::Full => "full",
            BackupType::Incremental => "incremental",
        };
        let path = format!("/backups/{kind}/{}?delay={}", encode(routine), delay.as_millis());
        self.call("start on-demand backup", Method::POST, &path, None, &[202]).await.map(|_| ())
    }

    /// `POST /v1/backups/schedule/{routine}?delay=<ms>` (services before 3.5): schedules a full backup.
    pub async fn schedule_backup(&self, routine: &str, delay: Duration) -> Result<(), AbsError> {
        let path = format!("/backups/schedule/{}?delay={}", encode(routine), delay.as_millis());
        self.call("schedule backup", Method::POST, &path, None, &[202]).await.map(|_| ())
    }

    /// `GET /v1/backups/{full|incremental}/{routine}`: the routine's backups.
    pub async fn backups(&self, routine: &str, kind: BackupType) -> Result<Vec<Value>, AbsError> {
        let kind = match kind {
            BackupType::Full => "full",
            BackupType::Incremental => "incremental",
        };
        let b = self
            .call("list backups", Method::GET, &format!("/backups/{kind}/{}", encode(routine)), None, &[200])
            .await?;
        match Self::json("list backups", &b)? {
            Value::Array(items) => Ok(items),
            other => Err(AbsError::Protocol { call: "list backups", message: format!("not a list: {other}") }),
        }
    }

    /// `POST /v1/restore/{full|incremental|timestamp}`: starts a restore job; its id.
    pub async fn start_restore(&self, kind: RestoreType, request: &Value) -> Result<i64, AbsError> {
        let b = self
            .call("start restore", Method::POST, &format!("/restore/{}", kind.path()), Some(request), &[200, 202])
            .await?;
        let text = String::from_utf8_lossy(&b);
        // ABS answers the bare job id; some versions wrap it.
        let id = text.trim().parse::<i64>().ok().or_else(|| {
            let v: Value = serde_json::from_str(&text).ok()?;
            v.as_i64().or_else(|| v.get("job-id").or_else(|| v.get("jobId")).and_then(Value::as_i64))
        });
        id.ok_or_else(|| AbsError::Protocol { call: "start restore", message: format!("no job id in {text:?}") })
    }

    /// `GET /v1/restore/status/{jobId}`: the job's state (`status`: Running, Done, Failed, Cancelled) and result.
    pub async fn restore_status(&self, job: i64) -> Result<Value, AbsError> {
        let b = self.call("restore status", Method::GET, &format!("/restore/status/{job}"), None, &[200]).await?;
        Self::json("restore status", &b)
    }

    /// `POST /v1/restore/cancel/{jobId}`.
    pub async fn cancel_restore(&self, job: i64) -> Result<(), AbsError> {
        self.call("cancel restore", Method::POST, &format!("/restore/cancel/{job}"), None, &[200, 202, 204])
            .await
            .map(|_| ())
    }
}

/// Percent-encodes a path segment (routine names are DNS-like, but keep any other byte safe).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers the n-th connection with `answers[n]` (status, body) and records request lines.
    async fn server(answers: Vec<(u16, &'static str)>) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut lines = Vec::new();
            for (status, body) in answers {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                lines.push(String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_string());
                let reply =
                    format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                s.write_all(reply.as_bytes()).await.unwrap();
            }
            lines
        });
        (addr, task)
    }

    fn client(addr: SocketAddr) -> AbsClient {
        let mut c = AbsClient::new(addr, "/");
        c.backoff = Duration::from_millis(1);
        c
    }

    #[tokio::test]
    async fn a_5xx_is_retried_and_then_succeeds() {
        let (addr, lines) = server(vec![(503, "busy"), (202, "")]).await;
        client(addr).start_backup("ns-b-daily", BackupType::Incremental, Duration::from_secs(2)).await.unwrap();
        let lines = lines.await.unwrap();
        assert_eq!(lines, vec!["POST /v1/backups/incremental/ns-b-daily?delay=2000 HTTP/1.1"; 2]);
    }

    #[tokio::test]
    async fn errors_name_the_call_and_the_status() {
        let (addr, _lines) = server(vec![(503, "a"), (503, "b"), (503, "still down")]).await;
        let e = client(addr).config().await.unwrap_err();
        assert_eq!(e.status(), Some(503));
        assert_eq!(e.to_string(), "backup service get config: HTTP 503: still down");
        let (addr, _lines) = server(vec![(400, "bad routine")]).await;
        let e = client(addr).start_restore(RestoreType::Full, &serde_json::json!({})).await.unwrap_err();
        assert_eq!(e.to_string(), "backup service start restore: HTTP 400: bad routine");
    }

    #[tokio::test]
    async fn a_hung_call_times_out_with_its_name() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let (_s, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await
        });
        let mut c = client(addr);
        c.timeout = Duration::from_millis(100);
        let e = c.restore_status(7).await.unwrap_err();
        assert!(matches!(e, AbsError::Timeout { call: "restore status", .. }), "{e}");
    }

    #[tokio::test]
    async fn restore_answers_its_job_id() {
        let (addr, lines) = server(vec![(202, "42")]).await;
        let id = client(addr).start_restore(RestoreType::Timestamp, &serde_json::json!({"time": 1})).await.unwrap();
        assert_eq!(id, 42);
        assert_eq!(lines.await.unwrap(), vec!["POST /v1/restore/timestamp HTTP/1.1"]);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode("a-b.c"), "a-b.c");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
