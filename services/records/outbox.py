"""The transactional outbox: events written with the state they announce, published afterwards.

A review step changes the workflow's state and must reach Kafka; doing both in one go would either
hold a database transaction open across a broker round trip or risk a state without its event (or an
event without its state) when one of them fails. So a use case writes its rows AND the events to
publish (`add`) in one transaction, and `OutboxRelay`, a background task of records, publishes the
unpublished rows in order (acks=all, idempotent producer) and marks them. A crash between the
broker's acknowledgement and the mark publishes a row again: at least once, with the same event id,
which records (and an ERP) deduplicates.

Several records instances share the outbox: a relay claims a batch for `LEASE` (a column, not a
lock held across the round trip), so two relays do not publish the same rows at the same time.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import Gauge
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records.models import OutboxMessage
from services.records.polling import PollingTask
from shared.kafka import Outgoing, Publish, PublishError

log = logging.getLogger("exportwatch.records.outbox")

UNPUBLISHED = Gauge("exportwatch_records_outbox_unpublished", "Outbox events not yet taken by the broker")

LEASE = timedelta(seconds=30)
BATCH = 100


def add(session: AsyncSession, *, event_id: str, outgoing: Outgoing, now: datetime) -> None:
    """Queue `outgoing` in the caller's transaction: published once that transaction commits."""
    session.add(
        OutboxMessage(
            event_id=event_id,
            topic=outgoing.topic,
            key=outgoing.key,
            value=outgoing.value,
            created_at=now,
            attempts=0,
        )
    )


class OutboxRelay(PollingTask):
    """Publishes the outbox: woken by a use case after its commit, and every `poll_seconds` (rows of
    another instance, retries after the broker was away)."""

    name = "records-outbox"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        publish: Publish,
        *,
        poll_seconds: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(poll_seconds=poll_seconds, backoff_max=backoff_max)
        self._sessionmaker = sessionmaker
        self._publish = publish

    async def work(self) -> None:
        await self.publish_pending()

    async def publish_pending(self) -> int:
        """Publish every unpublished row, oldest first; the number published. Raises PublishError
        (the rows not taken are released for the next attempt)."""
        published = 0
        try:
            while batch := await self._claim():
                published += await self._publish_batch(batch)
                if len(batch) < BATCH:
                    break
        finally:
            await self._count()
        return published

    async def _claim(self) -> list[OutboxMessage]:
        now = datetime.now(UTC)
        claimable = (OutboxMessage.published_at.is_(None)) & or_(
            OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now
        )
        oldest = select(OutboxMessage.id).where(claimable).order_by(OutboxMessage.id).limit(BATCH)
        async with self._sessionmaker() as session, session.begin():
            # The conditions again on the UPDATE itself: PostgreSQL re-checks them on a row another
            # relay claimed meanwhile, so a row is never claimed twice.
            claimed = await session.scalars(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(oldest.scalar_subquery()), claimable)
                .values(claimed_until=now + LEASE, attempts=OutboxMessage.attempts + 1)
                .returning(OutboxMessage)
            )
            rows = sorted(claimed.all(), key=lambda row: row.id)
        return rows

    async def _publish_batch(self, batch: list[OutboxMessage]) -> int:
        done: list[int] = []
        try:
            for row in batch:
                await self._publish(Outgoing(topic=row.topic, key=row.key, value=row.value))
                done.append(row.id)
        except PublishError as exc:
            await self._release([row.id for row in batch if row.id not in done], str(exc))
            raise
        finally:
            if done:
                await self._mark(done)
        return len(done)

    async def _mark(self, ids: list[int]) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(published_at=datetime.now(UTC), claimed_until=None, last_error=None)
            )

    async def _release(self, ids: list[int], error: str) -> None:
        if not ids:
            return
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(claimed_until=None, last_error=error[:2000])
            )

    async def _count(self) -> None:
        with contextlib.suppress(Exception):
            async with self._sessionmaker() as session:
                pending = await session.scalar(
                    select(func.count()).where(OutboxMessage.published_at.is_(None))
                )
            UNPUBLISHED.set(pending or 0)
