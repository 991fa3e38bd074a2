//! TLS rules: every tls-name of `network` is declared in `network.tls`, a tls-port comes with a tls-name, and
//! the operator has what it needs to reach a TLS service (`spec.operatorClientCert`: one source, a CA, a client
//! certificate when the nodes authenticate clients, and the name they expect).
use crate::aerospike_conf;
use crate::api::{AerospikeCluster, FieldError, OperatorClientCertSpec};
use crate::resolve::ResolvedRack;

const CONNECTIONS: [&str; 3] = ["service", "heartbeat", "fabric"];

pub(super) fn check(c: &AerospikeCluster, racks: &[ResolvedRack], out: &mut Vec<FieldError>) {
    // The network section is the same in every rack: the first config says it all.
    let Some(config) = racks.iter().find_map(ResolvedRack::config_value) else { return };
    let declared = aerospike_conf::tls_names(config);
    for conn in CONNECTIONS {
        let section = config.pointer(&format!("/network/{conn}"));
        let path = format!("spec.aerospikeConfig.network.{conn}");
        let name = section.and_then(|s| s.get("tls-name")).and_then(|v| v.as_str());
        let tls_port = section.and_then(|s| s.get("tls-port")).is_some_and(|v| !v.is_null());
        match name {
            Some(n) if !declared.iter().any(|d| d == n) => out.push(FieldError::new(
                format!("{path}.tls-name"),
                format!(
                    "{n:?} is not declared in spec.aerospikeConfig.network.tls (declared: {})",
                    if declared.is_empty() { "none".to_string() } else { declared.join(", ") }
                ),
            )),
            None if tls_port => out.push(FieldError::new(
                format!("{path}.tls-name"),
                "required with tls-port (the name of a network.tls entry)",
            )),
            _ => {}
        }
    }

    let endpoint = aerospike_conf::operator_endpoint(config, None);
    let tls_only = matches!(endpoint, aerospike_conf::ServiceEndpoint::Tls { .. })
        && config.pointer("/network/service/port").is_none_or(|v| v.is_null());
    let spec = c.spec.operator_client_cert.as_ref();
    match spec {
        None if tls_only => out.push(FieldError::new(
            "spec.operatorClientCert",
            "required: network.service has only a tls-port, so the operator reaches the nodes only over TLS and needs \
             the CA (and, when they authenticate clients, its client certificate)",
        )),
        None => {}
        Some(cert) => check_cert_spec(cert, config, out),
    }
}

fn check_cert_spec(cert: &OperatorClientCertSpec, config: &serde_json::Value, out: &mut Vec<FieldError>) {
    let base = "spec.operatorClientCert";
    let mut has_client_cert = false;
    match (&cert.secret_cert_source, &cert.cert_path_in_operator) {
        (Some(_), Some(_)) => {
            out.push(FieldError::new(base, "set secretCertSource or certPathInOperator, not both"));
        }
        (None, None) => out.push(FieldError::new(base, "set secretCertSource or certPathInOperator")),
        (Some(s), None) => {
            let p = format!("{base}.secretCertSource");
            if s.secret_name.trim().is_empty() {
                out.push(FieldError::new(format!("{p}.secretName"), "required"));
            }
            if s.client_cert_filename.is_empty() != s.client_key_filename.is_empty() {
                out.push(FieldError::new(
                    format!("{p}.clientKeyFilename"),
                    "clientCertFilename and clientKeyFilename are set together or not at all",
                ));
            }
            match (&s.ca_certs_filename.is_empty(), &s.ca_certs_source) {
                (false, Some(_)) => out.push(FieldError::new(
                    format!("{p}.caCertsSource"),
                    "set caCertsFilename or caCertsSource, not both",
                )),
                (true, None) => out.push(FieldError::new(
                    format!("{p}.caCertsFilename"),
                    "required (or caCertsSource): the CA that signed the nodes' certificates",
                )),
                (_, Some(ca)) if ca.secret_name.trim().is_empty() => {
                    out.push(FieldError::new(format!("{p}.caCertsSource.secretName"), "required"))
                }
                _ => {}
            }
            has_client_cert = !s.client_cert_filename.is_empty();
        }
        (None, Some(paths)) => {
            let p = format!("{base}.certPathInOperator");
            if paths.client_cert_path.is_empty() != paths.client_key_path.is_empty() {
                out.push(FieldError::new(
                    format!("{p}.clientKeyPath"),
                    "clientCertPath and clientKeyPath are set together or not at all",
                ));
            }
            if paths.ca_certs_path.is_empty() {
                out.push(FieldError::new(
                    format!("{p}.caCertsPath"),
                    "required: the CA that signed the nodes' certificates",
                ));
            }
            has_client_cert = !paths.client_cert_path.is_empty();
        }
    }
    // The nodes ask for a client certificate (tls-authenticate-client `any`, the server's default, or names).
    if aerospike_conf::service_tls(config).is_none() {
        return;
    }
    let Some(names) = aerospike_conf::tls_authenticate_client(config) else { return };
    if !has_client_cert {
        out.push(FieldError::new(
            base,
            "a client certificate is required: network.service.tls-authenticate-client asks clients for one (set \
             clientCertFilename and clientKeyFilename, or tls-authenticate-client: \"false\")",
        ));
    }
    if !names.is_empty() {
        match cert.tls_client_name.as_deref().filter(|n| !n.is_empty()) {
            None => out.push(FieldError::new(
                format!("{base}.tlsClientName"),
                format!(
                    "required: network.service.tls-authenticate-client lists names ({}), one of which the operator's \
                     certificate carries",
                    names.join(", ")
                ),
            )),
            Some(n) if !names.iter().any(|x| x == n) => out.push(FieldError::new(
                format!("{base}.tlsClientName"),
                format!(
                    "{n:?} is not in network.service.tls-authenticate-client ({}): the nodes would refuse the \
                     operator's certificate",
                    names.join(", ")
                ),
            )),
            Some(_) => {}
        }
    }
}
