"""Offering orders to the pipeline and seeing them come out: on `orders.decided.v1` (as an ERP
hears of them) and in records' database (as a dashboard or an auditor sees them).

Times are wall-clock seconds (`time.time()`) of this one machine, so that they compare with the
timestamp records writes in its database:
- submitted: just before the order is handed to the producer;
- decided: when this process's consumer receives the decision;
- recorded: `orders.updated_at` of the order's row once it holds the decision, i.e. when records
  wrote it (its transaction commits right after). The poller that finds the rows also notes when
  it first saw each one (`observed`, later by up to one poll interval plus the query): an upper
  bound kept beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.pipeline.orders import BenchOrder
from services.records.models import Order, StoredDeadLetter, TrailStep

LIST_CODES = frozenset({"DENIED_PARTY", "RESTRICTED_PARTY", "POTENTIAL_MATCH"})
EMBARGO_CODES = frozenset({"EMBARGOED_DESTINATION"})


@dataclass(frozen=True)
class Decided:
    at: float
    decision: str
    codes: frozenset[str]
    # screening matched some party of the order against a list (whatever the decision made of it:
    # an MEU match is a licence requirement for Supp. 2 items only, 15 CFR 744.21)
    matched: bool
    # the record's Kafka timestamp (CreateTime: when the stage handed it to its producer), seconds
    produced: float = 0.0


def parse_decision(value: bytes) -> tuple[str, frozenset[str], bool]:
    """The decision, its reason codes, and whether screening matched any party (about 70 us for
    a decided event of 12 KB: json.loads)."""
    event = json.loads(value)
    decision = event["decision"]
    matched = any(party.get("matches") for party in event.get("screening", {}).get("parties", []))
    return str(decision["decision"]), frozenset(str(r["code"]) for r in decision["reasons"]), matched


class TopicWatcher:
    """Notes when each key arrives on a topic, from its end at `start()` on."""

    def __init__(self, bootstrap: str, topic: str, *, decisions: bool) -> None:
        self.topic = topic
        self.decisions = decisions
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
        self.arrived: dict[str, Decided] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self, partitions: set[int]) -> None:
        """`partitions` of the topic, e.g. from `AIOKafkaProducer.partitions_for` (which waits for them)."""
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:  # pin the positions before anything is offered, so nothing is missed
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.topic}")

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in batch.values():
                for record in records:
                    key = record.key.decode() if record.key else ""
                    if key in self.arrived:
                        continue  # a redelivery: the first arrival counts
                    produced = record.timestamp / 1000
                    if self.decisions:
                        self.arrived[key] = Decided(now, *parse_decision(record.value), produced=produced)
                    else:
                        self.arrived[key] = Decided(now, "", frozenset(), False, produced=produced)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


@dataclass(frozen=True)
class Recorded:
    at: float  # records' own timestamp (orders.updated_at)
    observed: float
    decided_event_id: str
    decision: str


class RecordsPoller:
    """Finds orders whose row in records' database holds a decision."""

    # Rows are read by their timestamp, from the newest seen on minus SLACK: a transaction that
    # committed later than one stamped after it is still found. A full scan now and then (and at
    # the end of a phase) catches any row even later than that; its `observed` time is then late.
    FULL_SCAN_EVERY = 30.0
    SLACK = timedelta(seconds=5)

    def __init__(self, engine: AsyncEngine, interval: float) -> None:
        self.engine = engine
        self.interval = interval
        self.recorded: dict[str, Recorded] = {}
        self.polls = 0
        self._since = datetime(2000, 1, 1, tzinfo=UTC)
        self._last_full = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="records-poller")

    async def poll(self, *, full: bool = False) -> None:
        query = select(Order.order_id, Order.decided_event_id, Order.decision, Order.updated_at).where(
            Order.decided_event_id.is_not(None)
        )
        if not full:
            query = query.where(Order.updated_at >= self._since - self.SLACK)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        observed = time.time()
        self.polls += 1
        for order_id, decided_event_id, decision, updated_at in rows:
            if updated_at > self._since:
                self._since = updated_at
            known = self.recorded.get(order_id)
            if known is None or known.decided_event_id != decided_event_id:
                self.recorded[order_id] = Recorded(
                    updated_at.timestamp(), observed, decided_event_id or "", decision or ""
                )

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            full = started - self._last_full > self.FULL_SCAN_EVERY
            if full:
                self._last_full = started
            await self.poll(full=full)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def trail_steps(self, order_prefix: str) -> int:
        async with self.engine.connect() as connection:
            steps = await connection.scalar(
                select(func.count()).select_from(TrailStep).where(TrailStep.order_id.like(f"{order_prefix}%"))
            )
        return int(steps or 0)

    async def wait_trail(self, order_prefix: str, expected: int, *, stall_timeout: float) -> float | None:
        """Wait until records holds `expected` trail steps of the orders with this id prefix: an
        order's decision can be recorded before its earlier steps (records reads every topic, each
        partition at its own pace). The wall time when they were all there, or None if it stalled."""
        last, last_progress = -1, time.monotonic()
        while True:
            count = await self.trail_steps(order_prefix)
            if count >= expected:
                return time.time()
            if count != last:
                last, last_progress = count, time.monotonic()
            elif time.monotonic() - last_progress > stall_timeout:
                return None
            await asyncio.sleep(self.interval)

    async def counts(self, order_prefix: str) -> dict[str, int]:
        """Trail steps and dead letters of the run, to check that records holds every step."""
        async with self.engine.connect() as connection:
            letters = await connection.scalar(select(func.count()).select_from(StoredDeadLetter))
        return {"trail_steps": await self.trail_steps(order_prefix), "dead_letters": int(letters or 0)}


