"""`make bench-pipeline` / `python -m bench.pipeline`: the whole pipeline's throughput and latency.

Starts a Kafka broker on free ports, then for each database (SQLite, PostgreSQL) the four services
as separate processes (`python -m services.<name>`, as `make run` starts them, on `make run`'s
defaults), and offers them the bench's orders (bench/pipeline/orders.py) in three phases:
1. warm-up (`--warmup` orders, not measured): every service has loaded its data and joined;
2. paced: `--rate` orders/s (300) for `--paced-seconds` (30): latency at a fixed offered load;
3. saturation: `--orders` orders (20,000) offered as fast as the producer goes: decided/s,
   recorded/s, latency under a backlog, CPU per order per service (/proc/<pid>/stat before and
   after), and, with `--profile`, py-spy samples of every service.
With `--instances 2`, two instances of each stage before the decision (classifier, screening, risk)
share the work through their consumer groups (partitions >= instances); records stays one.
Each phase ends when every order's decision has arrived on `orders.decided.v1` and records'
database holds every order with that decision. Then, on the same broker and the same messages,
the bare 4-hop relay (bench/pipeline/relay.py) gives the transport's own speed, so that
decided/relay is a ratio measured in one run. With `--baseline-env NAME=VALUE` (repeatable), SQLite
runs a second time with those settings changed (e.g. `EXPORTWATCH_KAFKA_COMPRESSION=lz4`): a
change's gain as a ratio within the same run; `--overlap-baseline` is `--baseline-env
EXPORTWATCH_CONSUMER_OVERLAP=false` (each poll acknowledged and committed before the next is read).
Before the first run the broker relays the saturation phase's orders once through a scratch topic,
so that no run meets a cold broker (its JIT and page cache) and the order of the runs matters less.

Results: var/bench/pipeline.json (method and figures: docs/benchmarks.md) and a summary table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench import REPO_ROOT, RESULTS_DIR, machine, write_results
from bench.pipeline import load, pgstats, profile, report
from bench.pipeline.orders import SEED, BenchOrder, OrderFactory, describe_mix, load_picks
from bench.pipeline.procstat import Watched, memory_kib, snapshot
from bench.pipeline.relay import stop_relays
from deploy.kafka.broker import KafkaBroker, create_topics, free_port
from deploy.local.stack import SERVICES, ServiceProcess, start_service, wait_ready
from shared.db import make_engine
from shared.events import (
    ALL_TOPICS,
    TOPIC_CLASSIFIED,
    TOPIC_CONFIGS,
    TOPIC_DECIDED,
    TOPIC_SCREENED,
    TOPIC_SUBMITTED,
)
from shared.kafka import make_consumer, make_producer
from shared.settings import Settings

RUN_DIR = RESULTS_DIR / "pipeline"
# --baseline-env: a setting the services read from the environment
_ENV_ITEM = re.compile(r"(EXPORTWATCH|KAFKA)_[A-Z0-9_]+=.*")
RELAY_HOPS = 4


def _print(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=20_000, help="orders of the saturation phase")
    parser.add_argument("--rate", type=float, default=300.0, help="offered load of the paced phase, orders/s")
    parser.add_argument(
        "--paced-seconds", type=float, default=30.0, help="length of the paced phase (0: none)"
    )
    parser.add_argument("--warmup", type=int, default=200, help="orders before the measured phases")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--skip-relay", action="store_true", help="no bare-relay comparison")
    parser.add_argument(
        "--overlap-baseline",
        action="store_true",
        help="run SQLite a second time with the consumer loop's overlap off (EXPORTWATCH_CONSUMER_OVERLAP=false)",
    )
    parser.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="run SQLite a second time with this setting (repeatable: all apply to that one run)",
    )
    parser.add_argument(
        "--baseline-first", action="store_true", help="with a baseline: the baseline runs first"
    )
    parser.add_argument(
        "--broker-warmup",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="relay the orders through the broker this long before the first run (0: no warm-up)",
    )
    parser.add_argument(
        "--hops",
        action="store_true",
        help="latency hop by hop (submit, classified, screened, decided, recorded) from each output's "
        "Kafka timestamp; two more consumers on the broker",
    )
    parser.add_argument("--partitions", type=int, default=3, help="partitions per topic (make run: 3)")
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="instances of classifier, screening and risk each (records: one); at most --partitions",
    )
    parser.add_argument("--customers", type=int, default=5000, help="size of the customer pool")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--kafka-bootstrap", help="use this broker instead of starting one")
    parser.add_argument(
        "--postgres-url",
        help="use this PostgreSQL server (a new database is created) instead of starting one",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy every service during a phase")
    parser.add_argument(
        "--profile-phase",
        choices=("paced", "saturation"),
        default="saturation",
        help="with --profile: the phase profiled (paced: what a poll of a few orders costs)",
    )
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="PostgreSQL's statements, WAL, tables and backend CPU during saturation (pg_stat_statements)",
    )
    parser.add_argument(
        "--pg-analyze",
        action="store_true",
        help="with --pg-stats: ANALYZE the databases after the warm-up (the planner then has statistics)",
    )
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--poll-interval", type=float, default=0.25, help="seconds between records polls")
    parser.add_argument(
        "--stall-timeout", type=float, default=180.0, help="give up after this long without progress"
    )
    parser.add_argument("--output", type=Path, help="results file (default var/bench/pipeline.json)")
    parser.add_argument(
        "--work-dir", type=Path, default=RUN_DIR, help="logs, SQLite files and profiles (emptied per run)"
    )
    parser.add_argument("--note", default="", help="free text kept with the results (e.g. what else ran)")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.rate <= 0 or min(args.warmup, args.paced_seconds, args.broker_warmup) < 0:
        parser.error("--orders must be >= 1, --rate > 0, --warmup, --paced-seconds and --broker-warmup >= 0")
    if args.overlap_baseline:
        args.baseline_env.append("EXPORTWATCH_CONSUMER_OVERLAP=false")
    malformed = [item for item in args.baseline_env if not _ENV_ITEM.fullmatch(item)]
    if malformed:
        parser.error(
            f"--baseline-env {malformed[0]!r}: expected NAME=VALUE, NAME an EXPORTWATCH_/KAFKA_ setting"
        )
    if args.pg_analyze and not args.pg_stats:
        parser.error("--pg-analyze needs --pg-stats")
    if not 1 <= args.instances <= args.partitions:
        # An instance beyond the partitions of its group's topics would be assigned none and idle.
        parser.error(f"--instances {args.instances}: must be 1 to --partitions ({args.partitions})")
    return args


@dataclass
class Workload:
    warmup: list[BenchOrder]
    paced: list[BenchOrder]
    saturation: list[BenchOrder]
    mix: dict[str, Any] = field(default_factory=dict)

    def plan(self, rate: float) -> list[tuple[str, list[BenchOrder], float | None]]:
        """The phases in order, each with its offered load (None: as fast as possible)."""
        return [
            ("warmup", self.warmup, None),
            ("paced", self.paced, rate),
            ("saturation", self.saturation, None),
        ]


def make_workload(args: argparse.Namespace, data_dir: Path) -> Workload:
    factory = OrderFactory(load_picks(data_dir), seed=args.seed, customers=args.customers)
    warmup = list(factory.orders("BENCH-W", args.warmup))
    paced = list(factory.orders("BENCH-P", round(args.rate * args.paced_seconds)))
    saturation = list(factory.orders("BENCH-S", args.orders))
    mix = {"paced": describe_mix(paced), "saturation": describe_mix(saturation)}
    return Workload(warmup, paced, saturation, mix)


async def _prefixed_topics(bootstrap: str, prefix: str, names: list[str], partitions: int) -> None:
    configs = {f"{prefix}{name}": config for name, config in TOPIC_CONFIGS.items()}
    await create_topics(bootstrap, {f"{prefix}{name}": partitions for name in names}, configs=configs)


# --- databases ----------------------------------------------------------------------------------


@contextlib.contextmanager
def databases(
    kind: str, args: argparse.Namespace, run_dir: Path
) -> Iterator[tuple[str, str, Watched | None, pgstats.ServerStats | None]]:
    """The URLs of records' trail and of risk's licence ledger (both on the run's kind of database,
    as production keeps them), the server process to measure when the bench started it, and, with
    --pg-stats, the server's counters (a server of --postgres-url must preload pg_stat_statements)."""
    if kind == "sqlite":
        yield (
            f"sqlite+aiosqlite:///{run_dir / 'records.db'}",
            f"sqlite+aiosqlite:///{run_dir / 'risk.db'}",
            None,
            None,
        )
        return
    if args.postgres_url:
        records_url = asyncio.run(_fresh_database(args.postgres_url))
        risk_url = asyncio.run(_fresh_database(args.postgres_url))
        yield records_url, risk_url, None, _server_stats(args, args.postgres_url, records_url, risk_url)
        return
    from deploy.postgres.pg import PostgresServer

    settings = pgstats.SETTINGS if args.pg_stats else ()
    with PostgresServer.scratch(prefix="exportwatch-bench-pg-", settings=settings) as server:
        risk_url = asyncio.run(_fresh_database(server.url))
        yield (
            server.url,
            risk_url,
            Watched("postgresql", server.pid, tree=True),
            _server_stats(args, server.url, server.url, risk_url),
        )


