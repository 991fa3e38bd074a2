//! TLS to the cluster's nodes: which endpoint the operator uses (see
//! [`crate::aerospike_conf::operator_endpoint`]) and the certificates of `spec.operatorClientCert`, read from
//! their Secret (or the operator's filesystem) on each use. Parsed configurations are kept per cluster, keyed by
//! the Secrets' resourceVersions, so a changed Secret takes effect at the next connection and an unchanged one
//! is not parsed again.
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use super::Context;
use crate::aerospike_conf::{self, ServiceEndpoint};
use crate::api::{AerospikeCluster, CertPathInOperator, SecretCertSource};
use crate::asinfo::tls::{self, TlsClient, TlsMaterial};

/// The condition reason when the certificates cannot be read.
pub(super) const REASON: &str = "OperatorClientCertInvalid";

/// How the operator reaches the nodes of `cluster` running `config` (a rack's merged config). A service with both
/// ports and no `spec.operatorClientCert` is reached on its plain port: the operator has no CA for it.
pub(super) fn endpoint(cluster: &AerospikeCluster, config: &serde_json::Value) -> ServiceEndpoint {
    let applied = cluster.status.as_ref().and_then(|s| s.aerospike_config.as_ref());
    let has_plain = config.pointer("/network/service/port").is_some_and(|p| !p.is_null());
    match aerospike_conf::operator_endpoint(config, applied) {
        ServiceEndpoint::Tls { .. } if cluster.spec.operator_client_cert.is_none() && has_plain => {
            ServiceEndpoint::Plain(aerospike_conf::service_port(config))
        }
        e => e,
    }
}

/// The TLS client for a cluster reached at `name` (the service's tls-name), from `spec.operatorClientCert`.
/// Errors name the field, the Secret and the key.
pub(super) async fn client(
    cluster: &AerospikeCluster,
    ctx: &Context,
    ns: &str,
    name: &str,
) -> Result<TlsClient, String> {
    let Some(spec) = cluster.spec.operator_client_cert.as_ref() else {
        return Err(format!(
            "the cluster is served over TLS (tls-name {name}) and spec.operatorClientCert is not set: the operator has \
             no CA to verify the nodes with"
        ));
    };
    let config = match (&spec.secret_cert_source, &spec.cert_path_in_operator) {
        (Some(source), _) => from_secrets(cluster, ctx, ns, source).await?,
        (None, Some(paths)) => Arc::new(
            tls::client_config(&from_paths(paths).await?)
                .map_err(|e| format!("spec.operatorClientCert.certPathInOperator: {e}"))?,
        ),
        (None, None) => {
            return Err("spec.operatorClientCert: set secretCertSource or certPathInOperator".into());
        }
    };
    Ok(TlsClient { config, server_name: name.to_string() })
}

async fn from_secrets(
    cluster: &AerospikeCluster,
    ctx: &Context,
    ns: &str,
    source: &SecretCertSource,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let main_ns = if source.secret_namespace.is_empty() { ns } else { source.secret_namespace.as_str() };
    let main =
        read_secret(ctx, main_ns, &source.secret_name, "spec.operatorClientCert.secretCertSource.secretName").await?;
    let ca = match &source.ca_certs_source {
        Some(ca) => {
            let ca_ns = if ca.secret_namespace.is_empty() { ns } else { ca.secret_namespace.as_str() };
            let field = "spec.operatorClientCert.secretCertSource.caCertsSource.secretName";
            Some(read_secret(ctx, ca_ns, &ca.secret_name, field).await?)
        }
        None => None,
    };
    let versions = format!(
        "{}/{}@{};{}",
        main_ns,
        source.secret_name,
        main.resource_version().unwrap_or_default(),
        ca.as_ref()
            .map(|c| format!("{}@{}", c.name_any(), c.resource_version().unwrap_or_default()))
            .unwrap_or_default()
    );
    let uid = cluster.uid().unwrap_or_default();
    if let Some((v, config)) = ctx.tls_configs.lock().unwrap_or_else(|e| e.into_inner()).get(&uid)
        && *v == versions
    {
        return Ok(config.clone());
    }
    let empty = BTreeMap::new();
    let main_data = main.data.as_ref().unwrap_or(&empty);
    let ca_data = ca.as_ref().map(|c| c.data.as_ref().unwrap_or(&empty));
    let ca_name = source.ca_certs_source.as_ref().map(|c| c.secret_name.as_str()).unwrap_or_default();
    let material = secret_material(source, main_ns, main_data, ca_data.map(|d| (ca_name, d)))?;
    let config = Arc::new(tls::client_config(&material).map_err(|e| {
        format!("Secret {main_ns}/{} (spec.operatorClientCert.secretCertSource): {e}", source.secret_name)
    })?);
    ctx.tls_configs.lock().unwrap_or_else(|e| e.into_inner()).insert(uid, (versions, config.clone()));
    Ok(config)
}

async fn read_secret(ctx: &Context, ns: &str, name: &str, field: &str) -> Result<Secret, String> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    api.get_opt(name)
        .await
        .map_err(|e| format!("reading Secret {ns}/{name} ({field}): {e}"))?
        .ok_or_else(|| format!("Secret {ns}/{name} ({field}) does not exist"))
}

