"""Reference data on a machine without the snapshot: the eCFR's Parts 738, 740, 746 and 774 converted
into what the services read, and `make run`'s fetch of every source from (a mirror of) the
publishers, verified before anything is kept.

The mirror's eCFR documents are written from the snapshot's derived files (tests/reference_mirror.py),
so the converters must give back exactly what the snapshot holds: the same Country Chart rows, the
same group memberships, the same licence exceptions, the same CCL entries, as the services' own
loaders read them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from deploy.local import reference_data
from services.classifier import ecfr as ccl_ecfr
from services.classifier.ccl import load_ccl
from services.risk import ecfr_destinations as destinations
from services.risk import refdata
from services.screening.lists import load_source, parse_sources
from shared.settings import Settings, load_settings
from tests import reference_mirror
from tests.reference_mirror import DATE, publishers


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8-sig"))))


@pytest.fixture(scope="module")
def chart(data_dir: Path) -> destinations.CountryChart:
    return destinations.parse_part738_xml(
        reference_mirror.part738(data_dir), issue_date=DATE, url="mirror/738"
    )


@pytest.fixture(scope="module")
def groups(data_dir: Path) -> destinations.CountryGroups:
    return destinations.parse_part740_xml(
        reference_mirror.part740(data_dir), issue_date=DATE, url="mirror/740"
    )


@pytest.fixture(scope="module")
def converted(
    data_dir: Path,
    chart: destinations.CountryChart,
    groups: destinations.CountryGroups,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The converted files in a data folder of their own, beside the snapshot's Part 744."""
    folder = tmp_path_factory.mktemp("converted")
    files = {**destinations.chart_files(chart), **destinations.groups_files(groups)}
    sections = destinations.parse_part746_sections(
        reference_mirror.part746(), issue_date=DATE, url="mirror/746"
    )
    written = {
        refdata.CHART_CSV: files["chart_csv"],
        refdata.FOOTNOTES_CSV: files["footnotes_csv"],
        refdata.CHART_JSON: files["chart_json"],
        refdata.GROUPS_CSV: files["groups_csv"],
        refdata.GROUPS_JSON: files["groups_json"],
        refdata.EXCEPTIONS_JSON: files["exceptions_json"],
        refdata.EMBARGO_CSV: destinations.destinations_csv(
            destinations.destination_rows(chart, groups, sections)
        ),
        refdata.PART744_XML: (data_dir / refdata.PART744_XML).read_bytes(),
        refdata.PROVENANCE: b"Compiled 2026-12-07 by the test\n",
    }
    for relative, body in written.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(body)
    return folder


def test_every_destination_name_of_the_chart_and_the_groups_maps_to_its_iso_code(data_dir: Path) -> None:
    named = _rows(data_dir / refdata.CHART_CSV) + _rows(data_dir / refdata.GROUPS_CSV)
    wrong = {(r["country"], r["iso2"], destinations.iso2_of(r["country"])) for r in named}
    assert {w for w in wrong if w[1] != w[2]} == set()
    assert destinations.iso2_of("Atlantis") is None and destinations.iso2_of("Specified Persons") is None


def test_country_chart_from_the_ecfr_equals_the_snapshots_row_for_row(
    data_dir: Path, converted: Path
) -> None:
    snapshot, rebuilt = refdata.load_reference_data(data_dir), refdata.load_reference_data(converted)
    assert rebuilt.chart == snapshot.chart and len(rebuilt.chart) >= 190
    assert rebuilt.chart_columns == snapshot.chart_columns
    assert rebuilt.chart_footnotes == snapshot.chart_footnotes
    assert rebuilt.chart["CU"].embargo_pointer and rebuilt.chart["RU"].footnotes == (6,)


def test_country_groups_and_licence_exceptions_from_the_ecfr_equal_the_snapshots(
    data_dir: Path, converted: Path
) -> None:
    snapshot, rebuilt = refdata.load_reference_data(data_dir), refdata.load_reference_data(converted)
    assert rebuilt.groups == snapshot.groups
    assert rebuilt.groups["IR"] >= {"E:1", "D:5"} and rebuilt.groups["CU"] >= {"E:2"}
    assert rebuilt.license_exceptions == snapshot.license_exceptions
    assert {"ACA", "NAC", "LVS", "STA"} <= set(rebuilt.license_exceptions)
    # The regulation spells DR Congo two ways: one destination, both spellings kept.
    [congo] = [r for r in _rows(converted / refdata.GROUPS_CSV) if r["iso2"] == "CD"]
    assert "|" in congo["name_variants_in_source"]


