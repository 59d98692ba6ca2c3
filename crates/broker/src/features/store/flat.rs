//! Fixed-size tables for the in-memory store's small per-login and per-session records
//! (consumed Assertion IDs, honoured LogoutRequest IDs, activity marks, the IdP-initiated
//! logout index): no allocation per entry, a byte budget that is the table's size.
//!
//! - A record is a row of `W` 32-bit words: words 0–3 the key, word 4 the expiry, the rest the
//!   record's own value. The key is 128 bits of an HMAC-SHA-256 under a key drawn at start
//!   ([`Keyed`]), so nobody outside the process can aim two IDs at one key or one bucket.
//!   Two different IDs sharing a key (probability about n²/2¹²⁹) read as the same record;
//!   docs/THREATS.md (ST1) says why each table fails closed then.
//! - The expiry is in whole seconds of the store's own monotonic clock ([`Clock`]); a row
//!   whose expiry has passed is free. Rows live at least their TTL and at most 2 s more.
//! - Rows sit in buckets of [`BUCKET`] (32); each key may live in either of two buckets (chosen
//!   by its digest) and a new one goes to the emptier: two choices keep the buckets even, so
//!   a table is usable to about 90 % of its rows before a bucket pair is full.
//!   Every operation reads at most `2 × BUCKET` rows under one shard's lock: constant work.
//! - Memory is allocated zeroed, so the pages become resident as rows land on them; since
//!   keys spread uniformly, a table is resident soon after its first few rows per page, and
//!   stays so: its cost is its budget, whatever the load.
//!
//! May import: nothing of the broker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rows per bucket.
pub(crate) const BUCKET: usize = 32;
/// Most shards (locks) per table.
const SHARDS: usize = 64;

/// A record's key: 128 bits of a keyed digest.
pub(crate) type Key = [u32; 4];

/// The process's digest key: HMAC-SHA-256, truncated to 128 bits, over a table tag and the
/// length-prefixed parts (so parts cannot shift into each other).
pub(crate) struct Keyed(ring::hmac::Key);

impl Keyed {
    /// A fresh random key (never leaves the process). `None` when the system has no
    /// randomness.
    pub(crate) fn random() -> Option<Keyed> {
        let rng = ring::rand::SystemRandom::new();
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .ok()
            .map(Keyed)
    }

    pub(crate) fn key(&self, tag: u8, parts: &[&[u8]]) -> Key {
        let mut ctx = ring::hmac::Context::with_key(&self.0);
        ctx.update(&[tag]);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        let tag = ctx.sign();
        let mut key = [0u32; 4];
        for (k, chunk) in key.iter_mut().zip(tag.as_ref().chunks_exact(4)) {
            let mut w = [0u8; 4];
            w.copy_from_slice(chunk);
            *k = u32::from_le_bytes(w);
        }
        key
    }
}

/// Whole seconds since the store started, plus one (0 marks a never-used row).
#[derive(Clone, Copy)]
pub(crate) struct Clock(Instant);

impl Clock {
    pub(crate) fn start() -> Clock {
        Clock(Instant::now())
    }

    /// This clock `secs` later (tests: time passing without waiting).
    #[cfg(test)]
    pub(crate) fn advanced(self, secs: u64) -> Option<Clock> {
        self.0.checked_sub(Duration::from_secs(secs)).map(Clock)
    }

    pub(crate) fn now(&self) -> u32 {
        u32::try_from(self.0.elapsed().as_secs())
            .unwrap_or(u32::MAX - 1)
            .saturating_add(1)
    }

    /// The expiry of a row written at `now` for `ttl`: at least `ttl` away whatever the
    /// fraction of a second `now` stands for.
    pub(crate) fn until(now: u32, ttl: Duration) -> u32 {
        let secs = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
        now.saturating_add(secs)
            .saturating_add(u32::from(ttl.subsec_nanos() > 0))
            .saturating_add(1)
    }
}

