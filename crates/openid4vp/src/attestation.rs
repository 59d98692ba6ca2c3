//! The Wallet Attestation a verifier may require beside the PID: the Wallet Provider's
//! statement that the wallet instance presenting is one of its genuine, unrevoked
//! instances, and which keys that instance holds. Pure: the caller decides which key
//! verifies the provider's signature (its trust decision: configured keys, an X.509 trust
//! list, an OpenID Federation chain) and this module checks the rest.
//!
//! The attestation travels as the IT-Wallet 1.x rules issue it for presentation (the
//! Wallet Provider returns it in JWT, SD-JWT and mdoc forms, "Wallet App Attestation
//! Issuance", step 18): an SD-JWT VC answering its own DCQL credential query
//! ([`QUERY_ID`]), presented with a KB-JWT like any credential. The rule:
//!
//! 1. the provider's signature verifies with the key the caller's trust decision gave, and
//!    `iss` is that provider;
//! 2. `vct` is one of the configured attestation types;
//! 3. `exp` is in the future, `nbf`/`iat` not in it (skew allowed), and `iat` is present
//!    with `exp - iat` at most the configured lifetime (IT-Wallet: less than 24 hours,
//!    WP_144; the short life is the attestation's revocation);
//! 4. the KB-JWT is signed by the attestation's `cnf.jwk` with this request's `nonce` and
//!    our `client_id` as `aud`: the attested instance answered this request, now;
//! 5. the key that bound the PID presentation (the PID's holder key) is the attestation's
//!    `cnf.jwk` or one of its `attested_keys` (the HAIP key-attestation form): the PID
//!    lives in the attested instance, not in some other wallet that borrowed an attestation.
//!
//! No I/O, no clock, no panic on attacker bytes; the parse is bounded by [`sdjwt::Limits`].

use std::fmt;

use serde_json::Value;

/// The DCQL credential id under which the verifier asks for the attestation.
pub const QUERY_ID: &str = "wallet_attestation";

/// Most keys an attestation may list in `attested_keys`.
pub const MAX_ATTESTED_KEYS: usize = 16;

/// What the verifier accepts.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Accepted attestation `vct` values (exact match).
    pub vct: &'a [&'a str],
    /// Longest accepted `exp - iat`, seconds.
    pub max_lifetime: u64,
    /// Clock skew allowed, seconds.
    pub skew: u64,
    /// Oldest KB-JWT accepted, seconds.
    pub kb_max_age: u64,
}

/// The request the attestation answers: what its KB-JWT must carry.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Now, seconds since the epoch.
    pub now: u64,
    /// The request's `nonce`.
    pub nonce: &'a str,
    /// Our `client_id` as the wallet saw it.
    pub aud: &'a str,
    /// RFC 7638 thumbprint of the key that bound the PID presentation.
    pub holder: &'a str,
}

/// A verified attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// The Wallet Provider (`iss`).
    pub provider: String,
    /// `exp`.
    pub exp: u64,
    /// Thumbprints of the keys it attests (`cnf.jwk` first).
    pub keys: Vec<String>,
    /// Base64url SHA-256 of the attestation as received (audit).
    pub digest: String,
    /// Its Token Status List reference, if it carries one (the caller checks it).
    pub status: Option<sdjwt::status::StatusRef>,
}

/// Why an attestation was refused. [`AttestationError::code`] is stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestationError {
    /// Required, and not in the response.
    Missing,
    /// The SD-JWT VC checks failed (signature, type, validity, key binding ...).
    Credential(sdjwt::Error),
    /// No `iat`, or `exp - iat` longer than allowed.
    Lifetime,
    /// `attested_keys` is not an array of at most [`MAX_ATTESTED_KEYS`] public keys.
    AttestedKeys,
    /// The PID's holder key is not among the keys the attestation vouches for.
    Unbound,
}

