//! OpenID for Verifiable Presentations 1.0, the verifier's half, sans-I/O.
//!
//! - [`Verifier::request`]: a request object (JAR, `typ: oauth-authz-req+jwt`) signed by
//!   our key with `client_id` under the `openid_federation` or `x509_hash` prefix,
//!   `response_type=vp_token`, `response_mode=direct_post.jwt`, our `response_uri`, fresh
//!   `nonce` and `state`, a DCQL query ([`dcql`]), and `client_metadata` carrying a
//!   one-use encryption key. It returns the JAR and the [`Pending`] request the caller
//!   keeps (bound to the browser that started the login).
//! - [`authorization_url`]: the same-device redirect / cross-device QR payload, by
//!   reference (`client_id` and `request_uri` only).
//! - [`Pending::open`]: the `response` parameter of the wallet's POST decrypted (JWE
//!   `ECDH-ES`, through [`jose::EcdhKey`]), its `state` bound to this request, and its
//!   `vp_token` mapped to the DCQL credential ids; the presentations themselves are
//!   verified by the format's crate (`sdjwt` for `dc+sd-jwt`) with [`Opened::nonce`] and
//!   [`Opened::client_id`] as the expected `nonce` and `aud`.
//!
//! Invariants, stated as absences:
//! - no response without its request: `state` must match, the JWE must decrypt with the
//!   key made for this request (consumed on the first attempt: a replay cannot decrypt);
//! - no credential that was not asked for, none missing, no second presentation where
//!   one was asked;
//! - no unencrypted response mode is offered;
//! - no I/O, no clock, no panic on attacker bytes.
//!
//! [`attestation`]: the Wallet Attestation a verifier may require beside the PID (the
//! Wallet Provider vouching for the instance that holds the PID's key).

pub mod attestation;
mod dcql;
mod error;
mod request;
mod response;

pub use dcql::{CredentialQuery, Format, dcql};
pub use error::Error;
pub use request::{ClientId, Verifier, authorization_url};
pub use response::{Opened, Pending, ResponseLimits};
