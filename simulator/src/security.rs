//! Access control of one simulated cluster: users, roles, sessions, kept at cluster level (a real server keeps them
//! in its system metadata, cluster-wide, so they survive node restarts), and the rules the admin commands follow.
//! The result codes and privilege codes are the server's (as the official clients name them).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// Admin result codes (the server's numbers).
pub(crate) mod rc {
    pub const OK: u8 = 0;
    pub const QUERY_END: u8 = 50;
    pub const INVALID_COMMAND: u8 = 54;
    pub const INVALID_FIELD: u8 = 55;
    pub const INVALID_USER: u8 = 60;
    pub const USER_ALREADY_EXISTS: u8 = 61;
    pub const INVALID_PASSWORD: u8 = 62;
    pub const INVALID_CREDENTIAL: u8 = 65;
    pub const INVALID_ROLE: u8 = 70;
    pub const ROLE_ALREADY_EXISTS: u8 = 71;
    pub const INVALID_PRIVILEGE: u8 = 72;
    pub const INVALID_WHITELIST: u8 = 73;
    pub const QUOTAS_NOT_ENABLED: u8 = 74;
    pub const NOT_AUTHENTICATED: u8 = 80;
    pub const ROLE_VIOLATION: u8 = 81;
    pub const NOT_WHITELISTED: u8 = 82;
}

/// Privilege codes and the predefined roles (each grants its own privilege, globally). Codes below 10 are global
/// only; from 10 on they may be scoped to a namespace and set.
pub const PRIVILEGES: [(u8, &str); 10] = [
    (0, "user-admin"),
    (1, "sys-admin"),
    (2, "data-admin"),
    (3, "udf-admin"),
    (4, "sindex-admin"),
    (10, "read"),
    (11, "read-write"),
    (12, "read-write-udf"),
    (13, "write"),
    (14, "truncate"),
];
const USER_ADMIN: u8 = 0;
/// What a server answers for the session TTL (its default `session-ttl`, one day).
pub(crate) const SESSION_TTL_SECONDS: u32 = 86_400;

/// The name of a privilege code, if the server knows it.
pub fn privilege_name(code: u8) -> Option<&'static str> {
    PRIVILEGES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// One privilege of a role: a code, optionally scoped to a namespace (and a set in it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RolePrivilege {
    pub code: u8,
    pub namespace: String,
    pub set: String,
}

/// A user as the simulator keeps it (the credential is not shown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityUser {
    pub name: String,
    pub roles: Vec<String>,
}

/// A role: predefined (one global privilege, no whitelist, no quotas) or created through the admin protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityRole {
    pub name: String,
    pub privileges: Vec<RolePrivilege>,
    pub whitelist: Vec<String>,
    pub read_quota: u32,
    pub write_quota: u32,
}

pub(crate) struct UserRecord {
    /// The bcrypt credential; `None` for `admin` means "the simulator's admin password option".
    pub(crate) credential: Option<String>,
    pub(crate) roles: BTreeSet<String>,
}

/// The access-control state of one cluster.
pub(crate) struct Security {
    pub(crate) users: BTreeMap<String, UserRecord>,
    /// Roles created through the admin protocol (the predefined ones are implied).
    pub(crate) roles: BTreeMap<String, SecurityRole>,
    /// Session token -> user.
    pub(crate) sessions: HashMap<Vec<u8>, String>,
}

impl Default for Security {
    /// A fresh secured cluster: the one user `admin`, role `user-admin`, password from the simulator's option.
    fn default() -> Self {
        let admin = UserRecord { credential: None, roles: BTreeSet::from(["user-admin".to_string()]) };
        Security {
            users: BTreeMap::from([("admin".to_string(), admin)]),
            roles: BTreeMap::new(),
            sessions: HashMap::new(),
        }
    }
}

pub(crate) fn is_predefined(role: &str) -> bool {
    PRIVILEGES.iter().any(|(_, n)| *n == role)
}