def _server_stats(
    args: argparse.Namespace, admin_url: str, records_url: str, risk_url: str
) -> pgstats.ServerStats | None:
    if not args.pg_stats:
        return None
    from sqlalchemy.engine import make_url

    names = {"records": make_url(records_url).database, "risk": make_url(risk_url).database}
    return pgstats.ServerStats(admin_url, {label: name for label, name in names.items() if name})


async def _fresh_database(admin_url: str) -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database, password=url.password
    )
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


# --- one pipeline run ---------------------------------------------------------------------------


async def drive(
    *,
    args: argparse.Namespace,
    work: Workload,
    bootstrap: str,
    prefix: str,
    database_url: str,
    watched: list[Watched],
    services: dict[str, ServiceProcess],
    profile_dir: Path | None,
    server_stats: pgstats.ServerStats | None = None,
) -> dict[str, Any]:
    engine = make_engine(database_url)
    producer = load.make_producer(bootstrap)
    decided = load.TopicWatcher(bootstrap, f"{prefix}{TOPIC_DECIDED}", decisions=True)
    # Where the time goes, hop by hop (--hops): each stage's output as it was produced (its Kafka
    # timestamp). Two more consumers of the broker, so off unless asked for.
    hops = {
        name: load.TopicWatcher(bootstrap, f"{prefix}{topic}", decisions=False)
        for name, topic in (
            (("classified", TOPIC_CLASSIFIED), ("screened", TOPIC_SCREENED)) if args.hops else ()
        )
    }
    poller = load.RecordsPoller(engine, args.poll_interval)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        await producer.start()
        stack.push_async_callback(producer.stop)
        for watcher in [decided, *hops.values()]:
            await watcher.start(await producer.partitions_for(watcher.topic))
            stack.push_async_callback(watcher.stop)
        await poller.start()
        stack.push_async_callback(poller.stop)
        return await _phases(
            args,
            work,
            prefix,
            producer,
            decided,
            hops,
            poller,
            watched,
            services,
            profile_dir,
            server_stats,
        )


