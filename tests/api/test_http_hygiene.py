"""What every service's HTTP side does alike (shared/hygiene.py, put around every app by build_app):
body limits, request timeouts, no stack traces in answers, 503 for a dependency that is away,
security headers. On a tiny app built inline, like tests/api/test_service_scaffold.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

import shared.logging
from shared.auth import require
from shared.db import make_engine
from shared.kafka import Publish
from shared.service import ServiceSpec, build_app
from shared.settings import Settings
from tests.auth_support import bearer

router = APIRouter()
SECRET = "Ivan Petrovich Sidorov"


@router.post("/echo", dependencies=[require("reviewer")])
async def echo(request: Request) -> dict[str, int]:
    return {"received": len(await request.body())}


@router.get("/boom")
async def boom() -> None:
    raise ValueError(f"could not screen {SECRET}")


@router.get("/database")
async def database() -> None:
    raise OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "Connection refused"))


@router.get("/slow")
async def slow() -> dict[str, str]:
    await asyncio.sleep(5)
    return {"done": "late"}


@router.post("/update", dependencies=[require("admin")])
async def update() -> dict[str, str]:
    await asyncio.sleep(0.5)
    return {"done": "in its own time"}


@router.get("/page", response_class=HTMLResponse)
async def page() -> str:
    return "<html><body>hello</body></html>"


@asynccontextmanager
async def open_runtime(settings: Settings, publish: Publish) -> AsyncIterator[None]:
    yield None


SPEC = ServiceSpec(
    name="tiny",
    title="tiny",
    summary="a tiny service",
    router=router,
    open_runtime=open_runtime,
    describe=lambda runtime: {},
    not_ready="not yet",
    long_running=frozenset({"/update"}),
)


def _client(**settings: Any) -> httpx.AsyncClient:
    app = build_app(SPEC, Settings(**settings), start_kafka=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t", headers=bearer())


async def test_a_body_over_the_limit_is_refused_with_413_naming_the_limit() -> None:
    async with _client(http_max_body_bytes=2048) as c:
        assert (await c.post("/echo", content=b"x" * 2048)).json() == {"received": 2048}
        declared = await c.post("/echo", content=b"x" * 2049)
        assert declared.status_code == 413
        assert "limit of 2048 bytes" in declared.json()["detail"]
        assert "EXPORTWATCH_HTTP_MAX_BODY_BYTES" in declared.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(5):
                yield b"x" * 1000

        streamed = await c.post("/echo", content=chunks())
        assert streamed.status_code == 413 and "limit of 2048 bytes" in streamed.json()["detail"]


async def test_a_request_without_an_answer_in_time_is_cancelled_with_503() -> None:
    async with _client(http_request_timeout_s=0.2) as c:
        late = await c.get("/slow")
        assert late.status_code == 503 and late.headers["retry-after"] == "5"
        assert "longer than 0.2 s" in late.json()["detail"]
        # A long-running operation of the service's own is exempt.
        assert (await c.post("/update")).json() == {"done": "in its own time"}


async def test_an_unhandled_error_is_a_500_with_an_error_id_and_no_stack_or_personal_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="exportwatch.http")
    async with _client() as c:
        failed = await c.get("/boom")
    body = failed.json()
    assert failed.status_code == 500 and set(body) == {"detail", "error_id"}
    assert body["error_id"] in body["detail"]
    assert "Traceback" not in failed.text and SECRET not in failed.text and "boom" not in failed.text
    [record] = [r for r in caplog.records if getattr(r, "error_id", None) == body["error_id"]]
    assert "ValueError" in record.getMessage() and SECRET not in record.getMessage()
    assert "in boom" in record.stack  # type: ignore[attr-defined]


async def test_personal_data_is_logged_only_when_allowed(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared.logging, "_personal_data", True)  # EXPORTWATCH_LOG_PERSONAL_DATA=true
    caplog.set_level(logging.ERROR, logger="exportwatch.http")
    async with _client() as c:
        error_id = (await c.get("/boom")).json()["error_id"]
    [record] = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert SECRET in record.getMessage()


async def test_a_database_that_is_away_is_a_503_naming_it() -> None:
    async with _client() as c:
        away = await c.get("/database")
    assert away.status_code == 503 and away.headers["retry-after"] == "5"
    assert away.json()["detail"].startswith("tiny: the database is unavailable (OperationalError)")


async def test_security_headers_on_every_answer_and_a_content_security_policy_on_pages() -> None:
    async with _client() as c:
        page = await c.get("/page")
        api = await c.post("/echo", content=b"{}")
        docs = await c.get("/docs")
    for answer in (page, api, docs):
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert "content-security-policy" not in api.headers
    # The API docs load Swagger UI from its CDN: allowed there, and only there.
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]


async def test_database_errors_do_not_quote_their_parameters_unless_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def failing_insert() -> str:
        engine = make_engine("sqlite+aiosqlite://")
        try:
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE parties (name TEXT UNIQUE)"))
                for _ in range(2):
                    await connection.execute(text("INSERT INTO parties VALUES (:name)"), {"name": SECRET})
        except IntegrityError as exc:
            return str(exc)
        finally:
            await engine.dispose()
        raise AssertionError("the second insert was not refused")

    assert SECRET not in await failing_insert()
    monkeypatch.setattr(shared.logging, "_personal_data", True)
    assert SECRET in await failing_insert()
