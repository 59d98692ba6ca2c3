//! `GET /whoami`: the current session, for the portal and for debugging.
//!
//! With `?service=<route service>` and a session acting for someone on that service (issue
//! 24), the answer is the acting identity: `principal` is the represented party, `act` the
//! person logged in (RFC 8693), `representation` the record used, each asked of its source
//! again now; a choice that no longer holds shows its refusal code instead.
//!
//! May import: `state`, `features`, the leaf.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};

use crate::leaf::clock::unix;
use crate::leaf::http::{Body, set};
use crate::leaf::session::{ActingAs, Session};
use crate::state::State;
use crate::state::current::current_session;

/// `GET /whoami`: the current session as JSON, 401 without one.
pub async fn whoami(state: &State, req: &Request<Incoming>) -> Response<Body> {
    match current_session(state, req).await {
        Some(s) => {
            let service = crate::leaf::form::text_pairs(req.uri().query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "service")
                .map(|(_, v)| v.into_owned());
            let mut value = serde_json::to_value(&s).unwrap_or_default();
            if let Some(service) = service {
                acting(state, &s, &service, &mut value).await;
            }
            let body = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into());
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

/// Replaces `principal` by the acting identity for `service`, if the session acts for
/// someone there and the representation still holds.
async fn acting(state: &State, s: &Session, service: &str, value: &mut serde_json::Value) {
    let (Some(ActingAs::Other { source, reference }), Some(rule)) = (
        s.acting.get(service),
        state.config.represent.service(service),
    ) else {
        return;
    };
    let now = unix((state.clock)());
    let answer = state
        .config
        .represent
        .act(rule, &s.principal, source, reference, service, now)
        .await;
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    match answer {
        Ok(Ok(a)) => {
            obj.insert(
                "principal".into(),
                serde_json::to_value(a.principal()).unwrap_or_default(),
            );
            obj.insert(
                "act".into(),
                serde_json::to_value(a.actor()).unwrap_or_default(),
            );
            obj.insert(
                "representation".into(),
                serde_json::to_value(a.representation()).unwrap_or_default(),
            );
        }
        Ok(Err(why)) => {
            obj.insert("acting_refused".into(), why.code().into());
        }
        Err(e) => {
            obj.insert("acting_refused".into(), e.code().into());
        }
    }
}
