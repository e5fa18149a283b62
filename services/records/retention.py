"""Retention: legal holds, and the purge of orders whose records are no longer required.

15 CFR 762.6(a): export records are kept five years from the latest of the export (the shipment),
the decision and the other events it names; the policy's `records.retention_years` (5, or more)
counts from the later of the order's decision and its shipment (an order never decided: from its
last change). An order under a legal hold (`POST /orders/{id}/hold`, an admin's) is never purged,
whatever its age (762.6(b): records under a formal request must be kept until it is closed).

A purge deletes the order's records (its steps, matches, reviews, alerts, holds) and leaves a
tombstone (`purged_orders`): how many steps there were, the per-order chain's last hash, when they
were recorded, why they could go. Each purged order is itself a position of the store-wide chain
(kind `purge`), and the deleted records' positions stay: verification finds their records gone and
the tombstone that says why, and still passes. Published outbox rows older than the policy's
`published_outbox_days` and expired dashboard sessions are deleted too (not records: their events
are trail steps).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import chain
from services.records.audit import ChainEntry
from services.records.models import (
    DashboardSession,
    DecisionMatch,
    LegalHold,
    Order,
    OrderAlertRow,
    OutboxMessage,
    PurgedOrder,
    ReviewApproval,
    ReviewRequest,
    TrailStep,
)
from services.records.policy import RecordsPolicy
from shared.keystore import Identity

PAGE = 100


class HoldRefused(Exception):
    """`status`: 404 no such order or hold, 409 the hold is not in force."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


# --- legal holds -----------------------------------------------------------------------------------


async def place_hold(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    order_id: str,
    reason: str,
    who: Identity,
    now: datetime,
) -> LegalHold:
    async with sessionmaker() as session, session.begin():
        order = await _locked_order(session, order_id)
        hold = LegalHold(
            hold_id=str(uuid.uuid4()),
            order_id=order_id,
            reason=reason,
            placed_by_name=who.name,
            placed_by_key_id=who.key_id,
            placed_at=now,
        )
        session.add(hold)
        order.legal_hold = True
        await session.flush()
        record = chain.hold_placed_hash(hold)
        await chain.append(session, [ChainEntry("legal_hold", hold.hold_id, order_id, record)], now)
    return hold


async def release_hold(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    order_id: str,
    hold_id: str | None,
    reason: str,
    who: Identity,
    now: datetime,
) -> LegalHold:
    async with sessionmaker() as session, session.begin():
        order = await _locked_order(session, order_id)
        active = list(
            await session.scalars(
                select(LegalHold).where(LegalHold.order_id == order_id, LegalHold.released_at.is_(None))
            )
        )
        chosen = [h for h in active if hold_id is None or h.hold_id == hold_id]
        if not chosen:
            raise HoldRefused(
                404 if hold_id else 409,
                f"order {order_id!r} has no legal hold in force"
                + (f" with id {hold_id!r}" if hold_id else ""),
            )
        if len(chosen) > 1:
            raise HoldRefused(
                409, f"order {order_id!r} has {len(chosen)} legal holds in force: name the hold_id to release"
            )
        hold = chosen[0]
        hold.released_at, hold.released_by_name, hold.released_by_key_id = now, who.name, who.key_id
        hold.release_reason = reason
        order.legal_hold = len(active) > 1
        record = chain.hold_released_hash(hold)
        await chain.append(session, [ChainEntry("hold_released", hold.hold_id, order_id, record)], now)
    return hold


async def holds_of(session: AsyncSession, order_id: str) -> list[LegalHold]:
    return list(
        await session.scalars(select(LegalHold).where(LegalHold.order_id == order_id).order_by(LegalHold.id))
    )


async def _locked_order(session: AsyncSession, order_id: str) -> Order:
    await session.execute(update(Order).where(Order.order_id == order_id).values(order_id=Order.order_id))
    order = await session.scalar(select(Order).where(Order.order_id == order_id).with_for_update())
    if order is None or order.current_submitted_event_id is None:
        raise HoldRefused(404, f"order {order_id!r} not found")
    return order


# --- the purge -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expired:
    order_id: str
    decision: str | None
    decided_at: datetime | None
    shipped_at: datetime | None
    retention_until: datetime


@dataclass
class PurgeReport:
    dry_run: bool
    cutoff: datetime
    purge_id: str
    orders: list[Expired] = field(default_factory=list)
    # Trail steps deleted (a dry run: that would be).
    steps_deleted: int = 0
    held_back: int = 0
    outbox_deleted: int = 0
    sessions_deleted: int = 0


def _expired_before(cutoff: datetime) -> list[ColumnElement[bool]]:
    """The later of decision and shipment is before `cutoff` (an order neither decided nor shipped:
    its last change)."""
    return [
        or_(Order.decided_at.is_(None), Order.decided_at < cutoff),
        or_(Order.shipped_at.is_(None), Order.shipped_at < cutoff),
        or_(Order.decided_at.is_not(None), Order.shipped_at.is_not(None), Order.updated_at < cutoff),
    ]


