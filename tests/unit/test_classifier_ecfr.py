"""The eCFR updater: Part 774 XML -> the loader's JSON for every category; verify, cache, and the
loader preferring the newest copy. HTTP through httpx.MockTransport (no network); the fetch against
a real local server, and the swap in a running service, are in tests/api/test_classifier_ccl_update.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.classifier.ccl import item_sequence, load_ccl
from services.classifier.domain import Ccl, ParsedEccn, Scope, item_controls, parse_eccn
from services.classifier.ecfr import (
    EcfrError,
    api_client,
    cache_path,
    encode_document,
    latest_part774_date,
    parse_part774_xml,
    update_ccl,
    verify_document,
)
from shared.settings import Settings
from tests import classifier_support as support

URL = "https://www.ecfr.gov/api/versioner/v1/full/2026-09-24/title-15.xml?part=774"
CHECKS: dict[str, Any] = {"min_entries": 5, "required": support.ECFR_ENTRIES}


def parsed() -> dict[str, Any]:
    return parse_part774_xml(support.ECFR_PART774_XML.encode(), issue_date=support.ECFR_DATE, url=URL)


def fixture_ccl() -> Ccl:
    return verify_document(encode_document(parsed()), source="fixture", **CHECKS)


def by_eccn() -> dict[str, dict[str, Any]]:
    return {entry["eccn"]: entry for entry in parsed()["entries"]}


# --- parsing the eCFR XML -----------------------------------------------------------------------


def test_every_ecfr_heading_of_supplement_1_becomes_an_entry_and_nothing_else() -> None:
    document = parsed()
    assert [e["eccn"] for e in document["entries"]] == list(support.ECFR_ENTRIES)
    # 8D001's heading is an FP-1, not an FP-2; the "0A999" of Supplement No. 2 is not the CCL.
    assert by_eccn()["8D001"]["heading"].startswith("“Software” “specially designed” or modified")
    assert (document["ecfrIssueDate"], document["entryCount"]) == (support.ECFR_DATE, 13)
    xml_hash = hashlib.sha256(support.ECFR_PART774_XML.encode()).hexdigest()
    assert document["source"] == {**document["source"], "url": URL, "xmlSha256": xml_hash}


def test_licence_requirements_table_reasons_exceptions_and_related_controls_are_read() -> None:
    entry = by_eccn()["0A501"]
    assert entry["reasonForControl"] == "NS, RS, FC, UN, AT"
    assert entry["countryChart"][0] == {
        "control": "NS applies to entire entry except 0A501.y",
        "countryChart": "NS Column 1.",
    }
    assert len(entry["countryChart"]) == 5
    assert entry["licenceExceptionFlags"] == {"LVS": "$500 for 0A501.c, .d, and .x.", "GBS": "N/A"}
    assert entry["relatedControls"].startswith("(1) See USML Category I")
    # A blank Country Chart cell keeps the control text (1C350's CW row, 15 CFR 742.18).
    cw = by_eccn()["1C350"]["countryChart"][1]
    assert cw["requirementCellEmptyInSource"] and cw["countryChart"].startswith("CW applies")


def test_item_paragraphs_are_read_for_every_category_and_notes_are_not_items() -> None:
    ccl = fixture_ccl()
    assert dict(ccl.entries["6A003"].paragraph_texts)["b.4.b"].startswith(
        "Incorporating “focal plane arrays”"
    )
    assert list(ccl.entries["9A610"].paragraph_texts) == ["a", "x", "y", "y.1"]
    assert ccl.entries["0A501"].paragraph_texts["a"].startswith("Non-automatic and semi-automatic firearms")
    # The first item shares its line with "Items:"; the NOTE's "a. Magazines ..." is not 0A501.a.
    assert ccl.entries["0A501"].paragraph_texts["y.2"] == "Scope mounts or accessory rails;"
    # A Technical Note's "a."/"b." between 3A001.a.5 and a.7 does not replace 3A001.a or .b.
    assert ccl.entries["3A001"].paragraph_texts["b"].startswith("Microwave or millimeter wave items")
    # 1C350's sample-shipment notes in the licence section are not its items.
    assert ccl.entries["1C350"].paragraph_texts["a"] == "[Reserved]"
    assert ccl.entries["1C350"].paragraph_texts["d.45"] == "(C.A.S. #143-33-9) Sodium cyanide;"
    # 5A002's NOTE lists exclusions "a. Smart cards ..." - not 5A002.a.
    assert ccl.entries["5A002"].paragraph_texts["b"].startswith("Being a ‘cryptographic activation token’")
    # Sub-headings inside the items stay text; "Items:" with nothing but prose gives no paragraph.
    assert list(ccl.entries["6E003"].paragraph_texts) == ["a", "d"]
    assert dict(ccl.entries["8D001"].paragraph_texts) == {}


def test_rebuilt_ccl_gives_the_same_paragraph_level_controls_as_the_reference_copy() -> None:
    rebuilt, reference = fixture_ccl(), support.ccl()
    for code in ("0A501.y.1", "0A501.a", "9A610.y.1", "9A610.x", "9A515.y.1", "3A001.a.7", "6A003.b.4.b"):
        parsed_code = parse_eccn(code)
        assert isinstance(parsed_code, ParsedEccn)
        ours = item_controls(rebuilt.entries[parsed_code.base], parsed_code)
        theirs = item_controls(reference.entries[parsed_code.base], parsed_code)
        assert set(ours.country_chart_columns) <= set(theirs.country_chart_columns), code
    assert fixture_ccl().entries["9A007"].itar_pointer
    assert fixture_ccl().entries["9A610"].license_requirements[0].scope == Scope("except", (("b",), ("y",)))


def test_a_document_without_the_ccl_supplement_or_not_xml_is_refused_naming_it() -> None:
    with pytest.raises(EcfrError, match=r"Supplement No\. 1 to Part 774"):
        parse_part774_xml(
            b"<DIV5 N='774'><DIV9 N='Supplement No. 2 to Part 774'/></DIV5>", issue_date="x", url=URL
        )
    with pytest.raises(EcfrError, match="not well-formed XML"):
        parse_part774_xml(b"<html>503 Service Unavailable", issue_date="x", url=URL)


def test_verification_refuses_a_rebuilt_ccl_that_is_too_small_or_lacks_key_entries() -> None:
    raw = encode_document(parsed())
    with pytest.raises(EcfrError, match="13 entries, fewer than 500"):
        verify_document(raw, source="fixture")
    with pytest.raises(EcfrError, match="lacks 2B001"):
        verify_document(raw, source="fixture", min_entries=5, required=("0A501", "2B001"))


def test_encoding_is_deterministic_so_the_same_xml_gives_the_same_version() -> None:
    assert encode_document(parsed()) == encode_document(parsed())
    version = fixture_ccl().version
    digest = hashlib.sha256(encode_document(parsed())).hexdigest()[:12]
    assert version == f"ecfr-{support.ECFR_DATE}+sha256:{digest}"


# --- the reference copy's item paragraphs -------------------------------------------------------


def test_reference_copy_items_skip_the_lists_inside_notes() -> None:
    ccl = support.ccl()
    assert ccl.entries["1C350"].paragraph_texts["a"] == "[Reserved]"
    assert ccl.entries["3A001"].paragraph_texts["b"] == "Microwave or millimeter wave items, as follows:"
    five_a = ccl.entries["5A002"].paragraph_texts
    assert five_a["b"] == "Being a 'cryptographic activation token';"
    assert "j" not in five_a  # the exclusions note's "j. Items specially designed for ..."


def test_item_sequence_prefers_the_entry_list_over_a_longer_note_list() -> None:
    items = [
        ("item", "a", "A"),
        ("item", "a.1", "A1"),
        ("text", None, "X does not control any of the following:"),
        *(("item", letter, f"note {letter}") for letter in "abcdefg"),
        ("item", "b", "B"),
        ("item", "c", "C"),
    ]
    assert [".".join(path) for path, _ in item_sequence(items)] == ["a", "a.1", "b", "c"]
    assert item_sequence(items)[2] == (("b",), "B")


# --- fetching (httpx.MockTransport) and caching -------------------------------------------------


def ecfr_api(
    *, titles: int = 200, full: int = 200, xml: str = support.ECFR_PART774_XML
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/titles.json"):
            body = {
                "titles": [
                    {"number": 15, "latest_issue_date": "2026-09-24", "up_to_date_as_of": "2026-09-26"}
                ]
            }
            return httpx.Response(titles, json=body)
        if path.endswith("/versions/title-15.json"):
            assert request.url.params["part"] == "774"
            dates = [{"date": d, "part": "774"} for d in ("2026-07-23", "2026-09-24", "2026-10-01")]
            return httpx.Response(200, json={"content_versions": dates})
        if path.endswith(f"/full/{support.ECFR_DATE}/title-15.xml"):
            assert request.url.params["part"] == "774"
            return httpx.Response(full, content=xml.encode())
        return httpx.Response(404)

    return httpx.MockTransport(handler)


async def test_latest_date_is_the_last_change_of_part_774_up_to_the_titles_date() -> None:
    async with api_client(transport=ecfr_api()) as client:
        assert await latest_part774_date(client) == "2026-09-24"  # 2026-10-01 is not yet current


async def test_update_writes_the_cache_that_load_ccl_then_prefers(tmp_path: Path) -> None:
    async with api_client(transport=ecfr_api()) as client:
        update = await update_ccl(client, tmp_path, **CHECKS)
    assert update.path == cache_path(tmp_path, support.ECFR_DATE) and update.path.is_file()
    assert update.url.endswith(f"/full/{support.ECFR_DATE}/title-15.xml?part=774")
    assert update.entries_with_items == 10
    loaded = load_ccl(Settings().require_data_dir(), tmp_path)
    assert (loaded.version, loaded.source) == (update.ccl.version, str(update.path))


@pytest.mark.parametrize(
    ("transport", "message"),
    [
        (ecfr_api(titles=503), "titles.json: HTTP 503"),
        (ecfr_api(full=500), "title-15.xml: HTTP 500"),
        (ecfr_api(xml="<DIV5/>"), "has no DIV9"),
    ],
)
async def test_a_failed_fetch_writes_nothing(
    tmp_path: Path, transport: httpx.MockTransport, message: str
) -> None:
    async with api_client(transport=transport) as client:
        with pytest.raises(EcfrError, match=message):
            await update_ccl(client, tmp_path, **CHECKS)
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test's look at its own temp folder


async def test_network_refusal_is_an_ecfr_error(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with api_client(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(EcfrError, match="ConnectError"):
            await update_ccl(client, tmp_path, **CHECKS)


def test_load_ccl_keeps_the_reference_copy_when_the_cache_is_older_or_broken(tmp_path: Path) -> None:
    data_dir = Settings().require_data_dir()
    old = json.loads(encode_document(parsed()))
    old["ecfrIssueDate"] = "2020-01-01"
    (tmp_path / "us_ccl_part774_2020-01-01.json").write_text(json.dumps(old), encoding="utf-8")
    (tmp_path / "us_ccl_part774_2030-01-01.json").write_text("{not json", encoding="utf-8")
    loaded = load_ccl(data_dir, tmp_path)
    assert loaded.version == support.ccl().version
    assert any("us_ccl_part774_2030-01-01.json ignored" in w for w in loaded.warnings)
