//! The header-read deadline's timer (issue 20, the slow-header bound of docs/THREATS.md).
//!
//! hyper arms its header-read timeout once per request head: with tokio's timer that is a
//! boxed `tokio::time::Sleep`, an entry in the runtime's timer wheel (under its lock) when the
//! read is pending, and its removal (the lock again) when the head has arrived: about 1,300
//! instructions of a ~22,000-instruction `/auth` answer. Here each connection owns a slot
//! instead, registered once when the connection opens: arming a deadline stores it in the slot,
//! a pending read leaves the connection's waker there (an [`AtomicWaker`], no lock), and
//! dropping the deadline clears the slot. One ticker task per process advances a coarse clock
//! every [`TICK`] and wakes each connection whose deadline it has passed.
//!
//! The bound, exactly: a deadline armed for `timeout` is never due before `timeout` has passed
//! on the monotonic clock (the deadline is `Instant::now() + timeout`, rounded up to the
//! millisecond, and the coarse clock is the ticker's reading, never ahead of real time); it is
//! due at the first tick at or after it, so the connection is cut at most one [`TICK`] after
//! `timeout` (plus however late the runtime runs the ticker, as with tokio's own timer).
//!
//! The cost the ticker adds: one pass over the open connections' slots (an atomic load each)
//! per tick, under the slot table's lock, which a connection takes only when it opens and
//! closes.
//!
//! May import: nothing in the crate.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use hyper::rt::{Sleep, Timer};

/// How often the coarse clock advances: the most a deadline can be late by the ticker.
pub const TICK: Duration = Duration::from_millis(10);

/// A slot's deadline when nothing is armed.
const DISARMED: u64 = u64::MAX;

/// The coarse clock and the open connections' slots.
struct Clock {
    /// Milliseconds are counted from here.
    base: Instant,
    /// Milliseconds since `base` at the last tick (never ahead of the monotonic clock).
    now_ms: AtomicU64,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    live: Vec<Option<Arc<Slot>>>,
    free: Vec<usize>,
}

/// One connection's deadline and waker.
struct Slot {
    clock: Arc<Clock>,
    /// The armed deadline in milliseconds since `clock.base`, or [`DISARMED`].
    deadline: AtomicU64,
    /// Whether a [`Deadline`] of this slot exists (only the connection's task creates and drops
    /// them, so a plain load and store suffice).
    armed: AtomicBool,
    /// Requests whose head has been read ([`Head::begin`]): an answer re-arms the deadline
    /// only if no later request has begun.
    served: AtomicU64,
    waker: AtomicWaker,
}

impl Clock {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        // A panic elsewhere while the lock was held leaves the table consistent (every update
        // is one assignment): keep serving rather than lose every deadline.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `at` in milliseconds since `base`, rounded up: a deadline is never due early.
    fn ms_of(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.base);
        // In u64 (a u128 division is a libcall): seconds of any realistic uptime fit.
        d.as_secs()
            .saturating_mul(1_000)
            .saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)))
            .min(DISARMED - 1)
    }

    /// Sets the coarse clock to `elapsed` since `base` (never backwards) and wakes every
    /// connection whose armed deadline that reaches.
    fn advance(&self, elapsed: Duration) {
        // Rounded down: the coarse clock never runs ahead of the monotonic one.
        let now = elapsed
            .as_secs()
            .saturating_mul(1_000)
            .saturating_add(u64::from(elapsed.subsec_millis()))
            .min(DISARMED - 1);
        let now = self.now_ms.fetch_max(now, Ordering::SeqCst).max(now);
        for slot in self.slots().live.iter().flatten() {
            if slot.deadline.load(Ordering::SeqCst) <= now {
                slot.waker.wake();
            }
        }
    }
}

/// The process's header-read deadlines: a coarse clock and its ticker. Cloning shares them.
#[derive(Clone)]
pub struct Deadlines {
    clock: Arc<Clock>,
}

impl Deadlines {
    /// The clock, with its ticker spawned on the current tokio runtime (it must be called
    /// inside one). The ticker ends when the last clone and the last connection's timer are
    /// gone.
    pub fn start() -> Self {
        let deadlines = Self::stopped();
        let clock = Arc::downgrade(&deadlines.clock);
        tokio::spawn(tick(clock, TICK));
        deadlines
    }

    /// The clock without a ticker: only [`Deadlines::advance`] moves it (tests).
    fn stopped() -> Self {
        Self {
            clock: Arc::new(Clock {
                base: Instant::now(),
                now_ms: AtomicU64::new(0),
                slots: Mutex::new(Slots::default()),
            }),
        }
    }

