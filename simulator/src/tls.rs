//! TLS on a node's `tls-port`, as the cluster's config says: `network.service.tls-name` names a `network.tls`
//! entry whose `cert-file`, `key-file` and `ca-file` are paths inside the pod. Those paths are mapped to the
//! Secrets mounted there (`spec.storage.volumes[]` with `source.secret.secretName` at `aerospike.path`; the rest
//! of the path is the Secret's key), read through the API. `tls-authenticate-client` (`any`, the server's default,
//! `false`, or a list of names) decides whether a client certificate is required and which names it must carry.
use std::fmt;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use serde_json::Value;

/// The TLS side of a node's service.
pub(crate) struct ServiceTls {
    pub(crate) port: u16,
    pub(crate) name: String,
    pub(crate) config: Arc<ServerConfig>,
    /// Names a client certificate must carry (one of them), when `tls-authenticate-client` lists names.
    pub(crate) client_names: Vec<String>,
}

impl fmt::Debug for ServiceTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTls").field("port", &self.port).field("name", &self.name).finish_non_exhaustive()
    }
}

/// Where a file of the pod comes from: the Secret mounted at a parent directory, and its key.
pub(crate) fn secret_for_path(spec: &Value, path: &str) -> Option<(String, String)> {
    let volumes = spec["storage"]["volumes"].as_array()?;
    volumes
        .iter()
        .filter_map(|v| {
            let secret = v["source"]["secret"]["secretName"].as_str()?;
            let mount = v["aerospike"]["path"].as_str()?.trim_end_matches('/');
            let key = path.strip_prefix(mount)?.strip_prefix('/')?;
            (!key.is_empty() && !key.contains('/')).then(|| (mount.len(), secret.to_string(), key.to_string()))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, s, k)| (s, k))
}

/// The service's TLS from the AerospikeCluster's spec, `None` without a `tls-port`.
pub(crate) async fn service_tls(client: &Client, namespace: &str, spec: &Value) -> Result<Option<ServiceTls>> {
    let config = &spec["aerospikeConfig"];
    let service = &config["network"]["service"];
    let Some(port) = service["tls-port"].as_u64().and_then(|p| u16::try_from(p).ok()) else { return Ok(None) };
    let name = service["tls-name"].as_str().context("network.service has a tls-port and no tls-name")?.to_string();
    let entry = config["network"]["tls"]
        .as_array()
        .and_then(|l| l.iter().find(|t| t["name"].as_str() == Some(name.as_str())))
        .with_context(|| format!("tls-name {name:?} is not in network.tls"))?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = async |field: &str| -> Result<Option<Vec<u8>>> {
        let Some(path) = entry[field].as_str() else { return Ok(None) };
        let (secret, key) = secret_for_path(spec, path)
            .with_context(|| format!("network.tls {name:?} {field} {path}: no Secret volume is mounted there"))?;
        let object = secrets.get(&secret).await.with_context(|| format!("reading Secret {namespace}/{secret}"))?;
        let bytes = object.data.and_then(|mut d| d.remove(&key)).map(|b| b.0);
        bytes.map(Some).ok_or_else(|| anyhow!("Secret {namespace}/{secret} has no key {key:?} ({field} {path})"))
    };
    let cert = read("cert-file").await?.context("network.tls entry without cert-file")?;
    let key = read("key-file").await?.context("network.tls entry without key-file")?;
    let ca = read("ca-file").await?;
    let auth = aerospike_kubernetes_operator::aerospike_conf::tls_authenticate_client(config);
    let config = server_config(&cert, &key, ca.as_deref(), auth.is_some())?;
    Ok(Some(ServiceTls { port, name, config: Arc::new(config), client_names: auth.unwrap_or_default() }))
}

/// A server configuration serving `cert_pem` with `key_pem`; with `require_client`, clients must present a
/// certificate signed by `ca_pem`.
pub(crate) fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    ca_pem: Option<&[u8]>,
    require_client: bool,
) -> Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).context("the key-file is not a PEM private key")?;
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = if require_client {
        let Some(ca) = ca_pem else { bail!("tls-authenticate-client needs a ca-file to verify clients with") };
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca) {
            roots.add(c?)?;
        }
        builder.with_client_cert_verifier(WebPkiClientVerifier::builder_with_provider(roots.into(), provider).build()?)
    } else {
        builder.with_no_client_auth()
    };
    Ok(builder.with_single_cert(chain, key)?)
}

/// The subject common name of a certificate (what a server takes as the user of a PKI login).
pub(crate) fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(cn)
}

/// Whether the verified client certificate carries one of `names` (none listed: any verified certificate).
pub(crate) fn client_name_accepted(cert: Option<&CertificateDer<'_>>, names: &[String]) -> bool {
    if names.is_empty() {
        return true;
    }
    let Some(cert) = cert else { return false };
    let Ok(cert) = webpki::EndEntityCert::try_from(cert) else { return false };
    names
        .iter()
        .any(|n| ServerName::try_from(n.as_str()).is_ok_and(|sn| cert.verify_is_valid_for_subject_name(&sn).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_paths_map_to_secret_keys() {
        let spec = json!({"storage": {"volumes": [
            {"name": "a", "source": {"secret": {"secretName": "tls"}}, "aerospike": {"path": "/etc/aerospike/secret"}},
            {"name": "b", "source": {"secret": {"secretName": "deep"}}, "aerospike": {"path": "/etc/aerospike/secret/x/"}},
            {"name": "c", "source": {"persistentVolume": {}}, "aerospike": {"path": "/opt/aerospike"}}
        ]}});
        assert_eq!(secret_for_path(&spec, "/etc/aerospike/secret/cert.pem"), Some(("tls".into(), "cert.pem".into())));
        assert_eq!(secret_for_path(&spec, "/etc/aerospike/secret/x/ca.pem"), Some(("deep".into(), "ca.pem".into())));
        assert_eq!(secret_for_path(&spec, "/opt/aerospike/cert.pem"), None);
        assert_eq!(secret_for_path(&spec, "/etc/aerospike/secretX/cert.pem"), None);
    }
}
