//! `GET /saml/metadata`, `/saml/metadata/cie`, `/saml/metadata/eidas`: the published SP metadata.
//!
//! May import: `state`, `features`, the leaf.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header;
use hyper::{Response, StatusCode};

use crate::leaf::http::{Body, html, set};
use crate::leaf::pages;
use crate::state::State;

/// `GET /saml/metadata[/cie|/eidas]`: the SP metadata this broker publishes.
pub fn metadata(state: &State, path: &str) -> Response<Body> {
    match state.config.metadata.iter().find(|(p, _)| *p == path) {
        Some((_, xml)) => {
            let mut r = Response::new(Full::new(Bytes::from(xml.clone())));
            set(&mut r, header::CONTENT_TYPE, "application/samlmetadata+xml");
            r
        }
        None => html(
            StatusCode::NOT_FOUND,
            pages::simple("Pagina non trovata", "Page not found", "", ""),
        ),
    }
}
