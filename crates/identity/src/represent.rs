//! Acting for someone else: representations (delegation, parental authority, guardianship,
//! amministrazione di sostegno, a company's legal representative, an intermediary), the pure
//! decision of which ones a logged-in person may use on a service, and the acting identity
//! that decision produces.
//!
//! Trust runs one way. A [`Representation`] is built only by a source's verifier in this
//! module ([`signed_file::SignedFile`], [`answer::Answer`], [`spid_legal::SpidLegalPerson`])
//! after the source's own proof (a signature by the portal's configured key, the broker's
//! authenticated channel to the portal, a verified SPID assertion); an [`Acting`] identity
//! is built only by [`act`], from a representation and the delegate's own verified login. Neither type implements `Deserialize` and their fields
//! are private, so an `act` claim, a header or a cookie value written by a client can never
//! become one: the broker stores the *reference* of the chosen representation in the session
//! and asks [`act`] again on every request, which also makes a revoked or expired record
//! stop working at the next `/auth`.

pub mod answer;
pub mod signed_file;
pub mod spid_legal;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::age::CalendarDate;
use crate::{LegalPerson, Loa, Method, Principal, Profile, normalize_fiscal_code};

/// The legal ground on which the delegate acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A person authorised another to use services on their behalf (delega; CAD art. 64-ter).
    Delegation,
    /// A parent for a minor child (responsabilità genitoriale, c.c. art. 316 and 320).
    Parental,
    /// A guardian (tutore) for a minor without parents or a person under interdiction.
    Guardianship,
    /// An amministratore di sostegno for the beneficiary (c.c. art. 404 and following),
    /// within the acts the court decree lists.
    SupportAdministration,
    /// A company's legal representative (or a person the company empowered) for the company.
    LegalRepresentative,
    /// An intermediary (CAF, patronato, professional) for a client.
    Intermediary,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Delegation,
        Kind::Parental,
        Kind::Guardianship,
        Kind::SupportAdministration,
        Kind::LegalRepresentative,
        Kind::Intermediary,
    ];

    /// The claim and header value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Delegation => "delegation",
            Kind::Parental => "parental",
            Kind::Guardianship => "guardianship",
            Kind::SupportAdministration => "support_administration",
            Kind::LegalRepresentative => "legal_representative",
            Kind::Intermediary => "intermediary",
        }
    }

    /// Parses a claim value; anything else is `None` (never a default type).
    #[must_use]
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the represented party may be a company: a legal representative acts only for
    /// one, an intermediary for either; every other ground is about a natural person.
    fn allows_company(self) -> bool {
        matches!(self, Kind::LegalRepresentative | Kind::Intermediary)
    }

    /// Whether the represented party may be a natural person (all but a company's legal
    /// representative).
    fn allows_person(self) -> bool {
        self != Kind::LegalRepresentative
    }
}

/// A company's identifier: the VAT number or the fiscal number, both 11 digits with the
/// partita IVA check digit (DPR 633/1972 art. 35; for companies the two usually coincide).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CompanyId {
    /// Partita IVA; `sub` = `VATIT-<11 digits>` (the form SPID's `ivaCode` takes).
    Vat(String),
    /// Codice fiscale of the company; `sub` = `TINIT-<11 digits>` (never 16 characters, so
    /// it cannot collide with a natural person's `sub`).
    FiscalNumber(String),
}

/// Whom the delegate acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Party {
    /// A natural person.
    Person {
        /// Fiscal code, validated (16 characters, check character).
        fiscal_code: String,
        /// Given name, when the source gives it.
        given_name: Option<String>,
        /// Family name, when the source gives it.
        family_name: Option<String>,
        /// Date of birth (`YYYY-MM-DD`); required for a parental representation.
        birthdate: Option<CalendarDate>,
    },
    /// A company or other legal person.
    Company {
        /// Its identifier.
        id: CompanyId,
        /// Its name, when the source gives it.
        name: Option<String>,
    },
}

impl Party {
    /// The `sub` the represented party has downstream.
    #[must_use]
    pub fn sub(&self) -> String {
        match self {
            Party::Person { fiscal_code, .. } => format!("TINIT-{fiscal_code}"),
            Party::Company {
                id: CompanyId::Vat(v),
                ..
            } => format!("VATIT-{v}"),
            Party::Company {
                id: CompanyId::FiscalNumber(f),
                ..
            } => format!("TINIT-{f}"),
        }
    }
}

