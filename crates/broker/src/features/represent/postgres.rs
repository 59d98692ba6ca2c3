//! The PostgreSQL source: a table the portal keeps, one row per representation, asked per
//! delegate. The query turns each row into the JSON record the signed file and the HTTP API
//! use (`json_build_object`), so `identity::represent::answer` reads all three with one
//! schema. Connection and TLS exactly as the audit sink's (`audit::postgres::connect`, the
//! same `disable`/`require`/`verify-full` modes). A small bounded pool (`pool_size`
//! connections, default [`DEFAULT_POOL_SIZE`]): a lookup takes an idle connection or opens
//! one while fewer than `pool_size` exist, else waits (within its deadline) for one; a
//! connection that failed is dropped, not returned. Each query under a deadline. Answers are reused per delegate for
//! `cache_seconds`. Every failure fails closed.
//!
//! The table (docs/OPERATIONS.md):
//!
//! ```sql
//! CREATE TABLE varco_representation (
//!     ref         text PRIMARY KEY,
//!     type        text NOT NULL,        -- delegation, parental, guardianship, ...
//!     delegate    text NOT NULL,        -- TINIT-<fiscal code> or EIDAS:<identifier>
//!     represented jsonb NOT NULL,       -- {"person": {...}} or {"company": {...}}
//!     services    text[] NOT NULL,
//!     not_before  bigint NOT NULL,      -- unix seconds
//!     not_after   bigint NOT NULL,
//!     revoked_at  bigint                -- set to revoke; the row is then ignored
//! );
//! CREATE INDEX ON varco_representation (delegate);
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use identity::Principal;
use identity::represent::answer::{Answer, AnswerInput, AnswerLimits};
use identity::represent::{Representations, Source as _, SourceKind};

use super::source::{
    DEFAULT_CACHE_SECONDS, DEFAULT_TIMEOUT_MS, Lookup, RawSource, RepresentationSource, SourceError,
};
use crate::features::audit::postgres::{Tls, check_url, connect};

/// A configured PostgreSQL source.
pub struct PgSource {
    id: String,
    url: String,
    tls: Tls,
    query: String,
    timeout: Duration,
    /// One permit per connection the pool may hold: at most `pool_size` lookups query at once.
    permits: tokio::sync::Semaphore,
    /// Open connections not in use.
    idle: std::sync::Mutex<Vec<tokio_postgres::Client>>,
    verifier: Answer,
    cache: moka::sync::Cache<String, (u64, Arc<Representations>)>,
    cache_seconds: u64,
}

/// Connections a PostgreSQL source keeps by default: lookups of different delegates run in
/// parallel up to this, without holding many backends of the portal's database.
pub(crate) const DEFAULT_POOL_SIZE: usize = 4;
/// Largest `pool_size`.
pub(crate) const MAX_POOL_SIZE: usize = 32;

/// `name` or `schema.name`, lower-case identifiers only: it is written into the query.
fn table_ok(t: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && p.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    };
    match t.split_once('.') {
        Some((s, n)) => part(s) && part(n),
        None => part(t),
    }
}

/// The query for `table`, at most `max_records + 1` rows (one more than allowed, so an
/// overflow is refused rather than cut silently).
fn query(table: &str, max_records: usize) -> String {
    format!(
        "SELECT json_build_object('ref', ref, 'type', type, 'delegate', delegate, \
         'represented', represented, 'services', services, 'not_before', not_before, \
         'not_after', not_after)::text FROM {table} \
         WHERE delegate = $1 AND revoked_at IS NULL ORDER BY ref LIMIT {}",
        max_records.saturating_add(1)
    )
}

