"""Schema migrations (shared/migrations.py) of records, the catalog and risk's ledger, on SQLite and
PostgreSQL: an empty database, a database at the previous schema (the baseline: the schema as it was
on main before migrations) with data in it, one made by `create_all` before migrations existed, and
two instances migrating the same database at once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.classifier.catalog import CATALOG_SCHEMA
from services.records import verify
from services.records.domain import GENESIS_HASH, chain_hash, payload_digest
from services.records.handler import RecordsHandler
from services.records.models import RECORDS_SCHEMA, ChainHead, Order, TrailStep, create_schema
from services.risk.ledger import LEDGER_SCHEMA
from shared.db import make_engine, make_sessionmaker
from shared.migrations import Schema, current_revision, migrate
from shared.settings import load_settings
from tests.records_support import (
    DATABASES,
    classified,
    decided,
    fresh_database,
    message,
    server_url,
    submitted,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@asynccontextmanager
async def _fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with fresh_database(request.param, tmp_path, server_url(request)) as url:
        made = make_engine(url)
        try:
            yield made
        finally:
            await made.dispose()


@pytest.fixture(params=DATABASES)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with _fresh_engine(request, tmp_path) as made:
        yield made


async def _revision(engine: AsyncEngine, schema: Schema) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(current_revision, schema)


async def _tables(engine: AsyncEngine) -> dict[str, Table]:
    metadata = MetaData()
    async with engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
    return dict(metadata.tables)


@pytest.mark.parametrize("schema", [RECORDS_SCHEMA, CATALOG_SCHEMA, LEDGER_SCHEMA], ids=lambda s: s.name)
async def test_an_empty_database_is_migrated_to_head_and_again_changes_nothing(
    engine: AsyncEngine, schema: Schema
) -> None:
    await migrate(engine, schema)
    assert await _revision(engine, schema) == schema.head()
    tables = set(await _tables(engine))
    assert set(schema.metadata().tables) <= tables and schema.version_table in tables
    await migrate(engine, schema)
    assert await _revision(engine, schema) == schema.head()


async def test_the_records_head_matches_the_models(engine: AsyncEngine) -> None:
    """No model change without a revision: Alembic finds nothing to autogenerate at head."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    await migrate(engine, RECORDS_SCHEMA)

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"version_table": RECORDS_SCHEMA.version_table})
        found = compare_metadata(context, RECORDS_SCHEMA.metadata())
        return [
            d
            for d in found
            if not (
                isinstance(d, tuple) and d[0] == "remove_table" and d[1].name.startswith("alembic_version")
            )
        ]

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


# --- records at the previous schema, with data ---------------------------------------------------------


def _v1_steps(order_id: str) -> list[dict[str, Any]]:
    """Steps as records on main stored them: the per-order chain over the bytes and the event id."""
    order = submitted(order_id, occurred_at="2026-11-30T12:00:00Z")
    events = [
        (order, "submitted", "orders.submitted.v1"),
        (classified(order), "classified", "orders.classified.v1"),
    ]
    decision = decided(order, "HOLD")
    events.append((decision, "decided", "orders.decided.v1"))
    rows, prev = [], GENESIS_HASH
    for seq, (event, stage, topic) in enumerate(events, start=1):
        raw = json.dumps(event).encode()
        digest = payload_digest(raw)
        step_hash = chain_hash(prev, digest, event["event_id"])
        rows.append(
            {
                "event_id": event["event_id"],
                "order_id": order_id,
                "seq": seq,
                "stage": stage,
                "schema": event["schema"],
                "topic": topic,
                "partition": 0,
                "offset": seq,
                "submitted_event_id": order["event_id"],
                "payload": event,
                "payload_raw": raw,
                "payload_sha256": digest,
                "prev_hash": prev,
                "step_hash": step_hash,
                "received_at": datetime(2026, 11, 30, 12, 0, seq, tzinfo=UTC),
            }
        )
        prev = step_hash
    return rows


