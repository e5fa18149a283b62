"""ECCN grammar and line classification over the real CCL (eCFR Part 774 copy in the reference data)."""

from __future__ import annotations

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
from shared.events import EccnSuggestion, LineClassification, OrderLine
from tests import classifier_support as support

CATALOG_VERSION = "1-skus+sha256:000000000000"


def no_suggestions(description: str) -> list[EccnSuggestion]:
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
    assert line.suggestions and line.suggestions[0].eccn == "3A992.g"
    scores = [s.score for s in line.suggestions]
    assert scores == sorted(scores, reverse=True)


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
