//! Short-lived login state: pending AuthnRequests, consumed Assertion IDs, and the server-side
//! half of sessions (last activity for the idle timeout, logged-out session IDs).
//!
//! One enum with one variant per backend (in-process, or Redis shared by several replicas),
//! so the hot path pays no boxing and a new backend is a compile-time-checked addition.
//!
//! Failure semantics differ by purpose (docs/ARCHITECTURE.md, docs/THREATS.md):
//! - the login state (`put_pending`, `get_pending`, `take_pending`, `consume_assertion`)
//!   returns a [`StoreError`] when the backend cannot answer, and the caller refuses the
//!   login (fail closed: a replay check that cannot run is not passed);
//! - the session state (`check_session`, `touch_session`, `revoke_session`) never fails: when
//!   Redis cannot answer, the replica's own memory of revocations and activity decides, so
//!   sessions already issued keep working through an outage.
//!
//! Adding an operation: a method on [`Store`] matching both variants; the Redis variant
//! goes through `RedisStore::run` (timeout, metrics, error mapping) with a key built by
//! `RedisStore::key(kind, id)`.
//!
//! May import: the leaf, `features::metrics`, its `memory` and `redis` backends.
mod flat;
pub mod memory;
pub mod redis;

pub use memory::{
    Activity, Budgets, MAX_MEMBERS, MemoryStore, Pending, PendingLogout, SessionKey, StoreError,
};

use std::sync::Arc;
use std::time::{Duration, Instant};

/// The store backends.
// One per process, built once and never moved after: the variants' sizes do not matter,
// and boxing one would add a pointer chase to every request.
#[allow(clippy::large_enum_variant)]
pub enum Store {
    /// In-process (moka): the single-replica default.
    Memory(MemoryStore),
    /// Redis, shared by every replica (`[store] backend = "redis"`).
    Redis(redis::RedisStore),
}

impl Store {
    /// An in-memory store. `session_ttl` bounds how long a session's last activity is kept.
    /// Pending logins are capped at `max_pending` and the default byte budgets.
    pub fn memory(pending_ttl: Duration, max_pending: u64, session_ttl: Duration) -> Self {
        Self::memory_with(
            pending_ttl,
            Budgets::with_max_pending(max_pending),
            session_ttl,
        )
    }

    /// An in-memory store with the given byte budgets.
    pub fn memory_with(pending_ttl: Duration, budgets: Budgets, session_ttl: Duration) -> Self {
        Store::Memory(MemoryStore::new(pending_ttl, budgets, session_ttl))
    }

    /// Routes the store's counts to `metrics`: evictions for lack of room (memory), latency
    /// and errors (Redis).
    pub fn bind_metrics(&self, metrics: &crate::features::metrics::Metrics) {
        match self {
            Store::Memory(m) => m.evictions.bind(&metrics.pending_evicted),
            Store::Redis(r) => r.bind_metrics(metrics),
        }
    }

    /// Whether session `sid` was ended, and if not, marks it used at `now` (Unix seconds)
    /// and returns the previous mark. Never fails (see the module documentation).
    pub async fn check_session(&self, sid: &str, now: u64) -> Activity {
        self.check_session_keyed(sid, self.session_key(sid), now)
            .await
    }

    /// The key under which this store marks `sid`'s activity in memory: a keyed digest,
    /// derived once per opened session by the forward-auth path (`state::views::View`).
    pub fn session_key(&self, sid: &str) -> SessionKey {
        match self {
            Store::Memory(m) => m.session_key(sid),
            Store::Redis(r) => r.session_key(sid),
        }
    }

    /// [`Store::check_session`] with `key`, this store's [`Store::session_key`] of `sid`.
    pub async fn check_session_keyed(&self, sid: &str, key: SessionKey, now: u64) -> Activity {
        match self {
            Store::Memory(m) => m.check_session_keyed(sid, key, now),
            Store::Redis(r) => r.check_session(sid, key, now).await,
        }
    }

    /// Whether session `sid` was ended, and its last activity mark, without marking it.
    pub async fn peek_session(&self, sid: &str) -> Activity {
        match self {
            Store::Memory(m) => m.peek_session(sid),
            Store::Redis(r) => r.peek_session(sid).await,
        }
    }

    /// Marks session `sid` as used at `now` (its first mark, at login).
    pub async fn touch_session(&self, sid: &str, now: u64) {
        let _ = self.check_session(sid, now).await;
    }

