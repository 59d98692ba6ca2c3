//! Structured logs with `tracing`: one line per event on stderr, JSON by default (`log.format
//! = "json"`) or human-readable text (`"text"`, for `make run`).
//!
//! Every event carries an `event` field with a stable name (`login_refused`, `request`,
//! `config_reloaded`…). Events emitted while a request is handled sit inside a `request` span
//! whose `request_id` is the id returned in `X-Request-Id` and shown as the "reference" on
//! error pages, so an operator goes from what a citizen reads to the log lines in one search.
//! In JSON the span appears as `"span":{"request_id":"…","name":"request"}`; the per-request
//! line (`event = "request"`) also has `request_id` at the top level.
//!
//! What is never logged: cookies, the SAMLResponse or any other message body, keys, tokens.
//! Values go through the formatter's escaping (serde_json for JSON), so attacker-controlled
//! text cannot forge a line.
//!
//! May import: other leaf modules only.

use std::sync::Arc;

use ring::rand::SystemRandom;
use tracing::Level;

/// The log line format (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (production default).
    Json,
    /// `tracing`'s human-readable lines, for a terminal.
    Text,
}

/// `[log]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Line format.
    pub format: Format,
    /// Most verbose level written.
    pub level: Level,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: Format::Json,
            level: Level::INFO,
        }
    }
}

impl LogConfig {
    /// Parses `log.format` and `log.level`; each error names its key.
    pub fn parse(format: &str, level: &str) -> Result<Self, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let format = match format {
            "json" => Some(Format::Json),
            "text" => Some(Format::Text),
            other => {
                problems.push((
                    "log.format",
                    format!("{other:?}: expected \"json\" or \"text\""),
                ));
                None
            }
        };
        let level = match level {
            "error" => Some(Level::ERROR),
            "warn" => Some(Level::WARN),
            "info" => Some(Level::INFO),
            "debug" => Some(Level::DEBUG),
            "trace" => Some(Level::TRACE),
            other => {
                problems.push((
                    "log.level",
                    format!("{other:?}: expected error, warn, info, debug or trace"),
                ));
                None
            }
        };
        match (format, level) {
            (Some(format), Some(level)) => Ok(LogConfig { format, level }),
            _ => Err(problems),
        }
    }
}

/// Installs the global subscriber. Called once by `varco serve`, after the configuration
/// validated (configuration errors are command-line output, not log lines). A second call
/// keeps the first subscriber.
pub fn init(config: LogConfig) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(config.level)
        .with_ansi(false)
        .with_target(false);
    let _ = match config.format {
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        Format::Text => builder.try_init(),
    };
}

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// The id of the request being handled by this task, if any.
pub fn request_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// Runs `f` with `id` as the current request id ([`request_id`]).
pub async fn with_request_id<F: Future>(id: Arc<str>, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// Whether a client-supplied `X-Request-Id` is acceptable (from a trusted proxy only, checked
/// by the caller): 1 to 64 characters of `[A-Za-z0-9._-]`, so it is safe in a header, a log
/// line and a page.
pub fn valid_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A fresh request id: 16 hex digits from the system RNG (`-` if it fails, which it does
/// not on supported systems; the request is still served).
pub fn new_request_id(rng: &SystemRandom) -> Arc<str> {
    crate::leaf::session::random_hex(rng, 8).map_or_else(|| Arc::from("-"), Arc::from)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn formats_and_levels_parse_and_bad_ones_name_their_key() {
        assert_eq!(
            LogConfig::parse("json", "info").unwrap(),
            LogConfig::default()
        );
        let text = LogConfig::parse("text", "debug").unwrap();
        assert_eq!((text.format, text.level), (Format::Text, Level::DEBUG));
        assert_eq!(
            LogConfig::parse("xml", "info").unwrap_err()[0].0,
            "log.format"
        );
        assert_eq!(
            LogConfig::parse("json", "loud").unwrap_err()[0].0,
            "log.level"
        );
        let both: Vec<_> = LogConfig::parse("xml", "loud")
            .unwrap_err()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(both, ["log.format", "log.level"]);
    }

    #[test]
    fn forwarded_request_ids_are_bounded_and_plain() {
        assert!(valid_request_id("abc-123_x.y"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id(&"a".repeat(65)));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id("a\"b"));
        assert!(!valid_request_id("<script>"));
        assert!(!valid_request_id("a\nb"));
        let fresh = new_request_id(&SystemRandom::new());
        assert_eq!(fresh.len(), 16);
        assert!(valid_request_id(&fresh));
    }

    #[tokio::test]
    async fn the_request_id_is_visible_inside_its_scope_only() {
        assert!(request_id().is_none());
        let seen = with_request_id(Arc::from("r1"), async { request_id() }).await;
        assert_eq!(seen.as_deref(), Some("r1"));
        assert!(request_id().is_none());
    }
}
