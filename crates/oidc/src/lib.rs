//! Varco as an OpenID Provider (issue 22), the pure half: what arrives at the authorization,
//! token, UserInfo and end-session endpoints is checked here, and what goes out (ID token
//! and logout token claims, UserInfo, the discovery document) is built here. The broker does
//! the HTTP, the store (codes, grants, replay), the signing with its token keys, and the
//! back-channel delivery.
//!
//! - [`Params`]: decoded request parameters, no name twice, bounded.
//! - [`AuthRequest::parse`]: `response_type=code` only, the client and its exactly matching
//!   `redirect_uri` first (errors before that are never redirected), `scope` with `openid`,
//!   PKCE `S256` (mandatory for public clients, `plain` refused), `nonce`, `state`,
//!   `prompt`, `max_age`, `acr_values` mapped to the LoA scale; [`authorize::check_session`]
//!   says whether a session may be used, must log in again, or step up.
//! - [`token::Grant::parse`], [`token::authenticate`] (`client_secret_basic`/`_post` against
//!   a stored SHA-256 in constant time, `private_key_jwt` verified by `jose` with the
//!   client's registered JWKS, `jti` handed back for the caller's one-time record),
//!   [`token::check_pkce`].
//! - [`claims`]: `sub` (public or pairwise), the ID token, UserInfo per scope.
//! - [`logout`]: the logout token (Back-Channel Logout 1.0) and the end-session request.
//! - [`discovery::document`].
//!
//! Invariants, stated as absences:
//! - no redirect to an unregistered URI: an error before the client and its redirect URI are
//!   known is [`Error::redirectable`] `false`;
//! - no code without PKCE for a public client, no `plain` challenge, no verifier accepted for
//!   a code issued without a challenge;
//! - no client secret kept in clear, no secret compared byte by byte with early exit;
//! - no client key from the request: an assertion is verified only with the JWKS the
//!   operator registered for the client it names;
//! - no JSON read but by `jose::json` (through `jose::Jws`);
//! - no I/O, no clock (`now` is an argument), no panic on attacker bytes.

pub mod authorize;
pub mod claims;
mod client;
pub mod discovery;
mod error;
pub mod logout;
mod params;
pub mod scope;
pub mod token;

pub use authorize::{AuthRequest, Refusal};
pub use client::{AuthMethod, Client, SecretHash, SubjectType};
pub use error::{ClientAuthFailure, Error};
pub use params::{MAX_PARAMS, MAX_VALUE, Params};
pub use scope::{Scope, Scopes};
