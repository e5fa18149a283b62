"""The classifier HTTP API over the real CCL, with the catalog in a temporary SQLite file seeded
from samples/catalog.csv (no Kafka: start_kafka=False)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.classifier.app import create_app
from shared.settings import Settings
from tests import classifier_support as support
from tests.auth_support import bearer


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    folder = tmp_path_factory.mktemp("classifier")
    settings = Settings(
        catalog_database_url=f"sqlite+aiosqlite:///{folder / 'catalog.db'}",
        catalog_seed_csv=support.SEED_CSV,
        ccl_cache_dir=folder / "ccl",  # empty: the reference copy, whatever var/ccl holds
    )
    app = create_app(settings, start_kafka=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=bearer()) as c:
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
        "/classify", json={"description": "Capacitance manometer pressure transducer", "hs_code": "9026.20"}
    )
    line = response.json()
    assert (line["status"], line["source"], line["eccn"]) == ("unclassified", "none", None)
    first = line["suggestions"][0]
    assert first["eccn"].split(".")[0] == "2B230" and first["source"] in ("ccl", "eu_annex_i")
    assert {"eccn", "score", "heading", "matched_text", "source"} <= set(first)
    assert len(line["suggestions"]) <= 5 and line["ccl_version"] == support.ccl().version


async def test_classify_uses_the_hs_code_to_rank(client: httpx.AsyncClient) -> None:
    async def first(hs_code: str) -> str:
        body = {"description": "Sensor assembly", "hs_code": hs_code}
        return str((await client.post("/classify", json=body)).json()["suggestions"][0]["eccn"])

    assert (await first("8525.89")).startswith("6A003")
    assert (await first("9014.20")).startswith("7A")


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


async def test_eccn_lookup_gives_paragraph_text_from_the_ccl_or_else_the_eu_annex(
    client: httpx.AsyncClient,
) -> None:
    fpga = (await client.get("/eccn/3A001.a.7")).json()
    assert (fpga["paragraph_text_source"], fpga["paragraph_text"]) == (
        "ccl",
        "'Field programmable logic devices' having any of the following:",
    )
    # Category 6 has no item text in the reference CCL: the EU entry of the same number, labelled.
    camera = (await client.get("/eccn/6A003.b.4.b")).json()
    assert camera["paragraph_text_source"] == "eu_annex_i"
    assert camera["paragraph_text"].startswith('Incorporating "focal plane arrays"')
    assert (await client.get("/eccn/6A003")).json()["paragraph_text"] is None


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


async def test_a_withdrawn_sku_leaves_the_catalog_by_a_version_and_comes_back_by_another(
    client: httpx.AsyncClient,
) -> None:
    url = "/products/API-SKU-W"
    assert (await client.put(url, json={"eccn": "2B230", "classified_by": "A. Keller"})).status_code == 201
    before = (await client.get("/ccl")).json()["catalog_version"]
    withdrawn = await client.delete(url, params={"withdrawn_by": "M. Ortiz", "reason": "discontinued"})
    assert withdrawn.status_code == 200
    assert {
        k: withdrawn.json()[k] for k in ("version", "eccn", "classified_by", "rationale", "withdrawn")
    } == {
        "version": 2,
        "eccn": "2B230",
        "classified_by": "M. Ortiz",
        "rationale": "discontinued",
        "withdrawn": True,
    }
    gone = await client.get(url)
    assert (
        gone.status_code == 404 and "withdrawn from the product catalog (version 2" in gone.json()["detail"]
    )
    assert "API-SKU-W" not in {p["sku"] for p in (await client.get("/products")).json()}
    line = (await client.post("/classify", json={"description": "gauge", "sku": "API-SKU-W"})).json()
    assert (line["source"], line["eccn"]) == ("none", None)
    assert (await client.get("/ccl")).json()["catalog_version"] != before
    again = await client.delete(url, params={"withdrawn_by": "M. Ortiz"})
    assert (again.status_code, again.json()["version"]) == (200, 2)  # already withdrawn: no new version
    history = (await client.get(url + "/history")).json()
    assert [(v["version"], v["withdrawn"]) for v in history] == [(1, False), (2, True)]
    export = (await client.get("/products/export", params={"history": "true"})).text
    assert "API-SKU-W,2B230,M. Ortiz,discontinued,,2," in export and export.count("\n") > 2
    assert [r for r in export.splitlines() if r.startswith("API-SKU-W,")][1].endswith(",true")

    back = await client.put(url, json={"eccn": "2B230", "classified_by": "A. Keller"})
    assert (back.status_code, back.json()["version"], back.json()["withdrawn"]) == (201, 3, False)
    assert (await client.get(url)).json()["version"] == 3
    line = (await client.post("/classify", json={"description": "gauge", "sku": "API-SKU-W"})).json()
    assert (line["source"], line["eccn"]) == ("catalog", "2B230")


async def test_withdrawing_a_sku_the_catalog_never_had_is_404_and_needs_who(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.delete("/products/NO-SUCH-SKU", params={"withdrawn_by": "M. Ortiz"})
    assert missing.status_code == 404
    unnamed = await client.delete("/products/API-SKU-1")
    assert unnamed.status_code == 422
    assert unnamed.json()["detail"][0]["loc"] == ["query", "withdrawn_by"]


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
    assert body["eu_annex_version"] == support.eu_annex().version
    assert body["suggestion_texts"] == len(support.suggestions())
    assert body["entries"] == 633 and sum(body["entries_by_category"].values()) == 633
    assert "0A002" in body["itar_pointer_entries"]
    assert any(w.startswith("3A004: referenced by 3E001") for w in body["warnings"])


async def test_products_are_listed_by_entry_or_paragraph(client: httpx.AsyncClient) -> None:
    by_entry = (await client.get("/products", params={"eccn": "5a992"})).json()
    assert {p["sku"] for p in by_entry} >= {"NS-2448", "LAP-14"}
    assert all(p["eccn"].startswith("5A992") for p in by_entry)
    assert [p["sku"] for p in (await client.get("/products", params={"eccn": "6A003.b.4"})).json()] == [
        "TC-640"
    ]
    assert (await client.get("/products", params={"eccn": "6A003.c"})).json() == []
    assert len((await client.get("/products")).json()) >= 15


async def test_listing_by_a_malformed_eccn_is_refused_naming_the_parameter(client: httpx.AsyncClient) -> None:
    response = await client.get("/products", params={"eccn": "6A0O3"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["query", "eccn"], "6A0O3")


async def test_reference_documents_are_kept_per_version(client: httpx.AsyncClient) -> None:
    url = "/products/API-DOC-1"
    body = {"eccn": "3A001.a.7", "classified_by": "J. Brandt", "reference_documents": ["CCATS G123456"]}
    assert (await client.put(url, json=body)).status_code == 201
    # The same ECCN with another document is a change: a new version.
    more = {**body, "reference_documents": ["CCATS G123456", "Data sheet DS890 rev 1.4"]}
    assert (await client.put(url, json=more)).json()["version"] == 2
    history = (await client.get(url + "/history")).json()
    assert [v["reference_documents"] for v in history] == [
        ["CCATS G123456"],
        ["CCATS G123456", "Data sheet DS890 rev 1.4"],
    ]
    empty = await client.put(url, json={**body, "reference_documents": [" "]})
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"][:2] == ["body", "reference_documents"]


async def test_export_is_csv_that_imports_back_to_the_same_catalog(
    client: httpx.AsyncClient, tmp_path_factory: pytest.TempPathFactory
) -> None:
    await client.put(
        "/products/API-EXP-1",
        json={"eccn": "7A994", "classified_by": "J. Brandt", "rationale": "GNSS, 'COCOM' limits",
              "reference_documents": ["u-blox statement ; 2026", "Data sheet"]},
    )  # fmt: skip
    exported = await client.get("/products/export")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    snapshot = (await client.get("/ccl")).json()["catalog_version"]
    assert exported.headers["x-catalog-version"] == snapshot
    text = exported.text
    assert (
        text.splitlines()[0]
        == "sku,eccn,classified_by,rationale,reference_documents,version,classified_at,withdrawn"
    )

    folder = tmp_path_factory.mktemp("reimport")
    fresh = create_app(
        Settings(catalog_database_url=f"sqlite+aiosqlite:///{folder / 'c.db'}", ccl_cache_dir=folder / "ccl"),
        start_kafka=False,
    )
    async with fresh.router.lifespan_context(fresh):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fresh), base_url="http://t", headers=bearer()
        ) as other:
            imported = await other.post(
                "/products/import", content=text, headers={"content-type": "text/csv"}
            )
            assert imported.status_code == 200, imported.text
            again = (await other.get("/products/API-EXP-1")).json()
            assert again["rationale"] == "GNSS, 'COCOM' limits"
            original = {p["sku"]: p["eccn"] for p in (await client.get("/products")).json()}
            copied = {p["sku"]: p["eccn"] for p in (await other.get("/products")).json()}
            assert copied == original


async def test_history_export_has_every_version(client: httpx.AsyncClient) -> None:
    url = "/products/API-HIST-1"
    await client.put(url, json={"eccn": "EAR99", "classified_by": "A. Keller"})
    await client.put(url, json={"eccn": "2B230", "classified_by": "A. Keller"})
    rows = (await client.get("/products/export", params={"history": "true"})).text.splitlines()
    assert [r.split(",")[5] for r in rows if r.startswith("API-HIST-1,")] == ["1", "2"]
    current = (await client.get("/products/export")).text.splitlines()
    assert [r.split(",")[1] for r in current if r.startswith("API-HIST-1,")] == ["2B230"]


async def test_metrics_tell_how_old_the_ccl_in_use_is(client: httpx.AsyncClient) -> None:
    from datetime import UTC, datetime

    from prometheus_client.parser import text_string_to_metric_families

    issue_date = (await client.get("/ccl")).json()["version"].split("+")[0].removeprefix("ecfr-")
    before = datetime.now(UTC)
    metrics = (await client.get("/metrics")).text
    [family] = [
        f
        for f in text_string_to_metric_families(metrics)
        if f.name == "exportwatch_classifier_ccl_age_seconds"
    ]
    [sample] = family.samples
    expected = (before - datetime.fromisoformat(issue_date).replace(tzinfo=UTC)).total_seconds()
    assert expected > 0 and abs(sample.value - expected) < 60