def test_part_746_destinations_name_the_sections_the_decisions_use(converted: Path) -> None:
    rebuilt = refdata.load_reference_data(converted)
    for iso2 in ("RU", "BY"):
        assert any("746.8" in e.ear_sections for e in rebuilt.part746[iso2])
    for iso2, section in (("CU", "746.2"), ("KP", "746.4"), ("IR", "746.7"), ("SY", "746.9")):
        [entry] = rebuilt.part746[iso2]
        assert section in entry.ear_sections and entry.restriction_type.startswith("comprehensive embargo")
    assert {c for c, entries in rebuilt.part746.items() if any(e.un_arms_embargo for e in entries)} >= {
        "CF", "CD", "ER", "IR", "IQ", "LB", "LY", "KP", "SO", "SD",
    }  # fmt: skip
    assert "UA-43" in rebuilt.part746 and "DE" not in rebuilt.part746


def test_ccl_from_the_ecfr_equals_the_snapshots_entries(data_dir: Path) -> None:
    xml = reference_mirror.part774(data_dir)
    document = ccl_ecfr.parse_part774_xml(xml, issue_date=DATE, url="mirror/774")
    rebuilt = ccl_ecfr.verify_document(ccl_ecfr.encode_document(document), source="mirror/774")
    snapshot = load_ccl(data_dir)
    assert set(rebuilt.entries) == set(snapshot.entries) and len(rebuilt.entries) >= 600
    for eccn, entry in snapshot.entries.items():
        again = rebuilt.entries[eccn]
        assert again.reasons_for_control == entry.reasons_for_control, eccn
        assert again.country_chart_columns == entry.country_chart_columns, eccn
        assert again.itar_pointer == entry.itar_pointer, eccn
        assert {f.symbol for f in again.license_exceptions} == {f.symbol for f in entry.license_exceptions}, (
            eccn
        )


def test_a_chart_row_whose_destination_matches_no_country_is_refused_naming_it(data_dir: Path) -> None:
    xml = reference_mirror.part738(data_dir).replace(b"<TD>Albania", b"<TD>Atlantis", 1)
    with pytest.raises(destinations.EcfrDataError, match=r"row \d+: destination 'Atlantis' matches no ISO"):
        destinations.parse_part738_xml(xml, issue_date=DATE, url="mirror/738")
    with pytest.raises(destinations.EcfrDataError, match=r"no DIV9 N='Supplement No\. 1 to Part 740'"):
        destinations.parse_part740_xml(xml, issue_date=DATE, url="mirror/740")


def _settings(mirror: reference_mirror.Mirror | None, **changes: object) -> Settings:
    urls: dict[str, object] = (
        {"ecfr_api_url": mirror.ecfr_api_url, "screening_update_base_url": mirror.lists_base_url}
        if mirror is not None
        else {}
    )
    return load_settings("launcher", **{**urls, **changes})


