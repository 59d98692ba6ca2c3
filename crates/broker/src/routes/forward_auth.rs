//! `GET /auth` for nginx `auth_request` and Traefik ForwardAuth, `GET /.well-known/jwks.json`,
//! and the per-session token cache.
//!
//! The original request (host and URI) is read from `X-Original-URI` / `X-Forwarded-Host` /
//! `X-Forwarded-Uri` / `X-Forwarded-Proto`, and only when the peer is a trusted proxy
//! (`forward_auth.trusted_proxies`). Any other peer gets 403 `broker_untrusted_proxy` (a
//! warning in the log, the outcome in the decisions metric): deciding for `/` instead would
//! put every stricter route under `/`'s policy after one trust mistake. A trusted proxy that
//! names no original URI gets 400 `broker_missing_original_uri`, for the same reason.
//!
//! Answers:
//! - 200 with the identity headers and `Authorization: Bearer <jwt>` when the session satisfies
//!   the route's policy;
//! - 401 (or, with `?mode=redirect`, for Traefik, a 302) when there is no session or its level
//!   is too low; `X-Varco-Login` carries the login URL in both cases (nginx reads it with
//!   `auth_request_set`). A too-low level gets a step-up login at the same IdP and the level
//!   the route needs, not a dead end;
//! - 403 when the method or profile is not accepted by the route.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode};
use identity::Decision;

use crate::features::access::Route;
use crate::leaf::clock::unix;
use crate::leaf::form::encode;
use crate::leaf::http::Peer;
use crate::leaf::http::{Body, html, set};
use crate::leaf::logging::RequestId;
use crate::leaf::pages;
use crate::state::State;
use crate::state::acting::{
    Outcome, Refusal, Subject, acting_token, age_check, refusal_page, resolve,
};
use crate::state::current::{own_answer, view};
use crate::state::views::{View, spid_level, step_up_url};

/// What the proxy says the original request was. Borrowed from the headers; only the
/// trusted-proxy rule decides which headers count.
struct Original<'r> {
    host: std::borrow::Cow<'r, str>,
    uri: &'r str,
    proto: &'r str,
}

impl Original<'_> {
    /// The URI up to its query or fragment: what `split(['?', '#']).next()` gives, found by
    /// `memchr2` instead of a char-by-char search (issue 20: read twice per answer).
    fn path(&self) -> &str {
        match memchr::memchr2(b'?', b'#', self.uri.as_bytes()) {
            // Both are ASCII: the cut is on a character boundary.
            Some(i) => self.uri.get(..i).unwrap_or("/"),
            None => self.uri,
        }
    }

    fn absolute(&self) -> String {
        format!("{}://{}{}", self.proto, self.host, self.uri)
    }
}

// The headers the original request is read from, matched by name in one pass over the
// request's headers ([`Given::of`]).
const X_ORIGINAL_URI: &str = "x-original-uri";
const X_FORWARDED_URI: &str = "x-forwarded-uri";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_REQUEST_ID: &str = "x-request-id";

/// The code of a `/auth` request from a peer outside `forward_auth.trusted_proxies`.
const UNTRUSTED: &str = "broker_untrusted_proxy";

/// What a trusted proxy's request says about the original one: for each header `/auth`
/// reads, its first value (`None` when absent or not visible ASCII, as `HeaderValue::to_str`
/// says), and whether any of them came more than once; and, in the same pass, the
/// `X-Request-Id` the server takes from a trusted proxy (`server::request_id`).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Given<'r> {
    host: Option<&'r str>,
    original_uri: Option<&'r str>,
    forwarded_uri: Option<&'r str>,
    forwarded_proto: Option<&'r str>,
    forwarded_host: Option<&'r str>,
    repeated: bool,
    request_id: Option<&'r str>,
    request_id_repeated: bool,
}

impl<'r> Given<'r> {
    /// One pass over `headers`, each name compared once, where a lookup per header hashed
    /// each of the five names (issue 20: every forward-auth answer reads them).
    pub(crate) fn of(headers: &'r HeaderMap) -> Self {
        let mut given = Given::default();
        // Values seen per header, in the order of the fields above.
        let mut seen = [0u8; 6];
        for (name, value) in headers {
            let (i, slot) = match name.as_str() {
                "host" => (0, &mut given.host),
                X_ORIGINAL_URI => (1, &mut given.original_uri),
                X_FORWARDED_URI => (2, &mut given.forwarded_uri),
                X_FORWARDED_PROTO => (3, &mut given.forwarded_proto),
                X_FORWARDED_HOST => (4, &mut given.forwarded_host),
                X_REQUEST_ID => (5, &mut given.request_id),
                _ => continue,
            };
            // The first value is the one read (a map yields a name's values in order).
            if seen[i] == 0 {
                *slot = value.to_str().ok();
            }
            seen[i] = seen[i].saturating_add(1);
        }
        given.repeated = seen[..5].iter().any(|&n| n > 1);
        given.request_id_repeated = seen[5] > 1;
        given
    }