impl AttestationError {
    /// The stable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        use jose::Error as J;
        use sdjwt::Error as S;
        match self {
            AttestationError::Missing => "openid4vp.attestation_missing",
            AttestationError::Lifetime => "openid4vp.attestation_lifetime",
            AttestationError::AttestedKeys => "openid4vp.attestation_malformed",
            AttestationError::Unbound => "openid4vp.attestation_unbound",
            AttestationError::Credential(e) => match e {
                S::Expired => "openid4vp.attestation_expired",
                S::NotYetValid => "openid4vp.attestation_not_yet_valid",
                S::Issuer => "openid4vp.attestation_provider",
                S::Vct => "openid4vp.attestation_type",
                S::Jose {
                    cause:
                        J::AlgNone
                        | J::AlgHmac
                        | J::AlgMissing
                        | J::AlgUnsupported { .. }
                        | J::KeyAlgMismatch { .. },
                    ..
                } => "openid4vp.attestation_alg",
                S::Jose { what: "KB-JWT", .. }
                | S::KbMissing
                | S::Cnf { .. }
                | S::Nonce
                | S::Audience
                | S::KbIat
                | S::SdHash => "openid4vp.attestation_key_binding",
                S::Jose {
                    cause: J::Signature | J::KidMissing | J::KidUnknown { .. },
                    ..
                } => "openid4vp.attestation_signature",
                _ => "openid4vp.attestation_malformed",
            },
        }
    }
}

impl fmt::Display for AttestationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttestationError::Missing => f.write_str("the wallet attestation is missing"),
            AttestationError::Credential(e) => write!(f, "wallet attestation: {e}"),
            AttestationError::Lifetime => {
                f.write_str("wallet attestation without iat or living longer than allowed")
            }
            AttestationError::AttestedKeys => {
                f.write_str("wallet attestation attested_keys is not a short list of keys")
            }
            AttestationError::Unbound => f.write_str(
                "the key that presented the PID is not a key the wallet attestation vouches for",
            ),
        }
    }
}

impl std::error::Error for AttestationError {}

/// Parses the attestation presentation (bounded; no signature checked yet). The caller
/// reads [`sdjwt::Presentation::issuer_unverified`] / `issuer_x5c` to take its trust
/// decision, then calls [`verify`].
pub fn parse(presentation: &str) -> Result<sdjwt::Presentation, AttestationError> {
    sdjwt::Presentation::parse(presentation, &sdjwt::Limits::default())
        .map_err(AttestationError::Credential)
}

/// Verifies a parsed attestation of `provider` with `key` (the caller's trust decision),
/// for the request in `ctx`, under `rules` (the module's rule, in order).
pub fn verify(
    parsed: sdjwt::Presentation,
    key: sdjwt::IssuerKey<'_>,
    provider: &str,
    ctx: &Context<'_>,
    rules: &Rules<'_>,
) -> Result<Attested, AttestationError> {
    let expect = sdjwt::Expect {
        now: ctx.now,
        aud: ctx.aud,
        nonce: ctx.nonce,
        vct: rules.vct,
        iss: Some(provider),
        skew: rules.skew,
        kb_max_age: rules.kb_max_age,
        require_status: false,
    };
    let v = parsed
        .verify(key, &expect)
        .map_err(AttestationError::Credential)?;
    let iat = v.iat.ok_or(AttestationError::Lifetime)?;
    if v.exp.saturating_sub(iat) > rules.max_lifetime {
        return Err(AttestationError::Lifetime);
    }
    let mut keys = vec![v.holder];
    match v.claims.get("attested_keys") {
        None => {}
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_ATTESTED_KEYS => {
            for k in list {
                let jwk = jose::Jwk::from_value_standalone(k)
                    .map_err(|_| AttestationError::AttestedKeys)?;
                keys.push(jwk.thumbprint());
            }
        }
        Some(_) => return Err(AttestationError::AttestedKeys),
    }
    if !keys.iter().any(|k| k == ctx.holder) {
        return Err(AttestationError::Unbound);
    }
    Ok(Attested {
        provider: v.issuer,
        exp: v.exp,
        keys,
        digest: v.digest,
        status: v.status,
    })
}