def test_fetch_takes_every_source_from_the_publishers_and_the_services_loaders_read_it(
    data_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "var" / "data"
    with publishers(data_dir, tmp_path / "mirror") as mirror:
        manifest = asyncio.run(
            reference_data.fetch_all(target, _settings(mirror), console=Console(file=io.StringIO()))
        )
        fetched = {
            r.split("?")[0].rsplit("/", 1)[-1] + "?" + r.split("?")[-1]
            for r in mirror.ecfr.requests
            if "/full/" in r
        }
    assert (
        reference_data.read_manifest(target) == manifest and not (tmp_path / "var" / "data.partial").exists()
    )
    assert fetched == {f"title-{t}.xml?part={p}" for t, p, _ in reference_data.ECFR_PARTS}
    assert refdata.load_reference_data(target).chart == refdata.load_reference_data(data_dir).chart
    assert load_ccl(target).issue_date == DATE
    specs = parse_sources(manifest["screening_sources"])
    assert {s.kind for s in specs} == set(reference_data.LIST_KINDS)
    for spec in specs:
        configured = parse_sources(Settings.model_fields["screening_sources"].default)
        original = next(s for s in configured if s.kind == spec.kind)
        assert len(load_source(spec.kind, target / spec.folder).entries) == len(
            load_source(spec.kind, data_dir / original.folder).entries
        )
    recorded = {s["file"] for s in manifest["sources"]}
    assert "controls/us/us_ecfr_title22_part121_usml.xml" in recorded
    assert all(len(s["sha256"]) == 64 for s in manifest["sources"] if "sha256" in s)


def test_a_truncated_list_is_refused_and_nothing_is_kept(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "var" / "data"
    with publishers(data_dir, tmp_path / "mirror") as mirror:
        dpl = mirror.lists.path_of("bis_dpl", "dpl.txt")
        dpl.write_bytes(b"\n".join(dpl.read_bytes().splitlines()[:50]) + b"\n")
        with pytest.raises(reference_data.ReferenceDataMissing) as refused:
            asyncio.run(
                reference_data.fetch_all(target, _settings(mirror), console=Console(file=io.StringIO()))
            )
    message = str(refused.value)
    assert "bis_dpl" in message and "fewer than 200" in message and "EXPORTWATCH_DATA_DIR" in message
    assert "\n" not in message
    assert not target.exists() and not (tmp_path / "var" / "data.partial").exists()


def test_offline_says_in_one_line_what_is_missing_and_how_to_point_at_a_snapshot(tmp_path: Path) -> None:
    closed = "http://127.0.0.1:9/api/versioner/v1"  # the discard port: nothing listens there
    with pytest.raises(reference_data.ReferenceDataMissing) as missing:
        asyncio.run(
            reference_data.fetch_all(
                tmp_path / "data", _settings(None, ecfr_api_url=closed), console=Console(file=io.StringIO())
            )
        )
    message = str(missing.value)
    assert "\n" not in message and message.startswith("reference data missing:")
    for named in ("15 CFR 738", "15 CFR 774", "22 CFR 121", "ofac_sdn", "uk_ofsi", "EXPORTWATCH_DATA_DIR"):
        assert named in message
    assert "127.0.0.1:9" in message


def test_a_configured_snapshot_or_the_one_beside_the_checkout_is_used_as_it_is(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORTWATCH_DATA_DIR", str(data_dir))
    chosen = reference_data.choose(tmp_path, _settings(None))
    assert (chosen.data_dir, chosen.origin, chosen.environment) == (data_dir, "EXPORTWATCH_DATA_DIR", {})
    monkeypatch.setenv("EXPORTWATCH_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(reference_data.ReferenceDataMissing, match="is not a directory"):
        reference_data.choose(tmp_path, _settings(None))
    monkeypatch.delenv("EXPORTWATCH_DATA_DIR")
    assert reference_data.choose(tmp_path, _settings(None)).origin == "snapshot beside the checkout"
    assert not (tmp_path / "data").exists()


def test_a_complete_fetched_snapshot_is_reused_without_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXPORTWATCH_DATA_DIR", raising=False)
    monkeypatch.setattr(reference_data, "default_data_dir", lambda: tmp_path / "no-snapshot")
    (tmp_path / "data").mkdir()
    manifest = {"complete": True, "screening_sources": "ofac_sdn:screening/ofac_sdn/20261207T000000Z"}
    (tmp_path / "data" / "manifest.json").write_text(json.dumps(manifest))
    closed = _settings(None, ecfr_api_url="http://127.0.0.1:9/api/versioner/v1")
    chosen = reference_data.choose(tmp_path, closed)
    assert chosen.origin == "fetched earlier"
    assert chosen.environment == {
        "EXPORTWATCH_DATA_DIR": str(tmp_path / "data"),
        "EXPORTWATCH_SCREENING_SOURCES": manifest["screening_sources"],
    }
    with pytest.raises(reference_data.ReferenceDataMissing):
        reference_data.choose(tmp_path, closed, refresh=True, console=Console(file=io.StringIO()))
