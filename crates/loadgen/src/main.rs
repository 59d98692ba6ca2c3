//! # varco-loadgen: the login load generator of the performance harness
//!
//! Starts the built `varco` and `varco-dev-idp` (release by default) on loopback, with
//! durable audit and replay protection on as in production, and drives real logins over
//! HTTP. Nothing of Varco is linked in: it talks to the binaries like a browser would.
//!
//! ```text
//! varco-loadgen acs      [--n N] [--concurrency C | --rate R] [options]
//! varco-loadgen full     [--n N | --duration S] [--concurrency C | --rate R] [options]
//! varco-loadgen fixtures --n N --out DIR [options]
//! varco-loadgen fsync    [--n N] [--bytes B] [--rate R] [--per-sync K] [--prealloc] [--out DIR]
//! varco-loadgen stall    [--duration S] [--burn N]
//! varco-loadgen auth     [--n N] [--concurrency C] [options]
//! varco-loadgen satosa   --satosa-url http://HOST:PORT --satosa-pid PID [--start-path P] [--n N] [--concurrency C]
//! varco-loadgen get      --url http://HOST:PORT/PATH --rate R [--duration S] [--concurrency C] [--header 'Name: value']...
//! ```
//!
//! - `acs`: first prepares N logins, each a pending AuthnRequest started at Varco's
//!   `/saml/login` (its own login cookie) and answered by the demo IdP with its own signed
//!   Response; then posts the N Responses to `/saml/acs` and measures only that phase:
//!   logins/s, latency percentiles, Varco's CPU time per login (`/proc/<pid>/stat`) and its
//!   peak RSS (`VmHWM`). The Responses are valid for 5 minutes: keep N within that.
//! - `full`: each login is the whole round (`/saml/login`, with Varco's RSA-2048
//!   AuthnRequest signature; the IdP's page and answer; `/saml/acs`); the latency is the
//!   round's, and Varco's own share (login + ACS) is reported apart. With `--duration` it is
//!   a soak: RSS is sampled every `--sample` seconds and its growth reported.
//! - `fixtures`: prepares N Responses and writes them to DIR (`responses/NNNNN.b64`, the
//!   `SAMLResponse` values; `manifest.tsv`, one line per file with the RelayState, which is
//!   the request ID; `idp-metadata.xml`; `sp.env`), for `varco-validate-files` and
//!   `scripts/pysaml2-validate.py`.
//! - `fsync`: no stack; N rounds of B bytes (default 17,000: one audit record) appended to a
//!   file in DIR (default the temporary directory, where `--audit on` puts the chain) and
//!   `fdatasync`ed, and the distribution of the sync's latency (`fsync.rs`); `--per-sync K`
//!   syncs once per K appends, `--prealloc` writes the file's blocks with zeros first and
//!   overwrites them in place (no size or extent change for the syncs to commit).
//! - `stall`: no stack; the machine-stall probe (`probe.rs`) alone for S seconds, with N
//!   threads spinning meanwhile: does the VM stop on its own, and how much CPU does the
//!   hypervisor let it have.
//! - `auth`: one login through the ACS, then N forward-auth checks of its session (`GET
//!   /auth` as nginx's `auth_request` sends it: the cookie, `X-Original-URI`,
//!   `X-Forwarded-Host`), each answered 200 with the identity headers and the token; the
//!   first check (which opens the cookie and mints the token) is outside the measured phase.
//!   With `--callgrind` the instructions Varco executes per answer are the profile's total
//!   over N (`scripts/profile-auth.sh`): a count the machine's load does not change.
//! - `satosa`: no stack of its own; the `acs` measurement against a running SATOSA
//!   (`scripts/compare-satosa.sh` starts it, with the demo IdP): N logins prepared through
//!   SATOSA's SAML2 backend and the IdP, then their Responses posted to SATOSA's ACS, with
//!   the CPU time of SATOSA's whole process tree per POST (`satosa.rs`). `--start-path`
//!   defaults to the bench frontend's `/Saml2/bench/start`.
//! - `get`: no stack; an open loop of one plain GET (`--url`, with each `--header`) at `--rate`
//!   for `--duration` seconds (default 10) over `--concurrency` keep-alive connections (default
//!   32), on one thread: latency from each request's due time (p50 to max), the generator's own
//!   lateness, the requests that waited for a free connection, errors by kind (`get.rs`).
//!
//! Closed loop by default (`--concurrency` connections, each sending its next login as soon
//! as the previous one is answered); `--rate R` is an open loop: login i is due at
//! `start + i/R` and its latency counts from then, so a server that falls behind is charged
//! for the wait (no coordinated omission), with at most `--concurrency` in flight.
//!
//! Options: `--bin-dir DIR` (default `target/release`), `--varco-cpus LIST` and
//! `--idp-cpus LIST` (`taskset -c`), `--audit on|off|DIR` (default `on`: the chain in the
//! scratch directory, on disk; a DIR such as `/dev/shm` moves it), `--commit-interval-us US`
//! (`audit.commit_interval_us`, default the broker's), `--heavy-nice N`
//! (`admission.heavy_nice`, default the broker's), `--heavy-queue N` (`admission.heavy_queue`,
//! default the broker's), `--idp-key rsa2048|p256`
//! (default `rsa2048`), `--prepare-concurrency P` (default 8), `--sample S` (default 5),
//! `--warmup S` (soak: RSS growth is counted from the first sample after S seconds; default
//! 60), `--keep` (keep the scratch directory; on Ctrl-C or SIGTERM the stack is stopped and
//! the directory removed all the same unless kept), `--callgrind FILE` (`acs` and `auth`: run
//! Varco under `valgrind --tool=callgrind`, instrumented only during the measured phase),
//! `--perf-stat FILE` (`acs`: `perf stat` attached to Varco over the measured phase, its
//! system calls by kind and context switches printed per login, `threads.rs`), `--timeline`
//! (`acs`: the logins of 5 ms or more as a timeline, clustered, each with Varco's own time
//! from its log line and Varco's other log events beside them, `timeline.rs`), `--probe`
//! (`acs`: a real-time thread per core noting late wake-ups, and steal, over the measured
//! phase, `probe.rs`; printed on the timeline). `acs` also
//! prints, per kind of Varco thread, its run time and context switches per login
//! (`/proc/<pid>/task`). Exit status 0 when every login succeeded, 1
//! when any failed, 2 on a setup error.

