"""The four formats beyond the skeleton's two: OFAC consolidated non-SDN, BIS DPL, UN XML, OFSI ConList.

Each on a small inline file in the publisher's layout, with the quirks PROVENANCE.md describes, and one
malformed row that must be reported with its file and line and skipped.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import pytest

from services.screening.lists import (
    ListFormatError,
    country_codes,
    dpl_entry_id,
    load_bis_dpl,
    load_ofac_non_sdn,
    load_uk_ofsi,
    load_un_sc,
    non_sdn_list,
)
from services.screening.lists.reading import text_lines


def _folder(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    for file, data in files.items():
        (folder / file).write_bytes(data)
    return folder


# --- OFAC consolidated non-SDN ------------------------------------------------------------------

CONS_PRIM = (
    b'17014,"VTB BANK PJSC",-0- ,"UKRAINE-EO13662] [RUSSIA-EO14024",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,'
    b'"SWIFT/BIC VTBRRUMM."\r\n'
    b'9639,"HANIYA, Ismail Abdul Salah","individual","NS-PLC",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,'
    b'"DOB 1962."\r\n'
    b'32091,"CHINA MOBILE COMMUNICATIONS GROUP CO., LTD.",-0- ,"CMIC-EO13959",-0- ,-0- ,-0- ,-0- ,-0- ,'
    b"-0- ,-0- ,-0- \r\n"
    b'40001,"SOME RUSSIAN FUND",-0- ,"RUSSIA-EO14024",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n'
    b'27000,"BANK MELLI FRANCE",-0- ,"561-Related",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n'
    b'abc,"NO NUMBER",-0- ,"NS-PLC",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n'
    b"\x1a"
)
CONS_ALT = (
    b'9639,9150,"aka","HANIYA, Ismail",-0- \r\n9639,9151,"aka","HANIYYA, Ismaeel","Low quality"\r\n\x1a'
)
CONS_ADD = b'17014,1,"29 Vorontsovskaya St","Moscow","Russia",-0- \r\n\x1a'


def test_non_sdn_entries_keep_their_own_list_by_programme(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        "us_ofac_non_sdn/2025-12-19",
        {"cons_prim.csv": CONS_PRIM, "cons_alt.csv": CONS_ALT, "cons_add.csv": CONS_ADD},
    )
    loaded = load_ofac_non_sdn(folder, "ofac_non_sdn")
    by_id = {e.entry_id: e for e in loaded.entries}

    assert {k: e.list_id for k, e in by_id.items()} == {
        "17014": "SSI",  # an SSI entity also under EO 14024 stays on the SSI, as the CSL files it
        "9639": "PLC",
        "32091": "CMIC",
        "40001": "NS-MBS",
        "27000": "CAP",
    }
    haniya = by_id["9639"]
    assert haniya.entry_type == "individual"
    assert haniya.aliases == ("HANIYA, Ismail", "HANIYYA, Ismaeel")
    assert haniya.weak_aliases == ("HANIYYA, Ismaeel",)
    assert by_id["17014"].addresses == ("29 Vorontsovskaya St, Moscow, Russia",)
    assert by_id["17014"].countries == ("RU",)
    assert loaded.info.skipped_examples == ("cons_prim.csv:6: ent_num 'abc' is not a number",)
    assert loaded.info.kind == "ofac_non_sdn" and loaded.info.published == "2025-12-19"


@pytest.mark.parametrize(
    ("programs", "list_id"),
    [
        (("UKRAINE-EO13662",), "SSI"),
        (("SDGT", "NS-PLC"), "PLC"),
        (("CMIC-EO13959",), "CMIC"),
        (("FSE-IR",), "FSE"),
        (("CAATSA - RUSSIA",), "NS-MBS"),
        (("BURMA-EO14014",), "NS-MBS"),
    ],
)
def test_non_sdn_programme_codes_name_the_list(programs: tuple[str, ...], list_id: str) -> None:
    assert non_sdn_list(programs)[0] == list_id


# --- BIS Denied Persons List ----------------------------------------------------------------------

DPL_HEADER = (
    '"Name"\t"Street_Address"\t"City"\t"State"\t"Country"\t"Postal_Code"\t"Effective_Date"\t'
    '"Expiration_Date"\t"Standard_Order"\t"Last_Update"\t"Action"\t"FR_Citation"\n'
)


def _dpl_row(name: str, street: str, country: str, effective: str, expiration: str, fr: str) -> str:
    values = [
        name,
        street,
        "RICHARDSON",
        "TX",
        country,
        "75081",
        effective,
        expiration,
        "Y",
        "2006-07-11",
        "50 YEAR DENIAL",
        fr,
    ]
    return "\t".join(f'"{v}"' for v in values) + "\n"


DPL = (
    DPL_HEADER
    + _dpl_row("ABDULAH AL NASSER", "605 TRAIL LAKE DRIVE", "US", "03/04/2002", "06/29/2056", "67 F.R. 56530")
    + _dpl_row("ABDULAH AL NASSER", "908 AUDELIA ROAD", "US", "03/04/2002", "06/29/2056", "67 F.R. 56530")
    + _dpl_row(" I. ASH", "605 TRAIL LAKE DRIVE", "", "06/19/2003", "06/29/2056", "68 F.R. 38290")
    + _dpl_row("I. ASH", "FCI SEAGOVILLE", "US", "03/04/2002", "06/29/2056", "67 F.R. 10890")
    + '"BROKEN ROW"\t"1 MAIN ST"\n'
    + _dpl_row("", "2 MAIN ST", "US", "01/01/2020", "01/01/2030", "85 F.R. 1")
    + _dpl_row("AL NASER AIRLINES", "P.O. BOX 28360", "IQ", "10/31/2023", "10/30/2024", "88 F.R. 75247")
    + _dpl_row("AL-NASER  AIRLINES", "P.O. BOX 911399", "IQ", "10/31/2023", "10/30/2024", "88 F.R. 75247")
).encode()


def test_dpl_rows_of_one_name_are_one_denied_person_with_addresses_and_orders(tmp_path: Path) -> None:
    loaded = load_bis_dpl(_folder(tmp_path, "us_bis_dpl/2023-11-30", {"dpl.txt": DPL}), "bis_dpl")
    by_id = {e.entry_id: e for e in loaded.entries}

    assert sorted(by_id) == ["ABDULAH-AL-NASSER", "AL-NASER-AIRLINES", "I-ASH"]
    nasser = by_id["ABDULAH-AL-NASSER"]
    assert (nasser.list_id, nasser.name, nasser.entry_type) == ("DPL", "ABDULAH AL NASSER", None)
    assert nasser.addresses == (
        "605 TRAIL LAKE DRIVE, RICHARDSON, TX, 75081, US",
        "908 AUDELIA ROAD, RICHARDSON, TX, 75081, US",
    )
    assert nasser.countries == ("US",)
    details = dict(nasser.details)
    assert (details["effective_date"], details["expiration_date"]) == ("2002-03-04", "2056-06-29")
    assert details["fr_citation"] == "67 F.R. 56530"
    # Two denial orders of one person: both kept, in file order.
    assert dict(by_id["I-ASH"].details)["effective_date"] == "2003-06-19 | 2002-03-04"
    # Spellings that differ only in punctuation are one listed party (the same order).
    assert by_id["AL-NASER-AIRLINES"].aliases == ("AL-NASER AIRLINES",)

    info = loaded.info
    assert (info.rows_read, info.rows_skipped, loaded.rows_merged) == (8, 2, 3)
    assert info.skipped_examples == (
        "dpl.txt:6: expected 12 tab-separated fields, found 2",
        "dpl.txt:7: empty Name",
    )
    assert [(x.list_id, x.entries) for x in info.lists] == [("DPL", 3)]


def test_dpl_with_another_header_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "us_bis_dpl/2023-11-30", {"dpl.txt": b"<html><body>BIS home</body></html>\n"})
    with pytest.raises(ListFormatError, match="header is not the BIS layout"):
        load_bis_dpl(folder, "bis_dpl")


def test_dpl_entry_id_is_the_same_for_the_bis_file_and_the_csl() -> None:
    assert dpl_entry_id("PPC Computer Handles GmbH") == dpl_entry_id("PPC COMPUTER HANDLES GMBH")
    assert dpl_entry_id('SHAOHUA "ERIC" WANG') == "SHAOHUA-ERIC-WANG"


# --- UN Security Council XML ------------------------------------------------------------------------

UN_XML = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<CONSOLIDATED_LIST xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" dateGenerated="2026-02-27T00:00:09.554Z">
  <INDIVIDUALS>
    <INDIVIDUAL>
      <DATAID>6908555</DATAID>
      <FIRST_NAME>SADDAM</FIRST_NAME>
      <SECOND_NAME>HUSSEIN</SECOND_NAME>
      <THIRD_NAME>AL-TIKRITI</THIRD_NAME>
      <UN_LIST_TYPE>Iraq</UN_LIST_TYPE>
      <REFERENCE_NUMBER>IQi.001</REFERENCE_NUMBER>
      <LISTED_ON>2003-06-27</LISTED_ON>
      <NAME_ORIGINAL_SCRIPT>صدام حسين التكريتي</NAME_ORIGINAL_SCRIPT>
      <NATIONALITY><VALUE>Iraq</VALUE></NATIONALITY>
      <INDIVIDUAL_ALIAS><QUALITY>Good</QUALITY><ALIAS_NAME>Abu Ali</ALIAS_NAME></INDIVIDUAL_ALIAS>
      <INDIVIDUAL_ALIAS><QUALITY>Low</QUALITY><ALIAS_NAME>Abu Uday</ALIAS_NAME></INDIVIDUAL_ALIAS>
      <INDIVIDUAL_ALIAS><QUALITY/><ALIAS_NAME/></INDIVIDUAL_ALIAS>
      <INDIVIDUAL_ADDRESS><COUNTRY>Syrian Arab Republic</COUNTRY></INDIVIDUAL_ADDRESS>
      <INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>EXACT</TYPE_OF_DATE><DATE>1937-04-28</DATE></INDIVIDUAL_DATE_OF_BIRTH>
    </INDIVIDUAL>
    <INDIVIDUAL>
      <DATAID>1</DATAID>
      <FIRST_NAME>NOBODY</FIRST_NAME>
      <UN_LIST_TYPE>Iraq</UN_LIST_TYPE>
    </INDIVIDUAL>
  </INDIVIDUALS>
  <ENTITIES>
    <ENTITY>
      <FIRST_NAME>KOREA MINING DEVELOPMENT TRADING CORPORATION</FIRST_NAME>
      <UN_LIST_TYPE>DPRK</UN_LIST_TYPE>
      <REFERENCE_NUMBER>KPe.001</REFERENCE_NUMBER>
      <ENTITY_ALIAS><QUALITY>a.k.a.</QUALITY><ALIAS_NAME>KOMID</ALIAS_NAME></ENTITY_ALIAS>
      <ENTITY_ADDRESS><STREET>Central District</STREET><CITY>Pyongyang</CITY>
        <COUNTRY>Democratic People's Republic of Korea</COUNTRY></ENTITY_ADDRESS>
    </ENTITY>
  </ENTITIES>
</CONSOLIDATED_LIST>
""".encode()


