//! The access-control decision, pure: the cluster's users and roles, the spec and the passwords the server
//! already accepts in, the ordered admin operations out.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{DEFAULT_ADMIN_USER, PREDEFINED_ROLES, Password, Privilege};
use crate::api::AccessControlSpec;

/// A role as the server has it (or as the spec wants it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleState {
    pub name: String,
    pub privileges: BTreeSet<Privilege>,
    pub whitelist: BTreeSet<String>,
    /// Records per second; 0 is no quota.
    pub read_quota: u32,
    pub write_quota: u32,
}

/// A user as the server has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserState {
    pub name: String,
    pub roles: BTreeSet<String>,
}

/// What the cluster has, read back through the admin protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub roles: BTreeMap<String, RoleState>,
    pub users: BTreeMap<String, UserState>,
}

/// `authMode` of a user who logs in with a certificate only.
pub const PKI_ONLY: &str = "PKIOnly";

/// The password the server takes as "no password login" for a PKIOnly user.
pub const NO_PASSWORD: &str = "nopassword";

/// How a user of the spec logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// The password from the user's Secret; `accepted` when the server already accepts it for this user (then
    /// nothing is written).
    Password { password: Password, accepted: bool },
    /// PKIOnly: a TLS client certificate, no password.
    Pki,
}

/// One admin-protocol operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminOp {
    CreateRole(RoleState),
    GrantPrivileges {
        role: String,
        privileges: Vec<Privilege>,
    },
    RevokePrivileges {
        role: String,
        privileges: Vec<Privilege>,
    },
    SetWhitelist {
        role: String,
        whitelist: Vec<String>,
    },
    SetQuotas {
        role: String,
        read: u32,
        write: u32,
    },
    /// `password: None` creates a PKIOnly user.
    CreateUser {
        user: String,
        password: Option<Password>,
        roles: Vec<String>,
    },
    SetPassword {
        user: String,
        password: Password,
    },
    /// An existing user becomes PKIOnly: its password is set to the value the server takes as "no password
    /// login" (`nopassword`, what the official clients' create-PKI-user sends), as the reference does.
    DisablePassword {
        user: String,
    },
    GrantRoles {
        user: String,
        roles: Vec<String>,
    },
    RevokeRoles {
        user: String,
        roles: Vec<String>,
    },
    DropUser {
        user: String,
    },
    DropRole {
        role: String,
    },
}

impl AdminOp {
    /// `role <name>` or `user <name>`: what the operation acts on.
    pub fn subject(&self) -> String {
        match self {
            AdminOp::CreateRole(RoleState { name: role, .. })
            | AdminOp::GrantPrivileges { role, .. }
            | AdminOp::RevokePrivileges { role, .. }
            | AdminOp::SetWhitelist { role, .. }
            | AdminOp::SetQuotas { role, .. }
            | AdminOp::DropRole { role } => format!("role {role}"),
            AdminOp::CreateUser { user, .. }
            | AdminOp::SetPassword { user, .. }
            | AdminOp::DisablePassword { user }
            | AdminOp::GrantRoles { user, .. }
            | AdminOp::RevokeRoles { user, .. }
            | AdminOp::DropUser { user } => format!("user {user}"),
        }
    }

    /// The Event reason for this operation.
    pub fn reason(&self) -> &'static str {
        match self {
            AdminOp::CreateRole(_) => "RoleCreated",
            AdminOp::GrantPrivileges { .. }
            | AdminOp::RevokePrivileges { .. }
            | AdminOp::SetWhitelist { .. }
            | AdminOp::SetQuotas { .. } => "RoleUpdated",
            AdminOp::CreateUser { .. } => "UserCreated",
            AdminOp::SetPassword { .. } | AdminOp::DisablePassword { .. } => "UserPasswordChanged",
            AdminOp::GrantRoles { .. } | AdminOp::RevokeRoles { .. } => "UserUpdated",
            AdminOp::DropUser { .. } => "UserDropped",
            AdminOp::DropRole { .. } => "RoleDropped",
        }
    }
}

