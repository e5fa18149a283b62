"""The trail as system of record through the records API, on SQLite and PostgreSQL: shipments and
alerts, re-screen requests after a list change, legal holds and the purge, exports, the dossier,
audit verification, order search and statistics."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pypdf import PdfReader
from sqlalchemy import update

from services.records import rescreen, retention
from services.records.app import create_app
from services.records.handler import RecordsHandler
from services.records.models import Order, RescreenRun
from services.records.service import RecordsRuntime
from shared.events import TOPIC_LISTS_UPDATED, TOPIC_RESCREEN, ListsUpdated, envelope_dump
from shared.kafka import Incoming
from shared.lifecycle_events import RescreenRequest
from shared.settings import load_settings
from tests.api.test_records_api import Capturing
from tests.auth_support import bearer
from tests.records_support import (
    DATABASES,
    alert,
    classified,
    dead_letter,
    decided,
    fresh_database,
    list_change,
    message,
    screened,
    server_url,
    shipped,
    submitted,
)


@dataclass
class Trail:
    app: FastAPI
    client: httpx.AsyncClient
    handler: RecordsHandler
    broker: Capturing
    runtime: RecordsRuntime

    async def consume(self, *events: dict[str, Any]) -> None:
        for event in events:
            self.offset += 1
            assert await self.handler(message(event, offset=self.offset)) == []

    async def order(self, order_id: str, decision: str = "HOLD", **extra: Any) -> dict[str, Any]:
        order = submitted(order_id, **extra)
        verdict = decided(order, decision)  # type: ignore[arg-type]
        await self.consume(order, classified(order), screened(order), verdict)
        return verdict

    async def age(self, order_id: str, days: int) -> None:
        """Move the order's moments `days` into the past (the store as it would be then)."""
        past = datetime.now(UTC) - timedelta(days=days)
        async with self.runtime.sessionmaker() as session, session.begin():
            await session.execute(
                update(Order)
                .where(Order.order_id == order_id)
                .values(decided_at=past, updated_at=past, created_at=past, submitted_at=past)
            )

    offset: int = 0


@pytest.fixture(params=DATABASES)
async def trail(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Trail]:
    async with fresh_database(request.param, tmp_path, server_url(request)) as url:
        settings = load_settings("records", database_url=url, anchor_file=tmp_path / "anchors.jsonl")
        broker = Capturing(connected=True)
        app = create_app(settings, start_kafka=False, publish=broker)
        async with app.router.lifespan_context(app):
            runtime: RecordsRuntime = app.state.runtime
            await runtime.outbox.stop()
            await runtime.rescreen.stop()  # the tests dispatch re-screening themselves
            handler = RecordsHandler(
                settings=settings, sessionmaker=runtime.sessionmaker, policy=runtime.policy
            )
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t", headers=bearer()
            ) as client:
                yield Trail(app, client, handler, broker, runtime)


# --- shipments and alerts ----------------------------------------------------------------------------


async def test_a_shipment_is_a_trail_step_and_marks_the_order_shipped(trail: Trail) -> None:
    verdict = await trail.order("SO-2026-000601", "RELEASE")
    shipment = shipped(verdict["order"], shipped_at="2026-12-02T08:00:00Z", carrier_reference="1Z-42")
    await trail.consume(shipment, shipment)  # resent: kept once
    order = (await trail.client.get("/orders/SO-2026-000601")).json()
    assert (order["shipped_at"], order["carrier_reference"]) == ("2026-12-02T08:00:00Z", "1Z-42")
    steps = (await trail.client.get("/orders/SO-2026-000601/trail")).json()
    assert [s["stage"] for s in steps["steps"]][-1:] == ["shipped"] and steps["chain_valid"]
    assert len(steps["steps"]) == 5
    shipped_only = (await trail.client.get("/orders", params={"shipped": "true"})).json()
    assert [o["order_id"] for o in shipped_only] == ["SO-2026-000601"]


