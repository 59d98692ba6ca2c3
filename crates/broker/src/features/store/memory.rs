//! The records every backend keeps (pending logins and logouts, session activity) with their
//! error type, and the in-process backend. The Redis backend (`store::redis`) builds on these
//! and keeps a `MemoryStore` of its own as the fallback for session state.
//!
//! May import: the leaf (nothing of the store above it).

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

/// Why a login-state operation could not be answered. The codes are stable (logs, metrics,
/// the 503 page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The backend refused the connection, dropped it, or answered with an error.
    Unavailable,
    /// No answer within `store.command_timeout_ms`.
    Timeout,
    /// The backend answered with a value Varco did not write (or no longer reads).
    Corrupt,
}

impl StoreError {
    /// The stable code of this error.
    pub fn code(self) -> &'static str {
        match self {
            StoreError::Unavailable => "store_unavailable",
            StoreError::Timeout => "store_timeout",
            StoreError::Corrupt => "store_corrupt",
        }
    }
}

/// What the session state says about a session at a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Ended (logout, replaced, idle): refuse the cookie.
    Revoked,
    /// Live; the previous activity mark (Unix seconds), if the store has one.
    Seen(Option<u64>),
}

/// The in-memory backend.
pub struct MemoryStore {
    pub(crate) pending: Cache<String, Pending>,
    /// Not capacity-bounded on purpose: evicting a consumed ID before its assertion expires
    /// would re-open it to replay. Entries exist only for assertions that passed signature
    /// verification with a trusted IdP key, and each expires with its assertion.
    pub(crate) assertions: Cache<String, Instant>,
    /// Last activity per session, Unix seconds by the injected clock; forgotten only after
    /// a whole session lifetime of silence (the session has expired by then), and never for
    /// lack of room: a missing mark reads as "first use", which must not revive an idle
    /// session.
    pub(crate) activity: Cache<String, std::sync::Arc<AtomicU64>>,
    /// Logged-out sessions until their cookie would have expired anyway. Not
    /// capacity-bounded, for the same reason as `assertions`.
    pub(crate) revoked: Cache<String, Instant>,
    /// SP-initiated logouts awaiting the IdP's LogoutResponse.
    pub(crate) pending_logouts: Cache<String, PendingLogout>,
    /// (IdP, NameID, SessionIndex) → session ID, until the session would expire. Bounded by
    /// logins, each of which passed signature verification.
    pub(crate) logout_index: Cache<String, (String, Instant)>,
    /// IdP LogoutRequest IDs already honoured (replay), each until it expires.
    pub(crate) logout_requests: Cache<String, Instant>,
}

/// One key for the three parts; NUL cannot occur in XML text.
pub(crate) fn logout_key(idp: &str, name_id: &str, session_index: &str) -> String {
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
    pub(crate) fn check_session(&self, sid: &str, now: u64) -> Activity {
        if self.revoked.contains_key(sid) {
            return Activity::Revoked;
        }
        let entry = self
            .activity
            .entry_by_ref(sid)
            .or_insert_with(|| std::sync::Arc::new(AtomicU64::new(now)));
        if entry.is_fresh() {
            return Activity::Seen(None);
        }
        // Concurrent requests may race; the latest mark wins, the earliest is reported,
        // which is the stricter reading of "idle since".
        Activity::Seen(Some(entry.value().swap(now, Ordering::Relaxed)))
    }

    pub(crate) fn revoke_session(&self, sid: &str, remaining: Duration) {
        let until = Instant::now() + remaining;
        self.revoked.insert(sid.to_owned(), until);
        self.activity.invalidate(sid);
    }

    /// [`MemoryStore::check_session`] without marking the session used.
    pub(crate) fn peek_session(&self, sid: &str) -> Activity {
        if self.revoked.contains_key(sid) {
            return Activity::Revoked;
        }
        Activity::Seen(self.activity.get(sid).map(|a| a.load(Ordering::Relaxed)))
    }

    pub(crate) fn is_revoked(&self, sid: &str) -> bool {
        self.revoked.contains_key(sid)
    }

    pub(crate) fn consume_assertion(&self, id: &str, expires_in: Duration) -> bool {
        let until = Instant::now() + expires_in;
        self.assertions
            .entry_by_ref(id)
            .or_insert_with(|| until)
            .is_fresh()
    }

    pub(crate) fn new(pending_ttl: Duration, max_pending: u64, session_ttl: Duration) -> Self {
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
