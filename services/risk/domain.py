"""Risk: licence determination and the final decision, as pure functions.

`assess(order, classification, screening, refdata, policy, part746)` applies the decision table of
docs/architecture.md to what the classifier and screening found, the Commerce Country Chart (15 CFR
738 Supp. 1), the Country Groups (15 CFR 740 Supp. 1), the Part 746 destinations and HTS-6
supplements, Part 744's end-use rules and the policy. It says which lines need a licence that a
licence held could cover (`Assessment.needs`). `finish(assessment, coverage)` turns it into the
decision once the licence ledger has said which of those lines it covers (service.py); `decide` is
both with no ledger (what-if). No I/O, no clock: the same inputs, data versions and ledger answer
always give the same decision.

Reason codes and their severities (policy.REASON_SEVERITY):

| code | severity | rule |
| --- | --- | --- |
| EMBARGOED_DESTINATION | BLOCK | destination or a party's country in the policy's embargo groups (E:1/E:2) |
| EMBARGOED_REGION | BLOCK | a party in Crimea, Sevastopol, the so-called DNR or LNR (746.6) |
| DENIED_PARTY | BLOCK | match of a `block` list at or above the block threshold |
| RESTRICTED_PARTY | LICENSE_REQUIRED | match of a `licence` list at or above the block threshold whose licence requirement reaches a line |
| POTENTIAL_MATCH | HOLD | any other reported match not outweighed by a confirmed one of the same party |
| LICENSE_REQUIRED | LICENSE_REQUIRED | Country Chart X (738.4), a chart footnote naming the ECCN, or Part 746 (746.8(a)(1), the HTS-6 supplements) |
| END_USE_LICENSE_REQUIRED | LICENSE_REQUIRED | the stated end use is one a Part 744 rule names (744.2-744.4, 744.21, 744.22) |
| END_USE_UNDETERMINED | HOLD | a Part 744 rule turns on the end use and the order states none |
| PART_746_UNDETERMINED | HOLD | an EAR99 line to Russia/Belarus that the HTS-6 supplements cannot settle |
| REGION_REVIEW | HOLD | a party in Zaporizhzhia or Kherson oblast |
| UNCLASSIFIED_ITEM, INVALID_ECCN, ITAR_ITEM, ECCN_DISCREPANCY | HOLD | the line's classification |
| UNKNOWN_DESTINATION_ROW, NO_COUNTRY_CHART_COLUMN | HOLD | the reference data cannot answer: never a silent pass |
| RED_FLAG_* | HOLD | a "Know Your Customer" red flag (Supp. 3 to Part 732), rules in the policy (red_flags.py) |
| LICENSE_COVERED | RELEASE | the line's licence requirement is covered by a licence held (a ledger draw-down) |
| LICENSE_EXCEPTION | RELEASE | the line qualifies for a licence exception the policy lets the company apply itself |
| NO_LICENSE_REQUIRED | RELEASE | the last reason of every release; its evidence says everything that was checked |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from services.risk.end_use import end_use_reasons
from services.risk.licensing import LineContext, LineOutcome, assess_line, footnote_names
from services.risk.part746 import Part746, hts6
from services.risk.parties import (
    ListingScope,
    collapse,
    embargo_reasons,
    line_in_scope,
    part746_evidence,
    region_reasons,
    screening_reasons,
)
from services.risk.policy import REASON_SEVERITY, RELEASE_CODE, RiskPolicy, embargo_groups
from services.risk.red_flags import red_flag_reasons
from services.risk.reference import (
    ChartRow,
    CheckedCountry,
    LicenseExceptionInfo,
    Part746Destination,
    ReferenceData,
)
from services.risk.rules import ExceptionRestriction
from shared.events import (
    Classification,
    Decision,
    DecisionCode,
    LineDetermination,
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
# consignee's and end user's countries are checked as well when they differ from it. This is law,
# not policy: which parties' countries decide a licence is not a compliance officer's choice.
LICENSING_ROLES = ("ultimate_consignee", "end_user")
# The parties a licence must name, when it names parties, for it to cover a line (15 CFR 750.7:
# a licence authorises only the transaction it describes, to the parties it names).
LICENCE_PARTY_ROLES = ("ultimate_consignee", "end_user", "intermediate_consignee", "buyer")

# What this service does not evaluate; stated on every release so it is never read as a clearance.
NOT_EVALUATED = (
    "Part 744 end-use and end-user controls beyond what the order states (the end-use statement, "
    "the screened lists): knowledge a person has but the order does not carry",
    "Know-your-customer red flags (15 CFR 732 Supp. 3) that an order event does not show (e.g. a "
    "customer's reluctance to share information, unusual packaging or delivery requests); those it "
    "shows are evaluated by the policy's red_flags rules",
    "738.3(a)(1) all-destination entries and 742.x 'see' pointers not expressed as chart columns",
    "OFAC programmes (31 CFR Chapter V) beyond the screened lists",
)


@dataclass(frozen=True)
class LicenceNeed:
    """A line whose own licence requirement a licence held may cover."""

    line_no: int
    sku: str
    eccn: str
    quantity: int
    value: Decimal
    currency: str
    destination: str
    countries: tuple[str, ...]
    # (role, name, country) of the parties a licence naming parties must name.
    parties: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Coverage:
    """The ledger's answer for one line: the licence and draw-down that cover it, or why none does."""

    line_no: int
    licence_number: str | None
    drawdown_id: int | None = None
    authority: str | None = None
    provisos: tuple[str, ...] = ()
    why: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def covered(self) -> bool:
        return self.licence_number is not None


