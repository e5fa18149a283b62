"""BIS Denied Persons List: tab-separated, every field quoted, one row per person and address."""

from __future__ import annotations

import csv
from pathlib import Path

from services.screening.lists.reading import (
    US_DATE,
    ListFormatError,
    LoadedSource,
    Merged,
    country_code,
    dpl_entry_id,
    join_address,
    open_texts,
    parse_date,
    text_lines,
)

DPL_FILES = ("dpl.txt",)
DPL_COLUMNS = (
    "Name",
    "Street_Address",
    "City",
    "State",
    "Country",
    "Postal_Code",
    "Effective_Date",
    "Expiration_Date",
    "Standard_Order",
    "Last_Update",
    "Action",
    "FR_Citation",
)
DPL_LIST_NAME = "Denied Persons List (DPL) - Bureau of Industry and Security"


def load_bis_dpl(folder: Path, source_id: str) -> LoadedSource:
    """BIS Denied Persons List: tab-separated, every field quoted, one row per person and address.

    Rows of one name are one denied person (entry id: the name's slug, see `dpl_entry_id`): the rows
    differ by address, and a person under several orders keeps each order's dates and Federal
    Register citation (15 CFR 764.3(a)(2), 766.25: a denial order names the person; the addresses
    locate them)."""
    context, texts = open_texts(folder, source_id, "bis_dpl", DPL_FILES)
    reader = csv.reader(text_lines(texts["dpl.txt"]), delimiter="\t")
    header = next(reader, [])
    if [h.strip() for h in header] != list(DPL_COLUMNS):
        raise ListFormatError(f"{folder / 'dpl.txt'}: header is not the BIS layout {list(DPL_COLUMNS)}")
    merged: dict[str, Merged] = {}
    for row in reader:
        line = reader.line_num
        if not row or not any(v.strip() for v in row):
            continue
        context.rows_read += 1
        if len(row) != len(DPL_COLUMNS):
            context.skip(
                "dpl.txt", line, f"expected {len(DPL_COLUMNS)} tab-separated fields, found {len(row)}"
            )
            continue
        values = dict(zip(DPL_COLUMNS, (v.strip() for v in row), strict=True))
        name = " ".join(values["Name"].split())
        if not name:
            context.skip("dpl.txt", line, "empty Name")
            continue
        entry_id = dpl_entry_id(name)
        if entry_id in merged:
            context.rows_merged += 1
        else:
            merged[entry_id] = Merged("DPL", entry_id, name, None)
        country = values["Country"]
        code = country_code(country) if country else None
        # Dates as BIS writes them (MM/DD/YYYY) in ISO form; a date that does not parse is kept as written.
        effective = parse_date(values["Effective_Date"], US_DATE) or values["Effective_Date"]
        expiration = parse_date(values["Expiration_Date"], US_DATE) or values["Expiration_Date"]
        merged[entry_id].add(
            names=[name],
            countries=[code] if code else [],
            addresses=[
                join_address(
                    values["Street_Address"], values["City"], values["State"], values["Postal_Code"], country
                )
            ],
            details=[
                ("effective_date", effective),
                ("expiration_date", expiration),
                ("standard_order", values["Standard_Order"]),
                ("last_update", values["Last_Update"]),
                ("action", values["Action"]),
                ("fr_citation", values["FR_Citation"]),
            ],
        )
    context.list_names["DPL"] = DPL_LIST_NAME
    return context.finish([m.entry(source_id) for m in merged.values()])