async def _previous_records_schema_with_data(
    engine: AsyncEngine, *, forget_version: bool
) -> list[dict[str, Any]]:
    await migrate(engine, RECORDS_SCHEMA, target=RECORDS_SCHEMA.baseline)
    tables = await _tables(engine)
    steps = _v1_steps("SO-2026-000501") + _v1_steps("SO-2026-000502")
    async with engine.begin() as connection:
        await connection.execute(tables["trail_steps"].insert(), steps)
        for order_id in ("SO-2026-000501", "SO-2026-000502"):
            mine = [s for s in steps if s["order_id"] == order_id]
            await connection.execute(
                tables["orders"]
                .insert()
                .values(
                    order_id=order_id,
                    current_submitted_event_id=mine[0]["submitted_event_id"],
                    current_occurred_at=NOW,
                    destination_country="DE",
                    decision="HOLD",
                    risk_score=72,
                    decided_event_id=mine[-1]["event_id"],
                    reason_codes=["POTENTIAL_MATCH", "LICENSE_REQUIRED"],
                    updated_at=NOW,
                )
            )
        await connection.execute(
            tables["dead_letters"]
            .insert()
            .values(
                event_id=str(uuid.uuid4()),
                service="classifier",
                source_topic="orders.submitted.v1",
                source_partition=0,
                source_offset=9,
                error_type="InvalidJson",
                error="message is not valid JSON",
                payload_b64="e25vdCBqc29u",
                key_b64=None,
                failed_at=NOW,
                received_at=NOW,
            )
        )
        if forget_version:
            # A database records made with create_all, before migrations: its tables, no version.
            await connection.execute(text(f"DROP TABLE {RECORDS_SCHEMA.version_table}"))
    return steps


@pytest.mark.parametrize("forget_version", [False, True], ids=["at-baseline", "before-migrations"])
async def test_a_records_database_at_the_previous_schema_keeps_its_data_and_verifies(
    engine: AsyncEngine, forget_version: bool
) -> None:
    steps = await _previous_records_schema_with_data(engine, forget_version=forget_version)
    assert await _revision(engine, RECORDS_SCHEMA) == (None if forget_version else RECORDS_SCHEMA.baseline)

    await create_schema(engine)  # what records does at start-up

    assert await _revision(engine, RECORDS_SCHEMA) == RECORDS_SCHEMA.head()
    sessions = make_sessionmaker(engine)
    report = await verify.verify(sessions, [])
    assert report.ok, report.problems
    # Every stored record has its chain position, in the order received: 6 steps and a dead letter.
    assert (report.orders_checked, report.steps_checked, report.chain_positions_checked) == (2, 6, 7)
    async with sessions() as session:
        stored = list(await session.scalars(select(TrailStep).order_by(TrailStep.id)))
        order = await session.get(Order, "SO-2026-000501")
        head = await session.get(ChainHead, 1)
    assert [s.step_hash for s in stored] == [s["step_hash"] for s in steps]  # history is not rewritten
    assert {s.hash_version for s in stored} == {1}
    assert order is not None and order.party_search == "muster maschinenbau gmbh"
    assert (order.party_countries, order.reason_search) == (",DE,", ",POTENTIAL_MATCH,LICENSE_REQUIRED,")
    assert order.created_at == steps[0]["received_at"] and order.decided_at == steps[2]["received_at"]
    assert head is not None and head.seq == 7

    # And records goes on: a new step of an old order chains after the old ones, both chains verify.
    handler = RecordsHandler(settings=load_settings("records"), sessionmaker=sessions)
    old_order = steps[0]["payload"]
    await handler(message(submitted("SO-2026-000501", occurred_at="2026-12-01T12:00:00Z"), offset=50))
    await handler(message(classified(old_order), offset=51))  # already stored: no new position
    report = await verify.verify(sessions, [])
    assert report.ok and report.chain_positions_checked == 8, report.problems


@pytest.fixture(params=[p for p in DATABASES if p.id == "postgresql"])
async def postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with _fresh_engine(request, tmp_path) as made:
        yield made


