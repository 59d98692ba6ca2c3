//! The byte estimates of the per-login state that outlives the login (issue 20): consumed
//! Assertion IDs (`store.max_replay_bytes`) and session activity marks
//! (`store.max_activity_bytes`), each filled to its default budget, against the process's
//! resident memory. Alone in its test binary and one test, so nothing else allocates
//! meanwhile. The figures it prints are the ones docs/PERFORMANCE.md quotes for the memory per
//! live session and per login per second.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use broker::features::store::memory::{DEFAULT_ACTIVITY_BYTES, DEFAULT_REPLAY_BYTES};
use broker::features::store::{Budgets, Store, StoreError};

/// Resident set size, bytes (Linux `/proc/self/status`).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn full_replay_and_activity_budgets_cost_about_their_estimates_in_resident_memory() {
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

    // Consumed Assertion IDs (SPID IdPs use `_` and 32-40 hex digits) until the budget
    // refuses one.
    let before = rss();
    let ids = rt.block_on(async {
        let mut n = 0u64;
        loop {
            match store
                .consume_assertion(&format!("_{n:040x}"), Duration::from_secs(360))
                .await
            {
                Ok(true) => n += 1,
                Err(StoreError::Full) => break n,
                other => panic!("{other:?}"),
            }
        }
    });
    let grown = rss().saturating_sub(before);
    println!(
        "replay: {ids} IDs in {DEFAULT_REPLAY_BYTES} B (estimated {} B), RSS grew by {grown} B \
         ({} B per ID)",
        memory.replay_bytes(),
        grown / ids.max(1)
    );
    assert!(ids > 0);
    assert!(
        grown <= DEFAULT_REPLAY_BYTES + DEFAULT_REPLAY_BYTES / 4,
        "RSS grew by {grown} B for a replay budget of {DEFAULT_REPLAY_BYTES} B: the estimate is low"
    );

    // Activity marks of twice the sessions the budget holds (session IDs are 40 hex digits).
    let before = rss();
    let sessions = 2 * DEFAULT_ACTIVITY_BYTES / 330;
    rt.block_on(async {
        for n in 0..sessions {
            store.check_session(&format!("{n:040x}"), 1_000).await;
        }
    });
    let (marks, bytes) = memory.activity_bytes();
    let grown = rss().saturating_sub(before);
    println!(
        "activity: {sessions} sessions, {marks} marks kept, estimated {bytes} B (budget \
         {DEFAULT_ACTIVITY_BYTES} B), RSS grew by {grown} B ({} B per mark kept)",
        grown / marks.max(1)
    );
    assert!(bytes <= DEFAULT_ACTIVITY_BYTES);
    assert!(
        grown <= DEFAULT_ACTIVITY_BYTES + DEFAULT_ACTIVITY_BYTES / 4,
        "RSS grew by {grown} B for an activity budget of {DEFAULT_ACTIVITY_BYTES} B: the estimate is low"
    );
}
