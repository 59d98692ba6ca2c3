//! The Redis backend of [`crate::features::store::Store`]: login state and session state shared by
//! every replica.
//!
//! Keys (all under `store.key_prefix`, default `varco:`):
//! - `pending:<request id>`: a pending AuthnRequest (JSON), `PX` = `saml.pending_request_ttl_seconds`;
//!   taken with `GETDEL`, so one replica wins;
//! - `assertion:<SHA-256 of the Assertion ID>`: `SET NX PX` until the assertion's
//!   `NotOnOrAfter` plus skew; the first `SET` wins across replicas;
//! - `session:{<sid>}:revoked` and `session:{<sid>}:activity`: the session's logout mark and
//!   last activity; read and written by one Lua script per forward-auth check (the braces
//!   keep both keys in one Redis Cluster slot); the activity key lives one idle timeout
//!   (plus 60 s) after its last use, the revocation the session's remaining lifetime;
//! - `logout_index:<SHA-256 of IdP, NameID, SessionIndex>`: the session ID, for the session
//!   lifetime; `logout_pending:`, `logout_request:`, `rate:` and other features' records.
//!
//! Every key is written with a TTL (`PX`, or `PEXPIRE` in the same transaction), so nothing
//! outlives its use by more than its lifetime. Bytes are bounded by Redis's `maxmemory`: with
//! `maxmemory-policy noeviction` (docs/OPERATIONS.md) a full Redis refuses writes, and the
//! login that needed one fails closed (503), as a full in-memory table does.
//!
//! Client: redis-rs `ConnectionManager` (a multiplexed connection that reconnects by itself
//! after the server comes back); `store.pool_size` of them, used in turn. Every command runs
//! under `store.command_timeout_ms`.
//!
//! May import: the leaf, `features::metrics`, `store::memory`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use prometheus::{HistogramVec, IntCounterVec};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use crate::features::store::memory::{Activity, MemoryStore, Pending, PendingLogout, StoreError};

/// `[store]` for `backend = "redis"`, validated.
#[derive(Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port/db` or `redis+unix:///path/to/socket?db=N`.
    /// Secret (may carry a password): never logged.
    pub url: String,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Time to establish one connection.
    pub connect_timeout: Duration,
    /// Time for one command (or script) to answer.
    pub command_timeout: Duration,
    /// Number of multiplexed connections.
    pub pool_size: usize,
    /// For a `rediss://` URL: what the TLS connection trusts and presents.
    pub tls: Option<RedisTls>,
}

/// TLS to Redis (`rediss://`): rustls on the ring provider. The server's certificate must
/// chain to `ca` (PEM; the system's roots when absent) and name the URL's host; `client`
/// (PEM certificate, PEM key) answers a server with `tls-auth-clients yes`.
#[derive(Clone)]
pub struct RedisTls {
    /// `store.ca_file`.
    pub ca: Option<Vec<u8>>,
    /// `store.client_cert_file` and `store.client_key_file`.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl RedisTls {
    /// Checks that the files hold what they should, so a bad file is a configuration error
    /// rather than a failure at the first connection: (configuration key, message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = |pem: &[u8]| {
            CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .ok()
                .filter(|c| !c.is_empty())
        };
        if let Some(ca) = &self.ca {
            certs(ca).ok_or(("store.ca_file", "no PEM certificate in it".to_owned()))?;
        }
        if let Some((cert, key)) = &self.client {
            certs(cert).ok_or((
                "store.client_cert_file",
                "no PEM certificate in it".to_owned(),
            ))?;
            PrivateKeyDer::from_pem_slice(key).map_err(|_| {
                (
                    "store.client_key_file",
                    "no PEM private key in it (PKCS#8, PKCS#1 or SEC1)".to_owned(),
                )
            })?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &"(secret)")
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("pool_size", &self.pool_size)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Checks that `url` is one redis-rs can use, without connecting. The message never
/// repeats the URL (it may hold a password).
pub fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("redis://")
        || url.starts_with("rediss://")
        || url.starts_with("redis+unix://")
        || url.starts_with("unix://"))
    {
        return Err("must start with redis://, rediss:// (TLS), redis+unix:// or unix://".into());
    }
    // redis-rs reads `#insecure` as "do not verify the server": never.
    if url.contains('#') {
        return Err(
            "must not have a #fragment (#insecure would turn certificate checks off)".into(),
        );
    }
    redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| format!("not a usable Redis URL ({:?})", e.kind()))
}

