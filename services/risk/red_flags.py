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
- `no_end_user`: a controlled item, and neither an end user nor an ultimate consignee is named while
  the order goes through an intermediary (forwarder, intermediate consignee, purchasing agent) or a
  buyer whose name says it is a distributor (red flag 21: the ultimate user is uncertain).
- `buyer_country`: the buyer is in another country than the destination and no intermediate
  consignee explains the route (red flags 2 and 10).
- `human_rights`: a crime-control (CC) or surveillance item outside the rule's exempt Country
  Groups (742.7(b): the licence policy weighs human rights).

Terms are read with `rules.find_terms`: whole words, and a negated or hedged mention ("not for
military use", "non-military") is not a hit; the evidence says which mentions were set aside.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.risk.rules import find_terms, term_pattern
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
    reasons_for_control: tuple[str, ...] = ()
    eccns: tuple[str, ...] = ()
    except_country_groups: tuple[str, ...] = ()

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """Built once per rule, not per order: the terms as whole words, longest first."""
        return term_pattern(self.terms)


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
        lists = {key: _string_list(item, key, at) for key in _LIST_KEYS}
        if kind in {"end_use_terms", "payment_terms"} and not lists["terms"]:
            raise ValueError(f"{at}: kind {kind!r} needs terms")
        if kind == "human_rights" and not (lists["reasons_for_control"] or lists["eccns"]):
            raise ValueError(f"{at}: kind 'human_rights' needs reasons_for_control or eccns")
        rules.append(
            RedFlagRule(
                code=code,
                kind=str(kind),
                score=score,
                cite=str(item.get("cite", "15 CFR Part 732, Supp. 3")),
                why=str(item.get("why", "")),
                **lists,
            )
        )
    return tuple(rules)


_LIST_KEYS = ("terms", "country_groups", "reasons_for_control", "eccns", "except_country_groups")


def _string_list(item: Mapping[str, Any], key: str, at: str) -> tuple[str, ...]:
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{at}.{key} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


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
    """The rule's terms `text` names (not negated), case-folded, each once, sorted."""
    return list(find_terms(rule.pattern, text).found)


def _end_use_terms(order: SubmittedOrder, _c: Classification, rule: RedFlagRule, _g: Any) -> Evidence:
    hits = find_terms(rule.pattern, order.end_use)
    if not hits.found:
        return None
    return {
        "finding": f"the stated end use names {', '.join(repr(t) for t in hits.found)}",
        "end_use": order.end_use,
        "matched_terms": list(hits.found),
        "negated_mentions_set_aside": list(hits.negated),
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


_INTERMEDIARIES = ("freight_forwarder", "intermediate_consignee", "purchaser_agent")


def _no_end_user(
    order: SubmittedOrder, classification: Classification, rule: RedFlagRule, _g: Any
) -> Evidence:
    controlled = [c for c in classification.lines if c.status in {"classified", "itar"}]
    roles = {p.role for p in order.parties}
    if not controlled or roles & {"end_user", "ultimate_consignee"}:
        return None
    intermediaries = sorted(roles & set(_INTERMEDIARIES))
    buyer = order.party("buyer")
    distributor = _terms(rule, buyer.name) if buyer is not None and rule.terms else []
    if not intermediaries and not distributor:
        return None
    why = (
        f"the order goes through {', '.join(intermediaries)}"
        if intermediaries
        else f"the buyer {buyer.name if buyer else ''!r} names itself {', '.join(distributor)}"
    )
    return {
        "finding": f"no end user or ultimate consignee is named for controlled items "
        f"({', '.join(f'line {c.line_no}: {c.eccn}' for c in controlled)}) and {why}",
        "party_role": "buyer",
        "controlled_lines": [c.line_no for c in controlled],
        "intermediaries": intermediaries,
        "matched_terms": distributor,
    }


def _buyer_country(order: SubmittedOrder, _c: Classification, _r: RedFlagRule, _g: Any) -> Evidence:
    buyer = order.party("buyer")
    if buyer is None or buyer.country == order.destination_country:
        return None
    if order.party("intermediate_consignee") is not None:
        return None
    return {
        "finding": f"the buyer {buyer.name!r} is in {buyer.country}, the destination is "
        f"{order.destination_country}, and no intermediate consignee is named",
        "party_role": "buyer",
        "buyer_country": buyer.country,
        "destination_country": order.destination_country,
    }


def _human_rights(
    order: SubmittedOrder,
    classification: Classification,
    rule: RedFlagRule,
    country_groups: Callable[[str], Sequence[str]],
) -> Evidence:
    exempt = set(rule.except_country_groups) & set(country_groups(order.destination_country))
    if exempt:
        return None
    lines = [
        c
        for c in classification.lines
        if c.status == "classified"
        and (
            set(c.reasons_for_control) & set(rule.reasons_for_control)
            or any(_eccn_within(c.eccn or "", e) or _eccn_within(e, c.eccn or "") for e in rule.eccns)
        )
    ]
    if not lines:
        return None
    return {
        "finding": f"crime-control or surveillance items "
        f"({', '.join(f'line {c.line_no}: {c.eccn}' for c in lines)}) to {order.destination_country}",
        "lines": [
            {"line_no": c.line_no, "eccn": c.eccn, "reasons_for_control": c.reasons_for_control}
            for c in lines
        ],
        "destination_country": order.destination_country,
        "exempt_country_groups": list(rule.except_country_groups),
    }


def _eccn_within(eccn: str, listed: str) -> bool:
    a, b = eccn.lower(), listed.lower()
    return bool(a) and (a == b or a.startswith(b + "."))


_CHECKS: dict[str, Callable[..., Evidence]] = {
    "end_use_terms": _end_use_terms,
    "end_use_undisclosed": _end_use_undisclosed,
    "forwarder_as_consignee": _forwarder_as_consignee,
    "routing": _routing,
    "payment_terms": _payment_terms,
    "no_end_user": _no_end_user,
    "buyer_country": _buyer_country,
    "human_rights": _human_rights,
}
KINDS = tuple(_CHECKS)
