//! Short-lived login state: pending AuthnRequests and consumed Assertion IDs.
//!
//! One enum with one variant per backend (in-memory now; Redis for several replicas later),
//! so the hot path pays no boxing and a new backend is a compile-time-checked addition.

use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

/// What `/saml/login` remembers until the Response comes back.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The IdP the request was sent to.
    pub idp: String,
    /// The level requested.
    pub level: saml::Level,
    /// Where to send the browser after login (a local path).
    pub return_to: String,
    /// The request's IssueInstant.
    pub issued_at: std::time::SystemTime,
    /// The browser binding: the value of the login cookie of the browser that started it.
    pub browser: String,
    /// The AuthnRequest XML as built (for the audit record).
    pub request_xml: String,
}

/// The store backends.
pub enum Store {
    /// In-process (moka): the single-replica default.
    Memory(MemoryStore),
}

impl Store {
    /// An in-memory store.
    pub fn memory(pending_ttl: Duration, max_pending: u64) -> Self {
        Store::Memory(MemoryStore::new(pending_ttl, max_pending))
    }

    /// Records a pending request.
    pub fn put_pending(&self, id: String, p: Pending) {
        match self {
            Store::Memory(m) => m.pending.insert(id, p),
        }
    }

    /// Reads a pending request without consuming it.
    pub fn get_pending(&self, id: &str) -> Option<Pending> {
        match self {
            Store::Memory(m) => m.pending.get(id),
        }
    }

    /// Consumes a pending request: of concurrent callers, exactly one gets `Some`.
    pub fn take_pending(&self, id: &str) -> Option<Pending> {
        match self {
            Store::Memory(m) => m.pending.remove(id),
        }
    }

    /// Records an Assertion ID as used until `expires_in` from now. Returns `true` for the
    /// first use only, atomically: concurrent double submits get one `true`.
    pub fn consume_assertion(&self, id: &str, expires_in: Duration) -> bool {
        match self {
            Store::Memory(m) => {
                let until = Instant::now() + expires_in;
                m.assertions
                    .entry_by_ref(id)
                    .or_insert_with(|| until)
                    .is_fresh()
            }
        }
    }
}

/// The in-memory backend.
pub struct MemoryStore {
    pending: Cache<String, Pending>,
    /// Not capacity-bounded on purpose: evicting a consumed ID before its assertion expires
    /// would re-open it to replay. Entries exist only for assertions that passed signature
    /// verification with a trusted IdP key, and each expires with its assertion.
    assertions: Cache<String, Instant>,
}

impl MemoryStore {
    fn new(pending_ttl: Duration, max_pending: u64) -> Self {
        MemoryStore {
            pending: Cache::builder()
                .max_capacity(max_pending)
                .time_to_live(pending_ttl)
                .build(),
            assertions: Cache::builder().expire_after(UntilInstant).build(),
        }
    }
}

/// Each consumed-assertion entry lives until the instant stored in it.
struct UntilInstant;

impl Expiry<String, Instant> for UntilInstant {
    fn expire_after_create(
        &self,
        _key: &String,
        until: &Instant,
        now: Instant,
    ) -> Option<Duration> {
        Some(until.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertion_ids_are_consumed_once_even_concurrently() {
        let store = std::sync::Arc::new(Store::memory(Duration::from_secs(60), 10));
        let firsts: usize = (0..16)
            .map(|_| {
                let s = store.clone();
                std::thread::spawn(move || s.consume_assertion("_a", Duration::from_secs(60)))
            })
            .map(|h| usize::from(h.join().unwrap()))
            .sum();
        assert_eq!(firsts, 1);
        assert!(store.consume_assertion("_b", Duration::from_secs(60)));
    }

    #[test]
    fn pending_requests_are_taken_once() {
        let store = Store::memory(Duration::from_secs(60), 10);
        let p = Pending {
            idp: "i".into(),
            level: saml::Level::L2,
            return_to: "/".into(),
            issued_at: std::time::SystemTime::UNIX_EPOCH,
            browser: "b".into(),
            request_xml: String::new(),
        };
        store.put_pending("_r".into(), p);
        assert!(store.get_pending("_r").is_some());
        assert!(store.take_pending("_r").is_some());
        assert!(store.take_pending("_r").is_none());
    }
}
