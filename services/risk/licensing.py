"""Licence determination per order line: the Country Chart (15 CFR 738.4), chart footnotes naming
the ECCN, Part 746 requirements (746.8(a)(1) for every CCL item to Russia and Belarus; the HTS-6
item supplements for EAR99 items), and which licence exceptions (15 CFR Part 740) may authorise it.

An EAR99 line to Russia or Belarus is never released by this module: listed in a supplement it
needs a licence (citing the supplement); without an HTS-6 code, with one the supplements do not
list, or while they are not loaded, it is held (PART_746_UNDETERMINED) with what is missing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from services.risk.exceptions import ExceptionOutcome, Requirement, evaluate
from services.risk.part746 import Part746, hts6
from services.risk.policy import REASON_SEVERITY, RiskPolicy, embargo_groups
from services.risk.reference import CheckedCountry, ReferenceData
from services.risk.rules import ExceptionRestriction
from shared.events import LineClassification, LineDetermination, OrderLine, Reason

_ECCN_MENTION = re.compile(r"\b\d[A-E]\d{3}(?:\.[a-z0-9]+)*", re.IGNORECASE)
_EXCEPT_CLAUSE = re.compile(r"\(except (?:for )?[^)]*\)", re.IGNORECASE)
# 15 CFR 746.8: Russia and Belarus. The EAR99 items the HTS-6 supplements list need a licence there.
PART746_SECTION = "746.8"


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
    # The 740.2 restriction that bars every licence exception for this order, if one applies.
    exceptions_barred: ExceptionRestriction | None
    # Part 746's HTS-6 supplements, or None with why they are not loaded.
    part746: Part746 | None = None
    part746_missing: str = "Part 746 is not loaded"
    # The order's end-use statement (names the transaction of TMP or RPL).
    end_use: str | None = None


@dataclass(frozen=True)
class LineOutcome:
    determination: LineDetermination
    reasons: list[Reason]
    # The line's LICENSE_REQUIRED reason (a licence held may cover it), and the exception the
    # policy lets the company apply itself, if one is eligible with no fact missing.
    licence: Reason | None = None
    self_applied: dict[str, Any] | None = None


def assess_line(line: OrderLine, classified: LineClassification | None, context: LineContext) -> LineOutcome:
    determination, reasons = _assess(line, classified, context)
    licence = next((r for r in reasons if r.code == "LICENSE_REQUIRED"), None)
    applied = licence.evidence.get("self_applied") if licence is not None else None
    return LineOutcome(determination, reasons, licence, applied)


def _assess(
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
        # EAR99 needs a licence only to embargoed destinations (EMBARGOED_DESTINATION above), for
        # prohibited end uses/users (15 CFR 734.3(c), Part 744), and to Russia and Belarus when Part
        # 746's supplements list it (746.8).
        reasons += _part746_ear99(line, context)
        required = any(r.code == "LICENSE_REQUIRED" for r in reasons)
        return undetermined.model_copy(update={"license_required": required}), reasons
    return _assess_classified(line, classified, context, reasons)


def _part746_countries(context: LineContext) -> list[CheckedCountry]:
    return [
        c
        for c in context.checked
        if any(PART746_SECTION in e.ear_sections for e in c.profile.part746)
        and not embargo_groups(c.profile, context.policy)
    ]


def _part746_ear99(line: OrderLine, context: LineContext) -> list[Reason]:
    countries = _part746_countries(context)
    if not countries:
        return []
    where = ", ".join(f"{c.profile.label} [{', '.join(c.roles)}]" for c in countries)
    evidence: dict[str, Any] = {
        "sku": line.sku,
        "hs_code": line.hs_code,
        "countries": [c.iso2 for c in countries],
        "regulation": "15 CFR 746.8",
    }
    head = f"Line {line.line_no} ({line.sku}, EAR99) to {where}"
    part746 = context.part746
    if part746 is None:
        evidence["missing"] = context.part746_missing
        return [
            _line_reason(
                "PART_746_UNDETERMINED",
                line.line_no,
                f"{head}: 15 CFR 746.8 requires a licence for the EAR99 items that Supplements No. 2, 4, 5, 6 "
                f"and 7 to Part 746 list by HTS-6 code, and they are not loaded ({context.part746_missing})",
                evidence,
            )
        ]
    supplements = part746.for_section(PART746_SECTION)
    evidence.update(part746_version=part746.version, supplements=[s.number for s in supplements])
    code = hts6(line.hs_code)
    if code is None:
        evidence["missing"] = "hs_code (HTS-6)"
        return [
            _line_reason(
                "PART_746_UNDETERMINED",
                line.line_no,
                f"{head}: the line carries no HTS-6 code (hs_code {line.hs_code!r}), so Supplements "
                f"No. {', '.join(str(s.number) for s in supplements)} to Part 746 cannot be read for it (15 CFR 746.8) "
                "— give the HTS code or classify the item",
                evidence,
            )
        ]
    listed = [(s, hit) for s in supplements if (hit := s.find(code)) is not None]
    if listed:
        evidence["listed"] = [
            {"supplement": s.citation, "hts": hit[0], "description": hit[1], "title": s.title}
            for s, hit in listed
        ]
        named = "; ".join(f"{s.citation} lists HTS {hit[0]} {hit[1]!r}" for s, hit in listed)
        return [
            _line_reason(
                "LICENSE_REQUIRED",
                line.line_no,
                f"{head}: licence required under 15 CFR 746.8 — {named} (Part 746 {part746.version})",
                evidence,
            )
        ]
    evidence["missing"] = "a person's confirmation that the item is not one the supplements describe"
    return [
        _line_reason(
            "PART_746_UNDETERMINED",
            line.line_no,
            f"{head}: HTS {code} is not listed in Supplements No. {', '.join(str(s.number) for s in supplements)} "
            f"to Part 746 ({part746.version}); the codes only guide (an item the descriptions name needs a "
            "licence under any code) and 15 CFR 744.21(a)(2) reaches any item for a Russian or Belarusian "
            "military end use or end user — a person confirms before it ships",
            evidence,
        )
    ]


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
    outcome = _exceptions(line, classified, requirements, context)
    determination = LineDetermination(
        line_no=line.line_no,
        eccn=classified.eccn,
        license_required=bool(requirements),
        columns_applicable=marked,
        countries_checked=[c.iso2 for c in context.checked],
        license_exceptions_possible=list(dict.fromkeys(o["symbol"] for o in outcome.offered)),
    )
    if requirements:
        reasons.append(_license_reason(line, classified, requirements, outcome, refdata))
    return determination, reasons


def _exceptions(
    line: OrderLine,
    classified: LineClassification,
    requirements: Sequence[CountryRequirement],
    context: LineContext,
) -> ExceptionOutcome:
    if not requirements:
        return ExceptionOutcome([], [])
    barred = context.exceptions_barred
    if barred is None and any(r.part746 or r.footnotes for r in requirements):
        restrictions = context.policy.exception_restrictions or {}
        barred = restrictions.get("part_746")
    return evaluate(
        line,
        classified,
        [Requirement(r.country, r.columns_marked) for r in requirements],
        context.refdata,
        dict(context.policy.exceptions or {}),
        barred,
        footnote_names,
        context.end_use,
    )


def _eccn_within(eccn: str, mentioned: str) -> bool:
    a, b = eccn.lower(), mentioned.lower().rstrip(".")
    return a == b or a.startswith(b + ".")


@lru_cache(maxsize=8192)
def footnote_names(eccn: str, text: str) -> bool:
    """Whether a chart footnote names the ECCN (footnote 10: "0A501 (except for 0A501.y)").

    An ECCN without the paragraph the footnote names (6A003 vs 6A003.b.4.b) counts as named: it
    may be that paragraph. Paragraphs in an "(except ...)" clause are not named.

    Cached: a pure function of two strings, asked for every line, destination and footnote of an
    order; the ECCNs and footnotes in use are few.
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


def _license_reason(
    line: OrderLine,
    classified: LineClassification,
    requirements: Sequence[CountryRequirement],
    outcome: ExceptionOutcome,
    refdata: ReferenceData,
) -> Reason:
    exceptions = outcome.offered
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
        f"licence exceptions {', '.join(e['symbol'] for e in exceptions)}: eligible, subject to "
        + "; ".join(
            f"{e['symbol']} ({e['section']}): {', '.join(e['conditions'] + e['facts_missing'])}"
            for e in exceptions
        )
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
            "license_exceptions_not_offered": outcome.not_offered,
            "self_applied": outcome.self_applied,
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
