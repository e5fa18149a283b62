"""Delta screening, records' side: when a list changes, ask screening to screen every open order again.

A `lists.updated.v1` that added or changed entries schedules a run (`schedule`, in the transaction
that records the list update, so it is kept exactly once). `RescreenDispatcher`, a background task of
records, takes a pending run and publishes one `orders.rescreen.v1` request per open order, in
order_id pages: the classified envelope exactly as records stored it, the party screening of the
decision in force, the change, and when the order shipped. After a page is acknowledged by the
broker the run's cursor moves, so an instance that stops mid-run (or another instance, once the
lease lapsed) resumes after the last page done; a page sent twice is harmless (the request id is a
uuid5 of the change and the decision, and everything derived from it is deterministic).

Open (the policy's `records` section): decided, not shipped, decided within `open_order_days` of
the change; a shipped order within `post_shipment_alert_days` of its shipment is asked too, and a
new match on it comes back as a post-shipment alert instead of an amended decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records.models import Order, RescreenRun, TrailStep, step_content
from services.records.policy import RecordsPolicy
from services.records.polling import PollingTask
from services.records.repository import insert_if_absent
from shared.events import EXPORTWATCH_NS, ListsUpdated
from shared.kafka import Outgoing, Publish

log = logging.getLogger("exportwatch.records.rescreen")

REQUESTS = Counter(
    "exportwatch_records_rescreen_requests_total", "Re-screen requests published after list changes"
)
PENDING_RUNS = Gauge(
    "exportwatch_records_rescreen_runs_pending", "List changes whose open orders are still being asked for"
)

PAGE = 500
LEASE = timedelta(seconds=60)


async def schedule(
    session: AsyncSession, change: ListsUpdated, *, policy: RecordsPolicy, now: datetime
) -> bool:
    """A run for `change` if it added or changed entries (a removed entry never re-screens: a
    decision is lowered only by a review). False if there is nothing to do or it is scheduled."""
    if not change.added and not change.changed:
        return False
    inserted = await session.execute(
        insert_if_absent(session, RescreenRun, "list_change_event_id")
        .values(
            list_change_event_id=change.event_id,
            list_id=change.list_id,
            new_version=change.new_version,
            change=change_ref(change),
            status="pending",
            open_since=policy.open_since(now),
            shipped_since=policy.shipped_since(now),
            requested=0,
            created_at=now,
        )
        .returning(RescreenRun.id)
    )
    return inserted.scalar_one_or_none() is not None


def change_ref(change: ListsUpdated) -> dict[str, Any]:
    """What a request says about the change (shared.events.ListChangeRef)."""
    return {
        "event_id": change.event_id,
        "source": change.source,
        "list_id": change.list_id,
        "list_name": change.list_name,
        "old_version": change.old_version,
        "new_version": change.new_version,
        "published": change.published,
        "added": list(change.added),
        "changed": list(change.changed),
    }


def request_id(change_event_id: str, decided_event_id: str) -> str:
    return str(uuid.uuid5(EXPORTWATCH_NS, f"rescreen:{change_event_id}:{decided_event_id}"))


@dataclass(frozen=True)
class OpenOrder:
    order_id: str
    submitted_event_id: str
    decided_event_id: str
    shipped_at: datetime | None


def request_bytes(
    run_change: dict[str, Any], order: OpenOrder, previous: Any, classified_raw: bytes
) -> bytes:
    """The request's JSON, with the classified envelope's bytes embedded as records received them
    (not parsed and written again: the same bytes, and no cost per order for it)."""
    head = {
        "schema": "order.rescreen-request.v1",
        "event_id": request_id(run_change["event_id"], order.decided_event_id),
        "order_id": order.order_id,
        "decided_event_id": order.decided_event_id,
        "list_change": run_change,
        "shipped_at": order.shipped_at.isoformat() if order.shipped_at is not None else None,
        "previous": previous if isinstance(previous, list) else [],
    }
    return (
        json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode()[:-1]
        + b',"classified":'
        + classified_raw
        + b"}"
    )


async def open_orders(
    session: AsyncSession, run: RescreenRun, *, after: str | None, limit: int
) -> list[OpenOrder]:
    query = (
        select(Order.order_id, Order.current_submitted_event_id, Order.decided_event_id, Order.shipped_at)
        .where(
            Order.decided_event_id.is_not(None),
            Order.current_submitted_event_id.is_not(None),
            or_(
                and_(Order.shipped_at.is_(None), Order.decided_at >= run.open_since),
                and_(Order.shipped_at.is_not(None), Order.shipped_at >= run.shipped_since),
            ),
        )
        .order_by(Order.order_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Order.order_id > after)
    return [OpenOrder(o, s or "", d or "", at) for o, s, d, at in await session.execute(query)]


async def requests_for(
    session: AsyncSession, run: RescreenRun, orders: list[OpenOrder], *, topic: str
) -> list[Outgoing]:
    """One request per order that has its classified envelope and decision on record."""
    if not orders:
        return []
    classified: dict[str, tuple[int, bytes]] = {}
    rows = await session.execute(
        select(TrailStep.submitted_event_id, TrailStep.seq, TrailStep.payload_raw).where(
            TrailStep.stage == "classified",
            TrailStep.submitted_event_id.in_([o.submitted_event_id for o in orders]),
        )
    )
    for version, seq, raw in rows:
        if version not in classified or seq > classified[version][0]:
            classified[version] = (seq, raw)
    previous: dict[str, Any] = {
        key: step_content(raw)["screening"]["parties"]
        for key, raw in (
            await session.execute(
                select(TrailStep.event_id, TrailStep.payload_raw).where(
                    TrailStep.event_id.in_([o.decided_event_id for o in orders])
                )
            )
        )
    }
    out = []
    for order in orders:
        found = classified.get(order.submitted_event_id)
        if found is None or order.decided_event_id not in previous:
            log.warning(
                "order %s: no classified envelope or decision on record; not re-screened", order.order_id
            )
            continue
        value = request_bytes(run.change, order, previous[order.decided_event_id], found[1])
        out.append(Outgoing(topic, order.order_id, value))
    return out


class RescreenDispatcher(PollingTask):
    """Publishes the requests of pending runs (woken after a list update is recorded, and every
    `poll_seconds` for runs another instance left)."""

    name = "records-rescreen"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        publish: Publish,
        *,
        topic: str,
        poll_seconds: float = 5.0,
        backoff_max: float = 30.0,
        page: int = PAGE,
    ) -> None:
        super().__init__(poll_seconds=poll_seconds, backoff_max=backoff_max)
        self._sessionmaker = sessionmaker
        self._publish = publish
        self._topic = topic
        self._page = page

    async def work(self) -> None:
        while not self.stopping and await self.dispatch_one():
            pass

    async def _claim(self, now: datetime) -> RescreenRun | None:
        async with self._sessionmaker() as session, session.begin():
            claimable = (RescreenRun.status == "pending") & or_(
                RescreenRun.claimed_until.is_(None), RescreenRun.claimed_until < now
            )
            oldest = select(RescreenRun.id).where(claimable).order_by(RescreenRun.id).limit(1)
            claimed = await session.scalars(
                update(RescreenRun)
                .where(RescreenRun.id.in_(oldest.scalar_subquery()), claimable)
                .values(claimed_until=now + LEASE)
                .returning(RescreenRun)
            )
            return claimed.first()

    async def dispatch_one(self) -> bool:
        """Publish every request of the oldest pending run; False when there was none."""
        await self._count()
        run = await self._claim(datetime.now(UTC))
        if run is None:
            return False
        started = datetime.now(UTC)
        cursor = run.cursor
        total = run.requested
        while not self.stopping:
            async with self._sessionmaker() as session:
                orders = await open_orders(session, run, after=cursor, limit=self._page)
                requests = await requests_for(session, run, orders, topic=self._topic)
            # Concurrently: the producer batches them (one round trip per batch, not per request).
            await asyncio.gather(*(self._publish(request) for request in requests))
            REQUESTS.inc(len(requests))
            total += len(requests)
            cursor = orders[-1].order_id if orders else cursor
            done = len(orders) < self._page
            await self._advance(run.id, cursor, total, done)
            if done:
                log.info(
                    "list change %s (%s %s): %d open orders asked to be screened again in %.1fs",
                    run.list_change_event_id,
                    run.list_id,
                    run.new_version,
                    total,
                    (datetime.now(UTC) - started).total_seconds(),
                )
                await self._count()
                return True
        return False

    async def _advance(self, run_id: int, cursor: str | None, total: int, done: bool) -> None:
        now = datetime.now(UTC)
        values: dict[str, Any] = {"cursor": cursor, "requested": total, "claimed_until": now + LEASE}
        if done:
            values |= {"status": "done", "finished_at": now, "claimed_until": None}
        async with self._sessionmaker() as session, session.begin():
            await session.execute(update(RescreenRun).where(RescreenRun.id == run_id).values(**values))

    async def _count(self) -> None:
        with contextlib.suppress(Exception):
            async with self._sessionmaker() as session:
                pending = await session.scalars(select(RescreenRun.id).where(RescreenRun.status == "pending"))
                PENDING_RUNS.set(len(pending.all()))
