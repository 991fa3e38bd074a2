//! The admin protocol (message type 2) of a secured node: logins and sessions, user and role administration, and
//! the queries, over the cluster's [`Security`] state. Command and field ids, record layouts and result codes are
//! the server's, as the official clients send and read them (the body is a 16-byte admin header, byte 2 the command
//! and byte 3 the field count, then fields of a 4-byte length (data + 1), a 1-byte id and the data; a reply carries
//! its result code in byte 1; queries stream records, each with that header, and end with a record of result 50).
use std::net::IpAddr;

use aerospike_kubernetes_operator::asinfo::wire::{self, ADMIN_HEADER_LEN, Header, MSG_TYPE_ADMIN};

use crate::model::{PodKey, State, random_u64};
use crate::security::{
    RolePrivilege, SESSION_TTL_SECONDS, Security, SecurityRole, SecurityUser, check_privileges, check_whitelist,
    is_credential, is_predefined, rc,
};

/// Admin commands.
pub(crate) mod cmd {
    pub const AUTHENTICATE: u8 = 0;
    pub const CREATE_USER: u8 = 1;
    pub const DROP_USER: u8 = 2;
    pub const SET_PASSWORD: u8 = 3;
    pub const CHANGE_PASSWORD: u8 = 4;
    pub const GRANT_ROLES: u8 = 5;
    pub const REVOKE_ROLES: u8 = 6;
    pub const QUERY_USERS: u8 = 9;
    pub const CREATE_ROLE: u8 = 10;
    pub const DROP_ROLE: u8 = 11;
    pub const GRANT_PRIVILEGES: u8 = 12;
    pub const REVOKE_PRIVILEGES: u8 = 13;
    pub const SET_WHITELIST: u8 = 14;
    pub const SET_QUOTAS: u8 = 15;
    pub const QUERY_ROLES: u8 = 16;
    pub const LOGIN: u8 = 20;
}

/// The name of an admin command that changes users or roles (recorded in the pod's history), `None` for logins
/// and queries.
pub(crate) fn write_name(command: u8) -> Option<&'static str> {
    Some(match command {
        cmd::CREATE_USER => "create-user",
        cmd::DROP_USER => "drop-user",
        cmd::SET_PASSWORD => "set-password",
        cmd::CHANGE_PASSWORD => "change-password",
        cmd::GRANT_ROLES => "grant-roles",
        cmd::REVOKE_ROLES => "revoke-roles",
        cmd::CREATE_ROLE => "create-role",
        cmd::DROP_ROLE => "drop-role",
        cmd::GRANT_PRIVILEGES => "grant-privileges",
        cmd::REVOKE_PRIVILEGES => "revoke-privileges",
        cmd::SET_WHITELIST => "set-whitelist",
        cmd::SET_QUOTAS => "set-quotas",
        _ => return None,
    })
}

/// Field ids.
mod field {
    pub const USER: u8 = 0;
    pub const PASSWORD: u8 = 1;
    pub const OLD_PASSWORD: u8 = 2;
    pub const CREDENTIAL: u8 = 3;
    pub const SESSION_TOKEN: u8 = 5;
    pub const SESSION_TTL: u8 = 6;
    pub const ROLES: u8 = 10;
    pub const ROLE: u8 = 11;
    pub const PRIVILEGES: u8 = 12;
    pub const WHITELIST: u8 = 13;
    pub const READ_QUOTA: u8 = 14;
    pub const WRITE_QUOTA: u8 = 15;
    pub const READ_INFO: u8 = 16;
    pub const WRITE_INFO: u8 = 17;
    pub const CONNECTIONS: u8 = 18;
}

