//! One SD-JWT VC presentation: `<issuer JWT>~<disclosure>~...~<KB-JWT>`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jose::{Jwk, Jwks, Jws, Typ};
use serde_json::{Map, Value};

use crate::Error;
use crate::disclose::{self, Disclosure};
use crate::status::StatusRef;

/// Bounds checked before any JSON is read or any digest computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole presentation, in bytes. Default 64 KiB: a PID with a dozen disclosures and
    /// a KB-JWT is 3–6 KiB; the bound leaves room for an address and a portrait-free EAA.
    pub max_bytes: usize,
    /// Disclosures in one presentation. Default 64 (the PID has about 10 attributes).
    pub max_disclosures: usize,
    /// One disclosure, in bytes (base64url). Default 4 KiB.
    pub max_disclosure_bytes: usize,
    /// Nesting of disclosed values, counted across disclosures that contain digests of
    /// further disclosures. Default 12.
    pub max_depth: usize,
    /// The issuer JWT and the KB-JWT (sizes, JSON depth), as [`jose`] checks them.
    pub jws: jose::Limits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024,
            max_disclosures: 64,
            max_disclosure_bytes: 4096,
            max_depth: 12,
            jws: jose::Limits::default(),
        }
    }
}

/// The issuer key, chosen by the caller's trust decision (a federation trust chain, an
/// X.509 trust list, configuration). Nothing in the presentation selects it.
#[derive(Debug, Clone, Copy)]
pub enum IssuerKey<'a> {
    /// A key set: the issuer JWT's `kid` selects one (and must be present).
    Set(&'a Jwks),
    /// Exactly this key, whatever `kid` the header carries.
    Key(&'a Jwk),
}

/// What this verification expects: the request it answers, and the clock.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Now, in seconds since the epoch.
    pub now: u64,
    /// The KB-JWT `aud`: our `client_id` as the wallet saw it in the request.
    pub aud: &'a str,
    /// The KB-JWT `nonce`: the one of this request.
    pub nonce: &'a str,
    /// Accepted `vct` values (exact match). Empty accepts none.
    pub vct: &'a [&'a str],
    /// The expected `iss`, when the caller resolved it already (the trust chain's subject).
    pub iss: Option<&'a str>,
    /// Allowed clock skew, seconds, for `exp`, `nbf`, `iat` and the KB-JWT `iat`.
    pub skew: u64,
    /// Oldest KB-JWT accepted: `iat` at least `now - kb_max_age - skew`.
    pub kb_max_age: u64,
    /// Refuse a credential without `status.status_list` (the PID must be revocable).
    pub require_status: bool,
}

/// The work one verification did, for the bounds tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// SHA-256 computations: one per disclosure, the `sd_hash`, the audit digest.
    pub digests: usize,
    /// JSON nodes visited while resolving disclosures.
    pub nodes: usize,
}

/// A verified presentation.
#[derive(Debug, Clone)]
pub struct Verified {
    /// `iss`.
    pub issuer: String,
    /// `vct`.
    pub vct: String,
    /// `exp`.
    pub exp: u64,
    /// `iat`, if the issuer put one.
    pub iat: Option<u64>,
    /// Every claim after disclosure: the plain ones and the disclosed ones, with `_sd`,
    /// `_sd_alg` and undisclosed array elements removed.
    pub claims: Map<String, Value>,
    /// The credential's status reference, to check with [`crate::status::check`].
    pub status: Option<StatusRef>,
    /// RFC 7638 thumbprint of the holder key.
    pub holder: String,
    /// Base64url SHA-256 of the whole presentation as received, for the audit record.
    pub digest: String,
    /// What the verification cost.
    pub work: Work,
}

/// A presentation parsed and bounded, not verified yet.
#[derive(Debug, Clone)]
pub struct Presentation {
    issuer: Jws,
    disclosures: Vec<Disclosure>,
    kb: Option<Jws>,
    /// `base64url(sha-256(<issuer JWT>~<disclosures>~))`, what `sd_hash` must be.
    sd_hash: String,
    digest: String,
    max_depth: usize,
}

/// The issuer JWT's header bound when it carries an `x5c` chain (a few certificates).
const MAX_CHAINED_HEADER: usize = 16 * 1024;

fn jose_err(what: &'static str) -> impl Fn(jose::Error) -> Error {
    move |cause| Error::Jose { what, cause }
}

