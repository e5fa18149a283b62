"""Small helpers for tests that talk to the real broker: unique topics, publish, read back.

Each takes the broker as a bare `host:port` (security from the `EXPORTWATCH_KAFKA_*` environment,
plaintext in `make test`) or as `KafkaClientSettings` (a secured broker's user).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.kafka.broker import create_topics
from shared.events import ALL_TOPICS, TOPIC_CONFIGS
from shared.kafka_security import KafkaClientSettings, client_options, client_settings

Kafka = str | KafkaClientSettings


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


async def create_prefixed_topics(kafka: Kafka, prefix: str, partitions: int = 3) -> None:
    await create_topics(
        kafka,
        {f"{prefix}{t}": partitions for t in ALL_TOPICS},
        configs={f"{prefix}{t}": config for t, config in TOPIC_CONFIGS.items()},
    )


async def publish(kafka: Kafka, topic: str, messages: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(**client_options(client_settings(kafka)), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def read_topic(kafka: Kafka, topic: str, *, expect: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Read a topic from the beginning until `expect` JSON messages arrived or the deadline passed."""
    consumer = AIOKafkaConsumer(
        **client_options(client_settings(kafka)), enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + timeout
        while not partitions and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while len(found) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                found.extend(json.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    return found


async def committed_offsets(kafka: Kafka, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets on `topic`, per partition (partitions never committed are absent)."""
    admin = AIOKafkaAdminClient(**client_options(client_settings(kafka)))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def wait_for(predicate: Any, *, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll an async or sync predicate until it returns something truthy, with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:.0f}s (last: {result!r})")
        await asyncio.sleep(interval)


def chair_order(
    order_id: str, buyer: str, *, occurred_at: str = "2026-11-30T12:00:00Z"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An order for EAR99 office chairs to `buyer` in China, as the ERP submits it and as the
    classifier passes it on: what screening reads, without a classifier running."""
    submitted: dict[str, Any] = {
        "schema": "order.submitted.v1",
        "event_id": str(uuid.uuid4()),
        "order_id": order_id,
        "occurred_at": occurred_at,
        "source": "erp-it",
        "ship_from_country": "US",
        # The buyer's own country: a buyer elsewhere than the destination is a red flag of its own.
        "destination_country": "CN",
        "parties": [{"role": "buyer", "name": buyer, "country": "CN"}],
        "lines": [
            {
                "line_no": 1,
                "sku": "OFF-CHAIR-200",
                "description": "Ergonomic office chair",
                "quantity": 1,
                "unit_price": "100.00",
                "currency": "USD",
                "eccn": "EAR99",
            }
        ],
    }
    classified: dict[str, Any] = {
        "schema": "order.classified.v1",
        "event_id": str(uuid.uuid4()),
        "order_id": order_id,
        "causation_id": submitted["event_id"],
        "produced_by": "classifier",
        "order": submitted,
        "classification": {
            "ccl_version": "it",
            "lines": [
                {"line_no": 1, "sku": "OFF-CHAIR-200", "eccn": "EAR99", "source": "erp", "status": "ear99"}
            ],
        },
    }
    return submitted, classified
