//! Reverse-proxy mode: a `[[route]]` with an `upstream` is served by Varco itself. The
//! session is checked like `/auth` does (same policy, same step-up), then the request is
//! passed on with its body streamed, the client's identity headers removed and Varco's set,
//! and the answer streamed back. Upgrades (WebSocket) are tunnelled once the upstream agrees
//! (101). Upstream failures become plain pages: 502 (unreachable, broken answer) and 504 (no
//! answer within `proxy.response_timeout_seconds`).
//!
//! Upstreams are plain `http://` (same host or private network); TLS toward upstreams is not
//! offered yet.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use identity::Decision;

use crate::features::access::Route;
use crate::leaf::clock::unix;
use crate::leaf::http::{OutBody, Peer, own};
use crate::leaf::pages;
use crate::state::State;
use crate::state::acting::{Outcome, Subject, acting_token, age_check, refusal_page, resolve};
use crate::state::current::{token_for, view};
use crate::state::views::{spid_level, step_up_url};

/// Headers meaningful only for one connection (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Client headers that make an upstream (or a framework in it) serve, trust or log another
/// request than the one Varco checked: rewrite and original-URL headers (IIS, Symfony,
/// Zend and Laravel read `X-Original-URL`/`X-Rewrite-URL` as the path), method overrides,
/// forwarded-host and -server names, and client-certificate verdicts that upstreams behind
/// a TLS terminator believe. Varco decided on the request line it received, so none of
/// these can be the client's; they are removed from every proxied request, in any
/// `_`/`-` spelling, whoever the peer is. docs/OPERATIONS.md lists them. (`X-Forwarded-Port`
/// and `-Prefix` are not here: a trusted proxy in front may set them for the upstream's URL
/// building; from any other peer they go with the client-address headers.)
pub const REWRITE_HEADERS: [&str; 24] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-server",
    "x-original-host",
    "x-host",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-method",
    "x-forwarded-method",
    "x-client-cert",
    "x-client-verify",
    "x-client-dn",
    "x-ssl-client-cert",
    "x-ssl-client-verify",
    "x-ssl-client-dn",
    "ssl-client-cert",
    "ssl-client-verify",
    "x-forwarded-client-cert",
    "x-forwarded-tls-client-cert",
    "x-arr-clientcert",
];

/// Removes [`REWRITE_HEADERS`] and `extra` (the configured CNS certificate, verdict and
/// secret headers), in any spelling that folds `_` into `-`.
pub fn strip_rewrite_headers(headers: &mut HeaderMap, extra: &[&HeaderName]) {
    let named: Vec<HeaderName> = headers
        .keys()
        .filter(|n| {
            let folded = n.as_str().replace('_', "-");
            REWRITE_HEADERS.contains(&folded.as_str()) || extra.iter().any(|c| c.as_str() == folded)
        })
        .cloned()
        .collect();
    for n in named {
        headers.remove(n);
    }
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(n);
    }
}

/// A WebSocket upgrade (the only protocol tunnelled: an `h2c` upgrade would hand the client
/// a raw connection to the upstream past every later check).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

fn page(state: &State, status: StatusCode, it: &str, en: &str, code: &str) -> Response<OutBody> {
    state
        .metrics
        .proxy_failures
        .with_label_values(&[code])
        .inc();
    tracing::warn!(event = "proxy_failed", code = %code, status = %status.as_str());
    let title = match status {
        StatusCode::GATEWAY_TIMEOUT => ("Servizio lento", "Service too slow"),
        _ => ("Servizio non raggiungibile", "Service unreachable"),
    };
    own(crate::leaf::http::html(
        status,
        pages::simple(title.0, title.1, it, en),
    ))
}

fn redirect(location: &str) -> Response<OutBody> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    own(r)
}

