//! The plain (non-OLM) install, from the committed config/ manifests: the CRD, RBAC, the operator's Namespace,
//! Deployment and Services, and config/webhook, applied as a user applies them. The operator then runs as the
//! ServiceAccount config/rbac creates, with the webhook flags the Deployment gives it: it mints its own CA and
//! serving certificate, fills in the committed configurations' caBundle, and admits through the Service; its
//! controller reconciles a sample. Proof that the committed RBAC is enough and that the manifests fit together,
//! with no cert-manager.
//!
//! The Deployment's pod is a kwok fake, so the operator runs in this process in its place, listening on the
//! Service's ClusterIP (a loopback address on the local plane) where the API server sends admission reviews.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aerospike_kubernetes_operator::asinfo::TcpInfoClient;
use aerospike_kubernetes_operator::controller::{self, RunConfig, Scope};
use aerospike_kubernetes_operator::desired::BuildContext;
use aerospike_kubernetes_operator::metrics::Metrics;
use aerospike_kubernetes_operator::webhook::{WebhookArgs, certs, register};
use ako_simulator::{Simulator, SimulatorOptions};
use ako_testbed::cluster::{ClusterOptions, LocalCluster};
use ako_testbed::olm;
use clap::Parser;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use xtask::out;
use xtask::project::{self, OPERATOR_NAMESPACE, PACKAGE, WEBHOOK_SERVICE};

const T: Duration = Duration::from_secs(120);

/// The webhook flags of `aerospike-kubernetes-operator run`, parsed as the binary parses them.
#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    webhook: WebhookArgs,
}