async def _phases(
    args: argparse.Namespace,
    work: Workload,
    prefix: str,
    producer: AIOKafkaProducer,
    decided: load.TopicWatcher,
    hops: dict[str, load.TopicWatcher],
    poller: load.RecordsPoller,
    watched: list[Watched],
    services: dict[str, ServiceProcess],
    profile_dir: Path | None,
    server_stats: pgstats.ServerStats | None,
) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    plan = work.plan(args.rate)
    for name, orders, rate in plan:
        if not orders:
            continue
        outcome = load.PhaseOutcome(name, rate, orders)
        profilers = None
        if name == args.profile_phase and profile_dir is not None:
            profilers = profile.start(
                {s: p.process.pid for s, p in services.items()}, profile_dir, rate=args.profile_rate
            )
        measured = name == "saturation" and server_stats is not None
        if measured and server_stats is not None:
            await server_stats.reset()
        before = snapshot(watched, time.time())
        _print(f"  {name}: {len(orders):,} orders" + (f" at {rate:g}/s" if rate else " as fast as possible"))
        await load.offer(producer, f"{prefix}{TOPIC_SUBMITTED}", outcome, rate=rate)
        ids = [o.order_id for o in orders]
        outcome.stalled_after = await load.wait_done(
            ids, [decided.arrived, poller.recorded], stall_timeout=args.stall_timeout
        )
        await poller.poll(full=True)
        if outcome.stalled_after is None:
            outcome.trail_complete_at = await poller.wait_trail(
                orders[0].order_id.rsplit("-", 1)[0] + "-", 4 * len(orders), stall_timeout=args.stall_timeout
            )
        after = snapshot(watched, time.time())
        outcome.finished = outcome.stalled_after is None and outcome.trail_complete_at is not None
        if measured and server_stats is not None:
            phases["pg_stats"] = await server_stats.collect(len(orders))
            _print(pgstats.summary(phases["pg_stats"]))
        if profilers is not None:
            written = profile.stop(profilers)
            phases["profile"] = {s: profile.summarise(path) for s, path in written.items()}
        if name == "warmup" and args.pg_analyze and server_stats is not None:
            await server_stats.analyze()
        if name != "warmup":
            phases[name] = report.phase_figures(outcome, decided, poller, before, after, hops=hops)
            _print(f"    {_one_line(phases[name])}")
        if not outcome.finished:
            _print(f"    stalled: {len(ids) - len(decided.arrived.keys() & set(ids))} not decided, "
                   f"{len(ids) - len(poller.recorded.keys() & set(ids))} not recorded")  # fmt: skip
            break
    phases["records_holds"] = {
        **await poller.counts("BENCH-"),
        # submitted, classified, screened, decided: four steps of every order offered
        "trail_steps_expected": 4 * sum(len(orders) for _, orders, _ in plan),
    }
    return phases


