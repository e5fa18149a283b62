"""ECCN grammar and line classification over the real CCL (eCFR Part 774 copy in the reference data)."""

from __future__ import annotations

import csv
import json
import re

import pytest

from services.classifier.domain import (
    EAR99,
    InvalidEccn,
    ParsedEccn,
    canonical_eccn,
    check_eccn,
    classify_line,
    classify_lines,
    item_controls,
    parse_eccn,
)
from services.classifier.suggest import suggestion_entry
from shared.events import EccnSuggestion, LineClassification, OrderLine, SubmittedOrder
from tests import classifier_support as support

CATALOG_VERSION = "1-skus+sha256:000000000000"
SAMPLE_ORDERS = support.SEED_CSV.with_name("orders.json")
_FULL_ECCN = re.compile(r"\b\d[A-E]\d{3}(?:\.(?:[a-z]|\d{1,3})\b)*")


def no_suggestions(description: str, hs_code: str | None) -> list[EccnSuggestion]:
    return []


def classify(
    *, erp: str | None = None, catalog: str | None = None, description: str = "widget"
) -> LineClassification:
    return classify_line(
        support.ccl(),
        line_no=1,
        sku="SKU-1",
        description=description,
        erp_eccn=erp,
        catalog_eccn=catalog,
        catalog_version=CATALOG_VERSION,
        suggest=support.suggestions().suggest,
    )


def controls(code: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    parsed = parse_eccn(code)
    assert isinstance(parsed, ParsedEccn)
    entry = support.ccl().get(parsed.base)
    assert entry is not None
    found = item_controls(entry, parsed)
    return found.reasons_for_control, found.country_chart_columns


# --- grammar -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "base", "paragraphs"),
    [
        ("3A001.a.1.b", "3A001", ("a", "1", "b")),
        ("5A992.c", "5A992", ("c",)),
        ("0A501.y.1", "0A501", ("y", "1")),
        ("9A610.x", "9A610", ("x",)),
        ("5D002.c.1", "5D002", ("c", "1")),
        ("1C350.d.15", "1C350", ("d", "15")),
        ("3A001.a.10", "3A001", ("a", "10")),
        ("2B001", "2B001", ()),
        ("EAR99", EAR99, ()),
        ("ear99", EAR99, ()),
        (" 6A003.B.4.B ", "6A003", ("b", "4", "b")),  # as an ERP upper-cases it
        ("3a001.A.7", "3A001", ("a", "7")),
    ],
)
def test_well_formed_eccns_parse_to_their_canonical_form(
    text: str, base: str, paragraphs: tuple[str, ...]
) -> None:
    parsed = parse_eccn(text)
    assert parsed == ParsedEccn(base, paragraphs)


@pytest.mark.parametrize(
    ("text", "reason_says"),
    [
        ("", "empty"),
        ("3A01", "5 characters"),
        ("3A0011", "5 characters"),
        ("3F001", "product group 'F'"),
        ("A3001", "category 'A'"),
        ("3A0O1", "three digits"),
        ("3A001.", "empty paragraph"),
        ("3A001..a", "empty paragraph"),
        ("3A001.a!", "paragraph 'a!'"),
        ("3A001.aa", "paragraph 'aa'"),
        ("3A001.1234", "paragraph '1234'"),
        ("EAR-99", "5 characters"),
        ("3A001 a", "5 characters"),
        ("3A001.a.1.a.1.a.1.a.1.a", "more than 8 paragraph levels"),
    ],
)
def test_malformed_eccns_are_refused_with_the_value_and_the_reason(text: str, reason_says: str) -> None:
    parsed = parse_eccn(text)
    assert isinstance(parsed, InvalidEccn)
    assert reason_says in parsed.reason
    assert repr(text) in parsed.message


def test_every_eccn_of_the_ccl_data_parses_and_validates() -> None:
    ccl = support.ccl()
    assert len(ccl.entries) == 633
    for name in ccl.entries:
        checked = check_eccn(ccl, name)
        assert isinstance(checked, ParsedEccn) and checked.code == name


