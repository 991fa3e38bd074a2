//! OLM end to end, upgrades (flows 4 and 5): version N (v0.1.0, the repository catalog's first release) is
//! installed, then the catalog gains N+1, then N+2:
//!
//! - catalog B: the repository's catalog, where v0.2.0 `replaces` v0.1.0 and adds the backup CRDs
//!   (AerospikeBackupService, AerospikeBackup, AerospikeRestore in asdb.aerospike.com/v1beta1);
//! - catalog C: B plus v0.3.0 with `olm.skipRange: >=0.1.0 <0.3.0`, made by the project's own commands
//!   (`cargo xtask bundle` + `cargo xtask catalog`) in a temporary copy of the repository.
//!
//! "The catalog gains a version" is the CatalogSource `aerospike` (namespace `aerospike`) moving to an `opm serve`
//! of the bigger catalog, as a registry poll would see a new catalog image.
//!
//! Each test has its own control plane (the CRD is cluster-wide and each test changes it); they run one at a time
//! (OLM runs once per machine).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use ako_simulator::{Simulator, SimulatorOptions};
use ako_testbed::cluster::{ClusterOptions, LocalCluster};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use xtask::olm::{self, Approval, CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, InProcessOperator, Olm, OlmKind};
use xtask::packaging::bundle::{self, BundleArgs};
use xtask::packaging::catalog;
use xtask::project::{self, PACKAGE, paths};

const TIMEOUT: Duration = Duration::from_secs(300);
const CRD: &str = "aerospikeclusters.asdb.aerospike.com";
/// The CRDs N+1 (v0.2.0) adds.
const BACKUP_CRDS: [&str; 3] = [
    "aerospikebackupservices.asdb.aerospike.com",
    "aerospikebackups.asdb.aerospike.com",
    "aerospikerestores.asdb.aerospike.com",
];
/// Operator namespace and target, as in the README's SingleNamespace example.
const NS: &str = "test";
const TARGET: &str = "aerospike";

fn csv(version: &str) -> String {
    format!("{PACKAGE}.v{version}")
}

// ---------------------------------------------------------------------------------------------------------------
// Catalogs N, N+1, N+2.

struct Catalogs {
    work: PathBuf,
    /// v0.1.0 (the repository's catalog without its head).
    n: PathBuf,
    /// The repository's catalog: + v0.2.0 replaces v0.1.0, with the backup CRDs.
    replaces: PathBuf,
    /// + v0.3.0, skipRange >=0.1.0 <0.3.0.
    skip_range: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    for rel in xtask::out::walk(from).unwrap() {
        let dst = to.join(&rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&rel), dst).unwrap();
    }
}

/// A manifests-only catalog as it was before `release` (its channel head) was added.
fn without_release(catalog: &Path, release: &str) {
    let pkg = catalog.join(PACKAGE);
    std::fs::remove_file(pkg.join(format!("bundles/{release}.yaml"))).unwrap();
    let path = pkg.join("channels.yaml");
    let mut channel: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let entries = channel["entries"].as_array_mut().unwrap();
    let before = entries.len();
    entries.retain(|e| e["name"] != release);
    assert_eq!(entries.len(), before - 1, "{release} is not in {}", path.display());
    assert!(entries.iter().all(|e| e["replaces"] != release && e["name"] != release));
    std::fs::write(&path, serde_saphyr::to_string(&channel).unwrap()).unwrap();
}

fn release(copy: &Path, args: BundleArgs) {
    bundle::write(copy, &BundleArgs { channels: "stable".into(), ..args }).unwrap();
    catalog::write(copy, &Default::default(), None).unwrap();
}

