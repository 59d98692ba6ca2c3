//! IdP metadata sources at run time: fetch (HTTP(S) with a timeout and a size cap, or a local
//! file), verify and load through the pure `metadata` crate, keep the last good document in a
//! backing file, and publish the merged IdP set to the lock-free [`Registry`] the request
//! handlers read.
//!
//! Time is an argument: [`Refresher::refresh_due`] takes `now`, so tests drive the schedule;
//! only [`Refresher::spawn`] reads the clock and sleeps.
//!
//! Invariants, stated as absences:
//! - no failed, slow, truncated, oversized, badly signed or expired fetch replaces a source's
//!   current document, nor its backing file;
//! - no document whose `validUntil` has passed is served, not even the last good one;
//! - no backing file is trusted without the same verification as a fetched document;
//! - no lock is taken on the login path (readers use [`Registry::get`]).
//!
//! May import: the leaf.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use metadata::schedule::{next_after_failure, next_after_success};
use metadata::{
    FailureReason, Loaded, Origin, RefreshBounds, Registry, Snapshot, SourceRecord, SourceStats,
};
use ring::rand::{SecureRandom, SystemRandom};
use saml::Federation;
use xmldsig::TrustedKey;

use crate::leaf::clock::Clock;

/// Where a source's document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An `http://` or `https://` URL.
    Url(String),
    /// A local file.
    File(PathBuf),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Url(u) => f.write_str(u),
            Location::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One configured source, validated.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Unique name (letters, digits, `-`, `_`): log field and backing-file name.
    pub name: String,
    /// Federation whose rules apply to its IdPs.
    pub federation: Federation,
    /// Where to read it.
    pub location: Location,
    /// Certificates one of which must have signed the document; empty only when `unsigned`.
    pub pinned: Vec<TrustedKey>,
    /// Accept the document without a signature (development only).
    pub unsigned: bool,
    /// Readiness waits for this source.
    pub required: bool,
    /// Refresh interval bounds.
    pub bounds: RefreshBounds,
    /// Whole-fetch deadline (connect, headers and body).
    pub timeout: Duration,
    /// Largest accepted document.
    pub max_bytes: u64,
    /// The IdP's name on the login page, for a source describing one IdP.
    pub display_name: Option<String>,
    /// The longest a document is trusted after it was accepted (fetched, read, or for a
    /// backing file loaded at start its modification time), whatever its `validUntil` says
    /// or when it says nothing.
    pub max_age: Duration,
}

/// Default fetch timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default maximum age of a document (`max_age_seconds`): 7 days.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
/// Largest accepted `max_age_seconds`: 90 days.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);

/// Default size cap (today's SPID registry aggregate is well under 1 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Drives every source: the only writer of the [`Registry`].
pub struct Refresher {
    sources: Vec<SourceConfig>,
    records: Mutex<Vec<SourceRecord>>,
    /// One refresh pass at a time (the background task and a manual call never overlap).
    pass: tokio::sync::Mutex<()>,
    registry: Arc<Registry>,
    backing_dir: Option<PathBuf>,
    persist: bool,
    rng: SystemRandom,
}

impl Refresher {
    /// A refresher for `sources`, every source due at `now`. Backing files live in
    /// `<state_dir>/metadata/`; with `persist` false they are read but never written (the
    /// `metadata sources` command).
    pub fn new(
        sources: Vec<SourceConfig>,
        state_dir: Option<&Path>,
        registry: Arc<Registry>,
        persist: bool,
        now: SystemTime,
    ) -> Self {
        let records = sources
            .iter()
            .map(|s| SourceRecord::new(&s.name, s.federation, s.required, now))
            .collect();
        Refresher {
            sources,
            records: Mutex::new(records),
            pass: tokio::sync::Mutex::new(()),
            registry,
            backing_dir: state_dir.map(|d| d.join("metadata")),
            persist,
            rng: SystemRandom::new(),
        }
    }

    /// The registry this refresher publishes to.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The configured sources.
    pub fn sources(&self) -> &[SourceConfig] {
        &self.sources
    }

    fn records(&self) -> MutexGuard<'_, Vec<SourceRecord>> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of every source's record.
    pub fn records_snapshot(&self) -> Vec<SourceRecord> {
        self.records().clone()
    }

    /// The counters of every source at `now`, for the metrics work.
    pub fn stats(&self, now: SystemTime) -> Vec<SourceStats> {
        self.records().iter().map(|r| r.stats(now)).collect()
    }