/// Why an open tunnel must close now, if it must: the session expired, was revoked (logout
/// on any replica, a newer login), went idle past `session.idle_timeout_seconds` (tunnel
/// traffic is not activity: only requests through Varco are), or the switch-off policy no
/// longer lets it open this route.
pub async fn tunnel_ended(
    state: &State,
    session: &crate::leaf::session::Session,
    route: &Route,
) -> Option<&'static str> {
    let now = unix((state.clock)());
    if session.exp <= now {
        return Some("expired");
    }
    match state.store.peek_session(&session.sid).await {
        crate::features::store::Activity::Revoked => return Some("revoked"),
        // No mark reads as idle since login, as in `state::current::live`.
        crate::features::store::Activity::Seen(last) => {
            let last = last.unwrap_or(session.iat);
            if let Some(idle) = state.config.idle_timeout {
                if now.saturating_sub(last) > idle.as_secs() {
                    // Over for good, as a request would find it.
                    let remaining = Duration::from_secs(session.exp.saturating_sub(now));
                    crate::state::provider::revoke_session(state, &session.sid, remaining).await;
                    return Some("idle");
                }
            }
        }
    }
    if !crate::features::switchoff::session_may_open(&state.config.switchoff, session, route, now) {
        return Some("switch_off");
    }
    None
}

