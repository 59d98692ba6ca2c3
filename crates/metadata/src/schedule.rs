//! When to fetch a source again: after a success, from `cacheDuration` clamped to the source's
//! bounds and never later than half the time left before `validUntil`; after a failure, with
//! exponential backoff. Both subtract a jitter (up to a tenth of the interval) taken from a
//! random value the caller supplies, so that many brokers do not hit a registry in step.
//!
//! Pure: `now` and the random value are arguments.

use std::time::{Duration, SystemTime};

use crate::validity::Validity;

/// First retry delay after a failure; doubled per consecutive failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// Longest delay between retries of a failing source (unless `max` is shorter).
pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// What a schedule saturates to when `now` plus an interval does not fit in a
/// [`SystemTime`]: about 10,000 years from the Unix epoch, later than anything real.
pub fn far_future() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(315_537_897_599)
}

/// `now + interval`, saturating to [`far_future`] (or `now`, if even later) instead of
/// panicking on overflow.
fn after(now: SystemTime, interval: Duration) -> SystemTime {
    now.checked_add(interval)
        .unwrap_or_else(|| far_future().max(now))
}

/// Per-source refresh bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshBounds {
    /// Shortest interval between successful refreshes.
    pub min: Duration,
    /// Longest interval between successful refreshes.
    pub max: Duration,
}

impl Default for RefreshBounds {
    fn default() -> Self {
        RefreshBounds {
            min: Duration::from_secs(300),
            max: Duration::from_secs(6 * 3600),
        }
    }
}

/// Shortens `interval` by up to a tenth, in proportion to `random` / `u32::MAX`.
fn jittered(interval: Duration, random: u32) -> Duration {
    let tenth = interval / 10;
    let cut = tenth.mul_f64(f64::from(random) / f64::from(u32::MAX));
    interval.saturating_sub(cut)
}

/// The next fetch after a document with `validity` was accepted at `now`.
pub fn next_after_success(
    bounds: RefreshBounds,
    validity: &Validity,
    now: SystemTime,
    random: u32,
) -> SystemTime {
    let mut interval = validity.cache_duration.unwrap_or(bounds.max);
    if let Some(left) = validity.remaining(now) {
        interval = interval.min(left / 2);
    }
    let interval = interval.clamp(bounds.min, bounds.max.max(bounds.min));
    after(now, jittered(interval, random))
}

/// The next fetch after the `consecutive_failures`-th failure in a row (1 for the first) at
/// `now`: [`BACKOFF_BASE`] (or `bounds.min` if shorter) doubled per failure, at most
/// [`BACKOFF_CAP`] (or `bounds.max` if shorter), jittered.
pub fn next_after_failure(
    bounds: RefreshBounds,
    consecutive_failures: u32,
    now: SystemTime,
    random: u32,
) -> SystemTime {
    let base = BACKOFF_BASE.min(bounds.min).max(Duration::from_secs(1));
    let cap = BACKOFF_CAP.min(bounds.max).max(base);
    let doublings = consecutive_failures.saturating_sub(1).min(20);
    let delay = base.saturating_mul(1 << doublings).min(cap);
    after(now, jittered(delay, random))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + S(1_700_000_000)
    }

    fn bounds() -> RefreshBounds {
        RefreshBounds {
            min: S(600),
            max: S(86_400),
        }
    }

    #[test]
    fn cache_duration_is_clamped_to_bounds() {
        let v = |c| Validity {
            valid_until: None,
            cache_duration: Some(c),
        };
        assert_eq!(
            next_after_success(bounds(), &v(S(7200)), t0(), 0),
            t0() + S(7200)
        );
        assert_eq!(
            next_after_success(bounds(), &v(S(5)), t0(), 0),
            t0() + S(600)
        );
        assert_eq!(
            next_after_success(bounds(), &v(S(10 * 86_400)), t0(), 0),
            t0() + S(86_400)
        );
        // No cacheDuration: the upper bound.
        assert_eq!(
            next_after_success(bounds(), &Validity::default(), t0(), 0),
            t0() + S(86_400)
        );
    }

    #[test]
    fn refresh_comes_before_valid_until() {
        let v = Validity {
            valid_until: Some(t0() + S(4 * 3600)),
            cache_duration: Some(S(86_400)),
        };
        assert_eq!(
            next_after_success(bounds(), &v, t0(), 0),
            t0() + S(2 * 3600)
        );
    }

    #[test]
    fn jitter_only_shortens_by_at_most_a_tenth() {
        let v = Validity {
            valid_until: None,
            cache_duration: Some(S(10_000)),
        };
        let full = next_after_success(bounds(), &v, t0(), u32::MAX);
        assert_eq!(full, t0() + S(9000));
        let half = next_after_success(bounds(), &v, t0(), u32::MAX / 2);
        assert!(half > full && half < t0() + S(10_000));
    }

    #[test]
    fn huge_bounds_saturate_instead_of_overflowing() {
        let huge = RefreshBounds {
            min: Duration::MAX,
            max: Duration::MAX,
        };
        let late = SystemTime::UNIX_EPOCH + S(300_000_000_000);
        assert_eq!(
            next_after_success(huge, &Validity::default(), late, 0),
            far_future()
        );
        // The last representable second: any retry delay overflows.
        let end = SystemTime::UNIX_EPOCH + S(i64::MAX as u64);
        assert_eq!(next_after_failure(bounds(), 1, end, 0), end);
        assert_eq!(
            next_after_success(bounds(), &Validity::default(), end, 0),
            end
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let d = |n| {
            next_after_failure(bounds(), n, t0(), 0)
                .duration_since(t0())
                .unwrap()
        };
        assert_eq!(d(1), S(30));
        assert_eq!(d(2), S(60));
        assert_eq!(d(3), S(120));
        assert_eq!(d(7), S(1920));
        assert_eq!(d(8), S(3600));
        assert_eq!(d(u32::MAX), S(3600));
        // Short bounds shorten the base and the cap.
        let tight = RefreshBounds {
            min: S(2),
            max: S(10),
        };
        let t = |n| {
            next_after_failure(tight, n, t0(), 0)
                .duration_since(t0())
                .unwrap()
        };
        assert_eq!(t(1), S(2));
        assert_eq!(t(2), S(4));
        assert_eq!(t(3), S(8));
        assert_eq!(t(4), S(10));
    }
}
