//! Narrow, strict JOSE: the compact JWS profile that OpenID Federation 1.0 and the SPID/CIE
//! OpenID Connect rules use, and nothing else.
//!
//! - [`json::parse`]: the one JSON reader for untrusted bytes here: bounded depth and size,
//!   duplicate member names refused (RFC 8259 leaves them undefined; RFC 7515 §5.2 asks a
//!   JWS consumer to refuse them or use a parser that does).
//! - [`Jwk`] / [`Jwks`]: public RSA (≥ 2048 bits) and EC (P-256, P-384) signature keys; a
//!   symmetric (`oct`) key or private material in a key set is an error, every `kid` unique.
//! - [`Jws::decode`] then [`Jws::verify`]: one parse, then a signature check with a key
//!   looked up by `kid` in a [`Jwks`] the caller trusts.
//! - [`Signer`]: RS256, PS256 or ES256 from a PKCS#8 key, for our own statements and
//!   request objects ([`Signer::sign_with`] adds header members such as `x5c`).
//! - [`EcdhKey::decrypt`]: compact JWE, `ECDH-ES` with `A128GCM`/`A256GCM` only, to a
//!   one-use P-256 key of ours (OpenID4VP `direct_post.jwt` responses).
//! - [`RsaDecrypter::decrypt`]: compact JWE, `RSA-OAEP`/`RSA-OAEP-256` with
//!   `A128CBC-HS256`/`A256CBC-HS512` only, to our RSA key (SPID/CIE OIDC UserInfo); the
//!   tag is checked in constant time before any block is decrypted.
//!
//! Invariants, stated as absences:
//! - no key from the message: `jwk`, `jku`, `x5u`, `x5c` in a header are refused, and `kid`
//!   only selects among the caller's keys;
//! - no `none`, no HMAC (`HS*`), no algorithm outside [`Alg`]; an `alg` that disagrees with
//!   the key's type or with the key's own `alg` is refused, so RS256 cannot be verified
//!   with an EC key nor PS256 with a key published for RS256;
//! - no unknown critical extension: any `crit` header is refused (none is understood);
//! - no unbounded input: [`Limits`] bounds bytes and JSON depth before any cryptography;
//! - no I/O, no clock, no panic on attacker bytes.

mod alg;
mod error;
pub mod json;
mod jwe;
mod jwe_rsa;
mod jwk;
mod jws;
mod sign;

pub use alg::Alg;
pub use error::Error;
pub use jwe::{EcdhKey, Enc, JweLimits};
pub use jwe_rsa::{CbcHs, KeyAlg, RsaDecrypter, encrypt_to};
pub use jwk::{Curve, Jwk, Jwks, MAX_KEYS};
pub use jws::{Jws, Limits, Typ};
pub use sign::Signer;
