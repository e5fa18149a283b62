"""Screening HTTP API over ASGI, with the app's own lifespan loading the real lists (no Kafka).

Two apps: one with all six configured sources from the data directory (counts, screening, clearances),
and a small one (UN + DPL from a temporary data directory) whose lists are updated from a local
stand-in publisher while it serves.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.screening.app import create_app
from services.screening.service import ScreeningRuntime
from services.screening.update import main as update_main
from shared.kafka import Outgoing
from shared.service import get_publish
from shared.settings import Settings
from tests.auth_support import bearer
from tests.screening_support import PublisherMirror, loaded_lists, publisher_mirror


def runtime_of(app: FastAPI) -> ScreeningRuntime:
    runtime = app.state.runtime
    assert isinstance(runtime, ScreeningRuntime)
    return runtime


@pytest.fixture(scope="module")
async def app() -> AsyncIterator[FastAPI]:
    # The lists every screening test shares (loaded once per session), behind the app's own lifespan.
    application = create_app(Settings(), start_kafka=False, lists=loaded_lists())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers=bearer()
    ) as c:
        yield c


# --- screening -----------------------------------------------------------------------------------


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
    assert re.fullmatch(r"[0-9a-f]{16}", match["entry_version"])
    assert match["evidence"]["country_agreement"] is True
    assert body["block_threshold"] <= match["score"]
    assert {(s["list_id"], s["published"]) for s in body["lists"]} >= {
        ("SDN", "2023-12-28"),
        ("SDN", "2026-07-31"),
        ("UN", "2026-02-27"),
        ("UK", "2025-04-10"),
    }


async def test_non_latin_name_is_screened_not_rejected(client: httpx.AsyncClient) -> None:
    response = await client.post("/screen", json={"name": "ДЕНА ТАНКЕРС", "type": "entity"})

    assert response.status_code == 200
    assert [m["entry_id"] for m in response.json()["matches"]] == ["15145"]


async def test_un_entry_is_found_by_its_original_script_name(client: httpx.AsyncClient) -> None:
    response = await client.post("/screen", json={"name": "صدام حسين التكريتي"})

    assert response.status_code == 200
    assert ("UN", "IQi.001") in {(m["list_id"], m["entry_id"]) for m in response.json()["matches"]}


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


async def test_batch_screens_each_party_on_one_list_version(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/screen/batch",
        json={
            "parties": [
                {"name": "DENA TANKERS FZE", "country": "AE"},
                {"name": "Bosch Rexroth AG", "country": "DE"},
                {"name": "ДЕНА ТАНКЕРС", "type": "entity"},
            ]
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert [[m["entry_id"] for m in r["matches"]] for r in body["results"]] == [["15145"], [], ["15145"]]
    assert body["lists_generation"] >= 1 and len(body["lists"]) >= 6


async def test_batch_over_1000_parties_is_422_naming_the_count(client: httpx.AsyncClient) -> None:
    response = await client.post("/screen/batch", json={"parties": [{"name": "ACME"}] * 1001})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "parties"]
    assert "at most 1000" in error["msg"] and "1001" in error["msg"]


async def test_batch_names_the_bad_party_by_position(client: httpx.AsyncClient) -> None:
    response = await client.post("/screen/batch", json={"parties": [{"name": "ACME"}, {"name": ""}]})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "parties", 1, "name"]


# --- lists -----------------------------------------------------------------------------------------


async def test_all_six_formats_load_with_the_publishers_counts(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get("/lists")

    assert response.status_code == 200
    sources = {s["kind"]: s for s in response.json()["sources"]}
    assert list(sources) == ["ofac_sdn", "ofac_non_sdn", "csl", "bis_dpl", "un_sc", "uk_ofsi"]
    assert all(s["rows_skipped"] == 0 and s["version"].startswith("sha256:") for s in sources.values())
    lists = {(kind, x["list_id"]): x for kind, s in sources.items() for x in s["lists"]}
    # PROVENANCE.md: sdn.csv 13,821 entries; alt.csv 17,091 aliases (3 repeat the entry's own name).
    assert (lists[("ofac_sdn", "SDN")]["entries"], lists[("ofac_sdn", "SDN")]["aliases"]) == (13821, 17088)
    # cons_prim.csv: 442 entries across the non-SDN lists, each under its own list id.
    assert sources["ofac_non_sdn"]["entries"] == 442
    assert {k[1]: v["entries"] for k, v in lists.items() if k[0] == "ofac_non_sdn"} == {
        "SSI": 286,
        "PLC": 78,
        "CMIC": 68,
        "NS-MBS": 9,
        "CAP": 1,
    }
    # The CSL: 25,921 parties; the DPL's 1,596 rows (one per address) are 1,506 persons.
    csl = sources["csl"]
    assert csl["rows_read"] == 25921 == csl["entries"] + csl["rows_merged"]
    assert (lists[("csl", "EL")]["entries"], lists[("csl", "EL")]["effect"]) == (3420, "licence")
    assert lists[("csl", "UVL")]["effect"] == "review"
    # dpl.txt: 665 rows, 545 distinct names, of which "AL NASER AIRLINES" and "AL-NASER  AIRLINES"
    # are one airline under one order: 544 denied persons.
    dpl = sources["bis_dpl"]
    assert (dpl["rows_read"], dpl["entries"], dpl["rows_merged"]) == (665, 544, 121)
    assert (lists[("bis_dpl", "DPL")]["effect"], dpl["published"]) == ("block", "2023-11-30")
    # UN: 730 individuals + 273 entities; dated by its dateGenerated.
    un = sources["un_sc"]
    assert (un["entries"], un["published"], lists[("un_sc", "UN")]["effect"]) == (1003, "2026-02-27", "block")
    # OFSI: 18,796 name rows = 4,686 targets (Group IDs); "Last Updated 10/04/2025".
    uk = sources["uk_ofsi"]
    assert (uk["rows_read"], uk["entries"], uk["published"]) == (18796, 4686, "2025-04-10")
    assert all(s["age_seconds"] > 0 and s["last_update_outcome"] == "loaded" for s in sources.values())

    types: dict[str, dict[str | None, int]] = {}
    for source in runtime_of(app).snapshot.sources:
        counts = types.setdefault(source.info.kind, {})
        for entry in source.entries:
            counts[entry.entry_type] = counts.get(entry.entry_type, 0) + 1
    assert types["un_sc"] == {"individual": 730, "entity": 273}
    assert types["uk_ofsi"] == {"individual": 3662, "entity": 1009, "vessel": 15}
    assert types["ofac_non_sdn"] == {"individual": 79, "entity": 363}


async def test_entry_is_shown_from_every_source_that_carries_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/lists/SDN/entries/15145")

    assert response.status_code == 200
    body = response.json()
    records = body["records"]
    assert {r["published"] for r in records} == {"2023-12-28", "2026-07-31"}
    assert {r["name"] for r in records} == {"DENA TANKERS FZE"}
    assert all(r["programs"] == ["IRAN"] and r["effect"] == "block" for r in records)
    assert len(body["entry_version"]) == 16


async def test_dpl_person_from_the_bis_file_and_the_csl_is_one_entry(client: httpx.AsyncClient) -> None:
    entry = (await client.get("/lists/DPL/entries/ABDULAH-AL-NASSER")).json()
    hits = (await client.post("/screen", json={"name": "Abdulah Al Nasser"})).json()["matches"]

    assert {r["source_id"] for r in entry["records"]} == {"bis_dpl", "csl"}
    bis = next(r for r in entry["records"] if r["source_id"] == "bis_dpl")
    assert bis["details"]["expiration_date"] == "2056-06-29" and len(bis["addresses"]) == 2
    # Carried by two sources, reported once.
    assert [m["entry_id"] for m in hits].count("ABDULAH-AL-NASSER") == 1


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


# --- clearances ----------------------------------------------------------------------------------


@pytest.fixture
def published(app: FastAPI) -> Iterator[list[Outgoing]]:
    """Stands in for the broker: what the app publishes; clearances made here are revoked after."""
    runtime = runtime_of(app)
    sent: list[Outgoing] = []

    async def publish(outgoing: Outgoing) -> None:
        sent.append(outgoing)

    app.dependency_overrides[get_publish] = lambda: publish
    try:
        yield sent
    finally:
        app.dependency_overrides.pop(get_publish)
        for outgoing in sent:
            runtime.clearances.revoke(outgoing.key)


async def test_a_clearance_is_published_and_sets_the_match_aside_as_evidence(
    client: httpx.AsyncClient, published: list[Outgoing]
) -> None:
    before = (await client.post("/screen", json={"name": "Dena Tankers FZE", "country": "AE"})).json()
    [hit] = before["matches"]

    response = await client.post(
        "/clearances",
        json={
            "party_name": "Dena Tankers FZE",
            "list_id": "SDN",
            "entry_id": "15145",
            "entry_version": hit["entry_version"],
            "reason": "Our customer is Dena Tankers Pty of Perth, registered 2019, no Iranian ownership",
        },
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["key"] == "SDN:15145:dena tankers" and body["in_force"] is True
    [message] = published
    assert (message.topic, message.key) == ("screening.clearances.v1", "SDN:15145:dena tankers")
    assert json.loads(message.value)["entry_version"] == hit["entry_version"]

    after = (await client.post("/screen", json={"name": "DENA TANKERS FZE", "country": "AE"})).json()
    assert after["matches"] == []
    [cleared] = after["cleared_matches"]
    # Who cleared it is the signing key's name (tests/auth_support.py), never a body field.
    assert (cleared["entry_id"], cleared["cleared_by"], cleared["score"]) == (
        "15145",
        "admin-1",
        hit["score"],
    )
    listed = (await client.get("/clearances", params={"list_id": "SDN"})).json()
    assert [(c["key"], c["in_force"]) for c in listed] == [("SDN:15145:dena tankers", True)]


@pytest.mark.parametrize(
    ("change", "status", "where"),
    [
        ({"entry_id": "99999999"}, 404, "entry_id '99999999' is not on list 'SDN'"),
        ({"list_id": "XYZ"}, 404, "list_id 'XYZ' is not loaded"),
        ({"entry_version": "0000000000000000"}, 409, "the entry has changed since"),
        ({"reviewer": "j.doe"}, 422, "reviewer"),  # the key says who clears, not the body
        ({"reason": None}, 422, "reason"),
        ({"party_name": "!!!"}, 422, "party_name"),
    ],
)
async def test_a_bad_clearance_is_refused_naming_why(
    client: httpx.AsyncClient, published: list[Outgoing], change: dict[str, Any], status: int, where: str
) -> None:
    body = {
        "party_name": "Dena Tankers",
        "list_id": "SDN",
        "entry_id": "15145",
        "reason": "not them",
    } | change
    body = {k: v for k, v in body.items() if v is not None}

    response = await client.post("/clearances", json=body)

    assert response.status_code == status
    detail = response.json()["detail"]
    assert where in (detail if isinstance(detail, str) else json.dumps(detail))
    assert published == []


async def test_a_clearance_without_a_broker_is_503(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/clearances",
        json={
            "party_name": "Dena Tankers",
            "list_id": "SDN",
            "entry_id": "15145",
            "reason": "not them",
        },
    )
    assert response.status_code == 503
    assert "not connected" in response.json()["detail"]


# --- list updates while serving ------------------------------------------------------------------------

UN_DIR = "screening/un_sc_consolidated/2026-02-27"
DPL_DIR = "screening/us_bis_dpl/2023-11-30"


@dataclass
class Updatable:
    app: FastAPI
    client: httpx.AsyncClient
    mirror: PublisherMirror
    settings: Settings
    un_xml: bytes
    dpl_txt: bytes
    sent: list[Outgoing]

    @property
    def runtime(self) -> ScreeningRuntime:
        return runtime_of(self.app)

    async def source(self, kind: str) -> dict[str, Any]:
        sources = (await self.client.get("/lists")).json()["sources"]
        found: dict[str, Any] = next(s for s in sources if s["kind"] == kind)
        return found


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublisherMirror]:
    with publisher_mirror(tmp_path_factory.mktemp("publishers")) as served:
        yield served


@pytest.fixture(scope="module")
async def updatable(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, mirror: PublisherMirror
) -> AsyncIterator[Updatable]:
    # A data directory of two real lists (linked, not copied), a cache of its own, the mirror as publisher.
    root = tmp_path_factory.mktemp("data")
    for folder in (UN_DIR, DPL_DIR):
        (root / folder).parent.mkdir(parents=True, exist_ok=True)
        (root / folder).symlink_to(data_dir / folder)
    settings = Settings(
        data_dir=root,
        screening_sources=f"un_sc:{UN_DIR},bis_dpl:{DPL_DIR}",
        screening_cache_dir=tmp_path_factory.mktemp("cache"),
        screening_update_base_url=mirror.base_url,
    )
    sent: list[Outgoing] = []

    async def publish(outgoing: Outgoing) -> None:
        sent.append(outgoing)

    application = create_app(settings, start_kafka=False, publish=publish)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://t", headers=bearer()
        ) as c,
    ):
        yield Updatable(
            application,
            c,
            mirror,
            settings,
            (data_dir / UN_DIR / "consolidated.xml").read_bytes(),
            (data_dir / DPL_DIR / "dpl.txt").read_bytes(),
            sent,
        )


def un_variant(
    xml: bytes, *, alias: str, drop: str | None = None, add: str | None = None, broken: bool = False
) -> bytes:
    """The real UN file with one alias of CDi.002 renamed, optionally a record dropped or added, or a
    record without its REFERENCE_NUMBER (a malformed row)."""
    text = xml.decode()
    text = text.replace("<ALIAS_NAME>FRANK KAKORERE</ALIAS_NAME>", f"<ALIAS_NAME>{alias}</ALIAS_NAME>", 1)
    if drop is not None:
        start = text.rindex("<INDIVIDUAL>", 0, text.index(f"<REFERENCE_NUMBER>{drop}<"))
        text = text[:start] + text[text.index("</INDIVIDUAL>", start) + len("</INDIVIDUAL>") :]
    records = ""
    if add is not None:
        records += (
            f"<INDIVIDUAL><FIRST_NAME>{add}</FIRST_NAME><UN_LIST_TYPE>DRC</UN_LIST_TYPE>"
            "<REFERENCE_NUMBER>CDi.999</REFERENCE_NUMBER></INDIVIDUAL>\n"
        )
    if broken:
        records += "<INDIVIDUAL><FIRST_NAME>NO REFERENCE</FIRST_NAME></INDIVIDUAL>\n"
    return text.replace("<INDIVIDUALS>\n", "<INDIVIDUALS>\n" + records, 1).encode()


async def test_update_fetches_verifies_swaps_and_publishes_the_diff(updatable: Updatable) -> None:
    before = await updatable.source("un_sc")
    generation = (await updatable.client.get("/lists")).json()["lists_generation"]
    updatable.mirror.publish(
        "un_sc",
        "consolidated.xml",
        un_variant(
            updatable.un_xml, alias="FRANK KAKORERE B.", drop="CDi.001", add="JEAN NOUVEAU", broken=True
        ),
    )

    response = await updatable.client.post("/lists/update", json={"sources": ["un_sc"]})

    assert response.status_code == 200, response.text
    [outcome] = response.json()["outcomes"]
    assert (outcome["source"], outcome["outcome"], outcome["old_version"]) == (
        "un_sc",
        "updated",
        before["version"],
    )
    assert (outcome["added"], outcome["changed"], outcome["removed"]) == (1, 1, 1)
    after = await updatable.source("un_sc")
    assert after["version"] == outcome["new_version"] != before["version"]
    assert after["entries"] == before["entries"]  # one in, one out
    assert after["folder"].startswith(str(updatable.settings.screening_cache_dir / "un_sc"))
    # The malformed record is reported with its file and line, and skipped.
    assert after["rows_skipped"] == 1
    assert re.fullmatch(
        r"consolidated.xml:\d+: INDIVIDUAL 'NO REFERENCE' has no REFERENCE_NUMBER",
        after["skipped_examples"][0],
    )
    assert (await updatable.client.get("/lists")).json()["lists_generation"] == generation + 1

    [event] = [json.loads(o.value) for o in updatable.sent if o.topic == "lists.updated.v1"]
    assert (event["source"], event["list_id"], event["old_version"], event["new_version"]) == (
        "un_sc",
        "UN",
        before["version"],
        after["version"],
    )
    assert (event["added"], event["changed"], event["removed"]) == (["CDi.999"], ["CDi.002"], ["CDi.001"])
    entry = (await updatable.client.get("/lists/UN/entries/CDi.002")).json()
    assert "FRANK KAKORERE B." in entry["records"][0]["aliases"]
    assert (await updatable.client.get("/lists/UN/entries/CDi.001")).status_code == 404

    # Fetched again unchanged: nothing swapped, nothing announced.
    again = (await updatable.client.post("/lists/update", json={"sources": ["un_sc"]})).json()["outcomes"]
    assert [o["outcome"] for o in again] == ["unchanged"]
    assert len([o for o in updatable.sent if o.topic == "lists.updated.v1"]) == 1

    # A restart loads the verified cached copy, newer than the configured folder.
    restarted = create_app(updatable.settings, start_kafka=False)
    async with restarted.router.lifespan_context(restarted):
        assert runtime_of(restarted).snapshot.source("un_sc").info.version == after["version"]  # type: ignore[union-attr]


async def test_a_failed_fetch_keeps_the_old_version_and_stays_ready(updatable: Updatable) -> None:
    before = await updatable.source("bis_dpl")
    updatable.mirror.withdraw("bis_dpl", "dpl.txt")  # the publisher answers 404

    [outcome] = (await updatable.client.post("/lists/update", json={"sources": ["bis_dpl"]})).json()[
        "outcomes"
    ]

    assert outcome["outcome"] == "failed" and "HTTP 404" in outcome["error"]
    after = await updatable.source("bis_dpl")
    assert after["version"] == before["version"] and after["entries"] == 544
    assert after["last_update_outcome"] == "failed" and "HTTP 404" in after["last_update_error"]
    assert after["consecutive_update_failures"] == before["consecutive_update_failures"] + 1
    assert after["last_update_attempt_at"] is not None and after["age_seconds"] > 0
    assert (await updatable.client.get("/readyz")).status_code == 200
    metrics = (await updatable.client.get("/metrics")).text
    assert re.search(r'exportwatch_screening_list_update_failures_total\{source="bis_dpl"\} [1-9]', metrics)
    assert re.search(r'exportwatch_screening_list_age_seconds\{source="bis_dpl"\} \d', metrics)


async def test_a_refused_connection_keeps_the_old_version(updatable: Updatable) -> None:
    before = await updatable.source("un_sc")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    updatable.runtime.updater.http_transport = httpx.MockTransport(refuse)
    try:
        [outcome] = (await updatable.client.post("/lists/update", json={"sources": ["un_sc"]})).json()[
            "outcomes"
        ]
    finally:
        updatable.runtime.updater.http_transport = None

    assert outcome["outcome"] == "failed" and "ConnectError" in outcome["error"]
    assert (await updatable.source("un_sc"))["version"] == before["version"]


async def test_a_truncated_copy_is_refused_and_kept_aside(updatable: Updatable) -> None:
    before = await updatable.source("bis_dpl")
    updatable.mirror.publish("bis_dpl", "dpl.txt", b"\n".join(updatable.dpl_txt.split(b"\n")[:40]) + b"\n")

    [outcome] = (await updatable.client.post("/lists/update", json={"sources": ["bis_dpl"]})).json()[
        "outcomes"
    ]

    assert outcome["outcome"] == "failed" and "refused as truncated" in outcome["error"]
    assert (await updatable.source("bis_dpl"))["version"] == before["version"]
    rejected = list((updatable.settings.screening_cache_dir / "bis_dpl").glob("*.rejected"))
    assert rejected and (rejected[-1] / "dpl.txt").is_file()


async def test_unknown_source_to_update_is_422(updatable: Updatable) -> None:
    response = await updatable.client.post("/lists/update", json={"sources": ["eu_fsf"]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "sources"]


async def test_a_swap_under_load_loses_no_request_and_mixes_no_versions(updatable: Updatable) -> None:
    old_un = (await updatable.source("un_sc"))["version"]
    updatable.mirror.publish(
        "un_sc", "consolidated.xml", un_variant(updatable.un_xml, alias="FRANK KAKORERE JR")
    )
    answers: list[httpx.Response] = []
    flowing, update_done = asyncio.Event(), asyncio.Event()

    async def screen_until_swapped() -> None:
        # Each worker keeps screening until the swap is done, then sends one more: some requests are
        # answered before the swap, some after, and many while the new index is being built.
        while True:
            swapped = update_done.is_set()
            answers.append(await updatable.client.post("/screen", json={"name": "FRANK KAKOLELE BWAMBALE"}))
            if len(answers) >= 100:
                flowing.set()
            if swapped and len(answers) >= 500:
                return

    workers = [asyncio.create_task(screen_until_swapped()) for _ in range(50)]
    await flowing.wait()  # traffic is flowing before the update starts
    outcomes = await updatable.runtime.updater.update_lists(["un_sc"])
    update_done.set()
    await asyncio.gather(*workers)

    assert [o.outcome for o in outcomes] == ["updated"]
    new_un = outcomes[0].new_version
    assert len(answers) >= 500 and all(a.status_code == 200 for a in answers)
    seen: dict[int, str] = {}
    for answer in answers:
        body = answer.json()
        versions = {s["list_id"]: s["version"] for s in body["lists"]}
        [match] = [m for m in body["matches"] if m["list_id"] == "UN"]
        # One answer, one version: the match comes from the same UN list the answer reports.
        assert match["list_version"] == versions["UN"] in (old_un, new_un)
        assert seen.setdefault(body["lists_generation"], versions["UN"]) == versions["UN"]
    assert set(seen.values()) == {old_un, new_un}


def test_update_command_fetches_into_the_cache_and_verifies(
    mirror: PublisherMirror, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The BIS file less its last person (ZIMO SHENG, two rows): a new version to fetch.
    rows = (data_dir / DPL_DIR / "dpl.txt").read_bytes().split(b"\n")
    mirror.publish("bis_dpl", "dpl.txt", b"\n".join(rows[:-3]) + b"\n")
    cache = tmp_path / "lists"

    code = update_main(["--source", "bis_dpl", "--cache-dir", str(cache), "--base-url", mirror.base_url])

    assert code == 0
    assert "kind=bis_dpl  outcome=verified" in capsys.readouterr().out
    [folder] = (cache / "bis_dpl").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["verified"] is True and manifest["files"]["dpl.txt"]["url"].startswith(mirror.base_url)
    assert (manifest["entries"], manifest["rows_skipped"]) == (543, 0)

    mirror.withdraw("bis_dpl", "dpl.txt")
    assert update_main(["--source", "bis_dpl", "--cache-dir", str(cache), "--base-url", mirror.base_url]) == 1
    assert "outcome=failed" in capsys.readouterr().out
