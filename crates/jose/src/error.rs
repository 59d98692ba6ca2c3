//! The one error type of the crate.

use std::fmt;

/// Why a token, a key or a key set was refused.
///
/// Every variant has a stable [`Error::code`] (metric labels, logs, error pages); the
/// `Display` text names the rule, never a token or key value beyond a `kid` or an `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The token is longer than [`crate::Limits::max_token_bytes`].
    TooLarge {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not three non-empty dot-separated segments of base64url characters.
    Malformed,
    /// A segment is not canonical unpadded base64url.
    Base64,
    /// Invalid JSON, or a value of the wrong JSON type where an object was required.
    Json {
        /// What was being read.
        context: &'static str,
    },
    /// JSON nested deeper than [`crate::Limits::max_depth`].
    JsonDepth,
    /// The same member name twice in one JSON object.
    JsonDuplicateKey,
    /// No `alg` header parameter.
    AlgMissing,
    /// `alg: none` (an unsecured JWS).
    AlgNone,
    /// An HMAC algorithm (`HS256`, `HS384`, `HS512`): a shared secret has no place where
    /// keys are public.
    AlgHmac,
    /// An algorithm outside the allow-list.
    AlgUnsupported {
        /// The `alg` as received (truncated).
        alg: String,
    },
    /// No `kid` header parameter, or an empty one.
    KidMissing,
    /// The `kid` names no key in the trusted key set.
    KidUnknown {
        /// The `kid` as received (truncated).
        kid: String,
    },
    /// The key named by `kid` cannot verify this `alg` (wrong key type or curve, a key
    /// published for another `alg`, or a key not for signatures).
    KeyAlgMismatch {
        /// The `kid`.
        kid: String,
    },
    /// `typ` absent or not the one this kind of token must carry.
    Typ {
        /// What was expected.
        expected: &'static str,
    },
    /// A `crit` header parameter: no extension is understood, so none may be critical.
    Crit,
    /// A header parameter that would carry or point to a key (`jwk`, `jku`, `x5u`, `x5c`):
    /// keys come from trust chains and configuration only.
    HeaderKey {
        /// The parameter name.
        name: &'static str,
    },
    /// The signature does not verify with the selected key.
    Signature,
    /// A JWK is not a well-formed public signature key of a supported type.
    Jwk {
        /// Which rule failed.
        reason: &'static str,
    },
    /// A JWK is a symmetric (`oct`) key.
    JwkSymmetric,
    /// A JWK carries private key material.
    JwkPrivate,
    /// An RSA modulus shorter than 2048 bits.
    JwkRsaTooSmall {
        /// The modulus length in bits.
        bits: usize,
    },
    /// Two keys with the same `kid` in one key set.
    JwksDuplicateKid {
        /// The duplicate `kid`.
        kid: String,
    },
    /// Not a `{"keys": [...]}` object, or more than [`crate::MAX_KEYS`] keys.
    Jwks {
        /// Which rule failed.
        reason: &'static str,
    },
    /// The signing key material was refused (not PKCS#8 of the expected kind).
    SigningKey,
    /// The random number generator or the signing primitive failed.
    Crypto,
    /// A compact JWE that is not five segments, with an encrypted key under direct key
    /// agreement, a bad IV or tag length, a `zip` header, or a malformed `epk`.
    Jwe {
        /// Which rule failed.
        reason: &'static str,
    },
    /// A JWE `alg` other than `ECDH-ES`, or an `enc` outside the caller's list.
    JweAlg,
    /// The JWE `kid` names another key than the one this response was to be encrypted to.
    JweKid,
    /// Key agreement or authenticated decryption failed (wrong key, tampered ciphertext,
    /// header or tag).
    JweDecrypt,
}