    /// Ends session `sid` (logout, or replaced by a new login) for `remaining`, its
    /// remaining lifetime: a copy of its cookie is refused from now on.
    pub async fn revoke_session(&self, sid: &str, remaining: Duration) {
        match self {
            Store::Memory(m) => m.revoke_session(sid, remaining),
            Store::Redis(r) => r.revoke_session(sid, remaining).await,
        }
    }

    /// Records a pending request.
    pub async fn put_pending(&self, id: String, p: Pending) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.pending.insert(id, Arc::new(p));
                Ok(())
            }
            Store::Redis(r) => r.put_pending(&id, &p).await,
        }
    }

    /// Reads a pending request without consuming it.
    pub async fn get_pending(&self, id: &str) -> Result<Option<Arc<Pending>>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.pending.get(id)),
            Store::Redis(r) => Ok(r.get_pending(id).await?.map(Arc::new)),
        }
    }

    /// [`Self::get_pending`] where the answer needs no I/O (the in-process store), for a
    /// caller off the async runtime; `None` for Redis, whose answer needs the network.
    pub fn get_pending_now(&self, id: &str) -> Option<Option<Arc<Pending>>> {
        match self {
            Store::Memory(m) => Some(m.pending.get(id)),
            Store::Redis(_) => None,
        }
    }

    /// Consumes a pending request: of concurrent callers (on any replica), exactly one gets
    /// `Some`.
    pub async fn take_pending(&self, id: &str) -> Result<Option<Arc<Pending>>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.pending.remove(id)),
            Store::Redis(r) => Ok(r.take_pending(id).await?.map(Arc::new)),
        }
    }

    /// Records a pending SP-initiated logout under its LogoutRequest ID.
    pub async fn put_pending_logout(&self, id: String, p: PendingLogout) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.pending_logouts.insert(id, p);
                Ok(())
            }
            Store::Redis(r) => r.put_pending_logout(&id, &p).await,
        }
    }

    /// Reads a pending logout without consuming it.
    pub async fn get_pending_logout(&self, id: &str) -> Result<Option<PendingLogout>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.pending_logouts.get(id)),
            Store::Redis(r) => r.get_pending_logout(id, false).await,
        }
    }

    /// Consumes a pending logout: of concurrent callers (on any replica), exactly one gets
    /// `Some`.
    pub async fn take_pending_logout(&self, id: &str) -> Result<Option<PendingLogout>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.pending_logouts.remove(id)),
            Store::Redis(r) => r.get_pending_logout(id, true).await,
        }
    }

    /// Indexes session `sid` by what an IdP-initiated LogoutRequest names (IdP entityID,
    /// NameID, SessionIndex), for `ttl` (the session lifetime). In memory the index has a
    /// byte budget: [`StoreError::Full`] when no entry can make room (every candidate's
    /// session still usable), and the caller refuses the login (fail closed).
    pub async fn index_session_for_logout(
        &self,
        idp: &str,
        name_id: &str,
        session_index: &str,
        sid: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => m.index_session_for_logout(idp, name_id, session_index, sid, ttl),
            Store::Redis(r) => {
                let key = logout_key(idp, name_id, session_index);
                r.index_session_for_logout(&key, sid, ttl).await
            }
        }
    }

    /// The session indexed under (IdP, NameID, SessionIndex), if any.
    pub async fn session_for_logout(
        &self,
        idp: &str,
        name_id: &str,
        session_index: &str,
    ) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.session_for_logout(idp, name_id, session_index)),
            Store::Redis(r) => {
                r.session_for_logout(&logout_key(idp, name_id, session_index))
                    .await
            }
        }
    }

    /// Records an IdP LogoutRequest ID as answered until `expires_in` from now. `true` for
    /// the first use only, atomically, on any replica (replay protection).
    pub async fn consume_logout_request(
        &self,
        id: &str,
        expires_in: Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => m.consume_logout_request(id, expires_in),
            Store::Redis(r) => {
                r.consume_once("logout_request", "consume_logout_request", id, expires_in)
                    .await
            }
        }
    }

    /// One step of the shared GCRA bucket `id` (Redis only): `None` for the in-memory
    /// backend (the caller's own limiter decides), else 0 when admitted or the microseconds
    /// to wait.
    pub async fn shared_rate(
        &self,
        id: &str,
        interval_us: u64,
        tolerance_us: u64,
    ) -> Option<Result<u64, StoreError>> {
        match self {
            Store::Memory(_) => None,
            Store::Redis(r) => Some(r.rate(id, interval_us, tolerance_us).await),
        }
    }

    /// Records an Assertion ID as used until `expires_in` from now. Returns `true` for the
    /// first use only, atomically: concurrent double submits (on any replica) get one `true`.
    pub async fn consume_assertion(
        &self,
        id: &str,
        expires_in: Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => m.consume_assertion(id, expires_in),
            Store::Redis(r) => r.consume_assertion(id, expires_in).await,
        }
    }
}

