"""Licence exceptions (15 CFR Part 740) per line, with their conditions from the policy.

An exception is offered as "eligible, subject to ..." when the line's ECCN lists it (list-based
ones) without paragraph conditions the line may not meet, every country that needs the licence is
in its Country Groups and none in its excluded ones, only NS columns are marked where it covers NS
only, the line's value is within the entry's LVS value (per shipment), and the ECCN is one it
covers. The conditions the order cannot show are its `facts_missing`. The restrictions of 740.2
(a party on a list, a red flag, a Part 744 requirement, a Part 746 requirement) bar every exception.
A line is released under an exception only when the policy lets the company apply that exception
itself (`self_apply`) and no fact is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from services.risk.reference import CheckedCountry, ReferenceData
from services.risk.rules import ExceptionRestriction, ExceptionRule, find_terms
from shared.events import LineClassification, OrderLine

_EXCEPTION_ENTRY = re.compile(r"^\s*([A-Z]{3})\b\s*:?\s*(.*)$", re.DOTALL)
_UNCONDITIONAL_TERMS = re.compile(r"^(?:yes|\$\s?[\d,]+)\.?$", re.IGNORECASE)
_AMOUNT = re.compile(r"\$\s?([\d,]+(?:\.\d+)?)")
CAUTION = "eligible, subject to its conditions in 15 CFR Part 740 (and the restrictions of 740.2)"


@dataclass(frozen=True)
class Requirement:
    """One country that needs a licence for the line, and the chart columns marked for it."""

    country: CheckedCountry
    columns_marked: tuple[str, ...]


@dataclass(frozen=True)
class ExceptionOutcome:
    offered: list[dict[str, Any]]
    not_offered: list[dict[str, Any]]

    @property
    def self_applied(self) -> dict[str, Any] | None:
        return next((o for o in self.offered if o["self_apply"] and not o["facts_missing"]), None)


def _candidates(
    classified: LineClassification, rules: dict[str, ExceptionRule], end_use: str | None
) -> list[tuple[str, str, str]]:
    """(symbol, the CCL's terms, the entry as given) for every exception to look at: those the
    entry lists, and those it need not list whose transaction the end-use statement names."""
    found: list[tuple[str, str, str]] = []
    for entry in classified.license_exceptions:
        parsed = _EXCEPTION_ENTRY.match(entry)
        symbol, inline = (parsed.group(1), parsed.group(2).strip()) if parsed else ("", entry)
        terms = inline or classified.license_exception_terms.get(symbol, "")
        found.append((symbol, terms, entry))
    listed = {symbol for symbol, _, _ in found}
    for symbol, rule in rules.items():
        hinted = rule.hint_pattern is not None and find_terms(rule.hint_pattern, end_use).found
        if not rule.listed and symbol not in listed and hinted:
            found.append((symbol, "", symbol))
    return found


def _line_value(line: OrderLine) -> Decimal | None:
    try:
        return Decimal(line.unit_price) * line.quantity
    except InvalidOperation:  # pragma: no cover - the contract validates the decimal
        return None


def _value_check(
    rule: ExceptionRule, terms: str, line: OrderLine, eccn: str, names: Callable[[str, str], bool]
) -> tuple[str | None, list[str], dict[str, Any]]:
    """(why not offered, facts missing, evidence) for the entry's LVS value against the line."""
    amount = _AMOUNT.search(terms)
    if not terms:
        return None, ["the entry's LVS value (the classification does not carry it)"], {}
    if amount is None:
        return f"the entry states no value limit ({terms!r})", [], {}
    limit = Decimal(amount.group(1).replace(",", ""))
    qualifier = terms[amount.end() :].strip()
    if qualifier.lower().startswith("for ") and not names(eccn, qualifier):
        return f"the value limit applies only {qualifier!r}", [], {}
    value = _line_value(line)
    evidence: dict[str, Any] = {
        "value_limit_usd": str(limit),
        "line_value": str(value),
        "currency": line.currency,
    }
    if line.currency != "USD":
        return None, [f"the line's value in USD (it is {value} {line.currency})"], evidence
    if value is not None and value > limit:
        return f"the line's value ${value} exceeds the entry's LVS value ${limit} per shipment", [], evidence
    return None, [], evidence


def _destination_check(rule: ExceptionRule, requirements: Sequence[Requirement]) -> str | None:
    if rule.country_groups:
        outside = [
            r.country.iso2 for r in requirements if not r.country.profile.groups & set(rule.country_groups)
        ]
        if outside:
            return f"{', '.join(outside)} not in Country Group {'/'.join(rule.country_groups)}"
    excluded = [r.country.iso2 for r in requirements if r.country.profile.groups & set(rule.excluded_groups)]
    if excluded:
        return f"{', '.join(excluded)} in Country Group {'/'.join(rule.excluded_groups)}"
    return None


def _not_offered(
    symbol: str,
    terms: str,
    rule: ExceptionRule,
    classified: LineClassification,
    requirements: Sequence[Requirement],
    names: Callable[[str, str], bool],
) -> str | None:
    eccn = classified.eccn or ""
    if terms.upper().startswith("N/A"):
        return "N/A for this ECCN"
    if rule.eccn_prefixes and not any(eccn.upper().startswith(p) for p in rule.eccn_prefixes):
        return f"covers {', '.join(rule.eccn_prefixes)} only"
    if symbol == "STA" and terms and names(eccn, terms):
        return f"the entry's STA exclusions name this item: {terms!r}"
    if (
        rule.listed
        and not rule.value_limit
        and symbol != "STA"
        and terms
        and not _UNCONDITIONAL_TERMS.match(terms)
    ):
        return "available only for some paragraphs or conditions of the ECCN; see the entry"
    marked = {c for r in requirements for c in r.columns_marked}
    if rule.ns_only and not all(c.startswith("NS") for c in marked):
        return (
            f"covers NS-only requirements; also marked: {sorted(c for c in marked if not c.startswith('NS'))}"
        )
    return _destination_check(rule, requirements)


def evaluate(
    line: OrderLine,
    classified: LineClassification,
    requirements: Sequence[Requirement],
    refdata: ReferenceData,
    rules: dict[str, ExceptionRule],
    barred: ExceptionRestriction | None,
    names: Callable[[str, str], bool],
    end_use: str | None = None,
) -> ExceptionOutcome:
    """The exceptions that may authorise the line, with their conditions, and those that may not."""
    candidates = _candidates(classified, rules, end_use)
    if barred is not None:
        barred_why = f"{barred.why} ({barred.cite})"
        return ExceptionOutcome([], [{"entry": entry, "why": barred_why} for _, _, entry in candidates])
    offered: list[dict[str, Any]] = []
    not_offered: list[dict[str, Any]] = []
    for symbol, terms, entry in candidates:
        rule = rules.get(symbol)
        if rule is None:
            not_offered.append(
                {"entry": entry, "why": "its conditions are not evaluated here; see 15 CFR Part 740"}
            )
            continue
        why = _not_offered(symbol, terms, rule, classified, requirements, names)
        facts: list[str] = list(rule.facts)
        value_evidence: dict[str, Any] = {}
        if why is None and rule.value_limit:
            why, more, value_evidence = _value_check(rule, terms, line, classified.eccn or "", names)
            facts += more
        if why is not None:
            not_offered.append({"entry": entry, "why": why, **value_evidence})
            continue
        info = refdata.license_exceptions.get(symbol)
        offered.append(
            {
                "symbol": symbol,
                "section": info.section if info else rule.section,
                "title": info.title if info else None,
                "condition": "; ".join(rule.conditions),
                "conditions": list(rule.conditions)
                + ([f"the CCL entry: {symbol}: {terms}"] if terms else []),
                "facts_missing": facts,
                "self_apply": rule.self_apply,
                "ccl_entry": entry,
                "policy_key": f"licence_exceptions.exceptions.{symbol}",
                "note": CAUTION,
                **value_evidence,
            }
        )
    return ExceptionOutcome(offered, not_offered)
