//! The byte estimate of a pending login against the process's resident memory (issue 17,
//! item 3): a flood of the largest pending logins `/saml/login` accepts, enough to fill the
//! default budget four times over, grows the RSS by no more than the budget plus a quarter.
//! Alone in its test binary, so no other test allocates meanwhile. The figure it prints is
//! the one docs/PERFORMANCE.md quotes and the Kubernetes memory limit is set from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use broker::features::access::MAX_RETURN_TO;
use broker::features::store::memory::DEFAULT_PENDING_BYTES;
use broker::features::store::{Budgets, Pending, Store};

/// Resident set size, bytes (Linux `/proc/self/status`).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn a_full_pending_budget_costs_about_its_estimate_in_resident_memory() {
    let store = Store::memory_with(
        Duration::from_secs(600),
        Budgets::with_max_pending(100_000),
        Duration::from_secs(3600),
    );
    let Store::Memory(memory) = &store else {
        unreachable!()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let before = rss();
    rt.block_on(async {
        for n in 0..50_000u64 {
            let pending = Pending {
                idp: "https://identity.sieltecloud.it/spid/metadata".into(),
                level: saml::Level::L2,
                return_to: format!("/{}", "a".repeat(MAX_RETURN_TO - 1)),
                issued_at: SystemTime::UNIX_EPOCH,
                browser: format!("{n:032x}"),
                request_xml: "x".repeat(2_400),
            };
            store
                .put_pending(format!("_{n:040x}"), pending)
                .await
                .unwrap();
        }
    });
    let (entries, bytes) = memory.pending_bytes();
    let grown = rss().saturating_sub(before);
    println!(
        "pending logins kept: {entries}, estimated {bytes} B (budget {DEFAULT_PENDING_BYTES} B), \
         dropped {}, RSS grew by {grown} B ({} B per entry kept)",
        memory.evicted(),
        grown / entries.max(1)
    );
    assert!(bytes <= DEFAULT_PENDING_BYTES);
    assert!(
        grown <= DEFAULT_PENDING_BYTES + DEFAULT_PENDING_BYTES / 4,
        "RSS grew by {grown} B for a budget of {DEFAULT_PENDING_BYTES} B: the estimate is low"
    );
}
