//! The local control plane's certificates and keys, generated in Rust (rcgen) at every start.
//!
//! One CA signs everything: the kube-apiserver serving certificate, one serving certificate shared by the other
//! components' HTTPS endpoints (controller-manager, scheduler), and one client certificate per identity. Every
//! client identity is in `system:masters`, so the components need no RBAC bindings; their common names still tell
//! them apart in the apiserver's logs and metrics. The service-account signing key is an ECDSA P-256 key (the
//! apiserver signs ES256 tokens with it).
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

/// A certificate with its private key, both PEM.
#[derive(Clone)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Every credential of one cluster, plus the paths they were written to.
pub struct Pki {
    pub ca: CertPair,
    pub apiserver: CertPair,
    pub serving: CertPair,
    pub admin: CertPair,
    pub controller_manager: CertPair,
    pub scheduler: CertPair,
    pub kwok: CertPair,
    /// The apiserver's identity towards aggregated APIs (front proxy); silences the components' complaints about a
    /// missing request-header CA.
    pub front_proxy: CertPair,
    pub service_account_key_pem: String,
    pub service_account_pub_pem: String,
    pub dir: PathBuf,
}

/// The client identities (common name, organisation).
const ADMIN: (&str, &str) = ("aerospike-operator-admin", "system:masters");
const CONTROLLER_MANAGER: (&str, &str) = ("system:kube-controller-manager", "system:masters");
const SCHEDULER: (&str, &str) = ("system:kube-scheduler", "system:masters");
const KWOK: (&str, &str) = ("kwok-controller", "system:masters");
/// The only name the apiserver accepts request headers from (`--requestheader-allowed-names`).
pub const FRONT_PROXY_NAME: &str = "front-proxy-client";

impl Pki {
    /// Generates all credentials. `service_ip` is the first address of the service CIDR (the `kubernetes`
    /// Service's ClusterIP), which the apiserver certificate must name.
    pub fn generate(dir: &Path, service_ip: Ipv4Addr) -> Result<Pki> {
        let now = time::OffsetDateTime::now_utc();
        let not_before = now - time::Duration::hours(1);
        let not_after = now + time::Duration::days(365);

        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params.distinguished_name.push(DnType::CommonName, "aerospike-operator-local-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca_params.not_before = not_before;
        ca_params.not_after = not_after;
        let ca_cert = ca_params.self_signed(&ca_key).context("self-signing the CA")?;
        let ca = CertPair { cert_pem: ca_cert.pem(), key_pem: ca_key.serialize_pem() };
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf =
            |cn: &str, org: Option<&str>, sans: Vec<SanType>, eku: ExtendedKeyUsagePurpose| -> Result<CertPair> {
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                params.distinguished_name = rcgen::DistinguishedName::new();
                params.distinguished_name.push(DnType::CommonName, cn);
                if let Some(org) = org {
                    params.distinguished_name.push(DnType::OrganizationName, org);
                }
                params.subject_alt_names = sans;
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
                params.extended_key_usages = vec![eku];
                params.use_authority_key_identifier_extension = true;
                params.not_before = not_before;
                params.not_after = not_after;
                let cert =
                    params.signed_by(&key, &issuer).with_context(|| format!("signing the certificate of {cn}"))?;
                Ok(CertPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
            };
        let dns = |s: &str| -> Result<SanType> { Ok(SanType::DnsName(s.try_into()?)) };
        let loopback = SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST));

        let apiserver = leaf(
            "kube-apiserver",
            None,
            vec![
                loopback.clone(),
                SanType::IpAddress(IpAddr::V4(service_ip)),
                dns("localhost")?,
                dns("kubernetes")?,
                dns("kubernetes.default")?,
                dns("kubernetes.default.svc")?,
                dns("kubernetes.default.svc.cluster.local")?,
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let serving =
            leaf("local-components", None, vec![loopback, dns("localhost")?], ExtendedKeyUsagePurpose::ServerAuth)?;
        let client = |(cn, org): (&str, &str)| leaf(cn, Some(org), Vec::new(), ExtendedKeyUsagePurpose::ClientAuth);
        let admin = client(ADMIN)?;
        let controller_manager = client(CONTROLLER_MANAGER)?;
        let scheduler = client(SCHEDULER)?;
        let kwok = client(KWOK)?;
        let front_proxy = leaf(FRONT_PROXY_NAME, None, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)?;

        let sa_key = KeyPair::generate().context("generating the service-account key")?;
        let pki = Pki {
            ca,
            apiserver,
            serving,
            admin,
            controller_manager,
            scheduler,
            kwok,
            front_proxy,
            service_account_key_pem: sa_key.serialize_pem(),
            service_account_pub_pem: sa_key.public_key_pem(),
            dir: dir.to_path_buf(),
        };
        pki.write()?;
        Ok(pki)
    }

    fn write(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let pairs = [
            ("ca", &self.ca),
            ("apiserver", &self.apiserver),
            ("serving", &self.serving),
            ("admin", &self.admin),
            ("controller-manager", &self.controller_manager),
            ("scheduler", &self.scheduler),
            ("kwok", &self.kwok),
            ("front-proxy", &self.front_proxy),
        ];
        for (name, pair) in pairs {
            write_private(&self.dir.join(format!("{name}.crt")), &pair.cert_pem)?;
            write_private(&self.dir.join(format!("{name}.key")), &pair.key_pem)?;
        }
        write_private(&self.path("sa.key"), &self.service_account_key_pem)?;
        write_private(&self.path("sa.pub"), &self.service_account_pub_pem)?;
        Ok(())
    }

    /// Path of a file in the PKI folder: `ca.crt`, `apiserver.key`, `sa.pub`, ...
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The CA certificate as DER (for clients that take DER roots).
    pub fn ca_der(&self) -> Result<Vec<u8>> {
        pem_to_der(&self.ca.cert_pem)
    }
}

/// Writes a file readable by the owner only (keys and certificates alike; nothing here is meant to be shared).
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// The DER bytes of the first PEM block.
fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body.trim()).context("decoding PEM")
}