def test_un_xml_individuals_and_entities_with_aliases_scripts_and_countries(tmp_path: Path) -> None:
    loaded = load_un_sc(_folder(tmp_path, "un/2026-02-27", {"consolidated.xml": UN_XML}), "un_sc")
    by_id = {e.entry_id: e for e in loaded.entries}

    assert sorted(by_id) == ["IQi.001", "KPe.001"]
    saddam = by_id["IQi.001"]
    assert (saddam.list_id, saddam.name, saddam.entry_type) == (
        "UN",
        "SADDAM HUSSEIN AL-TIKRITI",
        "individual",
    )
    assert saddam.aliases == ("Abu Ali", "Abu Uday", "صدام حسين التكريتي")  # the empty alias is no alias
    assert saddam.weak_aliases == ("Abu Uday",)
    assert saddam.countries == ("IQ", "SY")
    assert saddam.programs == ("Iraq",)
    assert dict(saddam.details)["dates_of_birth"] == "1937-04-28"
    komid = by_id["KPe.001"]
    assert (komid.entry_type, komid.aliases, komid.countries) == ("entity", ("KOMID",), ("KP",))
    assert komid.addresses == ("Central District, Pyongyang, Democratic People's Republic of Korea",)
    assert loaded.info.skipped_examples == (
        "consolidated.xml:20: INDIVIDUAL 'NOBODY' has no REFERENCE_NUMBER",
    )
    assert loaded.info.published == "2026-02-27"  # from dateGenerated, not the folder name