@dataclass(frozen=True)
class Assessment:
    order: SubmittedOrder
    reasons: list[Reason]
    determinations: list[LineDetermination]
    needs: list[LicenceNeed]
    release_evidence: dict[str, Any]
    data_versions: dict[str, str]
    policy_version: str

    @property
    def blocked(self) -> bool:
        return any(r.severity == "BLOCK" for r in self.reasons)


def decide(
    order: SubmittedOrder,
    classification: Classification,
    screening: Screening,
    refdata: ReferenceData,
    policy: RiskPolicy,
    part746: Part746 | None = None,
    part746_missing: str = "Part 746 is not loaded",
) -> Decision:
    """The decision with no licence ledger (what-if): licence-needing lines stay LICENSE_REQUIRED."""
    assessment = assess(order, classification, screening, refdata, policy, part746, part746_missing)
    return finish(assessment, {}, policy)


def assess(
    order: SubmittedOrder,
    classification: Classification,
    screening: Screening,
    refdata: ReferenceData,
    policy: RiskPolicy,
    part746: Part746 | None = None,
    part746_missing: str = "Part 746 is not loaded",
) -> Assessment:
    checked = licensing_countries(order, refdata)
    parties = collapse(order)
    by_line = {c.line_no: c for c in classification.lines}
    flags = red_flag_reasons(
        order, classification, policy.red_flags, lambda iso2: sorted(refdata.profile(iso2).groups)
    )
    end_use = end_use_reasons(order, classification, refdata, policy)
    outcome = screening_reasons(
        parties,
        screening,
        policy,
        lambda scope: _lines_in_scope(scope, order, classification, refdata, part746),
    )
    barred = _restriction(screening, flags, end_use, policy)
    context = LineContext(checked, refdata, policy, barred, part746, part746_missing, order.end_use)
    reasons = [
        *embargo_reasons(order, parties, refdata, policy),
        *region_reasons(parties, policy),
        *outcome.reasons,
        *chart_row_reasons(checked, refdata, policy),
        *end_use,
        *flags,
    ]
    determinations: list[LineDetermination] = []
    needs: list[LicenceNeed] = []
    for line in order.lines:
        result = assess_line(line, by_line.get(line.line_no), context)
        determination, line_reasons = _apply_exception(result)
        determinations.append(determination)
        reasons.extend(line_reasons)
        if result.licence is not None and result.self_applied is None:
            needs.append(_need(order, line.line_no, result, checked))
    versions = _data_versions(classification, screening, refdata, part746)
    release = release_evidence(order, classification, screening, checked, policy, determinations)
    release["listings_out_of_scope"] = outcome.out_of_scope
    release["part_746"] = part746.version if part746 is not None else f"not loaded: {part746_missing}"
    return Assessment(order, reasons, determinations, needs, release, versions, policy.version)


