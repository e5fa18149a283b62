"""The order's parties as risk sees them, and what screening, the embargoes and the occupied regions
say about each: one reason per code and party, every matched entry in its evidence.

- The same name and country in several roles is one party with several roles (`collapse`).
- A party's matches become at most one reason per code. When a party has a confirmed match (at or
  above the block threshold on a `block` or `licence` list), weaker candidate matches of that party
  on lists of the same or a lower effect do not raise the outcome: they are the confirmed reason's
  evidence (`weaker_candidates`). A candidate on a list of a higher effect still holds the order.
- An Entity List or MEU listing requires a licence for what its own licence requirement says
  (the CSL carries it): "for all items subject to the EAR", the items of Supplement No. 2 to Part
  744 (MEU, 744.21), items on the CCL (and EAR99 items of Supplement No. 7 to Part 746), or named
  ECCNs. A listing that reaches none of the order's lines is no licence requirement for this order;
  the release says so.
- A supplier (responsible sourcing) receives no export: a licence-list match of a supplier is a
  POTENTIAL_MATCH for review, a block-list match is still a DENIED_PARTY (dealings are prohibited).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.risk.policy import REASON_SEVERITY, RiskPolicy, embargo_groups
from services.risk.reference import Part746Destination, ReferenceData
from services.risk.rules import RegionRule, find_terms
from shared.events import (
    LineClassification,
    Party,
    PartyMatch,
    PartyScreening,
    Reason,
    Screening,
    SubmittedOrder,
)

_EFFECT_RANK = {"review": 1, "licence": 2, "block": 3}
_ECCN = re.compile(r"\b\d[A-E]\d{3}(?:\.[a-z0-9]+)*", re.IGNORECASE)


def party_key(name: str, country: str) -> tuple[str, str]:
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split()), country


@dataclass(frozen=True)
class OrderParty:
    """One party of the order, with every role it is named in."""

    name: str
    country: str
    roles: tuple[str, ...]
    parties: tuple[Party, ...]

    @property
    def role(self) -> str:
        return self.roles[0]

    @property
    def label(self) -> str:
        return f"{'/'.join(self.roles)} {self.name!r}"

    @property
    def supplier_only(self) -> bool:
        return self.roles == ("supplier",)


def collapse(order: SubmittedOrder) -> list[OrderParty]:
    found: dict[tuple[str, str], list[Party]] = {}
    for party in order.parties:
        found.setdefault(party_key(party.name, party.country), []).append(party)
    return [
        OrderParty(
            name=named[0].name,
            country=named[0].country,
            roles=tuple(dict.fromkeys(p.role for p in named)),
            parties=tuple(named),
        )
        for named in found.values()
    ]


# --- embargoes (Country Groups E:1/E:2, Part 746) -----------------------------------------------


def part746_evidence(entry: Part746Destination) -> dict[str, Any]:
    return {
        "destination": entry.destination,
        "restriction_type": entry.restriction_type,
        "ear_sections": entry.ear_sections,
        "note": entry.note,
    }


def embargo_reasons(
    order: SubmittedOrder, parties: Sequence[OrderParty], refdata: ReferenceData, policy: RiskPolicy
) -> list[Reason]:
    """One reason per embargoed country: the destination and every party in it."""
    countries: dict[str, list[OrderParty]] = {order.destination_country: []}
    for party in parties:
        countries.setdefault(party.country, []).append(party)
    reasons: list[Reason] = []
    for iso2, in_country in countries.items():
        profile = refdata.profile(iso2)
        groups = embargo_groups(profile, policy)
        if not groups:
            continue
        destination = iso2 == order.destination_country
        who = ["destination"] if destination else []
        who += [p.label for p in in_country]
        sections = "; ".join(e.ear_sections for e in profile.part746) or "15 CFR Part 746"
        reasons.append(
            Reason(
                code="EMBARGOED_DESTINATION",
                severity=REASON_SEVERITY["EMBARGOED_DESTINATION"],
                message=(
                    f"{', '.join(who)} in {profile.label}, Country Group {', '.join(groups)} "
                    f"(15 CFR 740 Supp. 1): embargoed destination under {sections}"
                ),
                party_role=None if destination else in_country[0].role,
                evidence={
                    "country": iso2,
                    "destination": destination,
                    "parties": [{"name": p.name, "roles": list(p.roles)} for p in in_country],
                    "chart_row": profile.row_iso2,
                    "inheritance": profile.inheritance.basis if profile.inheritance else None,
                    "country_groups": sorted(profile.groups),
                    "embargo_country_groups": list(policy.embargo_country_groups),
                    "regulation": f"15 CFR 740 Supp. 1; {sections}",
                    "part_746": [part746_evidence(e) for e in profile.part746],
                    "chart_pointer": profile.chart.embargo_pointer if profile.chart else None,
                    "data_versions": {
                        "country_groups": refdata.versions["country_groups"],
                        "embargoed_destinations": refdata.versions["embargoed_destinations"],
                    },
                },
            )
        )
    return reasons


# --- the occupied regions of Ukraine (15 CFR 746.6) ---------------------------------------------


def _region_of(
    party: Party, rules: Sequence[RegionRule], read_in: Sequence[str]
) -> tuple[RegionRule, dict[str, Any]] | None:
    if party.subdivision is not None:
        for rule in rules:
            if party.subdivision in rule.subdivisions:
                return rule, {"subdivision": party.subdivision}
        return None
    if party.country not in read_in:
        return None
    text = ", ".join(part for part in (party.address, party.city) if part)
    for rule in sorted(rules, key=lambda r: r.effect != "block"):
        hits = find_terms(rule.pattern, text)
        if hits.found:
            return rule, {"address_read": text, "matched_terms": list(hits.found)}
    return None


def region_reasons(parties: Sequence[OrderParty], policy: RiskPolicy) -> list[Reason]:
    """A party in a covered region: BLOCK (746.6); in a partly occupied oblast: HOLD for review."""
    reasons: list[Reason] = []
    for party in parties:
        found: dict[str, tuple[RegionRule, dict[str, Any]]] = {}
        for named in party.parties:
            region = _region_of(named, policy.regions, policy.region_address_countries)
            if region is not None:
                found.setdefault(region[0].id, region)
        for rule, how in found.values():
            code = "EMBARGOED_REGION" if rule.effect == "block" else "REGION_REVIEW"
            read = (
                f"its subdivision {how['subdivision']}"
                if "subdivision" in how
                else f"its address {how['address_read']!r} names {', '.join(how['matched_terms'])}"
            )
            outcome = (
                "a comprehensive embargo: a licence is required for every item subject to the EAR other than "
                "food and medicine designated EAR99"
                if rule.effect == "block"
                else "partly occupied: a person confirms where the party is before anything ships"
            )
            reasons.append(
                Reason(
                    code=code,
                    severity=REASON_SEVERITY[code],
                    message=f"{party.label} is in the {rule.name} by {read} ({rule.cite}): {outcome}",
                    party_role=party.role,
                    evidence={
                        "party_name": party.name,
                        "roles": list(party.roles),
                        "country": party.country,
                        "region": rule.id,
                        "region_name": rule.name,
                        "regulation": rule.cite,
                        "policy_key": f"regions.rules[{rule.id}]",
                        **how,
                    },
                )
            )
    return reasons


# --- screening: per party, per code -------------------------------------------------------------


@dataclass(frozen=True)
class ListingScope:
    """Which items a licence-list entry's own licence requirement reaches."""

    kind: str  # all | part744_supp2 | ccl | ccl_and_supp7 | eccns
    eccns: tuple[str, ...] = ()
    note: str = ""


