"""orders.screened.v1 in, orders.decided.v1 out: deterministic, keyed by order, bad input dead-lettered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.risk.handler import RiskHandler
from shared.events import TOPIC_DECIDED, DecidedOrder, derived_event_id
from shared.kafka import Incoming, PoisonMessage
from shared.settings import Settings
from tests import risk_samples as s
from tests.risk_support import risk_runtime, sqlite_url


@pytest.fixture(scope="module")
async def handler(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RiskHandler]:
    settings = Settings(topic_prefix="t1.")
    async with risk_runtime(settings, sqlite_url(tmp_path_factory.mktemp("risk"))) as runtime:
        yield RiskHandler(settings=settings, runtime=runtime)


def _incoming(payload: dict[str, Any] | bytes) -> Incoming:
    value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Incoming(
        topic="t1.orders.screened.v1",
        partition=0,
        offset=7,
        key=b"SO-2026-000123",
        value=value,
        timestamp_ms=0,
    )


def _screened_to_china(data_dir: Path) -> dict[str, Any]:
    order = s.order("CN")
    return s.screened_event(
        order, s.classification(s.classified(data_dir, 1, "6A003.b.4.b")), s.screening(order)
    )


async def test_screened_order_becomes_decided_order(handler: RiskHandler, data_dir: Path) -> None:
    event = _screened_to_china(data_dir)
    (out,) = await handler(_incoming(event))
    decided = DecidedOrder.model_validate_json(out.value)
    assert (out.topic, out.key) == (f"t1.{TOPIC_DECIDED}", "SO-2026-000123")
    assert decided.event_id == derived_event_id(event["event_id"], "risk")
    assert (decided.causation_id, decided.produced_by) == (event["event_id"], "risk")
    assert decided.order.model_dump(by_alias=True, mode="json") == event["order"]
    assert decided.decision.decision == "LICENSE_REQUIRED"
    assert decided.decision.policy_version == handler.runtime.policy.version


async def test_redelivery_produces_identical_bytes(handler: RiskHandler, data_dir: Path) -> None:
    event = _screened_to_china(data_dir)
    first, second = await handler(_incoming(event)), await handler(_incoming(event))
    assert first == second


async def test_invalid_json_is_a_poison_message(handler: RiskHandler) -> None:
    with pytest.raises(PoisonMessage, match="not valid JSON"):
        await handler(_incoming(b"{not json"))


async def test_schema_violation_is_a_validation_error_naming_the_field(
    handler: RiskHandler, data_dir: Path
) -> None:
    event = _screened_to_china(data_dir)
    del event["screening"]
    with pytest.raises(ValidationError, match="screening"):
        await handler(_incoming(event))


async def test_envelope_naming_another_order_fails_validation(handler: RiskHandler, data_dir: Path) -> None:
    # The envelope model refuses it (shared/events.py): the runner dead-letters it, naming both ids.
    event = {**_screened_to_china(data_dir), "order_id": "SO-OTHER"}
    with pytest.raises(ValidationError, match=r"order_id 'SO-OTHER' differs from order\.order_id"):
        await handler(_incoming(event))


async def test_a_poll_gives_the_same_bytes_as_one_message_at_a_time_and_leaves_bad_ones(
    handler: RiskHandler, data_dir: Path
) -> None:
    events = [_screened_to_china(data_dir) for _ in range(3)]
    poll = [_incoming(events[0]), _incoming(b"{not json"), _incoming(events[1]), _incoming(events[2])]
    results = await handler.handle_batch(poll)
    assert results[1] is None  # left to __call__, which dead-letters it
    for message, result in zip(poll, results, strict=True):
        if result is not None:
            assert [(o.topic, o.key, o.value) for o in result] == [
                (o.topic, o.key, o.value) for o in await handler(message)
            ]
    assert sum(result is not None for result in results) == 3
