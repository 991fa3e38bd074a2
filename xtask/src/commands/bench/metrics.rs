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
    /// `controller_runtime_reconcile_time_seconds`: cumulative (upper bound, count), `+Inf` last.
    pub(super) reconcile_buckets: Vec<(f64, f64)>,
    /// Clusters this process has reconciled to a phase (`aerospike_ako_aerospikecluster_phase` is set at the end of
    /// every reconcile that gets to the status, so a fresh process has a series only for those it reconciled).
    pub(super) clusters_with_phase: BTreeSet<(String, String)>,
}

/// Pure: bucket counts `after` less `before` (same bounds; a bound missing from `before` counts 0 there).
pub(super) fn bucket_delta(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|(le, n)| (*le, n - before.iter().find(|(b, _)| b == le).map(|(_, m)| *m).unwrap_or(0.0)))
        .collect()
}

/// Pure: the `q`-quantile of a cumulative histogram, as Prometheus' `histogram_quantile` computes it: the rank
/// `q * count` is found in the first bucket whose cumulative count reaches it and placed by linear interpolation
/// between that bucket's lower and upper bound (the lowest bucket's lower bound is 0); a rank in the `+Inf`
/// bucket answers the highest finite bound. NaN without observations.
pub(super) fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let mut b: Vec<(f64, f64)> = buckets.to_vec();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    let Some(&(last_le, total)) = b.last() else { return f64::NAN };
    if !last_le.is_infinite() || total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let rank = q * total;
    let i = b.iter().position(|(_, n)| *n >= rank).unwrap_or(b.len() - 1);
    if i == b.len() - 1 {
        return if b.len() >= 2 { b[b.len() - 2].0 } else { f64::NAN };
    }
    let (upper, count) = b[i];
    let (lower, below) = if i == 0 { (0.0, 0.0) } else { b[i - 1] };
    if count == below {
        return upper;
    }
    lower + (upper - lower) * (rank - below) / (count - below)
}

pub(super) async fn operator_metrics(addr: SocketAddr) -> Result<OperatorMetrics> {
    let (code, body) = http_get(addr, "/metrics").await.context("GET the operator's /metrics")?;
    if code != 200 {
        bail!("the operator's /metrics answered {code}");
    }
    let mut m = OperatorMetrics {
        reconciles: 0.0,
        failures: 0.0,
        reconcile_buckets: Vec::new(),
        clusters_with_phase: BTreeSet::new(),
    };
    let mut seen = false;
    let mut buckets: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (name, labels, value) in prometheus_samples(&body) {
        match name {
            "controller_runtime_reconcile_total" => {
                m.reconciles += value;
                seen = true;
            }
            "aerospike_ako_reconcile_failures_total" => m.failures += value,
            "controller_runtime_reconcile_time_seconds_bucket" => {
                let le = labels.get("le").cloned().unwrap_or_default();
                let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
                buckets.entry(le).or_insert((bound, 0.0)).1 += value;
            }
            "aerospike_ako_aerospikecluster_phase" if value == 1.0 => {
                let l = |k: &str| labels.get(k).cloned().unwrap_or_default();
                m.clusters_with_phase.insert((l("cluster_namespace"), l("cluster_name")));
            }
            _ => {}
        }
    }
    m.reconcile_buckets = buckets.into_values().filter(|(b, _)| !b.is_nan()).collect();
    m.reconcile_buckets.sort_by(|x, y| x.0.total_cmp(&y.0));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 reconciles: 4 up to 5 ms, 4 more up to 10 ms, 1 up to 25 ms, 1 above the last bound.
    const BUCKETS: [(f64, f64); 4] = [(0.005, 4.0), (0.01, 8.0), (0.025, 9.0), (f64::INFINITY, 10.0)];

    #[test]
    fn histogram_quantile_interpolates_within_the_bucket_like_prometheus() {
        // p50: rank 5, in (5 ms, 10 ms] holding ranks 5..8: 5 + 5 * (5 - 4) / (8 - 4) = 6.25 ms.
        assert!((histogram_quantile(0.5, &BUCKETS) - 0.00625).abs() < 1e-12);
        // p20: rank 2, in the first bucket, lower bound 0: 5 * 2 / 4 = 2.5 ms.
        assert!((histogram_quantile(0.2, &BUCKETS) - 0.0025).abs() < 1e-12);
        // p85: rank 8.5, in (10 ms, 25 ms] holding 8..9: 10 + 15 * 0.5 = 17.5 ms.
        assert!((histogram_quantile(0.85, &BUCKETS) - 0.0175).abs() < 1e-12);
        // p99: rank 9.9, in +Inf: the highest finite bound, 25 ms.
        assert_eq!(histogram_quantile(0.99, &BUCKETS), 0.025);
        // Order of the input does not matter.
        let mut shuffled = BUCKETS.to_vec();
        shuffled.reverse();
        assert!((histogram_quantile(0.5, &shuffled) - 0.00625).abs() < 1e-12);
    }

    #[test]
    fn histogram_quantile_of_nothing_is_nan() {
        assert!(histogram_quantile(0.5, &[]).is_nan());
        assert!(histogram_quantile(0.5, &[(0.005, 0.0), (f64::INFINITY, 0.0)]).is_nan());
        // No +Inf bucket: not a Prometheus histogram.
        assert!(histogram_quantile(0.5, &[(0.005, 3.0)]).is_nan());
    }

    #[test]
    fn bucket_delta_subtracts_bound_by_bound() {
        let before = [(0.005, 1.0), (0.01, 2.0), (f64::INFINITY, 2.0)];
        let after = [(0.005, 5.0), (0.01, 10.0), (f64::INFINITY, 12.0)];
        assert_eq!(bucket_delta(&after, &before), vec![(0.005, 4.0), (0.01, 8.0), (f64::INFINITY, 10.0)]);
        assert_eq!(bucket_delta(&after, &[]), after.to_vec());
    }

    #[test]
    fn operator_samples_parse_histogram_buckets_and_phase_labels() {
        let text = "# TYPE controller_runtime_reconcile_time_seconds histogram\n\
            controller_runtime_reconcile_time_seconds_bucket{controller=\"aerospikecluster\",le=\"0.005\"} 3\n\
            controller_runtime_reconcile_time_seconds_bucket{le=\"+Inf\",controller=\"aerospikecluster\"} 4\n\
            aerospike_ako_aerospikecluster_phase{cluster_name=\"a\",cluster_namespace=\"n\",phase=\"Completed\"} 1\n";
        let s = prometheus_samples(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].1.get("le").map(String::as_str), Some("+Inf"));
        assert_eq!(s[2].1.get("cluster_namespace").map(String::as_str), Some("n"));
    }
}
