//! Where Varco's CPU time goes by thread, and what wakes its threads: per-thread counters
//! from `/proc/<pid>/task/*` (run time in ns from `schedstat`, user and system ticks from
//! `stat`, voluntary and involuntary context switches from `status`) taken before and after
//! the measured phase, and, with `--perf-stat`, `perf stat` attached to Varco over the same
//! phase for its system calls by kind. Counts per login do not depend on the machine's load
//! the way times do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One thread's counters.
#[derive(Clone, Copy, Default)]
struct Counters {
    run_ns: u64,
    utime: u64,
    stime: u64,
    voluntary: u64,
    involuntary: u64,
}

/// Counters of every thread of a process, by thread id, with its name.
pub(crate) struct Snapshot(BTreeMap<u32, (String, Counters)>);

fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
        .unwrap_or(0)
}

/// The counters of every thread of `pid` now.
pub(crate) fn snapshot(pid: u32) -> Snapshot {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Snapshot(out);
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let p = e.path();
        let read = |f: &str| std::fs::read_to_string(p.join(f)).unwrap_or_default();
        let name = read("comm").trim().to_owned();
        let stat = read("stat");
        let ticks: Vec<u64> = stat
            .rfind(')')
            .map(|i| {
                stat[i + 2..]
                    .split(' ')
                    .skip(11)
                    .take(2)
                    .filter_map(|t| t.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let status = read("status");
        let c = Counters {
            run_ns: read("schedstat")
                .split_whitespace()
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            utime: ticks.first().copied().unwrap_or(0),
            stime: ticks.get(1).copied().unwrap_or(0),
            voluntary: field(&status, "voluntary_ctxt_switches"),
            involuntary: field(&status, "nonvoluntary_ctxt_switches"),
        };
        out.insert(tid, (name, c));
    }
    Snapshot(out)
}

/// Thread names without their trailing number: one row per kind of thread.
fn kind(name: &str) -> String {
    name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
        .to_owned()
}

/// Prints, per kind of thread, what it did between `before` and `after`, per login.
pub(crate) fn report(before: &Snapshot, after: &Snapshot, logins: u64, unit: &str) {
    let n = logins.max(1) as f64;
    let mut rows: BTreeMap<String, (usize, Counters)> = BTreeMap::new();
    for (tid, (name, a)) in &after.0 {
        let b = before.0.get(tid).map(|(_, c)| *c).unwrap_or_default();
        let row = rows.entry(kind(name)).or_default();
        row.0 += 1;
        row.1.run_ns += a.run_ns.saturating_sub(b.run_ns);
        row.1.utime += a.utime.saturating_sub(b.utime);
        row.1.stime += a.stime.saturating_sub(b.stime);
        row.1.voluntary += a.voluntary.saturating_sub(b.voluntary);
        row.1.involuntary += a.involuntary.saturating_sub(b.involuntary);
    }
    println!(
        "varco threads (per {unit}): kind x count: run µs (user/system ticks over the run), voluntary + involuntary context switches"
    );
    let mut total = Counters::default();
    for (k, (count, c)) in &rows {
        if c.run_ns == 0 && c.voluntary + c.involuntary == 0 {
            continue;
        }
        println!(
            "  {k} x{count}: {:.1} µs ({}/{} ticks), {:.2} + {:.2} switches",
            c.run_ns as f64 / 1e3 / n,
            c.utime,
            c.stime,
            c.voluntary as f64 / n,
            c.involuntary as f64 / n
        );
        total.run_ns += c.run_ns;
        total.utime += c.utime;
        total.stime += c.stime;
        total.voluntary += c.voluntary;
        total.involuntary += c.involuntary;
    }
    println!(
        "  all: {:.1} µs ({}/{} ticks: user {:.0} %), {:.2} + {:.2} switches",
        total.run_ns as f64 / 1e3 / n,
        total.utime,
        total.stime,
        total.utime as f64 * 100.0 / (total.utime + total.stime).max(1) as f64,
        total.voluntary as f64 / n,
        total.involuntary as f64 / n
    );
}

/// The events `--perf-stat` counts: the task's clock and switches, every system call, and
/// the calls an ACS post is expected to make, one by one.
const EVENTS: &[&str] = &[
    "task-clock",
    "context-switches",
    "cpu-migrations",
    "page-faults",
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_futex",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_epoll_ctl",
    "syscalls:sys_enter_read",
    "syscalls:sys_enter_recvfrom",
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_fdatasync",
    "syscalls:sys_enter_accept4",
    "syscalls:sys_enter_close",
    "syscalls:sys_enter_getrandom",
    "syscalls:sys_enter_mmap",
    "syscalls:sys_enter_munmap",
    "syscalls:sys_enter_madvise",
    "syscalls:sys_enter_mprotect",
    "syscalls:sys_enter_brk",
    "syscalls:sys_enter_sched_yield",
    "syscalls:sys_enter_clock_gettime",
    "syscalls:sys_enter_statx",
    "syscalls:sys_enter_openat",
];

/// `perf stat` attached to a running process, writing CSV to a file.
pub(crate) struct PerfStat {
    child: Child,
    out: PathBuf,
}

impl PerfStat {
    /// Attaches `perf stat` to every thread of `pid`, counting [`EVENTS`] into `out`.
    pub(crate) fn start(pid: u32, out: &Path) -> Result<PerfStat, String> {
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", &EVENTS.join(","), "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start perf: {e}"))?;
        // perf needs a moment to attach to every thread.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(PerfStat {
            child,
            out: out.to_owned(),
        })
    }

    /// Stops the count and prints each event per login.
    pub(crate) fn finish(mut self, logins: u64, unit: &str) -> Result<(), String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out)
            .map_err(|e| format!("{}: {e}", self.out.display()))?;
        let n = logins.max(1) as f64;
        println!("perf stat on varco (per {unit}, over the measured phase):");
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let f: Vec<&str> = line.split(',').collect();
            let (Some(value), Some(event)) = (f.first(), f.get(2)) else {
                continue;
            };
            match value.parse::<f64>() {
                Ok(v) if *event == "task-clock" => {
                    println!("  {event}: {:.1} µs", v * 1e3 / n);
                }
                Ok(v) => println!("  {event}: {:.2}", v / n),
                Err(_) => println!("  {event}: {value}"),
            }
        }
        Ok(())
    }
}
