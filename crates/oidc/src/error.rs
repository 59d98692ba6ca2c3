//! The one error type: every refusal of the provider, each with a stable code and the OAuth
//! 2.0 / OpenID Connect error it is answered with.

use std::fmt;

/// Why a request to the provider was refused.
///
/// [`Error::code`] is stable (logs, metrics, the error page); [`Error::oauth`] is the `error`
/// value of the OAuth answer (RFC 6749 §4.1.2.1 and §5.2, OpenID Connect Core §3.1.2.6).
/// The `Display` text names the rule, never a secret, a code or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A parameter appears twice (RFC 6749 §3.1: parameters must not be repeated).
    Duplicate {
        /// The parameter.
        name: &'static str,
    },
    /// More parameters, or longer ones, than any real request carries.
    TooLarge,
    /// A required parameter is missing.
    Missing {
        /// The parameter.
        name: &'static str,
    },
    /// A parameter has a value outside its syntax or its bounds.
    Invalid {
        /// The parameter.
        name: &'static str,
    },
    /// No client with this `client_id` is registered.
    UnknownClient,
    /// `redirect_uri` is not exactly one of the client's registered URIs.
    RedirectUri,
    /// `response_type` is not `code`.
    ResponseType,
    /// `response_mode` other than `query`.
    ResponseMode,
    /// `scope` lacks `openid`, or names a scope the client may not ask for.
    Scope,
    /// A request object (`request`, `request_uri`) was sent: not supported.
    RequestObject,
    /// The client must use PKCE and sent no `code_challenge`.
    PkceMissing,
    /// `code_challenge_method` other than `S256` (`plain` included).
    PkceMethod,
    /// `prompt=none` and the person must log in (no session, too old, level too low).
    LoginRequired,
    /// `prompt=none` combined with another value, or an unknown value.
    Prompt,
    /// `acr_values` names a level this provider does not know.
    AcrValues,
    /// The client's configuration, or the route, does not allow the login method used.
    MethodNotAllowed,
    /// `grant_type` other than `authorization_code` and `refresh_token`.
    GrantType,
    /// The code (or refresh token) is unknown, used, expired, or was issued to another
    /// client or for another `redirect_uri`.
    Grant,
    /// `code_verifier` missing, malformed, or not matching the challenge.
    PkceVerifier,
    /// Client authentication failed (see the reason).
    ClientAuth(ClientAuthFailure),
    /// The access token is unknown, expired or revoked (UserInfo).
    AccessToken,
    /// `post_logout_redirect_uri` is not registered for the client.
    PostLogoutRedirectUri,
    /// `id_token_hint` is not an ID token of ours (end session).
    IdTokenHint,
}

/// Why client authentication failed: each is a named test and answers `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthFailure {
    /// No credentials at all, from a client that has to authenticate.
    Missing,
    /// Credentials by more than one method in one request (RFC 6749 §2.3).
    Multiple,
    /// A method other than the client's registered `token_endpoint_auth_method`.
    WrongMethod,
    /// Unknown `client_id`.
    UnknownClient,
    /// The secret does not match.
    Secret,
    /// `client_assertion_type` is not the JWT bearer type.
    AssertionType,
    /// The assertion's JWS is malformed or its signature does not verify with the client's
    /// registered keys.
    AssertionSignature,
    /// `iss` or `sub` is not the client, or `aud` is not the token endpoint.
    AssertionClaims,
    /// `exp` is past, missing, or too far ahead; or `iat`/`nbf` in the future.
    AssertionTime,
    /// The assertion's `jti` is missing or already used (the caller's one-time check).
    AssertionReplay,
    /// The `client_id` parameter names another client than the credentials.
    ClientIdMismatch,
}

impl ClientAuthFailure {
    /// Stable code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            ClientAuthFailure::Missing => "oidc.client_auth_missing",
            ClientAuthFailure::Multiple => "oidc.client_auth_multiple",
            ClientAuthFailure::WrongMethod => "oidc.client_auth_method",
            ClientAuthFailure::UnknownClient => "oidc.client_unknown",
            ClientAuthFailure::Secret => "oidc.client_secret",
            ClientAuthFailure::AssertionType => "oidc.client_assertion_type",
            ClientAuthFailure::AssertionSignature => "oidc.client_assertion_signature",
            ClientAuthFailure::AssertionClaims => "oidc.client_assertion_claims",
            ClientAuthFailure::AssertionTime => "oidc.client_assertion_time",
            ClientAuthFailure::AssertionReplay => "oidc.client_assertion_replay",
            ClientAuthFailure::ClientIdMismatch => "oidc.client_id_mismatch",
        }
    }
}

