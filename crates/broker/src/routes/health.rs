//! `GET /healthz` (the process answers) and `GET /readyz` (IdP metadata is loaded).
//!
//! An audit sink that is down does not make `/readyz` fail: sessions need no audit, and a
//! replica taken out of its Service would stop serving them too (forward-auth `/auth` for
//! every logged-in citizen). `/readyz` answers 200 and says `degraded` instead; logins answer
//! 503 until the sink is back, and `varco_audit_up` is 0 for the alert.
//!
//! May import: `state`, the leaf.

use hyper::{Response, StatusCode};

use crate::leaf::http::{Body, text};
use crate::state::State;

/// `GET /healthz`.
pub fn healthz() -> Response<Body> {
    text(StatusCode::OK, "ok\n")
}

/// `GET /readyz`: 503 until the metadata registry holds a first snapshot, and from SIGTERM
/// on; otherwise 200, saying `degraded` while the audit sink is down.
pub fn readyz(state: &State) -> Response<Body> {
    if state.stopping.load(std::sync::atomic::Ordering::Relaxed) {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n",
        )
    } else if !state.registry.is_ready() {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: IdP metadata not loaded yet\n",
        )
    } else if !state.audit.is_up() {
        text(
            StatusCode::OK,
            "ready, degraded: audit sink unavailable (logins answer 503, sessions are served)\n",
        )
    } else {
        text(StatusCode::OK, "ready\n")
    }
}