fn catalogs() -> &'static Catalogs {
    static CATALOGS: OnceLock<Catalogs> = OnceLock::new();
    extern "C" fn remove() {
        if let Some(c) = CATALOGS.get() {
            let _ = std::fs::remove_dir_all(&c.work);
        }
    }
    CATALOGS.get_or_init(|| {
        let repo = project::default_root();
        let work = std::env::temp_dir().join(format!("ako-olm-e2e-upgrade-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let copy = work.join("repo");
        for d in ["config", paths::BUNDLE, paths::CATALOG] {
            copy_dir(&repo.join(d), &copy.join(d));
        }
        for f in [paths::BUNDLE_DOCKERFILE, paths::CATALOG_DOCKERFILE] {
            std::fs::copy(repo.join(f), copy.join(f)).unwrap();
        }
        let c = Catalogs {
            n: work.join("catalog-n"),
            replaces: work.join("catalog-replaces"),
            skip_range: work.join("catalog-skip-range"),
            work: work.clone(),
        };
        olm::prepare_catalog(&repo, &c.replaces).unwrap();
        olm::prepare_catalog(&repo, &c.n).unwrap();
        without_release(&c.n, &csv("0.2.0"));
        release(
            &copy,
            BundleArgs {
                version: Some("0.3.0".into()),
                skip_range: Some(">=0.1.0 <0.3.0".into()),
                ..Default::default()
            },
        );
        olm::prepare_catalog(&copy, &c.skip_range).unwrap();
        // SAFETY: registers a plain extern "C" function.
        unsafe { libc::atexit(remove) };
        c
    })
}

// ---------------------------------------------------------------------------------------------------------------

/// One test at a time in this process (each brings its own control plane and OLM).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Setup {
    cluster: LocalCluster,
    olm: Olm,
    client: Client,
}

impl Setup {
    /// A control plane, OLM serving catalog N, the CatalogSource, and the OperatorGroup in `test` targeting
    /// `aerospike`.
    async fn new() -> Setup {
        let catalogs = catalogs();
        let cluster = LocalCluster::start(ClusterOptions::default()).await.unwrap();
        let olm = Olm::start(&cluster, &catalogs.n).await.unwrap();
        let client = cluster.client().await;
        olm::apply(&client, &olm::catalog_source(CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, olm.catalog_address()))
            .await
            .unwrap();
        for ns in [NS, TARGET] {
            olm::ensure_namespace(&client, ns).await.unwrap();
        }
        olm::apply(&client, &olm::operator_group(PACKAGE, NS, Some(&[TARGET]))).await.unwrap();
        Setup { cluster, olm, client }
    }

    async fn subscribe(&self, approval: Approval, starting_csv: Option<&str>) {
        olm::apply(
            &self.client,
            &olm::subscription(NS, CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, approval, starting_csv),
        )
        .await
        .unwrap();
    }

    async fn installed(&self, version: &str) -> DynamicObject {
        match olm::wait_installed(&self.client, NS, Some(&csv(version)), TIMEOUT).await {
            Ok(c) => c,
            Err(e) => panic!("{e:#}\n{}", self.olm.diagnose(&self.client, NS).await),
        }
    }

    /// The catalog gains releases: the CatalogSource moves to an `opm serve` of `dir`.
    async fn catalog_gains(&self, dir: &Path) {
        let address = self.olm.serve_catalog(dir).await.unwrap();
        olm::apply(&self.client, &olm::catalog_source(CATALOG_SOURCE, GLOBAL_CATALOG_NAMESPACE, &address))
            .await
            .unwrap();
    }

