//! Short-lived login state: pending AuthnRequests, consumed Assertion IDs, and the server-side
//! half of sessions (last activity for the idle timeout, logged-out session IDs).
//!
//! One enum with one variant per backend (in-memory now; Redis for several replicas later),
//! so the hot path pays no boxing and a new backend is a compile-time-checked addition.

use std::sync::atomic::{AtomicU64, Ordering};
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

/// What `/logout` remembers until the IdP's LogoutResponse comes back (SAML Single Logout).
#[derive(Debug, Clone)]
pub struct PendingLogout {
    /// The IdP the LogoutRequest was sent to.
    pub idp: String,
    /// The LogoutRequest's IssueInstant.
    pub issued_at: std::time::SystemTime,
    /// Where to send the browser afterwards (already checked against the allowed list), or
    /// `None` for the "signed out" page.
    pub return_to: Option<String>,
}

/// The store backends.
pub enum Store {
    /// In-process (moka): the single-replica default.
    Memory(MemoryStore),
}

impl Store {
    /// An in-memory store. `session_ttl` bounds how long a session's last activity is kept.
    pub fn memory(pending_ttl: Duration, max_pending: u64, session_ttl: Duration) -> Self {
        Store::Memory(MemoryStore::new(pending_ttl, max_pending, session_ttl))
    }

    /// Marks session `sid` as used at `now` (Unix seconds) and returns the previous mark,
    /// if this store has one.
    pub fn touch_session(&self, sid: &str, now: u64) -> Option<u64> {
        match self {
            Store::Memory(m) => {
                let entry = m
                    .activity
                    .entry_by_ref(sid)
                    .or_insert_with(|| std::sync::Arc::new(AtomicU64::new(now)));
                if entry.is_fresh() {
                    return None;
                }
                let previous = entry.value().swap(now, Ordering::Relaxed);
                // Concurrent requests may race; the latest mark wins, the earliest is
                // reported, which is the stricter reading of "idle since".
                Some(previous)
            }
        }
    }

    /// Ends session `sid` (logout, or replaced by a new login) for `remaining`, its
    /// remaining lifetime: a copy of its cookie is refused from now on.
    pub fn revoke_session(&self, sid: &str, remaining: Duration) {
        match self {
            Store::Memory(m) => {
                let until = Instant::now() + remaining;
                m.revoked.insert(sid.to_owned(), until);
                m.activity.invalidate(sid);
            }
        }
    }

