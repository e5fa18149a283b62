"""records: the trail database's only owner, its consumer of every topic, and its HTTP API (port 8004)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records.alerts import measure_alerts
from services.records.anchors import AnchorBook, Anchorer, AnchorFollower
from services.records.api import router
from services.records.dashboard import install_error_pages, pages
from services.records.handler import RecordsHandler
from services.records.models import create_schema
from services.records.outbox import OutboxRelay
from services.records.policy import load_records_policy
from services.records.queue import backlog
from services.records.rescreen import RescreenDispatcher
from services.records.reviews import Topics
from services.records.service import RecordsRuntime
from shared.db import make_engine, make_sessionmaker
from shared.events import TOPIC_ANCHORS, TOPIC_RESCREEN
from shared.kafka import Publish
from shared.service import Consumes, Follows, Periodic, ServiceSpec, build_app, run_service
from shared.settings import Settings, load_settings
from shared.topology import WIRING

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


# How often the review backlog gauges are refreshed from the database.
BACKLOG_SECONDS = 15.0


@asynccontextmanager
async def open_runtime(settings: Settings, publish: Publish) -> AsyncIterator[RecordsRuntime]:
    policy = load_records_policy(settings.policy_file)
    engine = make_engine(settings.database_url)
    try:
        # The schema migrated to its newest revision (shared/migrations.py: one instance at a time).
        await create_schema(engine)
        sessionmaker = make_sessionmaker(engine)
        relay = OutboxRelay(sessionmaker, publish, backoff_max=settings.kafka_retry_backoff_max_s)
        dispatcher = RescreenDispatcher(
            sessionmaker,
            publish,
            topic=settings.topic(TOPIC_RESCREEN),
            backoff_max=settings.kafka_retry_backoff_max_s,
        )
        anchorer = Anchorer(
            sessionmaker, publish, topic=settings.topic(TOPIC_ANCHORS), file=settings.anchor_file
        )
        runtime = RecordsRuntime(
            settings=settings,
            sessionmaker=sessionmaker,
            outbox=relay,
            topics=Topics.of(settings),
            policy=policy,
            anchors=AnchorBook(settings.anchor_file),
            rescreen=dispatcher,
            anchorer=anchorer,
        )
        background = [
            Periodic("records-review-backlog", BACKLOG_SECONDS, lambda: measure(sessionmaker)),
            Periodic("records-anchors", settings.anchor_interval_s, anchorer.anchor),
        ]
        relay.start()
        dispatcher.start()
        for periodic in background:
            periodic.start()
        try:
            await measure(sessionmaker)
            yield runtime
        finally:
            for periodic in background:
                await periodic.stop()
            await dispatcher.stop()
            await relay.stop()
    finally:
        await engine.dispose()


async def measure(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await measure_backlog(sessionmaker)
    await measure_alerts(sessionmaker)


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
            WIRING[SERVICE].consumes,
            lambda runtime: RecordsHandler(
                settings=settings,
                sessionmaker=runtime.sessionmaker,
                policy=runtime.policy,
                list_updated=runtime.rescreen.wake,
            ),
            max_attempts=None,
            gather_ms=settings.records_gather_ms,
        ),
        follows=[
            Follows("anchors", WIRING[SERVICE].follows, lambda runtime: AnchorFollower(runtime.anchors))
        ],
        before_stop=last_anchor,
    )


async def last_anchor(runtime: RecordsRuntime) -> None:
    """The head as records leaves it, anchored after the consumers stopped (nothing more is
    chained by this instance) and before the producer stops (so it is published, not only filed)."""
    await runtime.anchorer.anchor()


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
