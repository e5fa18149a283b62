"""Restricted-party screening: the pure core.

Names from the lists and from orders are normalised the same way, candidates are retrieved from an
inverted token index (so one query touches a few hundred names, not all of them), and each candidate
is scored 0..1 with the evidence a compliance officer needs to judge the hit: which tokens were
aligned with which similarity, which were left over, and whether the party's country agrees with
the entry's. Thresholds and list effects come from the policy file; nothing here does I/O.

The `Matcher` protocol is the seam for a deeper matcher (phonetics, transliteration variants, dates
of birth): `Screener` only needs `match()`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Literal, Protocol, get_args

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, Indel, JaroWinkler
from unidecode import unidecode

from shared.events import (
    ListEffect,
    MatchEvidence,
    Party,
    PartyMatch,
    PartyScreening,
    ScreenedList,
    Screening,
    TokenPair,
)

EntryType = Literal["individual", "entity", "vessel", "aircraft"]
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
        return cls(version, float(review), float(block), limit, parsed)

    def effect(self, list_id: str) -> ListEffect:
        try:
            return self.list_effects[list_id]
        except KeyError:
            raise ValueError(
                f"policy {self.version}: screening.list_effects has no effect for list {list_id!r}; "
                "add one before loading that list"
            ) from None


# --- reference data ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One party on one list, as its publisher lists it (names unnormalised)."""

    source_id: str
    list_id: str
    entry_id: str
    name: str
    aliases: tuple[str, ...]
    entry_type: EntryType | None
    programs: tuple[str, ...]
    countries: tuple[str, ...]
    details: tuple[tuple[str, str], ...] = ()


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


# --- normalisation -----------------------------------------------------------------------------

# Company legal forms are dropped on both sides so that a form neither creates a match ("... LLC" vs
# "... LLC") nor hides one ("ROSOBORONEXPORT OAO" vs "Rosoboronexport JSC"). Multi-word forms first.
_LEGAL_FORM_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    tuple(phrase.split())
    for phrase in (
        "public joint stock company",
        "closed joint stock company",
        "open joint stock company",
        "joint stock company",
        "limited liability company",
        "limited liability partnership",
        "societe a responsabilite limitee",
        "societe anonyme",
        "obshchestvo s ogranichennoi otvetstvennostyu",
        "obshchestvo s ogranichennoy otvetstvennostyu",
        "publichnoe aktsionernoe obshchestvo",
        "zakrytoe aktsionernoe obshchestvo",
        "otkrytoe aktsionernoe obshchestvo",
        "aktsionernoe obshchestvo",
        "sdn bhd",
        "private limited",
    )
)
_PHRASES_BY_HEAD: dict[str, list[tuple[str, ...]]] = defaultdict(list)
for _phrase in _LEGAL_FORM_PHRASES:
    _PHRASES_BY_HEAD[_phrase[0]].append(_phrase)
_LEGAL_FORMS = frozenset(
    "gmbh mbh ag kg ug llc ltd limited co company corp corporation inc incorporated sa sarl sas srl spa "
    "ooo oao zao pao pjsc ojsc cjsc jsc fze fzco fzc fzllc pvt plc llp bv nv pte pty bhd kk kft zrt "
    "ltda lda".split()
)
# Titles carry no identity: "AL ZAWAHIRI, Dr. Ayman" is listed with one, an order usually without.
_HONORIFICS = frozenset(
    "mr mrs ms miss dr prof professor sir herr frau mme mlle sheikh shaykh sheik shaikh haji hajji".split()
)
_STOPWORDS = frozenset("the and of und".split())
_DROPPED = _LEGAL_FORMS | _HONORIFICS | _STOPWORDS
# Long legal-form words are recognised with one typo ("LIMITED LIABILITY COMPAYY"): left in place they
# would be the only unmatched tokens of an otherwise exact name.
_TYPO_TOLERANT_FORMS: tuple[str, ...] = tuple(
    sorted(w for w in _LEGAL_FORMS | {w for p in _LEGAL_FORM_PHRASES for w in p} if len(w) >= 5)
)

