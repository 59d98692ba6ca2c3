//! The resident memory of the per-login and per-session state that outlives the login
//! (issue 20): consumed Assertion IDs (`store.max_replay_bytes`), session activity marks
//! (`store.max_activity_bytes`) and the IdP-initiated logout index
//! (`store.max_logout_index_bytes`), each filled at its default budget, against the
//! process's resident memory. Alone in its test binary and one test, so nothing else
//! allocates meanwhile. The figures it prints are the ones docs/PERFORMANCE.md quotes for the
//! memory per live session and per login per second.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The `varco` binary's allocator (`crates/broker/src/main.rs`), so the bytes measured here
/// are the ones the binary spends: mimalloc with the default features, glibc's `malloc` with
/// `--no-default-features`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use broker::features::store::memory::{
    DEFAULT_ACTIVITY_BYTES, DEFAULT_LOGOUT_INDEX_BYTES, DEFAULT_REPLAY_BYTES,
};
use broker::features::store::{Budgets, Store, StoreError};

/// Resident set size, bytes (Linux `/proc/self/status`).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Whether a growth of `grown` bytes is within `budget` (plus 1 MiB of the test's own
/// strings and the allocator's rounding).
fn within(grown: u64, budget: u64) -> bool {
    grown <= budget + (1 << 20)
}

#[test]
fn full_state_budgets_cost_their_bytes_in_resident_memory_and_no_more() {
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
        "replay: {ids} IDs in {DEFAULT_REPLAY_BYTES} B ({} B in rows), RSS grew by {grown} B \
         ({} B per ID); {} logins/s of 360 s",
        memory.replay_bytes(),
        grown / ids.max(1),
        ids / 360
    );
    assert!(
        ids / 360 >= 2_000,
        "the default holds {} logins/s",
        ids / 360
    );
    assert!(
        within(grown, DEFAULT_REPLAY_BYTES),
        "RSS grew by {grown} B for a replay budget of {DEFAULT_REPLAY_BYTES} B"
    );

    // Activity marks of twice the sessions the budget holds (session IDs are 32 hex digits).
    let before = rss();
    let sessions = 2 * DEFAULT_ACTIVITY_BYTES / 28;
    rt.block_on(async {
        for n in 0..sessions {
            store.check_session(&format!("{n:032x}"), 1_000).await;
        }
    });
    let (marks, bytes) = memory.activity_bytes();
    let grown = rss().saturating_sub(before);
    println!(
        "activity: {sessions} sessions, {marks} marks kept ({bytes} B in rows, budget \
         {DEFAULT_ACTIVITY_BYTES} B), RSS grew by {grown} B ({} B per mark kept)",
        grown / marks.max(1)
    );
    assert!(bytes <= DEFAULT_ACTIVITY_BYTES);
    assert!(
        within(grown, DEFAULT_ACTIVITY_BYTES),
        "RSS grew by {grown} B for an activity budget of {DEFAULT_ACTIVITY_BYTES} B"
    );

    // The logout index, filled with live sessions (the ones just marked) until it refuses.
    let before = rss();
    let indexed = rt.block_on(async {
        let mut n = 0u64;
        loop {
            match store
                .index_session_for_logout(
                    "https://identity.sieltecloud.it",
                    &format!("SPID-{n:020}"),
                    &format!("_{n:040x}"),
                    &format!("{n:032x}"),
                    Duration::from_secs(28_800),
                )
                .await
            {
                Ok(()) => n += 1,
                Err(StoreError::Full) => break n,
                Err(e) => panic!("{e:?}"),
            }
        }
    });
    let (entries, bytes) = memory.logout_index_bytes();
    let grown = rss().saturating_sub(before);
    println!(
        "logout index: {indexed} entries ({entries} kept, {bytes} B in rows, budget \
         {DEFAULT_LOGOUT_INDEX_BYTES} B), RSS grew by {grown} B ({} B per entry)",
        grown / entries.max(1)
    );
    assert_eq!(entries, indexed, "no live entry was dropped");
    assert!(
        within(grown, DEFAULT_LOGOUT_INDEX_BYTES),
        "RSS grew by {grown} B for a logout index budget of {DEFAULT_LOGOUT_INDEX_BYTES} B"
    );
}
