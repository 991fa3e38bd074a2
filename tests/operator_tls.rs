//! TLS from the operator to the cluster end to end, on simulated nodes that serve only TLS (`tls-port`, no plain
//! `port`) with certificates minted here (rcgen) and handed over in Secrets: the operator reads its CA and client
//! certificate from `spec.operatorClientCert`, reaches Completed, rolls an image upgrade with its safety checks
//! over TLS, manages users over mutual TLS, and reports a missing certificate Secret by name.
mod common;

use std::time::Duration;

use ako_simulator::What;
use ako_testbed::cluster::pki::TestCa as Pki;
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(120);
const TLS_NAME: &str = "aero-tls";
const OPERATOR_NAME: &str = "aerospike-operator";

async fn secret(client: &kube::Client, ns: &str, name: &str, data: Value) {
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data})).unwrap();
    Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &s).await.unwrap();
}

/// The server's certificate (for the tls-name) in `server-tls`, the operator's (CA, certificate, key) in
/// `operator-tls`.
async fn secrets(env: &Env, pki: &Pki) {
    let (cert, key) = pki.leaf(TLS_NAME);
    secret(&env.client, &env.ns, "server-tls", json!({"server.pem": cert, "server.key": key, "ca.pem": pki.ca})).await;
    let (cert, key) = pki.leaf(OPERATOR_NAME);
    secret(&env.client, &env.ns, "operator-tls", json!({"ca.pem": pki.ca, "cert.pem": cert, "key.pem": key})).await;
}

/// A TLS-only cluster: `network.service` has only a tls-port; the server certificate is mounted from its Secret.
fn tls_manifest(name: &str, ns: &str, size: i32, authenticate: Value, operator_secret: &str) -> Value {
    let mut m = cluster_manifest(name, ns, size);
    m["spec"]["aerospikeConfig"]["network"] = json!({
        "service": {"tls-name": TLS_NAME, "tls-port": 4333, "tls-authenticate-client": authenticate},
        "heartbeat": {"port": 3002}, "fabric": {"port": 3001},
        "tls": [{"name": TLS_NAME, "cert-file": "/etc/aerospike/secret/server.pem",
            "key-file": "/etc/aerospike/secret/server.key", "ca-file": "/etc/aerospike/secret/ca.pem"}]
    });
    m["spec"]["storage"] = json!({"volumes": [{"name": "tls", "source": {"secret": {"secretName": "server-tls"}},
        "aerospike": {"path": "/etc/aerospike/secret"}}]});
    m["spec"]["operatorClientCert"] = json!({"tlsClientName": OPERATOR_NAME, "secretCertSource": {
        "secretName": operator_secret, "caCertsFilename": "ca.pem", "clientCertFilename": "cert.pem",
        "clientKeyFilename": "key.pem"}});
    m
}

