//! The MutatingWebhookConfiguration and ValidatingWebhookConfiguration of the operator: built here (pure, also
//! what the plain-install manifests contain), applied by the operator with `--webhook-register`, and their
//! caBundle kept current with `--webhook-self-signed`.
use anyhow::Context as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tracing::info;

use super::{MUTATE_PATH, VALIDATE_BACKUP_PATH, VALIDATE_PATH};

/// Name of the MutatingWebhookConfiguration.
pub const MUTATING_CONFIGURATION: &str = "aerospike-operator-mutating-webhook-configuration";
/// Name of the ValidatingWebhookConfiguration.
pub const VALIDATING_CONFIGURATION: &str = "aerospike-operator-validating-webhook-configuration";
/// Name of the mutating webhook (the reference's).
pub const MUTATING_WEBHOOK: &str = "maerospikecluster.kb.io";
/// Name of the validating webhook (the reference's).
pub const VALIDATING_WEBHOOK: &str = "vaerospikecluster.kb.io";
/// The AerospikeBackup validating webhook's name (the reference's).
pub const VALIDATING_BACKUP_WEBHOOK: &str = "vaerospikebackup.kb.io";
/// The eviction webhook's name (the reference's).
pub const VALIDATING_EVICTION_WEBHOOK: &str = "vaerospikeeviction.kb.io";
/// Our webhooks in the ValidatingWebhookConfiguration.
const VALIDATING_WEBHOOKS: [&str; 3] = [VALIDATING_WEBHOOK, VALIDATING_BACKUP_WEBHOOK, VALIDATING_EVICTION_WEBHOOK];
/// Field manager of the operator's writes to the configurations.
const FIELD_MANAGER: &str = "aerospike-kubernetes-operator-webhook";

/// Where the API server sends admission reviews.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A Service in the cluster (port 443 unless given).
    Service { name: String, namespace: String, port: i32 },
    /// A base URL, e.g. `https://127.0.0.1:9443` for an operator running on the control plane's host.
    Url(String),
}

impl Target {
    /// `name.namespace` or `name.namespace:port`.
    pub fn parse_service(s: &str) -> anyhow::Result<Target> {
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<i32>().with_context(|| format!("port of --webhook-service {s:?}"))?),
            None => (s, 443),
        };
        let (name, namespace) = host
            .split_once('.')
            .filter(|(n, ns)| !n.is_empty() && !ns.is_empty() && !ns.contains('.'))
            .with_context(|| format!("--webhook-service {s:?} is not name.namespace[:port]"))?;
        Ok(Target::Service { name: name.into(), namespace: namespace.into(), port })
    }

    pub fn parse_url(s: &str) -> anyhow::Result<Target> {
        anyhow::ensure!(s.starts_with("https://"), "--webhook-url {s:?} must start with https://");
        Ok(Target::Url(s.trim_end_matches('/').to_string()))
    }

    /// The names the serving certificate must carry for this target.
    pub fn certificate_names(&self) -> Vec<String> {
        match self {
            Target::Service { name, namespace, .. } => vec![
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
                format!("{name}.{namespace}"),
                name.clone(),
            ],
            Target::Url(url) => {
                let rest = url.trim_start_matches("https://");
                let authority = rest.split('/').next().unwrap_or(rest);
                let host = match authority.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or(v6).to_string(),
                    None => authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority).to_string(),
                };
                let mut names = vec![host];
                for extra in ["localhost", "127.0.0.1"] {
                    if !names.iter().any(|n| n == extra) {
                        names.push(extra.to_string());
                    }
                }
                names
            }
        }
    }

    fn client_config(&self, path: &str, ca_bundle: Option<&[u8]>) -> WebhookClientConfig {
        let ca_bundle = ca_bundle.map(|b| ByteString(b.to_vec()));
        match self {
            Target::Service { name, namespace, port } => WebhookClientConfig {
                ca_bundle,
                service: Some(ServiceReference {
                    name: name.clone(),
                    namespace: namespace.clone(),
                    path: Some(path.into()),
                    port: Some(*port),
                }),
                url: None,
            },
            Target::Url(base) => WebhookClientConfig { ca_bundle, service: None, url: Some(format!("{base}{path}")) },
        }
    }
}

fn rules() -> Vec<RuleWithOperations> {
    rules_for("v1", "aerospikeclusters")
}

