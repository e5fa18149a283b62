"""The service scaffold (shared/service.py) on a tiny app built inline: the runtime dependency
answers 503 until the lifespan opened the runtime, /readyz is composed from the parts, and commands
publish through the app's publisher (a stand-in here, "not connected" by default); the producer's
readiness follows the broker after start-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Annotated, Any, cast

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi import APIRouter, Depends

from shared import service
from shared.auth import require
from shared.kafka import Outgoing, Publish, PublishError
from shared.service import Bus, PublishDep, ServiceSpec, build_app, compose, runtime_dependency
from shared.settings import Settings
from tests.auth_support import bearer


@dataclass(frozen=True)
class Runtime:
    greeting: str


RuntimeDep = Annotated[Runtime, Depends(runtime_dependency(Runtime))]
router = APIRouter()


@router.get("/greeting")
async def greeting(runtime: RuntimeDep) -> dict[str, str]:
    return {"greeting": runtime.greeting}


@router.post("/announce", dependencies=[require("reviewer")])
async def announce(publish: PublishDep) -> dict[str, str]:
    try:
        await publish(Outgoing("t", "k", b"v"))
    except PublishError as exc:
        return {"published": "no", "why": str(exc)}
    return {"published": "yes"}


@asynccontextmanager
async def open_runtime(settings: Settings, publish: Publish) -> AsyncIterator[Runtime]:
    yield Runtime("hello")


def describe(runtime: Runtime | None) -> dict[str, Any]:
    return {"greeting_loaded": runtime is not None}


SPEC = ServiceSpec(
    name="tiny",
    title="tiny",
    summary="a tiny service",
    router=router,
    open_runtime=open_runtime,
    describe=describe,
    not_ready="the greeting is not loaded yet",
)


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", headers=bearer())


async def test_routes_answer_503_until_the_runtime_is_open_then_use_it() -> None:
    app = build_app(SPEC, Settings(), start_kafka=False)
    async with client(app) as c:
        before = await c.get("/greeting")
        assert (before.status_code, before.json()["detail"]) == (503, "the greeting is not loaded yet")
        assert (await c.get("/readyz")).json() == {
            "ready": False,
            "service": "tiny",
            "greeting_loaded": False,
        }
        async with app.router.lifespan_context(app):
            assert (await c.get("/greeting")).json() == {"greeting": "hello"}
            ready = await c.get("/readyz")
            assert (ready.status_code, ready.json()["greeting_loaded"]) == (200, True)
        assert (await c.get("/greeting")).status_code == 503


async def test_commands_publish_through_the_apps_publisher() -> None:
    sent: list[Outgoing] = []

    async def publish(outgoing: Outgoing) -> None:
        sent.append(outgoing)

    async with client(build_app(SPEC, Settings(), start_kafka=False)) as c:
        refused = (await c.post("/announce")).json()
        assert refused["published"] == "no" and "not connected" in refused["why"]
    async with client(build_app(SPEC, Settings(), start_kafka=False, publish=publish)) as c:
        assert (await c.post("/announce")).json() == {"published": "yes"}
    assert sent == [Outgoing("t", "k", b"v")]


@pytest.mark.parametrize(
    ("parts", "ready"),
    [
        ([lambda: (True, {"a": 1}), lambda: (True, {"b": 2})], True),
        ([lambda: (True, {"a": 1}), lambda: (False, {"b": 2})], False),
    ],
)
def test_readiness_is_every_part_ready_with_every_parts_detail(parts: Any, ready: bool) -> None:
    assert compose(parts) == (ready, {"a": 1, "b": 2})


class _Client:
    """The producer's client as the Bus asks it: answers metadata requests while `up`."""

    def __init__(self) -> None:
        self.up = True
        self.asked = 0

    async def force_metadata_update(self) -> bool:
        self.asked += 1
        if not self.up:
            raise KafkaConnectionError("no broker")
        return True


async def test_readiness_follows_a_broker_lost_after_start_up_and_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "BROKER_PROBE_INTERVAL_S", 0.02)
    monkeypatch.setattr(service, "BROKER_SILENCE_S", 0.3)
    client = _Client()
    bus = Bus(Settings(), "tiny")
    bus.connected.set()
    bus.last_contact = time.monotonic()
    watching = asyncio.create_task(bus._watch_broker(cast(Any, SimpleNamespace(client=client))))
    try:
        await asyncio.sleep(0.2)
        assert bus.ready() == (True, {"producer_connected": True, "broker_reachable": True})
        client.up = False
        await asyncio.sleep(0.5)
        ready, detail = bus.ready()
        assert not ready and detail["broker_reachable"] is False and detail["broker_silent_s"] >= 0.3
        client.up = True
        await asyncio.sleep(0.2)
        assert bus.ready()[0] and client.asked > 10
    finally:
        await bus.stop()
        await asyncio.wait_for(watching, timeout=1)
