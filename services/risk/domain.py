"""Risk: licence determination and the final decision, as one pure function.

`decide(order, classification, screening, refdata, policy)` applies the decision table of
DESIGN.md to what the classifier and screening found, the Commerce Country Chart (15 CFR 738
Supp. 1), the Country Groups (15 CFR 740 Supp. 1), the Part 746 destinations file and the policy.
No I/O, no clock: the same inputs and data versions always give the same decision.

Reason codes and their severities:

| code | severity | rule |
| --- | --- | --- |
| EMBARGOED_DESTINATION | BLOCK | destination or a party's country in the policy's embargo groups (E:1/E:2) |
| DENIED_PARTY | BLOCK | match of a `block` list at or above the block threshold |
| RESTRICTED_PARTY | LICENSE_REQUIRED | match of a `licence` list at or above the block threshold |
| POTENTIAL_MATCH | HOLD | any other reported match (below block threshold, or a `review` list) |
| LICENSE_REQUIRED | LICENSE_REQUIRED | Country Chart X (738.4), a chart footnote naming the ECCN, or Part 746 |
| UNCLASSIFIED_ITEM | HOLD | no ECCN for the line (the classifier's suggestions are the evidence) |
| INVALID_ECCN | HOLD | the ERP's ECCN is not on the CCL and is not EAR99 |
| ITAR_ITEM | HOLD | the item is subject to the ITAR (22 CFR 120-130) |
| ECCN_DISCREPANCY | HOLD | ERP and catalog disagree on the ECCN |
| UNKNOWN_DESTINATION_ROW | HOLD | a country checked has no usable Country Chart row: never a silent pass |
| NO_COUNTRY_CHART_COLUMN | HOLD | a classified ECCN names no (known) chart column: controls outside the chart |
| RED_FLAG_* | HOLD | a "Know Your Customer" red flag (Supp. 3 to Part 732), rules in the policy (red_flags.py) |
| NO_LICENSE_REQUIRED | RELEASE | the only reason of a release; its evidence says everything that was checked |
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from services.risk.red_flags import RedFlagRule, parse_rules, red_flag_reasons
from shared.events import (
    Classification,
    Decision,
    DecisionCode,
    LineClassification,
    LineDetermination,
    OrderLine,
    PartyMatch,
    PartyScreening,
    Reason,
    Screening,
    SubmittedOrder,
    most_severe,
)
from shared.policy import Policy

REASON_SEVERITY: Mapping[str, DecisionCode] = {
    "EMBARGOED_DESTINATION": "BLOCK",
    "DENIED_PARTY": "BLOCK",
    "RESTRICTED_PARTY": "LICENSE_REQUIRED",
    "POTENTIAL_MATCH": "HOLD",
    "LICENSE_REQUIRED": "LICENSE_REQUIRED",
    "UNCLASSIFIED_ITEM": "HOLD",
    "INVALID_ECCN": "HOLD",
    "ITAR_ITEM": "HOLD",
    "ECCN_DISCREPANCY": "HOLD",
    "UNKNOWN_DESTINATION_ROW": "HOLD",
    "NO_COUNTRY_CHART_COLUMN": "HOLD",
}
RELEASE_CODE = "NO_LICENSE_REQUIRED"

# 15 CFR 738.4(a): the Country Chart is read for the country of ultimate destination; the ultimate
# consignee's and end user's countries are checked as well when they differ from it.
LICENSING_ROLES = ("ultimate_consignee", "end_user")

# What this service does not evaluate; stated on every release so it is never read as a clearance.
NOT_EVALUATED = (
    "Part 744 end-use and end-user controls beyond the screened lists (e.g. 744.21 military end use)",
    "Know-your-customer red flags (15 CFR 732 Supp. 3)",
    "Part 746 item lists by HTS code (Supps. 2, 4, 6, 7 to Part 746) and sub-national regions "
    "(746.6 Crimea/DNR/LNR)",
    "738.3(a)(1) all-destination entries and 742.x 'see' pointers not expressed as chart columns",
    "OFAC programmes (31 CFR Chapter V) beyond the screened lists",
)

_ECCN_MENTION = re.compile(r"\b\d[A-E]\d{3}(?:\.[a-z0-9]+)*", re.IGNORECASE)
_EXCEPT_CLAUSE = re.compile(r"\(except (?:for )?[^)]*\)", re.IGNORECASE)
_UNCONDITIONAL_TERMS = re.compile(r"^(?:yes|\$\s?[\d,]+)\.?$", re.IGNORECASE)
_EXCEPTION_ENTRY = re.compile(r"^\s*([A-Z]{3})\b\s*:?\s*(.*)$", re.DOTALL)
_CAUTION = "may be available; verify its conditions in 15 CFR Part 740 (and the restrictions of 740.2)"


# --- reference data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartRow:
    """One row of the Commerce Country Chart (15 CFR 738 Supp. 1)."""

    country: str
    iso2: str
    marked_columns: frozenset[str]
    footnotes: tuple[int, ...]
    embargo_pointer: str | None


@dataclass(frozen=True)
class Part746Destination:
    """A destination under Part 746 (embargoes and other special controls)."""

    destination: str
    codes: tuple[str, ...]
    restriction_type: str
    ear_sections: str
    un_arms_embargo: bool
    note: str


@dataclass(frozen=True)
class LicenseExceptionInfo:
    symbol: str
    section: str
    title: str


@dataclass(frozen=True)
class RowInheritance:
    row_iso2: str
    basis: str


# Destinations the EAR send to another country's row. Only those the regulation itself names:
# any other destination without a row is UNKNOWN_DESTINATION_ROW, not a pass.
ROW_INHERITANCE: Mapping[str, RowInheritance] = {
    "HK": RowInheritance(
        "CN",
        "Hong Kong has no Country Chart row or Country Group entry: since 85 FR 83788 (Dec. 23, 2020) "
        "the EAR treat it as China",
    ),
    "LI": RowInheritance(
        "CH",
        "15 CFR 738 Supp. 1 footnote 5 and 738.3(b): Liechtenstein follows Switzerland",
    ),
}


@dataclass(frozen=True)
class CountryProfile:
    """What the reference data says about one ISO-2 country, after row inheritance."""

    iso2: str
    row_iso2: str
    inheritance: RowInheritance | None
    chart: ChartRow | None
    groups: frozenset[str]
    part746: tuple[Part746Destination, ...]

    @property
    def known(self) -> bool:
        return self.chart is not None or bool(self.groups) or bool(self.part746)

    @property
    def label(self) -> str:
        name = self.chart.country if self.chart is not None else self.iso2
        if self.inheritance is not None:
            return f"{self.iso2} (as {self.row_iso2}, {name})"
        return f"{self.iso2} ({name})" if self.chart is not None else self.iso2


@dataclass(frozen=True)
class ReferenceData:
    chart: Mapping[str, ChartRow]
    chart_columns: tuple[str, ...]
    chart_footnotes: Mapping[int, str]
    groups: Mapping[str, frozenset[str]]
    group_names: tuple[str, ...]
    part746: Mapping[str, tuple[Part746Destination, ...]]
    license_exceptions: Mapping[str, LicenseExceptionInfo]
    versions: Mapping[str, str]

    def profile(self, iso2: str) -> CountryProfile:
        inheritance = ROW_INHERITANCE.get(iso2)
        row_iso2 = inheritance.row_iso2 if inheritance is not None else iso2
        part746 = tuple(dict.fromkeys(self.part746.get(iso2, ()) + self.part746.get(row_iso2, ())))
        return CountryProfile(
            iso2=iso2,
            row_iso2=row_iso2,
            inheritance=inheritance,
            chart=self.chart.get(row_iso2),
            groups=self.groups.get(row_iso2, frozenset()),
            part746=part746,
        )


# --- policy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskPolicy:
    """The parts of the policy file the decision reads; refused at startup when incomplete."""

    version: str
    embargo_country_groups: tuple[str, ...]
    scores: Mapping[str, int]
    additional_reason_increment: int
    review_threshold: float
    block_threshold: float
    list_rationale: Mapping[str, str]
    red_flags: tuple[RedFlagRule, ...] = ()

    @classmethod
    def from_policy(cls, policy: Policy) -> RiskPolicy:
        risk = policy.section("risk")
        screening = policy.section("screening")
        where = f"policy {policy.version}"
        groups = risk.get("embargo_country_groups")
        if not isinstance(groups, list) or not groups or not all(isinstance(g, str) for g in groups):
            raise ValueError(f"{where}: risk.embargo_country_groups must be a non-empty list of group names")
        scores = risk.get("scores")
        if not isinstance(scores, dict):
            raise ValueError(f"{where}: risk.scores must be an object of reason code -> score")
        missing = sorted(set(REASON_SEVERITY) - set(scores))
        if missing:
            raise ValueError(f"{where}: risk.scores has no score for reason codes {missing}")
        bad = {code: v for code, v in scores.items() if type(v) is not int or not 0 <= v <= 100}
        if bad:
            raise ValueError(f"{where}: risk.scores must be integers 0-100, got {bad}")
        increment = risk.get("additional_reason_increment")
        if type(increment) is not int or not 0 <= increment <= 100:
            raise ValueError(f"{where}: risk.additional_reason_increment must be an integer 0-100")
        review, block = screening.get("review_threshold"), screening.get("block_threshold")
        if (
            not isinstance(review, int | float)
            or not isinstance(block, int | float)
            or not 0 < review <= block <= 1
        ):
            raise ValueError(
                f"{where}: screening thresholds must satisfy 0 < review_threshold <= block_threshold <= 1 "
                f"(got {review!r}, {block!r})"
            )
        effects = screening.get("list_effects", {})
        rationale = {
            list_id: str(entry.get("why", ""))
            for list_id, entry in (effects.items() if isinstance(effects, dict) else ())
            if isinstance(entry, dict)
        }
        red_flags_section = policy.content.get("red_flags", {})
        if not isinstance(red_flags_section, dict):
            raise ValueError(f"{where}: red_flags must be an object")
        red_flags = parse_rules(red_flags_section, where)
        return cls(
            version=policy.version,
            embargo_country_groups=tuple(groups),
            scores={**scores, **{rule.code: rule.score for rule in red_flags}},
            red_flags=red_flags,
            additional_reason_increment=increment,
            review_threshold=float(review),
            block_threshold=float(block),
            list_rationale=rationale,
        )


# --- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedCountry:
    """A country whose Country Chart row decides licence requirements, and why it is checked."""

    profile: CountryProfile
    roles: tuple[str, ...]

    @property
    def iso2(self) -> str:
        return self.profile.iso2

    @property
    def party_role(self) -> str | None:
        return None if "destination" in self.roles else self.roles[0]


@dataclass(frozen=True)
class CountryRequirement:
    country: CheckedCountry
    columns_marked: tuple[str, ...]
    footnotes: tuple[tuple[int, str], ...]
    part746: tuple[tuple[str, str], ...]

    @property
    def any(self) -> bool:
        return bool(self.columns_marked or self.footnotes or self.part746)


def decide(
    order: SubmittedOrder,
    classification: Classification,
    screening: Screening,
    refdata: ReferenceData,
    policy: RiskPolicy,
) -> Decision:
    checked = licensing_countries(order, refdata)
    context = LineContext(checked, refdata, policy, _exceptions_barred(screening))
    reasons = [
        *embargo_reasons(order, refdata, policy),
        *screening_reasons(screening, policy),
        *chart_row_reasons(checked, refdata, policy),
        *red_flag_reasons(
            order, classification, policy.red_flags, lambda iso2: sorted(refdata.profile(iso2).groups)
        ),
    ]
    by_line = {c.line_no: c for c in classification.lines}
    determinations: list[LineDetermination] = []
    for line in order.lines:
        determination, line_reasons = assess_line(line, by_line.get(line.line_no), context)
        determinations.append(determination)
        reasons.extend(line_reasons)
    data_versions = _data_versions(classification, screening, refdata)
    if not reasons:
        release = release_reason(order, classification, screening, checked, refdata, policy, determinations)
        return Decision(
            decision="RELEASE",
            risk_score=0,
            reasons=[release],
            line_determinations=determinations,
            policy_version=policy.version,
            data_versions=data_versions,
        )
    return Decision(
        decision=cast(DecisionCode, most_severe([r.severity for r in reasons])),
        risk_score=risk_score(reasons, policy),
        reasons=reasons,
        line_determinations=determinations,
        policy_version=policy.version,
        data_versions=data_versions,
    )


def risk_score(reasons: Sequence[Reason], policy: RiskPolicy) -> int:
    """The highest reason score plus an increment per additional reason, capped at 100."""
    scores = [policy.scores[r.code] for r in reasons]
    return min(100, max(scores) + policy.additional_reason_increment * (len(scores) - 1))


def licensing_countries(order: SubmittedOrder, refdata: ReferenceData) -> list[CheckedCountry]:
    roles: dict[str, list[str]] = {order.destination_country: ["destination"]}
    for party in order.parties:
        if party.role in LICENSING_ROLES:
            found = roles.setdefault(party.country, [])
            if party.role not in found:
                found.append(party.role)
    return [CheckedCountry(refdata.profile(iso2), tuple(r)) for iso2, r in roles.items()]


def embargo_groups(profile: CountryProfile, policy: RiskPolicy) -> list[str]:
    """The policy's embargo Country Groups (E:1/E:2) the country is in."""
    return [g for g in policy.embargo_country_groups if g in profile.groups]


