"""The risk HTTP API over the real reference data (no Kafka: start_kafka=False)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.risk.app import create_app
from shared.policy import load_policy
from shared.settings import Settings
from tests import risk_samples as s
from tests.auth_support import bearer
from tests.risk_support import sqlite_url


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    folder = tmp_path_factory.mktemp("risk-api")
    app = create_app(
        Settings(risk_database_url=sqlite_url(folder), part746_cache_dir=folder / "part746"),
        start_kafka=False,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=bearer()) as c:
            yield c


async def test_ready_once_reference_data_is_loaded(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["reference_data_loaded"] is True


async def test_assess_returns_the_decision(client: httpx.AsyncClient, data_dir: Path) -> None:
    order = s.order("CN")
    body = s.screened_event(
        order, s.classification(s.classified(data_dir, 1, "6A003.b.4.b")), s.screening(order)
    )
    response = await client.post("/assess", json=body)
    assert response.status_code == 200
    decision = response.json()
    assert decision["decision"] == "LICENSE_REQUIRED"
    assert decision["line_determinations"][0]["columns_applicable"] == ["NS2", "NP1", "RS1", "RS2"]


async def test_assess_accepts_order_classification_screening_without_envelope(
    client: httpx.AsyncClient, data_dir: Path
) -> None:
    order = s.order("IR")
    event = s.screened_event(order, s.classification(s.ear99(1)), s.screening(order))
    body = {k: event[k] for k in ("order", "classification", "screening")}
    response = await client.post("/assess", json=body)
    assert response.status_code == 200
    assert response.json()["decision"] == "BLOCK"


async def test_assess_rejects_a_bad_country_naming_field_and_value(client: httpx.AsyncClient) -> None:
    order = s.order("DE")
    event = s.screened_event(order, s.classification(s.ear99(1)), s.screening(order))
    event["order"]["destination_country"] = "XX"
    response = await client.post("/assess", json=event)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "order", "destination_country"] and error["input"] == "XX"


async def test_policy_shows_version_and_content(client: httpx.AsyncClient) -> None:
    policy = load_policy(Settings().policy_file)
    response = await client.get("/policy")
    assert response.status_code == 200
    assert response.json() == {"version": policy.version, "content": policy.content}


async def test_country_hong_kong_shows_the_china_row(client: httpx.AsyncClient) -> None:
    response = await client.get("/countries/HK")
    assert response.status_code == 200
    body = response.json()
    assert (body["chart_row_iso2"], body["chart_row"]["country"]) == ("CN", "China")
    assert "85 FR 83788" in body["inheritance"]
    assert body["embargoed"] is False and "D:5" in body["country_groups"]


async def test_country_cuba_is_embargoed(client: httpx.AsyncClient) -> None:
    body = (await client.get("/countries/CU")).json()
    assert body["embargoed"] is True and body["country_groups"][-1] == "E:2"
    assert body["chart_row"]["columns_marked"] == [] and "part 746" in body["chart_row"]["embargo_pointer"]


@pytest.mark.parametrize("code", ["de", "DEU", "D1"])
async def test_country_malformed_code_is_422(client: httpx.AsyncClient, code: str) -> None:
    response = await client.get(f"/countries/{code}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "iso2"]


@pytest.mark.parametrize("code", ["ZZ", "GL"])
async def test_country_unknown_to_the_data_is_404(client: httpx.AsyncClient, code: str) -> None:
    response = await client.get(f"/countries/{code}")
    assert response.status_code == 404
    assert "UNKNOWN_DESTINATION_ROW" in response.json()["detail"]


async def test_refdata_lists_versions(client: httpx.AsyncClient) -> None:
    body = (await client.get("/refdata")).json()
    assert body["chart_rows"] == 200 and body["versions"]["country_chart"].startswith("sha256:")