/// One verified representation, as a source stated it.
///
/// Fields are private and there is no public constructor nor `Deserialize`: only a source
/// verifier of this module makes one (see the module documentation).
///
/// ```compile_fail
/// let forged: identity::represent::Representation = serde_json::from_str("{}").unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    kind: Kind,
    delegate: String,
    party: Party,
    services: BTreeSet<String>,
    not_before: u64,
    not_after: u64,
    source: String,
    reference: String,
}

impl Representation {
    /// The legal ground.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// The delegate's `sub` (`TINIT-<fiscal code>` or `EIDAS:<identifier>`).
    #[must_use]
    pub fn delegate(&self) -> &str {
        &self.delegate
    }
    /// The represented party.
    #[must_use]
    pub fn party(&self) -> &Party {
        &self.party
    }
    /// The service ids (`[[route]] service`) it covers; never empty, no wildcard.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(String::as_str)
    }
    /// Valid from (unix seconds, inclusive).
    #[must_use]
    pub fn not_before(&self) -> u64 {
        self.not_before
    }
    /// Valid until (unix seconds, exclusive).
    #[must_use]
    pub fn not_after(&self) -> u64 {
        self.not_after
    }
    /// The configured id of the source that stated it.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The source's own reference for the record (opaque; what a session remembers).
    #[must_use]
    pub fn reference(&self) -> &str {
        &self.reference
    }
}

/// What a source answered, verified: its representations, indexed by delegate.
///
/// Built only by a source verifier; lookups by delegate are logarithmic in the number of
/// records.
#[derive(Debug, Clone, Default)]
pub struct Representations {
    source: String,
    records: Vec<Representation>,
    by_delegate: BTreeMap<String, Vec<usize>>,
    by_reference: BTreeMap<String, usize>,
    issued_at: Option<u64>,
    expires_at: Option<u64>,
}

impl Representations {
    /// Indexes records from one source; references must be unique within it.
    fn index(
        source: &str,
        issued_at: Option<u64>,
        records: Vec<Representation>,
    ) -> Result<Representations, Error> {
        let mut by_delegate: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut by_reference = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            if by_reference.insert(r.reference.clone(), i).is_some() {
                return Err(Error::DuplicateReference { index: i });
            }
            by_delegate.entry(r.delegate.clone()).or_default().push(i);
        }
        Ok(Representations {
            source: source.to_owned(),
            records,
            by_delegate,
            by_reference,
            issued_at,
            expires_at: None,
        })
    }

    /// The source id.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// When the source says it issued this answer (a signed file's `iat`), if it does: the
    /// broker refuses an answer older than the one it holds (rollback to a file that still
    /// lists records revoked since).
    #[must_use]
    pub fn issued_at(&self) -> Option<u64> {
        self.issued_at
    }

    /// Until when the source says this answer may be used (a signed file's `exp`), if it
    /// does: the broker stops using a held file at that time even if no newer one arrived.
    #[must_use]
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// Every record, in the source's order.
    pub fn iter(&self) -> impl Iterator<Item = &Representation> {
        self.records.iter()
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every record naming `delegate_sub` as delegate, valid or not.
    pub fn for_delegate<'a>(
        &'a self,
        delegate_sub: &str,
    ) -> impl Iterator<Item = &'a Representation> + 'a {
        self.by_delegate
            .get(delegate_sub)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.records.get(i))
    }

    /// The record with this reference, if the source still states it.
    #[must_use]
    pub fn by_reference(&self, reference: &str) -> Option<&Representation> {
        self.by_reference
            .get(reference)
            .and_then(|&i| self.records.get(i))
    }
}

/// What kind of source stated a representation (the I/O stays in the broker, the parsing and
/// verification here). All but the wallet attestation are implemented: [`signed_file`],
/// [`answer`] (HTTP JSON and PostgreSQL) and [`spid_legal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A JWS file signed by the portal's key ([`signed_file::SignedFile`]).
    SignedFile,
    /// An HTTP JSON API (mTLS or bearer), answering per delegate.
    HttpJson,
    /// A PostgreSQL table kept by the portal.
    Postgres,
    /// The SPID legal-person attributes of the login (`companyName`, `ivaCode`,
    /// `companyFiscalNumber`, `spid:Purpose`).
    SpidLegalPerson,
    /// The EU Digital Identity Wallet's power-of-representation attestation.
    WalletAttestation,
}