@dataclass
class PhaseOutcome:
    name: str
    offered_rate: float | None  # orders/s; None: as fast as the producer goes (saturation)
    orders: list[BenchOrder]
    submitted: dict[str, float] = field(default_factory=dict)
    send_seconds: float = 0.0
    trail_complete_at: float | None = None
    finished: bool = False
    stalled_after: float | None = None


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    """The ERP's producer, as exportwatch.client's OrderPublisher sets it up (acks=all,
    idempotent), without waiting for each order: a batch is offered, not a conversation."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id="bench-erp", acks="all", enable_idempotence=True, linger_ms=5
    )


async def offer(producer: AIOKafkaProducer, topic: str, outcome: PhaseOutcome, *, rate: float | None) -> None:
    """Send every order of the phase, paced at `rate` orders/s or as fast as possible."""
    futures = []
    start = time.time()
    for i, order in enumerate(outcome.orders):
        if rate is not None:
            delay = start + i / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
        outcome.submitted[order.order_id] = time.time()
        futures.append(await producer.send(topic, value=order.payload, key=order.order_id.encode()))
    await asyncio.gather(*futures)
    outcome.send_seconds = time.time() - start


async def wait_done(
    ids: Sequence[str], sources: Sequence[dict[str, Any]], *, stall_timeout: float
) -> float | None:
    """Wait until every id is in every source; None when done, else the seconds it stalled after.
    Only the ids still missing are looked at again: the bench must not eat the CPU it measures."""
    pending = set(ids)
    last_progress = started = time.monotonic()
    while True:
        still = {i for i in pending if not all(i in source for source in sources)}
        if not still:
            return None
        if len(still) < len(pending):
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > stall_timeout:
            return time.monotonic() - started
        pending = still
        await asyncio.sleep(0.5)


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99 and the maximum of durations in seconds, in milliseconds."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000, 1)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1] * 1000, 1)}


def throughput(first_submit: float, done_times: Sequence[float]) -> dict[str, float | None]:
    """Orders/s from the first order offered to the last one done (`per_s`), and between the
    moments a tenth and nine tenths were done (`steady_per_s`: without start-up and tail)."""
    if not done_times:
        return {"per_s": None, "steady_per_s": None, "span_s": None}
    ordered = sorted(done_times)
    span = ordered[-1] - first_submit
    lo, hi = len(ordered) // 10, (len(ordered) * 9) // 10 - 1
    steady = (
        round((hi - lo) / (ordered[hi] - ordered[lo]), 1) if hi > lo and ordered[hi] > ordered[lo] else None
    )
    return {
        "per_s": round(len(ordered) / span, 1) if span > 0 else None,
        "steady_per_s": steady,
        "span_s": round(span, 2),
    }
