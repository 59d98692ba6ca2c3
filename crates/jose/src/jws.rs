//! Compact JWS (RFC 7515 §7.1): decode once, then verify with a trusted key set.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use crate::alg::Alg;
use crate::error::clip;
use crate::json::parse_object;
use crate::jwk::Material;
use crate::{Error, Jwk, Jwks};

/// Size bounds checked before any JSON is read or any signature computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole compact token, in bytes. Default 64 KiB: an Entity Configuration with
    /// metadata for a few entity types and a handful of trust marks is a few KiB.
    pub max_token_bytes: usize,
    /// Decoded protected header, in bytes. Default 2 KiB.
    pub max_header_bytes: usize,
    /// JSON nesting (header and payload). Default 10: the deepest standard structure, a
    /// `metadata_policy` operator holding an array of objects, needs 7.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_bytes: 64 * 1024,
            max_header_bytes: 2048,
            max_depth: 10,
        }
    }
}

/// What the `typ` header must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typ {
    /// Exactly this media type (compared as RFC 7515 §4.1.9 says: without case, and with
    /// or without the `application/` prefix), e.g. `entity-statement+jwt`.
    Exactly(&'static str),
    /// Absent, or `JWT` (ID tokens, request objects).
    JwtOrAbsent,
}

fn typ_matches(got: &str, want: &str) -> bool {
    let got = match got.get(..12) {
        Some(p) if p.eq_ignore_ascii_case("application/") => &got[12..],
        _ => got,
    };
    got.eq_ignore_ascii_case(want)
}

/// Header parameters that carry or point to a key.
const KEY_HEADERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// Longest accepted `kid`.
const MAX_KID: usize = 256;

/// A decoded compact JWS whose signature has not been checked yet.
///
/// [`Jws::claims_unverified`] exists for discovery only (a federation resolver must read
/// `authority_hints` to know whom to ask for the key that will verify it); anything that
/// is trusted must come from [`Jws::verify`] having succeeded on the same value.
#[derive(Debug, Clone)]
pub struct Jws {
    token: String,
    /// Length of `header.payload`, the signing input.
    signed_len: usize,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    alg: Alg,
    kid: String,
    signature: Vec<u8>,
    /// The `x5c` chain (DER, leaf first), only when decoded by [`Jws::decode_chained`].
    x5c: Vec<Vec<u8>>,
}

/// Most certificates an `x5c` header may carry, and the largest one (DER bytes).
const MAX_X5C: usize = 5;
const MAX_X5C_CERT: usize = 8192;

/// The `x5c` header: 1..=5 standard-base64 DER certificates, each bounded.
fn read_x5c(v: &Value) -> Result<Vec<Vec<u8>>, Error> {
    use base64::engine::general_purpose::STANDARD;
    let bad = Error::HeaderKey { name: "x5c" };
    let Value::Array(items) = v else {
        return Err(bad);
    };
    if items.is_empty() || items.len() > MAX_X5C {
        return Err(bad);
    }
    items
        .iter()
        .map(|c| match c {
            Value::String(s) if s.len() <= MAX_X5C_CERT.div_ceil(3) * 4 => STANDARD
                .decode(s)
                .map_err(|_| Error::HeaderKey { name: "x5c" }),
            _ => Err(Error::HeaderKey { name: "x5c" }),
        })
        .collect()
}

fn decode_segment(seg: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD.decode(seg).map_err(|_| Error::Base64)
}

impl Jws {
    /// Decodes and checks everything but the signature: sizes, `alg` allow-list, `kid`
    /// present, `typ`, no `crit`, no key-carrying header, a JSON object payload, with
    /// duplicate member names refused throughout.
    pub fn decode(token: &str, typ: Typ, limits: &Limits) -> Result<Jws, Error> {
        Jws::decode_inner(token, typ, limits, true, false)
    }

    /// Like [`Jws::decode_unkeyed`] but an `x5c` header is accepted and read (1 to 5
    /// certificates, each at most 8 KiB): for a token whose signer is trusted through an
    /// X.509 trust list, such as an SD-JWT VC issuer. The chain is data for the caller's
    /// trust decision ([`Jws::x5c`]); nothing here trusts it, and the token is verified
    /// only with [`Jws::verify_with`] and the key the caller derived, or with a key set.
    /// `jwk`, `jku` and `x5u` stay refused.
    pub fn decode_chained(token: &str, typ: Typ, limits: &Limits) -> Result<Jws, Error> {
        Jws::decode_inner(token, typ, limits, false, true)
    }

    /// The `x5c` chain of a token decoded with [`Jws::decode_chained`] (DER, leaf first;
    /// empty when absent). Untrusted until the caller verified it.
    #[must_use]
    pub fn x5c(&self) -> &[Vec<u8>] {
        &self.x5c
    }

    /// Like [`Jws::decode`] but `kid` may be absent: for a token whose one verification key
    /// is fixed by context rather than chosen from a set, such as an SD-JWT Key Binding JWT
    /// (the key is the credential's `cnf.jwk`). Such a token is verified with
    /// [`Jws::verify_with`] only; every other rule (allow-list, no `crit`, no key-carrying
    /// header, `typ`, sizes, strict JSON) is the same.
    pub fn decode_unkeyed(token: &str, typ: Typ, limits: &Limits) -> Result<Jws, Error> {
        Jws::decode_inner(token, typ, limits, false, false)
    }