mod fsync;
mod get;
mod http;
mod probe;
mod satosa;
mod stack;
mod threads;
mod timeline;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc};

use http::{Conn, IdpAnswer, idp_login, pct, split_url};
use stack::{Stack, StackOptions, cpu_time, status_kb};

struct Options {
    mode: String,
    n: usize,
    concurrency: usize,
    prepare_concurrency: usize,
    rate: Option<f64>,
    duration: Option<f64>,
    sample: f64,
    warmup: f64,
    out: Option<PathBuf>,
    bytes: usize,
    /// `acs`: count Varco's system calls with `perf stat` over the measured phase, CSV here.
    perf_stat: Option<PathBuf>,
    /// `acs`: print the slow logins as a timeline beside Varco's log (`timeline.rs`).
    timeline: bool,
    /// `acs`: run the machine-stall probe over the measured phase (`probe.rs`).
    probe: bool,
    /// `stall`: threads spinning while the probe runs.
    burn: usize,
    /// `fsync`: appends per `fdatasync` (1.5: three appends per two syncs).
    per_sync: f64,
    /// `fsync`: write the file's blocks with zeros first and overwrite them in place.
    prealloc: bool,
    stack: StackOptions,
    satosa_url: Option<String>,
    satosa_pid: Option<u32>,
    start_path: String,
    /// `get`: the URL and the extra header lines.
    url: Option<String>,
    headers: Vec<String>,
}