    /// The proxy's `X-Request-Id` when it sent exactly one and it is well formed.
    pub(crate) fn request_id(&self) -> Option<RequestId> {
        if self.request_id_repeated {
            return None;
        }
        RequestId::parse(self.request_id?)
    }
}

/// `given`: the request's headers ([`Given::of`]) when its peer is a trusted proxy, `None`
/// for any other peer.
fn original<'r>(state: &State, given: Option<&Given<'r>>) -> Result<Original<'r>, &'static str> {
    let default_proto = if state.config.public_base_url.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let Some(given) = given else {
        return Err(UNTRUSTED);
    };
    // One value per header: two (a client's copy passed through beside the proxy's) would
    // leave the choice to whichever the code happened to read.
    // nginx sends X-Original-URI, Traefik X-Forwarded-Uri; a proxy that passes the client's
    // headers through would let a client add the other one and choose the route checked.
    let uri = match (given.original_uri, given.forwarded_uri) {
        (Some(a), Some(b)) if a != b => return Err("broker_ambiguous_original_uri"),
        (Some(u), _) | (None, Some(u)) => u,
        (None, None) => return Err("broker_missing_original_uri"),
    };
    if !uri.starts_with('/') {
        return Err("broker_noncanonical_path");
    }
    let proto = match given.forwarded_proto {
        Some("https") => "https",
        Some("http") => "http",
        _ => default_proto,
    };
    let host = given
        .forwarded_host
        .unwrap_or(given.host.unwrap_or_default());
    if given.repeated {
        return Err("broker_ambiguous_original_uri");
    }
    // nginx's `$host:$server_port` names the default port too; routes and allowed hosts
    // don't. A list or an invalid value is refused, not matched against the any-host routes.
    let host = crate::features::access::normalize_host_borrowed(host, proto == "https")
        .ok_or(crate::features::access::BAD_HOST)?;
    Ok(Original { host, uri, proto })
}

/// `GET /auth`, the peer in the request's extensions ([`Peer`]).
pub async fn auth<B>(state: &State, req: &Request<B>) -> Response<Body> {
    auth_from(state, req, req.extensions().get::<Peer>().copied()).await
}

/// `GET /auth` from `peer`, the connection's.
pub async fn auth_from<B>(state: &State, req: &Request<B>, peer: Option<Peer>) -> Response<Body> {
    let trusted = peer.is_some_and(|p| state.config.access.trusts(p.0.ip()));
    let given = trusted.then(|| Given::of(req.headers()));
    auth_given(state, req, peer, given.as_ref()).await
}

