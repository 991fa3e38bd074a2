//! The admin operations the controller needs, behind a trait (so the reconcile logic is tested without a
//! cluster), and their implementation over Aerospike's own Rust client (crate `aerospike`): it speaks the admin
//! protocol, logs in, and tends the cluster, so a write reaches whichever node is up.
use std::collections::BTreeMap;
use std::time::Duration;

use super::Privilege;
use super::plan::{AdminOp, Observed, RoleState, UserState};
use crate::asinfo::TlsClient;

/// A boxed future, so the traits stay object-safe without the async-trait crate.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// An admin-protocol failure: what was being done and the server's answer (never a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{doing}: {message}")]
pub struct AdminError {
    pub doing: String,
    pub message: String,
    /// The server's result code, when it answered one (e.g. 65 invalid credential, 60 invalid user).
    pub code: Option<i32>,
}

/// A session with admin rights on one cluster.
pub trait AdminClient: Send + Sync {
    /// The users and roles the cluster has.
    fn observe(&self) -> BoxFuture<'_, Result<Observed, AdminError>>;
    /// Carries out one operation.
    fn apply<'a>(&'a self, op: &'a AdminOp) -> BoxFuture<'a, Result<(), AdminError>>;
}

/// Connects admin sessions: seeds are the addresses of the cluster's pods; with `tls`, every connection is TLS
/// and the nodes' certificates must carry its server name (`network.service.tls-name`). `password: None` is a PKI
/// login (the user is the TLS client certificate's common name; needs `tls` with a client certificate).
pub trait AdminConnector: Send + Sync {
    fn connect<'a>(
        &'a self,
        seeds: &'a [std::net::SocketAddr],
        tls: Option<&'a TlsClient>,
        user: &'a str,
        password: Option<&'a str>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Box<dyn AdminClient>, AdminError>>;
}

/// The crate's hosts for `seeds`: `ip:port`, or `ip:tls-name:port` with TLS (its host-list syntax).
pub fn hosts(seeds: &[std::net::SocketAddr], tls: Option<&TlsClient>) -> Vec<aerospike::Host> {
    seeds
        .iter()
        .map(|a| match tls {
            Some(t) => aerospike::Host::new_tls(&a.ip().to_string(), &t.server_name, a.port()),
            None => aerospike::Host::new(&a.ip().to_string(), a.port()),
        })
        .collect()
}

/// [`AdminConnector`] over the `aerospike` crate.
#[derive(Clone, Copy, Debug, Default)]
pub struct AerospikeConnector;

impl AdminConnector for AerospikeConnector {
    fn connect<'a>(
        &'a self,
        seeds: &'a [std::net::SocketAddr],
        tls: Option<&'a TlsClient>,
        user: &'a str,
        password: Option<&'a str>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Box<dyn AdminClient>, AdminError>> {
        Box::pin(async move {
            let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
            let auth_mode = match password {
                Some(p) => aerospike::AuthMode::Internal(user.to_string(), p.to_string()),
                None => aerospike::AuthMode::Pki,
            };
            let user = if password.is_some() { user.to_string() } else { format!("{user} (PKI)") };
            let policy = aerospike::ClientPolicy {
                auth_mode,
                timeout: ms,
                login_timeout: ms,
                tls_policy: tls.map(|t| aerospike::TlsPolicy::new(t.config.clone())),
                ..Default::default()
            };
            let list = hosts(seeds, tls);
            let hosts = list.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
            let client = aerospike::Client::new(&policy, &list)
                .await
                .map_err(|e| failure(format!("connecting to {hosts} as {user}"), &e))?;
            let admin = aerospike::AdminPolicy { timeout: ms };
            Ok(Box::new(AerospikeAdmin { client, policy: admin }) as Box<dyn AdminClient>)
        })
    }
}

fn failure(doing: String, e: &aerospike::Error) -> AdminError {
    let code = e.result_code();
    AdminError { doing, message: e.to_string(), code: (code != 0).then_some(code) }
}

struct AerospikeAdmin {
    client: aerospike::Client,
    policy: aerospike::AdminPolicy,
}

impl Drop for AerospikeAdmin {
    fn drop(&mut self) {
        // The client's tend task stops when the client is closed; close it off the caller's path.
        let client = self.client.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = client.close().await;
            });
        }
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A privilege as the server answered it. The client reads an unscoped namespace or set as `Some("")`; it is no
/// scope, as in the spec (else every read-back would differ from the spec and be revoked and granted again).
fn from_crate(p: &aerospike::Privilege) -> Privilege {
    let scope = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    Privilege { code: String::from(&p.code), namespace: scope(&p.namespace), set: scope(&p.set_name) }
}