/// Serves `req` for `route`, whose `upstream` is set.
pub async fn forward(
    state: &std::sync::Arc<State>,
    route: &Route,
    mut req: Request<Incoming>,
) -> Response<OutBody> {
    let Some(upstream) = route.upstream.as_ref() else {
        return page(
            state,
            StatusCode::BAD_GATEWAY,
            "Nessun servizio configurato.",
            "No service configured.",
            "proxy_no_upstream",
        );
    };
    if !crate::features::access::canonical_path(req.uri().path()) {
        tracing::info!(event = "auth_refused", code = "broker_noncanonical_path");
        state.metrics.decided("broker_noncanonical_path");
        return own(crate::leaf::http::html(
            StatusCode::BAD_REQUEST,
            pages::simple(
                "Richiesta non valida",
                "Invalid request",
                "L'indirizzo richiesto non è in forma canonica.",
                "The requested address is not in canonical form.",
            ),
        ));
    }
    let now = unix((state.clock)());
    let base = &state.config.public_base_url;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let return_to = || {
        let scheme = if base.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        let absolute = format!("{scheme}://{host}{path_and_query}");
        let allow_http = scheme == "http";
        let ok = state
            .config
            .access
            .return_to(&absolute, allow_http)
            .is_some();
        crate::leaf::form::encode(if ok { &absolute } else { "/" })
    };
    let decided = |outcome: &str| state.metrics.decided(outcome);
    let Some(view) = view(state, &req, now).await else {
        decided("no_session");
        let level = spid_level(route.policy.min_loa);
        return redirect(&format!(
            "{base}/login?level={level}&return_to={}",
            return_to()
        ));
    };
    let decision = route.policy.decide(&view.session.principal);
    // As `/auth`: method and level of the delegate's login, profile and age of the subject.
    let mut subject = Subject::Own;
    if matches!(decision, Decision::Allow | Decision::ProfileNotAllowed) {
        match resolve(state, &view, route, &return_to(), now).await {
            Outcome::Go(s) => subject = s,
            Outcome::Choose(url) => {
                decided("represent_chooser");
                return redirect(&url);
            }
            Outcome::Refused(r) => {
                decided(r.code);
                return own(refusal_page(&r, r.status));
            }
        }
    }
    let decision = match &subject {
        Subject::Acting(a) => route.policy.decide(a.acting.principal()),
        Subject::Own => decision,
    };
    if decision == Decision::Allow {
        if let Err(r) = age_check(route, subject.principal(&view.session), now) {
            decided(r.code);
            tracing::info!(event = "auth_denied", code = %r.code, sid = %view.session.sid);
            return own(refusal_page(&r, r.status));
        }
    }
    if decision == Decision::Allow
        && !crate::features::switchoff::session_may_open(
            &state.config.switchoff,
            &view.session,
            route,
            now,
        )
    {
        decided(crate::features::switchoff::NOT_ALLOWED);
        tracing::info!(event = "auth_denied", code = %crate::features::switchoff::NOT_ALLOWED, sid = %view.session.sid);
        return own(crate::leaf::http::html(
            StatusCode::FORBIDDEN,
            pages::simple(
                "Accesso non consentito",
                "Access not allowed",
                "Le credenziali del portale non sono più valide per questo servizio. Esci e accedi con SPID, CIE o CNS.",
                "The portal's own credentials are no longer valid for this service. Sign out and sign in with SPID, CIE or CNS.",
            ),
        ));
    }
    decided(match decision {
        Decision::Allow => "allow",
        Decision::StepUp(_) => "step_up",
        d => d.code(),
    });
    match decision {
        Decision::Allow => {}
        Decision::StepUp(loa) => {
            return redirect(&step_up_url(base, &view.session, loa, &return_to()));
        }
        d @ (Decision::MethodNotAllowed | Decision::ProfileNotAllowed) => {
            tracing::info!(event = "auth_denied", code = %d.code(), sid = %view.session.sid);
            return own(crate::leaf::http::html(
                StatusCode::FORBIDDEN,
                pages::simple(
                    "Accesso non consentito",
                    "Access not allowed",
                    "Il tipo di identità usato non è ammesso per questo servizio.",
                    "The kind of identity used is not accepted for this service.",
                ),
            ));
        }
    }

    // The request as the upstream will see it.
    let upgrade = is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let upgrade_headers = upgrade.then(|| {
        (
            parts.headers.get(header::UPGRADE).cloned(),
            HeaderValue::from_static("upgrade"),
        )
    });
    strip_hop_by_hop(&mut parts.headers);
    let access = &state.config.access;
    // Nothing identity-like from the client reaches the upstream: every configured header,
    // the token header, and any X-Varco-* at all, in any spelling a CGI-style upstream would
    // fold into the same variable (`X_Varco_Sub` is `HTTP_X_VARCO_SUB` too).
    let folded = |n: &str| n.replace('_', "-");
    let identity_like = |n: &HeaderName| {
        let f = folded(n.as_str());
        f.starts_with("x-varco-")
            || access.headers.iter().any(|(h, _)| h.as_str() == f)
            || access
                .token_header
                .as_ref()
                .is_some_and(|h| h.as_str() == f)
    };
    let client_names: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|n| identity_like(n))
        .cloned()
        .collect();
    for n in client_names {
        parts.headers.remove(n);
    }
    // The CNS headers too: a proxy in front that set the CNS secret on every location must
    // not hand it to the upstreams.
    let cns_headers: Vec<&HeaderName> = state
        .config
        .cns
        .as_ref()
        .and_then(|c| c.header.as_ref())
        .map(|h| vec![&h.name, &h.verify, &h.secret_header])
        .unwrap_or_default();
    strip_rewrite_headers(&mut parts.headers, &cns_headers);
    // Varco's own cookies are its business: an upstream that saw the session cookie could
    // replay it against Varco for other routes and audiences.
    let cookies: Vec<String> = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            !name.is_empty()
                && name != state.config.cookie_name
                && name != crate::state::login::login_cookie(state)
        })
        .map(str::to_owned)
        .collect();
    parts.headers.remove(header::COOKIE);
    if !cookies.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&cookies.join("; ")) {
            parts.headers.insert(header::COOKIE, v);
        }
    }
    let identity_headers = match &subject {
        Subject::Own => view.headers(),
        Subject::Acting(a) => &a.headers,
    };
    for (name, value) in identity_headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    if let Some(name) = &access.token_header {
        let token = match &subject {
            Subject::Own => token_for(state, &view, &route.audience, now),
            Subject::Acting(a) => acting_token(state, &view, a, &route.audience, now),
        };
        match token {
            Some(v) => {
                parts.headers.insert(name.clone(), v);
            }
            None => return own(crate::leaf::http::internal("broker_token")),
        }
    }
    // Client-address headers: believed (and extended) only from a trusted proxy in front of
    // Varco; from anyone else, replaced by the peer's address, so upstream logs record who
    // really connected.
    let peer = parts.extensions.get::<Peer>().map(|p| p.0.ip());
    let trusted = peer.is_some_and(|ip| access.trusts(ip));
    if !trusted {
        for name in [
            "forwarded",
            "x-real-ip",
            "x-forwarded-port",
            "x-forwarded-prefix",
        ] {
            parts.headers.remove(name);
        }
    }
    if let Some(ip) = peer {
        let xff = match parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) if trusted => format!("{prev}, {ip}"),
            _ => ip.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            parts.headers.insert("x-forwarded-for", v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&host) {
        parts.headers.insert("x-forwarded-host", v);
    }
    let proto = if base.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static(proto));
    // The upstream's logs can name the same request as Varco's (a client's own value was
    // already ignored unless it came from a trusted proxy: this is the id Varco uses).
    if let Some(id) = crate::leaf::logging::request_id() {
        parts.headers.insert("x-request-id", id.into_header_value());
    }
    if let Some((Some(protocol), connection)) = upgrade_headers {
        parts.headers.insert(header::UPGRADE, protocol);
        parts.headers.insert(header::CONNECTION, connection);
    }
    parts.uri = match Uri::try_from(format!("{upstream}{path_and_query}")) {
        Ok(u) => u,
        Err(_) => {
            return page(
                state,
                StatusCode::BAD_GATEWAY,
                "Indirizzo del servizio non valido.",
                "Invalid service address.",
                "proxy_bad_uri",
            );
        }
    };
    parts.extensions = Default::default();
    let upstream_req = Request::from_parts(parts, body);

    let sent = tokio::time::timeout(
        state.upstreams.response_timeout,
        state.upstreams.client.request(upstream_req),
    )
    .await;
    let mut resp = match sent {
        Err(_) => {
            return page(
                state,
                StatusCode::GATEWAY_TIMEOUT,
                "Il servizio non ha risposto in tempo. Riprova più tardi.",
                "The service did not answer in time. Please try again later.",
                "proxy_timeout",
            );
        }
        Ok(Err(e)) => {
            tracing::warn!(event = "proxy_upstream_error", error = %e);
            return page(
                state,
                StatusCode::BAD_GATEWAY,
                "Il servizio non è raggiungibile. Riprova più tardi.",
                "The service cannot be reached. Please try again later.",
                "proxy_unreachable",
            );
        }
        Ok(Ok(r)) => r,
    };

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            // The tunnel ends with the session: at `exp`, and at the first check (every
            // `proxy.tunnel_check_seconds`) after a logout, a revocation, the idle timeout or
            // a switch-off cut-off. Dropping both ends closes both connections.
            let lifetime = Duration::from_secs(view.session.exp.saturating_sub(now));
            let every = state.config.access.tunnel_check;
            let state = state.clone();
            let session = view.session.clone();
            let route = route.clone();
            tokio::spawn(async move {
                if let (Ok(client), Ok(upstream)) = (client_upgrade.await, upstream_upgrade.await) {
                    let mut client = TokioIo::new(client);
                    let mut upstream = TokioIo::new(upstream);
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
                    let mut copy = std::pin::pin!(copy);
                    let expiry = tokio::time::sleep(lifetime);
                    let mut expiry = std::pin::pin!(expiry);
                    let mut checks = tokio::time::interval(every);
                    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let reason = loop {
                        tokio::select! {
                            _ = copy.as_mut() => break None,
                            () = expiry.as_mut() => break Some("expired"),
                            _ = checks.tick() => {
                                if let Some(reason) = tunnel_ended(&state, &session, &route).await {
                                    break Some(reason);
                                }
                            }
                        }
                    };
                    if let Some(reason) = reason {
                        tracing::info!(event = "tunnel_closed", reason = reason, sid = %session.sid);
                    }
                }
            });
        }
        // 101 keeps its Upgrade/Connection headers: they are the answer to the client.
        return crate::leaf::http::upstream(resp);
    }
    strip_hop_by_hop(resp.headers_mut());
    crate::leaf::http::upstream(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name: value` plus an unrelated header, stripped; returns what is left.
    fn after_strip(name: &str, cns: Option<&str>) -> Vec<String> {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static("/riservato"),
        );
        h.insert("accept", HeaderValue::from_static("*/*"));
        let cns = cns.map(|c| HeaderName::from_bytes(c.as_bytes()).unwrap());
        let extra: Vec<&HeaderName> = cns.iter().collect();
        strip_rewrite_headers(&mut h, &extra);
        h.keys().map(|k| k.as_str().to_owned()).collect()
    }

    macro_rules! stripped {
        ($($test:ident: $name:expr,)*) => {
            /// Every header the tests below strip.
            const TESTED: &[&str] = &[$($name),*];
            $(
            #[test]
            fn $test() {
                assert_eq!(after_strip($name, None), ["accept"], "{}", $name);
                let underscored = $name.replace('-', "_");
                assert_eq!(after_strip(&underscored, None), ["accept"], "{underscored}");
                assert_eq!(after_strip(&$name.to_ascii_uppercase(), None), ["accept"]);
            }
        )*};
    }

    stripped! {
        strips_x_original_url: "x-original-url",
        strips_x_rewrite_url: "x-rewrite-url",
        strips_x_original_uri: "x-original-uri",
        strips_x_forwarded_uri: "x-forwarded-uri",
        strips_x_forwarded_path: "x-forwarded-path",
        strips_x_forwarded_server: "x-forwarded-server",
        strips_x_original_host: "x-original-host",
        strips_x_host: "x-host",
        strips_x_http_method_override: "x-http-method-override",
        strips_x_http_method: "x-http-method",
        strips_x_method_override: "x-method-override",
        strips_x_original_method: "x-original-method",
        strips_x_forwarded_method: "x-forwarded-method",
        strips_x_client_cert: "x-client-cert",
        strips_x_client_verify: "x-client-verify",
        strips_x_client_dn: "x-client-dn",
        strips_x_ssl_client_cert: "x-ssl-client-cert",
        strips_x_ssl_client_verify: "x-ssl-client-verify",
        strips_x_ssl_client_dn: "x-ssl-client-dn",
        strips_ssl_client_cert: "ssl-client-cert",
        strips_ssl_client_verify: "ssl-client-verify",
        strips_x_forwarded_client_cert: "x-forwarded-client-cert",
        strips_x_forwarded_tls_client_cert: "x-forwarded-tls-client-cert",
        strips_x_arr_clientcert: "x-arr-clientcert",
    }

    #[test]
    fn every_listed_header_has_its_test() {
        let mut listed = REWRITE_HEADERS.to_vec();
        let mut tested = TESTED.to_vec();
        listed.sort_unstable();
        tested.sort_unstable();
        assert_eq!(listed, tested);
    }

    #[test]
    fn the_configured_cns_header_is_stripped_and_others_pass() {
        assert_eq!(after_strip("x-cns-cert", Some("x-cns-cert")), ["accept"]);
        assert_eq!(after_strip("x_cns_cert", Some("x-cns-cert")), ["accept"]);
        let mut left = after_strip("x-cns-cert", None);
        left.sort();
        assert_eq!(left, ["accept", "x-cns-cert"]);
        let mut left = after_strip("x-original-url-note", None);
        left.sort();
        assert_eq!(left, ["accept", "x-original-url-note"]);
    }
}
