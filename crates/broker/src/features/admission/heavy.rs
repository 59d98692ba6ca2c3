//! The one way CPU-heavy work runs: [`Heavy::run`] moves a closure to tokio's blocking
//! threads once a permit of the pool's semaphore is free, so at most `heavy_workers` such jobs
//! run at once and none runs on an async worker. Why: one hostile SAML message could hold a
//! core for as long as its validation takes; inline on a worker it would stall `/auth` and
//! every proxied request scheduled there. Off the workers, the worst an attacker gets is the
//! heavy pool itself, whose queue is bounded in length and in waiting time.
//!
//! A permit travels with the closure: a client that disconnects while its job runs does not
//! free a worker early, so the bound holds for the work, not for the requests.
//!
//! The semaphore bounds how many cores heavy work may take, not how the kernel shares a core
//! between a heavy thread and an async worker: on a core both want, the scheduler splits it
//! evenly, and a flood of costly messages halves `/auth` there. So a thread running heavy
//! work lowers its own priority by `admission.heavy_nice` (default 19; 0 leaves it alone;
//! Linux `setpriority` on the thread, once per thread): it still gets every idle cycle, but
//! yields to the async workers when they have requests to answer. Tokio's blocking threads
//! are shared with the few other
//! blocking jobs (metadata fetches, reloads), which may then run at the lower priority too:
//! background work either way.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use prometheus::{IntCounterVec, IntGauge};
use tokio::sync::Semaphore;

use super::Admission;
use crate::features::metrics::Metrics;
use crate::leaf::http::{Body, html, set};
use crate::leaf::pages;

/// The stable code of a refusal for lack of capacity (503).
pub const BUSY: &str = "broker_busy";

/// What a heavy job is, for the rejection metric's `work` label (a fixed list).
#[derive(Debug, Clone, Copy)]
pub enum Work {
    /// `saml::validate_response` at the ACS.
    Response,
    /// `validate_logout_request` / `validate_logout_response` at `/saml/slo`.
    Logout,
    /// RSA signature of an AuthnRequest, LogoutRequest or LogoutResponse.
    Sign,
    /// Argon2 verification of a legacy password.
    Password,
    /// Decryption and verification of a wallet presentation at `/wallet/response`.
    Presentation,
}

impl Work {
    fn label(self) -> &'static str {
        match self {
            Work::Response => "response",
            Work::Logout => "logout",
            Work::Sign => "sign",
            Work::Password => "password",
            Work::Presentation => "presentation",
        }
    }
}

/// Why a heavy job did not run to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No worker within the wait, or the queue was full: answer 503 [`BUSY`].
    Busy,
    /// The job panicked (a bug, never attacker-reachable by design): answer 500.
    Failed,
}

impl Refused {
    /// The stable error code.
    pub fn code(self) -> &'static str {
        match self {
            Refused::Busy => BUSY,
            Refused::Failed => "broker_heavy_failed",
        }
    }
}

/// The heavy-work pool of one state.
pub struct Heavy {
    permits: Arc<Semaphore>,
    settings: Admission,
    /// Jobs waiting for a permit now (bounded by `heavy_queue`).
    waiting: AtomicUsize,
    /// Bytes the waiting jobs hold now (bounded by `heavy_queue_bytes`).
    waiting_bytes: AtomicUsize,
    in_flight: IntGauge,
    rejected: IntCounterVec,
}

/// Decrements the in-flight gauge when the job ends, even by a panic.
struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Gives back a waiting slot and its bytes however the wait ends (permit, timeout,
/// cancelled request).
struct Waiting<'a> {
    jobs: &'a AtomicUsize,
    bytes: &'a AtomicUsize,
    held: usize,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.jobs.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_sub(self.held, Ordering::AcqRel);
    }
}

impl Heavy {
    /// A pool sized by `settings`, reporting to `metrics`.
    pub fn new(settings: &Admission, metrics: &Metrics) -> Heavy {
        Heavy {
            permits: Arc::new(Semaphore::new(settings.heavy_workers.max(1))),
            settings: settings.clone(),
            waiting: AtomicUsize::new(0),
            waiting_bytes: AtomicUsize::new(0),
            in_flight: metrics.heavy_in_flight.clone(),
            rejected: metrics.heavy_rejected.clone(),
        }
    }

    /// The settings this pool was built with (a reload keeps the pool when they are equal).
    pub fn settings(&self) -> &Admission {
        &self.settings
    }