def embargo_reasons(order: SubmittedOrder, refdata: ReferenceData, policy: RiskPolicy) -> list[Reason]:
    """15 CFR 740 Supp. 1 E:1/E:2 (Part 746): the destination and every party's country."""
    subjects: list[tuple[str | None, str, str]] = [(None, "destination", order.destination_country)]
    subjects += [(p.role, f"{p.role} {p.name!r}", p.country) for p in order.parties]
    reasons: list[Reason] = []
    for party_role, who, iso2 in subjects:
        profile = refdata.profile(iso2)
        groups = embargo_groups(profile, policy)
        if not groups:
            continue
        sections = "; ".join(e.ear_sections for e in profile.part746) or "15 CFR Part 746"
        reasons.append(
            Reason(
                code="EMBARGOED_DESTINATION",
                severity=REASON_SEVERITY["EMBARGOED_DESTINATION"],
                message=(
                    f"{who} is in {profile.label}, Country Group {', '.join(groups)} (15 CFR 740 Supp. 1): "
                    f"embargoed destination under {sections}"
                ),
                party_role=party_role,
                evidence={
                    "country": iso2,
                    "chart_row": profile.row_iso2,
                    "inheritance": profile.inheritance.basis if profile.inheritance else None,
                    "country_groups": sorted(profile.groups),
                    "embargo_country_groups": list(policy.embargo_country_groups),
                    "regulation": f"15 CFR 740 Supp. 1; {sections}",
                    "part_746": [_part746_evidence(e) for e in profile.part746],
                    "chart_pointer": profile.chart.embargo_pointer if profile.chart else None,
                    "data_versions": {
                        "country_groups": refdata.versions["country_groups"],
                        "embargoed_destinations": refdata.versions["embargoed_destinations"],
                    },
                },
            )
        )
    return reasons


