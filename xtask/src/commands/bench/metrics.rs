//! Metrics: the apiserver's request counts by flow schema and verb, and the operator's own metrics.
use super::*;

/// `apiserver_request_total` summed by (verb, group, resource, subresource).
#[derive(Clone, Debug, Default)]
pub(super) struct RequestCounts(BTreeMap<(String, String, String, String), f64>);

pub(super) struct Classes {
    pub(super) reads: f64,
    pub(super) writes: f64,
    pub(super) watches: f64,
}

impl RequestCounts {
    pub(super) fn operator_resources(self) -> RequestCounts {
        RequestCounts(
            self.0
                .into_iter()
                .filter(|((_, g, r, _), _)| OPERATOR_RESOURCES.iter().any(|(og, or)| og == g && or == r))
                .filter(|(_, v)| *v != 0.0)
                .collect(),
        )
    }

    pub(super) fn classes(&self) -> Classes {
        let mut c = Classes { reads: 0.0, writes: 0.0, watches: 0.0 };
        for ((verb, ..), v) in &self.0 {
            match verb.as_str() {
                "GET" | "LIST" => c.reads += v,
                "WATCH" | "WATCHLIST" => c.watches += v,
                _ => c.writes += v,
            }
        }
        c
    }

    /// Status writes to AerospikeClusters (server-side apply, PATCH or PUT of the status subresource).
    pub(super) fn cluster_status_writes(&self) -> f64 {
        self.0
            .iter()
            .filter(|((verb, g, r, sub), _)| {
                matches!(verb.as_str(), "APPLY" | "PATCH" | "PUT")
                    && g == "asdb.aerospike.com"
                    && r == "aerospikeclusters"
                    && sub == "status"
            })
            .map(|(_, v)| *v)
            .sum()
    }

    pub(super) fn by_verb_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for ((verb, group, resource, sub), v) in &self.0 {
            let res = if group.is_empty() { resource.clone() } else { format!("{resource}.{group}") };
            let key = if sub.is_empty() { format!("{verb} {res}") } else { format!("{verb} {res}/{sub}") };
            m.insert(key, json!(v));
        }
        Value::Object(m)
    }
}

/// What the bench reads from the apiserver's /metrics.
pub(super) struct ApiMetrics {
    pub(super) requests: RequestCounts,
    /// `apiserver_flowcontrol_dispatched_requests_total` by flow schema.
    pub(super) flows: BTreeMap<String, f64>,
}

impl ApiMetrics {
    pub(super) async fn fetch(client: &Client) -> Result<ApiMetrics> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        let text = tokio::time::timeout(Duration::from_secs(30), client.request_text(request))
            .await
            .context("GET /metrics of the apiserver timed out")?
            .context("GET /metrics of the apiserver")?;
        let mut requests = RequestCounts::default();
        let mut flows: BTreeMap<String, f64> = BTreeMap::new();
        for (name, labels, value) in prometheus_samples(&text) {
            match name {
                "apiserver_request_total" => {
                    let l = |k: &str| labels.get(k).cloned().unwrap_or_default();
                    if l("resource").is_empty() {
                        continue; // non-resource URLs (/metrics, /readyz, ...)
                    }
                    *requests.0.entry((l("verb"), l("group"), l("resource"), l("subresource"))).or_default() += value;
                }
                "apiserver_flowcontrol_dispatched_requests_total" => {
                    *flows.entry(labels.get("flow_schema").cloned().unwrap_or_default()).or_default() += value;
                }
                _ => {}
            }
        }
        if requests.0.is_empty() {
            bail!("the apiserver's /metrics has no apiserver_request_total");
        }
        Ok(ApiMetrics { requests, flows })
    }

    pub(super) fn flow(&self, schema: &str) -> f64 {
        self.flows.get(schema).copied().unwrap_or(0.0)
    }

    /// The operator's requests so far, by kind (from its flow schemas).
    pub(super) fn operator(&self) -> OpRequests {
        OpRequests {
            reads: self.flow(FLOW_READS),
            watches: self.flow(FLOW_WATCHES),
            writes: self.flow(FLOW_WRITES),
            other: self.flow(SA_FLOW_SCHEMA),
        }
    }

    pub(super) fn delta(&self, before: &ApiMetrics) -> RequestCounts {
        RequestCounts(
            self.requests
                .0
                .iter()
                .map(|(k, v)| (k.clone(), v - before.requests.0.get(k).copied().unwrap_or(0.0)))
                .collect(),
        )
    }
}

