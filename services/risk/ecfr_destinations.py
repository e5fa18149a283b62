"""The destination reference data risk reads (refdata.py), rebuilt from the eCFR's XML of Parts 738,
740 and 746: what `make run` writes on a machine without the reference snapshot.

- Part 738, Supplement No. 1 (the Commerce Country Chart): a table whose header row names the
  columns (`CB 1` … `AT 2`) and whose rows are a destination (footnote references as `<SU>`) and an
  `X` per column that needs a licence; the four rows with no marks carry one cell pointing to Part 746
  or 742.19. The chart's numbered footnotes follow the table.
- Part 740, Supplement No. 1 (Country Groups): tables whose headers name the groups (`[A:1]`,
  `[B]`, `[D:5]`, `[E:1]` …) with an `X` per member, or, for a table of one group, a list of members.
- Part 740's sections: each licence exception is a section whose heading ends with its symbol
  ("§ 740.3 Shipments of limited value (LVS).").
- Part 746's sections: the destinations each section names in its heading ("§ 746.2 Cuba.",
  "§ 746.8 Sanctions against Russia and Belarus."), and the countries 746.1(b) lists under United
  Nations arms embargoes.

The output has the shapes of the snapshot's derived files (country chart, footnotes and groups as
CSV, licence exceptions as JSON, the Part 746 destinations as CSV), so one loader reads either.
Destinations are named by ISO 3166-1 alpha-2 codes: the regulation's names are matched to ISO names,
after the few spellings the EAR uses that ISO does not ("Burma", "Korea, North"); a name that does
not match is an error naming the row, never a silent drop.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pycountry

CHART_SUPPLEMENT = "Supplement No. 1 to Part 738"
GROUPS_SUPPLEMENT = "Supplement No. 1 to Part 740"
CHART_COLUMNS = (
    "CB1", "CB2", "CB3", "NP1", "NP2", "NS1", "NS2", "MT1", "RS1", "RS2", "FC1", "CC1", "CC2", "CC3", "AT1", "AT2",
)  # fmt: skip
GROUP_ORDER = ("A:1", "A:2", "A:3", "A:4", "A:5", "A:6", "B", "D:1", "D:2", "D:3", "D:4", "D:5", "E:1", "E:2")

# The EAR's names for destinations whose ISO 3166 name differs (and two misspellings the Country
# Chart and the Country Groups carry). Kosovo has no ISO code; XK is the user-assigned one in use.
EAR_NAMES = {
    "burma": "MM", "brunei": "BN", "cape verde": "CV", "china (prc)": "CN", "china": "CN",
    "congo (democratic republic of the)": "CD", "congo (democratic republic of)": "CD",
    "democratic republic of the congo": "CD", "congo (republic of the)": "CG", "cote d'ivoire": "CI",
    "cote d'lvoire": "CI", "korea, north": "KP", "north korea": "KP", "korea, south": "KR",
    "south korea": "KR", "kosovo": "XK", "macau": "MO", "micronesia (federated state of)": "FM",
    "micronesia (federated states of)": "FM", "russia": "RU", "seycheles": "SC", "south sudan": "SS",
    "south sudan, republic of": "SS", "sint maarten": "SX", "vatican city": "VA", "laos": "LA",
    "syria": "SY", "iran": "IR", "bahamas": "BS", "gambia": "GM", "turkey": "TR", "vietnam": "VN",
}  # fmt: skip
# 746.6 names regions, not countries; their ISO 3166-2 codes are an interpretation (the oblasts are
# wider than the EAR's regions), kept beside the regulation's words.
REGIONS_746_6 = (
    ("Crimea region of Ukraine", ("UA-43", "UA-40")),
    ("So-called Donetsk People's Republic (DNR) region of Ukraine", ("UA-14",)),
    ("So-called Luhansk People's Republic (LNR) region of Ukraine", ("UA-09",)),
)

_COLUMN = re.compile(r"^([A-Z]{2})\s*(\d)$")
_GROUP = re.compile(r"\[?\b([A-E]:\d|B)\b\]?")
_GROUP_HEADER = re.compile(r"^\[?([A-E]:\d|B)\]?(?:\s|$)")
# A licence exception's symbol in its section's heading: "(LVS)"; 740.8 names two.
_SYMBOLS = re.compile(r"\(([A-Z]{3})\)")
_SECTION = re.compile(r"^§\s*(74[06]\.\d+)\s+(.*?)\.?$")
_FOOTNOTE_TEXT = re.compile(r"^(\d{1,2})\s+(\S.*)$", re.S)
_REFERENCES_746 = re.compile(r"\b746\.\d+(?:\([a-z0-9]+\))*")


class EcfrDataError(ValueError):
    """The eCFR XML is not the part expected, or a row cannot be read; names the element or row."""


# --- names ----------------------------------------------------------------------------------------


def _normal(name: str) -> str:
    text = " ".join(name.replace("&", "and").replace("’", "'").split()).strip(" .,;:")
    text = re.sub(r"^(?:the)\s+", "", text, flags=re.I)
    text = re.sub(r",\s*the$", "", text, flags=re.I)
    return re.sub(r"^st\.?\s+", "saint ", text, flags=re.I).lower()


_ISO_NAMES: dict[str, str] = {}


def _iso_names() -> dict[str, str]:
    if not _ISO_NAMES:
        for country in pycountry.countries:
            for attribute in ("name", "official_name", "common_name"):
                value = getattr(country, attribute, None)
                if value:
                    _ISO_NAMES[_normal(value)] = country.alpha_2
    return _ISO_NAMES


def iso2_of(name: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of a destination as the EAR names it, or None."""
    normal = _normal(name)
    if not normal:
        return None
    names = _iso_names()
    found = (
        EAR_NAMES.get(normal) or EAR_NAMES.get(_normal(re.sub(r"\s*\(.*?\)", "", name))) or names.get(normal)
    )
    if found:
        return found
    close = difflib.get_close_matches(normal, names, n=1, cutoff=0.9)
    return names[close[0]] if close else None


