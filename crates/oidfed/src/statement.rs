//! Entity Statements (OpenID Federation 1.0 §3): Entity Configurations and Subordinate
//! Statements, decoded once with their claims checked for shape.

use std::collections::BTreeMap;

use std::cell::OnceCell;

use jose::{Jwk, Jwks, Jws, Limits, Typ};
use serde_json::{Map, Value};

use crate::Error;

/// The `typ` of every Entity Statement.
pub const ENTITY_STATEMENT_TYP: &str = "entity-statement+jwt";

/// Longest accepted Entity Identifier or endpoint URL.
const MAX_URL: usize = 2048;

/// Most entries accepted in `authority_hints` (each may cost fetches; the resolver bounds
/// the total anyway).
const MAX_HINTS: usize = 16;

/// Most trust marks read from one Entity Configuration.
const MAX_TRUST_MARKS: usize = 16;

/// Whether `s` is an Entity Identifier: an `https` URL with a host, no query, no fragment,
/// no user information, no whitespace or control character. `allow_http` admits `http`
/// for test federations on loopback only.
#[must_use]
pub fn is_entity_id(s: &str, allow_http: bool) -> bool {
    is_url(s, allow_http, false)
}

pub(crate) fn is_url(s: &str, allow_http: bool, query_ok: bool) -> bool {
    let rest = if let Some(r) = s.strip_prefix("https://") {
        r
    } else if let Some(r) = s.strip_prefix("http://").filter(|_| allow_http) {
        r
    } else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    s.len() <= MAX_URL
        && !authority.is_empty()
        && !authority.contains('@')
        && !authority.contains('?')
        && !s.contains('#')
        && (query_ok || !s.contains('?'))
        && s.bytes().all(|b| b.is_ascii_graphic())
}

/// One entry of the `trust_marks` claim: the type and the trust mark JWT (still unverified:
/// see [`crate::trust_mark`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustMarkEntry {
    /// `trust_mark_type` (or the SPID/CIE profile's `id`).
    pub trust_mark_type: String,
    /// The compact JWT.
    pub trust_mark: String,
}

/// The `constraints` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    /// Most intermediates between the issuer and the chain's subject.
    pub max_path_length: Option<u64>,
    /// Entity types the subject may have besides `federation_entity`.
    pub allowed_entity_types: Option<Vec<String>>,
    /// Naming constraints: permitted host names or `.domain` suffixes.
    pub permitted: Option<Vec<String>>,
    /// Naming constraints: excluded host names or `.domain` suffixes.
    pub excluded: Vec<String>,
}

/// A decoded Entity Statement. Its claims were read from the same bytes the signature
/// covers; whether a trusted key signed them is the resolver's business
/// ([`Statement::verify`]).
#[derive(Debug, Clone)]
pub struct Statement {
    pub(crate) jws: Jws,
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
    pub(crate) jwks: Jwks,
    pub(crate) authority_hints: Vec<String>,
    pub(crate) metadata: Option<Map<String, Value>>,
    pub(crate) metadata_policy: Option<Map<String, Value>>,
    pub(crate) metadata_policy_crit: Vec<String>,
    pub(crate) constraints: Option<Constraints>,
    pub(crate) trust_marks: Vec<TrustMarkEntry>,
    pub(crate) trust_mark_issuers: Option<BTreeMap<String, Vec<String>>>,
    pub(crate) trust_mark_owner_types: Vec<String>,
    /// The key a successful [`Statement::verify`] used: verifying again with an identical
    /// key would repeat the same computation with the same outcome.
    verified_with: OnceCell<Jwk>,
}

fn claim_err(claim: &'static str, reason: &'static str) -> Error {
    Error::Claim { claim, reason }
}

fn string(c: &Map<String, Value>, name: &'static str) -> Result<String, Error> {
    match c.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(claim_err(name, "not a string")),
        None => Err(claim_err(name, "missing")),
    }
}

pub(crate) fn numeric_date(c: &Map<String, Value>, name: &'static str) -> Result<u64, Error> {
    match c.get(name) {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                // NumericDate may carry a fraction; whole seconds are what we compare.
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| claim_err(name, "not a non-negative NumericDate")),
        Some(_) => Err(claim_err(name, "not a number")),
        None => Err(claim_err(name, "missing")),
    }
}

fn string_array(v: &Value, claim: &'static str, max: usize) -> Result<Vec<String>, Error> {
    let arr = v
        .as_array()
        .ok_or_else(|| claim_err(claim, "not an array"))?;
    if arr.len() > max {
        return Err(claim_err(claim, "too many entries"));
    }
    arr.iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| claim_err(claim, "entry is not a string"))
        })
        .collect()
}

fn object<'a>(v: &'a Value, claim: &'static str) -> Result<&'a Map<String, Value>, Error> {
    v.as_object()
        .ok_or_else(|| claim_err(claim, "not an object"))
}

