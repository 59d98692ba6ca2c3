//! The HTTP kernel: the body types, the response builders every route uses, cookie reading,
//! the connection's peer address and the client toward upstreams.
//!
//! May import: other leaf modules only.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::leaf::pages;

/// Response body type of every route.
pub(crate) type Body = Full<Bytes>;

/// 404 with the plain "page not found" page.
pub fn not_found() -> Response<Body> {
    html(
        StatusCode::NOT_FOUND,
        pages::simple("Pagina non trovata", "Page not found", "", ""),
    )
}

/// The value of cookie `name`, when the request carries exactly one. Two cookies of the same
/// name mean one was planted (from a sibling domain or another path): neither is believed.
pub fn cookie<'r, B>(req: &'r Request<B>, name: &str) -> Option<&'r str> {
    let mut found = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie_pairs)
        .filter_map(|pair| cookie_value(pair.trim(), name));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// The value of `pair` (one trimmed part of a `Cookie` header) when its name is `name`: the
/// second half of `pair.split_once('=')` when its first half is `name`, compared at the
/// name's length instead of searched for (a session cookie is most of the header, issue 20).
fn cookie_value<'a>(pair: &'a str, name: &str) -> Option<&'a str> {
    let value = pair.strip_prefix(name)?.strip_prefix('=')?;
    // `split_once` cuts at the first `=`: a name holding one never matches there.
    (!name.contains('=')).then_some(value)
}

/// The `;`-separated parts of one `Cookie` header, as `str::split(';')` gives them, found
/// with `memchr`: a session cookie is most of the header, and `split`'s byte-by-byte search
/// over it was a twentieth of an `/auth` answer (issue 20).
fn cookie_pairs(v: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(v);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b';', r.as_bytes()) {
            Some(i) => {
                // `;` is ASCII: both sides are on character boundaries.
                rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Sets header `name` to a static value, replacing any previous one.
pub fn set(r: &mut Response<Body>, name: header::HeaderName, value: &'static str) {
    r.headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

/// A plain-text answer.
pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_TYPE, "text/plain; charset=utf-8");
    r
}

/// An HTML page with the headers every page carries (no sniffing, no framing, assets from
/// this origin only).
pub fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(&mut r, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut r, header::X_FRAME_OPTIONS, "DENY");
    // Pages load their style and icons from /assets only, and run no script.
    set(
        &mut r,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    );
    r
}

/// 500 for a failure of Varco itself (never for attacker bytes), logged with its code.
pub fn internal(code: &str) -> Response<Body> {
    tracing::error!(event = "internal_error", code = %code);
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::simple(
            "Errore interno",
            "Internal error",
            "Si è verificato un errore. Riprova più tardi.",
            "Something went wrong. Please try again later.",
        ),
    )
}

/// The peer address of a connection, put in each request's extensions by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);
/// Body of every response Varco sends: its own pages, complete, or an upstream's stream
/// (the reverse proxy), neither boxed (a box per answer was one of an `/auth` answer's
/// allocations, issue 20).
pub type OutBody = Either<Full<Bytes>, Incoming>;

/// One of Varco's own (complete) bodies as a response body.
pub fn own(r: Response<Full<Bytes>>) -> Response<OutBody> {
    r.map(Either::Left)
}

/// An upstream's answer (the reverse proxy), its body streamed through.
pub fn upstream(r: Response<Incoming>) -> Response<OutBody> {
    r.map(Either::Right)
}

/// The correlation id header every answer carries (`server`).
pub const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// The pooled HTTP client toward upstreams.
pub struct Upstreams {
    pub(crate) client: Client<HttpConnector, Incoming>,
    pub(crate) response_timeout: Duration,
}

impl Upstreams {
    /// A client with the configured timeouts; idle connections are kept for reuse.
    pub fn new(connect_timeout: Duration, response_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Upstreams {
            client,
            response_timeout,
        }
    }
}

/// The one place the session cookie's attributes are written (set, or cleared with an empty
/// value and `Max-Age=0`). Callers go through `state::login`, which knows the configured name
/// and whether the site is https.
pub fn session_cookie(r: &mut Response<Body>, name: &str, secure: bool, value: &str, max_age: u64) {
    let secure = if secure { "; Secure" } else { "" };
    // Sized once and handed to the header without a copy: the sealed session is ~800
    // characters, which `format!` grew into and `from_str` copied again (issue 20).
    let max_age = max_age.to_string();
    let attributes = "; Path=/; HttpOnly; SameSite=Lax; Max-Age=";
    let mut cookie = String::with_capacity(
        name.len() + 1 + value.len() + attributes.len() + max_age.len() + secure.len(),
    );
    for part in [name, "=", value, attributes, &max_age, secure] {
        cookie.push_str(part);
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(cookie.into_bytes())) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_session_cookie_carries_its_attributes_in_order() {
        let mut r = Response::new(Full::new(Bytes::new()));
        session_cookie(&mut r, "varco_session", true, "abc-_", 28_800);
        session_cookie(&mut r, "s", false, "", 0);
        let set: Vec<_> = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            set,
            [
                "varco_session=abc-_; Path=/; HttpOnly; SameSite=Lax; Max-Age=28800; Secure",
                "s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            ]
        );
    }

    #[test]
    fn cookie_parts_are_those_of_split() {
        for v in [
            "",
            ";",
            ";;",
            "a=1",
            "a=1;",
            ";a=1",
            "a=1; b=2",
            "a=1;;b=2; ;c",
            " varco_session=xyz ; other=é;x",
        ] {
            assert_eq!(
                cookie_pairs(v).collect::<Vec<_>>(),
                v.split(';').collect::<Vec<_>>(),
                "{v:?}"
            );
        }
    }

    #[test]
    fn a_cookie_value_is_that_of_split_once() {
        let by_split = |pair: &'static str, name: &str| {
            pair.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v)
        };
        let pairs = [
            "", "=", "s", "s=", "s=1", "s==1", "s=1=2", "ss=1", "s1=1", "=s=1", "s =1", "a=s",
            "s=x;y", "é=1", "s=é",
        ];
        let names = ["", "s", "ss", "s=", "s=1", "a", "é"];
        for pair in pairs {
            for name in names {
                assert_eq!(
                    cookie_value(pair, name),
                    by_split(pair, name),
                    "{pair:?} {name:?}"
                );
            }
        }
    }

    #[test]
    fn one_cookie_of_the_name_is_read_and_two_are_not() {
        let req = |values: &[&str]| {
            let mut b = Request::builder();
            for v in values {
                b = b.header(header::COOKIE, *v);
            }
            b.body(()).unwrap()
        };
        assert_eq!(cookie(&req(&["a=1; s=xyz; b=2"]), "s"), Some("xyz"));
        assert_eq!(cookie(&req(&["a=1", "s=xyz"]), "s"), Some("xyz"));
        assert_eq!(cookie(&req(&["s=xyz; s=abc"]), "s"), None);
        assert_eq!(cookie(&req(&["s=xyz", "b=2;s=abc"]), "s"), None);
        assert_eq!(cookie(&req(&["ss=xyz; a=s"]), "s"), None);
        assert_eq!(cookie(&req(&[]), "s"), None);
    }
}