    /// Whether session `sid` was ended.
    pub fn is_revoked(&self, sid: &str) -> bool {
        match self {
            Store::Memory(m) => m.revoked.contains_key(sid),
        }
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

    /// Records a pending SP-initiated logout under its LogoutRequest ID.
    pub fn put_pending_logout(&self, id: String, p: PendingLogout) {
        match self {
            Store::Memory(m) => m.pending_logouts.insert(id, p),
        }
    }

    /// Reads a pending logout without consuming it.
    pub fn get_pending_logout(&self, id: &str) -> Option<PendingLogout> {
        match self {
            Store::Memory(m) => m.pending_logouts.get(id),
        }
    }

    /// Consumes a pending logout: of concurrent callers, exactly one gets `Some`.
    pub fn take_pending_logout(&self, id: &str) -> Option<PendingLogout> {
        match self {
            Store::Memory(m) => m.pending_logouts.remove(id),
        }
    }

    /// Indexes session `sid` by what an IdP-initiated LogoutRequest names (IdP entityID,
    /// NameID, SessionIndex), for `ttl` (the session lifetime).
    pub fn index_session_for_logout(
        &self,
        idp: &str,
        name_id: &str,
        session_index: &str,
        sid: &str,
        ttl: Duration,
    ) {
        match self {
            Store::Memory(m) => {
                let until = Instant::now() + ttl;
                m.logout_index.insert(
                    logout_key(idp, name_id, session_index),
                    (sid.to_owned(), until),
                );
            }
        }
    }

    /// The session indexed under (IdP, NameID, SessionIndex), if any.
    pub fn session_for_logout(
        &self,
        idp: &str,
        name_id: &str,
        session_index: &str,
    ) -> Option<String> {
        match self {
            Store::Memory(m) => m
                .logout_index
                .get(&logout_key(idp, name_id, session_index))
                .map(|(sid, _)| sid),
        }
    }

    /// Records an IdP LogoutRequest ID as answered until `expires_in` from now. `true` for
    /// the first use only, atomically (replay protection).
    pub fn consume_logout_request(&self, id: &str, expires_in: Duration) -> bool {
        match self {
            Store::Memory(m) => {
                let until = Instant::now() + expires_in;
                m.logout_requests
                    .entry_by_ref(id)
                    .or_insert_with(|| until)
                    .is_fresh()
            }
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
    /// Last activity per session, Unix seconds by the injected clock; forgotten only after
    /// a whole session lifetime of silence (the session has expired by then), and never for
    /// lack of room: a missing mark reads as "first use", which must not revive an idle
    /// session.
    activity: Cache<String, std::sync::Arc<AtomicU64>>,
    /// Logged-out sessions until their cookie would have expired anyway. Not
    /// capacity-bounded, for the same reason as `assertions`.
    revoked: Cache<String, Instant>,
    /// SP-initiated logouts awaiting the IdP's LogoutResponse.
    pending_logouts: Cache<String, PendingLogout>,
    /// (IdP, NameID, SessionIndex) → session ID, until the session would expire. Bounded by
    /// logins, each of which passed signature verification.
    logout_index: Cache<String, (String, Instant)>,
    /// IdP LogoutRequest IDs already honoured (replay), each until it expires.
    logout_requests: Cache<String, Instant>,
}

/// One key for the three parts; NUL cannot occur in XML text.
fn logout_key(idp: &str, name_id: &str, session_index: &str) -> String {
    format!("{idp}\0{name_id}\0{session_index}")
}

/// Each index entry lives until the instant stored in it.
struct UntilInstantPair;

impl Expiry<String, (String, Instant)> for UntilInstantPair {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &(String, Instant),
        now: Instant,
    ) -> Option<Duration> {
        Some(value.1.saturating_duration_since(now))
    }
}

impl MemoryStore {
    fn new(pending_ttl: Duration, max_pending: u64, session_ttl: Duration) -> Self {
        MemoryStore {
            pending: Cache::builder()
                .max_capacity(max_pending)
                .time_to_live(pending_ttl)
                .build(),
            assertions: Cache::builder().expire_after(UntilInstant).build(),
            activity: Cache::builder()
                .time_to_idle(session_ttl + Duration::from_secs(60))
                .build(),
            revoked: Cache::builder().expire_after(UntilInstant).build(),
            pending_logouts: Cache::builder()
                .max_capacity(max_pending)
                .time_to_live(pending_ttl)
                .build(),
            logout_index: Cache::builder().expire_after(UntilInstantPair).build(),
            logout_requests: Cache::builder().expire_after(UntilInstant).build(),
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
        let store = std::sync::Arc::new(Store::memory(
            Duration::from_secs(60),
            10,
            Duration::from_secs(3600),
        ));
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
    fn session_activity_and_revocation() {
        let store = Store::memory(Duration::from_secs(60), 10, Duration::from_secs(3600));
        assert_eq!(store.touch_session("s", 100), None);
        assert_eq!(store.touch_session("s", 150), Some(100));
        assert_eq!(store.touch_session("s", 160), Some(150));
        assert!(!store.is_revoked("s"));
        store.revoke_session("s", Duration::from_secs(60));
        assert!(store.is_revoked("s"));
        assert!(!store.is_revoked("t"));
        assert_eq!(
            store.touch_session("s", 170),
            None,
            "activity forgotten on logout"
        );
    }

    #[test]
    fn logout_index_and_one_time_logout_state() {
        let store = Store::memory(Duration::from_secs(60), 10, Duration::from_secs(3600));
        store.index_session_for_logout("i", "n", "s1", "sid1", Duration::from_secs(60));
        assert_eq!(
            store.session_for_logout("i", "n", "s1").as_deref(),
            Some("sid1")
        );
        assert_eq!(store.session_for_logout("i", "n", "s2"), None);
        assert_eq!(store.session_for_logout("j", "n", "s1"), None);
        // Parts cannot be shifted into each other.
        assert_eq!(store.session_for_logout("i", "n\0s1", ""), None);
        assert!(store.consume_logout_request("_r", Duration::from_secs(60)));
        assert!(!store.consume_logout_request("_r", Duration::from_secs(60)));
        let p = PendingLogout {
            idp: "i".into(),
            issued_at: std::time::SystemTime::UNIX_EPOCH,
            return_to: None,
        };
        store.put_pending_logout("_l".into(), p);
        assert!(store.get_pending_logout("_l").is_some());
        assert!(store.take_pending_logout("_l").is_some());
        assert!(
            store.take_pending_logout("_l").is_none(),
            "a LogoutResponse replay finds nothing"
        );
    }

    #[test]
    fn pending_requests_are_taken_once() {
        let store = Store::memory(Duration::from_secs(60), 10, Duration::from_secs(3600));
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
