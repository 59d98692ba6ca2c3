//! Byte budgets of the in-memory store (issue 17, item 3), by counting: a flood of pending
//! logins of the largest accepted shape never holds more estimated bytes than the budget,
//! every entry dropped for room before its TTL is counted (metric) and the counts add up,
//! logins started before the flood are still pending after it; a
//! full replay cache refuses new IDs (fail closed) and still refuses replays. The RSS check
//! of the same estimate is `tests/pending_rss.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use broker::features::access::MAX_RETURN_TO;
use broker::features::metrics::Metrics;
use broker::features::store::memory::{activity_weight, pending_weight, replay_weight};
use broker::features::store::{Budgets, Pending, Store, StoreError};

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// A pending login as large as `/saml/login` lets a client make it: the longest `return_to`,
/// an AuthnRequest of the size Varco builds (about 2.3 KB with a long entity ID).
fn largest_pending(n: usize) -> (String, Pending) {
    let id = format!("_{:040x}", n);
    let pending = Pending {
        idp: "https://identity.sieltecloud.it/spid/metadata".into(),
        level: saml::Level::L2,
        return_to: format!("/{}", "a".repeat(MAX_RETURN_TO - 1)),
        issued_at: SystemTime::UNIX_EPOCH,
        browser: "0123456789abcdef0123456789abcdef".into(),
        request_xml: "x".repeat(2_400),
    };
    (id, pending)
}

#[test]
fn a_flood_of_pending_logins_stays_within_the_byte_budget_and_drops_are_counted() {
    let budget = 4 << 20;
    let store = Store::memory_with(
        Duration::from_secs(600),
        Budgets {
            pending_bytes: budget,
            max_pending: 100_000,
            replay_bytes: 1 << 20,
            activity_bytes: 1 << 20,
            logout_index_bytes: 1 << 20,
        },
        Duration::from_secs(3600),
    );
    let metrics = Metrics::new();
    store.bind_metrics(&metrics);
    let Store::Memory(memory) = &store else {
        unreachable!()
    };
    let (_, sample) = largest_pending(0);
    let each = pending_weight(&largest_pending(0).0, &sample) as u64;
    let flood = 4 * (budget / each) as usize;
    // Logins started before the flood, by people.
    let legit: Vec<String> = (0..10).map(|n| format!("_legit{n:034}")).collect();
    block_on(async {
        for id in &legit {
            store
                .put_pending(id.clone(), largest_pending(0).1)
                .await
                .unwrap();
        }
        for n in 0..flood {
            let (id, p) = largest_pending(n);
            store.put_pending(id, p).await.unwrap();
        }
    });
    let (entries, bytes) = memory.pending_bytes();
    assert!(
        bytes <= budget,
        "{bytes} estimated bytes over the budget {budget}"
    );
    assert!(
        entries * each <= budget,
        "{entries} entries x {each} bytes over the budget {budget}"
    );
    assert!(entries > 0, "the cache still holds logins");
    let evicted = memory.evicted();
    assert_eq!(
        entries + evicted,
        flood as u64 + legit.len() as u64,
        "every login is either kept or counted as dropped"
    );
    let survived = block_on(async {
        let mut n = 0;
        for id in &legit {
            if store.get_pending(id).await.unwrap().is_some() {
                n += 1;
            }
        }
        n
    });
    // moka admits a newcomer over a full cache only when it has been seen more often than the
    // entry it would displace (TinyLFU): a flood of one-off logins cannot push out the logins
    // people started before it.
    assert_eq!(
        survived,
        legit.len(),
        "logins started before the flood survive it"
    );
    let counted: u64 = metrics.pending_evicted.with_label_values(&["login"]).get();
    assert_eq!(counted, evicted, "the metric counts each drop");
}

