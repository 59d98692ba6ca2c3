//! The one error type of the crate.

use std::fmt;

/// Why a presentation, a status list or a PID was refused.
///
/// [`Error::code`] is stable (metric labels, logs, error pages); a JOSE failure keeps the
/// `jose.*` code of its cause, and the `Display` text says which token it was. Texts name
/// the rule and at most a claim name, never a claim value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A size bound of [`crate::Limits`] was exceeded before any parsing.
    TooLarge {
        /// Which part: "presentation", "disclosure", "status list".
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More disclosures than [`crate::Limits::max_disclosures`].
    TooManyDisclosures {
        /// The limit.
        max: usize,
    },
    /// Not `<issuer JWT>~<disclosure>~...~<KB-JWT>` (an empty part in the middle, no `~`).
    Malformed,
    /// A disclosure is not canonical base64url of a JSON array `[salt, name, value]` or
    /// `[salt, value]` with string salt and name.
    Disclosure {
        /// Which rule failed.
        reason: &'static str,
    },
    /// The same disclosure twice in one presentation.
    DuplicateDisclosure,
    /// The same digest twice in the signed payload or in the disclosures.
    DuplicateDigest,
    /// A disclosure whose digest the payload does not contain (it was not issued with this
    /// credential, or it was tampered with).
    UnreferencedDisclosure,
    /// A disclosed name that is already a plain claim of the same object.
    ClaimCollision {
        /// The claim name (truncated).
        name: String,
    },
    /// An object-property disclosure referenced from an array, or an array-element
    /// disclosure referenced from `_sd`.
    DisclosureKind,
    /// A reserved name disclosed (`_sd`, `...`), or a claim that SD-JWT VC forbids to be
    /// selectively disclosable (`iss`, `nbf`, `exp`, `cnf`, `vct`, `status`) found in a
    /// disclosure at the top level; or `...`, `_sd`, `_sd_alg` in the wrong place.
    ReservedName {
        /// The name.
        name: &'static str,
    },
    /// `_sd_alg` is not `sha-256` (the only digest accepted).
    SdAlg,
    /// Disclosures nested deeper than [`crate::Limits::max_depth`].
    Depth,
    /// A JWS-level refusal of the issuer JWT, the KB-JWT or the status list token.
    Jose {
        /// Which token: "issuer JWT", "KB-JWT", "status list".
        what: &'static str,
        /// The cause.
        cause: jose::Error,
    },
    /// No Key Binding JWT: the presentation ends with `~`. A verifier that does not bind
    /// the presentation to the holder accepts a replayed credential.
    KbMissing,
    /// The credential has no usable holder key (`cnf.jwk` missing or not a public key this
    /// crate verifies with).
    Cnf {
        /// Which rule failed.
        reason: &'static str,
    },
    /// A required claim is missing or of the wrong type.
    Claim {
        /// Which token: "issuer JWT", "KB-JWT", "status list".
        what: &'static str,
        /// The claim.
        claim: &'static str,
    },
    /// The KB-JWT `nonce` is not the one of this request.
    Nonce,
    /// The KB-JWT `aud` is not this verifier.
    Audience,
    /// The KB-JWT `iat` is outside the accepted window.
    KbIat,
    /// The KB-JWT `sd_hash` is not the digest of the presented SD-JWT.
    SdHash,
    /// `vct` is not one the caller accepts.
    Vct,
    /// `iss` is not the issuer the caller expected.
    Issuer,
    /// `exp` has passed (beyond the allowed skew).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the allowed skew).
    NotYetValid,
    /// The credential has no `status` reference and the caller requires one.
    StatusMissing,
    /// `status.status_list` is not `{"idx": <uint>, "uri": <https URL>}`.
    StatusRef {
        /// Which rule failed.
        reason: &'static str,
    },
    /// The status list token is malformed (`bits`, `lst`, compression, `sub`).
    StatusList {
        /// Which rule failed.
        reason: &'static str,
    },
    /// The status list token's `exp` has passed.
    StatusListExpired,
    /// The credential's index is beyond the end of the list.
    StatusIndex,
    /// The credential is revoked (status value 1, INVALID).
    Revoked,
    /// The credential is suspended (status value 2, SUSPENDED).
    Suspended,
    /// Any status value other than 0 (VALID): unknown values are refused.
    StatusOther {
        /// The value.
        value: u8,
    },
    /// A PID claim is missing, of the wrong type, or ambiguous.
    Pid {
        /// The claim.
        claim: &'static str,
        /// Which rule failed.
        reason: &'static str,
    },
}