pub(super) fn validate(
    raw: &RawSource,
    key: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<PgSource> {
    let (Some(url), Some(table)) = (&raw.url, &raw.table) else {
        bad(key, "a postgres source needs url and table".into());
        return None;
    };
    if !table_ok(table) {
        bad(
            &format!("{key}.table"),
            format!("{table:?}: a lower-case identifier, or schema.name"),
        );
        return None;
    }
    let ca = raw.ca_file.as_ref().map(|p| resolve(p));
    let tls = match Tls::from_config(raw.tls.as_deref().unwrap_or("disable"), ca.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            bad(&format!("{key}.tls"), e);
            return None;
        }
    };
    if let Err(e) = check_url(url, &tls) {
        bad(&format!("{key}.url"), e);
        return None;
    }
    let limits = AnswerLimits {
        max_bytes: raw.max_bytes.unwrap_or(AnswerLimits::default().max_bytes),
        max_records: raw
            .max_records
            .unwrap_or(AnswerLimits::default().max_records),
        ..AnswerLimits::default()
    };
    let cache_seconds = raw.cache_seconds.unwrap_or(DEFAULT_CACHE_SECONDS);
    let pool_size = raw.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
    if !(1..=MAX_POOL_SIZE).contains(&pool_size) {
        bad(
            &format!("{key}.pool_size"),
            format!("{pool_size}: between 1 and {MAX_POOL_SIZE}"),
        );
        return None;
    }
    Some(PgSource {
        id: raw.id.clone(),
        url: url.clone(),
        tls,
        query: query(table, limits.max_records),
        timeout: Duration::from_millis(raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
        permits: tokio::sync::Semaphore::new(pool_size),
        idle: std::sync::Mutex::new(Vec::new()),
        verifier: Answer::postgres(&raw.id, limits),
        cache: super::source::answer_cache_at(Duration::from_secs(cache_seconds.max(1))),
        cache_seconds,
    })
}

impl PgSource {
    /// A source over `table` at `url` (tests and `validate`).
    #[must_use]
    pub fn new(id: &str, url: &str, tls: Tls, table: &str, cache_seconds: u64) -> Option<Self> {
        let limits = AnswerLimits::default();
        table_ok(table).then(|| PgSource {
            id: id.to_owned(),
            url: url.to_owned(),
            tls,
            query: query(table, limits.max_records),
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            permits: tokio::sync::Semaphore::new(DEFAULT_POOL_SIZE),
            idle: std::sync::Mutex::new(Vec::new()),
            verifier: Answer::postgres(id, limits),
            cache: super::source::answer_cache_at(Duration::from_secs(cache_seconds.max(1))),
            cache_seconds,
        })
    }

    /// [`PgSource::new`] with a pool of `pool_size` connections (1 to [`MAX_POOL_SIZE`]).
    #[must_use]
    pub fn with_pool_size(mut self, pool_size: usize) -> Self {
        self.permits = tokio::sync::Semaphore::new(pool_size.clamp(1, MAX_POOL_SIZE));
        self
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<tokio_postgres::Client>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn rows(&self, delegate: &str) -> Result<Vec<String>, SourceError> {
        let unavailable =
            |reason: &'static str, detail: String| SourceError::Unavailable { reason, detail };
        // One deadline for waiting on the pool, connecting and querying: a full pool is
        // "unavailable" like a slow database, never a queue that grows without bound.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let _permit = tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| unavailable("timeout", "pool".into()))?
            .map_err(|_| unavailable("connect", "pool closed".into()))?;
        // A permit guarantees a connection slot: take an idle one or open one.
        let idle = loop {
            let Some(c) = self.idle().pop() else {
                break None;
            };
            if !c.is_closed() {
                break Some(c);
            }
        };
        let client = match idle {
            Some(c) => c,
            None => tokio::time::timeout_at(deadline, connect(&self.url, &self.tls))
                .await
                .map_err(|_| unavailable("timeout", "connect".into()))?
                .map_err(|e| unavailable("connect", e))?,
        };
        let result = tokio::time::timeout_at(deadline, client.query(&self.query, &[&delegate]))
            .await
            .map_err(|_| unavailable("timeout", "query".into()))
            .and_then(|r| r.map_err(|e| unavailable("query", e.to_string())));
        match result {
            Ok(rows) => {
                self.idle().push(client);
                rows.iter()
                    .map(|r| {
                        r.try_get::<_, String>(0)
                            .map_err(|e| unavailable("query", e.to_string()))
                    })
                    .collect()
            }
            // A broken connection or a stuck query: dropped (closing it), a new one next time.
            Err(e) => Err(e),
        }
    }
}

impl RepresentationSource for PgSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> SourceKind {
        SourceKind::Postgres
    }

    fn lookup<'a>(&'a self, delegate: &'a Principal, now: u64) -> Lookup<'a> {
        Box::pin(async move {
            if let Some((at, reps)) = self.cache.get(&delegate.sub) {
                if now >= at && now < at.saturating_add(self.cache_seconds) {
                    return Ok(reps);
                }
            }
            let rows = self.rows(&delegate.sub).await?;
            let reps = self
                .verifier
                .verify(
                    AnswerInput::Rows {
                        delegate: &delegate.sub,
                        rows: &rows,
                    },
                    now,
                )
                .map_err(SourceError::Refused)?;
            let reps = Arc::new(reps);
            self.cache.insert(delegate.sub.clone(), (now, reps.clone()));
            Ok(reps)
        })
    }
}
