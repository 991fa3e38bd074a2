//! A real Prometheus on the local plane (Debian's build, from [`crate::tools::ensure_prometheus`]): started on a
//! loopback port with a caller's config, its HTTP API queried, and the file-discovery targets that stand in for
//! Kubernetes discovery (Debian's Prometheus is built without it).
//!
//! [`pod_targets`] gives each container port of each pod the `__meta_kubernetes_*` labels Prometheus' Kubernetes
//! pod discovery gives it, so a scrape job's own `relabel_configs` choose the targets as they would on a cluster.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running Prometheus; killed on drop.
pub struct Prometheus {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    child: Child,
}

impl Prometheus {
    /// Writes `config` (a Prometheus configuration as JSON, which is YAML) into `dir` and starts Prometheus on a
    /// free loopback port with its data in `dir/data`; returns once it answers `/-/ready`.
    pub async fn start(config: &Value, dir: &Path) -> Result<Prometheus> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Prometheus::start_on(config, dir, format!("127.0.0.1:{port}").parse()?).await
    }

    /// [`Prometheus::start`] on a given address.
    pub async fn start_on(config: &Value, dir: &Path, addr: SocketAddr) -> Result<Prometheus> {
        let bin = crate::tools::ensure_prometheus()?.join("prometheus");
        std::fs::create_dir_all(dir)?;
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, serde_json::to_string_pretty(config)?)?;
        let log = std::fs::File::create(dir.join("prometheus.log"))?;
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let p = Prometheus { addr, dir: dir.to_path_buf(), child };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = http_get(addr, "/-/ready").await {
                return Ok(p);
            }
            if Instant::now() > deadline {
                bail!("Prometheus not ready within 60 s; its log: {}", p.log());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>?<query>`: the `data` of a successful answer, or the error Prometheus gave.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect();
        let target = format!("/api/v1/{path}?{}", query.join("&"));
        let (code, body) = http_get(self.addr, &target).await?;
        let v: Value = serde_json::from_str(&body).with_context(|| format!("{target}: {code} {body}"))?;
        if v["status"] != "success" {
            bail!("{target}: {code} {}: {}", v["errorType"], v["error"]);
        }
        Ok(v["data"].clone())
    }

    /// An instant query's result vector: (labels, value) per series.
    pub async fn query(&self, expr: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>> {
        let data = self.api("query", &[("query", expr)]).await?;
        let mut out = Vec::new();
        for r in data["result"].as_array().into_iter().flatten() {
            let labels = serde_json::from_value(r["metric"].clone())?;
            let value = r["value"][1].as_str().unwrap_or("NaN").parse().unwrap_or(f64::NAN);
            out.push((labels, value));
        }
        Ok(out)
    }

    /// Every metric name Prometheus holds.
    pub async fn metric_names(&self) -> Result<Vec<String>> {
        Ok(serde_json::from_value(self.api("label/__name__/values", &[]).await?)?)
    }

    /// The active (pending or firing) alerts: (labels, state).
    pub async fn alerts(&self) -> Result<Vec<(BTreeMap<String, String>, String)>> {
        let data = self.api("alerts", &[]).await?;
        let mut out = Vec::new();
        for a in data["alerts"].as_array().into_iter().flatten() {
            out.push((serde_json::from_value(a["labels"].clone())?, a["state"].as_str().unwrap_or_default().into()));
        }
        Ok(out)
    }

    /// The targets of the active scrape pools: (labels, health).
    pub async fn targets(&self) -> Result<Vec<(BTreeMap<String, String>, String)>> {
        let data = self.api("targets", &[("state", "active")]).await?;
        let mut out = Vec::new();
        for t in data["activeTargets"].as_array().into_iter().flatten() {
            out.push((serde_json::from_value(t["labels"].clone())?, t["health"].as_str().unwrap_or_default().into()));
        }
        Ok(out)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus' label-name form of a Kubernetes label key (`app.kubernetes.io/name` -> `app_kubernetes_io_name`).
pub fn label_name(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// File-discovery target groups for `pods`, labelled as Kubernetes pod discovery labels them: one target
/// `<podIP>:<port>` per declared container port of every pod that has an IP.
pub fn pod_targets(pods: &[Pod]) -> Value {
    let mut groups = Vec::new();
    for pod in pods {
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else { continue };
        let Some(spec) = &pod.spec else { continue };
        for c in &spec.containers {
            for p in c.ports.iter().flatten() {
                let mut labels = BTreeMap::from([
                    ("__meta_kubernetes_namespace".to_string(), pod.namespace().unwrap_or_default()),
                    ("__meta_kubernetes_pod_name".to_string(), pod.name_any()),
                    ("__meta_kubernetes_pod_ip".to_string(), ip.clone()),
                    ("__meta_kubernetes_pod_container_name".to_string(), c.name.clone()),
                    ("__meta_kubernetes_pod_container_port_name".to_string(), p.name.clone().unwrap_or_default()),
                    ("__meta_kubernetes_pod_container_port_number".to_string(), p.container_port.to_string()),
                ]);
                for (k, v) in pod.labels() {
                    labels.insert(format!("__meta_kubernetes_pod_label_{}", label_name(k)), v.clone());
                    labels.insert(format!("__meta_kubernetes_pod_labelpresent_{}", label_name(k)), "true".into());
                }
                groups.push(json!({"targets": [format!("{ip}:{}", p.container_port)], "labels": labels}));
            }
        }
    }
    Value::Array(groups)
}

/// Writes a file-discovery file atomically (Prometheus may read it at any moment).
pub fn write_targets(path: &Path, groups: &Value) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(groups)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.1 GET (Connection: close): status code and body.
pub async fn http_get(addr: SocketAddr, target: &str) -> Result<(u16, String)> {
    let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await??;
    let req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header end")?;
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("no HTTP status")?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok((code, if chunked { dechunk(body) } else { body.to_string() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_targets_carry_the_kubernetes_discovery_labels() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "c-1-0", "namespace": "ns", "labels": {"app": "aerospike-cluster", "aerospike.com/rack-id": "1"}},
            "spec": {"containers": [{"name": "exporter", "ports": [{"name": "exporter", "containerPort": 9145}]}]},
            "status": {"podIP": "127.1.0.9"},
        }))
        .unwrap();
        let groups = pod_targets(&[pod]);
        assert_eq!(groups[0]["targets"], json!(["127.1.0.9:9145"]));
        let labels = &groups[0]["labels"];
        assert_eq!(labels["__meta_kubernetes_pod_label_app"], "aerospike-cluster");
        assert_eq!(labels["__meta_kubernetes_pod_label_aerospike_com_rack_id"], "1");
        assert_eq!(labels["__meta_kubernetes_pod_container_port_name"], "exporter");
        assert_eq!(labels["__meta_kubernetes_namespace"], "ns");
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "hello world");
        assert_eq!(percent_encode(r#"up{job="a"}"#), "up%7Bjob%3D%22a%22%7D");
    }
}
