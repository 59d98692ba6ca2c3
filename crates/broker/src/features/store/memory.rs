//! The records every backend keeps (pending logins and logouts, session activity) with their
//! error type, and the in-process backend. The Redis backend (`store::redis`) builds on these
//! and keeps a `MemoryStore` of its own as the fallback for session state.
//!
//! May import: the leaf (nothing of the store above it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::notification::RemovalCause;
use moka::sync::Cache;

/// Bytes counted for each cache entry besides its own fields: moka's per-entry bookkeeping
/// (the entry and its `Arc`s, the key hash, the access-order and write-order deque nodes, the
/// hash-table bucket) plus allocator rounding and the fragmentation a flood of dropped
/// entries leaves. Set from the process RSS measured by `tests/pending_rss.rs` (about 4.2 KB
/// per largest pending login kept; docs/PERFORMANCE.md).
pub const ENTRY_OVERHEAD: usize = 512;

/// The in-memory store's byte budgets (docs/OPERATIONS.md: `saml.max_pending_bytes`,
/// `saml.max_pending_requests`, `store.max_replay_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Pending logins, by estimated bytes; pending logouts get a quarter of it (each needs
    /// a session, so they cannot be flooded from outside).
    pub pending_bytes: u64,
    /// Pending logins, by count (each entry weighs at least `pending_bytes / max_pending`).
    pub max_pending: u64,
    /// Each replay cache (consumed assertion IDs, honoured LogoutRequest IDs), by estimated
    /// bytes. Full, it refuses new entries (the login or logout fails closed) instead of
    /// forgetting old ones, which would re-open them to replay.
    pub replay_bytes: u64,
    /// Session activity marks, by estimated bytes. Full, the least used marks are dropped
    /// (counted): a session whose mark is gone is then judged idle since its login, which can
    /// only end it early, never revive it.
    pub activity_bytes: u64,
}

impl Budgets {
    /// The default byte budgets with a count cap of `max_pending`.
    pub fn with_max_pending(max_pending: u64) -> Budgets {
        Budgets {
            pending_bytes: DEFAULT_PENDING_BYTES,
            max_pending,
            replay_bytes: DEFAULT_REPLAY_BYTES,
            activity_bytes: DEFAULT_ACTIVITY_BYTES,
        }
    }
}

/// Default of `saml.max_pending_bytes`: 48 MiB.
pub const DEFAULT_PENDING_BYTES: u64 = 48 << 20;
/// Default of `store.max_replay_bytes`: 16 MiB.
pub const DEFAULT_REPLAY_BYTES: u64 = 16 << 20;
/// Default of `store.max_activity_bytes`: 32 MiB, about 73,000 sessions' marks.
pub const DEFAULT_ACTIVITY_BYTES: u64 = 32 << 20;

/// Bytes counted for each activity mark besides its key: the `Arc<AtomicU64>` allocation,
/// moka's per-entry bookkeeping and the fragmentation of marks dropped under a full budget.
/// Set from the RSS measured by `tests/state_rss.rs` (441 bytes per mark kept while twice the
/// budget's sessions went through; docs/PERFORMANCE.md): each mark weighs 456.
pub const ACTIVITY_OVERHEAD: usize = 384;

/// The estimated bytes of one activity mark.
pub fn activity_weight(sid: &str) -> usize {
    ACTIVITY_OVERHEAD + size_of::<(String, Arc<AtomicU64>)>() + sid.len()
}

/// The estimated bytes of one pending login: its strings' heap buffers, the record, the key
/// and [`ENTRY_OVERHEAD`].
pub fn pending_weight(key: &str, p: &Pending) -> usize {
    ENTRY_OVERHEAD
        + size_of::<(String, Pending)>()
        + key.len()
        + p.idp.capacity()
        + p.return_to.capacity()
        + p.browser.capacity()
        + p.request_xml.capacity()
}

/// The estimated bytes of one pending logout.
pub fn pending_logout_weight(key: &str, p: &PendingLogout) -> usize {
    ENTRY_OVERHEAD
        + size_of::<(String, PendingLogout)>()
        + key.len()
        + p.idp.capacity()
        + p.return_to.as_ref().map_or(0, String::capacity)
}

/// The estimated bytes of one replay-cache entry (an ID and its expiry).
pub fn replay_weight(key: &str) -> usize {
    ENTRY_OVERHEAD + size_of::<(String, Instant)>() + key.len()
}

fn weight(bytes: usize, floor: u64) -> u32 {
    u32::try_from((bytes as u64).max(floor)).unwrap_or(u32::MAX)
}

