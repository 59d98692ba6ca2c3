//! `GET /auth` for nginx `auth_request` and Traefik ForwardAuth, `GET /.well-known/jwks.json`,
//! and the per-session token cache.
//!
//! The original request (host and URI) is read from `X-Original-URI` / `X-Forwarded-Host` /
//! `X-Forwarded-Uri` / `X-Forwarded-Proto` only when the peer is a trusted proxy
//! (`forward_auth.trusted_proxies`); from anyone else those headers are ignored and the route
//! is chosen for the request's own `Host` and `/`.
//!
//! Answers:
//! - 200 with the identity headers and `Authorization: Bearer <jwt>` when the session satisfies
//!   the route's policy;
//! - 401 (or, with `?mode=redirect`, for Traefik, a 302) when there is no session or its level
//!   is too low; `X-Varco-Login` carries the login URL in both cases (nginx reads it with
//!   `auth_request_set`). A too-low level gets a step-up login at the same IdP and the level
//!   the route needs, not a dead end;
//! - 403 when the method or profile is not accepted by the route.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use identity::{Decision, Loa, TokenParams};

use crate::access::{Claim, Route};
use crate::clock::unix;
use crate::log;
use crate::pages;
use crate::server::{Body, State, current_session, html, set};
use crate::session::Session;

/// The peer address of a connection, put in each request's extensions by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Minted tokens, per session and audience, reused until half their lifetime has passed.
pub struct TokenCache {
    cache: moka::sync::Cache<String, (Arc<str>, u64)>,
}

impl TokenCache {
    /// A cache bounded to `capacity` tokens, none kept longer than `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        TokenCache {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }
}

/// The bearer token for `session` and `audience`: cached, or minted now.
pub fn token_for(state: &State, session: &Session, audience: &str, now: u64) -> Option<Arc<str>> {
    let access = &state.config.access;
    let key = format!("{}\u{0}{audience}", session.sid);
    if let Some((token, minted)) = state.tokens.cache.get(&key) {
        // Reissue once half the lifetime is gone, so a downstream never gets a token
        // about to expire.
        if now.saturating_sub(minted) < access.token_ttl / 2 {
            return Some(token);
        }
    }
    let params = TokenParams {
        issuer: &access.issuer,
        audience,
        // Never beyond the session itself.
        ttl: access.token_ttl.min(session.exp.saturating_sub(now)),
    };
    match access
        .keys
        .sign(&session.principal, &params, now, &state.rng)
    {
        Ok(t) => {
            let t: Arc<str> = Arc::from(t);
            state.tokens.cache.insert(key, (t.clone(), now));
            Some(t)
        }
        Err(e) => {
            log::event("token_mint_failed", &[("code", e.code())]);
            None
        }
    }
}

/// The original request as the proxy saw it: `(host, path_and_query, absolute URL)`.
fn original(state: &State, req: &Request<Incoming>) -> (String, String, String) {
    let h = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let own_host = h("host").unwrap_or_default();
    let trusted = req
        .extensions()
        .get::<Peer>()
        .is_some_and(|p| state.config.access.trusts(p.0.ip()));
    let (host, uri, proto) = if trusted {
        let host = h("x-forwarded-host").unwrap_or(own_host);
        let uri = h("x-original-uri")
            .or_else(|| h("x-forwarded-uri"))
            .unwrap_or_else(|| "/".into());
        let proto = h("x-forwarded-proto");
        (host, uri, proto)
    } else {
        (own_host, "/".into(), None)
    };
    let proto = proto.unwrap_or_else(|| {
        if state.config.public_base_url.starts_with("https://") {
            "https".into()
        } else {
            "http".into()
        }
    });
    let uri = if uri.starts_with('/') {
        uri
    } else {
        "/".into()
    };
    let absolute = format!("{proto}://{host}{uri}");
    (host.to_ascii_lowercase(), uri, absolute)
}

fn spid_level(loa: Loa) -> u8 {
    match loa {
        Loa::Low => 1,
        Loa::Substantial => 2,
        Loa::High => 3,
    }
}