/// What one admin request needs besides the message.
pub(crate) struct Context<'a> {
    pub(crate) security: &'a mut Security,
    /// The credential of `admin` while its password is the simulator's option.
    pub(crate) default_admin: &'a str,
    /// `security.enable-quotas` of the cluster's configuration.
    pub(crate) quotas_enabled: bool,
    pub(crate) peer: IpAddr,
    /// The token a LOGIN hands out (fresh random bytes).
    pub(crate) new_token: Vec<u8>,
    /// The subject common name of the connection's verified TLS client certificate: the user of a PKI login.
    pub(crate) certificate_user: Option<String>,
}

/// The credential of the password the server takes as "no password login" (PKIOnly users).
fn no_password_credential() -> &'static str {
    static CRED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CRED.get_or_init(|| aerospike_kubernetes_operator::asinfo::auth::credential("nopassword").unwrap_or_default())
}

/// The parsed fields of a request.
struct Fields(Vec<(u8, Vec<u8>)>);

impl Fields {
    fn bytes(&self, id: u8) -> Option<&[u8]> {
        self.0.iter().find(|(f, _)| *f == id).map(|(_, d)| d.as_slice())
    }
    fn str(&self, id: u8) -> Result<Option<String>, u8> {
        self.bytes(id).map(|b| String::from_utf8(b.to_vec()).map_err(|_| rc::INVALID_FIELD)).transpose()
    }
    fn u32(&self, id: u8) -> Result<Option<u32>, u8> {
        self.bytes(id).map(|b| b.try_into().map(u32::from_be_bytes).map_err(|_| rc::INVALID_FIELD)).transpose()
    }
    fn roles(&self) -> Result<Vec<String>, u8> {
        let Some(b) = self.bytes(field::ROLES) else { return Ok(Vec::new()) };
        let mut r = Reader(b);
        (0..r.u8()?).map(|_| r.short_str()).collect()
    }
    fn privileges(&self) -> Result<Vec<RolePrivilege>, u8> {
        let Some(b) = self.bytes(field::PRIVILEGES) else { return Ok(Vec::new()) };
        let mut r = Reader(b);
        (0..r.u8()?)
            .map(|_| {
                let code = r.u8()?;
                let (namespace, set) = if code >= 10 { (r.short_str()?, r.short_str()?) } else { Default::default() };
                Ok(RolePrivilege { code, namespace, set })
            })
            .collect()
    }
    fn whitelist(&self) -> Result<Vec<String>, u8> {
        Ok(self
            .str(field::WHITELIST)?
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect())
    }
}

/// Reads the length-prefixed lists inside a field.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, u8> {
        let (&b, rest) = self.0.split_first().ok_or(rc::INVALID_FIELD)?;
        self.0 = rest;
        Ok(b)
    }
    fn short_str(&mut self) -> Result<String, u8> {
        let len = usize::from(self.u8()?);
        let bytes = self.0.get(..len).ok_or(rc::INVALID_FIELD)?;
        self.0 = &self.0[len..];
        String::from_utf8(bytes.to_vec()).map_err(|_| rc::INVALID_FIELD)
    }
}

/// One admin record (reply or query row): header with the result code and command, then the fields.
fn record(out: &mut Vec<u8>, command: u8, result: u8, fields: &[(u8, Vec<u8>)]) {
    let mut header = [0u8; ADMIN_HEADER_LEN];
    header[1] = result;
    header[2] = command;
    header[3] = fields.len() as u8;
    out.extend_from_slice(&header);
    for (id, data) in fields {
        out.extend_from_slice(&(data.len() as u32 + 1).to_be_bytes());
        out.push(*id);
        out.extend_from_slice(data);
    }
}

fn message(body: Vec<u8>) -> Vec<u8> {
    let mut out = Header::new(MSG_TYPE_ADMIN, body.len() as u64).encode().to_vec();
    out.extend(body);
    out
}

/// A reply of one record.
pub(crate) fn reply(command: u8, result: u8, fields: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    record(&mut body, command, result, fields);
    message(body)
}

