//! Configuration reload without a restart: on SIGHUP, and when the configuration file's
//! contents change (polled every `server.config_poll_seconds`).
//!
//! The new file goes through the same [`crate::config::load`] as `varco serve` and `varco
//! check-config`; only a configuration that validated completely and changes no restart-only
//! setting ([`restart_only`]) is applied. Applying it builds a new [`State`] that shares with
//! the old one everything that must outlive a reload (the store of pending logins, consumed
//! assertions and revoked sessions; the session sealer; the metadata registry and refresher;
//! metrics; the audit sink) and swaps it in with one atomic pointer store ([`ArcSwap`]).
//! Each request loads the pointer once when it starts and uses that state to the end, so it
//! sees the old configuration or the new one, never a mix. A refused reload keeps the
//! configuration in force and says why: a `config_reload_failed` or `config_reload_refused`
//! log line, `varco_config_reloads_total{outcome}`, and `varco_config_info` still naming
//! the old file's hash.
//!
//! Why polling and not inotify (`notify`): the poll reads one small file every few seconds,
//! which costs nothing; it sees every way a file is replaced (an editor's rename, a
//! Kubernetes ConfigMap's symlink swap, a bind mount updated from outside a container) where
//! inotify watches would have to follow symlinks and re-arm after renames; and it adds no
//! dependency. It compares the SHA-256 of the contents, so touching the file (mtime only)
//! reloads nothing, and a bad file is reported once, not at every poll.

//! This module is the state swapped and the rules of a swap; the task that triggers reloads
//! (SIGHUP, polling) is `crate::reload`, above `state`.
//!
//! May import: the state, `config`, the leaf.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::config::{self, Config, Overrides, Problem};
use crate::state::State;

/// What started a reload (the `trigger` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP.
    Signal,
    /// The poll saw new file contents.
    File,
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Trigger::Signal => "sighup",
            Trigger::File => "file",
        }
    }
}

/// What a reload did.
#[derive(Debug)]
pub enum Outcome {
    /// The new configuration is in force.
    Applied,
    /// The poll saw contents equal to those in force (edited and put back between two
    /// polls): nothing to do. SIGHUP never reports it: it always reloads, so key and
    /// certificate files the configuration names are read again even when the file itself
    /// did not change.
    Unchanged,
    /// The file does not validate; the old configuration stays.
    Invalid(Vec<Problem>),
    /// The file changes settings that need a restart; the old configuration stays.
    RestartRequired(Vec<&'static str>),
}

impl Outcome {
    /// The `outcome` label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::Invalid(_) => "invalid",
            Outcome::RestartRequired(_) => "restart_required",
        }
    }
}

/// The state in force, swappable.
pub struct Live {
    current: ArcSwap<State>,
    path: PathBuf,
    overrides: Overrides,
    /// SHA-256 of the contents the last reload attempt read (applied or not): the poll
    /// triggers on a change from it, so a bad file is reported once.
    last_seen: Mutex<String>,
    /// One reload at a time (SIGHUP and the poll may coincide).
    one_at_a_time: Mutex<()>,
}

impl Live {
    /// `state`, loaded from the file at `path` with `overrides` (reloads use the same).
    /// Records the configuration in force in the metrics.
    pub fn new(state: State, path: PathBuf, overrides: Overrides) -> Live {
        let hash = state.config.source_sha256.clone();
        state.metrics.config_in_force(&hash, (state.clock)());
        Live {
            current: ArcSwap::from_pointee(state),
            path,
            overrides,
            last_seen: Mutex::new(hash),
            one_at_a_time: Mutex::new(()),
        }
    }

    /// The state in force: load it once per request.
    pub fn state(&self) -> Arc<State> {
        self.current.load_full()
    }

    /// Whether the file's contents differ from those the last reload attempt read (an
    /// unreadable file counts as unchanged: the reload would only fail the same way).
    pub fn file_changed(&self) -> bool {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let seen = self
                    .last_seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                crate::leaf::problem::sha256_hex(&bytes) != *seen
            }
            Err(_) => false,
        }
    }

    /// Reads, validates and, when acceptable, applies the configuration file. Blocking (it
    /// reads files and signs the SP metadata): call it off the async workers.
    pub fn reload(&self, trigger: Trigger) -> Outcome {
        let _one = self
            .one_at_a_time
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let old = self.state();
        let outcome = match config::load(&self.path, &self.overrides) {
            Err(problems) => {
                // Remember what was read so the poll does not report it again.
                if let Ok(bytes) = std::fs::read(&self.path) {
                    self.seen(crate::leaf::problem::sha256_hex(&bytes));
                }
                Outcome::Invalid(problems)
            }
            Ok(new) => {
                self.seen(new.source_sha256.clone());
                if trigger == Trigger::File && new.source_sha256 == old.config.source_sha256 {
                    Outcome::Unchanged
                } else {
                    let refused = restart_only(&old.config, &new);
                    if refused.is_empty() {
                        let new = carry_over(&old.config, new);
                        let state = old.reconfigured(Arc::new(new));
                        let hash = state.config.source_sha256.clone();
                        self.current.store(Arc::new(state));
                        old.metrics.config_in_force(&hash, (old.clock)());
                        Outcome::Applied
                    } else {
                        Outcome::RestartRequired(refused)
                    }
                }
            }
        };
        old.metrics
            .config_reloads
            .with_label_values(&[trigger.label(), outcome.label()])
            .inc();
        let ok = matches!(outcome, Outcome::Applied | Outcome::Unchanged);
        old.metrics.config_last_reload_ok.set(i64::from(ok));
        report(trigger, &outcome, &self.state().config.source_sha256);
        outcome
    }

    fn seen(&self, hash: String) {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = hash;
    }
}

