//! `get`: an open loop of one plain HTTP/1.1 GET, for the latency an operator sees at a stated
//! load (`scripts/load-auth.sh`'s open-loop step, issue 20, target 5).
//!
//! A closed loop at saturation (wrk) measures how long a request waits behind the others it
//! keeps queued: its p99 is the generator's queue as much as the server's. Here request `i` is
//! due at `start + i / rate` whatever the server did with the earlier ones, and its latency
//! counts from that due time (no coordinated omission): a request that finds every
//! connection busy waits in the generator's backlog, and that wait is charged to the server.
//!
//! The generator is meant to have a core of its own (`taskset -c 0`) and to cost little per
//! request, so that at tens of thousands of requests a second its own delays stay out of the
//! figures: one thread (tokio's current-thread runtime), the request's bytes built once,
//! answers read by hand (the status, `Content-Length`, nothing else). Between due times the
//! dispatcher spins (it yields to the runtime, which polls the sockets each turn) instead of
//! sleeping on tokio's timer, whose whole-millisecond wheel would send every request up to a
//! millisecond late. How late it was anyway is printed: `generator lateness` is from a
//! request's due time to the moment the dispatcher put it in the backlog; a request that then
//! waited for a free connection is counted apart.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// What to send, how often, for how long.
pub(crate) struct GetOptions {
    /// `HOST:PORT`.
    pub(crate) host: String,
    /// The request target (path and query).
    pub(crate) path: String,
    /// Extra header lines, `Name: value`.
    pub(crate) headers: Vec<String>,
    pub(crate) rate: f64,
    pub(crate) duration: f64,
    pub(crate) connections: usize,
}

/// The most an answer's head and body may take (an answer larger is an error).
const MAX_ANSWER: usize = 1 << 20;

/// The request's bytes: `GET`, `Host`, the given headers; keep-alive (HTTP/1.1's default).
pub(crate) fn request_bytes(o: &GetOptions) -> Result<Vec<u8>, String> {
    let mut r = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", o.path, o.host);
    for h in &o.headers {
        let (name, value) = h
            .split_once(':')
            .filter(|(n, _)| !n.trim().is_empty())
            .ok_or_else(|| format!("--header {h:?}: Name: value"))?;
        if h.contains(['\r', '\n']) {
            return Err(format!("--header {h:?}: one line"));
        }
        r.push_str(&format!("{}: {}\r\n", name.trim(), value.trim()));
    }
    r.push_str("\r\n");
    Ok(r.into_bytes())
}

/// One whole answer at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// More bytes are needed.
    Partial,
    /// The status, the answer's length in bytes (head and body), and whether the server
    /// closes the connection after it (`Connection: close`: nginx does after 1,000 answers).
    Whole {
        status: u16,
        len: usize,
        close: bool,
    },
}

/// Reads the answer at the start of `buf`: its status line and `Content-Length` (a body
/// without one, or chunked, is not supported: none of the servers measured sends one to a
/// GET it answers in full).
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed, String> {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_ANSWER {
            Err("answer head too long".into())
        } else {
            Ok(Parsed::Partial)
        };
    };
    let head = &buf[..end];
    let mut lines = head.split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix(b"HTTP/1.0 "))
        .and_then(|s| s.get(..3))
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("not an HTTP/1 status line")?;
    let mut length = None;
    let mut close = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("bad Content-Length")?;
            length = Some(v);
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err("chunked answers are not read".into());
        }
    }
    let body = match (status, length) {
        (100..=199 | 204 | 304, _) => 0,
        (_, Some(n)) => n,
        (_, None) => return Err("answer without Content-Length".into()),
    };
    let len = end + 4 + body;
    if len > MAX_ANSWER {
        return Err("answer too long".into());
    }
    Ok(if buf.len() >= len {
        Parsed::Whole { status, len, close }
    } else {
        Parsed::Partial
    })
}

/// One connection's keep-alive stream and what it has read past the last answer.
struct Connection {
    host: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    filled: usize,
}

impl Connection {
    async fn open(host: &str) -> Connection {
        let mut c = Connection {
            host: host.to_owned(),
            stream: None,
            buf: vec![0; 16 * 1024],
            filled: 0,
        };
        // A failure here is the first request's error.
        let _ = c.stream().await;
        c
    }

