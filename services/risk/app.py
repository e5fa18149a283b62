"""The risk service: consumes orders.screened.v1, publishes orders.decided.v1, serves what-if checks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.risk.api import RiskRuntime, router
from services.risk.domain import RiskPolicy
from services.risk.handler import SERVICE, RiskHandler
from services.risk.refdata import load_reference_data
from shared.events import TOPIC_SCREENED
from shared.policy import load_policy
from shared.service import KafkaStage, add_ops_routes, run_service
from shared.settings import Settings, load_settings

log = logging.getLogger("exportwatch.risk")


def load_runtime(settings: Settings) -> RiskRuntime:
    refdata = load_reference_data(settings.require_data_dir())
    policy = load_policy(settings.policy_file)
    risk_policy = RiskPolicy.from_policy(policy)
    unknown = [g for g in risk_policy.embargo_country_groups if g not in refdata.group_names]
    if unknown:
        raise ValueError(
            f"policy {policy.version}: risk.embargo_country_groups {unknown} are not Country Groups"
        )
    return RiskRuntime(refdata=refdata, policy=policy, risk_policy=risk_policy)


def create_app(settings: Settings | None = None, *, start_kafka: bool = True) -> FastAPI:
    settings = settings or load_settings(SERVICE)
    stage: KafkaStage | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal stage
        started = time.perf_counter()
        runtime = await asyncio.to_thread(load_runtime, settings)
        app.state.risk = runtime
        log.info(
            "reference data and policy %s loaded in %.3fs",
            runtime.policy.version,
            time.perf_counter() - started,
            extra={"data_versions": dict(runtime.refdata.versions)},
        )
        if start_kafka:
            handler = RiskHandler(settings=settings, refdata=runtime.refdata, policy=runtime.risk_policy)
            stage = KafkaStage(settings, SERVICE, [TOPIC_SCREENED], handler)
            await stage.start()
        try:
            yield
        finally:
            if stage is not None:
                await stage.stop()
                stage = None
            app.state.risk = None

    app = FastAPI(
        title="Exportwatch risk",
        summary="Licence determination and the final decision per order",
        lifespan=lifespan,
    )
    app.state.risk = None
    app.include_router(router)

    def readiness() -> tuple[bool, dict[str, Any]]:
        runtime: RiskRuntime | None = app.state.risk
        loaded = runtime is not None
        detail: dict[str, Any] = {"reference_data_loaded": loaded}
        if runtime is not None:
            detail["policy_version"] = runtime.policy.version
        if not start_kafka:
            return loaded, detail
        if stage is None:
            return False, {**detail, "kafka": "not started"}
        ok, kafka = stage.ready()
        return loaded and ok, {**detail, **kafka}

    add_ops_routes(app, SERVICE, readiness)
    return app


def main() -> None:
    run_service(SERVICE, create_app)
