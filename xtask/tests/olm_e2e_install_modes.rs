//! OLM end to end, install modes, on one local control plane with the real OLM (olm and catalog operators as host
//! processes) and our catalog served by `opm serve`: a CatalogSource `aerospike` in namespace `aerospike` (by
//! address), an OperatorGroup, a Subscription to package `aerospike-kubernetes-operator` channel `stable`.
//!
//! The tests share the cluster and OLM and run side by side: their OperatorGroups target disjoint namespaces, as
//! OLM requires of groups providing the same API. AllNamespaces, which intersects every group, has its own file
//! (olm_e2e_all_namespaces.rs).
//!
//! - OwnNamespace and SingleNamespace (flow 1), MultiNamespace (flow 2);
//! - the operator, run in-process with the ServiceAccount OLM made and the WATCH_NAMESPACE OLM computed,
//!   reconciles the CSV's alm-examples cluster (flow 6);
//! - uninstall leaves the CRD, the clusters and their PVCs (flow 7).
use std::path::PathBuf;
use std::time::Duration;

use ako_simulator::{Simulator, SimulatorOptions};
use ako_testbed::cluster::{ClusterOptions, LocalCluster};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use xtask::olm::{
    self, Approval, CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, InProcessOperator, Olm, OlmKind,
    TARGET_NAMESPACES_ANNOTATION,
};
use xtask::project::{self, PACKAGE};

const CRD: &str = "aerospikeclusters.asdb.aerospike.com";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(300);

struct Env {
    cluster: LocalCluster,
    olm: Olm,
    catalog: PathBuf,
}

/// The cluster, OLM and the CatalogSource shared by this file's tests; stopped when the test process exits.
async fn env() -> &'static Env {
    static ENV: tokio::sync::OnceCell<Result<Env, String>> = tokio::sync::OnceCell::const_new();
    extern "C" fn stop() {
        if let Some(Ok(env)) = ENV.get() {
            env.olm.stop();
            env.cluster.stop();
            let _ = std::fs::remove_dir_all(&env.catalog);
        }
    }
    let env = ENV
        .get_or_init(|| async {
            let started = async {
                let cluster = LocalCluster::start(ClusterOptions::default()).await?;
                let catalog = std::env::temp_dir().join(format!("ako-olm-e2e-catalog-{}", std::process::id()));
                olm::prepare_catalog(&project::default_root(), &catalog)?;
                let olm = Olm::start(&cluster, &catalog).await?;
                let client = cluster.client().await;
                olm::apply(
                    &client,
                    &olm::catalog_source(CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, olm.catalog_address()),
                )
                .await?;
                anyhow::Ok(Env { cluster, olm, catalog })
            }
            .await
            .map_err(|e| format!("{e:#}"));
            if started.is_ok() {
                // SAFETY: registers a plain extern "C" function.
                unsafe { libc::atexit(stop) };
            }
            started
        })
        .await;
    env.as_ref().unwrap_or_else(|e| panic!("the cluster with OLM did not start: {e}"))
}

fn csv_name() -> String {
    project::csv_name(&project::workspace_version())
}

fn sa_user(ns: &str) -> String {
    format!("system:serviceaccount:{ns}:{PACKAGE}")
}

/// Namespaces, the OperatorGroup and an Automatic Subscription from the global CatalogSource; waits for the
/// installed CSV to be Succeeded and returns it.
async fn install(env: &Env, client: &Client, ns: &str, targets: &[&str]) -> DynamicObject {
    olm::ensure_namespace(client, ns).await.unwrap();
    for t in targets {
        olm::ensure_namespace(client, t).await.unwrap();
    }
    olm::apply(client, &olm::operator_group(PACKAGE, ns, Some(targets))).await.unwrap();
    olm::apply(client, &olm::subscription(ns, CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, Approval::Automatic, None))
        .await
        .unwrap();
    match olm::wait_installed(client, ns, Some(&csv_name()), INSTALL_TIMEOUT).await {
        Ok(csv) => csv,
        Err(e) => panic!("{e:#}\n{}", env.olm.diagnose(client, ns).await),
    }
}

