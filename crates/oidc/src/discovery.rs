//! The provider's metadata (OpenID Connect Discovery 1.0 §3), served at
//! `/.well-known/openid-configuration`.

use identity::{EIDAS_HIGH, EIDAS_LOW, EIDAS_SUBSTANTIAL};
use serde_json::{Value, json};

use crate::claims::CLAIMS_SUPPORTED;
use crate::scope::Scope;

/// The endpoint paths under the issuer.
pub mod paths {
    /// Authorization endpoint.
    pub const AUTHORIZE: &str = "/oidc/authorize";
    /// Token endpoint.
    pub const TOKEN: &str = "/oidc/token";
    /// UserInfo endpoint.
    pub const USERINFO: &str = "/oidc/userinfo";
    /// JWKS.
    pub const JWKS: &str = "/oidc/jwks";
    /// RP-initiated logout.
    pub const END_SESSION: &str = "/oidc/end_session";
    /// Discovery document.
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
}

/// The discovery document of the provider at `issuer` (no trailing slash) whose ID tokens
/// are signed with `alg`.
#[must_use]
pub fn document(issuer: &str, alg: &str) -> Value {
    let url = |p: &str| format!("{issuer}{p}");
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "issuer": issuer,
        "authorization_endpoint": url(paths::AUTHORIZE),
        "token_endpoint": url(paths::TOKEN),
        "userinfo_endpoint": url(paths::USERINFO),
        "jwks_uri": url(paths::JWKS),
        "end_session_endpoint": url(paths::END_SESSION),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": [alg],
        "scopes_supported": scopes,
        "claims_supported": CLAIMS_SUPPORTED,
        "acr_values_supported": [EIDAS_LOW, EIDAS_SUBSTANTIAL, EIDAS_HIGH],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported":
            ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    })
}