    async fn wait<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        self.olm.wait(&self.client, NS, what, TIMEOUT, check).await.unwrap_or_else(|e| panic!("{e:#}"))
    }

    async fn csv_gone(&self, version: &str) {
        let api = olm::olm_api(&self.client, OlmKind::ClusterServiceVersion, Some(NS));
        let name = csv(version);
        self.wait(&format!("{name} to be deleted after the upgrade"), || {
            let (api, name) = (api.clone(), name.clone());
            async move { Ok(api.get_opt(&name).await?.is_none().then_some(())) }
        })
        .await;
    }

    /// The InstallPlans of `test`, by the CSVs each installs.
    async fn plans(&self) -> Vec<(String, Vec<String>, DynamicObject)> {
        let list =
            olm::olm_api(&self.client, OlmKind::InstallPlan, Some(NS)).list(&ListParams::default()).await.unwrap();
        list.items
            .into_iter()
            .map(|p| {
                let csvs = p.data["spec"]["clusterServiceVersionNames"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                (p.name_any(), csvs, p)
            })
            .collect()
    }

    /// The InstallPlan installing `version` (waits for it to appear).
    async fn plan_for(&self, version: &str) -> DynamicObject {
        let name = csv(version);
        let api = olm::olm_api(&self.client, OlmKind::InstallPlan, Some(NS));
        self.wait(&format!("an InstallPlan for {name}"), || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                let list = api.list(&ListParams::default()).await?;
                Ok(list.items.into_iter().find(|p| {
                    p.data["spec"]["clusterServiceVersionNames"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|v| v == name.as_str()))
                }))
            }
        })
        .await
    }

    async fn approve(&self, plan: &DynamicObject) {
        olm::olm_api(&self.client, OlmKind::InstallPlan, Some(NS))
            .patch(&plan.name_any(), &PatchParams::default(), &Patch::Merge(json!({"spec": {"approved": true}})))
            .await
            .unwrap();
    }

    fn stop(self) {
        self.olm.stop();
        self.cluster.stop();
    }
}

async fn crd_exists(api: &Api<CustomResourceDefinition>, name: &str) -> Option<CustomResourceDefinition> {
    api.get_opt(name).await.unwrap()
}