def _match_code(match: PartyMatch, policy: RiskPolicy) -> str:
    if match.score >= policy.block_threshold and match.effect == "block":
        return "DENIED_PARTY"
    if match.score >= policy.block_threshold and match.effect == "licence":
        return "RESTRICTED_PARTY"
    return "POTENTIAL_MATCH"


def screening_reasons(screening: Screening, policy: RiskPolicy) -> list[Reason]:
    """Every match screening reported is at least a HOLD: a finding is never dropped here."""
    return [_match_reason(party, match, policy) for party in screening.parties for match in party.matches]


def _match_reason(party: PartyScreening, match: PartyMatch, policy: RiskPolicy) -> Reason:
    code = _match_code(match, policy)
    why = policy.list_rationale.get(match.list_id, "")
    if code == "POTENTIAL_MATCH" and match.effect == "review":
        rule = f"list effect 'review' (score {match.score:.2f})"
    elif code == "POTENTIAL_MATCH":
        rule = (
            f"score {match.score:.2f} below the block threshold {policy.block_threshold:.2f} "
            f"(review threshold {policy.review_threshold:.2f})"
        )
    else:
        rule = f"score {match.score:.2f} >= block threshold {policy.block_threshold:.2f}"
    alias = " (alias)" if match.matched_alias else ""
    message = (
        f"{party.role} {party.name!r} matches {match.list_id} entry {match.entry_id} {match.entry_name!r} "
        f"as {match.matched_name!r}{alias}: {rule}; list version {match.list_version}"
    )
    if why:
        message += f" — {why}"
    return Reason(
        code=code,
        severity=REASON_SEVERITY[code],
        message=message,
        party_role=party.role,
        evidence={
            "party_name": party.name,
            "party_country": party.country,
            "list_id": match.list_id,
            "list_name": match.list_name,
            "list_version": match.list_version,
            "list_effect": match.effect,
            "list_rationale": why or None,
            "entry_id": match.entry_id,
            "entry_name": match.entry_name,
            "matched_name": match.matched_name,
            "matched_alias": match.matched_alias,
            "score": match.score,
            "review_threshold": policy.review_threshold,
            "block_threshold": policy.block_threshold,
            "country_agreement": match.evidence.country_agreement,
            "entry_countries": match.evidence.entry_countries,
            "programs": match.evidence.programs,
        },
    )


