"""Loading the Country Chart, Country Groups, Part 746 destinations and Part 740 exceptions as published."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from services.risk import refdata as loader
from services.risk.domain import ReferenceData
from services.risk.refdata import RefDataError, load_reference_data


@pytest.fixture(scope="module")
def refdata(data_dir: Path) -> ReferenceData:
    return load_reference_data(data_dir)


def test_every_file_is_versioned_by_content_hash_and_date(refdata: ReferenceData) -> None:
    assert set(refdata.versions) == {
        "country_chart",
        "country_chart_footnotes",
        "country_groups",
        "embargoed_destinations",
        "license_exceptions",
        "part744",
    }
    for name, version in refdata.versions.items():
        dated = r"eCFR XML" if name == "part744" else r"(eCFR|compiled) \d{4}-\d{2}-\d{2}"
        assert re.fullmatch(rf"sha256:[0-9a-f]{{12}} {dated}", version), version
    # controls/PROVENANCE.md lists the chart CSV's sha256 as d04d3cd394253fea...
    assert refdata.versions["country_chart"] == "sha256:d04d3cd39425 eCFR 2026-07-23"


def test_chart_has_all_rows_and_columns(refdata: ReferenceData) -> None:
    assert len(refdata.chart) == 200
    assert refdata.chart_columns[:3] == ("CB1", "CB2", "CB3") and refdata.chart_columns[-1] == "AT2"
    assert refdata.chart["DE"].marked_columns == {"CB1", "NS1", "MT1", "RS1"}
    assert refdata.chart["GB"].footnotes == (10,)
    assert "0A501" in refdata.chart_footnotes[10]


def test_embargoed_rows_have_no_marks_and_a_part_746_pointer(refdata: ReferenceData) -> None:
    for iso2 in ("CU", "IR", "KP", "SY"):
        row = refdata.chart[iso2]
        assert not row.marked_columns and row.embargo_pointer, iso2


def test_country_groups_e1_and_e2(refdata: ReferenceData) -> None:
    e1 = sorted(c for c, groups in refdata.groups.items() if "E:1" in groups)
    e2 = sorted(c for c, groups in refdata.groups.items() if "E:2" in groups)
    assert (e1, e2) == (["IR", "KP", "SY"], ["CU"])


def test_hong_kong_has_no_row_and_resolves_to_china(refdata: ReferenceData) -> None:
    assert "HK" not in refdata.chart and "HK" not in refdata.groups
    profile = refdata.profile("HK")
    assert profile.chart is refdata.chart["CN"]
    assert profile.groups == refdata.groups["CN"]
    assert profile.inheritance is not None and "85 FR 83788" in profile.inheritance.basis


def test_liechtenstein_resolves_to_switzerland(refdata: ReferenceData) -> None:
    profile = refdata.profile("LI")
    assert profile.chart is refdata.chart["CH"] and "B" in profile.groups


def test_greenland_is_unknown(refdata: ReferenceData) -> None:
    assert not refdata.profile("GL").known


def test_part_746_destinations(refdata: ReferenceData) -> None:
    assert "746.8" in refdata.part746["RU"][0].ear_sections
    assert refdata.part746["LB"][0].un_arms_embargo
    assert refdata.part746["UA-43"][0].destination == "Crimea region of Ukraine"


def test_licence_exceptions_by_symbol(refdata: ReferenceData) -> None:
    assert len(refdata.license_exceptions) == 28  # 27 sections, 740.8 has two symbols
    assert refdata.license_exceptions["GBS"].section == "15 CFR 740.4"


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RefDataError, match=r"us_country_chart_part738_supp1\.csv"):
        load_reference_data(tmp_path)


def test_chart_without_expected_header_is_refused(data_dir: Path, tmp_path: Path) -> None:
    files = (
        loader.CHART_JSON,
        loader.FOOTNOTES_CSV,
        loader.GROUPS_CSV,
        loader.GROUPS_JSON,
        loader.EMBARGO_CSV,
    )
    for relative in (*files, loader.EXCEPTIONS_JSON, loader.PART744_XML, loader.PROVENANCE):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / relative, tmp_path / relative)
    (tmp_path / loader.CHART_CSV).write_text("name,code\nGermany,DE\n", encoding="utf-8")
    with pytest.raises(RefDataError, match="header lacks columns"):
        load_reference_data(tmp_path)


def test_supplement_2_to_part_744_lists_the_military_end_use_items(refdata: ReferenceData) -> None:
    # 744.21: the items of Supplement No. 2 to Part 744, read from the eCFR XML of Part 744.
    assert {"3A991", "5A991", "2B991", "9A991"} <= set(refdata.part744_supp2)
    assert "3A001" not in refdata.part744_supp2
    assert refdata.part744_supp2["4A994"].startswith("Limited to computers")
