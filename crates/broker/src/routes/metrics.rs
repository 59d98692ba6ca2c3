//! `GET /metrics`: the Prometheus exposition, for peers in `metrics.allow` only.
//!
//! May import: `state`, `features`, the leaf.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};

use crate::leaf::http::{Body, html, set};
use crate::leaf::pages;
use crate::state::State;

/// `GET /metrics`, for peers in `metrics.allow` only.
pub fn metrics(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let allowed = req
        .extensions()
        .get::<crate::leaf::http::Peer>()
        .is_some_and(|p| {
            state
                .config
                .access
                .metrics_allow
                .iter()
                .any(|n| n.contains(p.0.ip()))
        });
    if !allowed {
        return html(
            StatusCode::FORBIDDEN,
            pages::simple("Accesso non consentito", "Access not allowed", "", ""),
        );
    }
    state.metrics.audit_up.set(i64::from(state.audit.is_up()));
    let now = (state.clock)();
    state.metrics.expiries(
        state
            .config
            .expiries
            .iter()
            .map(|e| (e.kind, e.name.as_str(), e.not_after)),
        i64::try_from(crate::leaf::clock::unix(now)).unwrap_or(i64::MAX),
    );
    let body = state.metrics.render(&state.refresher, (state.clock)());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    set(
        &mut r,
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}