    async fn stream(&mut self) -> Result<&mut TcpStream, String> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.host)
                .await
                .map_err(|e| format!("connect: {}", e.kind()))?;
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
            self.filled = 0;
        }
        self.stream.as_mut().ok_or_else(|| "no connection".into())
    }

    /// Sends `request` and reads its answer: the status.
    async fn exchange(&mut self, request: &[u8]) -> Result<u16, String> {
        let outcome = self.try_exchange(request).await;
        if outcome.is_err() {
            // Whatever is left on it belongs to the failed exchange.
            self.stream = None;
        }
        outcome
    }

    async fn try_exchange(&mut self, request: &[u8]) -> Result<u16, String> {
        self.stream().await?;
        let Connection {
            stream,
            buf,
            filled,
            ..
        } = self;
        let stream = stream.as_mut().ok_or("no connection")?;
        stream
            .write_all(request)
            .await
            .map_err(|e| format!("write: {}", e.kind()))?;
        loop {
            if let Parsed::Whole { status, len, close } = parse(&buf[..*filled])? {
                buf.copy_within(len..*filled, 0);
                *filled -= len;
                if close {
                    // The next request goes on a new connection.
                    self.stream = None;
                }
                return Ok(status);
            }
            if *filled == buf.len() {
                buf.resize((buf.len() * 2).min(MAX_ANSWER + 1), 0);
            }
            let n = stream
                .read(&mut buf[*filled..])
                .await
                .map_err(|e| format!("read: {}", e.kind()))?;
            if n == 0 {
                return Err("closed by the server".into());
            }
            *filled += n;
        }
    }
}

/// Due requests not yet taken by a connection, and the end of the run.
struct Shared {
    /// `(due, dispatched)` of each waiting request.
    backlog: RefCell<VecDeque<(Instant, Instant)>>,
    ready: Notify,
    done: Cell<bool>,
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    /// Due time to whole answer, in nanoseconds, answers with a 2xx status.
    latency_ns: Vec<u64>,
    /// Due time to dispatched (the generator's own delay), every request.
    late_ns: Vec<u64>,
    /// `(due since the start, latency)` in nanoseconds of the answers slower than [`SLOW`].
    slow: Vec<(u64, u64)>,
    /// Requests that waited in the backlog for a free connection for more than 50 µs.
    queued: u64,
    queued_max: Duration,
    errors: BTreeMap<String, u64>,
}

/// An answer this slow is listed in the slow answers' bursts.
const SLOW: Duration = Duration::from_millis(1);

/// Slow answers whose due times are closer than this belong to one burst.
const BURST_GAP: Duration = Duration::from_millis(5);

async fn serve(
    shared: Rc<Shared>,
    start: Instant,
    mut c: Connection,
    request: Rc<[u8]>,
    mut t: Tally,
) -> Tally {
    loop {
        let job = shared.backlog.borrow_mut().pop_front();
        let Some((due, dispatched)) = job else {
            if shared.done.get() {
                return t;
            }
            shared.ready.notified().await;
            continue;
        };
        let taken = Instant::now();
        t.late_ns
            .push(dur_ns(dispatched.saturating_duration_since(due)));
        let waited = taken.saturating_duration_since(dispatched);
        if waited > Duration::from_micros(50) {
            t.queued += 1;
            t.queued_max = t.queued_max.max(waited);
        }
        match c.exchange(&request).await {
            Ok(status) if (200..300).contains(&status) => {
                let latency = due.elapsed();
                t.latency_ns.push(dur_ns(latency));
                if latency >= SLOW {
                    t.slow.push((
                        dur_ns(due.saturating_duration_since(start)),
                        dur_ns(latency),
                    ));
                }
            }
            Ok(status) => *t.errors.entry(format!("status {status}")).or_default() += 1,
            Err(e) => *t.errors.entry(e).or_default() += 1,
        }
    }
}

fn dur_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The value at quantile `q` of sorted nanoseconds, in milliseconds.
pub(crate) fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // The smallest value with at least a share `q` of the samples at or below it.
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6
}

