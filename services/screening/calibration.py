"""Calibrated evidence: a few general signals about a name match, weighed by coefficients fitted
offline on labelled tuning data (bench/screening/calibrate.py) and kept in the policy file.

The alignment (`scoring.align`) says how much of both names is the same; it does not say how much
that tells. A match on "Mohammed Ali" or on "Julia" is worth less than one on a rare surname; half
the party's name left unexplained, a company set against a person, or a country the entry is not
tied to say it may be someone else. Each signal below has one meaning and a value from 0 to 1; the
policy's coefficient for it is its contribution to the score per unit, in the score's own units, so
that a reviewer reads "world_common 0.82 -> -0.041" beside the name score and sees why the match
scores as it does (OFAC FAQ 5: compare the complete entry, not the name alone).

Coefficients come from a logistic regression of "this candidate is the listed party" on the name
score and these signals, divided by the name score's own coefficient (bench/screening/calibrate.py,
fitted on tuning data only; docs/benchmarks.md).

Pure functions; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import services.screening

SIGNALS: Final = (
    "offset",
    "query_unexplained",
    "listed_unexplained",
    "one_word",
    "world_common",
    "list_common",
    "slip",
    "common_slip",
    "country_agrees",
    "country_differs",
    "type_conflict",
    "vessel_conflict",
    "abjad",
    "query_distinct",
    "listed_distinct",
    "whole_rare",
    "short_shared",
)
"""The calibrated signals, each 0..1:
- `offset`: 1 for every match: what the fit adds to every name score (the alignment's own scale is
  hand-set; the fit moves it to where "the listed party" and "someone else" part best);
