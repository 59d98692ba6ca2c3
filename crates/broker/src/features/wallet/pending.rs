//! The wallet requests waiting in this process: one [`Entry`] per login, found by its id
//! (the `request_uri` path, the browser's polling URL) or by the `kid` of its response
//! key (the only thing the wallet's encrypted answer names). Bounded in count; an entry
//! lives `ttl` plus a grace period for the browser to collect the result.
//!
//! Each entry holds three one-use things, each taken out exactly once under the entry's
//! lock: the signed request object (the wallet's GET), the [`openid4vp::Pending`] with the
//! response key (the wallet's POST), and the verified result (the browser's completion).

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The verified PID, waiting for the browser.
#[derive(Debug, Clone)]
pub struct Presented {
    /// The PID attributes.
    pub pid: sdjwt::Pid,
    /// The issuer (`iss`).
    pub issuer: String,
    /// RFC 7638 thumbprint of the holder key.
    pub holder: String,
    /// Base64url SHA-256 of the presentation (the audit record).
    pub digest: String,
    /// The response code the same-device redirect carries.
    pub response_code: String,
    /// The Wallet Provider whose attestation vouched for the wallet instance, and the
    /// attestation's digest (the audit record), when one was required.
    pub wallet_attestation: Option<(String, String)>,
}

/// Where a request stands.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// No answer yet.
    Waiting,
    /// Verified; the browser has not collected it yet.
    Presented(Box<Presented>),
    /// Refused with this code (the browser's page says so).
    Refused(&'static str),
    /// The browser collected it: a session exists.
    Done,
}

/// One login through the wallet.
#[derive(Debug)]
pub struct Entry {
    /// The login-binding cookie value of the browser that started it.
    pub browser: String,
    /// Where to go after the login (checked when the request was made).
    pub return_to: String,
    /// Same-device flow (the wallet gets a `redirect_uri` back) or cross-device (the
    /// browser polls).
    pub same_device: bool,
    /// When the request stops being answerable, Unix seconds.
    pub expires_at: u64,
    /// The signed request object, until the wallet fetches it.
    pub jar: Option<String>,
    /// The pending request with its response key, until the wallet answers.
    pub pending: Option<openid4vp::Pending>,
    /// The result.
    pub outcome: Outcome,
}

/// The requests of this process.
pub struct Pendings {
    by_id: moka::sync::Cache<String, Arc<Mutex<Entry>>>,
    by_kid: moka::sync::Cache<String, String>,
    settings: (u64, Duration),
}

/// Why a request could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Pendings {
    /// Room for `max` requests, each kept `ttl` plus two minutes.
    #[must_use]
    pub fn new(max: u64, ttl: Duration) -> Pendings {
        let live = ttl + Duration::from_secs(120);
        Pendings {
            settings: (max, ttl),
            by_id: moka::sync::Cache::builder()
                .max_capacity(max)
                .time_to_live(live)
                .build(),
            by_kid: moka::sync::Cache::builder()
                .max_capacity(max)
                .time_to_live(live)
                .build(),
        }
    }

    /// Records a request under `id`. Refused when the bound is reached: a flood of
    /// unanswered requests must not evict the genuine ones in flight (moka would evict).
    pub fn insert(&self, id: String, kid: String, entry: Entry) -> Result<(), Full> {
        self.by_id.run_pending_tasks();
        if self.by_id.entry_count() >= self.max() {
            return Err(Full);
        }
        self.by_kid.insert(kid, id.clone());
        self.by_id.insert(id, Arc::new(Mutex::new(entry)));
        Ok(())
    }

    /// The bound and request lifetime this map was built with (a reload keeps the map,
    /// and the logins in flight, only when they are unchanged).
    #[must_use]
    pub fn settings(&self) -> (u64, Duration) {
        self.settings
    }

    fn max(&self) -> u64 {
        self.by_id.policy().max_capacity().unwrap_or(u64::MAX)
    }

    /// The entry `id`.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<Arc<Mutex<Entry>>> {
        self.by_id.get(id)
    }

    /// The id of the request whose response key has this `kid` (an untrusted lookup key).
    #[must_use]
    pub fn id_of_kid(&self, kid: &str) -> Option<String> {
        self.by_kid.get(kid)
    }

    /// Requests waiting (approximate).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.by_id.entry_count()
    }

    /// Whether none waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The entry's lock, even after a panic elsewhere poisoned it (the data stays consistent:
/// every change is a single assignment).
pub fn lock(e: &Mutex<Entry>) -> std::sync::MutexGuard<'_, Entry> {
    e.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