/// The slow answers grouped in bursts (due times less than [`BURST_GAP`] apart): how many,
/// how often a burst begins, and the longest, so a periodic stall (a timer, a flush, the VM's
/// CPU quota) shows as its period.
pub(crate) fn bursts(slow: &mut [(u64, u64)]) -> String {
    slow.sort_unstable();
    let gap = dur_ns(BURST_GAP);
    // (first due, last due, answers, worst latency) of each burst.
    let mut runs: Vec<(u64, u64, usize, u64)> = Vec::new();
    for &(due, latency) in slow.iter() {
        match runs.last_mut() {
            Some(r) if due.saturating_sub(r.1) < gap => {
                r.1 = due;
                r.2 += 1;
                r.3 = r.3.max(latency);
            }
            _ => runs.push((due, due, 1, latency)),
        }
    }
    if runs.is_empty() {
        return format!("slow answers (≥ {} ms): none", SLOW.as_millis());
    }
    let mut every: Vec<u64> = runs.windows(2).map(|w| w[1].0 - w[0].0).collect();
    every.sort_unstable();
    let worst = runs.iter().max_by_key(|r| r.3).copied().unwrap_or_default();
    format!(
        "slow answers (≥ {} ms): {} in {} bursts; a burst begins every {:.1} ms (median, p10 {:.1}, p90 {:.1}); the worst at t = {:.3} s: {} answers, up to {:.3} ms",
        SLOW.as_millis(),
        slow.len(),
        runs.len(),
        quantile_ms(&every, 0.5),
        quantile_ms(&every, 0.1),
        quantile_ms(&every, 0.9),
        worst.0 as f64 / 1e9,
        worst.2,
        worst.3 as f64 / 1e6,
    )
}

fn line(label: &str, sorted: &[u64]) -> String {
    format!(
        "{label}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        quantile_ms(sorted, 0.50),
        quantile_ms(sorted, 0.90),
        quantile_ms(sorted, 0.99),
        quantile_ms(sorted, 0.999),
        quantile_ms(sorted, 1.0),
    )
}

