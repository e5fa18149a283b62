"""What every list format shares: reading the files, dating and versioning a source, countries as
the lists write them, building entries, and the context one load collects (`LoadContext`).

A source is versioned by a content hash of its files and dated by the list's own date where the
format states one (UN `dateGenerated`, OFSI "Last Updated"), else by the fetch manifest of `lists
update`, else by its folder name. Each entry carries a hash of its own content, so two versions of a
list can be compared entry by entry. A malformed row is logged with its file and line number,
counted and skipped (`LoadContext.skip`); a file that cannot be read at all stops the load with
`ListFormatError`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

import pycountry
from unidecode import unidecode

from services.screening.domain import EntryType, ListEntry, ListInfo, SourceInfo
from shared.events import ISO_COUNTRIES

log = logging.getLogger("exportwatch.screening.lists")

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


# --- reading ---------------------------------------------------------------------------------------


def read_raw(
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


def decode(folder: Path, name: str, data: bytes) -> str:
    try:
        # utf-8-sig: a byte-order mark (as Excel exports write) is not part of the first column name.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ListFormatError(f"{folder / name}: not UTF-8 at byte {exc.start}") from exc


def read_files(
    folder: Path, names: Sequence[str], optional: Sequence[str] = ()
) -> tuple[dict[str, str], str]:
    raw, version = read_raw(folder, names, optional)
    return {name: decode(folder, name, data) for name, data in raw.items()}, version


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


def published_date(folder: Path, stated: str | None = None) -> str | None:
    """The list's publication date: the date the file states, else the fetch manifest's (the
    publisher's Last-Modified), else the folder name (the data directory names each copy by date)."""
    if stated:
        return stated
    if (from_manifest := _manifest_published(folder)) is not None:
        return from_manifest
    if (named := folder_date(folder)) is None:
        log.warning("%s: no publication date in the file, a manifest or the folder name", folder)
    return named


def folder_date(folder: Path) -> str | None:
    """The ISO date a folder is named by (one folder per publication date), or None."""
    try:
        return date.fromisoformat(folder.name).isoformat()
    except ValueError:
        return None


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def text_lines(text: str, start: int = 0) -> Iterator[str]:
    """The lines of `text` from `start`, each with its ending, as a file opened with newline=""
    gives them to `csv`: one at a time, where io.StringIO would first copy the whole text (four
    bytes a character) beside it. A list update reads every file while the serving lists stay in
    memory, so a file's copy is the update's memory peak."""
    return (match.group() for match in _LINE.finditer(text, start))


def csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV rows with the line number each ends on (quoted fields may span lines)."""
    reader = csv.reader(text_lines(text))
    for row in reader:
        yield reader.line_num, row


US_DATE = "%m/%d/%Y"  # BIS
UK_DATE = "%d/%m/%Y"  # OFSI


def parse_date(value: str, written: str) -> str | None:
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


def distinct(values: Iterable[str], exclude: str = "") -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        value = " ".join(value.split())
        if value and value != exclude and value not in out:
            out.append(value)
    return tuple(out)


def join_address(*parts: str | None) -> str:
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
    alias_tuple = distinct(aliases, exclude=name)
    entry = ListEntry(
        source_id=source_id,
        list_id=list_id,
        entry_id=entry_id,
        name=name,
        aliases=alias_tuple,
        entry_type=entry_type,
        programs=distinct(programs),
        countries=distinct(countries),
        details=tuple((k, v) for k, v in details if v),
        addresses=distinct(addresses),
        weak_aliases=tuple(a for a in distinct(weak_aliases) if a in alias_tuple),
    )
    return replace(entry, content_version=entry_content_version(entry))


@dataclass
class Merged:
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


# --- one load ----------------------------------------------------------------------------------------


@dataclass
class LoadContext:
    """What one load of a source collects on the way, and how it ends (`finish`): where it reads,
    the files and their version, the rows read, merged and skipped, the lists it found and the
    publication date the file itself states."""

    source_id: str
    kind: str
    folder: Path
    files: Sequence[str]
    version: str
    rows_read: int = 0
    rows_merged: int = 0
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    list_names: dict[str, str] = field(default_factory=dict)
    stated_date: str | None = None

    def skip(self, file: str, line: int, why: str) -> None:
        """A malformed row: logged one by one, counted, a few kept as examples for `GET /lists`."""
        self.skipped += 1
        message = f"{file}:{line}: {why}"
        if len(self.skipped_examples) < 20:
            self.skipped_examples.append(message)
        log.warning("%s: skipped row %s", self.source_id, message)

    def finish(self, entries: list[ListEntry]) -> LoadedSource:
        published = published_date(self.folder, self.stated_date)
        per_list = Counter(e.list_id for e in entries)
        aliases = Counter[str]()
        for e in entries:
            aliases[e.list_id] += len(e.aliases)
        lists = tuple(
            ListInfo(
                self.source_id,
                list_id,
                self.list_names[list_id],
                self.version,
                published,
                per_list[list_id],
                aliases[list_id],
            )
            for list_id in sorted(per_list)
        )
        info = SourceInfo(
            source_id=self.source_id,
            kind=self.kind,
            folder=str(self.folder),
            files=tuple(self.files),
            version=self.version,
            published=published,
            rows_read=self.rows_read,
            rows_skipped=self.skipped,
            skipped_examples=tuple(self.skipped_examples),
            lists=lists,
        )
        log.info(
            "loaded %s from %s (%s, %s): %d entries, %d aliases, %d rows merged, %d rows skipped",
            self.source_id,
            self.folder,
            self.version,
            published,
            len(entries),
            sum(aliases.values()),
            self.rows_merged,
            self.skipped,
        )
        return LoadedSource(info, entries, self.rows_merged)


def open_texts(
    folder: Path, source_id: str, kind: str, names: Sequence[str], optional: Sequence[str] = ()
) -> tuple[LoadContext, dict[str, str]]:
    """The files as text and the load's context (the optional files present count as read)."""
    texts, version = read_files(folder, names, optional)
    files = [*names, *(o for o in optional if o in texts)]
    return LoadContext(source_id, kind, folder, files, version), texts


def open_bytes(
    folder: Path, source_id: str, kind: str, names: Sequence[str]
) -> tuple[LoadContext, dict[str, bytes]]:
    raw, version = read_raw(folder, names)
    return LoadContext(source_id, kind, folder, list(names), version), raw


def dpl_entry_id(name: str) -> str:
    """The BIS Denied Persons List has no ids: a person is known by name. The same slug from the BIS
    file and from the CSL's DPL rows lets the two copies of one person meet as one entry."""
    slug = re.sub(r"[^0-9A-Z]+", "-", unidecode(name).upper()).strip("-")
    return slug or "dpl-" + hashlib.sha256(name.encode()).hexdigest()[:12]
