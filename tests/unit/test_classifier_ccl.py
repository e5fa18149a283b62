"""The CCL loader over the real eCFR Part 774 JSON, and over small documents for the text shapes."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from services.classifier.ccl import CCL_FILE, CclFormatError, parse_ccl
from services.classifier.domain import Scope
from tests import classifier_support as support

# controls/PROVENANCE.md, "Caveats": entries whose reason codes the source parse lost.
SOURCE_GAPS = {
    "0A521", "0A998", "0B521", "0C521", "0D521", "0E001", "0E521", "1C018", "2B018", "2D018",
    "4A611", "5A611", "6A611", "8A018", "8D999", "9A010", "9A018", "9D005", "9D018", "9E018",
}  # fmt: skip
# data/README.md, "Known gaps": named by other entries, absent from this copy.
MISSING_REFERENCED = {"0D614", "2B352", "3A004", "3B003", "3C007", "3C008", "3C009", "3E002"}


def test_ccl_version_is_the_ecfr_issue_date_and_the_file_hash(data_dir: Path) -> None:
    raw = (data_dir / CCL_FILE).read_bytes()
    issue_date = json.loads(raw)["ecfrIssueDate"]
    assert support.ccl().version == f"ecfr-{issue_date}+sha256:{hashlib.sha256(raw).hexdigest()[:12]}"


def test_warnings_name_referenced_but_missing_eccns_and_entries_without_reasons() -> None:
    ccl = support.ccl()
    assert set(ccl.missing_referenced) == MISSING_REFERENCED
    assert ccl.missing_referenced["3A004"] == ("3E001",)
    assert any(w.startswith("3A004: referenced by 3E001") for w in ccl.warnings)
    without_reasons = {w.split(":")[0] for w in ccl.warnings if "no reasons for control" in w}
    assert without_reasons == SOURCE_GAPS


def test_itar_pointers_are_the_entries_whose_heading_sends_the_item_to_the_usml() -> None:
    ccl = support.ccl()
    pointers = {e.eccn for e in ccl.entries.values() if e.itar_pointer}
    assert len(pointers) == 31 and "0A002" in pointers
    # Entries that only *mention* the ITAR in an exception keep their EAR controls.
    assert "9D003" not in pointers and "1C355" not in pointers
    assert all(not ccl.entries[e].reasons_for_control for e in pointers)


def test_reasons_and_columns_agree_with_the_derived_index_csv(data_dir: Path) -> None:
    # The index CSV (controls/PROVENANCE.md) was derived independently from the same JSON; its
    # columns miss "Column 1." cells without a reason code, so ours must be a superset.
    ccl = support.ccl()
    with (data_dir / "controls/us/us_ccl_part774_supp1_index.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            entry = ccl.entries[row["eccn"]]
            assert set(entry.reasons_for_control) == {c for c in row["reason_codes"].split(";") if c}
            assert {c for c in row["country_chart_columns"].split(";") if c} <= set(
                entry.country_chart_columns
            )


def test_merged_and_abbreviated_country_chart_cells_are_read() -> None:
    ccl = support.ccl()
    # "NP applies to entire entry AT applies to entire entry" | "NP Column 1 AT Column 1"
    assert [(r.reason, r.column) for r in ccl.entries["1A231"].license_requirements] == [
        ("NP", "NP1"),
        ("AT", "AT1"),
    ]
    # One merged cell: "CB applies to entire entry CB Column 2."
    assert [(r.reason, r.column) for r in ccl.entries["1C350"].license_requirements] == [("CB", "CB2")]
    # "AT applies to entire entry" | "Column 1."
    assert ccl.entries["1C351"].country_chart_columns == ("CB1", "CB2", "AT1")


def test_paragraph_exceptions_and_lists_become_scopes() -> None:
    rows = {(r.reason, r.column): r.scope for r in support.ccl().entries["9A610"].license_requirements}
    # "NS applies to entire entry except: 9A610.b; parts and components controlled in 9A610.x if
    # being exported ... for use in an aircraft controlled in 9A610.b; and 9A610.y" - the conditional
    # middle clause exempts nothing.
    assert rows[("NS", "NS1")] == Scope("except", (("b",), ("y",)))
    assert rows[("MT", "MT1")] == Scope("paragraphs", (("t",), ("u",), ("v",), ("w",)))


def test_ranges_of_paragraphs_are_expanded() -> None:
    rows = support.ccl().entries["9E003"].license_requirements
    si = next(r for r in rows if r.reason == "SI")
    assert si.scope.paragraphs == (*((("a", str(n))) for n in range(1, 9)), ("h",), ("i",), ("l",))


def document(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"ecfrIssueDate": "2026-07-23", "entries": list(entries)}


def entry(
    eccn: str, *rows: tuple[str, str], heading: str = "Widgets.", rfc: str = "NS, AT"
) -> dict[str, Any]:
    return {
        "eccn": eccn,
        "heading": heading,
        "reasonForControl": rfc,
        "countryChart": [{"control": c, "countryChart": d} for c, d in rows],
        "licenceExceptionFlags": {"LVS": "$500 for 1A999.b", "GBS": "N/A"},
        "relatedControls": "See also 1A998.",
    }


def test_small_document_rows_scopes_exceptions_and_warnings() -> None:
    ccl = parse_ccl(
        document(
            entry(
                "1A999",
                ("NS applies to entire entry, except 1A999.c and .d", "NS Column 2."),
                ("MT applies to items in 1A999.a when usable in missiles", "MT Column 1"),
                ("AT applies to entire entry", "AT Column 1"),
            )
        ),
        version="v",
        source="test",
    )
    found = ccl.entries["1A999"]
    assert [r.scope for r in found.license_requirements] == [
        Scope("except", (("c",), ("d",))),
        Scope("conditional", (("a",),)),
        Scope("entire"),
    ]
    assert [(f.symbol, f.available, f.scope) for f in found.license_exceptions] == [
        ("LVS", True, Scope("paragraphs", (("b",),))),
        ("GBS", False, Scope("entire")),
    ]
    assert ccl.warnings == ("1A998: referenced by 1A999 but not in this copy of the CCL",)


def test_a_document_that_is_not_the_part_774_json_is_refused_naming_the_entry() -> None:
    with pytest.raises(CclFormatError, match=r"entries\[0\]: 'eccn' '1A99'"):
        parse_ccl(document({"eccn": "1A99", "heading": "x"}), version="v", source="test")
    with pytest.raises(CclFormatError, match="'entries' is missing"):
        parse_ccl({"ecfrIssueDate": "2026-07-23"}, version="v", source="test")
