//! Setting the bench up on the plane: CRDs, namespaces, the operator's ServiceAccount kubeconfig, flow schemas.
use super::*;

pub(super) async fn install_crds(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in aerospike_kubernetes_operator::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&crd))
            .await
            .with_context(|| format!("the apiserver refused CRD {name}"))?;
        poll(&format!("CRD {name} Established"), Duration::from_secs(60), || async {
            let crd = crds.get(&name).await.ok()?;
            crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
        })
        .await?;
    }
    Ok(())
}

pub(super) async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating namespace {name}")),
    }
}

/// Pods cannot be created before their namespace's `default` ServiceAccount exists; waiting here keeps that
/// out of the measured time.
pub(super) async fn wait_default_service_account(client: &Client, ns: &str) -> Result<()> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    poll(&format!("ServiceAccount {ns}/default"), Duration::from_secs(60), || async {
        api.get_opt("default").await.ok().flatten().map(|_| ())
    })
    .await
}

/// A ServiceAccount for the operator, bound to a ClusterRole of the operator's own rules, and a kubeconfig with a
/// token of it (in the cluster's state folder, removed with it).
pub(super) async fn operator_kubeconfig(client: &Client, cluster: &LocalCluster) -> Result<PathBuf> {
    let pp = PatchParams::apply(MANAGER).force();
    let sa: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": OPERATOR_SA, "namespace": OPERATOR_NS}
    }))?;
    Api::<ServiceAccount>::namespaced(client.clone(), OPERATOR_NS).patch(OPERATOR_SA, &pp, &Patch::Apply(&sa)).await?;
    let mut rules = aerospike_kubernetes_operator::rbac::namespaced_rules();
    rules.extend(aerospike_kubernetes_operator::rbac::cluster_rules());
    let role = ClusterRole {
        metadata: kube::api::ObjectMeta { name: Some(OPERATOR_ROLE.into()), ..Default::default() },
        rules: Some(rules),
        ..Default::default()
    };
    let mut role_json = serde_json::to_value(&role)?;
    role_json["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
    role_json["kind"] = json!("ClusterRole");
    Api::<ClusterRole>::all(client.clone()).patch(OPERATOR_ROLE, &pp, &Patch::Apply(&role_json)).await?;
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": OPERATOR_ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NS}]
    }))?;
    Api::<ClusterRoleBinding>::all(client.clone()).patch(OPERATOR_ROLE, &pp, &Patch::Apply(&binding)).await?;
    install_flow_schemas(client).await?;
    let request = TokenRequest {
        spec: TokenRequestSpec { expiration_seconds: Some(4 * 3600), ..Default::default() },
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::namespaced(client.clone(), OPERATOR_NS)
        .create_token_request(OPERATOR_SA, &PostParams::default(), &request)
        .await
        .context("requesting a token for the operator's ServiceAccount")?
        .status
        .map(|s| s.token)
        .ok_or_else(|| anyhow!("the TokenRequest came back without a token"))?;
    let admin = std::fs::read_to_string(cluster.kubeconfig_path())?;
    let mut doc: serde_json::Value = serde_saphyr::from_str(&admin)?;
    let user = "aerospike-operator";
    doc["users"] = json!([{"name": user, "user": {"token": token}}]);
    if let Some(contexts) = doc["contexts"].as_array_mut() {
        for c in contexts {
            c["context"]["user"] = serde_json::Value::from(user);
        }
    }
    let path = cluster.state_dir().join("operator.kubeconfig");
    ako_testbed::cluster::pki::write_private(&path, &serde_saphyr::to_string(&doc)?)?;
    Ok(path)
}

/// FlowSchemas that sort the operator's requests by kind (see the module docs), in the stock `workload-low`
/// priority level like the `service-accounts` schema they take the requests from; waits until the apiserver's
/// APF controller has processed them (it sets their `Dangling` condition).
pub(super) async fn install_flow_schemas(client: &Client) -> Result<()> {
    let api: Api<FlowSchema> = Api::all(client.clone());
    for (name, verbs) in FLOW_SCHEMAS {
        let fs = json!({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
            "metadata": {"name": name},
            "spec": {
                "matchingPrecedence": 300,
                "priorityLevelConfiguration": {"name": "workload-low"},
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [{
                    "subjects": [{"kind": "ServiceAccount", "serviceAccount": {"name": OPERATOR_SA, "namespace": OPERATOR_NS}}],
                    "resourceRules": [{"verbs": verbs, "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": true}]
                }]
            }
        });
        api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&fs))
            .await
            .with_context(|| format!("creating FlowSchema {name}"))?;
    }
    for (name, _) in FLOW_SCHEMAS {
        poll(&format!("FlowSchema {name} processed by the apiserver"), Duration::from_secs(60), || async {
            let fs = api.get(name).await.ok()?;
            let conds = fs.status?.conditions?;
            conds
                .iter()
                .any(|c| c.type_.as_deref() == Some("Dangling") && c.status.as_deref() == Some("False"))
                .then_some(())
        })
        .await?;
    }
    Ok(())
}
