"""The Commerce Control List from the eCFR: fetch Part 774, rebuild the loader's structure, cache it.

The eCFR versioner API (https://www.ecfr.gov/developers/documentation/api/v1) serves:
- `titles.json`: per CFR title its `up_to_date_as_of` and `latest_issue_date`;
- `versions/title-15.json?part=774`: the dates on which Part 774 (or a section or supplement of it)
  changed;
- `full/{date}/title-15.xml?part=774`: the text of Part 774 as of `date`, in the eCFR's XML (DIV5
  part > DIV8 sections and DIV9 supplements; Supplement No. 1 is the Commerce Control List).

The date fetched is the last date Part 774 changed up to the title's `up_to_date_as_of`, so two
fetches between amendments give the same date and, byte for byte, the same cached file - hence the
same CCL version (`ecfr-<date>+sha256:<hash of the cached JSON>`).

Supplement No. 1 is flat markup: `<HD1>Category 3—Electronics</HD1>`, then per ECCN an `<FP-2><B>3A001
Electronic items ...</B></FP-2>` heading, `<FP-1>` lines for the sections ("License Requirements",
"List Based License Exceptions", "List of Items Controlled") and their labelled fields (`<I>Reason for
Control:</I>`, `<I>LVS:</I>`, `<I>Related Controls:</I>`, `<I>Items:</I>`), the License Requirements
`<TABLE>` (header naming the Country Chart), and `<P>a.1. ...</P>` item paragraphs. The parser writes
the JSON the reference copy uses (its layout is described with the data), with item paragraphs for every category,
so `ccl.parse_ccl` reads either. Writing is verify-then-swap: a fetch that fails, or a document that
does not look like the CCL, leaves the cached and the loaded CCL as they were.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.classifier.ccl import CACHE_PATTERN, CclFormatError, parse_ccl_bytes
from services.classifier.domain import REASONS_FOR_CONTROL, Ccl
from shared import ecfr as shared_ecfr
from shared.ecfr import ECFR_API_URL as ECFR_API_URL
from shared.ecfr import TITLE as TITLE

PART = "774"
SUPPLEMENT = "Supplement No. 1 to Part 774"
# The real supplement has about 640 entries; far fewer means a truncated or different document.
MIN_ENTRIES = 500
# Entries every edition of the CCL has had since the 600 series (2013) and 3A090 (2022).
REQUIRED_ENTRIES = ("0A501", "1C350", "3A001", "3A090", "5A002", "5A992", "6A003", "9A610", "9A515")

_ECCN_HEADING = re.compile(r"^(\d[A-E]\d{3})\b\s*(.*)$", re.S)
_CATEGORY = re.compile(r"^Category\s+\d\b", re.I)
_PRODUCT_GROUP = re.compile(r"^[A-E]\.\s")
_DESIGNATOR = re.compile(r"^((?:[a-z]|\d{1,3})(?:\.(?:[a-z]|\d{1,3}))*)\.\s+(.*)$", re.S)
_LABEL = re.compile(r"^([A-Z][A-Za-z /()'’.-]{1,60}?)\s*:?\s*$")
_SYMBOL = re.compile(r"^[A-Z]{2,4}$")
# Elements of the supplement that carry no entry content.
_SKIPPED = frozenset({"HEAD", "CITA", "EDNOTE", "EFFDNOT", "SOURCE", "AUTH"})
_SECTIONS = {
    "license requirements": "license_requirements",
    "list based license exceptions": "license_exceptions",
    "license exceptions": "license_exceptions",
    "special conditions for sta": "sta",
    "list of items controlled": "items_controlled",
    "reporting requirements": "reporting",
}


class EcfrError(Exception):
    """The eCFR could not be read, or what it sent is not Part 774 as expected; names URL or element."""


# --- fetching -----------------------------------------------------------------------------------


def api_client(
    api_url: str = ECFR_API_URL, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    return shared_ecfr.api_client(
        api_url, user_agent="exportwatch-classifier (eCFR Part 774 updater)", transport=transport
    )


async def latest_part774_date(client: httpx.AsyncClient) -> str:
    """The last date Part 774 changed, no later than the date title 15 is up to date as of."""
    return await shared_ecfr.latest_part_date(client, PART, EcfrError)


async def fetch_part774_xml(client: httpx.AsyncClient, date: str) -> tuple[bytes, str]:
    return await shared_ecfr.fetch_part_xml(client, date, PART, EcfrError)


# --- parsing ------------------------------------------------------------------------------------


def _text(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _tail_text(element: ET.Element, first: ET.Element) -> str:
    """The text of `element` after its first child `first` (the label)."""
    parts = [first.tail or ""]
    for child in list(element)[1:]:
        parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


def _label(element: ET.Element) -> tuple[str, str] | None:
    """`<FP-1><I>Reason for Control:</I> NS, AT</FP-1>` -> ("Reason for Control", "NS, AT")."""
    children = list(element)
    if not children or children[0].tag not in ("I", "E", "B") or (element.text or "").strip():
        return None
    label = _LABEL.match(_text(children[0]))
    if label is None:
        return None
    return label[1].strip(), _tail_text(element, children[0])


def _section(text: str) -> str | None:
    plain = text.strip().rstrip(":").strip().lower()
    return next((key for prefix, key in _SECTIONS.items() if plain.startswith(prefix)), None)


def _heading(element: ET.Element) -> tuple[str, str] | None:
    """An ECCN heading: `<FP-2><B>3A001 Electronic items ...</B></FP-2>` (8D001 uses FP-1)."""
    if element.tag not in ("FP-2", "FP-1", "FP", "P"):
        return None
    children = list(element)
    if not children or children[0].tag != "B" or (element.text or "").strip():
        return None
    found = _ECCN_HEADING.match(_text(children[0]))
    if found is None:
        return None
    whole = _text(element)
    return found[1], whole[len(found[1]) :].strip()


def _table_rows(table: ET.Element) -> tuple[list[str], list[list[str]]]:
    header: list[str] = []
    rows: list[list[str]] = []
    for row in table.iter("TR"):
        cells = [c for c in row if c.tag in ("TH", "TD")]
        if cells and all(c.tag == "TH" for c in cells):
            header = header or [_text(c) for c in cells]
        elif cells:
            rows.append([_text(c) for c in cells])
    return header, rows


def _license_rows(table: ET.Element) -> list[dict[str, Any]] | None:
    """The License Requirements table: its header names the Country Chart (0E982's names only
    "Control(s)"); any other table of an entry (2E003's deposition table) is not one."""
    header, rows = _table_rows(table)
    if not (any(re.search(r"country\s*chart", h, re.I) for h in header) or
            (header and re.fullmatch(r"control\(s\)", header[0].strip(), re.I))):  # fmt: skip
        return None
    found: list[dict[str, Any]] = []
    for cells in rows:
        if not cells or not cells[0]:
            continue
        if len(cells) >= 2 and cells[1]:
            found.append({"control": cells[0], "countryChart": cells[1]})
        elif len(cells) >= 2:
            found.append(
                {"control": cells[0], "countryChart": cells[0], "requirementCellEmptyInSource": True}
            )
        else:
            found.append({"control": cells[0], "countryChart": cells[0], "singleCellRow": True})
    return found


@dataclass
class _Entry:
    eccn: str
    heading: str
    section: str | None = None
    field_name: str | None = None
    reason_for_control: str | None = None
    country_chart: list[dict[str, Any]] = field(default_factory=list)
    license_exceptions: dict[str, str] = field(default_factory=dict)
    sta: str | None = None
    related_controls: str | None = None
    related_definitions: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    in_items: bool = False

    def add_item_text(self, text: str, *, in_note: bool = False, as_note: bool = False) -> None:
        """One block of the items: an item paragraph ("a.1. ..."), a numbered note ("1. ..."), or
        text. Inside a `<NOTE>` nothing is an item, whatever its designator."""
        if not text:
            return
        designated = None if in_note else _DESIGNATOR.match(text)
        if designated is None:
            self.items.append({"paragraph": None, "kind": "text", "depth": 0, "text": text})
            return
        paragraph, rest = designated[1], " ".join(designated[2].split())
        kind = "item" if paragraph[0].isalpha() and not as_note else "note"
        self.items.append(
            {"paragraph": paragraph, "kind": kind, "depth": paragraph.count(".") + 1, "text": rest}
        )

    def enter_section(self, section: str) -> None:
        self.section, self.field_name, self.in_items = section, None, section == "items_controlled"

    def add_field(self, name: str, value: str, *, whole: str) -> None:
        """A labelled field (`<I>Reason for Control:</I> NS, AT`); `whole` is the block's text."""
        section = _section(name) if not value else None
        if section is not None:
            self.enter_section(section)
            return
        normalised = name.rstrip(":").strip()
        self.field_name = normalised
        lowered = normalised.lower()
        if lowered == "reason for control":
            self.reason_for_control = value or None
        elif lowered == "related controls":
            self.related_controls, self.in_items, self.section = value or None, False, "items_controlled"
        elif lowered == "related definitions":
            self.related_definitions, self.in_items, self.section = value or None, False, "items_controlled"
        elif lowered == "items":
            self.section, self.in_items = "items_controlled", True
            self.add_item_text(value)
        elif normalised == "STA":
            self.sta = f"STA: {value}" if value else None
            self.license_exceptions["STA"] = value
        elif _SYMBOL.match(normalised) and normalised not in REASONS_FOR_CONTROL:
            self.license_exceptions[normalised] = value
        elif self.in_items:
            self.add_item_text(whole)

    def add_text(self, text: str) -> None:
        """Unlabelled text: an item paragraph, a note of the licence section, or a field's continuation."""
        if self.in_items or (self.section == "items_controlled" and _DESIGNATOR.match(text)):
            # 5A001 has no "Items:" label: its paragraphs follow the related fields directly.
            self.in_items = True
            self.add_item_text(text)
        elif _DESIGNATOR.match(text):
            # A numbered or lettered note of the licence section ("1. SAMPLE SHIPMENTS: ...",
            # "a. Chemicals Not Eligible"): kept as a note, never as an item paragraph.
            self.add_item_text(text, as_note=True)
        else:
            self.append_to_field(text)

    def append_to_field(self, text: str) -> None:
        """A `<P>` continuing the labelled field above it ("LVS: Yes for:" then "$1500: 3A001.c.")."""
        if not text:
            return
        if self.field_name == "Related Controls":
            self.related_controls = f"{self.related_controls or ''} {text}".strip()
        elif self.field_name == "Related Definitions":
            self.related_definitions = f"{self.related_definitions or ''} {text}".strip()
        elif self.field_name == "STA":
            self.sta = f"{self.sta or ''} {text}".strip()
        elif self.field_name is not None and self.field_name in self.license_exceptions:
            self.license_exceptions[self.field_name] = f"{self.license_exceptions[self.field_name]} {text}"

    def document(self) -> dict[str, Any]:
        top = {
            item["paragraph"]: item["text"]
            for item in self.items
            if item["kind"] == "item" and re.fullmatch(r"[a-z]", item["paragraph"])
        }
        return {
            "eccn": self.eccn,
            "category": self.eccn[0],
            "productGroup": self.eccn[1],
            "heading": self.heading,
            "reasonForControl": self.reason_for_control,
            "countryChart": self.country_chart,
            "licenceExceptionFlags": self.license_exceptions,
            "staSpecialConditions": self.sta,
            "relatedControls": self.related_controls,
            "relatedDefinitions": self.related_definitions,
            "items": self.items,
            "topLevelParagraphs": top,
        }


def _supplement(root: ET.Element) -> ET.Element:
    for element in root.iter("DIV9"):
        if " ".join((element.get("N") or "").split()).lower() == SUPPLEMENT.lower():
            return element
    raise EcfrError(f"the document has no DIV9 N={SUPPLEMENT!r}; is this the eCFR XML of Part {PART}?")


def _walk(elements: Iterable[ET.Element]) -> Iterable[ET.Element]:
    """The supplement's blocks in document order; wrappers (`<DIV>` around tables) are opened."""
    for element in elements:
        if element.tag == "DIV" and element.find(".//TABLE") is None:
            yield from _walk(list(element))
        else:
            yield element


def _on_header(current: _Entry | None, element: ET.Element) -> _Entry | None:
    """A heading between or inside entries; returns the entry that continues after it (None between
    entries: the category and product-group titles)."""
    text = _text(element)
    if _CATEGORY.match(text) or (_PRODUCT_GROUP.match(text) and element.tag == "HD1"):
        return None
    if current is not None and (section := _section(text)):
        current.enter_section(section)
    elif current is not None and current.in_items:
        current.add_item_text(text)  # a sub-heading inside the items ("Acoustics" in 6E003)
    return current


def _on_block(current: _Entry, element: ET.Element) -> None:
    """One block of an entry: a table, a note, a labelled field, or text."""
    if tables := ([element] if element.tag == "TABLE" else list(element.iter("TABLE"))):
        for table in tables:
            rows = _license_rows(table)
            if rows is not None:
                current.country_chart.extend(rows)
            elif current.in_items:
                current.add_item_text(_text(table))
        return
    if element.tag == "NOTE":
        for child in element:
            current.add_item_text(_text(child), in_note=True)
        return
    labelled = _label(element)
    if labelled is not None:
        current.add_field(*labelled, whole=_text(element))
        return
    current.add_text(_text(element))


def parse_part774_xml(xml: bytes, *, issue_date: str, url: str) -> dict[str, Any]:
    """The eCFR XML of Part 774 -> the JSON document `ccl.parse_ccl` reads (every category deep)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise EcfrError(f"{url}: not well-formed XML: {exc}") from exc
    entries: list[_Entry] = []
    current: _Entry | None = None
    for element in _walk(list(_supplement(root))):
        if element.tag in _SKIPPED:
            continue
        heading = _heading(element)
        if heading is not None:
            current = _Entry(eccn=heading[0], heading=heading[1])
            entries.append(current)
        elif element.tag in ("HD1", "HD2", "HD3", "HD"):
            current = _on_header(current, element)
        elif current is not None:
            _on_block(current, element)
    if not entries:
        raise EcfrError(f"{url}: {SUPPLEMENT} has no ECCN headings (<FP-2><B>0A001 ...</B>)")
    return {
        "citation": "15 C.F.R. Part 774, Supplement No. 1 (Commerce Control List)",
        "source": {
            "url": url,
            "api": "eCFR versioner v1",
            "format": "XML",
            "xmlSha256": hashlib.sha256(xml).hexdigest(),
            "parser": "exportwatch services/classifier/ecfr.py",
        },
        "ecfrIssueDate": issue_date,
        "deepCategories": sorted({e.eccn[0] for e in entries}),
        "entryCount": len(entries),
        "entries": [e.document() for e in entries],
    }


# --- verify, cache, swap ------------------------------------------------------------------------


def encode_document(document: Mapping[str, Any]) -> bytes:
    # Deterministic bytes: the CCL version hashes them.
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def verify_document(
    raw: bytes, *, source: str, min_entries: int = MIN_ENTRIES, required: Sequence[str] = REQUIRED_ENTRIES
) -> Ccl:
    """The CCL the loader reads from `raw`, or EcfrError if it is not a plausible CCL."""
    try:
        ccl = parse_ccl_bytes(raw, source=source)
    except CclFormatError as exc:
        raise EcfrError(f"the rebuilt CCL does not load: {exc}") from exc
    if len(ccl.entries) < min_entries:
        raise EcfrError(f"the rebuilt CCL has {len(ccl.entries)} entries, fewer than {min_entries}; refused")
    missing = [eccn for eccn in required if eccn not in ccl.entries]
    if missing:
        raise EcfrError(f"the rebuilt CCL lacks {', '.join(missing)}; refused")
    return ccl


def cache_path(cache_dir: Path, issue_date: str) -> Path:
    return cache_dir / CACHE_PATTERN.replace("*", issue_date)


def write_cache(cache_dir: Path, issue_date: str, raw: bytes) -> Path:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_path(cache_dir, issue_date)
    temporary = target.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(raw)
    os.replace(temporary, target)
    return target


@dataclass(frozen=True)
class CclUpdate:
    ccl: Ccl
    path: Path
    url: str
    entries_with_items: int


async def update_ccl(
    client: httpx.AsyncClient,
    cache_dir: Path,
    *,
    date: str | None = None,
    min_entries: int = MIN_ENTRIES,
    required: Sequence[str] = REQUIRED_ENTRIES,
) -> CclUpdate:
    """Fetch Part 774, rebuild, verify, cache. Raises EcfrError, writing nothing, on any failure."""
    issue_date = date or await latest_part774_date(client)
    xml, url = await fetch_part774_xml(client, issue_date)
    document = await asyncio.to_thread(parse_part774_xml, xml, issue_date=issue_date, url=url)
    raw = encode_document(document)
    target = cache_path(cache_dir, issue_date)
    ccl = await asyncio.to_thread(
        verify_document, raw, source=str(target), min_entries=min_entries, required=required
    )
    path = await asyncio.to_thread(write_cache, cache_dir, issue_date, raw)
    with_items = sum(1 for entry in ccl.entries.values() if entry.paragraph_texts)
    return CclUpdate(ccl=ccl, path=path, url=url, entries_with_items=with_items)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m services.classifier.ecfr`: refresh the cached CCL; the service loads it at start
    (or at once via `POST /ccl/update`)."""
    from shared.settings import load_settings

    settings = load_settings("classifier")
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--date", help="eCFR date YYYY-MM-DD (default: the last change of Part 774)")
    parser.add_argument("--api-url", default=settings.ecfr_api_url)
    parser.add_argument("--cache-dir", type=Path, default=settings.ccl_cache_dir)
    args = parser.parse_args(argv)

    async def run() -> CclUpdate:
        async with api_client(args.api_url) as client:
            return await update_ccl(client, args.cache_dir, date=args.date)

    try:
        update = asyncio.run(run())
    except EcfrError as exc:
        print(f"CCL not updated: {exc}", file=sys.stderr)
        return 1
    print(
        f"CCL {update.ccl.version}: {len(update.ccl.entries)} entries "
        f"({update.entries_with_items} with item paragraphs) from {update.url} -> {update.path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
