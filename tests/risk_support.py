"""Risk test support: the Part 746 fixture (eCFR layout), a local eCFR stand-in serving it, and a
risk runtime with its licence ledger on a given database.

The eCFR is not reachable from here: `tests/data/ecfr_part746.xml` is a fixture in the eCFR's XML
layout with a subset of each supplement's real HTS-6 codes; it verifies with `MIN_CODES_FIXTURE`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from services.risk import part746 as updater
from services.risk.ledger import Ledger
from services.risk.part746 import Part746
from services.risk.service import RiskRuntime, load_runtime
from shared.settings import REPO_ROOT, Settings
from tests.classifier_support import EcfrServer

PART746_XML = REPO_ROOT / "tests" / "data" / "ecfr_part746.xml"
PART746_DATE = "2026-07-23"
MIN_CODES_FIXTURE = 5
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def part746() -> Part746:
    document = updater.parse_part746_xml(PART746_XML.read_bytes(), issue_date=PART746_DATE, url="fixture")
    raw = updater.encode_document(document)
    return updater.verify(updater.load_document(raw, source=str(PART746_XML)), min_codes=MIN_CODES_FIXTURE)


def fixture_codes() -> dict[int, dict[str, str]]:
    """Supplement number -> HTS code -> description, read from the fixture's tables directly."""
    return {n: dict(s.items) for n, s in part746().supplements.items()}


@asynccontextmanager
async def risk_runtime(
    settings: Settings, database_url: str, *, with_part746: bool = True, now: datetime = NOW
) -> AsyncIterator[RiskRuntime]:
    """A runtime as the app opens it, on `database_url`, with the fixture's Part 746 (or none)."""
    runtime = load_runtime(settings)
    runtime.part746 = part746() if with_part746 else None
    runtime.part746_missing = "" if with_part746 else "no cached copy of Part 746 (test)"
    runtime.part746_min_codes = MIN_CODES_FIXTURE
    runtime.clock = lambda: now
    runtime.ledger = Ledger.open(database_url)
    await runtime.ledger.create()
    try:
        yield runtime
    finally:
        await runtime.ledger.close()


def ecfr_part746_server() -> EcfrServer:
    """The classifier tests' eCFR stand-in, serving the Part 746 fixture instead of Part 774."""
    return EcfrServer(xml=PART746_XML.read_bytes(), date=PART746_DATE, part="746")


def sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'risk.db'}"
