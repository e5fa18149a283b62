"""records' handler and repository on a real database: SQLite always, PostgreSQL when given.

Each test feeds Kafka messages to the handler exactly as the consumer loop would and asserts what
the trail and the order's current state then say.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import repository, verify
from services.records.handler import RecordsHandler
from services.records.models import Order, ReferenceEvent, StoredDeadLetter, TrailStep, create_schema
from shared.db import make_engine, make_sessionmaker
from shared.events import TOPIC_CLEARANCES, TOPIC_LISTS_UPDATED, SubmittedOrder
from shared.kafka import Incoming, Outgoing, PoisonMessage
from shared.settings import load_settings
from tests.records_support import (
    DATABASES,
    classified,
    dead_letter,
    decided,
    fresh_database,
    message,
    reviewed,
    screened,
    server_url,
    submitted,
)

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(params=DATABASES)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path, server_url(request)) as url:
        yield url


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(database_url)
    await create_schema(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


class PollFeeding(RecordsHandler):
    """records as its consumer loop drives it with batches: every message through handle_batch
    (one transaction per poll), the ones it leaves through the one-at-a-time path."""

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        return (await self.poll([message]))[0]

    async def poll(self, messages: list[Incoming]) -> list[list[Outgoing]]:
        results = await self.handle_batch(messages)
        assert len(results) == len(messages)
        return [
            done if done is not None else list(await RecordsHandler.__call__(self, m))
            for m, done in zip(messages, results, strict=True)
        ]


@pytest.fixture(params=["one-by-one", "poll"])
def handler(request: pytest.FixtureRequest, sessions: Sessions) -> RecordsHandler:
    kind = RecordsHandler if request.param == "one-by-one" else PollFeeding
    return kind(settings=load_settings("records"), sessionmaker=sessions)


async def feed(handler: RecordsHandler, *events: dict[str, Any]) -> None:
    """`events` as consecutive messages: one by one, or all in one poll."""
    messages = [message(event, offset=offset) for offset, event in enumerate(events)]
    if isinstance(handler, PollFeeding):
        assert await handler.poll(messages) == [[] for _ in messages]
        return
    for m in messages:
        assert await handler(m) == []


async def order_row(sessions: Sessions, order_id: str) -> Order:
    async with sessions() as session:
        order = await repository.get_current_order(session=session, order_id=order_id)
    assert order is not None
    return order


async def trail(sessions: Sessions, order_id: str) -> repository.Trail:
    async with sessions() as session:
        found = await repository.get_trail(session=session, order_id=order_id)
    assert found is not None
    return found


async def test_replayed_event_yields_one_trail_step(handler: RecordsHandler, sessions: Sessions) -> None:
    order = submitted("SO-2026-000123")
    await handler(message(order, offset=3))
    # Redelivery after a rebalance, and the same event republished at another offset.
    await handler(message(order, offset=3))
    await handler(message(order, offset=9))

    steps = (await trail(sessions, "SO-2026-000123")).steps
    assert [(s.stage, s.event_id, s.offset) for s in steps] == [("submitted", order["event_id"], 3)]
    async with sessions() as session, session.begin():
        again = await repository.record_event(
            session=session,
            topic="orders.submitted.v1",
            partition=0,
            offset=3,
            raw=json.dumps(order).encode(),
            event=SubmittedOrder.model_validate(order),
        )
    assert again is None


async def test_whole_chain_of_an_order_is_recorded_in_order_with_a_valid_hash_chain(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    order = submitted("SO-2026-000124")
    decision = decided(order)
    await feed(handler, order, classified(order), screened(order), decision)

    found = await trail(sessions, "SO-2026-000124")
    assert [s.stage for s in found.steps] == ["submitted", "classified", "screened", "decided"]
    assert {s.submitted_event_id for s in found.steps} == {order["event_id"]}
    assert found.chain_valid, found.problems
    assert found.steps[0].prev_hash == "0" * 64
    assert all(
        later.prev_hash == earlier.step_hash
        for earlier, later in zip(found.steps, found.steps[1:], strict=False)
    )
    current = await order_row(sessions, "SO-2026-000124")
    assert (current.decision, current.risk_score, current.decided_event_id) == (
        "HOLD",
        72,
        decision["event_id"],
    )
    assert current.reason_codes == ["POTENTIAL_MATCH", "LICENSE_REQUIRED"]
    assert current.destination_country == "DE"


async def test_older_amendment_arriving_late_does_not_replace_current_state(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    original = submitted("SO-2026-000125", occurred_at="2026-11-30T12:00:00Z", destination_country="DE")
    amended = submitted("SO-2026-000125", occurred_at="2026-11-30T15:30:00+01:00", destination_country="FR")
    await feed(handler, amended, original)

    current = await order_row(sessions, "SO-2026-000125")
    assert current.current_submitted_event_id == amended["event_id"]
    assert current.destination_country == "FR"
    assert current.current_occurred_at is not None and current.current_occurred_at.isoformat() == (
        "2026-11-30T14:30:00+00:00"
    )
    assert len((await trail(sessions, "SO-2026-000125")).steps) == 2


async def test_decision_for_superseded_version_is_kept_in_trail_but_not_current(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    original = submitted("SO-2026-000126", occurred_at="2026-11-30T12:00:00Z")
    amended = submitted("SO-2026-000126", occurred_at="2026-11-30T13:00:00Z", destination_country="FR")
    await feed(handler, original, decided(original, "HOLD"))
    assert (await order_row(sessions, "SO-2026-000126")).decision == "HOLD"

    # The amendment makes the order pending again; the old version's decision, even redelivered
    # or arriving late, never becomes current again.
    await feed(handler, amended, decided(original, "RELEASE"))
    pending = await order_row(sessions, "SO-2026-000126")
    assert (pending.current_submitted_event_id, pending.decision, pending.decided_event_id) == (
        amended["event_id"],
        None,
        None,
    )

    new_decision = decided(amended, "LICENSE_REQUIRED")
    await feed(handler, new_decision)
    current = await order_row(sessions, "SO-2026-000126")
    assert (current.decision, current.decided_event_id) == ("LICENSE_REQUIRED", new_decision["event_id"])
    stages = [(s.stage, s.submitted_event_id) for s in (await trail(sessions, "SO-2026-000126")).steps]
    assert stages.count(("decided", original["event_id"])) == 1
    assert ("decided", amended["event_id"]) in stages


async def test_decision_read_before_its_submission_is_current_with_the_order_from_the_envelope(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    # records reads every topic independently: after an outage it may see the decision first.
    order = submitted("SO-2026-000127")
    await feed(handler, decided(order, "HOLD"))

    async with sessions() as session:
        detail = await repository.get_order(session=session, order_id="SO-2026-000127")
    assert detail is not None and detail.decision is not None
    assert detail.decision.decision == "HOLD"
    assert [r.code for r in detail.decision.reasons] == ["POTENTIAL_MATCH", "LICENSE_REQUIRED"]
    assert detail.order["event_id"] == order["event_id"]
    assert detail.order["lines"][0]["sku"] == "TC-640"

    await feed(handler, order)
    assert (await order_row(sessions, "SO-2026-000127")).decision == "HOLD"


async def test_review_applies_to_current_decision_even_when_read_before_it(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    order = submitted("SO-2026-000128")
    decision = decided(order, "HOLD")
    review = reviewed(decision, review_decision="RELEASE")
    await feed(handler, review)
    async with sessions() as session:
        assert await repository.get_current_order(session=session, order_id="SO-2026-000128") is None

    await feed(handler, order, decision)
    current = await order_row(sessions, "SO-2026-000128")
    assert (current.decision, current.review_decision, current.review_event_id) == (
        "HOLD",
        "RELEASE",
        review["event_id"],
    )
    assert current.reviewer == "j.doe@compliance.example"


async def test_latest_review_wins_and_review_of_superseded_decision_does_not_apply(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    original = submitted("SO-2026-000129", occurred_at="2026-11-30T12:00:00Z")
    decision = decided(original, "HOLD")
    later = reviewed(decision, review_decision="BLOCK", reviewed_at="2026-12-02T09:00:00Z")
    earlier = reviewed(decision, review_decision="RELEASE", reviewed_at="2026-12-01T09:00:00Z")
    await feed(handler, original, decision, later, earlier)
    assert (await order_row(sessions, "SO-2026-000129")).review_decision == "BLOCK"

    amended = submitted("SO-2026-000129", occurred_at="2026-11-30T18:00:00Z")
    await feed(
        handler, amended, decided(amended, "HOLD"), reviewed(decision, reviewed_at="2026-12-03T09:00:00Z")
    )
    current = await order_row(sessions, "SO-2026-000129")
    assert (current.decision, current.review_decision) == ("HOLD", None)
    assert [s.stage for s in (await trail(sessions, "SO-2026-000129")).steps].count("reviewed") == 3


async def test_tampered_payload_breaks_the_hash_chain(handler: RecordsHandler, sessions: Sessions) -> None:
    order = submitted("SO-2026-000130")
    await feed(handler, order, classified(order), decided(order, "BLOCK"))
    assert (await trail(sessions, "SO-2026-000130")).chain_valid

    # Someone turns the BLOCK into a RELEASE directly in the database.
    async with sessions() as session, session.begin():
        step = await session.scalar(select(TrailStep).where(TrailStep.stage == "decided"))
        assert step is not None
        edited = step.content
        edited["decision"]["decision"] = "RELEASE"
        await session.execute(update(TrailStep).where(TrailStep.id == step.id).values(payload=edited))

    tampered = await trail(sessions, "SO-2026-000130")
    assert not tampered.chain_valid
    assert tampered.problems == [f"step 3 (event {step.event_id}): payload differs from the bytes received"]


async def test_a_step_keeps_its_payload_once_as_the_bytes_received(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    order = submitted("SO-2026-000132")
    events = (order, classified(order), decided(order, "HOLD"))
    await feed(handler, *events)
    received = [message(e).value or b"" for e in events]
    async with sessions() as session:
        stored = list(
            await session.execute(
                select(TrailStep.payload, TrailStep.payload_raw, func.length(TrailStep.payload_raw))
                .where(TrailStep.order_id == "SO-2026-000132")
                .order_by(TrailStep.seq)
            )
        )
        detail = await repository.get_order(session=session, order_id="SO-2026-000132")
    # The JSON column holds JSON null; the bytes are those of the message, whole.
    assert [payload for payload, _, _ in stored] == [None, None, None]
    assert [bytes(raw) for _, raw, _ in stored] == received
    assert [size for _, _, size in stored] == [len(raw) for raw in received]
    # Every reader sees the event as received: the order, its decision, the trail.
    assert detail is not None and detail.order == order
    assert detail.decision is not None and detail.decision.decision == "HOLD"
    steps = (await trail(sessions, "SO-2026-000132")).steps
    assert [step.content for step in steps] == [json.loads(raw) for raw in received]


async def test_rewritten_bytes_or_deleted_step_break_the_hash_chain(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    order = submitted("SO-2026-000131")
    await feed(handler, order, classified(order), screened(order))
    async with sessions() as session, session.begin():
        first = await session.scalar(select(TrailStep).where(TrailStep.seq == 1))
        assert first is not None
        forged = first.payload_raw.replace(b'"DE"', b'"FR"')
        await session.execute(update(TrailStep).where(TrailStep.id == first.id).values(payload_raw=forged))
        await session.execute(delete(TrailStep).where(TrailStep.seq == 2))

    problems = (await trail(sessions, "SO-2026-000131")).problems
    assert any("step 1" in p and "payload_sha256" in p for p in problems), problems
    assert any("step 3" in p and "missing" in p for p in problems), problems
    assert any("step 3" in p and "prev_hash" in p for p in problems), problems


async def test_dead_letters_are_kept_once_with_their_bytes(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    utf8 = dead_letter(b'{"order_id": "SO-2026-000999", "lines": [', offset=7)
    binary = dead_letter(b"\xff\xfe\x00binary", offset=8)
    await feed(handler, utf8, binary, utf8)

    async with sessions() as session:
        letters = await repository.list_dead_letters(session=session, limit=10, offset=0)
        steps = await session.scalar(select(func.count()).select_from(TrailStep))
    assert sorted((letter.source_offset, letter.event_id) for letter in letters) == [
        (7, utf8["event_id"]),
        (8, binary["event_id"]),
    ]
    assert {base64.b64decode(letter.payload_b64) for letter in letters} == {
        b'{"order_id": "SO-2026-000999", "lines": [',
        b"\xff\xfe\x00binary",
    }
    assert steps == 0


async def test_invalid_submitted_message_is_skipped_not_dead_lettered(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    bad_country = submitted("SO-2026-000132", destination_country="XX")
    not_json = Incoming("orders.submitted.v1", 0, 5, b"SO-2026-000133", b"{not json", 0)

    assert await handler(message(bad_country)) == []
    assert await handler(not_json) == []
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TrailStep)) == 0
        assert await session.scalar(select(func.count()).select_from(StoredDeadLetter)) == 0


async def test_invalid_event_on_internal_topic_is_a_dead_letter(handler: RecordsHandler) -> None:
    order = submitted("SO-2026-000134")
    envelope = classified(order)
    del envelope["classification"]
    with pytest.raises(ValidationError, match="classification"):
        await handler(message(envelope))

    mismatched = classified(order) | {"order_id": "SO-2026-999999"}
    with pytest.raises(ValidationError, match=r"differs from order\.order_id 'SO-2026-000134'"):
        await handler(message(mismatched))

    # Python's json reads NaN; it is not JSON (every stage refuses it in decode_json, naming where),
    # and PostgreSQL would refuse it on every retry and stall the partition.
    not_a_number = classified(order)
    raw = json.dumps(not_a_number).replace('"erp_eccn": "6A003.b.4.b"', '"erp_eccn": "6A003.b.4.b", "x": NaN')
    with pytest.raises(PoisonMessage, match=r"classification.lines.0.x: NaN is not a JSON number") as caught:
        await handler(message(not_a_number, raw=raw.encode()))
    assert caught.value.error_type == "InvalidJson"

    # An event under another key than its order_id's: a contract violation, dead-lettered here.
    with pytest.raises(
        PoisonMessage, match=r'key: the Kafka key "SO-2026-000999" is not the order_id'
    ) as caught:
        await handler(message(classified(order), key=b"SO-2026-000999"))
    assert caught.value.error_type == "KeyMismatch"

    naive = reviewed(decided(order)) | {"reviewed_at": "2026-12-01T09:00:00"}
    with pytest.raises(PoisonMessage, match="reviewed_at: '2026-12-01T09:00:00' has no time zone"):
        await handler(message(naive))

    # NaN in a field of a submitted order nobody reads: the classifier dead-letters the message
    # (InvalidJson, like any bad input), and records skips it rather than record half an order.
    assert await handler(message(order, raw=json.dumps(order | {"erp_note": float("nan")}).encode())) == []


async def test_a_name_that_says_nan_is_recorded_as_received(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    # records looks for NaN and Infinity in the bytes before its one-pass read (handler._read): a
    # string that says so goes through decode_json, which finds no such number, and is recorded.
    order = submitted("SO-2026-000141")
    order["parties"][0]["name"] = "NaN Infinity Trading"
    raw = json.dumps(order).encode()
    await handler(message(order, raw=raw))
    decision = message(decided(order))
    await handler(decision)

    steps = (await trail(sessions, "SO-2026-000141")).steps
    assert [(s.stage, s.payload_raw) for s in steps] == [("submitted", raw), ("decided", decision.value)]


async def test_unstorable_reference_event_is_a_dead_letter(
    handler: RecordsHandler, sessions: Sessions
) -> None:
    # Reference events are retried forever like order events: what PostgreSQL would refuse on
    # every attempt must be refused before the write, or the partition stalls.
    update = {
        "schema": "list.updated.v1",
        "event_id": "0b7c1d8e-0000-4000-8000-000000000011",
        "source": "csl",
        "list_id": "EL",
        "list_name": "Entity List",
        "old_version": "sha256:aaaaaaaaaaaa",
        "new_version": "sha256:bbbbbbbbbbbb",
        "entries": 3421,
        "updated_at": "2026-11-30T12:00:00Z",
    }
    clearance = {
        "schema": "screening.clearance.v1",
        "event_id": "0b7c1d8e-0000-4000-8000-000000000012",
        "party_name": "Delta Logistics GmbH",
        "normalised_name": "delta logistics",
        "list_id": "DPL",
        "entry_id": "DELTA-LOGISTICS-GMBH",
        "entry_version": "sha256:cccccccccccc",
        "reviewer": "a.compliance",
        "reason": "Different company",
        "cleared_at": "2026-11-30T12:05:00Z",
    }
    key = b"DPL:DELTA-LOGISTICS-GMBH:delta logistics"

    not_a_number = json.dumps(update | {"stats": {"ratio": float("nan")}}).encode()
    with pytest.raises(PoisonMessage, match=r"stats.ratio: NaN is not a JSON number") as caught:
        await handler(Incoming(TOPIC_LISTS_UPDATED, 0, 1, b"EL", not_a_number, 0))
    assert caught.value.error_type == "InvalidJson"  # shared/codec.py decode_json, as every stage

    nul_id = json.dumps(clearance | {"event_id": "0b7c1d8e\x00"}).encode()
    with pytest.raises(PoisonMessage, match=r"event_id: contains the NUL character") as caught:
        await handler(Incoming(TOPIC_CLEARANCES, 0, 2, key, nul_id, 0))
    assert caught.value.error_type == "UnstorableEvent"

    # The key is stored as well, a revocation's (tombstone's) too.
    with pytest.raises(PoisonMessage, match=r"key: contains the NUL character"):
        await handler(Incoming(TOPIC_CLEARANCES, 0, 3, key + b"\x00", None, 0))

    with pytest.raises(PoisonMessage, match=r"event_id: longer than 128 characters"):
        await handler(
            Incoming(
                TOPIC_LISTS_UPDATED, 0, 4, b"EL", json.dumps(update | {"event_id": "e" * 129}).encode(), 0
            )
        )

    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ReferenceEvent)) == 0
    # The same events, storable, are recorded.
    await handler(Incoming(TOPIC_LISTS_UPDATED, 0, 5, b"EL", json.dumps(update).encode(), 0))
    await handler(Incoming(TOPIC_CLEARANCES, 0, 6, key, json.dumps(clearance).encode(), 0))
    await handler(Incoming(TOPIC_CLEARANCES, 0, 7, key, None, 0))
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ReferenceEvent)) == 3


async def test_concurrent_instances_record_each_event_once_in_one_chain(
    database_url: str, sessions: Sessions, handler: RecordsHandler
) -> None:
    # A second records instance (its own engine and connections) holds the other topics'
    # partitions: both append to the same orders at once.
    other_engine = make_engine(database_url)
    other = RecordsHandler(settings=load_settings("records"), sessionmaker=make_sessionmaker(other_engine))
    try:
        events = []
        for n in range(5):
            order = submitted(f"SO-2026-0002{n:02d}")
            events += [order, classified(order), screened(order), decided(order)]
        messages = [message(event, offset=i) for i, event in enumerate(events)]
        await asyncio.gather(
            *(instance(m) for m in messages for instance in (handler, other)),
        )
    finally:
        await other_engine.dispose()

    for n in range(5):
        found = await trail(sessions, f"SO-2026-0002{n:02d}")
        assert found.chain_valid, found.problems
        assert sorted(s.stage for s in found.steps) == ["classified", "decided", "screened", "submitted"]
        assert (await order_row(sessions, f"SO-2026-0002{n:02d}")).decision == "HOLD"


async def test_two_instances_writing_overlapping_polls_at_once_record_each_event_once_in_one_chain(
    database_url: str, sessions: Sessions
) -> None:
    # Two records instances, each writing whole polls in one transaction, the same orders in
    # opposite orders and each poll carrying some of the other's events again (a redelivery after
    # a rebalance): the order rows are locked in one order, so neither waits on the other forever,
    # and every event is kept once.
    other_engine = make_engine(database_url)
    first = PollFeeding(settings=load_settings("records"), sessionmaker=sessions)
    second = PollFeeding(settings=load_settings("records"), sessionmaker=make_sessionmaker(other_engine))
    orders = [submitted(f"SO-2026-0003{n:02d}") for n in range(8)]
    ours = [e for o in orders for e in (o, screened(o))]
    theirs = [e for o in reversed(orders) for e in (classified(o), decided(o))]
    try:
        await asyncio.gather(
            first.poll([message(e, offset=i) for i, e in enumerate(ours + theirs[:4])]),
            second.poll([message(e, offset=100 + i) for i, e in enumerate(theirs + ours[:4])]),
        )
    finally:
        await other_engine.dispose()

    for o in orders:
        found = await trail(sessions, o["order_id"])
        assert found.chain_valid, found.problems
        assert sorted(s.stage for s in found.steps) == ["classified", "decided", "screened", "submitted"]
        assert (await order_row(sessions, o["order_id"])).decision == "HOLD"
    report = await verify.verify(sessions, [])
    assert report.ok, report.problems
    assert report.chain_positions_checked == 32 and report.steps_checked == 32
