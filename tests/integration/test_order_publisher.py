"""exportwatch.client.OrderPublisher against the real broker: key, bytes, partitioning, validation."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from exportwatch.client import OrderPublisher
from shared.events import TOPIC_SUBMITTED
from tests.integration.kafka_helpers import create_prefixed_topics, read_topic, unique_prefix
from tests.records_support import submitted

pytestmark = pytest.mark.integration


async def test_orders_are_published_keyed_by_order_id_and_read_back_as_sent(kafka_bootstrap: str) -> None:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix)
    first = submitted("SO-2026-000801", vendor_ref="PO-77")  # an unknown field travels on
    amended = submitted("SO-2026-000801", occurred_at="2026-11-30T13:00:00Z")
    other = submitted("SO-2026-000802")
    async with OrderPublisher(kafka_bootstrap, topic_prefix=prefix) as publisher:
        sent = [await publisher.publish(o) for o in (first, amended, other)]

    assert [s.topic for s in sent] == [f"{prefix}{TOPIC_SUBMITTED}"] * 3
    assert sent[0].partition == sent[1].partition and sent[1].offset > sent[0].offset
    assert [s.event_id for s in sent] == [o["event_id"] for o in (first, amended, other)]
    received = await read_topic(kafka_bootstrap, f"{prefix}{TOPIC_SUBMITTED}", expect=3)
    by_event = {r["event_id"]: r for r in received}
    assert by_event[first["event_id"]] == first
    assert by_event[other["event_id"]]["order_id"] == "SO-2026-000802"


async def test_an_order_outside_the_contract_is_refused_before_anything_is_sent(kafka_bootstrap: str) -> None:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix)
    bad = submitted("SO-2026-000803", destination_country="Germany")
    async with OrderPublisher(kafka_bootstrap, topic_prefix=prefix) as publisher:
        with pytest.raises(ValidationError) as refused:
            await publisher.publish(bad)
        assert "destination_country" in str(refused.value) and "'Germany'" in str(refused.value)
        good = await publisher.publish(submitted("SO-2026-000804"))
    received = await read_topic(kafka_bootstrap, f"{prefix}{TOPIC_SUBMITTED}", expect=2, timeout=5)
    assert [r["order_id"] for r in received] == ["SO-2026-000804"] and good.offset == 0
    assert json.dumps(received[0])
