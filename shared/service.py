"""What every service has in common: the Kafka stage it runs and its ops endpoints.

A service's app.py builds its domain objects, wraps its handler in a `KafkaStage` and calls
`add_ops_routes`. The HTTP side starts even while the broker is away; `/readyz` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from shared import metrics
from shared.kafka import ConsumerRunner, Handler, Outgoing, make_producer, start_with_retry
from shared.logging import configure_logging
from shared.settings import Settings, load_settings

log = logging.getLogger("exportwatch.service")

ReadinessCheck = Callable[[], tuple[bool, dict[str, Any]]]


@dataclass
class KafkaStage:
    settings: Settings
    service: str
    topics: Sequence[str]
    handler: Handler
    max_attempts: int | None = 8
    producer: AIOKafkaProducer | None = None
    runner: ConsumerRunner | None = None
    producer_started: bool = False
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self.producer = make_producer(self.settings)
        self.runner = ConsumerRunner(
            settings=self.settings,
            service=self.service,
            topics=[self.settings.topic(t) for t in self.topics],
            handler=self.handler,
            producer=self.producer,
            max_attempts=self.max_attempts,
            stop_event=self._stop,
        )
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-consumer")

    async def _run(self) -> None:
        assert self.producer is not None and self.runner is not None
        if not await start_with_retry(
            self.producer,
            what="producer",
            stop=self._stop,
            backoff_max=self.settings.kafka_retry_backoff_max_s,
        ):
            return
        self.producer_started = True
        while not self._stop.is_set():
            try:
                await self.runner.run()
            except Exception:
                # The loop must outlive any single failure; log loudly and come back.
                log.exception("consumer loop failed; restarting in 2s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=2.0)

    async def publish(self, outgoing: Outgoing) -> None:
        """Publish one event and wait for the broker's acknowledgement (used by HTTP actions)."""
        if self.producer is None or not self.producer_started:
            raise RuntimeError("Kafka producer is not connected")
        await self.producer.send_and_wait(outgoing.topic, value=outgoing.value, key=outgoing.key.encode())
        metrics.EVENTS_OUT.labels(self.service, outgoing.topic).inc()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=30)
        if self.producer is not None:
            # Also closes a producer that never connected, so no client is left unclosed.
            with contextlib.suppress(Exception):
                await self.producer.stop()
        self.producer_started = False

    def ready(self) -> tuple[bool, dict[str, Any]]:
        if self.runner is None:
            return False, {"kafka": "not started"}
        ok, detail = self.runner.ready()
        detail["producer_connected"] = self.producer_started
        return ok and self.producer_started, detail


def add_ops_routes(app: FastAPI, service: str, readiness: ReadinessCheck) -> None:
    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["ops"], summary="Readiness: broker connected and partitions assigned")
    async def readyz() -> JSONResponse:
        ok, detail = readiness()
        return JSONResponse({"ready": ok, "service": service, **detail}, status_code=200 if ok else 503)

    # Documented as text (the Prometheus exposition format), which it is, not as JSON.
    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(content=body, media_type=content_type)


def run_service(service: str, create_app: Callable[[Settings], FastAPI]) -> None:
    """`python -m services.<name>`: settings from the environment, JSON logs, uvicorn."""
    settings = load_settings(service)
    configure_logging(service, settings.log_level)
    # log_config=None: uvicorn keeps the JSON handler configured above instead of its own.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
