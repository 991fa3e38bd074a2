//! The per-pod finalisation done by the `pod-init` step (docs/aerospike-conf.md §8): the rack's rendered template
//! in, the pod's aerospike.conf out. Pure; the caller gathers the IPs, ports and peers.

/// Everything the per-pod step needs to know about one pod. Build with `..Default::default()` for the
/// fields that do not apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodContext {
    /// Replaces `ENV_NODE_ID` (see [`node_id`]).
    pub node_id: String,
    /// The pod IP. Used for `access-address` lines when `access_ips` is empty, and as the heartbeat/fabric
    /// `address` with host networking.
    pub pod_ip: String,
    /// The node (host) IP; fallback when `pod_ip` is empty.
    pub host_ip: Option<String>,
    /// `access-address` values (pod IP for network type pod, node IP for hostInternal/hostExternal, the
    /// node label for configuredIP, interface IPs for customInterface). Empty: the pod IP.
    pub access_ips: Vec<String>,
    /// `alternate-access-address` values. Empty: same as the access addresses.
    pub alternate_access_ips: Vec<String>,
    /// `tls-access-address` values. Empty: same as the access addresses.
    pub tls_access_ips: Vec<String>,
    /// `tls-alternate-access-address` values. Empty: same as the alternate access addresses.
    pub tls_alternate_access_ips: Vec<String>,
    /// When set, replaces the value of the `access-port` line (mapped port, e.g. NodePort with
    /// multiPodPerHost).
    pub access_port: Option<u16>,
    /// When set, replaces the value of the `alternate-access-port` line.
    pub alternate_access_port: Option<u16>,
    /// When set, replaces the value of the `tls-access-port` line.
    pub tls_access_port: Option<u16>,
    /// When set, replaces the value of the `tls-alternate-access-port` line.
    pub tls_alternate_access_port: Option<u16>,
    /// This pod's FQDN `<pod>.<cluster>.<namespace>` (or its bare pod name); it is not its own mesh seed.
    pub self_fqdn: String,
    /// All pod FQDNs of the cluster (the ConfigMap's `peers`), this pod included.
    pub peers: Vec<String>,
    /// `network.heartbeat.port`: one `mesh-seed-address-port` line per peer when set.
    pub heartbeat_port: Option<u16>,
    /// `network.heartbeat.tls-port`: one `tls-mesh-seed-address-port` line per peer when set.
    pub tls_heartbeat_port: Option<u16>,
    /// `network.fabric.port` (only used with host networking).
    pub fabric_port: Option<u16>,
    /// `network.fabric.tls-port` (only used with host networking).
    pub tls_fabric_port: Option<u16>,
    /// Host networking: heartbeat and fabric advertise the pod IP (`address` / `tls-address` lines).
    pub host_network: bool,
    /// Custom fabric interface IPs: one `address` line each after `fabric {`.
    pub fabric_addresses: Vec<String>,
    /// Custom TLS fabric interface IPs: one `tls-address` line each after `fabric {`.
    pub tls_fabric_addresses: Vec<String>,
    /// enableRackIDOverride: the pod annotation `aerospike.com/override-rack-id`; replaces every `rack-id`.
    pub rack_id_override: Option<i32>,
}

/// The Aerospike node id of a pod: `<rackID><infix><ordinal>`, infix `a` for rack revision index 0 and
/// `b`..`f` for the following ones (e.g. `1a0`, `2b3`). Indexes past 5 wrap around to `a` (node ids must
/// stay hexadecimal).
pub fn node_id(rack_id: i32, rack_revision_index: usize, ordinal: u32) -> String {
    let infix = char::from(b'a' + (rack_revision_index % 6) as u8);
    format!("{rack_id}{infix}{ordinal}")
}

/// Whether `peer` names the pod itself: the whole FQDN, or its first DNS label (the pod name), must be
/// equal. Prefixes do not count: `x-0-1` is not `x-0-10`.
fn is_self(peer: &str, self_fqdn: &str) -> bool {
    if self_fqdn.is_empty() {
        return false;
    }
    let label = |s: &str| s.split('.').next().unwrap_or("").to_string();
    peer == self_fqdn || label(peer) == label(self_fqdn)
}

fn leading_spaces(line: &str) -> &str {
    &line[..line.len() - line.trim_start_matches(' ').len()]
}

fn push_line(out: &mut String, indent: &str, key: &str, value: &str) {
    out.push_str(indent);
    out.push_str(key);
    out.push_str("    ");
    out.push_str(value);
    out.push('\n');
}