impl Error {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Duplicate { .. } => "oidc.duplicate_parameter",
            Error::TooLarge => "oidc.too_large",
            Error::Missing { .. } => "oidc.missing_parameter",
            Error::Invalid { .. } => "oidc.invalid_parameter",
            Error::UnknownClient => "oidc.unknown_client",
            Error::RedirectUri => "oidc.redirect_uri",
            Error::ResponseType => "oidc.response_type",
            Error::ResponseMode => "oidc.response_mode",
            Error::Scope => "oidc.scope",
            Error::RequestObject => "oidc.request_object",
            Error::PkceMissing => "oidc.pkce_missing",
            Error::PkceMethod => "oidc.pkce_method",
            Error::LoginRequired => "oidc.login_required",
            Error::Prompt => "oidc.prompt",
            Error::AcrValues => "oidc.acr_values",
            Error::MethodNotAllowed => "oidc.method_not_allowed",
            Error::GrantType => "oidc.grant_type",
            Error::Grant => "oidc.invalid_grant",
            Error::PkceVerifier => "oidc.pkce_verifier",
            Error::ClientAuth(f) => f.code(),
            Error::AccessToken => "oidc.access_token",
            Error::PostLogoutRedirectUri => "oidc.post_logout_redirect_uri",
            Error::IdTokenHint => "oidc.id_token_hint",
        }
    }

    /// The OAuth `error` value this refusal is answered with.
    #[must_use]
    pub fn oauth(&self) -> &'static str {
        match self {
            Error::Duplicate { .. }
            | Error::TooLarge
            | Error::Missing { .. }
            | Error::Invalid { .. }
            | Error::ResponseMode
            | Error::PkceMissing
            | Error::PkceMethod
            | Error::Prompt
            | Error::AcrValues
            | Error::PostLogoutRedirectUri
            | Error::IdTokenHint
            | Error::UnknownClient
            | Error::RedirectUri => "invalid_request",
            Error::ResponseType => "unsupported_response_type",
            Error::Scope => "invalid_scope",
            Error::RequestObject => "request_not_supported",
            Error::LoginRequired => "login_required",
            Error::MethodNotAllowed => "access_denied",
            Error::GrantType => "unsupported_grant_type",
            Error::Grant | Error::PkceVerifier => "invalid_grant",
            Error::ClientAuth(_) => "invalid_client",
            Error::AccessToken => "invalid_token",
        }
    }

    /// Whether the error may be sent back to the client's `redirect_uri`: only once the
    /// client and its redirect URI are known to be registered (RFC 6749 §4.1.2.1: never
    /// redirect to an unverified URI).
    #[must_use]
    pub fn redirectable(&self) -> bool {
        !matches!(
            self,
            Error::UnknownClient
                | Error::RedirectUri
                | Error::Missing {
                    name: "client_id" | "redirect_uri"
                }
                | Error::Duplicate {
                    name: "client_id" | "redirect_uri"
                }
                | Error::Invalid {
                    name: "client_id" | "redirect_uri"
                }
                | Error::TooLarge
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Duplicate { name } => write!(f, "parameter {name} repeated"),
            Error::TooLarge => f.write_str("too many or too long parameters"),
            Error::Missing { name } => write!(f, "parameter {name} missing"),
            Error::Invalid { name } => write!(f, "parameter {name} invalid"),
            Error::UnknownClient => f.write_str("unknown client"),
            Error::RedirectUri => f.write_str("redirect_uri not registered for the client"),
            Error::ResponseType => f.write_str("only response_type=code is supported"),
            Error::ResponseMode => f.write_str("only response_mode=query is supported"),
            Error::Scope => f.write_str("scope must contain openid and only allowed scopes"),
            Error::RequestObject => f.write_str("request objects are not supported"),
            Error::PkceMissing => f.write_str("PKCE (S256) is required for this client"),
            Error::PkceMethod => f.write_str("only code_challenge_method=S256 is accepted"),
            Error::LoginRequired => f.write_str("the user must log in"),
            Error::Prompt => f.write_str("invalid prompt"),
            Error::AcrValues => f.write_str("unknown acr value"),
            Error::MethodNotAllowed => {
                f.write_str("the login method is not allowed for this client")
            }
            Error::GrantType => f.write_str("unsupported grant_type"),
            Error::Grant => f.write_str("invalid, expired or used grant"),
            Error::PkceVerifier => f.write_str("code_verifier missing or wrong"),
            Error::ClientAuth(r) => write!(f, "client authentication failed ({})", r.code()),
            Error::AccessToken => f.write_str("invalid access token"),
            Error::PostLogoutRedirectUri => {
                f.write_str("post_logout_redirect_uri not registered for the client")
            }
            Error::IdTokenHint => f.write_str("id_token_hint not issued by this provider"),
        }
    }
}

impl std::error::Error for Error {}
