//! The one error type of the crate.

use std::fmt;

/// Why a statement, a trust chain, a policy or a trust mark was refused.
///
/// [`Error::code`] is stable; a JOSE failure keeps the `jose.*` code of its cause, so a bad
/// hop signature reads `jose.signature` wherever it happens, and the `Display` text says
/// which document it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A JWS-level refusal (size, algorithm, `kid`, `typ`, signature ...).
    Jose {
        /// Which document: "entity configuration", "subordinate statement", "trust mark".
        what: &'static str,
        /// The entity the document is about, as far as known.
        entity: String,
        /// The cause.
        cause: jose::Error,
    },
    /// The Trust Anchor's Entity Configuration does not verify with the configured keys.
    TrustAnchorKeys {
        /// The Trust Anchor.
        anchor: String,
        /// The cause.
        cause: jose::Error,
    },
    /// A claim is missing, of the wrong type, or not allowed in this kind of statement.
    Claim {
        /// The claim.
        claim: &'static str,
        /// Which rule failed.
        reason: &'static str,
    },
    /// An Entity Identifier or endpoint that is not an `https` URL without query or fragment.
    EntityId {
        /// Which value.
        what: &'static str,
    },
    /// `iss` or `sub` is not the entity the statement was asked for.
    IssSubMismatch {
        /// What was expected, e.g. "iss = https://ta.example".
        expected: String,
    },
    /// `exp` is in the past (beyond the allowed skew).
    Expired {
        /// The entity the statement is about.
        entity: String,
    },
    /// `iat` is in the future (beyond the allowed skew).
    NotYetValid {
        /// The entity the statement is about.
        entity: String,
    },
    /// A `crit` claim: no extension claim is understood.
    Crit,
    /// No `authority_hints` in the Entity Configuration of a non-anchor entity.
    NoAuthorityHints {
        /// The entity.
        entity: String,
    },
    /// A superior publishes no usable `federation_fetch_endpoint`.
    NoFetchEndpoint {
        /// The superior.
        entity: String,
    },
    /// No path from the subject reaches a configured Trust Anchor.
    NoTrustAnchor {
        /// The subject.
        subject: String,
    },
    /// The path would have more intermediates than allowed.
    PathTooLong,
    /// The resolution asked for more documents than allowed.
    TooManyFetches {
        /// The limit.
        max: usize,
    },
    /// The caller could not fetch a document.
    FetchFailed {
        /// The URL asked for.
        url: String,
    },
    /// A `constraints` claim of the chain is not met.
    Constraint {
        /// Which constraint.
        reason: &'static str,
    },
    /// A metadata policy is malformed, combines operators illegally, or cannot be merged.
    Policy {
        /// Entity type and parameter, e.g. `openid_relying_party.grant_types`.
        at: String,
        /// Which rule failed.
        reason: &'static str,
    },
    /// An operator listed in `metadata_policy_crit` is not understood.
    PolicyCrit {
        /// The operator.
        operator: String,
    },
    /// The subject's metadata does not comply with the resolved policy.
    PolicyViolation {
        /// Entity type and parameter.
        at: String,
        /// Which operator refused it.
        operator: &'static str,
    },
    /// The trust mark's issuer is not listed by the Trust Anchor for its type, or the type
    /// is not listed at all.
    TrustMarkIssuer {
        /// The trust mark type.
        trust_mark_type: String,
    },
    /// The trust mark is malformed or is not about the expected entity.
    TrustMark {
        /// Which rule failed.
        reason: &'static str,
    },
    /// The trust mark type is owned (`trust_mark_owners`): delegation is not supported, so
    /// it is refused.
    TrustMarkDelegation,
    /// The resolver was fed when it was not waiting for a document, or after it finished.
    State,
    /// Our own Entity Configuration could not be built from the given settings.
    Config {
        /// Which setting.
        what: &'static str,
    },
}

