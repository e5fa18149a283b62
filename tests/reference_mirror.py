"""A local mirror of the publishers for `make run` on a machine without the snapshot.

The eCFR is not reachable here and no raw eCFR XML of Parts 738, 740 or 774 is in the snapshot, so
the mirror serves those parts written in the eCFR's XML layout (DIV5 part, DIV8 sections, DIV9
supplements, HTML-style TABLE/THEAD/TBODY with `<SU>` footnote references, `<FP-2><B>` ECCN
headings, as in the Part 744 the snapshot does carry) from the snapshot's own derived files: the
Country Chart and footnotes CSV, the Country Groups CSV, the licence exceptions JSON, the CCL JSON.
Part 744 and the USML (22 CFR 121) are the snapshot's eCFR XML as they are; Part 746 is the
tests' Part 746 fixture with the 746.1(b) list of UN arms embargoes. The screening lists are the
snapshot's files, served in their publishers' URL layout (tests/screening_support.PublisherMirror).

What the converters rebuild from this must equal the snapshot's own files: that is what the
round-trip tests check.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from services.risk import refdata
from services.screening.lists import parse_sources
from shared.settings import Settings
from tests.classifier_support import EcfrServer
from tests.risk_support import PART746_XML
from tests.screening_support import PublisherMirror, publisher_mirror

DATE = "2026-09-24"
CHART_GROUPS = (
    ("Chemical &amp; biological weapons", 3),
    ("Nuclear nonproliferation", 2),
    ("National security", 2),
    ("Missile tech", 1),
    ("Regional stability", 2),
    ("Firearms convention", 1),
    ("Crime control", 3),
    ("Anti-terrorism", 2),
)
UN_ARMS_EMBARGOES = (
    "Central African Republic, Democratic Republic of the Congo, Eritrea, Iran, Iraq, Lebanon, Libya, "
    "North Korea, Somalia, and Sudan"
)
_TABLE = (
    '<DIV width="100%"><DIV class="gpotbl_div"><TABLE border="1" class="gpo_table" frame="void" width="100%">'
)


def _part(title: int, part: str, heading: str, body: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<DIV5 N="{part}" TYPE="PART" VOLUME="2">\n<HEAD>PART {part}&#x2014;{heading}</HEAD>\n'
        f"{body}\n</DIV5>\n"
    ).encode()


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8-sig"))))


def part738(data_dir: Path) -> bytes:
    rows = _csv(data_dir / refdata.CHART_CSV)
    columns = [c for c in rows[0] if re.fullmatch(r"[A-Z]{2}\d", c)]
    top = "".join(f'<TH colspan="{n}">{label}</TH>' for label, n in CHART_GROUPS)
    labels = "".join(f"<TH>{c[:2]} {c[2]}</TH>" for c in columns)
    body = []
    for row in rows:
        marks = "".join(f"<SU>{n}</SU>" for n in row["footnotes"].split(";") if n)
        name = f"<TD>{escape(row['country'])}{marks}</TD>"
        if row["embargo_pointer"]:
            body.append(f'<TR>{name}<TD colspan="{len(columns)}">{escape(row["embargo_pointer"])}</TD></TR>')
        else:
            body.append(f"<TR>{name}{''.join(f'<TD>{row[c]}</TD>' for c in columns)}</TR>")
    notes = "".join(
        f"<P><SU>{n['footnote']}</SU> {escape(n['text'])}</P>\n"
        for n in _csv(data_dir / refdata.FOOTNOTES_CSV)
    )
    supplement = (
        '<DIV9 N="Supplement No. 1 to Part 738" TYPE="APPENDIX">\n'
        "<HEAD>Supplement No. 1 to Part 738&#x2014;Commerce Country Chart</HEAD>\n"
        f'{_TABLE}\n<THEAD>\n<TR><TH rowspan="2">Countries</TH>{top}</TR>\n<TR>{labels}</TR>\n</THEAD>\n'
        f"<TBODY>\n{chr(10).join(body)}\n</TBODY>\n</TABLE></DIV></DIV>\n{notes}</DIV9>"
    )
    section = '<DIV8 N="738.1" TYPE="SECTION"><HEAD>&#xA7; 738.1 Introduction.</HEAD><P>(a) Commerce Control List structure.</P></DIV8>'
    return _part(
        15, "738", "COMMERCE CONTROL LIST OVERVIEW AND THE COUNTRY CHART", f"{section}\n{supplement}"
    )


_GROUP_TABLES = (
    ("Country Group A", ("[A:1] Wassenaar Participating States", "[A:2] Missile Technology Control Regime",
                         "[A:3] Australia Group", "[A:4] Nuclear Suppliers Group", "[A:5]", "[A:6]")),
    ("Country Group B", ()),
    ("Country Group D", ("[D:1] National Security", "[D:2] Nuclear", "[D:3] Chemical &amp; Biological",
                         "[D:4] Missile Technology", "[D:5] U.S. Arms Embargoed Countries")),
    ("Country Group E", ("[E:1] Terrorist supporting countries", "[E:2] Unilateral embargo")),
)  # fmt: skip


def part740(data_dir: Path) -> bytes:
    rows = _csv(data_dir / refdata.GROUPS_CSV)
    tables = []
    for title, headers in _GROUP_TABLES:
        groups = [re.match(r"\[([A-E]:\d)\]", h)[1] for h in headers] if headers else ["B"]  # type: ignore[index]
        members = [r for r in rows if any(r[g] == "X" for g in groups)]
        body = []
        for row in members:
            # The regulation spells DR Congo two ways: the second spelling in the D table.
            variants = row["name_variants_in_source"].split("|") if row["name_variants_in_source"] else []
            name = variants[-1] if variants and title.endswith("D") else row["country"]
            marks = "".join(f"<TD>{row[g]}</TD>" for g in groups) if headers else ""
            body.append(f"<TR><TD>{escape(name)}</TD>{marks}</TR>")
        head = (
            "<TH>Country</TH>" + "".join(f"<TH>{h}</TH>" for h in headers)
            if headers
            else f"<TH>{title} Countries</TH>"
        )
        tables.append(
            f"<HD1>{title}</HD1>\n{_TABLE}\n<THEAD><TR>{head}</TR></THEAD>\n<TBODY>\n{chr(10).join(body)}\n</TBODY>\n</TABLE></DIV></DIV>"
        )
    exceptions = json.loads((data_dir / refdata.EXCEPTIONS_JSON).read_text("utf-8"))["exceptions"]
    sections = "\n".join(
        f'<DIV8 N="{e["sectionNumber"]}" TYPE="SECTION"><HEAD>&#xA7; {e["sectionNumber"]} {escape(e["title"])}.</HEAD>'
        f"<P>(a) Scope.</P></DIV8>"
        for e in exceptions
    )
    supplement = (
        '<DIV9 N="Supplement No. 1 to Part 740" TYPE="APPENDIX">\n'
        f"<HEAD>Supplement No. 1 to Part 740&#x2014;Country Groups</HEAD>\n{chr(10).join(tables)}\n</DIV9>"
    )
    intro = '<DIV8 N="740.1" TYPE="SECTION"><HEAD>&#xA7; 740.1 Introduction.</HEAD><P>(a) Scope.</P></DIV8>'
    return _part(15, "740", "LICENSE EXCEPTIONS", f"{intro}\n{sections}\n{supplement}")


def part746() -> bytes:
    """The tests' Part 746 fixture, with the 746.1(b) paragraph listing the UN arms embargoes."""
    xml = PART746_XML.read_text("utf-8")
    paragraph = (
        "<P>(b)(2) <I>United Nations arms embargoes.</I> The following destinations are subject to "
        f"United Nations Security Council arms embargoes: {UN_ARMS_EMBARGOES}.</P>"
    )
    return xml.replace(
        "<HEAD>§ 746.1 Introduction.</HEAD>", f"<HEAD>§ 746.1 Introduction.</HEAD>\n{paragraph}", 1
    ).encode()