/// A query answer: one message with the rows, then one with the end record (as a server streams them).
fn rows(command: u8, rows: Vec<Vec<(u8, Vec<u8>)>>) -> Vec<u8> {
    let mut body = Vec::new();
    for fields in &rows {
        record(&mut body, command, rc::OK, fields);
    }
    let mut out = if rows.is_empty() { Vec::new() } else { message(body) };
    out.extend(reply(command, rc::QUERY_END, &[]));
    out
}

fn user_row(user: &SecurityUser) -> Vec<(u8, Vec<u8>)> {
    let mut roles = vec![user.roles.len() as u8];
    for r in &user.roles {
        roles.push(r.len() as u8);
        roles.extend_from_slice(r.as_bytes());
    }
    let info = |n: usize| std::iter::once(n as u8).chain(std::iter::repeat_n(0u8, 4 * n)).collect::<Vec<u8>>();
    vec![
        (field::USER, user.name.as_bytes().to_vec()),
        (field::ROLES, roles),
        (field::READ_INFO, info(4)),
        (field::WRITE_INFO, info(4)),
        (field::CONNECTIONS, 0u32.to_be_bytes().to_vec()),
    ]
}

fn role_row(role: &SecurityRole) -> Vec<(u8, Vec<u8>)> {
    let mut privileges = vec![role.privileges.len() as u8];
    for p in &role.privileges {
        privileges.push(p.code);
        if p.code >= 10 {
            for s in [&p.namespace, &p.set] {
                privileges.push(s.len() as u8);
                privileges.extend_from_slice(s.as_bytes());
            }
        }
    }
    let mut row = vec![(field::ROLE, role.name.as_bytes().to_vec()), (field::PRIVILEGES, privileges)];
    if !role.whitelist.is_empty() {
        row.push((field::WHITELIST, role.whitelist.join(",").into_bytes()));
    }
    row.push((field::READ_QUOTA, role.read_quota.to_be_bytes().to_vec()));
    row.push((field::WRITE_QUOTA, role.write_quota.to_be_bytes().to_vec()));
    row
}

/// Answers one admin request `body` (after the protocol header). `user` is the connection's authenticated user
/// (set by LOGIN and AUTHENTICATE). Returns the reply bytes; a LOGIN also tells whether it was accepted.
pub(crate) fn handle(ctx: &mut Context<'_>, user: &mut Option<String>, body: &[u8]) -> (Vec<u8>, Option<bool>) {
    let Ok(command) = wire::admin_command(body) else { return (reply(0, rc::INVALID_COMMAND, &[]), None) };
    let Ok(fields) = wire::admin_fields(body) else { return (reply(command, rc::INVALID_FIELD, &[]), None) };
    let fields = Fields(fields);
    match command {
        cmd::LOGIN | cmd::AUTHENTICATE => {
            let result = authenticate(ctx, command, &fields);
            let accepted = result.is_ok();
            *user = result.as_ref().ok().cloned().or(if command == cmd::LOGIN { None } else { user.take() });
            let reply = match result {
                Ok(name) if command == cmd::LOGIN => {
                    ctx.security.sessions.insert(ctx.new_token.clone(), name);
                    let fields = [
                        (field::SESSION_TOKEN, ctx.new_token.clone()),
                        (field::SESSION_TTL, SESSION_TTL_SECONDS.to_be_bytes().to_vec()),
                    ];
                    reply(command, rc::OK, &fields)
                }
                Ok(_) => reply(command, rc::OK, &[]),
                Err(code) => reply(command, code, &[]),
            };
            (reply, (command == cmd::LOGIN).then_some(accepted))
        }
        _ => {
            let me = match user.as_deref() {
                Some(me) if ctx.security.users.contains_key(me) => me.to_string(),
                _ => return (reply(command, rc::NOT_AUTHENTICATED, &[]), None),
            };
            let out = match administer(ctx, &me, command, &fields) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => reply(command, rc::OK, &[]),
                Err(code) => reply(command, code, &[]),
            };
            (out, None)
        }
    }
}