def test_every_eccn_the_reference_data_names_is_well_formed() -> None:
    # Headings, licence tables, licence exceptions and related controls of the CCL, and the EU
    # Annex I entry codes, name ECCNs with paragraphs ("0A501.y", "3A001.b.2"): all must parse.
    ccl = support.ccl()
    named: set[str] = set()
    for entry in ccl.entries.values():
        texts = [
            entry.heading,
            entry.related_controls or "",
            *(r.control for r in entry.license_requirements),
        ]
        texts += [flag.text for flag in entry.license_exceptions]
        for text in texts:
            named.update(m.group(0).rstrip(".") for m in _FULL_ECCN.finditer(text))
    named.update(support.eu_annex().entries)
    assert len(named) > 1000
    refused = {name: parsed for name in named if isinstance(parsed := parse_eccn(name), InvalidEccn)}
    assert refused == {}
    # Not on the CCL and not a known gap of the copy: only 0A018, which a licence exception of
    # 0A505 names as the pre-2020 classification of some ammunition parts.
    absent = {parse_eccn(n).base for n in named} - set(ccl.entries) - set(support.eu_annex().entries)  # type: ignore[union-attr]
    assert absent - set(ccl.missing_referenced) == {"0A018"}


def test_sample_orders_and_catalog_eccns_validate_except_the_deliberately_wrong_one() -> None:
    ccl = support.ccl()
    orders = [SubmittedOrder.model_validate(o) for o in json.loads(SAMPLE_ORDERS.read_text(encoding="utf-8"))]
    given = {line.eccn for order in orders for line in order.lines if line.eccn}
    with support.SEED_CSV.open(encoding="utf-8") as f:
        given |= {row["eccn"] for row in csv.DictReader(f)}
    refused = {eccn: check_eccn(ccl, eccn) for eccn in given}
    assert {eccn for eccn, checked in refused.items() if isinstance(checked, InvalidEccn)} == {"6A299.c"}


def test_eccn_missing_from_the_ccl_copy_is_invalid_and_names_who_refers_to_it() -> None:
    checked = check_eccn(support.ccl(), "3A004")
    assert isinstance(checked, InvalidEccn)
    assert "3A004 is not on the Commerce Control List" in checked.reason
    assert "3E001" in checked.reason


def test_catalog_form_of_an_eccn_is_canonical_and_unknown_ones_raise() -> None:
    assert canonical_eccn(support.ccl(), "6a003.B.4.b") == "6A003.b.4.b"
    with pytest.raises(ValueError, match="'9Z999'"):
        canonical_eccn(support.ccl(), "9Z999")


# --- what the License Requirements table gives per paragraph ------------------------------------


# Entries whose License Requirements table states exceptions or paragraph lists, and the 600-series
# and 9x515 rule that `.y` is AT-only: the columns for a paragraph, as the table's rows give them.
PARAGRAPH_COLUMNS = [
    ("0A501", ("NS1", "RS1", "FC1", "AT1")),  # "NS/RS/FC applies to entire entry except 0A501.y"
    ("0A501.a", ("NS1", "RS1", "FC1", "AT1")),
    ("0A501.y.1", ("AT1",)),
    ("0A505.b", ("FC1", "CC1")),  # NS/RS/AT only .a, .x (and AT .d); CC only .b
    ("0A505.d", ("AT1",)),  # "FC applies to entire entry except 0A505.d"
    ("0A602.y", ("AT1",)),  # 600 series: .y AT-only though the table states no exception
    ("0A606.a", ("NS1", "RS1", "AT1")),
    ("0A606.b", ("NS2", "RS2", "AT1")),  # "except 0A606.b and .y" + "NS/RS applies to 0A606.b"
    ("0A606.y.1", ("AT1",)),
    ("1B001.a", ("NP1", "NS2", "MT1", "AT1")),
    ("1B001.d.4", ("NP1", "NS2", "AT1")),  # "MT applies to entire entry, except 1B001.d.4, e and f"
    ("1C607.a.1", ("NS1", "RS1", "AT1")),
    ("1C607.a.10", ("RS1", "AT1")),  # "NS ... except 1C607.a.10, .a.11, .a.12, and .a.14"
    ("1E002.e", ("NP1", "NS1", "MT1", "AT1")),
    ("1E002.g", ("NP1", "NS2", "AT1")),
    ("3A611.y", ("AT1",)),
    ("8A620.b", ("RS1", "AT1")),  # written "except 8A620. b and .y"
    ("8A620.y", ("AT1",)),
    ("9A012.a.1", ("NS2", "MT1", "AT1")),  # "NS applies to entire entry, except .a.1"
    ("9A012.b", ("NS1", "MT1", "AT1")),
    ("9A515.a", ("NS1", "RS1", "AT1")),
    ("9A515.e", ("MT1", "RS2", "AT1")),  # MT conditional on .e.2; RS2 "applies to 9A515.e and .x"
    ("9A515.x", ("NS2", "RS2", "AT1")),
    ("9A515.y.1", ("AT1",)),
    ("9A610.b", ("AT1",)),  # "NS/RS ... except: 9A610.b; ... and 9A610.y"
    ("9A610.x", ("NS1", "RS1", "AT1")),
    ("9A610.y.1", ("AT1",)),
    ("9A990.a", ("AT2",)),  # "AT applies to entire entry except 9A990.a" + "AT applies to 9A990.a only"
    ("9A990.b", ("AT1",)),
    ("9B610.c", ("MT1", "RS1", "AT1")),
    ("9D515.x", ("NS2", "RS2", "AT1")),
    ("9D515.y", ("AT1",)),
    ("9E515.x", ("NS2", "MT1", "RS2", "AT1")),
]


