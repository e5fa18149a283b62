"""Loaders of restricted-party lists in their publishers' own formats.

Which folders are loaded is configuration (`EXPORTWATCH_SCREENING_SOURCES`, e.g.
"ofac_sdn:screening/us_ofac_sdn/2023-12-28,un_sc:screening/un_sc_consolidated/2026-02-27", paths
relative to the data directory; one folder per kind). Each source is versioned by a content hash of
its files and dated by the list's own date where the format states one (UN `dateGenerated`, OFSI
"Last Updated"), else by the fetch manifest of `lists update`, else by its folder name. Each entry
carries a hash of its own content, so two versions of a list can be compared entry by entry.

A malformed row is logged with its file and line number, counted and skipped; a file that cannot be
read at all (missing, not UTF-8, wrong header, not XML) stops the load with `ListFormatError`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

import pycountry
from unidecode import unidecode

from services.screening.domain import EntryType, ListEntry, ListInfo, SourceInfo
from shared.events import ISO_COUNTRIES

log = logging.getLogger("exportwatch.screening.lists")

SETTING = "EXPORTWATCH_SCREENING_SOURCES"
# Written by `lists update` beside the files it fetched (services/screening/update.py).
MANIFEST = "manifest.json"


class ListFormatError(ValueError):
    """A list file cannot be read at all (missing, not UTF-8, wrong header, not well-formed XML)."""


@dataclass(frozen=True)
class LoadedSource:
    info: SourceInfo
    entries: list[ListEntry]
    # Rows folded into an entry read before them: the same party at another address (DPL, OFSI).
    rows_merged: int = 0


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
    """ "kind:folder,kind:folder" -> specs; refuses unknown kinds and duplicates, naming the setting.

    One folder per kind: `lists update` replaces a kind's source with the publisher's newer file."""
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
    kinds = Counter(s.kind for s in specs)
    if twice := sorted(k for k, n in kinds.items() if n > 1):
        raise ValueError(
            f"{SETTING}={spec!r}: kind {twice[0]!r} is named twice; configure one folder per kind "
            "(a list update replaces that kind's source)"
        )
    return specs


def load_source(kind: str, folder: Path) -> LoadedSource:
    """One source folder in the format of `kind`; the source id is the kind (one folder per kind)."""
    return LOADERS[kind](folder, kind)


def load_sources(data_dir: Path, spec: str) -> list[LoadedSource]:
    return [load_source(s.kind, data_dir / s.folder) for s in parse_sources(spec)]


# --- helpers shared by the formats -------------------------------------------------------------


def _read_raw(
    folder: Path, names: Sequence[str], optional: Sequence[str] = ()
) -> tuple[dict[str, bytes], str]:
    """The files' bytes and the source version: sha256 over each file's name and bytes, in order.
    Optional files (OFAC's comments overflow) count only when present."""
    digest = hashlib.sha256()
    raw: dict[str, bytes] = {}
    for name in (*names, *optional):
        path = folder / name
        if name in optional and not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ListFormatError(f"{path}: cannot read: {exc.strerror}") from exc
        digest.update(name.encode() + b"\0" + data)
        raw[name] = data
    return raw, f"sha256:{digest.hexdigest()[:12]}"


def _decode(folder: Path, name: str, data: bytes) -> str:
    try:
        # utf-8-sig: a byte-order mark (as Excel exports write) is not part of the first column name.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ListFormatError(f"{folder / name}: not UTF-8 at byte {exc.start}") from exc


def _read_files(
    folder: Path, names: Sequence[str], optional: Sequence[str] = ()
) -> tuple[dict[str, str], str]:
    raw, version = _read_raw(folder, names, optional)
    return {name: _decode(folder, name, data) for name, data in raw.items()}, version


def _manifest_published(folder: Path) -> str | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        published = json.loads(path.read_text("utf-8")).get("published")
    except (OSError, ValueError, AttributeError):
        log.warning("%s: unreadable; the list's publication date comes from elsewhere", path)
        return None
    return published if isinstance(published, str) else None


def _published(folder: Path, stated: str | None = None) -> str | None:
    """The list's publication date: the date the file states, else the fetch manifest's (the
    publisher's Last-Modified), else the folder name (data/README.md names folders by date)."""
    if stated:
        return stated
    if (from_manifest := _manifest_published(folder)) is not None:
        return from_manifest
    if (named := folder_date(folder)) is None:
        log.warning("%s: no publication date in the file, a manifest or the folder name", folder)
    return named


def folder_date(folder: Path) -> str | None:
    """The ISO date a folder is named by (data/README.md: one folder per publication date), or None."""
    try:
        return date.fromisoformat(folder.name).isoformat()
    except ValueError:
        return None


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV rows with the line number each ends on (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        yield reader.line_num, row


US_DATE = "%m/%d/%Y"  # BIS
UK_DATE = "%d/%m/%Y"  # OFSI


def _date(value: str, written: str) -> str | None:
    """A date written so (`US_DATE`, `UK_DATE`) -> ISO date, or None."""
    try:
        return datetime.strptime(value.strip(), written).date().isoformat()
    except ValueError:
        return None


# Countries as the lists write them where neither ISO-2 nor pycountry's names reach: OFAC add.csv,
# CSL regions, UN (UN terminology names) and OFSI (British usage, typos included).
_COUNTRY_NAMES = {
    "russia": "RU",
    "turkey": "TR",
    "türkiye": "TR",
    "turkiye": "TR",
    "korea, north": "KP",
    "korea, south": "KR",
    "north korea": "KP",
    "south korea": "KR",
    "dprk": "KP",
    "democratic people's republic of korea": "KP",
    "burma": "MM",
    "congo, democratic republic of the": "CD",
    "congo, republic of the": "CG",
    "congo (democratic republic)": "CD",
    "democratic republic of the congo": "CD",
    "congo": "CG",
    "palestinian": "PS",
    "west bank": "PS",
    "region: west bank": "PS",
    "region: gaza": "PS",
    "state of palestine": "PS",
    "palestinian territories": "PS",
    "occupied palestinian territories": "PS",
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
    "china, hong kong special administrative region": "HK",
    "iran (islamic republic of)": "IR",
    "iran": "IR",
    "syria": "SY",
    "syrian arab republic": "SY",
    "united kingdom of great britain and northern ireland": "GB",
    "united kingdom": "GB",
    "uk": "GB",
    "britain": "GB",
    "united states of america": "US",
    "united states": "US",
    "usa": "US",
    "united republic of tanzania": "TZ",
    "tanzania": "TZ",
    "viet nam": "VN",
    "vietnam": "VN",
    "laos": "LA",
    "moldova": "MD",
    "repubic of moldova": "MD",
    "republic of moldova": "MD",
    "belrus": "BY",
    "bolivia": "BO",
    "venezuela": "VE",
    "cape verde": "CV",
    "german": "DE",
    "russian federation": "RU",
    "russian": "RU",
    "guinea bissau": "GW",
    "palestine": "PS",
    "gaza": "PS",
    "british virgin islands": "VG",
}


def country_code(value: str) -> str | None:
    """ISO 3166-1 alpha-2 for a country as a list writes it, or None (regions such as Kafia Kingi)."""
    text = value.strip().strip(".").strip()
    if not text:
        return None
    if len(text) == 2 and text.upper() in ISO_COUNTRIES:
        return text.upper()
    if (known := _COUNTRY_NAMES.get(text.casefold())) is not None:
        return known
    # "Iraq (previous address)": a note after the name.
    if "(" in text and (bare := text.split("(", 1)[0].strip()) and bare != text:
        return country_code(bare)
    try:
        code: str = pycountry.countries.lookup(text).alpha_2
    except LookupError:
        return None
    return code


_ENUMERATED = re.compile(r"\(\d+\)")


def country_codes(value: str) -> list[str]:
    """Every country in a field that may list several: "(1) Cyprus (2) Russia", "Germany. Russia",
    "Estonia, Russia"; a single name with a comma ("Korea, North") is tried whole first."""
    found: list[str] = []
    for part in _ENUMERATED.split(value):
        if not part.strip():
            continue
        whole = country_code(part)
        pieces = [whole] if whole else [country_code(p) for p in re.split(r"[.;,]", part)]
        for code in pieces:
            if code is not None and code not in found:
                found.append(code)
    return found


def _distinct(values: Iterable[str], exclude: str = "") -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        value = " ".join(value.split())
        if value and value != exclude and value not in out:
            out.append(value)
    return tuple(out)


def _address(*parts: str | None) -> str:
    return ", ".join(p for p in (" ".join((part or "").split()) for part in parts) if p)


def entry_content_version(entry: ListEntry) -> str:
    """A hash of what the list says about an entry (not of where it was loaded from)."""
    payload = json.dumps(
        [
            entry.list_id,
            entry.entry_id,
            entry.name,
            entry.aliases,
            entry.entry_type,
            entry.programs,
            entry.countries,
            entry.details,
            entry.addresses,
            entry.weak_aliases,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def new_entry(
    *,
    source_id: str,
    list_id: str,
    entry_id: str,
    name: str,
    aliases: Iterable[str] = (),
    entry_type: EntryType | None,
    programs: Iterable[str] = (),
    countries: Iterable[str] = (),
    details: Iterable[tuple[str, str]] = (),
    addresses: Iterable[str] = (),
    weak_aliases: Iterable[str] = (),
) -> ListEntry:
    name = " ".join(name.split())
    alias_tuple = _distinct(aliases, exclude=name)
    entry = ListEntry(
        source_id=source_id,
        list_id=list_id,
        entry_id=entry_id,
        name=name,
        aliases=alias_tuple,
        entry_type=entry_type,
        programs=_distinct(programs),
        countries=_distinct(countries),
        details=tuple((k, v) for k, v in details if v),
        addresses=_distinct(addresses),
        weak_aliases=tuple(a for a in _distinct(weak_aliases) if a in alias_tuple),
    )
    return replace(entry, content_version=entry_content_version(entry))


def _finish(
    source_id: str,
    kind: str,
    folder: Path,
    files: Sequence[str],
    version: str,
    rows_read: int,
    skips: _Skips,
    entries: list[ListEntry],
    list_names: dict[str, str],
    *,
    stated_date: str | None = None,
    rows_merged: int = 0,
) -> LoadedSource:
    published = _published(folder, stated_date)
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
        files=tuple(files),
        version=version,
        published=published,
        rows_read=rows_read,
        rows_skipped=skips.count,
        skipped_examples=tuple(skips.examples),
        lists=lists,
    )
    log.info(
        "loaded %s from %s (%s, %s): %d entries, %d aliases, %d rows merged, %d rows skipped",
        source_id,
        folder,
        version,
        published,
        len(entries),
        sum(aliases.values()),
        rows_merged,
        skips.count,
    )
    return LoadedSource(info, entries, rows_merged)


# --- OFAC legacy CSV (sdn.csv + alt.csv + add.csv; cons_prim/alt/add.csv) -----------------------

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


def _is_eof_marker(row: list[str]) -> bool:
    # The legacy files end with a line holding only Ctrl-Z (0x1A), a DOS end-of-file marker.
    return len(row) == 1 and row[0].strip() == "\x1a"


def _load_ofac_legacy(
    folder: Path,
    source_id: str,
    kind: str,
    files: tuple[str, str, str],
    optional: tuple[str],
    list_of: Callable[[tuple[str, ...]], tuple[str, str]],
) -> LoadedSource:
    """OFAC legacy CSV (dat_spec.txt): primary (12 columns), aliases (5), addresses (6), comments (2),
    joined on ent_num."""
    primary, alt, add = files
    texts, version = _read_files(folder, files, optional)
    skips = _Skips(source_id)
    rows_read = 0
    entries: dict[str, _Merged] = {}
    list_names: dict[str, str] = {}
    for line, row in _rows(texts[primary]):
        if not row or _is_eof_marker(row):
            continue
        rows_read += 1
        if len(row) != 12:
            skips.skip(primary, line, f"expected 12 columns, found {len(row)}")
            continue
        ent_num, name, sdn_type, program = (_ofac(v) for v in row[:4])
        if ent_num is None or not ent_num.isdigit():
            skips.skip(primary, line, f"ent_num {row[0]!r} is not a number")
            continue
        if name is None:
            skips.skip(primary, line, f"ent_num {ent_num} has no SDN_Name")
            continue
        entry_type = _OFAC_TYPES.get(sdn_type.lower() if sdn_type else None)
        if entry_type is None:
            skips.skip(primary, line, f"ent_num {ent_num}: unknown SDN_Type {sdn_type!r}")
            continue
        if ent_num in entries:
            skips.skip(primary, line, f"ent_num {ent_num} appears twice")
            continue
        # Programs are written "IRAN] [SDGT] [IFSR" (the outer brackets are the field's own).
        programs = tuple(p.strip(" []") for p in (program or "").split("] [") if p.strip(" []"))
        list_id, list_names[list_id] = list_of(programs)
        entries[ent_num] = _Merged(
            list_id,
            ent_num,
            name,
            entry_type,
            programs=list(programs),
            details={key: [v] for i, key in _OFAC_DETAILS if (v := _ofac(row[i])) is not None},
        )

    for line, row in _rows(texts[alt]):
        if not row or _is_eof_marker(row):
            continue
        rows_read += 1
        if len(row) != 5:
            skips.skip(alt, line, f"expected 5 columns, found {len(row)}")
            continue
        ent_num, alt_name, alt_remarks = _ofac(row[0]), _ofac(row[3]), _ofac(row[4]) or ""
        if ent_num not in entries:
            skips.skip(alt, line, f"ent_num {row[0]!r} is not in {primary}")
            continue
        if alt_name is None:
            skips.skip(alt, line, f"ent_num {ent_num} alias has no alt_name")
            continue
        entries[ent_num].aliases.append(alt_name)
        # OFAC marks "weak" AKAs, which it does not expect to be screened alone (OFAC FAQ 122).
        if "weak" in alt_remarks.lower() or "low quality" in alt_remarks.lower():
            entries[ent_num].weak_aliases.append(alt_name)

    for line, row in _rows(texts[add]):
        if not row or _is_eof_marker(row):
            continue
        rows_read += 1
        if len(row) != 6:
            skips.skip(add, line, f"expected 6 columns, found {len(row)}")
            continue
        ent_num, street, city, country = _ofac(row[0]), _ofac(row[2]), _ofac(row[3]), _ofac(row[4])
        if ent_num not in entries:
            skips.skip(add, line, f"ent_num {row[0]!r} is not in {primary}")
            continue
        # An address without a country (or "undetermined") is valid; it just adds no country.
        code = country_code(country) if country else None
        if code is not None and code not in entries[ent_num].countries:
            entries[ent_num].countries.append(code)
        if street or city:
            entries[ent_num].addresses.append(_address(street, city, country))

    for name in optional:
        if name not in texts:
            continue
        for line, row in _rows(texts[name]):
            if not row or _is_eof_marker(row):
                continue
            rows_read += 1
            if len(row) != 2:
                skips.skip(name, line, f"expected 2 columns, found {len(row)}")
                continue
            ent_num, overflow = _ofac(row[0]), row[1]
            if ent_num not in entries:
                skips.skip(name, line, f"ent_num {row[0]!r} is not in {primary}")
                continue
            # The overflow of Remarks beyond its field length; it continues mid-sentence.
            remarks = entries[ent_num].details.setdefault("remarks", [""])
            remarks[0] += overflow

    loaded = [merged.entry(source_id) for merged in entries.values()]
    present = [*files, *(o for o in optional if o in texts)]
    return _finish(source_id, kind, folder, present, version, rows_read, skips, loaded, list_names)


def load_ofac_sdn(folder: Path, source_id: str) -> LoadedSource:
    """OFAC SDN list, legacy CSV: sdn.csv, alt.csv, add.csv and, when present, sdn_comments.csv."""
    return _load_ofac_legacy(
        folder, source_id, "ofac_sdn", OFAC_FILES, OFAC_OPTIONAL, lambda _: ("SDN", SDN_LIST_NAME)
    )


def load_ofac_non_sdn(folder: Path, source_id: str) -> LoadedSource:
    """OFAC consolidated non-SDN lists (SSI, NS-MBS, PLC, CMIC, CAPTA, FSE), the same legacy CSV
    layout as the SDN files (cons_prim/alt/add/comments.csv); each entry keeps its own list id."""
    return _load_ofac_legacy(
        folder, source_id, "ofac_non_sdn", OFAC_NON_SDN_FILES, OFAC_NON_SDN_OPTIONAL, non_sdn_list
    )


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
    "dates_of_birth",
    "places_of_birth",
    "ids",
)
_ABBREVIATION = re.compile(r"\(([^()]+)\)")
_AKA = re.compile(r"^a\.?k\.?a\.?\s*", re.IGNORECASE)


def csl_list_id(source: str) -> str | None:
    found = _ABBREVIATION.search(source)
    return CSL_LIST_IDS.get(found.group(1).strip()) if found else None


def dpl_entry_id(name: str) -> str:
    """The BIS Denied Persons List has no ids: a person is known by name. The same slug from the BIS
    file and from the CSL's DPL rows lets the two copies of one person meet as one entry."""
    slug = re.sub(r"[^0-9A-Z]+", "-", unidecode(name).upper()).strip("-")
    return slug or "dpl-" + hashlib.sha256(name.encode()).hexdigest()[:12]


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
            addresses.append(_address(*item.split(",")))
    for column in ("citizenships", "nationalities"):
        for value in row.get(column, "").split(";"):
            code = country_code(value) if value.strip() else None
            if code is not None and code not in codes:
                codes.append(code)
    return codes, addresses


@dataclass
class _Merged:
    """An entry assembled from several rows (the same party listed once per address)."""

    list_id: str
    entry_id: str
    name: str
    entry_type: EntryType | None
    aliases: list[str] = field(default_factory=list)
    weak_aliases: list[str] = field(default_factory=list)
    programs: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    details: dict[str, list[str]] = field(default_factory=dict)

    def add(
        self,
        *,
        names: Iterable[str] = (),
        programs: Iterable[str] = (),
        countries: Iterable[str] = (),
        addresses: Iterable[str] = (),
        details: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.aliases.extend(names)
        self.programs.extend(programs)
        self.countries.extend(countries)
        self.addresses.extend(addresses)
        for key, value in details:
            value = value.strip()
            if value and value not in (seen := self.details.setdefault(key, [])):
                seen.append(value)

    def entry(self, source_id: str) -> ListEntry:
        return new_entry(
            source_id=source_id,
            list_id=self.list_id,
            entry_id=self.entry_id,
            name=self.name,
            aliases=self.aliases,
            entry_type=self.entry_type,
            programs=self.programs,
            countries=self.countries,
            details=[(k, " | ".join(v)) for k, v in self.details.items()],
            addresses=self.addresses,
            weak_aliases=self.weak_aliases,
        )


def load_csl(folder: Path, source_id: str) -> LoadedSource:
    """trade.gov Consolidated Screening List CSV (header row); every source list keeps its own id.

    Entry ids: OFAC's ent_num for Treasury lists (as in sdn.csv), the name slug for the DPL (as in the
    BIS file, whose rows per address are merged the same way), else the CSL's `_id`."""
    texts, version = _read_files(folder, CSL_FILES)
    reader = csv.DictReader(io.StringIO(texts["consolidated.csv"], newline=""))
    missing = [c for c in CSL_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ListFormatError(f"{folder / 'consolidated.csv'}: header lacks columns {missing}")
    skips = _Skips(source_id)
    rows_read = merged_rows = 0
    merged: dict[tuple[str, str], _Merged] = {}
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
        if list_id == "DPL":
            entry_id = dpl_entry_id(name)
        else:
            entry_id = row["entity_number"].strip() or row["_id"].strip()
        if not entry_id:
            skips.skip("consolidated.csv", line, "neither entity_number nor _id")
            continue
        entry_type = _CSL_TYPES.get(row["type"].strip().lower()) if row["type"].strip() else None
        if row["type"].strip() and entry_type is None:
            skips.skip("consolidated.csv", line, f"unknown type {row['type']!r}")
            continue
        key = (list_id, entry_id)
        if key in merged and list_id != "DPL":
            skips.skip("consolidated.csv", line, f"{list_id} entry {entry_id} appears twice")
            continue
        if key in merged:
            merged_rows += 1
        else:
            merged[key] = _Merged(list_id, entry_id, name, entry_type)
        list_names.setdefault(list_id, row["source"].strip())
        countries, addresses = _csl_places(row)
        merged[key].add(
            names=[_AKA.sub("", a.strip()) for a in [*packed, *row["alt_names"].split(";")]],
            programs=[p.strip() for p in row["programs"].split(";")],
            countries=countries,
            addresses=addresses,
            details=[(k, row.get(k) or "") for k in _CSL_DETAILS],
        )
    loaded = [m.entry(source_id) for m in merged.values()]
    return _finish(
        source_id,
        "csl",
        folder,
        CSL_FILES,
        version,
        rows_read,
        skips,
        loaded,
        list_names,
        rows_merged=merged_rows,
    )


# --- BIS Denied Persons List (tab-separated) -----------------------------------------------------

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
    texts, version = _read_files(folder, DPL_FILES)
    reader = csv.reader(io.StringIO(texts["dpl.txt"], newline=""), delimiter="\t")
    header = next(reader, [])
    if [h.strip() for h in header] != list(DPL_COLUMNS):
        raise ListFormatError(f"{folder / 'dpl.txt'}: header is not the BIS layout {list(DPL_COLUMNS)}")
    skips = _Skips(source_id)
    rows_read = merged_rows = 0
    merged: dict[str, _Merged] = {}
    for row in reader:
        line = reader.line_num
        if not row or not any(v.strip() for v in row):
            continue
        rows_read += 1
        if len(row) != len(DPL_COLUMNS):
            skips.skip("dpl.txt", line, f"expected {len(DPL_COLUMNS)} tab-separated fields, found {len(row)}")
            continue
        values = dict(zip(DPL_COLUMNS, (v.strip() for v in row), strict=True))
        name = " ".join(values["Name"].split())
        if not name:
            skips.skip("dpl.txt", line, "empty Name")
            continue
        entry_id = dpl_entry_id(name)
        if entry_id in merged:
            merged_rows += 1
        else:
            merged[entry_id] = _Merged("DPL", entry_id, name, None)
        country = values["Country"]
        code = country_code(country) if country else None
        # Dates as BIS writes them (MM/DD/YYYY) in ISO form; a date that does not parse is kept as written.
        effective = _date(values["Effective_Date"], US_DATE) or values["Effective_Date"]
        expiration = _date(values["Expiration_Date"], US_DATE) or values["Expiration_Date"]
        merged[entry_id].add(
            names=[name],
            countries=[code] if code else [],
            addresses=[
                _address(
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
    loaded = [m.entry(source_id) for m in merged.values()]
    return _finish(
        source_id,
        "bis_dpl",
        folder,
        DPL_FILES,
        version,
        rows_read,
        skips,
        loaded,
        {"DPL": DPL_LIST_NAME},
        rows_merged=merged_rows,
    )


# --- UN Security Council consolidated list (XML) ------------------------------------------------

UN_FILES = ("consolidated.xml",)
UN_LIST_NAME = "UN Security Council Consolidated List (UN)"
_UN_NAME_PARTS = ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")


def _text(element: ET.Element | None) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""


def _values(record: ET.Element, path: str) -> list[str]:
    return [t for v in record.findall(path) if (t := _text(v))]


def _un_records(folder: Path, raw: bytes) -> Iterator[tuple[int, ET.Element]]:
    """INDIVIDUAL and ENTITY elements with the line each starts on, parsed incrementally.

    Fed line by line so each record's start line is known (ElementTree keeps none); entities are not
    expanded beyond expat's defaults, and no external entity or DTD is fetched."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    starts: dict[int, int] = {}
    root: ET.Element | None = None
    for number, line in enumerate(raw.splitlines(keepends=True), start=1):
        try:
            parser.feed(line)
            events = list(parser.read_events())
        except ET.ParseError as exc:
            raise ListFormatError(
                f"{folder / 'consolidated.xml'}:{number}: not well-formed XML: {exc}"
            ) from exc
        for item in events:
            if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[1], ET.Element):
                continue  # only ("start" | "end", element) events were asked for
            event, element = item
            if event == "start":
                if root is None:
                    root = element
                    if element.tag != "CONSOLIDATED_LIST":
                        raise ListFormatError(
                            f"{folder / 'consolidated.xml'}: root element is {element.tag!r}, "
                            "not the UN's CONSOLIDATED_LIST"
                        )
                if element.tag in ("INDIVIDUAL", "ENTITY"):
                    starts[id(element)] = number
            elif element.tag in ("INDIVIDUAL", "ENTITY"):
                yield starts.pop(id(element)), element
                element.clear()  # the record is read: keep memory flat over the whole file
    try:
        parser.close()
    except ET.ParseError as exc:
        raise ListFormatError(f"{folder / 'consolidated.xml'}: truncated XML: {exc}") from exc
    if root is None:
        raise ListFormatError(f"{folder / 'consolidated.xml'}: no XML content")


def _un_generated(raw: bytes) -> str | None:
    found = re.search(rb'dateGenerated="(\d{4}-\d{2}-\d{2})', raw[:2000])
    return found.group(1).decode() if found else None


def load_un_sc(folder: Path, source_id: str) -> LoadedSource:
    """UN Security Council Consolidated List XML (sc-sanctions.xsd): INDIVIDUALS/INDIVIDUAL and
    ENTITIES/ENTITY; the entry id is the UN's permanent REFERENCE_NUMBER (e.g. QDi.001)."""
    raw_files, version = _read_raw(folder, UN_FILES)
    raw = raw_files["consolidated.xml"]
    skips = _Skips(source_id)
    rows_read = 0
    loaded: list[ListEntry] = []
    seen: set[str] = set()
    for line, record in _un_records(folder, raw):
        rows_read += 1
        reference = _text(record.find("REFERENCE_NUMBER"))
        individual = record.tag == "INDIVIDUAL"
        name = " ".join(p for part in _UN_NAME_PARTS if (p := _text(record.find(part))))
        if not reference:
            skips.skip("consolidated.xml", line, f"{record.tag} {name!r} has no REFERENCE_NUMBER")
            continue
        if not name:
            skips.skip("consolidated.xml", line, f"{reference} has no FIRST_NAME")
            continue
        if reference in seen:
            skips.skip("consolidated.xml", line, f"{reference} appears twice")
            continue
        seen.add(reference)
        alias_tag = "INDIVIDUAL_ALIAS" if individual else "ENTITY_ALIAS"
        aliases: list[str] = []
        weak: list[str] = []
        for alias in record.findall(alias_tag):
            alias_name = _text(alias.find("ALIAS_NAME"))
            if not alias_name:
                continue  # the UN writes an empty alias element for "no alias"
            aliases.append(alias_name)
            # QUALITY "Low": too broad to identify the person alone (UN sanctions committees' guidance).
            if _text(alias.find("QUALITY")).lower() == "low":
                weak.append(alias_name)
        if original := _text(record.find("NAME_ORIGINAL_SCRIPT")):
            aliases.append(original)  # Arabic, Cyrillic, ... script: screened as written
        countries: list[str] = []
        for nationality in _values(record, "NATIONALITY/VALUE"):
            countries.extend(country_codes(nationality))
        addresses: list[str] = []
        for address in record.findall("INDIVIDUAL_ADDRESS" if individual else "ENTITY_ADDRESS"):
            country = _text(address.find("COUNTRY"))
            countries.extend(country_codes(country) if country else [])
            parts = [_text(address.find(p)) for p in ("STREET", "CITY", "STATE_PROVINCE", "ZIP_CODE")]
            if any(parts):
                addresses.append(_address(*parts, country))
        births = []
        for birth in record.findall("INDIVIDUAL_DATE_OF_BIRTH"):
            births.append(_text(birth.find("DATE")) or _text(birth.find("YEAR")))
        list_type = _text(record.find("UN_LIST_TYPE"))
        loaded.append(
            new_entry(
                source_id=source_id,
                list_id="UN",
                entry_id=reference,
                name=name,
                aliases=aliases,
                entry_type="individual" if individual else "entity",
                programs=[list_type] if list_type else [],
                countries=countries,
                details=[
                    ("listed_on", _text(record.find("LISTED_ON"))),
                    ("last_updated", "; ".join(_values(record, "LAST_DAY_UPDATED/VALUE"))),
                    ("title", "; ".join(_values(record, "TITLE/VALUE"))),
                    ("designation", "; ".join(_values(record, "DESIGNATION/VALUE"))),
                    ("dates_of_birth", "; ".join(b for b in births if b)),
                    ("gender", _text(record.find("GENDER"))),
                    ("comments", _text(record.find("COMMENTS1"))),
                ],
                addresses=addresses,
                weak_aliases=weak,
            )
        )
    return _finish(
        source_id,
        "un_sc",
        folder,
        UN_FILES,
        version,
        rows_read,
        skips,
        loaded,
        {"UN": UN_LIST_NAME},
        stated_date=_un_generated(raw),
    )


# --- UK OFSI Consolidated List (ConList.csv, "2022 format") --------------------------------------

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


def load_uk_ofsi(folder: Path, source_id: str) -> LoadedSource:
    """OFSI ConList CSV: line 1 "Last Updated,DD/MM/YYYY", line 2 the header, then one row per name
    (and address) of a target; rows of one `Group ID` are one target. Name 6 is the surname or the
    entity's name, Name 1-5 the given names."""
    texts, version = _read_files(folder, UK_FILES)
    text = texts["ConList.csv"]
    first, _, body = text.partition("\n")
    stated = _date(m.group(1), UK_DATE) if (m := _UK_LAST_UPDATED.match(first.strip())) else None
    if stated is None:
        raise ListFormatError(
            f"{folder / 'ConList.csv'}:1: expected 'Last Updated,DD/MM/YYYY', found {first[:60]!r}"
        )
    reader = csv.DictReader(io.StringIO(body, newline=""))
    missing = [c for c in UK_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ListFormatError(f"{folder / 'ConList.csv'}:2: header lacks columns {missing}")
    skips = _Skips(source_id)
    rows_read = merged_rows = 0
    targets: dict[str, _Merged] = {}
    primary_named: set[str] = set()
    for row in reader:
        line = reader.line_num + 1  # the reader started after the "Last Updated" line
        rows_read += 1
        if None in row or any(value is None for value in row.values()):
            skips.skip("ConList.csv", line, f"expected {len(reader.fieldnames or [])} columns")
            continue
        values = {k: " ".join(v.split()) for k, v in row.items() if k is not None and v is not None}
        group_id = values["Group ID"]
        if not group_id:
            skips.skip("ConList.csv", line, "no Group ID")
            continue
        entry_type = _UK_TYPES.get(values["Group Type"].lower())
        if entry_type is None:
            skips.skip(
                "ConList.csv", line, f"Group ID {group_id}: unknown Group Type {values['Group Type']!r}"
            )
            continue
        given = [values[f"Name {i}"] for i in range(1, 6)]
        name = " ".join(p for p in [*given, values["Name 6"]] if p)
        if not name:
            skips.skip("ConList.csv", line, f"Group ID {group_id}: no name in Name 1-6")
            continue
        target = targets.get(group_id)
        if target is None:
            target = targets[group_id] = _Merged("UK", group_id, name, entry_type)
        else:
            merged_rows += 1
            if target.entry_type != entry_type:
                skips.skip(
                    "ConList.csv",
                    line,
                    f"Group ID {group_id} is {target.entry_type}, this row says {entry_type}",
                )
                continue
        # The target's name is its first "Primary name" row; other rows add aliases and variations.
        if values["Alias Type"] == "Primary name" and group_id not in primary_named:
            primary_named.add(group_id)
            if target.name != name:
                target.aliases.insert(0, target.name)
                target.name = name
        if values["Alias Quality"].lower() == "low quality":
            target.weak_aliases.append(name)
        country = values["Country"]
        countries = country_codes(country) if country else []
        if values["Nationality"]:
            countries.extend(country_codes(values["Nationality"]))
        street = [values[f"Address {i}"] for i in range(1, 7)]
        address = _address(*street, values["Post/Zip Code"], country) if any(street) else ""
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
                ("listed_on", _date(values["Listed On"], UK_DATE) or values["Listed On"]),
                ("last_updated", _date(values["Last Updated"], UK_DATE) or values["Last Updated"]),
                ("other_information", values["Other Information"]),
            ],
        )
    loaded = [t.entry(source_id) for t in targets.values()]
    return _finish(
        source_id,
        "uk_ofsi",
        folder,
        UK_FILES,
        version,
        rows_read,
        skips,
        loaded,
        {"UK": UK_LIST_NAME},
        stated_date=stated,
        rows_merged=merged_rows,
    )


LOADERS: dict[str, Callable[[Path, str], LoadedSource]] = {
    "ofac_sdn": load_ofac_sdn,
    "ofac_non_sdn": load_ofac_non_sdn,
    "csl": load_csl,
    "bis_dpl": load_bis_dpl,
    "un_sc": load_un_sc,
    "uk_ofsi": load_uk_ofsi,
}
