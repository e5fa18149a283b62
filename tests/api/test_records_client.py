"""exportwatch.client.RecordsClient against the real records app (httpx ASGI transport)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from exportwatch import client as ew
from services.records import schemas as server
from services.records.app import create_app
from services.records.handler import RecordsHandler
from services.records.service import RecordsRuntime
from shared.events import TOPIC_DEADLETTER, TOPIC_REVIEWED, TOPIC_SUBMITTED
from shared.service import get_publish
from shared.settings import load_settings
from tests.api.test_records_api import Capturing
from tests.auth_support import key
from tests.records_support import classified, dead_letter, decided, message, screened, submitted


@dataclass
class Served:
    records: ew.RecordsClient
    handler: RecordsHandler
    stage: Capturing
    requests: list[httpx.Request]
    runtime: RecordsRuntime
    app: FastAPI

    async def consume(self, *events: dict[str, Any]) -> None:
        for offset, event in enumerate(events):
            await self.handler(message(event, offset=offset))


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    settings = load_settings("records", database_url=f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    stage = Capturing()
    app = create_app(settings, start_kafka=False, publish=stage)
    async with app.router.lifespan_context(app):
        runtime: RecordsRuntime = app.state.runtime
        await runtime.outbox.stop()  # the tests relay the outbox themselves
        handler = RecordsHandler(settings=settings, sessionmaker=runtime.sessionmaker)
        app.dependency_overrides[get_publish] = lambda: stage
        requests: list[httpx.Request] = []

        class Recording(httpx.ASGITransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                requests.append(request)
                return await super().handle_async_request(request)

        async with ew.RecordsClient(
            "http://records", api_key=key("approver-1"), transport=Recording(app=app)
        ) as records:
            yield Served(records, handler, stage, requests, runtime, app)


async def test_queue_lists_held_unreviewed_orders_and_order_shows_the_reasons(served: Served) -> None:
    held, released = submitted("SO-2026-000701"), submitted("SO-2026-000702")
    await served.consume(held, released, decided(held, "HOLD"), decided(released, "RELEASE"))

    queue = await served.records.queue()
    assert [o.order_id for o in queue] == ["SO-2026-000701"]
    assert queue[0].decision == "HOLD" and queue[0].destination_country == "DE"

    order = await served.records.order("SO-2026-000701")
    assert order.status == "decided" and order.final_decision == "HOLD"
    assert order.decision is not None and order.decision.reasons
    assert order.order["order_id"] == "SO-2026-000701"
    assert [o.order_id for o in await served.records.orders(decision="RELEASE")] == ["SO-2026-000702"]


async def test_trail_comes_back_typed_with_its_chain_verification(served: Served) -> None:
    order = submitted("SO-2026-000703")
    await served.consume(order, classified(order), screened(order), decided(order, "BLOCK"))
    trail = await served.records.trail("SO-2026-000703")
    assert trail.chain_valid is True and trail.chain_problems == []
    assert [s.stage for s in trail.steps] == ["submitted", "classified", "screened", "decided"]
    assert trail.steps[0].schema_ == "order.submitted.v1"


async def test_a_release_waits_for_a_second_approver_then_is_published(served: Served) -> None:
    order = submitted("SO-2026-000704")
    decided_event = decided(order, "HOLD")
    await served.consume(order, decided_event)
    first = await served.records.review(
        "SO-2026-000704", review_decision="RELEASE", comment="different company"
    )
    assert (first.status, first.approvals, first.reviewed) == ("awaiting_approval", 1, None)
    assert first.request.decided_event_id == decided_event["event_id"]
    queue = await served.records.review_queue()
    assert [i.order_id for i in queue.items] == ["SO-2026-000704"] and queue.awaiting_approval == 1

    async with ew.RecordsClient(
        "http://records", api_key=key("approver-2"), transport=httpx.ASGITransport(app=served.app)
    ) as second_approver:
        final = await second_approver.approve("SO-2026-000704", comment="agreed")
    assert final.status == "approved" and final.reviewed is not None
    assert final.reviewed.original_decision == "HOLD" and final.reviewed.reviewer == "approver-2"
    await served.runtime.outbox.publish_pending()
    [published] = [p for p in served.stage.published if p.topic == TOPIC_REVIEWED]
    assert published.key == "SO-2026-000704"
    assert json.loads(published.value)["review_decision"] == "RELEASE"


async def test_dead_letters_are_listed_and_replayed_to_their_source_topic(served: Served) -> None:
    letter = dead_letter(b'{"order_id": "SO-2026-000999", "lines": []')
    await served.handler(message(letter))
    [listed] = await served.records.dead_letters()
    assert listed.source_topic == TOPIC_SUBMITTED and listed.payload_text is not None
    assert listed.error_type == "InvalidJson"
    with pytest.raises(ew.ExportwatchError) as forbidden:
        await served.records.replay(listed.event_id)
    assert forbidden.value.status == 403 and "admin" in str(forbidden.value.detail)
    async with ew.RecordsClient(
        "http://records", api_key=key("admin-1"), transport=httpx.ASGITransport(app=served.app)
    ) as admin:
        replay = await admin.replay(listed.event_id)
    assert replay.topic == TOPIC_SUBMITTED and replay.key == "SO-2026-000999"
    [published] = served.stage.published
    assert published.topic == TOPIC_SUBMITTED and published.value.startswith(b'{"order_id"')
    assert TOPIC_DEADLETTER not in {p.topic for p in served.stage.published}


async def test_errors_carry_the_status_and_the_servers_explanation(served: Served) -> None:
    with pytest.raises(ew.ExportwatchError) as missing:
        await served.records.order("SO-NOT-THERE")
    assert missing.value.status == 404 and "SO-NOT-THERE" in str(missing.value.detail)
    with pytest.raises(ew.ExportwatchError) as invalid:
        await served.records.orders(limit=0)
    assert invalid.value.status == 422
    assert invalid.value.detail[0]["loc"] == ["query", "limit"]


async def test_every_request_carries_the_api_key_as_a_bearer_token(served: Served) -> None:
    await served.records.orders()
    await served.records.dead_letters()
    assert served.requests and {r.headers["authorization"] for r in served.requests} == {
        f"Bearer {key('approver-1')}"
    }


async def test_without_a_key_no_authorization_header_is_sent() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    async with ew.RecordsClient("http://records", transport=httpx.MockTransport(answer)) as records:
        assert await records.orders() == []
    assert "authorization" not in seen[0].headers


async def test_wait_for_decision_waits_through_pending_and_unknown(served: Served) -> None:
    order = submitted("SO-2026-000705")
    with pytest.raises(TimeoutError, match="SO-2026-000705"):
        await served.records.wait_for_decision("SO-2026-000705", within=0.2, interval=0.05)
    await served.consume(order)
    with pytest.raises(TimeoutError):
        await served.records.wait_for_decision("SO-2026-000705", within=0.2, interval=0.05)
    await served.handler(message(decided(order, "LICENSE_REQUIRED"), offset=5))
    done = await served.records.wait_for_decision("SO-2026-000705", within=2, interval=0.05)
    assert done.final_decision == "LICENSE_REQUIRED"


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        (ew.OrderSummary, server.OrderSummary),
        (ew.Order, server.OrderOut),
        (ew.Review, server.OrderReview),
        (ew.Trail, server.TrailOut),
        (ew.TrailStep, server.TrailStepOut),
        (ew.DeadLetterInfo, server.DeadLetterOut),
        (ew.Approval, server.ApprovalOut),
        (ew.ReviewRequest, server.ReviewRequestOut),
        (ew.ReviewOutcome, server.ReviewOutcomeOut),
        (ew.Queue, server.QueueOut),
        (ew.QueueItem, server.QueueItemOut),
    ],
)
def test_client_models_have_the_fields_the_api_answers_with(mine: type[Any], theirs: type[Any]) -> None:
    # What the API answers with: its fields and its computed fields (both are serialised).
    answered = set(theirs.model_fields) | set(theirs.model_computed_fields)
    assert set(mine.model_fields) == answered


def test_the_integration_guide_example_uses_the_clients_real_api() -> None:
    import ast
    import re

    guide = (Path(__file__).resolve().parents[2] / "docs" / "integration.md").read_text("utf-8")
    [example] = re.findall(r"```python\n(.*?)```", guide, re.S)
    tree = ast.parse(example)
    [imported] = [
        n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "exportwatch.client"
    ]
    assert all(hasattr(ew, alias.name) for alias in imported.names)
    called = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert {"publish", "wait_for_decision", "final_decision"} <= called
    assert all(hasattr(ew.OrderPublisher, m) for m in ("publish",))
    assert all(hasattr(ew.RecordsClient, m) for m in ("wait_for_decision",))
    assert hasattr(ew.Order, "final_decision") and {"order_id", "topic", "partition", "offset"} <= set(
        ew.PublishedOrder.__dataclass_fields__
    )
    order = next(n for n in ast.walk(tree) if isinstance(n, ast.Dict))
    literal = {
        k.value: v for k, v in zip(order.keys, order.values, strict=True) if isinstance(k, ast.Constant)
    }
    assert {"schema", "event_id", "order_id", "occurred_at", "parties", "lines"} <= set(literal)