/// `GET /auth` from `peer`, the connection's, with `given` read from the request's headers
/// when `peer` is a trusted proxy (`None` otherwise): the server reads them once for the
/// request id and the check (issue 20).
pub(crate) async fn auth_given<B>(
    state: &State,
    req: &Request<B>,
    peer: Option<Peer>,
    given: Option<&Given<'_>>,
) -> Response<Body> {
    let redirect_mode = req.uri().query().is_some_and(|q| {
        crate::leaf::form::text_pairs(q.as_bytes()).any(|(k, v)| k == "mode" && v == "redirect")
    });
    let access = &state.config.access;
    let decided = |outcome: &str| state.metrics.decided(outcome);
    let checked = original(state, given).and_then(|o| {
        if crate::features::access::canonical_path(o.path()) {
            Ok(o)
        } else {
            Err("broker_noncanonical_path")
        }
    });
    let original = match checked {
        Ok(o) => o,
        Err(UNTRUSTED) => {
            decided(UNTRUSTED);
            // The operator's mistake to see: which peer, and that nothing was decided.
            let peer = peer.map(|p| p.0.ip().to_string());
            tracing::warn!(
                event = "auth_untrusted_peer",
                code = UNTRUSTED,
                peer = peer.as_deref().unwrap_or("unknown"),
                "a peer outside forward_auth.trusted_proxies asked /auth; refused"
            );
            return denied(
                UNTRUSTED,
                "La richiesta non proviene da un proxy autorizzato.",
                "The request does not come from an authorized proxy.",
            );
        }
        Err(code) => {
            decided(code);
            return bad_request(code);
        }
    };
    let route = match access.route(&original.host, original.path()) {
        Ok(r) => r,
        Err(crate::features::access::UNKNOWN_HOST) => {
            decided(crate::features::access::UNKNOWN_HOST);
            tracing::info!(event = "auth_refused", code = crate::features::access::UNKNOWN_HOST, host = %original.host);
            return denied(
                crate::features::access::UNKNOWN_HOST,
                "Questo sito non è tra quelli protetti da Varco.",
                "This site is not one of those Varco protects.",
            );
        }
        Err(code) => {
            decided("no_route");
            return denied(
                code,
                "Questa pagina non è protetta da Varco.",
                "This page is not protected by Varco.",
            );
        }
    };
    let now = unix((state.clock)());
    // Where to come back after a login: only an address Varco would accept later, else `/`.
    let return_to = || {
        let absolute = original.absolute();
        let ok = state.config.return_to(&absolute).is_some();
        encode(if ok { &absolute } else { "/" })
    };
    let base = &state.config.public_base_url;
    let Some(view) = view(state, req, now).await else {
        let level = spid_level(route.policy.min_loa);
        let login = format!("{base}/login?level={level}&return_to={}", return_to());
        decided("no_session");
        return unauthenticated(&login, redirect_mode, "no_session");
    };
    let session = &view.session;
    let decision = route.policy.decide(&session.principal);
    // Method and level are the delegate's own login (step-up included); the profile and the
    // age are the subject's, who may be someone the person represents (issue 24).
    let mut subject = Subject::Own;
    // A route with no representation service acts as the person themselves (what `resolve`
    // answers first): building the return address for a chooser that cannot come costs three
    // allocations per allowed request (issue 20: the `/auth` path allocates nothing of its
    // own for a cached session on such a route, see docs/PERFORMANCE.md).
    if route.service.is_some() && matches!(decision, Decision::Allow | Decision::ProfileNotAllowed)
    {
        match resolve(state, &view, route, &return_to(), now).await {
            Outcome::Go(s) => subject = s,
            Outcome::Choose(url) => {
                decided("represent_chooser");
                return unauthenticated(&url, redirect_mode, "represent_chooser");
            }
            Outcome::Refused(r) => {
                decided(r.code);
                return refusal(&r);
            }
        }
    }
    let decision = match &subject {
        Subject::Acting(a) => route.policy.decide(a.acting.principal()),
        Subject::Own => decision,
    };
    if decision == Decision::Allow {
        if let Err(r) = age_check(route, subject.principal(session), now) {
            decided(r.code);
            tracing::info!(event = "auth_denied", code = %r.code, sid = %session.sid);
            return refusal(&r);
        }
    }
    if decision == Decision::Allow
        && !crate::features::switchoff::session_may_open(
            &state.config.switchoff,
            session,
            route,
            now,
        )
    {
        decided(crate::features::switchoff::NOT_ALLOWED);
        tracing::info!(event = "auth_denied", code = %crate::features::switchoff::NOT_ALLOWED, sid = %session.sid);
        return denied(
            crate::features::switchoff::NOT_ALLOWED,
            "Le credenziali del portale non sono più valide per questo servizio. Esci e accedi con SPID, CIE o CNS.",
            "The portal's own credentials are no longer valid for this service. Sign out and sign in with SPID, CIE or CNS.",
        );
    }
    decided(match decision {
        Decision::Allow => "allow",
        Decision::StepUp(_) => "step_up",
        d => d.code(),
    });
    match decision {
        Decision::Allow => allowed(state, &view, &subject, route, now),
        Decision::StepUp(loa) => {
            let login = step_up_url(base, session, loa, &return_to());
            unauthenticated(&login, redirect_mode, "step_up")
        }
        d @ (Decision::MethodNotAllowed | Decision::ProfileNotAllowed) => {
            tracing::info!(event = "auth_denied", code = %d.code(), sid = %session.sid);
            denied(
                d.code(),
                "Il tipo di identità usato non è ammesso per questo servizio. Esci e accedi con un'altra identità.",
                "The kind of identity used is not accepted for this service. Sign out and sign in with another identity.",
            )
        }
    }
}