fn usage() -> String {
    "usage: varco-loadgen acs|full|fixtures|fsync|auth|satosa|stall|get [--url URL] [--header 'NAME: VALUE']... [--n N] [--burn N] [--bytes B] [--per-sync K] [--prealloc] [--concurrency C] [--rate R] \
     [--duration S] [--sample S] [--warmup S] [--out DIR] [--bin-dir DIR] [--varco-cpus LIST] \
     [--idp-cpus LIST] [--audit on|off|DIR] [--commit-interval-us US] [--heavy-nice N] [--heavy-queue N] [--idp-key rsa2048|p256] [--prepare-concurrency P] \
     [--callgrind FILE] [--perf-stat FILE] [--timeline] [--probe] [--keep] [--satosa-url URL] [--satosa-pid PID] [--start-path PATH]"
        .into()
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or_else(usage)?;
    if ![
        "acs", "full", "fixtures", "fsync", "auth", "satosa", "stall", "get",
    ]
    .contains(&mode.as_str())
    {
        return Err(usage());
    }
    let mut o = Options {
        mode,
        n: 2000,
        concurrency: 32,
        prepare_concurrency: 8,
        rate: None,
        duration: None,
        sample: 5.0,
        warmup: 60.0,
        out: None,
        bytes: 17_000,
        perf_stat: None,
        timeline: false,
        probe: false,
        burn: 0,
        per_sync: 1.0,
        prealloc: false,
        stack: StackOptions {
            bin_dir: PathBuf::from("target/release"),
            varco_cpus: None,
            idp_cpus: None,
            audit: "on".into(),
            commit_interval_us: None,
            heavy_nice: None,
            heavy_queue: None,
            idp_key: "rsa2048".into(),
            keep: false,
            callgrind: None,
            route: false,
        },
        satosa_url: None,
        satosa_pid: None,
        start_path: "/Saml2/bench/start".into(),
        url: None,
        headers: Vec::new(),
    };
    // `/auth` needs a protected route; the other modes run the configuration they always had.
    o.stack.route = o.mode == "auth";
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--keep" => o.stack.keep = true,
            "--timeline" => o.timeline = true,
            "--probe" => o.probe = true,
            "--prealloc" => o.prealloc = true,
            _ => {}
        }
        if ["--keep", "--timeline", "--probe", "--prealloc"].contains(&flag.as_str()) {
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| format!("{flag} {v}: a positive number"))
        };
        match flag.as_str() {
            "--n" => o.n = num(&value)? as usize,
            "--burn" => o.burn = value.parse().map_err(|_| "--burn: a thread count")?,
            "--concurrency" => o.concurrency = num(&value)? as usize,
            "--prepare-concurrency" => o.prepare_concurrency = num(&value)? as usize,
            "--rate" => o.rate = Some(num(&value)?),
            "--duration" => o.duration = Some(num(&value)?),
            "--sample" => o.sample = num(&value)?,
            "--warmup" => o.warmup = value.parse().map_err(|_| "--warmup: seconds")?,
            "--out" => o.out = Some(PathBuf::from(value)),
            "--bytes" => o.bytes = num(&value)? as usize,
            "--per-sync" => o.per_sync = num(&value)?,
            "--bin-dir" => o.stack.bin_dir = PathBuf::from(value),
            "--varco-cpus" => o.stack.varco_cpus = Some(value),
            "--idp-cpus" => o.stack.idp_cpus = Some(value),
            "--audit" => o.stack.audit = value,
            "--heavy-nice" => {
                o.stack.heavy_nice = Some(value.parse().map_err(|_| "--heavy-nice: 0 to 19")?);
            }
            "--heavy-queue" => {
                o.stack.heavy_queue = Some(value.parse().map_err(|_| "--heavy-queue: 0 to 65536")?);
            }
            "--commit-interval-us" => {
                o.stack.commit_interval_us = Some(
                    value
                        .parse()
                        .map_err(|_| "--commit-interval-us: whole microseconds")?,
                )
            }
            "--idp-key" => o.stack.idp_key = value,
            "--callgrind" => o.stack.callgrind = Some(PathBuf::from(value)),
            "--satosa-url" => o.satosa_url = Some(value),
            "--satosa-pid" => o.satosa_pid = Some(num(&value)? as u32),
            "--start-path" => o.start_path = value,
            "--perf-stat" => o.perf_stat = Some(PathBuf::from(value)),
            "--url" => o.url = Some(value),
            "--header" => o.headers.push(value),
            _ => return Err(format!("unknown option {flag}\n{}", usage())),
        }
    }
    if o.duration.is_some() && !["full", "stall", "get"].contains(&o.mode.as_str()) {
        return Err("--duration is for `full` (a soak needs fresh Responses all along)".into());
    }
    if o.duration.is_some() && o.rate.is_none() && o.mode == "full" {
        return Err("--duration needs --rate (a soak runs at a fixed rate)".into());
    }
    Ok(o)
}

/// One prepared login: the ACS form body and the browser's login cookie.
struct Prepared {
    cookie: String,
    body: Bytes,
    relay_state: String,
    saml_response: String,
}

/// The addresses and names a worker needs.
struct Target {
    varco: String,
    idp_host: String,
    login_path: String,
}

/// Connections of one worker: to Varco and to the IdP.
struct Worker {
    varco: Conn,
    idp: Conn,
    /// The `X-Request-Id` of Varco's last ACS answer (for the timeline).
    last_request_id: Option<Box<str>>,
}

impl Worker {
    fn new(t: &Target) -> Worker {
        Worker {
            varco: Conn::new(&t.varco),
            idp: Conn::new(&t.idp_host),
            last_request_id: None,
        }
    }