fn predefined(role: &str) -> Option<SecurityRole> {
    let (code, name) = PRIVILEGES.iter().find(|(_, n)| *n == role)?;
    Some(SecurityRole {
        name: name.to_string(),
        privileges: vec![RolePrivilege { code: *code, namespace: String::new(), set: String::new() }],
        ..Default::default()
    })
}

/// A bcrypt credential as clients send it (`$2a$10$` + 53 characters).
pub(crate) fn is_credential(s: &str) -> bool {
    s.len() == 60 && s.starts_with("$2")
}

impl Security {
    /// The credential `user` logs in with (`default_admin` for `admin` until its password changes).
    pub(crate) fn credential_of<'a>(&'a self, user: &str, default_admin: &'a str) -> Option<&'a str> {
        let record = self.users.get(user)?;
        Some(record.credential.as_deref().unwrap_or(default_admin))
    }

    /// A role by name, predefined or created.
    pub(crate) fn role(&self, name: &str) -> Option<SecurityRole> {
        predefined(name).or_else(|| self.roles.get(name).cloned())
    }

    /// Every role: the predefined ones first (in code order), then the created ones by name.
    pub(crate) fn all_roles(&self) -> Vec<SecurityRole> {
        PRIVILEGES.iter().filter_map(|(_, n)| predefined(n)).chain(self.roles.values().cloned()).collect()
    }

    pub(crate) fn user(&self, name: &str) -> Option<SecurityUser> {
        let record = self.users.get(name)?;
        Some(SecurityUser { name: name.to_string(), roles: record.roles.iter().cloned().collect() })
    }

    pub(crate) fn all_users(&self) -> Vec<SecurityUser> {
        self.users.keys().filter_map(|n| self.user(n)).collect()
    }

    /// Whether `user` holds privilege `code` globally (through any of its roles).
    pub(crate) fn has_global(&self, user: &str, code: u8) -> bool {
        let Some(record) = self.users.get(user) else { return false };
        record
            .roles
            .iter()
            .filter_map(|r| self.role(r))
            .any(|role| role.privileges.iter().any(|p| p.code == code && p.namespace.is_empty() && p.set.is_empty()))
    }

    pub(crate) fn is_user_admin(&self, user: &str) -> bool {
        self.has_global(user, USER_ADMIN)
    }

    /// Whether `user` may log in from `peer`: when any of its roles has a whitelist, the address must be in one.
    pub(crate) fn whitelisted(&self, user: &str, peer: IpAddr) -> bool {
        let Some(record) = self.users.get(user) else { return false };
        let lists: Vec<String> =
            record.roles.iter().filter_map(|r| self.role(r)).flat_map(|r| r.whitelist.into_iter()).collect();
        lists.is_empty() || lists.iter().any(|entry| address_matches(entry, peer))
    }

    /// Validates roles named in a user command.
    pub(crate) fn check_roles(&self, roles: &[String]) -> Result<(), u8> {
        if roles.iter().any(|r| self.role(r).is_none()) { Err(rc::INVALID_ROLE) } else { Ok(()) }
    }

    pub(crate) fn drop_user(&mut self, user: &str) -> Result<(), u8> {
        self.users.remove(user).ok_or(rc::INVALID_USER)?;
        self.sessions.retain(|_, u| u != user);
        Ok(())
    }

    pub(crate) fn drop_role(&mut self, role: &str) -> Result<(), u8> {
        if is_predefined(role) {
            return Err(rc::INVALID_ROLE);
        }
        self.roles.remove(role).ok_or(rc::INVALID_ROLE)?;
        for user in self.users.values_mut() {
            user.roles.remove(role);
        }
        Ok(())
    }
}

/// Checks privileges for a role: known codes, global codes without scope, a set only within a namespace.
pub(crate) fn check_privileges(privileges: &[RolePrivilege]) -> Result<(), u8> {
    for p in privileges {
        if privilege_name(p.code).is_none()
            || (p.code < 10 && !(p.namespace.is_empty() && p.set.is_empty()))
            || (p.namespace.is_empty() && !p.set.is_empty())
        {
            return Err(rc::INVALID_PRIVILEGE);
        }
    }
    Ok(())
}

