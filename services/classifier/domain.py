"""Classification of order lines against the Commerce Control List (15 CFR Part 774, Supp. No. 1).

Pure: types and rules over an already loaded `Ccl`; no I/O, no clock. The loader that builds these
types from the publisher's JSON lives in `ccl.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from shared.events import Classification, EccnSuggestion, LineClassification, OrderLine

EAR99 = "EAR99"

# 15 CFR 738.2(d)(2)(i)(A): the reasons for control, in the order the Country Chart lists them first.
REASONS_FOR_CONTROL: Mapping[str, str] = {
    "NS": "National security",
    "MT": "Missile technology",
    "NP": "Nuclear nonproliferation",
    "CB": "Chemical and biological weapons",
    "CW": "Chemical Weapons Convention",
    "RS": "Regional stability",
    "FC": "Firearms Convention",
    "CC": "Crime control",
    "UN": "United Nations embargo",
    "SI": "Significant items",
    "SL": "Surreptitious listening",
    "EI": "Encryption items",
    "SS": "Short supply",
    "AT": "Anti-terrorism",
}

# The columns of the Commerce Country Chart (15 CFR 738 Supp. 1), in the chart's order.
COUNTRY_CHART_COLUMNS: tuple[str, ...] = (
    "CB1", "CB2", "CB3", "NP1", "NP2", "NS1", "NS2", "MT1",
    "RS1", "RS2", "FC1", "CC1", "CC2", "CC3", "AT1", "AT2",
)  # fmt: skip

EAR99_HEADING = (
    "EAR99: subject to the EAR but not described by any ECCN on the Commerce Control List "
    "(15 CFR 734.3(c), 774.1); a licence is needed only for embargoed destinations (Part 746) "
    "and prohibited end uses or end users (Part 744)"
)

_MAX_PARAGRAPH_DEPTH = 8
_PARAGRAPH = re.compile(r"[a-z]|[0-9]{1,3}")

ParagraphPath = tuple[str, ...]


# --- ECCN grammar ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedEccn:
    """`3A001.a.1.b` = entry `3A001` (category 3, product group A) and item paragraph `a.1.b`."""

    base: str
    paragraphs: ParagraphPath = ()

    @property
    def code(self) -> str:
        return ".".join((self.base, *self.paragraphs))

    @property
    def is_ear99(self) -> bool:
        return self.base == EAR99


@dataclass(frozen=True, slots=True)
class InvalidEccn:
    value: str
    reason: str

    @property
    def message(self) -> str:
        return f"{self.value!r} is not a valid ECCN: {self.reason}"


def parse_eccn(value: str) -> ParsedEccn | InvalidEccn:
    """Parse an ECCN as ERPs and people write it; canonical form is `3A001.a.1.b` or `EAR99`.

    Structure per 15 CFR 738.2: a category digit 0-9, a product group A-E, three digits, then
    optionally the item paragraph path (`.a`, `.1`, ...). Case is normalised because ERPs
    upper-case the whole code (`6A003.B.4.B`).
    """
    text = value.strip()
    if not text:
        return InvalidEccn(value, "it is empty")
    if text.upper() == EAR99:
        return ParsedEccn(EAR99)
    base, *segments = text.split(".")
    if len(base) != 5:
        return InvalidEccn(
            value,
            f"the entry {base!r} must be 5 characters: a category digit 0-9, a product group A-E and "
            "three digits (e.g. 3A001), or the code must be EAR99",
        )
    category, group, number = base[0], base[1].upper(), base[2:]
    if category not in "0123456789":
        return InvalidEccn(value, f"the category {category!r} is not a digit 0-9")
    if group not in "ABCDE":
        return InvalidEccn(value, f"the product group {base[1]!r} is not one of A, B, C, D, E")
    if not (number.isascii() and number.isdigit()):
        return InvalidEccn(value, f"{number!r} after the product group must be three digits")
    if len(segments) > _MAX_PARAGRAPH_DEPTH:
        return InvalidEccn(value, f"more than {_MAX_PARAGRAPH_DEPTH} paragraph levels")
    paragraphs: list[str] = []
    for segment in segments:
        if not segment:
            return InvalidEccn(value, "it has an empty paragraph (a trailing dot or two dots in a row)")
        if not _PARAGRAPH.fullmatch(segment.lower()):
            return InvalidEccn(
                value, f"the paragraph {segment!r} must be one letter or a number of 1-3 digits"
            )
        paragraphs.append(segment.lower())
    return ParsedEccn(f"{category}{group}{number}", tuple(paragraphs))


# --- the CCL as loaded -----------------------------------------------------------------------


def within(path: ParagraphPath, ancestor: ParagraphPath) -> bool:
    """Whether `path` is `ancestor` or one of its sub-paragraphs (a.1.b is within a.1 and within ())."""
    return path[: len(ancestor)] == ancestor


@dataclass(frozen=True, slots=True)
class Scope:
    """Which item paragraphs of its entry a licence-requirement row (or licence exception) covers.

    - `entire`: the whole entry.
    - `except`: the whole entry except the listed paragraphs ("NS applies to entire entry except 0A501.y").
    - `paragraphs`: only the listed paragraphs ("RS applies to 9A515.e and .x").
    - `conditional`: a condition the classifier cannot evaluate (technical parameters, end use, what
      a "technology" is for), on the listed paragraphs if the condition names them ("MT applies to
      3A001.a.1.a when usable in missiles"), else on the whole entry. A possible licence requirement
      is kept, never guessed away.
    """

    kind: Literal["entire", "except", "paragraphs", "conditional"]
    paragraphs: tuple[ParagraphPath, ...] = ()

    def covers(self, path: ParagraphPath) -> bool:
        if self.kind == "except":
            return not any(within(path, excluded) for excluded in self.paragraphs)
        if self.kind in ("paragraphs", "conditional") and self.paragraphs:
            # An ECCN given without (or with a shallower) paragraph may be the listed paragraph.
            return any(within(path, listed) or within(listed, path) for listed in self.paragraphs)
        return True

    def describe(self) -> str:
        listed = ", ".join("." + ".".join(p) for p in self.paragraphs)
        if self.kind == "except":
            return f"entire entry except {listed}"
        if self.kind == "paragraphs":
            return f"only {listed}"
        if self.kind == "conditional":
            return f"conditional, on {listed}" if listed else "conditional, on the entire entry"
        return "entire entry"


ENTIRE_ENTRY = Scope("entire")


@dataclass(frozen=True, slots=True)
class LicenseRequirement:
    """One row of an entry's License Requirements table: reason, scope, Country Chart column."""

    reason: str | None
    control: str
    destinations: str
    column: str | None
    scope: Scope


@dataclass(frozen=True, slots=True)
class LicenseExceptionFlag:
    """One line of an entry's List Based License Exceptions (`LVS: $500`, `GBS: N/A`, ...)."""

    symbol: str
    text: str
    available: bool
    scope: Scope


@dataclass(frozen=True, slots=True)
class CclEntry:
    eccn: str
    heading: str
    reasons_for_control: tuple[str, ...]
    reason_for_control_text: str | None
    license_requirements: tuple[LicenseRequirement, ...]
    license_exceptions: tuple[LicenseExceptionFlag, ...]
    related_controls: str | None
    itar_pointer: bool
    paragraph_texts: Mapping[str, str]

    @property
    def country_chart_columns(self) -> tuple[str, ...]:
        return _chart_order(r.column for r in self.license_requirements if r.column)

    @property
    def y_paragraphs_at_only(self) -> bool:
        # "600 series" (xx6yy) and 9x515 entries: their .y paragraphs are controlled for AT only
        # (plus the RS pointer of 15 CFR 742.6(a)(7)), whatever the conditional rows of the entry say.
        return self.eccn[2] == "6" or (self.eccn[0] == "9" and self.eccn[2:] == "515")


@dataclass(frozen=True, slots=True)
class Ccl:
    version: str
    issue_date: str
    source: str
    entries: Mapping[str, CclEntry]
    # ECCN named by some entry (heading, related controls, licence table) but absent here -> who names it.
    missing_referenced: Mapping[str, tuple[str, ...]]
    warnings: tuple[str, ...]

    def get(self, eccn: str) -> CclEntry | None:
        return self.entries.get(eccn)


@dataclass(frozen=True, slots=True)
class ItemControls:
    """What the CCL says for one classified item (an entry, optionally narrowed to a paragraph)."""

    eccn: str
    reasons_for_control: tuple[str, ...]
    country_chart_columns: tuple[str, ...]
    license_exceptions: tuple[str, ...]
    requirements: tuple[LicenseRequirement, ...]
    # The CCL's text of each exception above (LVS: "$1500 for 3A001.c"), for risk's conditions.
    license_exception_terms: tuple[tuple[str, str], ...] = ()


def _chart_order(columns: Iterable[str]) -> tuple[str, ...]:
    present = set(columns)
    return tuple(c for c in COUNTRY_CHART_COLUMNS if c in present)


def item_controls(entry: CclEntry, eccn: ParsedEccn) -> ItemControls:
    """The rows of the License Requirements table that apply to `eccn`, and what follows from them.

    An ECCN without a paragraph gets every row (it may be any paragraph). `.y` of a 600-series or
    9x515 entry is controlled for AT only: it gets the AT rows and the rows that name `.y` itself
    (the RS pointer of 15 CFR 742.6(a)(7) for China, Russia and Venezuela), never an entire-entry
    or conditional NS/RS/MT/UN row - whether or not the table repeats "except .y".
    """
    path = eccn.paragraphs
    y_at_only = entry.y_paragraphs_at_only and path[:1] == ("y",)
    applicable = tuple(
        row
        for row in entry.license_requirements
        if row.scope.covers(path) and (not y_at_only or row.reason == "AT" or row.scope.kind == "paragraphs")
    )
    # Reasons of the entry's "Reason for Control" line without a table row (CW, SS, ...) are kept:
    # the Country Chart table is not where those controls are determined (e.g. 15 CFR 742.18 for CW).
    tabled = {row.reason for row in entry.license_requirements}
    reasons = {r for r in entry.reasons_for_control if r not in tabled}
    reasons |= {row.reason for row in applicable if row.reason}
    order = {code: i for i, code in enumerate((*entry.reasons_for_control, *REASONS_FOR_CONTROL))}
    flags = [flag for flag in entry.license_exceptions if flag.available and flag.scope.covers(path)]
    exceptions = tuple(flag.symbol for flag in flags)
    return ItemControls(
        eccn=eccn.code,
        reasons_for_control=tuple(sorted(reasons, key=lambda r: (order.get(r, len(order)), r))),
        country_chart_columns=_chart_order(row.column for row in applicable if row.column),
        license_exceptions=exceptions,
        requirements=applicable,
        license_exception_terms=tuple((flag.symbol, flag.text) for flag in flags),
    )


def check_eccn(ccl: Ccl, value: str) -> ParsedEccn | InvalidEccn:
    """A well-formed ECCN whose entry is on the loaded CCL, or EAR99; otherwise why not."""
    parsed = parse_eccn(value)
    if isinstance(parsed, InvalidEccn) or parsed.is_ear99 or parsed.base in ccl.entries:
        return parsed
    reason = f"{parsed.base} is not on the Commerce Control List ({ccl.version})"
    if parsed.base in ccl.missing_referenced:
        names = ", ".join(ccl.missing_referenced[parsed.base])
        reason += f"; other entries ({names}) refer to it but the loaded copy has no entry for it"
    return InvalidEccn(value, reason)


def canonical_eccn(ccl: Ccl, value: str) -> str:
    """The catalog's form of an ECCN that `check_eccn` accepts; ValueError naming the value otherwise."""
    checked = check_eccn(ccl, value)
    if isinstance(checked, InvalidEccn):
        raise ValueError(checked.message)
    return checked.code


# --- classification of order lines -----------------------------------------------------------

# (description, HS code or None) -> ranked suggestions; never a classification.
Suggester = Callable[[str, str | None], list[EccnSuggestion]]


def classify_line(
    ccl: Ccl,
    *,
    line_no: int,
    sku: str,
    description: str,
    erp_eccn: str | None,
    catalog_eccn: str | None,
    catalog_version: str | None,
    suggest: Suggester,
    hs_code: str | None = None,
) -> LineClassification:
    """The ECCN of one line and what the CCL says about it.

    The ERP's ECCN is used when present; the compliance-owned catalog wins when both give one and
    they differ (the difference is reported). Neither: unclassified, with suggestions - which
    never classify: the line stays unclassified until someone confirms an ECCN in the catalog.
    """
    found = {"line_no": line_no, "sku": sku, "erp_eccn": erp_eccn, "catalog_eccn": catalog_eccn}
    if erp_eccn is not None:
        erp = parse_eccn(erp_eccn)
        erp_code = erp.code if isinstance(erp, ParsedEccn) else erp_eccn
        if catalog_eccn is None or erp_code == catalog_eccn:
            return _line(ccl, erp_eccn, "erp", found)
        found["discrepancy"] = (
            f"ERP ECCN {erp_eccn!r} differs from catalog ECCN {catalog_eccn!r} "
            f"(catalog {catalog_version}); the catalog classification is used"
        )
    if catalog_eccn is not None:
        return _line(ccl, catalog_eccn, "catalog", found)
    return LineClassification.model_validate(
        {
            **found,
            "eccn": None,
            "source": "none",
            "status": "unclassified",
            "suggestions": suggest(description, hs_code),
        }
    )


def _line(
    ccl: Ccl, value: str, source: Literal["erp", "catalog"], found: dict[str, object]
) -> LineClassification:
    checked = check_eccn(ccl, value)
    line: dict[str, object] = {**found, "source": source, "eccn": value}
    if isinstance(checked, InvalidEccn):
        label = "ERP" if source == "erp" else "catalog"
        return LineClassification.model_validate(
            {**line, "status": "invalid", "error": f"{label} ECCN {checked.message}"}
        )
    line["eccn"] = checked.code
    if checked.is_ear99:
        return LineClassification.model_validate({**line, "status": "ear99", "heading": EAR99_HEADING})
    entry = ccl.entries[checked.base]
    if entry.itar_pointer:
        # The CCL keeps these entries only to point at the USML: the item is "subject to the ITAR"
        # (22 CFR 120-130), outside the EAR's licence requirements.
        return LineClassification.model_validate({**line, "status": "itar", "heading": entry.heading})
    controls = item_controls(entry, checked)
    if not entry.license_requirements and not entry.reasons_for_control:
        line["error"] = (
            f"CCL entry {entry.eccn} has no reasons for control or licence requirements in the loaded CCL "
            f"({ccl.version}); verify against the eCFR before relying on this line"
        )
    return LineClassification.model_validate(
        {
            **line,
            "status": "classified",
            "heading": entry.heading,
            "reasons_for_control": list(controls.reasons_for_control),
            "country_chart_columns": list(controls.country_chart_columns),
            "license_exceptions": list(controls.license_exceptions),
            "license_exception_terms": dict(controls.license_exception_terms),
        }
    )


def classify_lines(
    ccl: Ccl,
    lines: Sequence[OrderLine],
    *,
    catalog: Mapping[str, str],
    catalog_version: str | None,
    suggest: Suggester,
) -> Classification:
    return Classification(
        ccl_version=ccl.version,
        catalog_version=catalog_version,
        lines=[
            classify_line(
                ccl,
                line_no=line.line_no,
                sku=line.sku,
                description=line.description,
                erp_eccn=line.eccn,
                catalog_eccn=catalog.get(line.sku),
                catalog_version=catalog_version,
                suggest=suggest,
                hs_code=line.hs_code,
            )
            for line in lines
        ],
    )