fn report(trigger: Trigger, outcome: &Outcome, in_force: &str) {
    let trigger = trigger.label();
    match outcome {
        Outcome::Applied => {
            tracing::info!(event = "config_reloaded", trigger, sha256 = in_force);
        }
        Outcome::Unchanged => {
            tracing::info!(event = "config_unchanged", trigger, sha256 = in_force);
        }
        Outcome::Invalid(problems) => {
            let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
            tracing::warn!(
                event = "config_reload_failed",
                trigger,
                outcome = "invalid",
                error = %problems.join("; "),
                kept_sha256 = in_force,
            );
        }
        Outcome::RestartRequired(keys) => {
            tracing::warn!(
                event = "config_reload_refused",
                trigger,
                outcome = "restart_required",
                error = %format!("these settings change only with a restart: {}", keys.join(", ")),
                kept_sha256 = in_force,
            );
        }
    }
}

/// What a reload must not change, by configuration key: the settings whose old value lives
/// on in something built once at start (the listening socket, the store and its bounds, the
/// audit sink, the metadata refresher and its state directory, the log subscriber), and
/// those on which sessions and logins in flight depend (the session key and cookie names, the
/// SP's identity and ACS URL, which pending logins and the IdPs' metadata name).
///
/// The session key is restart-only rather than rotated in place: a second "previous" key
/// would keep accepting cookies sealed with a key the operator meant to retire, for a whole
/// session lifetime, and a key rotation is rare enough to be a planned restart.
pub fn restart_only(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |key: &'static str, same: bool| {
        if !same {
            changed.push(key);
        }
    };
    check("server.listen", old.listen == new.listen);
    check(
        "admission.max_connections",
        old.admission.max_connections == new.admission.max_connections,
    );
    check(
        "server.management_listen",
        old.management_listen == new.management_listen,
    );
    check(
        "server.public_base_url",
        old.public_base_url == new.public_base_url,
    );
    check("sp.entity_id", old.sp.entity_id == new.sp.entity_id);
    check("session.key_file", old.session_key == new.session_key);
    check("session.cookie_name", old.cookie_name == new.cookie_name);
    check(
        "session.cookie_secure",
        old.cookie_secure == new.cookie_secure,
    );
    check("session.ttl_seconds", old.session_ttl == new.session_ttl);
    check(
        "saml.pending_request_ttl_seconds",
        old.pending_ttl == new.pending_ttl,
    );
    check(
        "saml.max_pending_requests",
        old.budgets.max_pending == new.budgets.max_pending,
    );
    check(
        "saml.max_pending_bytes",
        old.budgets.pending_bytes == new.budgets.pending_bytes,
    );
    check(
        "store.max_replay_bytes",
        old.budgets.replay_bytes == new.budgets.replay_bytes,
    );
    check(
        "store.max_activity_bytes",
        old.budgets.activity_bytes == new.budgets.activity_bytes,
    );
    check(
        "store.max_logout_index_bytes",
        old.budgets.logout_index_bytes == new.budgets.logout_index_bytes,
    );
    // Debug renderings compare every field, certificates included; they are never logged.
    check(
        "[[metadata]] / [[idp]]",
        format!("{:?}", old.metadata_sources) == format!("{:?}", new.metadata_sources),
    );
    check("state.dir", old.state_dir == new.state_dir);
    check(
        "audit",
        format!("{:?}", old.audit) == format!("{:?}", new.audit),
    );
    check("log.format", old.log.format == new.log.format);
    check("log.level", old.log.level == new.log.level);
    changed
}

/// What the new configuration inherits from the one in force: the token key generated at
/// start when no `[[token.key]]` is configured (a reload must not invalidate every token
/// already issued nor change the JWKS for nothing).
fn carry_over(old: &Config, mut new: Config) -> Config {
    if old.access.ephemeral_key && new.access.ephemeral_key {
        new.access.keys = old.access.keys.clone();
    }
    new
}