/// The PEM material named by `source` in the Secret's data (and the CA Secret's, every key of which is a CA
/// certificate). Errors name the Secret, the key and the field naming it.
pub(crate) fn secret_material(
    source: &SecretCertSource,
    ns: &str,
    data: &BTreeMap<String, ByteString>,
    ca: Option<(&str, &BTreeMap<String, ByteString>)>,
) -> Result<TlsMaterial, String> {
    let secret = format!("Secret {ns}/{}", source.secret_name);
    let key = |k: &str, field: &str| -> Result<Vec<u8>, String> {
        match data.get(k) {
            Some(v) if !v.0.is_empty() => Ok(v.0.clone()),
            Some(_) => Err(format!("{secret}: key {k:?} (spec.operatorClientCert.secretCertSource.{field}) is empty")),
            None => Err(format!("{secret} has no key {k:?} (spec.operatorClientCert.secretCertSource.{field})")),
        }
    };
    let ca_pem = match (&source.ca_certs_filename, ca) {
        (f, _) if !f.is_empty() => key(f, "caCertsFilename")?,
        (_, Some((name, ca_data))) => {
            let pem: Vec<u8> = ca_data.values().flat_map(|v| v.0.iter().copied().chain([b'\n'])).collect();
            if ca_data.is_empty() {
                return Err(format!(
                    "Secret {ns}/{name} (spec.operatorClientCert.secretCertSource.caCertsSource) has no CA certificate"
                ));
            }
            pem
        }
        _ => {
            return Err(
                "spec.operatorClientCert.secretCertSource: set caCertsFilename or caCertsSource (the CA that signed \
                 the nodes' certificates)"
                    .into(),
            );
        }
    };
    let client = match (source.client_cert_filename.as_str(), source.client_key_filename.as_str()) {
        ("", "") => None,
        (cert, k) => Some((key(cert, "clientCertFilename")?, key(k, "clientKeyFilename")?)),
    };
    Ok(TlsMaterial { ca_pem, client })
}

async fn from_paths(paths: &CertPathInOperator) -> Result<TlsMaterial, String> {
    async fn read(path: &str, field: &str) -> Result<Vec<u8>, String> {
        tokio::fs::read(path)
            .await
            .map_err(|e| format!("spec.operatorClientCert.certPathInOperator.{field}: reading {path}: {e}"))
    }
    if paths.ca_certs_path.is_empty() {
        return Err("spec.operatorClientCert.certPathInOperator.caCertsPath: required".into());
    }
    let ca_pem = read(&paths.ca_certs_path, "caCertsPath").await?;
    let client = match (paths.client_cert_path.as_str(), paths.client_key_path.as_str()) {
        ("", "") => None,
        (c, k) => Some((read(c, "clientCertPath").await?, read(k, "clientKeyPath").await?)),
    };
    Ok(TlsMaterial { ca_pem, client })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect()
    }

    #[test]
    fn both_ports_without_client_cert_spec_stay_plain() {
        let config = serde_json::json!({"network": {"service": {"port": 3000, "tls-name": "t1", "tls-port": 4333}}});
        let mut cluster: AerospikeCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"size": 1, "image": "aerospike/aerospike-server-enterprise:8.0.0.5"}
        }))
        .unwrap();
        assert_eq!(endpoint(&cluster, &config), ServiceEndpoint::Plain(3000));
        cluster.spec.operator_client_cert = Some(Default::default());
        assert_eq!(endpoint(&cluster, &config), ServiceEndpoint::Tls { name: "t1".into(), port: 4333 });
        let tls_only = serde_json::json!({"network": {"service": {"tls-name": "t1", "tls-port": 4333}}});
        cluster.spec.operator_client_cert = None;
        assert_eq!(endpoint(&cluster, &tls_only).port(), 4333);
    }

    #[test]
    fn secret_keys_are_read_and_missing_ones_named() {
        let source = SecretCertSource {
            secret_name: "op-tls".into(),
            ca_certs_filename: "ca.pem".into(),
            client_cert_filename: "cert.pem".into(),
            client_key_filename: "key.pem".into(),
            ..Default::default()
        };
        let full = data(&[("ca.pem", "CA"), ("cert.pem", "CERT"), ("key.pem", "KEY")]);
        let m = secret_material(&source, "ns", &full, None).unwrap();
        assert_eq!(m.ca_pem, b"CA");
        assert_eq!(m.client, Some((b"CERT".to_vec(), b"KEY".to_vec())));

        let no_key = data(&[("ca.pem", "CA"), ("cert.pem", "CERT")]);
        assert_eq!(
            secret_material(&source, "ns", &no_key, None).unwrap_err(),
            "Secret ns/op-tls has no key \"key.pem\" (spec.operatorClientCert.secretCertSource.clientKeyFilename)"
        );
        let empty_ca = data(&[("ca.pem", ""), ("cert.pem", "CERT"), ("key.pem", "KEY")]);
        assert!(secret_material(&source, "ns", &empty_ca, None).unwrap_err().contains("\"ca.pem\""));

        // CA from another Secret: every key is a CA certificate; no client certificate (server-side TLS only).
        let ca_only = SecretCertSource { secret_name: "op-tls".into(), ..Default::default() };
        let ca = data(&[("a.pem", "A"), ("b.pem", "B")]);
        let m = secret_material(&ca_only, "ns", &BTreeMap::new(), Some(("cas", &ca))).unwrap();
        assert_eq!(m.ca_pem, b"A\nB\n");
        assert_eq!(m.client, None);
        assert!(secret_material(&ca_only, "ns", &BTreeMap::new(), None).unwrap_err().contains("caCertsFilename"));
    }
}
