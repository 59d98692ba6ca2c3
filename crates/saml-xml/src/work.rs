//! A count of the work done on untrusted input, so that tests can prove bounds by counting
//! instead of timing (issue 17).
//!
//! Every loop over attacker data in this crate (and in `xmldsig` and `saml`, through
//! [`record`]) adds its iterations to a per-thread counter: tokens read, attributes and
//! declarations looked at, scope entries scanned, nodes canonicalized, comparisons made to
//! deduplicate or sort, bytes decoded or inflated. A test reads [`steps`] before and after a
//! call and asserts that the difference is at most a small constant times the input length.
//!
//! Why always on and not behind `cfg(test)` or a feature: the counted code must be the code
//! that runs in production, and a feature would be unified into every build of the workspace
//! anyway. The cost is a register increment in each loop and one thread-local addition per
//! call (the loops count into a local variable and publish it once), which the benchmarks in
//! docs/PERFORMANCE.md do not resolve. The counter never decides anything: nothing reads it
//! but tests, benchmarks and the fuzz target that searches for expensive inputs.

use std::cell::Cell;

thread_local! {
    static STEPS: Cell<u64> = const { Cell::new(0) };
}

/// Adds `n` steps of work to this thread's counter. Call it once per operation with a
/// locally accumulated count, not once per iteration.
pub fn record(n: u64) {
    STEPS.with(|s| s.set(s.get().wrapping_add(n)));
}

/// The steps counted on this thread so far. Subtract two readings to get the work of what
/// ran between them (on this thread).
pub fn steps() -> u64 {
    STEPS.with(Cell::get)
}

/// Runs `f` and returns its result with the steps it counted on this thread.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = steps();
    let r = f();
    (r, steps().wrapping_sub(before))
}