_APOSTROPHES = re.compile(r"['`´’‘ʼ]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def _split(text: str) -> list[str]:
    # NFKC folds full-width and compatibility forms; unidecode transliterates Cyrillic, Greek,
    # Arabic, CJK and strips diacritics, so "ООО Ромашка" and "OOO Romashka" meet.
    ascii_text = unidecode(unicodedata.normalize("NFKC", text)).casefold()
    tokens = _NON_ALNUM.sub(" ", _APOSTROPHES.sub("", ascii_text)).split()
    # Initials written with dots ("S.A.", "U.S.A.") become one token, as when written without.
    merged: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1:
            run.append(token)
            continue
        merged.extend(["".join(run)] if len(run) > 1 else run)
        run = []
        if token:
            merged.append(token)
    return merged


@lru_cache(maxsize=65536)
def _form_word(token: str) -> str:
    """The legal-form word `token` is, allowing one typo in long words; else `token` itself."""
    if token in _DROPPED or token in _TYPO_TOLERANT_FORMS or len(token) < 5:
        return token
    for form in _TYPO_TOLERANT_FORMS:
        if abs(len(form) - len(token)) <= 1 and OSA.distance(form, token, score_cutoff=1) <= 1:
            return form
    return token


def _drop_forms(tokens: list[str]) -> list[str]:
    canonical = [_form_word(t) for t in tokens]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        phrase = next(
            (p for p in _PHRASES_BY_HEAD.get(canonical[i], ()) if tuple(canonical[i : i + len(p)]) == p), None
        )
        if phrase is not None:
            i += len(phrase)
            continue
        if canonical[i] not in _DROPPED:
            out.append(tokens[i])
        i += 1
    return out


def normalise_name(name: str, *, entry_type: EntryType | None = None) -> tuple[str, ...]:
    """Tokens that identify a name: transliterated, casefolded, without punctuation, legal forms,
    titles or filler words. "LAST, First" (OFAC's form for individuals) becomes "first last".

    A name made only of legal forms or filler words keeps its tokens, so it still matches itself.
    """
    head, comma, tail = name.partition(",")
    tokens = _split(name)
    if comma and "," not in tail and entry_type in (None, "individual"):
        tail_tokens = _split(tail)
        # "Siemens, AG" is a company with its form, not a surname; only reorder a real given name.
        if any(_form_word(t) not in _LEGAL_FORMS for t in tail_tokens):
            tokens = tail_tokens + _split(head)
    kept = _drop_forms(tokens)
    return tuple(kept or tokens)


# --- scoring -----------------------------------------------------------------------------------

TOKEN_PAIR_MIN = 0.8


def token_similarity(query: str, listed: str) -> float:
    """Jaro-Winkler for tokens one typo apart (it keeps "hazprom"/"gazprom" at 0.90, where an edit
    ratio gives 0.86); beyond one edit the stricter Indel ratio caps it, because Jaro-Winkler rewards
    a shared prefix ("siemens"/"siemensstadt" 0.92) and scattered shared letters ("acme"/"amen" 0.85).
    """
    if query == listed:
        return 1.0
    similarity = JaroWinkler.normalized_similarity(query, listed)
    if OSA.distance(query, listed, score_cutoff=1) <= 1:
        # Jaro matches letters greedily within a window, so a repeated letter can pull it down
        # ("rystrobank"/"bystrobank" 0.86); one edit in n letters is never worth less than 1 - 1/n.
        return max(similarity, 1 - 1 / max(len(query), len(listed)))
    return min(similarity, Indel.normalized_similarity(query, listed))


@dataclass(frozen=True)
class NameScore:
    score: float
    pairs: tuple[tuple[str, str, float], ...]
    unmatched_query: tuple[str, ...]
    unmatched_listed: tuple[str, ...]


def score_names(query: Sequence[str], listed: Sequence[str], weights: Mapping[str, float]) -> NameScore:
    """One-to-one alignment of tokens, most similar pairs first; the score is the weighted share of
    both names' tokens that are aligned, each pair counting with its similarity. Identical token
    sets score 1.0; every token left over on either side lowers the score by its weight.

    Tokens left over on both sides are joined and compared once more as one pair (`fuzz.ratio`), so
    that a name written in more or fewer words than the listed one still aligns.
    """
    candidates = sorted(
        (
            (similarity, qi, li)
            for qi, q in enumerate(query)
            for li, token in enumerate(listed)
            if (similarity := token_similarity(q, token)) >= TOKEN_PAIR_MIN
        ),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    used_q: set[int] = set()
    used_l: set[int] = set()
    pairs: list[tuple[str, str, float]] = []
    aligned = 0.0
    for similarity, qi, li in candidates:
        if qi in used_q or li in used_l:
            continue
        used_q.add(qi)
        used_l.add(li)
        pairs.append((query[qi], listed[li], round(similarity, 4)))
        aligned += similarity * (token_weight(query[qi], weights) + token_weight(listed[li], weights))
    unmatched_query = [t for i, t in enumerate(query) if i not in used_q]
    unmatched_listed = [t for i, t in enumerate(listed) if i not in used_l]
    if unmatched_query and unmatched_listed and len(unmatched_query) + len(unmatched_listed) > 2:
        # Words split or joined differently ("ROSOBORON EXPORT" / "ROSOBORONEXPORT"): the leftovers
        # of both sides, joined, are compared as one pair.
        joined_query, joined_listed = "".join(unmatched_query), "".join(unmatched_listed)
        similarity = fuzz.ratio(joined_query, joined_listed) / 100.0
        if similarity >= TOKEN_PAIR_MIN:
            pairs.append((" ".join(unmatched_query), " ".join(unmatched_listed), round(similarity, 4)))
            aligned += similarity * sum(
                token_weight(t, weights) for t in (*unmatched_query, *unmatched_listed)
            )
            unmatched_query, unmatched_listed = [], []
    total = sum(token_weight(t, weights) for t in query) + sum(token_weight(t, weights) for t in listed)
    return NameScore(
        score=round(aligned / total, 4) if total else 0.0,
        pairs=tuple(pairs),
        unmatched_query=tuple(unmatched_query),
        unmatched_listed=tuple(unmatched_listed),
    )


def token_weight(token: str, idf: Mapping[str, float]) -> float:
    """How much a token identifies a name: its rarity on the lists (1.0 for a token not listed),
    discounted for tokens under six letters, since initials and particles ("al", "fy") say little."""
    return idf.get(token, 1.0) * min(1.0, (len(token) + 2) / 8)


# Country agreement between the party and the entry moves a name score by this much, and only a name
# score that already reaches the review threshold: a weak name match never becomes a hit through its
# country. Only an exact name scores 1.0, and it does so whatever the country: listed parties trade
# through addresses abroad, so a country mismatch is evidence for the reviewer to weigh with the rest
# of the entry (OFAC FAQ 5, "compare the complete SDN entry"), not a reason to lower an exact name.
COUNTRY_NUDGE = 0.02
NEAR_EXACT = 0.99


def apply_country(name_score: float, agreement: bool | None, review_threshold: float) -> float:
    if agreement is None or name_score < review_threshold or name_score >= 1.0:
        return name_score
    if agreement:
        return max(name_score, round(min(NEAR_EXACT, name_score + COUNTRY_NUDGE), 4))
    return round(name_score - COUNTRY_NUDGE, 4)


# --- matcher -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameQuery:
    name: str
    tokens: tuple[str, ...]
    country: str | None = None
    entry_type: EntryType | None = None

    @classmethod
    def of(cls, name: str, country: str | None = None, entry_type: EntryType | None = None) -> NameQuery:
        return cls(name, normalise_name(name, entry_type=entry_type), country, entry_type)


@dataclass(frozen=True)
class Match:
    entry: ListEntry
    matched_name: str
    matched_alias: bool
    name_score: NameScore
    country_agreement: bool | None


class Matcher(Protocol):
    def match(self, query: NameQuery, *, min_score: float) -> list[Match]:
        """Every entry whose best name scores at least `min_score`, one Match per entry."""
        ...


@dataclass(frozen=True, slots=True)
class _IndexedName:
    entry: int
    text: str
    alias: bool
    tokens: tuple[str, ...]


def _deletions(token: str) -> set[str]:
    return {token[:i] + token[i + 1 :] for i in range(len(token))}


@dataclass
class TokenIndex:
    """Inverted index over normalised name tokens, with a one-deletion neighbourhood per token
    (SymSpell) so that a one-letter typo still retrieves the listed name without a scan."""

    entries: list[ListEntry]
    names: list[_IndexedName] = field(default_factory=list)
    postings: dict[str, list[int]] = field(default_factory=dict)
    compact: dict[str, list[int]] = field(default_factory=dict)
    deletions: dict[str, list[str]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    # A candidate must share at least this share of the query's token weight, and at most this many
    # candidates are scored; both only bound the work, they do not decide a hit.
    MIN_SHARED_WEIGHT = 0.5
    MAX_CANDIDATES = 300
    # Tokens this short have too many one-deletion neighbours to be worth looking up fuzzily.
    MIN_FUZZY_LEN = 4

    @classmethod
    def build(cls, entries: Iterable[ListEntry]) -> TokenIndex:
        index = cls(entries=list(entries))
        postings: dict[str, list[int]] = defaultdict(list)
        compact: dict[str, list[int]] = defaultdict(list)
        # The SDN comes from two sources with mostly the same names: normalise each name once.
        normalised: dict[tuple[str, EntryType | None], tuple[str, ...]] = {}
        for entry_no, entry in enumerate(index.entries):
            seen: set[tuple[str, ...]] = set()
            for position, text in enumerate((entry.name, *entry.aliases)):
                key = (text, entry.entry_type)
                tokens = normalised.get(key)
                if tokens is None:
                    tokens = normalised[key] = normalise_name(text, entry_type=entry.entry_type)
                if not tokens or tokens in seen:
                    continue
                seen.add(tokens)
                name_no = len(index.names)
                index.names.append(_IndexedName(entry_no, text, position > 0, tokens))
                for token in set(tokens):
                    postings[token].append(name_no)
                compact["".join(tokens)].append(name_no)
        deletions: dict[str, list[str]] = defaultdict(list)
        for token in postings:
            if len(token) >= cls.MIN_FUZZY_LEN:
                for variant in _deletions(token):
                    deletions[variant].append(token)
        # Inverse document frequency, scaled to 1.0 for a token found once: a rare token ("ROSOBORONEXPORT")
        # identifies a name more than a frequent one ("TRADING"), but never by less than a third.
        total = len(index.names)
        max_idf = math.log(1 + total)
        index.weights = {
            token: max(1 / 3, math.log(1 + total / len(names)) / max_idf) for token, names in postings.items()
        }
        index.postings = dict(postings)
        index.compact = dict(compact)
        index.deletions = dict(deletions)
        return index

    def neighbours(self, token: str) -> set[str]:
        """Indexed tokens at most one insertion, deletion, substitution or transposition away."""
        found = {token} if token in self.postings else set()
        if len(token) < self.MIN_FUZZY_LEN:
            return found
        found.update(self.deletions.get(token, ()))
        for variant in _deletions(token):
            if variant in self.postings:
                found.add(variant)
            found.update(self.deletions.get(variant, ()))
        return found

    def candidates(self, query: NameQuery) -> list[int]:
        shared: dict[int, float] = defaultdict(float)
        query_weight = sum(token_weight(t, self.weights) for t in query.tokens)
        for token in dict.fromkeys(query.tokens):
            hit: set[int] = set()
            for neighbour in self.neighbours(token):
                hit.update(self.postings[neighbour])
            weight = token_weight(token, self.weights) * query.tokens.count(token)
            for name_no in hit:
                shared[name_no] += weight
        for name_no in self.compact.get("".join(query.tokens), ()):
            shared[name_no] = query_weight
        enough = self.MIN_SHARED_WEIGHT * query_weight
        ranked = sorted((n for n, w in shared.items() if w >= enough), key=lambda n: (-shared[n], n))
        return ranked[: self.MAX_CANDIDATES]

    def match(self, query: NameQuery, *, min_score: float) -> list[Match]:
        best: dict[int, Match] = {}
        for name_no in self.candidates(query):
            name = self.names[name_no]
            entry = self.entries[name.entry]
            if query.entry_type is not None and entry.entry_type not in (None, query.entry_type):
                continue
            scored = score_names(query.tokens, name.tokens, self.weights)
            if scored.score < min_score:
                continue
            current = best.get(name.entry)
            if current is None or scored.score > current.name_score.score:
                agreement = (
                    query.country in entry.countries
                    if query.country is not None and entry.countries
                    else None
                )
                best[name.entry] = Match(entry, name.text, name.alias, scored, agreement)
        return [best[n] for n in sorted(best)]


# --- screening: matcher + policy -> the event's screening section --------------------------------


@dataclass(frozen=True)
class Screener:
    matcher: Matcher
    policy: ScreeningPolicy
    lists: tuple[ListInfo, ...]

    def __post_init__(self) -> None:
        for info in self.lists:
            self.policy.effect(info.list_id)  # refuse at startup a list the policy has no effect for

    @cached_property
    def _list_info(self) -> dict[tuple[str, str], ListInfo]:
        return {(info.source_id, info.list_id): info for info in self.lists}

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
        self, name: str, country: str | None = None, entry_type: EntryType | None = None
    ) -> list[PartyMatch]:
        """Matches at or above the review threshold, at most `max_matches_per_party`, best first,
        one per (list_id, entry_id) even when two sources carry the same entry."""
        query = NameQuery.of(name, country, entry_type)
        review = self.policy.review_threshold
        infos = self._list_info
        best: dict[tuple[str, str], tuple[PartyMatch, str]] = {}
        for found in self.matcher.match(query, min_score=review):
            score = apply_country(found.name_score.score, found.country_agreement, review)
            if score < review:
                continue
            entry = found.entry
            info = infos[(entry.source_id, entry.list_id)]
            party_match = PartyMatch(
                list_id=entry.list_id,
                list_name=info.name,
                list_version=info.version,
                entry_id=entry.entry_id,
                entry_name=entry.name,
                matched_name=found.matched_name,
                matched_alias=found.matched_alias,
                score=score,
                effect=self.policy.effect(entry.list_id),
                evidence=MatchEvidence(
                    token_pairs=[
                        TokenPair(query=q, listed=t, similarity=s) for q, t, s in found.name_score.pairs
                    ],
                    unmatched_query_tokens=list(found.name_score.unmatched_query),
                    unmatched_listed_tokens=list(found.name_score.unmatched_listed),
                    party_country=country,
                    entry_countries=list(entry.countries),
                    country_agreement=found.country_agreement,
                    entry_type=entry.entry_type,
                    programs=list(entry.programs),
                ),
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
        screened: dict[tuple[str, str], list[PartyMatch]] = {}
        results: list[PartyScreening] = []
        for party in parties:
            key = (party.name, party.country)
            if key not in screened:
                screened[key] = self.screen_name(party.name, party.country)
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