    /// `/saml/login` at Varco (returns the time Varco took), then the IdP's login page and
    /// answer: a signed Response for a pending request.
    async fn prepare(&mut self, t: &Target) -> Result<(Prepared, Duration), String> {
        let start = Instant::now();
        let login = self
            .varco
            .send("GET", &t.login_path, &[], Bytes::new())
            .await?;
        let varco_time = start.elapsed();
        if login.status != 302 {
            return Err(format!("/saml/login {}", login.status));
        }
        let cookie = login
            .set_cookie("varco_login")
            .ok_or("/saml/login set no varco_login cookie")?;
        let location = login.header("location").ok_or("no Location")?.to_owned();
        let (_, sso) = split_url(&location).ok_or("Location is not http://")?;
        let IdpAnswer {
            saml_response,
            relay_state,
            action,
        } = idp_login(&mut self.idp, "GET", sso, Bytes::new()).await?;
        if !action.ends_with("/saml/acs") {
            return Err(format!("IdP posts to {action}"));
        }
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLResponse", &saml_response)
            .append_pair("RelayState", &relay_state)
            .finish();
        Ok((
            Prepared {
                cookie,
                body: body.into(),
                relay_state,
                saml_response,
            },
            varco_time,
        ))
    }

    /// Posts a prepared Response to the ACS; success is 303 with a session cookie, returned.
    async fn post_acs(&mut self, p: &Prepared) -> Result<String, String> {
        let cookie = format!("varco_login={}", p.cookie);
        let r = self
            .varco
            .send("POST", "/saml/acs", &[("cookie", &cookie)], p.body.clone())
            .await?;
        self.last_request_id = r.header("x-request-id").map(Box::from);
        if r.status != 303 {
            return Err(format!("ACS {}", r.status));
        }
        r.set_cookie("varco_session")
            .ok_or_else(|| "ACS 303 without session cookie".into())
    }

    /// One forward-auth check of the session `cookie` (`varco_session=…`), as nginx sends
    /// it; success is 200 with the token header.
    async fn check_auth(&mut self, cookie: &str) -> Result<(), String> {
        let r = self
            .varco
            .send(
                "GET",
                "/auth",
                &[
                    ("cookie", cookie),
                    ("x-original-uri", "/pratiche"),
                    ("x-forwarded-host", "127.0.0.1"),
                ],
                Bytes::new(),
            )
            .await?;
        if r.status != 200 {
            return Err(format!("/auth {}", r.status));
        }
        if r.header("authorization").is_none() {
            return Err("/auth 200 without a token".into());
        }
        Ok(())
    }
}

/// Latencies (µs) and failures collected by the workers.
#[derive(Default)]
struct Tally {
    latency_us: Vec<u64>,
    varco_us: Vec<u64>,
    /// Open loop: from each login's due time to a worker taking it, the harness's own
    /// lateness (already inside `latency_us`, printed so a reader can subtract it).
    late_us: Vec<u64>,
    /// Every login of the measured phase, for the timeline (`acs` with `--timeline`).
    logins: Vec<timeline::Login>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, e: String) {
        *self.errors.entry(e).or_default() += 1;
    }

    /// Adds a worker's tally to this one.
    fn absorb(&mut self, mine: Tally) {
        self.latency_us.extend(mine.latency_us);
        self.varco_us.extend(mine.varco_us);
        self.late_us.extend(mine.late_us);
        self.logins.extend(mine.logins);
        for (e, n) in mine.errors {
            *self.errors.entry(e).or_default() += n;
        }
    }

    /// Waits for every worker and sums their tallies; a worker that panicked is an error.
    async fn gather(handles: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
        let mut all = Tally::default();
        for h in handles {
            match h.await {
                Ok(mine) => all.absorb(mine),
                Err(e) => all.error(format!("worker: {e}")),
            }
        }
        all
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn print_latency(label: &str, v: &mut [u64]) {
    v.sort_unstable();
    println!(
        "{label}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        percentile(v, 0.50),
        percentile(v, 0.90),
        percentile(v, 0.99),
        percentile(v, 0.999),
        percentile(v, 1.0),
    );
}

/// When login `i` is due in an open loop at `rate` per second.
fn due(start: Instant, i: usize, rate: f64) -> Instant {
    start + Duration::from_secs_f64(i as f64 / rate)
}

/// The open loop's pacer: a thread that hands out login `i` at its due time. Not a tokio
/// timer: tokio's wheel ticks in whole milliseconds and rounds each deadline up, so every
/// login would go out up to a millisecond late, and since latency counts from the due time,
/// the harness's lateness would be charged to Varco (about half a millisecond at the median,
/// against a p99 target of 3 ms). `std::thread::sleep` is a high-resolution timer.
fn pace(start: Instant, total: usize, rate: f64) -> mpsc::UnboundedReceiver<(usize, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for i in 0..total {
            let at = due(start, i, rate);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if tx.send((i, at)).is_err() {
                break;
            }
        }
    });
    rx
}

/// `n` workers with their connection to Varco open (one that fails to open is opened again
/// at its first request).
async fn warm_workers(t: &Arc<Target>, n: usize) -> Vec<Worker> {
    let handles: Vec<_> = (0..n.max(1))
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move {
                let mut w = Worker::new(&t);
                let _ = w.varco.warm().await;
                w
            })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(w) = h.await {
            out.push(w);
        }
    }
    out
}

