"""The risk service: consumes orders.screened.v1, publishes orders.decided.v1, serves what-if checks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.risk.api import router
from services.risk.handler import RiskHandler
from services.risk.ledger import Ledger
from services.risk.service import SERVICE, RiskRuntime, load_runtime
from shared.events import TOPIC_SCREENED
from shared.kafka import Publish
from shared.service import Consumes, ServiceSpec, build_app, run_service
from shared.settings import Settings, load_settings

log = logging.getLogger("exportwatch.risk")


@asynccontextmanager
async def open_runtime(settings: Settings, publish: Publish) -> AsyncIterator[RiskRuntime]:
    started = time.perf_counter()
    runtime = await asyncio.to_thread(load_runtime, settings)
    log.info(
        "reference data and policy %s loaded in %.3fs",
        runtime.policy.version,
        time.perf_counter() - started,
        extra={"data_versions": dict(runtime.refdata.versions)},
    )
    runtime.ledger = Ledger.open(settings.risk_db_url())
    try:
        await runtime.ledger.create()
        yield runtime
    finally:
        await runtime.ledger.close()


def describe(runtime: RiskRuntime | None) -> dict[str, Any]:
    detail: dict[str, Any] = {"reference_data_loaded": runtime is not None}
    if runtime is not None:
        detail["policy_version"] = runtime.policy.version
        # Not a readiness condition: without Part 746, EAR99 lines to Russia/Belarus are held.
        detail["part746"] = (
            runtime.part746.version if runtime.part746 else f"not loaded: {runtime.part746_missing}"
        )
    return detail


def spec(settings: Settings) -> ServiceSpec[RiskRuntime]:
    return ServiceSpec(
        name=SERVICE,
        title="Exportwatch risk",
        summary="Licence determination and the final decision per order",
        router=router,
        open_runtime=open_runtime,
        describe=describe,
        not_ready="reference data and policy are not loaded yet",
        consumes=Consumes(
            [TOPIC_SCREENED],
            lambda runtime: RiskHandler(settings=settings, runtime=runtime),
        ),
        long_running=frozenset({"/part746/update"}),
    )


def create_app(settings: Settings | None = None, *, start_kafka: bool = True) -> FastAPI:
    settings = settings or load_settings(SERVICE)
    return build_app(spec(settings), settings, start_kafka=start_kafka)


def main() -> None:
    run_service(SERVICE, create_app)
