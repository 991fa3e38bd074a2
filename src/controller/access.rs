//! Access control on a running cluster: gathers what [`crate::access::plan`] needs (the users' Secrets, an admin
//! session, the users and roles the cluster has, which passwords it already accepts), lets it decide, carries out
//! the operations one by one with an Event each, and stops at the first failure with a condition naming it.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;
use sha2::{Digest, Sha256};
use tracing::info;

use super::{Context, Error, publish};
use crate::access::plan::{self, Credential};
use crate::access::{DEFAULT_ADMIN_PASSWORD, DEFAULT_ADMIN_USER, Password};
use crate::api::AerospikeCluster;
use crate::asinfo::{TlsClient, auth};

/// Default timeout of admin operations (the reference's, when `adminPolicy.timeout` is not set).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Users and roles are read back at least this often while the spec and the passwords stay the same.
const FULL_CHECK: Duration = Duration::from_secs(300);

/// How often a Completed cluster with access control re-reads its users' Secrets (by name: RBAC cannot narrow a
/// Secret watch to the named ones, so there is none), so a password changed in its Secret takes effect without an
/// edit of the cluster.
pub(super) const SECRET_POLL: Duration = Duration::from_secs(60);

/// Why access control could not be brought to the spec this time: the condition's reason and message.
pub(super) struct Blocked {
    pub reason: &'static str,
    pub message: String,
}

fn blocked(reason: &'static str, message: impl Into<String>) -> Blocked {
    Blocked { reason, message: message.into() }
}

