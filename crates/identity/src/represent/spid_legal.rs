//! The SPID legal-person source: a login with a SPID identity for a legal person
//! (`spid:Purpose` `LP` or `PG`, AgID Avviso SPID n. 18 v2) whose assertion carries the
//! company's `ivaCode` or `companyFiscalNumber` makes its holder the company's legal
//! representative, for the services this source is configured for and for as long as the
//! login lasts. The assertion was verified by the SAML layer; this module only reads the
//! normalized attributes, so nothing here can come from a client.

use std::collections::BTreeSet;

use super::{
    CompanyId, Error, Kind, Party, Representation, Representations, Source, SourceKind,
    valid_company_number,
};
use crate::{Principal, Profile};

/// The source, as configured: its id, the services it covers and how long the
/// representation lasts after the login (the session's own expiry bounds it too).
#[derive(Debug, Clone)]
pub struct SpidLegalPerson {
    id: String,
    services: BTreeSet<String>,
    ttl: u64,
}

impl SpidLegalPerson {
    /// A source with id `id` for `services`, valid `ttl` seconds after the login.
    #[must_use]
    pub fn new(id: &str, services: BTreeSet<String>, ttl: u64) -> SpidLegalPerson {
        SpidLegalPerson {
            id: id.to_owned(),
            services,
            ttl,
        }
    }
}

/// `VATIT-12345678901`, `TINIT-12345678901` or the bare 11 digits, as SPID IdPs write them.
fn company_number(value: &str) -> Option<String> {
    let digits = value
        .strip_prefix("VATIT-")
        .or_else(|| value.strip_prefix("TINIT-"))
        .unwrap_or(value);
    valid_company_number(digits).then(|| digits.to_owned())
}

impl Source for SpidLegalPerson {
    /// The delegate's own login.
    type Input<'a> = &'a Principal;

    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> SourceKind {
        SourceKind::SpidLegalPerson
    }

    fn verify(&self, login: &Principal, _now: u64) -> Result<Representations, Error> {
        let mut records = Vec::new();
        let legal = login.legal_person.as_ref();
        // Only a legal-person identity: a professional one (P, PF, PX) names a company the
        // person works for, not one they may act for.
        let is_legal = login.profile == Profile::Business
            && legal.is_some_and(|l| matches!(l.purpose.as_deref(), Some("LP" | "PG")));
        if let (true, Some(legal)) = (is_legal, legal) {
            let vat = legal.iva_code.as_deref().map(company_number);
            let fiscal = legal.company_fiscal_number.as_deref().map(company_number);
            // A malformed identifier is refused, never skipped to the other one.
            if vat == Some(None) || fiscal == Some(None) {
                return Err(Error::Schema {
                    at: "login.ivaCode/companyFiscalNumber".to_owned(),
                    reason: "not 11 digits with a valid check digit",
                });
            }
            let id = match (vat.flatten(), fiscal.flatten()) {
                (Some(v), _) => Some(CompanyId::Vat(v)),
                (None, Some(f)) => Some(CompanyId::FiscalNumber(f)),
                (None, None) => None,
            };
            if let Some(id) = id {
                let party = Party::Company {
                    id,
                    name: legal
                        .company_name
                        .clone()
                        .filter(|n| n.len() <= 256 && !n.chars().any(char::is_control)),
                };
                let start = login.auth.auth_time;
                records.push(Representation {
                    kind: Kind::LegalRepresentative,
                    delegate: login.sub.clone(),
                    reference: format!("spid:{}", party.sub()),
                    party,
                    services: self.services.clone(),
                    not_before: start,
                    not_after: start.saturating_add(self.ttl),
                    source: self.id.clone(),
                });
            }
        }
        Representations::index(&self.id, None, records)
    }
}
