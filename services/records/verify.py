"""GET /audit/verify: recompute both chains from the stored records and check them against the anchors.

Read in keyset pages (constant memory, whatever the size of the store):

1. the store-wide chain (audit.py), position by position: consecutive, linked, its hashes
   recomputed, and each record's current content against the hash it was chained with (a record
   that is gone must be accounted for by a purge tombstone);
2. every stored event is in the chain (one inserted behind records' back is not);
3. every order's own chain (domain.verify_chain): bytes, payload, hashes, positions;
4. the head row against the last position, and every anchor (the anchors topic and the anchor file)
   against the stored hash at its position.

With `start`/`end` (times), only what was recorded in [start, end) is walked, and the orders that
have a step recorded then (each checked whole), and the anchors made then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import chain
from services.records.audit import (
    GENESIS_HASH,
    Anchor,
    ChainCheck,
    Problems,
    StoredLink,
    check_anchor,
)
from services.records.domain import verify_chain
from services.records.models import (
    ChainHead,
    ChainLinkRow,
    LegalHold,
    OrderAlertRow,
    PurgedOrder,
    ReferenceEvent,
    StoredDeadLetter,
    TrailStep,
)
from services.records.repository import chain_link

PAGE = 1000


@dataclass
class VerifyReport:
    ok: bool
    orders_checked: int
    steps_checked: int
    anchors_checked: int
    chain_positions_checked: int
    head: dict[str, Any]
    problems: list[str]
    problems_total: int
    range: dict[str, str | None] = field(default_factory=dict)


async def _current_hashes(
    session: AsyncSession, links: Sequence[StoredLink]
) -> tuple[dict[tuple[str, str], str], set[str]]:
    """(kind, record_id) -> the hash of the record as stored now; and the orders with a tombstone."""
    ids: dict[str, list[str]] = {}
    for link in links:
        ids.setdefault(link.kind, []).append(link.record_id)
    found: dict[tuple[str, str], str] = {}
    if steps := ids.get("trail_step"):
        for step in await session.scalars(select(TrailStep).where(TrailStep.event_id.in_(steps))):
            found["trail_step", step.event_id] = chain.step_fields(step).record_hash()
    if refs := ids.get("reference_event"):
        for ref in await session.scalars(select(ReferenceEvent).where(ReferenceEvent.event_id.in_(refs))):
            found["reference_event", ref.event_id] = chain.reference_hash(ref)
    if letters := ids.get("dead_letter"):
        for letter in await session.scalars(
            select(StoredDeadLetter).where(StoredDeadLetter.event_id.in_(letters))
        ):
            found["dead_letter", letter.event_id] = chain.dead_letter_hash(letter)
    holds = [*ids.get("legal_hold", []), *ids.get("hold_released", [])]
    if holds:
        for hold in await session.scalars(select(LegalHold).where(LegalHold.hold_id.in_(holds))):
            found["legal_hold", hold.hold_id] = chain.hold_placed_hash(hold)
            if hold.released_at is not None:
                found["hold_released", hold.hold_id] = chain.hold_released_hash(hold)
    if acks := ids.get("alert_acknowledged"):
        for alert in await session.scalars(select(OrderAlertRow).where(OrderAlertRow.event_id.in_(acks))):
            if alert.acknowledged_at is not None:
                found["alert_acknowledged", alert.event_id] = chain.alert_acknowledged_hash(alert)
    if purges := ids.get("purge"):
        purged_orders = [record.split(":", 1)[1] for record in purges if ":" in record]
        for row in await session.scalars(select(PurgedOrder).where(PurgedOrder.order_id.in_(purged_orders))):
            found["purge", f"{row.purge_id}:{row.order_id}"] = chain.purge_hash(row)
    orders = {link.order_id for link in links if link.order_id is not None}
    tombstoned = (
        set(await session.scalars(select(PurgedOrder.order_id).where(PurgedOrder.order_id.in_(orders))))
        if orders
        else set()
    )
    return found, tombstoned


# --- the walks -----------------------------------------------------------------------------------


def _in_range(column: Any, start: datetime | None, end: datetime | None) -> list[Any]:
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions


async def _walk_chain(
    sessions: async_sessionmaker[AsyncSession],
    problems: Problems,
    start: datetime | None,
    end: datetime | None,
) -> ChainCheck:
    check = ChainCheck(problems, expected_seq=None, expected_prev=None)
    async with sessions() as session:
        low, high = await chain.seq_bounds(session, start, end)
    after, first = low - 1, True
    while after < high:
        upto = min(after + PAGE, high)
        async with sessions() as session:
            rows = list(
                await session.scalars(
                    select(ChainLinkRow)
                    .where(ChainLinkRow.seq > after, ChainLinkRow.seq <= upto)
                    .order_by(ChainLinkRow.seq)
                )
            )
            links = [
                StoredLink(r.seq, r.kind, r.record_id, r.order_id, r.record_hash, r.prev_hash, r.chain_hash)
                for r in rows
            ]
            if links and first:
                await _start_of(session, check, links[0], whole=start is None)
                first = False
            hashes, tombstoned = await _current_hashes(session, links)
        for link in links:
            check.feed(link, hashes.get((link.kind, link.record_id)), purged=link.order_id in tombstoned)
        after = upto
    return check


async def _start_of(session: AsyncSession, check: ChainCheck, first: StoredLink, *, whole: bool) -> None:
    """Where the walk must start: position 1 from the genesis hash, or (a range) right after the
    stored position before it."""
    if whole or first.seq == 1:
        check.expected_seq, check.expected_prev = 1, GENESIS_HASH
        return
    before = await session.scalar(select(ChainLinkRow.chain_hash).where(ChainLinkRow.seq == first.seq - 1))
    if before is None:
        check.problems.add(
            f"chain position {first.seq - 1} (before the range) is missing: deleted from the chain"
        )
    check.expected_seq, check.expected_prev = first.seq, before


async def _unchained(
    sessions: async_sessionmaker[AsyncSession],
    problems: Problems,
    start: datetime | None,
    end: datetime | None,
) -> None:
    """Stored events with no position in the chain: written behind records' back."""
    sources: list[tuple[str, Any, Any, Any]] = [
        ("trail_step", TrailStep.event_id, TrailStep.order_id, TrailStep.received_at),
        ("reference_event", ReferenceEvent.event_id, None, ReferenceEvent.received_at),
        ("dead_letter", StoredDeadLetter.event_id, None, StoredDeadLetter.received_at),
    ]
    async with sessions() as session:
        for kind, event_id, order_id, received_at in sources:
            joined = and_(ChainLinkRow.kind == kind, ChainLinkRow.record_id == event_id)
            columns = [event_id, order_id] if order_id is not None else [event_id]
            query: Select[Any] = (
                select(*columns)
                .outerjoin(ChainLinkRow, joined)
                .where(ChainLinkRow.seq.is_(None), *_in_range(received_at, start, end))
                .limit(100)
            )
            for row in await session.execute(query):
                order = f" of order {row[1]}" if len(row) > 1 else ""
                problems.add(
                    f"{kind} {row[0]}{order} is stored but not in the chain (added behind records' back)"
                )


