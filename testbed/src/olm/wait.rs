//! Waiting and reading state: polling with a deadline, the WATCH_NAMESPACE OLM computed, the ServiceAccount
//! OLM created as a kubeconfig, access reviews, and a namespace's description for timeout messages.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::json;

use super::objects::{OlmKind, catalog_source_state, olm_api};
use super::{GLOBAL_CATALOG_NAMESPACE, TARGET_NAMESPACES_ANNOTATION};

/// Polls `check` (every 500 ms) until it returns `Some`, for at most `timeout`. A check error is remembered and
/// retried (the API may be briefly unavailable); the timeout error names `what` and the last error.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last: Option<String> = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = Some(format!("{e:#}")),
        }
        if Instant::now() >= deadline {
            match last {
                Some(e) => bail!("timed out after {timeout:?} waiting for {what} (last error: {e})"),
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The WATCH_NAMESPACE OLM computed for the operator Deployment `deployment` in `namespace`: the
/// `olm.targetNamespaces` annotation of its pod template, which the Deployment's Downward API env resolves.
/// Fails if the container does not take WATCH_NAMESPACE from that annotation.
pub async fn watch_namespace(client: &Client, namespace: &str, deployment: &str) -> Result<String> {
    let d = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(deployment)
        .await
        .with_context(|| format!("reading the operator Deployment {namespace}/{deployment}"))?;
    let template = d.spec.as_ref().map(|s| &s.template).context("Deployment without spec")?;
    let annotations = template.metadata.as_ref().and_then(|m| m.annotations.clone()).unwrap_or_default();
    let value = annotations.get(TARGET_NAMESPACES_ANNOTATION).with_context(|| {
        format!("the pod template of {namespace}/{deployment} has no {TARGET_NAMESPACES_ANNOTATION} annotation")
    })?;
    let from_annotation = template.spec.as_ref().is_some_and(|s| {
        s.containers.iter().any(|c| {
            c.env.iter().flatten().any(|e| {
                e.name == "WATCH_NAMESPACE"
                    && e.value_from.as_ref().and_then(|v| v.field_ref.as_ref()).is_some_and(|f| {
                        f.field_path == format!("metadata.annotations['{TARGET_NAMESPACES_ANNOTATION}']")
                    })
            })
        })
    });
    if !from_annotation {
        bail!(
            "no container of {namespace}/{deployment} takes WATCH_NAMESPACE from the {TARGET_NAMESPACES_ANNOTATION} annotation"
        );
    }
    Ok(value.clone())
}

/// A kubeconfig (YAML) for the ServiceAccount `namespace/name` with a fresh token (TokenRequest, `ttl`), on the API
/// server and CA of `admin_kubeconfig`: the operator then acts with exactly the RBAC OLM gave it.
pub async fn service_account_kubeconfig(
    client: &Client,
    admin_kubeconfig: &Path,
    namespace: &str,
    name: &str,
    ttl: Duration,
) -> Result<String> {
    let request = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(ttl.as_secs() as i64), ..Default::default() },
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("requesting a token for the ServiceAccount {namespace}/{name}"))?
        .status
        .context("TokenRequest without status")?
        .token;
    let admin = Kubeconfig::read_from(admin_kubeconfig)?;
    let cluster =
        admin.clusters.first().and_then(|c| c.cluster.clone()).context("the admin kubeconfig has no cluster")?;
    let user = format!("system:serviceaccount:{namespace}:{name}");
    let yaml = serde_saphyr::to_string(&json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": cluster.server,
            "certificate-authority-data": cluster.certificate_authority_data,
        }}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": user, "namespace": namespace}}],
        "current-context": "operator",
    }))?;
    Ok(yaml)
}

/// A client from a kubeconfig given as YAML.
pub async fn client_from_kubeconfig_yaml(yaml: &str) -> Result<Client> {
    let kc = Kubeconfig::from_yaml(yaml)?;
    Ok(Client::try_from(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?)?)
}

