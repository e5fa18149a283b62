"""trade.gov Consolidated Screening List CSV (header row): every source list (SDN, EL, DPL, UVL, MEU,
ISN, DTC, SSI, CMIC, ...) under its own list id."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from services.screening.domain import EntryType
from services.screening.lists.reading import (
    ListFormatError,
    LoadContext,
    LoadedSource,
    Merged,
    country_code,
    dpl_entry_id,
    join_address,
    open_texts,
    text_lines,
)

CSL_FILES = ("consolidated.csv",)
CSL_COLUMNS = ("_id", "source", "entity_number", "type", "programs", "name", "addresses", "alt_names")
# The CSL's `source` column names each list in full with its abbreviation in parentheses.
CSL_LIST_IDS = {
    "SDN": "SDN",
    "EL": "EL",
    "DPL": "DPL",
    "UVL": "UVL",
    "MEU": "MEU",
    "ISN": "ISN",
    "DTC": "DTC",
    "SSI": "SSI",
    "CMIC": "CMIC",
    "PLC": "PLC",
    "NS-MBS List": "NS-MBS",
    "CAP": "CAP",
    "CAPTA": "CAP",
    "FSE": "FSE",
}
_CSL_TYPES: dict[str, EntryType] = {
    "individual": "individual",
    "entity": "entity",
    "vessel": "vessel",
    "aircraft": "aircraft",
}
_CSL_DETAILS = (
    "title",
    "federal_register_notice",
    "start_date",
    "end_date",
    "standard_order",
    "license_requirement",
    "license_policy",
    "vessel_flag",
    "remarks",
    "source_list_url",
    "dates_of_birth",
    "places_of_birth",
    "ids",
)
_ABBREVIATION = re.compile(r"\(([^()]+)\)")
_AKA = re.compile(r"^a\.?k\.?a\.?\s*", re.IGNORECASE)


def csl_list_id(source: str) -> str | None:
    found = _ABBREVIATION.search(source)
    return CSL_LIST_IDS.get(found.group(1).strip()) if found else None


def _csl_places(row: dict[str, str]) -> tuple[list[str], list[str]]:
    """(countries, addresses): `addresses` holds "street, city, state, postal, CC" items (2022) or
    bare codes (2026 compact); citizenships and nationalities add countries."""
    codes: list[str] = []
    addresses: list[str] = []
    for item in (a.strip() for a in row.get("addresses", "").split(";")):
        if not item:
            continue
        bare = country_code(item)
        code = bare or country_code(item.rsplit(",", 1)[-1])
        if code is not None and code not in codes:
            codes.append(code)
        if bare is None:  # more than a bare country
            addresses.append(join_address(*item.split(",")))
    for column in ("citizenships", "nationalities"):
        for value in row.get(column, "").split(";"):
            code = country_code(value) if value.strip() else None
            if code is not None and code not in codes:
                codes.append(code)
    return codes, addresses


def _row_key(context: LoadContext, line: int, row: dict[str, str]) -> tuple[str, str, str, list[str]] | None:
    """(list id, entry id, name, aliases packed into the name) of a row, or None (skipped, logged)."""
    list_id = csl_list_id(row["source"])
    if list_id is None:
        context.skip("consolidated.csv", line, f"unknown source list {row['source']!r}")
        return None
    # A few BIS rows pack aliases into the name: "Cho Yan Nathan; a.k.a Nathan Man Man".
    name, *packed = [n.strip() for n in row["name"].split(";")]
    if not name:
        context.skip("consolidated.csv", line, "empty name")
        return None
    entry_id = dpl_entry_id(name) if list_id == "DPL" else row["entity_number"].strip() or row["_id"].strip()
    if not entry_id:
        context.skip("consolidated.csv", line, "neither entity_number nor _id")
        return None
    return list_id, entry_id, name, packed


def _entry_type(context: LoadContext, line: int, written: str) -> tuple[bool, EntryType | None]:
    """(known, type): an empty type is known and None; an unknown one is skipped."""
    if not written.strip():
        return True, None
    entry_type = _CSL_TYPES.get(written.strip().lower())
    if entry_type is None:
        context.skip("consolidated.csv", line, f"unknown type {written!r}")
        return False, None
    return True, entry_type


def load_csl(folder: Path, source_id: str) -> LoadedSource:
    """trade.gov Consolidated Screening List CSV (header row); every source list keeps its own id.

    Entry ids: OFAC's ent_num for Treasury lists (as in sdn.csv), the name slug for the DPL (as in the
    BIS file, whose rows per address are merged the same way), else the CSL's `_id`."""
    context, texts = open_texts(folder, source_id, "csl", CSL_FILES)
    reader = csv.DictReader(text_lines(texts["consolidated.csv"]))
    missing = [c for c in CSL_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ListFormatError(f"{folder / 'consolidated.csv'}: header lacks columns {missing}")
    merged: dict[tuple[str, str], Merged] = {}
    for row in reader:
        line = reader.line_num
        context.rows_read += 1
        if None in row or any(value is None for value in row.values()):
            context.skip("consolidated.csv", line, f"expected {len(reader.fieldnames or [])} columns")
            continue
        found = _row_key(context, line, row)
        known, entry_type = _entry_type(context, line, row["type"]) if found else (False, None)
        if found is None or not known:
            continue
        list_id, entry_id, name, packed = found
        key = (list_id, entry_id)
        if key in merged and list_id != "DPL":
            context.skip("consolidated.csv", line, f"{list_id} entry {entry_id} appears twice")
            continue
        if key in merged:
            context.rows_merged += 1
        else:
            merged[key] = Merged(list_id, entry_id, name, entry_type)
        context.list_names.setdefault(list_id, row["source"].strip())
        countries, addresses = _csl_places(row)
        merged[key].add(
            names=[_AKA.sub("", a.strip()) for a in [*packed, *row["alt_names"].split(";")]],
            programs=[p.strip() for p in row["programs"].split(";")],
            countries=countries,
            addresses=addresses,
            details=[(k, row.get(k) or "") for k in _CSL_DETAILS],
        )
    return context.finish([m.entry(source_id) for m in merged.values()])
