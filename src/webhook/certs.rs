//! Certificates without cert-manager (`--webhook-self-signed`): the operator keeps its own CA and serving
//! certificate in the Secret `aerospike-operator-webhook-cert` of its namespace, so every replica serves the same
//! certificate and the webhook configurations' caBundle is the CA.
//!
//! Lifetimes: the CA lasts 10 years and is replaced one year before it ends (the previous CA stays in the bundle
//! until then, so connections verified against either work); the serving certificate lasts one year and is
//! replaced 30 days before it ends, or at once when the names it must carry change.
use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::Context as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use time::{Duration, OffsetDateTime};
use tracing::info;

/// The Secret holding the CA and the serving certificate.
pub const SECRET_NAME: &str = "aerospike-operator-webhook-cert";
const CA_CN: &str = "aerospike-kubernetes-operator-webhook-ca";
const ANN_CA_NOT_AFTER: &str = "aerospike.com/webhook-ca-not-after";
const ANN_CERT_NOT_AFTER: &str = "aerospike.com/webhook-cert-not-after";
const ANN_CERT_NAMES: &str = "aerospike.com/webhook-cert-names";
const KEY_CA: &str = "ca.crt";
const KEY_CA_KEY: &str = "ca.key";
const KEY_CA_PREVIOUS: &str = "ca-previous.crt";
const KEY_CERT: &str = "tls.crt";
const KEY_KEY: &str = "tls.key";

const CA_LIFETIME: Duration = Duration::days(3650);
const CA_RENEW_BEFORE: Duration = Duration::days(365);
const CERT_LIFETIME: Duration = Duration::days(365);
const CERT_RENEW_BEFORE: Duration = Duration::days(30);

/// What the webhook server needs: its certificate and key, and the CA bundle for the webhook configurations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    pub cert_pem: String,
    pub key_pem: String,
    /// The current CA, then the previous one during a CA rotation.
    pub ca_bundle_pem: String,
}

/// The Secret's content, as strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub ca_previous_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_not_after: i64,
    pub cert_not_after: i64,
    pub names: String,
}

impl Stored {
    pub fn material(&self) -> Material {
        let mut bundle = self.ca_pem.clone();
        if !self.ca_previous_pem.is_empty() {
            if !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            bundle.push_str(&self.ca_previous_pem);
        }
        Material { cert_pem: self.cert_pem.clone(), key_pem: self.key_pem.clone(), ca_bundle_pem: bundle }
    }

    fn from_secret(s: &Secret) -> Stored {
        let data = s.data.clone().unwrap_or_default();
        let text = |k: &str| data.get(k).map(|b| String::from_utf8_lossy(&b.0).into_owned()).unwrap_or_default();
        let ann = s.metadata.annotations.clone().unwrap_or_default();
        let num = |k: &str| ann.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Stored {
            ca_pem: text(KEY_CA),
            ca_key_pem: text(KEY_CA_KEY),
            ca_previous_pem: text(KEY_CA_PREVIOUS),
            cert_pem: text(KEY_CERT),
            key_pem: text(KEY_KEY),
            ca_not_after: num(ANN_CA_NOT_AFTER),
            cert_not_after: num(ANN_CERT_NOT_AFTER),
            names: ann.get(ANN_CERT_NAMES).cloned().unwrap_or_default(),
        }
    }

    fn to_secret(&self, namespace: &str, resource_version: Option<String>) -> Secret {
        let mut data = BTreeMap::new();
        for (k, v) in [
            (KEY_CA, &self.ca_pem),
            (KEY_CA_KEY, &self.ca_key_pem),
            (KEY_CERT, &self.cert_pem),
            (KEY_KEY, &self.key_pem),
            (KEY_CA_PREVIOUS, &self.ca_previous_pem),
        ] {
            if !v.is_empty() {
                data.insert(k.to_string(), ByteString(v.as_bytes().to_vec()));
            }
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(SECRET_NAME.into()),
                namespace: Some(namespace.into()),
                resource_version,
                labels: Some(BTreeMap::from([(
                    crate::desired::LABEL_MANAGED_BY.to_string(),
                    crate::desired::MANAGER_NAME.to_string(),
                )])),
                annotations: Some(BTreeMap::from([
                    (ANN_CA_NOT_AFTER.to_string(), self.ca_not_after.to_string()),
                    (ANN_CERT_NOT_AFTER.to_string(), self.cert_not_after.to_string()),
                    (ANN_CERT_NAMES.to_string(), self.names.clone()),
                ])),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(data),
            ..Default::default()
        }
    }
}

/// The names a serving certificate must carry: DNS names and IP addresses.
pub fn names_key(names: &[String]) -> String {
    let mut sorted = names.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.join(",")
}

fn ca_params(not_before: OffsetDateTime, not_after: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, CA_CN);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = not_before;
    p.not_after = not_after;
    p
}

/// What must be done with the stored content at `now` for `names`: nothing, a new serving certificate, or a new
/// CA and serving certificate.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    Keep,
    Cert,
    CaAndCert,
}

pub fn renewal(s: &Stored, names: &[String], now: OffsetDateTime) -> Renewal {
    let ts = now.unix_timestamp();
    let ca_ok = !s.ca_pem.is_empty()
        && !s.ca_key_pem.is_empty()
        && KeyPair::from_pem(&s.ca_key_pem).is_ok()
        && s.ca_not_after - ts > CA_RENEW_BEFORE.whole_seconds();
    if !ca_ok {
        return Renewal::CaAndCert;
    }
    let cert_ok = !s.cert_pem.is_empty()
        && !s.key_pem.is_empty()
        && s.cert_not_after - ts > CERT_RENEW_BEFORE.whole_seconds()
        && s.names == names_key(names)
        && super::tls::certified_key(s.cert_pem.as_bytes(), s.key_pem.as_bytes()).is_ok();
    if cert_ok { Renewal::Keep } else { Renewal::Cert }
}

