//! SD-JWT VC (`dc+sd-jwt`) for a verifier: one presentation in, the disclosed claims out,
//! or a typed refusal.
//!
//! - [`Presentation::parse`]: sizes and counts first (bytes, `~`-separated parts, each
//!   disclosure), then the issuer JWS header and payload and every disclosure decoded once;
//!   [`Presentation::issuer_unverified`] lets the caller pick the trust source for `iss`.
//! - [`Presentation::verify`]: the issuer signature with the caller's key (the trust
//!   decision is the caller's), the digest of every disclosure against the signed payload
//!   ([`disclose`]), the Key Binding JWT against `cnf.jwk`, `aud`, `nonce`, `iat` and
//!   `sd_hash`, then `vct`, `iss`, `exp`, `nbf`.
//! - [`status`]: the `status.status_list` reference, and a separate check of a Token
//!   Status List JWT the caller fetched.
//! - [`Pid`]: the Person Identification Data claims, typed.
//!
//! Invariants, stated as absences:
//! - no key from the message other than the holder key, and that one only from the
//!   *signed* `cnf.jwk`; JOSE rules (no `none`, no HMAC, no `jwk`/`x5c` header) are
//!   [`jose`]'s, not repeated here;
//! - no unreferenced, duplicated or colliding disclosure: each digest appears once, each
//!   disclosure is used exactly once, a disclosed name never overwrites a plain claim;
//! - no presentation without key binding: a missing KB-JWT is refused;
//! - no unbounded work: every loop is over parts already counted against [`Limits`];
//! - no I/O, no clock (time is a parameter), no panic on attacker bytes.

pub mod disclose;
mod error;
mod pid;
mod presentation;
pub mod status;

pub use error::Error;
pub use pid::Pid;
pub use presentation::{Expect, IssuerKey, Limits, Presentation, Verified, Work};
