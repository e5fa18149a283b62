"""The classifier service: consumes orders.submitted.v1, publishes orders.classified.v1, serves the
catalog and ECCN look-ups."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import FastAPI
from prometheus_client import Gauge

from services.classifier.api import router
from services.classifier.catalog import Announce, CatalogImportError, CatalogStore
from services.classifier.domain import Ccl, canonical_eccn
from services.classifier.ecfr import MIN_ENTRIES, REQUIRED_ENTRIES
from services.classifier.feed import CatalogFeed, CatalogFollower
from services.classifier.handler import ClassifierHandler
from services.classifier.reference import ReferenceData, load_reference_data
from services.classifier.service import SERVICE, ClassifierRuntime
from shared.db import make_engine
from shared.events import TOPIC_CATALOG, TOPIC_SUBMITTED
from shared.kafka import Publish
from shared.service import Consumes, Follows, ServiceSpec, build_app, run_service
from shared.settings import REPO_ROOT, Settings, load_settings

log = logging.getLogger("exportwatch.classifier")

DEFAULT_CATALOG_URL = f"sqlite+aiosqlite:///{REPO_ROOT / 'var' / 'catalog.db'}"

# How far the CCL in use trails the regulation: the eCFR issue date it was read from, measured at
# scrape time, so an update that keeps failing shows as a growing age (the alert reads it).
CCL_AGE = Gauge(
    "exportwatch_classifier_ccl_age_seconds",
    "Seconds since the eCFR issue date of the Commerce Control List in use (15 CFR 774 Supp. 1)",
)


def ccl_age_seconds(issue_date: str, now: datetime) -> float:
    return (now - datetime.fromisoformat(issue_date).replace(tzinfo=UTC)).total_seconds()


async def open_catalog(settings: Settings, ccl: Ccl, announce: Announce | None = None) -> CatalogStore:
    engine = make_engine(settings.catalog_database_url or DEFAULT_CATALOG_URL)
    store = CatalogStore(engine) if announce is None else CatalogStore(engine, announce=announce)
    await store.open()
    seed = settings.catalog_seed_csv
    if seed is not None:
        try:
            result = await store.import_csv(
                seed.read_text(encoding="utf-8-sig"),
                validate_eccn=partial(canonical_eccn, ccl),
                classified_at=datetime.now(UTC),
            )
        except (OSError, CatalogImportError) as exc:
            await store.close()
            raise ValueError(f"EXPORTWATCH_CATALOG_SEED_CSV={str(seed)!r}: {exc}") from exc
        log.info(
            "catalog seed %s: %d SKUs new or changed, %d unchanged",
            seed,
            len(result.created),
            len(result.unchanged),
        )
    return store


def runtime_opener(
    ccl_update_checks: tuple[int, tuple[str, ...]],
) -> Callable[[Settings, Publish], AbstractAsyncContextManager[ClassifierRuntime]]:
    @asynccontextmanager
    async def open_runtime(settings: Settings, publish: Publish) -> AsyncIterator[ClassifierRuntime]:
        started = time.perf_counter()
        reference: ReferenceData = await asyncio.to_thread(
            load_reference_data, settings.require_data_dir(), settings.ccl_cache_dir
        )
        ccl = reference.ccl
        for warning in ccl.warnings:
            log.warning("CCL data warning: %s", warning, extra={"ccl_version": ccl.version})
        feed = CatalogFeed(publish, settings.topic(TOPIC_CATALOG))
        catalog = await open_catalog(settings, ccl, feed.announce)
        log.info(
            "CCL %s from %s (%d entries, %d warnings), %d suggestion texts and catalog %s loaded in %.3fs",
            ccl.version,
            ccl.source,
            len(ccl.entries),
            len(ccl.warnings),
            len(reference.suggestions),
            catalog.snapshot.version,
            time.perf_counter() - started,
        )
        runtime = ClassifierRuntime(
            reference=reference,
            catalog=catalog,
            feed=feed,
            ecfr_api_url=settings.ecfr_api_url,
            ccl_cache_dir=settings.ccl_cache_dir,
            update_min_entries=ccl_update_checks[0],
            update_required_entries=ccl_update_checks[1],
        )
        # Read at scrape time from the CCL in force, so an update swaps what the gauge reports.
        CCL_AGE.set_function(lambda: ccl_age_seconds(runtime.ccl.issue_date, datetime.now(UTC)))
        retrying = feed.retrying()
        retrying.start()
        try:
            yield runtime
        finally:
            await retrying.stop()
            await catalog.close()

    return open_runtime


def describe(runtime: ClassifierRuntime | None) -> dict[str, Any]:
    detail: dict[str, Any] = {"reference_data_loaded": runtime is not None}
    if runtime is not None:
        detail["ccl_version"] = runtime.ccl.version
        detail["catalog_version"] = runtime.catalog.snapshot.version
        if runtime.feed is not None:
            detail["catalog_unpublished"] = runtime.feed.unpublished
    return detail


def handler(settings: Settings, runtime: ClassifierRuntime) -> ClassifierHandler:
    # The CCL in force and the catalog snapshot current at each order (both are swapped whole).
    return ClassifierHandler(
        settings=settings,
        reference=lambda: runtime.reference,
        catalog=lambda: runtime.catalog.snapshot,
        catalog_caught_up=runtime.catalog_caught_up,
    )


def create_app(
    settings: Settings | None = None,
    *,
    start_kafka: bool = True,
    ccl_update_checks: tuple[int, tuple[str, ...]] = (MIN_ENTRIES, REQUIRED_ENTRIES),
) -> FastAPI:
    """`ccl_update_checks` (minimum entries, entries that must be present in a rebuilt CCL) exists
    for tests that serve a small Part 774."""
    settings = settings or load_settings(SERVICE)
    spec = ServiceSpec(
        name=SERVICE,
        title="Exportwatch classifier",
        summary="ECCN per order line from the ERP and the product catalog, checked against the CCL",
        router=router,
        open_runtime=runtime_opener(ccl_update_checks),
        describe=describe,
        not_ready="the Commerce Control List is not loaded yet",
        consumes=Consumes([TOPIC_SUBMITTED], partial(handler, settings)),
        follows=[
            Follows(
                "catalog",
                [TOPIC_CATALOG],
                lambda runtime: CatalogFollower(runtime.catalog),
                caught_up=lambda runtime: runtime.catalog_caught_up,
            )
        ],
        long_running=frozenset({"/ccl/update"}),
    )
    return build_app(spec, settings, start_kafka=start_kafka)


def main() -> None:
    run_service(SERVICE, create_app)