fn rules_for(version: &str, resource: &str) -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        api_groups: Some(vec![crate::api::GROUP.into()]),
        api_versions: Some(vec![version.into()]),
        operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
        resources: Some(vec![resource.into()]),
        scope: Some("Namespaced".into()),
    }]
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        labels: Some(
            [(crate::desired::LABEL_MANAGED_BY.to_string(), crate::desired::MANAGER_NAME.to_string())]
                .into_iter()
                .collect(),
        ),
        ..Default::default()
    }
}

/// The MutatingWebhookConfiguration (defaulting) for `target`; `ca_bundle` is the PEM CA the API server trusts
/// for the webhook (omit it where something else injects it).
pub fn mutating_configuration(target: &Target, ca_bundle: Option<&[u8]>) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: meta(MUTATING_CONFIGURATION),
        webhooks: Some(vec![MutatingWebhook {
            name: MUTATING_WEBHOOK.into(),
            admission_review_versions: vec!["v1".into()],
            client_config: target.client_config(MUTATE_PATH, ca_bundle),
            failure_policy: Some("Fail".into()),
            side_effects: "None".into(),
            rules: Some(rules()),
            timeout_seconds: Some(10),
            ..Default::default()
        }]),
    }
}

/// The ValidatingWebhookConfiguration for `target` (see [`mutating_configuration`]).
pub fn validating_configuration(target: &Target, ca_bundle: Option<&[u8]>) -> ValidatingWebhookConfiguration {
    ValidatingWebhookConfiguration {
        metadata: meta(VALIDATING_CONFIGURATION),
        webhooks: Some(vec![
            ValidatingWebhook {
                name: VALIDATING_WEBHOOK.into(),
                admission_review_versions: vec!["v1".into()],
                client_config: target.client_config(VALIDATE_PATH, ca_bundle),
                failure_policy: Some("Fail".into()),
                side_effects: "None".into(),
                rules: Some(rules()),
                timeout_seconds: Some(10),
                ..Default::default()
            },
            ValidatingWebhook {
                name: VALIDATING_BACKUP_WEBHOOK.into(),
                admission_review_versions: vec!["v1".into()],
                client_config: target.client_config(VALIDATE_BACKUP_PATH, ca_bundle),
                failure_policy: Some("Fail".into()),
                side_effects: "None".into(),
                rules: Some(rules_for("v1beta1", "aerospikebackups")),
                timeout_seconds: Some(10),
                ..Default::default()
            },
            // Evictions of every pod come here (an objectSelector cannot select a subresource's parent); all but the
            // operator's Aerospike pods are allowed at once. Ignore, as the reference: while no operator replica
            // answers, node drains are not held up, and the PodDisruptionBudget alone limits them.
            ValidatingWebhook {
                name: VALIDATING_EVICTION_WEBHOOK.into(),
                admission_review_versions: vec!["v1".into()],
                client_config: target.client_config(super::eviction::VALIDATE_EVICTION_PATH, ca_bundle),
                failure_policy: Some("Ignore".into()),
                side_effects: "None".into(),
                rules: Some(vec![RuleWithOperations {
                    api_groups: Some(vec![String::new()]),
                    api_versions: Some(vec!["v1".into()]),
                    operations: Some(vec!["CREATE".into()]),
                    resources: Some(vec!["pods/eviction".into()]),
                    scope: Some("Namespaced".into()),
                }]),
                timeout_seconds: Some(10),
                ..Default::default()
            },
        ]),
    }
}

/// Creates or updates both configurations (server-side apply).
pub async fn apply(client: &Client, target: &Target, ca_bundle: Option<&[u8]>) -> anyhow::Result<()> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let m: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    m.patch(MUTATING_CONFIGURATION, &params, &Patch::Apply(&mutating_configuration(target, ca_bundle)))
        .await
        .context("applying the MutatingWebhookConfiguration")?;
    let v: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    v.patch(VALIDATING_CONFIGURATION, &params, &Patch::Apply(&validating_configuration(target, ca_bundle)))
        .await
        .context("applying the ValidatingWebhookConfiguration")?;
    Ok(())
}

