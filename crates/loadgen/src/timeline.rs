//! When do slow logins happen? (`--timeline`, issue 20 target 2.) Every login of the measured
//! phase keeps its due time, latency, the harness's own lateness and the request id Varco
//! answered with (`X-Request-Id`); at the end the slow ones are printed as a timeline, in
//! clusters, beside what else happened at those moments:
//!
//! - Varco's own time for each slow login: the `latency_ms` of its `request` log line (found
//!   by the request id), from the request's head read to the answer built, which includes
//!   the wait for the heavy pool and for the audit record's sync;
//! - Varco's other log events in the window (an audit file closed, a heavy job refused…);
//! - the probe's late wake-ups and steal (`probe.rs`), with `--probe`.
//!
//! Times are milliseconds from the measured phase's start.

use std::collections::HashMap;

use crate::probe::Seen;

/// One login of the measured phase.
pub(crate) struct Login {
    /// Due time (open loop) or send time (closed loop), µs from the phase's start.
    pub(crate) due_us: u64,
    /// From due time to the answer read, µs (failed logins too: to the refusal).
    pub(crate) latency_us: u64,
    /// The harness's lateness (due → taken by a worker), µs; 0 in a closed loop.
    pub(crate) late_us: u64,
    pub(crate) ok: bool,
    /// Varco's `X-Request-Id` of the answer.
    pub(crate) request_id: Option<Box<str>>,
}

/// A login at least this slow is printed.
pub(crate) const SLOW_US: u64 = 5_000;
/// Slow logins whose due times are closer than this fall in one cluster.
const CLUSTER_US: u64 = 50_000;

/// Unix microseconds of an RFC 3339 UTC timestamp as `tracing_subscriber` prints it
/// (`2026-12-07T17:05:03.123456Z`).
fn unix_us(ts: &str) -> Option<u64> {
    let b = ts.as_bytes();
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from 1970-01-01 to y-m-d (proleptic Gregorian).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut us = (days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000;
    if b.get(19) == Some(&b'.') {
        let frac: String = ts[20..].chars().take_while(char::is_ascii_digit).collect();
        let digits = frac.len().min(6);
        if digits > 0 {
            let v: i64 = frac[..digits].parse().ok()?;
            us += v * 10i64.pow(6 - digits as u32);
        }
    }
    u64::try_from(us).ok()
}

/// The string value of `"key":"…"` in a JSON log line (no escapes in the values read here).
fn json_str<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let at = line.find(&pat)? + pat.len();
    let rest = &line[at..];
    Some(&rest[..rest.find('"')?])
}

