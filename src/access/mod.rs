//! Access control: the users and roles of `spec.aerospikeAccessControl` made real in Aerospike, as the reference
//! does (its internal/controller/cluster/access_control.go), with fewer writes.
//!
//! - [`plan`] (pure): what the cluster has (users and roles read back through the admin protocol), what the spec
//!   asks and which passwords the server already accepts in, the ordered admin operations out: roles first
//!   (create, then privileges, whitelist and quotas brought to the spec), then users (create, password, roles),
//!   then what the spec no longer names is dropped (only users and roles the operator applied before, never
//!   `admin` or a predefined role), `admin` last so its password changes after everything else is done.
//!   A cluster already in sync gets no operation.
//! - [`admin`]: the [`admin::AdminClient`] trait the controller drives, and its implementation over Aerospike's
//!   own Rust client (crate `aerospike`).
//!
//! Passwords never appear in logs, Events, status or `Debug` output ([`Password`]).
pub mod admin;
pub mod plan;

use std::fmt;

/// Roles every Aerospike Enterprise server has; they cannot be created, changed or dropped.
pub const PREDEFINED_ROLES: &[&str] = &[
    "user-admin",
    "sys-admin",
    "data-admin",
    "read",
    "read-write",
    "read-write-udf",
    "write",
    "truncate",
    "sindex-admin",
    "udf-admin",
    "masking-admin",
    "read-masked",
    "write-masked",
];

/// Privileges a role may hold, and whether they may be scoped to a namespace (and set).
pub const PRIVILEGES: &[(&str, bool)] = &[
    ("read", true),
    ("write", true),
    ("read-write", true),
    ("read-write-udf", true),
    ("data-admin", false),
    ("sys-admin", false),
    ("user-admin", false),
    ("truncate", true),
    ("sindex-admin", false),
    ("udf-admin", false),
    ("masking-admin", true),
    ("read-masked", true),
    ("write-masked", true),
];

/// The user the server creates with the default password, and that the operator logs in as.
pub use crate::asinfo::auth::{DEFAULT_ADMIN_PASSWORD, DEFAULT_ADMIN_USER};

/// A password: compared and sent, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A privilege as the spec writes it: `code[.namespace[.set]]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Privilege {
    pub code: String,
    pub namespace: Option<String>,
    pub set: Option<String>,
}

impl Privilege {
    /// Parses `read-write`, `read.test` or `read.test.users`; `None` for an unknown code or a scope on a privilege
    /// that takes none (the webhook refuses those with the field path).
    pub fn parse(s: &str) -> Option<Privilege> {
        let mut parts = s.splitn(3, '.');
        let code = parts.next()?;
        let (_, scoped) = PRIVILEGES.iter().find(|(c, _)| *c == code)?;
        let namespace = parts.next().filter(|p| !p.is_empty()).map(str::to_string);
        let set = parts.next().filter(|p| !p.is_empty()).map(str::to_string);
        if (namespace.is_some() && !scoped) || (set.is_some() && namespace.is_none()) {
            return None;
        }
        Some(Privilege { code: code.to_string(), namespace, set })
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)?;
        if let Some(ns) = &self.namespace {
            write!(f, ".{ns}")?;
        }
        if let Some(set) = &self.set {
            write!(f, ".{set}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_parse_and_print_back() {
        for s in ["read-write", "read.test", "read.test.users", "sys-admin", "truncate.ns"] {
            assert_eq!(Privilege::parse(s).map(|p| p.to_string()).as_deref(), Some(s));
        }
        for bad in ["sys-admin.test", "unknown", "read..set", ""] {
            assert_eq!(Privilege::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_password_does_not_show() {
        assert_eq!(format!("{:?}", Password::new("s3cret")), "Password(***)");
    }
}
