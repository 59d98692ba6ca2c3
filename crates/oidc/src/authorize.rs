//! The authorization request (OpenID Connect Core §3.1.2.1, RFC 7636): parsed and checked
//! against the client's registration before any login happens.

use identity::{EIDAS_HIGH, EIDAS_LOW, EIDAS_SUBSTANTIAL, Loa, SPID_L1, SPID_L2, SPID_L3};

use crate::params::{Params, is_vschar};
use crate::scope::{Scope, Scopes};
use crate::{Client, Error};

/// Longest `state` and `nonce`, bytes (they travel back in redirects and tokens).
pub const MAX_STATE: usize = 512;
/// Longest `client_id`, bytes.
pub const MAX_CLIENT_ID: usize = 128;

/// What `prompt` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prompt {
    /// `none`: never show a page; fail with `login_required` instead.
    pub none: bool,
    /// `login`: authenticate again even with a session.
    pub login: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// The registered redirect URI named by the request.
    pub redirect_uri: String,
    /// Requested scopes (with `openid`; `offline_access` kept only for a client allowed
    /// refresh tokens).
    pub scopes: Scopes,
    /// `state`, returned as is.
    pub state: Option<String>,
    /// `nonce`, put into the ID token.
    pub nonce: Option<String>,
    /// The S256 `code_challenge`, if PKCE is used.
    pub code_challenge: Option<String>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age`, seconds.
    pub max_age: Option<u64>,
    /// The level this login needs: the client's minimum, raised by `acr_values`.
    pub min_loa: Loa,
}

/// The redirect target of an error that may be sent back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorTarget {
    /// The (registered) redirect URI.
    pub redirect_uri: String,
    /// The request's `state`, if it had a usable one.
    pub state: Option<String>,
}

/// A refused authorization request: the error, and where to report it when the client and
/// redirect URI are trusted (otherwise the provider shows its own page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason.
    pub error: Error,
    /// Where to send it (`None`: show an error page, never redirect).
    pub target: Option<ErrorTarget>,
}

/// The level named by one `acr_values` entry: the eIDAS URIs (what this provider puts in
/// `acr`) and the SPID ones.
#[must_use]
pub fn loa_of_acr(acr: &str) -> Option<Loa> {
    match acr {
        EIDAS_LOW | SPID_L1 => Some(Loa::Low),
        EIDAS_SUBSTANTIAL | SPID_L2 => Some(Loa::Substantial),
        EIDAS_HIGH | SPID_L3 => Some(Loa::High),
        _ => None,
    }
}

/// Whether `s` is a valid S256 challenge: 43 base64url characters (a SHA-256).
fn is_s256_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AuthRequest {
    /// Parses and checks `params` against the client `lookup` finds.
    ///
    /// The client and the redirect URI are checked first: until both are known, an error is
    /// shown by the provider (`target: None`), never redirected (RFC 6749 §4.1.2.1,
    /// OpenID Connect Core §3.1.2.6). After that every error goes back to the client with
    /// its `state`.
    pub fn parse<'c>(
        params: &Params,
        lookup: impl Fn(&str) -> Option<&'c Client>,
    ) -> Result<(AuthRequest, &'c Client), Refusal> {
        let page = |error| Refusal {
            error,
            target: None,
        };
        let client_id = params.require("client_id").map_err(page)?;
        if client_id.len() > MAX_CLIENT_ID || !is_vschar(client_id) {
            return Err(page(Error::Invalid { name: "client_id" }));
        }
        let client = lookup(client_id).ok_or_else(|| page(Error::UnknownClient))?;
        // OpenID Connect requires redirect_uri; with several registered, guessing is not ours.
        let redirect_uri = params.require("redirect_uri").map_err(page)?;
        if !client.redirect_uri_registered(redirect_uri) {
            return Err(page(Error::RedirectUri));
        }
        // From here on, errors go back to the client. A `state` outside its syntax is not
        // echoed (it would be reflected into a Location header).
        let state = params
            .get("state")
            .filter(|s| s.len() <= MAX_STATE && is_vschar(s));
        let back = |error| Refusal {
            error,
            target: Some(ErrorTarget {
                redirect_uri: redirect_uri.to_owned(),
                state: state.map(str::to_owned),
            }),
        };
        if params.get("state").is_some() && state.is_none() {
            return Err(back(Error::Invalid { name: "state" }));
        }
        if params.has("request") || params.has("request_uri") {
            return Err(back(Error::RequestObject));
        }
        if params.require("response_type").map_err(back)? != "code" {
            return Err(back(Error::ResponseType));
        }
        match params.get("response_mode") {
            None | Some("query") => {}
            Some(_) => return Err(back(Error::ResponseMode)),
        }
        let mut scopes = params
            .require("scope")
            .map_err(back)
            .and_then(|s| Scopes::parse_list(s).ok_or_else(|| back(Error::Scope)))?;
        let mut allowed = client.scopes;
        allowed.insert(Scope::Openid);
        if !client.refresh_tokens {
            // Not an error: the client simply gets no refresh token (Core §11).
            scopes.remove(Scope::OfflineAccess);
        }
        if !scopes.contains(Scope::Openid) || !scopes.is_subset(allowed) {
            return Err(back(Error::Scope));
        }
        let nonce = match params.get("nonce") {
            Some(n) if n.len() <= MAX_STATE && is_vschar(n) => Some(n.to_owned()),
            Some(_) => return Err(back(Error::Invalid { name: "nonce" })),
            None => None,
        };
        let code_challenge = match (
            params.get("code_challenge"),
            params.get("code_challenge_method"),
        ) {
            (None, None) if client.pkce_required() => return Err(back(Error::PkceMissing)),
            (None, None) => None,
            // A missing method means `plain` (RFC 7636 §4.3): refused like `plain` itself.
            (Some(_), None | Some("plain")) | (None, Some(_)) => {
                return Err(back(Error::PkceMethod));
            }
            (Some(c), Some("S256")) if is_s256_challenge(c) => Some(c.to_owned()),
            (Some(_), Some("S256")) => {
                return Err(back(Error::Invalid {
                    name: "code_challenge",
                }));
            }
            (Some(_), Some(_)) => return Err(back(Error::PkceMethod)),
        };
        let mut prompt = Prompt::default();
        if let Some(p) = params.get("prompt") {
            for v in p.split(' ').filter(|v| !v.is_empty()) {
                match v {
                    "none" => prompt.none = true,
                    "login" => prompt.login = true,
                    // Nothing to consent to or select here: every client is configured by
                    // the operator and a browser has one session.
                    "consent" | "select_account" => {}
                    _ => return Err(back(Error::Prompt)),
                }
            }
            // Core §3.1.2.1: `none` with any other value is an error.
            if prompt.none && p.split(' ').filter(|v| !v.is_empty()).count() > 1 {
                return Err(back(Error::Prompt));
            }
        }
        let max_age = match params.get("max_age") {
            None => None,
            Some(m) if m.len() <= 10 && m.bytes().all(|b| b.is_ascii_digit()) => Some(
                m.parse::<u64>()
                    .map_err(|_| back(Error::Invalid { name: "max_age" }))?,
            ),
            Some(_) => return Err(back(Error::Invalid { name: "max_age" })),
        };
        let mut min_loa = client.min_loa;
        if let Some(values) = params.get("acr_values") {
            // A preference list: any of them satisfies the client, so the lowest one named
            // is what the login must reach; never below the client's own minimum.
            let mut lowest: Option<Loa> = None;
            for v in values.split(' ').filter(|v| !v.is_empty()) {
                let l = loa_of_acr(v).ok_or_else(|| back(Error::AcrValues))?;
                lowest = Some(lowest.map_or(l, |x| x.min(l)));
            }
            if let Some(l) = lowest {
                min_loa = min_loa.max(l);
            }
        }
        Ok((
            AuthRequest {
                client_id: client.id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                scopes,
                state: state.map(str::to_owned),
                nonce,
                code_challenge,
                prompt,
                max_age,
                min_loa,
            },
            client,
        ))
    }
}

/// What the provider must do with a session for a checked request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// Issue a code.
    Issue,
    /// Log in (again): no usable session, `prompt=login`, or `max_age` exceeded.
    Login,
    /// Log in again at this level at least (the session's is too low).
    StepUp(Loa),
}

/// The browser's current session, as far as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    /// Its level.
    pub loa: Loa,
    /// When the person authenticated (the IdP's instant): what `max_age` is about.
    pub auth_time: u64,
    /// When the broker made the session (its own clock).
    pub started: u64,
}

/// Decides for the current session at `now`. `fresh_after` is when this request first
/// arrived, for a request resumed after a login it asked for: a session the broker started
/// at or after that instant is the login the request asked for, and satisfies `prompt=login`
/// and `max_age` (comparing the broker's own clock with itself, so an IdP clock a little
/// behind cannot send the browser round again). `prompt=none` turns anything but
/// [`SessionCheck::Issue`] into [`Error::LoginRequired`].
pub fn check_session(
    req: &AuthRequest,
    session: Option<Current>,
    fresh_after: Option<u64>,
    now: u64,
) -> Result<SessionCheck, Error> {
    let check = match session {
        None => SessionCheck::Login,
        Some(s) => {
            let fresh = fresh_after.is_some_and(|t| s.started >= t);
            let too_old = req
                .max_age
                .is_some_and(|m| now.saturating_sub(s.auth_time) > m);
            if !fresh && (req.prompt.login || too_old) {
                SessionCheck::Login
            } else if s.loa < req.min_loa {
                SessionCheck::StepUp(req.min_loa)
            } else {
                SessionCheck::Issue
            }
        }
    };
    if req.prompt.none && check != SessionCheck::Issue {
        return Err(Error::LoginRequired);
    }
    Ok(check)
}