/// One Redis key for the three parts of a logout index entry; NUL cannot occur in XML text.
fn logout_key(idp: &str, name_id: &str, session_index: &str) -> String {
    format!("{idp}\0{name_id}\0{session_index}")
}

/// Key of a record in the in-memory backend: kind and id cannot shift into each other.
fn record_key(kind: &str, id: &str) -> String {
    format!("{kind}\0{id}")
}

/// Records of other features (the OpenID Provider: codes, grants, tokens, the clients of a
/// session). Ids are digests or random values chosen by Varco; values are opaque bytes.
/// Fail closed like the login state: every operation can answer [`StoreError`].
impl Store {
    /// Stores `value` under `kind`/`id` for `ttl`, replacing any previous value.
    pub async fn put_record(
        &self,
        kind: &'static str,
        id: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                let until = Instant::now() + ttl;
                m.records
                    .insert(record_key(kind, id), (Arc::from(value), until));
                Ok(())
            }
            Store::Redis(r) => r.put_record(kind, id, value, ttl).await,
        }
    }

    /// The value under `kind`/`id`, without consuming it.
    pub async fn get_record(
        &self,
        kind: &'static str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.records.get(&record_key(kind, id)).map(|v| v.0.to_vec())),
            Store::Redis(r) => r.record(kind, id, false).await,
        }
    }

    /// Consumes the value under `kind`/`id`: of concurrent callers (on any replica), exactly
    /// one gets `Some`.
    pub async fn take_record(
        &self,
        kind: &'static str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m
                .records
                .remove(&record_key(kind, id))
                .map(|v| v.0.to_vec())),
            Store::Redis(r) => r.record(kind, id, true).await,
        }
    }

    /// Deletes the value under `kind`/`id` (revocation).
    pub async fn delete_record(&self, kind: &'static str, id: &str) -> Result<(), StoreError> {
        self.take_record(kind, id).await.map(|_| ())
    }

    /// Adds `member` to the set under `kind`/`id`, which lives `ttl` from now (at most
    /// [`MAX_MEMBERS`] members; more are refused with [`StoreError::Full`]).
    pub async fn add_member(
        &self,
        kind: &'static str,
        id: &str,
        member: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                let until = Instant::now() + ttl;
                let mut full = false;
                m.records
                    .entry(record_key(kind, id))
                    .and_upsert_with(|old| {
                        let mut set: Vec<String> =
                            old.map(|e| members_of(&e.value().0)).unwrap_or_default();
                        if !set.iter().any(|x| x == member) {
                            if set.len() >= MAX_MEMBERS {
                                full = true;
                            } else {
                                set.push(member.to_owned());
                            }
                        }
                        (Arc::from(set.join("\n").into_bytes()), until)
                    });
                if full { Err(StoreError::Full) } else { Ok(()) }
            }
            Store::Redis(r) => r.add_member(kind, id, member, ttl).await,
        }
    }

    /// The members of the set under `kind`/`id`.
    pub async fn members(&self, kind: &'static str, id: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m
                .records
                .get(&record_key(kind, id))
                .map(|v| members_of(&v.0))
                .unwrap_or_default()),
            Store::Redis(r) => r.members(kind, id).await,
        }
    }
}

