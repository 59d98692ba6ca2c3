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
    /// Whether a forward-auth answer that allows (`/auth`, 200) writes its `request` line
    /// (`log.forward_auth_allowed`, default false): the proxy logs the request itself, the
    /// decision is counted in the metrics, and at the proxy's request rate these lines would
    /// be most of the log and most of the check's cost (docs/PERFORMANCE.md). Every other
    /// `/auth` answer, and every other request, keeps its line.
    pub forward_auth_allowed: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: Format::Json,
            level: Level::INFO,
            forward_auth_allowed: false,
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
            (Some(format), Some(level)) => Ok(LogConfig {
                format,
                level,
                forward_auth_allowed: false,
            }),
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

/// Request ids drawn from one read of the system RNG: a request id is a correlation key,
/// not a secret, so a per-thread reserve of random bytes spares a `getrandom` system call
/// per request (issue 20). Each byte is used once.
const ID_BYTES: usize = 8;
const ID_RESERVE: usize = 64 * ID_BYTES;

thread_local! {
    static ID_POOL: std::cell::RefCell<([u8; ID_RESERVE], usize)> =
        const { std::cell::RefCell::new(([0; ID_RESERVE], ID_RESERVE)) };
}

/// A fresh request id: 16 hex digits from the system RNG (`-` if it fails, which it does
/// not on supported systems; the request is still served).
pub fn new_request_id(rng: &SystemRandom) -> Arc<str> {
    use ring::rand::SecureRandom as _;
    ID_POOL
        .with_borrow_mut(|(reserve, used)| {
            if *used + ID_BYTES > ID_RESERVE {
                rng.fill(reserve).ok()?;
                *used = 0;
            }
            let id = reserve.get(*used..*used + ID_BYTES)?;
            *used += ID_BYTES;
            let mut digits = [0u8; 2 * ID_BYTES];
            for (pair, &b) in digits.chunks_exact_mut(2).zip(id) {
                pair.copy_from_slice(&crate::leaf::session::hex_byte(b));
            }
            std::str::from_utf8(&digits).ok().map(Arc::from)
        })
        .unwrap_or_else(|| Arc::from("-"))
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
        let rng = SystemRandom::new();
        let fresh = new_request_id(&rng);
        assert_eq!(fresh.len(), 16);
        assert!(valid_request_id(&fresh));
        // Across refills of the per-thread reserve, no id repeats.
        let ids: std::collections::HashSet<_> = (0..3 * ID_RESERVE / ID_BYTES)
            .map(|_| new_request_id(&rng))
            .collect();
        assert_eq!(ids.len(), 3 * ID_RESERVE / ID_BYTES);
        assert!(!ids.contains(&fresh));
    }

    #[tokio::test]
    async fn the_request_id_is_visible_inside_its_scope_only() {
        assert!(request_id().is_none());
        let seen = with_request_id(Arc::from("r1"), async { request_id() }).await;
        assert_eq!(seen.as_deref(), Some("r1"));
        assert!(request_id().is_none());
    }
}