fn uint(
    claims: &Map<String, Value>,
    what: &'static str,
    claim: &'static str,
) -> Result<Option<u64>, Error> {
    match claims.get(claim) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(Error::Claim { what, claim }),
    }
}

fn string<'c>(
    claims: &'c Map<String, Value>,
    what: &'static str,
    claim: &'static str,
) -> Result<&'c str, Error> {
    match claims.get(claim) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(Error::Claim { what, claim }),
    }
}

impl Presentation {
    /// Splits and decodes: sizes and counts first, then the issuer JWT (header rules,
    /// strict JSON), every disclosure, and the KB-JWT if present. No signature is checked.
    pub fn parse(s: &str, limits: &Limits) -> Result<Presentation, Error> {
        if s.len() > limits.max_bytes {
            return Err(Error::TooLarge {
                what: "presentation",
                len: s.len(),
                max: limits.max_bytes,
            });
        }
        let tildes = s.bytes().filter(|b| *b == b'~').count();
        if tildes == 0 {
            return Err(Error::Malformed);
        }
        if tildes - 1 > limits.max_disclosures {
            return Err(Error::TooManyDisclosures {
                max: limits.max_disclosures,
            });
        }
        let Some(last) = s.rfind('~') else {
            return Err(Error::Malformed);
        };
        let (sd_jwt, kb) = (&s[..=last], &s[last + 1..]);
        let mut parts = sd_jwt[..last].split('~');
        let issuer = parts.next().unwrap_or_default();
        if issuer.is_empty() {
            return Err(Error::Malformed);
        }
        // The issuer JWT may carry its X.509 chain (`x5c`) for the caller's trust list: the
        // header bound grows to hold a few certificates.
        let issuer_limits = jose::Limits {
            max_header_bytes: limits.jws.max_header_bytes.max(MAX_CHAINED_HEADER),
            ..limits.jws
        };
        let issuer = Jws::decode_chained(issuer, Typ::Exactly("dc+sd-jwt"), &issuer_limits)
            .map_err(jose_err("issuer JWT"))?;
        let mut disclosures = Vec::with_capacity(tildes - 1);
        for d in parts {
            if d.is_empty() {
                return Err(Error::Malformed);
            }
            if d.len() > limits.max_disclosure_bytes {
                return Err(Error::TooLarge {
                    what: "disclosure",
                    len: d.len(),
                    max: limits.max_disclosure_bytes,
                });
            }
            disclosures.push(disclose::decode(d, limits.max_depth)?);
        }
        disclose::check_unique(&disclosures)?;
        let kb = if kb.is_empty() {
            None
        } else {
            Some(
                Jws::decode_unkeyed(kb, Typ::Exactly("kb+jwt"), &limits.jws)
                    .map_err(jose_err("KB-JWT"))?,
            )
        };
        // One pass over the bytes for both digests: the audit digest continues the sd_hash
        // computation over the KB-JWT.
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(sd_jwt.as_bytes());
        let sd_hash = URL_SAFE_NO_PAD.encode(ctx.clone().finish());
        ctx.update(&s.as_bytes()[last + 1..]);
        let digest = URL_SAFE_NO_PAD.encode(ctx.finish());
        Ok(Presentation {
            issuer,
            disclosures,
            kb,
            sd_hash,
            digest,
            max_depth: limits.max_depth,
        })
    }

    /// The issuer JWT's `iss`, read before any signature is checked: for choosing the trust
    /// source (which federation entity, which trust list) only.
    #[must_use]
    pub fn issuer_unverified(&self) -> Option<&str> {
        self.issuer
            .claims_unverified()
            .get("iss")
            .and_then(Value::as_str)
    }

    /// The issuer JWT's `x5c` chain (DER, leaf first; empty when absent), for a caller
    /// whose trust in `iss` is an X.509 trust list: it verifies the chain, derives the
    /// leaf's key, and passes it as [`IssuerKey::Key`]. Verifying with [`IssuerKey::Set`]
    /// refuses a credential that carries a chain (two trust sources for one signature
    /// would be ambiguous).
    #[must_use]
    pub fn issuer_x5c(&self) -> &[Vec<u8>] {
        self.issuer.x5c()
    }

    /// The issuer JWT's `kid`, if any (empty when absent).
    #[must_use]
    pub fn issuer_kid(&self) -> &str {
        self.issuer.kid()
    }

