//! The first source: a file the portal signs (a compact JWS, `typ`
//! `varco-representations+jwt`) listing representations. The broker reads the bytes; this
//! module verifies the signature with the portal's configured keys (never a key from the
//! file), then reads the payload against a closed schema.

use std::collections::BTreeSet;

use jose::{Jwks, Jws, Limits, Typ};
use serde::Deserialize;
use serde_json::Value;

use super::{
    CompanyId, Error, Kind, Party, Representation, Representations, Source, SourceKind,
    normalize_delegate, valid_company_number,
};
use crate::age::CalendarDate;
use crate::normalize_fiscal_code;

/// The `typ` header a representation file must carry, so no other token signed by the same
/// key (an ID token, an entity statement) can be passed off as one.
pub const TYP: &str = "varco-representations+jwt";

/// Bounds checked before and while reading a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// Whole file in bytes (default 8 MiB, about 20 000 records of typical size).
    pub max_bytes: usize,
    /// Records (default 100 000).
    pub max_records: usize,
    /// Services per record (default 64).
    pub max_services: usize,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            max_bytes: 8 * 1024 * 1024,
            max_records: 100_000,
            max_services: 64,
        }
    }
}

/// Longest reference, service id, name.
const MAX_REF: usize = 128;
const MAX_SERVICE: usize = 128;
const MAX_NAME: usize = 256;
/// JSON depth the schema needs: file object, `representations` array, record object,
/// `represented` object, its `person`/`company` object.
const MAX_DEPTH: usize = 5;
/// Tolerance on the file's `iat` against our clock, in seconds.
const CLOCK_SKEW: u64 = 60;

/// A signed-file source, as configured: its id, the issuer the file must name, and the
/// portal's public keys.
#[derive(Debug, Clone)]
pub struct SignedFile {
    id: String,
    issuer: String,
    keys: Jwks,
    limits: FileLimits,
}

impl SignedFile {
    /// A source with id `id` (copied into each record's `source`), expecting `iss` =
    /// `issuer` and a signature by one of `keys`.
    #[must_use]
    pub fn new(id: &str, issuer: &str, keys: Jwks, limits: FileLimits) -> SignedFile {
        SignedFile {
            id: id.to_owned(),
            issuer: issuer.to_owned(),
            keys,
            limits,
        }
    }
}

impl Source for SignedFile {
    type Input<'a> = &'a [u8];

    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> SourceKind {
        SourceKind::SignedFile
    }

    fn verify(&self, input: &[u8], now: u64) -> Result<Representations, Error> {
        if input.len() > self.limits.max_bytes {
            return Err(Error::TooMany {
                what: "bytes",
                max: self.limits.max_bytes,
            });
        }
        let text = std::str::from_utf8(input).map_err(|_| schema("file", "not UTF-8"))?;
        // A trailing newline is what editors and `echo` leave; nothing else is tolerated.
        let text = text.strip_suffix('\n').unwrap_or(text);
        let limits = Limits {
            max_token_bytes: self.limits.max_bytes,
            max_header_bytes: 2048,
            max_depth: MAX_DEPTH,
        };
        let jws = Jws::decode(text, Typ::Exactly(TYP), &limits).map_err(Error::Jws)?;
        let claims = jws.into_verified_claims(&self.keys).map_err(Error::Jws)?;
        let file = RawFile::deserialize(&Value::Object(claims))
            .map_err(|_| schema("file", "member unknown, missing or of the wrong type"))?;
        if file.iss != self.issuer {
            return Err(Error::WrongIssuer);
        }
        if file.iat > now.saturating_add(CLOCK_SKEW) {
            return Err(Error::NotYetIssued);
        }
        if now >= file.exp {
            return Err(Error::Expired);
        }
        if file.representations.len() > self.limits.max_records {
            return Err(Error::TooMany {
                what: "records",
                max: self.limits.max_records,
            });
        }
        let records = file
            .representations
            .iter()
            .enumerate()
            .map(|(i, v)| record(&self.id, self.limits.max_services, i, v))
            .collect::<Result<Vec<_>, _>>()?;
        let mut reps = Representations::index(&self.id, Some(file.iat), records)?;
        reps.expires_at = Some(file.exp);
        Ok(reps)
    }
}

fn schema(at: &str, reason: &'static str) -> Error {
    Error::Schema {
        at: at.to_owned(),
        reason,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    iss: String,
    iat: u64,
    exp: u64,
    representations: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(rename = "type")]
    kind: String,
    delegate: String,
    represented: RawParty,
    services: Vec<String>,
    not_before: u64,
    not_after: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum RawParty {
    Person {
        fiscal_code: String,
        #[serde(default)]
        given_name: Option<String>,
        #[serde(default)]
        family_name: Option<String>,
        #[serde(default)]
        birthdate: Option<String>,
    },
    Company {
        #[serde(default)]
        vat: Option<String>,
        #[serde(default)]
        fiscal_number: Option<String>,
        #[serde(default)]
        name: Option<String>,
    },
}

/// Printable ASCII without spaces: references and service ids go into headers and logs.
fn token_ok(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|c| c.is_ascii_graphic())
}

