//! The state every route shares, and the one read of the wall clock. Depends on the leaf
//! modules that own each part; no route, and not the router.

use std::time::SystemTime;

use crate::response::Idp;
use crate::sessions::LogoutState;
use crate::sp;
use crate::state::Sealer;

/// Everything the handlers share.
pub(crate) struct AppState {
    /// This IdP.
    pub(crate) idp: Idp,
    /// `--sp-metadata` sources, read for every AuthnRequest; none means "accept any SP,
    /// unverified".
    pub(crate) sp_sources: Vec<sp::Source>,
    /// Seals the login state.
    pub(crate) sealer: Sealer,
    /// The signed metadata, made once at start.
    pub(crate) metadata: String,
    /// Where the metadata is served.
    pub(crate) metadata_url: String,
    /// Sessions and Single Logout bookkeeping.
    pub(crate) logout: LogoutState,
}

/// The one place this crate reads the wall clock (a separate binary from the broker; the
/// Response builders take `now` as an argument).
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_clock() -> SystemTime {
    SystemTime::now()
}