/// Request IDs longer than this are not looked up (Varco's are 41 characters; anything
/// longer came from a client).
const MAX_REQUEST_ID: usize = 256;

/// Checks a session: refused when revoked, otherwise marks activity and returns the
/// previous mark (-1 revoked, -2 no previous mark).
const CHECK_SESSION: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local prev = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
if prev then return tonumber(prev) or -2 end
return -2
";

/// Every operation name of the `op` label (metrics and logs).
pub const OPS: [&str; 15] = [
    "ping",
    "put_pending",
    "get_pending",
    "take_pending",
    "consume_assertion",
    "put_pending_logout",
    "get_pending_logout",
    "take_pending_logout",
    "index_session_for_logout",
    "session_for_logout",
    "check_session",
    "revoke_session",
    "consume_logout_request",
    "peek_session",
    "rate",
];

/// GCRA rate limit, shared by the replicas: `KEYS[1]` holds the theoretical arrival time in
/// microseconds of Redis's own clock (one clock for every replica); `ARGV[1]` is the emission
/// interval and `ARGV[2]` the burst tolerance, both in microseconds. Returns 0 when the
/// request is admitted (and records it), else the microseconds to wait.
const RATE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local wait = tat - now - tonumber(ARGV[2])
if wait > 0 then return wait end
local next = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000) + 1)
return 0
";

/// The Redis backend.
pub struct RedisStore {
    conns: Vec<ConnectionManager>,
    next: AtomicUsize,
    prefix: String,
    command_timeout: Duration,
    pending_ttl: Duration,
    session_ttl: Duration,
    /// How long an activity mark is kept after its last use (plus 60 s): the idle timeout
    /// when there is one (see [`RedisStore::with_marks_ttl`]), else the session lifetime.
    marks_ttl: Duration,
    check: redis::Script,
    rate: redis::Script,
    /// This replica's own memory of revocations and activity: consulted first for
    /// revocations (so one made here during an outage holds here), and alone while Redis
    /// cannot answer.
    local: MemoryStore,
    /// Revocations that could not be written to Redis, written at the next success.
    unsynced: Mutex<Vec<(String, Instant)>>,
    has_unsynced: AtomicBool,
    /// Whether the last command succeeded (for one log line per transition).
    healthy: AtomicBool,
    /// Milliseconds after `epoch` of the last session check sent while unhealthy.
    last_probe: AtomicU64,
    epoch: Instant,
    metrics: OnceLock<(HistogramVec, IntCounterVec)>,
}

/// The stored form of [`Pending`].
#[derive(Serialize, Deserialize)]
struct StoredPending {
    idp: String,
    level: u8,
    return_to: String,
    issued_at_ms: u64,
    browser: String,
    request_xml: String,
}

impl StoredPending {
    fn from(p: &Pending) -> Self {
        StoredPending {
            idp: p.idp.clone(),
            level: match p.level {
                saml::Level::L1 => 1,
                saml::Level::L2 => 2,
                saml::Level::L3 => 3,
            },
            return_to: p.return_to.clone(),
            issued_at_ms: p
                .issued_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            browser: p.browser.clone(),
            request_xml: p.request_xml.clone(),
        }
    }

    fn into_pending(self) -> Option<Pending> {
        Some(Pending {
            idp: self.idp,
            level: match self.level {
                1 => saml::Level::L1,
                2 => saml::Level::L2,
                3 => saml::Level::L3,
                _ => return None,
            },
            return_to: self.return_to,
            issued_at: SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_millis(self.issued_at_ms))?,
            browser: self.browser,
            request_xml: self.request_xml,
        })
    }
}

