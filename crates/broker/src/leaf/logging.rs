//! Structured logs with `tracing`: one line per event on stderr, JSON by default (`log.format
//! = "json"`) or human-readable text (`"text"`, for `make run`).
//!
//! Every event carries an `event` field with a stable name (`login_refused`, `request`,
//! `config_reloaded`…). Events emitted while a request is handled carry its `request` scope
//! whose `request_id` is the id returned in `X-Request-Id` and shown as the "reference" on
//! error pages, so an operator goes from what a citizen reads to the log lines in one search.
//! In JSON the scope appears as `"span":{"request_id":"…","name":"request"}`, in text as
//! `request{request_id=…}:`; the per-request line (`event = "request"`) also has
//! `request_id` at the top level.
//!
//! The scope is the request id in the task-local of [`with_request_id`], written by the
//! line formatter ([`init`]), not a `tracing` span: a span is created, its fields formatted
//! to JSON and stored, entered and exited at every poll, for every request, even when the
//! request logs nothing (an allowed `/auth` check), and that was an eighth of an `/auth`
//! answer's instructions (issue 20, docs/PERFORMANCE.md). The lines are the same.
//!
//! What is never logged: cookies, the SAMLResponse or any other message body, keys, tokens.
//! Values go through the formatter's escaping (serde_json for JSON), so attacker-controlled
//! text cannot forge a line.
//!
//! May import: other leaf modules only.

use hyper::header::HeaderValue;
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
    let _ = tracing::subscriber::set_global_default(subscriber(config, std::io::stderr));
}

/// The subscriber [`init`] installs, writing to `writer` (tests: a buffer).
fn subscriber<W>(config: LogConfig, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(config.level)
        .with_ansi(false);
    match config.format {
        Format::Json => Box::new(
            builder
                .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .event_format(JsonLine(
                    tracing_subscriber::fmt::format()
                        .json()
                        .flatten_event(true)
                        .with_current_span(false)
                        .with_span_list(false)
                        .with_target(false),
                ))
                .finish(),
        ),
        Format::Text => Box::new(
            builder
                .event_format(TextLine(
                    tracing_subscriber::fmt::format()
                        .without_time()
                        .with_level(false)
                        .with_target(false)
                        .with_ansi(false),
                ))
                .finish(),
        ),
    }
}

/// The JSON line of an event, written here member by member: `"timestamp"` (RFC 3339, UTC,
/// microseconds), `"level"`, the event's fields in their order, then, inside a request, its
/// scope as `"span":{"request_id":"…","name":"request"}` (the member a `request` span
/// printed). The bytes are those `tracing_subscriber`'s JSON formatter (`F`, kept for the
/// one case this one does not cover: a clock before 1970 or after 9999) writes: the keys
/// and values go through serde_json as they did there, so the escaping is serde_json's.
/// Written directly into one reused buffer, the two lines of a login cost a third of what
/// they did through the generic formatter, its map serializer and the per-value `String`s
/// (issue 20, docs/PERFORMANCE.md).
struct JsonLine<F>(F);

/// The line being built, and the whole-second part of the last timestamp written
/// (`YYYY-MM-DDTHH:MM:SS`) with its second: a line needs a calendar computation only when the
/// second changed.
struct LineBuf {
    line: Vec<u8>,
    second: u64,
    head: [u8; 19],
}

impl LineBuf {
    const fn new() -> Self {
        LineBuf {
            line: Vec::new(),
            second: u64::MAX,
            head: [0; 19],
        }
    }
}

thread_local! {
    static JSON_LINE: std::cell::RefCell<LineBuf> = const { std::cell::RefCell::new(LineBuf::new()) };
}

