//! The HTTP kernel every route shares: the body type, the response builders (each sets
//! `Content-Type`, `Cache-Control: no-store`, `Referrer-Policy`, and pages a strict CSP), and
//! the bounded body reader. Depends on `pages` only.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::pages;

/// Largest accepted request body (an HTTP-POST AuthnRequest or the login form).
const MAX_BODY: usize = 512 * 1024;

pub(crate) type Body = Full<Bytes>;

/// The whole body, or the 413 page when it is larger than `MAX_BODY` or broken.
pub(crate) async fn read_body(req: Request<Incoming>) -> Result<Vec<u8>, Response<Body>> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(_) => Err(html(
            StatusCode::PAYLOAD_TOO_LARGE,
            pages::message(
                "Richiesta troppo grande o interrotta",
                "Request too large or broken",
                "",
            ),
        )),
    }
}

pub(crate) fn plain_owned(status: StatusCode, body: String) -> Response<Body> {
    with_headers(status, "text/plain; charset=utf-8", body)
}

pub(crate) fn bad_request(reason: &str) -> Response<Body> {
    eprintln!("varco-dev-idp: 400: {reason:?}");
    html(
        StatusCode::BAD_REQUEST,
        pages::message("Richiesta non valida", "Bad request", reason),
    )
}

pub(crate) fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut response = with_headers(status, "text/html; charset=utf-8", body);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    response
}

pub(crate) fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    with_headers(status, "text/plain; charset=utf-8", body.to_owned())
}

pub(crate) fn with_headers(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