/// Prepares `n` logins with `p` workers.
async fn prepare_all(t: &Arc<Target>, n: usize, p: usize) -> Result<Vec<Prepared>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..p.max(1) {
        let t = t.clone();
        let next = next.clone();
        handles.push(tokio::spawn(async move {
            let mut w = Worker::new(&t);
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, String>(out);
                }
                let (prepared, _) = w.prepare(&t).await.map_err(|e| format!("prepare: {e}"))?;
                out.push(prepared);
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for h in handles {
        all.extend(h.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

/// The harness's wall clock in Unix microseconds (to place Varco's log lines on the
/// timeline).
fn unix_us() -> u64 {
    #[allow(clippy::disallowed_methods)]
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn unix_ms() -> u128 {
    // The harness's own wall clock, not Varco's (which is injected there).
    #[allow(clippy::disallowed_methods)]
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn machine_line() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    let cpu = Some(&info)
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "machine: {cpus} cpus, {cpu}; load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

async fn run(o: Options) -> Result<bool, String> {
    let mut stack = Stack::start(&o.stack)?;
    let (idp_host, _) = split_url(&stack.idp).ok_or("bad IdP URL")?;
    let target = Arc::new(Target {
        varco: stack.varco.clone(),
        idp_host: idp_host.to_owned(),
        login_path: format!("/saml/login?idp={}&level=2&return_to=%2F", pct(&stack.idp)),
    });
    let pid = stack.varco_pid();
    println!("{}", machine_line());
    println!(
        "mode {}, audit {}, IdP key {}, varco cpus {}, idp cpus {}",
        o.mode,
        o.stack.audit,
        o.stack.idp_key,
        o.stack.varco_cpus.as_deref().unwrap_or("any"),
        o.stack.idp_cpus.as_deref().unwrap_or("any"),
    );

    if o.mode == "fixtures" {
        let out = o.out.clone().ok_or("fixtures needs --out DIR")?;
        let started = unix_ms();
        let prepared = prepare_all(&target, o.n, o.prepare_concurrency).await?;
        write_fixtures(&out, &stack, &prepared, started)?;
        println!("wrote {} Responses to {}", prepared.len(), out.display());
        return Ok(true);
    }

    let ok = if o.mode == "auth" {
        let prepared = prepare_all(&target, 1, 1).await?;
        let mut w = Worker::new(&target);
        let session = w.post_acs(&prepared[0]).await?;
        let cookie = format!("varco_session={session}");
        // Opens the cookie, caches the view and mints the token: not what is measured.
        w.check_auth(&cookie).await?;
        stack.callgrind(&["-z"])?;
        stack.callgrind(&["-i", "on"])?;
        let cpu0 = cpu_time(pid);
        let t0 = Instant::now();
        let tally = drive_auth(&o, &target, Arc::from(cookie)).await;
        let wall = t0.elapsed();
        stack.callgrind(&["-d"])?;
        stack.callgrind(&["-i", "off"])?;
        let cpu = cpu_time(pid).zip(cpu0).map(|(a, b)| a.saturating_sub(b));
        report(&o, &mut stack, tally, wall, cpu, pid)?
    } else if o.mode == "acs" {
        let t0 = Instant::now();
        let prepared = prepare_all(&target, o.n, o.prepare_concurrency).await?;
        let prep = t0.elapsed();
        println!(
            "prepared {} pending requests and signed Responses in {:.1} s ({:.0}/s)",
            prepared.len(),
            prep.as_secs_f64(),
            prepared.len() as f64 / prep.as_secs_f64()
        );
        if prep > Duration::from_secs(200) {
            println!("warning: preparation took long; Responses expire 5 min after signing");
        }
        let prepared = Arc::new(prepared);
        stack.callgrind(&["-z"])?;
        stack.callgrind(&["-i", "on"])?;
        let perf = match &o.perf_stat {
            Some(out) => Some(threads::PerfStat::start(pid, out)?),
            None => None,
        };
        // Every connection open before the clock starts: a server behind an ingress sees its
        // keep-alive pool, not 512 new connections in the first quarter second, which the
        // open loop would otherwise charge to the first logins' latency.
        let warm = warm_workers(&target, o.concurrency).await;
        let threads0 = threads::snapshot(pid);
        let cpu0 = cpu_time(pid);
        let t0 = Instant::now();
        let t0_unix_us = unix_us();
        let probe = o.probe.then(|| probe::Probe::start(t0));
        let mut tally = drive(&o, &target, Some(prepared.clone()), None, t0, warm).await;
        let wall = t0.elapsed();
        let cpu = cpu_time(pid).zip(cpu0).map(|(a, b)| a.saturating_sub(b));
        let seen = probe.map(probe::Probe::finish);
        let threads1 = threads::snapshot(pid);
        stack.callgrind(&["-d"])?;
        stack.callgrind(&["-i", "off"])?;
        let logins = tally.latency_us.len() as u64;
        threads::report(&threads0, &threads1, logins, "login");
        if let Some(p) = perf {
            p.finish(logins, "login")?;
        }
        if o.timeline || seen.is_some() {
            let mut logins = std::mem::take(&mut tally.logins);
            timeline::print(&mut logins, t0_unix_us, &stack.varco_log(), seen.as_ref());
        }
        report(&o, &mut stack, tally, wall, cpu, pid)?
    } else {
        let sampler = o.duration.map(|_| {
            let stop = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicU64::new(0));
            let every = Duration::from_secs_f64(o.sample);
            let (s, d) = (stop.clone(), done.clone());
            let h = tokio::spawn(async move {
                let start = Instant::now();
                let mut samples = Vec::new();
                while !s.load(Ordering::Relaxed) {
                    tokio::time::sleep(every).await;
                    let rss = status_kb(pid, "VmRSS").unwrap_or(0);
                    let t = start.elapsed().as_secs_f64();
                    let n = d.load(Ordering::Relaxed);
                    println!("sample t={t:.0}s rss={:.1}MiB logins={n}", mib(rss));
                    samples.push((t, rss));
                }
                samples
            });
            (stop, done, h)
        });
        let cpu0 = cpu_time(pid);
        let t0 = Instant::now();
        let done = sampler.as_ref().map(|(_, d, _)| d.clone());
        let tally = drive(&o, &target, None, done, t0, Vec::new()).await;
        let wall = t0.elapsed();
        let cpu = cpu_time(pid).zip(cpu0).map(|(a, b)| a.saturating_sub(b));
        let errors: u64 = tally.errors.values().sum();
        let ok = report(&o, &mut stack, tally, wall, cpu, pid)?;
        if let Some((stop, _, h)) = sampler {
            stop.store(true, Ordering::Relaxed);
            let samples = h.await.map_err(|e| e.to_string())?;
            soak_summary(&samples, o.warmup, errors);
        }
        ok
    };
    Ok(ok)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn soak_summary(samples: &[(f64, u64)], warmup: f64, errors: u64) {
    let Some(&(_, first)) = samples.first() else {
        println!("soak: no RSS sample");
        return;
    };
    let base = samples.iter().find(|(t, _)| *t >= warmup).copied();
    let (_, last) = samples.last().copied().unwrap_or((0.0, first));
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    print!(
        "soak: errors {errors}; RSS first sample {:.1} MiB, last {:.1} MiB, max {:.1} MiB",
        mib(first),
        mib(last),
        mib(max)
    );
    match base {
        Some((t, b)) if b > 0 => println!(
            "; growth from t={t:.0}s to the end {:+.1} %",
            (last as f64 - b as f64) * 100.0 / b as f64
        ),
        _ => println!("; no sample after the {warmup:.0} s warm-up"),
    }
}

fn report(
    o: &Options,
    stack: &mut Stack,
    mut tally: Tally,
    wall: Duration,
    cpu: Option<Duration>,
    pid: u32,
) -> Result<bool, String> {
    let errors: u64 = tally.errors.values().sum();
    let ok_count = tally.latency_us.len() as u64;
    let (what, unit) = match o.mode.as_str() {
        "acs" => ("ACS posts", "login"),
        "auth" => ("/auth answers", "answer"),
        _ => ("full logins", "login"),
    };
    let shape = match o.rate {
        Some(r) => format!("open loop at {r:.0}/s, at most {} in flight", o.concurrency),
        None => format!("closed loop, {} connections", o.concurrency),
    };
    println!(
        "{what}: {ok_count} ok, {errors} failed in {:.2} s ({shape}): {:.0} {unit}s/s",
        wall.as_secs_f64(),
        ok_count as f64 / wall.as_secs_f64()
    );
    let label = if o.rate.is_some() {
        "latency from due time"
    } else {
        "latency"
    };
    print_latency(label, &mut tally.latency_us);
    if !tally.late_us.is_empty() {
        print_latency(
            "harness lateness (due → taken by a worker)",
            &mut tally.late_us,
        );
    }
    if !tally.varco_us.is_empty() {
        print_latency("varco's share (login + ACS answers)", &mut tally.varco_us);
    }
    if let Some(cpu) = cpu {
        let per = cpu.as_secs_f64() * 1e6 / ok_count.max(1) as f64;
        println!(
            "varco CPU: {:.2} s user+system over the run, {per:.0} µs per {unit}, {:.0} % of one core",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 100.0 / wall.as_secs_f64()
        );
    }
    if let Some(mean) = stack.histogram_mean("varco_audit_batch_records") {
        println!(
            "varco audit: {mean:.1} records per group commit (varco_audit_batch_records, as seen by a record)"
        );
    }
    // How much of the tail is the wait for the audit record's sync: the share of appends
    // slower than each bound, beside the latency percentiles above.
    let bounds = ["0.001", "0.0025", "0.005", "0.01"];
    if let Some(over) = stack.histogram_over("varco_audit_append_duration_seconds", &bounds) {
        let shares: Vec<String> = bounds
            .iter()
            .zip(over)
            .map(|(b, s)| {
                format!(
                    "{:.2} % over {} ms",
                    s * 100.0,
                    b.parse::<f64>().unwrap_or(0.0) * 1e3
                )
            })
            .collect();
        println!("varco audit append wait: {}", shares.join(", "));
    }
    let hwm = status_kb(pid, "VmHWM").unwrap_or(0);
    let rss = status_kb(pid, "VmRSS").unwrap_or(0);
    println!(
        "varco memory: peak RSS (VmHWM) {:.1} MiB, RSS now {:.1} MiB",
        mib(hwm),
        mib(rss)
    );
    for (e, n) in &tally.errors {
        println!("error x{n}: {e}");
    }
    if !stack.varco_alive() {
        return Err(format!("varco died:\n{}", stack.varco_log()));
    }
    Ok(errors == 0)
}

/// Runs the measured phase: posts the prepared Responses (`acs`) or whole logins (`full`).
async fn drive(
    o: &Options,
    t: &Arc<Target>,
    prepared: Option<Arc<Vec<Prepared>>>,
    done: Option<Arc<AtomicU64>>,
    start: Instant,
    mut warm: Vec<Worker>,
) -> Tally {
    let total = match (&prepared, o.duration, o.rate) {
        (Some(p), _, _) => p.len(),
        (None, Some(d), Some(r)) => (d * r).round() as usize,
        (None, _, _) => o.n,
    };
    let next = Arc::new(AtomicUsize::new(0));
    let keep = o.timeline;
    let paced = o.rate.map(|r| Arc::new(Mutex::new(pace(start, total, r))));
    let mut handles = Vec::new();
    for _ in 0..o.concurrency.max(1) {
        let (t, next, prepared, done, paced) = (
            t.clone(),
            next.clone(),
            prepared.clone(),
            done.clone(),
            paced.clone(),
        );
        let ready = warm.pop();
        handles.push(tokio::spawn(async move {
            let mut w = ready.unwrap_or_else(|| Worker::new(&t));
            let mut mine = Tally::default();
            loop {
                let (i, begin) = match &paced {
                    Some(rx) => {
                        let Some((i, at)) = rx.lock().await.recv().await else {
                            break;
                        };
                        mine.late_us.push(at.elapsed().as_micros() as u64);
                        (i, at)
                    }
                    None => {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        (i, Instant::now())
                    }
                };
                w.last_request_id = None;
                let result = match &prepared {
                    Some(p) => w.post_acs(&p[i]).await.map(|_| None),
                    None => match w.prepare(&t).await {
                        Ok((p, login_time)) => {
                            let acs = Instant::now();
                            w.post_acs(&p)
                                .await
                                .map(|_| Some(login_time + acs.elapsed()))
                        }
                        Err(e) => Err(e),
                    },
                };
                if keep {
                    mine.logins.push(timeline::Login {
                        due_us: begin.saturating_duration_since(start).as_micros() as u64,
                        latency_us: begin.elapsed().as_micros() as u64,
                        late_us: mine
                            .late_us
                            .last()
                            .copied()
                            .filter(|_| paced.is_some())
                            .unwrap_or(0),
                        ok: result.is_ok(),
                        request_id: w.last_request_id.take(),
                    });
                }
                match result {
                    Ok(varco) => {
                        mine.latency_us.push(begin.elapsed().as_micros() as u64);
                        if let Some(v) = varco {
                            mine.varco_us.push(v.as_micros() as u64);
                        }
                        if let Some(d) = &done {
                            d.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => mine.error(e),
                }
            }
            mine
        }));
    }
    Tally::gather(handles).await
}

/// The measured phase of `auth`: `--n` checks of one session over `--concurrency`
/// connections, closed loop.
async fn drive_auth(o: &Options, t: &Arc<Target>, cookie: Arc<str>) -> Tally {
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..o.concurrency.max(1) {
        let (t, next, cookie, total) = (t.clone(), next.clone(), cookie.clone(), o.n);
        handles.push(tokio::spawn(async move {
            let mut w = Worker::new(&t);
            let mut mine = Tally::default();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let begin = Instant::now();
                match w.check_auth(&cookie).await {
                    Ok(()) => mine.latency_us.push(begin.elapsed().as_micros() as u64),
                    Err(e) => mine.error(e),
                }
            }
            mine
        }));
    }
    Tally::gather(handles).await
}

fn write_fixtures(
    out: &std::path::Path,
    stack: &Stack,
    prepared: &[Prepared],
    started_ms: u128,
) -> Result<(), String> {
    use std::fmt::Write as _;
    let io = |e: std::io::Error| format!("{}: {e}", out.display());
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out.join("responses")).map_err(io)?;
    let mut manifest = String::new();
    for (i, p) in prepared.iter().enumerate() {
        let name = format!("responses/{i:05}.b64");
        std::fs::write(out.join(&name), &p.saml_response).map_err(io)?;
        let _ = writeln!(manifest, "{name}\t{}", p.relay_state);
    }
    std::fs::write(out.join("manifest.tsv"), manifest).map_err(io)?;
    std::fs::copy(
        stack.dir.join("idp-metadata.xml"),
        out.join("idp-metadata.xml"),
    )
    .map_err(io)?;
    let env = format!(
        "SP_ENTITY_ID={}\nACS_URL=http://{}/saml/acs\nIDP_ENTITY_ID={}\n\
         REQUESTS_ISSUED_AFTER_MS={started_ms}\nGENERATED_MS={}\n",
        stack.sp_entity_id,
        stack.varco,
        stack.idp,
        unix_ms()
    );
    std::fs::write(out.join("sp.env"), env).map_err(io)?;
    Ok(())
}

/// Two workers: the load generator is meant to be pinned to one core of its own
/// (`taskset -c 0`); the second absorbs the timer and connection tasks.
/// A mode's exit status: 0 when every login succeeded, 1 when any failed, 2 on a setup error
/// (said on stderr).
fn exit_code(outcome: Result<bool, String>) -> ExitCode {
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("varco-loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

/// The load generator's runtime, or the exit status of a failure to build one (said on
/// stderr).
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("runtime: {e}");
            ExitCode::from(2)
        })
}

/// `satosa`: SATOSA and the IdP are already running (`satosa.rs`).
fn run_satosa(o: Options) -> ExitCode {
    let target = match (&o.satosa_url, o.satosa_pid) {
        (Some(url), Some(pid)) => match split_url(url) {
            Some((host, _)) => satosa::SatosaOptions {
                host: host.to_owned(),
                start_path: o.start_path.clone(),
                pid,
            },
            None => {
                eprintln!("--satosa-url {url}: an http:// URL");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("satosa needs --satosa-url and --satosa-pid\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let outcome = rt.block_on(async {
        tokio::select! {
            r = satosa::run(target, o.n, o.concurrency, o.prepare_concurrency) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        }
    });
    exit_code(outcome)
}

/// `get`: the open loop of one plain GET (`get.rs`), no stack.
fn run_get(o: &Options) -> ExitCode {
    let (Some(url), Some(rate)) = (&o.url, o.rate) else {
        eprintln!("get needs --url and --rate\n{}", usage());
        return ExitCode::from(2);
    };
    let Some((host, path)) = split_url(url) else {
        eprintln!("--url {url}: an http:// URL");
        return ExitCode::from(2);
    };
    let g = get::GetOptions {
        host: host.to_owned(),
        path: path.to_owned(),
        headers: o.headers.clone(),
        rate,
        duration: o.duration.unwrap_or(10.0),
        connections: o.concurrency,
    };
    println!("{}", machine_line());
    exit_code(get::run(&g))
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if o.mode == "satosa" {
        return run_satosa(o);
    }
    if o.mode == "get" {
        return run_get(&o);
    }
    if o.mode == "stall" {
        probe::stall_mode(o.duration.unwrap_or(10.0), o.burn);
        return ExitCode::SUCCESS;
    }
    if o.mode == "fsync" {
        let dir = o.out.clone().unwrap_or_else(std::env::temp_dir);
        let shape = fsync::Shape {
            per_sync: o.per_sync,
            prealloc: o.prealloc,
        };
        return match fsync::run(o.n, o.bytes, o.rate, shape, &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("varco-loadgen: {e}");
                ExitCode::from(2)
            }
        };
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    // On Ctrl-C or SIGTERM the run future is dropped, and with it the stack: Varco and the
    // IdP are killed and the scratch directory removed, instead of being left behind.
    let outcome = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("signal handler: {e}"))?;
        tokio::select! {
            r = run(o) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
            _ = term.recv() => Err("terminated".to_owned()),
        }
    });
    exit_code(outcome)
}
