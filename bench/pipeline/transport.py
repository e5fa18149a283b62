"""`python -m bench.pipeline.transport`: what the transport alone costs an order at fixed loads,
one configuration against another.

The bare 4-hop relay (bench/pipeline/relay.py: the services' own producer, consumer and commit
policy, no work on the messages) at fixed offered rates (`--rates`, orders/s), for each
configuration (`--config`), repeated `--reps` times with the configurations alternated (A B C, then
C B A, ...), all on one broker warmed beforehand: a fresh set of topics and four fresh relay
processes per run, a warm-up of `--warmup` orders (every group joined), then `--seconds` of the
paced load. Per run: the CPU of each hop and of the broker over the paced phase
(`/proc/<pid>/stat`, ms an order), every request each hop sent the broker, by kind, per second
(aiokafka-side counters: relay.py `--counts`), latency submit→relayed, and the machine's load
(`/proc/loadavg`). Each configuration's figure against the first one's is a ratio per repetition
(same rate, runs next to each other), and the median of those ratios is reported.

A configuration is `NAME:ITEM,ITEM...` where an item is `NAME=VALUE` for a setting the relays read
from the environment (`EXPORTWATCH_KAFKA_LINGER_MS=2`, `EXPORTWATCH_KAFKA_COMMIT_INTERVAL_MS=1000`)
or `gather_ms=N` (each fetch waits up to N ms for a fuller batch); `NAME:` alone: the defaults.

Results: var/bench/transport.json (method and figures: docs/benchmarks.md, "Phase 7").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import REPO_ROOT, RESULTS_DIR, write_results
from bench.pipeline import load
from bench.pipeline.__main__ import Workload, _prefixed_topics, warm_broker
from bench.pipeline.orders import SEED, BenchOrder, OrderFactory, load_picks
from bench.pipeline.procstat import Watched, cpu_between, snapshot
from bench.pipeline.relay import stop_relays
from deploy.kafka.broker import KafkaBroker
from shared.settings import Settings

HOPS = 4


@dataclass(frozen=True)
class Config:
    name: str
    env: dict[str, str]
    gather_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> Config:
        name, _, items = text.partition(":")
        if not name:
            raise ValueError(f"--config {text!r}: expected NAME:ITEM,ITEM... (NAME: alone for the defaults)")
        env: dict[str, str] = {}
        gather = 0
        for item in filter(None, items.split(",")):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--config {text!r}: item {item!r} is not NAME=VALUE")
            if key == "gather_ms":
                gather = int(value)
            elif key.startswith(("EXPORTWATCH_", "KAFKA_")):
                env[key] = value
            else:
                raise ValueError(
                    f"--config {text!r}: {key!r} is neither gather_ms nor an EXPORTWATCH_ setting"
                )
        return cls(name, env, gather)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline.transport",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rates", default="300", help="offered loads, orders/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each paced run")
    parser.add_argument(
        "--reps", type=int, default=4, help="repetitions of every configuration at every rate"
    )
    parser.add_argument("--warmup", type=int, default=100, help="orders before each measured run")
    parser.add_argument(
        "--config", action="append", default=[], help="NAME:ITEM,... (repeatable; the first is the baseline)"
    )
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--broker-warmup", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("--stall-timeout", type=float, default=60.0)
    parser.add_argument("--work-dir", type=Path, default=RESULTS_DIR / "transport")
    parser.add_argument("--output", type=Path, help="results file (default var/bench/transport.json)")
    args = parser.parse_args(argv)
    try:
        args.configs = [Config.parse(text) for text in (args.config or ["default:"])]
        args.rate_list = [float(rate) for rate in args.rates.split(",")]
    except ValueError as exc:
        parser.error(str(exc))
    if len({c.name for c in args.configs}) != len(args.configs):
        parser.error("--config names must differ")
    if args.reps < 1 or args.seconds <= 0 or any(rate <= 0 for rate in args.rate_list):
        parser.error("--reps must be >= 1, --seconds and every rate > 0")
    return args


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _counts(path: Path) -> list[dict[str, int]]:
    if not path.is_file():
        return []
    return [json.loads(line)["requests"] for line in path.read_text().splitlines() if line.strip()]


def _signal_all(relays: list[subprocess.Popen[bytes]], files: list[Path], expected: int) -> None:
    """SIGUSR1 to every hop, then wait until each has written its counts (line `expected`)."""
    for process in relays:
        process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(len(_counts(f)) < expected for f in files):
        time.sleep(0.05)


def _start_relays(
    config: Config, bootstrap: str, prefix: str, log_dir: Path
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    env = {**os.environ, **config.env}
    relays, files = [], []
    for hop in range(HOPS):
        counts = log_dir / f"counts-{hop + 1}.jsonl"
        files.append(counts)
        with (log_dir / f"relay-{hop + 1}.log").open("wb") as log:
            relays.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.pipeline.relay", "--bootstrap", bootstrap,
                     "--source", f"{prefix}relay.{hop}", "--target", f"{prefix}relay.{hop + 1}",
                     "--group", f"relay-{hop + 1}", "--gather-ms", str(config.gather_ms),
                     "--counts", str(counts)],
                    cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
    return relays, files


async def _offer_and_wait(
    bootstrap: str, prefix: str, orders: list[BenchOrder], rate: float | None, stall: float
) -> tuple[load.PhaseOutcome, dict[str, load.Decided], bool]:
    producer = load.make_producer(bootstrap)
    out = load.TopicWatcher(bootstrap, f"{prefix}relay.{HOPS}", decisions=False)
    await producer.start()
    try:
        await out.start(await producer.partitions_for(out.topic))
        try:
            outcome = load.PhaseOutcome("paced" if rate else "warmup", rate, orders)
            await load.offer(producer, f"{prefix}relay.0", outcome, rate=rate)
            stalled = await load.wait_done([o.order_id for o in orders], [out.arrived], stall_timeout=stall)
            return outcome, dict(out.arrived), stalled is None
        finally:
            await out.stop()
    finally:
        await producer.stop()


def one_run(
    args: argparse.Namespace,
    config: Config,
    rate: float,
    orders: tuple[list[BenchOrder], list[BenchOrder]],
    bootstrap: str,
    broker: Watched,
) -> dict[str, Any]:
    prefix = f"bench.transport.{uuid.uuid4().hex[:8]}."
    asyncio.run(_prefixed_topics(bootstrap, prefix, [f"relay.{h}" for h in range(HOPS + 1)], args.partitions))
    log_dir = args.work_dir / "runs" / prefix.rstrip(".")
    log_dir.mkdir(parents=True)
    relays, files = _start_relays(config, bootstrap, prefix, log_dir)
    try:
        warmup, paced = orders
        _, _, warmed = asyncio.run(_offer_and_wait(bootstrap, prefix, warmup, None, args.stall_timeout))
        time.sleep(1.0)
        watched = [Watched(f"hop {i + 1}", p.pid) for i, p in enumerate(relays)] + [broker]
        _signal_all(relays, files, 1)
        load_before, before = _loadavg(), snapshot(watched, time.time())
        outcome, arrived, done = asyncio.run(
            _offer_and_wait(bootstrap, prefix, paced, rate, args.stall_timeout)
        )
        after = snapshot(watched, time.time())
        _signal_all(relays, files, 2)
        load_after = _loadavg()
    finally:
        stop_relays(relays)
    seconds = after.wall - before.wall
    cpu = {name: round((u + s) * 1000 / len(paced), 3) for name, (u, s) in cpu_between(before, after).items()}
    requests: dict[str, dict[str, float]] = {}
    for hop, path in enumerate(files, start=1):
        lines = _counts(path)
        if len(lines) >= 2:
            first, last = lines[0], lines[1]
            requests[f"hop {hop}"] = {
                kind: round((n - first.get(kind, 0)) / seconds, 1) for kind, n in sorted(last.items())
            }
    latency = [arrived[o.order_id].at - outcome.submitted[o.order_id] for o in paced if o.order_id in arrived]
    return {
        "config": config.name,
        "rate": rate,
        "complete": warmed and done,
        "orders": len(paced),
        "seconds": round(seconds, 1),
        "loadavg": [load_before, load_after],
        "machine_busy_cores": round((after.machine_busy - before.machine_busy) / seconds, 2),
        "cpu_ms_per_order": cpu,
        "hops_cpu_ms_per_order": round(sum(v for k, v in cpu.items() if k.startswith("hop")), 3),
        "total_cpu_ms_per_order": round(sum(cpu.values()), 3),
        "requests_per_s": requests,
        "latency_ms": load.percentiles(latency),
    }


def _median_ratios(runs: list[dict[str, Any]], configs: list[Config], rates: list[float]) -> dict[str, Any]:
    """Each configuration against the first, per rate: the median over repetitions of the ratio of
    the two runs of the same repetition."""
    base = configs[0].name
    out: dict[str, Any] = {}
    for rate in rates:
        at = [r for r in runs if r["rate"] == rate]
        reps = sorted({r["rep"] for r in at})
        by = {(r["rep"], r["config"]): r for r in at}
        for config in configs:
            figures: dict[str, Any] = {}
            for key in ("total_cpu_ms_per_order", "hops_cpu_ms_per_order"):
                mine = [by[(rep, config.name)][key] for rep in reps if (rep, config.name) in by]
                figures[key] = {"median": round(statistics.median(mine), 3), "all": mine}
            broker = [by[(rep, config.name)]["cpu_ms_per_order"]["kafka broker"] for rep in reps]
            figures["broker_cpu_ms_per_order"] = {
                "median": round(statistics.median(broker), 3),
                "all": broker,
            }
            p99 = [by[(rep, config.name)]["latency_ms"]["p99"] for rep in reps]
            figures["p99_ms"] = {"median": statistics.median(p99), "all": p99}
            if config.name != base:
                for key in ("total_cpu_ms_per_order", "hops_cpu_ms_per_order"):
                    ratios = [by[(rep, config.name)][key] / by[(rep, base)][key] for rep in reps]
                    figures[f"{key}_ratio"] = {
                        "median": round(statistics.median(ratios), 3),
                        "all": [round(r, 3) for r in ratios],
                    }
            out[f"{config.name} @{rate:g}/s"] = figures
    return out


def _line(run: dict[str, Any]) -> str:
    requests = run["requests_per_s"].get("hop 2", {})
    shown = ", ".join(f"{k} {v:g}" for k, v in requests.items() if v >= 0.5)
    return (
        f"  rep {run['rep']} {run['config']} @{run['rate']:g}/s: total {run['total_cpu_ms_per_order']} ms/order "
        f"(hops {run['hops_cpu_ms_per_order']}, broker {run['cpu_ms_per_order']['kafka broker']}), "
        f"p99 {run['latency_ms']['p99']} ms, load {run['loadavg'][0]:.2f}; hop 2 requests/s: {shown}"
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    args.work_dir.mkdir(parents=True)
    factory = OrderFactory(load_picks(Settings().require_data_dir()), seed=SEED, customers=2000)
    paced_n = round(max(args.rate_list) * args.seconds)
    warmup = list(factory.orders("BENCH-W", args.warmup))
    paced = list(factory.orders("BENCH-P", paced_n))
    runs: list[dict[str, Any]] = []
    broker = KafkaBroker.start(data_dir=args.work_dir / "kafka", log_file=args.work_dir / "kafka.log")
    started = time.monotonic()
    try:
        work = Workload(warmup, [], paced)
        warmed = asyncio.run(warm_broker(broker.bootstrap_servers, work, args.partitions, args.broker_warmup))
        print(f"broker warmed: {warmed['messages']:,} messages in {warmed['seconds']}s", flush=True)
        watched_broker = Watched("kafka broker", broker.pid)
        for rep in range(args.reps):
            order = args.configs if rep % 2 == 0 else list(reversed(args.configs))
            for rate in args.rate_list:
                for config in order:
                    n = round(rate * args.seconds)
                    run = one_run(
                        args, config, rate, (warmup, paced[:n]), broker.bootstrap_servers, watched_broker
                    )
                    run["rep"] = rep
                    runs.append(run)
                    print(_line(run), flush=True)
    finally:
        broker.stop()
    results: dict[str, Any] = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "configs"},
        "configs": [{"name": c.name, "env": c.env, "gather_ms": c.gather_ms} for c in args.configs],
        "runs": runs,
        "summary": _median_ratios(runs, args.configs, args.rate_list),
        "duration_s": round(time.monotonic() - started, 1),
    }
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2))
        path = args.output
    else:
        path = write_results("transport", results)
    for label, figures in results["summary"].items():
        ratio = figures.get("total_cpu_ms_per_order_ratio", {}).get("median")
        print(
            f"{label}: total {figures['total_cpu_ms_per_order']['median']} ms/order, "
            f"hops {figures['hops_cpu_ms_per_order']['median']}, broker {figures['broker_cpu_ms_per_order']['median']}, "
            f"p99 {figures['p99_ms']['median']} ms"
            + (f"; ratio to {args.configs[0].name} {ratio}" if ratio else ""),
            flush=True,
        )
    complete = all(run["complete"] for run in runs)
    print(f"results: {path} ({'complete' if complete else 'INCOMPLETE'})", flush=True)
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