/// What every install mode must show: the InstallPlan completed every step, the CSV Succeeded with the target
/// namespaces OLM computed, the CRD Established, the operator Deployment available with WATCH_NAMESPACE taken
/// from `olm.targetNamespaces`, and its ServiceAccount. Returns the WATCH_NAMESPACE value.
async fn assert_installed(env: &Env, client: &Client, ns: &str, csv: &DynamicObject, expected_targets: &str) -> String {
    let diagnose = || async { env.olm.diagnose(client, ns).await };
    assert_eq!(olm::csv_phase(csv), "Succeeded");
    assert_eq!(
        csv.annotations().get(TARGET_NAMESPACES_ANNOTATION).map(String::as_str),
        Some(expected_targets),
        "the CSV's target namespaces\n{}",
        diagnose().await
    );

    // The InstallPlan the Subscription points at: approved, Complete, every step applied.
    let sub = olm::olm_api(client, OlmKind::Subscription, Some(ns)).get(PACKAGE).await.unwrap();
    let plan_name =
        sub.data["status"]["installPlanRef"]["name"].as_str().expect("the Subscription names its InstallPlan");
    let plan = olm::olm_api(client, OlmKind::InstallPlan, Some(ns)).get(plan_name).await.unwrap();
    assert_eq!(plan.data["status"]["phase"], "Complete", "InstallPlan {plan_name}\n{}", diagnose().await);
    assert_eq!(plan.data["spec"]["approved"], true);
    assert_eq!(plan.data["spec"]["clusterServiceVersionNames"], json!([csv_name()]));
    let steps = plan.data["status"]["plan"].as_array().expect("InstallPlan steps");
    let kinds: Vec<&str> = steps.iter().filter_map(|s| s["resource"]["kind"].as_str()).collect();
    for kind in ["ClusterServiceVersion", "CustomResourceDefinition"] {
        assert!(kinds.contains(&kind), "no {kind} step in {kinds:?}");
    }
    for s in steps {
        let status = s["status"].as_str().unwrap_or_default();
        assert!(
            matches!(status, "Created" | "Present"),
            "step {} {} is {status}",
            s["resource"]["kind"],
            s["resource"]["name"]
        );
    }

    // The CRD.
    let crd = Api::<CustomResourceDefinition>::all(client.clone()).get(CRD).await.unwrap();
    assert!(olm::crd_established(&crd), "{CRD} not Established");

    // The operator Deployment (available on kwok's fake nodes) and its ServiceAccount, owned by the CSV.
    let d = Api::<Deployment>::namespaced(client.clone(), ns).get(PACKAGE).await.unwrap();
    assert_eq!(d.labels().get("olm.owner").map(String::as_str), Some(csv_name().as_str()));
    let available = d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
    assert!(available >= 1, "the operator Deployment has no available replica: {:?}", d.status);
    Api::<ServiceAccount>::namespaced(client.clone(), ns).get(PACKAGE).await.expect("the operator's ServiceAccount");
    let watch = olm::watch_namespace(client, ns, PACKAGE).await.unwrap();
    assert_eq!(watch, expected_targets, "WATCH_NAMESPACE resolves to the OperatorGroup's targets");
    // The pods themselves (fake, on kwok's nodes) carry the annotation the Downward API reads.
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("app.kubernetes.io/name=aerospike-kubernetes-operator"))
        .await
        .unwrap()
        .items;
    assert!(!pods.is_empty(), "no operator pods in {ns}");
    for p in &pods {
        assert_eq!(p.annotations().get(TARGET_NAMESPACES_ANNOTATION), Some(&watch), "pod {}", p.name_any());
    }
    watch
}

