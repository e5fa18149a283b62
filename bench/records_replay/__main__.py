"""`python -m bench.records_replay`: records' CPU per order, alone, on events a pipeline run made.

In the whole pipeline (bench/pipeline) records' CPU per order is drowned in what the other services
and the broker do on the same two cores. Here records runs alone on what it consumed there:

1. capture (once): the events a pipeline run's records recorded, read back from its SQLite trail
   (the bytes as received, topic, partition, offset and key, in the order the store-wide chain
   recorded them, i.e. the order records consumed them) into a JSON Lines file. With no trail given
   and none captured yet, a small pipeline run (bench/pipeline, SQLite) makes one first.
2. replay: a fresh database (SQLite, and PostgreSQL on a server started here) fed the file in polls
   of `--poll` events through `RecordsHandler.handle_batch` (what the handler leaves goes one by one,
   as the consumer loop does), the first `--warmup` events unmeasured; CPU is the replaying
   process's time (time.process_time) and, on PostgreSQL, the server's (postmaster and backends).
3. the baseline: the same replay of records at `--baseline` (a git revision, default main), taken
   from `git archive` into var/, run alternately with the tree under test (the working tree, or
   `--tree` another revision) for `--repeat` pairs, each run in a fresh process set up as records'
   own (bench/records_replay/worker.py): the figure is the median of the pairs' ratios, each pair
   measured seconds apart on the same machine, not absolute times on a shared host.

Results: var/bench/records_replay.json and a summary table (docs/benchmarks.md, "Phase 5").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

from bench import REPO_ROOT, RESULTS_DIR, write_results
from shared.events import ALL_TOPICS

WORK_DIR = RESULTS_DIR / "records_replay"
CAPTURE = WORK_DIR / "events.jsonl"
PIPELINE_RUN = WORK_DIR / "pipeline"
WORKER = Path(__file__).with_name("worker.py")


def _print(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.records_replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--capture", type=Path, default=CAPTURE, help="the events file (made if absent)")
    parser.add_argument(
        "--from-trail", type=Path, help="capture anew from this records SQLite file (a pipeline run's)"
    )
    parser.add_argument("--capture-orders", type=int, default=3000, help="orders of the capturing run")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--poll", type=int, default=300, help="events per poll (1: the one-message path)")
    parser.add_argument("--warmup", type=int, default=800, help="events replayed first, not measured")
    parser.add_argument("--limit", type=int, help="replay only the first N events")
    parser.add_argument("--baseline", default="main", help="git revision of records to compare with")
    parser.add_argument("--tree", help="git revision to measure instead of the working tree")
    parser.add_argument("--no-baseline", action="store_true", help="the tree under test only")
    parser.add_argument("--repeat", type=int, default=3, help="alternating pairs per database")
    args = parser.parse_args(argv)
    if args.poll < 1 or args.warmup < 0 or args.repeat < 1:
        parser.error("--poll and --repeat must be >= 1, --warmup >= 0")
    if args.limit is not None and args.limit <= args.warmup:
        parser.error("--limit must exceed --warmup: only the events after the warm-up are measured")
    return args


# --- capture --------------------------------------------------------------------------------------


def base_topic(topic: str) -> str:
    """The topic's name without the run's prefix (bench/pipeline prefixes every run's topics)."""
    for name in ALL_TOPICS:
        if topic.endswith(name):
            return name
    raise ValueError(f"{topic!r} is no topic of the pipeline")


def capture(trail: Path, out: Path) -> int:
    """Write the events the trail in `trail` recorded to `out`, in the chain's order; their count."""
    query = """
        SELECT topic, partition, "offset", k, v FROM (
            SELECT c.seq AS position, s.topic, s.partition, s."offset", s.order_id AS k, s.payload_raw AS v
              FROM audit_chain c JOIN trail_steps s ON c.kind = 'trail_step' AND c.record_id = s.event_id
            UNION ALL
            SELECT c.seq, r.topic, r.partition, r."offset", r.key, r.payload_raw
              FROM audit_chain c JOIN reference_events r
                ON c.kind = 'reference_event' AND c.record_id = r.event_id
        ) ORDER BY position
    """
    connection = sqlite3.connect(f"file:{trail}?mode=ro", uri=True)
    try:
        ordered = connection.execute(query).fetchall()
    finally:
        connection.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as lines:
        for topic, partition, offset, key, value in ordered:
            record = {
                "topic": base_topic(topic),
                "partition": partition,
                "offset": offset,
                "key": key,
                "value": base64.b64encode(value).decode() if value else None,
            }
            lines.write(json.dumps(record) + "\n")
    return len(ordered)


def ensure_capture(args: argparse.Namespace) -> Path:
    path: Path = args.capture
    if args.from_trail is not None:
        _print(f"captured {capture(args.from_trail, args.capture):,} events from {args.from_trail}")
    elif not args.capture.is_file():
        from bench.pipeline.__main__ import main as pipeline

        _print(f"no capture yet: a pipeline run of {args.capture_orders:,} orders on SQLite makes one")
        status = pipeline(
            [
                *("--orders", str(args.capture_orders), "--paced-seconds", "0", "--db", "sqlite"),
                *("--skip-relay", "--work-dir", str(PIPELINE_RUN)),
                *("--output", str(WORK_DIR / "pipeline.json")),
            ]
        )
        if status != 0:
            raise SystemExit(f"the capturing pipeline run failed ({status})")
        trail = PIPELINE_RUN / "sqlite" / "records.db"
        _print(f"captured {capture(trail, path):,} events from {trail}")
    return path


# --- replay ---------------------------------------------------------------------------------------


def snapshot(revision: str) -> Path:
    """The repository at `revision` (git archive), extracted under var/."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    root = WORK_DIR / f"tree-{commit[:12]}"
    if not (root / "services" / "records").is_dir():
        archive = subprocess.run(
            ["git", "archive", commit, "services", "shared", "policy", "pyproject.toml"],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
        ).stdout
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
    return root


@contextlib.contextmanager
def database_server(kind: str) -> Iterator[tuple[str | None, int | None]]:
    """PostgreSQL's admin URL and postmaster pid for `kind` postgres (a server started here)."""
    if kind == "sqlite":
        yield None, None
        return
    from deploy.postgres.pg import PostgresServer

    with PostgresServer.scratch(prefix="exportwatch-replay-pg-") as server:
        yield server.url, server.pid


def fresh_url(kind: str, admin_url: str | None, scratch: Path) -> str:
    if admin_url is None:
        path = scratch / f"records-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite+aiosqlite:///{path}"
    from bench.pipeline.__main__ import _fresh_database

    return asyncio.run(_fresh_database(admin_url))


def run_worker(
    tree: Path, events: Path, url: str, args: argparse.Namespace, pid: int | None
) -> dict[str, Any]:
    command = [sys.executable, str(WORKER), "--events", str(events.resolve()), "--url", url]
    command += ["--poll", str(args.poll), "--warmup", str(args.warmup)]
    command += ["--limit", str(args.limit)] if args.limit is not None else []
    command += ["--server-pid", str(pid)] if pid is not None else []
    # The measured tree's services and shared first; bench (absent from a snapshot) from here.
    env = os.environ | {"PYTHONPATH": f"{tree}{os.pathsep}{REPO_ROOT}"}
    env.setdefault("EXPORTWATCH_DATA_DIR", str((REPO_ROOT.parent / "shared" / "data").resolve()))
    done = subprocess.run(command, cwd=tree, env=env, check=True, capture_output=True, text=True)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def per_order(run: dict[str, Any]) -> dict[str, float | None]:
    orders = run["orders"]
    server = run["server_cpu_s"]
    return {
        "records_ms": 1000 * run["cpu_s"] / orders,
        "server_ms": 1000 * server / orders if server is not None else None,
        "wall_ms": 1000 * run["wall_s"] / orders,
    }


def measure(kind: str, trees: dict[str, Path], args: argparse.Namespace, events: Path) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    with database_server(kind) as (admin_url, pid), tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeat):
            for label, tree in trees.items():
                run = run_worker(tree, events, fresh_url(kind, admin_url, Path(scratch)), args, pid)
                runs[label].append(run | per_order(run))
                _print(f"  {kind} {label}: {json.dumps(runs[label][-1])}")
    summary: dict[str, Any] = {"runs": runs}
    for label, done in runs.items():
        summary[label] = {
            figure: statistics.median(r[figure] for r in done) if done[0][figure] is not None else None
            for figure in ("records_ms", "server_ms", "wall_ms")
        }
    if "baseline" in runs:
        summary["ratio"] = {
            figure: statistics.median(
                h[figure] / b[figure] for h, b in zip(runs["tree"], runs["baseline"], strict=True)
            )
            for figure in ("records_ms", "server_ms", "wall_ms")
            if runs["tree"][0][figure] is not None
        }
    return summary


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    events = ensure_capture(args)
    tree = snapshot(args.tree) if args.tree else REPO_ROOT
    trees = {"tree": tree} if args.no_baseline else {"baseline": snapshot(args.baseline), "tree": tree}
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    results: dict[str, Any] = {
        "method": {
            "events": str(events),
            "poll": args.poll,
            "warmup": args.warmup,
            "limit": args.limit,
            "baseline": None if args.no_baseline else args.baseline,
            "tree": args.tree or "working tree",
            "repeat": args.repeat,
            "load_before": os.getloadavg(),
        },
    }
    for kind in kinds:
        results[kind] = measure(kind, trees, args, events)
    results["method"]["load_after"] = os.getloadavg()
    path = write_results("records_replay", results)
    _print("| database | tree | records CPU ms/order | server CPU ms/order | wall ms/order |")
    _print("|---|---|---|---|---|")
    for kind in kinds:
        for label in [*trees, *(["ratio"] if "ratio" in results[kind] else [])]:
            row = results[kind][label]
            cells = [
                f"{row[f]:.3f}" if row.get(f) is not None else "-"
                for f in ("records_ms", "server_ms", "wall_ms")
            ]
            _print(f"| {kind} | {label} | {' | '.join(cells)} |")
    _print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