def _require_iso2(name: str, where: str) -> str:
    code = iso2_of(name)
    if code is None:
        raise EcfrDataError(f"{where}: destination {name!r} matches no ISO 3166-1 country")
    return code


# --- XML helpers ----------------------------------------------------------------------------------


def _text(element: ET.Element, *, skip_su: bool = False) -> str:
    if not skip_su:
        return " ".join("".join(element.itertext()).split())
    parts = [element.text or ""]
    for child in element:
        if child.tag != "SU":
            parts.append(_text(child, skip_su=True))
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


def _su_numbers(element: ET.Element) -> list[int]:
    return [int(n) for su in element.iter("SU") for n in re.findall(r"\d+", "".join(su.itertext()))]


def _root(xml: bytes, url: str) -> ET.Element:
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise EcfrDataError(f"{url}: not well-formed XML: {exc}") from exc


def _supplement(root: ET.Element, name: str, url: str) -> ET.Element:
    for element in root.iter("DIV9"):
        if " ".join((element.get("N") or "").split()).lower() == name.lower():
            return element
    raise EcfrDataError(f"{url}: no DIV9 N={name!r}; is this the eCFR XML of its part?")


def _rows(table: ET.Element) -> tuple[list[list[ET.Element]], list[list[ET.Element]]]:
    """(header rows, body rows) of a table, each row its TH/TD cells."""
    header: list[list[ET.Element]] = []
    body: list[list[ET.Element]] = []
    for row in table.iter("TR"):
        cells = [c for c in row if c.tag in ("TH", "TD")]
        if cells and all(c.tag == "TH" for c in cells):
            header.append(cells)
        elif cells:
            body.append(cells)
    return header, body


def _headings(root: ET.Element, prefix: str) -> dict[str, str]:
    """Section number -> heading text without the number ("746.2" -> "Cuba")."""
    found: dict[str, str] = {}
    for element in root.iter("DIV8"):
        head = element.find("HEAD")
        matched = _SECTION.match(_text(head)) if head is not None else None
        if matched is not None and matched[1].startswith(prefix):
            found[matched[1]] = matched[2].strip()
    return found


# --- Part 738: the Country Chart ------------------------------------------------------------------