/// The ServiceAccount may manage AerospikeClusters and StatefulSets in exactly `allowed` (checked against
/// `denied` too), and nothing cluster-wide.
async fn assert_rbac(client: &Client, ns: &str, allowed: &[&str], denied: &[&str]) {
    let user = sa_user(ns);
    for n in allowed {
        assert!(
            olm::can_i(client, &user, "list", "asdb.aerospike.com", "aerospikeclusters", Some(n)).await.unwrap(),
            "{user} cannot list aerospikeclusters in {n}"
        );
        assert!(
            olm::can_i(client, &user, "update", "asdb.aerospike.com", "aerospikeclusters/status", Some(n))
                .await
                .unwrap()
        );
        assert!(
            olm::can_i(client, &user, "create", "apps", "statefulsets", Some(n)).await.unwrap(),
            "{user}: statefulsets in {n}"
        );
    }
    for n in denied {
        assert!(
            !olm::can_i(client, &user, "list", "asdb.aerospike.com", "aerospikeclusters", Some(n)).await.unwrap(),
            "{user} may list aerospikeclusters in {n}, outside its OperatorGroup's targets"
        );
    }
    assert!(
        !olm::can_i(client, &user, "list", "asdb.aerospike.com", "aerospikeclusters", None).await.unwrap(),
        "{user} may list aerospikeclusters cluster-wide"
    );
    // Nothing the operator does needs Nodes (the CSV has no clusterPermissions).
    assert!(!olm::can_i(client, &user, "list", "", "nodes", None).await.unwrap(), "{user} may list nodes");
}

/// OLM turned the CSV's webhookdefinitions into a Mutating and a Validating configuration owned by the CSV, each
/// with its CA, our path and rules, through its Service in `ns`, scoped to the OperatorGroup's namespaces; and it
/// mounts the serving certificate where the operator reads it by default.
async fn assert_olm_webhooks(client: &Client, ns: &str, target: &str) {
    use aerospike_kubernetes_operator::webhook::{self, register};
    let owned = ListParams::default().labels(&format!("olm.owner={},olm.owner.namespace={ns}", csv_name()));
    let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone()).list(&owned).await.unwrap().items;
    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone()).list(&owned).await.unwrap().items;
    // One configuration per webhook definition: AerospikeCluster defaulting and validation, AerospikeBackup validation,
    // evictions.
    assert_eq!((mutating.len(), validating.len()), (1, 3), "the configurations owned by the CSV");
    let m = &mutating[0].webhooks.as_ref().unwrap()[0];
    let validating_named = |name: &str| {
        validating
            .iter()
            .flat_map(|c| c.webhooks.iter().flatten())
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("no validating webhook {name}"))
    };
    let v = validating_named(register::VALIDATING_WEBHOOK);
    let b = validating_named(register::VALIDATING_BACKUP_WEBHOOK);
    let e = validating_named(register::VALIDATING_EVICTION_WEBHOOK);
    for (name, expected, path, config, selector) in [
        (&m.name, register::MUTATING_WEBHOOK, webhook::MUTATE_PATH, &m.client_config, &m.namespace_selector),
        (&v.name, register::VALIDATING_WEBHOOK, webhook::VALIDATE_PATH, &v.client_config, &v.namespace_selector),
        (
            &b.name,
            register::VALIDATING_BACKUP_WEBHOOK,
            webhook::VALIDATE_BACKUP_PATH,
            &b.client_config,
            &b.namespace_selector,
        ),
        (
            &e.name,
            register::VALIDATING_EVICTION_WEBHOOK,
            webhook::eviction::VALIDATE_EVICTION_PATH,
            &e.client_config,
            &e.namespace_selector,
        ),
    ] {
        assert_eq!(name, expected);
        let svc = config.service.as_ref().expect("a Service-backed webhook");
        assert_eq!((svc.name.as_str(), svc.namespace.as_str()), (olm::webhook_service_name().as_str(), ns));
        assert_eq!(svc.path.as_deref(), Some(path));
        assert!(config.ca_bundle.as_ref().is_some_and(|b| !b.0.is_empty()), "OLM injected a caBundle");
        // OLM labels the OperatorGroup's namespaces and selects them.
        let selector = selector.as_ref().expect("a namespaceSelector");
        let labels = Api::<Namespace>::all(client.clone()).get(target).await.unwrap().labels().clone();
        let key = selector.match_labels.iter().flatten().map(|(k, _)| k.clone()).next().expect("selector labels");
        assert!(labels.contains_key(&key), "{target} carries {key}: {labels:?}");
    }
    let d = Api::<Deployment>::namespaced(client.clone(), ns).get(PACKAGE).await.unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    // OLM mounts the Secret twice (also for API services); one volume of it must sit at the cert dir.
    let volumes: Vec<&str> = pod
        .volumes
        .iter()
        .flatten()
        .filter(|v| {
            v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(olm::webhook_secret_name().as_str())
        })
        .map(|v| v.name.as_str())
        .collect();
    let mounts = pod.containers[0].volume_mounts.clone().unwrap_or_default();
    assert!(
        mounts.iter().any(|m| volumes.contains(&m.name.as_str()) && m.mount_path == webhook::DEFAULT_CERT_DIR),
        "mounted at {}: {mounts:?}",
        webhook::DEFAULT_CERT_DIR
    );
}