/// A display name: non-empty, bounded, no control characters (it may become a header).
fn name_ok(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= MAX_NAME && !s.chars().any(char::is_control)
}

/// Reads one record of the closed schema every JSON-shaped source shares (this file, the
/// HTTP JSON API, the PostgreSQL rows): `i` is its position, for error messages.
pub(super) fn record(
    source_id: &str,
    max_services: usize,
    i: usize,
    v: &Value,
) -> Result<Representation, Error> {
    let at = |field: &str| format!("representations[{i}]{field}");
    let bad = |field: &str, reason: &'static str| Error::Schema {
        at: at(field),
        reason,
    };
    let raw = RawRecord::deserialize(v)
        .map_err(|_| bad("", "member unknown, missing or of the wrong type"))?;
    if !token_ok(&raw.reference, MAX_REF) {
        return Err(bad(".ref", "empty, too long or not printable ASCII"));
    }
    let kind = Kind::parse(&raw.kind).ok_or_else(|| bad(".type", "unknown type"))?;
    let delegate = normalize_delegate(&raw.delegate)
        .ok_or_else(|| bad(".delegate", "not a TINIT- fiscal code or EIDAS: identifier"))?;
    if raw.services.is_empty() {
        return Err(bad(".services", "empty"));
    }
    if raw.services.len() > max_services {
        return Err(Error::TooMany {
            what: "services in one record",
            max: max_services,
        });
    }
    let mut services = BTreeSet::new();
    for s in raw.services {
        if !token_ok(&s, MAX_SERVICE) {
            return Err(bad(".services", "empty, too long or not printable ASCII"));
        }
        if !services.insert(s) {
            return Err(bad(".services", "repeated"));
        }
    }
    if raw.not_before >= raw.not_after {
        return Err(bad(".not_after", "not after not_before"));
    }
    let name = |o: Option<String>, field: &str| -> Result<Option<String>, Error> {
        match o {
            Some(n) if !name_ok(&n) => Err(bad(field, "empty, too long or control characters")),
            o => Ok(o),
        }
    };
    let party = match raw.represented {
        RawParty::Person {
            fiscal_code,
            given_name,
            family_name,
            birthdate,
        } => {
            if !kind.allows_person() {
                return Err(bad(
                    ".represented",
                    "a person for a company's representative",
                ));
            }
            let fiscal_code = normalize_fiscal_code(&fiscal_code)
                .map_err(|reason| bad(".represented.person.fiscal_code", reason))?;
            let birthdate = match birthdate {
                None => None,
                Some(b) => Some(CalendarDate::parse(&b).ok_or_else(|| {
                    bad(
                        ".represented.person.birthdate",
                        "not an existing YYYY-MM-DD date",
                    )
                })?),
            };
            Party::Person {
                fiscal_code,
                given_name: name(given_name, ".represented.person.given_name")?,
                family_name: name(family_name, ".represented.person.family_name")?,
                birthdate,
            }
        }
        RawParty::Company {
            vat,
            fiscal_number,
            name: company_name,
        } => {
            if !kind.allows_company() {
                return Err(bad(".represented", "a company for a type about persons"));
            }
            let id = match (vat, fiscal_number) {
                (Some(v), None) => CompanyId::Vat(v),
                (None, Some(f)) => CompanyId::FiscalNumber(f),
                // Two identifiers could disagree; one is enough and is never guessed.
                _ => {
                    return Err(bad(
                        ".represented.company",
                        "exactly one of vat and fiscal_number",
                    ));
                }
            };
            let (CompanyId::Vat(n) | CompanyId::FiscalNumber(n)) = &id;
            if !valid_company_number(n) {
                return Err(bad(
                    ".represented.company",
                    "not 11 digits with a valid check digit",
                ));
            }
            Party::Company {
                id,
                name: name(company_name, ".represented.company.name")?,
            }
        }
    };
    if kind == Kind::Parental
        && !matches!(
            party,
            Party::Person {
                birthdate: Some(_),
                ..
            }
        )
    {
        return Err(bad(
            ".represented",
            "parental without the child's birthdate",
        ));
    }
    Ok(Representation {
        kind,
        delegate,
        party,
        services,
        not_before: raw.not_before,
        not_after: raw.not_after,
        source: source_id.to_owned(),
        reference: raw.reference,
    })
}