/// Runs `f` with this thread's line buffer, or with a fresh one when it is in use (a value's
/// `Debug` that logs) or gone (a thread ending): never a panic for a log line. `None` from
/// `f` (or, impossibly, no run at all) sends the event to the fallback formatter.
fn with_line_buf(
    f: impl FnOnce(&mut LineBuf) -> Option<std::fmt::Result>,
) -> Option<std::fmt::Result> {
    let mut f = Some(f);
    let reused = JSON_LINE.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        f.take().and_then(|f| f(&mut buf))
    });
    match (reused, f) {
        (Ok(Some(r)), _) => Some(r),
        (_, Some(f)) => f(&mut LineBuf::new()),
        (_, None) => None,
    }
}

/// Appends `timestamp` as `tracing_subscriber` writes it (`2026-12-07T20:04:58.123456Z`),
/// reusing the cached whole-second part when the second is the same. `false` when the
/// instant is outside 1970-9999 (the caller then falls back).
fn push_timestamp(buf: &mut LineBuf, t: std::time::SystemTime) -> bool {
    let Ok(since) = t.duration_since(std::time::UNIX_EPOCH) else {
        return false;
    };
    let secs = since.as_secs();
    if buf.second != secs {
        let Some(whole) = saml::format_instant(t) else {
            return false;
        };
        let Some(head) = whole.as_bytes().get(..19) else {
            return false;
        };
        buf.head.copy_from_slice(head);
        buf.second = secs;
    }
    buf.line.extend_from_slice(&buf.head);
    let mut micros = *b".000000Z";
    let mut v = since.subsec_micros();
    for digit in micros[1..7].iter_mut().rev() {
        *digit = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf.line.extend_from_slice(&micros);
    true
}

/// Writes an event's fields as JSON members (`,"name":value`), as `tracing_serde`'s map
/// visitor serializes them: strings, integers, floats and booleans as themselves, anything
/// else (`%` and `?` values, messages) as the string of its `Debug` form.
struct JsonFields<'a>(&'a mut Vec<u8>);

impl JsonFields<'_> {
    fn member<T: serde::Serialize + ?Sized>(&mut self, field: &tracing::field::Field, value: &T) {
        self.0.push(b',');
        // Writing into a `Vec` cannot fail; a value that could not be serialized would leave
        // the line as far as it got, and the line stays one object either way.
        let _ = serde_json::to_writer(&mut *self.0, field.name());
        self.0.push(b':');
        let _ = serde_json::to_writer(&mut *self.0, value);
    }
}

impl tracing::field::Visit for JsonFields<'_> {
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.member(field, &value);
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.member(field, &value);
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.member(field, &value);
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.member(field, &value);
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.member(field, value);
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.member(field, &format_args!("{value:?}"));
    }
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLine<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let written = with_line_buf(|buf| {
            buf.line.clear();
            buf.line.extend_from_slice(b"{\"timestamp\":\"");
            if !push_timestamp(buf, crate::leaf::clock::system()) {
                return None;
            }
            let line = &mut buf.line;
            line.extend_from_slice(b"\",\"level\":\"");
            line.extend_from_slice(event.metadata().level().as_str().as_bytes());
            line.push(b'"');
            event.record(&mut JsonFields(line));
            with_current_request_id(|id| {
                line.extend_from_slice(b",\"span\":{\"request_id\":");
                let _ = serde_json::to_writer(&mut *line, id);
                line.extend_from_slice(b",\"name\":\"request\"}");
            });
            line.extend_from_slice(b"}\n");
            Some(
                std::str::from_utf8(line)
                    .map_err(|_| std::fmt::Error)
                    .and_then(|text| writer.write_str(text)),
            )
        });
        match written {
            Some(result) => result,
            None => self.0.format_event(ctx, writer, event),
        }
    }
}

