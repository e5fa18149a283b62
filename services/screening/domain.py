"""Restricted-party screening: the pure core.

Names from the lists and from orders are normalised the same way (`normalise`: transliteration,
legal forms set apart, titles dropped), candidates are retrieved from an inverted token index that
also knows typos, romanisation variants and Arabic-script skeletons (`index`), and each candidate is
scored 0..1 by one-to-one token alignment weighted by how rare each token is (`scoring`), with the
evidence a compliance officer needs to judge the hit: which tokens were aligned with which
similarity, which were left over, whether the party's country and address agree with the entry's,
and whether a company is set against a person or a vessel. The name score is then moved by the
calibrated signals (`calibration`), each contribution shown in the evidence. Thresholds, list
effects and the calibration's coefficients come from the policy file; nothing here does I/O.

The `Matcher` protocol is the seam for another matcher: `Screener` only needs `match()`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from services.screening.calibration import (
    Calibration,
    MatchFacts,
    calibrated_score,
    list_commonness,
    signals,
    world_commonness,
    world_ranks,
)
from services.screening.entries import EntryType, ListEntry, licence_terms
from services.screening.index import Match, Matcher, NameQuery, TokenIndex
from services.screening.normalise import (
    ABJAD_MARK,
    GENERIC_WORDS,
    ORGANISATION_WORDS,
    analyse_name,
    display_token,
    normalise_name,
)
from services.screening.scoring import (
    ADDRESS_NUDGE,
    NEAR_EXACT,
    NameScore,
    address_agreement,
    score_names,
    token_similarity,
    type_conflict,
)
from shared.events import (
    ListEffect,
    MatchEvidence,
    Party,
    PartyMatch,
    PartyScreening,
    ScoreContribution,
    ScreenedList,
    Screening,
    TokenPair,
)

__all__ = [
    "EntryType",
    "ListCatalog",
    "ListEntry",
    "ListInfo",
    "Match",
    "Matcher",
    "NameQuery",
    "NameScore",
    "Screener",
    "ScreeningPolicy",
    "SourceInfo",
    "TokenIndex",
    "analyse_name",
    "normalise_name",
    "score_names",
    "token_similarity",
]

LIST_EFFECTS: tuple[str, ...] = get_args(ListEffect)

# --- policy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreeningPolicy:
    """The `screening` section of policy/policy.json, checked once at startup."""

    version: str
    review_threshold: float
    block_threshold: float
    max_matches_per_party: int
    list_effects: Mapping[str, ListEffect]
    # Each calibrated signal's contribution to the score (services/screening/calibration.py).
    calibration: Calibration = field(default_factory=Calibration)

    @classmethod
    def from_section(cls, version: str, section: Mapping[str, Any]) -> ScreeningPolicy:
        review = section.get("review_threshold")
        block = section.get("block_threshold")
        limit = section.get("max_matches_per_party")
        effects = section.get("list_effects")
        if (
            not isinstance(review, int | float)
            or not isinstance(block, int | float)
            or not 0 < review <= block <= 1
        ):
            raise ValueError(
                f"policy {version}: screening.review_threshold={review!r} and block_threshold={block!r} "
                "must be numbers with 0 < review_threshold <= block_threshold <= 1"
            )
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(
                f"policy {version}: screening.max_matches_per_party={limit!r} must be an integer >= 1"
            )
        if not isinstance(effects, Mapping) or not effects:
            raise ValueError(f"policy {version}: screening.list_effects must be a non-empty object")
        parsed: dict[str, ListEffect] = {}
        for list_id, spec in effects.items():
            effect = spec.get("effect") if isinstance(spec, Mapping) else None
            if effect not in LIST_EFFECTS:
                raise ValueError(
                    f"policy {version}: screening.list_effects.{list_id}.effect={effect!r} must be one of "
                    f"{list(LIST_EFFECTS)}"
                )
            parsed[str(list_id)] = effect
        calibration = Calibration.from_section(version, section.get("calibration"))
        return cls(version, float(review), float(block), limit, parsed, calibration)

    def effect(self, list_id: str) -> ListEffect:
        try:
            return self.list_effects[list_id]
        except KeyError:
            raise ValueError(
                f"policy {self.version}: screening.list_effects has no effect for list {list_id!r}; "
                "add one before loading that list"
            ) from None


# --- reference data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ListInfo:
    """One list (SDN, EL, ...) as loaded from one source; the same list may come from two sources."""

    source_id: str
    list_id: str
    name: str
    version: str
    published: str | None
    entries: int
    aliases: int


@dataclass(frozen=True)
class SourceInfo:
    """One configured source folder: its files, content hash and what was (not) loaded from it."""

    source_id: str
    kind: str
    folder: str
    files: tuple[str, ...]
    version: str
    published: str | None
    rows_read: int
    rows_skipped: int
    skipped_examples: tuple[str, ...]
    lists: tuple[ListInfo, ...]


@dataclass(frozen=True)
class ListCatalog:
    """What is loaded: the sources, and each list entry by (list_id, entry_id) from every source."""

    sources: tuple[SourceInfo, ...]
    entries: Mapping[tuple[str, str], tuple[ListEntry, ...]]

    @classmethod
    def of(cls, loaded: Iterable[tuple[SourceInfo, Sequence[ListEntry]]]) -> ListCatalog:
        sources: list[SourceInfo] = []
        entries: dict[tuple[str, str], list[ListEntry]] = defaultdict(list)
        for info, source_entries in loaded:
            sources.append(info)
            for entry in source_entries:
                entries[(entry.list_id, entry.entry_id)].append(entry)
        return cls(tuple(sources), {key: tuple(found) for key, found in entries.items()})

    @property
    def lists(self) -> tuple[ListInfo, ...]:
        return tuple(info for source in self.sources for info in source.lists)

    def list_ids(self) -> set[str]:
        return {info.list_id for info in self.lists}


# --- screening: matcher + policy -> the event's screening section --------------------------------


@dataclass(frozen=True)
class Screener:
    matcher: Matcher
    policy: ScreeningPolicy
    lists: tuple[ListInfo, ...]
    # Plain attributes, not cached properties: a cached property is read through Python code on
    # every access, thousands of times a second here. How common each word is in the world and on
    # the lists is remembered per word.
    _list_info: dict[tuple[str, str], ListInfo] = field(init=False, repr=False, compare=False)
    _world_common: dict[str, float] = field(init=False, repr=False, compare=False, default_factory=dict)
    _list_common: dict[str, float] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        for info in self.lists:
            self.policy.effect(info.list_id)  # refuse at startup a list the policy has no effect for
        object.__setattr__(self, "_list_info", {(info.source_id, info.list_id): info for info in self.lists})

    def _world(self, word: str) -> float:
        known = self._world_common.get(word)
        if known is None:
            known = self._world_common[word] = world_commonness(word, world_ranks())
        return known

    def _listed(self, word: str) -> float:
        known = self._list_common.get(word)
        if known is None:
            weights: Mapping[str, float] = getattr(self.matcher, "weights", {})
            idf = weights.get(word)
            known = self._list_common[word] = list_commonness(
                idf if idf is not None else weights.get(ABJAD_MARK + word)
            )
        return known

    def signal_values(self, query: NameQuery, found: Match) -> dict[str, float]:
        """The calibrated signals of one match (services/screening/calibration.py)."""
        name_score = found.name_score
        # A legal form or a word only organisations' names hold: the party is an organisation.
        organisation = bool(query.forms) or any(display_token(t) in ORGANISATION_WORDS for t in query.tokens)
        conflict = type_conflict(
            organisation, query.titled, found.entry.entry_type, unexplained=bool(name_score.unmatched_query)
        )
        facts = MatchFacts(
            name_score.score,
            name_score.pairs,
            name_score.query_unexplained,
            name_score.listed_unexplained,
            found.country_agreement,
            type_conflict=conflict in ("individual", "entity"),
            vessel_conflict=conflict in ("vessel", "aircraft"),
            abjad=sum(t.startswith(ABJAD_MARK) for t in query.tokens) / len(query.tokens)
            if query.tokens
            else 0.0,
            unmatched_query=name_score.unmatched_query,
            unmatched_listed=name_score.unmatched_listed,
        )
        return signals(facts, self._world, self._listed, GENERIC_WORDS.__contains__)

    def _calibrated(
        self, query: NameQuery, found: Match, address_evidence: tuple[bool, str] | None
    ) -> tuple[float, list[tuple[str, float, float]]]:
        """The match's score: the name score moved by the calibrated signals, then by an address
        that names the same place (closer; not calibrated: the labelled sets carry no addresses)."""
        name_score = found.name_score.score
        review = self.policy.review_threshold
        values = self.signal_values(query, found)
        score, contributions = calibrated_score(
            name_score, values, self.policy.calibration, review, self.policy.block_threshold
        )
        if address_evidence and address_evidence[0] and review <= name_score < 1.0:
            score = max(score, round(min(NEAR_EXACT, score + ADDRESS_NUDGE), 4))
        return score, contributions

    def screened_lists(self) -> list[ScreenedList]:
        return [
            ScreenedList(
                list_id=info.list_id,
                name=info.name,
                version=info.version,
                published=info.published,
                entries=info.entries,
                effect=self.policy.effect(info.list_id),
            )
            for info in self.lists
        ]

    def screen_name(
        self,
        name: str,
        country: str | None = None,
        entry_type: EntryType | None = None,
        address: str | None = None,
    ) -> list[PartyMatch]:
        """Matches at or above the review threshold, at most `max_matches_per_party`, best first,
        one per (list_id, entry_id) even when two sources carry the same entry."""
        query = NameQuery.of(name, country, entry_type, address)
        review = self.policy.review_threshold
        infos = self._list_info
        best: dict[tuple[str, str], tuple[PartyMatch, str]] = {}
        calibration = self.policy.calibration
        # A name up to the calibration's lift under the review threshold may be lifted to it.
        for found in self.matcher.match(query, min_score=round(review - calibration.lift, 4)):
            entry = found.entry
            address_evidence = address_agreement(address, entry.addresses)
            score, contributions = self._calibrated(query, found, address_evidence)
            if found.weak_alias:
                # OFAC FAQ 122: a weak AKA is too broad to identify a party on its own; a match on
                # one is a potential match for a reviewer, never an automatic block.
                score = min(score, max(review, round(self.policy.block_threshold - 0.01, 4)))
            if score < review:
                continue
            info = infos[(entry.source_id, entry.list_id)]
            terms = licence_terms(entry)
            # Built from values this module made itself: no validation needed (model_construct is
            # several times faster, and screening builds thousands of these per second).
            party_match = PartyMatch.model_construct(
                list_id=entry.list_id,
                list_name=info.name,
                list_version=info.version,
                entry_id=entry.entry_id,
                entry_name=entry.name,
                matched_name=found.matched_name,
                matched_alias=found.matched_alias,
                score=score,
                effect=self.policy.effect(entry.list_id),
                evidence=MatchEvidence.model_construct(
                    token_pairs=[
                        TokenPair.model_construct(query=q, listed=t, similarity=s)
                        for q, t, s in found.name_score.pairs
                    ],
                    unmatched_query_tokens=list(found.name_score.unmatched_query),
                    unmatched_listed_tokens=list(found.name_score.unmatched_listed),
                    party_country=country,
                    entry_countries=list(entry.countries),
                    country_agreement=found.country_agreement,
                    entry_type=entry.entry_type,
                    programs=list(entry.programs),
                    name_score=found.name_score.score,
                    party_legal_forms=list(query.forms),
                    weak_alias=found.weak_alias,
                    address_agreement=address_evidence[0] if address_evidence else None,
                    matched_address=address_evidence[1] if address_evidence else None,
                    license_requirement=terms["license_requirement"],
                    license_policy=terms["license_policy"],
                    federal_register_notice=terms["federal_register_notice"],
                    start_date=terms["start_date"],
                    score_contributions=[
                        ScoreContribution.model_construct(signal=n, value=v, contribution=c)
                        for n, v, c in contributions
                    ],
                    calibration_version=self.policy.calibration.version,
                ),
                entry_version=entry.content_version or None,
            )
            key = (entry.list_id, entry.entry_id)
            # The same entry from two sources (the SDN from OFAC and from the CSL): keep the better
            # score, and on a tie the more recently published source.
            rank = (score, info.published or "")
            current = best.get(key)
            if current is None or rank > (current[0].score, current[1]):
                best[key] = (party_match, info.published or "")
        ordered = sorted(
            (m for m, _ in best.values()),
            key=lambda m: (-m.score, m.list_id, m.entry_id),
        )
        return ordered[: self.policy.max_matches_per_party]

    def screen_parties(self, parties: Sequence[Party]) -> Screening:
        screened: dict[tuple[str, str, str | None], list[PartyMatch]] = {}
        results: list[PartyScreening] = []
        for party in parties:
            address = ", ".join(part for part in (party.address, party.city) if part) or None
            key = (party.name, party.country, address)
            if key not in screened:
                screened[key] = self.screen_name(party.name, party.country, address=address)
            results.append(
                PartyScreening(role=party.role, name=party.name, country=party.country, matches=screened[key])
            )
        return Screening(
            policy_version=self.policy.version,
            review_threshold=self.policy.review_threshold,
            block_threshold=self.policy.block_threshold,
            lists=self.screened_lists(),
            parties=results,
        )