impl Error {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "jose.too_large",
            Error::Malformed => "jose.malformed",
            Error::Base64 => "jose.base64",
            Error::Json { .. } => "jose.json",
            Error::JsonDepth => "jose.json_depth",
            Error::JsonDuplicateKey => "jose.json_duplicate_key",
            Error::AlgMissing => "jose.alg_missing",
            Error::AlgNone => "jose.alg_none",
            Error::AlgHmac => "jose.alg_hmac",
            Error::AlgUnsupported { .. } => "jose.alg_unsupported",
            Error::KidMissing => "jose.kid_missing",
            Error::KidUnknown { .. } => "jose.kid_unknown",
            Error::KeyAlgMismatch { .. } => "jose.key_alg_mismatch",
            Error::Typ { .. } => "jose.typ",
            Error::Crit => "jose.crit",
            Error::HeaderKey { .. } => "jose.header_key",
            Error::Signature => "jose.signature",
            Error::Jwk { .. } => "jose.jwk",
            Error::JwkSymmetric => "jose.jwk_symmetric",
            Error::JwkPrivate => "jose.jwk_private",
            Error::JwkRsaTooSmall { .. } => "jose.jwk_rsa_too_small",
            Error::JwksDuplicateKid { .. } => "jose.jwks_duplicate_kid",
            Error::Jwks { .. } => "jose.jwks",
            Error::SigningKey => "jose.signing_key",
            Error::Crypto => "jose.crypto",
            Error::Jwe { .. } => "jose.jwe",
            Error::JweAlg => "jose.jwe_alg",
            Error::JweKid => "jose.jwe_kid",
            Error::JweDecrypt => "jose.jwe_decrypt",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge { len, max } => write!(f, "token of {len} bytes exceeds {max}"),
            Error::Malformed => f.write_str("not a compact JWS (three non-empty segments)"),
            Error::Base64 => f.write_str("segment is not canonical unpadded base64url"),
            Error::Json { context } => write!(f, "{context}: invalid JSON or not an object"),
            Error::JsonDepth => f.write_str("JSON nested too deeply"),
            Error::JsonDuplicateKey => f.write_str("duplicate member name in a JSON object"),
            Error::AlgMissing => f.write_str("no alg header parameter"),
            Error::AlgNone => f.write_str("alg none is refused"),
            Error::AlgHmac => f.write_str("HMAC algorithms are refused"),
            Error::AlgUnsupported { alg } => write!(f, "algorithm {alg:?} is not allowed"),
            Error::KidMissing => f.write_str("no kid header parameter"),
            Error::KidUnknown { kid } => write!(f, "kid {kid:?} is not in the trusted key set"),
            Error::KeyAlgMismatch { kid } => {
                write!(f, "key {kid:?} cannot verify the header's algorithm")
            }
            Error::Typ { expected } => write!(f, "typ must be {expected}"),
            Error::Crit => f.write_str("crit header parameter refused: no extension understood"),
            Error::HeaderKey { name } => {
                write!(
                    f,
                    "header parameter {name} refused: keys come from trust chains only"
                )
            }
            Error::Signature => f.write_str("signature does not verify"),
            Error::Jwk { reason } => write!(f, "invalid JWK: {reason}"),
            Error::JwkSymmetric => f.write_str("symmetric (oct) JWK refused"),
            Error::JwkPrivate => f.write_str("JWK with private key material refused"),
            Error::JwkRsaTooSmall { bits } => write!(f, "RSA key of {bits} bits (minimum 2048)"),
            Error::JwksDuplicateKid { kid } => write!(f, "two keys with kid {kid:?}"),
            Error::Jwks { reason } => write!(f, "invalid JWKS: {reason}"),
            Error::SigningKey => f.write_str("signing key refused"),
            Error::Crypto => f.write_str("cryptographic operation failed"),
            Error::Jwe { reason } => write!(f, "invalid JWE: {reason}"),
            Error::JweAlg => f.write_str("JWE alg must be ECDH-ES with an allowed enc"),
            Error::JweKid => f.write_str("JWE encrypted to another key"),
            Error::JweDecrypt => f.write_str("JWE does not decrypt with our key"),
        }
    }
}

impl std::error::Error for Error {}

/// At most this many characters of an attacker-chosen value go into an error.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}
