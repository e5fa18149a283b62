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
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from services.records.app import create_app as create_records
from services.risk.app import create_app as create_risk
from services.screening.app import create_app as create_screening
from shared.events import (
    TOPIC_CLASSIFIED,
    TOPIC_CLEARANCES,
    TOPIC_LISTS_UPDATED,
    TOPIC_SUBMITTED,
    ScreeningClearance,
    envelope_dump,
)
from shared.settings import Settings
from tests.auth_support import bearer
from tests.integration.kafka_helpers import (
    chair_order,
    create_prefixed_topics,
    publish,
    read_topic,
    unique_prefix,
    wait_for,
)
from tests.screening_support import PublisherMirror, publisher_mirror

pytestmark = pytest.mark.integration

NON_SDN = "screening/us_ofac_non_sdn/2025-12-19"
AERO_ENGINE = "AERO ENGINE CORPORATION OF CHINA"  # OFAC CMIC list, ent_num 30902: effect review -> HOLD


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


async def _ready(client: httpx.AsyncClient, what: str) -> None:
    async def probe() -> bool:
        return (await client.get("/readyz")).status_code == 200

    await wait_for(probe, timeout=60, what=f"{what} ready")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    kafka_bootstrap: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=3)
    tmp = tmp_path_factory.mktemp("screening-kafka")
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
            "risk": create_risk(Settings(**common, service_name="risk")),
            "records": create_records(
                Settings(
                    **common, service_name="records", database_url=f"sqlite+aiosqlite:///{tmp / 'records.db'}"
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
            await _ready(client, name)
        yield Stack(
            prefix,
            kafka_bootstrap,
            mirror,
            clients["screening"],
            clients["records"],
            (data_dir / NON_SDN / "cons_prim.csv").read_bytes(),
        )


async def test_a_list_update_is_announced_with_its_diff_on_the_broker(stack: Stack) -> None:
    before = (await stack.screening.get("/lists")).json()["sources"][0]["version"]
    lines = stack.cons_prim.split(b"\r\n")
    changed = [
        line.replace(b"CHINA TELECOM CORPORATION LIMITED", b"CHINA TELECOM CORP LTD")
        for line in lines
        if not line.startswith(b"30923,")  # CHINA MOBILE LIMITED leaves the CMIC list
    ]
    added = b'99001,"NEWNAME, Example","individual","NS-PLC",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- '
    stack.mirror.publish("ofac_non_sdn", "cons_prim.csv", b"\r\n".join([added, *changed]))

    response = await stack.screening.post("/lists/update", json={"sources": ["ofac_non_sdn"]})

    assert response.status_code == 200, response.text
    [outcome] = response.json()["outcomes"]
    assert (outcome["outcome"], outcome["added"], outcome["changed"], outcome["removed"]) == (
        "updated",
        1,
        1,
        1,
    )
    # One event per list of the source: CAP, CMIC, NS-MBS, PLC, SSI.
    events = await read_topic(stack.bootstrap, stack.topic(TOPIC_LISTS_UPDATED), expect=5)
    by_list = {e["list_id"]: e for e in events}
    assert sorted(by_list) == ["CAP", "CMIC", "NS-MBS", "PLC", "SSI"]
    cmic, plc = by_list["CMIC"], by_list["PLC"]
    assert (cmic["old_version"], cmic["new_version"]) == (before, outcome["new_version"])
    assert (cmic["added"], cmic["changed"], cmic["removed"]) == ([], ["30882"], ["30923"])
    assert (plc["added"], plc["changed"], plc["removed"]) == (["99001"], [], [])
    assert by_list["SSI"]["added"] == by_list["SSI"]["changed"] == by_list["SSI"]["removed"] == []


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
