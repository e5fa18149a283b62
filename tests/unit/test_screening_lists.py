"""List loaders: the publishers' format quirks, on small inline files written as bytes."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from services.screening.lists import (
    ListFormatError,
    country_code,
    csl_list_id,
    load_csl,
    load_ofac_sdn,
    load_sources,
    parse_sources,
)

# OFAC legacy CSV exactly as published: no header, CRLF, `-0-` nulls padded with a space, and a
# last line holding only Ctrl-Z (0x1A).
SDN = (
    b'306,"BANCO NACIONAL DE CUBA",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,"a.k.a. \'BNC\'."\r\n'
    b'7157,"AL ZAWAHIRI, Dr. Ayman","individual","SDGT] [SDT",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n'
    b'9999,"BROKEN ROW","-0- "\r\n'
    b'15036,"ADRIAN DARYA 1","vessel","IRAN-EO13846",-0- ,"9116412","Crude Oil Tanker",-0- ,-0- ,'
    b'"Iran",-0- ,-0- \r\n'
    b"\x1a"
)
ALT = (
    b'306,220,"aka","NATIONAL BANK OF CUBA",-0- \r\n'
    b'7157,4242,"aka","AL-ZAWAHIRI, Ayman",-0- \r\n'
    b'4711,1,"aka","ORPHAN ALIAS",-0- \r\n'
    b"\x1a"
)
ADD = (
    b'306,199,"Avenida de Cuba","Havana","Cuba",-0- \r\n'
    b'306,200,"Dai-Ichi Bldg","Tokyo","Japan",-0- \r\n'
    b'7157,300,-0- ,-0- ,"Korea, North",-0- \r\n'
    b"15036,301,-0- ,-0- ,-0- ,-0- \r\n"
    b"\x1a"
)


@pytest.fixture
def ofac_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "screening" / "us_ofac_sdn" / "2023-12-28"
    folder.mkdir(parents=True)
    (folder / "sdn.csv").write_bytes(SDN)
    (folder / "alt.csv").write_bytes(ALT)
    (folder / "add.csv").write_bytes(ADD)
    return folder


def test_ofac_legacy_csv_reads_crlf_nulls_and_eof_marker(ofac_folder: Path) -> None:
    loaded = load_ofac_sdn(ofac_folder, "ofac_sdn:test")
    by_id = {e.entry_id: e for e in loaded.entries}

    assert sorted(by_id) == ["15036", "306", "7157"]
    bank = by_id["306"]
    assert bank.list_id == "SDN"
    assert bank.entry_type == "entity"  # SDN_Type `-0-` means entity
    assert bank.programs == ("CUBA",)
    assert bank.aliases == ("NATIONAL BANK OF CUBA",)
    assert bank.countries == ("CU", "JP")
    assert dict(bank.details) == {"remarks": "a.k.a. 'BNC'."}  # `-0- ` padded nulls are dropped

    person = by_id["7157"]
    assert person.entry_type == "individual"
    assert person.programs == ("SDGT", "SDT")  # "SDGT] [SDT" split on "] ["
    assert person.countries == ("KP",)
    vessel = by_id["15036"]
    assert vessel.entry_type == "vessel"
    assert dict(vessel.details)["call_sign"] == "9116412"
    assert vessel.countries == ()


def test_ofac_malformed_and_orphan_rows_are_logged_with_line_and_counted(
    ofac_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="exportwatch.screening.lists"):
        loaded = load_ofac_sdn(ofac_folder, "ofac_sdn:test")

    assert loaded.info.rows_skipped == 2
    assert loaded.info.skipped_examples == (
        "sdn.csv:3: expected 12 columns, found 3",
        "alt.csv:3: ent_num '4711' is not in sdn.csv",
    )
    assert "sdn.csv:3: expected 12 columns" in caplog.text
    # The Ctrl-Z line is the format's end marker, not a bad row; rows read excludes it.
    assert loaded.info.rows_read == 4 + 3 + 4


def test_source_version_is_a_hash_over_its_files_and_date_comes_from_folder(ofac_folder: Path) -> None:
    info = load_ofac_sdn(ofac_folder, "ofac_sdn:test").info
    digest = hashlib.sha256()
    for name, raw in (("sdn.csv", SDN), ("alt.csv", ALT), ("add.csv", ADD)):
        digest.update(name.encode() + b"\0" + raw)

    assert info.version == f"sha256:{digest.hexdigest()[:12]}"
    assert info.published == "2023-12-28"
    assert [(i.list_id, i.entries, i.aliases) for i in info.lists] == [("SDN", 3, 2)]


def test_ofac_file_that_is_not_utf8_stops_loading(ofac_folder: Path) -> None:
    (ofac_folder / "alt.csv").write_bytes(b'306,220,"aka","BANCO \xe9",-0- \r\n')
    with pytest.raises(ListFormatError, match=r"alt.csv: not UTF-8 at byte 21"):
        load_ofac_sdn(ofac_folder, "ofac_sdn:test")


CSL_HEADER = (
    b"_id,source,entity_number,type,programs,name,title,addresses,federal_register_notice,start_date,"
    b"end_date,standard_order,license_requirement,license_policy,call_sign,vessel_type,gross_tonnage,"
    b"gross_registered_tonnage,vessel_flag,vessel_owner,remarks,source_list_url,alt_names,citizenships,"
    b"dates_of_birth,nationalities,places_of_birth,source_information_url,ids\n"
)
CSL_ROWS = (
    b"x-2938,Entity List (EL) - Bureau of Industry and Security,,,,Chengdu Latest Electronics Technology "
    b"Company,,CN,84 FR 40241,,,,For all items subject to the EAR.,Presumption of denial.,,,,,,,,,,,,,,,\n"
    b"12927-1,Specially Designated Nationals (SDN) - Treasury Department,12927,Entity,SDGT; NPWMD,MAHAN AIR,,"
    b'IR,,,,,,,,,,,,,,,"MAHAN AIRLINES; MAHAN AIRWAYS",,,,,,\n'
    b"x-1,Imaginary List (XYZ) - Nowhere,,,,SOMEONE,,,,,,,,,,,,,,,,,,,,,,,\n"
    b"x-2,Unverified List (UVL) - Bureau of Industry and Security,,,,,,AM,,,,,,,,,,,,,,,,,,,,,\n"
    b"x-3,Denied Persons List (DPL) - Bureau of Industry and Security,,,,"
    b'"Cho Yan Nathan; a.k.a Nathan Man Man",,"1 Main St, Hong Kong, , , HK; PRC",,,,,,,,,,,,,,,,,,,,,\n'
)


@pytest.fixture
def csl_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "screening" / "us_trade_csl" / "2026-07-31"
    folder.mkdir(parents=True)
    (folder / "consolidated.csv").write_bytes(CSL_HEADER + CSL_ROWS)
    return folder


def test_csl_entries_keep_their_source_list_identity(csl_folder: Path) -> None:
    loaded = load_csl(csl_folder, "csl:test")
    by_list = {e.list_id: e for e in loaded.entries}

    assert sorted(by_list) == ["DPL", "EL", "SDN"]
    entity_list = by_list["EL"]
    assert entity_list.entry_id == "x-2938"  # no entity_number: the CSL's _id
    assert entity_list.countries == ("CN",)
    assert dict(entity_list.details)["license_policy"] == "Presumption of denial."
    sdn = by_list["SDN"]
    assert sdn.entry_id == "12927"  # OFAC's ent_num, the same id as in sdn.csv
    assert sdn.aliases == ("MAHAN AIRLINES", "MAHAN AIRWAYS")
    assert sdn.programs == ("SDGT", "NPWMD")
    assert sdn.entry_type == "entity"
    denied = by_list["DPL"]
    assert (denied.name, denied.aliases) == ("Cho Yan Nathan", ("Nathan Man Man",))
    assert denied.countries == ("HK", "CN")  # "street, city, ..., CC" items and "PRC"
    assert denied.addresses == ("1 Main St, Hong Kong, HK",)
    # The DPL has no ids: the name's slug, as the BIS file's loader gives it, so the two copies meet.
    assert denied.entry_id == "CHO-YAN-NATHAN"


def test_csl_unknown_list_and_nameless_rows_are_skipped_and_counted(csl_folder: Path) -> None:
    info = load_csl(csl_folder, "csl:test").info

    assert info.rows_read == 5
    assert info.rows_skipped == 2
    assert info.skipped_examples == (
        "consolidated.csv:4: unknown source list 'Imaginary List (XYZ) - Nowhere'",
        "consolidated.csv:5: empty name",
    )
    assert {i.list_id: i.name for i in info.lists}[
        "EL"
    ] == "Entity List (EL) - Bureau of Industry and Security"


def test_csl_without_its_header_is_refused(csl_folder: Path) -> None:
    (csl_folder / "consolidated.csv").write_bytes(CSL_ROWS)
    with pytest.raises(ListFormatError, match="header lacks columns"):
        load_csl(csl_folder, "csl:test")


@pytest.mark.parametrize(
    ("source", "list_id"),
    [
        ("Entity List (EL) - Bureau of Industry and Security", "EL"),
        ("Non-SDN Menu-Based Sanctions List (NS-MBS List) - Treasury Department", "NS-MBS"),
        ("Capta List (CAP) - Treasury Department", "CAP"),
        ("Military End User (MEU) List - Bureau of Industry and Security", "MEU"),
        ("Something else", None),
    ],
)
def test_csl_source_names_map_to_short_list_ids(source: str, list_id: str | None) -> None:
    assert csl_list_id(source) == list_id


@pytest.mark.parametrize(
    ("written", "code"),
    [("Korea, North", "KP"), ("Burma", "MM"), ("Iran", "IR"), ("Germany", "DE"), ("undetermined", None)],
)
def test_country_names_as_ofac_writes_them_resolve_to_iso_codes(written: str, code: str | None) -> None:
    assert country_code(written) == code


def test_sources_setting_is_parsed_and_bad_values_name_the_setting(tmp_path: Path) -> None:
    specs = parse_sources("ofac_sdn:screening/us_ofac_sdn/2023-12-28, csl:screening/us_trade_csl/2026-07-31")
    assert [(s.kind, s.folder) for s in specs] == [
        ("ofac_sdn", "screening/us_ofac_sdn/2023-12-28"),
        ("csl", "screening/us_trade_csl/2026-07-31"),
    ]
    with pytest.raises(ValueError, match=r"EXPORTWATCH_SCREENING_SOURCES=.*unknown kind 'xml'"):
        parse_sources("xml:screening/un")
    with pytest.raises(ValueError, match="is not 'kind:folder'"):
        parse_sources("screening/us_ofac_sdn/2023-12-28")
    with pytest.raises(ListFormatError, match="cannot read"):
        load_sources(tmp_path, "csl:screening/missing/2026-07-31")
    with pytest.raises(ValueError, match="kind 'csl' is named twice"):
        parse_sources("csl:screening/us_trade_csl/2022-05-06,csl:screening/us_trade_csl/2026-07-31")


def test_every_entry_carries_a_content_version_that_changes_with_its_content(ofac_folder: Path) -> None:
    before = {e.entry_id: e.content_version for e in load_ofac_sdn(ofac_folder, "ofac_sdn").entries}
    (ofac_folder / "alt.csv").write_bytes(ALT.replace(b"NATIONAL BANK OF CUBA", b"BANCO NACIONAL"))
    after = {e.entry_id: e.content_version for e in load_ofac_sdn(ofac_folder, "ofac_sdn").entries}

    assert all(len(v) == 16 for v in before.values())
    assert before["306"] != after["306"]  # its alias changed
    assert before["7157"] == after["7157"] and before["15036"] == after["15036"]


def test_ofac_comments_overflow_is_appended_to_the_remarks(ofac_folder: Path) -> None:
    (ofac_folder / "sdn_comments.csv").write_bytes(b'306," Linked To: BANCO X."\r\n4711,"orphan"\r\n\x1a')
    loaded = load_ofac_sdn(ofac_folder, "ofac_sdn")

    bank = next(e for e in loaded.entries if e.entry_id == "306")
    assert dict(bank.details)["remarks"] == "a.k.a. 'BNC'. Linked To: BANCO X."
    assert loaded.info.files == ("sdn.csv", "alt.csv", "add.csv", "sdn_comments.csv")
    assert "sdn_comments.csv:2: ent_num '4711' is not in sdn.csv" in loaded.info.skipped_examples