fn members_of(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split('\n')
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn assertion_ids_are_consumed_once_even_concurrently() {
        let store = Arc::new(Store::memory(
            Duration::from_secs(60),
            10,
            Duration::from_secs(3600),
        ));
        let firsts: usize = (0..16)
            .map(|_| {
                let s = store.clone();
                std::thread::spawn(move || {
                    block_on(s.consume_assertion("_a", Duration::from_secs(60))).unwrap()
                })
            })
            .map(|h| usize::from(h.join().unwrap()))
            .sum();
        assert_eq!(firsts, 1);
        assert!(block_on(store.consume_assertion("_b", Duration::from_secs(60))).unwrap());
    }

    #[test]
    fn session_activity_and_revocation() {
        block_on(async {
            let store = Store::memory(Duration::from_secs(60), 10, Duration::from_secs(3600));
            assert_eq!(store.check_session("s", 100).await, Activity::Seen(None));
            assert_eq!(
                store.check_session("s", 150).await,
                Activity::Seen(Some(100))
            );
            assert_eq!(
                store.check_session("s", 160).await,
                Activity::Seen(Some(150))
            );
            store.revoke_session("s", Duration::from_secs(60)).await;
            assert_eq!(store.check_session("s", 170).await, Activity::Revoked);
            assert_eq!(store.check_session("t", 170).await, Activity::Seen(None));
        });
    }

    /// The forward-auth path derives a session's key once and checks with it afterwards
    /// (issue 20): the same row as the ID's own check, each mark seen by the other, and a
    /// revocation (by ID) seen through the key.
    #[test]
    fn a_session_key_derived_once_marks_the_row_of_its_id() {
        block_on(async {
            let store = Store::memory(Duration::from_secs(60), 10, Duration::from_secs(3600));
            let s = store.session_key("s");
            assert_eq!(s, store.session_key("s"));
            assert_ne!(s, store.session_key("t"));
            assert_eq!(
                store.check_session_keyed("s", s, 100).await,
                Activity::Seen(None)
            );
            assert_eq!(
                store.check_session("s", 150).await,
                Activity::Seen(Some(100))
            );
            assert_eq!(
                store.check_session_keyed("s", s, 160).await,
                Activity::Seen(Some(150))
            );
            assert_eq!(store.peek_session("s").await, Activity::Seen(Some(160)));
            store.revoke_session("s", Duration::from_secs(60)).await;
            assert_eq!(
                store.check_session_keyed("s", s, 170).await,
                Activity::Revoked
            );
            let t = store.session_key("t");
            assert_eq!(
                store.check_session_keyed("t", t, 170).await,
                Activity::Seen(None)
            );
            // Another store (another process) has another digest key.
            let other = Store::memory(Duration::from_secs(60), 10, Duration::from_secs(3600));
            assert_ne!(other.session_key("s"), s);
        });
    }

    #[test]
    fn logout_index_and_one_time_logout_state() {
        block_on(async {
            let store = Store::memory(Duration::from_secs(60), 10, Duration::from_secs(3600));
            store
                .index_session_for_logout("i", "n", "s1", "sid1", Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(
                store
                    .session_for_logout("i", "n", "s1")
                    .await
                    .unwrap()
                    .as_deref(),
                Some("sid1")
            );
            assert_eq!(
                store.session_for_logout("i", "n", "s2").await.unwrap(),
                None
            );
            assert_eq!(
                store.session_for_logout("j", "n", "s1").await.unwrap(),
                None
            );
            // Parts cannot be shifted into each other.
            assert_eq!(
                store.session_for_logout("i", "n\0s1", "").await.unwrap(),
                None
            );
            let d = Duration::from_secs(60);
            assert!(store.consume_logout_request("_r", d).await.unwrap());
            assert!(!store.consume_logout_request("_r", d).await.unwrap());
            let p = PendingLogout {
                idp: "i".into(),
                issued_at: std::time::SystemTime::UNIX_EPOCH,
                return_to: None,
            };
            store.put_pending_logout("_l".into(), p).await.unwrap();
            assert!(store.get_pending_logout("_l").await.unwrap().is_some());
            assert!(store.take_pending_logout("_l").await.unwrap().is_some());
            assert!(
                store.take_pending_logout("_l").await.unwrap().is_none(),
                "a LogoutResponse replay finds nothing"
            );
        });
    }

    #[test]
    fn pending_requests_are_taken_once() {
        block_on(async {
            let store = Store::memory(Duration::from_secs(60), 10, Duration::from_secs(3600));
            let p = Pending {
                idp: "i".into(),
                level: saml::Level::L2,
                return_to: "/".into(),
                issued_at: std::time::SystemTime::UNIX_EPOCH,
                browser: "b".into(),
                request_xml: String::new(),
            };
            store.put_pending("_r".into(), p).await.unwrap();
            assert!(store.get_pending("_r").await.unwrap().is_some());
            assert!(store.take_pending("_r").await.unwrap().is_some());
            assert!(store.take_pending("_r").await.unwrap().is_none());
        });
    }
}