/// Flows 4 (Automatic) and 5: N+1 replaces N as soon as the catalog has it; the replaced CSV goes; the backup CRDs
/// arrive and N+1's operator, with the permissions OLM gave it, reconciles a backup service; the AerospikeCluster
/// made under N survives untouched (same object, spec, status and generation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_upgrade_follows_replaces_and_existing_clusters_survive_the_crd_change() {
    let _serial = SERIAL.lock().await;
    let s = Setup::new().await;
    let client = s.client.clone();
    s.subscribe(Approval::Automatic, None).await;
    let n = s.installed("0.1.0").await;
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in BACKUP_CRDS {
        assert!(crd_exists(&crd_api, name).await.is_none(), "{name} exists under N");
    }

    // A cluster reconciled under N, by the operator with what OLM gave it.
    let start_operator = || async {
        let watch = olm::watch_namespace(&client, NS, PACKAGE).await.unwrap();
        let kubeconfig = olm::service_account_kubeconfig(
            &client,
            s.cluster.kubeconfig_path(),
            NS,
            PACKAGE,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
        InProcessOperator::start_with_olm_webhooks(
            olm::client_from_kubeconfig_yaml(&kubeconfig).await.unwrap(),
            &watch,
            &client,
            NS,
        )
        .await
        .unwrap()
    };
    let sim =
        Simulator::start(client.clone(), SimulatorOptions { namespace: Some(TARGET.into()), ..Default::default() })
            .await;
    let mut operator = start_operator().await;
    let mut example = olm::alm_examples(&n).unwrap().into_iter().next().unwrap();
    example["metadata"]["namespace"] = TARGET.into();
    // N's example predates the work-directory check, which the operator serving N here (this tree's) applies: it
    // says, as N+1's example does, that this in-memory cluster keeps no work directory on persistent storage.
    example["spec"]["validationPolicy"] = json!({"skipWorkDirValidate": true});
    let name = example["metadata"]["name"].as_str().unwrap().to_string();
    olm::apply(&client, &example).await.unwrap();
    let clusters = olm::aerospike_clusters(&client, TARGET);
    let completed = |generation: i64| {
        let (clusters, name) = (clusters.clone(), name.clone());
        async move {
            let c = clusters.get(&name).await?;
            let observed = c.data["status"]["observedGeneration"].as_i64();
            Ok((olm::cluster_phase(&c) == "Completed" && observed == Some(generation)).then_some(c))
        }
    };
    let before = s
        .wait("the cluster Completed under N", || {
            operator.ensure_running().unwrap();
            completed(1)
        })
        .await;
    // The operator of N stops while OLM replaces it (its pod goes with the old Deployment).
    drop(operator);

    s.catalog_gains(&catalogs().replaces).await;
    let n1 = s.installed("0.2.0").await;
    assert_eq!(n1.data["spec"]["replaces"], csv("0.1.0"));
    let plan = s.plan_for("0.2.0").await;
    assert_eq!(plan.data["spec"]["approval"], "Automatic");
    assert_eq!(plan.data["status"]["phase"], "Complete");
    s.csv_gone("0.1.0").await;
    let d = Api::<Deployment>::namespaced(client.clone(), NS).get(PACKAGE).await.unwrap();
    assert_eq!(d.labels().get("olm.owner").map(String::as_str), Some(csv("0.2.0").as_str()));

    // The CRD: upgraded in place, still v1, still Established.
    let crd = crd_api.get(CRD).await.unwrap();
    assert!(olm::crd_established(&crd));
    assert_eq!(crd.status.as_ref().and_then(|s| s.stored_versions.clone()), Some(vec!["v1".to_string()]));

    // The cluster survived: same object, same spec, status untouched.
    let after = clusters.get(&name).await.unwrap();
    assert_eq!(after.uid(), before.uid());
    assert_eq!(after.data["spec"], before.data["spec"]);
    assert_eq!(olm::cluster_phase(&after), "Completed");
    assert_eq!(after.metadata.generation, Some(1));

    // N+1 brings the backup CRDs, and its operator (again with what OLM gave it) serves them: a backup service
    // made now is reconciled to Completed, while the cluster made under N stays as it was.
    for name in BACKUP_CRDS {
        let crd = crd_exists(&crd_api, name).await.unwrap_or_else(|| panic!("{name} missing after the upgrade"));
        assert!(olm::crd_established(&crd), "{name} not Established");
    }
    let mut operator = start_operator().await;
    let services: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        TARGET,
        &kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "asdb.aerospike.com",
            "v1beta1",
            "AerospikeBackupService",
        )),
    );
    let service = json!({
        "apiVersion": "asdb.aerospike.com/v1beta1", "kind": "AerospikeBackupService",
        "metadata": {"name": "abs", "namespace": TARGET},
        "spec": {"image": "aerospike/aerospike-backup-service:3.5.0", "config": {"service": {"http": {"port": 8081}}}}
    });
    services.patch("abs", &PatchParams::apply("e2e"), &Patch::Apply(&service)).await.unwrap();
    s.wait("the backup service Completed under N+1", || {
        operator.ensure_running().unwrap();
        let services = services.clone();
        async move { Ok((services.get("abs").await?.data["status"]["phase"] == "Completed").then_some(())) }
    })
    .await;
    let still = clusters.get(&name).await.unwrap();
    assert_eq!(still.data["spec"], before.data["spec"]);
    assert_eq!(olm::cluster_phase(&still), "Completed");
    assert_eq!(still.metadata.generation, Some(1));
    drop(operator);
    drop(sim);
    s.stop();
}

