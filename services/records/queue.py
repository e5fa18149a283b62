"""The review queue: HOLD and BLOCK orders nobody has reviewed yet, oldest decision first, with the
counts a compliance officer filters by (reason code, destination, list, age). A read of the trail
database; the caller owns the session."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.records import review_store
from services.records.models import DecisionMatch, Order, TrailStep
from services.records.review_store import RequestView

QUEUED_DECISIONS = ("BLOCK", "HOLD")


@dataclass(frozen=True)
class QueueFilter:
    reason: str | None = None
    destination: str | None = None
    list_id: str | None = None
    # Only orders decided at least this long ago.
    min_age: timedelta | None = None
    decision: str | None = None


@dataclass(frozen=True)
class QueueItem:
    order_id: str
    decision: str
    risk_score: int | None
    destination_country: str | None
    reason_codes: list[str]
    decided_event_id: str
    decided_at: datetime
    age_seconds: float
    lists: list[str]
    pending: RequestView | None


@dataclass(frozen=True)
class Queue:
    total: int
    items: list[QueueItem]
    by_decision: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)
    by_destination: dict[str, int] = field(default_factory=dict)
    by_list: dict[str, int] = field(default_factory=dict)
    awaiting_approval: int = 0


async def _rows(session: AsyncSession, wanted: QueueFilter, now: datetime) -> list[tuple[Order, datetime]]:
    query = (
        select(Order, TrailStep.received_at)
        .join(TrailStep, TrailStep.event_id == Order.decided_event_id)
        .where(Order.decision.in_(QUEUED_DECISIONS), Order.review_event_id.is_(None))
        .order_by(TrailStep.received_at, Order.order_id)
    )
    if wanted.decision is not None:
        query = query.where(Order.decision == wanted.decision)
    if wanted.destination is not None:
        query = query.where(Order.destination_country == wanted.destination)
    if wanted.min_age is not None:
        query = query.where(TrailStep.received_at <= now - wanted.min_age)
    if wanted.list_id is not None:
        query = query.where(
            exists().where(
                DecisionMatch.decided_event_id == Order.decided_event_id,
                DecisionMatch.list_id == wanted.list_id,
            )
        )
    rows = [(order, decided_at) for order, decided_at in (await session.execute(query))]
    # Reason codes are a JSON list per order: filtered here, the same way on SQLite and PostgreSQL.
    return [(o, at) for o, at in rows if wanted.reason is None or wanted.reason in o.reason_codes]


async def review_queue(
    session: AsyncSession, wanted: QueueFilter, *, now: datetime, limit: int, offset: int
) -> Queue:
    rows = await _rows(session, wanted, now)
    decided_ids = [o.decided_event_id for o, _ in rows if o.decided_event_id is not None]
    lists = await _lists_of(session, decided_ids)
    page = rows[offset : offset + limit]
    pending = await review_store.pending_for(session, [o.decided_event_id or "" for o, _ in page])
    items = [
        QueueItem(
            order_id=order.order_id,
            decision=order.decision or "",
            risk_score=order.risk_score,
            destination_country=order.destination_country,
            reason_codes=list(order.reason_codes),
            decided_event_id=order.decided_event_id or "",
            decided_at=decided_at,
            age_seconds=max((now - decided_at).total_seconds(), 0.0),
            lists=lists.get(order.decided_event_id or "", []),
            pending=pending.get(order.decided_event_id or ""),
        )
        for order, decided_at in page
    ]
    every_pending = await review_store.pending_for(session, decided_ids)
    return Queue(
        total=len(rows),
        items=items,
        by_decision=dict(Counter(o.decision or "" for o, _ in rows)),
        by_reason=dict(Counter(code for o, _ in rows for code in o.reason_codes).most_common()),
        by_destination=dict(Counter(o.destination_country or "" for o, _ in rows).most_common()),
        by_list=dict(Counter(lst for ids in lists.values() for lst in ids).most_common()),
        awaiting_approval=len(every_pending),
    )


async def _lists_of(session: AsyncSession, decided_event_ids: list[str]) -> dict[str, list[str]]:
    if not decided_event_ids:
        return {}
    found: dict[str, list[str]] = {}
    rows = await session.execute(
        select(DecisionMatch.decided_event_id, DecisionMatch.list_id)
        .where(DecisionMatch.decided_event_id.in_(decided_event_ids))
        .distinct()
        .order_by(DecisionMatch.decided_event_id, DecisionMatch.list_id)
    )
    for decided_event_id, list_id in rows:
        found.setdefault(decided_event_id, []).append(list_id)
    return found


@dataclass(frozen=True)
class Backlog:
    count: int
    oldest_seconds: float


async def backlog(session: AsyncSession, *, now: datetime) -> dict[str, Backlog]:
    """Per queued decision: how many wait for review, and for how long the oldest has waited."""
    rows = await _rows(session, QueueFilter(), now)
    out = {decision: Backlog(0, 0.0) for decision in QUEUED_DECISIONS}
    for order, decided_at in rows:
        decision = order.decision or ""
        before = out[decision]
        out[decision] = Backlog(
            before.count + 1, max(before.oldest_seconds, (now - decided_at).total_seconds())
        )
    return out
