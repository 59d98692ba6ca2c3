//! The token request (RFC 6749 §4.1.3, §6), client authentication (OpenID Connect Core §9)
//! and the PKCE check (RFC 7636 §4.6).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use serde_json::Value;

use crate::params::Params;
use crate::{AuthMethod, Client, ClientAuthFailure, Error};

/// `client_assertion_type` of `private_key_jwt` (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest lifetime of a client assertion, seconds: its `jti` is remembered that long, so
/// the replay memory stays bounded. An hour, because that is what common client libraries
/// put in `exp` (Authlib's default); a `jti` is recorded only after the signature verified,
/// so only registered clients fill that memory.
pub const MAX_ASSERTION_LIFETIME: u64 = 3600;

/// Tolerated clock difference with clients, seconds (`iat`, `nbf`).
pub const SKEW: u64 = 60;

/// What the client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// `authorization_code`.
    Code {
        /// The code.
        code: String,
        /// Must equal the authorization request's.
        redirect_uri: String,
        /// The PKCE verifier, if sent.
        code_verifier: Option<String>,
    },
    /// `refresh_token`.
    Refresh {
        /// The refresh token.
        refresh_token: String,
    },
}

impl Grant {
    /// Parses the grant of a token request.
    pub fn parse(params: &Params) -> Result<Grant, Error> {
        match params.require("grant_type")? {
            "authorization_code" => Ok(Grant::Code {
                code: params.require("code")?.to_owned(),
                redirect_uri: params.require("redirect_uri")?.to_owned(),
                code_verifier: params.get("code_verifier").map(str::to_owned),
            }),
            "refresh_token" => Ok(Grant::Refresh {
                refresh_token: params.require("refresh_token")?.to_owned(),
            }),
            _ => Err(Error::GrantType),
        }
    }
}

/// A client that proved who it is, and the assertion `jti` the caller must record once
/// (with its `exp`) before answering.
#[derive(Debug)]
pub struct Authenticated<'c> {
    /// The client.
    pub client: &'c Client,
    /// `private_key_jwt`: `(jti, exp)`; the caller refuses the request unless this is the
    /// first use of `jti` for the client ([`ClientAuthFailure::AssertionReplay`]).
    pub assertion_jti: Option<(String, u64)>,
}

/// Where the token endpoint is: the audiences a client assertion may name.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// The issuer identifier.
    pub issuer: &'a str,
    /// The token endpoint URL.
    pub token_endpoint: &'a str,
}

fn fail(r: ClientAuthFailure) -> Error {
    Error::ClientAuth(r)
}

/// Authenticates the client of a token request.
///
/// `basic` is the decoded HTTP Basic pair (client id, secret), form-decoded by the caller as
/// RFC 6749 §2.3.1 says. Exactly one method may be used, and it must be the client's
/// registered one; a `client_id` parameter must name the same client.
pub fn authenticate<'c>(
    params: &Params,
    basic: Option<(&str, &str)>,
    lookup: impl Fn(&str) -> Option<&'c Client>,
    endpoint: Endpoint<'_>,
    now: u64,
) -> Result<Authenticated<'c>, Error> {
    let post_secret = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let assertion_type = params.get("client_assertion_type");
    let used = usize::from(basic.is_some())
        + usize::from(post_secret.is_some())
        + usize::from(assertion.is_some() || assertion_type.is_some());
    if used > 1 {
        return Err(fail(ClientAuthFailure::Multiple));
    }
    let param_id = params.get("client_id");
    let same = |id: &str| match param_id {
        Some(p) if p != id => Err(fail(ClientAuthFailure::ClientIdMismatch)),
        _ => Ok(()),
    };
    let find = |id: &str| lookup(id).ok_or(fail(ClientAuthFailure::UnknownClient));
    let need = |client: &Client, m: AuthMethod| {
        if client.auth_method == m {
            Ok(())
        } else {
            Err(fail(ClientAuthFailure::WrongMethod))
        }
    };
    if let Some((id, secret)) = basic {
        same(id)?;
        let client = find(id)?;
        need(client, AuthMethod::SecretBasic)?;
        return check_secret(client, secret);
    }
    if let Some(secret) = post_secret {
        let id = param_id.ok_or(fail(ClientAuthFailure::UnknownClient))?;
        let client = find(id)?;
        need(client, AuthMethod::SecretPost)?;
        return check_secret(client, secret);
    }
    if assertion.is_some() || assertion_type.is_some() {
        if assertion_type != Some(JWT_BEARER) {
            return Err(fail(ClientAuthFailure::AssertionType));
        }
        let token = assertion.ok_or(fail(ClientAuthFailure::AssertionSignature))?;
        return check_assertion(token, param_id, &find, endpoint, now);
    }
    // No credentials: only a public client, named by `client_id`.
    let id = param_id.ok_or(fail(ClientAuthFailure::Missing))?;
    let client = find(id)?;
    if client.auth_method != AuthMethod::None {
        return Err(fail(ClientAuthFailure::Missing));
    }
    Ok(Authenticated {
        client,
        assertion_jti: None,
    })
}

