"""Loaders of restricted-party lists in their publishers' own formats.

Which folders are loaded is configuration (`EXPORTWATCH_SCREENING_SOURCES`, e.g.
"ofac_sdn:screening/us_ofac_sdn/2023-12-28,csl:screening/us_trade_csl/2026-07-31", paths relative
to the data directory). Each source is versioned by a content hash of its files and dated by its
folder name. A malformed row is logged with its file and line number, counted and skipped; a file
that cannot be read at all stops the start-up.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pycountry

from services.screening.domain import EntryType, ListEntry, ListInfo, SourceInfo
from shared.events import ISO_COUNTRIES

log = logging.getLogger("exportwatch.screening.lists")

SETTING = "EXPORTWATCH_SCREENING_SOURCES"


class ListFormatError(ValueError):
    """A list file cannot be read at all (missing, not UTF-8, wrong header)."""


@dataclass(frozen=True)
class LoadedSource:
    info: SourceInfo
    entries: list[ListEntry]


@dataclass
class _Skips:
    """Rows skipped while loading one source: logged one by one, counted, a few kept as examples."""

    source_id: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def skip(self, file: str, line: int, why: str) -> None:
        self.count += 1
        message = f"{file}:{line}: {why}"
        if len(self.examples) < 20:
            self.examples.append(message)
        log.warning("%s: skipped row %s", self.source_id, message)


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    folder: str


def parse_sources(spec: str) -> list[SourceSpec]:
    """ "kind:folder,kind:folder" -> specs; refuses unknown kinds and duplicates, naming the setting."""
    specs: list[SourceSpec] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kind, sep, folder = part.partition(":")
        if not sep or not folder.strip():
            raise ValueError(f"{SETTING}={spec!r}: {part!r} is not 'kind:folder'")
        if kind.strip() not in LOADERS:
            raise ValueError(f"{SETTING}={spec!r}: unknown kind {kind!r}; use one of {sorted(LOADERS)}")
        specs.append(SourceSpec(kind.strip(), folder.strip().strip("/")))
    if not specs:
        raise ValueError(f"{SETTING}={spec!r}: name at least one list source")
    if len({s.folder for s in specs}) != len(specs):
        raise ValueError(f"{SETTING}={spec!r}: a folder is named twice")
    return specs


def load_sources(data_dir: Path, spec: str) -> list[LoadedSource]:
    return [LOADERS[s.kind](data_dir / s.folder, f"{s.kind}:{s.folder}") for s in parse_sources(spec)]


# --- helpers shared by the formats -------------------------------------------------------------


def _read_files(folder: Path, names: tuple[str, ...]) -> tuple[dict[str, str], str]:
    """Decoded files and the source version: sha256 over each file's name and bytes, in the given order."""
    digest = hashlib.sha256()
    texts: dict[str, str] = {}
    for name in names:
        path = folder / name
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ListFormatError(f"{path}: cannot read: {exc.strerror}") from exc
        digest.update(name.encode() + b"\0" + raw)
        try:
            texts[name] = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ListFormatError(f"{path}: not UTF-8 at byte {exc.start}") from exc
    return texts, f"sha256:{digest.hexdigest()[:12]}"


def _published(folder: Path) -> str | None:
    """Folders are named after the list's publication date (data/README.md): '2023-12-28'."""
    try:
        return date.fromisoformat(folder.name).isoformat()
    except ValueError:
        log.warning("%s: folder name is not a date; the list's publication date is unknown", folder)
        return None


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV rows with the line number each ends on (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        yield reader.line_num, row


# Names as OFAC writes them in add.csv, and regions the CSL writes instead of a code.
_COUNTRY_NAMES = {
    "russia": "RU",
    "turkey": "TR",
    "korea, north": "KP",
    "korea, south": "KR",
    "burma": "MM",
    "congo, democratic republic of the": "CD",
    "congo, republic of the": "CG",
    "palestinian": "PS",
    "west bank": "PS",
    "region: west bank": "PS",
    "region: gaza": "PS",
    "kosovo": "XK",
    "the gambia": "GM",
    "north macedonia, the republic of": "MK",
    "cote d ivoire": "CI",
    "macau": "MO",
    "bahamas, the": "BS",
    "man, isle of": "IM",
    "brunei": "BN",
    "region: crimea": "UA",
    "crimea (occupied)": "UA",
    "region: northern mali": "ML",
    "prc": "CN",
}


def country_code(value: str) -> str | None:
    """ISO 3166-1 alpha-2 for a country as a list writes it, or None (regions such as Kafia Kingi)."""
    text = value.strip()
    if len(text) == 2 and text.upper() in ISO_COUNTRIES:
        return text.upper()
    if (known := _COUNTRY_NAMES.get(text.casefold())) is not None:
        return known
    try:
        code: str = pycountry.countries.lookup(text).alpha_2
    except LookupError:
        return None
    return code


# --- OFAC legacy CSV (sdn.csv + alt.csv + add.csv) ----------------------------------------------

OFAC_FILES = ("sdn.csv", "alt.csv", "add.csv")
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


def _ofac(value: str) -> str | None:
    """OFAC writes nulls as `-0-`, usually padded with spaces."""
    value = value.strip()
    return None if value in ("", "-0-") else value


def _is_eof_marker(row: list[str]) -> bool:
    # The legacy files end with a line holding only Ctrl-Z (0x1A), a DOS end-of-file marker.
    return len(row) == 1 and row[0].strip() == "\x1a"


@dataclass
class _OfacEntry:
    name: str
    entry_type: EntryType
    programs: tuple[str, ...]
    details: tuple[tuple[str, str], ...]
    aliases: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)