/// Every command the cluster's pods received, and the TLS refusals among them.
fn commands(env: &Env, pods: &[String]) -> (Vec<String>, Vec<String>) {
    let all: Vec<String> = pods
        .iter()
        .flat_map(|p| env.sim.history_for(&format!("{}/{p}", env.ns)))
        .filter_map(|r| match r.what {
            What::Command { command, .. } => Some(command),
            _ => None,
        })
        .collect();
    let refused = all.iter().filter(|c| c.starts_with("tls:refused")).cloned().collect();
    (all, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_only_cluster_completes_and_rolls_an_upgrade_safely() {
    let env = env("e2e-tls").await;
    let pki = Pki::new();
    secrets(&env, &pki).await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &tls_manifest("aero", &env.ns, 3, json!("false"), "operator-tls")).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    env.sim.wait_for_members(&env.ns, "aero", 3, T).await.unwrap();
    for i in 0..3 {
        let pod = format!("aero-0-{i}");
        let (addr, name) = env.sim.node_tls(&env.ns, &pod).expect("a TLS listener");
        assert_eq!((addr.port(), name.as_str()), (4333, TLS_NAME));
        assert_eq!(env.sim.node_addr(&env.ns, &pod), Some(addr), "{pod} serves TLS only");
    }

    // Image upgrade: the safety checks and the quiesce reach each node over TLS (there is no other way in).
    let mut watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "aero", 3).await;
    patch_spec(&env.client, &env.ns, "aero", json!({"image": IMAGE_NEW})).await;
    watch.until_completed(&env.client, &env.ns, "aero", 3, T).await;
    assert!(watch.max_unavailable <= 1, "at most one pod down at a time: {}", watch.max_unavailable);
    for p in pods(&env.client, &env.ns, "aero").await {
        assert_eq!(image(&p), IMAGE_NEW);
    }
    for (pod, uids) in &watch.uids {
        assert_eq!(uids.len(), 2, "{pod} restarted exactly once:\n{}", watch.describe(pod));
        let history = env.sim.history_for(&format!("{}/{pod}", env.ns));
        let old = &uids[0];
        let quiesced = history
            .iter()
            .position(|r| &r.uid == old && matches!(&r.what, What::Command { command, .. } if command == "quiesce:"));
        let left = history.iter().position(|r| &r.uid == old && r.what == What::Left);
        assert!(quiesced.is_some() && quiesced < left, "{pod} quiesced (over TLS) before its restart: {history:#?}");
    }
    let names: Vec<String> = watch.uids.keys().cloned().collect();
    let (all, refused) = commands(&env, &names);
    assert!(all.iter().any(|c| c.starts_with("cluster-stable:")), "stability checked over TLS");
    assert!(refused.is_empty(), "no TLS connection refused: {refused:?}");
    finish(&env, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_access_control() {
    let env = env("e2e-mtls").await;
    let pki = Pki::new();
    secrets(&env, &pki).await;
    secret(&env.client, &env.ns, "admin-pw", json!({"password": "admin-1"})).await;
    secret(&env.client, &env.ns, "app-pw", json!({"password": "app-1"})).await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    // The nodes accept only client certificates that carry the operator's name.
    let mut m = tls_manifest("aero", &env.ns, 2, json!([OPERATOR_NAME]), "operator-tls");
    m["spec"]["aerospikeConfig"]["security"] = json!({});
    m["spec"]["aerospikeAccessControl"] = json!({"users": [
        {"name": "admin", "secretName": "admin-pw", "roles": ["sys-admin", "user-admin"]},
        {"name": "app", "secretName": "app-pw", "roles": ["read"]}
    ]});
    create(&env.client, &env.ns, &m).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    // The user was created through an admin session over mutual TLS.
    let users: Vec<String> = env.sim.users_of(&env.ns, "aero").into_iter().map(|u| u.name).collect();
    assert!(users.contains(&"app".to_string()), "{users:?}");

    let mut watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "aero", 2).await;
    patch_spec(&env.client, &env.ns, "aero", json!({"image": IMAGE_NEW})).await;
    watch.until_completed(&env.client, &env.ns, "aero", 2, T).await;
    assert!(watch.uids.values().all(|u| u.len() == 2), "each pod restarted once: {:?}", watch.uids);
    let names: Vec<String> = watch.uids.keys().cloned().collect();
    let (all, refused) = commands(&env, &names);
    assert!(all.iter().any(|c| c == "quiesce:"), "quiesce over mutual TLS");
    assert!(all.iter().any(|c| c == "login:accepted=true"), "logins over mutual TLS");
    assert!(refused.is_empty(), "no TLS connection refused: {refused:?}");
    finish(&env, op).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_certificate_secret_is_degraded_by_name() {
    let env = env("e2e-tls-missing").await;
    let pki = Pki::new();
    secrets(&env, &pki).await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &tls_manifest("aero", &env.ns, 2, json!("any"), "no-such-secret")).await;
    let c = wait_for("Degraded=True", T, || async {
        let c = api(&env.client, &env.ns).get("aero").await.ok()?;
        (condition(&c, "Degraded")?.0 == "True").then_some(c)
    })
    .await;
    let (_, reason, message) = condition(&c, "Degraded").unwrap();
    assert_eq!(reason, "OperatorClientCertInvalid");
    assert!(message.contains(&format!("Secret {}/no-such-secret", env.ns)), "{message}");
    assert!(message.contains("spec.operatorClientCert.secretCertSource.secretName"), "{message}");
    // Nothing else: no StatefulSet was created.
    let sets = Api::<StatefulSet>::namespaced(env.client.clone(), &env.ns).list(&ListParams::default()).await.unwrap();
    assert!(sets.items.is_empty(), "{:?}", sets.items.iter().map(|s| s.name_any()).collect::<Vec<_>>());

    // A Secret without the key named: Degraded naming the key.
    let (cert, _) = pki.leaf(OPERATOR_NAME);
    secret(&env.client, &env.ns, "no-such-secret", json!({"ca.pem": pki.ca, "cert.pem": cert})).await;
    wait_for("Degraded naming key.pem", T, || async {
        let c = api(&env.client, &env.ns).get("aero").await.ok()?;
        let (_, _, message) = condition(&c, "Degraded")?;
        message.contains("has no key \"key.pem\"").then_some(())
    })
    .await;
    // The key added to the Secret (no edit of the cluster): the next reconcile reads it and the cluster completes.
    let secrets = Api::<Secret>::namespaced(env.client.clone(), &env.ns);
    let mut s = secrets.get("no-such-secret").await.unwrap();
    let (fresh_cert, fresh_key) = pki.leaf(OPERATOR_NAME);
    s.data = None;
    s.string_data = Some(
        [("ca.pem", pki.ca.clone()), ("cert.pem", fresh_cert), ("key.pem", fresh_key)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    );
    secrets.replace("no-such-secret", &PostParams::default(), &s).await.unwrap();
    wait_completed(&env.client, &env.ns, "aero", T).await;
    finish(&env, op).await;
}

/// The official client over mutual TLS with `cert` (PEM cert and key), as `auth`.
async fn official_client(
    env: &Env,
    pki: &Pki,
    cert: &(String, String),
    auth: aerospike::AuthMode,
) -> Result<aerospike::Client, String> {
    use aerospike_kubernetes_operator::asinfo::tls::{TlsMaterial, client_config};
    let material = TlsMaterial {
        ca_pem: pki.ca.clone().into_bytes(),
        client: Some((cert.0.clone().into_bytes(), cert.1.clone().into_bytes())),
    };
    let config = client_config(&material)?;
    let policy = aerospike::ClientPolicy {
        auth_mode: auth,
        timeout: 2000,
        login_timeout: 2000,
        tls_policy: Some(aerospike::TlsPolicy::new(std::sync::Arc::new(config))),
        ..Default::default()
    };
    let hosts: Vec<aerospike::Host> = pods(&env.client, &env.ns, "aero")
        .await
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .map(|ip| aerospike::Host::new_tls(&ip, TLS_NAME, 4333))
        .collect();
    aerospike::Client::new(&policy, &hosts).await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_only_admin_logs_in_with_the_operators_certificate() {
    let env = env("e2e-pki").await;
    let pki = Pki::new();
    let (cert, key) = pki.leaf(TLS_NAME);
    secret(&env.client, &env.ns, "server-tls", json!({"server.pem": cert, "server.key": key, "ca.pem": pki.ca})).await;
    // The operator's certificate: the name the nodes accept (SAN) and the user it logs in as (subject CN admin).
    let operator_cert = pki.leaf_with_common_name(OPERATOR_NAME, "admin");
    secret(
        &env.client,
        &env.ns,
        "operator-tls",
        json!({"ca.pem": pki.ca, "cert.pem": operator_cert.0, "key.pem": operator_cert.1}),
    )
    .await;
    secret(&env.client, &env.ns, "app-pw", json!({"password": "app-1"})).await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let mut m = tls_manifest("aero", &env.ns, 2, json!([OPERATOR_NAME]), "operator-tls");
    m["spec"]["aerospikeConfig"]["security"] = json!({});
    m["spec"]["aerospikeAccessControl"] = json!({"users": [
        {"name": "admin", "authMode": "PKIOnly", "roles": ["sys-admin", "user-admin"]},
        {"name": "app", "secretName": "app-pw", "roles": ["read"]},
        {"name": "svc", "authMode": "PKIOnly", "roles": ["read-write"]}
    ]});
    create(&env.client, &env.ns, &m).await;
    let c = wait_completed(&env.client, &env.ns, "aero", T).await;
    let applied = c.status.unwrap().aerospike_access_control.unwrap();
    assert!(applied.users.iter().any(|u| u.name == "admin" && u.auth_mode.as_deref() == Some("PKIOnly")));
    let events = event_reasons(&env.client, &env.ns, "aero").await;
    assert!(
        events.iter().any(|(r, n)| r == "UserPasswordChanged" && n.contains("disabled password logins of user admin")),
        "{events:?}"
    );

    // From outside, with Aerospike's own client: a PKI login as admin (the certificate's CN) reads the users back.
    let admin = official_client(&env, &pki, &operator_cert, aerospike::AuthMode::Pki).await.expect("PKI login");
    let mut users: Vec<String> = admin
        .query_users(&aerospike::AdminPolicy::default(), None)
        .await
        .expect("query users")
        .into_iter()
        .map(|u| u.user)
        .collect();
    users.sort();
    assert_eq!(users, ["admin", "app", "svc"]);
    // Closed, not just dropped: a client keeps tending its nodes' addresses until closed, and those addresses go
    // to other tests' pods once this cluster's pods restart.
    admin.close().await.expect("close");
    // The default password no longer works for admin, nor "nopassword" for the PKIOnly user.
    let refused =
        official_client(&env, &pki, &operator_cert, aerospike::AuthMode::Internal("admin".into(), "admin".into()))
            .await
            .err()
            .expect("admin's password login is disabled");
    assert!(refused.contains("65") || refused.to_lowercase().contains("credential"), "{refused}");
    let svc_cert = pki.leaf_with_common_name(OPERATOR_NAME, "svc");
    let svc = official_client(&env, &pki, &svc_cert, aerospike::AuthMode::Pki).await.expect("svc logs in");
    svc.close().await.expect("close");
    assert!(
        official_client(&env, &pki, &svc_cert, aerospike::AuthMode::Internal("svc".into(), "nopassword".into()))
            .await
            .is_err(),
        "a PKIOnly user has no password login"
    );

    // An upgrade: every safety check logs in with the certificate.
    let mut watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "aero", 2).await;
    patch_spec(&env.client, &env.ns, "aero", json!({"image": IMAGE_NEW})).await;
    watch.until_completed(&env.client, &env.ns, "aero", 2, T).await;
    assert!(watch.uids.values().all(|u| u.len() == 2), "each pod restarted once: {:?}", watch.uids);
    let names: Vec<String> = watch.uids.keys().cloned().collect();
    let (all, refused) = commands(&env, &names);
    assert!(all.iter().any(|c| c == "quiesce:"), "quiesce with a PKI login");
    assert!(refused.is_empty(), "no TLS connection refused: {refused:?}");
    finish(&env, op).await;
}
