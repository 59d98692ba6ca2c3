//! Logout: the RP-initiated request (OpenID Connect RP-Initiated Logout 1.0) and the logout
//! token of Back-Channel Logout 1.0.

use identity::Principal;
use serde_json::{Map, Value, json};

use crate::claims::{client_sid, subject};
use crate::params::{Params, is_vschar};
use crate::{Client, Error};

/// The `events` member that makes a JWT a logout token (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The `typ` of a logout token (Back-Channel Logout 1.0 §2.4, since errata 1).
pub const LOGOUT_TYP: &str = "logout+jwt";

/// Lifetime of a logout token, seconds.
pub const LOGOUT_TTL: u64 = 120;

/// The claims of a logout token for `client` about the broker session `sid`: `iss`, `aud`,
/// `iat`, `exp`, `jti`, `sid`, `sub` (when the person is still known) and the event; never a
/// `nonce` (§2.4).
#[must_use]
pub fn logout_token(
    issuer: &str,
    client: &Client,
    principal: Option<&Principal>,
    sid: &str,
    jti: &str,
    now: u64,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("iss".into(), issuer.into());
    m.insert("aud".into(), client.id.clone().into());
    m.insert("iat".into(), now.into());
    m.insert("exp".into(), now.saturating_add(LOGOUT_TTL).into());
    m.insert("jti".into(), jti.into());
    if let Some(p) = principal {
        m.insert("sub".into(), subject(client, p).into());
    }
    m.insert("sid".into(), client_sid(&client.id, sid).into());
    m.insert("events".into(), json!({ BACKCHANNEL_EVENT: {} }));
    m
}

/// A checked RP-initiated logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSession {
    /// The client, when named by `client_id` or by the hint's `aud`.
    pub client_id: Option<String>,
    /// Where to send the browser afterwards: registered for that client, else `None`.
    pub post_logout_redirect_uri: Option<String>,
    /// `state`, to add to that redirect.
    pub state: Option<String>,
}

/// Checks an end-session request. `hint_audience` verifies `id_token_hint` (an ID token we
/// signed, expired or not) and answers its `aud`; `None` for anything else.
///
/// A `post_logout_redirect_uri` needs a client (by `client_id` or by the hint), and must be
/// exactly one of its registered URIs: an open redirector otherwise.
pub fn end_session<'c>(
    params: &Params,
    lookup: impl Fn(&str) -> Option<&'c Client>,
    hint_audience: impl Fn(&str) -> Option<String>,
) -> Result<EndSession, Error> {
    let from_hint = match params.get("id_token_hint") {
        Some(h) => Some(hint_audience(h).ok_or(Error::IdTokenHint)?),
        None => None,
    };
    let client_id = match (params.get("client_id"), from_hint) {
        (Some(a), Some(b)) if a != b => return Err(Error::IdTokenHint),
        (Some(a), _) => Some(a.to_owned()),
        (None, b) => b,
    };
    let client = match &client_id {
        Some(id) => Some(lookup(id).ok_or(Error::UnknownClient)?),
        None => None,
    };
    let post_logout_redirect_uri = match (params.get("post_logout_redirect_uri"), client) {
        (None, _) => None,
        (Some(u), Some(c)) if c.post_logout_registered(u) => Some(u.to_owned()),
        (Some(_), _) => return Err(Error::PostLogoutRedirectUri),
    };
    let state = match params.get("state") {
        Some(s) if s.len() <= crate::authorize::MAX_STATE && is_vschar(s) => Some(s.to_owned()),
        Some(_) => return Err(Error::Invalid { name: "state" }),
        None => None,
    };
    Ok(EndSession {
        client_id,
        post_logout_redirect_uri,
        state,
    })
}