def load_ofac_sdn(folder: Path, source_id: str) -> LoadedSource:
    """OFAC SDN list, legacy CSV: sdn.csv (12 columns), alt.csv (5), add.csv (6), joined on ent_num."""
    texts, version = _read_files(folder, OFAC_FILES)
    skips = _Skips(source_id)
    rows_read = 0
    entries: dict[str, _OfacEntry] = {}
    for line, row in _rows(texts["sdn.csv"]):
        if not row or _is_eof_marker(row):
            continue
        rows_read += 1
        if len(row) != 12:
            skips.skip("sdn.csv", line, f"expected 12 columns, found {len(row)}")
            continue
        ent_num, name, sdn_type, program = (_ofac(v) for v in row[:4])
        if ent_num is None or not ent_num.isdigit():
            skips.skip("sdn.csv", line, f"ent_num {row[0]!r} is not a number")
            continue
        if name is None:
            skips.skip("sdn.csv", line, f"ent_num {ent_num} has no SDN_Name")
            continue
        entry_type = _OFAC_TYPES.get(sdn_type.lower() if sdn_type else None)
        if entry_type is None:
            skips.skip("sdn.csv", line, f"ent_num {ent_num}: unknown SDN_Type {sdn_type!r}")
            continue
        if ent_num in entries:
            skips.skip("sdn.csv", line, f"ent_num {ent_num} appears twice")
            continue
        # Programs are written "IRAN] [SDGT] [IFSR" (the outer brackets are the field's own).
        programs = tuple(p.strip(" []") for p in (program or "").split("] [") if p.strip(" []"))
        details = tuple((key, v) for i, key in _OFAC_DETAILS if (v := _ofac(row[i])) is not None)
        entries[ent_num] = _OfacEntry(name, entry_type, programs, details)

    for line, row in _rows(texts["alt.csv"]):
        if not row or _is_eof_marker(row):
            continue
        rows_read += 1
        if len(row) != 5:
            skips.skip("alt.csv", line, f"expected 5 columns, found {len(row)}")
            continue
        ent_num, alt_name = _ofac(row[0]), _ofac(row[3])
        if ent_num not in entries:
            skips.skip("alt.csv", line, f"ent_num {row[0]!r} is not in sdn.csv")
            continue
        if alt_name is None:
            skips.skip("alt.csv", line, f"ent_num {ent_num} alias has no alt_name")
            continue
        entries[ent_num].aliases.append(alt_name)

    for line, row in _rows(texts["add.csv"]):
        if not row or _is_eof_marker(row):
            continue
        rows_read += 1
        if len(row) != 6:
            skips.skip("add.csv", line, f"expected 6 columns, found {len(row)}")
            continue
        ent_num, country = _ofac(row[0]), _ofac(row[4])
        if ent_num not in entries:
            skips.skip("add.csv", line, f"ent_num {row[0]!r} is not in sdn.csv")
            continue
        # An address without a country (or "undetermined") is valid; it just adds no country.
        code = country_code(country) if country else None
        if code is not None and code not in entries[ent_num].countries:
            entries[ent_num].countries.append(code)

    loaded = [
        ListEntry(
            source_id=source_id,
            list_id="SDN",
            entry_id=ent_num,
            name=e.name,
            aliases=_distinct_aliases(e.name, e.aliases),
            entry_type=e.entry_type,
            programs=e.programs,
            countries=tuple(e.countries),
            details=e.details,
        )
        for ent_num, e in entries.items()
    ]
    lists = {
        "SDN": "Specially Designated Nationals and Blocked Persons List (SDN) - Treasury Department (OFAC)"
    }
    return _finish(source_id, "ofac_sdn", folder, OFAC_FILES, version, rows_read, skips, loaded, lists)


# --- trade.gov Consolidated Screening List CSV ---------------------------------------------------

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
)
_ABBREVIATION = re.compile(r"\(([^()]+)\)")
_AKA = re.compile(r"^a\.?k\.?a\.?\s*", re.IGNORECASE)


def csl_list_id(source: str) -> str | None:
    found = _ABBREVIATION.search(source)
    return CSL_LIST_IDS.get(found.group(1).strip()) if found else None