def _one_line(figures: dict[str, Any]) -> str:
    dec = figures["decided_throughput"]["per_s"]
    rec = figures.get("recorded_throughput", {}).get("per_s")
    lat = figures["latency_ms"]
    return (
        f"decided {figures['decided']:,} ({dec}/s), recorded {figures.get('recorded', 0):,} ({rec}/s); "
        f"p99 decided {lat['submit_to_decided']['p99']} ms, "
        f"recorded {lat.get('submit_to_recorded', {}).get('p99')} ms; "
        f"machine busy {figures['machine']['busy_cores']} cores, others {figures['machine']['others_cores']}"
    )


# The stages a consumer group shares out; records writes one trail (and, on SQLite, one file).
SCALED = ("classifier", "screening", "risk")


def instance_name(service: str, n: int) -> str:
    return service if n == 1 else f"{service}-{n}"


def start_services(
    services: dict[str, ServiceProcess], instances: int, env: dict[str, str], logs: Path
) -> None:
    """Every service once, then the further instances of the scaled stages once the first are ready:
    a second classifier then finds the seed catalog stored (one catalog database, as production
    shares one) instead of racing the first to store it."""
    for name in SERVICES:
        services[name] = start_service(name, port=free_port(), env=env, log_dir=logs)
    wait_ready(list(services.values()), timeout=300)
    more = {}
    for n in range(2, instances + 1):
        for name in SCALED:
            label = instance_name(name, n)
            more[label] = start_service(name, port=free_port(), env=env, log_dir=logs / label)
    services.update(more)
    wait_ready(list(more.values()), timeout=300)


