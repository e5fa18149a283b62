"""The classifier's use cases: classify a line, write the product catalog, update the CCL.

Commands take their dependencies as keyword arguments and raise the errors below (or the catalog's
CatalogConflict / CatalogImportError, the eCFR's EcfrError); the routes and the handler translate
HTTP and Kafka to these calls and back. The rules are in domain.py (docs/architecture.md lists
where each one lives).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import httpx

from services.classifier.catalog import (
    CatalogProduct,
    CatalogSnapshot,
    CatalogStore,
    ImportResult,
    check_documents,
)
from services.classifier.domain import (
    Ccl,
    InvalidEccn,
    ParsedEccn,
    canonical_eccn,
    classify_line,
    classify_lines,
    parse_eccn,
    within,
)
from services.classifier.ecfr import MIN_ENTRIES, REQUIRED_ENTRIES, CclUpdate, EcfrError, api_client
from services.classifier.ecfr import update_ccl as fetch_ccl
from services.classifier.feed import CatalogFeed
from services.classifier.reference import ReferenceData
from shared.events import ClassifiedOrder, LineClassification, SubmittedOrder, derive

SERVICE = "classifier"
log = logging.getLogger("exportwatch.classifier")


class InvalidField(ValueError):
    """A value a command refuses: `location` is where it was given (["body", "eccn"])."""

    def __init__(self, location: list[str | int], value: object, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.value = value


@dataclass
class ClassifierRuntime:
    """What the routes and the handler share. `reference` is replaced whole by a CCL update; readers
    take it once per request or order, so a line is never checked against one CCL and ranked
    against another."""

    reference: ReferenceData
    catalog: CatalogStore
    ecfr_api_url: str
    ccl_cache_dir: Path
    # Publishes this instance's catalog writes to the others (None in tests of the use cases).
    feed: CatalogFeed | None = None
    # What a rebuilt CCL must have before it replaces the loaded one (ecfr.verify_document).
    update_min_entries: int = MIN_ENTRIES
    update_required_entries: tuple[str, ...] = REQUIRED_ENTRIES
    update_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Set once this instance read every catalog version published before it started (feed.py).
    catalog_caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ccl(self) -> Ccl:
        return self.reference.ccl


# --- classification ------------------------------------------------------------------------------


def classify_order(
    *, order: SubmittedOrder, reference: ReferenceData, snapshot: CatalogSnapshot
) -> ClassifiedOrder:
    """The next stage's envelope: every line of the order classified against the CCL in force and
    the catalog snapshot, both versions stamped on it."""
    classification = classify_lines(
        reference.ccl,
        order.lines,
        catalog=snapshot.eccn_by_sku,
        catalog_version=snapshot.version,
        suggest=reference.suggest,
    )
    return ClassifiedOrder(**derive(order, SERVICE), classification=classification)


def classify_one(
    *,
    reference: ReferenceData,
    snapshot: CatalogSnapshot,
    description: str,
    sku: str | None,
    hs_code: str | None,
    eccn: str | None,
) -> LineClassification:
    """One line as the handler would classify it (line number 1)."""
    return classify_line(
        reference.ccl,
        line_no=1,
        sku=sku or "",
        description=description,
        erp_eccn=eccn.strip().upper() if eccn else None,
        catalog_eccn=snapshot.eccn_by_sku.get(sku) if sku else None,
        catalog_version=snapshot.version,
        suggest=reference.suggest,
        hs_code=hs_code,
    )


def products_within(products: Sequence[CatalogProduct], eccn: str) -> list[CatalogProduct]:
    """The products classified under an entry (6A003: every paragraph) or a paragraph (6A003.b.4)."""
    wanted = parse_eccn(eccn)
    if isinstance(wanted, InvalidEccn):
        raise InvalidField(["query", "eccn"], eccn, wanted.message)

    def inside(code: str) -> bool:
        parsed = parse_eccn(code)
        return (
            isinstance(parsed, ParsedEccn)
            and parsed.base == wanted.base
            and within(parsed.paragraphs, wanted.paragraphs)
        )

    return [p for p in products if inside(p.eccn)]


# --- the catalog -----------------------------------------------------------------------------------


async def put_product(
    *,
    catalog: CatalogStore,
    ccl: Ccl,
    sku: str,
    eccn: str,
    classified_by: str,
    rationale: str | None,
    reference_documents: Sequence[str],
    now: datetime,
) -> tuple[CatalogProduct, bool]:
    """Classify a SKU: a new version, unless the current one says exactly this; (product, created).
    The ECCN must be EAR99 or on the loaded CCL, and is stored in its canonical form."""
    try:
        eccn_code = canonical_eccn(ccl, eccn)
    except ValueError as exc:
        raise InvalidField(["body", "eccn"], eccn, str(exc)) from exc
    if problem := check_documents(reference_documents):
        raise InvalidField(["body", "reference_documents"], list(reference_documents), problem)
    return await catalog.put(
        sku=sku,
        eccn=eccn_code,
        classified_by=classified_by,
        rationale=rationale,
        classified_at=now,
        reference_documents=reference_documents,
    )


async def withdraw_product(
    *, catalog: CatalogStore, sku: str, withdrawn_by: str, reason: str | None, now: datetime
) -> tuple[CatalogProduct, bool] | None:
    """Take a SKU out of the catalog (a new version, withdrawn); None if the catalog never had it."""
    return await catalog.withdraw(sku=sku, withdrawn_by=withdrawn_by, reason=reason, withdrawn_at=now)


async def import_products(*, catalog: CatalogStore, ccl: Ccl, text: str, now: datetime) -> ImportResult:
    """Import a catalog CSV: every row or, on any bad row (CatalogImportError), none."""
    return await catalog.import_csv(text, validate_eccn=partial(canonical_eccn, ccl), classified_at=now)


# --- the CCL ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CclUpdated:
    previous_version: str
    update: CclUpdate


async def update_ccl(
    *, runtime: ClassifierRuntime, date: str | None, transport: httpx.AsyncBaseTransport | None = None
) -> CclUpdated:
    """Fetch Part 774 from the eCFR, rebuild, verify and cache the CCL, then swap it in (with the
    suggestion index rebuilt over it). One update at a time; on EcfrError the loaded CCL stays."""
    async with runtime.update_lock:
        previous = runtime.reference
        try:
            async with api_client(runtime.ecfr_api_url, transport=transport) as client:
                update = await fetch_ccl(
                    client,
                    runtime.ccl_cache_dir,
                    date=date,
                    min_entries=runtime.update_min_entries,
                    required=runtime.update_required_entries,
                )
        except EcfrError as exc:
            log.warning("CCL update failed; %s stays in force: %s", previous.ccl.version, exc)
            raise
        runtime.reference = await asyncio.to_thread(ReferenceData.build, update.ccl, previous.eu_annex)
    log.info("CCL updated from %s to %s (%s)", previous.ccl.version, update.ccl.version, update.url)
    return CclUpdated(previous_version=previous.ccl.version, update=update)
