"""Two classifier instances on the real broker agree on the product catalog (services/classifier/feed.py).

Instances A and B share one catalog database, as a deployment of several instances does, and one
consumer group. A product classified through A's API is used by B (its API and the orders it
classifies from Kafka) without a restart, a change through B is used by A, and a withdrawal through A
takes the SKU out of both. A third instance
with a database of its own, started afterwards, reads the catalog from the topic before it says it
is ready. What is not a catalog entry on the topic is dead-lettered, naming the field and the value.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from services.classifier.app import create_app as create_classifier
from shared.events import TOPIC_CATALOG, TOPIC_CLASSIFIED, TOPIC_DEADLETTER, TOPIC_SUBMITTED
from shared.settings import Settings
from tests.auth_support import bearer
from tests.classifier_support import order_line, submitted_order
from tests.integration.kafka_helpers import (
    create_prefixed_topics,
    publish,
    read_topic,
    unique_prefix,
    wait_for,
)

pytestmark = pytest.mark.integration

SKU = "NV-FEED-7"


@dataclass
class Instances:
    prefix: str
    bootstrap: str
    tmp: Path
    clients: dict[str, httpx.AsyncClient]
    exit_stack: AsyncExitStack

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def settings(self, database: Path) -> Settings:
        return Settings(
            kafka_bootstrap_servers=self.bootstrap,
            topic_prefix=self.prefix,
            service_name="classifier",
            catalog_database_url=f"sqlite+aiosqlite:///{database}",
        )

    async def start(self, name: str, database: Path) -> httpx.AsyncClient:
        app: FastAPI = create_classifier(self.settings(database))
        await self.exit_stack.enter_async_context(app.router.lifespan_context(app))
        client = await self.exit_stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url=f"http://{name}",
                timeout=30,
                headers=bearer(),
            )
        )

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await wait_for(ready, timeout=90, what=f"classifier {name} ready")
        self.clients[name] = client
        return client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def instances(
    kafka_bootstrap: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Instances]:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=3)
    tmp = tmp_path_factory.mktemp("classifier-instances")
    async with AsyncExitStack() as exit_stack:
        found = Instances(prefix, kafka_bootstrap, tmp, {}, exit_stack)
        shared_database = tmp / "catalog.db"
        await found.start("a", shared_database)
        await found.start("b", shared_database)
        yield found


async def _current(client: httpx.AsyncClient, sku: str) -> dict[str, Any] | None:
    response = await client.get(f"/products/{sku}")
    return response.json() if response.status_code == 200 else None


async def _seen(client: httpx.AsyncClient, sku: str, version: int, eccn: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        product = await _current(client, sku)
        return (
            product
            if product is not None and (product["version"], product["eccn"]) == (version, eccn)
            else None
        )

    found: dict[str, Any] = await wait_for(probe, timeout=30, what=f"{sku} v{version} {eccn} seen")
    return found


async def _classified_lines(instances: Instances, orders: int) -> list[dict[str, Any]]:
    """Submit `orders` orders with one line of SKU (no ERP ECCN) under keys spread over the
    partitions, so both instances of the group classify some; the classified lines, one per order."""
    run = uuid.uuid4().hex[:8]
    messages = []
    for n in range(orders):
        order = submitted_order(order_line(1, SKU, "Thermal imaging camera core"))
        order.update(event_id=str(uuid.uuid4()), order_id=f"SO-FEED-{run}-{n}")
        messages.append((order["order_id"], json.dumps(order).encode()))
    await publish(instances.bootstrap, instances.topic(TOPIC_SUBMITTED), messages)
    wanted = {order_id for order_id, _ in messages}
    classified = await read_topic(
        instances.bootstrap, instances.topic(TOPIC_CLASSIFIED), expect=10_000, timeout=20
    )
    lines = [c["classification"]["lines"][0] for c in classified if c["order_id"] in wanted]
    assert len(lines) == orders
    return lines


async def test_a_product_classified_through_one_instance_is_used_by_the_other(instances: Instances) -> None:
    a, b = instances.clients["a"], instances.clients["b"]
    assert await _current(b, SKU) is None
    put = await a.put(f"/products/{SKU}", json={"eccn": "6A003.b.4.b", "classified_by": "M. Ortiz"})
    assert put.status_code == 201

    product = await _seen(b, SKU, 1, "6A003.b.4.b")
    assert product["classified_by"] == "M. Ortiz"
    classify = await b.post("/classify", json={"description": "camera core", "sku": SKU})
    assert (classify.json()["eccn"], classify.json()["source"]) == ("6A003.b.4.b", "catalog")
    # Whichever instance took an order, the line carries the catalog's ECCN and the same catalog version.
    lines = await _classified_lines(instances, 6)
    assert {(line["eccn"], line["source"]) for line in lines} == {("6A003.b.4.b", "catalog")}

    # A change through B reaches A.
    changed = await b.put(f"/products/{SKU}", json={"eccn": "6A993.a", "classified_by": "M. Ortiz"})
    assert changed.status_code == 201
    await _seen(a, SKU, 2, "6A993.a")
    versions = {(await client.get("/ccl")).json()["catalog_version"] for client in (a, b)}
    assert len(versions) == 1
    lines = await _classified_lines(instances, 6)
    assert {(line["eccn"], line["source"]) for line in lines} == {("6A993.a", "catalog")}

    # A withdrawal through A takes the SKU out of B's catalog too.
    withdrawn = await a.delete(
        f"/products/{SKU}", params={"withdrawn_by": "M. Ortiz", "reason": "discontinued"}
    )
    assert (withdrawn.status_code, withdrawn.json()["version"], withdrawn.json()["withdrawn"]) == (
        200,
        3,
        True,
    )

    async def gone() -> bool:
        answer = await b.get(f"/products/{SKU}")
        return answer.status_code == 404 and "withdrawn" in answer.json()["detail"]

    await wait_for(gone, timeout=30, what=f"{SKU} withdrawn on b")
    lines = await _classified_lines(instances, 6)
    assert {(line["eccn"], line["source"]) for line in lines} == {(None, "none")}


async def test_an_instance_with_its_own_database_reads_the_catalog_from_the_topic_before_it_is_ready(
    instances: Instances,
) -> None:
    a = instances.clients["a"]
    put = await a.put("/products/NV-FEED-IMPORTED", json={"eccn": "EAR99", "classified_by": "A. Keller"})
    assert put.status_code in (200, 201)
    late = await instances.start("c", instances.tmp / "own-catalog.db")
    # Ready means caught up: no waiting here.
    imported = await _current(late, "NV-FEED-IMPORTED")
    assert imported is not None and imported["eccn"] == "EAR99"
    ready = (await late.get("/readyz")).json()
    assert ready["catalog"]["caught_up"] is True
    # Its own database has no version of it: the history is the storing database's.
    assert (await late.get("/products/NV-FEED-IMPORTED/history")).status_code == 404


async def test_what_is_not_a_catalog_entry_is_dead_lettered_naming_the_field(instances: Instances) -> None:
    bad_eccn = {
        "sku": "NV-BAD",
        "version": 0,
        "eccn": "EAR99",
        "classified_by": "x",
        "classified_at": "2026-12-01T00:00:00Z",
    }
    await publish(
        instances.bootstrap,
        instances.topic(TOPIC_CATALOG),
        [
            ("NV-BAD", json.dumps(bad_eccn).encode()),
            ("NV-OTHER", json.dumps({**bad_eccn, "version": 1}).encode()),
        ],
    )
    letters = await read_topic(instances.bootstrap, instances.topic(TOPIC_DEADLETTER), expect=4, timeout=30)
    errors = [
        letter["error"] for letter in letters if letter["source_topic"] == instances.topic(TOPIC_CATALOG)
    ]
    # Both instances follow the topic, so each dead-letters each record.
    assert any("version" in e and "greater than or equal to 1" in e for e in errors), errors
    assert any("'NV-OTHER' is not the sku 'NV-BAD'" in e for e in errors), errors
    assert await _current(instances.clients["a"], "NV-BAD") is None