async def test_payloads_written_after_revision_0003_are_lz4_and_older_ones_read_as_before(
    postgresql: AsyncEngine,
) -> None:
    def step(n: int) -> dict[str, Any]:
        # Well over the 2 kB at which PostgreSQL starts compressing a row's large values.
        raw = json.dumps({"n": n, "lines": [{"sku": f"TC-{i}", "qty": i} for i in range(300)]}).encode()
        return {
            "event_id": str(uuid.uuid4()),
            "order_id": f"SO-2026-0009{n:02d}",
            "seq": 1,
            "stage": "submitted",
            "schema": "orders.submitted.v1",
            "topic": "orders.submitted.v1",
            "partition": 0,
            "offset": n,
            "submitted_event_id": str(uuid.uuid4()),
            "payload": json.loads(raw),
            "payload_raw": raw,
            "payload_sha256": payload_digest(raw),
            "prev_hash": GENESIS_HASH,
            "step_hash": "0" * 64,
            "received_at": NOW,
            "hash_version": 2,
        }

    async def compression(connection: Any, event_id: str) -> tuple[str, str]:
        found = await connection.execute(
            text(
                "SELECT pg_column_compression(payload), pg_column_compression(payload_raw) "
                "FROM trail_steps WHERE event_id = :id"
            ),
            {"id": event_id},
        )
        return tuple(found.one())

    old, new = step(1), step(2)
    await migrate(postgresql, RECORDS_SCHEMA, target="0002")
    async with postgresql.begin() as connection:
        await connection.execute(insert(TrailStep).values(**old))
    await migrate(postgresql, RECORDS_SCHEMA)
    async with postgresql.begin() as connection:
        await connection.execute(insert(TrailStep).values(**new))
        methods = await connection.execute(
            text(
                "SELECT c.relname, a.attname, a.attcompression::text FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relname IN ('trail_steps', 'reference_events', 'outbox') "
                "AND a.attname IN ('payload', 'payload_raw', 'value')"
            )
        )
        assert sorted(tuple(row) for row in methods) == [
            ("outbox", "value", "l"),
            ("reference_events", "payload", "l"),
            ("reference_events", "payload_raw", "l"),
            ("trail_steps", "payload", "l"),
            ("trail_steps", "payload_raw", "l"),
        ]
        assert await compression(connection, old["event_id"]) == ("pglz", "pglz")
        assert await compression(connection, new["event_id"]) == ("lz4", "lz4")
        stored = (
            await connection.execute(
                select(TrailStep.event_id, TrailStep.payload_raw).order_by(TrailStep.offset)
            )
        ).all()
    assert [(e, bytes(r)) for e, r in stored] == [
        (old["event_id"], old["payload_raw"]),
        (new["event_id"], new["payload_raw"]),
    ]


# --- the catalog and the ledger at their previous schemas ----------------------------------------------


async def test_a_catalog_made_before_reference_documents_gets_the_column_and_keeps_its_products(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TABLE catalog_products (id INTEGER NOT NULL PRIMARY KEY, sku VARCHAR(128) NOT NULL, "
                "version INTEGER NOT NULL, eccn VARCHAR(40) NOT NULL, classified_by VARCHAR(256) NOT NULL, "
                "classified_at TIMESTAMP WITH TIME ZONE NOT NULL, rationale TEXT, "
                "CONSTRAINT uq_catalog_products_sku_version UNIQUE (sku, version))"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO catalog_products (id, sku, version, eccn, classified_by, classified_at) "
                "VALUES (1, 'TC-640', 1, '6A003.b.4.b', 'j.doe', :at)"
            ),
            {"at": NOW},
        )
    await migrate(engine, CATALOG_SCHEMA)
    assert await _revision(engine, CATALOG_SCHEMA) == CATALOG_SCHEMA.head()
    async with engine.connect() as connection:
        columns = await connection.run_sync(
            lambda c: {col["name"] for col in inspect(c).get_columns("catalog_products")}
        )
        rows = (
            await connection.execute(text("SELECT sku, eccn, reference_documents FROM catalog_products"))
        ).all()
    assert "reference_documents" in columns
    assert [tuple(r) for r in rows] == [("TC-640", "6A003.b.4.b", None)]


async def test_a_ledger_at_the_baseline_keeps_its_licences(engine: AsyncEngine) -> None:
    await migrate(engine, LEDGER_SCHEMA, target=LEDGER_SCHEMA.baseline)
    tables = await _tables(engine)
    async with engine.begin() as connection:
        await connection.execute(
            tables["licences"]
            .insert()
            .values(
                number="D1234567",
                authority="BIS",
                eccns=["6A003.b.4.b"],
                skus=[],
                countries=["CN"],
                parties=[],
                currency="USD",
                value_limit_micros=10_000_000_000,
                quantity_limit=None,
                value_used_micros=0,
                quantity_used=0,
                valid_from=NOW,
                valid_until=NOW.replace(year=2028),
                provisos=[],
                created_at=NOW,
            )
        )
    await migrate(engine, LEDGER_SCHEMA)
    assert await _revision(engine, LEDGER_SCHEMA) == LEDGER_SCHEMA.head()
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT number FROM licences"))).scalars().all() == ["D1234567"]


# --- two instances at once ------------------------------------------------------------------------------


async def test_two_instances_migrating_at_once_both_succeed(engine: AsyncEngine) -> None:
    """Two processes start on the same database at the same moment: one migrates, the other waits
    for its lock and then finds nothing to do (neither fails on a table the other created)."""
    url = engine.url.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "shared.migrations", "upgrade", "records", "--url", url]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [await p.communicate() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err.decode()[-2000:] for _, err in results]
    assert await _revision(engine, RECORDS_SCHEMA) == RECORDS_SCHEMA.head()
    async with engine.connect() as connection:
        heads = (await connection.execute(text("SELECT count(*) FROM chain_head"))).scalar()
    assert heads == 1