impl AerospikeAdmin {
    async fn run(&self, op: &AdminOp) -> Result<(), aerospike::Error> {
        let (c, p) = (&self.client, &self.policy);
        let privs = |v: &[Privilege]| -> Result<Vec<aerospike::Privilege>, aerospike::Error> {
            v.iter()
                .map(|x| {
                    aerospike::PrivilegeCode::try_from(x.code.as_str())
                        .map(|code| aerospike::Privilege::new(code, x.namespace.clone(), x.set.clone()))
                })
                .collect()
        };
        match op {
            AdminOp::CreateRole(r) => {
                let list: Vec<Privilege> = r.privileges.iter().cloned().collect();
                let whitelist: Vec<&str> = r.whitelist.iter().map(String::as_str).collect();
                c.create_role(p, &r.name, &privs(&list)?, &whitelist, r.read_quota, r.write_quota).await
            }
            AdminOp::GrantPrivileges { role, privileges } => c.grant_privileges(p, role, &privs(privileges)?).await,
            AdminOp::RevokePrivileges { role, privileges } => c.revoke_privileges(p, role, &privs(privileges)?).await,
            AdminOp::SetWhitelist { role, whitelist } => c.set_allowlist(p, role, &strs(whitelist)).await,
            AdminOp::SetQuotas { role, read, write } => c.set_quotas(p, role, *read, *write).await,
            AdminOp::CreateUser { user, password: Some(pw), roles } => {
                c.create_user(p, user, pw.expose(), &strs(roles)).await
            }
            AdminOp::CreateUser { user, password: None, roles } => c.create_pki_user(p, user, &strs(roles)).await,
            // For the session's own user this is a change with the old credential, else a set.
            AdminOp::SetPassword { user, password } => c.change_password(p, user, password.expose()).await,
            AdminOp::DisablePassword { user } => c.change_password(p, user, super::plan::NO_PASSWORD).await,
            AdminOp::GrantRoles { user, roles } => c.grant_roles(p, user, &strs(roles)).await,
            AdminOp::RevokeRoles { user, roles } => c.revoke_roles(p, user, &strs(roles)).await,
            AdminOp::DropUser { user } => c.drop_user(p, user).await,
            AdminOp::DropRole { role } => c.drop_role(p, role).await,
        }
    }
}

impl AdminClient for AerospikeAdmin {
    fn observe(&self) -> BoxFuture<'_, Result<Observed, AdminError>> {
        Box::pin(async move {
            let users =
                self.client.query_users(&self.policy, None).await.map_err(|e| failure("querying users".into(), &e))?;
            let roles =
                self.client.query_roles(&self.policy, None).await.map_err(|e| failure("querying roles".into(), &e))?;
            Ok(Observed {
                users: users
                    .into_iter()
                    .map(|u| (u.user.clone(), UserState { name: u.user, roles: u.roles.into_iter().collect() }))
                    .collect::<BTreeMap<_, _>>(),
                roles: roles
                    .into_iter()
                    .map(|r| {
                        let state = RoleState {
                            name: r.name.clone(),
                            privileges: r.privileges.iter().map(from_crate).collect(),
                            whitelist: r.allowlist.into_iter().collect(),
                            read_quota: r.read_quota,
                            write_quota: r.write_quota,
                        };
                        (r.name, state)
                    })
                    .collect(),
            })
        })
    }

    fn apply<'a>(&'a self, op: &'a AdminOp) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(
            async move { self.run(op).await.map_err(|e| failure(format!("{} ({})", op.reason(), op.subject()), &e)) },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_scope_read_back_is_no_scope() {
        let read = |ns: Option<&str>, set: Option<&str>| {
            from_crate(&aerospike::Privilege::new(
                aerospike::PrivilegeCode::ReadWrite,
                ns.map(str::to_string),
                set.map(str::to_string),
            ))
        };
        assert_eq!(read(Some("test"), Some("")), Privilege::parse("read-write.test").unwrap());
        assert_eq!(read(Some(""), Some("")), Privilege::parse("read-write").unwrap());
        assert_eq!(read(Some("test"), Some("users")), Privilege::parse("read-write.test.users").unwrap());
    }
}
