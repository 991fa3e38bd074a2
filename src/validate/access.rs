//! The rules on `spec.aerospikeAccessControl`: with security enabled, a user `admin` with sys-admin and user-admin,
//! roles that exist, passwords from Secrets (none for PKIOnly users), valid privileges, whitelists and quotas.
use std::collections::BTreeSet;

use serde_json::Value;

use super::{FieldError, dig, image};
use crate::access::{PREDEFINED_ROLES, PRIVILEGES};
use crate::aerospike_conf;
use crate::api::{AerospikeCluster, AerospikeClusterSpec};
use crate::resolve::ResolvedRack;

fn security_enabled(spec: &AerospikeClusterSpec) -> bool {
    spec.security_enabled()
}

fn valid_whitelist(entry: &str) -> bool {
    if entry.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let Some((ip, bits)) = entry.split_once('/') else { return false };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else { return false };
    let Ok(bits) = bits.parse::<u32>() else { return false };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits <= max
}

pub(super) fn check_access_control(c: &AerospikeCluster, racks: &[ResolvedRack], out: &mut Vec<FieldError>) {
    let spec = &c.spec;
    if !security_enabled(spec) {
        return;
    }
    let Some(ac) = &spec.aerospike_access_control else {
        out.push(FieldError::new(
            "spec.aerospikeAccessControl",
            "required when security is enabled (spec.aerospikeConfig.security is set): add a user named admin with \
             the roles sys-admin and user-admin and a secretName",
        ));
        return;
    };
    let base = "spec.aerospikeAccessControl";
    let namespaces: BTreeSet<String> = racks
        .iter()
        .filter_map(ResolvedRack::config_value)
        .flat_map(aerospike_conf::namespaces)
        .map(|n| n.name)
        .collect();
    let quotas = spec
        .aerospike_config
        .as_ref()
        .and_then(|c| dig(c, &["security", "enable-quotas"]))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut role_names = BTreeSet::new();
    for (i, role) in ac.roles.iter().enumerate() {
        let p = format!("{base}.roles[{i}]");
        if role.name.trim().is_empty() {
            out.push(FieldError::new(format!("{p}.name"), "empty role name"));
        } else if role.name.contains([';', ':']) {
            out.push(FieldError::new(format!("{p}.name"), format!("{:?} contains ';' or ':'", role.name)));
        } else if PREDEFINED_ROLES.contains(&role.name.as_str()) {
            out.push(FieldError::new(
                format!("{p}.name"),
                format!("{:?} is a predefined role: it cannot be created or changed", role.name),
            ));
        }
        if !role_names.insert(role.name.clone()) {
            out.push(FieldError::new(format!("{p}.name"), format!("role {:?} is defined twice", role.name)));
        }
        if (role.read_quota.unwrap_or(0) > 0 || role.write_quota.unwrap_or(0) > 0) && !quotas {
            out.push(FieldError::new(
                format!("{p}.readQuota"),
                "quotas need spec.aerospikeConfig.security.enable-quotas: true",
            ));
        }
        let mut seen = BTreeSet::new();
        for (j, privilege) in role.privileges.iter().enumerate() {
            let pp = format!("{p}.privileges[{j}]");
            if !seen.insert(privilege) {
                out.push(FieldError::new(&pp, format!("privilege {privilege:?} is listed twice")));
            }
            let parts: Vec<&str> = privilege.split('.').collect();
            match PRIVILEGES.iter().find(|(name, _)| *name == parts[0]) {
                None => out.push(FieldError::new(
                    &pp,
                    format!(
                        "unknown privilege {:?}{}",
                        parts[0],
                        crate::suggest::suggestion(parts[0], PRIVILEGES.iter().map(|(n, _)| *n))
                    ),
                )),
                Some(_) if parts.len() > 3 => {
                    out.push(FieldError::new(&pp, format!("{privilege:?} is not privilege[.namespace[.set]]")))
                }
                Some((name, scoped)) if parts.len() > 1 => {
                    if !scoped {
                        out.push(FieldError::new(
                            &pp,
                            format!("{name} is a global privilege: it takes no namespace or set"),
                        ));
                    } else if !namespaces.contains(parts[1]) {
                        out.push(FieldError::new(&pp, format!("no namespace named {:?} in aerospikeConfig", parts[1])));
                    } else if parts.len() == 3 && parts[2].trim().is_empty() {
                        out.push(FieldError::new(&pp, "empty set name"));
                    }
                }
                Some(_) => {}
            }
        }
        for (j, entry) in role.whitelist.iter().enumerate() {
            if !valid_whitelist(entry) {
                out.push(FieldError::new(
                    format!("{p}.whitelist[{j}]"),
                    format!("{entry:?} is neither an IP address nor a CIDR range"),
                ));
            }
        }
    }
    let federal = image::is_federal(&spec.image);
    let mut user_names = BTreeSet::new();
    let mut admin_ok = false;
    let mut budget = crate::suggest::SuggestionBudget::new();
    for (i, user) in ac.users.iter().enumerate() {
        let p = format!("{base}.users[{i}]");
        if user.name.trim().is_empty() {
            out.push(FieldError::new(format!("{p}.name"), "empty user name"));
        } else if user.name.contains([';', ':']) {
            out.push(FieldError::new(format!("{p}.name"), format!("{:?} contains ';' or ':'", user.name)));
        }
        if !user_names.insert(user.name.clone()) {
            out.push(FieldError::new(format!("{p}.name"), format!("user {:?} is defined twice", user.name)));
        }
        let mut seen = BTreeSet::new();
        for (j, role) in user.roles.iter().enumerate() {
            if !seen.insert(role) {
                out.push(FieldError::new(format!("{p}.roles[{j}]"), format!("role {role:?} is listed twice")));
            }
            if !role_names.contains(role) && !PREDEFINED_ROLES.contains(&role.as_str()) {
                let known = PREDEFINED_ROLES.iter().copied().chain(role_names.iter().map(String::as_str));
                out.push(FieldError::new(
                    format!("{p}.roles[{j}]"),
                    format!(
                        "no role named {role:?} (neither in spec.aerospikeAccessControl.roles nor predefined){}",
                        budget.suggestion(role, known)
                    ),
                ));
            }
        }
        let pki_only = user.auth_mode.as_deref() == Some("PKIOnly");
        let has_secret = !user.secret_name.trim().is_empty();
        if pki_only && has_secret {
            out.push(FieldError::new(format!("{p}.secretName"), "must be empty for a PKIOnly user (no password)"));
        }
        if pki_only && user.name == crate::access::DEFAULT_ADMIN_USER && spec.operator_client_cert.is_none() {
            // The operator logs in as a PKIOnly admin with its client certificate (PKI login).
            out.push(FieldError::new(
                format!("{p}.authMode"),
                "PKIOnly for admin needs spec.operatorClientCert: the operator logs in with that certificate, whose \
                 subject common name must be admin",
            ));
        }
        if !pki_only && federal {
            out.push(FieldError::new(format!("{p}.authMode"), "Federal images allow only PKIOnly users"));
        } else if !pki_only && !has_secret {
            out.push(FieldError::new(
                format!("{p}.secretName"),
                format!("required: the password of user {:?} comes from this Secret (key password)", user.name),
            ));
        }
        if user.name == "admin"
            && user.roles.iter().any(|r| r == "sys-admin")
            && user.roles.iter().any(|r| r == "user-admin")
        {
            admin_ok = true;
        }
    }
    if !admin_ok {
        out.push(FieldError::new(
            format!("{base}.users"),
            "no user named admin with the roles sys-admin and user-admin: the operator manages users and the cluster \
             as admin",
        ));
    }
}
