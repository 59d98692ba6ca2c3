//! The one error type of the crate.

use std::fmt;

/// Why a DeviceResponse was refused. [`Error::code`] is stable; texts never carry values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Larger than [`crate::Limits::max_bytes`].
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not strict CBOR (indefinite length, duplicate key, trailing bytes, too deep ...).
    Cbor {
        /// Which rule failed.
        reason: &'static str,
    },
    /// Valid CBOR of the wrong shape for a DeviceResponse, a document, the MSO or COSE.
    Structure {
        /// Which rule failed.
        reason: &'static str,
    },
    /// A COSE algorithm other than ES256 / ES384, or one that does not fit the key.
    Alg,
    /// The issuer's signature over the MSO does not verify with the caller's key.
    IssuerSignature,
    /// The device signature does not verify over this request's session transcript.
    DeviceSignature,
    /// `digestAlgorithm` is not SHA-256.
    DigestAlg,
    /// An element's digest is not the one the MSO lists.
    Digest,
    /// The same digest id or element twice.
    Duplicate,
    /// `docType` differs between document and MSO, or is not the one asked for.
    DocType,
    /// `validUntil` has passed.
    Expired,
    /// `validFrom` is in the future.
    NotYetValid,
}

impl Error {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "mdoc.too_large",
            Error::Cbor { .. } => "mdoc.cbor",
            Error::Structure { .. } => "mdoc.structure",
            Error::Alg => "mdoc.alg",
            Error::IssuerSignature => "mdoc.issuer_signature",
            Error::DeviceSignature => "mdoc.device_signature",
            Error::DigestAlg => "mdoc.digest_alg",
            Error::Digest => "mdoc.digest",
            Error::Duplicate => "mdoc.duplicate",
            Error::DocType => "mdoc.doctype",
            Error::Expired => "mdoc.expired",
            Error::NotYetValid => "mdoc.not_yet_valid",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge { len, max } => {
                write!(f, "DeviceResponse of {len} bytes exceeds {max}")
            }
            Error::Cbor { reason } => write!(f, "invalid CBOR: {reason}"),
            Error::Structure { reason } => write!(f, "invalid mdoc structure: {reason}"),
            Error::Alg => f.write_str("COSE algorithm not allowed or not fitting the key"),
            Error::IssuerSignature => f.write_str("issuer signature over the MSO does not verify"),
            Error::DeviceSignature => {
                f.write_str("device signature does not verify over this session transcript")
            }
            Error::DigestAlg => f.write_str("digestAlgorithm must be SHA-256"),
            Error::Digest => f.write_str("an element does not match its digest in the MSO"),
            Error::Duplicate => f.write_str("the same digest id or element twice"),
            Error::DocType => f.write_str("docType mismatch"),
            Error::Expired => f.write_str("mdoc expired"),
            Error::NotYetValid => f.write_str("mdoc not yet valid"),
        }
    }
}

impl std::error::Error for Error {}