async def _walk_orders(
    sessions: async_sessionmaker[AsyncSession],
    problems: Problems,
    start: datetime | None,
    end: datetime | None,
) -> tuple[int, int]:
    """Every order's own chain (or those with a step in the range); (orders, steps) checked."""
    orders_checked = steps_checked = 0
    after = ""
    while True:
        async with sessions() as session:
            query = select(TrailStep.order_id).where(
                TrailStep.order_id > after, *_in_range(TrailStep.received_at, start, end)
            )
            order_ids = list(
                await session.scalars(
                    query.group_by(TrailStep.order_id).order_by(TrailStep.order_id).limit(PAGE // 10)
                )
            )
            if not order_ids:
                return orders_checked, steps_checked
            steps = list(
                await session.scalars(
                    select(TrailStep)
                    .where(TrailStep.order_id.in_(order_ids))
                    .order_by(TrailStep.order_id, TrailStep.seq)
                )
            )
        by_order: dict[str, list[TrailStep]] = {}
        for step in steps:
            by_order.setdefault(step.order_id, []).append(step)
        for order_id in order_ids:
            found = by_order.get(order_id, [])
            for problem in verify_chain([chain_link(s) for s in found]):
                problems.add(f"order {order_id}: {problem}")
            orders_checked += 1
            steps_checked += len(found)
        after = order_ids[-1]


async def _check_head_and_anchors(
    session: AsyncSession,
    problems: Problems,
    anchors: Sequence[Anchor],
    *,
    start: datetime | None,
    end: datetime | None,
) -> tuple[dict[str, Any], int]:
    head = await session.scalar(select(ChainHead).where(ChainHead.id == 1))
    last = await session.scalar(select(func.max(ChainLinkRow.seq))) or 0
    last_hash = (
        await session.scalar(select(ChainLinkRow.chain_hash).where(ChainLinkRow.seq == last))
        if last
        else GENESIS_HASH
    )
    if head is None:
        problems.add("the chain head row is missing")
        return {"seq": last, "chain_hash": last_hash, "chain_id": None}, 0
    if (head.seq, head.chain_hash) != (last, last_hash):
        problems.add(
            f"the chain head says position {head.seq} ({head.chain_hash[:12]}) but the chain ends at "
            f"position {last} ({(last_hash or '')[:12]})"
        )
    relevant = [
        a
        for a in anchors
        if (start is None or a.anchored_at >= start) and (end is None or a.anchored_at < end)
    ]
    checked = 0
    for offset in range(0, len(relevant), PAGE):
        page = relevant[offset : offset + PAGE]
        ours = [a for a in page if a.chain_id == head.chain_id]
        for anchor in page:
            if anchor.chain_id != head.chain_id:
                problems.add(
                    f"{anchor.describe()}: made for chain {anchor.chain_id}, not this database's chain {head.chain_id}"
                )
        stored = {
            key: value
            for key, value in (
                await session.execute(
                    select(ChainLinkRow.seq, ChainLinkRow.chain_hash).where(
                        ChainLinkRow.seq.in_({a.seq for a in ours})
                    )
                )
            )
        }
        for anchor in ours:
            checked += 1
            if (problem := check_anchor(anchor, stored.get(anchor.seq), last)) is not None:
                problems.add(problem)
    return {"seq": head.seq, "chain_hash": head.chain_hash, "chain_id": head.chain_id}, checked


async def verify(
    sessions: async_sessionmaker[AsyncSession],
    anchors: Sequence[Anchor],
    *,
    anchor_problems: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
) -> VerifyReport:
    problems = Problems([])
    for problem in anchor_problems:
        problems.add(problem)
    walked = await _walk_chain(sessions, problems, start, end)
    await _unchained(sessions, problems, start, end)
    orders_checked, steps_checked = await _walk_orders(sessions, problems, start, end)
    async with sessions() as session:
        head, anchors_checked = await _check_head_and_anchors(
            session, problems, anchors, start=start, end=end
        )
    return VerifyReport(
        ok=problems.total == 0,
        orders_checked=orders_checked,
        steps_checked=steps_checked,
        anchors_checked=anchors_checked,
        chain_positions_checked=walked.checked,
        head=head,
        problems=problems.items,
        problems_total=problems.total,
        range={"from": start.isoformat() if start else None, "to": end.isoformat() if end else None},
    )
