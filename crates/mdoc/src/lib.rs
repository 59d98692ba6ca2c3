//! ISO/IEC 18013-5 mdoc (`mso_mdoc`) for a verifier: one `DeviceResponse` in, the issuer's
//! disclosed elements out, or a typed refusal.
//!
//! - [`cbor::parse`]: the one reader of untrusted CBOR here. ciborium-ll tokenizes (headers
//!   and offsets only); our builder refuses indefinite lengths, duplicate map keys, nesting
//!   past a limit, lengths beyond the remaining input, and trailing bytes, and records each
//!   item's byte span (digests are over the bytes as received, never a re-encoding).
//! - [`DeviceResponse::parse`], [`DeviceResponse::issuer_x5chain`] (for the caller's X.509
//!   trust decision), then [`DeviceResponse::verify`]: the issuer's COSE_Sign1 over the MSO
//!   with the key the caller trusts, `digestAlgorithm` SHA-256, `docType`, `validityInfo`,
//!   every IssuerSignedItem's digest, and the device's COSE_Sign1 over
//!   `DeviceAuthentication` with the OpenID4VP 1.0 session transcript (so a response made
//!   for another verifier, request or nonce fails).
//!
//! Invariants, stated as absences: no key from the message (the issuer key is the caller's;
//! the device key only from the signed MSO); no element without its digest; no MAC device
//! authentication; no unbounded input; no I/O, no clock, no panic on attacker bytes.

pub mod cbor;
mod cose;
mod error;
mod response;
mod tdate;

pub use error::Error;
pub use response::{DeviceResponse, Expect, Limits, MsoStatus, Verified, session_transcript};
