"""CPU time and memory of processes and of the machine, read from /proc (Linux).

- A process's CPU seconds are utime + stime of /proc/<pid>/stat (every thread of the process).
- Its peak RSS is VmHWM of /proc/<pid>/status: the high-water mark since the process started.
- The machine's busy seconds are the non-idle, non-iowait jiffies of /proc/stat over all cores;
  what the bench's own processes did not use of them is other work on the machine (contention).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """User and system CPU seconds of a running process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; utime/stime are fields 14/15.
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a running process, in KiB; empty if it is gone."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    except OSError:
        return {}
    return out


def children(pid: int) -> list[int]:
    """Direct children of `pid` (PostgreSQL's backends are children of the postmaster)."""
    found: list[int] = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.parent.name))
    return found


def tree_cpu_seconds(pid: int) -> dict[int, tuple[float, float]]:
    """User and system CPU seconds of `pid` and of each of its direct children, by pid."""
    out: dict[int, tuple[float, float]] = {}
    for p in (pid, *children(pid)):
        seconds = cpu_seconds(p)
        if seconds is not None:
            out[p] = seconds
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (user, nice, system, irq, softirq, steal)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest time is already counted in user time
    return (sum(values[:8]) - idle) / CLOCK_TICKS


@dataclass
class Watched:
    """A named process (or process tree) whose CPU is measured over a phase."""

    name: str
    pid: int
    tree: bool = False  # PostgreSQL: the postmaster and its backends
    # Further instances of the same service (bench --instances), counted with it.
    also: tuple[int, ...] = ()

    def cpu(self) -> dict[int, tuple[float, float]]:
        if self.tree:
            return tree_cpu_seconds(self.pid)
        found = {}
        for pid in (self.pid, *self.also):
            seconds = cpu_seconds(pid)
            if seconds is not None:
                found[pid] = seconds
        return found


@dataclass
class CpuSnapshot:
    by_process: dict[str, dict[int, tuple[float, float]]]
    machine_busy: float
    wall: float


def snapshot(watched: list[Watched], wall: float) -> CpuSnapshot:
    return CpuSnapshot({w.name: w.cpu() for w in watched}, machine_busy_seconds(), wall)


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, tuple[float, float]]:
    """User and system CPU seconds each watched process used between two snapshots (backends that
    started in between count from zero; those that ended in between are not seen: a lower bound
    for trees)."""
    out: dict[str, tuple[float, float]] = {}
    for name, now in after.by_process.items():
        then = before.by_process.get(name, {})
        user = sum(u - then.get(pid, (0.0, 0.0))[0] for pid, (u, _) in now.items())
        system = sum(s - then.get(pid, (0.0, 0.0))[1] for pid, (_, s) in now.items())
        out[name] = (user, system)
    return out
