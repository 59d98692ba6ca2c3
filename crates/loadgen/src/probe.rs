//! Is the whole machine stalling? (`--probe`, issue 20 target 2.) Over the measured phase:
//!
//! - one thread per core, pinned there (`taskset -p`) and made real-time (`chrt -f -p`, which
//!   needs root or `CAP_SYS_NICE`; without it the thread stays a normal one and says so),
//!   sleeping [`PERIOD`] at a time and noting each wake-up later than [`GAP`] past its due
//!   time. A `SCHED_FIFO` thread preempts every normal thread at once, so on its core such a
//!   gap is time the kernel could not run anything: the hypervisor took the vCPU, or the
//!   kernel ran with interrupts off. A gap on every core at the same moment is the VM
//!   stopping;
//! - `/proc/stat` read every [`STEAL_EVERY`]: the steal time each core reported in that
//!   window (what the hypervisor says it took);
//! - `/proc/pressure/{cpu,io,memory}` before and after (the kernel's stall totals).
//!
//! Times are microseconds from the measured phase's start, as in the login timeline
//! (`timeline.rs`). The cost: about 2,000 wake-ups a second per core.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a probe thread sleeps between readings.
const PERIOD: Duration = Duration::from_micros(500);
/// A wake-up this much later than due is a gap.
const GAP: Duration = Duration::from_millis(1);
/// How often `/proc/stat` is read for steal.
const STEAL_EVERY: Duration = Duration::from_millis(20);

/// A wake-up that came late: on `cpu`, `at_us` (the due time) from the start, `late_us` late.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gap {
    pub(crate) cpu: usize,
    pub(crate) at_us: u64,
    pub(crate) late_us: u64,
}

/// Steal reported by `cpu` in the window ending at `at_us`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Steal {
    pub(crate) cpu: usize,
    pub(crate) at_us: u64,
    pub(crate) steal_us: u64,
}

/// What the probe saw.
pub(crate) struct Seen {
    pub(crate) gaps: Vec<Gap>,
    pub(crate) steal: Vec<Steal>,
    /// Per core: wake-ups, and whether the thread got real-time priority.
    pub(crate) cores: Vec<(usize, u64, bool)>,
    /// `/proc/pressure/*` "some"/"full" totals (µs) gained over the run, by resource.
    pub(crate) pressure: Vec<(String, u64, u64)>,
    /// Steal over the whole run, per core (µs).
    pub(crate) steal_total_us: Vec<u64>,
}

/// What one core's thread returns: its core, its gaps, its wake-ups, whether real-time.
type CoreSeen = (usize, Vec<Gap>, u64, bool);

/// The running probe.
pub(crate) struct Probe {
    stop: Arc<AtomicBool>,
    cores: Vec<JoinHandle<CoreSeen>>,
    stealer: JoinHandle<Vec<Steal>>,
    pressure0: Vec<(String, u64, u64)>,
    stat0: Vec<[u64; 8]>,
}

fn tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Per core: user, nice, system, idle, iowait, irq, softirq, steal (clock ticks).
fn cpu_stat() -> Vec<[u64; 8]> {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let mut v = [0u64; 8];
            for (slot, f) in v.iter_mut().zip(l.split_whitespace().skip(1)) {
                *slot = f.parse().unwrap_or(0);
            }
            v
        })
        .collect()
}