/// Flow 4, Manual approval: the first install and the upgrade each wait for their InstallPlan to be approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_approval_upgrade_waits_for_the_install_plan_to_be_approved() {
    let _serial = SERIAL.lock().await;
    let s = Setup::new().await;
    let csvs = olm::olm_api(&s.client, OlmKind::ClusterServiceVersion, Some(NS));
    s.subscribe(Approval::Manual, Some(&csv("0.1.0"))).await;

    // The first install waits too.
    let first = s.plan_for("0.1.0").await;
    assert_eq!(first.data["spec"]["approval"], "Manual");
    assert_eq!(first.data["spec"]["approved"], false);
    let plans = olm::olm_api(&s.client, OlmKind::InstallPlan, Some(NS));
    s.wait("the first InstallPlan to require approval", || {
        let (plans, name) = (plans.clone(), first.name_any());
        async move { Ok(Some(plans.get(&name).await?).filter(|p| p.data["status"]["phase"] == "RequiresApproval")) }
    })
    .await;
    assert!(csvs.get_opt(&csv("0.1.0")).await.unwrap().is_none(), "installed before approval");
    s.approve(&first).await;
    s.installed("0.1.0").await;

    // N+1 appears: a new InstallPlan waits for approval; nothing changes meanwhile.
    s.catalog_gains(&catalogs().replaces).await;
    let upgrade = s.plan_for("0.2.0").await;
    assert_eq!(upgrade.data["spec"]["approved"], false);
    let subs = olm::olm_api(&s.client, OlmKind::Subscription, Some(NS));
    s.wait("the Subscription to report UpgradePending with the plan RequiresApproval", || {
        let (subs, plans, name) = (subs.clone(), plans.clone(), upgrade.name_any());
        async move {
            let sub = subs.get(PACKAGE).await?;
            let plan = plans.get(&name).await?;
            Ok((sub.data["status"]["state"] == "UpgradePending" && plan.data["status"]["phase"] == "RequiresApproval")
                .then_some(()))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let sub = subs.get(PACKAGE).await.unwrap();
    assert_eq!(sub.data["status"]["installedCSV"], csv("0.1.0"), "upgraded without approval");
    assert_eq!(sub.data["status"]["currentCSV"], csv("0.2.0"));
    assert!(csvs.get_opt(&csv("0.2.0")).await.unwrap().is_none(), "N+1's CSV exists before approval");
    assert_eq!(olm::csv_phase(&csvs.get(&csv("0.1.0")).await.unwrap()), "Succeeded");

    s.approve(&upgrade).await;
    s.installed("0.2.0").await;
    s.csv_gone("0.1.0").await;
    s.stop();
}

/// Flow 4, skipRange: from v0.1.0, a catalog with v0.2.0 (replaces v0.1.0) and v0.3.0 (skipRange >=0.1.0 <0.3.0)
/// upgrades straight to v0.3.0, never installing v0.2.0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_range_upgrade_goes_straight_to_the_channel_head() {
    let _serial = SERIAL.lock().await;
    let s = Setup::new().await;
    s.subscribe(Approval::Automatic, None).await;
    s.installed("0.1.0").await;

    s.catalog_gains(&catalogs().skip_range).await;
    let head = s.installed("0.3.0").await;
    assert_eq!(head.annotations().get("olm.skipRange").map(String::as_str), Some(">=0.1.0 <0.3.0"));
    // In the catalog v0.3.0 replaces v0.2.0; OLM installed it in place of v0.1.0 (and says so in the CSV).
    let served = catalog::Catalog::load(&catalogs().skip_range, ".").unwrap();
    let entry = served.channel("stable").unwrap().doc.entries.iter().find(|e| e.name == csv("0.3.0")).unwrap().clone();
    assert_eq!(entry.replaces, Some(csv("0.2.0")));
    assert_eq!(entry.skip_range.as_deref(), Some(">=0.1.0 <0.3.0"));
    assert_eq!(head.data["spec"]["replaces"], csv("0.1.0"), "OLM replaced v0.1.0 directly");
    s.csv_gone("0.1.0").await;
    let plans = s.plans().await;
    let installed: Vec<&Vec<String>> = plans.iter().map(|(_, csvs, _)| csvs).collect();
    assert!(
        plans.iter().all(|(_, csvs, _)| !csvs.contains(&csv("0.2.0"))),
        "an InstallPlan installed v0.2.0: {installed:?}"
    );
    assert!(
        installed.iter().any(|csvs| **csvs == [csv("0.3.0")]),
        "no InstallPlan installing v0.3.0 alone: {installed:?}"
    );
    assert!(
        olm::olm_api(&s.client, OlmKind::ClusterServiceVersion, Some(NS))
            .get_opt(&csv("0.2.0"))
            .await
            .unwrap()
            .is_none()
    );
    s.stop();
}
