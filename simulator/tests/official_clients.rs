//! The simulator judged by third parties: Aerospike's official clients connect to simulated clusters on the local
//! control plane, tend them (peers, partition maps, generations) and use the admin protocol (logins, users,
//! roles), and what they read back must be what was done. The Rust client (crate `aerospike`) runs in-process;
//! the Python client (PyPI `aerospike`, installed on demand into the tool cache by `ako_testbed::pyclient`) runs a
//! judge script; the Go client (module aerospike-client-go/v8, pinned by tests/judges/go/go.sum) runs a judge
//! program built on demand by `ako_testbed::gojudge`. Each test has its own namespace and simulator.
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use aerospike::{AdminPolicy, AuthMode, Client, ClientPolicy, Privilege, PrivilegeCode, ResultCode};
use ako_simulator::{Simulator, SimulatorOptions};
use ako_testbed::cluster::LocalCluster;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client as Kube};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const NODES: usize = 3;

/// The shared plane with the operator's CRD installed and Established (once per test binary): the simulator reads
/// `spec.aerospikeConfig` (security, namespaces) from the AerospikeCluster.
async fn plane() -> Kube {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    let client = LocalCluster::shared().await.unwrap().client().await;
    INSTALLED
        .get_or_init(|| async {
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            for crd in aerospike_kubernetes_operator::api::crds() {
                let name = crd.metadata.name.clone().unwrap();
                crds.patch(&name, &PatchParams::apply("simulator-tests").force(), &Patch::Apply(&crd)).await.unwrap();
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let crd = crds.get(&name).await.unwrap();
                    let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                    if conditions.iter().any(|c| c.type_ == "Established" && c.status == "True") {
                        break;
                    }
                    assert!(Instant::now() < deadline, "CRD {name} not Established: {conditions:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        })
        .await;
    client
}

/// A namespace with an AerospikeCluster `cr` (security on or off, namespace `test` with replication factor 2), a
/// simulator watching it, and a 3-pod StatefulSet with the operator's labels. Returns the seeds in ordinal order.
async fn simulated_cluster(ns: &str, cr: &str, security: Option<Value>) -> (Kube, Simulator, Vec<SocketAddr>) {
    let kube = plane().await;
    let namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(kube.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    let mut config = json!({
        "service": {"feature-key-file": "/etc/aerospike/secret/features.conf"},
        "network": {"service": {"port": 3000}, "heartbeat": {"port": 3002}, "fabric": {"port": 3001}},
        "namespaces": [{"name": "test", "replication-factor": 2,
            "storage-engine": {"type": "memory", "data-size": 1073741824}}]
    });
    if let Some(security) = security {
        config["security"] = security;
    }
    let gvk = GroupVersionKind::gvk("asdb.aerospike.com", "v1", "AerospikeCluster");
    let clusters: Api<DynamicObject> =
        Api::namespaced_with(kube.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, "aerospikeclusters"));
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "asdb.aerospike.com/v1", "kind": "AerospikeCluster", "metadata": {"name": cr},
        "spec": {"size": NODES, "image": "aerospike/aerospike-server-enterprise:8.0.0.5", "aerospikeConfig": config}
    }))
    .unwrap();
    clusters.create(&PostParams::default(), &object).await.unwrap();
    let sim = Simulator::start(
        kube.clone(),
        SimulatorOptions {
            namespace: Some(ns.into()),
            migration_duration: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await;
    let labels = json!({"app": "aerospike-cluster", "aerospike.com/cr": cr, "aerospike.com/rack-id": "0"});
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": format!("{cr}-0")},
        "spec": {
            "replicas": NODES, "serviceName": cr, "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                {"name": "aerospike-server", "image": "aerospike/aerospike-server-enterprise:8.0.0.5"}]}}
        }
    }))
    .unwrap();
    Api::<StatefulSet>::namespaced(kube.clone(), ns).create(&PostParams::default(), &sts).await.unwrap();
    sim.wait_for_members(ns, cr, NODES, Duration::from_secs(90)).await.unwrap();
    let seeds = addrs(&sim, ns, cr);
    (kube, sim, seeds)
}

fn addrs(sim: &Simulator, ns: &str, cr: &str) -> Vec<SocketAddr> {
    (0..NODES).map(|i| sim.node_addr(ns, &format!("{cr}-0-{i}")).expect("member has an address")).collect()
}