fn check_secret<'c>(client: &'c Client, secret: &str) -> Result<Authenticated<'c>, Error> {
    match &client.secret {
        Some(h) if h.matches(secret.as_bytes()) => Ok(Authenticated {
            client,
            assertion_jti: None,
        }),
        _ => Err(fail(ClientAuthFailure::Secret)),
    }
}

fn check_assertion<'c>(
    token: &str,
    param_id: Option<&str>,
    find: &dyn Fn(&str) -> Result<&'c Client, Error>,
    endpoint: Endpoint<'_>,
    now: u64,
) -> Result<Authenticated<'c>, Error> {
    let bad_sig = || fail(ClientAuthFailure::AssertionSignature);
    // `kid` may be absent (Authlib and others send none); the key is then the client's one
    // key for the algorithm, or the assertion is refused as ambiguous (below).
    let jws = jose::Jws::decode_unkeyed(token, jose::Typ::JwtOrAbsent, &jose::Limits::default())
        .map_err(|_| bad_sig())?;
    // `sub` names the client; it only chooses whose registered keys to try.
    let claims = jws.claims_unverified();
    let sub = match claims.get("sub") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(fail(ClientAuthFailure::AssertionClaims)),
    };
    if param_id.is_some_and(|p| p != sub) {
        return Err(fail(ClientAuthFailure::ClientIdMismatch));
    }
    let client = find(&sub)?;
    if client.auth_method != AuthMethod::PrivateKeyJwt {
        return Err(fail(ClientAuthFailure::WrongMethod));
    }
    let keys = client.jwks.as_ref().ok_or_else(bad_sig)?;
    if jws.kid().is_empty() {
        let mut fitting = keys.keys().iter().filter(|k| k.accepts(jws.alg()));
        match (fitting.next(), fitting.next()) {
            (Some(key), None) => jws.verify_with(key).map_err(|_| bad_sig())?,
            _ => return Err(bad_sig()),
        }
    } else {
        jws.verify(keys).map_err(|_| bad_sig())?;
    }
    let claims = jws.claims_unverified();
    let string = |name: &str| match claims.get(name) {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    if string("iss") != Some(client.id.as_str()) {
        return Err(fail(ClientAuthFailure::AssertionClaims));
    }
    // Our issuer identifier or our token endpoint: both name this provider and nothing
    // else. Every listed audience must be ours (an assertion also meant for another server
    // is not accepted here).
    let ours = |v: &Value| matches!(v, Value::String(s) if s == endpoint.issuer || s == endpoint.token_endpoint);
    let aud_ok = match claims.get("aud") {
        Some(v @ Value::String(_)) => ours(v),
        Some(Value::Array(a)) => !a.is_empty() && a.len() <= 4 && a.iter().all(ours),
        _ => false,
    };
    if !aud_ok {
        return Err(fail(ClientAuthFailure::AssertionClaims));
    }
    let number = |name: &str| claims.get(name).map(Value::as_u64);
    let exp = match number("exp") {
        Some(Some(e)) if e > now && e <= now + MAX_ASSERTION_LIFETIME + SKEW => e,
        _ => return Err(fail(ClientAuthFailure::AssertionTime)),
    };
    for name in ["iat", "nbf"] {
        match number(name) {
            None => {}
            Some(Some(t)) if t <= now + SKEW => {}
            Some(_) => return Err(fail(ClientAuthFailure::AssertionTime)),
        }
    }
    let jti = match string("jti") {
        Some(j) if !j.is_empty() && j.len() <= 256 => j.to_owned(),
        _ => return Err(fail(ClientAuthFailure::AssertionReplay)),
    };
    Ok(Authenticated {
        client,
        assertion_jti: Some((jti, exp)),
    })
}

/// The RFC 7636 check: with a challenge, a well-formed verifier whose SHA-256 matches; without
/// one, no verifier at all (a verifier for a code issued without PKCE is a downgrade
/// attempt, RFC 9700 §2.1.1).
pub fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), Error> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (Some(c), Some(v)) => {
            let well_formed = (43..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let digest = digest::digest(&digest::SHA256, v.as_bytes());
            if well_formed && URL_SAFE_NO_PAD.encode(digest) == c {
                Ok(())
            } else {
                Err(Error::PkceVerifier)
            }
        }
        _ => Err(Error::PkceVerifier),
    }
}