def watch_services(services: dict[str, ServiceProcess]) -> list[Watched]:
    """One figure per service: its instances' CPU added up."""
    pids: dict[str, list[int]] = {}
    for label, process in services.items():
        pids.setdefault(label.split("-", 1)[0], []).append(process.process.pid)
    return [Watched(name, found[0], also=tuple(found[1:])) for name, found in pids.items()]


def run_pipeline(
    kind: str,
    args: argparse.Namespace,
    work: Workload,
    bootstrap: str,
    broker: Watched | None,
    *,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    run_dir = args.work_dir / (f"{kind}-baseline" if extra_env else kind)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    prefix = f"bench.{kind}.{uuid.uuid4().hex[:8]}."
    asyncio.run(_prefixed_topics(bootstrap, prefix, list(ALL_TOPICS), args.partitions))
    with databases(kind, args, run_dir) as (database_url, risk_database_url, db_server, server_stats):
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EXPORTWATCH_TOPIC_PREFIX": prefix,
            "EXPORTWATCH_DATABASE_URL": database_url,
            "EXPORTWATCH_RISK_DATABASE_URL": risk_database_url,
            "EXPORTWATCH_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{run_dir / 'catalog.db'}",
            "EXPORTWATCH_CATALOG_SEED_CSV": str(REPO_ROOT / "samples" / "catalog.csv"),
            # Fresh caches: nothing an earlier `make run` fetched stands in for the configured data.
            "EXPORTWATCH_SCREENING_CACHE_DIR": str(run_dir / "lists"),
            "EXPORTWATCH_CCL_CACHE_DIR": str(run_dir / "ccl"),
            "EXPORTWATCH_PART746_CACHE_DIR": str(run_dir / "part746"),
            **(extra_env or {}),
        }
        started = time.monotonic()
        services: dict[str, ServiceProcess] = {}
        try:
            start_services(services, args.instances, env, run_dir / "logs")
            startup = time.monotonic() - started
            _print(f"{kind}: services ready in {startup:.1f}s (topics {prefix}*)")
            watched = watch_services(services)
            watched += [w for w in (broker, db_server) if w is not None]
            watched.append(Watched("bench (load driver)", os.getpid()))
            phases = asyncio.run(
                drive(
                    args=args,
                    work=work,
                    bootstrap=bootstrap,
                    prefix=prefix,
                    database_url=database_url,
                    watched=watched,
                    services=services,
                    profile_dir=args.work_dir / "profile" / kind if args.profile else None,
                    server_stats=server_stats,
                )
            )
            memory = {name: memory_kib(s.process.pid) for name, s in services.items()}
            if db_server is not None:
                memory[db_server.name] = memory_kib(db_server.pid)
            if broker is not None:
                memory[broker.name] = memory_kib(broker.pid)
        finally:
            exits = {name: s.stop() for name, s in services.items()}
    profile_summary = phases.pop("profile", None)
    server_figures = phases.pop("pg_stats", None)
    holds = phases.pop("records_holds")
    result: dict[str, Any] = {
        "database": kind if kind == "sqlite" else "postgresql (deploy/postgres/pg.py: fsync off)",
        "startup_s": round(startup, 1),
        "phases": phases,
        "records_holds": holds,
        "peak_rss_mib": {n: round(m["VmHWM"] / 1024) for n, m in memory.items() if "VmHWM" in m},
        "exit_codes": exits,
    }
    if profile_summary is not None:
        result["profile"] = profile_summary
    if server_figures is not None:
        result["pg_stats"] = server_figures
    return result


# --- the broker's warm-up ----------------------------------------------------------------------