/// Finalises the rack template for one pod:
///
/// 1. `ENV_NODE_ID` -> `pod.node_id`;
/// 2. each `access-address    <access-address>` line (and the alternate / tls / tls-alternate variants)
///    becomes one line per IP, same indent; `access-port` (and variants) take the mapped port when given;
/// 3. directly after every `heartbeat {` line: `address` / `tls-address` with host networking, then
///    `mesh-seed-address-port    <peer> <port>` (and the TLS variant) for every peer except the pod
///    itself (whole-name comparison);
/// 4. after every `fabric {` line: the host-networking and custom-interface addresses;
/// 5. `rack-id` values replaced by `rack_id_override` when set.
///
/// Lines keep the template's layout (indent + key + 4 spaces + value).
pub fn finalize_for_pod(template: &str, pod: &PodContext) -> String {
    let text = template.replace(super::NODE_ID_PLACEHOLDER, &pod.node_id);

    let fallback_ip: Vec<String> = if !pod.pod_ip.is_empty() {
        vec![pod.pod_ip.clone()]
    } else {
        pod.host_ip.iter().filter(|ip| !ip.is_empty()).cloned().collect()
    };
    let pick = |primary: &[String], fallback: &[String]| -> Vec<String> {
        if primary.is_empty() { fallback.to_vec() } else { primary.to_vec() }
    };
    let access = pick(&pod.access_ips, &fallback_ip);
    let alternate = pick(&pod.alternate_access_ips, &access);
    let tls_access = pick(&pod.tls_access_ips, &access);
    let tls_alternate = pick(&pod.tls_alternate_access_ips, &alternate);
    let placeholders: [(&str, &str, &[String]); 4] = [
        ("access-address", super::ACCESS_ADDRESS_PLACEHOLDER, &access),
        ("alternate-access-address", super::ALTERNATE_ACCESS_ADDRESS_PLACEHOLDER, &alternate),
        ("tls-access-address", super::TLS_ACCESS_ADDRESS_PLACEHOLDER, &tls_access),
        ("tls-alternate-access-address", super::TLS_ALTERNATE_ACCESS_ADDRESS_PLACEHOLDER, &tls_alternate),
    ];
    let ports: [(&str, Option<u16>); 4] = [
        ("access-port", pod.access_port),
        ("alternate-access-port", pod.alternate_access_port),
        ("tls-access-port", pod.tls_access_port),
        ("tls-alternate-access-port", pod.tls_alternate_access_port),
    ];
    let host_ip: &str = fallback_ip.first().map_or("", String::as_str);

    let mut out = String::with_capacity(text.len() + 64 * (pod.peers.len() + 1));
    for raw in text.split_inclusive('\n') {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let indent = leading_spaces(line);
        let body = &line[indent.len()..];
        let mut fields = body.splitn(2, "    ");
        let key = fields.next().unwrap_or("");
        let value = fields.next();

        if let Some((_, _, ips)) = placeholders.iter().find(|(k, p, _)| *k == key && value == Some(*p)) {
            for ip in ips.iter() {
                push_line(&mut out, indent, key, ip);
            }
            continue;
        }
        if let Some((_, Some(port))) = ports.iter().find(|(k, _)| *k == key && value.is_some()) {
            push_line(&mut out, indent, key, &port.to_string());
            continue;
        }
        if let (Some(rack), "rack-id", Some(_)) = (pod.rack_id_override, key, value) {
            push_line(&mut out, indent, key, &rack.to_string());
            continue;
        }

        out.push_str(line);
        out.push('\n');
        let inner = format!("{indent}    ");
        if body == "heartbeat {" {
            if pod.host_network && !host_ip.is_empty() {
                if pod.heartbeat_port.is_some() {
                    push_line(&mut out, &inner, "address", host_ip);
                }
                if pod.tls_heartbeat_port.is_some() {
                    push_line(&mut out, &inner, "tls-address", host_ip);
                }
            }
            for peer in pod.peers.iter().filter(|p| !p.is_empty() && !is_self(p, &pod.self_fqdn)) {
                if let Some(port) = pod.heartbeat_port {
                    push_line(&mut out, &inner, "mesh-seed-address-port", &format!("{peer} {port}"));
                }
                if let Some(port) = pod.tls_heartbeat_port {
                    push_line(&mut out, &inner, "tls-mesh-seed-address-port", &format!("{peer} {port}"));
                }
            }
        } else if body == "fabric {" {
            if pod.host_network && !host_ip.is_empty() {
                if pod.fabric_port.is_some() {
                    push_line(&mut out, &inner, "address", host_ip);
                }
                if pod.tls_fabric_port.is_some() {
                    push_line(&mut out, &inner, "tls-address", host_ip);
                }
            }
            for ip in &pod.fabric_addresses {
                push_line(&mut out, &inner, "address", ip);
            }
            for ip in &pod.tls_fabric_addresses {
                push_line(&mut out, &inner, "tls-address", ip);
            }
        }
    }
    // Keep a template without a final line break as it was.
    if !text.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const TEMPLATE: &str = "\nnamespace test {\n    rack-id    1\n    replication-factor    2\n}\n\nnetwork {\n\n    fabric {\n        port    3001\n    }\n\n    heartbeat {\n        mode    mesh\n        port    3002\n    }\n\n    service {\n        access-address    <access-address>\n        access-port    3000\n        alternate-access-address    <alternate-access-address>\n        alternate-access-port    3000\n        port    3000\n    }\n}\n\nservice {\n    cluster-name    aerocluster\n    node-id    ENV_NODE_ID\n}\n";

    fn peers() -> Vec<String> {
        ["x-0-0", "x-0-1", "x-0-10", "x-0-2"].iter().map(|p| format!("{p}.x.ns")).collect()
    }

    #[test]
    fn node_ids() {
        assert_eq!(node_id(1, 0, 0), "1a0");
        assert_eq!(node_id(0, 0, 12), "0a12");
        assert_eq!(node_id(2, 1, 3), "2b3");
        assert_eq!(node_id(2, 5, 3), "2f3");
        assert_eq!(node_id(2, 6, 3), "2a3");
    }

    #[test]
    fn finalizes_a_pod_and_skips_only_itself() {
        let pod = PodContext {
            node_id: "0a1".into(),
            pod_ip: "10.0.0.5".into(),
            alternate_access_ips: vec!["34.1.1.1".into(), "34.1.1.2".into()],
            self_fqdn: "x-0-1.x.ns".into(),
            peers: peers(),
            heartbeat_port: Some(3002),
            ..Default::default()
        };
        let expected = "\nnamespace test {\n    rack-id    1\n    replication-factor    2\n}\n\nnetwork {\n\n    fabric {\n        port    3001\n    }\n\n    heartbeat {\n        mesh-seed-address-port    x-0-0.x.ns 3002\n        mesh-seed-address-port    x-0-10.x.ns 3002\n        mesh-seed-address-port    x-0-2.x.ns 3002\n        mode    mesh\n        port    3002\n    }\n\n    service {\n        access-address    10.0.0.5\n        access-port    3000\n        alternate-access-address    34.1.1.1\n        alternate-access-address    34.1.1.2\n        alternate-access-port    3000\n        port    3000\n    }\n}\n\nservice {\n    cluster-name    aerocluster\n    node-id    0a1\n}\n";
        assert_eq!(finalize_for_pod(TEMPLATE, &pod), expected);
    }

    #[test]
    fn self_skip_compares_whole_names() {
        // x-0-10 must skip only itself, never x-0-1.
        let pod = PodContext {
            self_fqdn: "x-0-10.x.ns".into(),
            peers: peers(),
            heartbeat_port: Some(3002),
            ..Default::default()
        };
        let out = finalize_for_pod("network {\n\n    heartbeat {\n    }\n}\n", &pod);
        assert_eq!(
            out,
            "network {\n\n    heartbeat {\n        mesh-seed-address-port    x-0-0.x.ns 3002\n        \
             mesh-seed-address-port    x-0-1.x.ns 3002\n        mesh-seed-address-port    x-0-2.x.ns 3002\n    }\n}\n"
        );
        // A bare pod name as self works too.
        let pod = PodContext { self_fqdn: "x-0-1".into(), ..pod };
        assert!(!finalize_for_pod("    heartbeat {\n", &pod).contains("x-0-1.x.ns"));
        assert!(finalize_for_pod("    heartbeat {\n", &pod).contains("x-0-10.x.ns"));
    }

    #[test]
    fn tls_seeds_ports_host_network_and_rack_override() {
        let template = "\nnetwork {\n\n    fabric {\n        port    3001\n    }\n\n    heartbeat {\n        tls-port    3012\n    }\n\n    service {\n        access-address    <access-address>\n        access-port    3000\n        tls-access-address    <tls-access-address>\n        tls-access-port    4333\n        tls-alternate-access-address    <tls-alternate-access-address>\n    }\n}\n\nnamespace a {\n    rack-id    0\n}\n";
        let pod = PodContext {
            node_id: "1a0".into(),
            pod_ip: "10.0.0.9".into(),
            access_ips: vec!["192.168.1.4".into()],
            tls_alternate_access_ips: vec!["1.2.3.4".into()],
            access_port: Some(30000),
            tls_access_port: Some(30001),
            self_fqdn: "c-1-0.c.ns".into(),
            peers: vec!["c-1-0.c.ns".into(), "c-1-1.c.ns".into()],
            tls_heartbeat_port: Some(3012),
            fabric_port: Some(3001),
            host_network: true,
            rack_id_override: Some(5),
            ..Default::default()
        };
        let expected = "\nnetwork {\n\n    fabric {\n        address    10.0.0.9\n        port    3001\n    }\n\n    heartbeat {\n        tls-address    10.0.0.9\n        tls-mesh-seed-address-port    c-1-1.c.ns 3012\n        tls-port    3012\n    }\n\n    service {\n        access-address    192.168.1.4\n        access-port    30000\n        tls-access-address    192.168.1.4\n        tls-access-port    30001\n        tls-alternate-access-address    1.2.3.4\n    }\n}\n\nnamespace a {\n    rack-id    5\n}\n";
        assert_eq!(finalize_for_pod(template, &pod), expected);
    }

    #[test]
    fn no_ip_at_all_drops_the_placeholder_line() {
        let out = finalize_for_pod("    access-address    <access-address>\n    x    1", &PodContext::default());
        assert_eq!(out, "    x    1");
    }
}
