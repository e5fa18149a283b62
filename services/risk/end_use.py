"""Part 744 end-use and end-user rules (744.2-744.4, 744.21, 744.22) as the policy states them.

A rule reaches an order when one of its countries is the destination, the ultimate consignee's or
the end user's country, and one of the order's lines is in its item scope ("all" items subject to
the EAR, or the ECCNs of Supplement No. 2 to Part 744). Then:

- the stated end use names one of the rule's terms, not negated: that is knowledge of the end use
  (772.1), and a licence is required for the lines in scope (END_USE_LICENSE_REQUIRED);
- the rule turns on the end use and the order states none (`needs_end_use_statement`): the fact is
  missing, the order is held and the reason says which fact (END_USE_UNDETERMINED).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.risk.policy import REASON_SEVERITY, RiskPolicy
from services.risk.reference import ReferenceData
from services.risk.rules import EndUseRule, find_terms
from shared.events import Classification, LineClassification, Reason, SubmittedOrder

# 15 CFR 744.21, 744.22 and 744.2-744.4 reach the country of destination and of the parties that
# receive or use the item (the ultimate consignee, the end user); this is law, not policy.
END_USE_ROLES = ("ultimate_consignee", "end_user")


def _in_scope(rule: EndUseRule, line: LineClassification, refdata: ReferenceData) -> bool:
    if rule.items == "all":
        return True
    eccn = (line.eccn or "").upper()
    return line.status == "classified" and eccn[:5] in refdata.part744_supp2


def _countries(order: SubmittedOrder) -> list[str]:
    found = [order.destination_country]
    found += [p.country for p in order.parties if p.role in END_USE_ROLES]
    return list(dict.fromkeys(found))


def end_use_reasons(
    order: SubmittedOrder, classification: Classification, refdata: ReferenceData, policy: RiskPolicy
) -> list[Reason]:
    countries = _countries(order)
    reasons: list[Reason] = []
    for rule in policy.end_use_rules:
        reached = [c for c in countries if rule.applies_to(c)]
        lines = [c for c in classification.lines if _in_scope(rule, c, refdata)]
        if not reached or not lines:
            continue
        reason = _rule_reason(rule, order, reached, lines, refdata)
        if reason is not None:
            reasons.append(reason)
    return reasons


def _rule_reason(
    rule: EndUseRule,
    order: SubmittedOrder,
    reached: Sequence[str],
    lines: Sequence[LineClassification],
    refdata: ReferenceData,
) -> Reason | None:
    hits = find_terms(rule.pattern, order.end_use)
    evidence: dict[str, Any] = {
        "rule": rule.id,
        "regulation": rule.section,
        "policy_key": f"end_use_controls.rules[{rule.id}]",
        "countries": list(reached),
        "lines": [{"line_no": c.line_no, "eccn": c.eccn} for c in lines],
        "item_scope": rule.items,
        "end_use": order.end_use,
    }
    if rule.items == "part744_supp2":
        evidence["part744_supp2"] = {
            (c.eccn or "")[:5]: refdata.part744_supp2.get((c.eccn or "").upper()[:5]) for c in lines
        }
        evidence["data_version"] = refdata.versions.get("part744")
    lines_text = ", ".join(f"line {c.line_no} ({c.eccn})" for c in lines)
    if hits.found:
        evidence.update(matched_terms=list(hits.found), negated_mentions_set_aside=list(hits.negated))
        return Reason(
            code="END_USE_LICENSE_REQUIRED",
            severity=REASON_SEVERITY["END_USE_LICENSE_REQUIRED"],
            message=(
                f"The stated end use names {', '.join(repr(t) for t in hits.found)}: {rule.what} in or for "
                f"{', '.join(reached)} — a licence is required under {rule.section} for {lines_text}"
            ),
            evidence=evidence,
        )
    if rule.needs_end_use_statement and not (order.end_use or "").strip():
        evidence["missing_fact"] = "end_use"
        return Reason(
            code="END_USE_UNDETERMINED",
            severity=REASON_SEVERITY["END_USE_UNDETERMINED"],
            message=(
                f"{rule.section} turns on whether {lines_text} to {', '.join(reached)} are for {rule.what}; "
                "the order states no end use (field end_use) — obtain it before shipping"
            ),
            evidence=evidence,
        )
    return None
