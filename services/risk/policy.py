"""The parts of the policy file the decision reads (`RiskPolicy`), and the reason codes it scores.

Thresholds, list effects, scores and red-flag rules are data in `policy/policy.json`, versioned and
stamped on every decision; this module refuses, at start-up, a policy that lacks any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.risk.red_flags import RedFlagRule, parse_rules
from services.risk.reference import CountryProfile
from shared.events import DecisionCode
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


def embargo_groups(profile: CountryProfile, policy: RiskPolicy) -> list[str]:
    """The policy's embargo Country Groups (E:1/E:2, 15 CFR 740 Supp. 1) the country is in."""
    return [g for g in policy.embargo_country_groups if g in profile.groups]
