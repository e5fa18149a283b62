"""Delta screening end to end over the real broker: a list update, served from a local mirror through
screening's own updater, adds an entry matching a party of two released orders. The unshipped one is
decided again (HOLD, with a reason citing the new entry and list version) within 60 s; the shipped one
raises a post-shipment alert instead and keeps its decision. And the store still verifies.

screening (the OFAC non-SDN list only, updated from the mirror), risk and records run in this process
on topics of their own, as in test_screening_lists_kafka.py.
"""

from __future__ import annotations

import json
import time
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

from services.records.app import create_app as create_records
from services.risk.app import create_app as create_risk
from services.screening.app import create_app as create_screening
from shared.events import TOPIC_CLASSIFIED, TOPIC_SHIPPED, TOPIC_SUBMITTED
from shared.settings import Settings
from tests.auth_support import bearer
from tests.integration.kafka_helpers import (
    chair_order,
    create_prefixed_topics,
    publish,
    unique_prefix,
    wait_for,
)
from tests.screening_support import PublisherMirror, publisher_mirror

pytestmark = pytest.mark.integration

NON_SDN = "screening/us_ofac_non_sdn/2025-12-19"
BUYER = "Zenith Quantum Optics Company Limited"
# The entry the list update adds: OFAC's consolidated non-SDN CSV layout, on the CMIC list (review).
NEW_ENTRY_ID = "99101"
NEW_ENTRY = (
    b'99101,"ZENITH QUANTUM OPTICS COMPANY LIMITED",-0- ,"CMIC-EO13959",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,'
    b'-0- ,"Target Type State-Owned Enterprise; Listing Date (CMIC) 01 Dec 2026."'
)


@dataclass
class Stack:
    prefix: str
    bootstrap: str
    mirror: PublisherMirror
    screening: httpx.AsyncClient
    records: httpx.AsyncClient
    cons_prim: bytes

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    kafka_bootstrap: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=3)
    tmp = tmp_path_factory.mktemp("rescreen-kafka")
    common: dict[str, Any] = {"kafka_bootstrap_servers": kafka_bootstrap, "topic_prefix": prefix}
    async with AsyncExitStack() as exit_stack:
        mirror = exit_stack.enter_context(publisher_mirror(tmp / "publishers"))
        mirror.publish_copy("ofac_non_sdn", data_dir / NON_SDN)
        apps: dict[str, FastAPI] = {
            "screening": create_screening(
                Settings(
                    **common,
                    service_name="screening",
                    screening_sources=f"ofac_non_sdn:{NON_SDN}",
                    screening_cache_dir=tmp / "cache",
                    screening_update_base_url=mirror.base_url,
                )
            ),
            "risk": create_risk(
                Settings(
                    **common, service_name="risk", risk_database_url=f"sqlite+aiosqlite:///{tmp / 'risk.db'}"
                )
            ),
            "records": create_records(
                Settings(
                    **common,
                    service_name="records",
                    database_url=f"sqlite+aiosqlite:///{tmp / 'records.db'}",
                    anchor_file=tmp / "anchors.jsonl",
                    anchor_interval_s=1.0,
                )
            ),
        }
        clients = {}
        for name, app in apps.items():
            await exit_stack.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await exit_stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url=f"http://{name}",
                    timeout=30,
                    headers=bearer(),
                )
            )
        for name, client in clients.items():

            async def ready(client: httpx.AsyncClient = client) -> bool:
                return (await client.get("/readyz")).status_code == 200

            await wait_for(ready, timeout=60, what=f"{name} ready")
        yield Stack(
            prefix,
            kafka_bootstrap,
            mirror,
            clients["screening"],
            clients["records"],
            (data_dir / NON_SDN / "cons_prim.csv").read_bytes(),
        )


async def _submit(stack: Stack, order_id: str) -> str:
    """An order for EAR99 office chairs to its buyer in China, as the ERP and the classifier publish it."""
    submitted, classified = chair_order(order_id, BUYER)
    await publish(stack.bootstrap, stack.topic(TOPIC_SUBMITTED), [(order_id, json.dumps(submitted).encode())])
    await publish(
        stack.bootstrap, stack.topic(TOPIC_CLASSIFIED), [(order_id, json.dumps(classified).encode())]
    )
    return str(submitted["event_id"])