/// Renews what [`renewal`] says at `now` (pure: no API access).
pub fn renew(s: &Stored, names: &[String], now: OffsetDateTime) -> anyhow::Result<Stored> {
    let mut next = s.clone();
    let not_before = now - Duration::hours(1);
    match renewal(s, names, now) {
        Renewal::Keep => return Ok(next),
        Renewal::CaAndCert => {
            let key = KeyPair::generate().context("generating the webhook CA key")?;
            let not_after = now + CA_LIFETIME;
            let cert = ca_params(not_before, not_after).self_signed(&key).context("self-signing the webhook CA")?;
            // Keep the CA being replaced in the bundle while certificates it signed may still be served.
            next.ca_previous_pem = if s.ca_not_after > now.unix_timestamp() { s.ca_pem.clone() } else { String::new() };
            next.ca_pem = cert.pem();
            next.ca_key_pem = key.serialize_pem();
            next.ca_not_after = not_after.unix_timestamp();
        }
        Renewal::Cert => {}
    }
    let ca_key = KeyPair::from_pem(&next.ca_key_pem).context("reading the webhook CA key")?;
    let issuer = Issuer::new(ca_params(not_before, now + CA_LIFETIME), ca_key);
    let key = KeyPair::generate().context("generating the webhook serving key")?;
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, names.first().map(String::as_str).unwrap_or("aerospike-operator-webhook"));
    p.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(n.as_str().try_into().with_context(|| format!("DNS name {n:?}"))?)),
        })
        .collect::<anyhow::Result<_>>()?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = not_before;
    let cert_not_after = (now + CERT_LIFETIME)
        .min(OffsetDateTime::from_unix_timestamp(next.ca_not_after).unwrap_or(now + CERT_LIFETIME));
    p.not_after = cert_not_after;
    let cert = p.signed_by(&key, &issuer).context("signing the webhook serving certificate")?;
    next.cert_pem = cert.pem();
    next.key_pem = key.serialize_pem();
    next.cert_not_after = cert_not_after.unix_timestamp();
    next.names = names_key(names);
    Ok(next)
}

/// Reads the Secret, renews what is due and writes it back (optimistic concurrency: when another replica wrote
/// first, its content is read again and used). Returns the material to serve.
pub async fn ensure(client: &Client, namespace: &str, names: &[String]) -> anyhow::Result<Material> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for _ in 0..5 {
        let existing = api.get_opt(SECRET_NAME).await.context("reading the webhook certificate Secret")?;
        let stored = existing.as_ref().map(Stored::from_secret).unwrap_or_default();
        let now = OffsetDateTime::now_utc();
        let due = renewal(&stored, names, now);
        if due == Renewal::Keep {
            return Ok(stored.material());
        }
        let next = renew(&stored, names, now)?;
        let result = match &existing {
            None => api.create(&PostParams::default(), &next.to_secret(namespace, None)).await,
            Some(s) => {
                api.replace(
                    SECRET_NAME,
                    &PostParams::default(),
                    &next.to_secret(namespace, s.metadata.resource_version.clone()),
                )
                .await
            }
        };
        match result {
            Ok(_) => {
                info!(namespace, secret = SECRET_NAME, renewed = ?due, "webhook certificate written");
                return Ok(next.material());
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue, // another replica wrote it: use theirs
            Err(e) => return Err(e).context("writing the webhook certificate Secret"),
        }
    }
    anyhow::bail!("the webhook certificate Secret keeps changing under us")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["aerospike-operator-webhook.ops.svc".into(), "127.0.0.1".into()]
    }

    #[test]
    fn fresh_then_kept_then_renewed() {
        let now = OffsetDateTime::now_utc();
        let empty = Stored::default();
        assert_eq!(renewal(&empty, &names(), now), Renewal::CaAndCert);
        let s = renew(&empty, &names(), now).unwrap();
        assert_eq!(renewal(&s, &names(), now), Renewal::Keep);
        assert!(super::super::tls::certified_key(s.cert_pem.as_bytes(), s.key_pem.as_bytes()).is_ok());
        // close to the end of the serving certificate: a new one from the same CA
        let later = now + Duration::days(340);
        assert_eq!(renewal(&s, &names(), later), Renewal::Cert);
        let s2 = renew(&s, &names(), later).unwrap();
        assert_eq!(s2.ca_pem, s.ca_pem);
        assert_ne!(s2.cert_pem, s.cert_pem);
        // other names: a new certificate
        assert_eq!(renewal(&s, &["other.svc".to_string()], now), Renewal::Cert);
        // close to the end of the CA: a new CA, the old one kept in the bundle
        let much_later = now + Duration::days(3400);
        assert_eq!(renewal(&s, &names(), much_later), Renewal::CaAndCert);
        let s3 = renew(&s, &names(), much_later).unwrap();
        assert_ne!(s3.ca_pem, s.ca_pem);
        assert_eq!(s3.ca_previous_pem, s.ca_pem);
        assert!(s3.material().ca_bundle_pem.contains(&s.ca_pem));
        assert!(s3.material().ca_bundle_pem.starts_with(&s3.ca_pem));
    }

    #[test]
    fn secret_round_trip() {
        let s = renew(&Stored::default(), &names(), OffsetDateTime::now_utc()).unwrap();
        let secret = s.to_secret("ops", None);
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(Stored::from_secret(&secret), s);
    }
}
