"""The parts of the policy file the decision reads (`RiskPolicy`), and the reason codes it scores.

Thresholds, list effects, scores, red-flag rules, the regions read from addresses, the Part 744
end-use rules and the licence exceptions with their conditions are data in `policy/policy.json`,
versioned and stamped on every decision. This module refuses a policy that lacks any of them, at
start-up and on reload, with the key at fault (`risk.scores.X`, `regions.rules[2].effect`, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.risk.red_flags import RedFlagRule, parse_rules
from services.risk.reference import CountryProfile
from services.risk.rules import (
    EndUseRule,
    ExceptionRestriction,
    ExceptionRule,
    RegionRule,
    parse_end_use_rules,
    parse_exceptions,
    parse_regions,
)
from shared.events import DecisionCode
from shared.policy import Policy

# The decision table (docs/architecture.md, "Decision semantics"): which outcome each reason code
# is. This is the contract ERP integrators and auditors rely on, not a tuning: a code's severity
# changes only with the documented table (and the event catalogue), never by editing the policy.
# The policy scores the codes (risk.scores); it cannot make a BLOCK a RELEASE.
REASON_SEVERITY: Mapping[str, DecisionCode] = {
    "EMBARGOED_DESTINATION": "BLOCK",
    "EMBARGOED_REGION": "BLOCK",
    "DENIED_PARTY": "BLOCK",
    "RESTRICTED_PARTY": "LICENSE_REQUIRED",
    "POTENTIAL_MATCH": "HOLD",
    "LICENSE_REQUIRED": "LICENSE_REQUIRED",
    "END_USE_LICENSE_REQUIRED": "LICENSE_REQUIRED",
    "END_USE_UNDETERMINED": "HOLD",
    "PART_746_UNDETERMINED": "HOLD",
    "REGION_REVIEW": "HOLD",
    "UNCLASSIFIED_ITEM": "HOLD",
    "INVALID_ECCN": "HOLD",
    "ITAR_ITEM": "HOLD",
    "ECCN_DISCREPANCY": "HOLD",
    "UNKNOWN_DESTINATION_ROW": "HOLD",
    "NO_COUNTRY_CHART_COLUMN": "HOLD",
    # A line that needs a licence and is authorised: by a licence held (a ledger draw-down) or by a
    # licence exception the policy lets the company apply itself.
    "LICENSE_COVERED": "RELEASE",
    "LICENSE_EXCEPTION": "RELEASE",
}
RELEASE_CODE = "NO_LICENSE_REQUIRED"


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
    regions: tuple[RegionRule, ...] = ()
    region_address_countries: tuple[str, ...] = ()
    end_use_rules: tuple[EndUseRule, ...] = ()
    exceptions: Mapping[str, ExceptionRule] | None = None
    exception_restrictions: Mapping[str, ExceptionRestriction] | None = None

    @classmethod
    def from_policy(cls, policy: Policy) -> RiskPolicy:
        risk = policy.section("risk")
        screening = policy.section("screening")
        where = f"policy {policy.version}"
        groups = risk.get("embargo_country_groups")
        if not isinstance(groups, list) or not groups or not all(isinstance(g, str) for g in groups):
            raise ValueError(f"{where}: risk.embargo_country_groups must be a non-empty list of group names")
        scores = _scores(risk.get("scores"), where)
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
        red_flags = parse_rules(_object(policy.content, "red_flags", where), where)
        regions_section = _object(policy.content, "regions", where)
        exceptions, restrictions = parse_exceptions(
            _object(policy.content, "licence_exceptions", where), where
        )
        return cls(
            version=policy.version,
            embargo_country_groups=tuple(groups),
            scores={**scores, **{rule.code: rule.score for rule in red_flags}},
            red_flags=red_flags,
            additional_reason_increment=increment,
            review_threshold=float(review),
            block_threshold=float(block),
            list_rationale=rationale,
            regions=parse_regions(regions_section, where),
            region_address_countries=tuple(regions_section.get("read_addresses_in", [])),
            end_use_rules=parse_end_use_rules(_object(policy.content, "end_use_controls", where), where),
            exceptions=exceptions,
            exception_restrictions=restrictions,
        )


def _object(content: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = content.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {key} must be an object")
    return value


def _scores(scores: Any, where: str) -> dict[str, int]:
    if not isinstance(scores, dict):
        raise ValueError(f"{where}: risk.scores must be an object of reason code -> score")
    missing = sorted(set(REASON_SEVERITY) - set(scores))
    if missing:
        raise ValueError(f"{where}: risk.scores has no score for reason codes {missing}")
    bad = {code: v for code, v in scores.items() if type(v) is not int or not 0 <= v <= 100}
    if bad:
        raise ValueError(f"{where}: risk.scores must be integers 0-100, got {bad}")
    released = {c: scores[c] for c, s in REASON_SEVERITY.items() if s == "RELEASE" and scores[c] != 0}
    if released:
        raise ValueError(f"{where}: risk.scores of release reasons must be 0, got {released}")
    return dict(scores)


def embargo_groups(profile: CountryProfile, policy: RiskPolicy) -> list[str]:
    """The policy's embargo Country Groups (E:1/E:2, 15 CFR 740 Supp. 1) the country is in."""
    return [g for g in policy.embargo_country_groups if g in profile.groups]