    /// Runs `job` on a blocking thread under a permit, or refuses it: at once when
    /// `heavy_queue` jobs already wait, or after `heavy_wait` without a permit. For a job that
    /// carries a request body, [`Heavy::run_holding`].
    pub async fn run<T, F>(&self, work: Work, job: F) -> Result<T, Refused>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.run_holding(work, 0, job).await
    }

    /// [`Heavy::run`] for a job that holds `bytes` (its request body) while it waits: refused
    /// at once, too, when the waiting jobs' bytes and these would pass `heavy_queue_bytes`.
    /// A job that finds a worker free at once never counts: only waiting bodies pile up.
    pub async fn run_holding<T, F>(&self, work: Work, bytes: usize, job: F) -> Result<T, Refused>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.settings.heavy_queue {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(self.reject(work));
                }
                let before = self.waiting_bytes.fetch_add(bytes, Ordering::AcqRel);
                let _slot = Waiting {
                    jobs: &self.waiting,
                    bytes: &self.waiting_bytes,
                    held: bytes,
                };
                if before.saturating_add(bytes) > self.settings.heavy_queue_bytes {
                    return Err(self.reject(work));
                }
                let wait = self.permits.clone().acquire_owned();
                match tokio::time::timeout(self.settings.heavy_wait, wait).await {
                    Ok(Ok(p)) => p,
                    _ => return Err(self.reject(work)),
                }
            }
        };
        self.in_flight.inc();
        let gauge = InFlight(self.in_flight.clone());
        let nice = self.settings.heavy_nice;
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _gauge = gauge;
            name_thread();
            lower_priority(nice);
            job()
        });
        task.await.map_err(|e| {
            tracing::error!(event = "heavy_job_failed", work = %work.label(), panicked = e.is_panic());
            Refused::Failed
        })
    }

    /// Jobs waiting for a worker now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Bytes the jobs waiting for a worker hold now.
    pub fn waiting_bytes(&self) -> usize {
        self.waiting_bytes.load(Ordering::Acquire)
    }

    fn reject(&self, work: Work) -> Refused {
        self.rejected.with_label_values(&[work.label()]).inc();
        tracing::warn!(event = "heavy_busy", work = %work.label(), code = %BUSY);
        Refused::Busy
    }

    /// Jobs running now (for tests and the load report; `/metrics` has the gauge).
    pub fn running(&self) -> usize {
        self.settings
            .heavy_workers
            .max(1)
            .saturating_sub(self.permits.available_permits())
    }

    /// The answer to a request refused for lack of capacity: 503, `Retry-After`, the plain
    /// Italian/English page with the code.
    pub fn busy_page(&self) -> Response<Body> {
        busy_page(self.settings.retry_after)
    }
}

thread_local! {
    /// The nice value this thread already lowered itself to (`None`: not yet).
    static LOWERED: std::cell::Cell<Option<i32>> = const { std::cell::Cell::new(None) };
    /// Whether this thread already carries [`THREAD_NAME`].
    static NAMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The name a blocking thread takes once it has run heavy work (`/proc/<pid>/task/*/comm`),
/// so the CPU of heavy work can be told from the async workers' (`tokio-rt-worker`) from
/// outside the process, by the load harness or an operator (`top -H`). Tokio names its
/// blocking threads like its workers; a renamed thread may later run another blocking job
/// (a metadata fetch), which then counts as heavy: background work either way.
pub const THREAD_NAME: &str = "varco-heavy";

/// Renames the calling thread to [`THREAD_NAME`], once per thread; failure is harmless.
fn name_thread() {
    if NAMED.with(|n| n.replace(true)) {
        return;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = rustix::thread::set_name(c"varco-heavy");
    }
}

/// Lowers this thread's scheduling priority by `steps` (nice values, capped at 19) below the
/// process's, once per thread. Failure (a platform without per-thread priorities, a seccomp
/// policy) leaves the priority as it was: logged once per thread, never fatal.
fn lower_priority(steps: i32) {
    if steps == 0 || LOWERED.with(std::cell::Cell::get).is_some() {
        return;
    }
    let lowered = (|| {
        let base = thread_nice()?;
        let target = base.saturating_add(steps).min(19);
        set_thread_nice(target).then_some(target)
    })();
    match lowered {
        Some(n) => LOWERED.with(|l| l.set(Some(n))),
        None => {
            // Do not try again on this thread.
            LOWERED.with(|l| l.set(thread_nice()));
            tracing::warn!(
                event = "heavy_priority_unchanged",
                "could not lower the priority of a heavy-work thread"
            );
        }
    }
}

/// The calling thread's nice value (Linux: per thread), if the platform tells it.
pub fn thread_nice() -> Option<i32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        None
    }
}

fn set_thread_nice(nice: i32) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice).is_ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = nice;
        false
    }
}

/// 503 with `Retry-After` and the "busy" page with [`BUSY`].
pub fn busy_page(retry_after: Duration) -> Response<Body> {
    let mut r = html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::simple(
            "Servizio momentaneamente sovraccarico",
            "Service momentarily overloaded",
            &format!("Troppe richieste in corso: riprova tra qualche secondo. Codice: {BUSY}"),
            &format!(
                "Too many requests in progress: please try again in a few seconds. Code: {BUSY}"
            ),
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}
