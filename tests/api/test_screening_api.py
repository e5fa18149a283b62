"""Screening HTTP API over ASGI, with the app's own lifespan loading the real lists (no Kafka)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.screening.app import create_app
from shared.settings import Settings


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), start_kafka=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


async def test_exact_sdn_name_is_a_block_match_with_evidence(client: httpx.AsyncClient) -> None:
    response = await client.post("/screen", json={"name": "DENA TANKERS FZE", "country": "AE"})

    assert response.status_code == 200
    body = response.json()
    assert body["normalised_tokens"] == ["dena", "tankers"]
    [match] = body["matches"]
    assert (match["list_id"], match["entry_id"], match["effect"], match["score"]) == (
        "SDN",
        "15145",
        "block",
        1.0,
    )
    assert match["list_version"].startswith("sha256:")
    assert match["evidence"]["country_agreement"] is True
    assert body["block_threshold"] <= match["score"]
    assert {(s["list_id"], s["published"]) for s in body["lists"]} >= {
        ("SDN", "2023-12-28"),
        ("SDN", "2026-07-31"),
    }


async def test_non_latin_name_is_screened_not_rejected(client: httpx.AsyncClient) -> None:
    response = await client.post("/screen", json={"name": "ДЕНА ТАНКЕРС", "type": "entity"})

    assert response.status_code == 200
    assert [m["entry_id"] for m in response.json()["matches"]] == ["15145"]


async def test_innocent_name_has_no_matches(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/screen", json={"name": "Bosch Rexroth AG", "country": "DE", "address": "Zum Eisengiesser 1"}
    )
    assert response.status_code == 200
    assert response.json()["matches"] == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": ""}, "name", "must not be empty"),
        ({"name": "x" * 513}, "name", "at most 512 characters"),
        ({"name": "DENA\x07TANKERS"}, "name", "control characters"),
        ({"name": "!!!"}, "name", "no letters or digits"),
        (
            {"name": "DENA TANKERS", "type": "company"},
            "type",
            "'individual', 'entity', 'vessel' or 'aircraft'",
        ),
        ({"name": "DENA TANKERS", "country": "XX"}, "country", "'XX' is not an ISO 3166-1 alpha-2"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, str], field: str, message: str
) -> None:
    response = await client.post("/screen", json=body)

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert message in error["msg"]


async def test_lists_report_each_source_with_version_date_counts_and_effects(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/lists")

    assert response.status_code == 200
    sources = {s["published"]: s for s in response.json()["sources"]}
    ofac, csl = sources["2023-12-28"], sources["2026-07-31"]
    assert ofac["kind"] == "ofac_sdn"
    assert ofac["version"].startswith("sha256:") and len(ofac["version"]) == len("sha256:") + 12
    assert ofac["rows_skipped"] == 0
    assert [(x["list_id"], x["entries"], x["aliases"], x["effect"]) for x in ofac["lists"]] == [
        ("SDN", 13821, 17088, "block")
    ]
    csl_lists = {x["list_id"]: x for x in csl["lists"]}
    assert set(csl_lists) == {
        "SDN",
        "EL",
        "DPL",
        "UVL",
        "MEU",
        "ISN",
        "DTC",
        "SSI",
        "CMIC",
        "PLC",
        "NS-MBS",
        "CAP",
    }
    assert (csl_lists["EL"]["entries"], csl_lists["EL"]["effect"]) == (3420, "licence")
    assert csl_lists["UVL"]["effect"] == "review"
    assert sum(x["entries"] for x in csl["lists"]) == csl["rows_read"] - csl["rows_skipped"] == 25921


async def test_entry_is_shown_from_every_source_that_carries_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/lists/SDN/entries/15145")

    assert response.status_code == 200
    records = response.json()["records"]
    assert {r["published"] for r in records} == {"2023-12-28", "2026-07-31"}
    assert {r["name"] for r in records} == {"DENA TANKERS FZE"}
    assert all(r["programs"] == ["IRAN"] and r["effect"] == "block" for r in records)


async def test_unknown_list_or_entry_is_404_naming_it(client: httpx.AsyncClient) -> None:
    unknown_list = await client.get("/lists/XYZ/entries/1")
    unknown_entry = await client.get("/lists/EL/entries/no-such-id")

    assert unknown_list.status_code == 404
    assert "list_id 'XYZ' is not loaded" in unknown_list.json()["detail"]
    assert unknown_entry.status_code == 404
    assert "entry_id 'no-such-id' is not on list 'EL'" in unknown_entry.json()["detail"]


async def test_ready_when_lists_are_loaded_without_kafka(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["lists_loaded"] is True
