//! The normalized principal and the attribute mapping that produces it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::attr;
use crate::fiscal_code::normalize_fiscal_code;
use crate::method::Method;
use crate::{Error, Loa};

/// Where the attributes came from; everything but the attributes themselves.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Authentication method.
    pub method: Method,
    /// Entity id (or other stable id) of the IdP.
    pub idp: &'a str,
    /// Level as declared by the source (e.g. the `AuthnContextClassRef`).
    pub level: &'a str,
    /// Authentication time, unix seconds (from the assertion, or the broker's clock).
    pub auth_time: u64,
    /// The broker's session id for this login.
    pub session_id: &'a str,
}

/// Per-source attribute mapping, as read from configuration.
///
/// Applied in this order: `drop` (matched against the received name and the canonical
/// name), `rename` (received name → canonical name, see [`attr`]), then `require` (canonical
/// names, in addition to the method's [`Method::subject_attribute`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mapping {
    /// Received attribute name → canonical name.
    pub rename: BTreeMap<String, String>,
    /// Canonical names that must be present and non-empty.
    pub require: Vec<String>,
    /// Names whose values are discarded before anything else.
    pub drop: Vec<String>,
}

impl Mapping {
    /// A sensible default for a method: for eIDAS, the eIDAS natural-person attribute names
    /// (short and URI form) are renamed to the canonical ones; other methods use SPID names
    /// already.
    #[must_use]
    pub fn default_for(method: Method) -> Mapping {
        let mut rename = BTreeMap::new();
        if method == Method::Eidas {
            // FICEP hands Italian SPs the eIDAS PersonIdentifier in SPID's `spidCode`
            // attribute (the form `CC/IT/…`), since it answers as a SPID IdP.
            rename.insert("spidCode".to_owned(), attr::PERSON_IDENTIFIER.to_owned());
            for (eidas, canonical) in [
                ("PersonIdentifier", attr::PERSON_IDENTIFIER),
                ("CurrentGivenName", attr::NAME),
                ("CurrentFamilyName", attr::FAMILY_NAME),
                ("DateOfBirth", attr::DATE_OF_BIRTH),
                ("CurrentAddress", attr::ADDRESS),
            ] {
                rename.insert(
                    format!("http://eidas.europa.eu/attributes/naturalperson/{eidas}"),
                    canonical.to_owned(),
                );
                if eidas != canonical {
                    rename.insert(eidas.to_owned(), canonical.to_owned());
                }
            }
        }
        Mapping {
            rename,
            require: Vec::new(),
            drop: Vec::new(),
        }
    }
}

/// Postal address, in the OpenID Connect `address` claim shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// The full address as one string, as received.
    pub formatted: String,
}

/// SPID legal-person attributes, present when any of them was received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalPerson {
    /// `companyName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// `ivaCode`, verbatim (e.g. `VATIT-12345678901`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iva_code: Option<String>,
    /// `companyFiscalNumber`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_fiscal_number: Option<String>,
    /// `spid:Purpose`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// Who the person acts as, for route policies.
///
/// Derived from SPID's `spid:Purpose` (AgID Avviso SPID n. 18 v2, digital identities for
/// professional use) and the legal-person attributes; `Intermediary` (CAF, patronati,
/// delegated intermediaries) is never inferred from an assertion: only a source that knows
/// it (a legacy credential store, a configured list) can set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A natural person acting for themselves.
    Citizen,
    /// A natural person using a professional-use identity (`spid:Purpose` P, PF, PX).
    Professional,
    /// A legal person, or a person acting for one (`spid:Purpose` LP, PG, or legal-person
    /// attributes present).
    Business,
    /// An intermediary acting for others (set by the source, never inferred).
    Intermediary,
}

impl Profile {
    /// The claim value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Citizen => "citizen",
            Profile::Professional => "professional",
            Profile::Business => "business",
            Profile::Intermediary => "intermediary",
        }
    }

    /// Parses a claim value.
    #[must_use]
    pub fn parse(s: &str) -> Option<Profile> {
        [
            Profile::Citizen,
            Profile::Professional,
            Profile::Business,
            Profile::Intermediary,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }

    fn derive(legal: Option<&LegalPerson>) -> Profile {
        let Some(legal) = legal else {
            return Profile::Citizen;
        };
        match legal.purpose.as_deref() {
            Some("P" | "PF" | "PX") => Profile::Professional,
            Some("LP" | "PG") => Profile::Business,
            // Company attributes without a (known) purpose: a legal-person identity.
            _ if legal.company_name.is_some()
                || legal.iva_code.is_some()
                || legal.company_fiscal_number.is_some() =>
            {
                Profile::Business
            }
            _ => Profile::Citizen,
        }
    }
}

/// The `auth` claim: how, where and how strongly the person authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// Authentication method.
    pub method: Method,
    /// Source IdP id.
    pub idp: String,
    /// Level as declared by the source, verbatim.
    pub level: String,
    /// Normalized level of assurance.
    pub loa: Loa,
    /// Authentication time, unix seconds.
    pub auth_time: u64,
    /// Broker session id.
    pub sid: String,
}