fn no_nulls(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => a.iter().all(no_nulls),
        Value::Object(o) => o.values().all(no_nulls),
        _ => true,
    }
}

fn constraints(v: &Value) -> Result<Constraints, Error> {
    const C: &str = "constraints";
    let o = object(v, C)?;
    let mut out = Constraints::default();
    if let Some(m) = o.get("max_path_length") {
        out.max_path_length = Some(
            m.as_u64()
                .ok_or_else(|| claim_err(C, "max_path_length is not a non-negative integer"))?,
        );
    }
    if let Some(t) = o.get("allowed_entity_types") {
        out.allowed_entity_types = Some(string_array(t, C, 64)?);
    }
    if let Some(n) = o.get("naming_constraints") {
        let n = object(n, C)?;
        if let Some(p) = n.get("permitted") {
            out.permitted = Some(string_array(p, C, 64)?);
        }
        if let Some(e) = n.get("excluded") {
            out.excluded = string_array(e, C, 64)?;
        }
    }
    Ok(out)
}

impl Statement {
    /// Decodes an Entity Statement: JWS checks ([`Jws::decode`] with `typ`
    /// `entity-statement+jwt`), then the claims' shapes: `iss`, `sub` Entity Identifiers,
    /// `iat`, `exp`, `jwks` present; no `crit`; claims only allowed in one kind of statement
    /// (Entity Configuration or Subordinate Statement) refused in the other.
    pub fn decode(token: &str, limits: &Limits, allow_http: bool) -> Result<Statement, Error> {
        let jws =
            Jws::decode(token, Typ::Exactly(ENTITY_STATEMENT_TYP), limits).map_err(|cause| {
                Error::Jose {
                    what: "entity statement",
                    entity: String::new(),
                    cause,
                }
            })?;
        let c = jws.claims_unverified();
        let iss = string(c, "iss")?;
        let sub = string(c, "sub")?;
        if !is_entity_id(&iss, allow_http) {
            return Err(Error::EntityId { what: "iss" });
        }
        if !is_entity_id(&sub, allow_http) {
            return Err(Error::EntityId { what: "sub" });
        }
        let iat = numeric_date(c, "iat")?;
        let exp = numeric_date(c, "exp")?;
        if c.contains_key("crit") {
            return Err(Error::Crit);
        }
        let jwks = Jwks::from_value(c.get("jwks").ok_or_else(|| claim_err("jwks", "missing"))?)
            .map_err(|cause| Error::Jose {
                what: "jwks claim",
                entity: sub.clone(),
                cause,
            })?;
        if jwks.is_empty() {
            return Err(claim_err("jwks", "no usable signature key"));
        }
        let is_config = iss == sub;
        let only_in = |name: &'static str, config: bool| -> Result<Option<&Value>, Error> {
            match c.get(name) {
                Some(_) if config != is_config => Err(claim_err(
                    name,
                    if config {
                        "only allowed in an entity configuration"
                    } else {
                        "only allowed in a subordinate statement"
                    },
                )),
                v => Ok(v),
            }
        };
        let authority_hints = match only_in("authority_hints", true)? {
            Some(v) => {
                let hints = string_array(v, "authority_hints", MAX_HINTS)?;
                if hints.is_empty() {
                    return Err(claim_err("authority_hints", "empty"));
                }
                if !hints.iter().all(|h| is_entity_id(h, allow_http)) {
                    return Err(Error::EntityId {
                        what: "authority_hints",
                    });
                }
                hints
            }
            None => Vec::new(),
        };
        let metadata = match c.get("metadata") {
            Some(v) => {
                let m = object(v, "metadata")?;
                if !m.values().all(Value::is_object) || !no_nulls(v) {
                    return Err(claim_err(
                        "metadata",
                        "entity type values must be objects without nulls",
                    ));
                }
                Some(m.clone())
            }
            None => None,
        };
        let metadata_policy = match only_in("metadata_policy", false)? {
            Some(v) => Some(object(v, "metadata_policy")?.clone()),
            None => None,
        };
        let metadata_policy_crit = match only_in("metadata_policy_crit", false)? {
            Some(v) => string_array(v, "metadata_policy_crit", 32)?,
            None => Vec::new(),
        };
        // The SPID/CIE profile puts `constraints` in the Trust Anchor's Entity
        // Configuration, so it is read in both kinds; the resolver applies it.
        let constraints = c.get("constraints").map(constraints).transpose()?;
        let mut trust_marks = Vec::new();
        // OpenID Federation 1.0 allows `trust_marks` in Entity Configurations only. The
        // SPID/CIE reference implementation (spid-cie-oidc 1.6) also copies the subject's
        // marks into the Subordinate Statements its Trust Anchor issues. There they are
        // never read: ignoring a claim grants nothing, refusing it would refuse that
        // federation's every chain.
        if let Some(v) = c.get("trust_marks").filter(|_| is_config) {
            let arr = v
                .as_array()
                .ok_or_else(|| claim_err("trust_marks", "not an array"))?;
            if arr.len() > MAX_TRUST_MARKS {
                return Err(claim_err("trust_marks", "too many entries"));
            }
            for e in arr {
                let o = object(e, "trust_marks")?;
                let tm_type = trust_mark_type(o, "trust_marks")?;
                let trust_mark = match o.get("trust_mark") {
                    Some(Value::String(s)) => s.clone(),
                    _ => return Err(claim_err("trust_marks", "trust_mark missing")),
                };
                trust_marks.push(TrustMarkEntry {
                    trust_mark_type: tm_type,
                    trust_mark,
                });
            }
        }
        let trust_mark_issuers = match only_in("trust_mark_issuers", true)? {
            Some(v) => {
                let o = object(v, "trust_mark_issuers")?;
                let mut m = BTreeMap::new();
                for (k, v) in o {
                    m.insert(k.clone(), string_array(v, "trust_mark_issuers", 64)?);
                }
                Some(m)
            }
            None => None,
        };
        let trust_mark_owner_types = match only_in("trust_mark_owners", true)? {
            Some(v) => object(v, "trust_mark_owners")?.keys().cloned().collect(),
            None => Vec::new(),
        };
        Ok(Statement {
            iss,
            sub,
            iat,
            exp,
            jwks,
            authority_hints,
            metadata,
            metadata_policy,
            metadata_policy_crit,
            constraints,
            trust_marks,
            trust_mark_issuers,
            trust_mark_owner_types,
            jws,
            verified_with: OnceCell::new(),
        })
    }

    /// Checks the signature with `keys` (which the caller trusts for the issuer).
    pub fn verify(&self, keys: &Jwks, what: &'static str) -> Result<(), Error> {
        if let Some(done) = self.verified_with.get() {
            if keys.get(self.jws.kid()) == Some(done) {
                return Ok(());
            }
        }
        self.jws.verify(keys).map_err(|cause| Error::Jose {
            what,
            entity: self.sub.clone(),
            cause,
        })?;
        if let Some(k) = keys.get(self.jws.kid()) {
            let _ = self.verified_with.set(k.clone());
        }
        Ok(())
    }

    /// `iat <= now + skew` and `now < exp + skew`.
    pub fn check_time(&self, now: u64, skew: u64) -> Result<(), Error> {
        if self.iat > now.saturating_add(skew) {
            return Err(Error::NotYetValid {
                entity: self.sub.clone(),
            });
        }
        if now >= self.exp.saturating_add(skew) {
            return Err(Error::Expired {
                entity: self.sub.clone(),
            });
        }
        Ok(())
    }

    /// Whether this is an Entity Configuration (`iss == sub`).
    #[must_use]
    pub fn is_configuration(&self) -> bool {
        self.iss == self.sub
    }

    /// `iss`.
    #[must_use]
    pub fn iss(&self) -> &str {
        &self.iss
    }

    /// `sub`.
    #[must_use]
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// `exp`.
    #[must_use]
    pub fn exp(&self) -> u64 {
        self.exp
    }

    /// The `jwks` claim: the subject's Federation Entity Keys as this statement states them.
    #[must_use]
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// `authority_hints`.
    #[must_use]
    pub fn authority_hints(&self) -> &[String] {
        &self.authority_hints
    }

    /// `metadata`.
    #[must_use]
    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        self.metadata.as_ref()
    }

    /// The compact JWT as received.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.jws.as_str()
    }

    /// `metadata.federation_entity.federation_fetch_endpoint`.
    pub(crate) fn fetch_endpoint(&self) -> Option<&str> {
        self.metadata
            .as_ref()?
            .get("federation_entity")?
            .get("federation_fetch_endpoint")?
            .as_str()
    }
}

/// The trust mark type of a `trust_marks` entry or of a trust mark; two names that
/// disagree are ambiguous and refused.
pub(crate) fn trust_mark_type(
    o: &Map<String, Value>,
    claim: &'static str,
) -> Result<String, Error> {
    // `trust_mark_type` (OpenID Federation 1.0), `id` (the SPID/CIE rules, earlier drafts)
    // and `trust_mark_id` (what spid-cie-oidc adds for compatibility): any present must be
    // a string, and all present must agree.
    let mut found: Option<&str> = None;
    for name in ["trust_mark_type", "id", "trust_mark_id"] {
        match o.get(name) {
            None => {}
            Some(Value::String(v)) if !v.is_empty() => match found {
                Some(f) if f != v => {
                    return Err(claim_err(
                        claim,
                        "trust_mark_type, id and trust_mark_id differ",
                    ));
                }
                _ => found = Some(v),
            },
            Some(_) => return Err(claim_err(claim, "trust mark type is not a string")),
        }
    }
    found
        .map(str::to_owned)
        .ok_or_else(|| claim_err(claim, "trust_mark_type missing"))
}
