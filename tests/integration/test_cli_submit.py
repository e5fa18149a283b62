"""`exportwatch submit FILE` over the real broker (sync tests: the command runs its own event loop): orders from JSON and CSV published to
orders.submitted.v1 keyed by order id, validated first (one bad order and nothing is sent), the
Kafka settings taken from the environment as a service takes them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from exportwatch.cli import app as cli_app
from shared.events import TOPIC_SUBMITTED
from shared.settings import REPO_ROOT
from tests.integration.kafka_helpers import create_prefixed_topics, read_topic, unique_prefix

pytestmark = pytest.mark.integration

SAMPLES: list[dict[str, Any]] = json.loads((REPO_ROOT / "samples" / "orders.json").read_text())
CSV_COLUMNS = (
    "order_id", "occurred_at", "ship_from_country", "destination_country", "end_use", "buyer_name",
    "buyer_country", "ultimate_consignee_name", "ultimate_consignee_country", "line_no", "sku",
    "description", "quantity", "unit_price", "currency", "hs_code", "eccn",
)  # fmt: skip


def _csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _row(order_id: str, line_no: int, **changes: str) -> dict[str, str]:
    row = {
        "order_id": order_id, "occurred_at": "2026-12-01T10:00:00Z", "ship_from_country": "US",
        "destination_country": "DE", "end_use": "Packaging line", "buyer_name": "Muster Maschinenbau GmbH",
        "buyer_country": "DE", "ultimate_consignee_name": "Muster Maschinenbau GmbH",
        "ultimate_consignee_country": "DE", "line_no": str(line_no), "sku": f"SKU-{line_no}",
        "description": "Hydraulic pump", "quantity": "2", "unit_price": "120.00", "currency": "USD",
        "hs_code": "8413.50", "eccn": "EAR99",
    }  # fmt: skip
    return {**row, **changes}


def _environment(kafka_bootstrap: str) -> dict[str, str]:
    prefix = unique_prefix()
    asyncio.run(create_prefixed_topics(kafka_bootstrap, prefix, partitions=3))
    return {"EXPORTWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "EXPORTWATCH_TOPIC_PREFIX": prefix}


def test_submit_publishes_orders_from_json_and_csv_keyed_by_order_id(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = _environment(kafka_bootstrap)
    topic = env["EXPORTWATCH_TOPIC_PREFIX"] + TOPIC_SUBMITTED
    as_json = tmp_path / "orders.json"
    as_json.write_text(json.dumps(SAMPLES[:3]))
    as_csv = tmp_path / "orders.csv"
    as_csv.write_text(_csv([_row("SO-CSV-1", 1), _row("SO-CSV-2", 1), _row("SO-CSV-1", 2, sku="SKU-B")]))

    done = CliRunner().invoke(cli_app, ["submit", str(as_json)], env=env)
    assert done.exit_code == 0, done.output
    assert f"published 3 orders to {topic}" in done.stdout and "3/3" in done.stderr
    again = CliRunner().invoke(cli_app, ["submit", str(as_csv), "--json"], env=env)
    assert again.exit_code == 0, again.output
    reported = json.loads(again.stdout)
    assert [r["order_id"] for r in reported] == ["SO-CSV-1", "SO-CSV-2"]

    events = asyncio.run(read_topic(kafka_bootstrap, topic, expect=5))
    by_id = {e["order_id"]: e for e in events}
    assert set(by_id) == {o["order_id"] for o in SAMPLES[:3]} | {"SO-CSV-1", "SO-CSV-2"}
    assert by_id[SAMPLES[0]["order_id"]]["event_id"] == SAMPLES[0]["event_id"]
    first = by_id["SO-CSV-1"]
    assert [line["sku"] for line in first["lines"]] == ["SKU-1", "SKU-B"]
    assert {p["role"] for p in first["parties"]} == {"buyer", "ultimate_consignee"}
    assert first["lines"][0]["quantity"] == 2 and first["source"] == "exportwatch-cli"
    # The same file again is the same events: records keeps each once.
    repeat = json.loads(CliRunner().invoke(cli_app, ["submit", str(as_csv), "--json"], env=env).stdout)
    assert [r["event_id"] for r in repeat] == [r["event_id"] for r in reported]


def test_an_invalid_order_is_named_with_its_row_and_field_and_nothing_is_published(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = _environment(kafka_bootstrap)
    bad = tmp_path / "orders.csv"
    bad.write_text(_csv([_row("SO-OK-1", 1), _row("SO-BAD-1", 1, destination_country="XX", quantity="0")]))
    done = CliRunner().invoke(cli_app, ["submit", str(bad)], env=env)
    assert done.exit_code == 1
    said = " ".join(done.stderr.split())
    assert "1 of 2 orders are invalid; nothing was published" in said
    assert "line 3 (order SO-BAD-1)" in said and "destination_country" in said and "'XX'" in said
    assert "lines.0.quantity" in said
    topic = env["EXPORTWATCH_TOPIC_PREFIX"] + TOPIC_SUBMITTED
    assert asyncio.run(read_topic(kafka_bootstrap, topic, expect=1, timeout=3)) == []
    checked = CliRunner().invoke(cli_app, ["submit", str(tmp_path / "missing.json")], env=env)
    assert checked.exit_code == 1 and "cannot read" in checked.stderr


def test_submit_explains_an_unreachable_broker(tmp_path: Path) -> None:
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps(SAMPLES[0]))
    done = CliRunner().invoke(cli_app, ["submit", str(orders), "--kafka=127.0.0.1:9"])
    assert done.exit_code == 1
    assert "cannot reach Kafka at 127.0.0.1:9" in " ".join(done.stderr.split())
    assert CliRunner().invoke(cli_app, ["submit", str(orders), "--check"]).stdout.startswith("1 valid orders")
