"""Risk: licence determination and the final decision, as one pure function.

`decide(order, classification, screening, refdata, policy)` applies the decision table of
docs/architecture.md to what the classifier and screening found, the Commerce Country Chart (15 CFR 738
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

from collections.abc import Sequence
from typing import Any, cast

from services.risk.licensing import LineContext, assess_line, exceptions_barred, footnote_names
from services.risk.policy import REASON_SEVERITY, RELEASE_CODE, RiskPolicy, embargo_groups
from services.risk.red_flags import red_flag_reasons
from services.risk.reference import (
    ChartRow,
    CheckedCountry,
    LicenseExceptionInfo,
    Part746Destination,
    ReferenceData,
)
from shared.events import (
    Classification,
    Decision,
    DecisionCode,
    LineDetermination,
    PartyMatch,
    PartyScreening,
    Reason,
    Screening,
    SubmittedOrder,
    most_severe,
)

__all__ = [
    "REASON_SEVERITY",
    "ChartRow",
    "LicenseExceptionInfo",
    "Part746Destination",
    "ReferenceData",
    "RiskPolicy",
    "decide",
    "embargo_groups",
    "footnote_names",
]

# 15 CFR 738.4(a): the Country Chart is read for the country of ultimate destination; the ultimate
# consignee's and end user's countries are checked as well when they differ from it.
LICENSING_ROLES = ("ultimate_consignee", "end_user")

# What this service does not evaluate; stated on every release so it is never read as a clearance.
# The "Know Your Customer" red flags an order event can show are evaluated (red_flags.py, the
# policy's rules); those it cannot show are not.
NOT_EVALUATED = (
    "Part 744 end-use and end-user controls beyond the screened lists (e.g. 744.21 military end use)",
    "Know-your-customer red flags (15 CFR 732 Supp. 3) that an order event does not show (e.g. a "
    "customer's reluctance to share information, unusual packaging or delivery requests); those it "
    "shows are evaluated by the policy's red_flags rules",
    "Part 746 item lists by HTS code (Supps. 2, 4, 6, 7 to Part 746) and sub-national regions "
    "(746.6 Crimea/DNR/LNR)",
    "738.3(a)(1) all-destination entries and 742.x 'see' pointers not expressed as chart columns",
    "OFAC programmes (31 CFR Chapter V) beyond the screened lists",
)


def decide(
    order: SubmittedOrder,
    classification: Classification,
    screening: Screening,
    refdata: ReferenceData,
    policy: RiskPolicy,
) -> Decision:
    checked = licensing_countries(order, refdata)
    context = LineContext(checked, refdata, policy, exceptions_barred(screening))
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
            "red_flags_evaluated": [rule.code for rule in policy.red_flags],
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
