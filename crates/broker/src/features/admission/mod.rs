//! Admission control (issue 17): what a request may cost before it is served.
//!
//! - `heavy`: CPU-heavy work (SAML and logout validation, the RSA signatures of our
//!   AuthnRequests and logout messages, Argon2) runs on tokio's blocking threads behind one
//!   semaphore, so the async workers that answer `/auth` and proxy the portals never run it.
//!   A request that finds no permit within a short wait, or finds the queue full, gets a 503
//!   with `Retry-After` (code `broker_busy`) instead of waiting without bound.
//!
//! - `rate`: GCRA rate limits per client address and per route on the endpoints anyone may
//!   call without a session, shared through Redis when the store is Redis; 429 with
//!   `Retry-After` (code `broker_rate_limited`).
//!
//! - `connections`: at most `max_connections` client connections open at once; one more is
//!   closed at accept, counted.
//!
//! This module owns the `[admission]` table and its validation. May import: the leaf and
//! `features::metrics`, `features::access` (the client address)
//! and `features::store` (the shared buckets).

use std::time::Duration;

use serde::Deserialize;

pub mod connections;
pub mod heavy;
pub mod rate;

/// `[admission]` (docs/OPERATIONS.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmission {
    /// Heavy jobs running at once; by default one per available core.
    heavy_workers: Option<u32>,
    /// Heavy jobs waiting for a worker at once, beyond which a request is refused at once
    /// (0: never wait); by default [`QUEUE_PER_WORKER`] per worker (a 9 o'clock burst waits,
    /// a flood does not pile up: with `heavy_wait_ms` it bounds how long and how many wait).
    heavy_queue: Option<u32>,
    /// Bytes the waiting jobs may hold together (the request bodies they carry): beyond, a
    /// job that would wait is refused at once. The queue's length alone would let waiting
    /// bodies grow with `heavy_queue` × the largest body a route takes.
    #[serde(default = "default_heavy_queue_bytes")]
    heavy_queue_bytes: u64,
    /// How long a heavy job may wait for a worker before its request is refused.
    #[serde(default = "default_heavy_wait_ms")]
    heavy_wait_ms: u64,
    /// Nice steps a heavy-work thread lowers its priority by (0: none).
    #[serde(default = "default_heavy_nice")]
    heavy_nice: u32,
    /// The `Retry-After` of a refusal for lack of capacity, seconds.
    #[serde(default = "default_retry_after")]
    retry_after_seconds: u64,
    /// Requests per minute per client address and route (0: no per-client limit).
    #[serde(default = "default_client_per_minute")]
    client_per_minute: u64,
    /// Requests a client may send at once before the per-minute rate applies.
    #[serde(default = "default_client_burst")]
    client_burst: u64,
    /// Requests per second per route, all clients together (0: no global limit).
    #[serde(default = "default_global_per_second")]
    global_per_second: u64,
    /// Requests at once per route before the per-second rate applies.
    #[serde(default = "default_global_burst")]
    global_burst: u64,
    /// Client buckets kept in memory (least recently used dropped first).
    #[serde(default = "default_rate_clients")]
    rate_clients: u64,
    /// Client connections open at once (main and CNS listeners together).
    #[serde(default = "default_max_connections")]
    max_connections: u64,
}

impl Default for RawAdmission {
    fn default() -> Self {
        RawAdmission {
            heavy_workers: None,
            heavy_queue: None,
            heavy_queue_bytes: default_heavy_queue_bytes(),
            heavy_wait_ms: default_heavy_wait_ms(),
            heavy_nice: default_heavy_nice(),
            retry_after_seconds: default_retry_after(),
            client_per_minute: default_client_per_minute(),
            client_burst: default_client_burst(),
            global_per_second: default_global_per_second(),
            global_burst: default_global_burst(),
            rate_clients: default_rate_clients(),
            max_connections: default_max_connections(),
        }
    }
}

/// Default heavy jobs waiting per worker: 128, about 32 ms of ACS validation on one core.
/// 32 overflowed when the machine stopped for some milliseconds at 2,000 logins/s on one core
/// (the logins due meanwhile arrive together, each needing a job): 128 logins refused in one
/// run of 20,000 out of four at 32, none in four at 128, tails no different (docs/PERFORMANCE.md,
/// "When the slow logins happen"). The wait stays bounded by `heavy_wait_ms`; a waiting job
/// holds its request body (at most the route's body limit), as a connection still sending one
/// does.
pub const QUEUE_PER_WORKER: usize = 128;

// 16 MiB: what 32 waiting ACS posts of the largest size (512 KiB) held under the old queue
// length for one worker, and room for hundreds of ordinary SPID posts (10-20 KB each) waiting
// out a stop of the machine. A flood of maximal posts is then refused past 32 waiting, however
// many workers the pod sees.
fn default_heavy_queue_bytes() -> u64 {
    16 * 1024 * 1024
}

