"""The store-wide audit chain and GET /audit/verify's checks on a real database (SQLite always,
PostgreSQL when given): an untouched store verifies, and each kind of tampering is named."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import verify
from services.records.anchors import AnchorBook, Anchorer
from services.records.audit import GENESIS_HASH, ChainEntry, link
from services.records.handler import RecordsHandler
from services.records.models import (
    ChainHead,
    ChainLinkRow,
    DecisionMatch,
    Order,
    ReferenceEvent,
    StoredDeadLetter,
    TrailStep,
    create_schema,
)
from shared.db import make_engine, make_sessionmaker
from shared.events import TOPIC_LISTS_UPDATED, ListsUpdated, envelope_dump
from shared.kafka import Incoming, Outgoing
from shared.settings import load_settings
from tests.records_support import (
    DATABASES,
    classified,
    dead_letter,
    decided,
    fresh_database,
    message,
    screened,
    server_url,
    submitted,
)

Sessions = async_sessionmaker[AsyncSession]
ORDERS = ("SO-2026-000401", "SO-2026-000402", "SO-2026-000403")


@pytest.fixture(params=DATABASES)
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Sessions]:
    async with fresh_database(request.param, tmp_path, server_url(request)) as url:
        engine = make_engine(url)
        await create_schema(engine)
        try:
            yield make_sessionmaker(engine)
        finally:
            await engine.dispose()


def _list_update() -> Incoming:
    event = ListsUpdated.model_validate(
        {
            "event_id": "0b6f0e0c-1b2a-5c3d-9e8f-7a6b5c4d3e2f",
            "source": "csl",
            "list_id": "EL",
            "list_name": "Entity List",
            "old_version": "a" * 16,
            "new_version": "b" * 16,
            "entries": 3,
            "removed": ["EL-7"],
            "updated_at": "2026-12-01T06:00:00Z",
        }
    )
    return Incoming(TOPIC_LISTS_UPDATED, 0, 5, b"EL", envelope_dump(event), 0)


def _messages() -> list[Incoming]:
    """Three orders' whole pipeline, a dead letter and a list update, as the consumer hands them over."""
    events: list[dict[str, Any]] = []
    for order_id in ORDERS:
        order = submitted(order_id)
        events.extend((order, classified(order), screened(order), decided(order)))
    events.append(dead_letter(b"{not json"))
    return [*(message(event, offset=offset) for offset, event in enumerate(events)), _list_update()]


async def _store(sessions: Sessions, messages: list[Incoming] | None = None) -> None:
    handler = RecordsHandler(settings=load_settings("records"), sessionmaker=sessions)
    for incoming in messages if messages is not None else _messages():
        assert await handler(incoming) == []


async def _verify(sessions: Sessions, anchors: AnchorBook | None = None) -> verify.VerifyReport:
    filed = anchors.read_file()[0] if anchors is not None else []
    return await verify.verify(sessions, filed)


def _problems(report: verify.VerifyReport) -> str:
    return "\n".join(report.problems)


async def _anchor(sessions: Sessions, tmp_path: Path) -> AnchorBook:
    published: list[Outgoing] = []

    async def publish(outgoing: Outgoing) -> None:
        published.append(outgoing)

    file = tmp_path / "anchors.jsonl"
    anchorer = Anchorer(sessions, publish, topic="records.anchors.v1", file=file, instance="test")
    made = await anchorer.anchor()
    assert made is not None and [json.loads(o.value)["seq"] for o in published] == [made.seq]
    return AnchorBook(file)


