//! `varco-loadgen fsync`: how long one `fdatasync` takes on the disk the audit chain lives
//! on, as a distribution, so that the group commit's design rests on this disk's numbers
//! rather than on a guess (issue 20).
//!
//! Each round appends `--bytes` bytes to one file (what one group commit writes: a record is
//! ~17 KB with the whole base64 Response) and times the `fdatasync` that follows, the way the
//! audit syncer does. With `--rate R` the rounds are paced (round i starts at `start + i/R`),
//! as syncs are when logins arrive at that rate; without it they run back to back. The
//! process's own CPU time (user + system, `/proc/self/stat`) over the rounds tells how much
//! of a core a sync costs besides its wall time.
//!
//! What the disk charges for (issue 20, target 2): `--per-sync K` makes one `fdatasync` per K
//! appends (K = 1.5: two syncs per three appends, as the audit's group commit did at 2,000
//! logins/s), so the bytes and the sync count vary apart; `--prealloc` first writes the whole
//! file with zeros (and syncs it, untimed), then overwrites it in place, as PostgreSQL fills a
//! WAL segment before use: the timed syncs then flush data only, with no file size or extent
//! change to commit through the file system's journal. The kernel's I/O stall total
//! (`/proc/pressure/io`, "some" and "full") over the timed rounds is printed with the syncs.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::stack::cpu_time;
use crate::{machine_line, print_latency};

/// How the appends are made durable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Appends per `fdatasync` (at least 1).
    pub(crate) per_sync: f64,
    /// Zeros written (and synced) over the whole file before the timed rounds.
    pub(crate) prealloc: bool,
}

/// The block device's counters (`/sys/dev/block/M:m/stat`) of the device holding `dir`:
/// write requests, sectors written, flush requests. Machine-wide: other writers count too.
fn disk_counters(dir: &Path) -> Option<[u64; 3]> {
    use std::os::unix::fs::MetadataExt as _;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let text = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/stat")).ok()?;
    let f: Vec<u64> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    Some([*f.get(4)?, *f.get(6)?, f.get(14).copied().unwrap_or(0)])
}

/// Whether append `i` (from 0) is followed by a sync when syncs come once per `per_sync`
/// appends: the last append of a run is always synced.
fn syncs_after(i: usize, n: usize, per_sync: f64) -> bool {
    let k = per_sync.max(1.0);
    i + 1 == n || ((i + 1) as f64 / k).floor() > (i as f64 / k).floor()
}

/// Runs `n` appends of `bytes` each in a file under `dir` (removed afterwards), syncing as
/// `shape` says, and prints the sync latency percentiles, the CPU per append and the I/O
/// pressure over the run.
pub(crate) fn run(
    n: usize,
    bytes: usize,
    rate: Option<f64>,
    shape: Shape,
    dir: &Path,
) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", e))?;
    let path = dir.join(format!("varco-fsync-{}.bin", std::process::id()));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| io("cannot create a file in", e))?;
    let block = vec![b'x'; bytes.max(1)];
    let total = (block.len() * n) as u64;
    if shape.prealloc {
        let zeros = vec![0u8; 1 << 20];
        let mut left = total;
        while left > 0 {
            let chunk = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..chunk])
                .map_err(|e| io("preallocate", e))?;
            left -= chunk as u64;
        }
        file.sync_all().map_err(|e| io("fsync", e))?;
    }
    println!("{}", machine_line());
    println!(
        "fdatasync: {n} appends of {bytes} bytes, one sync per {} appends, {}, {} in {}",
        shape.per_sync.max(1.0),
        if shape.prealloc {
            "over a preallocated file (zeros written and synced first)"
        } else {
            "growing the file"
        },
        rate.map_or("back to back".to_owned(), |r| format!("{r}/s")),
        dir.display()
    );
    let pid = std::process::id();
    let cpu_before = cpu_time(pid);
    let pressure_before = crate::probe::pressure();
    let disk_before = disk_counters(dir);
    let start = Instant::now();
    let mut sync_us = Vec::with_capacity(n);
    let mut result = Ok(());
    for i in 0..n {
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / r);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let written = if shape.prealloc {
            file.write_all_at(&block, (i * block.len()) as u64)
        } else {
            file.write_all(&block)
        };
        if let Err(e) = written {
            result = Err(io("write", e));
            break;
        }
        if !syncs_after(i, n, shape.per_sync) {
            continue;
        }
        let t = Instant::now();
        if let Err(e) = file.sync_data() {
            result = Err(io("fdatasync", e));
            break;
        }
        sync_us.push(t.elapsed().as_micros() as u64);
    }
    let wall = start.elapsed();
    let pressure_after = crate::probe::pressure();
    let disk_after = disk_counters(dir);
    let cpu = cpu_before
        .zip(cpu_time(pid))
        .map(|(a, b)| b.saturating_sub(a));
    let _ = std::fs::remove_file(&path);
    result?;
    let syncs = sync_us.len().max(1) as f64;
    let mean = sync_us.iter().sum::<u64>() as f64 / syncs / 1000.0;
    print_latency("fdatasync", &mut sync_us);
    let secs = wall.as_secs_f64();
    println!(
        "mean {mean:.3} ms; {:.0} syncs/s, {:.0} appends/s, {:.1} MB/s; CPU (user + system) {} per append",
        syncs / secs,
        n as f64 / secs,
        total as f64 / secs / 1e6,
        cpu.map_or("unknown".to_owned(), |c| format!(
            "{:.0} µs",
            c.as_secs_f64() * 1e6 / n.max(1) as f64
        )),
    );
    if let (Some(a), Some(b)) = (disk_before, disk_after) {
        let d = |k: usize| b[k].saturating_sub(a[k]) as f64;
        println!(
            "disk (whole device, other writers included): {:.2} write requests, {:.1} KB written, {:.2} flushes per append; {:.0} write requests/s",
            d(0) / n.max(1) as f64,
            d(1) * 512.0 / 1000.0 / n.max(1) as f64,
            d(2) / n.max(1) as f64,
            d(0) / secs,
        );
    }
    for ((what, some1, full1), (_, some0, full0)) in pressure_after.iter().zip(&pressure_before) {
        if what == "io" {
            println!(
                "pressure io over the run: some {:.1} ms, full {:.1} ms",
                some1.saturating_sub(*some0) as f64 / 1000.0,
                full1.saturating_sub(*full0) as f64 / 1000.0
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::syncs_after;

    #[test]
    fn syncs_come_once_per_k_appends_and_after_the_last() {
        let count = |n: usize, k: f64| (0..n).filter(|&i| syncs_after(i, n, k)).count();
        assert_eq!(count(12, 1.0), 12);
        assert_eq!(count(12, 1.5), 8);
        assert_eq!(count(12, 4.0), 3);
        assert_eq!(count(12, 8.0), 2);
        assert_eq!(count(3, 0.5), 3);
    }
}