/// A source of representations, without I/O: the broker fetches whatever the source needs
/// (file bytes, an HTTP body, table rows, the login's own attributes, a verified wallet
/// presentation) and hands it over as `Input`; the source verifies it and answers.
pub trait Source {
    /// What the broker fetched for this source.
    type Input<'a>;
    /// The configured id, copied into every record's `source`.
    fn id(&self) -> &str;
    /// The kind of source.
    fn kind(&self) -> SourceKind;
    /// Verifies the input at `now` (unix seconds) and returns its representations, or
    /// refuses all of it: a source is trusted whole or not at all.
    fn verify(&self, input: Self::Input<'_>, now: u64) -> Result<Representations, Error>;
}

/// Why a source's answer was refused as a whole. Codes are stable (`represent.*`); messages
/// carry positions and names, never fiscal codes or names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The JWS itself was refused (size, syntax, algorithm, header, signature, key).
    Jws(jose::Error),
    /// The payload does not follow the schema.
    Schema {
        /// Where (e.g. `representations[3].services`).
        at: String,
        /// What rule failed.
        reason: &'static str,
    },
    /// More records, services or bytes than the configured limits.
    TooMany {
        /// What overflowed.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// The file's `exp` has passed: a stale file could still list revoked representations.
    Expired,
    /// The file's `iat` is in the future.
    NotYetIssued,
    /// The file's `iss` is not the configured issuer.
    WrongIssuer,
    /// Two records share a reference.
    DuplicateReference {
        /// Index of the second one.
        index: usize,
    },
}

impl Error {
    /// Stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Jws(e) => match e {
                jose::Error::Signature => "represent.bad_signature",
                jose::Error::KidUnknown { .. } | jose::Error::KeyAlgMismatch { .. } => {
                    "represent.unknown_key"
                }
                jose::Error::TooLarge { .. } => "represent.too_large",
                _ => "represent.malformed",
            },
            Error::Schema { .. } => "represent.schema",
            Error::TooMany { .. } => "represent.too_many",
            Error::Expired => "represent.file_expired",
            Error::NotYetIssued => "represent.file_not_yet_issued",
            Error::WrongIssuer => "represent.wrong_issuer",
            Error::DuplicateReference { .. } => "represent.duplicate_reference",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Jws(e) => write!(f, "representation file refused: {e}"),
            Error::Schema { at, reason } => write!(f, "representation file, {at}: {reason}"),
            Error::TooMany { what, max } => {
                write!(f, "representation file: more than {max} {what}")
            }
            Error::Expired => f.write_str("representation file expired"),
            Error::NotYetIssued => f.write_str("representation file issued in the future"),
            Error::WrongIssuer => f.write_str("representation file from another issuer"),
            Error::DuplicateReference { index } => {
                write!(
                    f,
                    "representation file: reference of record {index} repeated"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// Why one representation cannot be used now, on this service, by this person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The logged-in person is not the delegate it names.
    WrongDelegate,
    /// Its validity has not started.
    NotYetValid,
    /// Its validity has ended.
    Expired,
    /// It does not list the route's service.
    OutOfScope,
    /// Parental authority ends at 18: the child is of age (or has no date of birth).
    RepresentedOfAge,
    /// The delegate and the represented party are the same person.
    SelfRepresentation,
    /// The reference the session chose is no longer stated by the source (revoked).
    NotFound,
}

impl Refusal {
    /// Stable code for logs, metrics and the error page.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Refusal::WrongDelegate => "represent.wrong_delegate",
            Refusal::NotYetValid => "represent.not_yet_valid",
            Refusal::Expired => "represent.expired",
            Refusal::OutOfScope => "represent.out_of_scope",
            Refusal::RepresentedOfAge => "represent.represented_of_age",
            Refusal::SelfRepresentation => "represent.self",
            Refusal::NotFound => "represent.not_found",
        }
    }
}

/// Age at which parental authority ends (c.c. art. 2 and 316).
const AGE_OF_MAJORITY: u32 = 18;

