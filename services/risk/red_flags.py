""" "Know Your Customer" red flags (15 CFR Part 732, Supplement No. 3) as policy-driven rules.

A red flag is not a prohibition: it is a duty to inquire before proceeding (Supp. 3 (a)(2)), so
every red flag is a HOLD for a person to resolve. Which circumstances count, the words that signal
them and their scores are data in the policy file (`red_flags.rules`), so a compliance officer
can tune them; this module only knows the kinds of evidence an order event can carry.

Kinds of rule:
- `end_use_terms`: the stated end use names a sensitive activity (military, nuclear, missile,
  weapons; cf. 744.2-744.4, 744.21) — matched as whole words, case-insensitively.
- `end_use_undisclosed`: a line is on the Commerce Control List and the end use the customer gave
  is only a placeholder such as "unknown" (red flag 1: reluctance to offer information about the
  end use). A missing `end_use` is not flagged: the field is optional in the contract, and its
  absence says nothing about the customer.
- `forwarder_as_consignee`: the ultimate consignee is a freight forwarder (red flag 9), by name
  equal to a `freight_forwarder` party's or by a forwarding term in its name.
- `routing`: the route does not fit (red flag 10): a transit country in one of the rule's Country
  Groups, or an ultimate consignee located outside the destination country.
- `payment_terms`: payment terms that do not fit (red flag 5: e.g. cash for an expensive item).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.events import Classification, Reason, SubmittedOrder


@dataclass(frozen=True)
class RedFlagRule:
    code: str
    kind: str
    score: int
    cite: str
    why: str
    terms: tuple[str, ...] = ()
    country_groups: tuple[str, ...] = ()

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """Built once per rule, not per order: the terms as whole words, longest first."""
        words = sorted(self.terms, key=len, reverse=True)
        return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


def parse_rules(section: Mapping[str, Any], where: str) -> tuple[RedFlagRule, ...]:
    """The `red_flags` policy section, refused at startup when a rule is incomplete."""
    raw = section.get("rules", [])
    if not isinstance(raw, list):
        raise ValueError(f"{where}: red_flags.rules must be a list")
    rules: list[RedFlagRule] = []
    for i, item in enumerate(raw):
        at = f"{where}: red_flags.rules[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{at} must be an object")
        code, kind, score = item.get("code"), item.get("kind"), item.get("score")
        if not isinstance(code, str) or not code.startswith("RED_FLAG_"):
            raise ValueError(f"{at}.code must start with 'RED_FLAG_' (got {code!r})")
        if kind not in KINDS:
            raise ValueError(f"{at}.kind {kind!r} is not one of {list(KINDS)}")
        if type(score) is not int or not 0 <= score <= 100:
            raise ValueError(f"{at}.score must be an integer 0-100 (got {score!r})")
        terms = item.get("terms", [])
        groups = item.get("country_groups", [])
        if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
            raise ValueError(f"{at}.terms must be a list of non-empty strings")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError(f"{at}.country_groups must be a list of Country Group names")
        if kind in {"end_use_terms", "payment_terms"} and not terms:
            raise ValueError(f"{at}: kind {kind!r} needs terms")
        rules.append(
            RedFlagRule(
                code=code,
                kind=str(kind),
                score=score,
                cite=str(item.get("cite", "15 CFR Part 732, Supp. 3")),
                why=str(item.get("why", "")),
                terms=tuple(t.strip() for t in terms),
                country_groups=tuple(groups),
            )
        )
    return tuple(rules)


def red_flag_reasons(
    order: SubmittedOrder,
    classification: Classification,
    rules: Sequence[RedFlagRule],
    country_groups: Callable[[str], Sequence[str]],
) -> list[Reason]:
    """Every red flag the order raises, in rule order; `country_groups(iso2)` is the reference data."""
    reasons: list[Reason] = []
    for rule in rules:
        evidence = _CHECKS[rule.kind](order, classification, rule, country_groups)
        if evidence is None:
            continue
        reasons.append(
            Reason(
                code=rule.code,
                severity="HOLD",
                message=f"{evidence.pop('finding')} — a red flag under {rule.cite}: inquire before proceeding",
                party_role=evidence.pop("party_role", None),
                evidence={
                    **evidence,
                    "rule": rule.code,
                    "kind": rule.kind,
                    "regulation": rule.cite,
                    "why": rule.why,
                },
            )
        )
    return reasons


Evidence = dict[str, Any] | None


def _terms(rule: RedFlagRule, text: str | None) -> list[str]:
    """The rule's terms `text` names, case-folded, each once, sorted."""
    return sorted({m.group(1).casefold() for m in rule.pattern.finditer(text)}) if text else []


