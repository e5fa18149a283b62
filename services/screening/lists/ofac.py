"""OFAC legacy CSV (dat_spec.txt): the SDN list (sdn.csv + alt.csv + add.csv + sdn_comments.csv) and
the consolidated non-SDN lists in the same layout (cons_prim/alt/add/comments.csv).

No header; `-0-` is null; CRLF; a last line holding only Ctrl-Z. The primary file has 12 columns, the
aliases 5, the addresses 6 and the comments (the overflow of Remarks) 2, joined on ent_num.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from services.screening.domain import EntryType
from services.screening.lists.reading import (
    LoadContext,
    LoadedSource,
    Merged,
    country_code,
    csv_rows,
    join_address,
    open_texts,
)

ListOf = Callable[[tuple[str, ...]], tuple[str, str]]

OFAC_FILES = ("sdn.csv", "alt.csv", "add.csv")
OFAC_OPTIONAL = ("sdn_comments.csv",)
OFAC_NON_SDN_FILES = ("cons_prim.csv", "cons_alt.csv", "cons_add.csv")
OFAC_NON_SDN_OPTIONAL = ("cons_comments.csv",)
_OFAC_TYPES: dict[str | None, EntryType] = {
    None: "entity",  # OFAC writes `-0-` in SDN_Type for entities (dat_spec.txt)
    "individual": "individual",
    "vessel": "vessel",
    "aircraft": "aircraft",
}
_OFAC_DETAILS = (
    (4, "title"),
    (5, "call_sign"),
    (6, "vessel_type"),
    (7, "tonnage"),
    (8, "gross_registered_tonnage"),
    (9, "vessel_flag"),
    (10, "vessel_owner"),
    (11, "remarks"),
)
SDN_LIST_NAME = "Specially Designated Nationals and Blocked Persons List (SDN) - Treasury Department (OFAC)"
# The consolidated non-SDN file carries several lists; an entry's programme codes say which. An
# entry under several programmes goes to the first list below that claims one of them, as trade.gov's
# CSL files them (an SSI entity also under the menu-based EO 14024 directives stays on the SSI).
NON_SDN_LISTS: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    (
        "SSI",
        "Sectoral Sanctions Identifications List (SSI) - Treasury Department",
        lambda p: p == "UKRAINE-EO13662",
    ),
    (
        "PLC",
        "Non-SDN Palestinian Legislative Council List (NS-PLC) - Treasury Department",
        lambda p: p == "NS-PLC",
    ),
    (
        "CMIC",
        "Non-SDN Chinese Military-Industrial Complex Companies List (CMIC) - Treasury Department",
        lambda p: p.startswith("CMIC"),
    ),
    (
        "CAP",
        "Correspondent Account or Payable-Through Account Sanctions (CAPTA) - Treasury Department",
        lambda p: p == "561-Related",
    ),
    ("FSE", "Foreign Sanctions Evaders (FSE) - Treasury Department", lambda p: p.startswith("FSE")),
)
NS_MBS = ("NS-MBS", "Non-SDN Menu-Based Sanctions List (NS-MBS List) - Treasury Department")


def non_sdn_list(programs: Sequence[str]) -> tuple[str, str]:
    """(list_id, list name) of a consolidated non-SDN entry; menu-based sanctions (EO 14024, CAATSA,
    EO 14014, ...) are the remainder."""
    for list_id, name, claims in NON_SDN_LISTS:
        if any(claims(p) for p in programs):
            return list_id, name
    return NS_MBS


def _ofac(value: str) -> str | None:
    """OFAC writes nulls as `-0-`, usually padded with spaces."""
    value = value.strip()
    return None if value in ("", "-0-") else value


def _ofac_rows(context: LoadContext, name: str, text: str, columns: int) -> Iterator[tuple[int, list[str]]]:
    """The rows of one file that have its `columns`, each counted as read; others are skipped."""
    for line, row in csv_rows(text):
        # The legacy files end with a line holding only Ctrl-Z (0x1A), a DOS end-of-file marker.
        if not row or (len(row) == 1 and row[0].strip() == "\x1a"):
            continue
        context.rows_read += 1
        if len(row) != columns:
            context.skip(name, line, f"expected {columns} columns, found {len(row)}")
            continue
        yield line, row


def _primary(context: LoadContext, name: str, text: str, list_of: ListOf) -> dict[str, Merged]:
    entries: dict[str, Merged] = {}
    for line, row in _ofac_rows(context, name, text, 12):
        ent_num, sdn_name, sdn_type, program = (_ofac(v) for v in row[:4])
        entry_type = _OFAC_TYPES.get(sdn_type.lower() if sdn_type else None)
        if ent_num is None or not ent_num.isdigit():
            context.skip(name, line, f"ent_num {row[0]!r} is not a number")
        elif sdn_name is None:
            context.skip(name, line, f"ent_num {ent_num} has no SDN_Name")
        elif entry_type is None:
            context.skip(name, line, f"ent_num {ent_num}: unknown SDN_Type {sdn_type!r}")
        elif ent_num in entries:
            context.skip(name, line, f"ent_num {ent_num} appears twice")
        else:
            # Programs are written "IRAN] [SDGT] [IFSR" (the outer brackets are the field's own).
            programs = tuple(p.strip(" []") for p in (program or "").split("] [") if p.strip(" []"))
            list_id, context.list_names[list_id] = list_of(programs)
            entries[ent_num] = Merged(
                list_id,
                ent_num,
                sdn_name,
                entry_type,
                programs=list(programs),
                details={key: [v] for i, key in _OFAC_DETAILS if (v := _ofac(row[i])) is not None},
            )
    return entries


def _joined(
    context: LoadContext, name: str, text: str, columns: int, entries: dict[str, Merged], primary: str
) -> Iterator[tuple[int, Merged, list[str]]]:
    """Rows of a file joined on ent_num to the primary file's entries; orphans are skipped."""
    for line, row in _ofac_rows(context, name, text, columns):
        merged = entries.get(_ofac(row[0]) or "")
        if merged is None:
            context.skip(name, line, f"ent_num {row[0]!r} is not in {primary}")
            continue
        yield line, merged, row