/// Checks one representation for `delegate` on `service` at `now` (unix seconds). The order
/// is fixed, so the refusal named is the first rule that fails.
pub fn check(
    rep: &Representation,
    delegate: &Principal,
    service: &str,
    now: u64,
) -> Result<(), Refusal> {
    if rep.delegate != delegate.sub {
        return Err(Refusal::WrongDelegate);
    }
    if rep.party.sub() == delegate.sub {
        return Err(Refusal::SelfRepresentation);
    }
    if now < rep.not_before {
        return Err(Refusal::NotYetValid);
    }
    if now >= rep.not_after {
        return Err(Refusal::Expired);
    }
    if !rep.services.contains(service) {
        return Err(Refusal::OutOfScope);
    }
    if rep.kind == Kind::Parental {
        let today = CalendarDate::italy_at(now);
        let minor = match &rep.party {
            Party::Person {
                birthdate: Some(b), ..
            } => b.age_on(today).is_some_and(|age| age < AGE_OF_MAJORITY),
            _ => false,
        };
        if !minor {
            return Err(Refusal::RepresentedOfAge);
        }
    }
    Ok(())
}

/// The outcome of [`decide`]: the usable representations (for the chooser page) and the
/// delegate's other records with the reason each is refused (for a clear page and logs).
#[derive(Debug, Default)]
pub struct Choice<'a> {
    /// Usable now on this service.
    pub usable: Vec<&'a Representation>,
    /// The delegate's records that are not usable, and why.
    pub refused: Vec<(&'a Representation, Refusal)>,
}

/// Which of a source's representations the logged-in `delegate` may use on `service` at
/// `now`. Only records naming the delegate are looked at; work is logarithmic in the source
/// plus linear in the delegate's own records.
#[must_use]
pub fn decide<'a>(
    delegate: &Principal,
    service: &str,
    now: u64,
    reps: &'a Representations,
) -> Choice<'a> {
    let mut choice = Choice::default();
    for rep in reps.for_delegate(&delegate.sub) {
        match check(rep, delegate, service, now) {
            Ok(()) => choice.usable.push(rep),
            Err(why) => choice.refused.push((rep, why)),
        }
    }
    choice
}

/// The delegate, as the `act` claim (RFC 8693 §4.1) carries them: who they are and how
/// they logged in. The act's level of assurance is the delegate's login level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<String>,
    method: Method,
    idp: String,
    loa: Loa,
}

impl Actor {
    /// The delegate's `sub`.
    #[must_use]
    pub fn sub(&self) -> &str {
        &self.sub
    }
    /// The delegate's login method.
    #[must_use]
    pub fn method(&self) -> Method {
        self.method
    }
    /// The delegate's login level: the level of the whole act.
    #[must_use]
    pub fn loa(&self) -> Loa {
        self.loa
    }
}

/// The `representation` claim.
#[derive(Serialize)]
struct RepresentationClaim<'a> {
    #[serde(rename = "type")]
    kind: Kind,
    services: &'a BTreeSet<String>,
    not_before: u64,
    not_after: u64,
    source: &'a str,
    #[serde(rename = "ref")]
    reference: &'a str,
}

impl Serialize for Representation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RepresentationClaim {
            kind: self.kind,
            services: &self.services,
            not_before: self.not_before,
            not_after: self.not_after,
            source: &self.source,
            reference: &self.reference,
        }
        .serialize(s)
    }
}

/// An identity acting for someone else: the represented party as the principal (`sub`), the
/// delegate as `act`, and the representation that allows it. Made only by [`act`].
///
/// It serializes (into the token) but never deserializes, and has no public constructor:
///
/// ```compile_fail
/// // A forged `act` from a session, header or client cannot become an Acting.
/// let forged: identity::represent::Acting = serde_json::from_str("{}").unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acting {
    #[serde(flatten)]
    principal: Principal,
    act: Actor,
    representation: Representation,
}