@dataclass(frozen=True)
class ChartRowData:
    country: str
    iso2: str
    marked: tuple[str, ...]
    footnotes: tuple[int, ...]
    pointer: str | None


@dataclass(frozen=True)
class CountryChart:
    issue_date: str
    url: str
    rows: tuple[ChartRowData, ...]
    footnotes: Mapping[int, str]


def _chart_columns(header: list[list[ET.Element]]) -> list[str] | None:
    """The column labels of the header row naming them ("CB 1" -> "CB1"), in order."""
    for cells in header:
        labels = [_COLUMN.match(_text(c)) for c in cells]
        if sum(1 for m in labels if m) >= 10:
            return [f"{m[1]}{m[2]}" for m in labels if m]
    return None


def _chart_row(cells: list[ET.Element], columns: list[str], where: str) -> ChartRowData | None:
    name = _text(cells[0], skip_su=True)
    if not name:
        return None
    rest = cells[1:]
    texts = [_text(c) for c in rest]
    pointer = next((t for t in texts if len(t) > 3), None)
    marked = () if pointer else tuple(col for col, t in zip(columns, texts, strict=False) if t.upper() == "X")
    return ChartRowData(
        country=name,
        iso2=_require_iso2(name, where),
        marked=marked,
        footnotes=tuple(dict.fromkeys(_su_numbers(cells[0]))),
        pointer=pointer,
    )


def _chart_footnotes(supplement: ET.Element) -> dict[int, str]:
    """`<SU>1</SU> See § 746.1(b) ...` blocks (P, TNOTE, FTNT) outside the table cells."""
    notes: dict[int, str] = {}
    cells = {id(c) for table in supplement.iter("TABLE") for c in table.iter()}
    for element in supplement.iter():
        if id(element) in cells or element.tag not in ("P", "TNOTE", "FTNT", "FP"):
            continue
        children = list(element)
        if children and children[0].tag == "SU" and not (element.text or "").strip():
            number = re.findall(r"\d+", "".join(children[0].itertext()))
            if number:
                notes.setdefault(int(number[0]), _text(element, skip_su=True))
            continue
        matched = _FOOTNOTE_TEXT.match(_text(element))
        if matched is not None and element.tag in ("TNOTE", "FTNT"):
            notes.setdefault(int(matched[1]), matched[2])
    return notes


def parse_part738_xml(xml: bytes, *, issue_date: str, url: str) -> CountryChart:
    supplement = _supplement(_root(xml, url), CHART_SUPPLEMENT, url)
    rows: dict[str, ChartRowData] = {}
    for table in supplement.iter("TABLE"):
        header, body = _rows(table)
        columns = _chart_columns(header)
        if columns is None:
            continue
        for number, cells in enumerate(body, start=1):
            row = _chart_row(cells, columns, f"{url}: {CHART_SUPPLEMENT} row {number}")
            if row is not None:
                rows.setdefault(row.iso2, row)
    if not rows:
        raise EcfrDataError(f"{url}: {CHART_SUPPLEMENT} has no table with the columns CB 1 … AT 2")
    return CountryChart(issue_date, url, tuple(rows.values()), _chart_footnotes(supplement))


