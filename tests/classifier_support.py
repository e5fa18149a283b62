"""Shared by the classifier's tests: the real CCL and suggestion index, loaded once per session,
and plain order inputs."""

from __future__ import annotations

import functools
from typing import Any

from services.classifier.ccl import load_ccl
from services.classifier.domain import Ccl
from services.classifier.suggest import SuggestionIndex
from shared.settings import REPO_ROOT, Settings

SEED_CSV = REPO_ROOT / "samples" / "catalog.csv"
SUBMITTED_EVENT_ID = "5f0c3a0e-8d57-4a3e-9a53-0b8c9e0d2f11"


@functools.cache
def ccl() -> Ccl:
    return load_ccl(Settings().require_data_dir())


@functools.cache
def suggestions() -> SuggestionIndex:
    return SuggestionIndex.build(ccl())


def order_line(line_no: int, sku: str, description: str, eccn: str | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {
        "line_no": line_no,
        "sku": sku,
        "description": description,
        "quantity": 1,
        "unit_price": "100.00",
        "currency": "USD",
    }
    if eccn is not None:
        line["eccn"] = eccn
    return line


def submitted_order(*lines: dict[str, Any], destination: str = "DE") -> dict[str, Any]:
    return {
        "schema": "order.submitted.v1",
        "event_id": SUBMITTED_EVENT_ID,
        "order_id": "SO-TEST-0001",
        "occurred_at": "2026-11-30T12:00:00Z",
        "source": "erp-test",
        "ship_from_country": "US",
        "destination_country": destination,
        "parties": [{"role": "buyer", "name": "Muster Maschinenbau GmbH", "country": destination}],
        "lines": list(lines),
    }
