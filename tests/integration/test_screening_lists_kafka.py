"""Screening's own topics over the real broker: a list update announced on `lists.updated.v1`, and a
reviewer's clearance on `screening.clearances.v1` turning a held order into a released one.

The screening, risk and records apps run in this process on unique topics; screening loads the OFAC
consolidated non-SDN list only (small, so the test is quick) and updates it from a local stand-in
publisher.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from shared.events import (
    TOPIC_CLASSIFIED,
    TOPIC_CLEARANCES,
    TOPIC_SUBMITTED,
    ScreeningClearance,
    envelope_dump,
)
from tests.integration.kafka_helpers import (
    chair_order,
    publish,
    wait_for,
)
from tests.integration.screening_stack import Stack, screening_stack

pytestmark = pytest.mark.integration

AERO_ENGINE = "AERO ENGINE CORPORATION OF CHINA"  # OFAC CMIC list, ent_num 30902: effect review -> HOLD


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    kafka_bootstrap: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("screening-kafka")
    async with screening_stack(kafka_bootstrap, data_dir, tmp) as stack:
        yield stack


async def _submit(stack: Stack, order_id: str, occurred_at: str) -> str:
    submitted, classified = chair_order(order_id, "Aero Engine Corporation of China", occurred_at=occurred_at)
    await publish(stack.bootstrap, stack.topic(TOPIC_SUBMITTED), [(order_id, json.dumps(submitted).encode())])
    await publish(
        stack.bootstrap, stack.topic(TOPIC_CLASSIFIED), [(order_id, json.dumps(classified).encode())]
    )
    return str(submitted["event_id"])


async def _decided(stack: Stack, order_id: str, submitted_event_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await stack.records.get(f"/orders/{order_id}")
        body = response.json() if response.status_code == 200 else None
        if body and body["submitted_event_id"] == submitted_event_id and body["decision"] is not None:
            return body  # type: ignore[no-any-return]
        return None

    return await wait_for(probe, timeout=60, what=f"decision of {order_id}")  # type: ignore[no-any-return]


async def test_a_clearance_on_the_broker_turns_a_hold_into_a_release(stack: Stack) -> None:
    order_id = f"IT-CLEAR-{uuid.uuid4().hex[:6]}"
    first = await _decided(stack, order_id, await _submit(stack, order_id, "2026-11-30T12:00:00Z"))
    assert first["decision"]["decision"] == "HOLD"
    [reason] = [r for r in first["decision"]["reasons"] if r["code"] == "POTENTIAL_MATCH"]
    assert "30902" in json.dumps(reason)

    # A reviewer (on any instance, or records' review desk) publishes "not a match" for this entry version.
    version = (await stack.screening.get("/lists/CMIC/entries/30902")).json()["entry_version"]
    clearance = ScreeningClearance(
        event_id=str(uuid.uuid4()),
        party_name="Aero Engine Corporation of China",
        normalised_name="aero engine corporation china",
        list_id="CMIC",
        entry_id="30902",
        entry_version=version,
        reviewer="c.officer",
        reason="Buyer is a civil MRO shop, not the listed AECC (CMIC EO 13959 covers securities)",
        cleared_at=datetime.now(UTC),
    )
    key = clearance.key
    await publish(stack.bootstrap, stack.topic(TOPIC_CLEARANCES), [(key, envelope_dump(clearance))])

    async def known() -> bool:
        listed = (await stack.screening.get("/clearances", params={"list_id": "CMIC"})).json()
        return any(c["clearance"]["event_id"] == clearance.event_id and c["in_force"] for c in listed)

    await wait_for(known, timeout=30, what="the clearance reached the screening instance")

    # The ERP submits the order again: released, with the cleared hit kept as evidence.
    second_id = await _submit(stack, order_id, "2026-11-30T13:00:00Z")
    second = await _decided(stack, order_id, second_id)
    assert second["decision"]["decision"] == "RELEASE", second["decision"]["reasons"]
    trail = (await stack.records.get(f"/orders/{order_id}/trail")).json()
    screened = [
        s for s in trail["steps"] if s["stage"] == "screened" and s["submitted_event_id"] == second_id
    ]
    [party] = screened[0]["payload"]["screening"]["parties"]
    assert party["matches"] == []
    assert [(m["entry_id"], m["cleared_by"]) for m in party["cleared_matches"]] == [("30902", "c.officer")]