/// The stored form of [`PendingLogout`].
#[derive(Serialize, Deserialize)]
struct StoredPendingLogout {
    idp: String,
    issued_at_ms: u64,
    return_to: Option<String>,
}

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    crate::leaf::session::hex(digest.as_ref())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// A store for `options`; connects lazily (the first command), so Varco starts and
    /// serves sessions while Redis is down. Must be called inside a Tokio runtime.
    pub fn new(
        options: &RedisOptions,
        pending_ttl: Duration,
        session_ttl: Duration,
    ) -> Result<Self, String> {
        let client = match &options.tls {
            None => redis::Client::open(options.url.as_str()),
            Some(tls) => redis::Client::build_with_tls(
                options.url.as_str(),
                redis::TlsCertificates {
                    client_tls: tls
                        .client
                        .as_ref()
                        .map(|(cert, key)| redis::ClientTlsConfig {
                            client_cert: cert.clone(),
                            client_key: key.clone(),
                        }),
                    root_cert: tls.ca.clone(),
                },
            ),
        }
        .map_err(|e| format!("not a usable Redis URL ({:?})", e.kind()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.command_timeout))
            // A failed attempt reports at once; the next command starts a new one.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        let conns = (0..options.pool_size.max(1))
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot set up the Redis client ({:?})", e.kind()))?;
        Ok(RedisStore {
            conns,
            next: AtomicUsize::new(0),
            prefix: options.key_prefix.clone(),
            command_timeout: options.command_timeout,
            pending_ttl,
            session_ttl,
            marks_ttl: session_ttl,
            check: redis::Script::new(CHECK_SESSION),
            rate: redis::Script::new(RATE),
            local: MemoryStore::new(
                pending_ttl,
                super::memory::Budgets::with_max_pending(1),
                session_ttl,
            ),
            unsynced: Mutex::new(Vec::new()),
            has_unsynced: AtomicBool::new(false),
            healthy: AtomicBool::new(true),
            last_probe: AtomicU64::new(0),
            epoch: Instant::now(),
            metrics: OnceLock::new(),
        })
    }

    /// Activity marks (in Redis and in this replica's fallback) kept `marks` after their last
    /// use, plus 60 s: the idle timeout, after which a session without a mark is idle anyway
    /// (`state::current::live`), as the in-memory backend does.
    pub fn with_marks_ttl(mut self, marks: Duration) -> Self {
        self.marks_ttl = marks;
        self.local = MemoryStore::new(
            self.pending_ttl,
            super::memory::Budgets::with_max_pending(1),
            marks,
        );
        self
    }

    pub(crate) fn bind_metrics(&self, metrics: &crate::features::metrics::Metrics) {
        // Every (op, code) series exists from the start at 0, so the first error of a kind
        // is an increase the alert sees rather than a series born at 1.
        for op in OPS {
            for e in StoreError::ALL {
                metrics.store_errors.with_label_values(&[op, e.code()]);
            }
        }
        let _ = self
            .metrics
            .set((metrics.store_duration.clone(), metrics.store_errors.clone()));
    }

    /// Sends `PING`; for the start-up log line.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    fn session_keys(&self, sid: &str) -> (String, String) {
        (
            format!("{}session:{{{sid}}}:revoked", self.prefix),
            format!("{}session:{{{sid}}}:activity", self.prefix),
        )
    }

    /// Runs one command on the next connection, under the command timeout, timing it and
    /// counting failures. A command that meets a broken connection (Redis restarted) is
    /// sent once more on the connection the manager opens in its place, so the first login
    /// after Redis returns does not fail.
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len().max(1);
        let Some(conn) = self.conns.get(i) else {
            return Err(StoreError::Unavailable);
        };
        let started = Instant::now();
        let mut result = self.attempt(&f, conn.clone()).await;
        if matches!(&result, Err((StoreError::Unavailable, _, true))) {
            result = self.attempt(&f, conn.clone()).await;
        }
        if let Some((duration, _)) = self.metrics.get() {
            duration
                .with_label_values(&[op])
                .observe(started.elapsed().as_secs_f64());
        }
        match result {
            Ok(v) => {
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!(event = "store_recovered", backend = %"redis");
                }
                Ok(v)
            }
            Err((e, detail, _)) => {
                self.count(op, e);
                if self.healthy.swap(false, Ordering::Relaxed) {
                    tracing::info!(event = "store_unavailable", backend = %"redis", op = %op, code = %e.code(), detail = %detail);
                }
                Err(e)
            }
        }
    }

    /// One try: the value, or the error with a description and whether the connection
    /// broke (worth one more try on the replacement).
    async fn attempt<T, F, Fut>(
        &self,
        f: &F,
        conn: ConnectionManager,
    ) -> Result<T, (StoreError, String, bool)>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.command_timeout, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_timeout() => {
                Err((StoreError::Timeout, format!("{:?}", e.kind()), false))
            }
            Ok(Err(e)) => {
                let broken = e.is_io_error() || e.is_unrecoverable_error();
                Err((StoreError::Unavailable, format!("{:?}", e.kind()), broken))
            }
            Err(_) => Err((StoreError::Timeout, "deadline".to_owned(), false)),
        }
    }

    /// Whether a session check should ask Redis: always while healthy; while not, once a
    /// second (the caller that wins the swap probes, the others answer locally).
    fn should_probe(&self) -> bool {
        if self.healthy.load(Ordering::Relaxed) {
            return true;
        }
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_probe.load(Ordering::Relaxed);
        now.saturating_sub(last) >= 1000
            && self
                .last_probe
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    fn count(&self, op: &'static str, e: StoreError) {
        debug_assert!(OPS.contains(&op), "{op} missing from OPS");
        if let Some((_, errors)) = self.metrics.get() {
            errors.with_label_values(&[op, e.code()]).inc();
        }
    }

    /// `SET key value PX ttl`: a value that expires by itself, timed and counted as `op`.
    async fn set_px<V: redis::ToRedisArgs + Sync>(
        &self,
        op: &'static str,
        key: &str,
        value: V,
        ttl: u64,
    ) -> Result<(), StoreError> {
        let value = &value;
        self.run(op, |mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ttl)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    pub(crate) async fn put_pending(&self, id: &str, p: &Pending) -> Result<(), StoreError> {
        let value = serde_json::to_vec(&StoredPending::from(p)).map_err(|_| StoreError::Corrupt)?;
        let key = self.key("pending", id);
        self.set_px("put_pending", &key, value, millis(self.pending_ttl))
            .await
    }

    fn decode(
        &self,
        op: &'static str,
        bytes: Option<Vec<u8>>,
    ) -> Result<Option<Pending>, StoreError> {
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        match serde_json::from_slice::<StoredPending>(&bytes)
            .ok()
            .and_then(StoredPending::into_pending)
        {
            Some(p) => Ok(Some(p)),
            None => {
                self.count(op, StoreError::Corrupt);
                Err(StoreError::Corrupt)
            }
        }
    }

    /// The raw value of `kind:id` (`take`: read and deleted in one `GETDEL`, so of concurrent
    /// callers on any replica exactly one gets it). Over-long IDs are never looked up.
    async fn fetch(
        &self,
        kind: &str,
        op: &'static str,
        id: &str,
        take: bool,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if id.len() > MAX_REQUEST_ID {
            return Ok(None);
        }
        let key = &self.key(kind, id);
        let command = if take { "GETDEL" } else { "GET" };
        self.run(op, |mut c| async move {
            redis::cmd(command)
                .arg(key)
                .query_async::<Option<Vec<u8>>>(&mut c)
                .await
        })
        .await
    }

    pub(crate) async fn get_pending(&self, id: &str) -> Result<Option<Pending>, StoreError> {
        let bytes = self.fetch("pending", "get_pending", id, false).await?;
        self.decode("get_pending", bytes)
    }

    pub(crate) async fn take_pending(&self, id: &str) -> Result<Option<Pending>, StoreError> {
        let bytes = self.fetch("pending", "take_pending", id, true).await?;
        self.decode("take_pending", bytes)
    }

    pub(crate) async fn consume_assertion(
        &self,
        id: &str,
        expires_in: Duration,
    ) -> Result<bool, StoreError> {
        self.consume_once("assertion", "consume_assertion", id, expires_in)
            .await
    }

    /// `SET NX PX` on the hashed `id` under `kind`: `true` for the first caller on any
    /// replica.
    /// One GCRA step on the shared bucket `id` (see [`RATE`]): 0 admitted, else the
    /// microseconds to wait.
    pub(crate) async fn rate(
        &self,
        id: &str,
        interval_us: u64,
        tolerance_us: u64,
    ) -> Result<u64, StoreError> {
        // During an outage, one probe a second; the rest decide locally at once (no request
        // waits out the command timeout behind a dead Redis).
        if !self.should_probe() {
            return Err(StoreError::Unavailable);
        }
        let key = &self.key("rate", id);
        let script = &self.rate;
        self.run("rate", |mut c| async move {
            script
                .key(key)
                .arg(interval_us)
                .arg(tolerance_us)
                .invoke_async::<u64>(&mut c)
                .await
        })
        .await
    }

    pub(crate) async fn consume_once(
        &self,
        kind: &str,
        op: &'static str,
        id: &str,
        expires_in: Duration,
    ) -> Result<bool, StoreError> {
        // Hashed: IDs are arbitrary (signed) strings; keys stay short and printable.
        let key = &self.key(kind, &sha256_hex(id));
        let ttl = millis(expires_in);
        let set = self
            .run(op, |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await?;
        Ok(set.is_some())
    }

    /// `SET kind:id value PX ttl` (a record of another feature, see `Store::put_record`).
    pub(crate) async fn put_record(
        &self,
        kind: &str,
        id: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.key(kind, id);
        self.set_px("put_record", &key, value, millis(ttl).max(1))
            .await
    }

    /// `GET` or, with `take`, `GETDEL` of `kind:id`: one winner among concurrent takers on
    /// any replica.
    pub(crate) async fn record(
        &self,
        kind: &str,
        id: &str,
        take: bool,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let op = if take { "take_record" } else { "get_record" };
        self.fetch(kind, op, id, take).await
    }

    /// `SADD` then `PEXPIRE` (in one `MULTI`): the set under `kind:id` with `member`, for `ttl`.
    pub(crate) async fn add_member(
        &self,
        kind: &str,
        id: &str,
        member: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = &self.key(kind, id);
        let ttl = millis(ttl).max(1);
        let count = self
            .run("add_member", |mut c| async move {
                redis::pipe()
                    .atomic()
                    .cmd("SADD")
                    .arg(key)
                    .arg(member)
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(key)
                    .arg(ttl)
                    .ignore()
                    .cmd("SCARD")
                    .arg(key)
                    .query_async::<(u64,)>(&mut c)
                    .await
            })
            .await?;
        if count.0 as usize > super::memory::MAX_MEMBERS {
            return Err(StoreError::Full);
        }
        Ok(())
    }

    /// `SMEMBERS kind:id`.
    pub(crate) async fn members(&self, kind: &str, id: &str) -> Result<Vec<String>, StoreError> {
        let key = &self.key(kind, id);
        self.run("members", |mut c| async move {
            redis::cmd("SMEMBERS")
                .arg(key)
                .query_async::<Vec<String>>(&mut c)
                .await
        })
        .await
    }

    pub(crate) async fn put_pending_logout(
        &self,
        id: &str,
        p: &PendingLogout,
    ) -> Result<(), StoreError> {
        let stored = StoredPendingLogout {
            idp: p.idp.clone(),
            issued_at_ms: p
                .issued_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            return_to: p.return_to.clone(),
        };
        let value = serde_json::to_vec(&stored).map_err(|_| StoreError::Corrupt)?;
        let key = self.key("logout_pending", id);
        self.set_px("put_pending_logout", &key, value, millis(self.pending_ttl))
            .await
    }

    /// Reads (`take`: and deletes, atomically) a pending logout.
    pub(crate) async fn get_pending_logout(
        &self,
        id: &str,
        take: bool,
    ) -> Result<Option<PendingLogout>, StoreError> {
        let op = if take {
            "take_pending_logout"
        } else {
            "get_pending_logout"
        };
        let bytes = self.fetch("logout_pending", op, id, take).await?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let decoded = serde_json::from_slice::<StoredPendingLogout>(&bytes)
            .ok()
            .and_then(|s| {
                Some(PendingLogout {
                    idp: s.idp,
                    issued_at: SystemTime::UNIX_EPOCH
                        .checked_add(Duration::from_millis(s.issued_at_ms))?,
                    return_to: s.return_to,
                })
            });
        match decoded {
            Some(p) => Ok(Some(p)),
            None => {
                self.count(op, StoreError::Corrupt);
                Err(StoreError::Corrupt)
            }
        }
    }

    /// Indexes `sid` under the (IdP, NameID, SessionIndex) key for `ttl`.
    pub(crate) async fn index_session_for_logout(
        &self,
        index: &str,
        sid: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.key("logout_index", &sha256_hex(index));
        self.set_px("index_session_for_logout", &key, sid, millis(ttl))
            .await
    }

    /// The session indexed under the (IdP, NameID, SessionIndex) key.
    pub(crate) async fn session_for_logout(
        &self,
        index: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = &self.key("logout_index", &sha256_hex(index));
        self.run("session_for_logout", |mut c| async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut c)
                .await
        })
        .await
    }

    /// [`RedisStore::check_session`] without marking the session used: for an open tunnel,
    /// whose traffic is not activity and whose checks must not keep the session alive. A
    /// revocation by any replica is seen here; Redis down: this replica's memory.
    pub(crate) async fn peek_session(&self, sid: &str) -> Activity {
        if self.local.is_revoked(sid) {
            return Activity::Revoked;
        }
        if !self.should_probe() {
            return self.local.peek_session(sid);
        }
        let (revoked, activity) = &self.session_keys(sid);
        let answer = self
            .run("peek_session", |mut c| async move {
                redis::pipe()
                    .exists(revoked)
                    .get(activity)
                    .query_async::<(bool, Option<u64>)>(&mut c)
                    .await
            })
            .await;
        match answer {
            Ok((true, _)) => Activity::Revoked,
            Ok((false, last)) => Activity::Seen(last),
            Err(_) => self.local.peek_session(sid),
        }
    }

    /// The key of `sid` in this replica's own activity marks (the fallback's).
    pub(crate) fn session_key(&self, sid: &str) -> super::memory::SessionKey {
        self.local.session_key(sid)
    }

    /// `key` is [`RedisStore::session_key`] of `sid`.
    pub(crate) async fn check_session(
        &self,
        sid: &str,
        key: super::memory::SessionKey,
        now: u64,
    ) -> Activity {
        if self.local.is_revoked(sid) {
            return Activity::Revoked;
        }
        if !self.should_probe() {
            // Redis failed moments ago: answer from this replica's memory without waiting
            // on it again (one request per second probes it).
            return self.local.check_session_keyed(sid, key, now);
        }
        if self.has_unsynced.load(Ordering::Relaxed) && self.healthy.load(Ordering::Relaxed) {
            self.flush_revocations().await;
        }
        let (revoked, activity) = &self.session_keys(sid);
        let ttl = millis(self.marks_ttl + Duration::from_secs(60));
        let script = &self.check;
        let answer = self
            .run("check_session", |mut c| async move {
                script
                    .key(revoked)
                    .key(activity)
                    .arg(now)
                    .arg(ttl)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        // The local marks follow along, so an outage starts from recent knowledge.
        let local = self.local.check_session_keyed(sid, key, now);
        match answer {
            Ok(-1) => {
                // Remembered here too, so the cookie stays refused through an outage.
                self.local.revoke_session(sid, self.session_ttl);
                Activity::Revoked
            }
            Ok(v) => Activity::Seen(u64::try_from(v).ok()),
            Err(_) => local,
        }
    }

    pub(crate) async fn revoke_session(&self, sid: &str, remaining: Duration) {
        self.local.revoke_session(sid, remaining);
        if self.write_revocation(sid, remaining).await.is_err() {
            let mut queue = self
                .unsynced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Bounded: past this many, the oldest wait no more (they still hold here).
            if queue.len() >= 100_000 {
                queue.remove(0);
            }
            queue.push((sid.to_owned(), Instant::now() + remaining));
            self.has_unsynced.store(true, Ordering::Relaxed);
        }
    }

    async fn write_revocation(&self, sid: &str, remaining: Duration) -> Result<(), StoreError> {
        let (revoked, activity) = &self.session_keys(sid);
        let ttl = millis(remaining);
        self.run("revoke_session", |mut c| async move {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(revoked)
                .arg(1)
                .arg("PX")
                .arg(ttl)
                .ignore()
                .cmd("DEL")
                .arg(activity)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// Writes the revocations made while Redis could not answer; stops at the first
    /// failure (the rest wait for the next try).
    async fn flush_revocations(&self) {
        let queue = {
            let mut q = self
                .unsynced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.has_unsynced.store(false, Ordering::Relaxed);
            std::mem::take(&mut *q)
        };
        let now = Instant::now();
        let mut rest = queue.into_iter().filter(|(_, until)| *until > now);
        let mut failed = Vec::new();
        for (sid, until) in rest.by_ref() {
            if self
                .write_revocation(&sid, until.saturating_duration_since(now))
                .await
                .is_err()
            {
                failed.push((sid, until));
                break;
            }
        }
        failed.extend(rest);
        if !failed.is_empty() {
            let mut q = self
                .unsynced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            q.extend(failed);
            self.has_unsynced.store(true, Ordering::Relaxed);
        }
    }
}