/// Requests of the operator's ServiceAccount, by flow schema.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct OpRequests {
    pub(super) reads: f64,
    pub(super) watches: f64,
    pub(super) writes: f64,
    /// In the stock `service-accounts` schema: none of ours matched (non-resource URLs, other verbs).
    pub(super) other: f64,
}

impl OpRequests {
    pub(super) fn minus(&self, before: &OpRequests) -> OpRequests {
        OpRequests {
            reads: self.reads - before.reads,
            watches: self.watches - before.watches,
            writes: self.writes - before.writes,
            other: self.other - before.other,
        }
    }

    pub(super) fn total(&self) -> f64 {
        self.reads + self.watches + self.writes + self.other
    }

    pub(super) fn json(&self) -> Value {
        json!({"reads": round(self.reads, 1), "watches": round(self.watches, 1), "writes": round(self.writes, 1),
               "other": round(self.other, 1), "total": round(self.total(), 1)})
    }
}

pub(super) struct OperatorMetrics {
    pub(super) reconciles: f64,
    pub(super) failures: f64,
}

pub(super) async fn operator_metrics(addr: SocketAddr) -> Result<OperatorMetrics> {
    let (code, body) = http_get(addr, "/metrics").await.context("GET the operator's /metrics")?;
    if code != 200 {
        bail!("the operator's /metrics answered {code}");
    }
    let mut m = OperatorMetrics { reconciles: 0.0, failures: 0.0 };
    let mut seen = false;
    for (name, _, value) in prometheus_samples(&body) {
        match name {
            "controller_runtime_reconcile_total" => {
                m.reconciles += value;
                seen = true;
            }
            "aerospike_ako_reconcile_failures_total" => m.failures += value,
            _ => {}
        }
    }
    if !seen {
        bail!("the operator's /metrics has no controller_runtime_reconcile_total");
    }
    Ok(m)
}

/// Samples of the Prometheus / OpenMetrics text format: (name, labels, value).
pub(super) fn prometheus_samples(text: &str) -> Vec<(&str, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
        let name = &line[..name_end];
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if rest.starts_with('{') {
            // key="value" pairs; values may hold escaped quotes, commas and braces.
            let bytes: Vec<char> = rest.chars().collect();
            let mut i = 1;
            let mut consumed = None;
            while i < bytes.len() {
                while i < bytes.len() && (bytes[i] == ',' || bytes[i].is_whitespace()) {
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == '}' {
                    consumed = Some(i + 1);
                    break;
                }
                let key_start = i;
                while i < bytes.len() && bytes[i] != '=' {
                    i += 1;
                }
                let key: String = bytes[key_start..i].iter().collect::<String>().trim().to_string();
                i += 1; // '='
                if i >= bytes.len() || bytes[i] != '"' {
                    break;
                }
                i += 1;
                let mut value = String::new();
                while i < bytes.len() && bytes[i] != '"' {
                    if bytes[i] == '\\' && i + 1 < bytes.len() {
                        i += 1;
                        value.push(match bytes[i] {
                            'n' => '\n',
                            c => c,
                        });
                    } else {
                        value.push(bytes[i]);
                    }
                    i += 1;
                }
                i += 1; // closing quote
                labels.insert(key, value);
            }
            let Some(end) = consumed else { continue };
            let byte_end: usize = bytes[..end].iter().map(|c| c.len_utf8()).sum();
            rest = &rest[byte_end..];
        }
        let Some(value) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        out.push((name, labels, value));
    }
    out
}

/// A plain HTTP/1.0 GET on loopback (the operator's endpoints are plain HTTP): (status, body).
pub(super) async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), exchange).await.context("timed out")??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("no HTTP header in the answer"))?;
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| anyhow!("bad status line"))?;
    Ok((code, body.to_string()))
}
