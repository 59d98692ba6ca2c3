//! The state of one configured metadata source: its last good document, what happened on the
//! last attempts, and the counters the metrics work exports. Pure bookkeeping: the broker
//! performs the fetches and hands the outcomes here with `now`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use saml::Federation;

use crate::registry::IdpEntry;
use crate::validity::Validity;

/// Why an attempt to load a source did not produce a new document. The codes are stable
/// (logs, metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureReason {
    /// The server could not be reached (refused, DNS, TLS handshake).
    Connect,
    /// The fetch did not complete within the source's timeout.
    Timeout,
    /// The server answered with a status other than 200.
    Status,
    /// The body was cut short or could not be read (or the local file could not).
    Io,
    /// The body was larger than the source's `max_bytes`.
    TooLarge,
    /// The document is not acceptable metadata.
    Invalid,
    /// The signature is missing or does not verify with the pinned certificate.
    Signature,
    /// The document's `validUntil` has passed.
    Expired,
}

impl FailureReason {
    /// Every reason, for exporting zero counters.
    pub const ALL: [FailureReason; 8] = [
        Self::Connect,
        Self::Timeout,
        Self::Status,
        Self::Io,
        Self::TooLarge,
        Self::Invalid,
        Self::Signature,
        Self::Expired,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Connect => "metadata_fetch_connect",
            Self::Timeout => "metadata_fetch_timeout",
            Self::Status => "metadata_fetch_status",
            Self::Io => "metadata_fetch_io",
            Self::TooLarge => "metadata_too_large",
            Self::Invalid => "metadata_invalid",
            Self::Signature => "metadata_signature",
            Self::Expired => "metadata_expired",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Where a source's current document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Fetched from the URL or read from the configured local file.
    Source,
    /// Read from the backing file (the last good copy kept on disk).
    BackingFile,
}

/// What a source is serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// Never loaded: nothing served from it.
    Pending,
    /// Serving a document, and the last attempt succeeded.
    Fresh,
    /// Serving the last good document; the last attempt failed.
    Stale,
    /// The last good document passed its `validUntil`: nothing served from it.
    Expired,
}

impl SourceState {
    /// A short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Fresh => "fresh",
            Self::Stale => "stale",
            Self::Expired => "expired",
        }
    }
}

/// The last error of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// Its class.
    pub reason: FailureReason,
    /// Details for the operator.
    pub detail: String,
    /// When it happened.
    pub at: SystemTime,
}

/// One source's state and counters.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    /// Configured name.
    pub name: Arc<str>,
    /// Federation whose rules apply to its IdPs.
    pub federation: Federation,
    /// Whether readiness waits for it.
    pub required: bool,
    /// What it is serving.
    pub state: SourceState,
    /// Where the current document came from.
    pub origin: Option<Origin>,
    /// Validity of the current document.
    pub validity: Validity,
    /// IdPs of the current document (empty unless Fresh or Stale).
    pub idps: Vec<Arc<IdpEntry>>,
    /// True once a document was accepted (from the source or the backing file).
    pub loaded_once: bool,
    /// Last attempt, successful or not.
    pub last_attempt: Option<SystemTime>,
    /// Last accepted document.
    pub last_success: Option<SystemTime>,
    /// Last failure (kept after a later success, for the operator).
    pub last_error: Option<LastError>,
    /// When the next attempt is due.
    pub next_attempt: SystemTime,
    /// Attempts so far.
    pub attempts: u64,
    /// Failures so far, by reason.
    pub failures: BTreeMap<FailureReason, u64>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
}

impl SourceRecord {
    /// A source never loaded, due at once (`now`).
    pub fn new(name: &str, federation: Federation, required: bool, now: SystemTime) -> Self {
        SourceRecord {
            name: name.into(),
            federation,
            required,
            state: SourceState::Pending,
            origin: None,
            validity: Validity::default(),
            idps: Vec::new(),
            loaded_once: false,
            last_attempt: None,
            last_success: None,
            last_error: None,
            next_attempt: now,
            attempts: 0,
            failures: BTreeMap::new(),
            consecutive_failures: 0,
        }
    }

    /// True when an attempt is due at `now`.
    pub fn due(&self, now: SystemTime) -> bool {
        self.next_attempt <= now
    }

    /// Records an accepted document. `next` is the next attempt (see
    /// [`crate::schedule::next_after_success`]).
    pub fn succeed(
        &mut self,
        idps: Vec<Arc<IdpEntry>>,
        validity: Validity,
        origin: Origin,
        now: SystemTime,
        next: SystemTime,
    ) {
        if origin == Origin::Source {
            self.attempts += 1;
            self.last_attempt = Some(now);
            self.consecutive_failures = 0;
        }
        self.last_success = Some(now);
        self.state = SourceState::Fresh;
        self.origin = Some(origin);
        self.validity = validity;
        self.idps = idps;
        self.loaded_once = true;
        self.next_attempt = next;
    }

    /// Records a failed attempt; the current document, if any, stays. `next` is the next
    /// attempt (see [`crate::schedule::next_after_failure`]).
    pub fn fail(
        &mut self,
        reason: FailureReason,
        detail: String,
        now: SystemTime,
        next: SystemTime,
    ) {
        self.attempts += 1;
        self.last_attempt = Some(now);
        *self.failures.entry(reason).or_insert(0) += 1;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_error = Some(LastError {
            reason,
            detail,
            at: now,
        });
        if matches!(self.state, SourceState::Fresh) {
            self.state = SourceState::Stale;
        }
        self.next_attempt = next;
    }

    /// Drops the current document once its `validUntil` has passed at `now`: expired
    /// metadata is never used, even when no newer document can be had. Returns true when it
    /// dropped something.
    pub fn expire(&mut self, now: SystemTime) -> bool {
        if matches!(self.state, SourceState::Fresh | SourceState::Stale)
            && !self.validity.usable_at(now)
        {
            self.state = SourceState::Expired;
            self.idps.clear();
            return true;
        }
        false
    }

    /// The counters for export.
    pub fn stats(&self, now: SystemTime) -> SourceStats {
        SourceStats {
            source: self.name.clone(),
            state: self.state,
            attempts: self.attempts,
            failures: FailureReason::ALL
                .iter()
                .map(|r| (*r, self.failures.get(r).copied().unwrap_or(0)))
                .collect(),
            seconds_to_valid_until: self.validity.valid_until.map(|v| signed_seconds(v, now)),
            idp_cert_expiry: self
                .idps
                .iter()
                .filter_map(|i| Some((i.entity_id().to_owned(), i.earliest_cert_expiry()?)))
                .collect(),
        }
    }
}

/// `to - from` in whole seconds, negative when `to` is earlier.
fn signed_seconds(to: SystemTime, from: SystemTime) -> i64 {
    match to.duration_since(from) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// What the metrics work exports for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStats {
    /// Source name (a label).
    pub source: Arc<str>,
    /// Its state.
    pub state: SourceState,
    /// Refresh attempts.
    pub attempts: u64,
    /// Failures by reason, every reason listed (zeros included).
    pub failures: Vec<(FailureReason, u64)>,
    /// Seconds until the current document's `validUntil` (negative once passed).
    pub seconds_to_valid_until: Option<i64>,
    /// Per IdP of the current document: the earliest signing-certificate `notAfter`, Unix
    /// seconds.
    pub idp_cert_expiry: Vec<(String, i64)>,
}
