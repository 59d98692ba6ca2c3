//! The configuration's error type and the parse helpers more than one configuration table
//! uses (the session key file, names of categories and services, file digests).
//!
//! May import: nothing in the crate.

/// A configuration problem, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, such as `sp.key_file`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Lowercase hex SHA-256 of `bytes` (the configuration file's identity in `/metrics`, the
/// OpenID Provider's store keys). Hex by table: a `format!` per byte was a fifth of a token
/// exchange's instructions.
pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// A session key file holds 64 hex digits (32 bytes), surrounding white space ignored.
pub(crate) fn parse_session_key(bytes: &[u8]) -> Result<[u8; 32], String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "not text".to_owned())?
        .trim();
    if text.len() != 64 {
        return Err("must hold 64 hex digits (32 random bytes): openssl rand -hex 32".into());
    }
    let mut key = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        let hex = std::str::from_utf8(chunk).map_err(|_| "not hex".to_owned())?;
        let byte = u8::from_str_radix(hex, 16).map_err(|_| "not hex".to_owned())?;
        if let Some(slot) = key.get_mut(i) {
            *slot = byte;
        }
    }
    Ok(key)
}

/// Whether `s` is a usable category or service name: 1-64 of `a-z 0-9 _ -`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_hex_is_the_lowercase_digest() {
        // FIPS 180-2 appendix B.1.
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