    fn decode_inner(
        token: &str,
        typ: Typ,
        limits: &Limits,
        kid_required: bool,
        x5c_allowed: bool,
    ) -> Result<Jws, Error> {
        if token.len() > limits.max_token_bytes {
            return Err(Error::TooLarge {
                len: token.len(),
                max: limits.max_token_bytes,
            });
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Malformed);
        };
        if h64.is_empty() || p64.is_empty() {
            return Err(Error::Malformed);
        }
        // Base64 grows 3 bytes into 4 characters: bound the header before decoding it.
        if h64.len() > limits.max_header_bytes.div_ceil(3) * 4 {
            return Err(Error::TooLarge {
                len: h64.len(),
                max: limits.max_header_bytes,
            });
        }
        let header = parse_object(&decode_segment(h64)?, limits.max_depth, "JWS header")?;
        let alg = match header.get("alg") {
            Some(Value::String(a)) => Alg::from_name(a)?,
            Some(_) => {
                return Err(Error::AlgUnsupported {
                    alg: "(non-string)".into(),
                });
            }
            None => return Err(Error::AlgMissing),
        };
        if header.contains_key("crit") {
            return Err(Error::Crit);
        }
        if let Some(name) = KEY_HEADERS
            .iter()
            .find(|n| header.contains_key(**n) && !(x5c_allowed && **n == "x5c"))
        {
            return Err(Error::HeaderKey { name });
        }
        let x5c = match header.get("x5c") {
            Some(v) if x5c_allowed => read_x5c(v)?,
            _ => Vec::new(),
        };
        let kid = match header.get("kid") {
            Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID => k.clone(),
            // An empty `kid` names no key of any set, so `verify` can never succeed on it.
            None if !kid_required => String::new(),
            _ => return Err(Error::KidMissing),
        };
        match (typ, header.get("typ")) {
            (Typ::Exactly(want), Some(Value::String(got))) if typ_matches(got, want) => {}
            (Typ::Exactly(want), _) => return Err(Error::Typ { expected: want }),
            (Typ::JwtOrAbsent, None) => {}
            (Typ::JwtOrAbsent, Some(Value::String(got))) if typ_matches(got, "JWT") => {}
            (Typ::JwtOrAbsent, _) => return Err(Error::Typ { expected: "JWT" }),
        }
        if s64.is_empty() {
            return Err(Error::Malformed);
        }
        let claims = parse_object(&decode_segment(p64)?, limits.max_depth, "JWS payload")?;
        let signature = decode_segment(s64)?;
        Ok(Jws {
            token: token.to_owned(),
            signed_len: h64.len() + 1 + p64.len(),
            header,
            claims,
            alg,
            kid,
            signature,
            x5c,
        })
    }

    /// Checks the signature with the key `kid` names in `keys`: the key must exist, fit the
    /// algorithm, and verify.
    pub fn verify(&self, keys: &Jwks) -> Result<(), Error> {
        let key = keys.get(&self.kid).ok_or_else(|| Error::KidUnknown {
            kid: clip(&self.kid),
        })?;
        if !key.accepts(self.alg) {
            return Err(Error::KeyAlgMismatch {
                kid: clip(&self.kid),
            });
        }
        self.check(key)
    }

    /// Checks the signature with exactly this key, whatever `kid` the header names: the
    /// caller has already decided that this key, and no other, may sign the token (the
    /// `cnf.jwk` of a credential, an issuer key fixed by a trust decision). The key must fit
    /// the algorithm and verify.
    pub fn verify_with(&self, key: &Jwk) -> Result<(), Error> {
        if !key.accepts(self.alg) {
            return Err(Error::KeyAlgMismatch {
                kid: clip(key.kid()),
            });
        }
        self.check(key)
    }

    fn check(&self, key: &Jwk) -> Result<(), Error> {
        let msg = &self.token.as_bytes()[..self.signed_len];
        let ok = match key.material() {
            Material::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(self.alg.rsa_params(), msg, &self.signature)
                .is_ok(),
            Material::Ec { point, .. } => {
                let algorithm: &dyn signature::VerificationAlgorithm = match self.alg {
                    Alg::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => &signature::ECDSA_P256_SHA256_FIXED,
                };
                UnparsedPublicKey::new(algorithm, point)
                    .verify(msg, &self.signature)
                    .is_ok()
            }
        };
        if ok { Ok(()) } else { Err(Error::Signature) }
    }

    /// The claims, read before the signature is checked: for discovery and for choosing
    /// the key set only.
    #[must_use]
    pub fn claims_unverified(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Verifies (see [`Jws::verify`]) and hands out the claims.
    pub fn into_verified_claims(self, keys: &Jwks) -> Result<Map<String, Value>, Error> {
        self.verify(keys)?;
        Ok(self.claims)
    }

    /// The protected header.
    #[must_use]
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The algorithm.
    #[must_use]
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The key id (empty for a token decoded by [`Jws::decode_unkeyed`] without one).
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The compact serialization as received.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.token
    }
}
