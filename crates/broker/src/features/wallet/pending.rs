//! The wallet requests waiting for an answer, kept in the login store (`[store]`: this
//! process's memory, or Redis shared by every replica), so the wallet's fetch, its answer
//! and the browser's completion may each reach any replica.
//!
//! One login is three records under its id (the `kid` of its response key: the only thing
//! the wallet's encrypted answer names, and the `request_uri` path):
//! - [`KIND_REQUEST`]: the [`Entry`] (browser binding, where to go, the outcome), sealed;
//!   read by the browser's polling, rewritten once by the answer, taken once by the
//!   completion;
//! - [`KIND_JAR`]: the signed request object, taken once by the wallet's fetch (it is
//!   public: it travels to the wallet in clear);
//! - [`KIND_KEY`]: the [`Key`]: the `openid4vp` pending request with the private response
//!   key and the claims asked for, sealed; taken once by the answer, so of two answers on
//!   any replicas one is opened.
//!
//! Sealed with the session key (ChaCha20-Poly1305, `leaf::session::Sealer`, one purpose
//! each): the store (Redis) never holds a response key or a PID in clear, and cannot make
//! or alter either. Each sealed value carries its id, checked on opening, so a value
//! cannot be moved to another login's key.
//!
//! The bytes a replica may put there are bounded by its [`Ledger`] (count and estimated
//! bytes, `wallet.max_pending` and `wallet.max_pending_bytes`): full, a new login is
//! refused (503) instead of evicting one in flight.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::leaf::session::{Purpose, Sealer};

/// Record kind of the [`Entry`].
pub const KIND_REQUEST: &str = "wallet_request";
/// Record kind of the signed request object.
pub const KIND_JAR: &str = "wallet_jar";
/// Record kind of the [`Key`].
pub const KIND_KEY: &str = "wallet_key";

/// How long after its request expires an entry stays, for the browser to collect the
/// result.
pub const GRACE: Duration = Duration::from_secs(120);

/// The verified PID, waiting for the browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Presented {
    /// The principal's canonical attributes from the PID (`features::wallet::attributes`).
    pub attributes: Vec<(String, Vec<String>)>,
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Outcome {
    /// No answer yet.
    Waiting,
    /// Verified; the browser has not collected it yet.
    Presented(Box<Presented>),
    /// Refused with this code (the browser's page says so).
    Refused(String),
    /// The browser collected it: a session exists.
    Done,
}

/// One login through the wallet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The request id (checked on opening).
    pub id: String,
    /// The login-binding cookie value of the browser that started it.
    pub browser: String,
    /// Where to go after the login (checked when the request was made).
    pub return_to: String,
    /// Same-device flow (the wallet gets a `redirect_uri` back) or cross-device (the
    /// browser polls).
    pub same_device: bool,
    /// When the request stops being answerable, Unix seconds.
    pub expires_at: u64,
    /// The result.
    pub outcome: Outcome,
}

/// What opens and checks one answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Key {
    /// The request id (checked on opening).
    pub id: String,
    /// `openid4vp::Pending::export`: state, nonce, the response key's private scalar.
    pub pending: serde_json::Value,
    /// The PID claims asked for (their names): each must be in the presentation.
    pub claims: Vec<String>,
}

impl Entry {
    /// Sealed for the store.
    #[must_use]
    pub fn seal(&self, sealer: &Sealer) -> Option<Vec<u8>> {
        sealer
            .seal(Purpose::WalletRequest, self)
            .map(String::into_bytes)
    }

    /// The entry of `id` from its sealed bytes; `None` for anything else.
    #[must_use]
    pub fn open(sealer: &Sealer, id: &str, bytes: &[u8]) -> Option<Entry> {
        let e: Entry = sealer.open(Purpose::WalletRequest, std::str::from_utf8(bytes).ok()?)?;
        (e.id == id).then_some(e)
    }

    /// How long its records live from `now`: until the request expires, plus [`GRACE`].
    #[must_use]
    pub fn ttl(&self, now: u64) -> Duration {
        Duration::from_secs(self.expires_at.saturating_sub(now)) + GRACE
    }
}

impl Key {
    /// Sealed for the store.
    #[must_use]
    pub fn seal(&self, sealer: &Sealer) -> Option<Vec<u8>> {
        sealer
            .seal(Purpose::WalletKey, self)
            .map(String::into_bytes)
    }

    /// The key record of `id` from its sealed bytes; `None` for anything else.
    #[must_use]
    pub fn open(sealer: &Sealer, id: &str, bytes: &[u8]) -> Option<Key> {
        let k: Key = sealer.open(Purpose::WalletKey, std::str::from_utf8(bytes).ok()?)?;
        (k.id == id).then_some(k)
    }
}

