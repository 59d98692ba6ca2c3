//! One ordered level-of-assurance scale and the mapping of every source level onto it.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::method::Method;

/// SPID `AuthnContextClassRef` for level 1.
pub const SPID_L1: &str = "https://www.spid.gov.it/SpidL1";
/// SPID `AuthnContextClassRef` for level 2.
pub const SPID_L2: &str = "https://www.spid.gov.it/SpidL2";
/// SPID `AuthnContextClassRef` for level 3.
pub const SPID_L3: &str = "https://www.spid.gov.it/SpidL3";
/// eIDAS level of assurance "low" (IANA LoA profile registry, eIDAS SAML message format).
pub const EIDAS_LOW: &str = "http://eidas.europa.eu/LoA/low";
/// eIDAS level of assurance "substantial".
pub const EIDAS_SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";
/// eIDAS level of assurance "high".
pub const EIDAS_HIGH: &str = "http://eidas.europa.eu/LoA/high";

/// The normalized level of assurance, ordered `Low < Substantial < High`.
///
/// The scale is the eIDAS one (Regulation (EU) 910/2014 art. 8, Implementing Regulation
/// (EU) 2015/1502), because every source declares its levels against it. Serialized as
/// `"low"`, `"substantial"`, `"high"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loa {
    /// eIDAS low.
    Low,
    /// eIDAS substantial.
    Substantial,
    /// eIDAS high.
    High,
}

impl Loa {
    /// The claim value: `"low"`, `"substantial"` or `"high"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Loa::Low => "low",
            Loa::Substantial => "substantial",
            Loa::High => "high",
        }
    }

    /// The eIDAS URI of this level.
    #[must_use]
    pub fn eidas_uri(self) -> &'static str {
        match self {
            Loa::Low => EIDAS_LOW,
            Loa::Substantial => EIDAS_SUBSTANTIAL,
            Loa::High => EIDAS_HIGH,
        }
    }

    /// Maps the level a source declared onto the scale. `level` is compared exactly (after
    /// trimming surrounding whitespace); an unknown level is an error, never a default.
    ///
    /// - **SPID** (`https://www.spid.gov.it/SpidL1|L2|L3`, the `AuthnContextClassRef` of the
    ///   SPID technical rules, AgID "Regole tecniche SPID", single sign-on section):
    ///   L1 → `Low`, L2 → `Substantial`, L3 → `High`. Source: DPCM 24 ottobre 2014 art. 6
    ///   defines the three SPID levels; SPID was notified under eIDAS (2019; OJ reference to
    ///   confirm) at *substantial* (L2) and *high* (L3). L1 → `Low` is our reading of the ISO/IEC
    ///   29115 correspondence in art. 6 — to confirm against the notification text.
    /// - **CIE** (CIE eID SAML, Ministero dell'Interno, "Protocolli di comunicazione": the
    ///   same `SpidL1|L2|L3` class refs; levels "basso", "significativo", "elevato"):
    ///   L1 → `Low`, L2 → `Substantial`, L3 → `High`. CIE was notified under eIDAS at
    ///   *high* (2019; OJ reference to confirm) for the card-based L3; L1/L2 correspondence to confirm.
    /// - **eIDAS / FICEP** (`http://eidas.europa.eu/LoA/low|substantial|high`, the
    ///   eIDAS SAML Message Format and the IANA LoA profiles registry): identity mapping,
    ///   per Implementing Regulation (EU) 2015/1502. FICEP answers Italian SPs with the
    ///   SPID class refs instead (`SpidL1|L2|L3` for low/substantial/high): accepted too.
    /// - **CNS** (Carta Nazionale dei Servizi, DPR 2 marzo 2004 n. 117; CAD art. 64 and 66):
    ///   the source level is ignored and the result is `Substantial`: a card issued by an
    ///   administration after identifying the holder, whose private key is unlocked by a PIN
    ///   (possession and knowledge, the two factors Implementing Regulation (EU) 2015/1502
    ///   §2.2.1 asks for at *substantial*); not `High`, because CNS is not notified under
    ///   eIDAS and the *high* requirements are not assessed for every issuer. Our reading,
    ///   to confirm with AgID (docs/IDENTITY.md).
    /// - **legacy**: always `Low`; a transitional credential never carries more.
    pub fn from_source(method: Method, level: &str) -> Result<Loa, Error> {
        let level = level.trim();
        let found = match method {
            Method::Spid | Method::Cie => match level {
                SPID_L1 => Some(Loa::Low),
                SPID_L2 => Some(Loa::Substantial),
                SPID_L3 => Some(Loa::High),
                _ => None,
            },
            // FICEP, the Italian eIDAS node, speaks to SPs as a SPID IdP and translates the
            // foreign node's eIDAS level into the SPID class refs (low → SpidL1, substantial →
            // SpidL2, high → SpidL3); the eIDAS URIs are accepted as well.
            Method::Eidas => match level {
                EIDAS_LOW | SPID_L1 => Some(Loa::Low),
                EIDAS_SUBSTANTIAL | SPID_L2 => Some(Loa::Substantial),
                EIDAS_HIGH | SPID_L3 => Some(Loa::High),
                _ => None,
            },
            Method::Cns => Some(Loa::Substantial),
            Method::Legacy => Some(Loa::Low),
            // A PID is issued at LoA high (eIDAS art. 5a(11)); the broker builds a wallet
            // principal only from a PID whose issuer signature chained to its configured trust
            // and whose key binding matched this very request.
            Method::Wallet => Some(Loa::High),
        };
        found.ok_or_else(|| Error::UnknownLevel {
            method: method.as_str(),
            level: level.to_owned(),
        })
    }
}
