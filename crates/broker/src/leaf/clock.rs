//! The one place that reads the wall clock. Everything else receives `now` as an argument,
//! so validation is deterministic in tests.
//!
//! May import: nothing in the crate.

use std::time::SystemTime;

/// A source of the current time.
pub type Clock = fn() -> SystemTime;

/// The system clock.
#[allow(clippy::disallowed_methods)] // this module is the clock
pub fn system() -> SystemTime {
    SystemTime::now()
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