/// Bytes counted for each of a login's three records besides its value: the store's
/// per-entry bookkeeping (`store::memory::ENTRY_OVERHEAD`) and the key.
pub const RECORD_OVERHEAD: u64 = crate::features::store::memory::ENTRY_OVERHEAD as u64 + 64;

/// The logins this replica put in the store and that may still be there: a count and
/// their estimated bytes, each forgotten when its records expire. The bound of what one
/// replica can make the store hold (Redis: the replicas' sum).
pub struct Ledger {
    entries: moka::sync::Cache<String, u32>,
    settings: (u64, u64, Duration),
}

/// Why a request could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Ledger {
    /// Room for `max` logins and `max_bytes`, each counted `ttl` plus [`GRACE`].
    #[must_use]
    pub fn new(max: u64, max_bytes: u64, ttl: Duration) -> Ledger {
        Ledger {
            settings: (max, max_bytes, ttl),
            entries: moka::sync::Cache::builder()
                .weigher(|_k: &String, w: &u32| *w)
                // Never evicts by size: `admit` refuses first.
                .max_capacity(u64::MAX)
                .time_to_live(ttl + GRACE)
                .build(),
        }
    }

    /// Counts a login of `bytes` (its three records' values) under `id`, or refuses when
    /// either bound would be passed: a flood of unanswered requests must not push the
    /// genuine ones in flight out of the store. Concurrent admissions may pass the check
    /// together: the overshoot is bounded by the requests in flight.
    pub fn admit(&self, id: &str, bytes: usize) -> Result<(), Full> {
        self.entries.run_pending_tasks();
        let (max, max_bytes, _) = self.settings;
        let w = (bytes as u64).saturating_add(3 * RECORD_OVERHEAD);
        if self.entries.entry_count() >= max
            || self.entries.weighted_size().saturating_add(w) > max_bytes
        {
            return Err(Full);
        }
        self.entries
            .insert(id.to_owned(), u32::try_from(w).unwrap_or(u32::MAX));
        Ok(())
    }

    /// The bounds and request lifetime this ledger was built with (a reload keeps the
    /// ledger when they are unchanged).
    #[must_use]
    pub fn settings(&self) -> (u64, u64, Duration) {
        self.settings
    }

    /// Logins counted and their estimated bytes now.
    #[must_use]
    pub fn usage(&self) -> (u64, u64) {
        self.entries.run_pending_tasks();
        (self.entries.entry_count(), self.entries.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&[7u8; 32]).unwrap()
    }

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.into(),
            browser: "b".into(),
            return_to: "/".into(),
            same_device: false,
            expires_at: 100,
            outcome: Outcome::Waiting,
        }
    }

    #[test]
    fn sealed_records_open_only_under_their_own_id_and_purpose() {
        let s = sealer();
        let sealed = entry("a").seal(&s).unwrap();
        assert!(Entry::open(&s, "a", &sealed).is_some());
        assert!(
            Entry::open(&s, "b", &sealed).is_none(),
            "moved to another id"
        );
        assert!(Key::open(&s, "a", &sealed).is_none(), "another purpose");
        assert!(Entry::open(&Sealer::new(&[8u8; 32]).unwrap(), "a", &sealed).is_none());
        let key = Key {
            id: "a".into(),
            pending: serde_json::json!({"d": "secret"}),
            claims: vec!["given_name".into()],
        };
        let sealed = key.seal(&s).unwrap();
        assert!(
            !String::from_utf8_lossy(&sealed).contains("secret"),
            "the key never in clear"
        );
        assert_eq!(Key::open(&s, "a", &sealed).unwrap().claims, key.claims);
        assert!(Key::open(&s, "c", &sealed).is_none());
        assert_eq!(entry("a").ttl(40), Duration::from_secs(60) + GRACE);
        assert_eq!(entry("a").ttl(400), GRACE);
    }

    #[test]
    fn ledger_refuses_beyond_its_count_or_bytes_and_never_evicts() {
        let l = Ledger::new(3, 10_000, Duration::from_secs(60));
        assert_eq!(l.admit("1", 100), Ok(()));
        assert_eq!(l.admit("2", 100), Ok(()));
        assert_eq!(l.admit("3", 100), Ok(()));
        assert_eq!(l.admit("4", 100), Err(Full), "count");
        assert_eq!(l.usage().0, 3);
        let l = Ledger::new(
            100,
            3 * (1_000 + 3 * RECORD_OVERHEAD),
            Duration::from_secs(60),
        );
        for i in 0..3 {
            assert_eq!(l.admit(&i.to_string(), 1_000), Ok(()));
        }
        assert_eq!(l.admit("x", 1), Err(Full), "bytes");
        assert_eq!(l.usage(), (3, 3 * (1_000 + 3 * RECORD_OVERHEAD)));
    }
}