    /// A timer for one connection's hyper builder: registers the connection's slot, which the
    /// timer frees when hyper drops it with the connection.
    pub fn connection(&self) -> ConnectionTimer {
        let slot = Arc::new(Slot {
            clock: self.clock.clone(),
            deadline: AtomicU64::new(DISARMED),
            armed: AtomicBool::new(false),
            served: AtomicU64::new(0),
            waker: AtomicWaker::new(),
        });
        let mut slots = self.clock.slots();
        let index = if let Some(i) = slots.free.pop() {
            slots.live[i] = Some(slot.clone());
            i
        } else {
            slots.live.push(Some(slot.clone()));
            slots.live.len() - 1
        };
        ConnectionTimer { slot, index }
    }

    /// One connection's head deadline kept beside hyper instead of inside it ([`Head`]).
    pub fn head(&self) -> Head {
        Head {
            timer: Arc::new(self.connection()),
        }
    }

    /// Open connections' slots (tests).
    #[cfg(test)]
    fn open(&self) -> usize {
        self.clock.slots().live.iter().flatten().count()
    }

    /// Moves the clock as a tick at `elapsed` since its start would (tests).
    #[cfg(test)]
    fn advance(&self, elapsed: Duration) {
        self.clock.advance(elapsed);
    }
}

async fn tick(clock: Weak<Clock>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(clock) = clock.upgrade() else {
            return;
        };
        clock.advance(clock.base.elapsed());
    }
}

/// One connection's [`hyper::rt::Timer`]: its deadlines live in the connection's slot.
pub struct ConnectionTimer {
    slot: Arc<Slot>,
    index: usize,
}

impl Drop for ConnectionTimer {
    fn drop(&mut self) {
        let mut slots = self.slot.clock.slots();
        if let Some(entry) = slots.live.get_mut(self.index) {
            *entry = None;
            slots.free.push(self.index);
        }
    }
}

impl Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        match Instant::now().checked_add(duration) {
            Some(at) => self.sleep_until(at),
            // Beyond the clock's range: never due.
            None => self.arm(DISARMED - 1),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.arm(self.slot.clock.ms_of(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        let ms = self.slot.clock.ms_of(new_deadline);
        match sleep.as_mut().downcast_mut_pin::<Deadline>() {
            Some(mut d) if Arc::ptr_eq(&d.slot, &self.slot) => {
                d.deadline = ms;
                d.slot.deadline.store(ms, Ordering::SeqCst);
            }
            _ => *sleep = self.arm(ms),
        }
    }
}

impl ConnectionTimer {
    fn arm(&self, ms: u64) -> Pin<Box<dyn Sleep>> {
        if self.slot.armed.load(Ordering::Relaxed) {
            // hyper keeps one deadline per connection (the head being read); a second one
            // at once gets tokio's timer rather than sharing the slot.
            let tokio = hyper_util::rt::TokioTimer::new();
            return match self.slot.clock.base.checked_add(Duration::from_millis(ms)) {
                Some(at) => tokio.sleep_until(at),
                // Beyond the clock's range: as good as never (tokio caps it).
                None => tokio.sleep(Duration::MAX),
            };
        }
        self.slot.armed.store(true, Ordering::Relaxed);
        self.slot.deadline.store(ms, Ordering::SeqCst);
        Box::pin(Deadline {
            slot: self.slot.clone(),
            deadline: ms,
        })
    }
}

/// An armed deadline: due once the coarse clock reaches it.
struct Deadline {
    slot: Arc<Slot>,
    deadline: u64,
}

impl Deadline {
    fn due(&self) -> bool {
        self.slot.clock.now_ms.load(Ordering::SeqCst) >= self.deadline
    }
}

/// Ready when `due`; otherwise leaves the task's waker in `slot` for the ticker.
fn poll_slot(slot: &Slot, cx: &mut Context<'_>, due: impl Fn() -> bool) -> Poll<()> {
    if due() {
        return Poll::Ready(());
    }
    slot.waker.register(cx.waker());
    // A tick between the check and the registration found no waker to wake: look again.
    if due() {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        poll_slot(&self.slot, cx, || self.due())
    }
}

impl Sleep for Deadline {}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.slot.deadline.store(DISARMED, Ordering::SeqCst);
        self.slot.armed.store(false, Ordering::Relaxed);
    }
}

