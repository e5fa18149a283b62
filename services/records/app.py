"""records: the trail database's only owner, its consumer of every topic, and its HTTP API (port 8004)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.records.api import RecordsRuntime, router
from services.records.handler import RecordsHandler
from services.records.models import create_schema
from shared.db import make_engine, make_sessionmaker
from shared.events import ALL_TOPICS
from shared.service import KafkaStage, add_ops_routes, run_service
from shared.settings import Settings, load_settings

SERVICE = "records"
log = logging.getLogger("exportwatch.records")


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


def create_app(settings: Settings | None = None, *, start_kafka: bool = True) -> FastAPI:
    settings = settings or load_settings(SERVICE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        try:
            await _prepare_database(engine)
            sessionmaker = make_sessionmaker(engine)
            handler = RecordsHandler(settings=settings, sessionmaker=sessionmaker)
            # max_attempts=None: retry forever. A trail step must never be dropped (15 CFR 762.6)
            # because the database is briefly away; the partition waits instead.
            stage = (
                KafkaStage(settings, SERVICE, ALL_TOPICS, handler, max_attempts=None) if start_kafka else None
            )
            app.state.records = RecordsRuntime(settings=settings, sessionmaker=sessionmaker, stage=stage)
            if stage is not None:
                await stage.start()
            try:
                yield
            finally:
                if stage is not None:
                    await stage.stop()
        finally:
            await engine.dispose()

    def readiness() -> tuple[bool, dict[str, Any]]:
        runtime: RecordsRuntime | None = getattr(app.state, "records", None)
        detail: dict[str, Any] = {"database": "ready" if runtime is not None else "not ready"}
        if runtime is None or runtime.stage is None:
            return runtime is not None, detail
        kafka_ready, kafka = runtime.stage.ready()
        return kafka_ready, {**detail, **kafka}

    app = FastAPI(
        title="Exportwatch records",
        summary="Decision trail of every export order (15 CFR 762), held-order queue and reviews",
        lifespan=lifespan,
    )
    app.include_router(router)
    add_ops_routes(app, SERVICE, readiness)
    return app


def main() -> None:
    run_service(SERVICE, create_app)
