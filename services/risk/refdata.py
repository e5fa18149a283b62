"""Loaders of the destination reference data, each in its publisher's (or compiler's) own format.

Read in place from `<data_dir>/controls/` (see controls/PROVENANCE.md):
- us/us_country_chart_part738_supp1.csv (+ _footnotes.csv): Commerce Country Chart, 15 CFR 738 Supp. 1
- us/us_country_groups_part740_supp1.csv: Country Groups A:1 ... E:2, 15 CFR 740 Supp. 1
- us/us_ear_embargoed_sanctioned_destinations.csv: embargoed and specially controlled destinations, Part 746
- us/us_license_exceptions_part740.json: the licence exceptions of Part 740
- us/us_ecfr_title15_part744.xml: Part 744 as the eCFR serves it; Supplement No. 2 (the items of the
  military end-use/end-user rule, 744.21) is read from it

Each file's version is `sha256:<first 12 hex of its bytes>` plus its eCFR issue date (from the JSON
the CSV was derived from) or, for the compiled Part 746 file, the compilation date in PROVENANCE.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from services.risk.domain import ChartRow, LicenseExceptionInfo, Part746Destination, ReferenceData
from shared.events import ISO_COUNTRIES

CHART_CSV = "controls/us/us_country_chart_part738_supp1.csv"
CHART_JSON = "controls/us/us_country_chart_part738_supp1.json"
FOOTNOTES_CSV = "controls/us/us_country_chart_footnotes_part738_supp1.csv"
GROUPS_CSV = "controls/us/us_country_groups_part740_supp1.csv"
GROUPS_JSON = "controls/us/us_country_groups_part740_supp1.json"
EMBARGO_CSV = "controls/us/us_ear_embargoed_sanctioned_destinations.csv"
EXCEPTIONS_JSON = "controls/us/us_license_exceptions_part740.json"
PART744_XML = "controls/us/us_ecfr_title15_part744.xml"
PROVENANCE = "controls/PROVENANCE.md"
_SUPP2_ITEM = re.compile(r"^\((?:[ivxl]+)\)\s+(\d[A-E]\d{3})\b\s*(.*)$", re.S)

_CHART_COLUMN = re.compile(r"^[A-Z]{2}\d$")
_GROUP_COLUMN = re.compile(r"^(?:[A-E]:\d|B)$")
# ISO 3166-1 alpha-2, or ISO 3166-2 for the sub-national regions of 746.6 (UA-43, ...).
_DESTINATION_CODE = re.compile(r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?$")


class RefDataError(ValueError):
    """A reference file is missing or not in the expected format; names the file and the row."""


def load_reference_data(data_dir: Path) -> ReferenceData:
    chart_raw = _read(data_dir, CHART_CSV)
    footnotes_raw = _read(data_dir, FOOTNOTES_CSV)
    groups_raw = _read(data_dir, GROUPS_CSV)
    embargo_raw = _read(data_dir, EMBARGO_CSV)
    exceptions_raw = _read(data_dir, EXCEPTIONS_JSON)
    part744_raw = _read(data_dir, PART744_XML)
    chart_date = _json_field(data_dir, CHART_JSON, "ecfrIssueDate")
    groups_date = _json_field(data_dir, GROUPS_JSON, "ecfrIssueDate")
    exceptions = json.loads(exceptions_raw)
    compiled = re.search(r"Compiled (\d{4}-\d{2}-\d{2})", (data_dir / PROVENANCE).read_text("utf-8"))
    chart_columns, chart = parse_country_chart(chart_raw)
    group_names, groups = parse_country_groups(groups_raw)
    return ReferenceData(
        chart=chart,
        chart_columns=chart_columns,
        chart_footnotes=parse_chart_footnotes(footnotes_raw),
        groups=groups,
        group_names=group_names,
        part746=parse_part746_destinations(embargo_raw),
        license_exceptions=parse_license_exceptions(exceptions),
        part744_supp2=parse_part744_supp2(part744_raw),
        versions={
            "country_chart": _version(chart_raw, f"eCFR {chart_date}"),
            "country_chart_footnotes": _version(footnotes_raw, f"eCFR {chart_date}"),
            "country_groups": _version(groups_raw, f"eCFR {groups_date}"),
            "embargoed_destinations": _version(
                embargo_raw, f"compiled {compiled.group(1)}" if compiled else "compiled (date unknown)"
            ),
            "license_exceptions": _version(exceptions_raw, f"eCFR {exceptions.get('ecfrIssueDate', '?')}"),
            "part744": _version(part744_raw, "eCFR XML"),
        },
    )


def parse_country_chart(raw: bytes) -> tuple[tuple[str, ...], dict[str, ChartRow]]:
    rows = _csv_rows(raw, CHART_CSV, required=("country", "iso2", "footnotes", "embargo_pointer"))
    columns = tuple(c for c in (rows[0].keys() if rows else ()) if _CHART_COLUMN.match(c))
    if not columns:
        raise RefDataError(f"{CHART_CSV}: no Country Chart columns (CB1 ... AT2) in the header")
    chart: dict[str, ChartRow] = {}
    for line_no, row in enumerate(rows, start=2):
        iso2 = _iso2(row["iso2"], CHART_CSV, line_no)
        chart[iso2] = ChartRow(
            country=row["country"].strip(),
            iso2=iso2,
            marked_columns=frozenset(c for c in columns if row[c].strip().upper() == "X"),
            footnotes=_footnote_numbers(row["footnotes"], line_no),
            embargo_pointer=row["embargo_pointer"].strip() or None,
        )
    return columns, chart


def parse_chart_footnotes(raw: bytes) -> dict[int, str]:
    rows = _csv_rows(raw, FOOTNOTES_CSV, required=("footnote", "text"))
    return {_footnote_numbers(r["footnote"], n)[0]: r["text"].strip() for n, r in enumerate(rows, start=2)}


def parse_country_groups(raw: bytes) -> tuple[tuple[str, ...], dict[str, frozenset[str]]]:
    rows = _csv_rows(raw, GROUPS_CSV, required=("country", "iso2"))
    names = tuple(c for c in (rows[0].keys() if rows else ()) if _GROUP_COLUMN.match(c))
    if not names:
        raise RefDataError(f"{GROUPS_CSV}: no Country Group columns (A:1 ... E:2) in the header")
    return names, {
        _iso2(row["iso2"], GROUPS_CSV, n): frozenset(g for g in names if row[g].strip().upper() == "X")
        for n, row in enumerate(rows, start=2)
    }


def parse_part746_destinations(raw: bytes) -> dict[str, tuple[Part746Destination, ...]]:
    rows = _csv_rows(
        raw,
        EMBARGO_CSV,
        required=(
            "destination",
            "code",
            "restriction_type",
            "ear_sections",
            "un_arms_embargo_746_1b2",
            "note",
        ),
    )
    by_code: dict[str, tuple[Part746Destination, ...]] = {}
    for line_no, row in enumerate(rows, start=2):
        codes = tuple(c.strip() for c in row["code"].split(";") if c.strip())
        if not codes or not all(_DESTINATION_CODE.match(c) for c in codes):
            raise RefDataError(f"{EMBARGO_CSV} line {line_no}: code {row['code']!r} is not ISO 3166")
        entry = Part746Destination(
            destination=row["destination"].strip(),
            codes=codes,
            restriction_type=row["restriction_type"].strip(),
            ear_sections=row["ear_sections"].strip(),
            un_arms_embargo=row["un_arms_embargo_746_1b2"].strip().upper() == "Y",
            note=row["note"].strip(),
        )
        for code in codes:
            by_code[code] = (*by_code.get(code, ()), entry)
    return by_code


def parse_license_exceptions(document: dict[str, Any]) -> dict[str, LicenseExceptionInfo]:
    entries = document.get("exceptions")
    if not isinstance(entries, list):
        raise RefDataError(f"{EXCEPTIONS_JSON}: 'exceptions' is not a list")
    out: dict[str, LicenseExceptionInfo] = {}
    for entry in entries:
        for symbol in entry.get("symbols", []):
            out[symbol] = LicenseExceptionInfo(
                symbol=symbol, section=f"15 CFR {entry['sectionNumber']}", title=str(entry.get("title", ""))
            )
    return out


def parse_part744_supp2(raw: bytes) -> dict[str, str]:
    """Supplement No. 2 to Part 744: `<P>(i) 3A991 Electronic devices ...</P>` -> {"3A991": text}."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise RefDataError(f"{PART744_XML}: not well-formed XML: {exc}") from exc
    supplement = next(
        (
            d
            for d in root.iter("DIV9")
            if " ".join((d.get("N") or "").split()) == "Supplement No. 2 to Part 744"
        ),
        None,
    )
    if supplement is None:
        raise RefDataError(f"{PART744_XML}: no DIV9 'Supplement No. 2 to Part 744'")
    items: dict[str, str] = {}
    for paragraph in supplement.iter("P"):
        found = _SUPP2_ITEM.match(" ".join("".join(paragraph.itertext()).split()))
        if found is not None:
            items.setdefault(found[1], found[2])
    if not items:
        raise RefDataError(f"{PART744_XML}: Supplement No. 2 to Part 744 lists no ECCN")
    return items