def chart_files(chart: CountryChart) -> dict[str, bytes]:
    """The chart as the snapshot's derived files: CSV (one row per destination), footnotes CSV, and
    the JSON that names the eCFR date."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["country", "iso2", *CHART_COLUMNS, "footnotes", "embargo_pointer"])
    for row in chart.rows:
        marks = ["X" if column in row.marked else "" for column in CHART_COLUMNS]
        footnotes = ";".join(str(n) for n in row.footnotes)
        writer.writerow([row.country, row.iso2, *marks, footnotes, row.pointer or ""])
    notes = io.StringIO()
    note_writer = csv.writer(notes, lineterminator="\n")
    note_writer.writerow(["footnote", "text"])
    for number, text in sorted(chart.footnotes.items()):
        note_writer.writerow([number, text])
    document = {
        "citation": f"15 C.F.R. Part 738, {CHART_SUPPLEMENT} (Commerce Country Chart)",
        "source": {"url": chart.url, "api": "eCFR versioner v1", "format": "XML"},
        "parser": "exportwatch services/risk/ecfr_destinations.py",
        "ecfrIssueDate": chart.issue_date,
        "columnLabels": list(CHART_COLUMNS),
        "countryCount": len(chart.rows),
    }
    return {
        "chart_csv": out.getvalue().encode("utf-8"),
        "footnotes_csv": notes.getvalue().encode("utf-8"),
        "chart_json": json.dumps(document, indent=1).encode("utf-8"),
    }


# --- Part 740: Country Groups and licence exceptions ---------------------------------------------


@dataclass
class CountryGroups:
    issue_date: str
    url: str
    # ISO-2 -> (names as the regulation spells them, groups)
    members: dict[str, tuple[list[str], set[str]]] = field(default_factory=dict)
    exceptions: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, iso2: str, groups: Iterable[str]) -> None:
        names, found = self.members.setdefault(iso2, ([], set()))
        if name not in names:
            names.append(name)
        found.update(groups)

    def group(self, name: str) -> set[str]:
        return {iso2 for iso2, (_, groups) in self.members.items() if name in groups}


def _group_columns(header: list[list[ET.Element]]) -> dict[int, str]:
    """Column index -> group, from the header row naming the groups ("[A:1] Wassenaar …")."""
    for cells in reversed(header):
        found = {i: m[1] for i, c in enumerate(cells) if (m := _GROUP_HEADER.match(_text(c)))}
        if found:
            return found
    for cells in header:  # a one-group table's title ("Country Group B")
        named = {m for c in cells for m in _GROUP.findall(_text(c))}
        if len(named) == 1:
            return {-1: named.pop()}
    return {}


def _group_table(table: ET.Element, groups: CountryGroups, where: str) -> None:
    header, body = _rows(table)
    columns = _group_columns(header)
    if not columns:
        return
    listed = -1 in columns or not any(
        _text(c).upper() == "X" for cells in body for c in cells[1:]
    )  # a list of one group's members
    for number, cells in enumerate(body, start=1):
        name = _text(cells[0], skip_su=True)
        if not name or name.lower().startswith("country"):
            continue
        iso2 = _require_iso2(name, f"{where} row {number}")
        if listed:
            groups.add(name, iso2, set(columns.values()))
        else:
            groups.add(
                name,
                iso2,
                {g for i, g in columns.items() if i < len(cells) and _text(cells[i]).upper() == "X"},
            )


def parse_part740_xml(xml: bytes, *, issue_date: str, url: str) -> CountryGroups:
    root = _root(xml, url)
    supplement = _supplement(root, GROUPS_SUPPLEMENT, url)
    groups = CountryGroups(issue_date, url)
    for number, table in enumerate(supplement.iter("TABLE"), start=1):
        _group_table(table, groups, f"{url}: {GROUPS_SUPPLEMENT} table {number}")
    if not groups.members:
        raise EcfrDataError(f"{url}: {GROUPS_SUPPLEMENT} has no table of Country Groups ([A:1] … [E:2])")
    for section, title in sorted(_headings(root, "740.").items(), key=lambda s: _section_key(s[0])):
        symbols = _SYMBOLS.findall(title)
        if symbols:
            groups.exceptions.append(
                {
                    "section": f"15 C.F.R. § {section}",
                    "sectionNumber": section,
                    "symbols": symbols,
                    "title": title,
                }
            )
    return groups


def _section_key(section: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", section))


def groups_files(groups: CountryGroups) -> dict[str, bytes]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["country", "iso2", "name_variants_in_source", *GROUP_ORDER])
    for iso2, (names, found) in sorted(groups.members.items(), key=lambda m: m[1][0][0]):
        marks = ["X" if g in found else "" for g in GROUP_ORDER]
        writer.writerow([names[0], iso2, "|".join(names) if len(names) > 1 else "", *marks])
    source = {"url": groups.url, "api": "eCFR versioner v1", "format": "XML"}
    document = {
        "citation": f"15 C.F.R. Part 740, {GROUPS_SUPPLEMENT} (Country Groups)",
        "source": source,
        "parser": "exportwatch services/risk/ecfr_destinations.py",
        "ecfrIssueDate": groups.issue_date,
        "groups": {g: sorted(groups.group(g)) for g in GROUP_ORDER},
    }
    exceptions = {
        "citation": "15 C.F.R. Part 740 (License Exceptions)",
        "source": source,
        "parser": "exportwatch services/risk/ecfr_destinations.py",
        "ecfrIssueDate": groups.issue_date,
        "count": len(groups.exceptions),
        "exceptions": groups.exceptions,
    }
    return {
        "groups_csv": out.getvalue().encode("utf-8"),
        "groups_json": json.dumps(document, indent=1).encode("utf-8"),
        "exceptions_json": json.dumps(exceptions, indent=1).encode("utf-8"),
    }


def sanity(
    chart: CountryChart, groups: CountryGroups, *, min_chart_rows: int, min_exceptions: int
) -> list[str]:
    """What makes a converted chart and groups implausible (empty: none). The E:1/E:2 embargoes and
    the Country Chart's columns are what a decision stands on, so each must be there."""
    problems = []
    if len(chart.rows) < min_chart_rows:
        problems.append(
            f"{chart.url}: the Country Chart has {len(chart.rows)} rows, fewer than {min_chart_rows}"
        )
    if not any(r.marked for r in chart.rows) or not any(r.pointer for r in chart.rows):
        problems.append(f"{chart.url}: the Country Chart has no X marks or no Part 746 pointer rows")
    for group in ("A:1", "B", "D:1", "D:5", "E:1", "E:2"):
        if not groups.group(group):
            problems.append(f"{groups.url}: Country Group {group} has no member")
    if len(groups.exceptions) < min_exceptions:
        problems.append(
            f"{groups.url}: {len(groups.exceptions)} licence exceptions, fewer than {min_exceptions}"
        )
    return problems