/// What an operation did, for an Event or a log line: never a password.
impl fmt::Display for AdminOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| v.join(", ");
        let privs = |v: &[Privilege]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        match self {
            AdminOp::CreateRole(r) => {
                let p: Vec<Privilege> = r.privileges.iter().cloned().collect();
                write!(f, "created role {} with privileges [{}]", r.name, privs(&p))
            }
            AdminOp::GrantPrivileges { role, privileges } => {
                write!(f, "granted [{}] to role {role}", privs(privileges))
            }
            AdminOp::RevokePrivileges { role, privileges } => {
                write!(f, "revoked [{}] from role {role}", privs(privileges))
            }
            AdminOp::SetWhitelist { role, whitelist } => {
                write!(f, "set the whitelist of role {role} to [{}]", list(whitelist))
            }
            AdminOp::SetQuotas { role, read, write } => {
                write!(f, "set the quotas of role {role} to read {read}, write {write}")
            }
            AdminOp::CreateUser { user, password, roles } => {
                let kind = if password.is_some() { "user" } else { "PKIOnly user" };
                write!(f, "created {kind} {user} with roles [{}]", list(roles))
            }
            AdminOp::SetPassword { user, .. } => write!(f, "changed the password of user {user}"),
            AdminOp::DisablePassword { user } => {
                write!(f, "disabled password logins of user {user} (PKIOnly: certificate logins only)")
            }
            AdminOp::GrantRoles { user, roles } => write!(f, "granted roles [{}] to user {user}", list(roles)),
            AdminOp::RevokeRoles { user, roles } => write!(f, "revoked roles [{}] from user {user}", list(roles)),
            AdminOp::DropUser { user } => write!(f, "dropped user {user}"),
            AdminOp::DropRole { role } => write!(f, "dropped role {role}"),
        }
    }
}

/// The role the spec asks for. Unparsable privileges are left out (the webhook refuses them by field).
pub fn desired_role(spec: &crate::api::RoleSpec) -> RoleState {
    RoleState {
        name: spec.name.clone(),
        privileges: spec.privileges.iter().filter_map(|p| Privilege::parse(p)).collect(),
        whitelist: spec.whitelist.iter().cloned().collect(),
        read_quota: spec.read_quota.unwrap_or(0),
        write_quota: spec.write_quota.unwrap_or(0),
    }
}

/// The operations that bring `observed` to `spec`. `applied` is the access control the operator applied
/// before (the status copy): only what it names may be dropped, so users and roles made by hand outside the
/// spec are left alone, as in the reference. `credentials` has an entry for every user of the spec.
pub fn plan(
    spec: &AccessControlSpec,
    applied: Option<&AccessControlSpec>,
    observed: &Observed,
    credentials: &BTreeMap<String, Credential>,
) -> Vec<AdminOp> {
    let mut ops = Vec::new();

    // Roles first: users are granted them next.
    for role in spec.roles.iter().filter(|r| !PREDEFINED_ROLES.contains(&r.name.as_str())) {
        let want = desired_role(role);
        match observed.roles.get(&want.name) {
            None => ops.push(AdminOp::CreateRole(want)),
            Some(have) => role_updates(&want, have, &mut ops),
        }
    }

    // Users, `admin` last: its password changes after everything else is done with the old one.
    let mut users: Vec<_> = spec.users.iter().filter(|u| u.name != DEFAULT_ADMIN_USER).collect();
    users.extend(spec.users.iter().filter(|u| u.name == DEFAULT_ADMIN_USER));
    let mut admin_ops = Vec::new();
    for user in users {
        let roles: BTreeSet<String> = user.roles.iter().cloned().collect();
        let credential = credentials.get(&user.name);
        let out = if user.name == DEFAULT_ADMIN_USER { &mut admin_ops } else { &mut ops };
        match observed.users.get(&user.name) {
            None => out.push(AdminOp::CreateUser {
                user: user.name.clone(),
                password: match credential {
                    Some(Credential::Password { password, .. }) => Some(password.clone()),
                    _ => None,
                },
                roles: roles.iter().cloned().collect(),
            }),
            Some(have) => {
                if let Some(Credential::Password { password, accepted: false }) = credential {
                    out.push(AdminOp::SetPassword { user: user.name.clone(), password: password.clone() });
                }
                // Becoming PKIOnly (not PKIOnly in what was applied before, or nothing applied yet).
                let was_pki = applied.is_some_and(|a| {
                    a.users.iter().any(|u| u.name == user.name && u.auth_mode.as_deref() == Some(PKI_ONLY))
                });
                if credential == Some(&Credential::Pki) && !was_pki {
                    out.push(AdminOp::DisablePassword { user: user.name.clone() });
                }
                let revoke: Vec<String> = have.roles.difference(&roles).cloned().collect();
                let grant: Vec<String> = roles.difference(&have.roles).cloned().collect();
                if !revoke.is_empty() {
                    out.push(AdminOp::RevokeRoles { user: user.name.clone(), roles: revoke });
                }
                if !grant.is_empty() {
                    out.push(AdminOp::GrantRoles { user: user.name.clone(), roles: grant });
                }
            }
        }
    }

    // What the spec no longer names: users, then the roles they may have held.
    if let Some(applied) = applied {
        let named_users: BTreeSet<&str> = spec.users.iter().map(|u| u.name.as_str()).collect();
        for user in &applied.users {
            let gone = !named_users.contains(user.name.as_str()) && user.name != DEFAULT_ADMIN_USER;
            if gone && observed.users.contains_key(&user.name) {
                ops.push(AdminOp::DropUser { user: user.name.clone() });
            }
        }
        let named_roles: BTreeSet<&str> = spec.roles.iter().map(|r| r.name.as_str()).collect();
        for role in &applied.roles {
            let gone = !named_roles.contains(role.name.as_str()) && !PREDEFINED_ROLES.contains(&role.name.as_str());
            if gone && observed.roles.contains_key(&role.name) {
                ops.push(AdminOp::DropRole { role: role.name.clone() });
            }
        }
    }
    ops.extend(admin_ops);
    ops
}

