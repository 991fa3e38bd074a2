//! Byte-level encoding of the Aerospike info protocol (message type 1) and the few admin-protocol
//! (type 2) messages we need, for both the client and the server side.
//!
//! Pure functions only: no I/O, so every rule is unit-testable and shared by [`super::client`] and
//! [`super::server`].
//!
//! Message layout: an 8-byte header (byte 0 protocol version 2, byte 1 message type, bytes 2..8 the
//! body length as a 48-bit big-endian integer) followed by the body. An info request body is the
//! commands joined by `\n` with a trailing `\n`; the response body has one line per command:
//! `<request line echoed exactly>\t<value>\n`.

use std::collections::BTreeMap;

/// Protocol version carried in byte 0 of every header.
pub const PROTO_VERSION: u8 = 2;
/// Message type of info requests and responses.
pub const MSG_TYPE_INFO: u8 = 1;
/// Message type of admin (security) messages.
pub const MSG_TYPE_ADMIN: u8 = 2;
/// Length of the protocol header.
pub const HEADER_LEN: usize = 8;
/// Largest body we accept (the Go client refuses bodies over 1 MiB as well).
pub const MAX_BODY_LEN: u64 = 1 << 20;
/// Largest length the 48-bit length field can carry.
const MAX_WIRE_LEN: u64 = (1 << 48) - 1;

/// Length of the admin header that follows the protocol header in admin messages.
pub const ADMIN_HEADER_LEN: usize = 16;
/// Admin command AUTHENTICATE.
pub const ADMIN_AUTHENTICATE: u8 = 0;
/// Admin command LOGIN.
pub const ADMIN_LOGIN: u8 = 20;
/// Admin field id USER.
pub const ADMIN_FIELD_USER: u8 = 0;
/// Admin field id CREDENTIAL (the bcrypt hash of the password).
pub const ADMIN_FIELD_CREDENTIAL: u8 = 3;
/// Admin result code: success.
pub const ADMIN_RESULT_OK: u8 = 0;
/// Admin result code: security is not enabled on the server (clients treat it as success).
pub const ADMIN_RESULT_SECURITY_NOT_ENABLED: u8 = 52;
/// Admin result: the user or credential is not accepted.
pub const ADMIN_RESULT_INVALID_CREDENTIAL: u8 = 65;

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("unsupported protocol version {0} (expected {PROTO_VERSION})")]
    BadVersion(u8),
    #[error("unexpected message type {got} (expected {expected})")]
    BadType { expected: u8, got: u8 },
    #[error("message body of {0} bytes exceeds the {MAX_BODY_LEN}-byte limit")]
    TooLarge(u64),
    #[error("message truncated: header announces {expected} body bytes, {got} present")]
    Truncated { expected: u64, got: usize },
    #[error("message shorter than the {needed}-byte header ({got} bytes)")]
    ShortHeader { needed: usize, got: usize },
    #[error("message body is not valid UTF-8")]
    NotUtf8,
    #[error("invalid info command {0:?}: commands must be non-empty and contain no newline or tab")]
    InvalidCommand(String),
    #[error("info value for {command:?} contains a newline")]
    InvalidValue { command: String },
    #[error("admin field too long ({0} bytes)")]
    FieldTooLong(usize),
}

/// The 8-byte protocol header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    /// Body length in bytes (48 bits on the wire).
    pub length: u64,
}

impl Header {
    /// A version-2 header of the given type and body length.
    pub fn new(msg_type: u8, length: u64) -> Self {
        Header { version: PROTO_VERSION, msg_type, length }
    }