async def test_an_untouched_store_verifies_every_record_in_one_chain(
    sessions: Sessions, tmp_path: Path
) -> None:
    await _store(sessions)
    anchors = await _anchor(sessions, tmp_path)
    report = await _verify(sessions, anchors)
    assert report.ok, _problems(report)
    # 12 trail steps, a dead letter and a list update: 14 positions, one chain.
    assert (report.orders_checked, report.steps_checked, report.chain_positions_checked) == (3, 12, 14)
    assert report.anchors_checked == 1 and report.head["seq"] == 14
    async with sessions() as session:
        counted = await session.execute(select(ChainLinkRow.kind, func.count()).group_by(ChainLinkRow.kind))
        kinds = {kind: count for kind, count in counted}
        steps = list(await session.scalars(select(TrailStep).order_by(TrailStep.id)))
    assert kinds == {"trail_step": 12, "dead_letter": 1, "reference_event": 1}
    # New steps' own hashes cover their metadata (hash version 2).
    assert {s.hash_version for s in steps} == {2}


async def test_redelivery_adds_no_position(sessions: Sessions) -> None:
    messages = _messages()
    await _store(sessions, messages)
    await _store(sessions, messages)  # every event again: all duplicates
    report = await _verify(sessions)
    assert report.ok and report.chain_positions_checked == 14, _problems(report)


async def _step(sessions: Sessions, order_id: str, seq: int) -> TrailStep:
    async with sessions() as session:
        found = await session.scalar(
            select(TrailStep).where(TrailStep.order_id == order_id, TrailStep.seq == seq)
        )
    assert found is not None
    return found


async def test_an_edited_step_is_named(sessions: Sessions) -> None:
    await _store(sessions)
    step = await _step(sessions, ORDERS[1], 4)
    forged = step.payload_raw.replace(b'"HOLD"', b'"RELEASE"')
    assert forged != step.payload_raw
    async with sessions() as session, session.begin():
        await session.execute(update(TrailStep).where(TrailStep.id == step.id).values(payload_raw=forged))
    report = await _verify(sessions)
    assert not report.ok
    assert (
        f"order {ORDERS[1]}: step 4 (event {step.event_id}): stored bytes do not match payload_sha256"
        in report.problems
    )


async def test_edited_metadata_of_a_step_is_named(sessions: Sessions) -> None:
    await _store(sessions)
    step = await _step(sessions, ORDERS[0], 2)
    async with sessions() as session, session.begin():
        await session.execute(update(TrailStep).where(TrailStep.id == step.id).values(offset=999))
    report = await _verify(sessions)
    text_ = _problems(report)
    assert (
        f"trail_step {step.event_id} of order {ORDERS[0]}): the record was changed after it was chained"
        in text_
    )
    assert "step_hash does not match its position, stage, topic, partition, offset" in text_


async def test_a_deleted_step_is_named(sessions: Sessions) -> None:
    await _store(sessions)
    step = await _step(sessions, ORDERS[2], 2)
    async with sessions() as session, session.begin():
        await session.execute(delete(TrailStep).where(TrailStep.id == step.id))
    report = await _verify(sessions)
    text_ = _problems(report)
    assert f"(trail_step {step.event_id} of order {ORDERS[2]}): the record is missing (deleted)" in text_
    assert f"order {ORDERS[2]}: step 3" in text_ and "a step is missing or out of order" in text_


async def test_a_deleted_order_is_named(sessions: Sessions) -> None:
    await _store(sessions)
    async with sessions() as session, session.begin():
        for model in (TrailStep, DecisionMatch, Order):
            await session.execute(delete(model).where(model.order_id == ORDERS[0]))
    report = await _verify(sessions)
    missing = [p for p in report.problems if f"of order {ORDERS[0]}): the record is missing" in p]
    assert len(missing) == 4 and report.orders_checked == 2


async def test_reordered_steps_are_named(sessions: Sessions) -> None:
    await _store(sessions)
    second, third = await _step(sessions, ORDERS[1], 2), await _step(sessions, ORDERS[1], 3)
    async with sessions() as session, session.begin():
        await session.execute(update(TrailStep).where(TrailStep.id == second.id).values(seq=-3))
        await session.execute(update(TrailStep).where(TrailStep.id == third.id).values(seq=2))
        await session.execute(update(TrailStep).where(TrailStep.id == second.id).values(seq=3))
    report = await _verify(sessions)
    text_ = _problems(report)
    assert f"order {ORDERS[1]}: step 2 (event {third.event_id})" in text_
    assert (
        f"(trail_step {third.event_id} of order {ORDERS[1]}): the record was changed after it was chained"
        in text_
    )