/// One connection's head deadline, enforced beside hyper rather than by hyper's
/// `header_read_timeout` (issue 20: with that timeout set, hyper also polls the socket once
/// more after every answer and boxes a new sleep per head). The same bound: armed when the
/// connection opens and again when hyper drops an answer's body (it is done with that answer
/// and reads the next head), disarmed when a head has been read (the service is called). The
/// connection's task selects [`Head::expired`] beside the connection and drops the connection
/// when it is due. Clones share the deadline.
#[derive(Clone)]
pub struct Head {
    timer: Arc<ConnectionTimer>,
}

impl Head {
    /// Arms the deadline `timeout` from now.
    pub fn arm(&self, timeout: Duration) {
        let slot = &self.timer.slot;
        let ms = Instant::now()
            .checked_add(timeout)
            .map_or(DISARMED - 1, |at| slot.clock.ms_of(at));
        slot.deadline.store(ms, Ordering::SeqCst);
    }

    /// A request's head has been read: disarms the deadline until its answer is done.
    /// Returns the request's number, for [`Head::after`].
    pub fn begin(&self) -> u64 {
        let slot = &self.timer.slot;
        slot.deadline.store(DISARMED, Ordering::SeqCst);
        let served = slot.served.load(Ordering::Relaxed).wrapping_add(1);
        slot.served.store(served, Ordering::Relaxed);
        served
    }

    /// `body`, the answer to request `served`, wrapped so that hyper dropping it re-arms the
    /// deadline for the next head (unless a later request has begun meanwhile).
    pub fn after<B>(&self, served: u64, body: B, timeout: Duration) -> ArmOnDrop<B> {
        ArmOnDrop {
            body,
            head: self.clone(),
            served,
            timeout,
        }
    }

    /// Due once the armed deadline has passed; pending while disarmed.
    pub fn expired(&self) -> Expired {
        Expired {
            slot: self.timer.slot.clone(),
        }
    }
}

/// [`Head::expired`].
pub struct Expired {
    slot: Arc<Slot>,
}

impl Expired {
    fn due(&self) -> bool {
        let deadline = self.slot.deadline.load(Ordering::SeqCst);
        deadline != DISARMED && self.slot.clock.now_ms.load(Ordering::SeqCst) >= deadline
    }
}

impl Future for Expired {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        poll_slot(&self.slot, cx, || self.due())
    }
}

/// An answer's body that re-arms its connection's head deadline when dropped ([`Head::after`]).
pub struct ArmOnDrop<B> {
    body: B,
    head: Head,
    served: u64,
    timeout: Duration,
}

