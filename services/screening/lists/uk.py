"""UK OFSI Consolidated List (ConList.csv, "2022 format"): line 1 "Last Updated,DD/MM/YYYY", line 2
the header, then one row per name (and address) of a target; rows of one `Group ID` are one target."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from services.screening.domain import EntryType
from services.screening.lists.reading import (
    UK_DATE,
    ListFormatError,
    LoadContext,
    LoadedSource,
    Merged,
    country_codes,
    join_address,
    open_texts,
    parse_date,
    text_lines,
)

UK_FILES = ("ConList.csv",)
UK_LIST_NAME = "UK OFSI Consolidated List of Financial Sanctions Targets (UK)"
UK_COLUMNS = (
    *(f"Name {i}" for i in range(1, 7)),
    "Title",
    "Name Non-Latin Script",
    "DOB",
    "Town of Birth",
    "Country of Birth",
    "Nationality",
    "Position",
    *(f"Address {i}" for i in range(1, 7)),
    "Post/Zip Code",
    "Country",
    "Other Information",
    "Group Type",
    "Alias Type",
    "Alias Quality",
    "Regime",
    "Listed On",
    "Last Updated",
    "Group ID",
)
_UK_TYPES: dict[str, EntryType] = {"individual": "individual", "entity": "entity", "ship": "vessel"}
_UK_REF = re.compile(r"\(UK Sanctions List Ref\):\s*([A-Z]{3}\d{4})")
_UK_LAST_UPDATED = re.compile(r"^Last Updated,(\d{2}/\d{2}/\d{4})")


def _stated_date(folder: Path, first_line: str) -> str:
    found = _UK_LAST_UPDATED.match(first_line.strip())
    stated = parse_date(found.group(1), UK_DATE) if found else None
    if stated is None:
        raise ListFormatError(
            f"{folder / 'ConList.csv'}:1: expected 'Last Updated,DD/MM/YYYY', found {first_line[:60]!r}"
        )
    return stated


def _target_of(
    context: LoadContext, line: int, values: dict[str, str], targets: dict[str, Merged]
) -> tuple[Merged, str] | None:
    """The target a row belongs to (created by its first row) and the name the row gives, or None
    (skipped, logged)."""
    group_id = values["Group ID"]
    entry_type: EntryType | None = _UK_TYPES.get(values["Group Type"].lower())
    name = " ".join(p for p in [*(values[f"Name {i}"] for i in range(1, 6)), values["Name 6"]] if p)
    if not group_id:
        context.skip("ConList.csv", line, "no Group ID")
    elif entry_type is None:
        context.skip("ConList.csv", line, f"Group ID {group_id}: unknown Group Type {values['Group Type']!r}")
    elif not name:
        context.skip("ConList.csv", line, f"Group ID {group_id}: no name in Name 1-6")
    elif (target := targets.get(group_id)) is None:
        targets[group_id] = Merged("UK", group_id, name, entry_type)
        return targets[group_id], name
    else:
        context.rows_merged += 1
        if target.entry_type == entry_type:
            return target, name
        context.skip(
            "ConList.csv", line, f"Group ID {group_id} is {target.entry_type}, this row says {entry_type}"
        )
    return None


def _add_row(target: Merged, name: str, values: dict[str, str]) -> None:
    if values["Alias Quality"].lower() == "low quality":
        target.weak_aliases.append(name)
    country = values["Country"]
    countries = country_codes(country) if country else []
    if values["Nationality"]:
        countries.extend(country_codes(values["Nationality"]))
    street = [values[f"Address {i}"] for i in range(1, 7)]
    address = join_address(*street, values["Post/Zip Code"], country) if any(street) else ""
    sanctions_ref = m.group(1) if (m := _UK_REF.search(values["Other Information"])) else ""
    target.add(
        names=[name, values["Name Non-Latin Script"]],
        programs=[values["Regime"]],
        countries=countries,
        addresses=[address],
        details=[
            ("uk_sanctions_list_ref", sanctions_ref),
            ("title", values["Title"]),
            ("dob", values["DOB"]),
            ("town_of_birth", values["Town of Birth"]),
            ("country_of_birth", values["Country of Birth"]),
            ("nationality", values["Nationality"]),
            ("position", values["Position"]),
            ("listed_on", parse_date(values["Listed On"], UK_DATE) or values["Listed On"]),
            ("last_updated", parse_date(values["Last Updated"], UK_DATE) or values["Last Updated"]),
            ("other_information", values["Other Information"]),
        ],
    )


def load_uk_ofsi(folder: Path, source_id: str) -> LoadedSource:
    """OFSI ConList CSV: rows of one `Group ID` are one target. Name 6 is the surname or the entity's
    name, Name 1-5 the given names."""
    context, texts = open_texts(folder, source_id, "uk_ofsi", UK_FILES)
    text = texts["ConList.csv"]
    lines = text_lines(text)
    context.stated_date = _stated_date(folder, next(lines, "").rstrip("\r\n"))
    context.list_names["UK"] = UK_LIST_NAME
    reader = csv.DictReader(lines)
    missing = [c for c in UK_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ListFormatError(f"{folder / 'ConList.csv'}:2: header lacks columns {missing}")
    targets: dict[str, Merged] = {}
    primary_named: set[str] = set()
    for row in reader:
        line = reader.line_num + 1  # the reader started after the "Last Updated" line
        context.rows_read += 1
        if None in row or any(value is None for value in row.values()):
            context.skip("ConList.csv", line, f"expected {len(reader.fieldnames or [])} columns")
            continue
        values = {k: " ".join(v.split()) for k, v in row.items() if k is not None and v is not None}
        found = _target_of(context, line, values, targets)
        if found is None:
            continue
        target, name = found
        # The target's name is its first "Primary name" row; other rows add aliases and variations.
        if values["Alias Type"] == "Primary name" and target.entry_id not in primary_named:
            primary_named.add(target.entry_id)
            if target.name != name:
                target.aliases.insert(0, target.name)
                target.name = name
        _add_row(target, name, values)
    return context.finish([t.entry(source_id) for t in targets.values()])