/// Checks a whitelist: every entry an IP address or a CIDR block.
pub(crate) fn check_whitelist(list: &[String]) -> Result<(), u8> {
    let valid = |entry: &str| match entry.split_once('/') {
        Some((ip, bits)) => ip.parse::<IpAddr>().is_ok_and(|ip| bits.parse::<u8>().is_ok_and(|b| b <= max_bits(ip))),
        None => entry.parse::<IpAddr>().is_ok(),
    };
    if list.iter().all(|e| valid(e)) { Ok(()) } else { Err(rc::INVALID_WHITELIST) }
}

fn max_bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn address_matches(entry: &str, peer: IpAddr) -> bool {
    let (ip, bits) = match entry.split_once('/') {
        Some((ip, bits)) => (ip, bits.parse::<u8>().ok()),
        None => (entry, None),
    };
    let Ok(ip) = ip.parse::<IpAddr>() else { return false };
    let bits = bits.unwrap_or(max_bits(ip));
    match (ip, peer) {
        (IpAddr::V4(a), IpAddr::V4(b)) => prefix_eq(&a.octets(), &b.octets(), bits),
        (IpAddr::V6(a), IpAddr::V6(b)) => prefix_eq(&a.octets(), &b.octets(), bits),
        _ => false,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (full, rest) = (bits / 8, bits % 8);
    a[..full] == b[..full] && (rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_cluster_has_admin_with_user_admin() {
        let s = Security::default();
        assert_eq!(s.all_users(), [SecurityUser { name: "admin".into(), roles: vec!["user-admin".into()] }]);
        assert!(s.is_user_admin("admin"));
        assert_eq!(s.credential_of("admin", "hash"), Some("hash"));
        assert_eq!(s.all_roles().len(), PRIVILEGES.len());
        assert_eq!(s.role("read").unwrap().privileges[0].code, 10);
    }

    #[test]
    fn privileges_whitelists_and_matching() {
        let p = |code, ns: &str, set: &str| RolePrivilege { code, namespace: ns.into(), set: set.into() };
        assert_eq!(check_privileges(&[p(10, "test", "s1"), p(0, "", "")]), Ok(()));
        assert_eq!(check_privileges(&[p(0, "test", "")]), Err(rc::INVALID_PRIVILEGE));
        assert_eq!(check_privileges(&[p(10, "", "s1")]), Err(rc::INVALID_PRIVILEGE));
        assert_eq!(check_privileges(&[p(99, "", "")]), Err(rc::INVALID_PRIVILEGE));
        assert_eq!(check_whitelist(&["10.0.0.0/8".into(), "::1".into()]), Ok(()));
        assert_eq!(check_whitelist(&["10.0.0.0/33".into()]), Err(rc::INVALID_WHITELIST));
        assert_eq!(check_whitelist(&["nope".into()]), Err(rc::INVALID_WHITELIST));
        assert!(address_matches("127.0.0.0/8", "127.3.2.1".parse().unwrap()));
        assert!(address_matches("127.1.0.0/17", "127.1.127.1".parse().unwrap()));
        assert!(!address_matches("127.1.0.0/17", "127.1.128.1".parse().unwrap()));
        assert!(!address_matches("10.0.0.1", "10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn dropping_a_role_revokes_it() {
        let mut s = Security::default();
        s.roles.insert("r".into(), SecurityRole { name: "r".into(), ..Default::default() });
        s.users.get_mut("admin").unwrap().roles.insert("r".into());
        assert_eq!(s.drop_role("read"), Err(rc::INVALID_ROLE));
        assert_eq!(s.drop_role("r"), Ok(()));
        assert_eq!(s.user("admin").unwrap().roles, ["user-admin"]);
        assert_eq!(s.drop_role("r"), Err(rc::INVALID_ROLE));
    }
}