async def _order_when(
    stack: Stack, order_id: str, wanted: Any, *, timeout: float, what: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await stack.records.get(f"/orders/{order_id}")
        body = response.json() if response.status_code == 200 else None
        return body if body is not None and wanted(body) else None

    return await wait_for(probe, timeout=timeout, what=what)  # type: ignore[no-any-return]


def _decision(body: dict[str, Any]) -> str | None:
    return body["decision"]["decision"] if body.get("decision") else None


async def test_a_new_list_entry_holds_an_open_order_and_alerts_on_a_shipped_one(stack: Stack) -> None:
    open_id, shipped_id = f"IT-RESCREEN-{uuid.uuid4().hex[:6]}", f"IT-SHIPPED-{uuid.uuid4().hex[:6]}"
    for order_id in (open_id, shipped_id):
        await _submit(stack, order_id)
        released = await _order_when(stack, order_id, _decision, timeout=60, what=f"decision of {order_id}")
        assert _decision(released) == "RELEASE", released["decision"]["reasons"]
    shipment = {
        "schema": "order.shipped.v1",
        "event_id": str(uuid.uuid4()),
        "order_id": shipped_id,
        "shipped_at": "2026-12-01T08:00:00Z",
        "carrier_reference": "1Z999AA10123456784",
    }
    await publish(stack.bootstrap, stack.topic(TOPIC_SHIPPED), [(shipped_id, json.dumps(shipment).encode())])
    await _order_when(stack, shipped_id, lambda b: b["shipped_at"] is not None, timeout=30, what="shipped")

    # The publisher adds the entry; screening's updater fetches, verifies, swaps and announces it.
    stack.mirror.publish(
        "ofac_non_sdn", "cons_prim.csv", stack.cons_prim.rstrip(b"\r\n") + b"\r\n" + NEW_ENTRY + b"\r\n"
    )
    started = time.monotonic()
    response = await stack.screening.post("/lists/update", json={"sources": ["ofac_non_sdn"]})
    assert response.status_code == 200, response.text
    [outcome] = response.json()["outcomes"]
    assert (outcome["outcome"], outcome["added"]) == ("updated", 1)
    new_version = outcome["new_version"]

    held = await _order_when(
        stack, open_id, lambda b: _decision(b) in ("HOLD", "BLOCK"), timeout=60, what="the amended decision"
    )
    assert time.monotonic() - started < 60
    [reason] = [r for r in held["decision"]["reasons"] if r["code"] == "POTENTIAL_MATCH"]
    assert NEW_ENTRY_ID in reason["message"] and new_version in reason["message"], reason
    assert (
        reason["evidence"]["entry_id"] == NEW_ENTRY_ID and reason["evidence"]["list_version"] == new_version
    )
    trail = (await stack.records.get(f"/orders/{open_id}/trail")).json()
    amended = [s for s in trail["steps"] if s["stage"] == "decided"][-1]["payload"]["screening"]["amendment"]
    assert amended["list_change"]["new_version"] == new_version
    assert [(m["list_id"], m["entry_id"]) for m in amended["new_matches"]] == [("CMIC", NEW_ENTRY_ID)]
    assert trail["chain_valid"]

    async def alerted() -> dict[str, Any] | None:
        listed = (await stack.records.get("/alerts", params={"state": "open"})).json()
        return next((a for a in listed["alerts"] if a["order_id"] == shipped_id), None)

    alert = await wait_for(alerted, timeout=60, what="the post-shipment alert")
    assert alert["list_id"] == "CMIC" and alert["entries"][0]["entry_id"] == NEW_ENTRY_ID
    assert _decision((await stack.records.get(f"/orders/{shipped_id}")).json()) == "RELEASE"  # not amended
    metrics = (await stack.records.get("/metrics")).text
    assert "exportwatch_records_alerts_open 1.0" in metrics

    report = (await stack.records.get("/audit/verify")).json()
    assert report["ok"], report["problems"]
