"""POST /ccl/update against a local eCFR stand-in (tests/classifier_support.EcfrServer on 127.0.0.1):
fetch, rebuild, verify, cache, swap - and a failed or implausible fetch leaves the loaded CCL in force."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.classifier.app import create_app
from services.classifier.ecfr import main as ecfr_main
from shared.settings import Settings
from tests import classifier_support as support
from tests.auth_support import bearer


@pytest.fixture
def ecfr() -> Iterator[support.EcfrServer]:
    with support.EcfrServer() as server:
        yield server


def settings(tmp_path: Path, api_url: str) -> Settings:
    return Settings(
        catalog_database_url=f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}",
        ccl_cache_dir=tmp_path / "ccl",
        ecfr_api_url=api_url,
    )


async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=bearer()
        ) as client:
            yield client


@pytest.fixture
async def small_ccl_client(tmp_path: Path, ecfr: support.EcfrServer) -> AsyncIterator[httpx.AsyncClient]:
    # The stand-in serves 13 entries; the service would refuse them as a truncated CCL (see
    # test_a_rebuilt_ccl_that_is_not_plausible_is_refused), so this app accepts a small one.
    app = create_app(
        settings(tmp_path, ecfr.api_url), start_kafka=False, ccl_update_checks=(5, support.ECFR_ENTRIES)
    )
    async for client in client_for(app):
        yield client


async def test_update_fetches_rebuilds_caches_and_swaps_the_ccl(
    small_ccl_client: httpx.AsyncClient, ecfr: support.EcfrServer, tmp_path: Path
) -> None:
    before = (await small_ccl_client.get("/ccl")).json()["version"]
    assert before == support.ccl().version

    response = await small_ccl_client.post("/ccl/update")
    assert response.status_code == 200, response.text
    update = response.json()
    assert update["previous_version"] == before
    assert update["version"].startswith(f"ecfr-{support.ECFR_DATE}+sha256:")
    assert (update["entries"], update["entries_with_item_paragraphs"]) == (13, 10)
    assert update["source_url"] == f"{ecfr.api_url}/full/{support.ECFR_DATE}/title-15.xml?part=774"
    assert Path(update["cached_as"]).parent == tmp_path / "ccl"
    assert ecfr.requests == [
        "/api/versioner/v1/titles.json",
        "/api/versioner/v1/versions/title-15.json?part=774",
        f"/api/versioner/v1/full/{support.ECFR_DATE}/title-15.xml?part=774",
    ]

    # Every classification from now on is stamped with the new version and reads the new text.
    status = (await small_ccl_client.get("/ccl")).json()
    assert (status["version"], status["entries"]) == (update["version"], 13)
    line = (
        await small_ccl_client.post("/classify", json={"description": "widget", "eccn": "9A610.y.1"})
    ).json()
    assert (line["status"], line["ccl_version"], line["country_chart_columns"]) == (
        "classified",
        update["version"],
        ["AT1"],
    )
    eccn = (await small_ccl_client.get("/eccn/6A003.b.4.b")).json()
    assert eccn["paragraph_text"].startswith("Incorporating “focal plane arrays”")  # category 6 text
    assert eccn["ccl_version"] == update["version"]
    # Entries the fetched list does not have are now refused.
    assert (await small_ccl_client.get("/eccn/2B230")).status_code == 404


async def test_an_outage_leaves_the_loaded_ccl_in_force(
    small_ccl_client: httpx.AsyncClient, ecfr: support.EcfrServer, tmp_path: Path
) -> None:
    ecfr.status = 503
    response = await small_ccl_client.post("/ccl/update")
    assert response.status_code == 502
    assert "titles.json: HTTP 503" in response.json()["detail"]
    assert support.ccl().version in response.json()["detail"]
    assert (await small_ccl_client.get("/ccl")).json()["version"] == support.ccl().version
    assert not (tmp_path / "ccl").exists()


async def test_a_refused_connection_leaves_the_loaded_ccl_in_force(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/api/versioner/v1"
    app = create_app(settings(tmp_path, closed), start_kafka=False)
    async for client in client_for(app):
        response = await client.post("/ccl/update", json={"date": support.ECFR_DATE})
        assert response.status_code == 502
        assert "ConnectError" in response.json()["detail"]
        assert (await client.get("/ccl")).json()["version"] == support.ccl().version


async def test_a_rebuilt_ccl_that_is_not_plausible_is_refused(
    tmp_path: Path, ecfr: support.EcfrServer
) -> None:
    app = create_app(settings(tmp_path, ecfr.api_url), start_kafka=False)  # the production checks
    async for client in client_for(app):
        response = await client.post("/ccl/update")
        assert response.status_code == 502
        assert "13 entries, fewer than 500" in response.json()["detail"]
        assert (await client.get("/ccl")).json()["version"] == support.ccl().version


async def test_a_cached_update_is_loaded_at_the_next_start(tmp_path: Path, ecfr: support.EcfrServer) -> None:
    checks = (5, support.ECFR_ENTRIES)
    app = create_app(settings(tmp_path, ecfr.api_url), start_kafka=False, ccl_update_checks=checks)
    async for client in client_for(app):
        version = (await client.post("/ccl/update")).json()["version"]
    restarted = create_app(settings(tmp_path, ecfr.api_url), start_kafka=False)
    async for client in client_for(restarted):
        assert (await client.get("/readyz")).json()["ccl_version"] == version


async def test_a_malformed_date_is_refused_naming_the_field(small_ccl_client: httpx.AsyncClient) -> None:
    response = await small_ccl_client.post("/ccl/update", json={"date": "24.09.2026"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["body", "date"], "24.09.2026")


def test_the_update_command_reports_a_refusal_and_writes_nothing(
    ecfr: support.EcfrServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = ecfr_main(["--api-url", ecfr.api_url, "--cache-dir", str(tmp_path / "ccl")])
    assert status == 1
    assert "CCL not updated: the rebuilt CCL has 13 entries, fewer than 500" in capsys.readouterr().err
    assert not (tmp_path / "ccl").exists()
