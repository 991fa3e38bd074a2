//! The exporter sidecar: a pod with a container port named `exporter` (as users add the official
//! aerospike-prometheus-exporter under `spec.podSpec.sidecars`) gets an HTTP endpoint on `<podIP>:<that port>`
//! serving `/metrics` the way the exporter does: it asks its node the info commands the exporter reads
//! (`statistics`, `namespaces`, `namespace/<ns>`, `sets`) and turns every numeric or boolean value into a gauge
//! named `aerospike_node_stats_<stat>`, `aerospike_namespace_<stat>` or `aerospike_sets_<stat>` (non-alphanumerics
//! as `_`, true/false as 1/0), labelled `cluster_name`, `service` (and `ns`, `set`), plus the labels of the
//! sidecar's `METRIC_LABELS`. No records are simulated, so `sets` is empty.
//! `aerospike_node_up` is 1 while the node answers and 0 while it does not (a `Refuse` or `Hang` fault: the
//! exporter keeps running beside a stopped server and reports it down, with no other metric).
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::ResourceExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::model::{Inner, PodKey, State};

/// The port name the exporter sidecar declares (the PodMonitor selects it).
pub const EXPORTER_PORT_NAME: &str = "exporter";

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExporterSpec {
    pub(crate) port: u16,
    /// From `METRIC_LABELS` (`k="v",k2="v2"`), in order.
    pub(crate) labels: Vec<(String, String)>,
}

/// The exporter of `pod`, if one of its containers declares a port named [`EXPORTER_PORT_NAME`].
pub(crate) fn exporter_spec(pod: &Pod) -> Option<ExporterSpec> {
    let spec = pod.spec.as_ref()?;
    let (container, port) = spec.containers.iter().find_map(|c| {
        let port = c.ports.as_ref()?.iter().find(|p| p.name.as_deref() == Some(EXPORTER_PORT_NAME))?;
        Some((c, u16::try_from(port.container_port).ok()?))
    })?;
    let env = resolved_env(pod, container);
    let labels = env.get("METRIC_LABELS").map(|v| parse_metric_labels(v)).unwrap_or_default();
    Some(ExporterSpec { port, labels })
}

/// The container's environment as the kubelet gives it: literal values with `$(VAR)` references to earlier
/// variables expanded, and the Downward API's pod fields (`metadata.name`, `metadata.namespace`,
/// `metadata.labels['k']`, `metadata.annotations['k']`, `status.podIP`). Secrets are not read (left out).
fn resolved_env(pod: &Pod, container: &Container) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in container.env.iter().flatten() {
        let value = if let Some(v) = &var.value {
            Some(expand(v, &env))
        } else {
            var.value_from.as_ref().and_then(|f| f.field_ref.as_ref()).and_then(|f| pod_field(pod, &f.field_path))
        };
        if let Some(value) = value {
            env.insert(var.name.clone(), value);
        }
    }
    env
}

fn pod_field(pod: &Pod, path: &str) -> Option<String> {
    let keyed = |prefix: &str, map: &BTreeMap<String, String>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.get(key).cloned().unwrap_or_default())
    };
    match path {
        "metadata.name" => Some(pod.name_any()),
        "metadata.namespace" => pod.namespace(),
        "status.podIP" => pod.status.as_ref()?.pod_ip.clone(),
        _ => keyed("metadata.labels['", pod.labels()).or_else(|| keyed("metadata.annotations['", pod.annotations())),
    }
}

