"""Rules that are policy data (policy/policy.json), parsed and refused with the key at fault, and
the one way text is read for them: whole words, case-insensitively, negations set aside.

- `regions`: the occupied regions of Ukraine (15 CFR 746.6) by ISO 3166-2 subdivision and by the
  words of an address (Latin and Cyrillic spellings);
- `end_use_controls`: Part 744 end-use and end-user rules (744.2-744.4, 744.21, 744.22);
- `licence_exceptions`: Part 740 exceptions with their conditions, whether each may be
  self-applied, and the restrictions of 740.2 that bar them all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Words that, shortly before a term in the same clause, say the opposite: "not for military use",
# "no military end use", "non-military", "never for weapons", "without military application".
_NEGATION = re.compile(r"\b(?:not|no|non|never|without|excluding|except|nor)\b", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[.;:!?()\n]|\bbut\b", re.IGNORECASE)
_NEGATION_WINDOW_WORDS = 4


def term_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    """The terms as whole words (Latin or Cyrillic), longest first, case-insensitive."""
    words = sorted({t.strip() for t in terms if t.strip()}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)


def _negated(text: str, start: int) -> str | None:
    """The negation cue governing the term at `start`, if any: within the same clause and at most
    a few words before it ("not for military or nuclear use" negates both)."""
    before = text[:start]
    clause = _CLAUSE_END.split(before)[-1]
    words = re.findall(r"[\w'-]+", clause)[-_NEGATION_WINDOW_WORDS:]
    window = " ".join(words)
    if clause.rstrip().endswith("-") and re.search(r"\bnon-?$", clause.rstrip(), re.IGNORECASE):
        return "non-"
    found = _NEGATION.search(window)
    return found.group(0).lower() if found else None


@dataclass(frozen=True)
class TermHits:
    found: tuple[str, ...]
    negated: tuple[str, ...]


def find_terms(pattern: re.Pattern[str], text: str | None) -> TermHits:
    """The terms `text` names (case-folded, each once, sorted), and those it names only negated."""
    if not text:
        return TermHits((), ())
    found: set[str] = set()
    negated: set[str] = set()
    for match in pattern.finditer(text):
        term = match.group(1).casefold()
        cue = _negated(text, match.start())
        (negated if cue else found).add(term if not cue else f"{cue} … {term}")
    return TermHits(tuple(sorted(found)), tuple(sorted(negated)))


def _strings(value: Any, at: str, *, required: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{at} must be a list of non-empty strings")
    if required and not value:
        raise ValueError(f"{at} must not be empty")
    return tuple(v.strip() for v in value)


def _text(item: Mapping[str, Any], key: str, at: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{at}.{key} must be a non-empty string (got {value!r})")
    return value.strip()


# --- regions (15 CFR 746.6) -----------------------------------------------------------------------


@dataclass(frozen=True)
class RegionRule:
    id: str
    name: str
    effect: str  # "block" or "review"
    cite: str
    subdivisions: tuple[str, ...]
    terms: tuple[str, ...]

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        return term_pattern(self.terms)


def parse_regions(section: Mapping[str, Any], where: str) -> tuple[RegionRule, ...]:
    raw = section.get("rules", [])
    if not isinstance(raw, list):
        raise ValueError(f"{where}: regions.rules must be a list")
    _strings(section.get("read_addresses_in", []), f"{where}: regions.read_addresses_in")
    rules: list[RegionRule] = []
    for i, item in enumerate(raw):
        at = f"{where}: regions.rules[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{at} must be an object")
        effect = item.get("effect")
        if effect not in ("block", "review"):
            raise ValueError(f"{at}.effect must be 'block' or 'review' (got {effect!r})")
        subdivisions = _strings(item.get("subdivisions", []), f"{at}.subdivisions")
        bad = [s for s in subdivisions if not re.fullmatch(r"[A-Z]{2}-[A-Z0-9]{1,3}", s)]
        if bad:
            raise ValueError(f"{at}.subdivisions {bad} are not ISO 3166-2 codes")
        rules.append(
            RegionRule(
                id=_text(item, "id", at),
                name=_text(item, "name", at),
                effect=str(effect),
                cite=_text(item, "cite", at),
                subdivisions=subdivisions,
                terms=_strings(item.get("terms", []), f"{at}.terms", required=True),
            )
        )
    return tuple(rules)


# --- Part 744 end-use and end-user rules --------------------------------------------------------

ITEM_SCOPES = ("all", "part744_supp2")


@dataclass(frozen=True)
class EndUseRule:
    id: str
    section: str
    what: str
    countries: tuple[str, ...]
    items: str
    needs_end_use_statement: bool
    terms: tuple[str, ...]

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        return term_pattern(self.terms)

    def applies_to(self, iso2: str) -> bool:
        return "*" in self.countries or iso2 in self.countries


def parse_end_use_rules(section: Mapping[str, Any], where: str) -> tuple[EndUseRule, ...]:
    raw = section.get("rules", [])
    if not isinstance(raw, list):
        raise ValueError(f"{where}: end_use_controls.rules must be a list")
    rules: list[EndUseRule] = []
    for i, item in enumerate(raw):
        at = f"{where}: end_use_controls.rules[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{at} must be an object")
        items = item.get("items")
        if items not in ITEM_SCOPES:
            raise ValueError(f"{at}.items must be one of {list(ITEM_SCOPES)} (got {items!r})")
        needs = item.get("needs_end_use_statement", False)
        if not isinstance(needs, bool):
            raise ValueError(f"{at}.needs_end_use_statement must be true or false")
        rules.append(
            EndUseRule(
                id=_text(item, "id", at),
                section=_text(item, "section", at),
                what=_text(item, "what", at),
                countries=_strings(item.get("countries"), f"{at}.countries", required=True),
                items=str(items),
                needs_end_use_statement=needs,
                terms=_strings(item.get("terms", []), f"{at}.terms", required=True),
            )
        )
    return tuple(rules)


# --- licence exceptions (15 CFR Part 740) -------------------------------------------------------


@dataclass(frozen=True)
class ExceptionRule:
    symbol: str
    section: str
    listed: bool
    self_apply: bool
    country_groups: tuple[str, ...] = ()
    excluded_groups: tuple[str, ...] = ()
    ns_only: bool = False
    value_limit: bool = False
    eccn_prefixes: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    # For exceptions the CCL entry does not list (TMP, RPL): offered only when the end-use
    # statement names the transaction they are for.
    hint_terms: tuple[str, ...] = ()

    @functools.cached_property
    def hint_pattern(self) -> re.Pattern[str] | None:
        return term_pattern(self.hint_terms) if self.hint_terms else None


@dataclass(frozen=True)
class ExceptionRestriction:
    id: str
    cite: str
    why: str


RESTRICTION_IDS = ("party_match", "red_flag", "end_use", "part_746")


def _flag(item: Mapping[str, Any], key: str, at: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{at}.{key} must be true or false (got {value!r})")
    return value


def _exception(symbol: str, item: Any, at: str) -> ExceptionRule:
    if not re.fullmatch(r"[A-Z]{3}", symbol):
        raise ValueError(f"{at}: {symbol!r} is not a licence exception symbol (three capitals)")
    if not isinstance(item, dict):
        raise ValueError(f"{at} must be an object")
    if "self_apply" not in item:
        raise ValueError(f"{at}.self_apply must be stated (true or false)")
    return ExceptionRule(
        symbol=symbol,
        section=_text(item, "section", at),
        listed=_flag(item, "listed", at),
        self_apply=_flag(item, "self_apply", at),
        country_groups=_strings(item.get("country_groups", []), f"{at}.country_groups"),
        excluded_groups=_strings(item.get("excluded_groups", []), f"{at}.excluded_groups"),
        ns_only=_flag(item, "ns_only", at),
        value_limit=_flag(item, "value_limit", at),
        eccn_prefixes=_strings(item.get("eccn_prefixes", []), f"{at}.eccn_prefixes"),
        conditions=_strings(item.get("conditions", []), f"{at}.conditions"),
        facts=_strings(item.get("facts", []), f"{at}.facts"),
        hint_terms=_strings(item.get("hint_terms", []), f"{at}.hint_terms"),
    )


def parse_exceptions(
    section: Mapping[str, Any], where: str
) -> tuple[dict[str, ExceptionRule], dict[str, ExceptionRestriction]]:
    raw = section.get("exceptions", {})
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: licence_exceptions.exceptions must be an object of symbol -> rule")
    rules = {
        symbol: _exception(symbol, item, f"{where}: licence_exceptions.exceptions.{symbol}")
        for symbol, item in raw.items()
    }
    restrictions: dict[str, ExceptionRestriction] = {}
    listed = section.get("restrictions", [])
    if not isinstance(listed, list):
        raise ValueError(f"{where}: licence_exceptions.restrictions must be a list")
    for i, item in enumerate(listed):
        at = f"{where}: licence_exceptions.restrictions[{i}]"
        if not isinstance(item, dict) or item.get("id") not in RESTRICTION_IDS:
            raise ValueError(f"{at}.id must be one of {list(RESTRICTION_IDS)}")
        restrictions[str(item["id"])] = ExceptionRestriction(
            id=str(item["id"]), cite=_text(item, "cite", at), why=_text(item, "why", at)
        )
    missing = [r for r in RESTRICTION_IDS if r not in restrictions]
    if missing:
        # 740.2 bars every exception in these cases; the policy may word them, not drop them.
        raise ValueError(f"{where}: licence_exceptions.restrictions lacks {missing} (15 CFR 740.2)")
    return rules, restrictions