fn allowed(
    state: &State,
    view: &View,
    subject: &Subject,
    route: &Route,
    now: u64,
) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    let a = match subject {
        Subject::Own => {
            // Built once per token, cloned per answer (`own_answer`).
            return match own_answer(state, view, &route.audience, now) {
                Some(headers) => {
                    *r.headers_mut() = headers;
                    r
                }
                None => crate::leaf::http::internal("broker_token"),
            };
        }
        Subject::Acting(a) => a,
    };
    let headers = r.headers_mut();
    let own = &a.headers;
    headers.reserve(own.len() + 2);
    for (name, value) in own {
        headers.insert(name.clone(), value.clone());
    }
    if let Some(name) = &state.config.access.token_header {
        match acting_token(state, view, a, &route.audience, now) {
            Some(v) => {
                headers.insert(name.clone(), v);
            }
            None => return crate::leaf::http::internal("broker_token"),
        }
    }
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// 400 for a request whose original URL cannot be checked unambiguously.
fn bad_request(code: &str) -> Response<Body> {
    tracing::info!(event = "auth_refused", code = %code);
    let mut r = html(
        StatusCode::BAD_REQUEST,
        pages::simple(
            "Richiesta non valida",
            "Invalid request",
            "L'indirizzo richiesto non è in forma canonica.",
            "The requested address is not in canonical form.",
        ),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        r.headers_mut()
            .insert(HeaderName::from_static("x-varco-reason"), v);
    }
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
            .insert(HeaderName::from_static("x-varco-login"), v);
    }
    if let Ok(v) = HeaderValue::from_str(reason) {
        r.headers_mut()
            .insert(HeaderName::from_static("x-varco-reason"), v);
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
            .insert(HeaderName::from_static("x-varco-reason"), v);
    }
    r
}

/// A representation or age refusal as `/auth` answers it: always 403 (nginx's
/// `auth_request` turns any other status into a 500), the code in `X-Varco-Reason`, the
/// page for proxies that pass the body on (Traefik).
fn refusal(r: &Refusal) -> Response<Body> {
    refusal_page(r, StatusCode::FORBIDDEN)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The headers as read before [`Given::of`], one lookup per name (issue 20): the
    /// reference the one pass is compared with.
    fn given_by_lookup(headers: &HeaderMap) -> Given<'_> {
        let mut repeated = false;
        let mut h = |name: &str| {
            let mut values = headers.get_all(name).iter();
            let first = values.next().and_then(|v| v.to_str().ok());
            repeated |= values.next().is_some();
            first
        };
        let host = h("host");
        let original_uri = h(X_ORIGINAL_URI);
        let forwarded_uri = h(X_FORWARDED_URI);
        let forwarded_proto = h(X_FORWARDED_PROTO);
        let forwarded_host = h(X_FORWARDED_HOST);
        let mut request_id_repeated = false;
        let mut values = headers.get_all(X_REQUEST_ID).iter();
        let request_id = values.next().and_then(|v| v.to_str().ok());
        request_id_repeated |= values.next().is_some();
        Given {
            host,
            original_uri,
            forwarded_uri,
            forwarded_proto,
            forwarded_host,
            repeated,
            request_id,
            request_id_repeated,
        }
    }

    #[test]
    fn the_original_path_is_the_uri_up_to_its_query_or_fragment_as_split_gives_it() {
        for uri in [
            "/", "/a", "/a?b", "/a#b", "/a?b#c", "/a#b?c", "?", "#", "", "/é?x", "/a/é#", "/a??",
        ] {
            let o = Original {
                host: "h".into(),
                uri,
                proto: "https",
            };
            assert_eq!(o.path(), uri.split(['?', '#']).next().unwrap(), "{uri:?}");
        }
    }

    #[test]
    fn the_original_request_is_read_in_one_pass_as_by_lookups() {
        let names = [
            "host",
            X_ORIGINAL_URI,
            X_FORWARDED_URI,
            X_FORWARDED_PROTO,
            X_FORWARDED_HOST,
            X_REQUEST_ID,
            "cookie",
        ];
        // Per name: absent, one value, one value that is not visible ASCII, two values
        // (either first), in every combination of two names, in both orders of insertion.
        let values: [&[&[u8]]; 5] = [
            &[],
            &[b"/a"],
            &[b"/caf\xc3\xa9"],
            &[b"/a", b"/b"],
            &[b"/caf\xc3\xa9", b"/a"],
        ];
        let mut compared = 0;
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                for va in values {
                    for vb in values {
                        for order in [[(a, va), (b, vb)], [(b, vb), (a, va)]] {
                            let mut headers = HeaderMap::new();
                            headers.insert("x-other", HeaderValue::from_static("1"));
                            for (name, vs) in order {
                                for v in vs {
                                    headers.append(
                                        HeaderName::from_static(name),
                                        HeaderValue::from_bytes(v).unwrap(),
                                    );
                                }
                            }
                            assert_eq!(
                                Given::of(&headers),
                                given_by_lookup(&headers),
                                "{headers:?}"
                            );
                            compared += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(compared, 21 * 25 * 2);
    }
}