#[test]
fn the_count_cap_still_holds_for_small_entries() {
    let store = Store::memory_with(
        Duration::from_secs(600),
        Budgets {
            pending_bytes: 4 << 20,
            max_pending: 100,
            replay_bytes: 1 << 20,
            activity_bytes: 1 << 20,
            logout_index_bytes: 1 << 20,
        },
        Duration::from_secs(3600),
    );
    let Store::Memory(memory) = &store else {
        unreachable!()
    };
    block_on(async {
        for n in 0..1_000 {
            let (id, mut p) = largest_pending(n);
            p.return_to = "/".into();
            p.request_xml = String::new();
            store.put_pending(id, p).await.unwrap();
        }
    });
    let (entries, _) = memory.pending_bytes();
    assert!(entries <= 100, "{entries} entries over the count cap");
    assert_eq!(entries + memory.evicted(), 1_000);
}

#[test]
fn a_full_replay_cache_refuses_new_ids_and_still_refuses_replays() {
    let budget = 1 << 20;
    let store = Store::memory_with(
        Duration::from_secs(600),
        Budgets {
            pending_bytes: 1 << 20,
            max_pending: 100,
            replay_bytes: budget,
            activity_bytes: 1 << 20,
            logout_index_bytes: 1 << 20,
        },
        Duration::from_secs(3600),
    );
    let id = |n: usize| format!("_assertion{n:032}");
    let each = replay_weight(&id(0)) as u64;
    block_on(async {
        let mut admitted = 0u64;
        let mut n = 0;
        loop {
            match store
                .consume_assertion(&id(n), Duration::from_secs(300))
                .await
            {
                Ok(true) => admitted += 1,
                Ok(false) => panic!("a new ID read as a replay"),
                Err(e) => {
                    assert_eq!(e, StoreError::Full);
                    assert_eq!(e.code(), "store_full");
                    break;
                }
            }
            n += 1;
            assert!(n as u64 <= 2 * budget / each, "the budget never bit");
        }
        assert!(
            admitted * each <= budget,
            "{admitted} IDs x {each} bytes over {budget}"
        );
        if let Store::Memory(m) = &store {
            assert_eq!(m.replay_bytes(), admitted * each, "the count is exact");
        }
        // Every admitted ID is still remembered: a replay is refused, not re-admitted.
        for k in 0..n {
            assert_eq!(
                store
                    .consume_assertion(&id(k), Duration::from_secs(300))
                    .await,
                Ok(false),
                "ID {k} replayed"
            );
        }
        // The same bound for honoured LogoutRequest IDs.
        let mut m = 0;
        while store
            .consume_logout_request(&id(m), Duration::from_secs(300))
            .await
            .is_ok()
        {
            m += 1;
            assert!(m as u64 <= 2 * budget / each, "the budget never bit");
        }
    });
}

#[test]
fn session_activity_marks_stay_within_their_byte_budget_and_drops_are_counted() {
    // Every login leaves an activity mark for its session's lifetime (hours); at 500 logins/s
    // that grew without bound. Now a byte budget: four times its worth of sessions, each used
    // once, keep the marks within it, and every mark dropped is counted.
    let budget = 1 << 20;
    let store = Store::memory_with(
        Duration::from_secs(600),
        Budgets {
            pending_bytes: 1 << 20,
            max_pending: 100,
            replay_bytes: 1 << 20,
            activity_bytes: budget,
            logout_index_bytes: 1 << 20,
        },
        Duration::from_secs(3600),
    );
    let metrics = Metrics::new();
    store.bind_metrics(&metrics);
    let Store::Memory(memory) = &store else {
        unreachable!()
    };
    let sid = |n: usize| format!("{n:040x}");
    let each = activity_weight(&sid(0)) as u64;
    let sessions = 4 * (budget / each) as usize;
    block_on(async {
        for n in 0..sessions {
            store.check_session(&sid(n), 1_000).await;
        }
    });
    let (kept, bytes) = memory.activity_bytes();
    eprintln!("{sessions} sessions, {kept} marks kept, {bytes} bytes (budget {budget})");
    assert!(bytes <= budget, "{bytes} bytes over the budget {budget}");
    assert!(kept * each <= budget);
    assert!(kept > 0);
    let dropped = metrics
        .pending_evicted
        .with_label_values(&["activity"])
        .get();
    assert_eq!(kept + dropped, sessions as u64, "every drop is counted");
}