def _restriction(
    screening: Screening, flags: Sequence[Reason], end_use: Sequence[Reason], policy: RiskPolicy
) -> ExceptionRestriction | None:
    """The 740.2 restriction that bars every licence exception for the order, if any applies."""
    restrictions = policy.exception_restrictions or {}
    if any(p.matches for p in screening.parties):
        return restrictions.get("party_match")
    if flags:
        return restrictions.get("red_flag")
    if end_use:
        return restrictions.get("end_use")
    return None


def _lines_in_scope(
    scope: ListingScope,
    order: SubmittedOrder,
    classification: Classification,
    refdata: ReferenceData,
    part746: Part746 | None,
) -> list[int]:
    hs = {line.line_no: line.hs_code for line in order.lines}

    def in_supp7(line_no: int) -> bool | None:
        supplement = part746.supplements.get(7) if part746 is not None else None
        code = hts6(hs.get(line_no))
        if supplement is None or code is None:
            return None
        return supplement.find(code) is not None

    return [c.line_no for c in classification.lines if line_in_scope(scope, c, refdata, in_supp7)]


def _apply_exception(result: LineOutcome) -> tuple[LineDetermination, list[Reason]]:
    """A line the policy lets the company authorise under an exception: its LICENSE_REQUIRED becomes
    a LICENSE_EXCEPTION release reason naming the exception and its conditions."""
    offer = result.self_applied
    if offer is None or result.licence is None:
        return result.determination, result.reasons
    licence = result.licence
    reason = Reason(
        code="LICENSE_EXCEPTION",
        severity=REASON_SEVERITY["LICENSE_EXCEPTION"],
        message=(
            f"{licence.message.split(': licence required', 1)[0]}: authorised under licence exception "
            f"{offer['symbol']} ({offer['section']}), self-applied by policy, subject to "
            f"{'; '.join(offer['conditions'])}"
        ),
        line_no=licence.line_no,
        evidence={"exception": offer, "requirement": licence.evidence, "policy_key": offer["policy_key"]},
    )
    determination = result.determination.model_copy(
        update={"authorised_by": f"licence exception {offer['symbol']}"}
    )
    return determination, [reason if r is licence else r for r in result.reasons]


def _need(
    order: SubmittedOrder, line_no: int, result: LineOutcome, checked: Sequence[CheckedCountry]
) -> LicenceNeed:
    line = next(x for x in order.lines if x.line_no == line_no)
    assert result.licence is not None
    countries = [c["country"] for c in result.licence.evidence.get("countries", []) if isinstance(c, dict)]
    countries += [c for c in result.licence.evidence.get("countries", []) if isinstance(c, str)]
    return LicenceNeed(
        line_no=line_no,
        sku=line.sku,
        eccn=result.determination.eccn or "EAR99",
        quantity=line.quantity,
        value=Decimal(line.unit_price) * line.quantity,
        currency=line.currency,
        destination=order.destination_country,
        countries=tuple(dict.fromkeys(countries or [c.iso2 for c in checked])),
        parties=tuple((p.role, p.name, p.country) for p in order.parties if p.role in LICENCE_PARTY_ROLES),
    )


