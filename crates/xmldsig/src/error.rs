//! The verifier's and signer's error type.

use std::fmt;

/// Why a signature was not accepted (or could not be made).
///
/// Each variant is one rule of the narrow profile this crate enforces; the variant names the
/// condition found. [`Error::code`] is a stable label for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The caller supplied no trusted key. Verification never "succeeds" without a key.
    NoTrustedKeys,
    /// The element to verify has no non-empty `ID` attribute, so nothing can reference it.
    MissingId,
    /// The element has no `ds:Signature` child (signature exclusion).
    Unsigned,
    /// The element has more than one `ds:Signature` child.
    MultipleSignatures,
    /// `ds:Signature` or one of its parts does not have exactly the structure of the profile:
    /// an unexpected, missing, repeated or misplaced element, or text where none belongs.
    /// `ds:Object`, `ds:Manifest` and `RetrievalMethod` end up here.
    UnexpectedStructure {
        /// Which part of the signature was wrong.
        context: &'static str,
    },
    /// `SignedInfo` has zero or several `Reference`s; exactly one is accepted.
    ReferenceCount,
    /// The Reference URI is not `#` followed by the signed element's own `ID` (empty URIs,
    /// XPointer expressions and references to other elements are refused).
    ReferenceUriMismatch,
    /// The transforms are not exactly enveloped-signature then exclusive C14N.
    UnsupportedTransforms,
    /// The canonicalization method of `SignedInfo` is not exclusive C14N.
    UnsupportedCanonicalization,
    /// An `InclusiveNamespaces` PrefixList with more than
    /// [`crate::MAX_INCLUSIVE_PREFIXES`] entries, or an entry that is neither an NCName nor
    /// `#default` (issue 17: the list's length multiplied the canonicalization work).
    InvalidPrefixList,
    /// The canonical form of the signed element would be out of proportion to its source
    /// (`saml_xml::Error::CanonicalFormTooLarge`): namespace declarations re-rendered on many
    /// elements, an output-amplification attack.
    CanonicalFormTooLarge,
    /// SHA-1, MD5, DSA or any HMAC was named: refused by policy, whatever the key.
    WeakAlgorithm,
    /// A signature or digest algorithm outside the accepted set, or not allowed by the
    /// [`crate::Policy`].
    UnsupportedAlgorithm,
    /// `DigestValue` or `SignatureValue` is not valid base64.
    InvalidBase64,
    /// The digest of the canonicalized element differs from `DigestValue`: the signed content
    /// was changed.
    DigestMismatch,
    /// `KeyInfo` carries a certificate that is not one of the trusted keys (key substitution).
    UntrustedKeyInfo,
    /// No trusted key has the type the signature method needs.
    NoCompatibleKey,
    /// The signature value does not verify with any candidate trusted key.
    BadSignature,
    /// Signing: the method does not suit the key.
    KeyMethodMismatch,
    /// Signing: the element to sign was not found, or the document did not parse.
    SigningTarget,
    /// Signing: the cryptographic library refused to sign.
    SigningFailed,
}

impl Error {
    /// A short, stable identifier for logs and metric labels. The set is closed.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoTrustedKeys => "dsig_no_trusted_keys",
            Self::MissingId => "dsig_missing_id",
            Self::Unsigned => "dsig_unsigned",
            Self::MultipleSignatures => "dsig_multiple_signatures",
            Self::UnexpectedStructure { .. } => "dsig_unexpected_structure",
            Self::ReferenceCount => "dsig_reference_count",
            Self::ReferenceUriMismatch => "dsig_reference_uri_mismatch",
            Self::UnsupportedTransforms => "dsig_unsupported_transforms",
            Self::UnsupportedCanonicalization => "dsig_unsupported_canonicalization",
            Self::InvalidPrefixList => "dsig_invalid_prefix_list",
            Self::CanonicalFormTooLarge => "dsig_c14n_too_large",
            Self::WeakAlgorithm => "dsig_weak_algorithm",
            Self::UnsupportedAlgorithm => "dsig_unsupported_algorithm",
            Self::InvalidBase64 => "dsig_invalid_base64",
            Self::DigestMismatch => "dsig_digest_mismatch",
            Self::UntrustedKeyInfo => "dsig_untrusted_key_info",
            Self::NoCompatibleKey => "dsig_no_compatible_key",
            Self::BadSignature => "dsig_bad_signature",
            Self::KeyMethodMismatch => "dsig_key_method_mismatch",
            Self::SigningTarget => "dsig_signing_target",
            Self::SigningFailed => "dsig_signing_failed",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTrustedKeys => f.write_str("no trusted key configured"),
            Self::MissingId => f.write_str("signed element has no ID"),
            Self::Unsigned => f.write_str("element is not signed"),
            Self::MultipleSignatures => f.write_str("element has more than one signature"),
            Self::UnexpectedStructure { context } => {
                write!(f, "signature structure not accepted: {context}")
            }
            Self::ReferenceCount => f.write_str("signature must have exactly one reference"),
            Self::ReferenceUriMismatch => {
                f.write_str("signature reference does not point at the signed element")
            }
            Self::UnsupportedTransforms => {
                f.write_str("transforms must be enveloped-signature then exclusive C14N")
            }
            Self::UnsupportedCanonicalization => f.write_str("SignedInfo must use exclusive C14N"),
            Self::InvalidPrefixList => {
                f.write_str("InclusiveNamespaces PrefixList too long or not made of prefixes")
            }
            Self::CanonicalFormTooLarge => {
                f.write_str("canonical form out of proportion to the signed element")
            }
            Self::WeakAlgorithm => f.write_str("weak algorithm (SHA-1, MD5, DSA or HMAC) refused"),
            Self::UnsupportedAlgorithm => f.write_str("algorithm not accepted"),
            Self::InvalidBase64 => f.write_str("invalid base64 in signature"),
            Self::DigestMismatch => f.write_str("signed content was modified (digest mismatch)"),
            Self::UntrustedKeyInfo => {
                f.write_str("KeyInfo names a certificate that is not trusted")
            }
            Self::NoCompatibleKey => f.write_str("no trusted key suits the signature method"),
            Self::BadSignature => f.write_str("signature value does not verify"),
            Self::KeyMethodMismatch => f.write_str("signature method does not suit the key"),
            Self::SigningTarget => f.write_str("element to sign not found"),
            Self::SigningFailed => f.write_str("signing failed"),
        }
    }
}

impl std::error::Error for Error {}
