"""Where each service spends its time under load: py-spy samples, summarised.

`--profile` attaches `py-spy record --native --threads --format raw` to every service for the
saturation phase: Python and native frames alike (sqlite3, pydantic-core, the compiled matcher,
libc). The raw files (one collapsed stack a line: `frame;frame;... count`) load into speedscope
or flamegraph.pl as they are.

The summary gives, per service:
- `threads`: for each thread, the share of its samples running, waiting for the GIL, syncing the
  database to disk, or idle (py-spy samples threads at a fixed rate: these are shares of wall time);
- `probes`: of the running samples, the share whose stack holds a frame matching each probe
  (inclusive, so probes overlap: `record_event` includes the SQL it runs);
- `self_by_component`: running samples by where the innermost frame is (a library, a project
  module, a native library);
- `self_top`: the functions most often innermost.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Inclusive probes: (name, pattern searched in each frame "function (file:line)").
PROBES: tuple[tuple[str, str], ...] = (
    ("handler (the service's own __call__)", r"Handler\.__call__ \("),
    ("json.loads (decode_json)", r"^decode_json \("),
    ("pydantic validation (model_validate)", r"model_validate"),
    ("pydantic serialisation (envelope_dump)", r"^envelope_dump \("),
    ("kafka: publish and wait for acks (_publish)", r"_publish \(shared/kafka"),
    ("kafka: commit", r"AIOKafkaConsumer\.commit|^commit \(aiokafka/consumer"),
    ("kafka: fetch (getmany)", r"getmany \(aiokafka"),
    ("aiokafka (any)", r"\(aiokafka/"),
    ("logging (stdlib + JSON formatter)", r"\(logging/|\(shared/logging\.py"),
    ("prometheus metrics", r"\(prometheus_client/"),
    ("classifier: classify_lines", r"^classify_lines \("),
    ("classifier: ECCN suggestions", r"\(services/classifier/suggest\.py"),
    ("screening: screen_parties", r"screen_parties \("),
    ("risk: decide", r"^decide \(services/risk"),
    ("risk: licence ledger (Ledger.settle)", r"^Ledger\.settle \("),
    ("records: record_event", r"^record_event \("),
    ("records: _require_storable", r"_require_storable"),
    ("records: session commit", r"AsyncSession\.commit|AsyncSessionTransaction\.__aexit__|Session\.commit"),
    ("sqlalchemy (any)", r"\(sqlalchemy/"),
    ("sqlite3 library (native)", r"libsqlite3|^sqlite3[A-Za-z_]* \(|_sqlite3"),
    ("fsync / fdatasync", r"fsync|fdatasync"),
    ("aiosqlite (worker thread)", r"\(aiosqlite/"),
    # each SQL statement crosses to aiosqlite's thread and back: a queue put that wakes it
    ("aiosqlite: hand-off to its thread", r"_queue_SimpleQueue_put"),
    ("asyncpg", r"asyncpg"),
)

_LINE_NO = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.is_file() else shutil.which("py-spy")


def start(
    pids: dict[str, int], out_dir: Path, *, rate: int
) -> dict[str, tuple[subprocess.Popen[bytes], Path]]:
    """One `py-spy record` per process; stopped (and its file written) by `stop`."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed: `.venv/bin/pip install py-spy` (pyproject: dev)")
    out_dir.mkdir(parents=True, exist_ok=True)
    running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name, pid in pids.items():
        out = out_dir / f"{name}.txt"
        log = (out_dir / f"{name}.py-spy.log").open("wb")
        process = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--rate", str(rate), "--native", "--threads",
             "--format", "raw", "--output", str(out)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        running[name] = (process, out)
    return running


def stop(running: dict[str, tuple[subprocess.Popen[bytes], Path]]) -> dict[str, Path]:
    """SIGINT makes py-spy write what it sampled; the raw files by process name."""
    for process, _ in running.values():
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    written: dict[str, Path] = {}
    for name, (process, out) in running.items():
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if out.is_file():
            written[name] = out
    return written