def finish(assessment: Assessment, coverage: Mapping[int, Coverage], policy: RiskPolicy) -> Decision:
    """The decision once the ledger has answered for the licence-needing lines."""
    reasons = list(assessment.reasons)
    determinations = list(assessment.determinations)
    for need in assessment.needs:
        found = coverage.get(need.line_no)
        if found is None:
            continue
        index = next(
            i for i, r in enumerate(reasons) if r.code == "LICENSE_REQUIRED" and r.line_no == need.line_no
        )
        reasons[index] = (
            _covered(reasons[index], need, found) if found.covered else _uncovered(reasons[index], found)
        )
        if found.covered:
            at = next(i for i, d in enumerate(determinations) if d.line_no == need.line_no)
            determinations[at] = determinations[at].model_copy(
                update={"authorised_by": f"licence {found.licence_number}"}
            )
    held = [r for r in reasons if r.severity != "RELEASE"]
    if not held:
        release = release_reason(assessment, reasons, policy)
        return Decision(
            decision="RELEASE",
            risk_score=0,
            reasons=[*(r.model_copy(update={"score_contribution": 0}) for r in reasons), release],
            line_determinations=determinations,
            policy_version=assessment.policy_version,
            data_versions=assessment.data_versions,
        )
    scored, total = score_reasons(reasons, policy)
    return Decision(
        decision=cast(DecisionCode, most_severe([r.severity for r in held])),
        risk_score=total,
        reasons=scored,
        line_determinations=determinations,
        policy_version=assessment.policy_version,
        data_versions=assessment.data_versions,
    )


def _covered(required: Reason, need: LicenceNeed, coverage: Coverage) -> Reason:
    provisos = f"; provisos: {'; '.join(coverage.provisos)}" if coverage.provisos else ""
    return Reason(
        code="LICENSE_COVERED",
        severity=REASON_SEVERITY["LICENSE_COVERED"],
        message=(
            f"Line {need.line_no} ({need.sku}, {need.eccn}): the licence requirement is covered by licence "
            f"{coverage.licence_number} ({coverage.authority}), draw-down {coverage.drawdown_id} of "
            f"{need.quantity} units / {need.value} {need.currency}{provisos}"
        ),
        line_no=need.line_no,
        evidence={
            "licence_number": coverage.licence_number,
            "authority": coverage.authority,
            "drawdown_id": coverage.drawdown_id,
            "quantity": need.quantity,
            "value": str(need.value),
            "currency": need.currency,
            "provisos": list(coverage.provisos),
            "ledger": dict(coverage.detail),
            "requirement": required.evidence,
            "regulation": "15 CFR 750.7 (a licence authorises the transaction it describes)",
        },
    )


def _uncovered(required: Reason, coverage: Coverage) -> Reason:
    evidence = {**required.evidence, "ledger": {"covered": False, "why": coverage.why, **coverage.detail}}
    return required.model_copy(
        update={
            "message": f"{required.message}; no licence held covers it: {coverage.why}",
            "evidence": evidence,
        }
    )


def score_reasons(reasons: Sequence[Reason], policy: RiskPolicy) -> tuple[list[Reason], int]:
    """Each reason with its contribution: the highest reason its own score, every further one the
    policy's increment, up to 100 in all; release reasons add nothing."""
    order = sorted(
        range(len(reasons)),
        key=lambda i: -policy.scores[reasons[i].code] if reasons[i].severity != "RELEASE" else 1,
    )
    contributions = [0] * len(reasons)
    total = 0
    for rank, i in enumerate(order):
        if reasons[i].severity == "RELEASE":
            continue
        wanted = policy.scores[reasons[i].code] if rank == 0 else policy.additional_reason_increment
        contributions[i] = max(0, min(wanted, 100 - total))
        total += contributions[i]
    return [
        r.model_copy(update={"score_contribution": c}) for r, c in zip(reasons, contributions, strict=True)
    ], total


def risk_score(reasons: Sequence[Reason], policy: RiskPolicy) -> int:
    """The highest reason score plus an increment per additional reason, capped at 100."""
    return score_reasons(reasons, policy)[1]


def licensing_countries(order: SubmittedOrder, refdata: ReferenceData) -> list[CheckedCountry]:
    roles: dict[str, list[str]] = {order.destination_country: ["destination"]}
    for party in order.parties:
        if party.role in LICENSING_ROLES:
            found = roles.setdefault(party.country, [])
            if party.role not in found:
                found.append(party.role)
    return [CheckedCountry(refdata.profile(iso2), tuple(r)) for iso2, r in roles.items()]


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