fn role_updates(want: &RoleState, have: &RoleState, ops: &mut Vec<AdminOp>) {
    let revoke: Vec<Privilege> = have.privileges.difference(&want.privileges).cloned().collect();
    let grant: Vec<Privilege> = want.privileges.difference(&have.privileges).cloned().collect();
    if !revoke.is_empty() {
        ops.push(AdminOp::RevokePrivileges { role: want.name.clone(), privileges: revoke });
    }
    if !grant.is_empty() {
        ops.push(AdminOp::GrantPrivileges { role: want.name.clone(), privileges: grant });
    }
    if want.whitelist != have.whitelist {
        ops.push(AdminOp::SetWhitelist {
            role: want.name.clone(),
            whitelist: want.whitelist.iter().cloned().collect(),
        });
    }
    if (want.read_quota, want.write_quota) != (have.read_quota, have.write_quota) {
        ops.push(AdminOp::SetQuotas { role: want.name.clone(), read: want.read_quota, write: want.write_quota });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: serde_json::Value) -> AccessControlSpec {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> AccessControlSpec {
        spec(json!({
            "roles": [
                {"name": "app", "privileges": ["read-write.test", "read.test.users"], "whitelist": ["10.0.0.0/8"]},
                {"name": "ops", "privileges": ["sys-admin"], "readQuota": 100}
            ],
            "users": [
                {"name": "admin", "secretName": "admin-pw", "roles": ["sys-admin", "user-admin"]},
                {"name": "alice", "secretName": "alice-pw", "roles": ["app"]},
                {"name": "bob", "secretName": "bob-pw", "roles": ["ops", "read"]}
            ]
        }))
    }

    fn accepted(names: &[&str]) -> BTreeMap<String, Credential> {
        names
            .iter()
            .map(|n| {
                (n.to_string(), Credential::Password { password: Password::new(format!("{n}-pw")), accepted: true })
            })
            .collect()
    }

    /// The server after `plan(base())` was carried out.
    fn in_sync() -> Observed {
        let s = base();
        Observed {
            roles: s.roles.iter().map(|r| (r.name.clone(), desired_role(r))).collect(),
            users: s
                .users
                .iter()
                .map(|u| (u.name.clone(), UserState { name: u.name.clone(), roles: u.roles.iter().cloned().collect() }))
                .collect(),
        }
    }

    fn fresh() -> Observed {
        // A new secured server: admin with the default password and its roles.
        let mut o = Observed::default();
        o.users.insert(
            "admin".into(),
            UserState { name: "admin".into(), roles: ["user-admin".to_string()].into_iter().collect() },
        );
        o
    }

    #[test]
    fn a_cluster_in_sync_gets_no_operation() {
        assert_eq!(plan(&base(), Some(&base()), &in_sync(), &accepted(&["admin", "alice", "bob"])), vec![]);
    }

    #[test]
    fn a_fresh_cluster_gets_roles_then_users_then_admin() {
        let mut creds = accepted(&["alice", "bob"]);
        creds.insert("admin".into(), Credential::Password { password: Password::new("new"), accepted: false });
        let ops = plan(&base(), None, &fresh(), &creds);
        let shown: Vec<String> = ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "created role app with privileges [read.test.users, read-write.test]",
                "created role ops with privileges [sys-admin]",
                "created user alice with roles [app]",
                "created user bob with roles [ops, read]",
                "changed the password of user admin",
                "granted roles [sys-admin] to user admin",
            ]
        );
        assert!(!format!("{ops:?}").contains("alice-pw"), "no password in Debug output");
        assert_eq!(
            ops[2],
            AdminOp::CreateUser {
                user: "alice".into(),
                password: Some(Password::new("alice-pw")),
                roles: vec!["app".into()]
            }
        );
    }

    #[test]
    fn a_password_the_server_does_not_accept_is_set() {
        let mut creds = accepted(&["admin", "bob"]);
        creds.insert("alice".into(), Credential::Password { password: Password::new("rotated"), accepted: false });
        assert_eq!(
            plan(&base(), Some(&base()), &in_sync(), &creds),
            vec![AdminOp::SetPassword { user: "alice".into(), password: Password::new("rotated") }]
        );
    }

    #[test]
    fn removed_users_and_roles_are_dropped_only_if_the_operator_applied_them() {
        let mut next = base();
        next.users.retain(|u| u.name != "bob");
        next.roles.retain(|r| r.name != "ops");
        let mut observed = in_sync();
        // Made by hand, never in the spec: left alone.
        observed.users.insert("dba".into(), UserState { name: "dba".into(), roles: BTreeSet::new() });
        observed.roles.insert("manual".into(), RoleState { name: "manual".into(), ..Default::default() });
        let ops = plan(&next, Some(&base()), &observed, &accepted(&["admin", "alice"]));
        assert_eq!(ops, vec![AdminOp::DropUser { user: "bob".into() }, AdminOp::DropRole { role: "ops".into() }]);
        // Without a record of what was applied, nothing is dropped.
        assert_eq!(plan(&next, None, &observed, &accepted(&["admin", "alice"])), vec![]);
    }

    #[test]
    fn role_changes_are_granted_and_revoked_one_by_one() {
        let mut next = base();
        next.roles[0].privileges = vec!["read-write.test".into(), "truncate.test".into()];
        next.roles[0].whitelist.clear();
        next.roles[1].read_quota = Some(200);
        next.users[1].roles = vec!["app".into(), "read".into()];
        let ops = plan(&next, Some(&base()), &in_sync(), &accepted(&["admin", "alice", "bob"]));
        assert_eq!(
            ops,
            vec![
                AdminOp::RevokePrivileges {
                    role: "app".into(),
                    privileges: vec![Privilege::parse("read.test.users").unwrap()]
                },
                AdminOp::GrantPrivileges {
                    role: "app".into(),
                    privileges: vec![Privilege::parse("truncate.test").unwrap()]
                },
                AdminOp::SetWhitelist { role: "app".into(), whitelist: vec![] },
                AdminOp::SetQuotas { role: "ops".into(), read: 200, write: 0 },
                AdminOp::GrantRoles { user: "alice".into(), roles: vec!["read".into()] },
            ]
        );
    }

    #[test]
    fn admin_and_predefined_roles_are_never_dropped_and_pki_users_get_no_password() {
        let mut applied = base();
        applied
            .roles
            .push(spec(json!({"roles": [{"name": "read", "privileges": ["read"]}], "users": []})).roles.remove(0));
        let mut next = base();
        next.users.retain(|u| u.name != "admin");
        next.users
            .push(spec(json!({"users": [{"name": "svc", "roles": ["read"], "authMode": "PKIOnly"}]})).users.remove(0));
        let mut creds = accepted(&["alice", "bob"]);
        creds.insert("svc".into(), Credential::Pki);
        let mut observed = in_sync();
        observed.roles.insert("read".into(), RoleState { name: "read".into(), ..Default::default() });
        let ops = plan(&next, Some(&applied), &observed, &creds);
        assert_eq!(ops, vec![AdminOp::CreateUser { user: "svc".into(), password: None, roles: vec!["read".into()] }]);
        assert_eq!(ops[0].to_string(), "created PKIOnly user svc with roles [read]");
    }

    #[test]
    fn an_existing_user_becoming_pki_only_loses_its_password_login_once() {
        let mut next = base();
        next.users.iter_mut().find(|u| u.name == "admin").unwrap().auth_mode = Some(PKI_ONLY.into());
        let mut creds = accepted(&["alice", "bob"]);
        creds.insert("admin".into(), Credential::Pki);
        let ops = plan(&next, Some(&base()), &in_sync(), &creds);
        assert_eq!(ops, vec![AdminOp::DisablePassword { user: "admin".into() }]);
        assert!(ops[0].to_string().contains("disabled password logins of user admin"));
        // Once applied as PKIOnly, nothing more.
        assert_eq!(plan(&next, Some(&next), &in_sync(), &creds), vec![]);
    }
}