def _end_use_terms(order: SubmittedOrder, _c: Classification, rule: RedFlagRule, _g: Any) -> Evidence:
    found = _terms(rule, order.end_use)
    if not found:
        return None
    return {
        "finding": f"the stated end use names {', '.join(repr(t) for t in found)}",
        "end_use": order.end_use,
        "matched_terms": found,
    }


def _end_use_undisclosed(
    order: SubmittedOrder, classification: Classification, rule: RedFlagRule, _g: Any
) -> Evidence:
    listed = [c for c in classification.lines if c.status in {"classified", "itar"}]
    if not listed:
        return None
    stated = (order.end_use or "").strip()
    if not stated or stated.casefold() not in {t.casefold() for t in rule.terms}:
        return None
    return {
        "finding": f"the end use is only a placeholder ({stated!r}) for an order with controlled items "
        f"({', '.join(f'line {c.line_no}: {c.eccn}' for c in listed)})",
        "end_use": order.end_use,
        "controlled_lines": [c.line_no for c in listed],
    }


def _forwarder_as_consignee(
    order: SubmittedOrder, _c: Classification, rule: RedFlagRule, _g: Any
) -> Evidence:
    consignee = order.party("ultimate_consignee")
    if consignee is None:
        return None
    forwarders = {p.name.casefold() for p in order.parties if p.role == "freight_forwarder"}
    if consignee.name.casefold() in forwarders:
        return {
            "finding": f"the ultimate consignee {consignee.name!r} is also the order's freight forwarder",
            "party_role": "ultimate_consignee",
            "consignee": consignee.name,
        }
    found = _terms(rule, consignee.name) if rule.terms else []
    if found:
        return {
            "finding": f"the ultimate consignee {consignee.name!r} looks like a forwarding firm ({', '.join(found)})",
            "party_role": "ultimate_consignee",
            "consignee": consignee.name,
            "matched_terms": found,
        }
    return None


def _routing(
    order: SubmittedOrder,
    _c: Classification,
    rule: RedFlagRule,
    country_groups: Callable[[str], Sequence[str]],
) -> Evidence:
    findings: list[str] = []
    evidence: dict[str, Any] = {}
    wanted = set(rule.country_groups)
    transit_hits = {
        iso2: sorted(wanted & set(country_groups(iso2))) for iso2 in (order.transit_countries or [])
    }
    transit_hits = {k: v for k, v in transit_hits.items() if v}
    if transit_hits:
        findings.append(
            "transit through "
            + ", ".join(f"{iso2} (Country Group {'/'.join(g)})" for iso2, g in transit_hits.items())
        )
        evidence["transit_countries"] = transit_hits
    consignee = order.party("ultimate_consignee")
    if consignee is not None and consignee.country != order.destination_country:
        findings.append(
            f"the ultimate consignee is in {consignee.country}, not in the destination {order.destination_country}"
        )
        evidence["ultimate_consignee_country"] = consignee.country
        evidence["destination_country"] = order.destination_country
    if not findings:
        return None
    return {"finding": "the route does not fit: " + "; ".join(findings), **evidence}


def _payment_terms(order: SubmittedOrder, _c: Classification, rule: RedFlagRule, _g: Any) -> Evidence:
    found = _terms(rule, order.payment_terms)
    if not found:
        return None
    return {
        "finding": f"the payment terms {order.payment_terms!r} name {', '.join(repr(t) for t in found)}",
        "payment_terms": order.payment_terms,
        "matched_terms": found,
    }


_CHECKS: dict[str, Callable[..., Evidence]] = {
    "end_use_terms": _end_use_terms,
    "end_use_undisclosed": _end_use_undisclosed,
    "forwarder_as_consignee": _forwarder_as_consignee,
    "routing": _routing,
    "payment_terms": _payment_terms,
}
KINDS = tuple(_CHECKS)
