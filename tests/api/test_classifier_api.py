"""The classifier HTTP API over the real CCL, with the catalog in a temporary SQLite file seeded
from samples/catalog.csv (no Kafka: start_kafka=False)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.classifier.app import create_app
from shared.settings import Settings
from tests import classifier_support as support


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    database = tmp_path_factory.mktemp("classifier") / "catalog.db"
    settings = Settings(
        catalog_database_url=f"sqlite+aiosqlite:///{database}", catalog_seed_csv=support.SEED_CSV
    )
    app = create_app(settings, start_kafka=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_ready_once_the_ccl_and_the_seeded_catalog_are_loaded(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ccl_version"] == support.ccl().version
    assert body["catalog_version"].startswith("15-skus+sha256:")


async def test_classify_prefers_the_catalog_over_a_disagreeing_erp_eccn(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/classify", json={"description": "Uncooled thermal imaging camera", "sku": "TC-640", "eccn": "EAR99"}
    )
    assert response.status_code == 200
    line = response.json()
    assert (line["source"], line["status"], line["eccn"]) == ("catalog", "classified", "6A003.b.4.b")
    assert line["country_chart_columns"] == ["NS2", "RS1", "RS2", "AT1"]
    assert "'EAR99'" in line["discrepancy"]
    assert line["ccl_version"] == support.ccl().version and line["catalog_version"].startswith("15-skus")


async def test_classify_without_any_eccn_suggests_candidates(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/classify", json={"description": "Capacitance manometer pressure transducer"}
    )
    line = response.json()
    assert (line["status"], line["source"], line["eccn"]) == ("unclassified", "none", None)
    assert line["suggestions"][0]["eccn"] == "2B230"


async def test_classify_reports_an_invalid_erp_eccn(client: httpx.AsyncClient) -> None:
    line = (await client.post("/classify", json={"description": "widget", "eccn": "3F001"})).json()
    assert line["status"] == "invalid" and "'3F001'" in line["error"]


async def test_classify_refuses_a_bad_hs_code_naming_field_and_value(client: httpx.AsyncClient) -> None:
    response = await client.post("/classify", json={"description": "widget", "hs_code": "85x"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["body", "hs_code"], "85x")


async def test_eccn_lookup_shows_the_rows_that_apply_to_the_paragraph(client: httpx.AsyncClient) -> None:
    response = await client.get("/eccn/0A501.y.1")
    assert response.status_code == 200
    body = response.json()
    assert (body["eccn"], body["entry"]) == ("0A501.y.1", "0A501")
    assert body["country_chart_columns"] == ["AT1"]
    assert body["entry_country_chart_columns"] == ["NS1", "RS1", "FC1", "AT1"]
    applies = {row["country_chart_column"]: row["applies"] for row in body["license_requirements"]}
    assert applies == {"NS1": False, "RS1": False, "FC1": False, None: True, "AT1": True}
    assert body["related_controls"].startswith("(1) See USML Category I")


async def test_eccn_lookup_of_ear99_explains_it_is_not_listed(client: httpx.AsyncClient) -> None:
    body = (await client.get("/eccn/ear99")).json()
    assert body["eccn"] == "EAR99" and "734.3(c)" in body["heading"]


async def test_eccn_lookup_of_an_entry_not_on_the_ccl_is_404_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/eccn/3A004")
    assert response.status_code == 404
    assert "3A004 is not on the Commerce Control List" in response.json()["detail"]


async def test_eccn_lookup_of_a_malformed_code_is_422_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/eccn/3F001")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["path", "code"], "3F001")
    assert "product group 'F'" in error["msg"]


async def test_product_versions_are_kept_and_the_handler_snapshot_follows(client: httpx.AsyncClient) -> None:
    url = "/products/API-SKU-1"
    assert (await client.get(url)).status_code == 404
    before = (await client.get("/ccl")).json()["catalog_version"]
    body = {"eccn": "ear99", "classified_by": "A. Keller"}
    created = await client.put(url, json=body)
    assert (created.status_code, created.json()["version"], created.json()["eccn"]) == (201, 1, "EAR99")
    assert (await client.put(url, json=body)).status_code == 200  # the same again: no new version
    changed = await client.put(url, json={**body, "eccn": "2B230", "rationale": "manometer"})
    assert (changed.status_code, changed.json()["version"]) == (201, 2)

    assert (await client.get(url)).json()["eccn"] == "2B230"
    history = (await client.get(url + "/history")).json()
    assert [(v["version"], v["eccn"]) for v in history] == [(1, "EAR99"), (2, "2B230")]
    line = (await client.post("/classify", json={"description": "gauge", "sku": "API-SKU-1"})).json()
    assert (line["source"], line["eccn"]) == ("catalog", "2B230")
    assert line["catalog_version"] != before


async def test_product_with_an_eccn_not_on_the_ccl_is_refused_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.put("/products/API-SKU-2", json={"eccn": "3A004", "classified_by": "A. Keller"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["body", "eccn"], "3A004")
    assert (await client.get("/products/API-SKU-2/history")).status_code == 404


async def test_csv_import_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    good = "sku,eccn,classified_by,rationale\nAPI-CSV-1,7A994,J. Brandt,GNSS\n"
    response = await client.post("/products/import", content=good, headers={"content-type": "text/csv"})
    assert response.status_code == 200
    assert response.json()["created"] == ["API-CSV-1"]

    bad = good.replace("API-CSV-1", "API-CSV-2") + "API-CSV-3,9Z999,J. Brandt,typo\n"
    refused = await client.post("/products/import", content=bad, headers={"content-type": "text/csv"})
    assert refused.status_code == 422
    assert "line 3: eccn '9Z999'" in refused.json()["detail"][0]["msg"]
    assert (await client.get("/products/API-CSV-2")).status_code == 404

    as_json = await client.post("/products/import", json={"csv": good})
    assert as_json.status_code == 415


async def test_ccl_status_reports_version_counts_and_data_warnings(client: httpx.AsyncClient) -> None:
    body = (await client.get("/ccl")).json()
    assert body["version"] == support.ccl().version
    assert body["entries"] == 633 and sum(body["entries_by_category"].values()) == 633
    assert "0A002" in body["itar_pointer_entries"]
    assert any(w.startswith("3A004: referenced by 3E001") for w in body["warnings"])