def chart_row_reasons(
    checked: Sequence[CheckedCountry], refdata: ReferenceData, policy: RiskPolicy
) -> list[Reason]:
    """A country with no usable chart row is a HOLD: a blank is not a clearance (738.3, 738.4)."""
    reasons: list[Reason] = []
    for country in checked:
        profile = country.profile
        if embargo_groups(profile, policy):
            continue  # already a BLOCK
        roles = ", ".join(country.roles)
        if profile.chart is None:
            message = (
                f"No Commerce Country Chart row for {country.iso2} ({roles}): the licence requirement cannot "
                "be read from 15 CFR 738 Supp. 1; only the EAR's own territory rules (738.3(b), 85 FR 83788) "
                "map a destination to another row — determine it manually"
            )
        elif profile.chart.embargo_pointer:
            message = (
                f"The Country Chart row of {profile.label} ({roles}) has no marks and points elsewhere: "
                f"{profile.chart.embargo_pointer!r} — not evaluated by the chart"
            )
        else:
            continue
        reasons.append(
            Reason(
                code="UNKNOWN_DESTINATION_ROW",
                severity=REASON_SEVERITY["UNKNOWN_DESTINATION_ROW"],
                message=message,
                party_role=country.party_role,
                evidence={
                    "country": country.iso2,
                    "roles": list(country.roles),
                    "chart_row": profile.row_iso2 if profile.chart else None,
                    "country_groups": sorted(profile.groups),
                    "regulation": "15 CFR 738.3, 738.4; 15 CFR 738 Supp. 1",
                    "data_version": refdata.versions["country_chart"],
                },
            )
        )
    return reasons