async def warm_broker(bootstrap: str, work: Workload, partitions: int, seconds: float) -> dict[str, Any]:
    """Relay the saturation phase's orders through a scratch topic, produced then read back, again
    and again for `seconds`.

    A broker's first minutes are slower (the JVM compiles its hot paths, the page cache is cold):
    without this, whichever run came first was slower, and a baseline's ratio said more about
    the order of the runs than about the change (docs/benchmarks.md, "Phase 4").
    """
    topic = f"bench.warmup.{uuid.uuid4().hex[:8]}"
    await _prefixed_topics(bootstrap, "", [topic], partitions)
    # The services' own producer and consumer settings (codec, batch sizes), as the relay uses.
    settings = Settings(kafka_bootstrap_servers=bootstrap)
    producer = make_producer(settings)
    consumer = make_consumer(settings, group_id=None, client_id="bench-warmup")
    await producer.start()
    await consumer.start()
    consumer.subscribe([topic])
    started = time.monotonic()  # after the clients' start, which may take longer than `seconds`
    read = rounds = 0
    try:
        while rounds == 0 or time.monotonic() - started < seconds:  # one round at least
            sent = [
                await producer.send(topic, value=o.payload, key=o.order_id.encode()) for o in work.saturation
            ]
            await asyncio.gather(*sent)
            rounds += 1
            deadline = time.monotonic() + 60
            while read < rounds * len(sent) and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
                read += sum(len(messages) for messages in batch.values())
    finally:
        await consumer.stop()
        await producer.stop()
    return {"messages": read, "rounds": rounds, "seconds": round(time.monotonic() - started, 1)}


# --- the bare relay -----------------------------------------------------------------------------


async def drive_relay(
    args: argparse.Namespace, work: Workload, bootstrap: str, prefix: str, watched: list[Watched]
) -> dict[str, Any]:
    producer = load.make_producer(bootstrap)
    out = load.TopicWatcher(bootstrap, f"{prefix}relay.{RELAY_HOPS}", decisions=False)
    phases: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        await producer.start()
        stack.push_async_callback(producer.stop)
        await out.start(await producer.partitions_for(out.topic))
        stack.push_async_callback(out.stop)
        # The paced phase too: what the transport alone spends on an order at the paced load, the
        # floor under the pipeline's own CPU an order there.
        for name, orders, rate in work.plan(args.rate):
            if not orders:
                continue
            outcome = load.PhaseOutcome(name, rate, orders)
            before = snapshot(watched, time.time())
            await load.offer(producer, f"{prefix}relay.0", outcome, rate=rate)
            outcome.stalled_after = await load.wait_done(
                [o.order_id for o in orders], [out.arrived], stall_timeout=args.stall_timeout
            )
            after = snapshot(watched, time.time())
            outcome.finished = outcome.stalled_after is None
            if name != "warmup":
                figures = report.phase_figures(outcome, out, None, before, after)
                for key in ("decisions", "hits_realised"):
                    figures.pop(key)
                figures["relayed"] = figures.pop("decided")
                figures["relayed_throughput"] = figures.pop("decided_throughput")
                figures["latency_ms"] = {"submit_to_relayed": figures["latency_ms"]["submit_to_decided"]}
                phases[name] = figures
                _print(
                    f"  relay {name}: {figures['relayed']:,} relayed, {figures['relayed_throughput']['per_s']}/s"
                )
    return phases


def run_relay(
    args: argparse.Namespace, work: Workload, bootstrap: str, broker: Watched | None
) -> dict[str, Any]:
    prefix = f"bench.relay.{uuid.uuid4().hex[:8]}."
    topics = [f"relay.{hop}" for hop in range(RELAY_HOPS + 1)]
    asyncio.run(_prefixed_topics(bootstrap, prefix, topics, args.partitions))
    log_dir = args.work_dir / "relay"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    relays: list[subprocess.Popen[bytes]] = []
    try:
        for hop in range(RELAY_HOPS):
            with (log_dir / f"relay-{hop + 1}.log").open("wb") as log:
                relays.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bench.pipeline.relay", "--bootstrap", bootstrap,
                         "--source", f"{prefix}{topics[hop]}", "--target", f"{prefix}{topics[hop + 1]}",
                         "--group", f"relay-{hop + 1}"],
                        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
        watched = [Watched(f"relay hop {i + 1}", p.pid) for i, p in enumerate(relays)]
        watched += [w for w in (broker,) if w is not None]
        watched.append(Watched("bench (load driver)", os.getpid()))
        phases = asyncio.run(drive_relay(args, work, bootstrap, prefix, watched))
        memory = {f"relay hop {i + 1}": memory_kib(p.pid) for i, p in enumerate(relays)}
    finally:
        stop_relays(relays)
    return {
        "hops": RELAY_HOPS,
        "phases": phases,
        "peak_rss_mib": {n: round(m["VmHWM"] / 1024) for n, m in memory.items() if "VmHWM" in m},
    }