/// Counts (and logs) pending logins and logouts, and session activity marks, dropped for lack
/// of room before their TTL: under a flood these are the legitimate logins an operator must
/// hear about.
#[derive(Clone, Default)]
pub(crate) struct Evictions {
    counter: Arc<OnceLock<prometheus::IntCounterVec>>,
    seen: Arc<AtomicU64>,
}

impl Evictions {
    pub(crate) fn bind(&self, counter: &prometheus::IntCounterVec) {
        let _ = self.counter.set(counter.clone());
    }

    fn record(&self, kind: &'static str, cause: RemovalCause) {
        if cause != RemovalCause::Size {
            return;
        }
        if let Some(c) = self.counter.get() {
            c.with_label_values(&[kind]).inc();
        }
        // The first, then one line per thousand: a flood must not become a log flood.
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 || n % 1000 == 0 {
            tracing::warn!(event = "pending_evicted", kind = %kind, total = n, "a pending request or an activity mark was dropped for lack of room before its TTL");
        }
    }

    /// Pending logins and logouts dropped for lack of room so far.
    pub(crate) fn total(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}

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
    /// A replay cache is at its byte budget (`store.max_replay_bytes`): the new ID is refused
    /// rather than another forgotten.
    Full,
}

impl StoreError {
    /// Every error, for pre-initialising the error counter.
    pub const ALL: [StoreError; 3] = [
        StoreError::Unavailable,
        StoreError::Timeout,
        StoreError::Corrupt,
    ];