async def _candidates(
    session: AsyncSession, cutoff: datetime, policy: RecordsPolicy, after: str
) -> list[Expired]:
    rows = await session.execute(
        select(Order.order_id, Order.decision, Order.decided_at, Order.shipped_at, Order.updated_at)
        .where(Order.order_id > after, Order.legal_hold.is_(False), *_expired_before(cutoff))
        .order_by(Order.order_id)
        .limit(PAGE)
    )
    found = []
    for order_id, decision, decided_at, shipped_at, updated_at in rows:
        until = policy.retention_until(decided_at, shipped_at) or policy.retention_until(updated_at)
        assert until is not None
        found.append(Expired(order_id, decision, decided_at, shipped_at, until))
    return found


async def purge(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    policy: RecordsPolicy,
    now: datetime,
    purged_by: str,
    dry_run: bool,
) -> PurgeReport:
    """Delete every order past its retention and not under a legal hold (or, `dry_run`, say which)."""
    cutoff = years_before(now, policy.retention_years)
    report = PurgeReport(dry_run=dry_run, cutoff=cutoff, purge_id=str(uuid.uuid4()))
    async with sessionmaker() as session:
        report.held_back = (
            await session.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.legal_hold.is_(True), *_expired_before(cutoff))
            )
        ) or 0
    after = ""
    while True:
        async with sessionmaker() as session, session.begin():
            page = await _candidates(session, cutoff, policy, after)
            if not page:
                break
            after = page[-1].order_id
            if dry_run:
                report.orders.extend(page)
                counted = select(func.count()).where(TrailStep.order_id.in_([e.order_id for e in page]))
                report.steps_deleted += (await session.scalar(counted)) or 0
                continue
            done = await _purge_page(session, page, report, policy, purged_by, now)
            report.orders.extend(done)
    if not dry_run:
        async with sessionmaker() as session, session.begin():
            old = now - timedelta(days=policy.published_outbox_days)
            deleted = await session.execute(
                delete(OutboxMessage).where(OutboxMessage.published_at < old).returning(OutboxMessage.id)
            )
            report.outbox_deleted = len(deleted.all())
            expired = await session.execute(
                delete(DashboardSession)
                .where(DashboardSession.expires_at < now)
                .returning(DashboardSession.session_sha256)
            )
            report.sessions_deleted = len(expired.all())
    return report


async def _purge_page(
    session: AsyncSession,
    page: Sequence[Expired],
    report: PurgeReport,
    policy: RecordsPolicy,
    purged_by: str,
    now: datetime,
) -> list[Expired]:
    ids = [e.order_id for e in page]
    # Locked, and checked again under the lock: a hold placed meanwhile wins.
    locked = {
        o.order_id: o
        for o in await session.scalars(select(Order).where(Order.order_id.in_(ids)).with_for_update())
        if not o.legal_hold
    }
    done = [e for e in page if e.order_id in locked]
    if not done:
        return []
    ids = [e.order_id for e in done]
    steps = await session.execute(
        select(
            TrailStep.order_id,
            func.count(),
            func.max(TrailStep.seq),
            func.min(TrailStep.received_at),
            func.max(TrailStep.received_at),
        )
        .where(TrailStep.order_id.in_(ids))
        .group_by(TrailStep.order_id)
    )
    counts = {
        order_id: (count, last, first_at, last_at) for order_id, count, last, first_at, last_at in steps
    }
    last_positions = [and_(TrailStep.order_id == o, TrailStep.seq == c[1]) for o, c in counts.items()]
    last_hashes: dict[str, str] = (
        {
            key: value
            for key, value in (
                await session.execute(
                    select(TrailStep.order_id, TrailStep.step_hash).where(or_(*last_positions))
                )
            )
        }
        if last_positions
        else {}
    )
    entries: list[ChainEntry] = []
    for expired in done:
        count, _, first_at, last_at = counts.get(expired.order_id, (0, 0, now, now))
        tombstone = PurgedOrder(
            order_id=expired.order_id,
            purge_id=report.purge_id,
            purged_at=now,
            purged_by=purged_by,
            steps=count,
            last_step_hash=last_hashes.get(expired.order_id, "0" * 64),
            first_received_at=first_at,
            last_received_at=last_at,
            decision=expired.decision,
            decided_at=expired.decided_at,
            shipped_at=expired.shipped_at,
            retention_until=expired.retention_until,
            policy_version=policy.version[:80],
        )
        session.add(tombstone)
        entries.append(
            ChainEntry(
                "purge",
                f"{report.purge_id}:{expired.order_id}",
                expired.order_id,
                chain.purge_hash(tombstone),
            )
        )
        report.steps_deleted += count
    requests = select(ReviewRequest.request_id).where(ReviewRequest.order_id.in_(ids))
    await session.execute(delete(ReviewApproval).where(ReviewApproval.request_id.in_(requests)))
    for model in (ReviewRequest, DecisionMatch, OrderAlertRow, LegalHold, TrailStep):
        await session.execute(delete(model).where(model.order_id.in_(ids)))
    await session.execute(delete(Order).where(Order.order_id.in_(ids)))
    await session.flush()
    await chain.append(session, entries, now)
    return done