def listing_scope(requirement: str | None) -> ListingScope:
    """The Entity List / MEU licence requirement as the CSL writes it."""
    if not requirement:
        return ListingScope(
            "all", note="the listing's licence requirement is not in the evidence: all items assumed"
        )
    text = " ".join(requirement.lower().split())
    if "supplement no. 2 to part 744" in text:
        return ListingScope("part744_supp2")
    if text.startswith("for items on the ccl"):
        kind = "ccl_and_supp7" if "supplement no. 7 to part 746" in text else "ccl"
        return ListingScope(kind)
    if "all items subject to the ear" in text:
        return ListingScope("all")
    named = tuple(dict.fromkeys(m.upper()[:5] + m[5:] for m in _ECCN.findall(requirement)))
    if named:
        return ListingScope("eccns", named)
    return ListingScope("all", note=f"licence requirement {requirement!r} not understood: all items assumed")


def line_in_scope(
    scope: ListingScope,
    line: LineClassification,
    refdata: ReferenceData,
    in_supp7: Callable[[int], bool | None],
) -> bool:
    """Whether a listing with this scope needs a licence for the line (unknown lines: yes)."""
    if scope.kind == "all" or line.status in {"unclassified", "invalid"}:
        return True
    eccn = (line.eccn or "").upper()
    if scope.kind == "part744_supp2":
        return line.status == "classified" and eccn[:5] in refdata.part744_supp2
    if scope.kind == "eccns":
        return line.status == "classified" and any(
            eccn.lower() == e.lower()
            or eccn.lower().startswith(e.lower() + ".")
            or e.lower().startswith(eccn.lower() + ".")
            for e in scope.eccns
        )
    if line.status in {"classified", "itar"}:
        return True
    # EAR99: only the EAR99 items of Supplement No. 7 to Part 746 (unknown while it is not loaded).
    return scope.kind == "ccl_and_supp7" and in_supp7(line.line_no) is not False