/// `$(NAME)` of a defined variable is replaced by its value; `$$` escapes; anything else stays as written.
fn expand(value: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')'))
            && let Some(v) = env.get(name)
        {
            out.push_str(v);
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `k="v",k2=v2` (the exporter's `METRIC_LABELS`), quotes optional.
pub(crate) fn parse_metric_labels(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let (k, v) = (k.trim(), v.trim().trim_matches(|c| c == '"' || c == '\''));
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// A Prometheus metric name from an Aerospike stat name.
fn sanitize(stat: &str) -> String {
    stat.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn number(value: &str) -> Option<f64> {
    match value {
        "true" => Some(1.0),
        "false" => Some(0.0),
        v => v.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn label_text(labels: &[(String, String)]) -> String {
    labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect::<Vec<_>>().join(",")
}

/// Every `k=v` of an info answer (`;`-separated) that is a number or a boolean, as gauges named `prefix + k`.
fn push_stats(out: &mut String, seen: &mut Vec<String>, prefix: &str, answer: &str, labels: &[(String, String)]) {
    if answer.starts_with("ERROR") {
        return;
    }
    for (k, v) in answer.split(';').filter_map(|kv| kv.split_once('=')) {
        let Some(value) = number(v) else { continue };
        let name = format!("{prefix}{}", sanitize(k));
        if !seen.contains(&name) {
            let _ = writeln!(out, "# TYPE {name} gauge");
            seen.push(name.clone());
        }
        let _ = writeln!(out, "{name}{{{}}} {value}", label_text(labels));
    }
}

impl State {
    /// What the exporter beside node `key` (incarnation `uid`) serves now.
    pub(crate) fn exporter_metrics(&mut self, key: &PodKey, uid: &str, extra: &[(String, String)]) -> String {
        let Some(node) = self.nodes.get(key).filter(|n| n.uid == uid) else { return String::new() };
        let mut labels = vec![
            ("cluster_name".to_string(), node.cluster.1.clone()),
            ("service".to_string(), format!("{}:{}", node.ip, node.port)),
        ];
        labels.extend(extra.iter().cloned());
        let up = self.fault_of(key).no_answer.is_none();
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE aerospike_node_up gauge");
        let _ = writeln!(out, "aerospike_node_up{{{}}} {}", label_text(&labels), u8::from(up));
        if !up {
            return out;
        }
        let mut seen = Vec::new();
        let statistics = self.answer(key, uid, "statistics", Duration::ZERO);
        push_stats(&mut out, &mut seen, "aerospike_node_stats_", &statistics, &labels);
        let namespaces = self.answer(key, uid, "namespaces", Duration::ZERO);
        for ns in namespaces.split(';').filter(|n| !n.is_empty() && !n.starts_with("ERROR")) {
            let answer = self.answer(key, uid, &format!("namespace/{ns}"), Duration::ZERO);
            let mut ns_labels = labels.clone();
            ns_labels.push(("ns".to_string(), ns.to_string()));
            push_stats(&mut out, &mut seen, "aerospike_namespace_", &answer, &ns_labels);
        }
        let sets = self.answer(key, uid, "sets", Duration::ZERO);
        push_sets(&mut out, &mut seen, &sets, &labels);
        out
    }
}

/// The `sets` answer (`ns=..:set=..:objects=..:...;` per set) as `aerospike_sets_<stat>` labelled `ns` and `set`.
fn push_sets(out: &mut String, seen: &mut Vec<String>, answer: &str, labels: &[(String, String)]) {
    if answer.starts_with("ERROR") {
        return;
    }
    for entry in answer.split(';').filter(|e| !e.is_empty()) {
        let fields: Vec<(&str, &str)> = entry.split(':').filter_map(|kv| kv.split_once('=')).collect();
        let find = |k: &str| fields.iter().find(|(f, _)| *f == k).map(|(_, v)| v.to_string());
        let (Some(ns), Some(set)) = (find("ns").or_else(|| find("ns_name")), find("set").or_else(|| find("set_name")))
        else {
            continue;
        };
        let mut set_labels = labels.to_vec();
        set_labels.push(("ns".to_string(), ns));
        set_labels.push(("set".to_string(), set));
        let stats: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        push_stats(out, seen, "aerospike_sets_", &stats.join(";"), &set_labels);
    }
}

/// Serves the exporter of node `key` on `ip:spec.port` until aborted (with the node's task).
pub(crate) async fn serve(inner: Arc<Inner>, key: PodKey, uid: String, ip: IpAddr, spec: ExporterSpec) {
    let addr = SocketAddr::new(ip, spec.port);
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            // E.g. the previous holder of a recycled IP has not closed its socket yet.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let spec = Arc::new(spec);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((socket, _)) = accepted {
                    connections.spawn(answer(socket, inner.clone(), key.clone(), uid.clone(), spec.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One HTTP/1.1 request, answered and closed.
async fn answer(mut socket: TcpStream, inner: Arc<Inner>, key: PodKey, uid: String, spec: Arc<ExporterSpec>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    };
    if !matches!(tokio::time::timeout(Duration::from_secs(10), read).await, Ok(true)) {
        return;
    }
    let request = String::from_utf8_lossy(&buf);
    let path = request.split_whitespace().nth(1).unwrap_or_default();
    let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        ("200 OK", inner.lock().exporter_metrics(&key, &uid, &spec.labels))
    } else {
        ("404 Not Found", "not found\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body.as_bytes()).await;
    let _ = socket.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metric_labels_and_downward_api_env_resolve_as_the_kubelet_does() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "c-2-0", "namespace": "aerospike", "labels": {"aerospike.com/rack-id": "2"}},
            "spec": {"containers": [
                {"name": "aerospike-server", "image": "x", "ports": [{"name": "service", "containerPort": 3000}]},
                {"name": "exporter", "image": "y", "ports": [{"name": "exporter", "containerPort": 9145}], "env": [
                    {"name": "RACK", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['aerospike.com/rack-id']"}}},
                    {"name": "METRIC_LABELS", "value": "cluster=\"c\",rack=\"$(RACK)\",cost=$$5,$(UNDEFINED)=x"},
                ]},
            ]},
        }))
        .unwrap();
        let spec = exporter_spec(&pod).unwrap();
        assert_eq!(spec.port, 9145);
        let labels: Vec<(&str, &str)> = spec.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(labels, [("cluster", "c"), ("rack", "2"), ("cost", "$5"), ("$(UNDEFINED)", "x")]);
    }

    #[test]
    fn a_pod_without_an_exporter_port_has_no_exporter() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "c-1-0"},
            "spec": {"containers": [{"name": "aerospike-server", "ports": [{"name": "service", "containerPort": 3000}]}]},
        }))
        .unwrap();
        assert_eq!(exporter_spec(&pod), None);
    }

    #[test]
    fn sets_become_gauges_labelled_by_namespace_and_set() {
        let mut out = String::new();
        let labels = vec![("cluster_name".to_string(), "c".to_string())];
        push_sets(&mut out, &mut Vec::new(), "ns=test:set=demo:objects=2:stop-writes-count=0;", &labels);
        assert_eq!(
            out,
            "# TYPE aerospike_sets_objects gauge\naerospike_sets_objects{cluster_name=\"c\",ns=\"test\",set=\"demo\"} 2\n\
             # TYPE aerospike_sets_stop_writes_count gauge\n\
             aerospike_sets_stop_writes_count{cluster_name=\"c\",ns=\"test\",set=\"demo\"} 0\n"
        );
        let mut none = String::new();
        push_sets(&mut none, &mut Vec::new(), "", &labels);
        assert_eq!(none, "");
    }

    #[test]
    fn stats_become_gauges_named_like_the_exporters() {
        let mut out = String::new();
        let mut seen = Vec::new();
        let labels = vec![("cluster_name".to_string(), "c".to_string()), ("ns".to_string(), "test".to_string())];
        push_stats(
            &mut out,
            &mut seen,
            "aerospike_namespace_",
            "objects=3;stop_writes=false;storage-engine.stop-writes-avail-pct=5;name=test",
            &labels,
        );
        assert_eq!(
            out,
            "# TYPE aerospike_namespace_objects gauge\naerospike_namespace_objects{cluster_name=\"c\",ns=\"test\"} 3\n\
             # TYPE aerospike_namespace_stop_writes gauge\naerospike_namespace_stop_writes{cluster_name=\"c\",ns=\"test\"} 0\n\
             # TYPE aerospike_namespace_storage_engine_stop_writes_avail_pct gauge\n\
             aerospike_namespace_storage_engine_stop_writes_avail_pct{cluster_name=\"c\",ns=\"test\"} 5\n"
        );
    }
}