fn policy(login: Option<(&str, &str)>) -> ClientPolicy {
    let mut p = ClientPolicy::default();
    if let Some((user, password)) = login {
        p.set_auth_mode(AuthMode::Internal(user.into(), password.into()));
    }
    p.timeout = 5_000;
    p.tend_interval = 250;
    p
}

fn hosts(seeds: &[SocketAddr]) -> String {
    seeds.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Connects and waits (polling, with a deadline) until the client tends all nodes with a complete partition map.
async fn connect(seeds: &[SocketAddr], login: Option<(&str, &str)>) -> Result<Client, aerospike::Error> {
    let client = Client::new(&policy(login), &hosts(seeds)).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.nodes().len() != NODES || !client.partition_map_complete() {
        assert!(
            Instant::now() < deadline,
            "the client tends {:?}, partition map complete: {}",
            client.node_names(),
            client.partition_map_complete()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(client)
}

/// A refused connection: the client reports every seed's failure as text in one connection error
/// (`Error 65, node=...: Invalid credential`), so the server's result code is read from there.
fn assert_refused(err: &aerospike::Error, expected: ResultCode) {
    let number = u8::from(expected);
    let text = err.to_string();
    assert!(err.matches(&[expected]) || text.contains(&format!("Error {number},")), "not {expected:?}: {err:?}");
}

fn code(e: &aerospike::Error) -> Option<ResultCode> {
    e.server_result_code()
}

fn privilege(code: PrivilegeCode, ns: Option<&str>, set: Option<&str>) -> Privilege {
    Privilege::new(code, ns.map(String::from), set.map(String::from))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_tends_an_unsecured_cluster_without_login() {
    let (_kube, _sim, seeds) = simulated_cluster("official-open", "open", None).await;
    let client = connect(&seeds[..1], None).await.expect("connects without a login");
    let mut names = client.node_names();
    names.sort();
    assert_eq!(names, ["0A0", "0A1", "0A2"], "every node found from one seed, through peers");
    let info = client.info(&AdminPolicy::default(), &["build", "namespaces", "cluster-name"]).await.unwrap();
    assert_eq!(info["build"], "8.0.0.5");
    assert_eq!(info["namespaces"], "test");
    assert_eq!(info["cluster-name"], "open");
    assert_eq!(client.is_strong_consistency("test"), Some(false));
    // Admin commands meet a server without security.
    let err = client.query_users(&AdminPolicy::default(), None).await.unwrap_err();
    assert_eq!(code(&err), Some(ResultCode::SecurityNotEnabled), "{err}");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_administers_a_secured_cluster() {
    let (kube, sim, seeds) = simulated_cluster("official-rust", "sec", Some(json!({}))).await;
    let admin_policy = AdminPolicy::default();
    let p = &admin_policy;

    // No login, or a wrong one: refused with the server's result codes.
    let err = Client::new(&policy(Some(("admin", "wrong"))), &hosts(&seeds)).await.err().expect("refused");
    assert_refused(&err, ResultCode::InvalidCredential);
    let err = Client::new(&policy(Some(("nobody", "admin"))), &hosts(&seeds)).await.err().expect("refused");
    assert_refused(&err, ResultCode::InvalidUser);

    let client = connect(&seeds[..1], Some(("admin", "admin"))).await.expect("admin/admin logs in");
    assert_eq!(client.nodes().len(), NODES);
    let info = client.info(p, &["node", "statistics"]).await.unwrap();
    assert!(info["statistics"].contains("cluster_size=3"), "{info:?}");

    // Two roles, three users.
    let readers =
        [privilege(PrivilegeCode::Read, Some("test"), None), privilege(PrivilegeCode::Write, Some("test"), Some("s1"))];
    client.create_role(p, "scoped", &readers, &["127.0.0.0/8"], 0, 0).await.unwrap();
    client.create_role(p, "operator", &[privilege(PrivilegeCode::SysAdmin, None, None)], &[], 0, 0).await.unwrap();
    let err = client.create_role(p, "scoped", &readers, &[], 0, 0).await.unwrap_err();
    assert_eq!(code(&err), Some(ResultCode::RoleAlreadyExists), "{err}");
    let err = client.create_role(p, "quota", &readers, &[], 100, 0).await.unwrap_err();
    assert_eq!(code(&err), Some(ResultCode::QuotasNotEnabled), "{err}");
    client.create_user(p, "alice", "alice-pw", &["read", "scoped"]).await.unwrap();
    client.create_user(p, "bob", "bob-pw", &["operator", "user-admin"]).await.unwrap();
    client.create_user(p, "carol", "carol-pw", &[]).await.unwrap();
    let err = client.create_user(p, "alice", "x", &[]).await.unwrap_err();
    assert_eq!(code(&err), Some(ResultCode::UserAlreadyExists), "{err}");
    let err = client.create_user(p, "dave", "x", &["no-such-role"]).await.unwrap_err();
    assert_eq!(code(&err), Some(ResultCode::InvalidRole), "{err}");
    client.grant_roles(p, "carol", &["read-write"]).await.unwrap();

    // Read back through the client, and in the simulator.
    let mut users: Vec<(String, Vec<String>)> =
        client.query_users(p, None).await.unwrap().into_iter().map(|u| (u.user, sorted(u.roles))).collect();
    users.sort();
    let expected = [
        ("admin", vec!["user-admin"]),
        ("alice", vec!["read", "scoped"]),
        ("bob", vec!["operator", "user-admin"]),
        ("carol", vec!["read-write"]),
    ];
    let expected: Vec<(String, Vec<String>)> =
        expected.iter().map(|(u, r)| (u.to_string(), r.iter().map(|s| s.to_string()).collect())).collect();
    assert_eq!(users, expected);
    let in_sim: Vec<(String, Vec<String>)> =
        sim.users_of("official-rust", "sec").into_iter().map(|u| (u.name, u.roles)).collect();
    assert_eq!(in_sim, expected);
    let one = client.query_users(p, Some("alice")).await.unwrap();
    assert_eq!((one.len(), one[0].roles.len()), (1, 2));
    let roles = client.query_roles(p, None).await.unwrap();
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    for predefined in ["read", "read-write", "read-write-udf", "write", "sys-admin", "user-admin", "data-admin"] {
        assert!(names.contains(&predefined), "{names:?}");
    }
    let scoped = client.query_roles(p, Some("scoped")).await.unwrap().remove(0);
    assert_eq!(scopes(&scoped.privileges), scopes(&readers));
    assert_eq!(scoped.allowlist, ["127.0.0.0/8"]);
    let operator = roles.iter().find(|r| r.name == "operator").unwrap();
    assert_eq!(scopes(&operator.privileges), scopes(&[privilege(PrivilegeCode::SysAdmin, None, None)]));
    client.grant_privileges(p, "operator", &[privilege(PrivilegeCode::Truncate, Some("test"), None)]).await.unwrap();
    client.revoke_privileges(p, "operator", &[privilege(PrivilegeCode::SysAdmin, None, None)]).await.unwrap();
    client.set_allowlist(p, "operator", &["10.0.0.0/8"]).await.unwrap();
    let operator = client.query_roles(p, Some("operator")).await.unwrap().remove(0);
    assert_eq!(scopes(&operator.privileges), scopes(&[privilege(PrivilegeCode::Truncate, Some("test"), None)]));
    assert_eq!(operator.allowlist, ["10.0.0.0/8"]);

    // Each user logs in; privileges show.
    let alice = connect(&seeds, Some(("alice", "alice-pw"))).await.expect("alice logs in");
    let err = alice.create_user(p, "eve", "eve-pw", &["read"]).await.unwrap_err();
    assert_eq!(code(&err), Some(ResultCode::RoleViolation), "{err}");
    let own = alice.query_users(p, Some("alice")).await.unwrap();
    assert_eq!(own[0].user, "alice", "a user may read itself");
    alice.close().await.unwrap();
    // bob's role 'operator' now only admits 10.0.0.0/8: refused from loopback.
    let err = Client::new(&policy(Some(("bob", "bob-pw"))), &hosts(&seeds)).await.err().expect("not whitelisted");
    assert_refused(&err, ResultCode::NotAllowlisted);
    client.set_allowlist(p, "operator", &[]).await.unwrap();
    let bob = connect(&seeds, Some(("bob", "bob-pw"))).await.expect("bob logs in");
    bob.create_user(p, "eve", "eve-pw", &["read"]).await.expect("bob has user-admin");
    bob.close().await.unwrap();
    let carol = connect(&seeds, Some(("carol", "carol-pw"))).await.expect("carol logs in");

    // A password change: the old one fails, the new one works.
    carol.change_password(p, "carol", "carol-new").await.expect("a user changes its own password");
    let err = Client::new(&policy(Some(("carol", "carol-pw"))), &hosts(&seeds)).await.err().expect("old refused");
    assert_refused(&err, ResultCode::InvalidCredential);
    connect(&seeds, Some(("carol", "carol-new"))).await.expect("new password works").close().await.unwrap();
    carol.close().await.unwrap();
    client.change_password(p, "eve", "eve-new").await.expect("the admin sets another user's password");
    connect(&seeds, Some(("eve", "eve-new"))).await.expect("eve's new password").close().await.unwrap();

    // Drop a user and a role.
    client.drop_user(p, "eve").await.unwrap();
    client.drop_role(p, "scoped").await.unwrap();
    let err = client.drop_role(p, "scoped").await.unwrap_err();
    assert_eq!(code(&err), Some(ResultCode::InvalidRole), "{err}");
    let err = client.query_users(p, Some("eve")).await.unwrap_err();
    assert_eq!(code(&err), Some(ResultCode::InvalidUser), "{err}");
    let alice_roles = client.query_users(p, Some("alice")).await.unwrap().remove(0).roles;
    assert_eq!(alice_roles, ["read"], "dropping a role revokes it");
    client.close().await.unwrap();

    // A node restart (pod recreated) keeps users: they are cluster-wide.
    let before = sim.users_of("official-rust", "sec");
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "official-rust");
    pods.delete("sec-0-0", &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.members("official-rust", "sec").len() == NODES
        && sim.history_for("official-rust/sec-0-0").iter().all(|r| r.what != ako_simulator::What::Left)
    {
        assert!(Instant::now() < deadline, "sec-0-0 never left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.wait_for_members("official-rust", "sec", NODES, Duration::from_secs(60)).await.unwrap();
    let seeds = addrs(&sim, "official-rust", "sec");
    let alice = connect(&seeds[..1], Some(("alice", "alice-pw"))).await.expect("alice logs in on the restarted node");
    let users = connect(&seeds, Some(("admin", "admin"))).await.unwrap().query_users(p, None).await.unwrap();
    assert_eq!(users.len(), before.len());
    assert_eq!(sim.users_of("official-rust", "sec"), before);
    alice.close().await.unwrap();
}

/// Privileges as (code, namespace, set): the client reads an unscoped set as `Some("")`, and sends `None` as that.
fn scopes(privileges: &[Privilege]) -> Vec<(String, String, String)> {
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    privileges.iter().map(|p| (p.code.to_string(), text(&p.namespace), text(&p.set_name))).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_reads_what_was_done() {
    let (_kube, sim, seeds) = simulated_cluster("official-python", "py", Some(json!({}))).await;
    let p = &AdminPolicy::default();
    let admin = connect(&seeds, Some(("admin", "admin"))).await.unwrap();
    let scoped = [
        privilege(PrivilegeCode::ReadWrite, Some("test"), Some("s1")),
        privilege(PrivilegeCode::DataAdmin, None, None),
    ];
    admin.create_role(p, "py-role", &scoped, &["127.0.0.0/8"], 0, 0).await.unwrap();
    admin.create_user(p, "py-user", "py-pw", &["py-role", "read"]).await.unwrap();
    admin.close().await.unwrap();

    // The judge (installed on demand, never skipped) logs in as admin, creates `from-python`, reads back.
    let script = judges_dir().join("python_judge.py");
    let args = vec![hosts(&seeds), "admin".to_string(), "admin".to_string()];
    let out = tokio::task::spawn_blocking(move || ako_testbed::pyclient::run_python_judge(&script, &args))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the Python judge: {e:#}"));
    let judged: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(judged["builds"], json!(["8.0.0.5"]), "{judged}");
    assert_eq!(judged["wrong_password_code"], 65, "INVALID_CREDENTIAL: {judged}");
    assert_eq!(judged["reader_nodes"], NODES, "the user the judge created logs in and tends: {judged}");

    // Users: what the Python client read is what the simulator keeps, including the user it created.
    let in_sim: serde_json::Map<String, Value> =
        sim.users_of("official-python", "py").into_iter().map(|u| (u.name, json!(u.roles))).collect();
    assert_eq!(judged["users"], Value::Object(in_sim), "{judged}");
    assert_eq!(judged["users"]["from-python"], json!(["read"]));
    assert_eq!(judged["users"]["py-user"], json!(["py-role", "read"]));

    // Roles: every one the simulator keeps, with privileges (code, namespace, set), whitelist and quotas.
    let roles = sim.roles_of("official-python", "py");
    assert_eq!(judged["roles"].as_object().map(|o| o.len()), Some(roles.len()), "{judged}");
    for role in &roles {
        let mut privileges: Vec<Value> = role.privileges.iter().map(|p| json!([p.code, p.namespace, p.set])).collect();
        privileges.sort_by_key(|v| v.to_string());
        let got = &judged["roles"][&role.name];
        let mut got_privileges = got["privileges"].as_array().cloned().unwrap_or_default();
        got_privileges.sort_by_key(|v| v.to_string());
        assert_eq!(got_privileges, privileges, "role {}: {got}", role.name);
        assert_eq!(got["whitelist"], json!(role.whitelist), "role {}", role.name);
        assert_eq!((got["read_quota"].as_u64(), got["write_quota"].as_u64()), (Some(0), Some(0)));
    }
    assert_eq!(judged["roles"]["py-role"]["privileges"], json!([[2, "", ""], [11, "test", "s1"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_client_reads_what_was_done() {
    let (_kube, sim, seeds) = simulated_cluster("official-go", "go", Some(json!({"enable-quotas": true}))).await;
    let p = &AdminPolicy::default();
    let admin = connect(&seeds, Some(("admin", "admin"))).await.unwrap();
    let scoped =
        [privilege(PrivilegeCode::Read, Some("test"), None), privilege(PrivilegeCode::SindexAdmin, None, None)];
    admin.create_role(p, "go-role", &scoped, &["127.0.0.1", "127.0.0.0/8"], 500, 100).await.unwrap();
    admin.create_user(p, "go-user", "go-pw", &["go-role"]).await.unwrap();
    admin.close().await.unwrap();

    // The judge (built on demand into the tool cache, never skipped) logs in as admin, creates `from-go`, reads.
    let src = judges_dir().join("go");
    let args = vec![hosts(&seeds), "admin".to_string(), "admin".to_string()];
    let out = tokio::task::spawn_blocking(move || ako_testbed::gojudge::run_go_program(&src, "gojudge", &args))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the Go judge: {e:#}"));
    let judged: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(judged["nodes"], NODES, "{judged}");
    assert_eq!(judged["wrong_password_code"], 65, "INVALID_CREDENTIAL: {judged}");
    assert_eq!(judged["reader_nodes"], NODES, "the user the judge created logs in and tends: {judged}");
    let in_sim: serde_json::Map<String, Value> =
        sim.users_of("official-go", "go").into_iter().map(|u| (u.name, json!(u.roles))).collect();
    assert_eq!(judged["users"], Value::Object(in_sim), "{judged}");
    assert_eq!(judged["users"]["from-go"], json!(["read"]));
    let roles = sim.roles_of("official-go", "go");
    assert_eq!(judged["roles"].as_object().map(|o| o.len()), Some(roles.len()), "{judged}");
    for role in &roles {
        let mut privileges: Vec<Value> = role
            .privileges
            .iter()
            .map(|p| json!([ako_simulator::privilege_name(p.code).unwrap(), p.namespace, p.set]))
            .collect();
        privileges.sort_by_key(|v| v.to_string());
        let got = &judged["roles"][&role.name];
        assert_eq!(got["privileges"], json!(privileges), "role {}: {got}", role.name);
        assert_eq!(got["whitelist"], json!(sorted(role.whitelist.clone())), "role {}", role.name);
        assert_eq!(got["read_quota"], role.read_quota, "role {}", role.name);
        assert_eq!(got["write_quota"], role.write_quota, "role {}", role.name);
    }
    assert_eq!(judged["roles"]["go-role"]["read_quota"], 500);
    assert_eq!(judged["roles"]["go-role"]["whitelist"], json!(["127.0.0.0/8", "127.0.0.1"]));
}

fn judges_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/judges"))
}