/// Runs the open loop on a current-thread runtime of its own; true when every request was
/// answered with a 2xx status.
pub(crate) fn run(o: &GetOptions) -> Result<bool, String> {
    let request: Rc<[u8]> = request_bytes(o)?.into();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let shared = Rc::new(Shared {
            backlog: RefCell::new(VecDeque::new()),
            ready: Notify::new(),
            done: Cell::new(false),
        });
        let total = (o.rate * o.duration).round().max(1.0) as usize;
        let per = total / o.connections.max(1) + 1;
        let mut handles = Vec::new();
        let mut opened = Vec::new();
        for _ in 0..o.connections.max(1) {
            // Every connection open before the clock starts, as a proxy's keep-alive pool.
            let c = Connection::open(&o.host).await;
            let t = Tally {
                latency_ns: Vec::with_capacity(per),
                late_ns: Vec::with_capacity(per),
                ..Tally::default()
            };
            opened.push((c, t));
        }
        let cpu0 = crate::stack::cpu_time(std::process::id());
        let start = Instant::now();
        for (c, t) in opened {
            handles.push(tokio::task::spawn_local(serve(
                shared.clone(),
                start,
                c,
                request.clone(),
                t,
            )));
        }
        let due = |i: usize| start + Duration::from_secs_f64(i as f64 / o.rate);
        let mut i = 0;
        while i < total {
            let now = Instant::now();
            let mut added = 0;
            {
                let mut backlog = shared.backlog.borrow_mut();
                while i < total {
                    let at = due(i);
                    if at > now {
                        break;
                    }
                    backlog.push_back((at, now));
                    i += 1;
                    added += 1;
                }
            }
            for _ in 0..added {
                shared.ready.notify_one();
            }
            let wait = due(i.min(total)).saturating_duration_since(Instant::now());
            if wait > Duration::from_millis(3) {
                tokio::time::sleep(wait - Duration::from_millis(2)).await;
            } else {
                // Back after the runtime has polled the sockets once (tokio defers a yield
                // until then): answers are read between due times.
                tokio::task::yield_now().await;
            }
        }
        let sent_in = start.elapsed();
        shared.done.set(true);
        shared.ready.notify_waiters();
        let mut all = Tally::default();
        for h in handles {
            match h.await {
                Ok(t) => {
                    all.latency_ns.extend(t.latency_ns);
                    all.late_ns.extend(t.late_ns);
                    all.slow.extend(t.slow);
                    all.queued += t.queued;
                    all.queued_max = all.queued_max.max(t.queued_max);
                    for (e, n) in t.errors {
                        *all.errors.entry(e).or_default() += n;
                    }
                }
                Err(e) => *all.errors.entry(format!("connection task: {e}")).or_default() += 1,
            }
        }
        let wall = start.elapsed();
        let cpu = crate::stack::cpu_time(std::process::id())
            .zip(cpu0)
            .map(|(a, b)| a.saturating_sub(b));
        let errors: u64 = all.errors.values().sum();
        println!(
            "get http://{}{}: open loop at {:.0}/s for {:.1} s over {} connections: {} sent in {:.2} s ({:.0}/s), {} answered 2xx, {} errors",
            o.host,
            o.path,
            o.rate,
            o.duration,
            o.connections,
            total,
            sent_in.as_secs_f64(),
            total as f64 / sent_in.as_secs_f64(),
            all.latency_ns.len(),
            errors,
        );
        all.latency_ns.sort_unstable();
        all.late_ns.sort_unstable();
        println!("{}", line("latency from due time", &all.latency_ns));
        println!("{}", line("generator lateness (due → dispatched)", &all.late_ns));
        println!("{}", bursts(&mut all.slow));
        println!(
            "waited for a free connection over 50 µs: {} of {} requests ({:.3} %), longest {:.3} ms",
            all.queued,
            total,
            all.queued as f64 * 100.0 / total as f64,
            all.queued_max.as_secs_f64() * 1e3
        );
        if let Some(cpu) = cpu {
            // It spins between due times, so this is how busy its core was, not a cost.
            println!(
                "generator CPU: {:.0} % of a core over {:.2} s (it spins between due times)",
                cpu.as_secs_f64() * 100.0 / wall.as_secs_f64(),
                wall.as_secs_f64(),
            );
        }
        for (e, n) in &all.errors {
            println!("error x{n}: {e}");
        }
        Ok(errors == 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_whole_with_its_body_and_not_before() {
        let a = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx: y\r\n\r\nabc";
        for cut in 0..a.len() {
            assert_eq!(parse(&a[..cut]), Ok(Parsed::Partial), "cut at {cut}");
        }
        assert_eq!(
            parse(a),
            Ok(Parsed::Whole {
                status: 200,
                len: a.len(),
                close: false
            })
        );
        // The next answer's bytes are not this one's.
        let mut two = a.to_vec();
        two.extend_from_slice(b"HTTP/1.1 204");
        assert_eq!(
            parse(&two),
            Ok(Parsed::Whole {
                status: 200,
                len: a.len(),
                close: false
            })
        );
    }

    #[test]
    fn a_204_has_no_body_and_other_answers_need_a_length() {
        let a = b"HTTP/1.1 204 No Content\r\nServer: nginx\r\n\r\n";
        assert_eq!(
            parse(a),
            Ok(Parsed::Whole {
                status: 204,
                len: a.len(),
                close: false
            })
        );
        let last = b"HTTP/1.1 204 No Content\r\nConnection: keep-alive, Close\r\n\r\n";
        assert_eq!(
            parse(last),
            Ok(Parsed::Whole {
                status: 204,
                len: last.len(),
                close: true
            })
        );
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse(b"SSH-2.0\r\n\r\n").is_err());
        assert_eq!(
            parse(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"),
            Ok(Parsed::Whole {
                status: 401,
                len: 48,
                close: false
            })
        );
    }

    #[test]
    fn the_request_carries_the_host_and_the_given_headers() {
        let o = GetOptions {
            host: "127.0.0.1:8080".into(),
            path: "/auth".into(),
            headers: vec!["Cookie: a=b; c=d".into(), "X-Original-URI:/p".into()],
            rate: 1.0,
            duration: 1.0,
            connections: 1,
        };
        assert_eq!(
            request_bytes(&o).unwrap(),
            b"GET /auth HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nCookie: a=b; c=d\r\nX-Original-URI: /p\r\n\r\n"
        );
        let bad = GetOptions {
            headers: vec!["no colon".into()],
            ..o
        };
        assert!(request_bytes(&bad).is_err());
    }

    #[test]
    fn slow_answers_close_together_are_one_burst() {
        let ms = 1_000_000;
        assert!(bursts(&mut []).ends_with("none"));
        // Bursts at 0, 100 and 200 ms; the one at 100 ms has three answers 2 ms apart.
        let mut slow = vec![
            (200 * ms, 2 * ms),
            (0, 3 * ms),
            (100 * ms, 2 * ms),
            (102 * ms, 9 * ms),
            (104 * ms, 2 * ms),
        ];
        let b = bursts(&mut slow);
        assert!(b.contains("5 in 3 bursts"), "{b}");
        assert!(b.contains("every 100.0 ms"), "{b}");
        assert!(b.contains("t = 0.100 s: 3 answers, up to 9.000 ms"), "{b}");
    }

    #[test]
    fn quantiles_are_of_the_samples() {
        let v: Vec<u64> = (1..=1000).map(|i| i * 1_000_000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 500.0);
        assert_eq!(quantile_ms(&v, 0.99), 990.0);
        assert_eq!(quantile_ms(&v, 0.999), 999.0);
        assert_eq!(quantile_ms(&v, 1.0), 1000.0);
        assert_eq!(quantile_ms(&v[..1], 0.99), 1.0);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }
}
