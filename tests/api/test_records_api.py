"""The records HTTP API through ASGI: held-order queue, order detail, trail, reviews, dead letters."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.records.app import create_app
from services.records.handler import RecordsHandler
from services.records.outbox import OutboxRelay
from services.records.service import RecordsRuntime
from shared.events import TOPIC_REVIEW_STEPS, TOPIC_REVIEWED, TOPIC_SUBMITTED
from shared.kafka import Incoming, Outgoing, PublishError, dead_letter_for
from shared.service import get_publish
from shared.settings import load_settings
from tests.auth_support import bearer
from tests.records_support import dead_letter, decided, message, screened, submitted


@dataclass
class Capturing:
    """Stands in for the broker: keeps what is published while `connected`, refuses it otherwise."""

    published: list[Outgoing] = field(default_factory=list)
    connected: bool = True

    async def __call__(self, outgoing: Outgoing) -> None:
        if not self.connected:
            raise PublishError("Kafka is not connected (test)")
        self.published.append(outgoing)


@dataclass
class Records:
    app: FastAPI
    client: httpx.AsyncClient
    handler: RecordsHandler
    broker: Capturing

    async def consume(self, *events: dict[str, Any]) -> None:
        for offset, event in enumerate(events):
            await self.handler(message(event, offset=offset))

    def capture(self) -> Capturing:
        """From now on the API and the outbox publish into the returned list instead of a broker."""
        self.broker.connected = True
        self.app.dependency_overrides[get_publish] = lambda: self.broker
        return self.broker

    async def relay(self) -> list[Outgoing]:
        """Run the outbox relay once; what it published (every event so far, in order)."""
        runtime: RecordsRuntime = self.app.state.runtime
        await runtime.outbox.publish_pending()
        return self.broker.published

    async def loop_back(self) -> list[Outgoing]:
        """Publish the outbox and consume what records itself published, as the broker would hand
        it back (review steps and outcomes become trail steps)."""
        published = await self.relay()
        for offset, outgoing in enumerate(published):
            if outgoing.topic in (TOPIC_REVIEWED, TOPIC_REVIEW_STEPS):
                await self.handler(
                    Incoming(outgoing.topic, 0, 1000 + offset, outgoing.key.encode(), outgoing.value, 0)
                )
        return published


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[Records]:
    settings = load_settings("records", database_url=f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    broker = Capturing(connected=False)
    app = create_app(settings, start_kafka=False, publish=broker)
    async with app.router.lifespan_context(app):
        runtime: RecordsRuntime = app.state.runtime
        # The tests run the outbox relay themselves (Records.relay), when they mean to.
        await runtime.outbox.stop()
        handler = RecordsHandler(settings=settings, sessionmaker=runtime.sessionmaker)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=bearer()
        ) as client:
            yield Records(app, client, handler, broker)


async def test_unknown_decision_filter_is_rejected_naming_the_value(records: Records) -> None:
    response = await records.client.get("/orders", params={"decision": "BOGUS"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["query", "decision"], "BOGUS")
    assert "'HOLD'" in error["msg"]


async def test_held_orders_are_listed_with_destination_score_and_reason_codes(records: Records) -> None:
    held, released, pending = (
        submitted("SO-2026-000301"),
        submitted("SO-2026-000302"),
        submitted("SO-2026-000303"),
    )
    await records.consume(held, released, pending, decided(held, "HOLD"), decided(released, "RELEASE"))

    response = await records.client.get("/orders", params={"decision": "HOLD"})
    assert response.status_code == 200
    [order] = response.json()
    assert {
        k: order[k] for k in ("order_id", "destination_country", "decision", "risk_score", "reason_codes")
    } == {
        "order_id": "SO-2026-000301",
        "destination_country": "DE",
        "decision": "HOLD",
        "risk_score": 72,
        "reason_codes": ["POTENTIAL_MATCH", "LICENSE_REQUIRED"],
    }
    everything = (await records.client.get("/orders", params={"limit": 2})).json()
    assert len(everything) == 2
    unreviewed = (await records.client.get("/orders", params={"reviewed": "false"})).json()
    assert {o["order_id"] for o in unreviewed} == {"SO-2026-000301", "SO-2026-000302", "SO-2026-000303"}


async def test_order_detail_explains_the_current_decision(records: Records) -> None:
    order = submitted("SO-2026-000304")
    decision = decided(order, "HOLD")
    await records.consume(order, screened(order), decision)

    response = await records.client.get("/orders/SO-2026-000304")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["decided_event_id"], body["submitted_event_id"]) == (
        "decided",
        decision["event_id"],
        order["event_id"],
    )
    reasons = body["decision"]["reasons"]
    assert [(r["code"], r["severity"]) for r in reasons] == [
        ("POTENTIAL_MATCH", "HOLD"),
        ("LICENSE_REQUIRED", "LICENSE_REQUIRED"),
    ]
    assert reasons[1]["message"] == "6A003.b.4.b: RS1 is marked X for DE (15 CFR 738 Supp. 1)"
    assert reasons[0]["evidence"] == {"list_id": "EL", "entry_id": "csl-12345", "score": 0.9}
    assert body["decision"]["line_determinations"][0]["columns_applicable"] == ["RS1"]
    assert body["decision"]["policy_version"] == "2026.11.30-1+sha256:000000000000"
    assert body["decision"]["data_versions"] == {"ccl": "sha256:0a1b2c3d4e5f (2026-01-15)"}
    assert body["order"] == order
    assert body["review"] is None


async def test_unknown_order_is_404_naming_it(records: Records) -> None:
    for path in ("/orders/SO-NOPE-1", "/orders/SO-NOPE-1/trail"):
        response = await records.client.get(path)
        assert response.status_code == 404
        assert "'SO-NOPE-1'" in response.json()["detail"]


async def test_trail_lists_every_step_with_origin_hashes_and_a_valid_chain(records: Records) -> None:
    order = submitted("SO-2026-000305")
    await records.consume(order, screened(order), decided(order))

    body = (await records.client.get("/orders/SO-2026-000305/trail")).json()
    assert body["chain_valid"] is True and body["chain_problems"] == []
    steps = body["steps"]
    assert [(s["seq"], s["stage"], s["schema"], s["topic"], s["offset"]) for s in steps] == [
        (1, "submitted", "order.submitted.v1", "orders.submitted.v1", 0),
        (2, "screened", "order.screened.v1", "orders.screened.v1", 1),
        (3, "decided", "order.decided.v1", "orders.decided.v1", 2),
    ]
    assert steps[0]["payload"] == order
    assert steps[1]["prev_hash"] == steps[0]["step_hash"]
    assert all(len(s["payload_sha256"]) == 64 and s["received_at"].endswith("Z") for s in steps)


async def test_review_without_a_current_decision_is_409(records: Records) -> None:
    await records.consume(submitted("SO-2026-000306"))
    response = await records.client.post(
        "/orders/SO-2026-000306/review",
        json={"review_decision": "RELEASE", "comment": "Cleared with the customer."},
    )
    assert response.status_code == 409
    assert "no decision" in response.json()["detail"]


async def test_review_with_blank_comment_is_422_naming_the_field(records: Records) -> None:
    response = await records.client.post(
        "/orders/SO-2026-000307/review",
        json={"review_decision": "RELEASE", "comment": "  "},
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "comment"]
    assert "blank" in error["msg"]


async def test_a_review_naming_its_reviewer_in_the_body_is_422(records: Records) -> None:
    order = submitted("SO-2026-000314")
    await records.consume(order, decided(order, "HOLD"))
    response = await records.client.post(
        "/orders/SO-2026-000314/review",
        json={"review_decision": "BLOCK", "reviewer": "someone.else", "comment": "Listed end user."},
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["body", "reviewer"], "someone.else")
    assert "API key" in error["msg"]


async def test_a_review_made_while_the_broker_is_away_is_published_once_it_is_back(records: Records) -> None:
    order = submitted("SO-2026-000308")
    await records.consume(order, decided(order))
    response = await records.client.post(
        "/orders/SO-2026-000308/review",
        json={"review_decision": "BLOCK", "comment": "The end user is listed."},
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "approved"
    with pytest.raises(PublishError):  # the broker is away: the events wait in the outbox
        await records.relay()
    assert records.broker.published == []

    records.capture()
    published = await records.relay()
    assert [p.topic for p in published] == [TOPIC_REVIEW_STEPS, TOPIC_REVIEWED]
    assert await records.relay() == published  # published once, marked: nothing again


async def test_review_is_published_and_becomes_the_review_status_once_consumed(records: Records) -> None:
    order = submitted("SO-2026-000309")
    decision = decided(order, "HOLD")
    await records.consume(order, decision)
    records.capture()

    response = await records.client.post(
        "/orders/SO-2026-000309/review",
        json={"review_decision": "BLOCK", "comment": "The end user is on the Entity List."},
        headers=bearer("reviewer-1"),
    )
    assert response.status_code == 202, response.text
    outcome = response.json()
    assert (outcome["status"], outcome["approvals"], outcome["approvals_required"]) == ("approved", 1, 1)
    event = outcome["reviewed"]
    assert {
        k: event[k]
        for k in ("schema", "decided_event_id", "submitted_event_id", "original_decision", "reviewer")
    } == {
        "schema": "order.reviewed.v1",
        "decided_event_id": decision["event_id"],
        "submitted_event_id": order["event_id"],
        "original_decision": "HOLD",
        "reviewer": "reviewer-1",
    }
    assert event["requested_by"]["name"] == "reviewer-1" and event["requested_by"]["role"] == "reviewer"

    # Not applied until records consumes its own event from orders.reviewed.v1.
    assert (await records.client.get("/orders/SO-2026-000309")).json()["status"] == "decided"
    published = await records.loop_back()
    reviewed = [p for p in published if p.topic == TOPIC_REVIEWED]
    assert [(p.key, json.loads(p.value)["event_id"]) for p in reviewed] == [
        ("SO-2026-000309", event["event_id"])
    ]
    body = (await records.client.get("/orders/SO-2026-000309")).json()
    assert body["status"] == "reviewed"
    assert body["review"]["review_decision"] == "BLOCK"
    assert body["review"]["review_event_id"] == event["event_id"]
    trail = (await records.client.get("/orders/SO-2026-000309/trail")).json()
    assert [s["stage"] for s in trail["steps"]] == ["submitted", "decided", "review_step", "reviewed"]
    assert trail["steps"][2]["payload"]["actor"]["name"] == "reviewer-1"
    assert trail["chain_valid"] is True


async def test_the_outbox_holds_no_database_connection_while_the_broker_is_asked(records: Records) -> None:
    order = submitted("SO-2026-000313")
    await records.consume(order, decided(order))
    runtime: RecordsRuntime = records.app.state.runtime
    engine = runtime.sessionmaker.kw["bind"]
    response = await records.client.post(
        "/orders/SO-2026-000313/review",
        json={"review_decision": "BLOCK", "comment": "The end user is listed."},
    )
    assert response.status_code == 202, response.text
    checked_out: list[int] = []

    async def publish(outgoing: Outgoing) -> None:
        checked_out.append(engine.pool.checkedout())

    relay = OutboxRelay(runtime.sessionmaker, publish)
    assert await relay.publish_pending() == 2
    assert checked_out == [0, 0]


async def test_dead_letters_show_text_where_utf8_and_base64_always(records: Records) -> None:
    text_payload = b'{"order_id": "SO-2026-000999", "lines": ['
    binary_payload = b"\xff\xfe\x00binary"
    await records.consume(dead_letter(text_payload, offset=7), dead_letter(binary_payload, offset=8))

    letters = {d["source_offset"]: d for d in (await records.client.get("/deadletters")).json()}
    assert letters[7]["payload_text"] == text_payload.decode()
    assert letters[8]["payload_text"] is None
    assert base64.b64decode(letters[8]["payload_b64"]) == binary_payload
    assert {
        k: letters[7][k] for k in ("service", "source_topic", "source_partition", "error_type", "key")
    } == {
        "service": "classifier",
        "source_topic": "orders.submitted.v1",
        "source_partition": 0,
        "error_type": "InvalidJson",
        "key": "SO-2026-000999",
    }
    assert len((await records.client.get("/deadletters", params={"limit": 1})).json()) == 1


async def test_stats_count_orders_per_current_decision_and_dead_letters(records: Records) -> None:
    a, b, c = submitted("SO-2026-000310"), submitted("SO-2026-000311"), submitted("SO-2026-000312")
    await records.consume(a, b, c, decided(a, "BLOCK"), decided(b, "BLOCK"), dead_letter(b"\x00"))

    assert (await records.client.get("/stats")).json() == {
        "orders": 3,
        "pending": 1,
        "decisions": {"RELEASE": 0, "LICENSE_REQUIRED": 0, "HOLD": 0, "BLOCK": 2},
        "reviewed": 0,
        "dead_letters": 1,
    }


async def test_ready_without_kafka_once_the_database_is_prepared(records: Records) -> None:
    response = await records.client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ready"


async def test_a_dead_letter_is_replayed_to_its_source_topic_with_its_original_bytes_and_key(
    records: Records,
) -> None:
    payload = b'{"order_id": "SO-2026-000777", "lines": ['
    await records.consume(dead_letter(payload, offset=11))
    [letter] = (await records.client.get("/deadletters")).json()
    stage = records.capture()

    response = await records.client.post(f"/deadletters/{letter['event_id']}/replay")

    assert response.status_code == 202, response.text
    [published] = stage.published
    assert (published.topic, published.key, published.value) == (
        "orders.submitted.v1",
        "SO-2026-000999",
        payload,
    )
    missing = await records.client.post("/deadletters/no-such-letter/replay")
    assert missing.status_code == 404 and "no-such-letter" in missing.json()["detail"]


async def test_a_dead_letter_that_holds_only_the_beginning_of_its_message_is_not_replayed(
    records: Records,
) -> None:
    big = Incoming(TOPIC_SUBMITTED, 0, 13, b"SO-2026-000778", b"x" * 2_000_000, 0)
    made = dead_letter_for(big, service="classifier", error_type="InvalidJson", error="not JSON", topic="dl")
    await records.consume(json.loads(made.value))
    [letter] = (await records.client.get("/deadletters")).json()
    stage = records.capture()
    response = await records.client.post(f"/deadletters/{letter['event_id']}/replay")
    assert response.status_code == 409 and "only the beginning" in response.json()["detail"]
    assert stage.published == []


async def test_replaying_without_kafka_is_503_and_publishes_nothing(records: Records) -> None:
    await records.consume(dead_letter(b"not json", offset=12))
    [letter] = (await records.client.get("/deadletters")).json()
    response = await records.client.post(f"/deadletters/{letter['event_id']}/replay")
    assert response.status_code == 503


async def test_list_updates_and_clearances_are_kept_for_the_audit_including_revocations(
    records: Records,
) -> None:
    import json as _json

    from shared.events import TOPIC_CLEARANCES, TOPIC_LISTS_UPDATED

    update = {
        "schema": "list.updated.v1",
        "event_id": "0b7c1d8e-0000-4000-8000-000000000001",
        "source": "csl",
        "list_id": "EL",
        "list_name": "Entity List",
        "old_version": "sha256:aaaaaaaaaaaa",
        "new_version": "sha256:bbbbbbbbbbbb",
        "entries": 3421,
        "added": ["x-1"],
        "updated_at": "2026-11-30T12:00:00Z",
    }
    clearance = {
        "schema": "screening.clearance.v1",
        "event_id": "0b7c1d8e-0000-4000-8000-000000000002",
        "party_name": "Delta Logistics GmbH",
        "normalised_name": "delta logistics",
        "list_id": "DPL",
        "entry_id": "DELTA-LOGISTICS-GMBH",
        "entry_version": "sha256:cccccccccccc",
        "reviewer": "a.compliance",
        "reason": "Different company: registered in Hamburg since 1998, no link to the denied person",
        "cleared_at": "2026-11-30T12:05:00Z",
    }
    key = b"DPL:DELTA-LOGISTICS-GMBH:delta logistics"
    for offset, (topic, value) in enumerate(
        [
            (TOPIC_LISTS_UPDATED, _json.dumps(update).encode()),
            (TOPIC_CLEARANCES, _json.dumps(clearance).encode()),
        ]
    ):
        await records.handler(Incoming(topic, 0, offset, key, value, 0))
        await records.handler(Incoming(topic, 0, offset, key, value, 0))  # redelivery: kept once
    await records.handler(Incoming(TOPIC_CLEARANCES, 0, 2, key, None, 0))  # tombstone: revoked

    events = (await records.client.get("/reference-events")).json()
    assert sorted(e["kind"] for e in events) == ["clearance", "clearance_revoked", "list_updated"]
    [cleared] = (await records.client.get("/reference-events", params={"kind": "clearance"})).json()
    assert cleared["payload"]["reviewer"] == "a.compliance" and cleared["key"] == key.decode()
    bad = await records.client.get("/reference-events", params={"kind": "everything"})
    assert bad.status_code == 422