# --- main ---------------------------------------------------------------------------------------


def _complete(results: dict[str, Any]) -> bool:
    phases = [p for run in results["runs"].values() for p in run["phases"].values()]
    if results.get("relay"):
        phases += list(results["relay"]["phases"].values())
    return all(p["complete"] for p in phases)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.profile and profile.py_spy() is None:
        _print("--profile needs py-spy: make venv installs it (pyproject: dev)")
        return 2
    data_dir = Settings().require_data_dir()
    started = time.monotonic()
    work = make_workload(args, data_dir)
    _print(f"orders generated in {time.monotonic() - started:.1f}s: {work.mix['saturation']}")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    broker: KafkaBroker | None = None
    results: dict[str, Any] = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "mix": work.mix,
        "runs": {},
    }
    try:
        if args.kafka_bootstrap:
            bootstrap, broker_watch = args.kafka_bootstrap, None
        else:
            broker = KafkaBroker.start(data_dir=args.work_dir / "kafka", log_file=args.work_dir / "kafka.log")
            bootstrap, broker_watch = broker.bootstrap_servers, Watched("kafka broker", broker.pid)
            _print(f"kafka broker at {bootstrap} ({broker.startup_seconds:.1f}s)")
        runs: list[tuple[str, str, dict[str, str]]] = [
            (kind, kind, {}) for kind in (("sqlite", "postgres") if args.db == "both" else (args.db,))
        ]
        if args.baseline_env:
            # The same orders through the same broker with some settings changed: a change's gain
            # as a ratio within one run, the baseline first or last (--baseline-first) so that two
            # runs undo what order is left after the broker's warm-up.
            changed = dict(item.split("=", 1) for item in args.baseline_env)
            label = "sqlite, baseline: " + ", ".join(f"{k}={v}" for k, v in changed.items())
            baseline = (label, "sqlite", changed)
            runs = [baseline, *runs] if args.baseline_first else [*runs, baseline]
        if args.broker_warmup > 0:
            warmed = asyncio.run(warm_broker(bootstrap, work, args.partitions, args.broker_warmup))
            _print(f"broker warmed: {warmed['messages']:,} messages relayed in {warmed['seconds']:.1f}s")
            results["broker_warmup"] = warmed
        for label, kind, changed in runs:
            results["runs"][label] = run_pipeline(
                kind, args, work, bootstrap, broker_watch, extra_env=changed
            )
        if not args.skip_relay:
            results["relay"] = run_relay(args, work, bootstrap, broker_watch)
            relayed = (
                results["relay"]["phases"].get("saturation", {}).get("relayed_throughput", {}).get("per_s")
            )
            results["decided_over_relay"] = {
                kind: round(run["phases"]["saturation"]["decided_throughput"]["per_s"] / relayed, 3)
                for kind, run in results["runs"].items()
                if relayed and run["phases"].get("saturation", {}).get("decided_throughput", {}).get("per_s")
            }
    finally:
        if broker is not None:
            broker.stop()
    results["duration_s"] = round(time.monotonic() - started, 1)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"suite": "pipeline", "machine": machine(), **results}, indent=2))
        path = args.output
    else:
        path = write_results("pipeline", results)
    _print(report.summary(results))
    complete = _complete(results)
    _print(f"results: {path} ({'complete' if complete else 'INCOMPLETE: see the phases'})")
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