/// Every document of config/{crd,rbac,manager,webhook}, Namespaces and CRDs first (as `kubectl apply -f` of the
/// four folders needs them before the rest).
fn manifests(root: &Path) -> Vec<Value> {
    let mut docs = Vec::new();
    for dir in ["config/crd", "config/rbac", "config/manager", "config/webhook"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            docs.extend(out::read_yaml_stream(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display())));
        }
    }
    let rank = |d: &Value| match d["kind"].as_str() {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        _ => 2,
    };
    docs.sort_by_key(rank);
    docs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_manifests_install_an_operator_that_admits_and_reconciles() {
    let cluster = LocalCluster::start(ClusterOptions::default()).await.expect("local control plane");
    let admin = cluster.client().await;
    let root = project::default_root();
    let docs = manifests(&root);
    for d in &docs {
        olm::apply(&admin, d).await.unwrap();
    }
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    olm::wait_for("the CRD Established", T, || {
        let crds = crds.clone();
        async move { Ok(olm::crd_established(&crds.get("aerospikeclusters.asdb.aerospike.com").await?).then_some(())) }
    })
    .await
    .unwrap();

    assert_least_privilege(&admin).await;

    // The operator's flags, from the committed Deployment.
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").expect("config/manager has the Deployment");
    let args: Vec<String> =
        serde_json::from_value(deployment["spec"]["template"]["spec"]["containers"][0]["args"].clone()).unwrap();
    let webhook_args: Vec<&String> = args.iter().filter(|a| a.starts_with("--webhook")).collect();
    let flags = Flags::try_parse_from(std::iter::once(&"run".to_string()).chain(webhook_args.iter().copied()))
        .unwrap_or_else(|e| panic!("the Deployment's webhook flags {webhook_args:?}: {e}"));
    let mut cfg = flags.webhook.config(OPERATOR_NAMESPACE).unwrap().expect("webhooks on in the plain install");
    assert!(cfg.register, "the plain install registers its configurations: {webhook_args:?}");
    // The pod would listen on the container port behind the Service; here the Service's ClusterIP stands in.
    let svc = Api::<Service>::namespaced(admin.clone(), OPERATOR_NAMESPACE).get(WEBHOOK_SERVICE).await.unwrap();
    let spec = svc.spec.unwrap();
    let port = spec.ports.unwrap()[0].port;
    assert_eq!(i64::from(port), i64::from(cfg.addr.port()), "the Service's port is the container's webhook port");
    cfg.addr = format!("{}:{port}", spec.cluster_ip.unwrap()).parse().unwrap();

    // As the ServiceAccount of config/rbac, nothing more.
    let kubeconfig = olm::service_account_kubeconfig(
        &admin,
        cluster.kubeconfig_path(),
        OPERATOR_NAMESPACE,
        PACKAGE,
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let client = olm::client_from_kubeconfig_yaml(&kubeconfig).await.unwrap();
    controller::preflight(&client, &Scope::All).await.expect("config/rbac lets the controller watch everything");
    let webhook =
        tokio::spawn(aerospike_kubernetes_operator::webhook::run(client.clone(), cfg, std::future::pending()));
    let run = RunConfig {
        scope: Scope::All,
        build: BuildContext { init_image: project::operator_image(&project::workspace_version()) },
        info: Arc::new(TcpInfoClient::new(Duration::from_millis(1000), Duration::from_millis(2000))),
        metrics: Metrics::default(),
        instance: "plain-install".into(),
        concurrency: controller::MAX_CONCURRENT_RECONCILES,
    };
    let controller = tokio::spawn(controller::run(client.clone(), run, || {}));

    // The certificate in its Secret, its CA in both committed configurations.
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), OPERATOR_NAMESPACE);
    let ca = olm::wait_for("the webhook certificate Secret and both caBundles", T, || {
        let (secrets, admin, webhook) = (secrets.clone(), admin.clone(), &webhook);
        async move {
            anyhow::ensure!(!webhook.is_finished(), "the webhook server stopped");
            let Some(secret) = secrets.get_opt(certs::SECRET_NAME).await? else { return Ok(None) };
            let ca = secret.data.unwrap_or_default().get("ca.crt").map(|b| b.0.clone()).unwrap_or_default();
            let m: MutatingWebhookConfiguration = Api::all(admin.clone()).get(register::MUTATING_CONFIGURATION).await?;
            let v: ValidatingWebhookConfiguration =
                Api::all(admin.clone()).get(register::VALIDATING_CONFIGURATION).await?;
            let bundle_m = m.webhooks.unwrap_or_default()[0].client_config.ca_bundle.clone().map(|b| b.0);
            let bundle_v = v.webhooks.unwrap_or_default()[0].client_config.ca_bundle.clone().map(|b| b.0);
            Ok((!ca.is_empty() && bundle_m.as_ref() == Some(&ca) && bundle_v.as_ref() == Some(&ca)).then_some(ca))
        }
    })
    .await
    .unwrap();
    assert!(String::from_utf8_lossy(&ca).contains("BEGIN CERTIFICATE"));

    // Admission through the Service: a refusal naming the field, then a sample defaulted and reconciled.
    let ns = "aerospike";
    olm::ensure_namespace(&admin, ns).await.unwrap();
    let _sim =
        Simulator::start(admin.clone(), SimulatorOptions { namespace: Some(ns.into()), ..Default::default() }).await;
    let sample =
        out::read_yaml_stream(&root.join("config/samples/asdb_v1_aerospikecluster_in_memory.yaml")).unwrap().remove(0);
    let clusters = olm::aerospike_clusters(&admin, ns);
    let mut refused = sample.clone();
    refused["metadata"]["name"] = "refused".into();
    refused["spec"]["aerospikeConfig"]["service"]["cluster-name"] = "another-name".into();
    let err = clusters
        .create(&PostParams::default(), &serde_json::from_value(refused).unwrap())
        .await
        .expect_err("a cluster-name other than the object's is refused");
    let msg = err.to_string();
    assert!(
        msg.contains(register::VALIDATING_WEBHOOK) && msg.contains("spec.aerospikeConfig.service.cluster-name"),
        "{msg}"
    );

    let name = sample["metadata"]["name"].as_str().unwrap().to_string();
    let created =
        clusters.create(&PostParams::default(), &serde_json::from_value(sample.clone()).unwrap()).await.unwrap();
    assert_eq!(
        created.data["spec"]["aerospikeConfig"]["service"]["cluster-name"],
        json!(name),
        "defaulted by the mutating webhook"
    );
    assert_eq!(created.data["spec"]["aerospikeConfig"]["network"]["heartbeat"]["mode"], "mesh");
    let done = olm::wait_for(&format!("{ns}/{name} Completed"), T, || {
        let clusters = clusters.clone();
        let name = name.clone();
        let stopped = controller.is_finished();
        async move {
            anyhow::ensure!(!stopped, "the controller stopped");
            let c = clusters.get(&name).await?;
            Ok((olm::cluster_phase(&c) == "Completed").then_some(c))
        }
    })
    .await;
    let done = done.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(done.data["status"]["size"], sample["spec"]["size"]);
    assert!(
        done.finalizers().iter().any(|f| f.contains("aerospike")),
        "the finalizer update went through the webhooks"
    );
    webhook.abort();
    controller.abort();
    cluster.stop();
}

