//! The reload task: SIGHUP and the poll of the configuration file (every
//! `server.config_poll_seconds`) call [`Live::reload`]; what a reload checks and swaps is
//! `state::live`.
//!
//! May import: `state` and below. Only `cli` imports it.

use std::sync::Arc;

use crate::state::live::{Live, Trigger};

/// Reloads on SIGHUP and, every `server.config_poll_seconds` of the configuration in force,
/// when the file's contents changed, until the process ends. The SIGHUP handler is in place
/// when this returns: call it before the port is bound (SIGHUP's default action would end
/// the process). Must be called within the runtime.
pub fn spawn(live: Arc<Live>) -> tokio::task::JoinHandle<()> {
    #[cfg(unix)]
    let hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(event = "sighup_unavailable", error = %e);
            None
        }
    };
    #[cfg(not(unix))]
    let hangup = None;
    tokio::spawn(watch(live, hangup))
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<std::convert::Infallible>;

async fn watch(live: Arc<Live>, mut hangup: Hangup) {
    loop {
        let poll = live.state().config.config_poll;
        let tick = async {
            match poll {
                Some(every) => tokio::time::sleep(every).await,
                None => std::future::pending::<()>().await,
            }
        };
        // Resolves on SIGHUP; never when there is no handler (or its stream ended).
        let signalled = async {
            #[cfg(unix)]
            if let Some(h) = hangup.as_mut() {
                if h.recv().await.is_some() {
                    return;
                }
            }
            #[cfg(not(unix))]
            let _ = &mut hangup;
            std::future::pending::<()>().await
        };
        let trigger = tokio::select! {
            () = signalled => Some(Trigger::Signal),
            () = tick => live.file_changed().then_some(Trigger::File),
        };
        if let Some(trigger) = trigger {
            let live = live.clone();
            // Loading reads files and signs metadata: off the request workers.
            let _ = tokio::task::spawn_blocking(move || live.reload(trigger)).await;
        }
    }
}