impl<B> Drop for ArmOnDrop<B> {
    fn drop(&mut self) {
        if self.head.timer.slot.served.load(Ordering::Relaxed) == self.served {
            self.head.arm(self.timeout);
        }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for ArmOnDrop<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(sleep: &mut Pin<Box<dyn Sleep>>, count: &Arc<Count>) -> Poll<()> {
        let waker = Waker::from(count.clone());
        sleep.as_mut().poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_deadline_is_due_at_its_millisecond_and_its_waker_is_woken_then_not_before() {
        let deadlines = Deadlines::stopped();
        let timer = deadlines.connection();
        let base = deadlines.clock.base;
        let count = Arc::new(Count::default());
        let mut sleep = timer.sleep_until(base + Duration::from_millis(1_000));
        assert!(poll(&mut sleep, &count).is_pending());
        deadlines.advance(Duration::from_millis(999));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "woken a millisecond early"
        );
        assert!(poll(&mut sleep, &count).is_pending());
        deadlines.advance(Duration::from_millis(1_000));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut sleep, &count).is_ready());
    }

    #[test]
    fn a_deadline_between_milliseconds_is_rounded_up_never_down() {
        let deadlines = Deadlines::stopped();
        let timer = deadlines.connection();
        let base = deadlines.clock.base;
        let count = Arc::new(Count::default());
        let mut sleep = timer.sleep_until(base + Duration::from_micros(1_000_001));
        deadlines.advance(Duration::from_millis(1_000));
        assert!(poll(&mut sleep, &count).is_pending());
        deadlines.advance(Duration::from_millis(1_001));
        assert!(poll(&mut sleep, &count).is_ready());
    }

    #[test]
    fn the_clock_never_runs_backwards() {
        let deadlines = Deadlines::stopped();
        let timer = deadlines.connection();
        let count = Arc::new(Count::default());
        deadlines.advance(Duration::from_millis(500));
        deadlines.advance(Duration::from_millis(100));
        let mut sleep = timer.sleep_until(deadlines.clock.base + Duration::from_millis(400));
        assert!(poll(&mut sleep, &count).is_ready());
    }

    #[test]
    fn a_dropped_deadline_disarms_its_slot_and_the_next_one_rearms_it() {
        let deadlines = Deadlines::stopped();
        let timer = deadlines.connection();
        let base = deadlines.clock.base;
        let count = Arc::new(Count::default());
        let mut first = timer.sleep_until(base + Duration::from_millis(100));
        assert!(poll(&mut first, &count).is_pending());
        drop(first);
        deadlines.advance(Duration::from_millis(200));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "a dropped deadline woke its task"
        );
        let mut second = timer.sleep_until(base + Duration::from_millis(300));
        assert!(second.as_mut().downcast_mut_pin::<Deadline>().is_some());
        assert!(poll(&mut second, &count).is_pending());
        deadlines.advance(Duration::from_millis(300));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut second, &count).is_ready());
    }

    #[test]
    fn reset_moves_the_armed_deadline() {
        let deadlines = Deadlines::stopped();
        let timer = deadlines.connection();
        let base = deadlines.clock.base;
        let count = Arc::new(Count::default());
        let mut sleep = timer.sleep_until(base + Duration::from_millis(100));
        timer.reset(&mut sleep, base + Duration::from_millis(500));
        assert!(poll(&mut sleep, &count).is_pending());
        deadlines.advance(Duration::from_millis(499));
        assert!(poll(&mut sleep, &count).is_pending());
        deadlines.advance(Duration::from_millis(500));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut sleep, &count).is_ready());
    }

    #[tokio::test]
    async fn a_second_deadline_at_once_gets_tokios_timer_and_still_fires() {
        let deadlines = Deadlines::stopped();
        let timer = deadlines.connection();
        let _first = timer.sleep(Duration::from_secs(60));
        let mut second = timer.sleep(Duration::from_millis(20));
        assert!(second.as_mut().downcast_mut_pin::<Deadline>().is_none());
        second.await;
    }

    #[test]
    fn a_head_deadline_is_disarmed_while_a_request_is_served_and_rearmed_by_its_answer() {
        // `arm` reads the monotonic clock (here a few milliseconds past the clock's start), so
        // the hand-moved coarse clock stays below the deadlines it arms.
        const HOUR: Duration = Duration::from_secs(3_600);
        let deadlines = Deadlines::stopped();
        let head = deadlines.head();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut expired = head.expired();
        deadlines.advance(Duration::from_secs(60));
        assert!(
            Pin::new(&mut expired).poll(&mut cx).is_pending(),
            "due while never armed"
        );
        head.arm(HOUR);
        assert!(head.timer.slot.deadline.load(Ordering::SeqCst) >= 3_600_000);
        let served = head.begin();
        deadlines.advance(2 * HOUR);
        assert!(
            Pin::new(&mut expired).poll(&mut cx).is_pending(),
            "due while serving"
        );
        // A later request began before the first answer was dropped: no re-arm.
        let answer = head.after(served, (), 10 * HOUR);
        let second = head.begin();
        drop(answer);
        assert_eq!(head.timer.slot.deadline.load(Ordering::SeqCst), DISARMED);
        // The second answer dropped: armed again, due at its deadline and woken then.
        drop(head.after(second, (), 10 * HOUR));
        let rearmed = head.timer.slot.deadline.load(Ordering::SeqCst);
        assert!((36_000_000..DISARMED).contains(&rearmed));
        assert!(Pin::new(&mut expired).poll(&mut cx).is_pending());
        deadlines.advance(Duration::from_millis(rearmed - 1));
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "woken early");
        assert!(Pin::new(&mut expired).poll(&mut cx).is_pending());
        deadlines.advance(Duration::from_millis(rearmed));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(Pin::new(&mut expired).poll(&mut cx).is_ready());
    }

    #[test]
    fn each_connection_has_its_own_slot_and_gives_it_back() {
        let deadlines = Deadlines::stopped();
        let a = deadlines.connection();
        let b = deadlines.connection();
        let base = deadlines.clock.base;
        let (ca, cb) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let mut sa = a.sleep_until(base + Duration::from_millis(100));
        let mut sb = b.sleep_until(base + Duration::from_millis(200));
        assert!(poll(&mut sa, &ca).is_pending() && poll(&mut sb, &cb).is_pending());
        deadlines.advance(Duration::from_millis(150));
        assert_eq!(
            (ca.0.load(Ordering::SeqCst), cb.0.load(Ordering::SeqCst)),
            (1, 0)
        );
        assert_eq!(deadlines.open(), 2);
        drop((sa, a));
        assert_eq!(deadlines.open(), 1);
        let _c = deadlines.connection();
        assert_eq!(deadlines.open(), 2);
        assert_eq!(
            deadlines.clock.slots().live.len(),
            2,
            "the freed slot is reused"
        );
        drop(sb);
    }
}