@dataclass(frozen=True)
class LineContext:
    """What every line is assessed against."""

    checked: Sequence[CheckedCountry]
    refdata: ReferenceData
    policy: RiskPolicy
    # Why no licence exception may be offered for this order at all, if so.
    exceptions_barred: str | None


def _exceptions_barred(screening: Screening) -> str | None:
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
        if rule is None:
            not_listed.append(
                {"entry": entry, "why": "its conditions are not evaluated here; see 15 CFR Part 740"}
            )
            continue
        outside = [r.country.iso2 for r in requirements if not r.country.profile.groups & rule.groups]
        if terms.upper().startswith("N/A"):
            why = "N/A for this ECCN"
        elif symbol != "STA" and terms and not _UNCONDITIONAL_TERMS.match(terms):
            why = "available only for some paragraphs or conditions of the ECCN; see the entry"
        elif rule.ns_only and not all(c.startswith("NS") for c in marked):
            why = f"covers NS-only requirements; also marked: {sorted(c for c in marked if not c.startswith('NS'))}"
        elif outside:
            why = f"{', '.join(outside)} not in Country Group {'/'.join(sorted(rule.groups))}"
        else:
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
            continue
        not_listed.append({"entry": entry, "why": why})
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


def _part746_evidence(entry: Part746Destination) -> dict[str, Any]:
    return {
        "destination": entry.destination,
        "restriction_type": entry.restriction_type,
        "ear_sections": entry.ear_sections,
        "note": entry.note,
    }


