"""A whole consumer poll of order events written in one transaction, with a few statements.

The one-event path (repository.record_event) spends about ten statements and a commit on every
event; a poll of 200 events here takes a fixed handful: the poll's orders inserted-if-absent and
locked in one statement each (in order_id order, so two records instances locking overlapping
orders cannot deadlock), the already-recorded event ids and every order's chain head read in one
query each, the reviews a replayed decision needs in one more, then the new steps and the matched
list entries inserted together. Each order's hash chain is extended in memory in the poll's order,
exactly as the one-event path would have done message by message, and the order rows' new states
are flushed when the transaction commits.

The same rules as the one-event path: the order rows are locked before anything is read, so the
dedupe by event id and the chain heads cannot change under the transaction. The steps go in with a
plain INSERT: an event id the lock did not cover (the same event id under another order, which no
producer of this system makes) makes the insert fail, the transaction roll back with nothing
written, and the consumer loop fall back to the one-event path, whose ON CONFLICT settles it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.records.audit import ChainEntry
from services.records.chain import step_entry
from services.records.models import Base, Order, TrailStep
from services.records.repository import (
    TrailEvent,
    insert_if_absent,
    latest_review,
    new_step,
    project,
    record_alert,
    record_matches,
    state_of,
    update_order,
)
from shared.events import DecidedOrder, ReviewedOrder
from shared.lifecycle_events import OrderAlert


@dataclass(frozen=True)
class OrderEvent:
    """One consumed order event: its validated model, raw bytes and origin."""

    event: TrailEvent
    raw: bytes
    topic: str
    partition: int
    offset: int


async def record_order_events(
    session: AsyncSession, items: Sequence[OrderEvent], now: datetime
) -> list[ChainEntry | None]:
    """Append `items` to their orders' trails in the caller's transaction: for each, its entry for
    the store-wide chain (the caller appends them, chain.append), or None when its event id was
    already recorded (redelivery, replay, or twice in the poll)."""
    if not items:
        return []
    orders = await _lock_orders(session, sorted({item.event.order_id for item in items}), now)
    recorded = await _recorded(session, [item.event.event_id for item in items])
    heads = await _heads(session, list(orders))
    reviews = await _reviews(session, items)
    steps: list[dict[str, Any]] = []
    decisions: list[DecidedOrder] = []
    alerts: list[OrderAlert] = []
    entries: list[ChainEntry | None] = []
    for item in items:
        event = item.event
        if event.event_id in recorded:
            entries.append(None)
            continue
        recorded.add(event.event_id)
        order = orders[event.order_id]
        values, fields = new_step(
            event,
            order,
            head=heads.get(event.order_id),
            origin=(item.topic, item.partition, item.offset),
            raw=item.raw,
            now=now,
        )
        steps.append(values)
        heads[event.order_id] = (fields.seq, fields.step_hash)
        review = None
        if isinstance(event, DecidedOrder):
            decisions.append(event)
            review = latest_review(reviews[event.submitted_event_id], event.event_id)
        elif isinstance(event, ReviewedOrder):
            # A later decision of this poll sees the review, as it would one recorded before it.
            reviews[event.submitted_event_id].append(event)
        elif isinstance(event, OrderAlert):
            alerts.append(event)
        update_order(order, event, project(state_of(order), event, review), now)
        entries.append(step_entry(fields))
    if steps:
        # Core's executemany, not the ORM's bulk insert: the rows are plain dicts already, and the
        # ORM's per-row bookkeeping cost more than the statement itself.
        await session.execute(insert(Base.metadata.tables[TrailStep.__tablename__]), steps)
    await record_matches(session, decisions)
    for alert in alerts:
        await record_alert(session, alert, now)
    return entries


async def _lock_orders(session: AsyncSession, order_ids: list[str], now: datetime) -> dict[str, Order]:
    """The poll's order rows, created if new and locked until the transaction ends, by order_id."""
    await session.execute(
        insert_if_absent(session, Order, "order_id"),
        [{"order_id": order_id, "reason_codes": [], "updated_at": now} for order_id in order_ids],
    )
    locked = await session.scalars(
        select(Order)
        .where(Order.order_id.in_(order_ids))
        .order_by(Order.order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {order.order_id: order for order in locked}


async def _recorded(session: AsyncSession, event_ids: list[str]) -> set[str]:
    found = await session.scalars(select(TrailStep.event_id).where(TrailStep.event_id.in_(set(event_ids))))
    return set(found)


async def _heads(session: AsyncSession, order_ids: list[str]) -> dict[str, tuple[int, str]]:
    """Each order's last step (seq, step_hash); orders with no step yet are absent.

    Every step of the poll's orders is read (a handful each) and the last one kept here: a plain
    lookup by the (order_id, seq) index. Joined to the grouped maxima instead, the query let
    PostgreSQL's planner scan the whole trail once per poll, a cost growing with every step stored.
    """
    heads: dict[str, tuple[int, str]] = {}
    rows = await session.execute(
        select(TrailStep.order_id, TrailStep.seq, TrailStep.step_hash).where(
            TrailStep.order_id.in_(order_ids)
        )
    )
    for order_id, seq, step_hash in rows:
        if order_id not in heads or seq > heads[order_id][0]:
            heads[order_id] = (seq, step_hash)
    return heads


async def _reviews(
    session: AsyncSession, items: Sequence[OrderEvent]
) -> defaultdict[str, list[ReviewedOrder]]:
    """The reviews already recorded for the order versions the poll's decisions belong to (a
    replay may bring a review before its decision), by submitted event id."""
    versions = {item.event.submitted_event_id for item in items if isinstance(item.event, DecidedOrder)}
    found: defaultdict[str, list[ReviewedOrder]] = defaultdict(list)
    if not versions:
        return found
    stored = await session.scalars(
        select(TrailStep.payload_raw).where(
            TrailStep.submitted_event_id.in_(versions), TrailStep.stage == "reviewed"
        )
    )
    for raw in stored:
        review = ReviewedOrder.model_validate_json(raw)
        found[review.submitted_event_id].append(review)
    return found