    /// Base64url SHA-256 of the whole presentation (the audit digest), known before
    /// verification so that a refusal can be audited too.
    #[must_use]
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Verifies everything, in this order: the issuer signature; `_sd_alg` and every
    /// disclosure; `iss`, `vct`, `exp`, `nbf`, `iat`; the holder key `cnf.jwk`; the KB-JWT
    /// signature with it, then its `nonce`, `aud`, `iat` and `sd_hash`; the status
    /// reference.
    pub fn verify(self, key: IssuerKey<'_>, expect: &Expect<'_>) -> Result<Verified, Error> {
        const ISS: &str = "issuer JWT";
        const KB: &str = "KB-JWT";
        match key {
            IssuerKey::Set(_) if !self.issuer.x5c().is_empty() => {
                return Err(Error::Jose {
                    what: ISS,
                    cause: jose::Error::HeaderKey { name: "x5c" },
                });
            }
            IssuerKey::Set(_) if self.issuer.kid().is_empty() => {
                return Err(Error::Jose {
                    what: ISS,
                    cause: jose::Error::KidMissing,
                });
            }
            IssuerKey::Set(set) => self.issuer.verify(set),
            IssuerKey::Key(k) => self.issuer.verify_with(k),
        }
        .map_err(jose_err(ISS))?;
        let mut payload = self.issuer.claims_unverified().clone();
        match payload.remove("_sd_alg") {
            None => {}
            Some(Value::String(a)) if a == "sha-256" => {}
            Some(_) => return Err(Error::SdAlg),
        }
        let n_disclosures = self.disclosures.len();
        let (claims, nodes) = disclose::resolve(payload, self.disclosures, self.max_depth)?;

        let issuer = string(&claims, ISS, "iss")?.to_owned();
        if expect.iss.is_some_and(|want| want != issuer) {
            return Err(Error::Issuer);
        }
        let vct = string(&claims, ISS, "vct")?.to_owned();
        if !expect.vct.contains(&vct.as_str()) {
            return Err(Error::Vct);
        }
        let exp = uint(&claims, ISS, "exp")?.ok_or(Error::Claim {
            what: ISS,
            claim: "exp",
        })?;
        if expect.now > exp.saturating_add(expect.skew) {
            return Err(Error::Expired);
        }
        let late = expect.now.saturating_add(expect.skew);
        if uint(&claims, ISS, "nbf")?.is_some_and(|nbf| nbf > late) {
            return Err(Error::NotYetValid);
        }
        let iat = uint(&claims, ISS, "iat")?;
        if iat.is_some_and(|iat| iat > late) {
            return Err(Error::NotYetValid);
        }

        let jwk = claims
            .get("cnf")
            .and_then(Value::as_object)
            .and_then(|c| c.get("jwk"))
            .ok_or(Error::Cnf {
                reason: "no cnf.jwk",
            })?;
        let holder = Jwk::from_value_standalone(jwk).map_err(|_| Error::Cnf {
            reason: "not a public EC or RSA key",
        })?;
        let kb = self.kb.ok_or(Error::KbMissing)?;
        kb.verify_with(&holder).map_err(jose_err(KB))?;
        let kbc = kb.claims_unverified();
        if string(kbc, KB, "nonce")? != expect.nonce {
            return Err(Error::Nonce);
        }
        if string(kbc, KB, "aud")? != expect.aud {
            return Err(Error::Audience);
        }
        let kb_iat = uint(kbc, KB, "iat")?.ok_or(Error::Claim {
            what: KB,
            claim: "iat",
        })?;
        let oldest = expect
            .now
            .saturating_sub(expect.kb_max_age.saturating_add(expect.skew));
        if kb_iat > late || kb_iat < oldest {
            return Err(Error::KbIat);
        }
        if string(kbc, KB, "sd_hash")? != self.sd_hash {
            return Err(Error::SdHash);
        }

        let status = match claims.get("status") {
            Some(s) => Some(StatusRef::from_claim(s)?),
            None if expect.require_status => return Err(Error::StatusMissing),
            None => None,
        };
        Ok(Verified {
            issuer,
            vct,
            exp,
            iat,
            status,
            holder: holder.thumbprint(),
            digest: self.digest,
            claims,
            work: Work {
                digests: n_disclosures + 2,
                nodes,
            },
        })
    }
}
