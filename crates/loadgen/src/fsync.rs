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

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::stack::cpu_time;
use crate::{machine_line, print_latency};

/// Runs `n` append-then-`fdatasync` rounds of `bytes` each in a file under `dir` (removed
/// afterwards) and prints the sync latency percentiles and the CPU per round.
pub(crate) fn run(n: usize, bytes: usize, rate: Option<f64>, dir: &Path) -> Result<(), String> {
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
    println!("{}", machine_line());
    println!(
        "fdatasync: {n} rounds of {bytes} bytes appended then synced, {} in {}",
        rate.map_or("back to back".to_owned(), |r| format!("{r}/s")),
        dir.display()
    );
    let pid = std::process::id();
    let cpu_before = cpu_time(pid);
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
        if let Err(e) = file.write_all(&block) {
            result = Err(io("write", e));
            break;
        }
        let t = Instant::now();
        if let Err(e) = file.sync_data() {
            result = Err(io("fdatasync", e));
            break;
        }
        sync_us.push(t.elapsed().as_micros() as u64);
    }
    let wall = start.elapsed();
    let cpu = cpu_before
        .zip(cpu_time(pid))
        .map(|(a, b)| b.saturating_sub(a));
    let _ = std::fs::remove_file(&path);
    result?;
    let rounds = sync_us.len().max(1) as f64;
    let mean = sync_us.iter().sum::<u64>() as f64 / rounds / 1000.0;
    print_latency("fdatasync", &mut sync_us);
    println!(
        "mean {mean:.3} ms; {:.0} rounds/s; CPU (user + system) {} per round",
        rounds / wall.as_secs_f64(),
        cpu.map_or("unknown".to_owned(), |c| format!(
            "{:.0} µs",
            c.as_secs_f64() * 1e6 / rounds
        )),
    );
    Ok(())
}
