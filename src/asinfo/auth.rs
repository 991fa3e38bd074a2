//! Login credentials for clusters with security enabled. The server stores bcrypt(password) made with one fixed
//! salt (cost 10) and compares it with what LOGIN sends, so a client sends that hash, never the password.

use std::collections::HashMap;

use super::Credentials;

/// The salt every Aerospike client hashes passwords with (bcrypt `$2a$`, cost 10).
pub const SALT: &str = "$2a$10$7EqJtq98hPqEX7fNZaFWoO";
/// The user every secured cluster starts with, and its password until access control changes it.
pub const DEFAULT_ADMIN_USER: &str = "admin";
pub const DEFAULT_ADMIN_PASSWORD: &str = "admin";

/// bcrypt's own base64 alphabet (not RFC 4648's).
const BCRYPT_ALPHABET: &[u8; 64] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The 16 salt bytes encoded in the 22 characters after `$2a$10$`.
fn salt_bytes() -> [u8; 16] {
    let encoded = &SALT.as_bytes()[SALT.len() - 22..];
    let mut out = [0u8; 16];
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for c in encoded {
        let v = BCRYPT_ALPHABET.iter().position(|a| a == c).expect("the salt is bcrypt base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 && n < out.len() {
            bits -= 8;
            out[n] = (acc >> bits) as u8;
            n += 1;
        }
    }
    out
}

/// The credential LOGIN sends for `password` (the 60-character `$2a$10$...` hash).
pub fn credential(password: &str) -> Result<String, String> {
    // bcrypt reads at most 72 bytes; a longer password would silently log in with its prefix.
    if password.len() > 72 {
        return Err("the password is longer than 72 bytes, which bcrypt cannot hash".into());
    }
    bcrypt::hash_with_salt(password, 10, salt_bytes())
        .map(|h| h.format_for_version(bcrypt::Version::TwoA))
        .map_err(|e| format!("bcrypt: {e}"))
}

/// Credentials of `user` with `password`. bcrypt at cost 10 takes tens of milliseconds of CPU, so results are
/// remembered (keyed by a SHA-256 of the password, which is not kept): call from a blocking context the first time.
pub fn credentials(user: &str, password: &str) -> Result<Credentials, String> {
    use sha2::Digest as _;
    static CACHE: std::sync::OnceLock<std::sync::Mutex<HashMap<[u8; 32], String>>> = std::sync::OnceLock::new();
    let key: [u8; 32] = sha2::Sha256::digest(password.as_bytes()).into();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(Credentials { user: user.to_string(), credential: c.clone() });
    }
    let credential = credential(password)?;
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= 1024 {
        cache.clear();
    }
    cache.insert(key, credential.clone());
    Ok(Credentials { user: user.to_string(), credential })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_is_bcrypt_with_the_fixed_salt() {
        let c = credential("admin").unwrap();
        assert_eq!(c.len(), 60);
        // Decoding then re-encoding the salt gives it back: the hash starts with exactly SALT.
        assert!(c.starts_with(SALT), "{c}");
        assert!(bcrypt::verify("admin", &c).unwrap());
        assert!(!bcrypt::verify("admin2", &c).unwrap());
        assert_ne!(credential("secret").unwrap(), c);
        assert_eq!(credential("admin").unwrap(), c, "deterministic: same password, same credential");
        assert!(credential(&"x".repeat(73)).is_err());
    }
}
