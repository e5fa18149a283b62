"""What the fault suite sends (valid orders and poison), and what it reads back.

Valid orders are copies of the 21 sample orders (`samples/orders.json`: every decision, listed
names, a red flag) under new order ids and event ids; each copy must end with the decision its
sample got before any fault. Poison is what an ERP or a broken producer could put on
`orders.submitted.v1`, each message under a key of its own so its dead letter can be found.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local.stack import REPO_ROOT
from services.screening.lists import parse_sources
from shared.settings import Settings
from tests.auth_support import bearer

SAMPLES: list[dict[str, Any]] = json.loads((REPO_ROOT / "samples" / "orders.json").read_text())
STAGES = ["submitted", "classified", "screened", "decided"]


def _configured_source(kind: str) -> str:
    [spec] = [s for s in parse_sources(Settings.model_fields["screening_sources"].default) if s.kind == kind]
    return f"{spec.kind}:{spec.folder}"


# The one list source the traffic needs: every listed party of the sample orders is on the CSL
# (trade.gov's consolidation, SDN entries included), and with it alone the samples get the very
# decisions and reason codes they get with all six sources (tests/unit/test_samples_pipeline.py,
# EXPECTED): the baseline wave of the suite checks it. The suite tests crash recovery, not the
# lists: indexing 26k entries instead of 46k at every start of screening is what it saves
# (docs/reliability.md).
SCREENING_SOURCES = _configured_source("csl")


@dataclass(frozen=True)
class Order:
    order_id: str
    event_id: str
    template: int  # index into SAMPLES
    value: bytes


@dataclass(frozen=True)
class Poison:
    key: str
    kind: str
    value: bytes
    # Dead-letter error types that are a right answer; empty: it must be accepted, not dead-lettered.
    expected_errors: frozenset[str]
    # The order id in the body, when the body is an order that should be decided all the same.
    decided_as: str | None = None


def make_order(run: str, number: int) -> Order:
    template = number % len(SAMPLES)
    body = copy.deepcopy(SAMPLES[template])
    body["order_id"] = f"FLT-{run}-{number:05d}"
    body["event_id"] = str(uuid.uuid4())
    return Order(body["order_id"], body["event_id"], template, json.dumps(body).encode())


def _order_body(order_id: str) -> dict[str, Any]:
    body = copy.deepcopy(SAMPLES[0])
    body["order_id"] = order_id
    body["event_id"] = str(uuid.uuid4())
    return body


def make_poison(run: str, wave: int) -> list[Poison]:
    """One of each kind of bad input, under keys unique to this run and wave."""

    def key(kind: str) -> str:
        return f"PSN-{run}-{wave}-{kind}"

    def body(kind: str) -> dict[str, Any]:
        return _order_body(key(kind))

    invalid = frozenset({"InvalidJson", "InvalidEncoding"})
    schema = frozenset({"SchemaValidationError"})

    wrong_types = body("wrong-types")
    wrong_types["lines"][0]["quantity"] = "twenty"
    wrong_types["parties"] = "Muster Maschinenbau GmbH"
    nan = body("nan")
    nan["lines"][0]["quantity"] = float("nan")
    unknown = body("unknown-fields")
    unknown["erp_batch"] = {"id": 4711, "lines": [1, 2]}
    unknown["lines"][0]["warehouse_bin"] = "B-17"
    unknown["parties"][0]["vat_id"] = "DE123456789"
    truncated = json.dumps(body("truncated")).encode()
    invalid_utf8 = json.dumps(body("invalid-utf8")).encode().replace(b"Muster", b"M\xfcster", 1)
    wrong_schema = {"schema": "invoice.created.v1", "invoice_id": key("wrong-schema"), "total": "12.00"}
    mismatched = _order_body(f"PSN-{run}-{wave}-body-of-mismatched-key")
    nan_unknown = body("nan-unknown-field")
    nan_unknown["erp_margin"] = float("nan")

    return [
        Poison(key("random-bytes"), "random bytes", os.urandom(512), invalid),
        Poison(key("truncated"), "truncated JSON", truncated[: len(truncated) // 2], invalid),
        Poison(key("invalid-utf8"), "invalid UTF-8", invalid_utf8, invalid),
        Poison(key("wrong-schema"), "wrong schema", json.dumps(wrong_schema).encode(), schema),
        Poison(key("wrong-types"), "wrong types", json.dumps(wrong_types).encode(), schema),
        # Python's json writes NaN unquoted; it is not JSON (RFC 8259): refused as such, by decode_json.
        Poison(key("nan"), "NaN", json.dumps(nan).encode(), frozenset({"InvalidJson"})),
        Poison(key("json-array"), "JSON, not an object", b"[1, 2, 3]", invalid),
        Poison(
            key("unknown-fields"),
            "unknown fields",
            json.dumps(unknown).encode(),
            frozenset(),
            decided_as=key("unknown-fields"),
        ),
        # Not JSON either, though in a field nobody reads: refused whole, once, by the classifier
        # (records skips an invalid submitted message: the classifier's dead letter is the record).
        Poison(
            key("nan-unknown-field"),
            "NaN in a field the contract does not name",
            json.dumps(nan_unknown).encode(),
            frozenset({"InvalidJson"}),
        ),
        Poison(
            key("mismatched-key"),
            "key disagrees with the body",
            json.dumps(mismatched).encode(),
            frozenset({"KeyMismatch"}),
        ),
    ]


@dataclass
class Wave:
    """The orders and poison of one scenario, as published."""

    name: str
    orders: list[Order]
    poison: list[Poison]
    published_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


async def publish(bootstrap: str, topic: str, messages: Iterable[tuple[str, bytes]], **options: Any) -> None:
    """Publish and wait until the broker acknowledged every message (acks=all, idempotent)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, **options
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key.encode()) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def topic_ends(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [
            TopicPartition(topic, p) for topic in topics for p in sorted(await _partitions(consumer, topic))
        ]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no metadata for topic {topic!r}")


async def event_ids_between(
    bootstrap: str, start: dict[TopicPartition, int], end: dict[TopicPartition, int]
) -> dict[str, list[str]]:
    """Per topic, the event_id of every message in [start, end): a redelivered event shows twice."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: dict[str, list[str]] = {tp.topic: [] for tp in end}
    try:
        wanted = {tp: (start.get(tp, 0), stop) for tp, stop in end.items() if stop > start.get(tp, 0)}
        if not wanted:
            return found
        consumer.assign(list(wanted))
        for tp, (first, _) in wanted.items():
            consumer.seek(tp, first)
        remaining = dict(wanted)
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < remaining.get(tp, (0, 0))[1]:
                        found[tp.topic].append(_event_id(record.value))
                if records and records[-1].offset + 1 >= wanted[tp][1]:
                    remaining.pop(tp, None)
    finally:
        await consumer.stop()
    return found


async def group_lag(bootstrap: str, groups: dict[str, list[str]]) -> int:
    """Messages the groups have not committed yet on their input topics: the work in flight."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        ends = await topic_ends(bootstrap, sorted({t for topics in groups.values() for t in topics}))
        lag = 0
        for group, topics in groups.items():
            committed = await admin.list_consumer_group_offsets(group)
            for tp, end in ends.items():
                if tp.topic in topics:
                    meta = committed.get(tp)
                    lag += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return lag
    finally:
        await admin.close()


async def group_members(bootstrap: str, group: str) -> tuple[str, int]:
    """The group's state (`Stable`, `PreparingRebalance`, ...) and how many members it has, as the
    broker's group coordinator sees it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        # DescribeGroups: (error_code, group_id, group_state, protocol_type, protocol, members, ...)
        [described] = response.groups
        return str(described[2]), len(described[5])
    finally:
        await admin.close()


class LagProbe:
    """One group's committed and end offsets on its input topics, asked often through clients
    kept open (tens of milliseconds a question, so a batch in progress can be caught)."""

    def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
        self.group = group
        self.topics = topics
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.partitions: list[TopicPartition] = []

    async def __aenter__(self) -> LagProbe:
        await self.admin.start()
        await self.consumer.start()
        self.partitions = [
            TopicPartition(t, p) for t in self.topics for p in sorted(await _partitions(self.consumer, t))
        ]
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def offsets(self) -> tuple[int, int]:
        """(committed, end) summed over the group's input partitions."""
        committed = await self.admin.list_consumer_group_offsets(self.group)
        ends: dict[TopicPartition, int] = await self.consumer.end_offsets(self.partitions)
        done = sum(max(0, committed[tp].offset) for tp in self.partitions if tp in committed)
        return done, sum(ends.values())


def _event_id(value: bytes | None) -> str:
    try:
        return str(json.loads(value or b"{}").get("event_id"))
    except (ValueError, AttributeError):
        return "(undecodable)"


class RecordsApi:
    """The records API as a reviewer's dashboard uses it (every call with an admin key)."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=30, headers=bearer())

    async def close(self) -> None:
        await self.client.aclose()

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    async def decisions(self) -> dict[str, str | None]:
        """Every order's current decision (None while pending), paging through `GET /orders`."""
        found: dict[str, str | None] = {}
        offset = 0
        while True:
            page = await self.get("/orders", limit=500, offset=offset)
            found.update({o["order_id"]: o["decision"] for o in page})
            if len(page) < 500:
                return found
            offset += 500

    async def dead_letters(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.get("/deadletters", limit=500, offset=offset)
            found.extend(page)
            if len(page) < 500:
                return found
            offset += 500


def dead_letter_key(letter: dict[str, Any]) -> str | None:
    key_b64 = letter.get("key_b64")
    return base64.b64decode(key_b64).decode("utf-8", "replace") if key_b64 else None
