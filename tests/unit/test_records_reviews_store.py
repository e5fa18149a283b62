"""records' review tables on SQLite and PostgreSQL: a database made before review steps existed
takes them after start-up, the database itself refuses a key approving twice, and the outbox is
claimed by one relay at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import CheckConstraint, MetaData, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from services.records import outbox, review_store
from services.records.models import STAGES, OutboxMessage, ReviewRequest, TrailStep, create_schema
from services.records.outbox import OutboxRelay
from shared.db import NAMING_CONVENTION, make_engine, make_sessionmaker
from shared.kafka import Outgoing
from shared.keystore import Identity
from tests.records_support import DATABASES, fresh_database, server_url

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
APPROVER = Identity("0123456789abcdef", "a.approver", "approver")


@pytest.fixture(params=DATABASES)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path, server_url(request)) as url:
        yield url


def _step_row(event_id: str, stage: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "order_id": "SO-1",
        "seq": 1 if event_id.endswith("1") else 2,
        "stage": stage,
        "schema": "order.review-step.v1",
        "topic": "orders.review-steps.v1",
        "partition": 0,
        "offset": 0,
        "submitted_event_id": "s",
        "payload": {},
        "payload_raw": b"{}",
        "payload_sha256": "0" * 64,
        "prev_hash": "0" * 64,
        "step_hash": "0" * 64,
        "received_at": NOW,
    }


async def test_a_trail_database_made_before_review_steps_takes_them_after_start(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        old = MetaData(naming_convention=NAMING_CONVENTION)
        table = TrailStep.__table__.to_metadata(old)  # type: ignore[attr-defined]
        for constraint in [c for c in table.constraints if isinstance(c, CheckConstraint)]:
            table.constraints.remove(constraint)
        earlier = ", ".join(repr(s) for s in STAGES if s != "review_step")
        table.append_constraint(CheckConstraint(f"stage IN ({earlier})", name="stage"))
        async with engine.begin() as connection:
            await connection.run_sync(old.create_all)
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(insert(TrailStep).values(**_step_row("e-1", "review_step")))

        await create_schema(engine)  # what records does at start-up
        await create_schema(engine)  # and again: nothing left to change
        async with engine.begin() as connection:
            await connection.execute(insert(TrailStep).values(**_step_row("e-1", "review_step")))
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(insert(TrailStep).values(**_step_row("e-2", "bogus")))
        if engine.dialect.name == "sqlite":
            async with engine.connect() as connection:
                assert (await connection.execute(text("PRAGMA integrity_check"))).scalar() == "ok"
    finally:
        await engine.dispose()


async def test_the_database_refuses_the_same_key_approving_twice(database_url: str) -> None:
    engine = make_engine(database_url)
    await create_schema(engine)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            session.add(
                ReviewRequest(
                    request_id="r-1",
                    order_id="SO-1",
                    submitted_event_id="s",
                    decided_event_id="d",
                    original_decision="BLOCK",
                    requested_decision="RELEASE",
                    reason_codes=["DENIED_PARTY"],
                    comment="c",
                    approvals_required=2,
                    requested_by_key_id=APPROVER.key_id,
                    requested_by_name=APPROVER.name,
                    requested_by_role=APPROVER.role,
                    requested_at=NOW,
                    status="pending",
                )
            )
        results = []
        for _ in range(2):
            async with sessions() as session, session.begin():
                results.append(
                    await review_store.add_approval(
                        session, request_id="r-1", approver=APPROVER, comment=None, now=NOW
                    )
                )
        assert results == [True, False]
    finally:
        await engine.dispose()


async def test_two_relays_publish_each_outbox_event_once(database_url: str) -> None:
    engine = make_engine(database_url)
    await create_schema(engine)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            for n in range(250):
                outbox.add(session, event_id=f"e-{n}", outgoing=Outgoing("t", f"k{n}", b"v"), now=NOW)
        published: list[str] = []

        async def publish(outgoing: Outgoing) -> None:
            published.append(outgoing.key)
            await asyncio.sleep(0)

        first, second = OutboxRelay(sessions, publish), OutboxRelay(sessions, publish)
        counts = await asyncio.gather(first.publish_pending(), second.publish_pending())
        assert sum(counts) == 250 and sorted(published) == sorted(f"k{n}" for n in range(250))
        async with sessions() as session:
            left = await session.scalar(select(func.count()).where(OutboxMessage.published_at.is_(None)))
        assert left == 0
    finally:
        await engine.dispose()