@dataclass(frozen=True)
class ScreeningOutcome:
    reasons: list[Reason]
    # Confirmed licence-list matches whose licence requirement reaches none of the order's lines.
    out_of_scope: list[dict[str, Any]]


def _code(match: PartyMatch, party: OrderParty, policy: RiskPolicy) -> str:
    confirmed = match.score >= policy.block_threshold
    if confirmed and match.effect == "block":
        return "DENIED_PARTY"
    if confirmed and match.effect == "licence" and not party.supplier_only:
        return "RESTRICTED_PARTY"
    return "POTENTIAL_MATCH"


def _match_evidence(match: PartyMatch, policy: RiskPolicy, code: str) -> dict[str, Any]:
    return {
        "code": code,
        "list_id": match.list_id,
        "list_name": match.list_name,
        "list_version": match.list_version,
        "list_effect": match.effect,
        "list_rationale": policy.list_rationale.get(match.list_id) or None,
        "entry_id": match.entry_id,
        "entry_name": match.entry_name,
        "entry_version": match.entry_version,
        "matched_name": match.matched_name,
        "matched_alias": match.matched_alias,
        "score": match.score,
        "country_agreement": match.evidence.country_agreement,
        "entry_countries": match.evidence.entry_countries,
        "programs": match.evidence.programs,
        "license_requirement": match.evidence.license_requirement,
        "license_policy": match.evidence.license_policy,
        "federal_register_notice": match.evidence.federal_register_notice,
        "start_date": match.evidence.start_date,
    }


def _party_matches(party: OrderParty, screened: Sequence[PartyScreening]) -> list[PartyMatch]:
    key = party_key(party.name, party.country)
    best: dict[tuple[str, str], PartyMatch] = {}
    for ps in screened:
        if party_key(ps.name, ps.country) != key:
            continue
        for match in ps.matches:
            known = best.get((match.list_id, match.entry_id))
            if known is None or match.score > known.score:
                best[(match.list_id, match.entry_id)] = match
    return sorted(best.values(), key=lambda m: (-m.score, m.list_id, m.entry_id))


