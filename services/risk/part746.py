"""Part 746 (embargoes and other special controls) from the eCFR: the HTS-6 item lists of its
Supplements 2, 4, 5, 6 and 7 and the sections they serve, fetched, verified, cached, swapped.

The eCFR's XML of Part 746 (`full/{date}/title-15.xml?part=746`) is a `DIV5` part with `DIV8`
sections ("§ 746.8 Sanctions against Russia and Belarus.") and `DIV9` supplements. The item
supplements hold tables whose header names an "HTS" column (the Harmonized Tariff Schedule code,
6 digits: "8542.31") and a description column:

- Supplement No. 2 and No. 4: Russian and Belarusian industry sector sanctions (15 CFR 746.8);
- Supplement No. 5: luxury goods (746.8);
- Supplement No. 6: chemicals, biologics and related equipment, EAR99 (746.8);
- Supplement No. 7: items that need a licence to the occupied Crimea region (746.6), Iran (746.7)
  and Russia or Belarus (746.8).

Which destinations a supplement serves follows from the sections its heading (or first paragraph)
cites. The cached document is JSON (`part746-<date>.json`), its version `ecfr-<date>+sha256:<hash
of the JSON>`. Writing is verify-then-swap: a fetch that fails, or a document without the five
supplements or with too few codes, leaves the cached and the loaded lists as they were.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shared import ecfr

PART = "746"
ITEM_SUPPLEMENTS = (2, 4, 5, 6, 7)
# The sections whose destinations the item supplements serve; a document without them is not Part 746.
REQUIRED_SECTIONS = ("746.6", "746.7", "746.8")
# Each supplement of the real Part 746 lists dozens (Supplement No. 6) to thousands (No. 4) of codes;
# fewer than this in any of them means a truncated or different document.
MIN_CODES = 20
CACHE_GLOB = "part746-*.json"

_SUPPLEMENT = re.compile(r"^Supplement No\.\s*(\d+) to Part 746$", re.I)
_SECTION = re.compile(r"746\.(\d+)")
_HTS = re.compile(r"^(\d{4})(?:\.?(\d{2}))?(?:[.\d]*)$")


class Part746Error(Exception):
    """The eCFR could not be read, or what it sent is not Part 746 as expected."""


@dataclass(frozen=True)
class Supplement:
    number: int
    title: str
    # The Part 746 sections the supplement serves ("746.8"), from its heading.
    sections: tuple[str, ...]
    # HTS code as listed, digits only (6, or 4 for a whole heading) -> the description.
    items: Mapping[str, str]

    @property
    def citation(self) -> str:
        return f"Supplement No. {self.number} to Part 746"

    def find(self, hts: str) -> tuple[str, str] | None:
        """The listed code covering the HTS-6 code `hts` (digits only), and its description."""
        for code in (hts[:6], hts[:4]):
            if code in self.items:
                return code, self.items[code]
        return None


@dataclass(frozen=True)
class Part746:
    """The loaded supplements, the section titles, and where they came from."""

    version: str
    issue_date: str
    source: str
    sections: Mapping[str, str]
    supplements: Mapping[int, Supplement]

    def for_section(self, section: str) -> list[Supplement]:
        return [s for s in self.supplements.values() if section in s.sections]


def hts6(code: str | None) -> str | None:
    """The 6-digit HTS subheading of an order line's `hs_code` ("8542.39.0001" -> "854239");
    None when there is none or only a 4-digit heading."""
    digits = re.sub(r"\D", "", code or "")
    return digits[:6] if len(digits) >= 6 else None


# --- parsing the eCFR XML -----------------------------------------------------------------------


def _text(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _hts_code(cell: str) -> str | None:
    found = _HTS.match(cell.replace(" ", ""))
    if found is None:
        return None
    return found[1] + (found[2] or "")


def _table_items(table: ET.Element) -> dict[str, str]:
    """Rows of a table whose header names an HTS column: code -> description (the next column)."""
    header: list[str] = []
    items: dict[str, str] = {}
    for row in table.iter("TR"):
        cells = [c for c in row if c.tag in ("TH", "TD")]
        if cells and all(c.tag == "TH" for c in cells):
            header = header or [_text(c) for c in cells]
            continue
        column = next((i for i, h in enumerate(header) if re.search(r"\bHTS\b", h, re.I)), None)
        if column is None or len(cells) <= column:
            continue
        code = _hts_code(_text(cells[column]))
        if code is None:
            continue
        description = _text(cells[column + 1]) if len(cells) > column + 1 else ""
        items.setdefault(code, description)
    return items


def _supplement(element: ET.Element) -> Supplement | None:
    name = " ".join((element.get("N") or "").split())
    found = _SUPPLEMENT.match(name)
    if found is None or int(found[1]) not in ITEM_SUPPLEMENTS:
        return None
    heading = element.find("HEAD")
    head = _text(heading if heading is not None else element)
    first = next((_text(p) for p in element.iter("P")), "")
    sections = tuple(dict.fromkeys(f"746.{n}" for n in _SECTION.findall(head) or _SECTION.findall(first)))
    items: dict[str, str] = {}
    for table in element.iter("TABLE"):
        for code, description in _table_items(table).items():
            items.setdefault(code, description)
    return Supplement(number=int(found[1]), title=head, sections=sections, items=items)


def parse_part746_xml(xml: bytes, *, issue_date: str, url: str) -> dict[str, Any]:
    """The eCFR XML of Part 746 -> the JSON document `load_document` reads."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise Part746Error(f"{url}: not well-formed XML: {exc}") from exc
    sections = {
        element.get("N", ""): _text(head)
        for element in root.iter("DIV8")
        if (head := element.find("HEAD")) is not None and element.get("N", "").startswith("746.")
    }
    supplements = [s for element in root.iter("DIV9") if (s := _supplement(element)) is not None]
    return {
        "citation": "15 C.F.R. Part 746 (Supplements No. 2, 4, 5, 6 and 7: items by HTS-6 code)",
        "source": {
            "url": url,
            "api": "eCFR versioner v1",
            "xmlSha256": hashlib.sha256(xml).hexdigest(),
            "parser": "exportwatch services/risk/part746.py",
        },
        "ecfrIssueDate": issue_date,
        "sections": sections,
        "supplements": [
            {
                "number": s.number,
                "title": s.title,
                "sections": list(s.sections),
                "items": [{"hts": code, "description": d} for code, d in sorted(s.items.items())],
            }
            for s in sorted(supplements, key=lambda s: s.number)
        ],
    }