async def test_a_post_shipment_alert_is_listed_counted_and_acknowledged(trail: Trail) -> None:
    verdict = await trail.order("SO-2026-000602", "RELEASE")
    raised = alert(verdict, list_change())
    await trail.consume(shipped(verdict["order"]), raised)
    listed = (await trail.client.get("/alerts", params={"state": "open"})).json()
    assert listed["open"] == 1 and [a["event_id"] for a in listed["alerts"]] == [raised["event_id"]]
    assert listed["alerts"][0]["entries"][0]["entry_id"] == "csl-12345"
    viewer = await trail.client.post(
        f"/alerts/{raised['event_id']}/acknowledge", json={"comment": "seen"}, headers=bearer("viewer-1")
    )
    assert viewer.status_code == 403
    done = await trail.client.post(
        f"/alerts/{raised['event_id']}/acknowledge",
        json={"comment": "export reviewed; voluntary self-disclosure filed"},
        headers=bearer("reviewer-1"),
    )
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "reviewer-1"
    again = await trail.client.post(f"/alerts/{raised['event_id']}/acknowledge", json={"comment": "x"})
    assert again.status_code == 409
    assert (await trail.client.get("/alerts", params={"state": "open"})).json()["open"] == 0
    assert (await trail.client.get("/audit/verify")).json()["ok"]


# --- re-screen requests after a list change -----------------------------------------------------------


def _list_update(**values: Any) -> Incoming:
    event = ListsUpdated.model_validate(
        {
            "event_id": "1c6f0e0c-1b2a-5c3d-9e8f-7a6b5c4d3e2f",
            "source": "csl",
            "list_id": "EL",
            "list_name": "Entity List",
            "old_version": "a" * 16,
            "new_version": "b" * 16,
            "entries": 3,
            "added": ["csl-99999"],
            "updated_at": "2026-12-01T06:00:00Z",
        }
        | values
    )
    return Incoming(TOPIC_LISTS_UPDATED, 0, 5, b"EL", envelope_dump(event), 0)


async def test_a_list_change_asks_for_every_open_order_to_be_screened_again(trail: Trail) -> None:
    open_orders = [await trail.order(f"SO-2026-00070{n}", "RELEASE") for n in range(3)]
    gone = await trail.order("SO-2026-000710", "HOLD")  # decided long ago: no longer open
    await trail.age("SO-2026-000710", days=trail.runtime.policy.open_order_days + 1)
    sent = await trail.order("SO-2026-000711", "RELEASE")  # shipped yesterday: asked, for alerts
    await trail.consume(
        shipped(sent["order"], shipped_at=(datetime.now(UTC) - timedelta(days=1)).isoformat())
    )
    await trail.consume(submitted("SO-2026-000712"))  # not decided yet: screened when it is

    await trail.handler(_list_update())
    await trail.handler(_list_update())  # redelivered: one run
    dispatcher = rescreen.RescreenDispatcher(
        trail.runtime.sessionmaker, trail.broker, topic=TOPIC_RESCREEN, page=2
    )
    assert await dispatcher.dispatch_one() is True
    assert await dispatcher.dispatch_one() is False  # nothing pending any more
    requests = [
        RescreenRequest.model_validate_json(o.value)
        for o in trail.broker.published
        if o.topic == TOPIC_RESCREEN
    ]
    assert sorted(r.order_id for r in requests) == sorted(
        [*(o["order_id"] for o in open_orders), sent["order_id"]]
    )
    assert gone["order_id"] not in {r.order_id for r in requests}
    by_order = {r.order_id: r for r in requests}
    first = by_order[open_orders[0]["order_id"]]
    assert first.decided_event_id == open_orders[0]["event_id"] and first.shipped_at is None
    assert by_order[sent["order_id"]].shipped_at is not None
    assert first.list_change.added == ["csl-99999"] and first.previous[0].matches[0].entry_id == "csl-12345"
    # The classified envelope travels as records received it, byte for byte.
    raw = next(o.value for o in trail.broker.published if o.key == first.order_id)
    stored = (await trail.client.get(f"/orders/{first.order_id}/trail")).json()["steps"][1]
    assert json.loads(raw)["classified"] == stored["payload"]
    async with trail.runtime.sessionmaker() as session:
        run = await session.get(RescreenRun, 1)
    assert run is not None and (run.status, run.requested) == ("done", 4)