/// The number value of `"key":…` in a JSON log line.
fn json_num(line: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let at = line.find(&pat)? + pat.len();
    let rest = &line[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// Varco's log, read for the timeline: each request's own time, and the other events.
struct VarcoLog {
    /// Request id → `latency_ms`.
    handler_ms: HashMap<String, f64>,
    /// Other events: (µs from start, event name).
    events: Vec<(u64, String)>,
}

fn read_log(log: &str, start_unix_us: u64, end_us: u64) -> VarcoLog {
    let mut handler_ms = HashMap::new();
    let mut events = Vec::new();
    for line in log.lines() {
        let Some(event) = json_str(line, "event") else {
            continue;
        };
        match event {
            "request" => {
                if let (Some(id), Some(ms)) =
                    (json_str(line, "request_id"), json_num(line, "latency_ms"))
                {
                    handler_ms.insert(id.to_owned(), ms);
                }
            }
            "login_completed" => {}
            other => {
                let Some(at) = json_str(line, "timestamp").and_then(unix_us) else {
                    continue;
                };
                let Some(t) = at.checked_sub(start_unix_us) else {
                    continue;
                };
                if t <= end_us {
                    events.push((t, other.to_owned()));
                }
            }
        }
    }
    VarcoLog { handler_ms, events }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Prints the timeline of the slow logins (see the module documentation).
pub(crate) fn print(logins: &mut [Login], start_unix_us: u64, log: &str, probe: Option<&Seen>) {
    logins.sort_by_key(|l| l.due_us);
    let end_us = logins
        .iter()
        .map(|l| l.due_us + l.latency_us)
        .max()
        .unwrap_or(0);
    let varco = read_log(log, start_unix_us, end_us);
    let handler = |l: &Login| {
        l.request_id
            .as_deref()
            .and_then(|id| varco.handler_ms.get(id).copied())
    };
    let slow: Vec<&Login> = logins
        .iter()
        .filter(|l| l.latency_us >= SLOW_US || !l.ok)
        .collect();
    // (µs, line) of everything, sorted at the end.
    let mut lines: Vec<(u64, String)> = Vec::new();
    let mut cluster: Vec<&Login> = Vec::new();
    let flush = |c: &mut Vec<&Login>, lines: &mut Vec<(u64, String)>| {
        let (Some(first), Some(last)) = (c.first(), c.last()) else {
            return;
        };
        let worst = c.iter().max_by_key(|l| l.latency_us).copied();
        let max_lat = worst.map_or(0, |l| l.latency_us);
        let max_late = c.iter().map(|l| l.late_us).max().unwrap_or(0);
        let handlers: Vec<f64> = c.iter().filter_map(|l| handler(l)).collect();
        let max_handler = handlers.iter().copied().fold(f64::NAN, f64::max);
        let worst_handler = worst.and_then(handler);
        let refused = c.iter().filter(|l| !l.ok).count();
        lines.push((
            first.due_us,
            format!(
                "{:9.1} ms  SLOW  {} logins due until {:.1} ms: latency max {:.1} ms (its Varco time {}), \
                 harness lateness max {:.1} ms, Varco time max {:.1} ms{}",
                ms(first.due_us),
                c.len(),
                ms(last.due_us),
                ms(max_lat),
                worst_handler.map_or("?".into(), |h| format!("{h:.1} ms")),
                ms(max_late),
                max_handler,
                if refused > 0 {
                    format!(", {refused} refused")
                } else {
                    String::new()
                }
            ),
        ));
        c.clear();
    };
    for l in &slow {
        if cluster
            .last()
            .is_some_and(|p| l.due_us.saturating_sub(p.due_us) > CLUSTER_US)
        {
            flush(&mut cluster, &mut lines);
        }
        cluster.push(l);
    }
    flush(&mut cluster, &mut lines);
    // Varco's events, those of one name within 10 ms counted together.
    let mut events = varco.events;
    events.sort();
    let mut i = 0;
    while i < events.len() {
        let (t, name) = events[i].clone();
        let mut j = i;
        while j < events.len() && events[j].1 == name && events[j].0 - t <= 10_000 {
            j += 1;
        }
        lines.push((t, format!("{:9.1} ms  varco {name} x{}", ms(t), j - i)));
        i = j.max(i + 1);
    }
    if let Some(p) = probe {
        for g in &p.gaps {
            lines.push((
                g.at_us,
                format!(
                    "{:9.1} ms  GAP   cpu{} woke {:.2} ms late",
                    ms(g.at_us),
                    g.cpu,
                    ms(g.late_us)
                ),
            ));
        }
        for s in &p.steal {
            lines.push((
                s.at_us,
                format!(
                    "{:9.1} ms  STEAL cpu{} {:.0} ms in the last 20 ms",
                    ms(s.at_us),
                    s.cpu,
                    ms(s.steal_us)
                ),
            ));
        }
    }
    lines.sort_by_key(|l| l.0);
    println!(
        "timeline ({} logins of {} at least {} ms or refused; times from the measured phase's start):",
        slow.len(),
        logins.len(),
        SLOW_US / 1000
    );
    for (_, l) in &lines {
        println!("  {l}");
    }
    // How much of a slow login's time was Varco's own.
    let mut own: Vec<f64> = slow
        .iter()
        .filter(|l| l.ok)
        .filter_map(|l| handler(l).map(|h| h * 1000.0 / l.latency_us.max(1) as f64))
        .collect();
    own.sort_by(f64::total_cmp);
    if !own.is_empty() {
        println!(
            "slow logins: Varco's own time (request line) / latency: median {:.0} %, min {:.0} %, max {:.0} %",
            own[own.len() / 2] * 100.0,
            own[0] * 100.0,
            own[own.len() - 1] * 100.0
        );
    }
    let mut all: Vec<f64> = logins.iter().filter_map(handler).collect();
    all.sort_by(f64::total_cmp);
    if !all.is_empty() {
        let p = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
        println!(
            "varco's own time per ACS request (log): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            p(0.5),
            p(0.99),
            p(0.999),
            p(1.0)
        );
    }
    if let Some(p) = probe {
        for (cpu, n, rt) in &p.cores {
            let gaps: Vec<&crate::probe::Gap> = p.gaps.iter().filter(|g| g.cpu == *cpu).collect();
            let max = gaps.iter().map(|g| g.late_us).max().unwrap_or(0);
            let sum: u64 = gaps.iter().map(|g| g.late_us).sum();
            println!(
                "probe cpu{cpu}: {n} wake-ups{}, {} late by over 1 ms (max {:.2} ms, {:.1} ms in all); steal over the run {:.0} ms",
                if *rt {
                    " (SCHED_FIFO)"
                } else {
                    " (NOT real-time: no chrt)"
                },
                gaps.len(),
                ms(max),
                ms(sum),
                ms(p.steal_total_us.get(*cpu).copied().unwrap_or(0))
            );
        }
        // Gaps seen on every core within 1 ms of each other: the VM stopped.
        let ncores = p.cores.len();
        let together = p
            .gaps
            .iter()
            .filter(|g| {
                (0..ncores).all(|c| {
                    p.gaps
                        .iter()
                        .any(|o| o.cpu == c && o.at_us.abs_diff(g.at_us) <= 1_000)
                })
            })
            .count();
        println!("probe: {together} gaps with a gap on every core within 1 ms");
        for (what, some, full) in &p.pressure {
            println!(
                "pressure {what}: some {:.1} ms, full {:.1} ms over the run",
                ms(*some),
                ms(*full)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps_read_as_unix_microseconds() {
        assert_eq!(unix_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_us("1970-01-02T00:00:01.5Z"), Some(86_401_500_000));
        // date -u -d 2026-12-07T17:05:03Z +%s → 1796663103
        assert_eq!(
            unix_us("2026-12-07T17:05:03.123456789Z"),
            Some(1_796_663_103_123_456)
        );
        assert_eq!(unix_us("yesterday"), None);
    }

    #[test]
    fn log_fields_are_read() {
        let l = r#"{"timestamp":"2026-12-07T17:05:03.000001Z","level":"INFO","event":"request","request_id":"abc","latency_ms":1.25,"status":303}"#;
        assert_eq!(json_str(l, "event"), Some("request"));
        assert_eq!(json_str(l, "request_id"), Some("abc"));
        assert_eq!(json_num(l, "latency_ms"), Some(1.25));
        assert_eq!(json_num(l, "status"), Some(303.0));
        let v = read_log(l, 1_796_663_103_000_000, 10);
        assert_eq!(v.handler_ms.get("abc"), Some(&1.25));
    }
}
