"""The order search (GET /orders) and the statistics (GET /stats): reads of the trail database.

Filters use the search columns records keeps per order (repository.py: the parties' names folded by
`domain.search_text`, their countries and the reason codes between commas), so the same query runs
on SQLite and PostgreSQL. Pages are keyset pages: the cursor is the last row's (updated_at,
order_id), opaque to the client (base64 of a small JSON array) and checked when it comes back, so a
page never skips or repeats an order however deep it is, and costs the same at any depth.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.records.domain import search_text
from services.records.models import DecisionMatch, Order, ReviewRequest, StoredDeadLetter

ReviewState = Literal["unreviewed", "pending", "reviewed"]
DECISIONS = ("RELEASE", "LICENSE_REQUIRED", "HOLD", "BLOCK")


class BadCursor(ValueError):
    """A cursor this API did not make (or made for another sort): 422 naming the parameter."""


@dataclass(frozen=True)
class OrderFilter:
    decision: str | None = None
    # Before issue 12 the only review filter: a review outcome recorded (true) or not (false).
    reviewed: bool | None = None
    review: ReviewState | None = None
    reason: str | None = None
    party: str | None = None
    party_country: str | None = None
    destination: str | None = None
    list_id: str | None = None
    entry_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    decided_from: datetime | None = None
    decided_to: datetime | None = None
    shipped: bool | None = None
    legal_hold: bool | None = None


def encode_cursor(order: Order) -> str:
    raw = json.dumps([order.updated_at.astimezone(UTC).isoformat(timespec="microseconds"), order.order_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        moment, order_id = json.loads(raw)
        when = datetime.fromisoformat(moment)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadCursor(
            f"{text[:40]!r} is not a cursor of this API: pass back `next_cursor` as given"
        ) from exc
    if when.tzinfo is None or not isinstance(order_id, str):
        raise BadCursor(f"{text[:40]!r} is not a cursor of this API: pass back `next_cursor` as given")
    return when, order_id


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _review_condition(state: ReviewState) -> Any:
    pending = exists().where(ReviewRequest.order_id == Order.order_id, ReviewRequest.status == "pending")
    if state == "reviewed":
        return Order.review_event_id.is_not(None)
    if state == "pending":
        return and_(Order.review_event_id.is_(None), pending)
    return and_(Order.review_event_id.is_(None), ~pending)


def _conditions(wanted: OrderFilter) -> list[Any]:
    conditions: list[Any] = [Order.current_submitted_event_id.is_not(None)]
    simple: list[tuple[Any, Any]] = [
        (wanted.decision, lambda v: Order.decision == v),
        (wanted.destination, lambda v: Order.destination_country == v),
        (wanted.reason, lambda v: Order.reason_search.like(_like(f",{v},"), escape="\\")),
        (wanted.party_country, lambda v: Order.party_countries.like(_like(f",{v},"), escape="\\")),
        (wanted.party, lambda v: Order.party_search.like(_like(search_text(v)), escape="\\")),
        (wanted.created_from, lambda v: Order.created_at >= v),
        (wanted.created_to, lambda v: Order.created_at < v),
        (wanted.decided_from, lambda v: Order.decided_at >= v),
        (wanted.decided_to, lambda v: Order.decided_at < v),
        (wanted.review, _review_condition),
        (wanted.legal_hold, lambda v: Order.legal_hold.is_(v)),
        (wanted.shipped, lambda v: Order.shipped_at.is_not(None) if v else Order.shipped_at.is_(None)),
        (
            wanted.reviewed,
            lambda v: Order.review_event_id.is_not(None) if v else Order.review_event_id.is_(None),
        ),
    ]
    conditions.extend(build(value) for value, build in simple if value is not None)
    if wanted.list_id is not None or wanted.entry_id is not None:
        match = [DecisionMatch.decided_event_id == Order.decided_event_id]
        if wanted.list_id is not None:
            match.append(DecisionMatch.list_id == wanted.list_id)
        if wanted.entry_id is not None:
            match.append(DecisionMatch.entry_id == wanted.entry_id)
        conditions.append(exists().where(*match))
    return conditions


@dataclass(frozen=True)
class Page:
    orders: list[Order]
    next_cursor: str | None


async def search_orders(
    session: AsyncSession, wanted: OrderFilter, *, limit: int, cursor: str | None = None, offset: int = 0
) -> Page:
    """Orders matching `wanted`, most recently changed first; `cursor` continues after a page."""
    query = select(Order).where(*_conditions(wanted))
    if cursor is not None:
        moment, order_id = decode_cursor(cursor)
        query = query.where(
            or_(Order.updated_at < moment, and_(Order.updated_at == moment, Order.order_id > order_id))
        )
    query = query.order_by(Order.updated_at.desc(), Order.order_id).limit(limit + 1).offset(offset)
    rows = list(await session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1]) if more and rows else None)


# --- statistics ------------------------------------------------------------------------------------


@dataclass
class Stats:
    orders: int
    pending: int
    decisions: dict[str, int]
    reviewed: int
    dead_letters: int
    # Of the orders decided in [start, end):
    start: datetime | None = None
    end: datetime | None = None
    decided: int = 0
    by_day: list[dict[str, Any]] = field(default_factory=list)
    by_reason: dict[str, int] = field(default_factory=dict)
    by_destination: dict[str, int] = field(default_factory=dict)
    by_list: dict[str, int] = field(default_factory=dict)
    # Seconds from records first seeing the order version to its decision being recorded.
    latency_seconds: dict[str, float | int | None] = field(default_factory=dict)


def percentile(sorted_values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least `share` of the values at or below it)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


async def get_stats(
    session: AsyncSession, *, start: datetime | None = None, end: datetime | None = None
) -> Stats:
    rows = await session.execute(
        select(Order.decision, func.count())
        .where(Order.current_submitted_event_id.is_not(None))
        .group_by(Order.decision)
    )
    by_decision: dict[str | None, int] = {decision: count for decision, count in rows}
    reviewed = await session.scalar(select(func.count()).where(Order.review_event_id.is_not(None)))
    dead_letters = await session.scalar(select(func.count()).select_from(StoredDeadLetter))
    stats = Stats(
        orders=sum(by_decision.values()),
        pending=by_decision.get(None, 0),
        decisions={code: by_decision.get(code, 0) for code in DECISIONS},
        reviewed=reviewed or 0,
        dead_letters=dead_letters or 0,
        start=start,
        end=end,
    )
    window: list[Any] = [Order.decided_at.is_not(None)]
    if start is not None:
        window.append(Order.decided_at >= start)
    if end is not None:
        window.append(Order.decided_at < end)
    decided = (
        await session.execute(
            select(
                Order.decided_at,
                Order.submitted_at,
                Order.decision,
                Order.reason_codes,
                Order.destination_country,
            ).where(*window)
        )
    ).all()
    stats.decided = len(decided)
    days: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    destinations: Counter[str] = Counter()
    latencies: list[float] = []
    for decided_at, submitted_at, decision, codes, destination in decided:
        assert decided_at is not None  # the window's first condition
        days.setdefault(decided_at.date().isoformat(), Counter())[decision or ""] += 1
        reasons.update(set(codes or []))
        destinations[destination or ""] += 1
        if submitted_at is not None:
            latencies.append(max(0.0, (decided_at - submitted_at).total_seconds()))
    stats.by_day = [
        {"day": day, "decided": sum(counts.values()), "decisions": {d: counts.get(d, 0) for d in DECISIONS}}
        for day, counts in sorted(days.items())
    ]
    stats.by_reason = dict(reasons.most_common())
    stats.by_destination = dict(destinations.most_common())
    lists = await session.execute(
        select(DecisionMatch.list_id, func.count(func.distinct(DecisionMatch.order_id)))
        .join(Order, Order.decided_event_id == DecisionMatch.decided_event_id)
        .where(*window)
        .group_by(DecisionMatch.list_id)
    )
    stats.by_list = dict(
        sorted(((list_id, count) for list_id, count in lists), key=lambda item: (-item[1], item[0]))
    )
    latencies.sort()
    stats.latency_seconds = {
        "count": len(latencies),
        "p50": percentile(latencies, 0.50),
        "p90": percentile(latencies, 0.90),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max": latencies[-1] if latencies else None,
    }
    return stats