async def test_a_list_change_that_only_removed_entries_rescreens_nothing(trail: Trail) -> None:
    await trail.order("SO-2026-000720", "HOLD")
    await trail.handler(
        _list_update(event_id="2c6f0e0c-1b2a-5c3d-9e8f-7a6b5c4d3e2f", added=[], removed=["csl-1"])
    )
    dispatcher = rescreen.RescreenDispatcher(trail.runtime.sessionmaker, trail.broker, topic=TOPIC_RESCREEN)
    assert await dispatcher.dispatch_one() is False
    assert not [o for o in trail.broker.published if o.topic == TOPIC_RESCREEN]


async def test_an_interrupted_run_resumes_after_the_last_page_sent(trail: Trail) -> None:
    for n in range(5):
        await trail.order(f"SO-2026-00073{n}", "RELEASE")
    await trail.handler(_list_update(event_id="3c6f0e0c-1b2a-5c3d-9e8f-7a6b5c4d3e2f"))
    refused = Capturing(connected=False)
    dispatcher = rescreen.RescreenDispatcher(
        trail.runtime.sessionmaker, refused, topic=TOPIC_RESCREEN, page=2
    )
    with pytest.raises(Exception, match="not connected"):
        await dispatcher.dispatch_one()
    async with trail.runtime.sessionmaker() as session, session.begin():
        await session.execute(update(RescreenRun).values(claimed_until=None))  # the lease lapsed
    resumed = rescreen.RescreenDispatcher(
        trail.runtime.sessionmaker, trail.broker, topic=TOPIC_RESCREEN, page=2
    )
    assert await resumed.dispatch_one()
    assert len([o for o in trail.broker.published if o.topic == TOPIC_RESCREEN]) == 5


# --- legal holds and the purge -----------------------------------------------------------------------


async def test_a_legal_hold_keeps_an_expired_order_from_the_purge(trail: Trail) -> None:
    await trail.order("SO-2026-000801", "RELEASE")
    await trail.order("SO-2026-000802", "BLOCK")
    await trail.order("SO-2026-000803", "HOLD")  # recent: kept
    years = trail.runtime.policy.retention_years
    for order_id in ("SO-2026-000801", "SO-2026-000802"):
        await trail.age(order_id, days=366 * years)
    await trail.consume(dead_letter(b"{bad"))

    reviewer = await trail.client.post(
        "/orders/SO-2026-000802/hold", json={"reason": "subpoena"}, headers=bearer("reviewer-1")
    )
    assert reviewer.status_code == 403
    placed = await trail.client.post("/orders/SO-2026-000802/hold", json={"reason": "BIS subpoena 2031-17"})
    assert placed.status_code == 201 and placed.json()["placed_by_name"] == "admin-1"
    assert (await trail.client.get("/orders", params={"legal_hold": "true"})).json()[0][
        "order_id"
    ] == "SO-2026-000802"

    now = datetime.now(UTC)
    dry = await retention.purge(
        trail.runtime.sessionmaker, policy=trail.runtime.policy, now=now, purged_by="test", dry_run=True
    )
    assert [o.order_id for o in dry.orders] == ["SO-2026-000801"] and dry.held_back == 1
    assert (await trail.client.get("/orders/SO-2026-000801")).status_code == 200  # a dry run deletes nothing

    done = await retention.purge(
        trail.runtime.sessionmaker, policy=trail.runtime.policy, now=now, purged_by="test", dry_run=False
    )
    assert [o.order_id for o in done.orders] == ["SO-2026-000801"] and done.steps_deleted == 4
    assert (await trail.client.get("/orders/SO-2026-000801")).status_code == 404
    assert (await trail.client.get("/orders/SO-2026-000802")).status_code == 200
    report = (await trail.client.get("/audit/verify")).json()
    assert report["ok"], report["problems"]
    # The purge is itself chained: the tombstone's position is the last one.
    assert report["head"]["seq"] == report["chain_positions_checked"]

    released = await trail.client.post(
        "/orders/SO-2026-000802/hold/release", json={"reason": "matter closed"}
    )
    assert released.status_code == 200 and released.json()["released_by_name"] == "admin-1"
    assert (
        await trail.client.post("/orders/SO-2026-000802/hold/release", json={"reason": "x"})
    ).status_code == 409
    later = await retention.purge(
        trail.runtime.sessionmaker, policy=trail.runtime.policy, now=now, purged_by="test", dry_run=False
    )
    assert [o.order_id for o in later.orders] == ["SO-2026-000802"]
    assert (await trail.client.get("/audit/verify")).json()["ok"]