# --- reading, verifying, caching ----------------------------------------------------------------


def encode_document(document: Mapping[str, Any]) -> bytes:
    # Deterministic bytes: the version hashes them.
    return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")


def load_document(raw: bytes, *, source: str) -> Part746:
    """The cached JSON -> Part746; Part746Error naming what is wrong."""
    try:
        document = json.loads(raw)
        issue_date = str(document["ecfrIssueDate"])
        supplements = {
            int(s["number"]): Supplement(
                number=int(s["number"]),
                title=str(s["title"]),
                sections=tuple(str(x) for x in s["sections"]),
                items={str(i["hts"]): str(i["description"]) for i in s["items"]},
            )
            for s in document["supplements"]
        }
        sections = {str(k): str(v) for k, v in document["sections"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise Part746Error(f"{source}: not a Part 746 document: {type(exc).__name__}: {exc}") from exc
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return Part746(
        version=f"ecfr-{issue_date}+sha256:{digest}",
        issue_date=issue_date,
        source=source,
        sections=sections,
        supplements=supplements,
    )


def verify(part746: Part746, *, min_codes: int = MIN_CODES) -> Part746:
    """The document, or Part746Error when it lacks a supplement, a section or codes."""
    missing = [n for n in ITEM_SUPPLEMENTS if n not in part746.supplements]
    if missing:
        raise Part746Error(f"{part746.source}: no Supplement No. {missing} to Part 746; refused")
    few = {n: len(s.items) for n, s in part746.supplements.items() if len(s.items) < min_codes}
    if few:
        raise Part746Error(
            f"{part746.source}: supplements with fewer than {min_codes} HTS codes {few}; refused"
        )
    absent = [s for s in REQUIRED_SECTIONS if s not in part746.sections]
    if absent:
        raise Part746Error(f"{part746.source}: no section {absent} of Part 746; refused")
    unserved = [s.number for s in part746.supplements.values() if not s.sections]
    if unserved:
        raise Part746Error(f"{part746.source}: Supplements {unserved} cite no Part 746 section; refused")
    return part746


def cache_path(cache_dir: Path, issue_date: str) -> Path:
    return cache_dir / CACHE_GLOB.replace("*", issue_date)


def write_cache(cache_dir: Path, issue_date: str, raw: bytes) -> Path:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_path(cache_dir, issue_date)
    temporary = target.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(raw)
    os.replace(temporary, target)
    return target


def load_cached(cache_dir: Path, *, min_codes: int = MIN_CODES) -> tuple[Part746 | None, str | None]:
    """The newest cached copy that verifies, or (None, why none)."""
    candidates = sorted(cache_dir.glob(CACHE_GLOB), reverse=True) if cache_dir.is_dir() else []
    problems: list[str] = []
    for path in candidates:
        try:
            return verify(load_document(path.read_bytes(), source=str(path)), min_codes=min_codes), None
        except (OSError, Part746Error) as exc:
            problems.append(str(exc))
    if problems:
        return None, "; ".join(problems)
    return None, f"no cached copy of Part 746 in {cache_dir} (fetch it: POST /part746/update)"


def api_client(
    api_url: str = ecfr.ECFR_API_URL, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    return ecfr.api_client(
        api_url, user_agent="exportwatch-risk (eCFR Part 746 updater)", transport=transport
    )


async def update_part746(
    client: httpx.AsyncClient, cache_dir: Path, *, date: str | None = None, min_codes: int | None = None
) -> Part746:
    """Fetch Part 746, parse, verify, cache. Raises Part746Error, writing nothing, on any failure."""
    min_codes = MIN_CODES if min_codes is None else min_codes
    issue_date = date or await ecfr.latest_part_date(client, PART, Part746Error)
    xml, url = await ecfr.fetch_part_xml(client, issue_date, PART, Part746Error)
    document = await asyncio.to_thread(parse_part746_xml, xml, issue_date=issue_date, url=url)
    raw = encode_document(document)
    target = cache_path(cache_dir, issue_date)
    loaded = verify(load_document(raw, source=str(target)), min_codes=min_codes)
    await asyncio.to_thread(write_cache, cache_dir, issue_date, raw)
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m services.risk.part746`: refresh the cached Part 746; the service loads it at start
    (or at once via `POST /part746/update`)."""
    from shared.settings import load_settings

    settings = load_settings("risk")
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--date", help="eCFR date YYYY-MM-DD (default: the last change of Part 746)")
    parser.add_argument("--api-url", default=settings.ecfr_api_url)
    parser.add_argument("--cache-dir", type=Path, default=settings.part746_cache_dir)
    args = parser.parse_args(argv)

    async def run() -> Part746:
        async with api_client(args.api_url) as client:
            return await update_part746(client, args.cache_dir, date=args.date)

    try:
        loaded = asyncio.run(run())
    except Part746Error as exc:
        print(f"Part 746 not updated: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(f"No. {n}: {len(s.items)}" for n, s in sorted(loaded.supplements.items()))
    print(f"Part 746 {loaded.version}: HTS codes per supplement {counts} -> {loaded.source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
