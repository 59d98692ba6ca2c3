//! Trust marks (OpenID Federation 1.0 §7): a JWT by an issuer the Trust Anchor accredits
//! for the mark's type, about the entity that shows it.

use jose::{Jwks, Jws, Limits, Typ};
use serde_json::{Map, Value};

use crate::statement::{is_entity_id, numeric_date, trust_mark_type};
use crate::{Error, TrustChain};

/// The `typ` of a trust mark.
pub const TRUST_MARK_TYP: &str = "trust-mark+jwt";

/// A verified trust mark.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustMark {
    /// `trust_mark_type` (or `id`).
    pub trust_mark_type: String,
    /// `iss`: the accredited issuer.
    pub iss: String,
    /// `sub`: the entity it is about.
    pub sub: String,
    /// `iat`.
    pub iat: u64,
    /// `exp`, when the mark has one (see [`Options::accept_without_exp`]).
    pub exp: Option<u64>,
    /// Every claim, for profile-specific members (`organization_name`, `ref` ...).
    pub claims: Map<String, Value>,
}

/// How trust marks are checked.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Allowed clock skew in seconds for `iat` and `exp`.
    pub skew: u64,
    /// JWS limits.
    pub limits: Limits,
    /// Accept a mark without `exp` (OpenID Federation 1.0 allows it; the SPID/CIE reference
    /// implementation issues such marks). Default false: a pure crate cannot ask the issuer's
    /// status endpoint whether a mark that never expires was revoked, so whoever turns this
    /// on must do that (or accept the risk) in the broker.
    pub accept_without_exp: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            skew: 60,
            limits: Limits::default(),
            accept_without_exp: false,
        }
    }
}

fn tm(reason: &'static str) -> Error {
    Error::TrustMark { reason }
}

/// Verifies a trust mark shown by `chain`'s subject, against the Trust Anchor of `chain`:
///
/// - `typ` `trust-mark+jwt`, the JWS rules of [`jose::Jws::decode`];
/// - `sub` is the chain's subject; `iss` an Entity Identifier;
/// - the Trust Anchor's `trust_mark_issuers` lists the type, and the issuer for it (an
///   empty list admits any issuer, as the specification says); a type the anchor lists in
///   `trust_mark_owners` needs delegation, which is not supported, so it is refused;
/// - the signature verifies with the issuer's keys: `issuer_keys` when given (the caller
///   resolved the issuer's own chain to the same anchor), else the keys the chain vouches
///   for when the issuer is on it (the anchor itself or an intermediate);
/// - `iat` not in the future and `exp` not past (with the skew); `exp` required unless
///   [`Options::accept_without_exp`].
pub fn verify(
    token: &str,
    chain: &TrustChain,
    issuer_keys: Option<&Jwks>,
    now: u64,
    opts: &Options,
) -> Result<TrustMark, Error> {
    let skew = opts.skew;
    let jose_err = |cause| Error::Jose {
        what: "trust mark",
        entity: chain.subject().to_owned(),
        cause,
    };
    let jws = Jws::decode(token, Typ::Exactly(TRUST_MARK_TYP), &opts.limits).map_err(jose_err)?;
    let c = jws.claims_unverified();
    let tm_type = trust_mark_type(c, "trust_mark")?;
    let iss = c
        .get("iss")
        .and_then(Value::as_str)
        .filter(|s| is_entity_id(s, chain.allow_http))
        .ok_or_else(|| tm("iss missing or not an Entity Identifier"))?
        .to_owned();
    if c.get("sub").and_then(Value::as_str) != Some(chain.subject()) {
        return Err(tm("sub is not the entity that shows it"));
    }
    let issuers = chain
        .trust_mark_issuers()
        .and_then(|m| m.get(&tm_type))
        .ok_or_else(|| Error::TrustMarkIssuer {
            trust_mark_type: tm_type.clone(),
        })?;
    if !issuers.is_empty() && !issuers.contains(&iss) {
        return Err(Error::TrustMarkIssuer {
            trust_mark_type: tm_type,
        });
    }
    if chain.trust_mark_owner_types().contains(&tm_type) || c.contains_key("delegation") {
        return Err(Error::TrustMarkDelegation);
    }
    let keys = issuer_keys
        .or_else(|| chain.keys_of(&iss))
        .ok_or_else(|| tm("issuer keys unknown: resolve the issuer's trust chain first"))?;
    jws.verify(keys).map_err(jose_err)?;
    let iat = numeric_date(c, "iat")?;
    let exp = match c.get("exp") {
        None if opts.accept_without_exp => None,
        None => return Err(tm("exp missing")),
        Some(_) => Some(numeric_date(c, "exp")?),
    };
    if iat > now.saturating_add(skew) {
        return Err(tm("issued in the future"));
    }
    if exp.is_some_and(|exp| now >= exp.saturating_add(skew)) {
        return Err(tm("expired"));
    }
    Ok(TrustMark {
        trust_mark_type: tm_type,
        iss,
        sub: chain.subject().to_owned(),
        iat,
        exp,
        claims: c.clone(),
    })
}

/// Verifies every trust mark the chain's subject lists whose issuer is on the chain, and
/// checks that each entry's type is the type inside its JWT. Marks by issuers off the
/// chain need their issuer's keys: use [`verify`] with them.
#[must_use]
pub fn verify_listed(
    chain: &TrustChain,
    now: u64,
    opts: &Options,
) -> Vec<Result<TrustMark, Error>> {
    chain
        .trust_marks()
        .iter()
        .map(|e| {
            let m = verify(&e.trust_mark, chain, None, now, opts)?;
            if m.trust_mark_type != e.trust_mark_type {
                return Err(tm(
                    "listed type differs from the type inside the trust mark",
                ));
            }
            Ok(m)
        })
        .collect()
}

/// The first trust mark of one of the `accepted` types that the chain's subject lists and
/// that verifies (issuer on the chain, see [`verify_listed`]). The SPID and CIE rules make a
/// trust mark the condition of membership: a chain whose subject has none is not enough.
/// With no such mark: the refusal of the last candidate, or `oidfed.trust_mark` when the
/// subject lists no mark of an accepted type at all.
pub fn require(
    chain: &TrustChain,
    accepted: &[&str],
    now: u64,
    opts: &Options,
) -> Result<TrustMark, Error> {
    let mut last = tm("no trust mark of an accepted type");
    for entry in chain
        .trust_marks()
        .iter()
        .filter(|e| accepted.contains(&e.trust_mark_type.as_str()))
    {
        match verify(&entry.trust_mark, chain, None, now, opts) {
            Ok(m) if m.trust_mark_type == entry.trust_mark_type => return Ok(m),
            Ok(_) => last = tm("listed type differs from the type inside the trust mark"),
            Err(e) => last = e,
        }
    }
    Err(last)
}