def _entry(entry: dict[str, Any]) -> str:
    out = [f"<FP-2><B>{escape(entry['eccn'])} {escape(entry['heading'])}</B></FP-2>"]
    out.append('<FP-1><E T="04">License Requirements</E></FP-1>')
    if entry.get("reasonForControl"):
        out.append(f"<FP-1><I>Reason for Control:</I> {escape(entry['reasonForControl'])}</FP-1>")
    rows = []
    for row in entry.get("countryChart") or []:
        if row.get("singleCellRow"):
            rows.append(f"<TR><TD>{escape(row['control'])}</TD></TR>")
        elif row.get("requirementCellEmptyInSource"):
            rows.append(f"<TR><TD>{escape(row['control'])}</TD><TD/></TR>")
        else:
            rows.append(f"<TR><TD>{escape(row['control'])}</TD><TD>{escape(row['countryChart'])}</TD></TR>")
    out.append(
        f"{_TABLE}<THEAD><TR><TH>Control(s)</TH><TH>Country chart (see Supp. No. 1 to part 738)</TH></TR></THEAD>"
        f"<TBODY>{''.join(rows)}</TBODY></TABLE></DIV></DIV>"
    )
    out.append(
        '<FP-1><E T="04">List Based License Exceptions (See Part 740 for a description of all license exceptions)</E></FP-1>'
    )
    for symbol, text in (entry.get("licenceExceptionFlags") or {}).items():
        if symbol != "STA":
            out.append(f"<FP-1><I>{escape(symbol)}:</I> {escape(str(text))}</FP-1>")
    sta = entry.get("staSpecialConditions")
    if sta and sta != "None":
        out.append(f"<FP-1><I>STA:</I> {escape(str(sta).removeprefix('STA: '))}</FP-1>")
    out.append('<FP-1><E T="04">List of Items Controlled</E></FP-1>')
    out.append(f"<FP-1><I>Related Controls:</I> {escape(entry.get('relatedControls') or 'N/A')}</FP-1>")
    out.append("<FP-1><I>Items:</I></FP-1>")
    for item in entry.get("items") or []:
        if item.get("paragraph"):
            out.append(f"<P>{escape(item['paragraph'])}. {escape(item['text'])}</P>")
        elif item.get("text"):
            out.append(f"<P>{escape(item['text'])}</P>")
    return "\n".join(out)