def _aliases(context: LoadContext, name: str, text: str, entries: dict[str, Merged], primary: str) -> None:
    for line, merged, row in _joined(context, name, text, 5, entries, primary):
        alt_name, alt_remarks = _ofac(row[3]), (_ofac(row[4]) or "").lower()
        if alt_name is None:
            context.skip(name, line, f"ent_num {merged.entry_id} alias has no alt_name")
            continue
        merged.aliases.append(alt_name)
        # OFAC marks "weak" AKAs, which it does not expect to be screened alone (OFAC FAQ 122).
        if "weak" in alt_remarks or "low quality" in alt_remarks:
            merged.weak_aliases.append(alt_name)


def _addresses(context: LoadContext, name: str, text: str, entries: dict[str, Merged], primary: str) -> None:
    for _, merged, row in _joined(context, name, text, 6, entries, primary):
        street, city, country = _ofac(row[2]), _ofac(row[3]), _ofac(row[4])
        # An address without a country (or "undetermined") is valid; it just adds no country.
        code = country_code(country) if country else None
        if code is not None and code not in merged.countries:
            merged.countries.append(code)
        if street or city:
            merged.addresses.append(join_address(street, city, country))


def _comments(context: LoadContext, name: str, text: str, entries: dict[str, Merged], primary: str) -> None:
    for _, merged, row in _joined(context, name, text, 2, entries, primary):
        # The overflow of Remarks beyond its field length; it continues mid-sentence.
        remarks = merged.details.setdefault("remarks", [""])
        remarks[0] += row[1]


def load_ofac_legacy(
    folder: Path,
    source_id: str,
    kind: str,
    files: tuple[str, str, str],
    optional: tuple[str],
    list_of: ListOf,
) -> LoadedSource:
    """OFAC legacy CSV: primary (12 columns), aliases (5), addresses (6), comments (2), on ent_num."""
    primary, alt, add = files
    context, texts = open_texts(folder, source_id, kind, files, optional)
    entries = _primary(context, primary, texts[primary], list_of)
    _aliases(context, alt, texts[alt], entries, primary)
    _addresses(context, add, texts[add], entries, primary)
    for name in optional:
        if name in texts:
            _comments(context, name, texts[name], entries, primary)
    return context.finish([merged.entry(source_id) for merged in entries.values()])


def load_ofac_sdn(folder: Path, source_id: str) -> LoadedSource:
    """OFAC SDN list, legacy CSV: sdn.csv, alt.csv, add.csv and, when present, sdn_comments.csv."""
    return load_ofac_legacy(
        folder, source_id, "ofac_sdn", OFAC_FILES, OFAC_OPTIONAL, lambda _: ("SDN", SDN_LIST_NAME)
    )


def load_ofac_non_sdn(folder: Path, source_id: str) -> LoadedSource:
    """OFAC consolidated non-SDN lists (SSI, NS-MBS, PLC, CMIC, CAPTA, FSE), the same legacy CSV
    layout as the SDN files (cons_prim/alt/add/comments.csv); each entry keeps its own list id."""
    return load_ofac_legacy(
        folder, source_id, "ofac_non_sdn", OFAC_NON_SDN_FILES, OFAC_NON_SDN_OPTIONAL, non_sdn_list
    )
