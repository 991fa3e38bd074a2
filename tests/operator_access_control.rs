//! Access control end to end: the operator creates, rotates and drops Aerospike users and roles from the spec and
//! its Secrets, on simulated nodes; Aerospike's official Rust client (crate `aerospike`) judges from outside what
//! the cluster has, logging in as each user.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aerospike::{AdminPolicy, AuthMode, Client, ClientPolicy};
use ako_simulator::What;
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(120);

async fn put_secret(secrets: &Api<Secret>, name: &str, password: &str) {
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": name}, "stringData": {"password": password}})).unwrap();
    match secrets.get_opt(name).await.unwrap() {
        None => {
            secrets.create(&PostParams::default(), &secret).await.unwrap();
        }
        Some(_) => {
            secrets.patch(name, &PatchParams::default(), &Patch::Merge(&secret)).await.unwrap();
        }
    }
}

/// The official client, logged in as `user`.
async fn login(seeds: &str, user: &str, password: &str) -> Result<Client, String> {
    let policy = ClientPolicy {
        auth_mode: AuthMode::Internal(user.into(), password.into()),
        timeout: 2000,
        login_timeout: 2000,
        ..Default::default()
    };
    Client::new(&policy, &seeds.to_string()).await.map_err(|e| e.to_string())
}

/// Users (name -> sorted roles) and custom roles (name -> sorted privileges, read quota) as the client reads them.
async fn read_back(client: &Client) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, (Vec<String>, u32)>) {
    let policy = AdminPolicy::default();
    let users = client.query_users(&policy, None).await.expect("query users");
    let roles = client.query_roles(&policy, None).await.expect("query roles");
    let users = users
        .into_iter()
        .map(|u| {
            let mut r = u.roles;
            r.sort();
            (u.user, r)
        })
        .collect();
    let custom = roles
        .into_iter()
        .filter(|r| !aerospike_kubernetes_operator::access::PREDEFINED_ROLES.contains(&r.name.as_str()))
        .map(|r| {
            let mut p: Vec<String> = r
                .privileges
                .iter()
                .map(|p| {
                    let scope = [p.namespace.as_deref(), p.set_name.as_deref()]
                        .into_iter()
                        .flatten()
                        .filter(|s| !s.is_empty())
                        .map(|s| format!(".{s}"))
                        .collect::<String>();
                    format!("{}{scope}", String::from(&p.code))
                })
                .collect();
            p.sort();
            (r.name, (p, r.read_quota))
        })
        .collect();
    (users, custom)
}