/// Sets the caBundle of our webhooks in configurations installed by someone else (the plain manifests), when it
/// differs. Missing configurations are left alone.
pub async fn sync_ca_bundle(client: &Client, ca_bundle: &[u8]) -> anyhow::Result<()> {
    let want = ByteString(ca_bundle.to_vec());
    let m: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    if let Some(mut cfg) = m.get_opt(MUTATING_CONFIGURATION).await? {
        let mut changed = false;
        for w in cfg.webhooks.iter_mut().flatten().filter(|w| w.name == MUTATING_WEBHOOK) {
            if w.client_config.ca_bundle.as_ref() != Some(&want) {
                w.client_config.ca_bundle = Some(want.clone());
                changed = true;
            }
        }
        if changed {
            m.replace(MUTATING_CONFIGURATION, &PostParams::default(), &cfg).await?;
            info!(name = MUTATING_CONFIGURATION, "webhook caBundle updated");
        }
    }
    let v: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    if let Some(mut cfg) = v.get_opt(VALIDATING_CONFIGURATION).await? {
        let mut changed = false;
        for w in cfg.webhooks.iter_mut().flatten().filter(|w| VALIDATING_WEBHOOKS.contains(&w.name.as_str())) {
            if w.client_config.ca_bundle.as_ref() != Some(&want) {
                w.client_config.ca_bundle = Some(want.clone());
                changed = true;
            }
        }
        if changed {
            v.replace(VALIDATING_CONFIGURATION, &PostParams::default(), &cfg).await?;
            info!(name = VALIDATING_CONFIGURATION, "webhook caBundle updated");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse_service("aerospike-operator-webhook.ops").unwrap(),
            Target::Service { name: "aerospike-operator-webhook".into(), namespace: "ops".into(), port: 443 }
        );
        assert_eq!(
            Target::parse_service("w.ops:8443").unwrap(),
            Target::Service { name: "w".into(), namespace: "ops".into(), port: 8443 }
        );
        assert!(Target::parse_service("no-namespace").is_err());
        assert!(Target::parse_url("http://127.0.0.1:9443").is_err());
        let url = Target::parse_url("https://127.0.0.1:9443/").unwrap();
        assert_eq!(url, Target::Url("https://127.0.0.1:9443".into()));
        assert_eq!(url.certificate_names(), vec!["127.0.0.1".to_string(), "localhost".to_string()]);
        assert_eq!(
            Target::parse_service("w.ops").unwrap().certificate_names(),
            vec!["w.ops.svc", "w.ops.svc.cluster.local", "w.ops", "w"]
        );
    }

    #[test]
    fn configurations() {
        let t = Target::parse_service("aerospike-operator-webhook.ops").unwrap();
        let m = serde_json::to_value(mutating_configuration(&t, Some(b"CA"))).unwrap();
        assert_eq!(m["apiVersion"], "admissionregistration.k8s.io/v1");
        assert_eq!(m["kind"], "MutatingWebhookConfiguration");
        let w = &m["webhooks"][0];
        assert_eq!(w["name"], "maerospikecluster.kb.io");
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["sideEffects"], "None");
        assert_eq!(w["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(w["clientConfig"]["caBundle"], "Q0E=");
        assert_eq!(
            w["clientConfig"]["service"],
            json!({"name": "aerospike-operator-webhook", "namespace": "ops", "port": 443,
                   "path": "/mutate-asdb-aerospike-com-v1-aerospikecluster"})
        );
        assert_eq!(
            w["rules"],
            json!([{"apiGroups": ["asdb.aerospike.com"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                    "resources": ["aerospikeclusters"], "scope": "Namespaced"}])
        );
        let u = Target::parse_url("https://127.0.0.1:9443").unwrap();
        let v = serde_json::to_value(validating_configuration(&u, None)).unwrap();
        assert_eq!(v["webhooks"][0]["name"], "vaerospikecluster.kb.io");
        let e = &v["webhooks"][2];
        assert_eq!(e["name"], "vaerospikeeviction.kb.io");
        assert_eq!(e["failurePolicy"], "Ignore");
        assert_eq!(e["clientConfig"], json!({"url": "https://127.0.0.1:9443/validate-eviction"}));
        assert_eq!(
            e["rules"],
            json!([{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods/eviction"],
                    "scope": "Namespaced"}])
        );
        assert_eq!(
            v["webhooks"][0]["clientConfig"],
            json!({"url": "https://127.0.0.1:9443/validate-asdb-aerospike-com-v1-aerospikecluster"})
        );
    }
}