async def test_a_truncated_tail_is_found_by_the_anchor(sessions: Sessions, tmp_path: Path) -> None:
    """The tail cut cleanly (the records, their positions, the head moved back): the chain itself
    is consistent again, and only the anchor outside the database tells."""
    await _store(sessions)
    anchors = await _anchor(sessions, tmp_path)
    async with sessions() as session, session.begin():
        tail = list(await session.scalars(select(ChainLinkRow).where(ChainLinkRow.seq > 10)))
        for position in tail:
            for model in (TrailStep, ReferenceEvent, StoredDeadLetter):
                await session.execute(delete(model).where(model.event_id == position.record_id))
        await session.execute(delete(ChainLinkRow).where(ChainLinkRow.seq > 10))
        last = await session.scalar(select(ChainLinkRow.chain_hash).where(ChainLinkRow.seq == 10))
        await session.execute(update(ChainHead).values(seq=10, chain_hash=last))
    without_anchor = await _verify(sessions)
    assert not any("truncated" in p for p in without_anchor.problems)
    report = await _verify(sessions, anchors)
    assert not report.ok
    assert any(
        "the chain ends at position 10; positions 11..14 were removed (truncated tail)" in p
        for p in report.problems
    )


async def test_a_rewritten_chain_disagrees_with_the_anchor(sessions: Sessions, tmp_path: Path) -> None:
    """Everything recomputed after an edit (the forger has the code): only the anchor still tells."""
    await _store(sessions)
    anchors = await _anchor(sessions, tmp_path)
    async with sessions() as session, session.begin():
        rows = list(await session.scalars(select(ChainLinkRow).order_by(ChainLinkRow.seq)))
        forged = [ChainEntry(r.kind, r.record_id, r.order_id, r.record_hash) for r in rows]
        forged[2] = ChainEntry(forged[2].kind, forged[2].record_id, forged[2].order_id, "f" * 64)
        for row, position in zip(rows, link(0, GENESIS_HASH, forged), strict=True):
            row.record_hash, row.prev_hash, row.chain_hash = (
                position.entry.record_hash,
                position.prev_hash,
                position.chain_hash,
            )
        await session.execute(update(ChainHead).values(chain_hash=rows[-1].chain_hash))
    report = await _verify(sessions, anchors)
    assert any("the chain up to there was rewritten" in p for p in report.problems)


async def test_a_record_written_behind_records_back_is_named(sessions: Sessions) -> None:
    await _store(sessions)
    step = await _step(sessions, ORDERS[0], 4)
    values: dict[str, Any] = {
        c.name: getattr(step, c.key) for c in TrailStep.__table__.columns if c.name != "id"
    }
    values |= {"event_id": "smuggled-event", "seq": 5}
    async with sessions() as session, session.begin():
        await session.execute(TrailStep.__table__.insert().values(**values))  # type: ignore[attr-defined]
    report = await _verify(sessions)
    assert (
        f"trail_step smuggled-event of order {ORDERS[0]} is stored but not in the chain (added behind records' back)"
        in report.problems
    )


async def test_a_range_walks_only_what_was_recorded_then(sessions: Sessions) -> None:
    await _store(sessions)
    async with sessions() as session:
        moments = list(await session.scalars(select(ChainLinkRow.recorded_at).order_by(ChainLinkRow.seq)))
    report = await verify.verify(sessions, [], start=moments[4], end=moments[8])
    assert report.ok, _problems(report)
    assert report.chain_positions_checked == 4
    async with sessions() as session, session.begin():
        await session.execute(text("DELETE FROM audit_chain WHERE seq = 4"))
    assert "chain position 4 (before the range) is missing" in _problems(
        await verify.verify(sessions, [], start=moments[4], end=moments[8])
    )