fn map<V: Clone>(items: &[(&str, V)]) -> BTreeMap<String, V> {
    items.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn access_control(users: Value, roles: Value) -> Value {
    json!({"users": users, "roles": roles})
}

/// Admin writes (creates, grants, passwords, drops) the simulated nodes received.
fn admin_writes(env: &Env, pods: &[String]) -> Vec<String> {
    pods.iter()
        .flat_map(|p| env.sim.history_for(&format!("{}/{p}", env.ns)))
        .filter_map(|r| match r.what {
            What::Command { command, .. } if command.starts_with("admin:") => Some(command),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_roles_follow_the_spec_and_its_secrets() {
    let env = env("e2e-access").await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    for (name, pw) in [("admin-pw", "admin-1"), ("alice-pw", "alice-1"), ("bob-pw", "bob-1"), ("carol-pw", "carol-1")] {
        put_secret(&secrets, name, pw).await;
    }
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let users = json!([
        {"name": "admin", "secretName": "admin-pw", "roles": ["sys-admin", "user-admin"]},
        {"name": "alice", "secretName": "alice-pw", "roles": ["app"]},
        {"name": "bob", "secretName": "bob-pw", "roles": ["ops", "read"]},
        {"name": "carol", "secretName": "carol-pw", "roles": ["read-write"]}
    ]);
    let roles = json!([
        {"name": "app", "privileges": ["read-write.test", "read.test.users"]},
        {"name": "ops", "privileges": ["sys-admin", "data-admin"], "readQuota": 100}
    ]);
    let mut manifest = cluster_manifest("acl", &env.ns, 2);
    manifest["spec"]["aerospikeConfig"]["security"] = json!({"enable-quotas": true});
    manifest["spec"]["aerospikeAccessControl"] = access_control(users.clone(), roles.clone());
    create(&env.client, &env.ns, &manifest).await;
    let created = wait_completed(&env.client, &env.ns, "acl", T).await;
    let pod_names: Vec<String> = pods(&env.client, &env.ns, "acl").await.iter().map(|p| p.name_any()).collect();
    let seeds = pod_names
        .iter()
        .map(|p| env.sim.node_addr(&env.ns, p).expect("simulated node").to_string())
        .collect::<Vec<_>>()
        .join(",");

    // 1. What the spec asks, read back by the official client logged in as admin with its Secret's password.
    let admin = login(&seeds, "admin", "admin-1").await.expect("admin logs in with the Secret's password");
    let (have_users, have_roles) = read_back(&admin).await;
    assert_eq!(
        have_users,
        map(&[
            ("admin", strs(&["sys-admin", "user-admin"])),
            ("alice", strs(&["app"])),
            ("bob", strs(&["ops", "read"])),
            ("carol", strs(&["read-write"])),
        ])
    );
    assert_eq!(
        have_roles,
        map(&[
            ("app", (strs(&["read-write.test", "read.test.users"]), 0)),
            ("ops", (strs(&["data-admin", "sys-admin"]), 100)),
        ])
    );
    for (user, pw) in [("alice", "alice-1"), ("bob", "bob-1"), ("carol", "carol-1")] {
        login(&seeds, user, pw).await.unwrap_or_else(|e| panic!("{user} logs in: {e}"));
    }
    let refused = login(&seeds, "admin", "admin").await.err().expect("the default admin password no longer works");
    assert!(refused.contains("65") || refused.to_lowercase().contains("credential"), "{refused}");
    let events = event_reasons(&env.client, &env.ns, "acl").await;
    for reason in ["RoleCreated", "UserCreated", "UserPasswordChanged"] {
        assert!(events.iter().any(|(r, _)| r == reason), "{reason} in {events:?}");
    }
    assert!(!events.iter().any(|(_, note)| note.contains("alice-1") || note.contains("admin-1")), "no password");

    // 2. In sync: another reconcile writes nothing.
    let writes = admin_writes(&env, &pod_names).len();
    // 2 roles, 3 users, admin's password, and sys-admin granted to admin (a new server's admin has user-admin only).
    assert_eq!(writes, 7, "{:?}", admin_writes(&env, &pod_names));
    api(&env.client, &env.ns)
        .patch("acl", &PatchParams::default(), &Patch::Merge(&json!({"metadata": {"annotations": {"poke": "1"}}})))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(admin_writes(&env, &pod_names).len(), writes, "no admin write for a cluster in sync");

    // 3. A password changed in its Secret: the new one works and the old one fails, without an edit of the cluster
    //    and without a pod restart.
    let uids: Vec<_> = pods(&env.client, &env.ns, "acl").await.iter().map(|p| p.uid()).collect();
    put_secret(&secrets, "alice-pw", "alice-2").await;
    wait_for("alice's new password accepted", Duration::from_secs(150), || async {
        login(&seeds, "alice", "alice-2").await.ok().map(|_| ())
    })
    .await;
    assert!(login(&seeds, "alice", "alice-1").await.is_err(), "the old password fails");
    let after = api(&env.client, &env.ns).get("acl").await.unwrap();
    assert_eq!(after.metadata.generation, created.metadata.generation, "the cluster's spec was not edited");
    let now: Vec<_> = pods(&env.client, &env.ns, "acl").await.iter().map(|p| p.uid()).collect();
    assert_eq!(now, uids, "no pod restarted");

    // 4. Remove a user and a role, add a privilege: dropped, dropped, granted; still no restart.
    let users2 = json!([
        {"name": "admin", "secretName": "admin-pw", "roles": ["sys-admin", "user-admin"]},
        {"name": "alice", "secretName": "alice-pw", "roles": ["app"]},
        {"name": "carol", "secretName": "carol-pw", "roles": ["read-write"]}
    ]);
    let roles2 = json!([{"name": "app", "privileges": ["read-write.test", "read.test.users", "truncate.test"]}]);
    patch_spec(&env.client, &env.ns, "acl", json!({"aerospikeAccessControl": access_control(users2.clone(), roles2)}))
        .await;
    wait_completed(&env.client, &env.ns, "acl", T).await;
    let admin = login(&seeds, "admin", "admin-1").await.expect("admin logs in");
    let (have_users, have_roles) = read_back(&admin).await;
    assert_eq!(have_users.keys().cloned().collect::<Vec<_>>(), strs(&["admin", "alice", "carol"]));
    assert_eq!(have_roles, map(&[("app", (strs(&["read-write.test", "read.test.users", "truncate.test"]), 0))]));
    let now: Vec<_> = pods(&env.client, &env.ns, "acl").await.iter().map(|p| p.uid()).collect();
    assert_eq!(now, uids, "access control changes restart no pod");

    // 5. A user whose Secret does not exist: Degraded, naming the Secret and the user; nothing else changes.
    let writes = admin_writes(&env, &pod_names).len();
    let mut users3 = users2.as_array().unwrap().clone();
    users3.push(json!({"name": "dave", "secretName": "no-such-secret", "roles": ["read"]}));
    patch_spec(&env.client, &env.ns, "acl", json!({"aerospikeAccessControl": {"users": users3}})).await;
    let c = wait_for("Degraded=True", T, || async {
        let c = api(&env.client, &env.ns).get("acl").await.ok()?;
        (condition(&c, "Degraded")?.0 == "True").then_some(c)
    })
    .await;
    let (_, reason, message) = condition(&c, "Degraded").unwrap();
    assert_eq!(reason, "AccessControlSecretInvalid");
    assert!(message.contains("no-such-secret") && message.contains("dave"), "{message}");
    assert_eq!(admin_writes(&env, &pod_names).len(), writes, "nothing written while a Secret is missing");
    let (have_users, have_roles) = read_back(&admin).await;
    assert!(!have_users.contains_key("dave"));
    assert_eq!(have_roles.keys().cloned().collect::<Vec<_>>(), strs(&["app"]), "roles untouched");
    finish(&env, op).await;
}

/// Security enabled on a running cluster: the pods roll onto the secured config, then access control gives admin
/// the password of its Secret and creates the users, as the reference does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_enabled_on_a_running_cluster() {
    let env = env("e2e-access-enable").await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    put_secret(&secrets, "admin-pw", "admin-9").await;
    put_secret(&secrets, "app-pw", "app-9").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("open", &env.ns, 2)).await;
    wait_completed(&env.client, &env.ns, "open", T).await;
    let before: Vec<_> = pods(&env.client, &env.ns, "open").await.iter().map(|p| p.uid()).collect();

    let users = json!([
        {"name": "admin", "secretName": "admin-pw", "roles": ["sys-admin", "user-admin"]},
        {"name": "app", "secretName": "app-pw", "roles": ["read-write"]}
    ]);
    patch_spec(
        &env.client,
        &env.ns,
        "open",
        json!({"aerospikeConfig": {"security": {}}, "aerospikeAccessControl": {"users": users}}),
    )
    .await;
    wait_completed(&env.client, &env.ns, "open", T).await;
    let after = pods(&env.client, &env.ns, "open").await;
    // Enabling security is a static config change: every server restarts in place onto it (the pods stay).
    assert!(after.iter().all(|p| before.contains(&p.uid())), "no pod replaced");
    for p in &after {
        let warm = env.sim.warm_restarts(&format!("{}/{}", env.ns, p.name_any()));
        assert_eq!(warm, 1, "{}: restarted in place onto the secured config", p.name_any());
    }
    let seeds = after
        .iter()
        .map(|p| env.sim.node_addr(&env.ns, &p.name_any()).expect("simulated node").to_string())
        .collect::<Vec<_>>()
        .join(",");
    let admin = login(&seeds, "admin", "admin-9").await.expect("admin has its Secret's password");
    let (users, _) = read_back(&admin).await;
    assert_eq!(users.get("app"), Some(&strs(&["read-write"])));
    login(&seeds, "app", "app-9").await.expect("app logs in");
    assert!(login(&seeds, "admin", "admin").await.is_err(), "the default password is gone");
    finish(&env, op).await;
}
