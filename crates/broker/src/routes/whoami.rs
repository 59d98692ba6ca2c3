//! `GET /whoami`: the current session, for the portal and for debugging.
//!
//! May import: `state`, `features`, the leaf.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};

use crate::leaf::http::{Body, set};
use crate::state::State;
use crate::state::current::current_session;

/// `GET /whoami`: the current session as JSON, 401 without one.
pub async fn whoami(state: &State, req: &Request<Incoming>) -> Response<Body> {
    match current_session(state, req).await {
        Some(s) => {
            let body = serde_json::to_string_pretty(&s).unwrap_or_else(|_| "{}".into());
            let mut r = Response::new(Full::new(Bytes::from(body)));
            set(&mut r, header::CONTENT_TYPE, "application/json");
            set(&mut r, header::CACHE_CONTROL, "no-store");
            r
        }
        None => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"{\"error\":\"no_session\"}")));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            set(&mut r, header::CONTENT_TYPE, "application/json");
            r
        }
    }
}
