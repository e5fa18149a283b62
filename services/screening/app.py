"""The screening service: loads and indexes the lists, then screens orders from Kafka and names over
HTTP; follows reviewers' clearances and swaps in list updates while serving."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from services.screening import MATCHER_BUILD
from services.screening.api import ScreeningState, router
from services.screening.clearances import ClearanceFeed
from services.screening.domain import ListCatalog, Screener
from services.screening.handler import ScreeningHandler
from services.screening.registry import ListSnapshot, ScreeningRuntime, SourceStatus, load_initial
from shared.events import TOPIC_CLASSIFIED, TOPIC_DEADLETTER
from shared.kafka import Incoming, dead_letter_for
from shared.service import KafkaStage, add_ops_routes, run_service
from shared.settings import Settings, load_settings

SERVICE = "screening"
log = logging.getLogger("exportwatch.screening")


def policy_screener(snapshot: ListSnapshot) -> Screener:
    """The snapshot's index under the policy's own match limit (the runtime's screener returns a few
    more, to set cleared matches aside)."""
    return Screener(snapshot.screener.matcher, snapshot.policy, snapshot.catalog.lists)


def load_screening(settings: Settings) -> tuple[ListCatalog, Screener]:
    """The configured lists' catalogue and a screener over them (tests and benchmarks)."""
    snapshot, _ = load_initial(settings, now=datetime.now(UTC))
    return snapshot.catalog, policy_screener(snapshot)


def load_runtime(
    settings: Settings,
    http_transport: httpx.AsyncBaseTransport | None = None,
    lists: ListSnapshot | None = None,
) -> ScreeningRuntime:
    now = datetime.now(UTC)
    if lists is None:
        lists, status = load_initial(settings, now=now)
    else:
        status = {s.info.kind: SourceStatus(s.info.kind, s.info.folder, loaded_at=now) for s in lists.sources}
    return ScreeningRuntime(settings, lists, status, http_transport=http_transport)


def create_app(
    settings: Settings | None = None,
    *,
    start_kafka: bool = True,
    http_transport: httpx.AsyncBaseTransport | None = None,
    lists: ListSnapshot | None = None,
) -> FastAPI:
    """`http_transport`: how `lists update` reaches the publishers (tests inject a local one);
    `lists`: lists already loaded and indexed (tests share one load), else the configured ones."""
    settings = settings or load_settings(SERVICE)
    state = ScreeningState()
    stage: KafkaStage | None = None
    feed: ClearanceFeed | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal stage, feed
        log.info("matcher build: %s (%s)", MATCHER_BUILD.build, MATCHER_BUILD.detail)
        # Loading takes seconds of CPU: off the event loop, so /healthz answers meanwhile.
        runtime = await asyncio.to_thread(load_runtime, settings, http_transport, lists)
        state.runtime = runtime
        if start_kafka:
            kafka = KafkaStage(settings, SERVICE, [TOPIC_CLASSIFIED], ScreeningHandler(settings, runtime))
            stage = kafka
            runtime.publish = kafka.publish

            async def dead_letter(message: Incoming, error_type: str, error: str) -> None:
                await kafka.publish(
                    dead_letter_for(
                        message,
                        service=SERVICE,
                        error_type=error_type,
                        error=error,
                        topic=settings.topic(TOPIC_DEADLETTER),
                    )
                )

            feed = ClearanceFeed(settings, runtime.clearances, on_invalid=dead_letter)
            runtime.clearance_feed = feed
            feed.start()
            await stage.start()
        runtime.start_background()
        try:
            yield
        finally:
            await runtime.stop_background()
            if feed is not None:
                await feed.stop()
                feed = None
            if stage is not None:
                await stage.stop()
                stage = None

    def readiness() -> tuple[bool, dict[str, Any]]:
        loaded = state.runtime is not None
        detail: dict[str, Any] = {"lists_loaded": loaded}
        if loaded:
            assert state.runtime is not None
            detail["lists_generation"] = state.runtime.snapshot.generation
        if not start_kafka:
            return loaded, detail
        if stage is None or feed is None:
            return False, {**detail, "kafka": "not started"}
        ok, kafka = stage.ready()
        clearances_ok, clearances = feed.ready()
        # A failed list update is not a readiness matter: the previous lists keep serving (GET /lists).
        return loaded and ok and clearances_ok, {**detail, **kafka, **clearances}

    app = FastAPI(title="Exportwatch screening", lifespan=lifespan)
    app.state.screening = state
    app.include_router(router)
    add_ops_routes(app, SERVICE, readiness)
    return app


def main() -> None:
    run_service(SERVICE, create_app)