    /// The header bytes. Lengths above 48 bits are not representable; callers never build bodies
    /// that large (they are bounded by [`MAX_BODY_LEN`]), so the top bits are simply cut off.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let len = (self.length & MAX_WIRE_LEN).to_be_bytes(); // 8 bytes, top 2 are zero
        [self.version, self.msg_type, len[2], len[3], len[4], len[5], len[6], len[7]]
    }

    /// Splits header bytes into fields without judging them (see [`Header::check`]).
    pub fn parse(bytes: [u8; HEADER_LEN]) -> Self {
        let mut len = [0u8; 8];
        len[2..].copy_from_slice(&bytes[2..]);
        Header { version: bytes[0], msg_type: bytes[1], length: u64::from_be_bytes(len) }
    }

    /// Accepts the header only with version 2, the expected type and a body of at most
    /// [`MAX_BODY_LEN`]; returns the body length.
    pub fn check(&self, expected_type: u8) -> Result<usize, WireError> {
        if self.version != PROTO_VERSION {
            return Err(WireError::BadVersion(self.version));
        }
        if self.msg_type != expected_type {
            return Err(WireError::BadType { expected: expected_type, got: self.msg_type });
        }
        if self.length > MAX_BODY_LEN {
            return Err(WireError::TooLarge(self.length));
        }
        Ok(self.length as usize)
    }
}

/// Splits a complete message into its checked header and exactly the announced body.
/// Bytes after the body are ignored (they belong to the next message).
pub fn split_message(bytes: &[u8], expected_type: u8) -> Result<&[u8], WireError> {
    let header: [u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(WireError::ShortHeader { needed: HEADER_LEN, got: bytes.len() })?;
    let len = Header::parse(header).check(expected_type)?;
    let rest = &bytes[HEADER_LEN..];
    rest.get(..len).ok_or(WireError::Truncated { expected: len as u64, got: rest.len() })
}

fn check_command(command: &str) -> Result<(), WireError> {
    if command.is_empty() || command.contains(['\n', '\t']) {
        return Err(WireError::InvalidCommand(command.to_string()));
    }
    Ok(())
}

/// Encodes an info request: header (version 2, type 1) + commands joined by `\n` + trailing `\n`.
/// Commands must be non-empty and free of `\n` and `\t` (either would break the line framing or the
/// echo the answer is keyed by).
pub fn encode_info_request<S: AsRef<str>>(commands: &[S]) -> Result<Vec<u8>, WireError> {
    let mut body = Vec::new();
    for command in commands {
        let command = command.as_ref();
        check_command(command)?;
        body.extend_from_slice(command.as_bytes());
        body.push(b'\n');
    }
    if body.len() as u64 > MAX_BODY_LEN {
        return Err(WireError::TooLarge(body.len() as u64));
    }
    Ok(with_header(MSG_TYPE_INFO, body))
}

fn with_header(msg_type: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&Header::new(msg_type, body.len() as u64).encode());
    out.extend_from_slice(&body);
    out
}