fn default_heavy_wait_ms() -> u64 {
    250
}
// 19: heavy work yields a core the async workers want and takes every cycle they leave. On an
// idle 2-core machine with Varco on one core, two clients flooding the ACS and the SLO with
// worst-case bodies left `/auth` 87-96 % of its unloaded rate at 19, 76-83 % at 10 and 65-70 %
// at 0, and every legitimate login during the flood completed at each value (slower at 19:
// p99 ~100 ms while `/auth` saturated the core; docs/PERFORMANCE.md). Nice weighs threads only
// inside Varco's own scheduling group (its cgroup: a pod, a systemd service, a container; or
// its session's autogroup), so it does not make logins yield to other programs there. 0
// leaves the priority alone, for a host where Varco shares a group with busy programs.
fn default_heavy_nice() -> u32 {
    19
}
fn default_retry_after() -> u64 {
    2
}
// Generous for one address: an office behind one NAT logs in at 9 o'clock together.
fn default_client_per_minute() -> u64 {
    300
}
fn default_client_burst() -> u64 {
    100
}
fn default_global_per_second() -> u64 {
    200
}
fn default_global_burst() -> u64 {
    400
}
fn default_rate_clients() -> u64 {
    100_000
}
// An idle keep-alive connection costs a task and hyper's buffers (about 10-20 KB), so 4,096
// hold well under the pod's memory; a browser opens about six, an ingress a few hundred.
fn default_max_connections() -> u64 {
    4096
}

/// The validated `[admission]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Heavy jobs running at once (at least 1).
    pub heavy_workers: usize,
    /// Heavy jobs waiting for a worker at once.
    pub heavy_queue: usize,
    /// Bytes the waiting jobs may hold together.
    pub heavy_queue_bytes: usize,
    /// Longest wait for a worker.
    pub heavy_wait: Duration,
    /// Nice steps a heavy-work thread lowers its priority by.
    pub heavy_nice: i32,
    /// `Retry-After` of a 503 for lack of capacity.
    pub retry_after: Duration,
    /// The rate limits.
    pub rate: rate::RateLimits,
    /// Client connections open at once; read at start only (a reload does not change it).
    pub max_connections: usize,
}

/// The cores this process may use: the standard library reads the affinity mask and the
/// cgroup CPU quota; a pod without a CPU limit sees the node's cores (set `heavy_workers`).
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
    if raw.heavy_queue_bytes > 1 << 30 {
        bad(
            "admission.heavy_queue_bytes",
            "at most 1073741824 (1 GiB)".into(),
        );
    }
    if raw.heavy_wait_ms > 10_000 {
        bad(
            "admission.heavy_wait_ms",
            "at most 10000: a longer wait only holds connections open".into(),
        );
    }
    if raw.heavy_nice > 19 {
        bad(
            "admission.heavy_nice",
            "from 0 to 19 (Linux nice steps)".into(),
        );
    }
    if raw.retry_after_seconds == 0 || raw.retry_after_seconds > 3600 {
        bad("admission.retry_after_seconds", "from 1 to 3600".into());
    }
    for (key, value) in [
        ("admission.client_burst", raw.client_burst),
        ("admission.global_burst", raw.global_burst),
    ] {
        if !(1..=100_000).contains(&value) {
            bad(key, "from 1 to 100000".into());
        }
    }
    if raw.client_per_minute > 6_000_000 || raw.global_per_second > 1_000_000 {
        bad(
            "admission.client_per_minute / admission.global_per_second",
            "at most 6000000 per minute / 1000000 per second (one request per microsecond)".into(),
        );
    }
    if !(16..=1_000_000).contains(&raw.max_connections) {
        bad("admission.max_connections", "from 16 to 1000000".into());
    }
    if !(1_000..=10_000_000).contains(&raw.rate_clients) {
        bad("admission.rate_clients", "from 1000 to 10000000".into());
    }
    let rate = rate::RateLimits {
        client: rate::Gcra::new(
            raw.client_per_minute,
            Duration::from_secs(60),
            raw.client_burst,
        ),
        global: rate::Gcra::new(
            raw.global_per_second,
            Duration::from_secs(1),
            raw.global_burst,
        ),
        clients: raw.rate_clients,
    };
    let heavy_workers = raw.heavy_workers.map_or_else(cores, |n| n.max(1) as usize);
    Admission {
        heavy_workers,
        heavy_queue: raw
            .heavy_queue
            .map_or(heavy_workers.saturating_mul(QUEUE_PER_WORKER), |n| {
                n as usize
            }),
        heavy_queue_bytes: usize::try_from(raw.heavy_queue_bytes).unwrap_or(usize::MAX),
        heavy_wait: Duration::from_millis(raw.heavy_wait_ms),
        heavy_nice: i32::try_from(raw.heavy_nice.min(19)).unwrap_or(0),
        retry_after: Duration::from_secs(raw.retry_after_seconds),
        rate,
        max_connections: usize::try_from(raw.max_connections).unwrap_or(usize::MAX),
    }
}