@pytest.mark.parametrize(("code", "columns"), PARAGRAPH_COLUMNS)
def test_paragraph_level_country_chart_columns(code: str, columns: tuple[str, ...]) -> None:
    assert controls(code)[1] == columns


def test_y_paragraph_keeps_the_rs_pointer_of_742_6_a_7() -> None:
    reasons, columns = controls("0A606.y.1")
    assert columns == ("AT1",) and "RS" in reasons and "NS" not in reasons


def test_0a501_y_paragraph_is_controlled_for_anti_terrorism_column_only() -> None:
    reasons, columns = controls("0A501.y.1")
    assert columns == ("AT1",)
    assert not {"NS", "RS", "FC"} & set(reasons)


def test_0a501_without_paragraph_gets_every_column_of_the_entry() -> None:
    assert controls("0A501")[1] == ("NS1", "RS1", "FC1", "AT1")


def test_9x515_y_paragraph_ignores_the_conditional_mt_row() -> None:
    # 9A515's MT row is conditional ("microcircuits in 9A515.d ... when usable in missiles") and the
    # .y paragraphs of 9x515 and 600-series entries are AT-only apart from the 742.6(a)(7) pointer.
    assert controls("9A515.y.1")[1] == ("AT1",)
    assert controls("9A610.y")[1] == ("AT1",)
    assert controls("9A610.x")[1] == ("NS1", "RS1", "AT1")


def test_conditional_row_naming_other_paragraphs_does_not_reach_an_fpga() -> None:
    # NS1/RS1 are for MMIC amplifiers in 3A001.b.2/.b.3, MT for a.1.a/a.5.a, NP for e.2/e.3.
    assert controls("3A001.a.7")[1] == ("NS2", "AT1")
    assert controls("3A001.b.2")[1] == ("NS1", "NS2", "RS1", "AT1")


def test_thermal_camera_gets_both_rs_columns_whose_conditions_are_unknown() -> None:
    reasons, columns = controls("6A003.b.4.b")
    assert columns == ("NS2", "RS1", "RS2", "AT1")
    assert "UN" in reasons  # "UN applies to 6A003.b.3 and b.4": a 746.1(b) pointer, no column


def test_a_condition_whose_paragraph_list_cannot_be_read_in_full_is_applied_to_the_whole_entry() -> None:
    # "NP applies to 1C010.a (aramid ..., b (carbon ...), and e.1 for ..." - unbalanced parenthesis.
    assert "NP1" in controls("1C010.b")[1]
    # "MT applies to: spin-forming machines ...; and flow-forming machines that meet ... 2B009.a"
    assert "MT1" in controls("2B009.b")[1]


def test_licence_exception_limited_to_paragraphs_is_offered_only_for_them() -> None:
    entry = support.ccl().get("0A501")
    assert entry is not None
    for code, expected in (("0A501.c", ("LVS",)), ("0A501.y.1", ())):
        parsed = parse_eccn(code)
        assert isinstance(parsed, ParsedEccn)
        assert item_controls(entry, parsed).license_exceptions == expected


# --- classification of a line ------------------------------------------------------------------


def test_erp_eccn_on_the_ccl_is_used_with_its_controls() -> None:
    line = classify(erp="5A992.C")
    assert (line.status, line.source, line.eccn) == ("classified", "erp", "5A992.c")
    assert line.country_chart_columns == ["AT1"]
    assert line.heading is not None and line.heading.startswith("Equipment not controlled by 5A002")


def test_ear99_from_the_erp_is_not_on_the_ccl_and_needs_no_columns() -> None:
    line = classify(erp="EAR99")
    assert (line.status, line.source, line.eccn) == ("ear99", "erp", "EAR99")
    assert line.country_chart_columns == [] and line.reasons_for_control == []