/// Parses an info response body into request line -> value.
///
/// Each line is split at its first tab; a line without a tab maps to an empty value (servers answer
/// that way for some unknown commands). Empty lines are skipped, a final line without `\n` is
/// accepted. If a request line appears twice, the last value wins.
pub fn parse_info_body(body: &[u8]) -> Result<BTreeMap<String, String>, WireError> {
    let text = std::str::from_utf8(body).map_err(|_| WireError::NotUtf8)?;
    let mut out = BTreeMap::new();
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        let (key, value) = line.split_once('\t').unwrap_or((line, ""));
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

/// Decodes a complete info response (header + body): the header must say version 2, type 1 and a
/// length of at most 1 MiB, and the body must be complete.
pub fn decode_info_response(bytes: &[u8]) -> Result<BTreeMap<String, String>, WireError> {
    parse_info_body(split_message(bytes, MSG_TYPE_INFO)?)
}

/// Server side: the command lines of an info request body, in order, exactly as sent (empty lines
/// skipped). A body without commands yields an empty list.
pub fn parse_info_request_body(body: &[u8]) -> Result<Vec<String>, WireError> {
    let text = std::str::from_utf8(body).map_err(|_| WireError::NotUtf8)?;
    Ok(text.split('\n').filter(|l| !l.is_empty()).map(str::to_string).collect())
}

/// Server side: decodes a complete info request (header + body) into its command lines.
pub fn decode_info_request(bytes: &[u8]) -> Result<Vec<String>, WireError> {
    parse_info_request_body(split_message(bytes, MSG_TYPE_INFO)?)
}

/// Server side: encodes an info response, one `<request>\t<value>\n` line per pair, in the order
/// given. Values must not contain `\n`.
pub fn encode_info_response<K: AsRef<str>, V: AsRef<str>>(answers: &[(K, V)]) -> Result<Vec<u8>, WireError> {
    let mut body = Vec::new();
    for (command, value) in answers {
        let (command, value) = (command.as_ref(), value.as_ref());
        if value.contains('\n') {
            return Err(WireError::InvalidValue { command: command.to_string() });
        }
        body.extend_from_slice(command.as_bytes());
        body.push(b'\t');
        body.extend_from_slice(value.as_bytes());
        body.push(b'\n');
    }
    if body.len() as u64 > MAX_BODY_LEN {
        return Err(WireError::TooLarge(body.len() as u64));
    }
    Ok(with_header(MSG_TYPE_INFO, body))
}

/// Parses `k=v<sep>k=v` values (`;` for statistics, `:` for roster). Empty entries are skipped;
/// an entry without `=` maps to an empty value; a value keeps any further `=`.
pub fn parse_kv(value: &str, separator: char) -> BTreeMap<String, String> {
    value
        .split(separator)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Parses the common `k=v;k=v` form.
pub fn parse_semicolon_kv(value: &str) -> BTreeMap<String, String> {
    parse_kv(value, ';')
}

/// Splits a list value (`ns1;ns2`, `A@1,B@1`), skipping empty items.
pub fn parse_list(value: &str, separator: char) -> Vec<String> {
    value.split(separator).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Encodes an admin LOGIN request with USER and CREDENTIAL fields.
pub fn encode_login_request(user: &str, credential: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut body = vec![0u8; ADMIN_HEADER_LEN];
    body[2] = ADMIN_LOGIN;
    body[3] = 2; // field count
    for (id, data) in [(ADMIN_FIELD_USER, user.as_bytes()), (ADMIN_FIELD_CREDENTIAL, credential)] {
        let len = u32::try_from(data.len() + 1).map_err(|_| WireError::FieldTooLong(data.len()))?;
        if u64::from(len) > MAX_BODY_LEN {
            return Err(WireError::FieldTooLong(data.len()));
        }
        body.extend_from_slice(&len.to_be_bytes());
        body.push(id);
        body.extend_from_slice(data);
    }
    Ok(with_header(MSG_TYPE_ADMIN, body))
}

/// LOGIN with no field: PKI authentication, the server takes the user from the TLS client certificate's subject
/// common name (what the official clients send for their PKI auth mode).
pub fn encode_pki_login_request() -> Vec<u8> {
    let mut body = vec![0u8; ADMIN_HEADER_LEN];
    body[2] = ADMIN_LOGIN;
    with_header(MSG_TYPE_ADMIN, body)
}

/// The fields of an admin message body (after the protocol header): (field id, data) in order.
pub fn admin_fields(body: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, WireError> {
    let count = admin_header_byte(body, 3)? as usize;
    let mut rest = &body[ADMIN_HEADER_LEN..];
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        if rest.len() < 5 {
            return Err(WireError::Truncated { expected: 5, got: rest.len() });
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len == 0 || rest.len() < 4 + len {
            return Err(WireError::Truncated { expected: (4 + len) as u64, got: rest.len() });
        }
        fields.push((rest[4], rest[5..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    Ok(fields)
}

/// The command byte of an admin request body (after the protocol header).
pub fn admin_command(body: &[u8]) -> Result<u8, WireError> {
    admin_header_byte(body, 2)
}

/// The result code of an admin reply body (after the protocol header).
pub fn admin_result(body: &[u8]) -> Result<u8, WireError> {
    admin_header_byte(body, 1)
}

fn admin_header_byte(body: &[u8], index: usize) -> Result<u8, WireError> {
    if body.len() < ADMIN_HEADER_LEN {
        return Err(WireError::ShortHeader { needed: ADMIN_HEADER_LEN, got: body.len() });
    }
    Ok(body[index])
}

/// Server side: an admin reply without fields: byte 1 carries the result code, byte 2 echoes the
/// command.
pub fn encode_admin_reply(command: u8, result: u8) -> Vec<u8> {
    let mut body = vec![0u8; ADMIN_HEADER_LEN];
    body[1] = result;
    body[2] = command;
    with_header(MSG_TYPE_ADMIN, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_layout() {
        let h = Header::new(MSG_TYPE_INFO, 0x0102_0304_0506);
        let bytes = h.encode();
        assert_eq!(bytes, [2, 1, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
        assert_eq!(Header::parse(bytes), h);
    }

    #[test]
    fn request_encoding_is_exact() {
        let bytes = encode_info_request(&["statistics", "namespace/test"]).unwrap();
        let body = b"statistics\nnamespace/test\n";
        assert_eq!(&bytes[..8], &[2, 1, 0, 0, 0, 0, 0, body.len() as u8]);
        assert_eq!(&bytes[8..], body);
        assert_eq!(decode_info_request(&bytes).unwrap(), vec!["statistics", "namespace/test"]);
    }

    #[test]
    fn request_rejects_bad_commands() {
        assert!(matches!(encode_info_request(&["a\nb"]), Err(WireError::InvalidCommand(_))));
        assert!(matches!(encode_info_request(&["a\tb"]), Err(WireError::InvalidCommand(_))));
        assert!(matches!(encode_info_request(&[""]), Err(WireError::InvalidCommand(_))));
        let huge = "x".repeat(MAX_BODY_LEN as usize);
        assert!(matches!(encode_info_request(&[huge]), Err(WireError::TooLarge(_))));
    }

    #[test]
    fn response_round_trip() {
        let answers = [
            ("statistics", "cluster_size=3;cluster_key=ABC"),
            ("cluster-stable:size=3;ignore-migrations=false", "ABC"),
            ("empty", ""),
        ];
        let bytes = encode_info_response(&answers).unwrap();
        let map = decode_info_response(&bytes).unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(map["statistics"], "cluster_size=3;cluster_key=ABC");
        assert_eq!(map["cluster-stable:size=3;ignore-migrations=false"], "ABC");
        assert_eq!(map["empty"], "");
    }

    #[test]
    fn response_value_with_newline_is_refused() {
        assert_eq!(encode_info_response(&[("node", "a\nb")]), Err(WireError::InvalidValue { command: "node".into() }));
    }

    #[test]
    fn body_parsing_edge_cases() {
        let map = parse_info_body(b"a\t1\n\nnotab\nb\tx\ty\nlast\tz").unwrap();
        assert_eq!(map["a"], "1");
        assert_eq!(map["notab"], "");
        assert_eq!(map["b"], "x\ty");
        assert_eq!(map["last"], "z");
        assert_eq!(parse_info_body(&[0xff, b'\t', b'1']), Err(WireError::NotUtf8));
        assert!(parse_info_body(b"").unwrap().is_empty());
    }

    #[test]
    fn malformed_headers() {
        let good = encode_info_response(&[("node", "BB9")]).unwrap();

        let mut wrong_version = good.clone();
        wrong_version[0] = 3;
        assert_eq!(decode_info_response(&wrong_version), Err(WireError::BadVersion(3)));

        let mut wrong_type = good.clone();
        wrong_type[1] = 3;
        assert_eq!(decode_info_response(&wrong_type), Err(WireError::BadType { expected: 1, got: 3 }));

        let mut oversized = good.clone();
        oversized[2..8].copy_from_slice(&[0, 0, 0, 0x10, 0, 1]); // 1 MiB + 1
        assert_eq!(decode_info_response(&oversized), Err(WireError::TooLarge(MAX_BODY_LEN + 1)));

        // Exactly 1 MiB is allowed by the header check (then fails as truncated here).
        let mut at_limit = good.clone();
        at_limit[2..8].copy_from_slice(&[0, 0, 0, 0x10, 0, 0]);
        assert!(matches!(decode_info_response(&at_limit), Err(WireError::Truncated { .. })));

        let truncated = &good[..good.len() - 2];
        assert_eq!(decode_info_response(truncated), Err(WireError::Truncated { expected: 9, got: 7 }));

        assert_eq!(decode_info_response(&good[..5]), Err(WireError::ShortHeader { needed: 8, got: 5 }));
    }

    #[test]
    fn kv_helpers() {
        let m = parse_semicolon_kv("cluster_size=3;cluster_key=A1;;flag;x=a=b");
        assert_eq!(m["cluster_size"], "3");
        assert_eq!(m["cluster_key"], "A1");
        assert_eq!(m["flag"], "");
        assert_eq!(m["x"], "a=b");
        assert_eq!(m.len(), 4);
        let r = parse_kv("roster=A@1,B@1:pending_roster=null:observed_nodes=A@1", ':');
        assert_eq!(r["roster"], "A@1,B@1");
        assert_eq!(r["pending_roster"], "null");
        assert_eq!(parse_list("test;bar;", ';'), vec!["test", "bar"]);
        assert!(parse_list("", ';').is_empty());
    }

    #[test]
    fn pki_login_is_a_login_without_fields() {
        let login = encode_pki_login_request();
        // Protocol header: version 2, type 2 (admin), 48-bit length 16; then the 16-byte admin header, command 20.
        assert_eq!(&login[..8], &[2, 2, 0, 0, 0, 0, 0, 16]);
        let body = split_message(&login, MSG_TYPE_ADMIN).unwrap();
        assert_eq!(body.len(), ADMIN_HEADER_LEN);
        assert_eq!(admin_command(body).unwrap(), ADMIN_LOGIN);
        assert!(admin_fields(body).unwrap().is_empty());
    }

    #[test]
    fn admin_messages() {
        let login = encode_login_request("admin", b"$2a$10$hash").unwrap();
        let fields = admin_fields(split_message(&login, MSG_TYPE_ADMIN).unwrap()).unwrap();
        assert_eq!(
            fields,
            vec![(ADMIN_FIELD_USER, b"admin".to_vec()), (ADMIN_FIELD_CREDENTIAL, b"$2a$10$hash".to_vec())]
        );
        let mut cut = split_message(&login, MSG_TYPE_ADMIN).unwrap().to_vec();
        cut.truncate(cut.len() - 3);
        assert!(admin_fields(&cut).is_err(), "a truncated field is refused, not read past the end");
        let body = split_message(&login, MSG_TYPE_ADMIN).unwrap();
        assert_eq!(admin_command(body).unwrap(), ADMIN_LOGIN);
        assert_eq!(body[3], 2);
        // USER field: length 6 (5 + 1), id 0, "admin".
        assert_eq!(&body[16..21], &[0, 0, 0, 6, ADMIN_FIELD_USER]);
        assert_eq!(&body[21..26], b"admin");
        assert_eq!(&body[26..31], &[0, 0, 0, 12, ADMIN_FIELD_CREDENTIAL]);
        assert_eq!(&body[31..], b"$2a$10$hash");

        let reply = encode_admin_reply(ADMIN_LOGIN, ADMIN_RESULT_SECURITY_NOT_ENABLED);
        assert_eq!(&reply[..8], &[2, 2, 0, 0, 0, 0, 0, 16]);
        let body = split_message(&reply, MSG_TYPE_ADMIN).unwrap();
        assert_eq!(admin_result(body).unwrap(), 52);
        assert!(admin_result(&body[..4]).is_err());
    }
}
