"""End to end over the real broker: four service processes, records on a real PostgreSQL.

Orders go in on `orders.submitted.v1`; the test reads the outcome only where an ERP or a reviewer
would: the records API.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.engine import make_url

from deploy.kafka.broker import free_port
from deploy.local.stack import REPO_ROOT, SERVICES, ServiceProcess, start_service, wait_ready
from shared.events import ALL_TOPICS, TOPIC_REVIEWED, TOPIC_SUBMITTED
from shared.kafka_security import client_options, client_settings
from shared.topology import WIRING
from tests.auth_support import bearer, key
from tests.integration.kafka_helpers import (
    create_prefixed_topics,
    publish,
    read_topic,
    unique_prefix,
    wait_for,
)

pytestmark = pytest.mark.integration

SDN_ENTITY = "LINGOE PROCESS ENGINEERING LIMITED"  # OFAC SDN (NPWMD, IFSR), China; in both SDN sources


@dataclass
class Pipeline:
    prefix: str
    bootstrap: str
    services: dict[str, ServiceProcess]

    @property
    def records(self) -> str:
        return self.services["records"].url

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"


async def _fresh_database(admin_url: str) -> str:
    url = make_url(admin_url)
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database, password=url.password
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pipeline(
    kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=3)
    tmp = tmp_path_factory.mktemp("e2e")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "EXPORTWATCH_TOPIC_PREFIX": prefix,
        "EXPORTWATCH_DATABASE_URL": await _fresh_database(postgres_url),
        "EXPORTWATCH_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'catalog.db'}",
        "EXPORTWATCH_CATALOG_SEED_CSV": str(REPO_ROOT / "samples" / "catalog.csv"),
        # Risk's licence ledger on PostgreSQL, as in production; no Part 746 fetched (as make run).
        "EXPORTWATCH_RISK_DATABASE_URL": await _fresh_database(postgres_url),
        "EXPORTWATCH_PART746_CACHE_DIR": str(tmp / "part746"),
    }
    services = {
        name: start_service(name, port=free_port(), env=env, log_dir=tmp / "logs") for name in SERVICES
    }
    try:
        wait_ready(list(services.values()), timeout=180)
        yield Pipeline(prefix=prefix, bootstrap=kafka_bootstrap, services=services)
    finally:
        # SIGTERM is how an orchestrator stops a service: each must shut down cleanly, not be
        # killed after the grace period (uvicorn re-raises the signal once shut down: -15).
        exit_codes = {name: service.stop() for name, service in services.items()}
        print("\n".join(f"--- {s.name} log tail ---\n{s.log_tail(15)}" for s in services.values()))
    assert exit_codes == dict.fromkeys(SERVICES, -signal.SIGTERM)
    for service in services.values():
        assert "Application shutdown complete" in service.log_path.read_text(), service.name


def make_order(
    order_id: str, *, destination: str, buyer: str, buyer_country: str, lines: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "schema": "order.submitted.v1",
        "event_id": str(uuid.uuid4()),
        "order_id": order_id,
        "occurred_at": "2026-11-30T12:00:00Z",
        "source": "erp-e2e",
        "ship_from_country": "US",
        "destination_country": destination,
        "parties": [
            {"role": "buyer", "name": buyer, "country": buyer_country},
            {"role": "ultimate_consignee", "name": buyer, "country": buyer_country},
        ],
        "lines": lines,
        "erp_batch": "kept-but-ignored",  # unknown fields are part of the contract: kept, not used
    }


def line(sku: str, description: str, eccn: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "line_no": 1,
        "sku": sku,
        "description": description,
        "quantity": 1,
        "unit_price": "100.00",
        "currency": "USD",
    }
    if eccn is not None:
        item["eccn"] = eccn
    return item


async def decided(client: httpx.AsyncClient, order_id: str, timeout: float = 90.0) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await client.get(f"/orders/{order_id}")
        if response.status_code == 200 and response.json()["decision"] is not None:
            return response.json()  # type: ignore[no-any-return]
        return None

    return await wait_for(probe, timeout=timeout, what=f"decision of {order_id}")  # type: ignore[no-any-return]


async def groups_caught_up(bootstrap: str, groups: list[str], topics: list[str]) -> bool:
    """Every group has committed up to the end of every partition of its topics."""
    options = client_options(client_settings(bootstrap))
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(**options)
    await consumer.start()
    await admin.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(3)]
        ends = await consumer.end_offsets(tps)
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            for tp in tps:
                meta = committed.get(tp)
                if ends[tp] > 0 and meta is not None and meta.offset < ends[tp]:
                    return False
                if ends[tp] > 0 and meta is None and group == "records":
                    return False
        return True
    finally:
        await admin.close()
        await consumer.stop()


async def test_orders_flow_to_decisions_and_bad_messages_to_dead_letters(pipeline: Pipeline) -> None:
    run = uuid.uuid4().hex[:6]
    orders = {
        "clean": make_order(
            f"E2E-{run}-CLEAN",
            destination="DE",
            buyer="Muster Maschinenbau GmbH",
            buyer_country="DE",
            lines=[line("OFF-CHAIR-200", "Ergonomic office chair", eccn="EAR99")],
        ),
        "sdn": make_order(
            f"E2E-{run}-SDN",
            destination="CN",
            buyer=SDN_ENTITY,
            buyer_country="CN",
            lines=[line("OFF-CHAIR-200", "Ergonomic office chair", eccn="EAR99")],
        ),
        "iran": make_order(
            f"E2E-{run}-IRAN",
            destination="IR",
            buyer="Pars Industrial Trading Co.",
            buyer_country="IR",
            lines=[line("HT-PUMP-11", "Centrifugal water pump", eccn="EAR99")],
        ),
        "ns1": make_order(
            f"E2E-{run}-NS1",
            destination="CN",
            buyer="Hangzhou Rongda Information Systems Co., Ltd.",
            buyer_country="CN",
            lines=[line("HSM-9000", "Network hardware security module", eccn="5A002.a")],
        ),
        "unclassified": make_order(
            f"E2E-{run}-UNCL",
            destination="NL",
            buyer="Delta Marine Supplies B.V.",
            buyer_country="NL",
            lines=[line(f"NO-SUCH-SKU-{run}", "Custom sensor assembly, see drawing 7731-B")],
        ),
    }
    invalid = make_order(
        f"E2E-{run}-BADCOUNTRY",
        destination="XX",
        buyer="Muster Maschinenbau GmbH",
        buyer_country="DE",
        lines=[line("OFF-CHAIR-200", "Ergonomic office chair", eccn="EAR99")],
    )
    later = make_order(
        f"E2E-{run}-LATER",
        destination="FR",
        buyer="Atelier Lumière SARL",
        buyer_country="FR",
        lines=[line("HT-PUMP-11", "Centrifugal water pump", eccn="EAR99")],
    )
    submitted = pipeline.topic(TOPIC_SUBMITTED)
    await publish(
        pipeline.bootstrap,
        submitted,
        [(o["order_id"], json.dumps(o).encode()) for o in orders.values()]
        + [
            (f"E2E-{run}-MALFORMED", b'{"schema": "order.submitted.v1", "order_id": "E2E-MALFORMED", '),
            (invalid["order_id"], json.dumps(invalid).encode()),
            (later["order_id"], json.dumps(later).encode()),
        ],
    )

    async with httpx.AsyncClient(base_url=pipeline.records, timeout=10, headers=bearer()) as client:
        results = {name: await decided(client, o["order_id"]) for name, o in orders.items()}
        results["later"] = await decided(client, later["order_id"])

        def codes(result: dict[str, Any]) -> set[str]:
            return {r["code"] for r in result["decision"]["reasons"]}

        assert results["clean"]["decision"]["decision"] == "RELEASE", results["clean"]["decision"]
        assert results["later"]["decision"]["decision"] == "RELEASE"

        sdn = results["sdn"]["decision"]
        assert sdn["decision"] == "BLOCK"
        denied = [r for r in sdn["reasons"] if r["code"] == "DENIED_PARTY"]
        assert denied, sdn["reasons"]
        assert SDN_ENTITY in json.dumps(denied)  # the reason names the list entry it matched
        assert any("SDN" in json.dumps(r["evidence"]) for r in denied)

        iran = results["iran"]["decision"]
        assert iran["decision"] == "BLOCK" and "EMBARGOED_DESTINATION" in codes(results["iran"])

        ns1 = results["ns1"]["decision"]
        assert ns1["decision"] == "LICENSE_REQUIRED"
        licence = [r for r in ns1["reasons"] if r["code"] == "LICENSE_REQUIRED"]
        assert licence and "NS1" in json.dumps(licence), ns1["reasons"]

        uncl = results["unclassified"]["decision"]
        assert uncl["decision"] == "HOLD" and "UNCLASSIFIED_ITEM" in codes(results["unclassified"])

        for result in results.values():  # every decision is stamped with what it was based on
            assert result["decision"]["policy_version"]
            assert result["decision"]["data_versions"]

        letters = (await client.get("/deadletters", params={"limit": 200})).json()
        mine = {letter["key"]: letter for letter in letters if letter["source_topic"] == submitted}
        malformed = mine[f"E2E-{run}-MALFORMED"]
        assert malformed["error_type"] == "InvalidJson" and "not valid JSON" in malformed["error"]
        assert malformed["payload_text"].startswith('{"schema"')
        bad_country = mine[invalid["order_id"]]
        assert bad_country["error_type"] == "SchemaValidationError"
        assert "destination_country" in bad_country["error"] and "XX" in bad_country["error"]

        held = (await client.get("/orders", params={"decision": "HOLD"})).json()
        assert orders["unclassified"]["order_id"] in {o["order_id"] for o in held}
        assert (await client.get("/orders", params={"decision": "MAYBE"})).status_code == 422


async def test_replaying_an_event_adds_no_trail_step(pipeline: Pipeline) -> None:
    order = make_order(
        f"E2E-REPLAY-{uuid.uuid4().hex[:6]}",
        destination="DE",
        buyer="Muster Maschinenbau GmbH",
        buyer_country="DE",
        lines=[line("OFF-CHAIR-200", "Ergonomic office chair", eccn="EAR99")],
    )
    raw = json.dumps(order).encode()
    topic = pipeline.topic(TOPIC_SUBMITTED)
    await publish(pipeline.bootstrap, topic, [(order["order_id"], raw)])
    async with httpx.AsyncClient(base_url=pipeline.records, timeout=10, headers=bearer()) as client:
        await decided(client, order["order_id"])
        before = (await client.get(f"/orders/{order['order_id']}/trail")).json()
        # records reads each topic on its own, so the steps' order across topics is the order they were read.
        assert sorted(s["stage"] for s in before["steps"]) == [
            "classified",
            "decided",
            "screened",
            "submitted",
        ]

        await publish(pipeline.bootstrap, topic, [(order["order_id"], raw)])  # the ERP sends it again
        # The topics consumer groups read (not those every instance follows without a group: the
        # catalog, the anchors), so that every offset a group commits is compared with its end.
        all_topics = [pipeline.topic(t) for t in ALL_TOPICS if any(t in w.consumes for w in WIRING.values())]
        await wait_for(
            lambda: groups_caught_up(
                pipeline.bootstrap, ["classifier", "screening", "risk", "records"], all_topics
            ),
            timeout=60,
            what="every service caught up with the replay",
        )
        after = (await client.get(f"/orders/{order['order_id']}/trail")).json()
        assert [s["event_id"] for s in after["steps"]] == [s["event_id"] for s in before["steps"]]
        assert after["chain_valid"] is True


async def test_releasing_a_block_needs_two_distinct_approvers_over_the_broker(pipeline: Pipeline) -> None:
    order = make_order(
        f"E2E-REVIEW-{uuid.uuid4().hex[:6]}",
        destination="CN",
        buyer=SDN_ENTITY,
        buyer_country="CN",
        lines=[line("OFF-CHAIR-200", "Ergonomic office chair", eccn="EAR99")],
    )
    order_id = order["order_id"]
    await publish(
        pipeline.bootstrap, pipeline.topic(TOPIC_SUBMITTED), [(order_id, json.dumps(order).encode())]
    )
    release = {"review_decision": "RELEASE", "comment": "Verified: a namesake, not the listed company"}
    async with httpx.AsyncClient(base_url=pipeline.records, timeout=10, headers=bearer("viewer-1")) as client:
        decision = await decided(client, order_id)
        assert decision["decision"]["decision"] == "BLOCK"
        first = await client.post(f"/orders/{order_id}/review", json=release, headers=bearer("approver-1"))
        assert first.status_code == 202 and first.json()["status"] == "awaiting_approval", first.text
        again = await client.post(f"/orders/{order_id}/review", json=release, headers=bearer("approver-1"))
        assert again.status_code == 409
        pending = (await client.get(f"/orders/{order_id}")).json()
        assert pending["review"] is None and pending["review_requests"][0]["status"] == "pending"

        second = await client.post(f"/orders/{order_id}/review/approve", headers=bearer("approver-2"))
        assert second.status_code == 202 and second.json()["status"] == "approved", second.text
        outcome_id = second.json()["reviewed"]["event_id"]

        async def reviewed() -> dict[str, Any] | None:
            body = (await client.get(f"/orders/{order_id}")).json()
            return body if body["status"] == "reviewed" else None

        body = await wait_for(reviewed, timeout=30, what="review recorded")
        assert body["review"]["review_decision"] == "RELEASE" and body["review"]["reviewer"] == "approver-2"
        trail = (await client.get(f"/orders/{order_id}/trail")).json()
        assert [s["stage"] for s in trail["steps"]][-3:] == ["review_step", "review_step", "reviewed"]
        assert trail["chain_valid"] is True
    # What the ERP hears on orders.reviewed.v1: one outcome, after the second approval, naming both.
    outcomes = [
        e
        for e in await read_topic(pipeline.bootstrap, pipeline.topic(TOPIC_REVIEWED), expect=1)
        if e["order_id"] == order_id
    ]
    assert [e["event_id"] for e in outcomes] == [outcome_id]
    assert [a["approver"]["name"] for a in outcomes[0]["approvals"]] == ["approver-1", "approver-2"]


async def test_not_a_match_from_records_stops_the_next_order_holding_on_that_entry(
    pipeline: Pipeline,
) -> None:
    party = "Aero Engine Corporation of China"  # CMIC entry 30902: a potential match, held for review
    run = uuid.uuid4().hex[:6]

    def cmic_order(order_id: str) -> dict[str, Any]:
        return make_order(
            order_id,
            destination="CN",
            buyer=party,
            buyer_country="CN",
            lines=[line("OFF-CHAIR-200", "Ergonomic office chair", eccn="EAR99")],
        )

    first = cmic_order(f"E2E-NAM-{run}-1")
    await publish(
        pipeline.bootstrap, pipeline.topic(TOPIC_SUBMITTED), [(first["order_id"], json.dumps(first).encode())]
    )
    async with (
        httpx.AsyncClient(base_url=pipeline.records, timeout=10, headers=bearer("reviewer-1")) as records,
        httpx.AsyncClient(
            base_url=pipeline.services["screening"].url, timeout=10, headers=bearer("viewer-1")
        ) as screening,
    ):
        held = await decided(records, first["order_id"])
        assert held["decision"]["decision"] == "HOLD"
        # The buyer (and the ultimate consignee, the same company) resemble this one entry.
        matched = {
            (r["party_role"], r["evidence"]["list_id"], r["evidence"]["entry_id"])
            for r in held["decision"]["reasons"]
            if r["code"] == "POTENTIAL_MATCH"
        }
        assert ("buyer", "CMIC", "30902") in matched and {m[1:] for m in matched} == {("CMIC", "30902")}
        cleared = await records.post(
            f"/orders/{first['order_id']}/not-a-match",
            json={
                "party_name": party,
                "list_id": "CMIC",
                "entry_id": "30902",
                "reason": "Buyer is a civil MRO shop, not the listed AECC (CMIC covers securities)",
            },
        )
        assert cleared.status_code == 202, cleared.text
        clearance_id = cleared.json()["event_id"]

        # records' outbox -> screening.clearances.v1 -> every screening instance's book.
        async def in_force() -> bool:
            listed = (await screening.get("/clearances", params={"list_id": "CMIC"})).json()
            return any(c["clearance"]["event_id"] == clearance_id and c["in_force"] for c in listed)

        await wait_for(in_force, timeout=30, what="the clearance reached screening")
        assert [
            c["clearance"]["reviewer"]
            for c in (await screening.get("/clearances", params={"list_id": "CMIC"})).json()
            if c["clearance"]["event_id"] == clearance_id
        ] == ["reviewer-1"]

        second = cmic_order(f"E2E-NAM-{run}-2")
        await publish(
            pipeline.bootstrap,
            pipeline.topic(TOPIC_SUBMITTED),
            [(second["order_id"], json.dumps(second).encode())],
        )
        after = await decided(records, second["order_id"])
        assert "POTENTIAL_MATCH" not in {r["code"] for r in after["decision"]["reasons"]}
        assert after["decision"]["decision"] == "RELEASE", after["decision"]["reasons"]
        trail = (await records.get(f"/orders/{second['order_id']}/trail")).json()
        [screened] = [s for s in trail["steps"] if s["stage"] == "screened"]
        for party in screened["payload"]["screening"]["parties"]:
            assert party["matches"] == [], party
            assert [(m["list_id"], m["entry_id"], m["cleared_by"]) for m in party["cleared_matches"]] == [
                ("CMIC", "30902", "reviewer-1")
            ]


async def test_services_expose_metrics_after_work(pipeline: Pipeline) -> None:
    async with httpx.AsyncClient(
        base_url=pipeline.services["classifier"].url, timeout=10, headers=bearer()
    ) as client:

        async def classifier_counted() -> str | None:
            text = (await client.get("/metrics")).text
            return text if 'exportwatch_events_in_total{service="classifier"' in text else None

        text = await wait_for(classifier_counted, timeout=60, what="classifier metrics")
    assert "exportwatch_handler_seconds_bucket" in text
    assert "exportwatch_consumer_lag" in text


async def test_exportwatch_status_shows_readiness_and_consumer_lag_of_every_service(
    pipeline: Pipeline,
) -> None:
    """The on-call command against the running processes: each service ready, its own lag read from
    its /metrics (every stage has polled its partitions by now), the lists' and the CCL's ages."""
    command = [
        sys.executable, "-m", "exportwatch.cli", "--api-key", key("viewer-1"),
        *(f"--{name}-url={service.url}" for name, service in pipeline.services.items()),
        "status", "--json",
    ]  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    for name in SERVICES:
        service = found["services"][name]
        assert service["ready"] and service["url"] == pipeline.services[name].url
        # Lag per topic of its own consumer group, summed over the partitions, from its /metrics.
        assert service["lag"] is not None and service["lag"] >= 0, name
        assert set(service["lag_by_topic"]) <= {pipeline.topic(t) for t in ALL_TOPICS}, name
    assert pipeline.topic(TOPIC_SUBMITTED) in found["services"]["classifier"]["lag_by_topic"]
    assert {row["source"] for row in found["lists"]} >= {"ofac_sdn", "csl"}
    assert found["ccl"]["entries"] > 600 and found["ccl"]["age_seconds"] > 0
