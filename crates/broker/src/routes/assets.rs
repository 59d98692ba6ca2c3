//! `GET /assets/*`: the pages' style sheet and icons (`leaf::assets`), 404 for any other name.
//!
//! May import: the leaf.

use hyper::Response;

use crate::leaf::assets;
use crate::leaf::http::{Body, not_found};

/// `GET /assets/<name>`.
pub fn serve(path: &str) -> Response<Body> {
    assets::serve(path).unwrap_or_else(not_found)
}
