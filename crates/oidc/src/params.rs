//! The decoded parameters of one request, with the rules every endpoint shares: no name
//! twice, bounded count and length.
//!
//! The broker decodes the query string or form body (its one `%XX` decoder) and hands the
//! pairs here; this module never decodes.

use crate::Error;

/// Most parameters in one request. A real authorization request has about a dozen.
pub const MAX_PARAMS: usize = 32;
/// Longest parameter value, bytes (a client assertion or an `id_token_hint` JWS fits).
pub const MAX_VALUE: usize = 8 * 1024;
/// Longest parameter name, bytes.
pub(crate) const MAX_NAME: usize = 64;

/// Request parameters: unique names, each value bounded.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Checks and keeps `pairs`. Refuses a name seen twice (RFC 6749 §3.1, §3.2), more than
    /// [`MAX_PARAMS`] pairs, or an over-long name or value. An empty value counts as absent
    /// (RFC 6749 §3.1) and is dropped. Work: quadratic in the count, which is bounded.
    pub fn new<I, K, V>(pairs: I) -> Result<Params, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            if out.len() >= MAX_PARAMS || k.len() > MAX_NAME || v.len() > MAX_VALUE {
                return Err(Error::TooLarge);
            }
            if out.iter().any(|(n, _)| n == k) {
                return Err(Error::Duplicate { name: known(k) });
            }
            out.push((k.to_owned(), v.to_owned()));
        }
        // Dropped after the duplicate check: `a=&a=x` is still a repetition.
        out.retain(|(_, v)| !v.is_empty());
        Ok(Params { pairs: out })
    }

    /// The value of `name`, if present and non-empty.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or [`Error::Missing`].
    pub fn require(&self, name: &'static str) -> Result<&str, Error> {
        self.get(name).ok_or(Error::Missing { name })
    }

    /// Whether `name` is present.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// The static name of a parameter the provider reads (for the error), or `"other"`.
fn known(name: &str) -> &'static str {
    const NAMES: [&str; 27] = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "prompt",
        "max_age",
        "acr_values",
        "code_challenge",
        "code_challenge_method",
        "response_mode",
        "request",
        "request_uri",
        "grant_type",
        "code",
        "code_verifier",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "refresh_token",
        "id_token_hint",
        "post_logout_redirect_uri",
        "ui_locales",
        "login_hint",
        "claims",
        "display",
    ];
    NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("other")
}

/// Whether `s` is printable ASCII without spaces (RFC 6749 Appendix A's VSCHAR minus
/// space, the most a `state`, `nonce` or `client_id` needs here).
pub(crate) fn is_vschar(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}