/// A kubeconfig (YAML) for one identity, with everything embedded.
pub fn kubeconfig(server: &str, ca_pem: &str, client: &CertPair, user: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "aerospike-local", "cluster": {
            "server": server,
            "certificate-authority-data": b64(ca_pem),
        }}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(&client.cert_pem),
            "client-key-data": b64(&client.key_pem),
        }}],
        "contexts": [{"name": "aerospike-local", "context": {"cluster": "aerospike-local", "user": user}}],
        "current-context": "aerospike-local",
        "preferences": {},
    });
    serde_saphyr::to_string(&doc).expect("kubeconfig serialises")
}

/// A throwaway CA for tests that need certificates of their own (TLS to simulated Aerospike nodes): its PEM and
/// leaf certificates signed by it.
pub struct TestCa {
    pub ca: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    #[allow(clippy::new_without_default)]
    pub fn new() -> TestCa {
        let key = KeyPair::generate().expect("key pair");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: CAs sharing rcgen's default name make a certificate of another test's CA look like
        // a bad signature (DecryptError) instead of an unknown issuer.
        let nonce: u64 =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id());
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("ako test CA {nonce:x}"));
        let ca = params.self_signed(&key).expect("self-signed CA").pem();
        TestCa { ca, issuer: Issuer::new(params, key) }
    }

    /// A certificate for `name` (SAN) whose subject common name is `common_name` (the user of a PKI login), and
    /// its key, PEM.
    pub fn leaf_with_common_name(&self, name: &str, common_name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("key pair");
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("leaf params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        (cert.pem(), key.serialize_pem())
    }

    /// A certificate for `name` (SAN) and its key, PEM.
    pub fn leaf(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("key pair");
        let cert = CertificateParams::new(vec![name.to_string()])
            .expect("leaf params")
            .signed_by(&key, &self.issuer)
            .expect("signed leaf");
        (cert.pem(), key.serialize_pem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_and_leaves_and_kubeconfig() {
        let dir = std::env::temp_dir().join(format!("ako-pki-test-{}", std::process::id()));
        let pki = Pki::generate(&dir, Ipv4Addr::new(10, 96, 0, 1)).unwrap();
        for f in ["ca.crt", "apiserver.crt", "apiserver.key", "admin.crt", "sa.key", "sa.pub"] {
            assert!(pki.path(f).is_file(), "{f}");
        }
        assert!(pki.service_account_pub_pem.contains("BEGIN PUBLIC KEY"));
        assert!(!pki.ca_der().unwrap().is_empty());
        let kc = kubeconfig("https://127.0.0.1:1", &pki.ca.cert_pem, &pki.admin, "admin");
        let parsed: serde_json::Value = serde_saphyr::from_str(&kc).unwrap();
        assert_eq!(parsed["current-context"], "aerospike-local");
        fs::remove_dir_all(&dir).unwrap();
    }
}