async def test_a_hold_on_an_unknown_order_is_404(trail: Trail) -> None:
    assert (await trail.client.post("/orders/SO-NOPE/hold", json={"reason": "x"})).status_code == 404


# --- exports, the dossier, verification ---------------------------------------------------------------


async def test_the_export_streams_every_step_with_its_hashes(trail: Trail) -> None:
    await trail.order("SO-2026-000901", "HOLD")
    await trail.order("SO-2026-000902", "RELEASE")
    jsonl = await trail.client.get("/exports/trail")
    assert jsonl.status_code == 200 and jsonl.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["chain_seq"] for r in rows] == list(range(1, 9))
    assert {r["order_id"] for r in rows} == {"SO-2026-000901", "SO-2026-000902"}
    assert all(hashlib.sha256(r["payload"].encode()).hexdigest() == r["payload_sha256"] for r in rows)
    csv_text = (await trail.client.get("/exports/trail", params={"format": "csv"})).text
    assert csv_text.splitlines()[0].startswith("chain_seq,chain_prev_hash,chain_hash,record_hash,order_id")
    later = rows[4]["received_at"]
    ranged = (await trail.client.get("/exports/trail", params={"from": later})).text.splitlines()
    assert len(ranged) == 4
    assert (await trail.client.get("/exports/trail", headers=bearer("reviewer-1"))).status_code == 403
    assert (await trail.client.get("/exports/trail", params={"format": "xml"})).status_code == 422
    naive = await trail.client.get("/exports/trail", params={"from": "2026-12-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["detail"][0]["loc"] == ["query", "from"]


async def test_the_dossier_says_what_an_auditor_asks(trail: Trail) -> None:
    verdict = await trail.order("SO-2026-000950", "HOLD")
    await trail.client.post("/orders/SO-2026-000950/hold", json={"reason": "audit 2027"})
    response = await trail.client.get("/orders/SO-2026-000950/dossier.pdf", headers=bearer("viewer-1"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    flat = " ".join(text.split())
    assert "Export decision dossier: order SO-2026-000950" in flat
    assert "Decision HOLD, risk score 72" in flat
    assert "POTENTIAL_MATCH (HOLD)" in flat and "15 CFR 738 Supp. 1" in flat  # every reason, its regulation
    assert "Policy version 2026.11.30-1+sha256:000000000000" in flat
    assert "data version ccl: sha256:0a1b2c3d4e5f" in flat
    assert "Muster Maschinenbau GmbH" in flat and "Legal hold" in flat and "audit 2027" in flat
    assert "Verification: the order's chain and every step's position in the store-wide chain verify." in flat
    trail_steps = (await trail.client.get("/orders/SO-2026-000950/trail")).json()["steps"]
    for step in trail_steps:  # the trail with its hashes
        assert step["step_hash"] in flat.replace(" ", "") or step["step_hash"] in text.replace("\n", "")
    assert verdict["event_id"] in flat
    assert (await trail.client.get("/orders/SO-NOPE/dossier.pdf")).status_code == 404


async def test_verification_needs_a_reviewer_and_says_what_it_checked(trail: Trail) -> None:
    await trail.order("SO-2026-000960", "HOLD")
    assert (await trail.client.get("/audit/verify", headers=bearer("viewer-1"))).status_code == 403
    report = (await trail.client.get("/audit/verify", headers=bearer("reviewer-1"))).json()
    assert report["ok"] and (report["orders_checked"], report["steps_checked"]) == (1, 4)
    assert report["problems"] == [] and report["head"]["seq"] == 4


# --- search and statistics ------------------------------------------------------------------------------


async def test_orders_are_found_by_party_reason_country_list_entry_and_dates(trail: Trail) -> None:
    await trail.order("SO-2026-001001", "HOLD")
    other = submitted("SO-2026-001002", destination_country="FR")
    other["parties"][0]["name"] = "Société Générale d'Électronique"
    other["parties"][1]["name"] = "Société Générale d'Électronique"
    await trail.consume(other, classified(other), screened(other), decided(other, "RELEASE"))

    async def ids(**params: Any) -> list[str]:
        response = await trail.client.get("/orders", params=params)
        assert response.status_code == 200, response.text
        return sorted(o["order_id"] for o in response.json())

    assert await ids(party="generale d'electronique") == ["SO-2026-001002"]  # accents and case folded
    assert await ids(party="SOCIÉTÉ") == ["SO-2026-001002"]
    assert await ids(party="50%") == []  # LIKE wildcards are plain text
    assert await ids(reason="LICENSE_REQUIRED") == ["SO-2026-001001", "SO-2026-001002"]
    assert await ids(party_country="DE") == ["SO-2026-001001", "SO-2026-001002"]
    assert await ids(destination="FR") == ["SO-2026-001002"]
    assert await ids(list="EL", entry_id="csl-12345") == ["SO-2026-001001", "SO-2026-001002"]
    assert await ids(entry_id="csl-00000") == []
    assert await ids(review="unreviewed", decision="HOLD") == ["SO-2026-001001"]
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await ids(decided_to=soon, created_from="2020-01-01T00:00:00Z") == [
        "SO-2026-001001",
        "SO-2026-001002",
    ]
    assert await ids(decided_from=soon) == []


async def test_orders_page_by_cursor_and_refuse_bad_parameters(trail: Trail) -> None:
    for n in range(5):
        await trail.order(f"SO-2026-00110{n}", "RELEASE")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await trail.client.get("/orders", params=params)
        seen += [o["order_id"] for o in response.json()]
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            break
    assert sorted(seen) == [f"SO-2026-00110{n}" for n in range(5)] and len(seen) == 5
    bad: list[tuple[dict[str, Any], str]] = [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"offset": 10_000_001}, "offset"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"cursor": "W10", "offset": 3}, "offset"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"decided_to": "0.5"}, "decided_to"),
        ({"party": "x"}, "party"),
        ({"reason": "lower_case"}, "reason"),
        ({"review": "maybe"}, "review"),
    ]
    for wrong, name in bad:
        response = await trail.client.get("/orders", params=wrong)
        assert response.status_code == 422, (wrong, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", name], wrong


async def test_stats_by_day_reason_destination_and_list_with_latency(trail: Trail) -> None:
    await trail.order("SO-2026-001201", "HOLD")
    await trail.order("SO-2026-001202", "RELEASE", destination_country="FR")
    stats = (await trail.client.get("/stats")).json()
    today = datetime.now(UTC).date().isoformat()
    assert stats["decided"] == 2
    assert stats["by_day"] == [
        {
            "day": today,
            "decided": 2,
            "decisions": {"RELEASE": 1, "LICENSE_REQUIRED": 0, "HOLD": 1, "BLOCK": 0},
        }
    ]
    assert stats["by_reason"] == {"POTENTIAL_MATCH": 2, "LICENSE_REQUIRED": 2}
    assert stats["by_destination"] == {"DE": 1, "FR": 1} and stats["by_list"] == {"EL": 2}
    latency = stats["latency_seconds"]
    assert latency["count"] == 2 and 0 <= latency["p50"] <= latency["p99"] <= latency["max"] < 60
    empty = (await trail.client.get("/stats", params={"from": "2030-01-01T00:00:00Z"})).json()
    assert empty["decided"] == 0 and empty["latency_seconds"]["p50"] is None


async def test_the_purge_command_lists_on_a_dry_run_and_purges_otherwise(trail: Trail) -> None:
    from typer.testing import CliRunner

    from exportwatch.cli import app as cli

    await trail.order("SO-2026-001301", "RELEASE")
    await trail.age("SO-2026-001301", days=366 * trail.runtime.policy.retention_years)
    url = trail.runtime.settings.database_url
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["records", "purge", "--database-url", url, *args])
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    dry = await asyncio.to_thread(run, "--dry-run")  # the command runs its own event loop
    assert "would purge 1 orders (4 trail steps); 0 past retention kept under legal hold" in dry
    assert (await trail.client.get("/orders/SO-2026-001301")).status_code == 200
    assert "purged 1 orders (4 trail steps)" in await asyncio.to_thread(run)
    assert (await trail.client.get("/orders/SO-2026-001301")).status_code == 404
    assert (await trail.client.get("/audit/verify")).json()["ok"]
    refused = await asyncio.to_thread(
        runner.invoke, cli, ["records", "purge", "--database-url", "mysql://nope"]
    )
    assert refused.exit_code == 1 and "EXPORTWATCH_DATABASE_URL" in refused.output