# --- Part 746: the destinations it names ----------------------------------------------------------


@dataclass(frozen=True)
class Part746Sections:
    issue_date: str
    url: str
    # section -> its heading ("746.2" -> "Cuba")
    headings: Mapping[str, str]
    # ISO-2 of the countries 746.1(b) lists under United Nations arms embargoes
    un_arms_embargo: frozenset[str]


def _listed_countries(text: str) -> set[str]:
    """Countries named in a list ("… embargoes: Central African Republic, Iraq, and Libya")."""
    tail = text.split(":", 1)[1] if ":" in text else text
    found = set()
    for part in re.split(r",|;|\band\b|\bor\b", tail):
        code = iso2_of(re.sub(r"\(.*?\)|\.$", "", part).strip())
        if code is not None:
            found.add(code)
    return found


def parse_part746_sections(xml: bytes, *, issue_date: str, url: str) -> Part746Sections:
    root = _root(xml, url)
    headings = _headings(root, "746.")
    if not any(s in headings for s in ("746.2", "746.8")):
        raise EcfrDataError(f"{url}: no § 746.2 or § 746.8 heading; is this the eCFR XML of Part 746?")
    embargoed: set[str] = set()
    for element in root.iter("DIV8"):
        if element.get("N") != "746.1":
            continue
        for paragraph in element.iter("P"):
            text = _text(paragraph)
            if re.search(r"arms embargo", text, re.I) and ":" in text:
                embargoed |= _listed_countries(text)
    return Part746Sections(issue_date, url, headings, frozenset(embargoed))


def _named_in(heading: str) -> list[str]:
    """ISO-2 codes of the countries a section heading names ("Sanctions against Russia and Belarus")."""
    words = re.sub(r"^(?:sanctions against|embargo on)\s+", "", heading, flags=re.I)
    return [c for part in re.split(r",|\band\b", words) if (c := iso2_of(part.strip())) is not None]


