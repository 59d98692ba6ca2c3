#!/usr/bin/env python3
"""Where a process's CPU went over an interval, by thread: the load harnesses' attribution.

Usage: scripts/lib/threads-cpu.py PID SECONDS [LABEL]

Reads utime+stime of the whole process (/proc/PID/stat: every thread, exited ones included)
and of each live thread (/proc/PID/task/*/stat) at the start and after SECONDS, and prints
the share of one core each group used: Varco's async workers (`tokio-rt-worker`, tokio's
name; `tokio-runtime-w` in older tokio), its heavy-work threads (`varco-heavy`, the name a blocking thread takes once it runs
heavy work) and the rest (the main and audit threads, and threads that exited in between).
"""
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def ticks(path):
    with open(path) as f:
        text = f.read()
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # Fields 14 and 15 of stat(5) (utime, stime) are 12 and 13 after the name.
    return name, int(fields[11]) + int(fields[12])


def snap(pid):
    groups = {"workers": 0, "heavy": 0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name, t = ticks(f"/proc/{pid}/task/{tid}/stat")
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if name.startswith("tokio-r"):
            groups["workers"] += t
        elif name == "varco-heavy":
            groups["heavy"] += t
    groups["total"] = ticks(f"/proc/{pid}/stat")[1]
    return groups


pid, seconds = int(sys.argv[1]), float(sys.argv[2])
label = sys.argv[3] if len(sys.argv) > 3 else "varco"
before, t0 = snap(pid), time.monotonic()
time.sleep(seconds)
after, t1 = snap(pid), time.monotonic()
wall = t1 - t0
share = {k: (after[k] - before[k]) / TICK / wall for k in after}
# A heavy thread named during the interval carried its earlier ticks in as "workers": the
# split is exact once every heavy thread is named before the interval (the harness warms up).
other = share["total"] - share["workers"] - share["heavy"]
print(
    f"{label} CPU over {wall:.1f} s, in cores: total {share['total']:.3f} = async workers "
    f"{share['workers']:.3f} + heavy threads {share['heavy']:.3f} + other {other:.3f}"
)