def test_un_xml_that_is_not_well_formed_names_the_line(tmp_path: Path) -> None:
    broken = UN_XML.replace(b"</ENTITY>\n", b"</ENTITYX>\n")
    with pytest.raises(ListFormatError, match=r"consolidated.xml:\d+: not well-formed XML"):
        load_un_sc(_folder(tmp_path, "un/2026-02-27", {"consolidated.xml": broken}), "un_sc")


# --- UK OFSI ConList ------------------------------------------------------------------------------

UK_COLUMNS = (
    "Name 6,Name 1,Name 2,Name 3,Name 4,Name 5,Title,Name Non-Latin Script,Non-Latin Script Type,"
    "Non-Latin Script Language,DOB,Town of Birth,Country of Birth,Nationality,Passport Number,Passport Details,"
    "National Identification Number,National Identification Details,Position,Address 1,Address 2,Address 3,"
    "Address 4,Address 5,Address 6,Post/Zip Code,Country,Other Information,Group Type,Alias Type,Alias Quality,"
    "Regime,Listed On,UK Sanctions List Date Designated,Last Updated,Group ID"
).split(",")


def _uk_row(**values: str) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([values.get(c, "") for c in UK_COLUMNS])
    return out.getvalue()


HAQ = {
    "Name 1": "Mian",
    "Group Type": "Individual",
    "Regime": "Global Human Rights",
    "Group ID": "15672",
    "Country": "Pakistan",
    "Nationality": "Pakistan",
    "Listed On": "09/12/2022",
    "Other Information": "(UK Sanctions List Ref):GHR0086. (Gender):Male",
}
UK = (
    "Last Updated,10/04/2025\n"
    + ",".join(UK_COLUMNS)
    + "\n"
    + _uk_row(**HAQ, **{"Name 6": "MITHOO", "Alias Type": "Primary name variation"})
    + _uk_row(
        **HAQ,
        **{
            "Name 6": "HAQ",
            "Name 2": "Abdul",
            "Alias Type": "Primary name",
            "Title": "Mr",
            "Address 1": "Hafizabad Taluka Daharki",
            "Address 2": "District Ghotki",
        },
    )
    + _uk_row(
        **HAQ,
        **{
            "Name 6": "PIR",
            "Alias Type": "AKA",
            "Alias Quality": "Low quality",
            "Name Non-Latin Script": "میاں عبدالحق",
        },
    )
    + _uk_row(
        **{
            "Name 6": "ADRIAN DARYA 1",
            "Group Type": "Ship",
            "Alias Type": "Primary name",
            "Group ID": "13782",
            "Regime": "Iran",
        }
    )
    + _uk_row(**{"Name 6": "ROGUE", "Group Type": "Person", "Alias Type": "Primary name", "Group ID": "99"})
    + _uk_row(**{"Name 6": "NO GROUP", "Group Type": "Entity", "Alias Type": "Primary name"})
).encode()


