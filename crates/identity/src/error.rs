//! The one error type of the crate.

use std::fmt;

/// Why an identity could not be normalized or a token could not be minted.
///
/// Every variant has a stable machine-readable [`Error::code`]; the `Display` text is for
/// logs and never contains attribute values (only attribute names, IdP ids and levels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A required attribute is absent or empty after mapping.
    MissingAttribute {
        /// Canonical attribute name (after renaming).
        attribute: String,
        /// Entity id of the IdP that sent the assertion.
        idp: String,
    },
    /// A single-valued attribute came with more than one distinct value.
    MultipleValues {
        /// Canonical attribute name (after renaming).
        attribute: String,
        /// Entity id of the IdP that sent the assertion.
        idp: String,
    },
    /// The fiscal code is malformed or its check character is wrong.
    InvalidFiscalCode {
        /// Entity id of the IdP that sent the assertion.
        idp: String,
        /// Which rule failed (no value is echoed).
        reason: &'static str,
    },
    /// An attribute value does not have the expected form (e.g. a date not `YYYY-MM-DD`).
    InvalidAttribute {
        /// Canonical attribute name (after renaming).
        attribute: String,
        /// Entity id of the IdP that sent the assertion.
        idp: String,
    },
    /// The eIDAS `PersonIdentifier` is empty, too long or contains control characters.
    InvalidPersonIdentifier {
        /// Entity id of the IdP (FICEP) that sent the assertion.
        idp: String,
    },
    /// The source level (e.g. an `AuthnContextClassRef`) is not known for the method.
    UnknownLevel {
        /// Authentication method, as in the `auth.method` claim.
        method: &'static str,
        /// The level as received.
        level: String,
    },
    /// A key id is empty, too long or uses characters outside `[A-Za-z0-9._-]`.
    InvalidKid,
    /// The key material was refused by ring (not PKCS#8, wrong curve, inconsistent).
    InvalidKey {
        /// Key id the material was offered for.
        kid: String,
    },
    /// A key with this id is already in the key set.
    DuplicateKid {
        /// The duplicate key id.
        kid: String,
    },
    /// No key with this id is in the key set.
    UnknownKid {
        /// The missing key id.
        kid: String,
    },
    /// The key set has no active key, or a second active key was offered.
    ActiveKey {
        /// What is wrong.
        reason: &'static str,
    },
    /// A key was asked to become active without having been published first.
    NotPublished {
        /// The key id.
        kid: String,
    },
    /// The random source or the signer failed.
    Crypto,
    /// The claims could not be serialized (should not happen).
    Serialize,
}

impl Error {
    /// Stable, machine-readable code for logs, metrics and error pages.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingAttribute { .. } => "identity.missing_attribute",
            Error::MultipleValues { .. } => "identity.multiple_values",
            Error::InvalidFiscalCode { .. } => "identity.invalid_fiscal_code",
            Error::InvalidAttribute { .. } => "identity.invalid_attribute",
            Error::InvalidPersonIdentifier { .. } => "identity.invalid_person_identifier",
            Error::UnknownLevel { .. } => "identity.unknown_level",
            Error::InvalidKid => "token.invalid_kid",
            Error::InvalidKey { .. } => "token.invalid_key",
            Error::DuplicateKid { .. } => "token.duplicate_kid",
            Error::UnknownKid { .. } => "token.unknown_kid",
            Error::ActiveKey { .. } => "token.active_key",
            Error::NotPublished { .. } => "token.not_published",
            Error::Crypto => "token.crypto",
            Error::Serialize => "token.serialize",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingAttribute { attribute, idp } => {
                write!(f, "required attribute {attribute} missing from IdP {idp}")
            }
            Error::MultipleValues { attribute, idp } => {
                write!(
                    f,
                    "attribute {attribute} from IdP {idp} has more than one value"
                )
            }
            Error::InvalidFiscalCode { idp, reason } => {
                write!(f, "invalid fiscal code from IdP {idp}: {reason}")
            }
            Error::InvalidAttribute { attribute, idp } => {
                write!(
                    f,
                    "attribute {attribute} from IdP {idp} has an invalid form"
                )
            }
            Error::InvalidPersonIdentifier { idp } => {
                write!(f, "invalid eIDAS PersonIdentifier from IdP {idp}")
            }
            Error::UnknownLevel { method, level } => {
                write!(f, "unknown level {level:?} for method {method}")
            }
            Error::InvalidKid => f.write_str("invalid key id"),
            Error::InvalidKey { kid } => write!(f, "key {kid} refused"),
            Error::DuplicateKid { kid } => write!(f, "key id {kid} already present"),
            Error::UnknownKid { kid } => write!(f, "no key with id {kid}"),
            Error::ActiveKey { reason } => write!(f, "active key: {reason}"),
            Error::NotPublished { kid } => {
                write!(f, "key {kid} must be published before it becomes active")
            }
            Error::Crypto => f.write_str("random source or signer failed"),
            Error::Serialize => f.write_str("claims serialization failed"),
        }
    }
}

impl std::error::Error for Error {}
