//! OLM end to end, AllNamespaces (flow 3): a Subscription in `operators`, whose OperatorGroup `global-operators`
//! has no target namespaces. Its own control plane: an AllNamespaces group intersects every other group, and OLM
//! refuses two intersecting groups providing the same API.
use std::time::Duration;

use aerospike_kubernetes_operator::controller::Scope;
use ako_simulator::{Simulator, SimulatorOptions};
use ako_testbed::cluster::{ClusterOptions, LocalCluster};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use xtask::olm::{
    self, Approval, CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, GLOBAL_OPERATOR_GROUP, InProcessOperator,
    OPERATORS_NAMESPACE, Olm, OlmKind, TARGET_NAMESPACES_ANNOTATION,
};
use xtask::project::{self, PACKAGE};

const TIMEOUT: Duration = Duration::from_secs(300);

/// A folder removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_namespaces_install_copies_the_csv_everywhere_with_cluster_wide_rbac() {
    let cluster = LocalCluster::start(ClusterOptions::default()).await.unwrap();
    let catalog = TempDir(std::env::temp_dir().join(format!("ako-olm-e2e-all-{}", std::process::id())));
    olm::prepare_catalog(&project::default_root(), &catalog.0).unwrap();
    let olm = Olm::start(&cluster, &catalog.0).await.unwrap();
    let client = cluster.client().await;
    let ns = OPERATORS_NAMESPACE;
    let csv_name = project::csv_name(&project::workspace_version());

    olm::apply(&client, &olm::catalog_source(CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, olm.catalog_address()))
        .await
        .unwrap();
    // The global OperatorGroup, as upstream's install makes it: no targets.
    let group = olm::olm_api(&client, OlmKind::OperatorGroup, Some(ns)).get(GLOBAL_OPERATOR_GROUP).await.unwrap();
    assert!(group.data["spec"]["targetNamespaces"].is_null(), "{:#}", group.data["spec"]);
    olm::apply(&client, &olm::subscription(ns, CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, Approval::Automatic, None))
        .await
        .unwrap();
    let csv = match olm::wait_installed(&client, ns, Some(&csv_name), TIMEOUT).await {
        Ok(csv) => csv,
        Err(e) => panic!("{e:#}\n{}", olm.diagnose(&client, ns).await),
    };
    assert_eq!(olm::csv_phase(&csv), "Succeeded");
    assert_eq!(csv.annotations().get(TARGET_NAMESPACES_ANNOTATION).map(String::as_str), Some(""));
    let d = Api::<Deployment>::namespaced(client.clone(), ns).get(PACKAGE).await.unwrap();
    assert!(d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0) >= 1);
    let watch = olm::watch_namespace(&client, ns, PACKAGE).await.unwrap();
    assert_eq!(watch, "", "WATCH_NAMESPACE is empty: every namespace");
    assert_eq!(Scope::parse(&watch), Scope::All);

    // Copied CSVs in every namespace, including one created after the install.
    olm::ensure_namespace(&client, "created-later").await.unwrap();
    for target in ["default", "created-later"] {
        let copied = olm::wait_for(&format!("the copied CSV in {target}"), TIMEOUT, || {
            let api = olm::olm_api(&client, OlmKind::ClusterServiceVersion, Some(target));
            let name = csv_name.clone();
            async move { Ok(api.get_opt(&name).await?.filter(|c| c.data["status"]["reason"] == "Copied")) }
        })
        .await;
        let copied = match copied {
            Ok(c) => c,
            Err(e) => panic!("{e:#}\n{}", olm.diagnose(&client, target).await),
        };
        assert_eq!(copied.labels().get("olm.copiedFrom").map(String::as_str), Some(ns));
    }

    // Cluster-wide RBAC: ClusterRoleBindings for the ServiceAccount, valid in every namespace and across them.
    let user = format!("system:serviceaccount:{ns}:{PACKAGE}");
    let bindings = Api::<ClusterRoleBinding>::all(client.clone()).list(&ListParams::default()).await.unwrap();
    assert!(
        bindings.items.iter().any(|b| b
            .subjects
            .iter()
            .flatten()
            .any(|s| s.kind == "ServiceAccount" && s.name == PACKAGE && s.namespace.as_deref() == Some(ns))),
        "no ClusterRoleBinding for {ns}/{PACKAGE}"
    );
    for n in [Some("default"), Some("created-later"), None] {
        for (verb, group, resource) in [
            ("list", "asdb.aerospike.com", "aerospikeclusters"),
            ("watch", "asdb.aerospike.com", "aerospikeclusters"),
            ("patch", "asdb.aerospike.com", "aerospikeclusters/status"),
            ("create", "apps", "statefulsets"),
            ("list", "", "pods"),
        ] {
            assert!(
                olm::can_i(&client, &user, verb, group, resource, n).await.unwrap(),
                "{user} cannot {verb} {resource} in {n:?}"
            );
        }
    }

    // The operator with that scope and ServiceAccount reconciles a cluster in a namespace nobody named.
    let kubeconfig =
        olm::service_account_kubeconfig(&client, cluster.kubeconfig_path(), ns, PACKAGE, Duration::from_secs(3600))
            .await
            .unwrap();
    let mut operator = InProcessOperator::start_with_olm_webhooks(
        olm::client_from_kubeconfig_yaml(&kubeconfig).await.unwrap(),
        &watch,
        &client,
        ns,
    )
    .await
    .unwrap();
    let sim = Simulator::start(client.clone(), SimulatorOptions::default()).await;
    let mut example = olm::alm_examples(&csv).unwrap().into_iter().next().unwrap();
    example["metadata"]["namespace"] = "created-later".into();
    let name = example["metadata"]["name"].as_str().unwrap().to_string();
    olm::apply(&client, &example).await.unwrap();
    let clusters = olm::aerospike_clusters(&client, "created-later");
    let done = olm::wait_for("the alm-example cluster Completed in created-later", TIMEOUT, || {
        operator.ensure_running().unwrap();
        let (clusters, name) = (clusters.clone(), name.clone());
        async move { Ok(Some(clusters.get(&name).await?).filter(|c| olm::cluster_phase(c) == "Completed")) }
    })
    .await;
    if let Err(e) = done {
        let c = clusters.get_opt(&name).await.unwrap();
        panic!("{e:#}\nstatus: {:#}", c.map(|c| c.data["status"].clone()).unwrap_or_default());
    }
    drop(operator);
    drop(sim);
    olm.stop();
    cluster.stop();
}