def test_ofsi_rows_are_grouped_by_group_id_into_targets(tmp_path: Path) -> None:
    loaded = load_uk_ofsi(_folder(tmp_path, "uk/2025-04-10", {"ConList.csv": UK}), "uk_ofsi")
    by_id = {e.entry_id: e for e in loaded.entries}

    assert sorted(by_id) == ["13782", "15672"]
    haq = by_id["15672"]
    # The "Primary name" row names the target, given names first; the other rows are its aliases.
    assert (haq.list_id, haq.name, haq.entry_type) == ("UK", "Mian Abdul HAQ", "individual")
    assert haq.aliases == ("Mian MITHOO", "Mian PIR", "میاں عبدالحق")
    assert haq.weak_aliases == ("Mian PIR",)
    assert haq.countries == ("PK",)
    assert haq.programs == ("Global Human Rights",)
    assert haq.addresses == ("Hafizabad Taluka Daharki, District Ghotki, Pakistan",)
    details = dict(haq.details)
    assert (details["uk_sanctions_list_ref"], details["listed_on"]) == ("GHR0086", "2022-12-09")
    assert by_id["13782"].entry_type == "vessel"

    info = loaded.info
    assert info.published == "2025-04-10"  # line 1, "Last Updated,10/04/2025" (DD/MM/YYYY)
    assert (info.rows_read, info.rows_skipped, loaded.rows_merged) == (6, 2, 2)
    assert info.skipped_examples == (
        "ConList.csv:7: Group ID 99: unknown Group Type 'Person'",
        "ConList.csv:8: no Group ID",
    )


