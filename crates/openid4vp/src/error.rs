//! The one error type of the crate.

use std::fmt;

/// Why a request could not be built or a response was refused.
///
/// [`Error::code`] is stable; a JOSE failure keeps the `jose.*` code of its cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The verifier configuration is unusable (an entity id that is not https, an empty
    /// query, a signing key of the wrong kind ...).
    Config {
        /// Which value.
        what: &'static str,
    },
    /// A JOSE failure: signing our request, or decrypting the response.
    Jose {
        /// Which token.
        what: &'static str,
        /// The cause.
        cause: jose::Error,
    },
    /// The response arrived after the request expired.
    Expired,
    /// The decrypted response is not a JSON object of the expected shape.
    Response {
        /// Which rule failed.
        reason: &'static str,
    },
    /// The response's `state` is not this request's: it belongs to another browser's login.
    State,
    /// The wallet answered with an error (the user declined, no matching credential ...).
    Wallet {
        /// The `error` code as sent (truncated).
        error: String,
    },
    /// `vp_token` carries a credential id the request did not ask for.
    Unrequested {
        /// The id (truncated).
        id: String,
    },
    /// `vp_token` lacks a credential the request asked for.
    Missing {
        /// The id.
        id: String,
    },
}

impl Error {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } => "openid4vp.config",
            Error::Jose { cause, .. } => cause.code(),
            Error::Expired => "openid4vp.expired",
            Error::Response { .. } => "openid4vp.response",
            Error::State => "openid4vp.state",
            Error::Wallet { .. } => "openid4vp.wallet_error",
            Error::Unrequested { .. } => "openid4vp.unrequested_credential",
            Error::Missing { .. } => "openid4vp.missing_credential",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { what } => write!(f, "verifier configuration: {what}"),
            Error::Jose { what, cause } => write!(f, "{what}: {cause}"),
            Error::Expired => f.write_str("the presentation request has expired"),
            Error::Response { reason } => write!(f, "invalid wallet response: {reason}"),
            Error::State => f.write_str("response state belongs to another request"),
            Error::Wallet { error } => write!(f, "the wallet answered with error {error:?}"),
            Error::Unrequested { id } => write!(f, "credential {id:?} was not requested"),
            Error::Missing { id } => write!(f, "requested credential {id:?} is missing"),
        }
    }
}

impl std::error::Error for Error {}

/// At most this many characters of an attacker-chosen value go into an error.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}
