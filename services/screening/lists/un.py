"""UN Security Council Consolidated List (XML, sc-sanctions.xsd)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from services.screening.domain import ListEntry
from services.screening.lists.reading import (
    ListFormatError,
    LoadedSource,
    country_codes,
    join_address,
    new_entry,
    open_bytes,
)

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
    context, raw_files = open_bytes(folder, source_id, "un_sc", UN_FILES)
    raw = raw_files["consolidated.xml"]
    loaded: list[ListEntry] = []
    seen: set[str] = set()
    for line, record in _un_records(folder, raw):
        context.rows_read += 1
        reference = _text(record.find("REFERENCE_NUMBER"))
        individual = record.tag == "INDIVIDUAL"
        name = " ".join(p for part in _UN_NAME_PARTS if (p := _text(record.find(part))))
        if not reference:
            context.skip("consolidated.xml", line, f"{record.tag} {name!r} has no REFERENCE_NUMBER")
            continue
        if not name:
            context.skip("consolidated.xml", line, f"{reference} has no FIRST_NAME")
            continue
        if reference in seen:
            context.skip("consolidated.xml", line, f"{reference} appears twice")
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
                addresses.append(join_address(*parts, country))
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
    context.list_names["UN"] = UN_LIST_NAME
    context.stated_date = _un_generated(raw)
    return context.finish(loaded)