/// LOGIN (user + credential) or AUTHENTICATE (user + credential or session token): the user's name if accepted.
fn authenticate(ctx: &Context<'_>, command: u8, fields: &Fields) -> Result<String, u8> {
    // PKI: a LOGIN without user and credential names the user by the client certificate.
    if command == cmd::LOGIN && fields.bytes(field::USER).is_none() && fields.bytes(field::CREDENTIAL).is_none() {
        let name = ctx.certificate_user.clone().ok_or(rc::INVALID_CREDENTIAL)?;
        ctx.security.credential_of(&name, ctx.default_admin).ok_or(rc::INVALID_USER)?;
        if !ctx.security.whitelisted(&name, ctx.peer) {
            return Err(rc::NOT_WHITELISTED);
        }
        return Ok(name);
    }
    let name = fields.str(field::USER)?.ok_or(rc::INVALID_USER)?;
    let expected = ctx.security.credential_of(&name, ctx.default_admin).ok_or(rc::INVALID_USER)?;
    let by_token = command == cmd::AUTHENTICATE && fields.bytes(field::SESSION_TOKEN).is_some();
    let accepted = if by_token {
        let token = fields.bytes(field::SESSION_TOKEN).unwrap_or_default();
        ctx.security.sessions.get(token).is_some_and(|u| *u == name)
    } else {
        // A PKIOnly user's password is the no-password marker: no password login matches it.
        expected != no_password_credential() && fields.bytes(field::CREDENTIAL) == Some(expected.as_bytes())
    };
    if !accepted {
        return Err(rc::INVALID_CREDENTIAL);
    }
    if !ctx.security.whitelisted(&name, ctx.peer) {
        return Err(rc::NOT_WHITELISTED);
    }
    Ok(name)
}

