"""Licence determination per order line: the Country Chart (15 CFR 738.4), chart footnotes naming
the ECCN, Part 746 requirements, and which licence exceptions (15 CFR Part 740) may be offered."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.risk.policy import REASON_SEVERITY, RiskPolicy, embargo_groups
from services.risk.reference import CheckedCountry, ReferenceData
from shared.events import LineClassification, LineDetermination, OrderLine, Reason, Screening

_ECCN_MENTION = re.compile(r"\b\d[A-E]\d{3}(?:\.[a-z0-9]+)*", re.IGNORECASE)
_EXCEPT_CLAUSE = re.compile(r"\(except (?:for )?[^)]*\)", re.IGNORECASE)
_UNCONDITIONAL_TERMS = re.compile(r"^(?:yes|\$\s?[\d,]+)\.?$", re.IGNORECASE)
_EXCEPTION_ENTRY = re.compile(r"^\s*([A-Z]{3})\b\s*:?\s*(.*)$", re.DOTALL)
_CAUTION = "may be available; verify its conditions in 15 CFR Part 740 (and the restrictions of 740.2)"


@dataclass(frozen=True)
class CountryRequirement:
    country: CheckedCountry
    columns_marked: tuple[str, ...]
    footnotes: tuple[tuple[int, str], ...]
    part746: tuple[tuple[str, str], ...]

    @property
    def any(self) -> bool:
        return bool(self.columns_marked or self.footnotes or self.part746)


@dataclass(frozen=True)
class LineContext:
    """What every line is assessed against."""

    checked: Sequence[CheckedCountry]
    refdata: ReferenceData
    policy: RiskPolicy
    # Why no licence exception may be offered for this order at all, if so.
    exceptions_barred: str | None


def exceptions_barred(screening: Screening) -> str | None:
    lists = sorted({m.list_id for p in screening.parties for m in p.matches})
    if not lists:
        return None
    # 15 CFR 744.11(a) (Entity List) and 744.15 (Unverified List) exclude licence exceptions; until a
    # reviewer clears the match, none is offered for any party match.
    return f"a party matches {', '.join(lists)}: no licence exception offered (15 CFR 744.11(a), 744.15)"


def assess_line(
    line: OrderLine, classified: LineClassification | None, context: LineContext
) -> tuple[LineDetermination, list[Reason]]:
    countries = [c.iso2 for c in context.checked]
    undetermined = LineDetermination(
        line_no=line.line_no,
        eccn=classified.eccn if classified else None,
        license_required=False,
        countries_checked=countries,
    )
    if classified is None:
        return undetermined, [
            _line_reason(
                "UNCLASSIFIED_ITEM",
                line.line_no,
                f"Line {line.line_no} ({line.sku}): the classification has no entry for this line",
                {"sku": line.sku},
            )
        ]
    reasons: list[Reason] = []
    if classified.discrepancy:
        reasons.append(
            _line_reason(
                "ECCN_DISCREPANCY",
                line.line_no,
                f"Line {line.line_no} ({line.sku}): ERP ECCN {classified.erp_eccn} and catalog ECCN "
                f"{classified.catalog_eccn} disagree ({classified.discrepancy}); {classified.eccn} was used",
                {
                    "erp_eccn": classified.erp_eccn,
                    "catalog_eccn": classified.catalog_eccn,
                    "eccn_used": classified.eccn,
                    "source": classified.source,
                    "discrepancy": classified.discrepancy,
                },
            )
        )
    if classified.status == "unclassified":
        reasons.append(_unclassified_reason(line, classified))
        return undetermined, reasons
    if classified.status == "invalid":
        reasons.append(
            _line_reason(
                "INVALID_ECCN",
                line.line_no,
                f"Line {line.line_no} ({line.sku}): ECCN {classified.erp_eccn or classified.eccn!s} is not on the "
                f"Commerce Control List (15 CFR 774 Supp. 1) and is not EAR99: {classified.error or 'invalid'}",
                {
                    "erp_eccn": classified.erp_eccn,
                    "error": classified.error,
                    "suggestions": [s.model_dump() for s in classified.suggestions],
                },
            )
        )
        return undetermined, reasons
    if classified.status == "itar":
        reasons.append(
            _line_reason(
                "ITAR_ITEM",
                line.line_no,
                f"Line {line.line_no} ({line.sku}): {classified.eccn} is subject to the ITAR "
                "(22 CFR 120-130, USML 22 CFR 121), not the EAR: a State Department authorisation decides",
                {"eccn": classified.eccn, "heading": classified.heading, "source": classified.source},
            )
        )
        return undetermined, reasons
    if classified.status == "ear99":
        # EAR99 needs a licence only to embargoed destinations (EMBARGOED_DESTINATION above) and for
        # prohibited end uses/users (15 CFR 734.3(c), Part 744).
        return undetermined, reasons
    return _assess_classified(line, classified, context, reasons)


def _assess_classified(
    line: OrderLine, classified: LineClassification, context: LineContext, reasons: list[Reason]
) -> tuple[LineDetermination, list[Reason]]:
    refdata = context.refdata
    columns = list(dict.fromkeys(classified.country_chart_columns))
    unknown_columns = [c for c in columns if c not in refdata.chart_columns]
    if not columns or unknown_columns:
        what = (
            f"names unknown columns {unknown_columns}" if unknown_columns else "names no Country Chart column"
        )
        reasons.append(
            _line_reason(
                "NO_COUNTRY_CHART_COLUMN",
                line.line_no,
                f"Line {line.line_no} ({line.sku}): ECCN {classified.eccn} {what} in the CCL copy "
                f"(reasons for control: {', '.join(classified.reasons_for_control) or 'none'}): its licence "
                "requirement lies outside the chart (738.3(a)(1), 742.x or 746.x pointers) or is a data gap — "
                "verify in the eCFR",
                {
                    "eccn": classified.eccn,
                    "reasons_for_control": classified.reasons_for_control,
                    "country_chart_columns": classified.country_chart_columns,
                    "chart_columns_known": list(refdata.chart_columns),
                    "classifier_error": classified.error,
                },
            )
        )
    requirements = [
        r
        for c in context.checked
        if c.profile.chart is not None
        and not c.profile.chart.embargo_pointer
        and not embargo_groups(c.profile, context.policy)
        if (r := _country_requirement(classified, columns, c, refdata)).any
    ]
    marked = [c for c in columns if any(c in r.columns_marked for r in requirements)]
    possible, details, not_listed = license_exceptions_possible(
        classified, requirements, refdata, context.exceptions_barred
    )
    determination = LineDetermination(
        line_no=line.line_no,
        eccn=classified.eccn,
        license_required=bool(requirements),
        columns_applicable=marked,
        countries_checked=[c.iso2 for c in context.checked],
        license_exceptions_possible=possible,
    )
    if requirements:
        reasons.append(_license_reason(line, classified, requirements, details, not_listed, refdata))
    return determination, reasons


def _eccn_within(eccn: str, mentioned: str) -> bool:
    a, b = eccn.lower(), mentioned.lower().rstrip(".")
    return a == b or a.startswith(b + ".")


def footnote_names(eccn: str, text: str) -> bool:
    """Whether a chart footnote names the ECCN (footnote 10: "0A501 (except for 0A501.y)").

    An ECCN without the paragraph the footnote names (6A003 vs 6A003.b.4.b) counts as named: it
    may be that paragraph. Paragraphs in an "(except ...)" clause are not named.
    """
    if any(
        _eccn_within(eccn, m)
        for clause in _EXCEPT_CLAUSE.findall(text)
        for m in _ECCN_MENTION.findall(clause)
    ):
        return False
    mentions = _ECCN_MENTION.findall(_EXCEPT_CLAUSE.sub("", text))
    return any(_eccn_within(eccn, m) or _eccn_within(m, eccn) for m in mentions)


def _country_requirement(
    classified: LineClassification, columns: Sequence[str], country: CheckedCountry, refdata: ReferenceData
) -> CountryRequirement:
    row = country.profile.chart
    assert row is not None
    marked = tuple(c for c in columns if c in row.marked_columns)
    eccn = classified.eccn or ""
    footnotes = tuple(
        (n, refdata.chart_footnotes[n])
        for n in row.footnotes
        if n in refdata.chart_footnotes and eccn and footnote_names(eccn, refdata.chart_footnotes[n])
    )
    part746: dict[str, str] = {}
    for entry in country.profile.part746:
        if "746.8" in entry.ear_sections:
            part746["15 CFR 746.8(a)(1)"] = (
                f"{entry.destination}: a licence is required for every item on the Commerce Control List"
            )
        if entry.un_arms_embargo and "UN" in classified.reasons_for_control:
            part746["15 CFR 746.1(b)"] = (
                f"{entry.destination}: UN Security Council arms embargo, licence required for items with a "
                "UN reason for control"
            )
    return CountryRequirement(country, marked, footnotes, tuple(part746.items()))


@dataclass(frozen=True)
class _ExceptionRule:
    groups: frozenset[str]
    ns_only: bool
    condition: str


# Destination conditions of the licence exceptions evaluated here; any other exception the ECCN
# lists is reported as "not evaluated" rather than offered.
EXCEPTION_RULES: Mapping[str, _ExceptionRule] = {
    "LVS": _ExceptionRule(
        frozenset({"B"}), False, "15 CFR 740.3: Country Group B, within the ECCN's value limit"
    ),
    "GBS": _ExceptionRule(
        frozenset({"B"}),
        True,
        "15 CFR 740.4: Country Group B, where the chart requires a licence for NS only",
    ),
    "TSR": _ExceptionRule(
        frozenset({"B"}), True, "15 CFR 740.6: Country Group B, NS-only requirement, written assurance"
    ),
    "STA": _ExceptionRule(
        frozenset({"A:5"}), False, "15 CFR 740.20(c)(1): Country Group A:5, with the consignee statement"
    ),
}


def _not_offered(
    symbol: str,
    terms: str,
    rule: _ExceptionRule | None,
    marked: set[str],
    requirements: Sequence[CountryRequirement],
) -> str | None:
    """Why an exception the ECCN lists is not offered for this line, or None if it may be."""
    if rule is None:
        return "its conditions are not evaluated here; see 15 CFR Part 740"
    outside = [r.country.iso2 for r in requirements if not r.country.profile.groups & rule.groups]
    if terms.upper().startswith("N/A"):
        return "N/A for this ECCN"
    if symbol != "STA" and terms and not _UNCONDITIONAL_TERMS.match(terms):
        return "available only for some paragraphs or conditions of the ECCN; see the entry"
    if rule.ns_only and not all(c.startswith("NS") for c in marked):
        return (
            f"covers NS-only requirements; also marked: {sorted(c for c in marked if not c.startswith('NS'))}"
        )
    if outside:
        return f"{', '.join(outside)} not in Country Group {'/'.join(sorted(rule.groups))}"
    return None


def license_exceptions_possible(
    classified: LineClassification,
    requirements: Sequence[CountryRequirement],
    refdata: ReferenceData,
    barred: str | None,
) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """Exceptions that MAY be available (symbols, details) and those not offered, with why.

    Conservative: offered only when the ECCN lists it without paragraph conditions and every
    country needing a licence is in the exception's Country Group (15 CFR 740 Supp. 1).
    """
    if not requirements:
        return [], [], []
    if barred is None and any(r.part746 or r.footnotes for r in requirements):
        barred = "requirement from Part 746 or a chart footnote: only the exceptions that section allows"
    if barred is not None:
        return [], [], [{"entry": e, "why": barred} for e in classified.license_exceptions]
    marked = {c for r in requirements for c in r.columns_marked}
    possible: list[str] = []
    details: list[dict[str, Any]] = []
    not_listed: list[dict[str, Any]] = []
    for entry in classified.license_exceptions:
        parsed = _EXCEPTION_ENTRY.match(entry)
        symbol, terms = (parsed.group(1), parsed.group(2).strip()) if parsed else ("", entry)
        rule = EXCEPTION_RULES.get(symbol)
        why = _not_offered(symbol, terms, rule, marked, requirements)
        if why is not None or rule is None:
            not_listed.append({"entry": entry, "why": why})
            continue
        info = refdata.license_exceptions.get(symbol)
        if symbol not in possible:
            possible.append(symbol)
        details.append(
            {
                "symbol": symbol,
                "section": info.section if info else None,
                "title": info.title if info else None,
                "condition": rule.condition,
                "ccl_entry": entry,
                "note": _CAUTION,
            }
        )
    return possible, details, not_listed


def _license_reason(
    line: OrderLine,
    classified: LineClassification,
    requirements: Sequence[CountryRequirement],
    exceptions: list[dict[str, Any]],
    not_listed: list[dict[str, Any]],
    refdata: ReferenceData,
) -> Reason:
    parts = []
    for r in requirements:
        grounds = []
        if r.columns_marked:
            row = r.country.profile.chart.country if r.country.profile.chart else r.country.iso2
            plural = "s" if len(r.columns_marked) > 1 else ""
            grounds.append(
                f"Country Chart column{plural} {', '.join(r.columns_marked)} marked X "
                f"(15 CFR 738.4; 738 Supp. 1, {row} row)"
            )
        grounds += [
            f"Country Chart footnote {n} (15 CFR 738 Supp. 1) names this ECCN" for n, _ in r.footnotes
        ]
        grounds += [f"{section} ({rule})" for section, rule in r.part746]
        parts.append(f"{r.country.profile.label} [{', '.join(r.country.roles)}]: {'; '.join(grounds)}")
    offered = (
        f"licence exceptions that may be available: {', '.join(e['symbol'] for e in exceptions)} ({_CAUTION})"
        if exceptions
        else "no licence exception identified"
    )
    return _line_reason(
        "LICENSE_REQUIRED",
        line.line_no,
        f"Line {line.line_no} ({line.sku}, ECCN {classified.eccn}): licence required for "
        f"{' | '.join(parts)}; {offered}",
        {
            "eccn": classified.eccn,
            "source": classified.source,
            "reasons_for_control": classified.reasons_for_control,
            "country_chart_columns": classified.country_chart_columns,
            "countries": [
                {
                    "country": r.country.iso2,
                    "roles": list(r.country.roles),
                    "chart_row": r.country.profile.row_iso2,
                    "inheritance": r.country.profile.inheritance.basis
                    if r.country.profile.inheritance
                    else None,
                    "columns_marked": list(r.columns_marked),
                    "footnotes": [{"number": n, "text": text} for n, text in r.footnotes],
                    "part_746": [{"section": s, "rule": text} for s, text in r.part746],
                }
                for r in requirements
            ],
            "regulation": "; ".join(
                dict.fromkeys(
                    ["15 CFR 738.4", "15 CFR 738 Supp. 1", *(s for r in requirements for s, _ in r.part746)]
                )
            ),
            "license_exceptions_possible": exceptions,
            "license_exceptions_not_offered": not_listed,
            "data_versions": {
                "country_chart": refdata.versions["country_chart"],
                "country_groups": refdata.versions["country_groups"],
            },
        },
    )


def _unclassified_reason(line: OrderLine, classified: LineClassification) -> Reason:
    suggestions = [s.model_dump() for s in classified.suggestions]
    hint = (
        f"; best suggestion {classified.suggestions[0].eccn} (score {classified.suggestions[0].score:.2f})"
        if classified.suggestions
        else ""
    )
    return _line_reason(
        "UNCLASSIFIED_ITEM",
        line.line_no,
        f"Line {line.line_no} ({line.sku}): no ECCN from the ERP or the catalog — classify it against the "
        f"Commerce Control List (15 CFR 774 Supp. 1) before shipping{hint}",
        {"sku": line.sku, "source": classified.source, "error": classified.error, "suggestions": suggestions},
    )


def _line_reason(code: str, line_no: int, message: str, evidence: dict[str, Any]) -> Reason:
    return Reason(
        code=code, severity=REASON_SEVERITY[code], message=message, line_no=line_no, evidence=evidence
    )
