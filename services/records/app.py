"""records: the trail database's only owner, its consumer of every topic, and its HTTP API (port 8004)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.records.api import router
from services.records.dashboard import install_error_pages, pages
from services.records.handler import RecordsHandler
from services.records.models import create_schema
from services.records.outbox import OutboxRelay
from services.records.queue import backlog
from services.records.reviews import Topics
from services.records.service import RecordsRuntime
from shared.db import make_engine, make_sessionmaker
from shared.events import ALL_TOPICS
from shared.kafka import Publish
from shared.service import Consumes, Periodic, ServiceSpec, build_app, run_service
from shared.settings import Settings, load_settings

SERVICE = "records"
log = logging.getLogger("exportwatch.records")

REVIEW_BACKLOG = Gauge(
    "exportwatch_review_backlog", "Orders whose decision waits for a reviewer, per decision", ["decision"]
)
REVIEW_BACKLOG_OLDEST = Gauge(
    "exportwatch_review_backlog_oldest_seconds",
    "How long the oldest decision waiting for a reviewer has waited, per decision",
    ["decision"],
)


async def _prepare_database(engine: AsyncEngine, attempts: int = 8) -> None:
    """Create the tables, waiting a little for a database that is still starting.

    A second instance starting at the same moment may lose the race to create a table; the next
    attempt then finds it and goes on. (Tables come from metadata.create_all; Alembic migrations
    are future work.)
    """
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            await create_schema(engine)
            return
        except (OSError, SQLAlchemyError) as exc:
            if attempt == attempts:
                raise
            log.warning("database not ready (attempt %d): %s; retrying in %.1fs", attempt, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)


# How often the review backlog gauges are refreshed from the database.
BACKLOG_SECONDS = 15.0


@asynccontextmanager
async def open_runtime(settings: Settings, publish: Publish) -> AsyncIterator[RecordsRuntime]:
    engine = make_engine(settings.database_url)
    try:
        await _prepare_database(engine)
        sessionmaker = make_sessionmaker(engine)
        relay = OutboxRelay(sessionmaker, publish, backoff_max=settings.kafka_retry_backoff_max_s)
        runtime = RecordsRuntime(
            settings=settings, sessionmaker=sessionmaker, outbox=relay, topics=Topics.of(settings)
        )
        gauges = Periodic("records-review-backlog", BACKLOG_SECONDS, lambda: measure_backlog(sessionmaker))
        relay.start()
        gauges.start()
        try:
            await measure_backlog(sessionmaker)
            yield runtime
        finally:
            await gauges.stop()
            await relay.stop()
    finally:
        await engine.dispose()


async def measure_backlog(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The review backlog for ops (exportwatch_review_backlog, ..._oldest_seconds), per decision."""
    async with sessionmaker() as session:
        found = await backlog(session, now=datetime.now(UTC))
    for decision, waiting in found.items():
        REVIEW_BACKLOG.labels(decision).set(waiting.count)
        REVIEW_BACKLOG_OLDEST.labels(decision).set(round(waiting.oldest_seconds, 1))


def describe(runtime: RecordsRuntime | None) -> dict[str, Any]:
    return {"database": "ready" if runtime is not None else "not ready"}


def spec(settings: Settings) -> ServiceSpec[RecordsRuntime]:
    return ServiceSpec(
        name=SERVICE,
        title="Exportwatch records",
        summary="Decision trail of every export order (15 CFR 762), held-order queue and reviews",
        router=router,
        open_runtime=open_runtime,
        describe=describe,
        not_ready="the trail database is not ready yet",
        pages=pages(),
        # max_attempts=None: retry forever. A trail step must never be dropped (15 CFR 762.6)
        # because the database is briefly away; the partition waits instead.
        consumes=Consumes(
            ALL_TOPICS,
            lambda runtime: RecordsHandler(settings=settings, sessionmaker=runtime.sessionmaker),
            max_attempts=None,
        ),
    )


def create_app(
    settings: Settings | None = None, *, start_kafka: bool = True, publish: Publish | None = None
) -> FastAPI:
    """`publish`: how HTTP commands publish without Kafka (tests capture them)."""
    settings = settings or load_settings(SERVICE)
    app = build_app(spec(settings), settings, start_kafka=start_kafka, publish=publish)
    install_error_pages(app)
    return app


def main() -> None:
    run_service(SERVICE, create_app)