/// The text line of an event: time, level, inside a request `request{request_id=…}:`, then
/// the event's fields as `tracing_subscriber` writes them.
struct TextLine<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for TextLine<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::time::FormatTime as _;
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut writer)?;
        write!(writer, " {:>5} ", event.metadata().level().as_str())?;
        if let Some(written) =
            with_current_request_id(|id| write!(writer, "request{{request_id={id}}}: "))
        {
            written?;
        }
        self.0.format_event(ctx, writer, event)
    }
}

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// A request's correlation id, kept as the `X-Request-Id` value it is sent in: the answer
/// takes it back from the request's scope ([`with_request_id`]) instead of copying it into a
/// new header value (issue 20: an allocation and a check per `/auth` answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// `id` if it is a valid request id ([`valid_request_id`]).
    pub fn parse(id: &str) -> Option<RequestId> {
        if !valid_request_id(id) {
            return None;
        }
        HeaderValue::from_str(id).ok().map(RequestId)
    }

    /// The id as text: only [`valid_request_id`] text (or `-`) is ever made one.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("-")
    }

    /// The header value, without a copy.
    pub fn into_header_value(self) -> HeaderValue {
        self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of the request being handled by this task, if any.
pub fn request_id() -> Option<RequestId> {
    REQUEST_ID.try_with(RequestId::clone).ok()
}

/// Runs `f` with the id of the request being handled by this task, if any, without a copy.
fn with_current_request_id<R>(f: impl FnOnce(&str) -> R) -> Option<R> {
    REQUEST_ID.try_with(|id| f(id.as_str())).ok()
}

/// Runs `f` with `id` as the current request id ([`request_id`]); gives the id back with
/// `f`'s output. `f` is pinned in place by the caller's future and only a reference to it is
/// moved into the scope (issue 20: moving `/auth`'s future into the scope was a copy of it
/// per answer).
pub async fn with_request_id<F: Future>(id: RequestId, f: F) -> (F::Output, RequestId) {
    let f = std::pin::pin!(f);
    let mut scoped = std::pin::pin!(REQUEST_ID.scope(id, f));
    let out = scoped.as_mut().await;
    // The scope ended with `f`: its value is still there, `-` only if tokio kept it.
    let id = scoped
        .take_value()
        .unwrap_or_else(|| RequestId(HeaderValue::from_static("-")));
    (out, id)
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
pub fn new_request_id(rng: &SystemRandom) -> RequestId {
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
            HeaderValue::from_bytes(&digits).ok().map(RequestId)
        })
        .unwrap_or_else(|| RequestId(HeaderValue::from_static("-")))
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
        assert_eq!(fresh.as_str().len(), 16);
        assert!(valid_request_id(fresh.as_str()));
        assert_eq!(
            fresh.clone().into_header_value().as_bytes(),
            fresh.as_str().as_bytes()
        );
        // Across refills of the per-thread reserve, no id repeats.
        let ids: std::collections::HashSet<_> = (0..3 * ID_RESERVE / ID_BYTES)
            .map(|_| new_request_id(&rng).as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 3 * ID_RESERVE / ID_BYTES);
        assert!(!ids.contains(fresh.as_str()));
    }

    /// A writer into a shared buffer, for the subscriber under test.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(str::to_owned).collect()
        }
    }

    async fn three_events() {
        tracing::info!(event = "before", n = 1);
        with_request_id(RequestId::parse("req-1.a_B").unwrap(), async {
            tracing::warn!(event = "inside", detail = %"a \"quoted\"\nline}", n = 2);
        })
        .await;
        tracing::info!(event = "after", request_id = "req-1.a_B");
    }

    /// One event with every kind of value the broker logs, and strings that need escaping.
    fn the_request_event() {
        let addr: std::net::SocketAddr = "127.0.0.1:8443".parse().unwrap();
        tracing::info!(
            event = "request",
            method = "POST",
            path = "/saml/acs",
            status = 303u64,
            delta = -7i64,
            ms = 0.125f64,
            nan = f64::NAN,
            big = 1e300f64,
            ok = true,
            peer = %addr,
            debug = ?("tab\t", '"', Some(1)),
            controls = "\u{0}\u{1}\u{8}\u{c}\r\n\t\u{1f}\u{7f} \\ / é 😀",
        );
    }

    /// Every kind of value the broker logs, and strings that need escaping.
    async fn every_kind_of_value() {
        with_request_id(RequestId::parse("0123456789abcdef").unwrap(), async {
            the_request_event()
        })
        .await;
        tracing::error!(event = "plain", "a message with {} and \"quotes\"", 42);
        tracing::debug!(event = "hidden", "below the level: not written");
    }

    /// The line with its timestamp's value replaced by `T`, checked to be `tracing`'s
    /// RFC 3339 form with microseconds.
    fn with_timestamp_checked(line: &str) -> String {
        let rest = line.strip_prefix("{\"timestamp\":\"").unwrap();
        let (ts, rest) = rest.split_at(27);
        for (i, c) in ts.bytes().enumerate() {
            match i {
                4 | 7 => assert_eq!(c, b'-', "{ts}"),
                10 => assert_eq!(c, b'T', "{ts}"),
                13 | 16 => assert_eq!(c, b':', "{ts}"),
                19 => assert_eq!(c, b'.', "{ts}"),
                26 => assert_eq!(c, b'Z', "{ts}"),
                _ => assert!(c.is_ascii_digit(), "{ts}"),
            }
        }
        format!("{{\"timestamp\":\"T{rest}")
    }

    fn without_timestamp(line: &str) -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["timestamp"].is_string(), "{line}");
        v.as_object_mut().unwrap().remove("timestamp");
        v
    }

    /// The former subscriber: `tracing_subscriber`'s JSON formatter with a real `request`
    /// span, writing to `sink`.
    fn former_json(sink: Captured) -> impl tracing::Subscriber + Send + Sync {
        tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_max_level(Level::INFO)
            .with_ansi(false)
            .with_target(false)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .finish()
    }

    /// The events of `three_events` with the scope as a real `request` span (for
    /// [`former_json`]).
    async fn three_events_in_a_span() {
        use tracing::Instrument as _;
        tracing::info!(event = "before", n = 1);
        let span = tracing::info_span!("request", request_id = %"req-1.a_B");
        async {
            tracing::warn!(event = "inside", detail = %"a \"quoted\"\nline}", n = 2);
        }
        .instrument(span)
        .await;
        tracing::info!(event = "after", request_id = "req-1.a_B");
    }

    /// The request scope is written by the formatter from the task-local id, as the
    /// `request` span was (issue 20): the JSON lines are those the span produced, member for
    /// member and in the same order, and text lines name the scope the same way.
    #[tokio::test]
    async fn lines_in_a_request_carry_its_scope_as_the_request_span_did() {
        let now = Captured::default();
        let sink = now.clone();
        let _guard =
            tracing::subscriber::set_default(subscriber(LogConfig::default(), move || {
                sink.clone()
            }));
        three_events().await;
        drop(_guard);

        // The lines of the former subscriber, with a real `request` span.
        let before = Captured::default();
        {
            let _guard = tracing::subscriber::set_default(former_json(before.clone()));
            three_events_in_a_span().await;
        }

        let (now, before) = (now.lines(), before.lines());
        assert_eq!(now.len(), 3);
        assert_eq!(before.len(), 3);
        for (a, b) in now.iter().zip(&before) {
            // Same members, same values, same order (serde_json keeps the order).
            let (a, b) = (without_timestamp(a), without_timestamp(b));
            assert_eq!(a, b);
            let keys =
                |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&a), keys(&b));
        }
        let inside = without_timestamp(&now[1]);
        assert_eq!(inside["span"]["request_id"], "req-1.a_B");
        assert_eq!(inside["span"]["name"], "request");
        assert_eq!(inside["detail"], "a \"quoted\"\nline}");
        assert_eq!(inside["level"], "WARN");
        assert!(without_timestamp(&now[0]).get("span").is_none());
        assert!(without_timestamp(&now[2]).get("span").is_none());

        let text = Captured::default();
        let sink = text.clone();
        let config = LogConfig::parse("text", "info").unwrap();
        let _guard = tracing::subscriber::set_default(subscriber(config, move || sink.clone()));
        three_events().await;
        let lines = text.lines();
        assert_eq!(lines.len(), 4, "{lines:?}"); // the quoted newline is written as is in text
        assert!(lines[0].contains(" INFO event=\"before\" n=1"), "{lines:?}");
        assert!(
            lines[1].contains(" WARN request{request_id=req-1.a_B}: event=\"inside\""),
            "{lines:?}"
        );
        assert!(!lines[3].contains("request{"), "{lines:?}");
    }

    /// The JSON lines are byte for byte those of `tracing_subscriber`'s JSON formatter with a
    /// `request` span (the timestamp's value aside, checked for its form), for every kind of
    /// value, escapes included (issue 20: the lines are now written here).
    #[tokio::test]
    async fn json_lines_are_byte_for_byte_those_of_tracing_subscriber() {
        let now = Captured::default();
        let sink = now.clone();
        let _guard =
            tracing::subscriber::set_default(subscriber(LogConfig::default(), move || {
                sink.clone()
            }));
        every_kind_of_value().await;
        three_events().await;
        drop(_guard);

        let before = Captured::default();
        {
            use tracing::Instrument as _;
            let _guard = tracing::subscriber::set_default(former_json(before.clone()));
            let span = tracing::info_span!("request", request_id = %"0123456789abcdef");
            async { the_request_event() }.instrument(span).await;
            tracing::error!(event = "plain", "a message with {} and \"quotes\"", 42);
            tracing::debug!(event = "hidden", "below the level: not written");
            three_events_in_a_span().await;
        }
        let (now, before) = (now.lines(), before.lines());
        // The quoted newline is escaped: one line per event, the debug one not written.
        assert_eq!(now.len(), 5, "{now:?}");
        assert_eq!(before.len(), 5, "{before:?}");
        for (a, b) in now.iter().zip(&before) {
            assert_eq!(with_timestamp_checked(a), with_timestamp_checked(b));
        }
        assert!(
            now[0].contains(r#""controls":"\u0000\u0001\b\f\r\n\t\u001f"#),
            "{}",
            now[0]
        );
        assert!(
            now[0].contains(r#""nan":null,"big":1e+300,"ok":true"#),
            "{}",
            now[0]
        );
    }

    /// A timestamp whose second was cached is written with the same whole-second part as
    /// one computed afresh; before 1970 the line goes to the fallback formatter.
    #[test]
    fn cached_seconds_write_the_same_timestamp() {
        use std::time::{Duration, UNIX_EPOCH};
        let mut buf = LineBuf::new();
        let t = UNIX_EPOCH + Duration::new(1_765_137_898, 123_456_789);
        assert!(push_timestamp(&mut buf, t));
        assert!(push_timestamp(&mut buf, t + Duration::from_micros(876_000)));
        assert!(push_timestamp(
            &mut buf,
            t + Duration::from_secs(86_400 * 400 + 1)
        ));
        assert_eq!(
            String::from_utf8(buf.line).unwrap(),
            "2025-12-07T20:04:58.123456Z2025-12-07T20:04:58.999456Z2027-01-11T20:04:59.123456Z"
        );
        let mut buf = LineBuf::new();
        assert!(!push_timestamp(
            &mut buf,
            UNIX_EPOCH - Duration::from_secs(1)
        ));
    }

    #[tokio::test]
    async fn the_request_id_is_visible_inside_its_scope_only() {
        assert!(request_id().is_none());
        let id = RequestId::parse("r1").unwrap();
        let (seen, back) = with_request_id(id.clone(), async { request_id() }).await;
        assert_eq!(seen, Some(id.clone()));
        assert_eq!(back, id);
        assert_eq!(back.as_str(), "r1");
        assert!(request_id().is_none());
        assert!(RequestId::parse("r 1").is_none());
        assert!(RequestId::parse("").is_none());
    }
}
