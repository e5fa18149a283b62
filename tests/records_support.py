"""Test support for records: a fresh trail database per test, and the events of one order's life.

The database is a SQLite file, and a PostgreSQL database on the server of the `postgres_url`
fixture (tests/conftest.py: the one `make test` starts, or one started for the session): each test
gets its own database there, created from the server's template and dropped afterwards, so tests
never see each other's rows. The PostgreSQL cases are marked `integration`: `make test-fast`
deselects them by that mark (and says so), it never skips them.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.events import (
    TOPIC_CLASSIFIED,
    TOPIC_DEADLETTER,
    TOPIC_DECIDED,
    TOPIC_REVIEWED,
    TOPIC_SCREENED,
    TOPIC_SUBMITTED,
    Classification,
    ClassifiedOrder,
    DeadLetter,
    DecidedOrder,
    Decision,
    DecisionCode,
    LineClassification,
    LineDetermination,
    MatchEvidence,
    PartyMatch,
    PartyScreening,
    Reason,
    ReviewedOrder,
    ScreenedList,
    ScreenedOrder,
    Screening,
    SubmittedOrder,
    derive,
)
from shared.kafka import Incoming

# Parametrise a fixture with these and give it the server with `server_url(request)`.
DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.integration),
]


def server_url(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL server of the `postgres_url` fixture for a postgresql case, else None."""
    if request.param != "postgresql":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path, postgres_url: str | None = None) -> AsyncIterator[str]:
    """SQLAlchemy URL of an empty database of `backend`, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"
        return
    assert postgres_url is not None, "a postgresql case needs the postgres_url fixture (server_url)"
    server = make_url(postgres_url)
    name = f"records_test_{uuid.uuid4().hex[:12]}"
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f"CREATE DATABASE {name}"))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    finally:
        await admin.dispose()


# --- one order's events ---------------------------------------------------------------------------


def submitted(
    order_id: str,
    *,
    occurred_at: str = "2026-11-30T12:00:00Z",
    destination_country: str = "DE",
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The contract's example order: a thermal imaging camera for a German machine builder."""
    order: dict[str, Any] = {
        "schema": "order.submitted.v1",
        "event_id": event_id or str(uuid.uuid4()),
        "order_id": order_id,
        "occurred_at": occurred_at,
        "source": "erp-eu1",
        "ship_from_country": "US",
        "destination_country": destination_country,
        "parties": [
            {"role": "buyer", "name": "Muster Maschinenbau GmbH", "city": "Stuttgart", "country": "DE"},
            {"role": "ultimate_consignee", "name": "Muster Maschinenbau GmbH", "country": "DE"},
        ],
        "lines": [
            {
                "line_no": 1,
                "sku": "TC-640",
                "description": "Uncooled thermal imaging camera, 640x512",
                "quantity": 2,
                "unit_price": "1250.00",
                "currency": "USD",
                "eccn": "6A003.b.4.b",
            }
        ],
        "end_use": "Predictive maintenance of packaging lines",
    }
    order.update(extra)
    return order


def _classification() -> Classification:
    return Classification(
        ccl_version="sha256:0a1b2c3d4e5f (2026-01-15)",
        lines=[
            LineClassification(
                line_no=1,
                sku="TC-640",
                eccn="6A003.b.4.b",
                source="erp",
                status="classified",
                erp_eccn="6A003.b.4.b",
                reasons_for_control=["NS", "RS", "AT"],
                country_chart_columns=["NS2", "RS1", "AT1"],
            )
        ],
    )


def _screening() -> Screening:
    evidence = MatchEvidence(party_country="DE", entry_countries=["DE"], country_agreement=True)
    match = PartyMatch(
        list_id="EL",
        list_name="Entity List (EL) - Bureau of Industry and Security",
        list_version="sha256:9f8e7d6c5b4a (2026-07-31)",
        entry_id="csl-12345",
        entry_name="Muster Maschinenbau",
        matched_name="Muster Maschinenbau",
        matched_alias=False,
        score=0.9,
        effect="licence",
        evidence=evidence,
        entry_version="3f2a9c1e5b7d0a4c",
    )
    return Screening(
        policy_version="2026.11.30-1+sha256:000000000000",
        review_threshold=0.86,
        block_threshold=0.95,
        lists=[
            ScreenedList(
                list_id="EL", name="Entity List", version="sha256:9f8e7d6c5b4a", entries=1, effect="licence"
            )
        ],
        parties=[
            PartyScreening(role="buyer", name="Muster Maschinenbau GmbH", country="DE", matches=[match])
        ],
    )