impl Error {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Jose { cause, .. } => cause.code(),
            Error::TrustAnchorKeys { .. } => "oidfed.trust_anchor_keys",
            Error::Claim { .. } => "oidfed.claim",
            Error::EntityId { .. } => "oidfed.entity_id",
            Error::IssSubMismatch { .. } => "oidfed.iss_sub_mismatch",
            Error::Expired { .. } => "oidfed.expired",
            Error::NotYetValid { .. } => "oidfed.not_yet_valid",
            Error::Crit => "oidfed.crit",
            Error::NoAuthorityHints { .. } => "oidfed.no_authority_hints",
            Error::NoFetchEndpoint { .. } => "oidfed.no_fetch_endpoint",
            Error::NoTrustAnchor { .. } => "oidfed.no_trust_anchor",
            Error::PathTooLong => "oidfed.path_too_long",
            Error::TooManyFetches { .. } => "oidfed.too_many_fetches",
            Error::FetchFailed { .. } => "oidfed.fetch_failed",
            Error::Constraint { .. } => "oidfed.constraint",
            Error::Policy { .. } => "oidfed.policy",
            Error::PolicyCrit { .. } => "oidfed.policy_crit",
            Error::PolicyViolation { .. } => "oidfed.policy_violation",
            Error::TrustMarkIssuer { .. } => "oidfed.trust_mark_issuer",
            Error::TrustMark { .. } => "oidfed.trust_mark",
            Error::TrustMarkDelegation => "oidfed.trust_mark_delegation",
            Error::State => "oidfed.state",
            Error::Config { .. } => "oidfed.config",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Jose {
                what,
                entity,
                cause,
            } => write!(f, "{what} about {entity:?}: {cause}"),
            Error::TrustAnchorKeys { anchor, cause } => write!(
                f,
                "trust anchor {anchor:?}: entity configuration not signed by the configured keys: {cause}"
            ),
            Error::Claim { claim, reason } => write!(f, "claim {claim}: {reason}"),
            Error::EntityId { what } => {
                write!(f, "{what}: not an https URL without query or fragment")
            }
            Error::IssSubMismatch { expected } => {
                write!(f, "statement names the wrong entity: expected {expected}")
            }
            Error::Expired { entity } => write!(f, "statement about {entity:?} has expired"),
            Error::NotYetValid { entity } => {
                write!(f, "statement about {entity:?} is issued in the future")
            }
            Error::Crit => f.write_str("crit claim refused: no extension claim is understood"),
            Error::NoAuthorityHints { entity } => write!(
                f,
                "{entity:?} has no authority_hints and is not a configured trust anchor"
            ),
            Error::NoFetchEndpoint { entity } => {
                write!(f, "{entity:?} publishes no federation_fetch_endpoint")
            }
            Error::NoTrustAnchor { subject } => write!(
                f,
                "no trust chain from {subject:?} to a configured trust anchor"
            ),
            Error::PathTooLong => f.write_str("trust chain longer than allowed"),
            Error::TooManyFetches { max } => {
                write!(f, "trust chain resolution needed more than {max} documents")
            }
            Error::FetchFailed { url } => write!(f, "could not fetch {url}"),
            Error::Constraint { reason } => write!(f, "trust chain constraint not met: {reason}"),
            Error::Policy { at, reason } => write!(f, "metadata policy for {at}: {reason}"),
            Error::PolicyCrit { operator } => write!(
                f,
                "critical metadata policy operator {operator:?} is not understood"
            ),
            Error::PolicyViolation { at, operator } => {
                write!(f, "metadata {at} violates the policy operator {operator}")
            }
            Error::TrustMarkIssuer { trust_mark_type } => write!(
                f,
                "trust mark {trust_mark_type:?}: issuer not accredited by the trust anchor"
            ),
            Error::TrustMark { reason } => write!(f, "trust mark refused: {reason}"),
            Error::TrustMarkDelegation => {
                f.write_str("trust mark type has an owner; delegated trust marks are not supported")
            }
            Error::State => f.write_str("resolver fed out of turn"),
            Error::Config { what } => write!(f, "entity configuration setting {what} is invalid"),
        }
    }
}

impl std::error::Error for Error {}