/// Waits for OLM's copy of the CSV (status.reason Copied) in `target`.
async fn copied_csv(env: &Env, client: &Client, ns: &str, target: &str) -> DynamicObject {
    let api = olm::olm_api(client, OlmKind::ClusterServiceVersion, Some(target));
    env.olm
        .wait(client, ns, &format!("the copied CSV in {target}"), INSTALL_TIMEOUT, || {
            let api = api.clone();
            async move { Ok(api.get_opt(&csv_name()).await?.filter(|c| c.data["status"]["reason"] == "Copied")) }
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_namespace_install_watches_its_own_namespace() {
    let env = env().await;
    let client = env.cluster.client().await;
    let ns = "aerospike-own";
    let csv = install(env, &client, ns, &[ns]).await;
    let watch = assert_installed(env, &client, ns, &csv, ns).await;
    assert_eq!(watch, ns);
    // Roles in the operator's own namespace only.
    assert_rbac(&client, ns, &[ns], &["default", "test"]).await;
    let roles = Api::<Role>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("olm.owner={}", csv_name())))
        .await
        .unwrap();
    assert!(!roles.items.is_empty(), "no Role owned by the CSV in {ns}");
}

/// Flow 1 (SingleNamespace: the operator in `test`, watching `aerospike`) and flow 6 (the operator, with that
/// WATCH_NAMESPACE and the ServiceAccount OLM made, reconciles the CSV's first alm-example to Completed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_namespace_install_and_the_operator_reconciles_the_alm_example() {
    let env = env().await;
    let client = env.cluster.client().await;
    let (ns, target) = ("test", "aerospike");
    let csv = install(env, &client, ns, &[target]).await;
    let watch = assert_installed(env, &client, ns, &csv, target).await;
    assert_rbac(&client, ns, &[target], &["default", "aerospike-own"]).await;
    // OLM copied the Roles into the target namespace, bound to the operator's ServiceAccount in `test`.
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), target).list(&ListParams::default()).await.unwrap();
    assert!(
        bindings.items.iter().any(|b| b
            .subjects
            .iter()
            .flatten()
            .any(|s| s.kind == "ServiceAccount" && s.name == PACKAGE && s.namespace.as_deref() == Some(ns))),
        "no RoleBinding in {target} for {ns}/{PACKAGE}"
    );
    // The operator's copied CSV shows in the target namespace.
    let copied = copied_csv(env, &client, ns, target).await;
    assert_eq!(copied.labels().get("olm.copiedFrom").map(String::as_str), Some(ns));

    // Flow 6: the operator as the ServiceAccount OLM created, watching what OLM computed.
    let kubeconfig =
        olm::service_account_kubeconfig(&client, env.cluster.kubeconfig_path(), ns, PACKAGE, Duration::from_secs(3600))
            .await
            .unwrap();
    let operator_client = olm::client_from_kubeconfig_yaml(&kubeconfig).await.unwrap();
    let mut operator = InProcessOperator::start_with_olm_webhooks(operator_client, &watch, &client, ns).await.unwrap();
    let _sim =
        Simulator::start(client.clone(), SimulatorOptions { namespace: Some(target.into()), ..Default::default() })
            .await;

    let mut example = olm::alm_examples(&csv).unwrap().into_iter().next().expect("at least one alm-example");
    let name = example["metadata"]["name"].as_str().unwrap().to_string();
    example["metadata"]["namespace"] = target.into();

    // Admission through what OLM made of the CSV's webhookdefinitions: its configurations (scoped to the
    // OperatorGroup's targets, its CA injected), its Service, its certificate served by the operator.
    assert_olm_webhooks(&client, ns, target).await;
    let clusters = olm::aerospike_clusters(&client, target);
    let mut refused = example.clone();
    refused["metadata"]["name"] = "refused".into();
    refused["spec"]["image"] = "aerospike/aerospike-server-enterprise:5.7.0.17".into();
    let err = clusters
        .create(&PostParams::default(), &serde_json::from_value(refused).unwrap())
        .await
        .expect_err("server 5.7 is refused by the validating webhook");
    let msg = err.to_string();
    assert!(msg.contains("vaerospikecluster.kb.io") && msg.contains("spec.image"), "{msg}");
    // The same object elsewhere (no OperatorGroup targets it) never reaches this installation's webhooks.
    olm::ensure_namespace(&client, "not-targeted").await.unwrap();
    let mut elsewhere = example.clone();
    elsewhere["metadata"] = json!({"name": "elsewhere", "namespace": "not-targeted"});
    elsewhere["spec"]["image"] = "aerospike/aerospike-server-enterprise:5.7.0.17".into();
    olm::aerospike_clusters(&client, "not-targeted")
        .create(&PostParams::default(), &serde_json::from_value(elsewhere).unwrap())
        .await
        .expect("webhooks are scoped to the OperatorGroup's target namespaces");

    olm::apply(&client, &example).await.unwrap();
    // The defaulting webhook filled in what the reference defaults.
    let created = clusters.get(&name).await.unwrap();
    let spec = &created.data["spec"];
    assert_eq!(spec["aerospikeConfig"]["service"]["cluster-name"], json!(name), "{spec:#}");
    assert_eq!(spec["aerospikeConfig"]["network"]["heartbeat"]["mode"], "mesh");
    assert_eq!(spec["maxUnavailable"], 1);
    let size = example["spec"]["size"].as_i64().unwrap();
    let done = olm::wait_for(&format!("AerospikeCluster {target}/{name} Completed"), RECONCILE_TIMEOUT, || {
        let (clusters, name) = (clusters.clone(), name.clone());
        operator.ensure_running().unwrap();
        async move {
            let c = clusters.get(&name).await?;
            Ok((olm::cluster_phase(&c) == "Completed").then_some(c))
        }
    })
    .await;
    let done = match done {
        Ok(c) => c,
        Err(e) => {
            let c = clusters.get_opt(&name).await.unwrap();
            panic!("{e:#}\nstatus: {:#}", c.map(|c| c.data["status"].clone()).unwrap_or(Value::Null));
        }
    };
    assert_eq!(done.data["status"]["readyPods"].as_i64(), Some(size), "{:#}", done.data["status"]);
    let sts = Api::<StatefulSet>::namespaced(client.clone(), target).list(&ListParams::default()).await.unwrap();
    let replicas: i32 = sts.items.iter().filter_map(|s| s.spec.as_ref().and_then(|s| s.replicas)).sum();
    assert_eq!(i64::from(replicas), size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_namespace_install_copies_csvs_and_scopes_rbac() {
    let env = env().await;
    let client = env.cluster.client().await;
    let ns = "multi";
    olm::ensure_namespace(&client, "ns3").await.unwrap();
    let csv = install(env, &client, ns, &["ns1", "ns2"]).await;
    let watch = assert_installed(env, &client, ns, &csv, "ns1,ns2").await;
    assert_eq!(
        aerospike_kubernetes_operator::controller::Scope::parse(&watch),
        aerospike_kubernetes_operator::controller::Scope::Namespaces(vec!["ns1".into(), "ns2".into()])
    );
    for target in ["ns1", "ns2"] {
        let copied = copied_csv(env, &client, ns, target).await;
        assert_eq!(copied.labels().get("olm.copiedFrom").map(String::as_str), Some(ns));
    }
    assert!(
        olm::olm_api(&client, OlmKind::ClusterServiceVersion, Some("ns3"))
            .get_opt(&csv_name())
            .await
            .unwrap()
            .is_none(),
        "a CSV was copied into ns3, which is not a target"
    );
    assert_rbac(&client, ns, &["ns1", "ns2"], &["ns3", "default"]).await;
}

/// Flow 7: deleting the Subscription and the CSV removes the operator (Deployment, ServiceAccount, RBAC) but leaves
/// the CRD, the users' AerospikeClusters, their StatefulSets and PVCs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_removes_the_operator_and_keeps_the_crd_clusters_and_pvcs() {
    let env = env().await;
    let client = env.cluster.client().await;
    let (ns, target) = ("uninstall", "uninstall-db");
    let csv = install(env, &client, ns, &[target]).await;
    let watch = assert_installed(env, &client, ns, &csv, target).await;

    // A cluster with a persistent volume, reconciled by the operator, so it has PVCs.
    let kubeconfig =
        olm::service_account_kubeconfig(&client, env.cluster.kubeconfig_path(), ns, PACKAGE, Duration::from_secs(3600))
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
    let _sim =
        Simulator::start(client.clone(), SimulatorOptions { namespace: Some(target.into()), ..Default::default() })
            .await;
    let mut example = olm::alm_examples(&csv).unwrap().into_iter().next().unwrap();
    let name = "kept";
    example["metadata"] = json!({"name": name, "namespace": target});
    example["spec"]["storage"]["volumes"].as_array_mut().unwrap().push(json!({
        "name": "workdir",
        "aerospike": {"path": "/opt/aerospike"},
        "source": {"persistentVolume": {"size": "1Gi", "storageClass": "ssd", "volumeMode": "Filesystem"}}
    }));
    olm::apply(&client, &example).await.unwrap();
    let clusters = olm::aerospike_clusters(&client, target);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), target);
    let reconciled = olm::wait_for("the cluster with storage Completed", RECONCILE_TIMEOUT, || {
        let clusters = clusters.clone();
        operator.ensure_running().unwrap();
        async move {
            let c = clusters.get(name).await?;
            Ok((olm::cluster_phase(&c) == "Completed").then_some(c))
        }
    })
    .await;
    let reconciled = reconciled.unwrap_or_else(|e| panic!("{e:#}"));
    let claims_before = pvcs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(claims_before.len(), 3, "one claim per pod");
    let claim_uids: Vec<String> = claims_before.iter().map(|c| c.uid().unwrap()).collect();

    // The CSV's RBAC: Roles in the operator's namespace labelled with their owner (there is no cluster-wide RBAC:
    // the operator needs nothing cluster-scoped), before the uninstall.
    let owned_roles = ListParams::default().labels(&format!("olm.owner={}", csv_name()));
    let roles = Api::<Role>::namespaced(client.clone(), ns).list(&owned_roles).await.unwrap();
    assert!(!roles.items.is_empty(), "no Role labelled as the CSV's in {ns}");

    // Uninstall as a user does: the Subscription, then the CSV. The operator's pod goes with its Deployment.
    let subs = olm::olm_api(&client, OlmKind::Subscription, Some(ns));
    let csvs = olm::olm_api(&client, OlmKind::ClusterServiceVersion, Some(ns));
    subs.delete(PACKAGE, &DeleteParams::default()).await.unwrap();
    csvs.delete(&csv_name(), &DeleteParams::foreground()).await.unwrap();
    drop(operator);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let gone = olm::wait_for(
        "the CSV, its copy, the Deployment, the ServiceAccount and the RBAC to be gone",
        INSTALL_TIMEOUT,
        || {
            let (csvs, deployments, client) = (csvs.clone(), deployments.clone(), client.clone());
            async move {
                let csv_left = csvs.get_opt(&csv_name()).await?.is_some();
                let copy_left = olm::olm_api(&client, OlmKind::ClusterServiceVersion, Some(target))
                    .get_opt(&csv_name())
                    .await?
                    .is_some();
                let deployment_left = deployments.get_opt(PACKAGE).await?.is_some();
                let sa_left = Api::<ServiceAccount>::namespaced(client.clone(), ns).get_opt(PACKAGE).await?.is_some();
                let rbac_left =
                    olm::can_i(&client, &sa_user(ns), "list", "asdb.aerospike.com", "aerospikeclusters", Some(target))
                        .await?;
                let left = [
                    ("CSV", csv_left),
                    ("copied CSV", copy_left),
                    ("Deployment", deployment_left),
                    ("ServiceAccount", sa_left),
                    ("RBAC", rbac_left),
                ];
                let left: Vec<&str> = left.iter().filter(|(_, l)| *l).map(|(what, _)| *what).collect();
                if left.is_empty() { Ok(Some(())) } else { Err(anyhow::anyhow!("still there: {}", left.join(", "))) }
            }
        },
    )
    .await;
    if let Err(e) = gone {
        panic!("{e:#}\n{}", env.olm.diagnose(&client, ns).await);
    }
    let roles_gone = olm::wait_for("the CSV's Roles to be deleted", INSTALL_TIMEOUT, || {
        let api = Api::<Role>::namespaced(client.clone(), ns);
        let lp = owned_roles.clone();
        async move { Ok(api.list(&lp).await?.items.is_empty().then_some(())) }
    })
    .await;
    if let Err(e) = roles_gone {
        let left = Api::<Role>::namespaced(client.clone(), ns).list(&owned_roles).await.unwrap().items;
        panic!("{e:#}: {:?}", left.iter().map(|r| r.name_any()).collect::<Vec<_>>());
    }

    // Left in place: the CRD, the cluster (same object), its StatefulSet and its claims.
    let crd = Api::<CustomResourceDefinition>::all(client.clone()).get(CRD).await.unwrap();
    assert!(olm::crd_established(&crd));
    assert!(crd.metadata.deletion_timestamp.is_none());
    let after = clusters.get(name).await.unwrap();
    assert_eq!(after.uid(), reconciled.uid());
    assert!(after.metadata.deletion_timestamp.is_none());
    assert_eq!(olm::cluster_phase(&after), "Completed");
    assert!(
        !Api::<StatefulSet>::namespaced(client.clone(), target)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let claims_after = pvcs.list(&ListParams::default()).await.unwrap().items;
    let uids_after: Vec<String> = claims_after.iter().map(|c| c.uid().unwrap()).collect();
    assert_eq!(uids_after, claim_uids, "the PVCs are the same objects");
    for c in &claims_after {
        assert!(c.metadata.deletion_timestamp.is_none());
        assert_eq!(c.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Bound"), "{}", c.name_any());
    }
    // A new cluster can still be created (the API is still served) even with no operator.
    let mut another = example.clone();
    another["metadata"]["name"] = "after-uninstall".into();
    olm::apply(&client, &another).await.unwrap();
}