/// Every command after authentication. `Ok(None)` is a plain OK reply; queries answer their rows.
fn administer(ctx: &mut Context<'_>, me: &str, command: u8, fields: &Fields) -> Result<Option<Vec<u8>>, u8> {
    let admin = ctx.security.is_user_admin(me);
    let need_admin = || if admin { Ok(()) } else { Err(rc::ROLE_VIOLATION) };
    let sec = &mut *ctx.security;
    let role_name =
        || -> Result<String, u8> { fields.str(field::ROLE)?.filter(|r| !r.is_empty()).ok_or(rc::INVALID_ROLE) };
    let user_name =
        || -> Result<String, u8> { fields.str(field::USER)?.filter(|u| !u.is_empty()).ok_or(rc::INVALID_USER) };
    let password =
        |id: u8| -> Result<String, u8> { fields.str(id)?.filter(|p| is_credential(p)).ok_or(rc::INVALID_PASSWORD) };
    // A created (not predefined) role, for the commands that change one.
    fn created<'s>(sec: &'s mut Security, name: &str) -> Result<&'s mut SecurityRole, u8> {
        sec.roles.get_mut(name).ok_or(rc::INVALID_ROLE)
    }
    match command {
        cmd::CREATE_USER => {
            need_admin()?;
            let name = user_name()?;
            if sec.users.contains_key(&name) {
                return Err(rc::USER_ALREADY_EXISTS);
            }
            let credential = password(field::PASSWORD)?;
            let roles = fields.roles()?;
            sec.check_roles(&roles)?;
            let record =
                crate::security::UserRecord { credential: Some(credential), roles: roles.into_iter().collect() };
            sec.users.insert(name, record);
        }
        cmd::DROP_USER => {
            need_admin()?;
            sec.drop_user(&user_name()?)?;
        }
        cmd::SET_PASSWORD => {
            need_admin()?;
            let name = user_name()?;
            let credential = password(field::PASSWORD)?;
            sec.users.get_mut(&name).ok_or(rc::INVALID_USER)?.credential = Some(credential);
        }
        cmd::CHANGE_PASSWORD => {
            let name = user_name()?;
            if name != me {
                need_admin()?;
            }
            let expected = sec.credential_of(&name, ctx.default_admin).ok_or(rc::INVALID_USER)?.to_string();
            if fields.str(field::OLD_PASSWORD)?.as_deref() != Some(expected.as_str()) {
                return Err(rc::INVALID_PASSWORD);
            }
            let credential = password(field::PASSWORD)?;
            sec.users.get_mut(&name).ok_or(rc::INVALID_USER)?.credential = Some(credential);
        }
        cmd::GRANT_ROLES | cmd::REVOKE_ROLES => {
            need_admin()?;
            let name = user_name()?;
            let roles = fields.roles()?;
            sec.check_roles(&roles)?;
            let record = sec.users.get_mut(&name).ok_or(rc::INVALID_USER)?;
            for role in roles {
                if command == cmd::GRANT_ROLES {
                    record.roles.insert(role);
                } else {
                    record.roles.remove(&role);
                }
            }
        }
        cmd::QUERY_USERS => {
            let users = match fields.str(field::USER)? {
                Some(name) => {
                    if name != me {
                        need_admin()?;
                    }
                    vec![sec.user(&name).ok_or(rc::INVALID_USER)?]
                }
                None => {
                    need_admin()?;
                    sec.all_users()
                }
            };
            return Ok(Some(rows(command, users.iter().map(user_row).collect())));
        }
        cmd::CREATE_ROLE => {
            need_admin()?;
            let name = role_name()?;
            if is_predefined(&name) || sec.roles.contains_key(&name) {
                return Err(rc::ROLE_ALREADY_EXISTS);
            }
            let privileges = fields.privileges()?;
            check_privileges(&privileges)?;
            let whitelist = fields.whitelist()?;
            check_whitelist(&whitelist)?;
            let read_quota = fields.u32(field::READ_QUOTA)?.unwrap_or(0);
            let write_quota = fields.u32(field::WRITE_QUOTA)?.unwrap_or(0);
            if (read_quota > 0 || write_quota > 0) && !ctx.quotas_enabled {
                return Err(rc::QUOTAS_NOT_ENABLED);
            }
            let mut role =
                SecurityRole { name: name.clone(), privileges: Vec::new(), whitelist, read_quota, write_quota };
            for p in privileges {
                if !role.privileges.contains(&p) {
                    role.privileges.push(p);
                }
            }
            sec.roles.insert(name, role);
        }
        cmd::DROP_ROLE => {
            need_admin()?;
            sec.drop_role(&role_name()?)?;
        }
        cmd::GRANT_PRIVILEGES | cmd::REVOKE_PRIVILEGES => {
            need_admin()?;
            let name = role_name()?;
            let privileges = fields.privileges()?;
            check_privileges(&privileges)?;
            let role = created(sec, &name)?;
            for p in privileges {
                if command == cmd::REVOKE_PRIVILEGES {
                    role.privileges.retain(|q| *q != p);
                } else if !role.privileges.contains(&p) {
                    role.privileges.push(p);
                }
            }
        }
        cmd::SET_WHITELIST => {
            need_admin()?;
            let name = role_name()?;
            let whitelist = fields.whitelist()?;
            check_whitelist(&whitelist)?;
            created(sec, &name)?.whitelist = whitelist;
        }
        cmd::SET_QUOTAS => {
            need_admin()?;
            let name = role_name()?;
            if !ctx.quotas_enabled {
                return Err(rc::QUOTAS_NOT_ENABLED);
            }
            let read = fields.u32(field::READ_QUOTA)?;
            let write = fields.u32(field::WRITE_QUOTA)?;
            let role = created(sec, &name)?;
            role.read_quota = read.unwrap_or(role.read_quota);
            role.write_quota = write.unwrap_or(role.write_quota);
        }
        cmd::QUERY_ROLES => {
            let roles = match fields.str(field::ROLE)? {
                Some(name) => {
                    let mine = sec.users.get(me).is_some_and(|u| u.roles.contains(&name));
                    if !mine {
                        need_admin()?;
                    }
                    vec![sec.role(&name).ok_or(rc::INVALID_ROLE)?]
                }
                None => {
                    need_admin()?;
                    sec.all_roles()
                }
            };
            return Ok(Some(rows(command, roles.iter().map(role_row).collect())));
        }
        _ => return Err(rc::INVALID_COMMAND),
    }
    Ok(None)
}

