"""The screening service: loads and indexes the lists, then screens orders from Kafka and names over
HTTP; follows reviewers' clearances and swaps in list updates while serving."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from services.screening import MATCHER_BUILD
from services.screening.api import router
from services.screening.clearances import ClearanceFollower
from services.screening.domain import ListCatalog, Screener
from services.screening.handler import ScreeningHandler, TopicRouter
from services.screening.registry import ListSnapshot, load_initial
from services.screening.rescreen import RescreenHandler
from services.screening.service import STAGE, ScreeningRuntime, build_runtime
from shared.events import TOPIC_CLASSIFIED, TOPIC_CLEARANCES, TOPIC_RESCREEN
from shared.kafka import Publish
from shared.service import Consumes, Follows, ServiceSpec, build_app, run_service
from shared.settings import Settings, load_settings

SERVICE = STAGE
log = logging.getLogger("exportwatch.screening")


def policy_screener(snapshot: ListSnapshot) -> Screener:
    """The snapshot's index under the policy's own match limit (the runtime's screener returns a few
    more, to set cleared matches aside)."""
    return Screener(snapshot.screener.matcher, snapshot.policy, snapshot.catalog.lists)


def load_screening(settings: Settings) -> tuple[ListCatalog, Screener]:
    """The configured lists' catalogue and a screener over them (tests and benchmarks)."""
    snapshot, _ = load_initial(settings, now=datetime.now(UTC))
    return snapshot.catalog, policy_screener(snapshot)


def runtime_opener(
    http_transport: httpx.AsyncBaseTransport | None, lists: ListSnapshot | None
) -> Callable[[Settings, Publish], AbstractAsyncContextManager[ScreeningRuntime]]:
    @asynccontextmanager
    async def open_runtime(settings: Settings, publish: Publish) -> AsyncIterator[ScreeningRuntime]:
        log.info("matcher build: %s (%s)", MATCHER_BUILD.build, MATCHER_BUILD.detail)
        # Loading takes seconds of CPU: off the event loop, so /healthz answers meanwhile.
        runtime = await asyncio.to_thread(
            build_runtime, settings, publish, lists, http_transport=http_transport
        )
        background = [p for p in (runtime.changes.retrying(), runtime.updater.refreshing()) if p is not None]
        for periodic in background:
            periodic.start()
        try:
            yield runtime
        finally:
            for periodic in background:
                await periodic.stop()

    return open_runtime


def describe(runtime: ScreeningRuntime | None) -> dict[str, Any]:
    # A failed list update is not a readiness matter: the previous lists keep serving (GET /lists).
    detail: dict[str, Any] = {"lists_loaded": runtime is not None}
    if runtime is not None:
        detail["lists_generation"] = runtime.snapshot.generation
        detail["clearances_in_book"] = len(runtime.clearances)
    return detail


def create_app(
    settings: Settings | None = None,
    *,
    start_kafka: bool = True,
    http_transport: httpx.AsyncBaseTransport | None = None,
    lists: ListSnapshot | None = None,
    publish: Publish | None = None,
) -> FastAPI:
    """`http_transport`: how `lists update` reaches the publishers (tests inject a local one);
    `lists`: lists already loaded and indexed (tests share one load), else the configured ones;
    `publish`: how events are published without Kafka (tests capture them)."""
    settings = settings or load_settings(SERVICE)
    spec = ServiceSpec(
        name=SERVICE,
        title="Exportwatch screening",
        summary="Every party of an order against the restricted-party and sanctions lists",
        router=router,
        open_runtime=runtime_opener(http_transport, lists),
        describe=describe,
        not_ready="screening lists are not loaded yet",
        consumes=Consumes(
            [TOPIC_CLASSIFIED, TOPIC_RESCREEN],
            lambda runtime: TopicRouter(
                {
                    settings.topic(TOPIC_CLASSIFIED): ScreeningHandler(settings, runtime),
                    settings.topic(TOPIC_RESCREEN): RescreenHandler(settings, runtime),
                }
            ),
        ),
        follows=[
            Follows(
                "clearances",
                [TOPIC_CLEARANCES],
                lambda runtime: ClearanceFollower(runtime.clearances),
                caught_up=lambda runtime: runtime.clearances_caught_up,
            )
        ],
        long_running=frozenset({"/lists/update"}),
    )
    return build_app(spec, settings, start_kafka=start_kafka, publish=publish)


def main() -> None:
    run_service(SERVICE, create_app)