/// Where [`Table::entry`] found room for a key.
pub(crate) enum Spot<'a, const W: usize> {
    /// A live row with this key.
    Found(&'a mut [u32; W]),
    /// A free row (never used, or expired), in the emptier of the key's two buckets.
    Free(&'a mut [u32; W]),
    /// No free row: the live row the caller's `victim` ranked first (lowest score).
    Victim(&'a mut [u32; W]),
    /// No free row and no row the caller may replace.
    Full,
}

/// A fixed-size table of `W`-word rows (see the module documentation).
pub(crate) struct Table<const W: usize> {
    shards: Box<[Mutex<Vec<[u32; W]>>]>,
    /// Buckets per shard.
    buckets: usize,
}

impl<const W: usize> Table<W> {
    /// Bytes of one row.
    pub(crate) const ROW_BYTES: usize = 4 * W;

    /// The largest table whose rows fit in `budget` bytes (at least one bucket).
    pub(crate) fn with_budget(budget: u64) -> Self {
        let rows = usize::try_from(budget / Self::ROW_BYTES as u64).unwrap_or(usize::MAX);
        let buckets = (rows / BUCKET).max(1);
        // Each shard keeps at least 64 buckets (2,048 rows): the shard is one choice, so
        // with fewer the most loaded shard fills while the others still have room (a 1 MiB
        // table at 16 buckets a shard refused its first key at 81 % of its rows).
        let shards = SHARDS.min(buckets / 64).max(1);
        let per_shard = buckets / shards;
        Table {
            shards: (0..shards)
                .map(|_| Mutex::new(vec![[0u32; W]; per_shard * BUCKET]))
                .collect(),
            buckets: per_shard,
        }
    }

    /// Rows in the table.
    #[cfg(test)]
    pub(crate) fn rows(&self) -> usize {
        self.shards.len() * self.buckets * BUCKET
    }

    /// The key's shard and its two bucket starts.
    fn place(&self, key: &Key) -> (usize, usize, usize) {
        let h1 = u64::from(key[0]) | (u64::from(key[1]) << 32);
        let h2 = u64::from(key[2]) | (u64::from(key[3]) << 32);
        let shard = (h1 % self.shards.len() as u64) as usize;
        let b1 = ((h1 >> 16) % self.buckets as u64) as usize;
        let b2 = (h2 % self.buckets as u64) as usize;
        (shard, b1 * BUCKET, b2 * BUCKET)
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, Vec<[u32; W]>> {
        // Rows are plain words: a panic elsewhere cannot leave one half-meaningful enough to
        // matter, so a poisoned lock is taken as is.
        self.shards[shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on where `key` is or could go, under the shard's lock. `victim` scores a live
    /// row of another key that may be replaced when there is no free row (`None`: never).
    pub(crate) fn entry<R>(
        &self,
        key: &Key,
        now: u32,
        victim: impl Fn(&[u32; W]) -> Option<u64>,
        f: impl FnOnce(Spot<'_, W>) -> R,
    ) -> R {
        let (shard, b1, b2) = self.place(key);
        let mut rows = self.lock(shard);
        let candidates = (b1..b1 + BUCKET).chain((b2..b2 + BUCKET).filter(|_| b2 != b1));
        let mut found = None;
        // Per bucket: free rows (count, first) and replaceable rows (count, lowest score).
        let mut free = [(0usize, None), (0usize, None)];
        let mut worst: [(usize, Option<(u64, usize)>); 2] = [(0, None), (0, None)];
        let bucket_of = |i: usize| usize::from(!(b1..b1 + BUCKET).contains(&i));
        for i in candidates.clone() {
            let row = &rows[i];
            let live = row[4] > now;
            if live && row[..4] == key[..] {
                found = Some(i);
                break;
            }
            if !live {
                let b = bucket_of(i);
                free[b].0 += 1;
                free[b].1.get_or_insert(i);
            }
        }
        // Only when there is no free row are the live rows scored (`victim` may cost more
        // than a comparison: the logout index looks the session up).
        if found.is_none() && free[0].0 + free[1].0 == 0 {
            for i in candidates {
                if let Some(score) = victim(&rows[i]) {
                    let b = bucket_of(i);
                    worst[b].0 += 1;
                    if worst[b].1.is_none_or(|(s, _)| score < s) {
                        worst[b].1 = Some((score, i));
                    }
                }
            }
        }
        // Two choices: the bucket with more room takes the new row, for free rows and for
        // replaceable ones alike, so neither kind of filling piles into one bucket.
        let pick_free = if free[1].0 > free[0].0 {
            free[1].1
        } else {
            free[0].1.or(free[1].1)
        };
        let pick_victim = match (worst[0], worst[1]) {
            ((n0, Some(v0)), (n1, Some(v1))) => Some(if n1 > n0 || (n1 == n0 && v1.0 < v0.0) {
                v1.1
            } else {
                v0.1
            }),
            ((_, v), (_, None)) | ((_, None), (_, v)) => v.map(|(_, i)| i),
        };
        let spot = if let Some(i) = found {
            Spot::Found(&mut rows[i])
        } else if let Some(i) = pick_free {
            Spot::Free(&mut rows[i])
        } else if let Some(i) = pick_victim {
            Spot::Victim(&mut rows[i])
        } else {
            Spot::Full
        };
        f(spot)
    }

    /// A copy of the live row with `key`.
    pub(crate) fn get(&self, key: &Key, now: u32) -> Option<[u32; W]> {
        self.entry(
            key,
            now,
            |_| None,
            |spot| match spot {
                Spot::Found(row) => Some(*row),
                _ => None,
            },
        )
    }

    /// Frees the row with `key`, if any.
    pub(crate) fn remove(&self, key: &Key, now: u32) {
        self.entry(
            key,
            now,
            |_| None,
            |spot| {
                if let Spot::Found(row) = spot {
                    *row = [0; W];
                }
            },
        );
    }

    /// Live rows now (a scan of the whole table: for tests and reports, not request paths).
    pub(crate) fn live(&self, now: u32) -> u64 {
        (0..self.shards.len())
            .map(|s| self.lock(s).iter().filter(|r| r[4] > now).count() as u64)
            .sum()
    }
}

/// Writes `key`, `until` and nothing else into `row` (its value words zeroed).
pub(crate) fn claim<const W: usize>(row: &mut [u32; W], key: &Key, until: u32) {
    *row = [0; W];
    row[..4].copy_from_slice(key);
    row[4] = until;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed() -> Keyed {
        Keyed::random().unwrap()
    }

    #[test]
    fn rows_are_found_until_they_expire_and_free_after() {
        let k = keyed();
        let t = Table::<6>::with_budget(1 << 16);
        let a = k.key(1, &[b"a"]);
        let written = t.entry(
            &a,
            10,
            |_| None,
            |spot| match spot {
                Spot::Free(row) => {
                    claim(row, &a, 20);
                    row[5] = 7;
                    true
                }
                _ => false,
            },
        );
        assert!(written);
        assert_eq!(t.get(&a, 19).map(|r| r[5]), Some(7));
        assert_eq!(t.get(&a, 20), None, "expired at its second");
        assert_eq!(t.live(19), 1);
        assert_eq!(t.live(20), 0);
        t.remove(&a, 10);
        assert_eq!(t.get(&a, 11), None);
    }

    #[test]
    fn keys_are_separated_by_tag_and_by_part_boundaries() {
        let k = keyed();
        assert_ne!(k.key(1, &[b"ab", b"c"]), k.key(1, &[b"a", b"bc"]));
        assert_ne!(k.key(1, &[b"abc"]), k.key(2, &[b"abc"]));
        assert_eq!(k.key(1, &[b"abc"]), k.key(1, &[b"abc"]));
        assert_ne!(
            keyed().key(1, &[b"abc"]),
            k.key(1, &[b"abc"]),
            "a key per process"
        );
    }

    #[test]
    fn a_table_fills_to_most_of_its_rows_and_then_reports_full() {
        let k = keyed();
        let t = Table::<5>::with_budget(1 << 20);
        let rows = t.rows() as u64;
        assert!(rows * 20 <= 1 << 20);
        let mut n = 0u64;
        loop {
            let key = k.key(1, &[&n.to_le_bytes()]);
            let ok = t.entry(
                &key,
                1,
                |_| None,
                |spot| match spot {
                    Spot::Free(row) => {
                        claim(row, &key, 100);
                        true
                    }
                    _ => false,
                },
            );
            if !ok {
                break;
            }
            n += 1;
        }
        assert_eq!(t.live(1), n);
        // Two choices of eight rows: the first refusal comes late.
        assert!(n * 100 >= rows * 85, "first refusal at {n} of {rows} rows");
        // Once expired, everything is free again.
        assert_eq!(t.live(100), 0);
    }

    #[test]
    fn the_clock_never_shortens_a_ttl() {
        assert_eq!(Clock::until(5, Duration::from_secs(10)), 16);
        assert_eq!(Clock::until(5, Duration::from_millis(10_001)), 17);
        assert_eq!(
            Clock::until(u32::MAX - 1, Duration::from_secs(10)),
            u32::MAX
        );
        assert!(Clock::start().now() >= 1);
    }
}