impl State {
    /// Answers an admin request on node `key` against its cluster's security state (created on first use).
    pub(crate) fn admin(
        &mut self,
        key: &PodKey,
        default_admin: &str,
        peer: IpAddr,
        certificate_user: Option<&str>,
        user: &mut Option<String>,
        body: &[u8],
    ) -> (Vec<u8>, Option<bool>) {
        let Some(cluster) = self.nodes.get(key).map(|n| n.cluster.clone()) else {
            return (reply(wire::admin_command(body).unwrap_or(0), rc::NOT_AUTHENTICATED, &[]), None);
        };
        let quotas_enabled = self.clusters.get(&cluster).is_some_and(|c| c.spec.quotas);
        let new_token: Vec<u8> = (0..4).flat_map(|_| random_u64().to_be_bytes()).collect();
        let security = self.security.entry(cluster).or_default();
        let certificate_user = certificate_user.map(str::to_string);
        let mut ctx = Context { security, default_admin, quotas_enabled, peer, new_token, certificate_user };
        handle(&mut ctx, user, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z4bJ6ck5yuSRhpLmQ2Qh3Nx2"; // any 60-char credential
    fn cred(c: char) -> String {
        format!("$2a$10${}", c.to_string().repeat(53))
    }

    fn request(command: u8, fields: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        record(&mut body, command, 0, fields);
        body
    }

    fn roles_field(roles: &[&str]) -> (u8, Vec<u8>) {
        let mut b = vec![roles.len() as u8];
        for r in roles {
            b.push(r.len() as u8);
            b.extend_from_slice(r.as_bytes());
        }
        (field::ROLES, b)
    }

    fn result(reply: &[u8]) -> u8 {
        reply[8 + 1]
    }

    #[test]
    fn pki_login_takes_the_user_from_the_certificate_and_nopassword_blocks_password_logins() {
        let mut sec = Security::default();
        let mut ctx = Context {
            security: &mut sec,
            default_admin: ADMIN,
            quotas_enabled: false,
            peer: "127.0.0.1".parse().unwrap(),
            new_token: vec![7; 32],
            certificate_user: None,
        };
        let pki = request(cmd::LOGIN, &[]);
        let mut user = None;
        assert_eq!(result(&handle(&mut ctx, &mut user, &pki).0), rc::INVALID_CREDENTIAL, "no certificate");
        ctx.certificate_user = Some("ghost".into());
        assert_eq!(result(&handle(&mut ctx, &mut user, &pki).0), rc::INVALID_USER, "no such user");
        ctx.certificate_user = Some("admin".into());
        let (reply, accepted) = handle(&mut ctx, &mut user, &pki);
        assert_eq!((result(&reply), accepted, user.as_deref()), (rc::OK, Some(true), Some("admin")));
        // A PKIOnly user (password "nopassword", as the clients create them) cannot log in with that password.
        let nopassword = aerospike_kubernetes_operator::asinfo::auth::credential("nopassword").unwrap();
        let create = request(
            cmd::CREATE_USER,
            &[
                (field::USER, b"svc".to_vec()),
                (field::PASSWORD, nopassword.clone().into_bytes()),
                roles_field(&["read"]),
            ],
        );
        assert_eq!(result(&handle(&mut ctx, &mut user, &create).0), rc::OK);
        let login =
            request(cmd::LOGIN, &[(field::USER, b"svc".to_vec()), (field::CREDENTIAL, nopassword.into_bytes())]);
        assert_eq!(result(&handle(&mut ctx, &mut None, &login).0), rc::INVALID_CREDENTIAL);
        ctx.certificate_user = Some("svc".into());
        let mut svc = None;
        assert_eq!(result(&handle(&mut ctx, &mut svc, &pki).0), rc::OK);
        assert_eq!(svc.as_deref(), Some("svc"));
    }

    #[test]
    fn login_then_administer_with_the_servers_result_codes() {
        let mut sec = Security::default();
        let mut ctx = Context {
            security: &mut sec,
            default_admin: ADMIN,
            quotas_enabled: false,
            peer: "127.0.0.1".parse().unwrap(),
            new_token: vec![7; 32],
            certificate_user: None,
        };
        let mut user = None;
        let login = |u: &str, c: &str| {
            request(cmd::LOGIN, &[(field::USER, u.as_bytes().to_vec()), (field::CREDENTIAL, c.as_bytes().to_vec())])
        };
        // Not yet authenticated.
        let create = request(
            cmd::CREATE_USER,
            &[(field::USER, b"u1".to_vec()), (field::PASSWORD, cred('a').into_bytes()), roles_field(&["read"])],
        );
        assert_eq!(result(&handle(&mut ctx, &mut user, &create).0), rc::NOT_AUTHENTICATED);
        assert_eq!(handle(&mut ctx, &mut user, &login("admin", &cred('x'))).1, Some(false));
        assert_eq!(result(&handle(&mut ctx, &mut user, &login("nobody", ADMIN)).0), rc::INVALID_USER);
        let (reply, accepted) = handle(&mut ctx, &mut user, &login("admin", ADMIN));
        assert_eq!((result(&reply), accepted), (rc::OK, Some(true)));
        assert_eq!(reply[8 + 3], 2, "session token and TTL");
        assert_eq!(user.as_deref(), Some("admin"));
        assert_eq!(result(&handle(&mut ctx, &mut user, &create).0), rc::OK);
        assert_eq!(result(&handle(&mut ctx, &mut user, &create).0), rc::USER_ALREADY_EXISTS);
        // A read-only user may not administer.
        let mut reader = None;
        assert_eq!(handle(&mut ctx, &mut reader, &login("u1", &cred('a'))).1, Some(true));
        assert_eq!(result(&handle(&mut ctx, &mut reader, &create).0), rc::ROLE_VIOLATION);
        // Its session token authenticates it elsewhere.
        let by_token =
            request(cmd::AUTHENTICATE, &[(field::USER, b"u1".to_vec()), (field::SESSION_TOKEN, vec![7; 32])]);
        let mut other = None;
        assert_eq!(result(&handle(&mut ctx, &mut other, &by_token).0), rc::OK);
        assert_eq!(other.as_deref(), Some("u1"));
        // Unknown roles, quotas without enable-quotas.
        let bad_role = request(cmd::GRANT_ROLES, &[(field::USER, b"u1".to_vec()), roles_field(&["nope"])]);
        assert_eq!(result(&handle(&mut ctx, &mut user, &bad_role).0), rc::INVALID_ROLE);
        let quota = request(
            cmd::CREATE_ROLE,
            &[(field::ROLE, b"q".to_vec()), (field::READ_QUOTA, 5u32.to_be_bytes().to_vec())],
        );
        assert_eq!(result(&handle(&mut ctx, &mut user, &quota).0), rc::QUOTAS_NOT_ENABLED);
        // Queries end with result 50.
        let (reply, _) = handle(&mut ctx, &mut user, &request(cmd::QUERY_USERS, &[]));
        assert_eq!(result(&reply[reply.len() - 24..]), rc::QUERY_END);
        assert_eq!(reply[8 + 3], 5, "user, roles, read info, write info, connections");
    }
}
