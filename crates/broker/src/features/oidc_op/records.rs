//! What the provider keeps in the store between requests. Every key derived from a secret
//! (code, token) is its SHA-256, so a store dump holds no usable code or token; every value
//! is JSON written and read only here.

use identity::Principal;
use serde::{Deserialize, Serialize};

/// Authorization codes by digest: taken once (`Store::take_record`).
pub const CODE: &str = "oidc_code";
/// Codes already exchanged, by digest, naming their grant: a replay revokes it.
pub const CODE_USED: &str = "oidc_code_used";
/// Grants by id: what tokens issued from one code may do. Deleted to revoke them all.
pub const GRANT: &str = "oidc_grant";
/// Access tokens by digest, naming their grant.
pub const ACCESS: &str = "oidc_at";
/// Refresh tokens by digest, naming their grant: taken once at each rotation.
pub const REFRESH: &str = "oidc_rt";
/// Refresh tokens already rotated, by digest: a reuse revokes the family (the grant).
pub const REFRESH_USED: &str = "oidc_rt_used";
/// The grants of a broker session (`client_id grant_id` members): whom to tell when the
/// session ends.
pub const SESSION: &str = "oidc_session";
/// `private_key_jwt` assertion ids already used, per client.
pub const ASSERTION: &str = "oidc_jti";
/// Authorization requests waiting for a login, by random id.
pub const REQUEST: &str = "oidc_request";

/// The key of a secret value: its SHA-256, hex.
#[must_use]
pub fn digest_key(secret: &str) -> String {
    crate::leaf::problem::sha256_hex(secret.as_bytes())
}

/// What a code stands for until it is exchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Code {
    /// The grant its tokens will belong to.
    pub grant: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The authorization request's redirect URI (the token request must repeat it).
    pub redirect_uri: String,
    /// The PKCE S256 challenge, if any.
    pub challenge: Option<String>,
    /// The `nonce` for the ID token.
    pub nonce: Option<String>,
    /// Granted scopes (`oidc::Scopes` bits).
    pub scopes: u8,
    /// The broker session.
    pub sid: String,
    /// The session's absolute expiry, Unix seconds.
    pub session_exp: u64,
    /// The person.
    pub principal: Principal,
    /// The representation the session acted on at authorize, if any (issue 24).
    #[serde(default)]
    pub acting: Option<ActingRef>,
}

/// The representation a grant acts on: the session's choice only, never the acting identity
/// itself, which is rebuilt from the source at every token and UserInfo request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActingRef {
    /// The client's represent service.
    pub service: String,
    /// The source id.
    pub source: String,
    /// The representation's reference in that source.
    pub reference: String,
}

/// A grant: tokens issued from one code, and from its refresh rotations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    /// The client.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: u8,
    /// The broker session.
    pub sid: String,
    /// The session's absolute expiry, Unix seconds.
    pub session_exp: u64,
    /// The person logged in (the delegate when `acting`).
    pub principal: Principal,
    /// The representation acted on, if any.
    #[serde(default)]
    pub acting: Option<ActingRef>,
}

/// An authorization request waiting for a login: its query as received and when it came.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Waiting {
    /// The query string of the original `/oidc/authorize`.
    pub query: String,
    /// Unix seconds: a login after this satisfies `prompt=login`.
    pub created: u64,
}

/// JSON of a record.
pub fn encode<T: Serialize>(v: &T) -> Option<Vec<u8>> {
    serde_json::to_vec(v).ok()
}

/// A record from its JSON (written by [`encode`]); `None` if it is not one.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}
