//! Loopback ports for the servers the helpers start.
//!
//! A port is chosen here, released, and bound again a moment later by the server it is given
//! to. Two things can take it in between:
//! - another `free_port` call in this process (the tests of one binary run in parallel), which
//!   the record of ports already given rules out;
//! - any outgoing connection on the machine: its source port comes from the kernel's
//!   ephemeral range, the very range `bind(0)` hands out. The suite opens thousands of them
//!   (to redis, PostgreSQL, the IdPs, the OIDC clients), and CI once failed with
//!   `AddrInUse` this way. So ports are taken *below* the ephemeral range, where the kernel
//!   never picks a source port on its own.

use std::collections::BTreeSet;
use std::hash::BuildHasher as _;
use std::net::TcpListener;
use std::sync::Mutex;

/// The lowest port this module hands out: below it sit well-known services (PostgreSQL's 5432,
/// redis' 6379, 8080…) that a developer's machine may run.
const FLOOR: u16 = 10_000;

/// A loopback port that was free a moment ago, never handed out before in this process, and
/// outside the kernel's ephemeral range (see the module comment).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let (lo, hi) = candidates();
    let span = u32::from(hi - lo);
    // Start where another test process is unlikely to: std's per-process random hash keys
    // spread parallel suites over the span; each then walks upward from its own start.
    let start = (std::collections::hash_map::RandomState::new().hash_one(std::process::id())
        % u64::from(span)) as u32;
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for step in 0..span {
        let port = lo + ((start + step) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free loopback port in {lo}..{hi}");
}

/// The span below the ephemeral range, read from the kernel; if that range starts too low to
/// leave room (or cannot be read), a fixed span far from the usual services.
fn candidates() -> (u16, u16) {
    let ephemeral_lo = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok());
    match ephemeral_lo {
        Some(lo) if lo >= FLOOR + 4_096 => (FLOOR, lo),
        _ => (FLOOR, FLOOR + 10_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let (lo, hi) = candidates();
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            let p = free_port();
            assert!((lo..hi).contains(&p), "{p} outside {lo}..{hi}");
            assert!(seen.insert(p), "{p} handed out twice");
            assert!(TcpListener::bind(("127.0.0.1", p)).is_ok());
        }
    }
}