def release_evidence(
    order: SubmittedOrder,
    classification: Classification,
    screening: Screening,
    checked: Sequence[CheckedCountry],
    policy: RiskPolicy,
    determinations: Sequence[LineDetermination],
) -> dict[str, Any]:
    """Everything that was checked, for the release reason: lines, columns, countries, lists, rules."""
    by_line = {c.line_no: c for c in classification.lines}
    return {
        "lines": [
            {
                "line_no": d.line_no,
                "eccn": by_line[d.line_no].eccn if d.line_no in by_line else None,
                "status": by_line[d.line_no].status if d.line_no in by_line else None,
                "country_chart_columns": by_line[d.line_no].country_chart_columns
                if d.line_no in by_line
                else [],
                "columns_marked": d.columns_applicable,
                "authorised_by": d.authorised_by,
            }
            for d in determinations
        ],
        "countries_checked": [
            {"country": c.iso2, "roles": list(c.roles), "chart_row": c.profile.row_iso2} for c in checked
        ],
        "parties": [{"role": p.role, "country": p.country} for p in order.parties],
        "embargo_country_groups": list(policy.embargo_country_groups),
        "screened_lists": {lst.list_id: lst.version for lst in screening.lists},
        "part_746_notes": {
            c.iso2: [part746_evidence(e) for e in c.profile.part746] for c in checked if c.profile.part746
        },
        "regions_evaluated": [r.id for r in policy.regions],
        "end_use_rules_evaluated": [r.section for r in policy.end_use_rules],
        "red_flags_evaluated": [rule.code for rule in policy.red_flags],
        "not_evaluated": list(NOT_EVALUATED),
        "regulation": "15 CFR 738.4; 15 CFR 738 Supp. 1; 15 CFR 740 Supp. 1; Part 744; Part 746",
    }


def release_reason(assessment: Assessment, authorisations: Sequence[Reason], policy: RiskPolicy) -> Reason:
    """Why nothing stopped the order: every line, column, country, list and rule that was checked."""
    evidence = assessment.release_evidence
    lines = evidence["lines"]
    described = ", ".join(
        f"{line['line_no']}: {line['eccn'] or 'EAR99'}"
        + (
            f" (columns {'/'.join(line['country_chart_columns'])} not marked)"
            if line["country_chart_columns"] and not line["authorised_by"]
            else ""
        )
        + (f" (authorised by {line['authorised_by']})" if line["authorised_by"] else "")
        for line in lines
    )
    countries = ", ".join(f"{c['country']} [{', '.join(c['roles'])}]" for c in evidence["countries_checked"])
    out_of_scope = evidence.get("listings_out_of_scope") or []
    entries = ", ".join(f"{m['list_id']} {m['entry_id']}" for m in out_of_scope)
    listed = (
        f"; {len(out_of_scope)} licence-list matches whose licence requirement reaches none of the lines "
        f"({entries})"
        if out_of_scope
        else ""
    )
    further = "further " if authorisations else ""
    return Reason(
        code=RELEASE_CODE,
        severity="RELEASE",
        message=(
            f"No {further}licence requirement found for lines {described} to {countries} "
            "(15 CFR 738.4, Commerce Country Chart; Parts 744 and 746); no destination or party in Country Group "
            f"{'/'.join(policy.embargo_country_groups)}; {len(assessment.order.parties)} parties screened against "
            f"{len(evidence['screened_lists'])} lists with no match outstanding{listed}"
        ),
        evidence={**evidence, "authorisations": [r.code for r in authorisations]},
        score_contribution=0,
    )


def _data_versions(
    classification: Classification, screening: Screening, refdata: ReferenceData, part746: Part746 | None
) -> dict[str, str]:
    versions = dict(refdata.versions)
    versions["ccl"] = classification.ccl_version
    if classification.catalog_version:
        versions["catalog"] = classification.catalog_version
    versions["screening_policy"] = screening.policy_version
    versions["part746_supplements"] = part746.version if part746 is not None else "not loaded"
    for lst in screening.lists:
        versions[f"list:{lst.list_id}"] = lst.version
    return versions