- `query_unexplained`: the share of the party's name (by weight) that no listed word explains;
- `listed_unexplained`: the share of the listed name (by weight) the party's name leaves out;
- `one_word`: the names share one informative word only (three letters or more, not generic);
- `world_common`: how common in the world the least common informative word the names share is (a
  first or last name's rank in the country where it is commonest: `rank_commonness`);
- `list_common`: how common on the lists that word is (0 for a word one listed name holds, 1 for
  the lists' commonest);
- `slip`: how far the least similar aligned pair is from equal (0 for the same spelling);
- `common_slip`: `slip` times how common the words of the least similar pair are, the party's or
  the listed one's, whichever is commoner, in the world or on the lists: one letter off a common
  name is often another name ("Jingjing" for "Mingjing", "Sajad" for "Samad": the party's word is a
  name of its own however rare the listed one is);
- `country_agrees` / `country_differs`: the party's country is / is not one the entry is tied to;
- `type_conflict`: the party's name says organisation (a legal form, "Group", "Bank") against a
  listed individual, or person (a title) against a listed entity;
- `vessel_conflict`: a vessel or aircraft entry against a party with words beyond its name or
  written as an organisation (an order's parties are never vessels);
- `abjad`: the share of the party's name written in Arabic script, compared through consonant
  skeletons: its short vowels are unknown, so its name score says less, either way, than one of
  Latin letters (`scoring.ABJAD_SIMILARITY` caps each word);
- `query_distinct` / `listed_distinct`: how distinctive on the lists the most distinctive
  informative word left unmatched is, on the party's side / the listed name's (its rarity there,
  1 - `list_common`: 1 for a word no listed name holds or one name holds, 0 for the lists'
  commonest; 0 when every informative word is matched). The unexplained shares weigh how much is
  left over; these say what: an added "Trading" or "Hossein" says little, an added "Wuhan" or
  "Raycus" that the party is another company sharing one listed word;
- `whole_rare`: the party's name holds every word of the listed one (nothing of it unexplained) and
  the most telling word they share is rare, in the world and on the lists (1 - the larger of
  `world_common` and `list_common`; 0 when anything listed is left out): "LLC RUSCHEMTRADE
  Petrovich" holds all of "LLC RUSCHEMTRADE", whose word no other party writes, and a word written
  beside a whole, rare listed name (a patronymic, a city, "Microelectronics") says less than one
  beside a part of it;
- `short_shared`: the informative words the names share hold four letters or fewer together (an
  acronym, "TCM", "PCF", "KAS") and the party's name holds more than they do: countless companies
  write the same three or four letters beside "Group" or "Bank"."""


@dataclass(frozen=True)
class Calibration:
    """The `screening.calibration` section of the policy: each signal's contribution per unit."""

    version: str = "none"
    coefficients: Mapping[str, float] = field(default_factory=dict)
    # A name score this far under the review threshold or less may be lifted to it by the evidence;
    # one further under never is (and the matcher does not look for it).
    lift: float = 0.0
    # Written by the fit, for the record: what it was fitted on and how.
    fitted_on: str = ""

    @classmethod
    def from_section(cls, policy_version: str, section: Any) -> Calibration:
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise ValueError(f"policy {policy_version}: screening.calibration must be an object")
        version = section.get("version")
        coefficients = section.get("coefficients")
        if not isinstance(version, str) or not version:
            raise ValueError(
                f"policy {policy_version}: screening.calibration.version={version!r} must be text"
            )
        if not isinstance(coefficients, Mapping):
            raise ValueError(f"policy {policy_version}: screening.calibration.coefficients must be an object")
        parsed: dict[str, float] = {}
        for name, value in coefficients.items():
            if name not in SIGNALS:
                raise ValueError(
                    f"policy {policy_version}: screening.calibration.coefficients.{name} is not a signal; "
                    f"known: {list(SIGNALS)}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(
                    f"policy {policy_version}: screening.calibration.coefficients.{name}={value!r} must be a number"
                )
            if abs(value) > 1:
                raise ValueError(
                    f"policy {policy_version}: screening.calibration.coefficients.{name}={value!r} must be "
                    "between -1 and 1 (a contribution in score units)"
                )
            parsed[str(name)] = float(value)
        lift = section.get("lift", 0.0)
        if isinstance(lift, bool) or not isinstance(lift, int | float) or not 0 <= lift <= 0.1:
            raise ValueError(
                f"policy {policy_version}: screening.calibration.lift={lift!r} must be a number from 0 to 0.1"
            )
        return cls(version, parsed, float(lift), str(section.get("fitted_on", "")))


# World commonness of a name word: its rank among first or last names in the country where it is
# commonest (names-dataset 3.3.1; bench/screening/name_ranks.py writes the table), in bands. A
# word outside the table is not known to be common.
RANK_HORIZON: Final = 20_000


def rank_commonness(rank: int) -> float:
    """1.0 for the commonest name of a country, falling with the logarithm of its rank to 0 at
    RANK_HORIZON: rank 10 is 0.77, 100 0.54, 1,000 0.30."""
    if rank <= 1:
        return 1.0
    return max(0.0, 1.0 - math.log(rank) / math.log(RANK_HORIZON))


@dataclass(frozen=True, slots=True)
class MatchFacts:
    """What the signals are read from: the alignment and the evidence beside it."""

    name_score: float
    pairs: Sequence[tuple[str, str, float]]
    query_unexplained: float
    listed_unexplained: float
    country_agreement: bool | None
    type_conflict: bool
    vessel_conflict: bool
    abjad: float = 0.0  # the share of the party's words written in Arabic script
    unmatched_query: Sequence[str] = ()
    unmatched_listed: Sequence[str] = ()


SHORT_SHARED: Final = 4
"""Letters the shared informative words hold together up to which they are read as an acronym."""


def informative(word: str, generic: Callable[[str], bool]) -> bool:
    return len(word) >= 3 and not generic(word)


def signals(
    facts: MatchFacts,
    world: Callable[[str], float],
    listed: Callable[[str], float],
    generic: Callable[[str], bool],
) -> dict[str, float]:
    """Each signal's value for one match (see SIGNALS): `world` and `listed` say how common a word
    is in the world and on the lists (0..1)."""
    shared = [word for _, text, _ in facts.pairs for word in text.split() if informative(word, generic)]
    # The most telling shared word decides how much the match says: the least common of them.
    if shared:
        telling = min(shared, key=lambda word: (max(world(word), listed(word)), word))
        world_common, list_common = world(telling), listed(telling)
    else:
        world_common = list_common = 1.0  # only short or generic words in common
    slipped = min(facts.pairs, key=lambda pair: pair[2], default=None)
    slip = 1.0 - slipped[2] if slipped is not None else 0.0
    # Both sides of the slipped pair: a party's "Jingjing" is a common name of its own, whatever
    # the listed "Mingjing" is.
    slipped_common = (
        max((max(world(word), listed(word)) for text in slipped[:2] for word in text.split()), default=0.0)
        if slipped is not None and slip > 0
        else 0.0
    )

    def distinct(words: Sequence[str]) -> float:
        return max((1.0 - listed(word) for word in words if informative(word, generic)), default=0.0)

    return {
        "offset": 1.0,
        "query_unexplained": facts.query_unexplained,
        "listed_unexplained": facts.listed_unexplained,
        "one_word": 1.0 if len(shared) <= 1 else 0.0,
        "world_common": world_common,
        "list_common": list_common,
        "slip": slip,
        "common_slip": slip * slipped_common,
        "country_agrees": 1.0 if facts.country_agreement is True else 0.0,
        "country_differs": 1.0 if facts.country_agreement is False else 0.0,
        "type_conflict": 1.0 if facts.type_conflict else 0.0,
        "vessel_conflict": 1.0 if facts.vessel_conflict else 0.0,
        "abjad": facts.abjad,
        "query_distinct": distinct(facts.unmatched_query),
        "listed_distinct": distinct(facts.unmatched_listed),
        "whole_rare": 1.0 - max(world_common, list_common)
        if shared and not facts.unmatched_listed and facts.listed_unexplained == 0
        else 0.0,
        "short_shared": 1.0
        if shared and sum(map(len, shared)) <= SHORT_SHARED and facts.query_unexplained > 0
        else 0.0,
    }


def list_commonness(idf: float | None) -> float:
    """How common a word is on the lists from its rarity there (`TokenIndex.weights`, 1/3 for the
    commonest, 1.0 for a word one name holds): 0..1; a word the lists do not hold is 0."""
    if idf is None:
        return 0.0
    return min(1.0, max(0.0, (1.0 - idf) * 1.5))


_RANKS: dict[str, int] = {}
# Beside the package's (never compiled) __init__: a module compiled with mypyc does not see its own
# source's path in `__file__`.
RANKS_FILE: Final = Path(str(services.screening.__file__)).resolve().parent / "name_ranks.txt"


def world_ranks(path: Path = RANKS_FILE) -> dict[str, int]:
    """The world commonness table (name_ranks.txt): each name's band, by the band's highest rank.
    Read once."""
    if not _RANKS and path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or "\t" not in line:
                continue
            band, words = line.split("\t", 1)
            rank = int(band)
            for word in words.split():
                _RANKS[word] = rank
    return _RANKS


def world_commonness(word: str, ranks: Mapping[str, int]) -> float:
    rank = ranks.get(word)
    return 0.0 if rank is None else rank_commonness(rank)


VESSEL_MARGIN: Final = 0.01
NEAR_EXACT: Final = 0.99
"""Only the same name scores 1.0; evidence lifts another name at most to this."""


def calibrated_score(
    name_score: float,
    values: Mapping[str, float],
    calibration: Calibration,
    review_threshold: float,
    exact_floor: float | None = None,
) -> tuple[float, list[tuple[str, float, float]]]:
    """The name score moved by each signal's contribution, and the contributions (signal, value,
    contribution), the non-zero ones. Evidence never makes a weak name a hit: a name under the
    review threshold by more than the calibration's `lift` is only ever lowered. The same name (1.0)
    without a type or vessel conflict stays at `exact_floor` at least (the block threshold, as the
    screener passes it; the review threshold when not given): a country mismatch or a common name
    is for the reviewer to weigh with the rest of the entry, not a reason to set an exact name
    aside. A vessel or aircraft conflict is not weighed but settled: an order's parties are never
    vessels, so the match stays under the review threshold (`not_a_vessel`, the rest of the way)."""
    contributions: list[tuple[str, float, float]] = []
    total = 0.0
    for name in SIGNALS:
        coefficient = calibration.coefficients.get(name, 0.0)
        value = values.get(name, 0.0)
        if coefficient and value:
            contribution = round(coefficient * value, 4)
            if contribution:
                contributions.append((name, round(value, 4), contribution))
                total += contribution
    if name_score < review_threshold - calibration.lift - 1e-9:
        total = min(total, 0.0)
    score = name_score + total
    if name_score < 1.0:
        score = min(score, NEAR_EXACT)
    score = min(1.0, max(0.0, score))
    if values.get("vessel_conflict") and score >= review_threshold:
        settled = round(review_threshold - VESSEL_MARGIN - score, 4)
        contributions.append(("not_a_vessel", 1.0, settled))
        score += settled
    if name_score >= 1.0 and not values.get("type_conflict") and not values.get("vessel_conflict"):
        score = max(score, review_threshold if exact_floor is None else max(exact_floor, review_threshold))
    return round(score, 4), contributions