def part774(data_dir: Path) -> bytes:
    document = json.loads((data_dir / "controls" / "us" / "us_ccl_part774_supp1.json").read_text("utf-8"))
    blocks, category = [], None
    for entry in document["entries"]:
        if entry["eccn"][0] != category:
            category = entry["eccn"][0]
            blocks.append(f"<HD1>Category {category}&#x2014;</HD1>")
        blocks.append(_entry(entry))
    supplement = (
        '<DIV9 N="Supplement No. 1 to Part 774" TYPE="APPENDIX">\n'
        "<HEAD>Supplement No. 1 to Part 774&#x2014;The Commerce Control List</HEAD>\n"
        f"{chr(10).join(blocks)}\n</DIV9>"
    )
    return _part(15, "774", "THE COMMERCE CONTROL LIST", supplement)


def ecfr_parts(data_dir: Path) -> dict[str, bytes]:
    return {
        "15/738": part738(data_dir),
        "15/740": part740(data_dir),
        "15/744": (data_dir / refdata.PART744_XML).read_bytes(),
        "15/746": part746(),
        "15/774": part774(data_dir),
        "22/121": (data_dir / "controls" / "us" / "us_ecfr_title22_part121_usml.xml").read_bytes(),
    }


@dataclass(frozen=True)
class Mirror:
    ecfr_api_url: str
    lists_base_url: str
    ecfr: EcfrServer
    lists: PublisherMirror

    def environment(self) -> dict[str, str]:
        return {
            "EXPORTWATCH_ECFR_API_URL": self.ecfr_api_url,
            "EXPORTWATCH_SCREENING_UPDATE_BASE_URL": self.lists_base_url,
        }


@contextmanager
def publishers(data_dir: Path, root: Path) -> Iterator[Mirror]:
    """The eCFR and the six lists' publishers, served from 127.0.0.1."""
    with ExitStack() as stack:
        server = stack.enter_context(EcfrServer(parts=ecfr_parts(data_dir), date=DATE))
        lists = stack.enter_context(publisher_mirror(root))
        for spec in parse_sources(Settings.model_fields["screening_sources"].default):
            lists.publish_copy(spec.kind, data_dir / spec.folder)
        yield Mirror(server.api_url, lists.base_url, server, lists)
