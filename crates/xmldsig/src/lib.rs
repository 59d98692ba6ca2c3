//! One enveloped XML signature on one given element, verified with keys from configuration
//! only; and the same profile for signing.
//!
//! [`verify`] answers one question: *did one of these trusted keys sign exactly this
//! element?* On success it returns a [`Verified`] proof that nothing else can construct and
//! that points at exactly the verified element; the SAML layer reads identities only through
//! it. Everything outside the narrow SAML signature profile is refused, not ignored.
//!
//! Invariants, stated as absences:
//! - no key ever comes from the message: `KeyInfo` can only select among the caller's keys;
//! - no SHA-1, MD5, DSA or HMAC algorithm has a variant, so none can be accepted;
//! - no reference other than `#<ID of the signed element>`, no transform other than
//!   enveloped-signature followed by exclusive C14N, no `ds:Object`, no second signature;
//! - no second XML parser: the digest is computed over the very tree the caller reads.
//!
//! Crypto is ring; certificates are parsed with x509-parser.

mod alg;
mod error;
mod key;
mod sign;
mod verify;

pub use alg::{
    DSIG_NS, DigestMethod, ENVELOPED, EXC_C14N, EXC_C14N_WITH_COMMENTS, KeyKind, SignatureMethod,
    is_weak_algorithm,
};
pub use error::Error;
pub use key::{KeyError, SigningKey, TrustedKey, decode_base64_compact};
pub use sign::sign_enveloped;
pub use verify::{MAX_INCLUSIVE_PREFIXES, Policy, Verified, verify};
