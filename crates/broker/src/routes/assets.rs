//! `GET /assets/<name>`: the pages' style sheet and icons (`leaf::assets`) with their content
//! type and a one-year immutable cache lifetime (the URL carries the content digest); 404 for
//! any other name.
//!
//! May import: the leaf.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::leaf::assets;
use crate::leaf::http::{Body, not_found, set};

/// `GET /assets/<name>`.
pub fn serve(path: &str) -> Response<Body> {
    let Some((content_type, bytes)) = assets::find(path) else {
        return not_found();
    };
    let mut r = Response::new(Full::new(Bytes::from_static(bytes)));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    set(
        &mut r,
        header::CACHE_CONTROL,
        "public, max-age=31536000, immutable",
    );
    set(&mut r, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // An SVG opened directly must not run anything.
    set(
        &mut r,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'",
    );
    r
}

#[cfg(test)]
mod tests {
    use super::serve;

    #[test]
    fn assets_are_served_with_a_long_cache_and_unknown_names_are_404() {
        let r = serve("/assets/varco.css");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000")
        );
        assert_eq!(serve("/assets/../Cargo.toml").status(), 404);
        assert_eq!(serve("/assets/nope.css").status(), 404);
    }
}
