//! How a person authenticated: the one list of login methods, below both the level scale
//! (`loa`, which maps each method's levels) and the principal (`principal`).

use serde::{Deserialize, Serialize};

use crate::attr;

/// How the person authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// SPID (Sistema Pubblico di Identità Digitale).
    Spid,
    /// CIE (Carta d'Identità Elettronica), CieID.
    Cie,
    /// eIDAS, through the Italian node FICEP.
    Eidas,
    /// CNS (Carta Nazionale dei Servizi), client certificate.
    Cns,
    /// A transitional legacy credential.
    Legacy,
    /// A Person Identification Data credential presented from a European Digital Identity
    /// Wallet or the IT-Wallet (OpenID4VP).
    Wallet,
}

impl Method {
    /// The claim value: `spid`, `cie`, `eidas`, `cns` or `legacy`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Spid => "spid",
            Method::Cie => "cie",
            Method::Eidas => "eidas",
            Method::Cns => "cns",
            Method::Legacy => "legacy",
            Method::Wallet => "wallet",
        }
    }

    /// The attribute every login of this method must carry to build `sub`.
    #[must_use]
    pub fn subject_attribute(self) -> &'static str {
        match self {
            Method::Eidas => attr::PERSON_IDENTIFIER,
            _ => attr::FISCAL_NUMBER,
        }
    }
}