/// "some" and "full" totals (µs) of `/proc/pressure/<what>`.
pub(crate) fn pressure() -> Vec<(String, u64, u64)> {
    ["cpu", "io", "memory"]
        .iter()
        .map(|what| {
            let text =
                std::fs::read_to_string(format!("/proc/pressure/{what}")).unwrap_or_default();
            let total = |kind: &str| {
                text.lines()
                    .find(|l| l.starts_with(kind))
                    .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            ((*what).to_owned(), total("some"), total("full"))
        })
        .collect()
}

fn tick_us() -> u64 {
    1_000_000 / crate::stack::clock_ticks().max(1)
}

impl Probe {
    /// Starts the probe threads; times count from `start`.
    pub(crate) fn start(start: Instant) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let ncpu = cpu_stat().len().max(ncpu);
        let cores = (0..ncpu)
            .map(|cpu| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let me = tid().map(|t| t.to_string());
                    let (pinned, rt) = match &me {
                        Some(t) => (
                            quiet(Command::new("taskset").args(["-p", "-c", &cpu.to_string(), t])),
                            quiet(Command::new("chrt").args(["-f", "-p", "50", t])),
                        ),
                        None => (false, false),
                    };
                    let mut gaps = Vec::new();
                    let mut wakeups = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let due = Instant::now() + PERIOD;
                        std::thread::sleep(PERIOD);
                        let now = Instant::now();
                        wakeups += 1;
                        let late = now.saturating_duration_since(due);
                        if late > GAP {
                            gaps.push(Gap {
                                cpu,
                                at_us: due.saturating_duration_since(start).as_micros() as u64,
                                late_us: late.as_micros() as u64,
                            });
                        }
                    }
                    (cpu, gaps, wakeups, pinned && rt)
                })
            })
            .collect();
        let s = stop.clone();
        let stealer = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut last = cpu_stat();
            let tick = tick_us();
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(STEAL_EVERY);
                let now = cpu_stat();
                let at_us = start.elapsed().as_micros() as u64;
                for (cpu, (a, b)) in now.iter().zip(&last).enumerate() {
                    let steal = a[7].saturating_sub(b[7]);
                    if steal > 0 {
                        out.push(Steal {
                            cpu,
                            at_us,
                            steal_us: steal * tick,
                        });
                    }
                }
                last = now;
            }
            out
        });
        Probe {
            stop,
            cores,
            stealer,
            pressure0: pressure(),
            stat0: cpu_stat(),
        }
    }

    /// Stops the threads and returns what they saw.
    pub(crate) fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let mut gaps = Vec::new();
        let mut cores = Vec::new();
        for h in self.cores {
            if let Ok((cpu, g, n, rt)) = h.join() {
                gaps.extend(g);
                cores.push((cpu, n, rt));
            }
        }
        gaps.sort_by_key(|g| g.at_us);
        let steal = self.stealer.join().unwrap_or_default();
        let after = pressure();
        let pressure = after
            .into_iter()
            .zip(&self.pressure0)
            .map(|((w, s, f), (_, s0, f0))| (w, s.saturating_sub(*s0), f.saturating_sub(*f0)))
            .collect();
        let tick = tick_us();
        let steal_total_us = cpu_stat()
            .iter()
            .zip(&self.stat0)
            .map(|(a, b)| a[7].saturating_sub(b[7]) * tick)
            .collect();
        Seen {
            gaps,
            steal,
            cores,
            pressure,
            steal_total_us,
        }
    }
}

/// `varco-loadgen stall [--duration S] [--burn N]`: the probe alone for S seconds (default
/// 10), with N threads spinning meanwhile (default 0). With the machine otherwise idle it
/// says whether the VM stops on its own; with `--burn 2` on two cores, how much CPU the
/// hypervisor lets the VM have: a VM throttled by a CPU quota stops on every core at once,
/// and starts again at each period's boundary, so the wake-ups that end the gaps fall at
/// one phase of the period (printed modulo 100 ms, the usual quota period).
pub(crate) fn stall_mode(seconds: f64, burn: usize) {
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let burners: Vec<_> = (0..burn)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect();
    let probe = Probe::start(start);
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let seen = probe.finish();
    stop.store(true, Ordering::Relaxed);
    for b in burners {
        let _ = b.join();
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "stall probe: {:.1} s, {burn} spinning threads; load average {}",
        wall,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (cpu, n, rt) in &seen.cores {
        let gaps: Vec<&Gap> = seen.gaps.iter().filter(|g| g.cpu == *cpu).collect();
        let sum: u64 = gaps.iter().map(|g| g.late_us).sum();
        let max = gaps.iter().map(|g| g.late_us).max().unwrap_or(0);
        println!(
            "cpu{cpu}: {n} wake-ups{}, {} gaps over 1 ms, {:.1} ms in all ({:.2} % of the time), max {:.2} ms; steal {:.0} ms",
            if *rt {
                " (SCHED_FIFO)"
            } else {
                " (not real-time)"
            },
            gaps.len(),
            sum as f64 / 1000.0,
            sum as f64 / 1e4 / wall,
            max as f64 / 1000.0,
            seen.steal_total_us.get(*cpu).copied().unwrap_or(0) as f64 / 1000.0
        );
    }
    // Phase of each gap's end (the thread running again) within a 100 ms period.
    let mut bins = [0u32; 10];
    for g in &seen.gaps {
        let end = g.at_us + g.late_us;
        bins[((end % 100_000) / 10_000) as usize] += 1;
    }
    println!(
        "gap ends by phase of a 100 ms period (10 ms bins): {}",
        bins.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (what, some, full) in &seen.pressure {
        println!(
            "pressure {what}: some {:.1} ms, full {:.1} ms",
            *some as f64 / 1000.0,
            *full as f64 / 1000.0
        );
    }
}
