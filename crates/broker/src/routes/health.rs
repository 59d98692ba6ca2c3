//! `GET /healthz` (the process answers) and `GET /readyz` (IdP metadata is loaded).
//!
//! May import: `state`, the leaf.

use hyper::{Response, StatusCode};

use crate::leaf::http::{Body, text};
use crate::state::State;

/// `GET /healthz`.
pub fn healthz() -> Response<Body> {
    text(StatusCode::OK, "ok\n")
}

/// `GET /readyz`: 503 until the metadata registry holds a first snapshot.
pub fn readyz(state: &State) -> Response<Body> {
    if state.registry.is_ready() {
        text(StatusCode::OK, "ready\n")
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: IdP metadata not loaded yet\n",
        )
    }
}