/// Makes the acting identity for the representation `reference` the session chose, after
/// [`check`]ing it again against what the source states now.
pub fn act(
    delegate: &Principal,
    reference: &str,
    service: &str,
    now: u64,
    reps: &Representations,
) -> Result<Acting, Refusal> {
    let rep = reps.by_reference(reference).ok_or(Refusal::NotFound)?;
    check(rep, delegate, service, now)?;
    let mut principal = Principal {
        sub: rep.party.sub(),
        given_name: None,
        family_name: None,
        birthdate: None,
        email: None,
        phone_number: None,
        address: None,
        legal_person: None,
        profile: Profile::Citizen,
        // The only authentication that happened is the delegate's: it is the session's.
        auth: delegate.auth.clone(),
    };
    match &rep.party {
        Party::Person {
            given_name,
            family_name,
            birthdate,
            ..
        } => {
            principal.given_name.clone_from(given_name);
            principal.family_name.clone_from(family_name);
            principal.birthdate = birthdate.map(|b| b.to_string());
        }
        Party::Company { id, name } => {
            principal.profile = Profile::Business;
            principal.legal_person = Some(LegalPerson {
                company_name: name.clone(),
                iva_code: match id {
                    CompanyId::Vat(v) => Some(format!("VATIT-{v}")),
                    CompanyId::FiscalNumber(_) => None,
                },
                company_fiscal_number: match id {
                    CompanyId::FiscalNumber(f) => Some(f.clone()),
                    CompanyId::Vat(_) => None,
                },
                purpose: None,
            });
        }
    }
    Ok(Acting {
        principal,
        act: Actor {
            sub: delegate.sub.clone(),
            given_name: delegate.given_name.clone(),
            family_name: delegate.family_name.clone(),
            method: delegate.auth.method,
            idp: delegate.auth.idp.clone(),
            loa: delegate.auth.loa,
        },
        representation: rep.clone(),
    })
}

/// Default header name → acting claim name, added to the identity headers of an acting
/// session (`X-Varco-Sub` and the others then describe the represented party).
pub const ACT_HEADERS: [(&str, &str); 9] = [
    ("X-Varco-Act-Sub", "act_sub"),
    ("X-Varco-Act-Method", "act_method"),
    ("X-Varco-Act-Loa", "act_loa"),
    ("X-Varco-Act-Given-Name", "act_given_name"),
    ("X-Varco-Act-Family-Name", "act_family_name"),
    ("X-Varco-Representation-Type", "representation_type"),
    ("X-Varco-Representation-Source", "representation_source"),
    ("X-Varco-Representation-Ref", "representation_ref"),
    (
        "X-Varco-Representation-Not-After",
        "representation_not_after",
    ),
];

impl Acting {
    /// The represented party, as the principal downstream sees (`sub`, names, `profile`),
    /// with the delegate's login as `auth`.
    #[must_use]
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
    /// The delegate.
    #[must_use]
    pub fn actor(&self) -> &Actor {
        &self.act
    }
    /// The representation used.
    #[must_use]
    pub fn representation(&self) -> &Representation {
        &self.representation
    }

    /// The value of an acting claim by name (see [`ACT_HEADERS`]); `None` for an unknown
    /// name or an absent value. Values never contain control characters (sources refuse them).
    #[must_use]
    pub fn claim(&self, name: &str) -> Option<String> {
        let r = &self.representation;
        match name {
            "act_sub" => Some(self.act.sub.clone()),
            "act_method" => Some(self.act.method.as_str().to_owned()),
            "act_loa" => Some(self.act.loa.as_str().to_owned()),
            "act_given_name" => self.act.given_name.clone(),
            "act_family_name" => self.act.family_name.clone(),
            "representation_type" => Some(r.kind.as_str().to_owned()),
            "representation_source" => Some(r.source.clone()),
            "representation_ref" => Some(r.reference.clone()),
            "representation_not_after" => Some(r.not_after.to_string()),
            _ => None,
        }
    }

    /// The default acting headers with their values (absent values omitted).
    #[must_use]
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        ACT_HEADERS
            .iter()
            .filter_map(|(h, c)| self.claim(c).map(|v| (*h, v)))
            .collect()
    }
}

/// Validates a delegate's `sub` as the identity crate writes it: `TINIT-` + a valid fiscal
/// code, or `EIDAS:` + an identifier without whitespace or control characters.
fn normalize_delegate(s: &str) -> Option<String> {
    if let Some(rest) = s.strip_prefix("TINIT-") {
        return normalize_fiscal_code(rest)
            .ok()
            .map(|c| format!("TINIT-{c}"));
    }
    let id = s.strip_prefix("EIDAS:")?;
    (!id.is_empty() && id.len() <= 256 && !id.chars().any(|c| c.is_control() || c.is_whitespace()))
        .then(|| s.to_owned())
}

/// An 11-digit Italian VAT or company fiscal number with a valid check digit (the Luhn
/// variant of DM 23 dicembre 1976: odd positions as is, even positions doubled minus 9 when
/// above 9).
fn valid_company_number(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 11 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..10]
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 0 {
                d
            } else if d * 2 > 9 {
                d * 2 - 9
            } else {
                d * 2
            }
        })
        .sum();
    (10 - sum % 10) % 10 == u32::from(b[10] - b'0')
}