/// Whether `user` may `verb` `resource` (of `group`) in `namespace` (`None`: cluster-wide), by a
/// SubjectAccessReview: how tests check the RBAC OLM created.
pub async fn can_i(
    client: &Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> Result<bool> {
    can_i_on(client, user, verb, group, resource, namespace, None).await
}

/// [`can_i`] on one object by name (`None`: any object of the resource).
pub async fn can_i_on(
    client: &Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<bool> {
    use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
    let mut groups = vec!["system:authenticated".to_string()];
    if let Some((ns, _)) = user.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':')) {
        groups.extend(["system:serviceaccounts".to_string(), format!("system:serviceaccounts:{ns}")]);
    }
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            groups: Some(groups),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_string()),
                group: Some(group.to_string()),
                // `pods/exec`: resource and subresource.
                resource: Some(resource.split_once('/').map_or(resource, |(r, _)| r).to_string()),
                subresource: resource.split_once('/').map(|(_, sub)| sub.to_string()),
                namespace: namespace.map(str::to_string),
                name: name.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone()).create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// A readable account of OLM's view of `namespace`: the Subscriptions' status, InstallPlans, CSVs (phase, reason,
/// conditions) and the global catalog's connection state. Used in timeout messages.
pub async fn describe(client: &Client, namespace: &str) -> String {
    let mut out = format!("--- OLM objects in namespace {namespace} ---\n");
    let list = |kind| async move { olm_api(client, kind, Some(namespace)).list(&ListParams::default()).await };
    match list(OlmKind::Subscription).await {
        Ok(l) => {
            for s in l.items {
                let st = &s.data["status"];
                out.push_str(&format!(
                    "Subscription {}: state={} currentCSV={} installedCSV={} installPlan={}\n",
                    s.name_any(),
                    st["state"].as_str().unwrap_or("-"),
                    st["currentCSV"].as_str().unwrap_or("-"),
                    st["installedCSV"].as_str().unwrap_or("-"),
                    st["installPlanRef"]["name"].as_str().unwrap_or("-"),
                ));
                for c in st["conditions"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "  condition {}={} {}: {}\n",
                        c["type"], c["status"], c["reason"], c["message"]
                    ));
                }
            }
        }
        Err(e) => out.push_str(&format!("(listing Subscriptions: {e})\n")),
    }
    match list(OlmKind::InstallPlan).await {
        Ok(l) => {
            for p in l.items {
                out.push_str(&format!(
                    "InstallPlan {}: phase={} approval={} approved={} csvs={}\n",
                    p.name_any(),
                    p.data["status"]["phase"].as_str().unwrap_or("-"),
                    p.data["spec"]["approval"].as_str().unwrap_or("-"),
                    p.data["spec"]["approved"],
                    p.data["spec"]["clusterServiceVersionNames"],
                ));
                for c in p.data["status"]["conditions"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "  condition {}={} {}: {}\n",
                        c["type"], c["status"], c["reason"], c["message"]
                    ));
                }
            }
        }
        Err(e) => out.push_str(&format!("(listing InstallPlans: {e})\n")),
    }
    match list(OlmKind::ClusterServiceVersion).await {
        Ok(l) => {
            for c in l.items {
                let st = &c.data["status"];
                out.push_str(&format!(
                    "CSV {}: phase={} reason={} message={}\n",
                    c.name_any(),
                    st["phase"].as_str().unwrap_or("-"),
                    st["reason"].as_str().unwrap_or("-"),
                    st["message"].as_str().unwrap_or("-"),
                ));
                let conditions = st["conditions"].as_array().cloned().unwrap_or_default();
                for k in conditions.iter().rev().take(4).rev() {
                    out.push_str(&format!("  {} {}: {}\n", k["phase"], k["reason"], k["message"]));
                }
            }
        }
        Err(e) => out.push_str(&format!("(listing CSVs: {e})\n")),
    }
    match olm_api(client, OlmKind::OperatorGroup, Some(namespace)).list(&ListParams::default()).await {
        Ok(l) => {
            for g in l.items {
                out.push_str(&format!(
                    "OperatorGroup {}: targets={} status.namespaces={}\n",
                    g.name_any(),
                    g.data["spec"]["targetNamespaces"],
                    g.data["status"]["namespaces"]
                ));
            }
        }
        Err(e) => out.push_str(&format!("(listing OperatorGroups: {e})\n")),
    }
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for ns in [GLOBAL_CATALOG_NAMESPACE, namespace] {
        if let Ok(l) = olm_api(client, OlmKind::CatalogSource, Some(ns)).list(&ListParams::default()).await {
            for s in l.items {
                sources.insert(
                    format!("{ns}/{}", s.name_any()),
                    format!(
                        "address={} state={}",
                        s.data["spec"]["address"].as_str().unwrap_or("-"),
                        catalog_source_state(&s)
                    ),
                );
            }
        }
    }
    for (k, v) in sources {
        out.push_str(&format!("CatalogSource {k}: {v}\n"));
    }
    out
}