def _describe(match: PartyMatch, code: str, policy: RiskPolicy) -> str:
    if code == "POTENTIAL_MATCH" and match.effect == "review":
        rule = f"list effect 'review' (score {match.score:.2f})"
    elif code == "POTENTIAL_MATCH" and match.score >= policy.block_threshold:
        rule = f"score {match.score:.2f}; a supplier receives no export: reviewed for responsible sourcing"
    elif code == "POTENTIAL_MATCH":
        rule = (
            f"score {match.score:.2f} below the block threshold {policy.block_threshold:.2f} "
            f"(review threshold {policy.review_threshold:.2f})"
        )
    else:
        rule = f"score {match.score:.2f} >= block threshold {policy.block_threshold:.2f}"
    alias = " (alias)" if match.matched_alias else ""
    why = policy.list_rationale.get(match.list_id, "")
    text = (
        f"{match.list_id} entry {match.entry_id} {match.entry_name!r} as {match.matched_name!r}{alias}: {rule}; "
        f"list version {match.list_version}"
    )
    return f"{text} — {why}" if why else text


def screening_reasons(
    parties: Sequence[OrderParty],
    screening: Screening,
    policy: RiskPolicy,
    scope_check: Callable[[ListingScope], list[int]],
) -> ScreeningOutcome:
    """Every reported match is evidence; at most one reason per code and party."""
    reasons: list[Reason] = []
    out_of_scope: list[dict[str, Any]] = []
    for party in parties:
        by_code: dict[str, list[tuple[PartyMatch, dict[str, Any]]]] = {}
        for match in _party_matches(party, screening.parties):
            code = _code(match, party, policy)
            evidence = _match_evidence(match, policy, code)
            if code == "RESTRICTED_PARTY":
                scope = listing_scope(match.evidence.license_requirement)
                lines = scope_check(scope)
                evidence.update(
                    scope=scope.kind, scope_eccns=list(scope.eccns), scope_note=scope.note or None
                )
                evidence["lines_in_scope"] = lines
                if not lines:
                    out_of_scope.append({"party_name": party.name, "roles": list(party.roles), **evidence})
                    continue
            by_code.setdefault(code, []).append((match, evidence))
        reasons.extend(_party_reasons(party, by_code, policy))
    return ScreeningOutcome(reasons, out_of_scope)


def _party_reasons(
    party: OrderParty, by_code: dict[str, list[tuple[PartyMatch, dict[str, Any]]]], policy: RiskPolicy
) -> list[Reason]:
    confirmed_rank = max(
        (
            _EFFECT_RANK[m.effect]
            for code in ("DENIED_PARTY", "RESTRICTED_PARTY")
            for m, _ in by_code.get(code, [])
        ),
        default=0,
    )
    candidates = by_code.pop("POTENTIAL_MATCH", [])
    weaker = [(m, e) for m, e in candidates if _EFFECT_RANK[m.effect] <= confirmed_rank]
    stronger = [(m, e) for m, e in candidates if _EFFECT_RANK[m.effect] > confirmed_rank]
    if stronger:
        by_code["POTENTIAL_MATCH"] = stronger
    reasons: list[Reason] = []
    for code in ("DENIED_PARTY", "RESTRICTED_PARTY", "POTENTIAL_MATCH"):
        found = by_code.get(code)
        if not found:
            continue
        first_evidence = found[0][1]
        entries = "; ".join(_describe(m, code, policy) for m, _ in found)
        evidence: dict[str, Any] = {
            **first_evidence,
            "party_name": party.name,
            "party_country": party.country,
            "roles": list(party.roles),
            "review_threshold": policy.review_threshold,
            "block_threshold": policy.block_threshold,
            "matches": [e for _, e in found],
        }
        if code != "POTENTIAL_MATCH" and weaker:
            evidence["weaker_candidates"] = [e for _, e in weaker]
        if code == "RESTRICTED_PARTY":
            evidence["regulation"] = "15 CFR 744.11 (Entity List), 744.21 (MEU List)"
        entries_word = "entries" if len(found) > 1 else "entry"
        reasons.append(
            Reason(
                code=code,
                severity=REASON_SEVERITY[code],
                message=f"{party.label} matches {len(found)} list {entries_word}: {entries}",
                party_role=party.role,
                evidence=evidence,
            )
        )
    return reasons