fn query_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /auth`.
pub fn auth(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let redirect_mode = req.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "mode" && v == "redirect")
    });
    let (host, uri, absolute) = original(state, req);
    let path = uri.split(['?', '#']).next().unwrap_or("/");
    let access = &state.config.access;
    let Some(route) = access.route(&host, path) else {
        return denied(
            "broker_no_route",
            "Questa pagina non è protetta da Varco.",
            "This page is not protected by Varco.",
        );
    };
    let allow_http = state.config.public_base_url.starts_with("http://");
    // Only a return address Varco would accept later is offered; otherwise the portal home.
    let return_to = access
        .return_to(&absolute, allow_http)
        .map_or_else(|| "/".to_owned(), str::to_owned);
    let base = &state.config.public_base_url;
    let Some(session) = current_session(state, req) else {
        let level = spid_level(route.policy.min_loa);
        let login = format!(
            "{base}/login?level={level}&return_to={}",
            query_encode(&return_to)
        );
        return unauthenticated(&login, redirect_mode, "no_session");
    };
    match route.policy.decide(&session.principal) {
        Decision::Allow => allowed(state, &session, route),
        Decision::StepUp(loa) => {
            let login = format!(
                "{base}/saml/login?idp={}&level={}&return_to={}",
                query_encode(&session.idp),
                spid_level(loa),
                query_encode(&return_to)
            );
            unauthenticated(&login, redirect_mode, "step_up")
        }
        d @ (Decision::MethodNotAllowed | Decision::ProfileNotAllowed) => {
            log::event("auth_denied", &[("code", d.code()), ("sid", &session.sid)]);
            denied(
                d.code(),
                "Il tipo di identità usato non è ammesso per questo servizio. Esci e accedi con un'altra identità.",
                "The kind of identity used is not accepted for this service. Sign out and sign in with another identity.",
            )
        }
    }
}

fn allowed(state: &State, session: &Session, route: &Route) -> Response<Body> {
    let now = unix((state.clock)());
    let mut r = Response::new(Full::new(Bytes::new()));
    for (name, claim) in &state.config.access.headers {
        let value = match claim {
            Claim::Token => match token_for(state, session, &route.audience, now) {
                Some(t) => HeaderValue::from_str(&format!("Bearer {t}")).ok(),
                None => return crate::server::internal("broker_token"),
            },
            // UTF-8 names (García) travel as raw bytes; control characters never do.
            c => c
                .value(&session.principal)
                .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()),
        };
        if let Some(v) = value {
            r.headers_mut().insert(name.clone(), v);
        }
    }
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

fn unauthenticated(login: &str, redirect_mode: bool, reason: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = if redirect_mode {
        StatusCode::FOUND
    } else {
        StatusCode::UNAUTHORIZED
    };
    if let Ok(v) = HeaderValue::from_str(login) {
        if redirect_mode {
            r.headers_mut().insert(header::LOCATION, v.clone());
        }
        r.headers_mut()
            .insert(header::HeaderName::from_static("x-varco-login"), v);
    }
    if let Ok(v) = HeaderValue::from_str(reason) {
        r.headers_mut()
            .insert(header::HeaderName::from_static("x-varco-reason"), v);
    }
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

fn denied(code: &str, it: &str, en: &str) -> Response<Body> {
    let mut r = html(
        StatusCode::FORBIDDEN,
        pages::simple("Accesso non consentito", "Access not allowed", it, en),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        r.headers_mut()
            .insert(header::HeaderName::from_static("x-varco-reason"), v);
    }
    r
}

/// `GET /.well-known/jwks.json`.
pub fn jwks(state: &State) -> Response<Body> {
    let now = unix((state.clock)());
    let body = state.config.access.keys.jwks(now).to_string();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    set(&mut r, header::CONTENT_TYPE, "application/jwk-set+json");
    // Short: a published key must reach verifiers before it signs.
    set(&mut r, header::CACHE_CONTROL, "public, max-age=300");
    r
}