    /// The earliest time something needs doing: a due attempt, or a `validUntil` (of a
    /// document or of one IdP entry) still to come after `now`. One already passed has been
    /// enforced and is not a reason to wake up again (that was a busy loop).
    pub fn next_wakeup(&self, now: SystemTime) -> Option<SystemTime> {
        let records = self.records();
        let attempts = records.iter().map(|r| r.next_attempt);
        let ends = records
            .iter()
            .flat_map(|r| {
                std::iter::once(r.validity.valid_until).chain(r.idps.iter().map(|i| i.valid_until))
            })
            .flatten()
            .filter(|t| *t > now);
        attempts.chain(ends).min()
    }

    /// Path of a source's backing file.
    pub fn backing_file(&self, name: &str) -> Option<PathBuf> {
        self.backing_dir
            .as_ref()
            .map(|d| d.join(format!("{name}.xml")))
    }

    /// Loads every URL source's backing file, verified as a fetched document would be, and
    /// publishes. A source loaded this way stays due, so the next pass fetches it at once.
    pub fn load_backing_files(&self, now: SystemTime) {
        for (i, source) in self.sources.iter().enumerate() {
            if !matches!(source.location, Location::Url(_)) {
                continue;
            }
            let Some(path) = self.backing_file(&source.name) else {
                continue;
            };
            // When the backing file was written is when its document was last fetched.
            let fetched_at = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(event = "metadata_backing_file_unreadable", source = %source.name, error = %e);
                    continue;
                }
            };
            // Its age counts from when it was written, never from later than now.
            let accepted_at = fetched_at.map_or(now, |t| t.min(now));
            match self.verify(source, &bytes, now, accepted_at) {
                Ok(loaded) => {
                    tracing::info!(event = "metadata_loaded", source = %source.name, from = "backing_file", idps = %loaded.idps.len());
                    if let Some(r) = self.records().get_mut(i) {
                        let due = r.next_attempt;
                        r.succeed(loaded.idps, loaded.validity, Origin::BackingFile, now, due);
                        r.last_success = fetched_at.or(r.last_success);
                    }
                }
                Err(e) => {
                    tracing::warn!(event = "metadata_backing_file_refused", source = %source.name, code = %e.code(), error = %e)
                }
            }
        }
        self.publish(now);
    }

    /// Attempts every source due at `now` (see [`SourceRecord::due`]), drops documents past
    /// their `validUntil`, and publishes the result. Returns how many sources were attempted.
    pub async fn refresh_due(&self, now: SystemTime) -> usize {
        self.refresh(now, |_, r| r.due(now)).await
    }

    /// Attempts every source now, due or not.
    pub async fn refresh_all(&self, now: SystemTime) -> usize {
        self.refresh(now, |_, _| true).await
    }

    /// Attempts the local-file sources due at `now` (startup, before the port is bound).
    pub async fn refresh_local(&self, now: SystemTime) -> usize {
        self.refresh(now, |s, r| {
            matches!(s.location, Location::File(_)) && r.due(now)
        })
        .await
    }

    async fn refresh(
        &self,
        now: SystemTime,
        pick: impl Fn(&SourceConfig, &SourceRecord) -> bool,
    ) -> usize {
        let _pass = self.pass.lock().await;
        // Expiry first: a fetch may take up to its timeout, and what has expired must not be
        // served while it runs.
        self.publish_quietly(now, false);
        let chosen: Vec<usize> = {
            let records = self.records();
            self.sources
                .iter()
                .zip(records.iter())
                .enumerate()
                .filter(|(_, (s, r))| pick(s, r))
                .map(|(i, _)| i)
                .collect()
        };
        for &i in &chosen {
            if let Some(source) = self.sources.get(i) {
                self.attempt(i, source, now).await;
            }
        }
        self.publish(now);
        chosen.len()
    }

    /// One attempt on one source.
    async fn attempt(&self, index: usize, source: &SourceConfig, now: SystemTime) {
        let outcome = match read(source).await {
            Ok(bytes) => self
                .verify(source, &bytes, now, now)
                .map(|loaded| (loaded, bytes))
                .map_err(|e| (e.reason(), format!("{}: {e}", e.code()))),
            Err(e) => Err(e),
        };
        let random = self.random();
        match outcome {
            Ok((loaded, bytes)) => {
                if let (true, Location::Url(_), Some(path)) = (
                    self.persist,
                    &source.location,
                    self.backing_file(&source.name),
                ) {
                    if let Err(e) = write_atomically(&path, &bytes) {
                        tracing::warn!(event = "metadata_backing_file_not_written", source = %source.name, path = %path.display(), error = %e);
                    }
                }
                let next = next_after_success(source.bounds, &loaded.validity, now, random);
                tracing::info!(event = "metadata_loaded", source = %source.name, from = "source", idps = %loaded.idps.len());
                if let Some(r) = self.records().get_mut(index) {
                    r.succeed(loaded.idps, loaded.validity, Origin::Source, now, next);
                }
            }
            Err((reason, detail)) => {
                tracing::warn!(event = "metadata_refresh_failed", source = %source.name, code = %reason.code(), detail = %detail);
                if let Some(r) = self.records().get_mut(index) {
                    let next = next_after_failure(
                        source.bounds,
                        r.consecutive_failures.saturating_add(1),
                        now,
                        random,
                    );
                    r.fail(reason, detail, now, next);
                }
            }
        }
    }

    fn verify(
        &self,
        source: &SourceConfig,
        bytes: &[u8],
        now: SystemTime,
        accepted_at: SystemTime,
    ) -> Result<Loaded, metadata::Error> {
        let pinned: &[TrustedKey] = if source.unsigned { &[] } else { &source.pinned };
        if !source.unsigned && pinned.is_empty() {
            // Configuration validation prevents this; never read it as "skip verification".
            return Err(metadata::Error::Signature(xmldsig::Error::Unsigned));
        }
        // An overflowing ceiling is no ceiling: far beyond any real validity anyway.
        let ceiling = accepted_at.checked_add(source.max_age);
        let loaded = metadata::load_document_capped(
            bytes,
            source.federation,
            pinned,
            now,
            &source.name,
            ceiling,
        )?;
        for skipped in &loaded.skipped {
            tracing::warn!(event = "metadata_entity_skipped", source = %source.name, idp = %skipped.entity_id, reason = %skipped.reason);
        }
        Ok(loaded)
    }

    /// Drops expired documents, rebuilds the snapshot from every source's current IdPs,
    /// swaps it in and updates readiness.
    fn publish(&self, now: SystemTime) {
        self.publish_quietly(now, true);
    }

    /// [`Self::publish`]; duplicates are logged only with `report` (once per pass).
    fn publish_quietly(&self, now: SystemTime, report: bool) {
        let mut records = self.records();
        for r in records.iter_mut() {
            if r.expire(now) {
                tracing::warn!(event = "metadata_expired", source = %r.name);
            }
        }
        let (snapshot, duplicates) = Snapshot::build(
            records
                .iter()
                .flat_map(|r| r.idps.iter().filter(|i| i.is_valid_at(now)).cloned()),
        );
        for d in duplicates.iter().filter(|_| report) {
            tracing::warn!(event = "metadata_duplicate_idp", idp = %d.entity_id(), source = %d.source);
        }
        let ready = records.iter().all(|r| !r.required || r.loaded_once);
        drop(records);
        self.registry.publish(snapshot);
        self.registry.set_ready(ready);
    }

    fn random(&self) -> u32 {
        let mut b = [0u8; 4];
        // Without randomness the schedule loses its jitter, nothing else.
        let _ = self.rng.fill(&mut b);
        u32::from_le_bytes(b)
    }

    /// Runs the refresh loop in the background: a pass whenever something is due, sleeping
    /// in between (at most a minute, so a `validUntil` is enforced on time).
    pub fn spawn(self: Arc<Self>, clock: Clock) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let now = clock();
                self.refresh_due(now).await;
                let now = clock();
                let wait = self
                    .next_wakeup(now)
                    .and_then(|t| t.duration_since(now).ok())
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_secs(1), Duration::from_secs(60));
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// Reads a source's bytes.
async fn read(source: &SourceConfig) -> Result<Vec<u8>, (FailureReason, String)> {
    let location = source.location.clone();
    let (timeout, max_bytes) = (source.timeout, source.max_bytes);
    let task = tokio::task::spawn_blocking(move || match location {
        Location::Url(url) => fetch(&url, timeout, max_bytes),
        Location::File(path) => read_file(&path, max_bytes),
    });
    match task.await {
        Ok(r) => r,
        Err(e) => Err((FailureReason::Io, format!("fetch task failed: {e}"))),
    }
}

