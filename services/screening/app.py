"""The screening service: loads and indexes the lists once, then screens orders from Kafka and
names over HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from services.screening.api import ScreeningState, router
from services.screening.domain import ListCatalog, Screener, ScreeningPolicy, TokenIndex
from services.screening.handler import ScreeningHandler
from services.screening.lists import load_sources
from shared.events import TOPIC_CLASSIFIED
from shared.logging import configure_logging
from shared.policy import load_policy
from shared.service import KafkaStage, add_ops_routes
from shared.settings import Settings, load_settings

SERVICE = "screening"
log = logging.getLogger("exportwatch.screening")


def load_screening(settings: Settings) -> tuple[ListCatalog, Screener]:
    """Policy + configured list sources -> the catalogue and a screener over one token index."""
    started = time.perf_counter()
    policy = load_policy(settings.policy_file)
    screening_policy = ScreeningPolicy.from_section(policy.version, policy.section("screening"))
    loaded = load_sources(settings.require_data_dir(), settings.screening_sources)
    catalog = ListCatalog.of((source.info, source.entries) for source in loaded)
    index = TokenIndex.build(entry for source in loaded for entry in source.entries)
    screener = Screener(index, screening_policy, catalog.lists)
    log.info(
        "lists loaded and indexed in %.2fs: %d entries, %d names, %d tokens",
        time.perf_counter() - started, len(index.entries), len(index.names), len(index.postings),
    )  # fmt: skip
    return catalog, screener


def create_app(settings: Settings | None = None, *, start_kafka: bool = True) -> FastAPI:
    settings = settings or load_settings(SERVICE)
    state = ScreeningState()
    stage: KafkaStage | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal stage
        # Loading takes seconds of CPU: off the event loop, so /healthz answers meanwhile.
        catalog, screener = await asyncio.to_thread(load_screening, settings)
        state.catalog, state.screener = catalog, screener
        if start_kafka:
            stage = KafkaStage(settings, SERVICE, [TOPIC_CLASSIFIED], ScreeningHandler(settings, screener))
            await stage.start()
        try:
            yield
        finally:
            if stage is not None:
                await stage.stop()
                stage = None

    def readiness() -> tuple[bool, dict[str, Any]]:
        loaded = state.screener is not None
        detail: dict[str, Any] = {"lists_loaded": loaded}
        if not start_kafka:
            return loaded, detail
        if stage is None:
            return False, {**detail, "kafka": "not started"}
        ok, kafka = stage.ready()
        return loaded and ok, {**detail, **kafka}

    app = FastAPI(title="Exportwatch screening", lifespan=lifespan)
    app.state.screening = state
    app.include_router(router)
    add_ops_routes(app, SERVICE, readiness)
    return app


def main() -> None:
    settings = load_settings(SERVICE)
    configure_logging(SERVICE, settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
