//! Back-Channel Logout 1.0 delivery: logout tokens POSTed to clients off the request path,
//! through a bounded queue served by a few threads with a per-request deadline.
//!
//! Why threads with ureq: the metadata fetcher already uses ureq (rustls, ring) in blocking
//! calls; a delivery is rare (one per client at the end of a session), and a blocking POST
//! with `timeout_global` is the whole client. A full queue drops the delivery (counted as
//! `dropped`) rather than slow a logout down; the session is ended either way.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `[oidc]` back-channel settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Whole-request deadline of one delivery.
    pub timeout: Duration,
    /// Deliveries waiting at most; more are dropped.
    pub queue: usize,
}

/// Threads delivering logout tokens.
const WORKERS: usize = 2;

/// One delivery: a logout token for a client's endpoint.
struct Job {
    uri: String,
    token: String,
}

/// The delivery queue.
pub struct Sender {
    tx: SyncSender<Job>,
    counter: prometheus::IntCounterVec,
    settings: Settings,
}

impl Sender {
    /// Starts the workers. `counter` is `varco_oidc_backchannel_logouts_total`.
    pub fn start(settings: Settings, counter: prometheus::IntCounterVec) -> Sender {
        let (tx, rx) = sync_channel::<Job>(settings.queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..WORKERS {
            let rx = rx.clone();
            let counter = counter.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("varco-backchannel-{i}"))
                .spawn(move || work(&rx, settings.timeout, &counter));
            if let Err(e) = spawned {
                tracing::error!(event = "backchannel_thread_failed", error = %e);
            }
        }
        for outcome in ["sent", "failed", "dropped"] {
            counter.with_label_values(&[outcome]);
        }
        Sender {
            tx,
            counter,
            settings,
        }
    }

    /// The settings the workers run with.
    #[must_use]
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Queues one delivery; never waits. A full queue drops it.
    pub fn send(&self, uri: String, token: String) {
        match self.tx.try_send(Job { uri, token }) {
            Ok(()) => {}
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                self.counter.with_label_values(&["dropped"]).inc();
                tracing::warn!(event = "backchannel_dropped", uri = %job.uri, "back-channel logout queue full; delivery dropped");
            }
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>, timeout: Duration, counter: &prometheus::IntCounterVec) {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // The registered URI is the one trusted: a redirect is a failure.
        .max_redirects(0)
        .user_agent("varco-backchannel-logout")
        .build();
    let agent = ureq::Agent::new_with_config(config);
    loop {
        let job = {
            let guard = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match guard.recv() {
                Ok(j) => j,
                // Every sender is gone: the state was dropped.
                Err(_) => return,
            }
        };
        let body = format!("logout_token={}", crate::leaf::form::encode(&job.token));
        let result = agent
            .post(&job.uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body.as_bytes());
        // Back-Channel Logout 1.0 §2.8: 200 (or 204) is success; anything else a failure.
        match result {
            Ok(r) if matches!(r.status().as_u16(), 200 | 204) => {
                counter.with_label_values(&["sent"]).inc();
                tracing::info!(event = "backchannel_sent", uri = %job.uri);
            }
            Ok(r) => {
                counter.with_label_values(&["failed"]).inc();
                tracing::warn!(event = "backchannel_failed", uri = %job.uri, status = r.status().as_u16());
            }
            Err(e) => {
                counter.with_label_values(&["failed"]).inc();
                tracing::warn!(event = "backchannel_failed", uri = %job.uri, error = %e);
            }
        }
    }
}