/// The normalized identity downstream services see, whatever the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// `TINIT-<fiscal code>` (SPID, CIE, CNS, legacy) or `EIDAS:<PersonIdentifier>`.
    pub sub: String,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Date of birth, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    /// E-mail address, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Mobile phone number, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// Legal-person attributes, when any was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_person: Option<LegalPerson>,
    /// Who the person acts as.
    pub profile: Profile,
    /// How the person authenticated.
    pub auth: Auth,
}

/// Longest accepted eIDAS `PersonIdentifier`, in bytes.
const MAX_PERSON_IDENTIFIER: usize = 256;

/// Builds the principal from the attributes of one login.
///
/// Empty values (after trimming) count as absent; a single-valued attribute with more than
/// one distinct value is an error rather than a silent choice; attributes outside the
/// schema are ignored.
pub fn normalize(
    attributes: Vec<(String, Vec<String>)>,
    source: &Source<'_>,
    mapping: &Mapping,
) -> Result<Principal, Error> {
    let loa = Loa::from_source(source.method, source.level)?;
    let idp = source.idp;
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, vals) in attributes {
        if mapping.drop.contains(&name) {
            continue;
        }
        let canonical = mapping.rename.get(&name).cloned().unwrap_or(name);
        if mapping.drop.contains(&canonical) {
            continue;
        }
        let slot = values.entry(canonical).or_default();
        for mut v in vals {
            let trimmed = v.trim();
            if trimmed.is_empty() || slot.iter().any(|s| s == trimmed) {
                continue;
            }
            // The value is kept as it came unless trimming changed it: no copy per value
            // (issue 20).
            if trimmed.len() != v.len() {
                v = trimmed.to_owned();
            }
            slot.push(v);
        }
    }
    let single = |name: &str| -> Result<Option<String>, Error> {
        match values.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(one.clone())),
            Some(_) => Err(Error::MultipleValues {
                attribute: name.to_owned(),
                idp: idp.to_owned(),
            }),
        }
    };
    // A wallet PID names the person by the Italian tax code when it has one, else by the
    // EU personal administrative number, read as an eIDAS person identifier.
    let subject_attr = if source.method == Method::Wallet
        && values.get(attr::FISCAL_NUMBER).is_none_or(Vec::is_empty)
    {
        attr::PERSON_IDENTIFIER
    } else {
        source.method.subject_attribute()
    };
    for name in std::iter::once(subject_attr).chain(mapping.require.iter().map(String::as_str)) {
        if values.get(name).is_none_or(Vec::is_empty) {
            return Err(Error::MissingAttribute {
                attribute: name.to_owned(),
                idp: idp.to_owned(),
            });
        }
    }
    let subject = single(subject_attr)?.unwrap_or_default();
    let sub = if subject_attr == attr::PERSON_IDENTIFIER {
        if subject.len() > MAX_PERSON_IDENTIFIER
            || subject.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::InvalidPersonIdentifier {
                idp: idp.to_owned(),
            });
        }
        format!("EIDAS:{subject}")
    } else {
        let code = normalize_fiscal_code(&subject).map_err(|reason| Error::InvalidFiscalCode {
            idp: idp.to_owned(),
            reason,
        })?;
        format!("TINIT-{code}")
    };
    let birthdate = single(attr::DATE_OF_BIRTH)?;
    if let Some(d) = &birthdate {
        if !is_iso_date(d) {
            return Err(Error::InvalidAttribute {
                attribute: attr::DATE_OF_BIRTH.to_owned(),
                idp: idp.to_owned(),
            });
        }
    }
    let legal = LegalPerson {
        company_name: single(attr::COMPANY_NAME)?,
        iva_code: single(attr::IVA_CODE)?,
        company_fiscal_number: single(attr::COMPANY_FISCAL_NUMBER)?,
        purpose: single(attr::PURPOSE)?,
    };
    let legal_person = (legal != LegalPerson::default()).then_some(legal);
    Ok(Principal {
        sub,
        profile: Profile::derive(legal_person.as_ref()),
        given_name: single(attr::NAME)?,
        family_name: single(attr::FAMILY_NAME)?,
        birthdate,
        email: single(attr::EMAIL)?,
        phone_number: single(attr::MOBILE_PHONE)?,
        address: single(attr::ADDRESS)?.map(|formatted| Address { formatted }),
        legal_person,
        auth: Auth {
            method: source.method,
            idp: idp.to_owned(),
            level: source.level.trim().to_owned(),
            loa,
            auth_time: source.auth_time,
            sid: source.session_id.to_owned(),
        },
    })
}

/// `YYYY-MM-DD` with a plausible month and day (no calendar arithmetic).
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    matches!(
        (num(0..4), num(5..7), num(8..10)),
        (Some(_), Some(m), Some(d)) if (1..=12).contains(&m) && (1..=31).contains(&d)
    )
}