fn read_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, (FailureReason, String)> {
    let bytes = std::fs::read(path).map_err(|e| (FailureReason::Io, e.to_string()))?;
    if bytes.len() as u64 > max_bytes {
        return Err((
            FailureReason::TooLarge,
            format!("{} bytes, more than max_bytes {max_bytes}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// One HTTP(S) GET with a whole-request deadline and a body cap. Blocking: run it in
/// `spawn_blocking`. Also the federation documents' fetcher (`features::federation`).
pub(crate) fn fetch(
    url: &str,
    timeout: Duration,
    max_bytes: u64,
) -> Result<Vec<u8>, (FailureReason, String)> {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // A redirect is a failure (reason `status`): the configured URL is the one trusted,
        // and an https URL must not be downgraded to http by the server.
        .max_redirects(0)
        .user_agent("varco-metadata")
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut response = agent.get(url).call().map_err(classify)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err((FailureReason::Status, format!("HTTP status {status}")));
    }
    response
        .body_mut()
        .with_config()
        .limit(max_bytes)
        .read_to_vec()
        .map_err(classify)
}

fn classify(e: ureq::Error) -> (FailureReason, String) {
    let reason = match &e {
        ureq::Error::Timeout(_) => FailureReason::Timeout,
        ureq::Error::BodyExceedsLimit(_) => FailureReason::TooLarge,
        ureq::Error::StatusCode(_) => FailureReason::Status,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => FailureReason::Connect,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => FailureReason::Timeout,
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            ) =>
        {
            FailureReason::Connect
        }
        ureq::Error::Tls(_) => FailureReason::Connect,
        _ => FailureReason::Io,
    };
    (reason, e.to_string())
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one:
/// a temporary file in the same directory, flushed to disk, renamed over the target, and the
/// directory synced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        // The rename itself must survive a power loss.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The login method of an IdP's federation: the one mapping from `Federation`, whose
/// `as_str()` is also the label in metrics and the audit record.
pub(crate) fn federation_method(f: Federation) -> identity::Method {
    match f {
        Federation::Spid => identity::Method::Spid,
        Federation::Cie => identity::Method::Cie,
        Federation::Eidas => identity::Method::Eidas,
    }
}

/// A human-readable report of every source at `now` (`varco metadata sources`).
pub fn describe(refresher: &Refresher, now: SystemTime) -> String {
    use std::fmt::Write as _;
    let instant = |t: Option<SystemTime>| {
        t.and_then(saml::format_instant)
            .unwrap_or_else(|| "-".to_owned())
    };
    let mut out = String::new();
    for (source, r) in refresher.sources().iter().zip(refresher.records_snapshot()) {
        let federation = federation_method(source.federation).as_str();
        let origin = match r.origin {
            Some(Origin::Source) => " (from the source)",
            Some(Origin::BackingFile) => " (from the backing file)",
            None => "",
        };
        let _ = writeln!(out, "source {} ({federation}): {}", r.name, source.location);
        let _ = writeln!(
            out,
            "  state:        {}{origin}{}{}",
            r.state.as_str(),
            if source.required { ", required" } else { "" },
            if source.unsigned { ", UNSIGNED" } else { "" },
        );
        let left = r
            .validity
            .remaining(now)
            .map(|d| match d.as_secs() / 3600 {
                h if h < 48 => format!(" (in {h} h)"),
                h => format!(" (in {} days)", h / 24),
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  valid until:  {}{left}",
            instant(r.validity.valid_until)
        );
        let _ = writeln!(out, "  last refresh: {}", instant(r.last_success));
        let _ = writeln!(out, "  last attempt: {}", instant(r.last_attempt));
        let _ = writeln!(out, "  next attempt: {}", instant(Some(r.next_attempt)));
        match &r.last_error {
            Some(e) => {
                let _ = writeln!(
                    out,
                    "  last error:   {} at {}: {}",
                    e.reason.code(),
                    instant(Some(e.at)),
                    e.detail
                );
            }
            None => {
                let _ = writeln!(out, "  last error:   -");
            }
        }
        let _ = writeln!(out, "  identity providers: {}", r.idps.len());
        for idp in &r.idps {
            let expiry: Vec<String> = idp
                .descriptor
                .signing_keys
                .iter()
                .map(|k| unix_instant(k.not_after()))
                .collect();
            let _ = writeln!(
                out,
                "    {}{}  certificates expire: {}",
                idp.entity_id(),
                idp.display_name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
                expiry.join(", ")
            );
        }
    }
    out
}

/// Unix seconds as an `xs:dateTime`, or the number when out of range.
fn unix_instant(secs: i64) -> String {
    u64::try_from(secs)
        .ok()
        .and_then(|s| saml::format_instant(SystemTime::UNIX_EPOCH + Duration::from_secs(s)))
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::write_atomically;

    #[test]
    fn atomic_write_replaces_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("varco-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("metadata").join("src.xml");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["src.xml"]);
        // A target that cannot be replaced (a directory) fails and leaves no temporary.
        std::fs::create_dir_all(dir.join("metadata").join("dir.xml")).unwrap();
        assert!(write_atomically(&dir.join("metadata").join("dir.xml"), b"x").is_err());
        assert!(!dir.join("metadata").join("dir.xml.tmp").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