def test_eccn_pointing_to_the_usml_is_an_itar_item() -> None:
    line = classify(erp="0A002")
    assert (line.status, line.eccn) == ("itar", "0A002")
    assert line.heading is not None and "subject to the ITAR" in line.heading


@pytest.mark.parametrize(("erp", "named"), [("3F001", "'3F001'"), ("3A004", "3A004 is not on the Commerce")])
def test_erp_eccn_that_is_malformed_or_not_on_the_ccl_is_invalid_and_named(erp: str, named: str) -> None:
    line = classify(erp=erp)
    assert (line.status, line.source, line.eccn) == ("invalid", "erp", erp)
    assert line.error is not None and named in line.error and line.error.startswith("ERP ECCN")


def test_catalog_classifies_a_line_the_erp_left_blank() -> None:
    line = classify(catalog="1C010.b")
    assert (line.status, line.source, line.eccn) == ("classified", "catalog", "1C010.b")
    assert line.discrepancy is None


def test_catalog_wins_when_erp_disagrees_and_the_discrepancy_names_both() -> None:
    line = classify(erp="EAR99", catalog="6A003.b.4.b")
    assert (line.status, line.source, line.eccn) == ("classified", "catalog", "6A003.b.4.b")
    assert (line.erp_eccn, line.catalog_eccn) == ("EAR99", "6A003.b.4.b")
    assert line.discrepancy is not None
    assert "'EAR99'" in line.discrepancy and "'6A003.b.4.b'" in line.discrepancy
    assert CATALOG_VERSION in line.discrepancy


def test_catalog_wins_over_a_malformed_erp_eccn() -> None:
    line = classify(erp="5A99", catalog="5A992.c")
    assert (line.status, line.source, line.eccn, line.error) == ("classified", "catalog", "5A992.c", None)
    assert line.discrepancy is not None and "'5A99'" in line.discrepancy


def test_erp_and_catalog_agreeing_in_another_case_is_no_discrepancy() -> None:
    line = classify(erp="6A003.B.4.B", catalog="6A003.b.4.b")
    assert (line.source, line.discrepancy) == ("erp", None)


def test_line_without_any_eccn_is_unclassified_with_ranked_suggestions() -> None:
    line = classify(description="Digital storage oscilloscope, 2 GHz")
    assert (line.status, line.source, line.eccn) == ("unclassified", "none", None)
    assert "3A992" in [suggestion_entry(s) for s in line.suggestions[:2]]
    scores = [s.score for s in line.suggestions]
    assert scores == sorted(scores, reverse=True)


def test_a_confident_suggestion_still_leaves_the_line_unclassified() -> None:
    line = classify(description="Field programmable logic device")
    assert line.suggestions[0].eccn == "3A001.a.7"
    assert (line.status, line.eccn, line.reasons_for_control, line.country_chart_columns) == (
        "unclassified",
        None,
        [],
        [],
    )


def test_the_hs_code_of_the_line_reaches_the_suggester() -> None:
    seen: list[tuple[str, str | None]] = []

    def spy(description: str, hs_code: str | None) -> list[EccnSuggestion]:
        seen.append((description, hs_code))
        return []

    line = OrderLine(
        line_no=1, sku="A", description="Sensor assembly", quantity=1, unit_price="1.00", currency="USD",
        hs_code="8525.89",
    )  # fmt: skip
    classify_lines(support.ccl(), [line], catalog={}, catalog_version=None, suggest=spy)
    assert seen == [("Sensor assembly", "8525.89")]


def test_entry_without_licence_data_in_the_source_is_flagged_on_the_line() -> None:
    line = classify(erp="4A611")
    assert line.status == "classified"
    assert line.error is not None and "verify against the eCFR" in line.error


def test_classify_lines_stamps_the_ccl_and_catalog_versions() -> None:
    lines = [
        OrderLine(line_no=1, sku="A", description="pump", quantity=1, unit_price="1.00", currency="USD"),
        OrderLine(
            line_no=2,
            sku="B",
            description="chair",
            quantity=1,
            unit_price="1.00",
            currency="USD",
            eccn="EAR99",
        ),
    ]
    result = classify_lines(
        support.ccl(), lines, catalog={"A": "2B230"}, catalog_version=CATALOG_VERSION, suggest=no_suggestions
    )
    assert result.ccl_version == support.ccl().version
    assert result.catalog_version == CATALOG_VERSION
    assert [(line.line_no, line.source, line.eccn) for line in result.lines] == [
        (1, "catalog", "2B230"),
        (2, "erp", "EAR99"),
    ]