def _component(frame: str) -> str:
    """Where a frame's code lives: a project module, a library package, or a native library."""
    match = re.search(r"\(([^()]*)\)$", frame)
    where = _LINE_NO.sub(")", f"({match.group(1)})")[1:-1] if match else frame
    if where.endswith(".py"):
        parts = where.split("/")
        if parts[0] in ("services", "shared"):
            return "/".join(parts[:2]) if parts[0] == "services" else where
        return parts[0].removesuffix(".py")
    if ".so" in where:  # native: "libsqlite3.so.0", "_pydantic_core.cpython-311-x86_64-linux-gnu.so"
        return "native: " + where.split(".cpython")[0].split(".so")[0]
    return "native: " + where


# How a sampled thread was spending its time, tested in this order on the stack's frames.
STATES: tuple[tuple[str, str], ...] = (
    # waiting for the GIL another thread holds (records: the event loop and aiosqlite's thread)
    ("GIL wait", r"^take_gil \(|^drop_gil \("),
    # the database file synced to disk: SQLite's commit (WAL frames written, then fdatasync)
    ("disk sync", r"^f(data)?sync \("),
    # nothing to do: an event loop in epoll, a worker thread waiting for its queue or a lock
    (
        "idle",
        r"^epoll_wait \(|^select_epoll_poll|^_queue_SimpleQueue_get|^pthread_cond_(timed)?wait \("
        r"|^Condition\.wait \(|^Event\.wait \(|^_worker \(concurrent/futures",
    ),
)


def _state(frames: list[str], patterns: list[tuple[str, re.Pattern[str]]]) -> str:
    for name, pattern in patterns:
        if any(pattern.search(frame) for frame in frames):
            return name
    return "running"


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """py-spy samples every thread at a fixed rate whatever it is doing (with `--native` it does
    not tell idle threads apart), so each sample is first put in a state: running, waiting for the
    GIL, syncing to disk, or idle. Probes and self time are shares of the running samples."""
    stacks: list[tuple[str, list[str], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = stack.split(";")
        thread = "all"
        if frames and frames[0].startswith("thread ("):
            # "thread (7917): Thread-1 (_connection_worker_thread)": keep the name, not the id
            thread, frames = re.sub(r"^thread \(\d+\): ", "", frames[0]), frames[1:]
        stacks.append((thread, frames, int(samples)))
    states = [(name, re.compile(pattern)) for name, pattern in STATES]
    probes = {name: re.compile(pattern) for name, pattern in PROBES}
    by_thread: dict[str, Counter[str]] = {}
    inclusive: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    self_component: Counter[str] = Counter()
    running = 0
    for thread, frames, count in stacks:
        state = _state(frames, states)
        by_thread.setdefault(thread, Counter())[state] += count
        if state != "running" or not frames:
            continue
        running += count
        for name, pattern in probes.items():
            if any(pattern.search(frame) for frame in frames):
                inclusive[name] += count
        self_fn[_LINE_NO.sub(")", frames[-1])] += count
        self_component[_component(frames[-1])] += count
    if running == 0:
        return {"samples": sum(c for _, _, c in stacks), "running_samples": 0}

    def share(n: int, of: int = running) -> float:
        return round(100 * n / of, 1)

    return {
        "samples": sum(c for _, _, c in stacks),
        "running_samples": running,
        # per thread: the share of its samples in each state (wall-clock time of that thread)
        "threads": {
            thread: {state: share(n, sum(counts.values())) for state, n in counts.most_common()}
            for thread, counts in sorted(by_thread.items(), key=lambda kv: -sum(kv[1].values()))
        },
        "probes": {name: share(inclusive[name]) for name, _ in PROBES if inclusive[name]},
        "self_by_component": {c: share(n) for c, n in self_component.most_common(top)},
        "self_top": {f: share(n) for f, n in self_fn.most_common(top)},
    }
