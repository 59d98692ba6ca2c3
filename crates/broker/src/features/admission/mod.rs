//! Admission control (issue 17): what a request may cost before it is served.
//!
//! - `heavy`: CPU-heavy work (SAML and logout validation, the RSA signatures of our
//!   AuthnRequests and logout messages, Argon2) runs on tokio's blocking threads behind one
//!   semaphore, so the async workers that answer `/auth` and proxy the portals never run it.
//!   A request that finds no permit within a short wait, or finds the queue full, gets a 503
//!   with `Retry-After` (code `broker_busy`) instead of waiting without bound.
//!
//! This module owns the `[admission]` table and its validation. May import: the leaf and
//! `features::metrics`.

use std::time::Duration;

use serde::Deserialize;

pub mod heavy;

/// `[admission]` (docs/OPERATIONS.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmission {
    /// Heavy jobs running at once; by default one per available core.
    heavy_workers: Option<u32>,
    /// Heavy jobs waiting for a worker at once, beyond which a request is refused at once
    /// (0: never wait); by default four per worker.
    heavy_queue: Option<u32>,
    /// How long a heavy job may wait for a worker before its request is refused.
    #[serde(default = "default_heavy_wait_ms")]
    heavy_wait_ms: u64,
    /// The `Retry-After` of a refusal for lack of capacity, seconds.
    #[serde(default = "default_retry_after")]
    retry_after_seconds: u64,
}

impl Default for RawAdmission {
    fn default() -> Self {
        RawAdmission {
            heavy_workers: None,
            heavy_queue: None,
            heavy_wait_ms: default_heavy_wait_ms(),
            retry_after_seconds: default_retry_after(),
        }
    }
}

fn default_heavy_wait_ms() -> u64 {
    250
}
fn default_retry_after() -> u64 {
    2
}

/// The validated `[admission]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Heavy jobs running at once (at least 1).
    pub heavy_workers: usize,
    /// Heavy jobs waiting for a worker at once.
    pub heavy_queue: usize,
    /// Longest wait for a worker.
    pub heavy_wait: Duration,
    /// `Retry-After` of a 503 for lack of capacity.
    pub retry_after: Duration,
}

/// The cores this process may use (the cgroup quota is not read: set `heavy_workers` when
/// the pod's CPU limit is below the node's cores).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Validates `[admission]`.
pub(crate) fn validate(raw: &RawAdmission, bad: &mut dyn FnMut(&str, String)) -> Admission {
    if raw.heavy_workers.is_some_and(|n| n == 0 || n > 1024) {
        bad(
            "admission.heavy_workers",
            "from 1 to 1024 (each is a blocking thread)".into(),
        );
    }
    if raw.heavy_queue.is_some_and(|n| n > 65_536) {
        bad("admission.heavy_queue", "at most 65536".into());
    }
    if raw.heavy_wait_ms > 10_000 {
        bad(
            "admission.heavy_wait_ms",
            "at most 10000: a longer wait only holds connections open".into(),
        );
    }
    if raw.retry_after_seconds == 0 || raw.retry_after_seconds > 3600 {
        bad("admission.retry_after_seconds", "from 1 to 3600".into());
    }
    let heavy_workers = raw.heavy_workers.map_or_else(cores, |n| n.max(1) as usize);
    Admission {
        heavy_workers,
        heavy_queue: raw
            .heavy_queue
            .map_or(heavy_workers.saturating_mul(4), |n| n as usize),
        heavy_wait: Duration::from_millis(raw.heavy_wait_ms),
        retry_after: Duration::from_secs(raw.retry_after_seconds),
    }
}
