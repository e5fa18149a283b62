"""One replay of captured events through records' handler, in a process of its own.

Run by path (`python bench/records_replay/worker.py`) with PYTHONPATH at the root of the tree whose
records it measures (the tree under test, or a revision's snapshot from `git archive`, which holds
no `bench`), then at this repository's root (for `bench` alone). So it uses only what every revision
of records has: `RecordsHandler` with `handle_batch`, `create_app`, `create_schema`, `make_engine`,
`freeze_heap`. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import time
from pathlib import Path
from typing import Any

from bench.pipeline.procstat import tree_cpu_seconds
from services.records.app import create_app
from services.records.handler import RecordsHandler
from services.records.models import create_schema
from shared.db import make_engine, make_sessionmaker
from shared.kafka import Incoming
from shared.service import freeze_heap
from shared.settings import load_settings


def load_events(path: Path, limit: int | None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with path.open() as lines:
        for line in lines:
            events.append(json.loads(line))
            if limit is not None and len(events) >= limit:
                break
    return events


def messages(events: list[dict[str, Any]], prefix: str) -> list[Incoming]:
    return [
        Incoming(
            topic=f"{prefix}{event['topic']}",
            partition=event["partition"],
            offset=event["offset"],
            key=event["key"].encode() if event["key"] is not None else None,
            value=base64.b64decode(event["value"]) if event["value"] is not None else None,
            timestamp_ms=0,
        )
        for event in events
    ]


def server_cpu(pid: int | None) -> dict[int, float]:
    """CPU seconds (user + system) of the PostgreSQL postmaster `pid` and its backends, by pid."""
    if pid is None:
        return {}
    return {p: user + system for p, (user, system) in tree_cpu_seconds(pid).items()}


async def feed(handler: RecordsHandler, items: list[Incoming], poll: int) -> None:
    """As the consumer loop drives records: a poll through handle_batch, what it leaves one by one;
    `poll` 1 is the one-message path alone."""
    if poll == 1:
        for message in items:
            await handler(message)
        return
    for start in range(0, len(items), poll):
        chunk = items[start : start + poll]
        results = await handler.handle_batch(chunk)
        for message, done in zip(chunk, results, strict=True):
            if done is None:
                await handler(message)


async def replay(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings("records")
    # The collector as `python -m services.records` sets it (shared/service.py run_service): the
    # young threshold before the app is built, the heap built by then frozen once it has started.
    if settings.gc_young_threshold:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(settings.gc_young_threshold, middle, old)
    create_app(settings, start_kafka=False)
    engine = make_engine(args.url)
    await create_schema(engine)
    handler = RecordsHandler(settings=settings, sessionmaker=make_sessionmaker(engine))
    freeze_heap()
    frozen = gc.get_freeze_count()
    # Loaded after the freeze: records' own heap does not hold the captured events.
    items = messages(load_events(args.events, args.limit), settings.topic_prefix)
    try:
        # Warm-up on the first events (imports, compiled statements), then the rest measured.
        warm = items[: args.warmup]
        await feed(handler, warm, args.poll)
        measured = items[args.warmup :]
        server_before = server_cpu(args.server_pid)
        cpu, wall = time.process_time(), time.perf_counter()
        await feed(handler, measured, args.poll)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        server_after = server_cpu(args.server_pid)
    finally:
        await engine.dispose()
    server = sum(after - server_before.get(pid, 0.0) for pid, after in server_after.items())
    orders = {m.key for m in measured}
    return {
        "events": len(measured),
        "orders": len(orders),
        "cpu_s": cpu,
        "wall_s": wall,
        "server_cpu_s": server if args.server_pid is not None else None,
        "frozen_objects": frozen,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--poll", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--server-pid", type=int)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(replay(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