def test_ofsi_file_without_its_last_updated_line_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "uk/2025-04-10", {"ConList.csv": UK.split(b"\n", 1)[1]})
    with pytest.raises(ListFormatError, match=r"ConList.csv:1: expected 'Last Updated,DD/MM/YYYY'"):
        load_uk_ofsi(folder, "uk_ofsi")


# --- shared --------------------------------------------------------------------------------------


def test_publication_date_comes_from_the_fetch_manifest_when_the_folder_is_a_timestamp(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _folder(tmp_path, "bis_dpl/20261130T060000000000Z", {"dpl.txt": DPL})
    (folder / "manifest.json").write_text(json.dumps({"published": "2026-11-27"}))
    with caplog.at_level(logging.WARNING):
        assert load_bis_dpl(folder, "bis_dpl").info.published == "2026-11-27"


@pytest.mark.parametrize(
    ("written", "codes"),
    [
        ("(1) Cyprus (2) Russia (3) Ukraine", ["CY", "RU", "UA"]),
        ("Korea, North", ["KP"]),
        ("Iran (Islamic Republic of)", ["IR"]),
        ("Iraq (previous address)", ["IQ"]),
        ("Estonia, Russia", ["EE", "RU"]),
        ("Congo (Democratic Republic)", ["CD"]),
        ("former Soviet Union", []),
    ],
)
def test_countries_as_un_and_ofsi_write_them(written: str, codes: list[str]) -> None:
    assert country_codes(written) == codes


@pytest.mark.parametrize(
    "text",
    ["", "a", "a,b\n", "a,b\r\nc,d", 'a,"x\ny"\rb\r\r\nc\n\n', "x\u2028y,z\n", '"q\r\n"\r\n', "Ж,ع\n"],
)
def test_a_list_file_is_read_line_by_line_as_a_file_opened_with_newline_empty(text: str) -> None:
    # The loaders read CSV through text_lines rather than a copy of the whole file (io.StringIO).
    assert list(text_lines(text)) == list(io.StringIO(text, newline=""))
    with_stringio = csv.reader(io.StringIO(text, newline=""))
    with_lines = csv.reader(text_lines(text))
    assert [(row, with_lines.line_num) for row in with_lines] == [
        (row, with_stringio.line_num) for row in with_stringio
    ]
