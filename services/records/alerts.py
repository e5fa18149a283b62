"""Post-shipment alerts: a list change made a party of an order already shipped match a listed entry.

Screening raises them on orders.alerts.v1 instead of amending the decision (the goods have gone:
what is needed is a person who looks at the export, possibly a voluntary self-disclosure under
15 CFR 764.5, not a new decision). records keeps each one as a trail step (repository.py) and in
`alerts` until a reviewer acknowledges it; the acknowledgement is chained (audit.py).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Literal

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import chain
from services.records.audit import ChainEntry
from services.records.models import OrderAlertRow
from shared.keystore import Identity

OPEN_ALERTS = Gauge(
    "exportwatch_records_alerts_open",
    "Post-shipment alerts not yet acknowledged: a list change matches a party of a shipped order",
)

AlertState = Literal["open", "acknowledged"]


class AlertNotFound(LookupError):
    pass


class AlertAlreadyAcknowledged(Exception):
    pass


async def measure_alerts(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    with contextlib.suppress(Exception):
        async with sessionmaker() as session:
            OPEN_ALERTS.set(await open_count(session))


async def open_count(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count()).select_from(OrderAlertRow).where(OrderAlertRow.acknowledged_at.is_(None))
    )
    return count or 0


async def list_alerts(
    session: AsyncSession, *, state: AlertState | None, order_id: str | None, limit: int, offset: int
) -> list[OrderAlertRow]:
    query = select(OrderAlertRow).order_by(OrderAlertRow.raised_at.desc(), OrderAlertRow.id.desc())
    if state == "open":
        query = query.where(OrderAlertRow.acknowledged_at.is_(None))
    elif state == "acknowledged":
        query = query.where(OrderAlertRow.acknowledged_at.is_not(None))
    if order_id is not None:
        query = query.where(OrderAlertRow.order_id == order_id)
    return list(await session.scalars(query.limit(limit).offset(offset)))


async def acknowledge(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    event_id: str,
    comment: str,
    who: Identity,
    now: datetime,
) -> OrderAlertRow:
    """A reviewer has looked at the alert (what was done goes in `comment`): it leaves the open list;
    the act is chained."""
    async with sessionmaker() as session, session.begin():
        alert = await session.scalar(
            select(OrderAlertRow).where(OrderAlertRow.event_id == event_id).with_for_update()
        )
        if alert is None:
            raise AlertNotFound(f"alert {event_id!r} not found")
        if alert.acknowledged_at is not None:
            raise AlertAlreadyAcknowledged(
                f"alert {event_id!r} was acknowledged by {alert.acknowledged_by} at {alert.acknowledged_at.isoformat()}"
            )
        alert.acknowledged_at = now
        alert.acknowledged_by = who.name
        alert.acknowledged_by_key_id = who.key_id
        alert.acknowledgement = comment
        record = chain.alert_acknowledged_hash(alert)
        await chain.append(
            session, [ChainEntry("alert_acknowledged", alert.event_id, alert.order_id, record)], now
        )
    return alert
