//! The one way CPU-heavy work runs: [`Heavy::run`] hands a closure to the pool's own threads
//! once a permit of the pool's semaphore is free, so at most `heavy_workers` such jobs run at
//! once and none runs on an async worker. Why: one hostile SAML message could hold a core for
//! as long as its validation takes; inline on a worker it would stall `/auth` and every
//! proxied request scheduled there. Off the workers, the worst an attacker gets is the heavy
//! pool itself, whose queue is bounded in length and in waiting time.
//!
//! A permit travels with the closure: a client that disconnects while its job runs does not
//! free a worker early, so the bound holds for the work, not for the requests.
//!
//! The pool is `heavy_workers` threads of its own, started with it and ended when it is
//! dropped (a reload that changes `[admission]` builds a new one), not tokio's blocking
//! threads. Why: tokio starts a new blocking thread whenever none is idle at the moment a job
//! is handed over, and the permit is given back a moment before the finishing thread is idle
//! again, so a one-core process under load grew dozens of them, and each job woke the one
//! idle longest: a cold stack and a cold allocator arena for every login (docs/PERFORMANCE.md,
//! "The heavy pool on threads of its own"). With one thread per permit, every job finds a
//! thread that has just run the one before.
//!
//! The semaphore bounds how many cores heavy work may take, not how the kernel shares a core
//! between a heavy thread and an async worker: on a core both want, the scheduler splits it
//! evenly, and a flood of costly messages halves `/auth` there. So each heavy thread lowers
//! its own priority by `admission.heavy_nice` (default 19; 0 leaves it alone; Linux
//! `setpriority` on the thread, once, when it starts): it still gets every idle cycle, but
//! yields to the async workers when they have requests to answer. Other blocking work
//! (metadata fetches, reloads) stays on tokio's blocking threads at the normal priority.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
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

/// A job as the pool's threads receive it: the caller's closure with its permit, its gauge
/// and the channel its result goes back on.
type Job = Box<dyn FnOnce() + Send>;

/// The heavy-work pool of one state.
pub struct Heavy {
    /// The pool's threads wait on the other end; dropping the pool closes it, and each thread
    /// ends once the jobs already handed over are done.
    jobs: mpsc::Sender<Job>,
    /// Threads started: `heavy_workers` (at least one).
    threads: usize,
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
    /// A pool sized by `settings`, reporting to `metrics`, with its `heavy_workers` threads
    /// started. All or nothing: if the system refuses a thread (a pids limit), the error is
    /// returned and the threads already started end, so a pool never runs short of what its
    /// configuration says.
    pub fn new(settings: &Admission, metrics: &Metrics) -> std::io::Result<Heavy> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let nice = settings.heavy_nice;
        let threads = settings.heavy_workers.max(1);
        for _ in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(THREAD_NAME.to_owned())
                .spawn(move || work(&queue, nice))?;
        }
        Ok(Heavy {
            jobs,
            threads,
            permits: Arc::new(Semaphore::new(threads)),
            settings: settings.clone(),
            waiting: AtomicUsize::new(0),
            waiting_bytes: AtomicUsize::new(0),
            in_flight: metrics.heavy_in_flight.clone(),
            rejected: metrics.heavy_rejected.clone(),
        })
    }

    /// The settings this pool was built with (a reload keeps the pool when they are equal).
    pub fn settings(&self) -> &Admission {
        &self.settings
    }

    /// Runs `job` on one of the pool's threads under a permit, or refuses it: at once when
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
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = catch_unwind(AssertUnwindSafe(job));
            // The permit and the gauge go back before the result does, so a caller that has
            // its answer sees the pool as the job left it.
            drop(permit);
            drop(gauge);
            // The caller may have gone (the client hung up): the work was done under its
            // permit all the same. The result is then dropped here, and a `Drop` that panics
            // must not end the thread either.
            let _ = catch_unwind(AssertUnwindSafe(move || {
                let _ = done.send(out);
            }));
        });
        if self.jobs.send(job).is_err() {
            // Only if every thread has ended, which a pool still referenced never sees.
            tracing::error!(event = "heavy_job_failed", work = %work.label(), panicked = false);
            return Err(Refused::Failed);
        }
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) | Err(_) => {
                tracing::error!(event = "heavy_job_failed", work = %work.label(), panicked = true);
                Err(Refused::Failed)
            }
        }
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
        self.threads
            .saturating_sub(self.permits.available_permits())
    }

    /// The answer to a request refused for lack of capacity: 503, `Retry-After`, the plain
    /// Italian/English page with the code.
    pub fn busy_page(&self) -> Response<Body> {
        busy_page(self.settings.retry_after)
    }
}

/// The name of the pool's threads (`/proc/<pid>/task/*/comm`), so the CPU of heavy work can
/// be told from the async workers' (`tokio-rt-worker`) from outside the process, by the load
/// harness or an operator (`top -H`).
pub const THREAD_NAME: &str = "varco-heavy";

/// A pool thread's life: lower its priority once, then run the jobs handed over until the
/// pool is dropped. A job that panics is caught inside it ([`Heavy::run_holding`]), so the
/// thread lives on.
fn work(queue: &Mutex<mpsc::Receiver<Job>>, nice: i32) {
    lower_priority(nice);
    loop {
        // One idle thread waits in `recv` holding the lock, the others for the lock; the job
        // runs after the lock is released.
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(mpsc::RecvError) => return,
        }
    }
}

/// Lowers the calling thread's scheduling priority by `steps` (nice values, capped at 19)
/// below the one it started with. Failure (a platform without per-thread priorities, a
/// seccomp policy) leaves the priority as it was: logged, never fatal.
fn lower_priority(steps: i32) {
    if steps == 0 {
        return;
    }
    let lowered = thread_nice()
        .map(|base| base.saturating_add(steps).min(19))
        .is_some_and(set_thread_nice);
    if !lowered {
        tracing::warn!(
            event = "heavy_priority_unchanged",
            "could not lower the priority of a heavy-work thread"
        );
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
