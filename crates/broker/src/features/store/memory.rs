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

use super::flat::{self, Clock, Keyed, Spot, Table, claim};

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
    /// Session activity marks, by bytes. Full, the least recently used mark of the new one's
    /// two buckets is dropped (counted): a session whose mark is gone is then judged idle
    /// since its login, which can only end it early, never revive it.
    pub activity_bytes: u64,
    /// The IdP-initiated logout index, by bytes. Full, an entry whose session can no longer
    /// be used (expired, ended, idle) makes room; when every candidate is live, the new
    /// login is refused with [`StoreError::Full`] rather than a live session made
    /// unreachable by its IdP's logout.
    pub logout_index_bytes: u64,
}

impl Budgets {
    /// The default byte budgets with a count cap of `max_pending`.
    pub fn with_max_pending(max_pending: u64) -> Budgets {
        Budgets {
            pending_bytes: DEFAULT_PENDING_BYTES,
            max_pending,
            replay_bytes: DEFAULT_REPLAY_BYTES,
            activity_bytes: DEFAULT_ACTIVITY_BYTES,
            logout_index_bytes: DEFAULT_LOGOUT_INDEX_BYTES,
        }
    }
}

/// Default of `saml.max_pending_bytes`: 48 MiB.
pub const DEFAULT_PENDING_BYTES: u64 = 48 << 20;
/// Default of `store.max_replay_bytes`: 16 MiB, 838,656 rows of 20 bytes; usable to about
/// 90 %, 750,000 IDs: 2,000 logins/s of 5-minute Assertions (+ 60 s skew) need 720,000.
pub const DEFAULT_REPLAY_BYTES: u64 = 16 << 20;
/// Default of `store.max_activity_bytes`: 16 MiB, 599,040 marks of 28 bytes (about 540,000
/// usable): the sessions of 250 logins/s used within the default 30-minute idle window
/// (+ 60 s) are 465,000.
pub const DEFAULT_ACTIVITY_BYTES: u64 = 16 << 20;
/// Default of `store.max_logout_index_bytes`: 32 MiB, 559,104 entries of 60 bytes (about
/// 500,000 usable): the same 465,000 sessions.
pub const DEFAULT_LOGOUT_INDEX_BYTES: u64 = 32 << 20;

/// Rows of the replay caches: key and expiry.
const REPLAY_WORDS: usize = 5;
/// Rows of the activity marks: key, expiry, the mark (Unix seconds, two words).
const ACTIVITY_WORDS: usize = 7;
/// Rows of the logout index: key, expiry, the store second it was written, the session ID
/// (a length byte and up to [`MAX_INDEXED_SID`] bytes, nine words).
const LOGOUT_WORDS: usize = 15;
/// The longest session ID the logout index holds (Varco's are 32 hex digits).
pub const MAX_INDEXED_SID: usize = 35;

/// Bytes of one activity mark (a fixed row, whatever the session ID).
pub fn activity_weight(_sid: &str) -> usize {
    Table::<ACTIVITY_WORDS>::ROW_BYTES
}