def _read(data_dir: Path, relative: str) -> bytes:
    path = data_dir / relative
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RefDataError(f"cannot read {path}: {exc.strerror}") from exc


def _json_field(data_dir: Path, relative: str, field: str) -> str:
    value = json.loads(_read(data_dir, relative)).get(field)
    if not isinstance(value, str):
        raise RefDataError(f"{relative}: no {field!r}")
    return value


def _version(raw: bytes, dated: str) -> str:
    return f"sha256:{hashlib.sha256(raw).hexdigest()[:12]} {dated}"


def _csv_rows(raw: bytes, name: str, *, required: tuple[str, ...]) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise RefDataError(f"{name}: header lacks columns {missing} (has {reader.fieldnames})")
    rows = [{k: v or "" for k, v in row.items()} for row in reader]
    if not rows:
        raise RefDataError(f"{name}: no rows")
    return rows


def _iso2(value: str, name: str, line_no: int) -> str:
    code = value.strip()
    if code not in ISO_COUNTRIES:
        raise RefDataError(f"{name} line {line_no}: iso2 {code!r} is not an ISO 3166-1 alpha-2 code")
    return code


def _footnote_numbers(value: str, line_no: int) -> tuple[int, ...]:
    try:
        return tuple(int(n) for n in value.split(";") if n.strip())
    except ValueError as exc:
        raise RefDataError(f"footnotes {value!r} on line {line_no} are not numbers") from exc