    /// The stable code of this error.
    pub fn code(self) -> &'static str {
        match self {
            StoreError::Unavailable => "store_unavailable",
            StoreError::Timeout => "store_timeout",
            StoreError::Corrupt => "store_corrupt",
            StoreError::Full => "store_full",
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
    /// Last activity per session, Unix seconds by the injected clock; forgotten after the
    /// lifetime the store was built with (plus 60 s) of silence (`varco serve` passes the
    /// idle timeout: the session is idle by then), or, least used
    /// first, when `activity_bytes` is full (counted as `kind="activity"`). A missing mark
    /// reads as `Seen(None)`, which the callers take as "idle since login" (the session's
    /// `iat`), never as "just used": a dropped mark can end a session early, not revive an
    /// idle one.
    pub(crate) activity: Cache<String, Arc<AtomicU64>>,
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
    /// Small records of other features (the OpenID Provider's codes, grants and tokens),
    /// keyed `kind\0id`, each until the instant stored with it; bounded by bytes
    /// ([`RECORD_BYTES`]), evicting the least recently used first (LRU, every new record
    /// admitted).
    pub(crate) records: Cache<String, (Arc<[u8]>, Instant)>,
    pub(crate) budgets: Budgets,
    pub(crate) evictions: Evictions,
    /// Estimated bytes in `assertions` and in `logout_requests`: added on insertion, taken
    /// back by each cache's removal listener (expiry), so they never read low.
    assertion_bytes: Arc<AtomicU64>,
    logout_request_bytes: Arc<AtomicU64>,
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
            .or_insert_with(|| Arc::new(AtomicU64::new(now)));
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

    pub(crate) fn consume_assertion(
        &self,
        id: &str,
        expires_in: Duration,
    ) -> Result<bool, StoreError> {
        self.consume_once(&self.assertions, &self.assertion_bytes, id, expires_in)
    }

    pub(crate) fn consume_logout_request(
        &self,
        id: &str,
        expires_in: Duration,
    ) -> Result<bool, StoreError> {
        self.consume_once(
            &self.logout_requests,
            &self.logout_request_bytes,
            id,
            expires_in,
        )
    }

    /// First use of `id` in a replay cache: `true` once. Over the byte budget a new ID is
    /// refused with [`StoreError::Full`] (its login or logout fails closed) rather than
    /// admitted by forgetting another, which would re-open that one to replay.
    /// Concurrent first uses may pass the check together: the overshoot is bounded by the
    /// requests in flight, each one an ID from a verified signature.
    fn consume_once(
        &self,
        cache: &Cache<String, Instant>,
        used: &AtomicU64,
        id: &str,
        expires_in: Duration,
    ) -> Result<bool, StoreError> {
        if cache.contains_key(id) {
            return Ok(false);
        }
        let w = replay_weight(id) as u64;
        if used.load(Ordering::Acquire) + w > self.budgets.replay_bytes {
            return Err(StoreError::Full);
        }
        let until = Instant::now() + expires_in;
        let first = cache.entry_by_ref(id).or_insert_with(|| until).is_fresh();
        if first {
            used.fetch_add(w, Ordering::AcqRel);
        }
        Ok(first)
    }

    /// Activity marks kept and their estimated bytes now (after maintenance).
    pub fn activity_bytes(&self) -> (u64, u64) {
        self.activity.run_pending_tasks();
        (self.activity.entry_count(), self.activity.weighted_size())
    }

    /// Estimated bytes of the consumed-assertion IDs remembered now.
    pub fn replay_bytes(&self) -> u64 {
        self.assertion_bytes.load(Ordering::Acquire)
    }

    /// Estimated bytes held by the pending logins now (after pending maintenance).
    pub fn pending_bytes(&self) -> (u64, u64) {
        self.pending.run_pending_tasks();
        (self.pending.entry_count(), self.pending.weighted_size())
    }

    /// Pending logins and logouts dropped for lack of room so far.
    pub fn evicted(&self) -> u64 {
        self.evictions.total()
    }

    pub(crate) fn new(pending_ttl: Duration, budgets: Budgets, session_ttl: Duration) -> Self {
        let floor = budgets.pending_bytes / budgets.max_pending.max(1);
        let evictions = Evictions::default();
        let (on_login, on_logout) = (evictions.clone(), evictions.clone());
        let on_activity = evictions.clone();
        let assertion_bytes = Arc::new(AtomicU64::new(0));
        let logout_request_bytes = Arc::new(AtomicU64::new(0));
        MemoryStore {
            pending: Cache::builder()
                .max_capacity(budgets.pending_bytes)
                .weigher(move |k: &String, v: &Pending| weight(pending_weight(k, v), floor))
                .eviction_listener(move |_k, _v, cause| on_login.record("login", cause))
                .time_to_live(pending_ttl)
                .build(),
            assertions: Cache::builder()
                .eviction_listener(release(&assertion_bytes))
                .expire_after(UntilInstant)
                .build(),
            activity: Cache::builder()
                .max_capacity(budgets.activity_bytes)
                .weigher(|k: &String, _v: &Arc<AtomicU64>| weight(activity_weight(k), 0))
                .eviction_listener(move |_k, _v, cause| on_activity.record("activity", cause))
                .time_to_idle(session_ttl + Duration::from_secs(60))
                .build(),
            revoked: Cache::builder().expire_after(UntilInstant).build(),
            pending_logouts: Cache::builder()
                .max_capacity(budgets.pending_bytes / 4)
                .weigher(move |k: &String, v: &PendingLogout| {
                    weight(pending_logout_weight(k, v), floor)
                })
                .eviction_listener(move |_k, _v, cause| on_logout.record("logout", cause))
                .time_to_live(pending_ttl)
                .build(),
            logout_index: Cache::builder().expire_after(UntilInstantPair).build(),
            logout_requests: Cache::builder()
                .eviction_listener(release(&logout_request_bytes))
                .expire_after(UntilInstant)
                .build(),
            records: Cache::builder()
                .max_capacity(RECORD_BYTES)
                // Least recently used out first, and every new record admitted: TinyLFU
                // (moka's default) may refuse a fresh code in favour of older, busier
                // entries, and a code must exist once it is handed out.
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .weigher(|k: &String, v: &(Arc<[u8]>, Instant)| {
                    weight(ENTRY_OVERHEAD + k.len() + v.0.len(), 0)
                })
                .expire_after(UntilInstantRecord)
                .build(),
            budgets,
            evictions,
            assertion_bytes,
            logout_request_bytes,
        }
    }
}

/// A replay cache's removal listener: gives the entry's bytes back to its count.
fn release(
    used: &Arc<AtomicU64>,
) -> impl Fn(Arc<String>, Instant, RemovalCause) + Send + Sync + 'static {
    let used = used.clone();
    move |k, _, _| {
        let w = replay_weight(&k) as u64;
        // Never below zero, whatever the order of removals and insertions.
        let _ = used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
            Some(u.saturating_sub(w))
        });
    }
}

/// Most members of one set of records (the clients that got tokens in one session).
pub const MAX_MEMBERS: usize = 64;

/// Byte budget of the in-memory records cache (`MemoryStore::records`): 32 MiB, about
/// 20,000 grants with their principals. Records are made only for logged-in sessions.
pub const RECORD_BYTES: u64 = 32 << 20;

/// Each record lives until the instant stored with it.
struct UntilInstantRecord;

impl Expiry<String, (Arc<[u8]>, Instant)> for UntilInstantRecord {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &(Arc<[u8]>, Instant),
        now: Instant,
    ) -> Option<Duration> {
        Some(value.1.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &(Arc<[u8]>, Instant),
        now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.1.saturating_duration_since(now))
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