impl Error {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "sdjwt.too_large",
            Error::TooManyDisclosures { .. } => "sdjwt.too_many_disclosures",
            Error::Malformed => "sdjwt.malformed",
            Error::Disclosure { .. } => "sdjwt.disclosure",
            Error::DuplicateDisclosure => "sdjwt.duplicate_disclosure",
            Error::DuplicateDigest => "sdjwt.duplicate_digest",
            Error::UnreferencedDisclosure => "sdjwt.unreferenced_disclosure",
            Error::ClaimCollision { .. } => "sdjwt.claim_collision",
            Error::DisclosureKind => "sdjwt.disclosure_kind",
            Error::ReservedName { .. } => "sdjwt.reserved_name",
            Error::SdAlg => "sdjwt.sd_alg",
            Error::Depth => "sdjwt.depth",
            Error::Jose { cause, .. } => cause.code(),
            Error::KbMissing => "sdjwt.kb_missing",
            Error::Cnf { .. } => "sdjwt.cnf",
            Error::Claim { .. } => "sdjwt.claim",
            Error::Nonce => "sdjwt.nonce",
            Error::Audience => "sdjwt.audience",
            Error::KbIat => "sdjwt.kb_iat",
            Error::SdHash => "sdjwt.sd_hash",
            Error::Vct => "sdjwt.vct",
            Error::Issuer => "sdjwt.issuer",
            Error::Expired => "sdjwt.expired",
            Error::NotYetValid => "sdjwt.not_yet_valid",
            Error::StatusMissing => "sdjwt.status_missing",
            Error::StatusRef { .. } => "sdjwt.status_ref",
            Error::StatusList { .. } => "sdjwt.status_list",
            Error::StatusListExpired => "sdjwt.status_list_expired",
            Error::StatusIndex => "sdjwt.status_index",
            Error::Revoked => "sdjwt.revoked",
            Error::Suspended => "sdjwt.suspended",
            Error::StatusOther { .. } => "sdjwt.status_other",
            Error::Pid { .. } => "sdjwt.pid",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge { what, len, max } => write!(f, "{what} of {len} bytes exceeds {max}"),
            Error::TooManyDisclosures { max } => write!(f, "more than {max} disclosures"),
            Error::Malformed => f.write_str("not an SD-JWT presentation (JWT~disclosures~KB-JWT)"),
            Error::Disclosure { reason } => write!(f, "invalid disclosure: {reason}"),
            Error::DuplicateDisclosure => f.write_str("the same disclosure presented twice"),
            Error::DuplicateDigest => f.write_str("the same digest appears twice"),
            Error::UnreferencedDisclosure => {
                f.write_str("a disclosure is not referenced by the signed credential")
            }
            Error::ClaimCollision { name } => {
                write!(f, "disclosed claim {name:?} is already a plain claim")
            }
            Error::DisclosureKind => {
                f.write_str("object disclosure in an array or array disclosure in _sd")
            }
            Error::ReservedName { name } => write!(f, "{name:?} may not be disclosed or used here"),
            Error::SdAlg => f.write_str("_sd_alg must be sha-256"),
            Error::Depth => f.write_str("disclosures nested too deeply"),
            Error::Jose { what, cause } => write!(f, "{what}: {cause}"),
            Error::KbMissing => f.write_str("no Key Binding JWT"),
            Error::Cnf { reason } => write!(f, "holder key (cnf.jwk): {reason}"),
            Error::Claim { what, claim } => write!(f, "{what}: claim {claim} missing or invalid"),
            Error::Nonce => f.write_str("KB-JWT nonce is not the one of this request"),
            Error::Audience => f.write_str("KB-JWT aud is not this verifier"),
            Error::KbIat => f.write_str("KB-JWT iat is outside the accepted window"),
            Error::SdHash => f.write_str("KB-JWT sd_hash does not match the presented SD-JWT"),
            Error::Vct => f.write_str("credential type (vct) not accepted"),
            Error::Issuer => f.write_str("credential issuer is not the expected one"),
            Error::Expired => f.write_str("credential expired"),
            Error::NotYetValid => f.write_str("credential not yet valid"),
            Error::StatusMissing => f.write_str("credential carries no status reference"),
            Error::StatusRef { reason } => write!(f, "invalid status reference: {reason}"),
            Error::StatusList { reason } => write!(f, "invalid status list: {reason}"),
            Error::StatusListExpired => f.write_str("status list expired"),
            Error::StatusIndex => f.write_str("status index beyond the end of the list"),
            Error::Revoked => f.write_str("credential revoked"),
            Error::Suspended => f.write_str("credential suspended"),
            Error::StatusOther { value } => write!(f, "credential status {value} is not VALID"),
            Error::Pid { claim, reason } => write!(f, "PID claim {claim}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// At most this many characters of an attacker-chosen value go into an error.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}