/// Brings the cluster's users and roles to `spec.aerospikeAccessControl`. `Ok(Ok(()))` when in sync (nothing is
/// written then), `Ok(Err(_))` when something the user must fix or a failed admin operation stops it.
pub(super) async fn reconcile(
    cluster: &AerospikeCluster,
    ctx: &Context,
    ns: &str,
    nodes: &[SocketAddr],
    tls: Option<&TlsClient>,
) -> Result<Result<(), Blocked>, Error> {
    let Some(spec) = cluster.spec.aerospike_access_control.as_ref().filter(|_| cluster.spec.security_enabled()) else {
        return Ok(Ok(()));
    };
    let Some(first) = nodes.first() else { return Ok(Ok(())) };
    let uid = cluster.uid().unwrap_or_default();

    // 1. Every password the spec names, before anything is changed.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut passwords: BTreeMap<String, Password> = BTreeMap::new();
    for user in spec.users.iter().filter(|u| u.auth_mode.as_deref() != Some("PKIOnly")) {
        match read_password(&secrets, ns, &user.secret_name, &user.name).await {
            Ok(p) => {
                passwords.insert(user.name.clone(), p);
            }
            Err(message) => return Ok(Err(blocked("AccessControlSecretInvalid", message))),
        }
    }

    // Nothing can have changed: the spec is the one applied, every password is one the cluster accepted, and the
    // users and roles were read back recently. No admin session then; a change made by hand on the server is
    // found by the next full check (at most `FULL_CHECK` later).
    let applied = cluster.status.as_ref().and_then(|s| s.aerospike_access_control.as_ref());
    let passwords_known = passwords.iter().all(|(user, p)| ctx.accepted_password(&uid, user, p));
    let checked = ctx.access_checked.lock().unwrap_or_else(|e| e.into_inner()).get(&uid).copied();
    if applied == Some(spec) && passwords_known && checked.is_some_and(|t| t.elapsed() < FULL_CHECK) {
        return Ok(Ok(()));
    }

    // 2. An admin session: the password in admin's Secret, else the default one a new server has. A PKIOnly admin
    // logs in with the operator's certificate: first once its password is disabled (applied as PKIOnly, or a
    // Federal image), last while the default password still works (it is disabled with that session).
    let admin_password = passwords.get(DEFAULT_ADMIN_USER).cloned();
    let mut candidates: Vec<Option<Password>> = admin_password.iter().cloned().map(Some).collect();
    if admin_password.as_ref().map(Password::expose) != Some(DEFAULT_ADMIN_PASSWORD) {
        candidates.push(Some(Password::new(DEFAULT_ADMIN_PASSWORD)));
    }
    let is_pki_admin = |ac: &crate::api::AccessControlSpec| {
        ac.users.iter().any(|u| u.name == DEFAULT_ADMIN_USER && u.auth_mode.as_deref() == Some(plan::PKI_ONLY))
    };
    if tls.is_some() {
        if applied.is_some_and(is_pki_admin) || crate::validate::image::is_federal(&cluster.spec.image) {
            candidates.insert(0, None);
        } else if is_pki_admin(spec) {
            candidates.push(None);
        }
    }
    let timeout = spec
        .admin_policy
        .as_ref()
        .and_then(|p| u64::try_from(p.timeout).ok())
        .filter(|ms| *ms > 0)
        .map_or(ADMIN_TIMEOUT, Duration::from_millis);
    let mut session = None;
    let mut failures = Vec::new();
    for candidate in &candidates {
        match ctx.admin.connect(nodes, tls, DEFAULT_ADMIN_USER, candidate.as_ref().map(Password::expose), timeout).await
        {
            Ok(s) => {
                session = Some((s, candidate.clone()));
                break;
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    let Some((session, logged_in_with)) = session else {
        return Ok(Err(blocked(
            "AccessControlLoginFailed",
            format!(
                "cannot log in as admin (with the password of its Secret, the default one, or the operator's \
                 certificate for a PKIOnly admin): {}",
                failures.join("; ")
            ),
        )));
    };

    // 3. What the cluster has, and which passwords it accepts.
    let observed = match session.observe().await {
        Ok(o) => o,
        Err(e) => return Ok(Err(blocked("AccessControlFailed", e.to_string()))),
    };
    let mut credentials = BTreeMap::new();
    for user in &spec.users {
        let Some(password) = passwords.get(&user.name) else {
            credentials.insert(user.name.clone(), Credential::Pki);
            continue;
        };
        let accepted = if user.name == DEFAULT_ADMIN_USER {
            logged_in_with.as_ref() == Some(password)
        } else if !observed.users.contains_key(&user.name) {
            false
        } else if ctx.accepted_password(&uid, &user.name, password) {
            true
        } else {
            password_accepted(ctx, *first, tls, &user.name, password).await
        };
        credentials.insert(user.name.clone(), Credential::Password { password: password.clone(), accepted });
    }

    // 4. Decide, then carry out one by one.
    let ops = plan::plan(spec, applied, &observed, &credentials);
    for op in &ops {
        if let Err(e) = session.apply(op).await {
            let message = e.to_string();
            publish(ctx, cluster, EventType::Warning, "AccessControlFailed", "AccessControl", &message).await;
            return Ok(Err(blocked("AccessControlFailed", message)));
        }
        info!(cluster = %cluster.name_any(), namespace = ns, "{op}");
        publish(ctx, cluster, EventType::Normal, op.reason(), "AccessControl", &op.to_string()).await;
    }
    // Remember what the server accepts now, so the next reconcile does not log in to check.
    for (user, c) in &credentials {
        if let Credential::Password { password, .. } = c {
            ctx.remember_password(&uid, user, password);
        }
    }
    ctx.access_checked.lock().unwrap_or_else(|e| e.into_inner()).insert(uid, tokio::time::Instant::now());
    Ok(Ok(()))
}

async fn read_password(secrets: &Api<Secret>, ns: &str, name: &str, user: &str) -> Result<Password, String> {
    let what = format!("Secret {ns}/{name} (password of user {user} in spec.aerospikeAccessControl.users)");
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| format!("reading the {what}: {e}"))?
        .ok_or_else(|| format!("the {what} does not exist"))?;
    let bytes = secret
        .data
        .and_then(|d| d.get("password").cloned())
        .ok_or_else(|| format!("the {what} has no key `password`"))?;
    let text = String::from_utf8(bytes.0).map_err(|_| format!("the {what}: `password` is not UTF-8"))?;
    if text.is_empty() {
        return Err(format!("the {what}: `password` is empty"));
    }
    Ok(Password::new(text))
}

/// Whether the cluster accepts `password` for `user`: one login on one node (a read, nothing is written).
async fn password_accepted(
    ctx: &Context,
    node: SocketAddr,
    tls: Option<&TlsClient>,
    user: &str,
    password: &Password,
) -> bool {
    let (user_owned, pw) = (user.to_string(), password.expose().to_string());
    // bcrypt costs tens of milliseconds: off the async workers.
    let Ok(Ok(login)) = tokio::task::spawn_blocking(move || auth::credentials(&user_owned, &pw)).await else {
        return false;
    };
    let base = match tls {
        Some(t) => ctx.info.with_tls(t.clone()).unwrap_or_else(|| ctx.info.clone()),
        None => ctx.info.clone(),
    };
    let Some(client) = base.with_logins(vec![login]) else { return false };
    // A refused login, or any other failure: not known to be accepted, so the password is set (idempotent).
    client.request(node, &["build".to_string()]).await.is_ok()
}

/// The fingerprint kept in memory of a password the server accepted (never the password itself).
pub(super) fn fingerprint(uid: &str, user: &str, password: &Password) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [uid, user, password.expose()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}
