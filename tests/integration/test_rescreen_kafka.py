"""Delta screening end to end over the real broker: a list update, served from a local mirror through
screening's own updater, adds an entry matching a party of two released orders. The unshipped one is
decided again (HOLD, with a reason citing the new entry and list version) within 60 s; the shipped one
raises a post-shipment alert instead and keeps its decision. And the store still verifies.

screening (the OFAC non-SDN list only, updated from the mirror), risk and records run in this process
on topics of their own (tests/integration/screening_stack.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from shared.events import TOPIC_CLASSIFIED, TOPIC_SHIPPED, TOPIC_SUBMITTED
from tests.integration.kafka_helpers import (
    chair_order,
    publish,
    wait_for,
)
from tests.integration.screening_stack import Stack, screening_stack

pytestmark = pytest.mark.integration

BUYER = "Zenith Quantum Optics Company Limited"
# The entry the list update adds: OFAC's consolidated non-SDN CSV layout, on the CMIC list (review).
NEW_ENTRY_ID = "99101"
NEW_ENTRY = (
    b'99101,"ZENITH QUANTUM OPTICS COMPANY LIMITED",-0- ,"CMIC-EO13959",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,'
    b'-0- ,"Target Type State-Owned Enterprise; Listing Date (CMIC) 01 Dec 2026."'
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    kafka_bootstrap: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("rescreen-kafka")
    async with screening_stack(
        kafka_bootstrap,
        data_dir,
        tmp,
        risk={"risk_database_url": f"sqlite+aiosqlite:///{tmp / 'risk.db'}"},
        records={"anchor_file": tmp / "anchors.jsonl", "anchor_interval_s": 1.0},
    ) as stack:
        yield stack


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