def _csl_countries(row: dict[str, str]) -> tuple[str, ...]:
    # `addresses` holds "street, city, state, postal, CC" items (2022) or bare codes (2026 compact).
    codes: list[str] = []
    items = [a for a in row.get("addresses", "").split(";") if a.strip()]
    for item in items:
        code = country_code(item) or country_code(item.rsplit(",", 1)[-1])
        if code is not None and code not in codes:
            codes.append(code)
    for column in ("citizenships", "nationalities"):
        for value in row.get(column, "").split(";"):
            code = country_code(value) if value.strip() else None
            if code is not None and code not in codes:
                codes.append(code)
    return tuple(codes)


def load_csl(folder: Path, source_id: str) -> LoadedSource:
    """trade.gov Consolidated Screening List CSV (header row); every source list keeps its own id."""
    texts, version = _read_files(folder, CSL_FILES)
    reader = csv.DictReader(io.StringIO(texts["consolidated.csv"], newline=""))
    missing = [c for c in CSL_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ListFormatError(f"{folder / 'consolidated.csv'}: header lacks columns {missing}")
    skips = _Skips(source_id)
    rows_read = 0
    loaded: list[ListEntry] = []
    seen: set[tuple[str, str]] = set()
    list_names: dict[str, str] = {}
    for row in reader:
        line = reader.line_num
        rows_read += 1
        if None in row or any(value is None for value in row.values()):
            skips.skip("consolidated.csv", line, f"expected {len(reader.fieldnames or [])} columns")
            continue
        list_id = csl_list_id(row["source"])
        if list_id is None:
            skips.skip("consolidated.csv", line, f"unknown source list {row['source']!r}")
            continue
        # A few BIS rows pack aliases into the name: "Cho Yan Nathan; a.k.a Nathan Man Man".
        name, *packed = [n.strip() for n in row["name"].split(";")]
        if not name:
            skips.skip("consolidated.csv", line, "empty name")
            continue
        entry_id = row["entity_number"].strip() or row["_id"].strip()
        if not entry_id:
            skips.skip("consolidated.csv", line, "neither entity_number nor _id")
            continue
        if (list_id, entry_id) in seen:
            skips.skip("consolidated.csv", line, f"{list_id} entry {entry_id} appears twice")
            continue
        seen.add((list_id, entry_id))
        entry_type = _CSL_TYPES.get(row["type"].strip().lower()) if row["type"].strip() else None
        if row["type"].strip() and entry_type is None:
            skips.skip("consolidated.csv", line, f"unknown type {row['type']!r}")
            continue
        aliases = [_AKA.sub("", a.strip()) for a in packed + row["alt_names"].split(";")]
        list_names.setdefault(list_id, row["source"].strip())
        loaded.append(
            ListEntry(
                source_id=source_id,
                list_id=list_id,
                entry_id=entry_id,
                name=name,
                aliases=_distinct_aliases(name, aliases),
                entry_type=entry_type,
                programs=tuple(p.strip() for p in row["programs"].split(";") if p.strip()),
                countries=_csl_countries(row),
                details=tuple((k, v.strip()) for k in _CSL_DETAILS if (v := row.get(k) or "").strip()),
            )
        )
    return _finish(source_id, "csl", folder, CSL_FILES, version, rows_read, skips, loaded, list_names)


# --- common ------------------------------------------------------------------------------------


def _distinct_aliases(name: str, aliases: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for alias in aliases:
        if alias and alias != name and alias not in out:
            out.append(alias)
    return tuple(out)


def _finish(
    source_id: str,
    kind: str,
    folder: Path,
    files: tuple[str, ...],
    version: str,
    rows_read: int,
    skips: _Skips,
    entries: list[ListEntry],
    list_names: dict[str, str],
) -> LoadedSource:
    published = _published(folder)
    per_list = Counter(e.list_id for e in entries)
    aliases = Counter[str]()
    for e in entries:
        aliases[e.list_id] += len(e.aliases)
    lists = tuple(
        ListInfo(
            source_id, list_id, list_names[list_id], version, published, per_list[list_id], aliases[list_id]
        )
        for list_id in sorted(per_list)
    )
    info = SourceInfo(
        source_id=source_id,
        kind=kind,
        folder=str(folder),
        files=files,
        version=version,
        published=published,
        rows_read=rows_read,
        rows_skipped=skips.count,
        skipped_examples=tuple(skips.examples),
        lists=lists,
    )
    log.info(
        "loaded %s (%s, %s): %d entries, %d aliases, %d rows skipped",
        source_id,
        version,
        published,
        len(entries),
        sum(aliases.values()),
        skips.count,
    )
    return LoadedSource(info, entries)


LOADERS: dict[str, Callable[[Path, str], LoadedSource]] = {"ofac_sdn": load_ofac_sdn, "csl": load_csl}
