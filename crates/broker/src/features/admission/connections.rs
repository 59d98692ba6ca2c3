//! The connection cap: at most `admission.max_connections` client connections are open at
//! once, on the main and CNS listeners together. Why: every open connection holds a task and
//! hyper's buffers whether or not it sends anything, so without a cap a client that opens
//! connections and keeps them idle (or trickles its headers for the 10 s header timeout)
//! grows memory without bound. Rate limits do not help: they count requests, not sockets.
//!
//! One more connection than the cap is accepted and closed at once (never queued in the
//! process), and counted in `varco_connections_refused_total`; `varco_connections_open`
//! shows how close the process is to the cap. Closing at accept rather than pausing the
//! accept loop keeps the kernel's backlog from filling with sockets no one will serve.

use std::sync::Arc;

use prometheus::{IntCounterVec, IntGauge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::features::metrics::Metrics;

/// The cap shared by the listeners of one process (built once at start: a reload does not
/// change it, so connections open across a reload are still counted).
pub struct Connections {
    permits: Arc<Semaphore>,
    open: IntGauge,
    refused: IntCounterVec,
}

/// One admitted connection: its slot is freed when this is dropped (the connection's task
/// ends).
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    open: IntGauge,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl Connections {
    /// A cap of `max` connections, reporting to `metrics`.
    pub fn new(max: usize, metrics: &Metrics) -> Self {
        Connections {
            permits: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            open: metrics.connections_open.clone(),
            refused: metrics.connections_refused.clone(),
        }
    }

    /// A slot for a connection just accepted on `listener` (`main` or `cns`), or `None` when
    /// the cap is reached: the caller closes the connection (the refusal is counted here).
    pub fn admit(&self, listener: &'static str) -> Option<Admitted> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                self.open.inc();
                Some(Admitted {
                    _permit: permit,
                    open: self.open.clone(),
                })
            }
            Err(_) => {
                self.refused.with_label_values(&[listener]).inc();
                None
            }
        }
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}