def release_reason(
    order: SubmittedOrder,
    classification: Classification,
    screening: Screening,
    checked: Sequence[CheckedCountry],
    refdata: ReferenceData,
    policy: RiskPolicy,
    determinations: Sequence[LineDetermination],
) -> Reason:
    """Why nothing stopped the order: every line, column, country and list that was checked."""
    by_line = {c.line_no: c for c in classification.lines}
    lines = []
    for d in determinations:
        c = by_line[d.line_no]
        lines.append(
            {
                "line_no": d.line_no,
                "eccn": c.eccn,
                "status": c.status,
                "country_chart_columns": c.country_chart_columns,
                "columns_marked": d.columns_applicable,
            }
        )
    described = ", ".join(
        f"{d.line_no}: {by_line[d.line_no].eccn or 'EAR99'}"
        + (
            f" (columns {'/'.join(by_line[d.line_no].country_chart_columns)} not marked)"
            if by_line[d.line_no].country_chart_columns
            else ""
        )
        for d in determinations
    )
    countries = ", ".join(f"{c.profile.label} [{', '.join(c.roles)}]" for c in checked)
    lists = {lst.list_id: lst.version for lst in screening.lists}
    part746 = {
        c.iso2: [_part746_evidence(e) for e in c.profile.part746] for c in checked if c.profile.part746
    }
    return Reason(
        code=RELEASE_CODE,
        severity="RELEASE",
        message=(
            f"No licence requirement found for lines {described} to {countries} "
            "(15 CFR 738.4, Commerce Country Chart); no destination or party in Country Group "
            f"{'/'.join(policy.embargo_country_groups)}; {len(screening.parties)} parties screened against "
            f"{len(lists)} lists with no match"
        ),
        evidence={
            "lines": lines,
            "countries_checked": [
                {"country": c.iso2, "roles": list(c.roles), "chart_row": c.profile.row_iso2} for c in checked
            ],
            "parties": [{"role": p.role, "country": p.country} for p in order.parties],
            "embargo_country_groups": list(policy.embargo_country_groups),
            "screened_lists": lists,
            "part_746_notes": part746,
            "not_evaluated": list(NOT_EVALUATED),
            "regulation": "15 CFR 738.4; 15 CFR 738 Supp. 1; 15 CFR 740 Supp. 1",
        },
    )


def _data_versions(
    classification: Classification, screening: Screening, refdata: ReferenceData
) -> dict[str, str]:
    versions = dict(refdata.versions)
    versions["ccl"] = classification.ccl_version
    if classification.catalog_version:
        versions["catalog"] = classification.catalog_version
    versions["screening_policy"] = screening.policy_version
    for lst in screening.lists:
        versions[f"list:{lst.list_id}"] = lst.version
    return versions