/// Bytes of one logout index entry.
pub fn logout_index_weight() -> usize {
    Table::<LOGOUT_WORDS>::ROW_BYTES
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

/// Bytes of one replay-cache entry (a fixed row: the ID's digest and its expiry).
pub fn replay_weight(_id: &str) -> usize {
    Table::<REPLAY_WORDS>::ROW_BYTES
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
        if cause == RemovalCause::Size {
            self.dropped(kind);
        }
    }

    /// Counts one entry of `kind` dropped for lack of room.
    fn dropped(&self, kind: &'static str) {
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
    /// Pending logins, shared (`Arc`): a read or a take hands out a reference, not a copy
    /// of the request's strings (issue 20: each copy was eight allocations on the ACS path).
    pub(crate) pending: Cache<String, Arc<Pending>>,
    /// Consumed Assertion IDs, each until its assertion expires. Full, a new ID is refused
    /// (fail closed): evicting a consumed ID before its assertion expires would re-open it
    /// to replay. Entries exist only for assertions that passed signature verification.
    assertions: Table<REPLAY_WORDS>,
    /// Last activity per session (Unix seconds by the injected clock), forgotten after
    /// `marks_ttl` of silence (`varco serve` passes the idle timeout plus 60 s: the session
    /// is idle by then), or, least recently used of the two buckets first, when the table
    /// is full (counted as `kind="activity"`). A missing mark reads as `Seen(None)`, which
    /// the callers take as "idle since login" (the session's `iat`), never as "just used":
    /// a dropped mark can end a session early, not revive an idle one.
    activity: Table<ACTIVITY_WORDS>,
    marks_ttl: Duration,
    /// Logged-out sessions until their cookie would have expired anyway. Not
    /// capacity-bounded: dropping one would revive a session that was ended.
    pub(crate) revoked: Cache<String, Instant>,
    /// SP-initiated logouts awaiting the IdP's LogoutResponse.
    pub(crate) pending_logouts: Cache<String, PendingLogout>,
    /// (IdP, NameID, SessionIndex) → session ID, until the session would expire; an entry
    /// whose session can no longer be used gives way to a new one (see
    /// [`Budgets::logout_index_bytes`]).
    logout_index: Table<LOGOUT_WORDS>,
    /// IdP LogoutRequest IDs already honoured (replay), each until it expires.
    logout_requests: Table<REPLAY_WORDS>,
    /// Small records of other features (the OpenID Provider's codes, grants and tokens),
    /// keyed `kind\0id`, each until the instant stored with it; bounded by bytes
    /// ([`RECORD_BYTES`]), evicting the least recently used first (LRU, every new record
    /// admitted).
    pub(crate) records: Cache<String, (Arc<[u8]>, Instant)>,
    pub(crate) evictions: Evictions,
    /// The key of every table's digests.
    keyed: Keyed,
    clock: Clock,
}

/// Digest tags: one per table, so one table's key never meets another's.
const TAG_ASSERTION: u8 = 1;
const TAG_LOGOUT_REQUEST: u8 = 2;
const TAG_SESSION: u8 = 3;
const TAG_LOGOUT_INDEX: u8 = 4;

fn mark_of(row: &[u32; ACTIVITY_WORDS]) -> u64 {
    u64::from(row[5]) | (u64::from(row[6]) << 32)
}

fn set_mark(row: &mut [u32; ACTIVITY_WORDS], mark: u64) {
    row[5] = mark as u32;
    row[6] = (mark >> 32) as u32;
}

/// The session ID of a logout index row.
fn sid_of(row: &[u32; LOGOUT_WORDS]) -> Option<String> {
    let mut bytes = [0u8; 36];
    for (chunk, w) in bytes.chunks_exact_mut(4).zip(&row[6..]) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    let len = usize::from(bytes[0]);
    let sid = bytes.get(1..1 + len)?;
    String::from_utf8(sid.to_vec()).ok()
}

fn set_sid(row: &mut [u32; LOGOUT_WORDS], sid: &str) {
    let mut bytes = [0u8; 36];
    bytes[0] = sid.len() as u8;
    bytes[1..1 + sid.len()].copy_from_slice(sid.as_bytes());
    for (w, chunk) in row[6..].iter_mut().zip(bytes.chunks_exact(4)) {
        let mut b = [0u8; 4];
        b.copy_from_slice(chunk);
        *w = u32::from_le_bytes(b);
    }
}

/// A session's row key in the activity table: the keyed digest of its ID (HMAC-SHA-256,
/// [`flat::Keyed`]), a function of the ID and of this process's digest key alone. The
/// forward-auth path derives it once per opened session (`state::views::View`) instead of at
/// every request: the digest was an eighth of an `/auth` answer (issue 20). Only
/// [`crate::features::store::Store::session_key`] makes one, from the store that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionKey(flat::Key);

impl MemoryStore {
    pub(crate) fn session_key(&self, sid: &str) -> SessionKey {
        SessionKey(self.keyed.key(TAG_SESSION, &[sid.as_bytes()]))
    }

    /// The tests' shorthand: the store's own callers go through `Store::check_session`.
    #[cfg(test)]
    pub(crate) fn check_session(&self, sid: &str, now: u64) -> Activity {
        self.check_session_keyed(sid, self.session_key(sid), now)
    }

    /// [`MemoryStore::check_session`] with the session's key derived beforehand
    /// ([`MemoryStore::session_key`] of the same `sid`).
    pub(crate) fn check_session_keyed(&self, sid: &str, key: SessionKey, now: u64) -> Activity {
        if self.revoked.contains_key(sid) {
            return Activity::Revoked;
        }
        let SessionKey(key) = key;
        let t = self.clock.now();
        let until = Clock::until(t, self.marks_ttl);
        // Concurrent requests are serialised by the shard's lock: each reports the mark
        // before its own.
        let (previous, dropped) = self.activity.entry(
            &key,
            t,
            |row| Some(mark_of(row)),
            |spot| match spot {
                Spot::Found(row) => {
                    let previous = mark_of(row);
                    set_mark(row, now);
                    row[4] = until;
                    (Some(previous), false)
                }
                Spot::Free(row) => {
                    claim(row, &key, until);
                    set_mark(row, now);
                    (None, false)
                }
                Spot::Victim(row) => {
                    claim(row, &key, until);
                    set_mark(row, now);
                    (None, true)
                }
                Spot::Full => (None, false),
            },
        );
        if dropped {
            self.evictions.dropped("activity");
        }
        Activity::Seen(previous)
    }

    pub(crate) fn revoke_session(&self, sid: &str, remaining: Duration) {
        let until = Instant::now() + remaining;
        self.revoked.insert(sid.to_owned(), until);
        self.activity
            .remove(&self.session_key(sid).0, self.clock.now());
    }

    /// [`MemoryStore::check_session`] without marking the session used.
    pub(crate) fn peek_session(&self, sid: &str) -> Activity {
        if self.revoked.contains_key(sid) {
            return Activity::Revoked;
        }
        Activity::Seen(
            self.activity
                .get(&self.session_key(sid).0, self.clock.now())
                .map(|r| mark_of(&r)),
        )
    }

    pub(crate) fn is_revoked(&self, sid: &str) -> bool {
        self.revoked.contains_key(sid)
    }

    pub(crate) fn consume_assertion(
        &self,
        id: &str,
        expires_in: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.keyed.key(TAG_ASSERTION, &[id.as_bytes()]);
        self.consume_once(&self.assertions, &key, expires_in)
    }

    pub(crate) fn consume_logout_request(
        &self,
        id: &str,
        expires_in: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.keyed.key(TAG_LOGOUT_REQUEST, &[id.as_bytes()]);
        self.consume_once(&self.logout_requests, &key, expires_in)
    }

    /// First use of `key` in a replay cache: `true` once, atomically (one shard lock). When
    /// neither of its buckets has a free row, the new ID is refused with
    /// [`StoreError::Full`] (its login or logout fails closed) rather than admitted by
    /// forgetting another, which would re-open that one to replay.
    fn consume_once(
        &self,
        table: &Table<REPLAY_WORDS>,
        key: &flat::Key,
        expires_in: Duration,
    ) -> Result<bool, StoreError> {
        let t = self.clock.now();
        table.entry(
            key,
            t,
            |_| None,
            |spot| match spot {
                Spot::Found(_) => Ok(false),
                Spot::Free(row) => {
                    claim(row, key, Clock::until(t, expires_in));
                    Ok(true)
                }
                Spot::Victim(_) | Spot::Full => Err(StoreError::Full),
            },
        )
    }

    /// Indexes `sid` under (IdP, NameID, SessionIndex) for `ttl`. A row of another key may
    /// make room when its session can no longer be used: expired, ended (revoked), or
    /// without an activity mark for longer than marks are kept (idle, or its mark dropped:
    /// either way `state::current::live` refuses it). None such: [`StoreError::Full`].
    pub(crate) fn index_session_for_logout(
        &self,
        idp: &str,
        name_id: &str,
        session_index: &str,
        sid: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        if sid.len() > MAX_INDEXED_SID {
            return Err(StoreError::Corrupt);
        }
        let key = self.logout_key(idp, name_id, session_index);
        let t = self.clock.now();
        let idle = u32::try_from(self.marks_ttl.as_secs()).unwrap_or(u32::MAX);
        let dead = |row: &[u32; LOGOUT_WORDS]| {
            let Some(other) = sid_of(row) else {
                return Some(0);
            };
            let unmarked = self.activity.get(&self.session_key(&other).0, t).is_none();
            let dead =
                self.revoked.contains_key(&other) || (unmarked && row[5].saturating_add(idle) < t);
            dead.then_some(0)
        };
        self.logout_index.entry(&key, t, dead, |spot| match spot {
            Spot::Found(row) | Spot::Free(row) | Spot::Victim(row) => {
                claim(row, &key, Clock::until(t, ttl));
                row[5] = t;
                set_sid(row, sid);
                Ok(())
            }
            Spot::Full => Err(StoreError::Full),
        })
    }

    /// The session indexed under (IdP, NameID, SessionIndex), if any.
    pub(crate) fn session_for_logout(
        &self,
        idp: &str,
        name_id: &str,
        session_index: &str,
    ) -> Option<String> {
        let key = self.logout_key(idp, name_id, session_index);
        self.logout_index
            .get(&key, self.clock.now())
            .and_then(|row| sid_of(&row))
    }

    fn logout_key(&self, idp: &str, name_id: &str, session_index: &str) -> flat::Key {
        self.keyed.key(
            TAG_LOGOUT_INDEX,
            &[idp.as_bytes(), name_id.as_bytes(), session_index.as_bytes()],
        )
    }

    /// Activity marks kept and their bytes now.
    pub fn activity_bytes(&self) -> (u64, u64) {
        let n = self.activity.live(self.clock.now());
        (n, n * Table::<ACTIVITY_WORDS>::ROW_BYTES as u64)
    }

    /// Bytes of the consumed-assertion IDs remembered now.
    pub fn replay_bytes(&self) -> u64 {
        self.assertions.live(self.clock.now()) * Table::<REPLAY_WORDS>::ROW_BYTES as u64
    }

    /// Logout index entries kept and their bytes now.
    pub fn logout_index_bytes(&self) -> (u64, u64) {
        let n = self.logout_index.live(self.clock.now());
        (n, n * Table::<LOGOUT_WORDS>::ROW_BYTES as u64)
    }

    /// Estimated bytes held by the pending logins now (after pending maintenance).
    pub fn pending_bytes(&self) -> (u64, u64) {
        self.pending.run_pending_tasks();
        (self.pending.entry_count(), self.pending.weighted_size())
    }

    /// Pending logins and logouts, and activity marks, dropped for lack of room so far.
    pub fn evicted(&self) -> u64 {
        self.evictions.total()
    }

    /// A store with these budgets; activity marks are kept `marks_ttl` after their last use
    /// (plus 60 s). Panics only if the system has no randomness (at start).
    pub(crate) fn new(pending_ttl: Duration, budgets: Budgets, marks_ttl: Duration) -> Self {
        let floor = budgets.pending_bytes / budgets.max_pending.max(1);
        let evictions = Evictions::default();
        let (on_login, on_logout) = (evictions.clone(), evictions.clone());
        #[allow(clippy::expect_used)]
        let keyed = Keyed::random().expect("the system's random number generator");
        MemoryStore {
            pending: Cache::builder()
                .max_capacity(budgets.pending_bytes)
                .weigher(move |k: &String, v: &Arc<Pending>| weight(pending_weight(k, v), floor))
                .eviction_listener(move |_k, _v, cause| on_login.record("login", cause))
                .time_to_live(pending_ttl)
                .build(),
            assertions: Table::with_budget(budgets.replay_bytes),
            activity: Table::with_budget(budgets.activity_bytes),
            marks_ttl: marks_ttl + Duration::from_secs(60),
            revoked: Cache::builder().expire_after(UntilInstant).build(),
            pending_logouts: Cache::builder()
                .max_capacity(budgets.pending_bytes / 4)
                .weigher(move |k: &String, v: &PendingLogout| {
                    weight(pending_logout_weight(k, v), floor)
                })
                .eviction_listener(move |_k, _v, cause| on_logout.record("logout", cause))
                .time_to_live(pending_ttl)
                .build(),
            logout_index: Table::with_budget(budgets.logout_index_bytes),
            logout_requests: Table::with_budget(budgets.replay_bytes),
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
            evictions,
            keyed,
            clock: Clock::start(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose logout index holds `rows` rows or a little more, marks kept 60 s.
    fn small(logout_index_bytes: u64) -> MemoryStore {
        MemoryStore::new(
            Duration::from_secs(60),
            Budgets {
                logout_index_bytes,
                ..Budgets::with_max_pending(10)
            },
            Duration::ZERO,
        )
    }

    /// Moves the store's clock `secs` forward.
    fn advance(store: &mut MemoryStore, secs: u64) {
        store.clock = store.clock.advanced(secs).unwrap();
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// Indexes fresh live sessions (each marked used) until the index refuses one.
    fn fill(store: &MemoryStore, from: usize) -> Vec<(String, String)> {
        let mut kept = Vec::new();
        for n in from.. {
            let (index, sid) = (format!("_si{n}"), format!("{n:032x}"));
            store.check_session(&sid, 1_000);
            match store.index_session_for_logout("idp", "nid", &index, &sid, HOUR) {
                Ok(()) => kept.push((index, sid)),
                Err(e) => {
                    assert_eq!(e, StoreError::Full);
                    break;
                }
            }
        }
        kept
    }

    #[test]
    fn a_logout_index_full_of_live_sessions_refuses_and_keeps_every_entry() {
        let store = small(1 << 16);
        let rows = store.logout_index.rows();
        let kept = fill(&store, 0);
        assert!(kept.len() * 100 >= rows * 85, "{} of {rows}", kept.len());
        assert!(kept.len() <= rows);
        for (index, sid) in &kept {
            assert_eq!(
                store.session_for_logout("idp", "nid", index).as_deref(),
                Some(sid.as_str()),
                "a live session's entry was dropped"
            );
        }
        assert_eq!(store.logout_index_bytes().0, kept.len() as u64);
    }

    #[test]
    fn ended_and_idle_sessions_give_way_to_new_logins() {
        let mut store = small(1 << 16);
        let first = fill(&store, 0);
        // Ended sessions: their entries make room.
        for (_, sid) in &first {
            store.revoke_session(sid, HOUR);
        }
        let second = fill(&store, first.len() + 1);
        assert!(second.len() * 100 >= first.len() * 85, "{}", second.len());
        // Idle sessions: no mark for longer than marks are kept (60 s here).
        advance(&mut store, 61);
        let third = fill(&store, first.len() + second.len() + 2);
        assert!(third.len() * 100 >= first.len() * 85, "{}", third.len());
        for (index, sid) in &third {
            assert_eq!(
                store.session_for_logout("idp", "nid", index).as_deref(),
                Some(sid.as_str())
            );
        }
    }

    #[test]
    fn a_session_used_within_the_idle_window_keeps_its_entry() {
        let mut store = small(1 << 16);
        let first = fill(&store, 0);
        // 40 s later, half the sessions are used again; 30 s after that, the others have been
        // silent 70 s (> 60 s: dead), the used ones 30 s (live).
        advance(&mut store, 40);
        for (_, sid) in first.iter().step_by(2) {
            store.check_session(sid, 1_040);
        }
        advance(&mut store, 30);
        let _ = fill(&store, first.len() + 1);
        for (index, sid) in first.iter().step_by(2) {
            assert_eq!(
                store.session_for_logout("idp", "nid", index).as_deref(),
                Some(sid.as_str()),
                "a session in use lost its entry"
            );
        }
    }

    #[test]
    fn the_logout_index_answers_only_its_own_key_and_refuses_long_session_ids() {
        let store = small(1 << 16);
        store
            .index_session_for_logout("i", "n", "s1", "sid1", HOUR)
            .unwrap();
        assert_eq!(
            store.session_for_logout("i", "n", "s1").as_deref(),
            Some("sid1")
        );
        assert_eq!(store.session_for_logout("i", "n\0s1", ""), None);
        assert_eq!(store.session_for_logout("i", "n", "s2"), None);
        let long = "x".repeat(MAX_INDEXED_SID + 1);
        assert_eq!(
            store.index_session_for_logout("i", "n", "s3", &long, HOUR),
            Err(StoreError::Corrupt)
        );
        let longest = "y".repeat(MAX_INDEXED_SID);
        store
            .index_session_for_logout("i", "n", "s3", &longest, HOUR)
            .unwrap();
        assert_eq!(
            store.session_for_logout("i", "n", "s3").as_deref(),
            Some(longest.as_str())
        );
        // The same key again points at the new session (a representation switch).
        store
            .index_session_for_logout("i", "n", "s1", "sid2", HOUR)
            .unwrap();
        assert_eq!(
            store.session_for_logout("i", "n", "s1").as_deref(),
            Some("sid2")
        );
    }
}