def destination_rows(
    chart: CountryChart, groups: CountryGroups, part746: Part746Sections
) -> list[dict[str, str]]:
    """One row per destination under Part 746 or in Country Group D:5, E:1 or E:2, with the sections
    that govern it (the Country Chart's pointer and footnotes, Part 746's headings, 746.1(b))."""
    sections: dict[str, list[str]] = {}
    for section, heading in part746.headings.items():
        for code in _named_in(heading):
            sections.setdefault(code, []).append(section)
    chart_rows = {r.iso2: r for r in chart.rows}
    for row in chart.rows:
        # A row without marks points to the sections that govern it; a footnote adds Part 746's
        # sanctions on top of a row's marks (footnote 6: 746.5 and 746.8 for Russia and Belarus).
        cited = _REFERENCES_746.findall(row.pointer or "")
        for number in row.footnotes:
            cited += [
                r for r in _REFERENCES_746.findall(chart.footnotes.get(number, "")) if r in ("746.5", "746.8")
            ]
        for reference in cited:
            sections.setdefault(row.iso2, []).append(reference)
    for code in part746.un_arms_embargo:
        sections.setdefault(code, []).append("746.1(b)")
    e1, e2, d5 = groups.group("E:1"), groups.group("E:2"), groups.group("D:5")
    codes = sorted(set(sections) | e1 | e2 | d5 | {r.iso2 for r in chart.rows if r.pointer})
    rows = [
        _destination(code, sections.get(code, []), chart_rows.get(code), groups, part746, chart)
        for code in codes
    ]
    if "746.6" in part746.headings:
        rows += [_region(name, regional, part746.headings["746.6"]) for name, regional in REGIONS_746_6]
    return rows


def _destination(
    code: str,
    cited: Sequence[str],
    row: ChartRowData | None,
    groups: CountryGroups,
    part746: Part746Sections,
    chart: CountryChart,
) -> dict[str, str]:
    unique = list(dict.fromkeys(cited))
    member = {g for g in ("E:1", "E:2", "D:5") if code in groups.group(g)}
    kind = _restriction(code, unique, row, part746)
    footnotes = [n for n in (row.footnotes if row else ()) if "746" in chart.footnotes.get(n, "")]
    sources = [f"Part 746 § {s}" for s in unique] + [f"Country Group {g}" for g in sorted(member)]
    return {
        "destination": row.country if row is not None else _name(code, groups),
        "code": code,
        "restriction_type": kind,
        "ear_sections": "; ".join(f"15 CFR {s}" for s in unique) or "15 CFR 740 Supp. 1 (D:5)",
        "un_arms_embargo_746_1b2": "Y" if code in part746.un_arms_embargo else "",
        "country_group_E1": "X" if "E:1" in member else "",
        "country_group_E2": "X" if "E:2" in member else "",
        "country_group_D5": "X" if "D:5" in member else "",
        "country_chart_footnotes": ";".join(str(n) for n in footnotes),
        "country_chart_pointer": row.pointer or "" if row is not None else "",
        "note": "derived from the eCFR: " + (", ".join(sources) or "Country Chart pointer"),
    }


def _restriction(
    code: str, sections: Sequence[str], row: ChartRowData | None, part746: Part746Sections
) -> str:
    if row is not None and row.pointer:
        return "comprehensive embargo (no Country Chart marks; Part 746 governs)"
    if any(s.startswith(("746.5", "746.8")) for s in sections):
        return "sanctions (Part 746) on top of Country Chart"
    if any(not s.startswith("746.1") for s in sections):
        return "Part 746 controls"
    if code in part746.un_arms_embargo:
        return "UN Security Council arms embargo (items with UN reason for control)"
    return "U.S. arms embargo (Country Group D:5) - no general embargo"


def _region(name: str, codes: tuple[str, ...], heading: str) -> dict[str, str]:
    return {
        "destination": name,
        "code": ";".join(codes),
        "restriction_type": "regional embargo",
        "ear_sections": "15 CFR 746.6",
        "un_arms_embargo_746_1b2": "",
        "country_group_E1": "",
        "country_group_E2": "",
        "country_group_D5": "",
        "country_chart_footnotes": "",
        "country_chart_pointer": "",
        "note": f"§ 746.6 {heading}; ISO 3166-2 codes of the oblasts holding the region (wider than it)",
    }


def _name(code: str, groups: CountryGroups) -> str:
    member = groups.members.get(code)
    return member[0][0] if member else code


def destinations_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    columns = list(rows[0]) if rows else ["destination", "code"]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
