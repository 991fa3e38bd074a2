//! TLS from the operator to Aerospike nodes: the rustls client configuration (ring, like the rest of the
//! operator) built from PEM material, verifying the node's certificate against the cluster's CA and the node's
//! `tls-name`, and presenting the operator's client certificate for mutual TLS.
use std::fmt;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// PEM material for a TLS client: CA certificates and, for mutual TLS, a certificate chain and its key.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    pub ca_pem: Vec<u8>,
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial").field("client_cert", &self.client.is_some()).finish_non_exhaustive()
    }
}

/// A TLS client setting for one cluster: the configuration and the name the nodes' certificates must carry
/// (`network.service.tls-name`).
#[derive(Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    pub server_name: String,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl TlsClient {
    /// The rustls server name for `server_name`, or why it cannot be one.
    pub fn name(&self) -> Result<ServerName<'static>, String> {
        ServerName::try_from(self.server_name.clone())
            .map_err(|e| format!("tls-name {:?} is not a valid TLS server name: {e}", self.server_name))
    }
}

/// The client configuration for `material`; errors say which part is wrong (`CA certificates`, `client
/// certificate`, `client key`).
pub fn client_config(material: &TlsMaterial) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let mut found = 0;
    for cert in CertificateDer::pem_slice_iter(&material.ca_pem) {
        let cert = cert.map_err(|e| format!("CA certificates: not PEM: {e}"))?;
        roots.add(cert).map_err(|e| format!("CA certificates: {e}"))?;
        found += 1;
    }
    if found == 0 {
        return Err("CA certificates: no PEM certificate found".into());
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots);
    match &material.client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_pem, key_pem)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("client certificate: not PEM: {e}"))?;
            if chain.is_empty() {
                return Err("client certificate: no PEM certificate found".into());
            }
            let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("client key: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("client certificate and key: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_and_leaf() -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["operator".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
        (ca.pem(), leaf.pem(), key.serialize_pem())
    }

    #[test]
    fn configs_from_pem_and_errors_naming_the_part() {
        let (ca, cert, key) = ca_and_leaf();
        let material = TlsMaterial { ca_pem: ca.clone().into_bytes(), client: None };
        assert!(client_config(&material).is_ok());
        let mutual = TlsMaterial { ca_pem: ca.clone().into_bytes(), client: Some((cert.clone().into(), key.into())) };
        assert!(client_config(&mutual).unwrap().client_auth_cert_resolver.has_certs());
        let no_ca = TlsMaterial { ca_pem: b"not a certificate".to_vec(), client: None };
        assert_eq!(client_config(&no_ca).unwrap_err(), "CA certificates: no PEM certificate found");
        let bad_key = TlsMaterial { ca_pem: ca.into_bytes(), client: Some((cert.into(), b"nope".to_vec())) };
        assert!(client_config(&bad_key).unwrap_err().starts_with("client key"), "{:?}", client_config(&bad_key));
        let tls = TlsClient { config: Arc::new(client_config(&material).unwrap()), server_name: "t1".into() };
        assert!(tls.name().is_ok());
        assert!(TlsClient { server_name: "bad name".into(), ..tls }.name().is_err());
    }
}
