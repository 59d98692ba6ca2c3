//! A registered client, as the broker's configuration validated it.

use identity::{Loa, Method};
use ring::digest;

use crate::scope::Scopes;

/// How the client authenticates at the token endpoint (OpenID Connect Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `client_secret_basic`: HTTP Basic with the secret.
    SecretBasic,
    /// `client_secret_post`: the secret in the form body.
    SecretPost,
    /// `private_key_jwt`: a JWS signed with a key of the client's registered JWKS.
    PrivateKeyJwt,
    /// `none`: a public client (a native or browser app); PKCE is then mandatory.
    None,
}

impl AuthMethod {
    /// The registered name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::SecretBasic => "client_secret_basic",
            AuthMethod::SecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }

    /// Parses a registered name.
    #[must_use]
    pub fn parse(s: &str) -> Option<AuthMethod> {
        [
            AuthMethod::SecretBasic,
            AuthMethod::SecretPost,
            AuthMethod::PrivateKeyJwt,
            AuthMethod::None,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// The SHA-256 of a client secret. The secret itself is not kept: only a digest compared
/// in constant time. A plain hash (not a password KDF) is enough because configuration
/// refuses secrets shorter than 32 characters: there is nothing to guess offline.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    /// The digest of `secret`.
    #[must_use]
    pub fn of(secret: &[u8]) -> SecretHash {
        let d = digest::digest(&digest::SHA256, secret);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        SecretHash(out)
    }

    /// Whether `presented` hashes to this digest. The comparison of the two digests takes
    /// the same time wherever they differ.
    #[must_use]
    pub fn matches(&self, presented: &[u8]) -> bool {
        let other = SecretHash::of(presented);
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

/// Whose `sub` the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectType {
    /// The principal's `sub` (`TINIT-<fiscal code>` or `EIDAS:…`).
    Public,
    /// A per-sector pseudonym: base64url(SHA-256(salt ‖ sector ‖ 0 ‖ sub)), so two clients
    /// of different sectors cannot join their users.
    Pairwise {
        /// The sector (default: the client id).
        sector: String,
        /// The provider's secret salt (from configuration).
        salt: Vec<u8>,
    },
}

/// One registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// `client_id`.
    pub id: String,
    /// Token endpoint authentication.
    pub auth_method: AuthMethod,
    /// For the secret methods.
    pub secret: Option<SecretHash>,
    /// For `private_key_jwt`.
    pub jwks: Option<jose::Jwks>,
    /// Redirect URIs, matched exactly (byte for byte).
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return, matched exactly.
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes the client may ask for (`openid` always).
    pub scopes: Scopes,
    /// Lowest level of assurance the client accepts.
    pub min_loa: Loa,
    /// Accepted login methods; empty means all.
    pub methods: Vec<Method>,
    /// Whether PKCE is required (always for `none`).
    pub require_pkce: bool,
    /// Back-Channel Logout 1.0 endpoint, if the client has one.
    pub backchannel_logout_uri: Option<String>,
    /// Whether refresh tokens are issued (with `offline_access`).
    pub refresh_tokens: bool,
    /// Public or pairwise `sub`.
    pub subject_type: SubjectType,
}

impl Client {
    /// Whether `uri` is one of the registered redirect URIs, compared exactly.
    #[must_use]
    pub fn redirect_uri_registered(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    /// Whether `uri` is one of the registered post-logout redirect URIs, compared exactly.
    #[must_use]
    pub fn post_logout_registered(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri)
    }

    /// Whether PKCE must be used: always for a public client.
    #[must_use]
    pub fn pkce_required(&self) -> bool {
        self.require_pkce || self.auth_method == AuthMethod::None
    }

    /// Whether a login by `method` may be used for this client.
    #[must_use]
    pub fn allows_method(&self, method: Method) -> bool {
        self.methods.is_empty() || self.methods.contains(&method)
    }
}