def classified(order: dict[str, Any]) -> dict[str, Any]:
    source = SubmittedOrder.model_validate(order)
    return _dump(ClassifiedOrder(**derive(source, "classifier"), classification=_classification()))


def screened(order: dict[str, Any]) -> dict[str, Any]:
    source = ClassifiedOrder.model_validate(classified(order))
    return _dump(
        ScreenedOrder(
            **derive(source, "screening"),
            classification=source.classification,
            screening=_screening(),
        )
    )


def decided(order: dict[str, Any], decision: DecisionCode = "HOLD") -> dict[str, Any]:
    source = ScreenedOrder.model_validate(screened(order))
    reasons = [
        Reason(
            code="POTENTIAL_MATCH",
            severity="HOLD",
            message="buyer 'Muster Maschinenbau GmbH' resembles Entity List entry 'Muster Maschinenbau' (score 0.90)",
            party_role="buyer",
            evidence={"list_id": "EL", "entry_id": "csl-12345", "score": 0.9},
        ),
        Reason(
            code="LICENSE_REQUIRED",
            severity="LICENSE_REQUIRED",
            message="6A003.b.4.b: RS1 is marked X for DE (15 CFR 738 Supp. 1)",
            line_no=1,
            evidence={"eccn": "6A003.b.4.b", "column": "RS1", "country": "DE"},
        ),
    ]
    return _dump(
        DecidedOrder(
            **derive(source, "risk"),
            classification=source.classification,
            screening=source.screening,
            decision=Decision(
                decision=decision,
                risk_score=72,
                reasons=reasons,
                line_determinations=[
                    LineDetermination(
                        line_no=1,
                        eccn="6A003.b.4.b",
                        license_required=True,
                        columns_applicable=["RS1"],
                        countries_checked=["DE"],
                    )
                ],
                policy_version="2026.11.30-1+sha256:000000000000",
                data_versions={"ccl": "sha256:0a1b2c3d4e5f (2026-01-15)"},
            ),
        )
    )


def reviewed(
    decided_event: dict[str, Any],
    *,
    review_decision: Literal["RELEASE", "BLOCK", "LICENSE_REQUIRED"] = "RELEASE",
    reviewed_at: str = "2026-12-01T09:00:00Z",
) -> dict[str, Any]:
    return _dump(
        ReviewedOrder(
            event_id=str(uuid.uuid4()),
            order_id=decided_event["order_id"],
            decided_event_id=decided_event["event_id"],
            submitted_event_id=decided_event["order"]["event_id"],
            original_decision=decided_event["decision"]["decision"],
            review_decision=review_decision,
            reviewer="j.doe@compliance.example",
            comment="Entity List entry is a different company (other address); released.",
            reviewed_at=datetime.fromisoformat(reviewed_at),
        )
    )


def dead_letter(raw: bytes, *, offset: int = 7, service: str = "classifier") -> dict[str, Any]:
    return _dump(
        DeadLetter(
            event_id=str(uuid.uuid4()),
            service=service,
            source_topic=TOPIC_SUBMITTED,
            source_partition=0,
            source_offset=offset,
            key_b64=base64.b64encode(b"SO-2026-000999").decode(),
            payload_b64=base64.b64encode(raw).decode(),
            error_type="InvalidJson",
            error="message is not valid JSON: Expecting value at line 1 column 1",
            failed_at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        )
    )


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


TOPIC_OF_SCHEMA = {
    "order.submitted.v1": TOPIC_SUBMITTED,
    "order.classified.v1": TOPIC_CLASSIFIED,
    "order.screened.v1": TOPIC_SCREENED,
    "order.decided.v1": TOPIC_DECIDED,
    "order.reviewed.v1": TOPIC_REVIEWED,
    "order.deadletter.v1": TOPIC_DEADLETTER,
}


def message(
    event: dict[str, Any],
    *,
    offset: int = 0,
    partition: int = 0,
    raw: bytes | None = None,
    key: bytes | None = None,
) -> Incoming:
    """The Kafka message carrying `event` on its topic, as the consumer loop hands it over (keyed
    by its order_id, as every stage publishes, unless `key` says otherwise)."""
    value = raw if raw is not None else _wire(event)
    key = key if key is not None else str(event.get("order_id", "")).encode() or None
    return Incoming(TOPIC_OF_SCHEMA[event["schema"]], partition, offset, key, value, 0)


def _wire(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()