/// The committed RBAC grants the operator's ServiceAccount what the code uses and nothing more (issue 18, item 10):
/// each line is a SubjectAccessReview of the API server against the applied config/rbac.
async fn assert_least_privilege(admin: &kube::Client) {
    use aerospike_kubernetes_operator::leader::LEASE_NAME;
    let user = format!("system:serviceaccount:{OPERATOR_NAMESPACE}:{PACKAGE}");
    let ns = Some("some-team");
    let own = Some(OPERATOR_NAMESPACE);
    // (allowed, verb, API group, resource, namespace, object name)
    type Case<'a> = (bool, &'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
    let cases: &[Case] = &[
        // What the controller does.
        (true, "patch", "apps", "statefulsets", ns, None),
        (true, "delete", "", "pods", ns, None),
        // Pods are annotated (the config they run, an eviction the webhook refused) and exec'd into for a warm
        // restart; never created, nothing else in them.
        (true, "patch", "", "pods", ns, None),
        (false, "create", "", "pods", ns, None),
        (true, "create", "", "pods/exec", ns, None),
        (false, "create", "", "pods/attach", ns, None),
        (false, "create", "", "pods/portforward", ns, None),
        (true, "patch", "", "persistentvolumeclaims", ns, None),
        (true, "update", "asdb.aerospike.com", "aerospikeclusters/status", ns, None),
        (true, "get", "", "secrets", ns, Some("admin-password")),
        // Secrets are read by name, never listed or watched, never written (but the webhook's own).
        (false, "list", "", "secrets", ns, None),
        (false, "watch", "", "secrets", ns, None),
        (false, "update", "", "secrets", ns, Some("admin-password")),
        (false, "update", "", "secrets", own, Some("some-other-secret")),
        (true, "update", "", "secrets", own, Some(certs::SECRET_NAME)),
        // A Node is read by name when a pod lands on it (its addresses for the pod's init step); never listed.
        (true, "get", "", "nodes", None, Some("node-1")),
        (false, "list", "", "nodes", None, None),
        (false, "watch", "", "nodes", None, None),
        // The webhook configurations: its own two, by name.
        (
            true,
            "update",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            None,
            Some(register::VALIDATING_CONFIGURATION),
        ),
        (
            true,
            "patch",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            None,
            Some(register::MUTATING_CONFIGURATION),
        ),
        (
            false,
            "update",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            None,
            Some("someone-elses"),
        ),
        (false, "patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", None, Some("someone-elses")),
        (
            false,
            "delete",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            None,
            Some(register::VALIDATING_CONFIGURATION),
        ),
        // The Lease, by name, in its own namespace.
        (true, "update", "coordination.k8s.io", "leases", own, Some(LEASE_NAME)),
        (false, "update", "coordination.k8s.io", "leases", own, Some("another-controllers-lease")),
        (false, "update", "coordination.k8s.io", "leases", ns, Some(LEASE_NAME)),
    ];
    let mut wrong = Vec::new();
    for &(want, verb, group, resource, namespace, name) in cases {
        let got = olm::can_i_on(admin, &user, verb, group, resource, namespace, name).await.unwrap();
        if got != want {
            wrong.push(format!(
                "{} {verb} {group}/{resource} {} in {}",
                if want { "should be allowed:" } else { "should be denied: " },
                name.unwrap_or("(any)"),
                namespace.unwrap_or("(cluster)")
            ));
        }
    }
    assert!(wrong.is_empty(), "{user}:\n  {}", wrong.join("\n  "));
}
