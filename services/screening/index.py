"""Candidate retrieval and scoring over every listed name and alias.

Names are indexed by their normalised tokens; equal names from several entries or sources are one
group, scored once. A query token finds the listed tokens it may stand for by dictionary lookups,
never a scan: the token itself (and, for a syllable read from a Chinese character, the same
syllable); every token one insertion, deletion, substitution or transposition away (a SymSpell
deletion index: typos); its romanisation key (`romanisation_key`; for keys of seven letters or more
also every key one edit away: "yevgeniy"/"evgenii", "mohammed"/"muhammad"); for a token in Arabic
script, its consonant skeleton (`skeleton`). The neighbours of every listed token are computed when
the index is built, those of other tokens when a query first brings them.

Only the groups that hold the query's most informative tokens are gathered (a token every match
must hold, or the rarest first until those left could not make a match), groups too heavy to reach
the threshold are cut off by their total weight, and the rest are bounded from above before any is
aligned: a query aligns a handful of names out of ~100,000.

Nothing here does I/O; the caches only remember earlier answers.

Compiled with mypyc when built (`make native`; see services/screening/__init__.py): sums of floats
start at 0.0, since mypyc reads `sum()` of a generator as an int otherwise and fails at run time.
"""

from __future__ import annotations

import dataclasses
import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final, Protocol, TypeVar, cast

from rapidfuzz.distance import Indel

from services.screening.article import article_variant
from services.screening.calibration import world_ranks
from services.screening.edits import deletions as letter_deletions
from services.screening.edits import one_edit_away
from services.screening.entries import EntryType, ListEntry
from services.screening.normalise import (
    ABJAD_MARK,
    GENERIC_WORDS,
    GREEK_MARK,
    HAN_MARK,
    STOPWORDS,
    analyse_name,
    display_token,
    greek_key,
    romanisation_key,
    skeleton,
    slavic_respellings,
)
from services.screening.normalise import skeletons as skeleton_variants
from services.screening.scoring import (
    DROPPED_WORD_COST,
    DROPPED_WORD_NAME,
    MUHAMMAD_SHORT,
    ROMANISATION_MAX,
    TOKEN_PAIR_MIN,
    UNMATCHED_LISTED_COST,
    UNMATCHED_QUERY_COST,
    NameScore,
    abbreviation_similarity,
    align,
    generic_factor,
    length_factor,
    similar_tokens,
    strict_similarity,
    token_similarity,
    unmatched_query_cost,
)

# (Constants are `Final` and at module level: the compiled matcher reads them as C constants.)

# A name with one informative word is compared letter by letter (see `strict_similarity`).
STRICT_SINGLE_WORD: Final = True
# A candidate must hold this share of the query's weight, at most this many are aligned (work bounds).
MIN_SHARED_WEIGHT: Final = 0.5
MAX_CANDIDATES: Final = 200
# Variants of the query's spacing looked up (`_respaced`); groups a respelled word brings in directly.
MAX_VARIANTS: Final = 4
MAX_RESPACED: Final = 20
# Tokens and keys this short have too many one-edit neighbours to be worth looking up fuzzily.
MIN_FUZZY_KEY: Final = 7
MIN_FUZZY_TOKEN: Final = 4
# Words this short may be abbreviations ("techn", "intl", "md").
MAX_ABBREVIATION: Final = 7
# Unlisted words whose neighbours and weights are remembered (about 400 bytes a word).
NEIGHBOUR_CACHE: Final = 200_000
# The listed name's letters in order, spaced elsewhere ("ASIAF UEL", "Taye bNAIL"): from MIN_COMPACT.
COMPACT_SCORE: Final = ROMANISATION_MAX
MIN_COMPACT: Final = 6
_GLUED_STOPWORDS: Final = ("the", "and", "for", "of")  # taken off a word (`_unglued`) leaving this much
MIN_UNGLUED: Final = 5


@dataclass(frozen=True)
class NameQuery:
    name: str
    tokens: tuple[str, ...]
    country: str | None = None
    entry_type: EntryType | None = None
    # Canonical legal forms written with the name ("llc", "jsc"): apart from `tokens`, not matched;
    # evidence that the party is a company.
    forms: tuple[str, ...] = ()
    address: str | None = None
    # A title or rank was written with the name ("Dr.", "Col."): evidence of a person.
    titled: bool = False
    ranked: tuple[str, ...] | None = None  # with the rank words of its start ("General"), if any

    @classmethod
    def of(
        cls,
        name: str,
        country: str | None = None,
        entry_type: EntryType | None = None,
        address: str | None = None,
    ) -> NameQuery:
        read = analyse_name(
            name, entity=entry_type != "individual", reorder=entry_type in (None, "individual")
        )
        return cls(name, read.tokens, country, entry_type, read.forms, address, read.titled, read.ranked)


@dataclass(frozen=True)
class Match:
    entry: ListEntry
    matched_name: str
    matched_alias: bool
    name_score: NameScore
    country_agreement: bool | None
    # The publisher marks the matched alias weak or low quality (OFAC FAQ 122).
    weak_alias: bool = False


class Matcher(Protocol):
    def match(self, query: NameQuery, *, min_score: float) -> list[Match]:
        """Every entry whose best name scores at least `min_score`, one Match per entry."""
        ...


@dataclass(frozen=True, slots=True)
class IndexedName:
    """One name or alias of one entry."""

    entry: int
    text: str
    alias: bool
    tokens: tuple[str, ...]
    group: int
    weak: bool = False


@dataclass(frozen=True, slots=True)
class TokenGroup:
    """A distinct normalised name, shared by every entry and source that lists it: scored once."""

    tokens: tuple[str, ...]
    weights: tuple[float, ...]
    total: float
    names: tuple[int, ...]


_T = TypeVar("_T")
_V = TypeVar("_V")


def _shared(value: _V, earlier: _V | None) -> _V:
    """`earlier`, the serving generation's, when equal to `value`: one object for both."""
    return earlier if earlier is not None and earlier == value else value


def _frozen(lists: dict[str, list[_T]], earlier: dict[str, tuple[_T, ...]]) -> dict[str, tuple[_T, ...]]:
    """`lists` with tuples for lists (smaller), those `earlier` holds alike shared: in place, each
    list freed as its tuple replaces it, so that no second table is built beside the first."""
    if isinstance(lists, defaultdict):
        lists.default_factory = None  # a plain mapping from now on: a missing key is not added
    for key, values in lists.items():
        cast(dict[str, Any], lists)[key] = _shared(tuple(values), earlier.get(key))
    return cast(dict[str, tuple[_T, ...]], lists)


def _compact_match(query: tuple[str, ...], listed: tuple[str, ...], compact: str) -> NameScore | None:
    """COMPACT_SCORE when the listed name's letters, written together, are the query's (`compact`)."""
    if "".join(display_token(t) for t in listed) != compact:
        return None
    written = " ".join(display_token(t) for t in query)
    listed_name = " ".join(display_token(t) for t in listed)
    return NameScore(COMPACT_SCORE, ((written, listed_name, COMPACT_SCORE),), (), ())


@dataclass
class TokenIndex:
    """Inverted index over normalised name tokens; see the module docstring."""

    entries: list[ListEntry]
    names: list[IndexedName] = field(default_factory=list)
    groups: list[TokenGroup] = field(default_factory=list)
    # token -> groups holding it, ordered by the group's total weight (short names first)
    postings: dict[str, list[int]] = field(default_factory=dict)
    # idf of each listed token, 1/3 .. 1.0
    weights: dict[str, float] = field(default_factory=dict)
    # (tuples, not lists: hundreds of thousands of them, never changed once built)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    key_deletions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    deletions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    skeletons: dict[str, tuple[str, ...]] = field(default_factory=dict)
    greek_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    compact: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # Listed generic words of company names by first letter: what an abbreviation may stand for.
    generic_by_initial: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _group_totals: list[float] = field(default_factory=list)
    # Neighbours of every listed token, computed at build; of other tokens, as queries bring them.
    _listed_neighbours: dict[str, dict[str, float]] = field(default_factory=dict)
    _neighbour_cache: dict[str, dict[str, float]] = field(default_factory=dict)
    # Per query token, derived from its neighbours only: groups holding one, and its query weight.
    _volumes: dict[str, int] = field(default_factory=dict)
    _query_weights: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, entries: Iterable[ListEntry], previous: TokenIndex | None = None) -> TokenIndex:
        """The index of `entries`; `previous`, the one serving while a list update builds this one,
        shares the words, tables and neighbours both hold alike (the answers are the same)."""
        index = cls(entries=list(entries))
        # What only the build needs goes once used: a list update builds this beside the serving one.
        group_of, members = index._name_groups(previous)
        token_tuples = list(group_of)
        del group_of
        index._weigh_and_post(token_tuples, members)
        del token_tuples, members
        index._lookup_tables(previous)
        # Orders' names mostly use listed words: their neighbours are looked up, not computed.
        was = previous._listed_neighbours if previous is not None else {}
        index._listed_neighbours = {t: _shared(index._find_neighbours(t), was.get(t)) for t in index.postings}
        return index

    def _name_groups(self, previous: TokenIndex | None) -> tuple[dict[tuple[str, ...], int], list[list[int]]]:
        """Every name and alias indexed (one with a glued Arabic article also with it apart:
        `article_variant`); equal normalised names as one group (its names), each word one string
        and each group's words one tuple, however many names hold them."""
        group_of: dict[tuple[str, ...], int] = {}
        members: list[list[int]] = []
        group_tokens: list[tuple[str, ...]] = []
        words: dict[str, str] = {word: word for word in previous.postings} if previous is not None else {}
        analysed_cache: dict[tuple[str, bool, bool], tuple[tuple[str, ...], ...]] = {}
        for entry_no, entry in enumerate(self.entries):
            entity = entry.entry_type != "individual"
            reorder = entry.entry_type in (None, "individual")
            weak = set(entry.weak_aliases)
            seen: set[tuple[str, ...]] = set()
            for position, text in enumerate((entry.name, *entry.aliases)):
                key = (text, entity, reorder)
                readings = analysed_cache.get(key)
                if readings is None:
                    read = analyse_name(text, entity=entity, reorder=reorder).readings
                    readings = analysed_cache[key] = tuple(
                        tuple(words.setdefault(t, t) for t in r) for r in read
                    )
                variant = article_variant(readings[0], entry.countries, world_ranks().__contains__, words)
                for tokens in readings if variant is None else (*readings, variant):
                    if not tokens or tokens in seen:
                        continue
                    seen.add(tokens)
                    group = group_of.get(tokens)
                    if group is None:
                        group = group_of[tokens] = len(members)
                        members.append([])
                        group_tokens.append(tokens)
                    tokens = group_tokens[group]
                    members[group].append(len(self.names))
                    self.names.append(IndexedName(entry_no, text, position > 0, tokens, group, text in weak))
        analyse_name.cache_clear()  # the listed names will not be asked for again
        return group_of, members

    def _weigh_and_post(self, token_tuples: list[tuple[str, ...]], members: list[list[int]]) -> None:
        """Token weights, groups, postings (by group weight) and the names written together."""
        index = self
        document_frequency: dict[str, int] = defaultdict(int)
        for tokens in token_tuples:
            for token in set(tokens):
                document_frequency[token] += 1
        # Inverse document frequency, scaled to 1.0 for a token found once: a rare token
        # ("ROSOBORONEXPORT") identifies a name more than a frequent one ("TRADING"), but never by
        # less than a third.
        total = len(token_tuples)
        max_idf = math.log(1 + total)
        index.weights = {
            token: max(1 / 3, math.log(1 + total / count) / max_idf)
            for token, count in document_frequency.items()
        }
        postings: dict[str, list[int]] = defaultdict(list)
        compact: dict[str, list[int]] = defaultdict(list)
        for group, tokens in enumerate(token_tuples):
            weights = tuple(index.token_weight(t) for t in tokens)
            index.groups.append(TokenGroup(tokens, weights, sum(weights, 0.0), tuple(members[group])))
            for token in dict.fromkeys(tokens):
                postings[token].append(group)
            if len(tokens) > 1:
                compact["".join(display_token(t) for t in tokens)].append(group)
        del document_frequency
        index._group_totals = [g.total for g in index.groups]
        totals = index._group_totals
        index.postings = {t: sorted(groups, key=totals.__getitem__) for t, groups in postings.items()}
        del postings
        index.compact = _frozen(compact, {})

    def _lookup_tables(self, previous: TokenIndex | None) -> None:
        """Romanisation keys, skeletons, Greek keys and one-letter deletions of the listed tokens,
        each table frozen as soon as it is built (a list update builds them beside the serving ones)."""
        index = self
        old = previous if previous is not None else TokenIndex(entries=[])
        keys: dict[str, list[str]] = defaultdict(list)
        skeletons: dict[str, list[str]] = defaultdict(list)
        greek_keys: dict[str, list[str]] = defaultdict(list)
        # Spelling keys and skeletons are computed here once per listed token (and stay cached).
        for token in index.postings:
            if token.startswith(ABJAD_MARK):
                skeletons[skeleton(token)].append(token)
                continue
            if token.isalpha():
                keys[romanisation_key(token)].append(token)
                greek_keys[greek_key(token)].append(token)
                for skel in skeleton_variants(token):
                    if skel:
                        skeletons[skel].append(token)
        index.keys = _frozen(keys, old.keys)
        index.skeletons = _frozen(skeletons, old.skeletons)
        index.greek_keys = _frozen(greek_keys, old.greek_keys)
        key_deletions: dict[str, list[str]] = defaultdict(list)
        for spelling in index.keys:
            if len(spelling) >= MIN_FUZZY_KEY:
                for variant in letter_deletions(spelling):
                    key_deletions[variant].append(spelling)
        index.key_deletions = _frozen(key_deletions, old.key_deletions)
        deletions: dict[str, list[str]] = defaultdict(list)
        for token in index.postings:
            if len(token) >= MIN_FUZZY_TOKEN and token.isalpha():
                for variant in letter_deletions(token):
                    deletions[variant].append(token)
        index.deletions = _frozen(deletions, old.deletions)
        generic: dict[str, list[str]] = defaultdict(list)
        for token in sorted(GENERIC_WORDS):
            if token in index.postings:
                generic[token[0]].append(token)
        index.generic_by_initial = _frozen(generic, {})

    def trim_caches(self) -> int:
        """Forget the neighbours and weights remembered for words the lists do not hold (about
        400 bytes a word, up to NEIGHBOUR_CACHE words): before a list update builds the next index
        beside this one. Answers stay the same; only their first computation comes back."""
        remembered = len(self._neighbour_cache)
        self._neighbour_cache.clear()
        self._volumes.clear()
        self._query_weights.clear()
        return remembered

    def token_weight(self, token: str) -> float:
        return self.weights.get(token, 1.0) * length_factor(token) * generic_factor(token)

    # --- retrieval ------------------------------------------------------------------------------

    def neighbours(self, token: str) -> dict[str, float]:
        """Listed tokens `token` may stand for, with their similarity (at least TOKEN_PAIR_MIN)."""
        cached = self._listed_neighbours.get(token) or self._neighbour_cache.get(token)
        if cached is not None:
            return cached
        similar = self._find_neighbours(token)
        if token.isalpha() and len(token) >= MIN_FUZZY_TOKEN:
            # A word the lists do not hold may be a Russian name in another romanisation.
            for respelled in slavic_respellings(token):
                for listed, value in self._find_neighbours(respelled).items():
                    value = min(value, ROMANISATION_MAX)
                    if value > similar.get(listed, 0.0):
                        similar[listed] = value
        if len(self._neighbour_cache) >= NEIGHBOUR_CACHE:
            self._neighbour_cache.clear()
        self._neighbour_cache[token] = similar
        return similar

    def _find_neighbours(self, token: str) -> dict[str, float]:
        found: set[str] = set()
        if token in self.postings:
            found.add(token)
        # A syllable read from a Chinese character and the same syllable in Latin letters.
        if token.startswith(HAN_MARK):
            if token[1:] in self.postings:
                found.add(token[1:])
        elif HAN_MARK + token in self.postings:
            found.add(HAN_MARK + token)
        if token.startswith(GREEK_MARK):
            # Its romanised letters, as a Latin token, and every listed word Greek writes alike.
            found.update(self._find_neighbours(token[1:]))
            found.update(self.greek_keys.get(greek_key(token), ()))
        elif token.startswith(ABJAD_MARK):
            found.update(self.skeletons.get(skeleton(token), ()))
        elif token.isalpha():
            # One insertion, deletion, substitution or transposition away (SymSpell)...
            if len(token) == MIN_FUZZY_TOKEN - 1:
                # A four-letter listed word with a letter left out ("BNG" for "BONG").
                found.update(self.deletions.get(token, ()))
            elif len(token) >= MIN_FUZZY_TOKEN:
                found.update(one_edit_away(token, self.postings, self.deletions))
            # ... or one edit away in romanisation key: another spelling of the same sound.
            key = romanisation_key(token)
            near_keys = {key}
            if len(key) >= MIN_FUZZY_KEY:
                near_keys.update(one_edit_away(key, self.keys, self.key_deletions))
            for near in near_keys:
                found.update(self.keys.get(near, ()))
        similar = similar_tokens(token, list(found))
        if token.isalpha() and len(token) <= MAX_ABBREVIATION:
            # Not among the likely spellings `similar_tokens` keeps: compared apart.
            for word in self._abbreviated(token):
                similar[word] = max(similar.get(word, 0.0), abbreviation_similarity(token, word))
        return similar

    def _abbreviated(self, token: str) -> list[str]:
        """Listed words `token` may be an abbreviation of (`abbreviation_similarity`): a generic word
        of company names ("intl", "mfg", "techn") or Muhammad ("md", "mohd")."""
        if token in MUHAMMAD_SHORT:
            return [t for t in self.skeletons.get("mhmd", ()) if not t.startswith(ABJAD_MARK)]
        return [w for w in self.generic_by_initial.get(token[0], ()) if abbreviation_similarity(token, w) > 0]

    def _length_limit(self, query_weight: float, query_tokens: int, min_score: float) -> float:
        """The heaviest listed name that can still reach `min_score`: with every query token aligned
        perfectly to a listed token of weight at most 1, a listed name of total weight T scores at
        most (W + m) / (W + m + c (T - m)), c being UNMATCHED_LISTED_COST."""
        if min_score <= 0:
            return math.inf
        slack = (1 - min_score) * (query_weight + query_tokens) / (min_score * UNMATCHED_LISTED_COST)
        # Or one word more than the query's, at DROPPED_WORD_COST (see `align`).
        return max(query_tokens + slack, query_tokens + 1.0)

    def _volume(self, token: str, near: Mapping[str, float]) -> int:
        """How many groups hold a neighbour of `token` (remembered with the neighbours)."""
        volume = self._volumes.get(token)
        if volume is None:
            if len(self._volumes) >= NEIGHBOUR_CACHE:
                self._volumes.clear()
            postings = self.postings
            volume = self._volumes[token] = sum(len(postings[n]) for n in near)
        return volume

    def query_weight(self, token: str, near: Mapping[str, float]) -> float:
        cached = self._query_weights.get(token)
        if cached is not None:
            return cached
        if len(self._query_weights) >= NEIGHBOUR_CACHE:
            self._query_weights.clear()
        weight = self._query_weights[token] = self._query_weight(token, near)
        return weight

    def _query_weight(self, token: str, near: Mapping[str, float]) -> float:
        """A listed token weighs as listed; a token not listed (a typo, another spelling, a word in
        Arabic script) as the most frequent of the listed tokens it most likely stands for; a token
        like nothing listed the most."""
        idf = self.weights.get(token)
        if idf is not None:
            return idf * length_factor(token) * generic_factor(token)
        if near:
            best = max(near.values())
            return length_factor(token) * min(
                self.weights[t] * generic_factor(t) for t, s in near.items() if s >= best - 0.02
            )
        return length_factor(token)

    def candidates(self, query: NameQuery, min_score: float = TOKEN_PAIR_MIN) -> list[int]:
        """Groups (distinct listed names) worth aligning with the query, most promising first."""
        return [group for group, _ in self._candidates(query, min_score, self._unglued(query.tokens))]

    def _respaced(self, tokens: tuple[str, ...], unglued: tuple[str, ...] | None) -> list[tuple[str, ...]]:
        """The query's tokens, and the same with two adjacent words written as one listed word
        ("ROSOBORON EXPORT"), with a filler word taken off a word (`unglued`, see `_unglued`), or
        with one word written as two listed words ("DENATANKERS")."""
        variants = [tokens]
        for i in range(len(tokens) - 1):
            first, second = tokens[i], tokens[i + 1]
            if first.isalpha() and second.isalpha() and first + second in self.postings:
                variants.append((*tokens[:i], first + second, *tokens[i + 2 :]))
        if unglued is not None:
            variants.append(unglued)
        for i, token in enumerate(tokens):
            if len(token) >= 6 and token.isalpha() and token not in self.postings:
                for cut in range(3, len(token) - 2):
                    head, tail = token[:cut], token[cut:]
                    if head in self.postings and tail in self.postings:
                        variants.append((*tokens[:i], head, tail, *tokens[i + 1 :]))
        return variants[:MAX_VARIANTS]

    def _filler_off(self, word: str) -> str | None:
        """`word` without a filler word written at its start or end, where what remains is a filler
        word or a listed word of MIN_UNGLUED letters or more."""
        for filler in _GLUED_STOPWORDS:
            for written, rest in (
                (word.startswith(filler), word[len(filler) :]),
                (word.endswith(filler), word[: -len(filler)]),
            ):
                if written and (rest in STOPWORDS or (len(rest) >= MIN_UNGLUED and rest in self.postings)):
                    return rest
        return None

    def _unglued(self, tokens: tuple[str, ...]) -> tuple[str, ...] | None:
        """The query's tokens with a filler word written onto a word taken off ("OFHUMANITY",
        "theRussian", "ANDTRANSPORT", "FORTHE"): the lists drop filler words, so the word matches
        without it. Only for words the lists do not hold whose rest, five letters or more, they do
        ("Ofelia", "Ivanof" and "Andreas" stay whole)."""
        out: list[str] = []
        changed = False
        for token in tokens:
            rest = token
            if token.isalpha() and token not in self.postings:
                # At most two filler words ("FORTHE"), until a filler or listed word remains.
                for _ in range(2):
                    shorter = self._filler_off(rest)
                    if shorter is None:
                        break
                    rest = shorter
                    if rest in STOPWORDS or rest in self.postings:
                        break
            if rest != token:
                changed = True
                if rest and rest not in STOPWORDS:
                    out.append(rest)
            else:
                out.append(token)
        return tuple(out) if changed and out else None

    def _candidates(
        self, query: NameQuery, min_score: float, unglued: tuple[str, ...] | None
    ) -> list[tuple[int, float]]:
        if not query.tokens:
            return []
        ranked: dict[int, float] = {}
        self._retrieve(query.tokens, min_score, ranked)
        # A listed name written in more or fewer words than the query: the groups that hold the
        # joined or split words exactly (the alignment then joins them back).
        for tokens in self._respaced(query.tokens, unglued)[1:]:
            respelled = [t for t in tokens if t not in query.tokens]
            if not respelled:
                continue
            holding = set(self.postings[respelled[0]]).intersection(
                *(self.postings[t] for t in respelled[1:])
            )
            if len(holding) <= MAX_RESPACED:
                for group in holding:
                    ranked[group] = 1.0
            else:
                # A common word ("ENGINEER ING"): gathered as if the query were written so.
                self._retrieve(tokens, min_score, ranked)
        whole = "".join(display_token(t) for t in query.tokens)
        for group in self.compact.get(whole, ()):
            ranked[group] = 1.0
        ordered = sorted(ranked.items(), key=lambda c: (-c[1], c[0]))
        return ordered[:MAX_CANDIDATES]

    def _retrieve(self, tokens: tuple[str, ...], min_score: float, ranked: dict[int, float]) -> None:
        weight: dict[str, float] = defaultdict(float)
        neighbours: dict[str, dict[str, float]] = {}
        for token in tokens:
            near = neighbours.get(token)
            if near is None:
                near = neighbours[token] = self.neighbours(token)
            weight[token] += self.query_weight(token, near)
        query_weight = sum(weight.values(), 0.0)
        limit = self._length_limit(query_weight, len(tokens), min_score)
        # What an unheld query token costs, per unit of its weight: the least of the query's tokens.
        cost = min(
            (unmatched_query_cost(t, w, self.weights.get(t)) / w for t, w in weight.items() if w > 0),
            default=UNMATCHED_QUERY_COST,
        )
        # A group of total weight T scores at most (S + T) / (S + c (W - S) + T), S being the weight
        # of the query tokens it holds a neighbour of and c UNMATCHED_QUERY_COST; with T at most
        # `limit`, it must hold at least `needed`.
        needed = max(
            MIN_SHARED_WEIGHT * query_weight,
            (min_score * cost * query_weight - (1 - min_score) * limit) / (1 - min_score + min_score * cost),
        )
        mandatory = [t for t in weight if query_weight - weight[t] < needed and neighbours[t]]
        volume = {t: self._volume(t, neighbours[t]) for t in mandatory}
        sources = self._sources(weight, mandatory, volume, query_weight, needed)
        found = self._gather(sources, neighbours, limit)
        if not found:
            return
        # Per listed word, the query tokens (bits, in the order of `weight`) it is a neighbour of: a
        # group holds a neighbour of the query tokens whose bits its words carry.
        held: dict[str, int] = {}
        required = 0
        base = 0.0
        optional: list[tuple[int, float]] = []
        for bit_no, (token, token_weight) in enumerate(weight.items()):
            bit = 1 << bit_no
            for listed in neighbours[token]:
                held[listed] = held.get(listed, 0) | bit
            if token in mandatory:
                required |= bit
                base += token_weight
            elif neighbours[token]:
                optional.append((bit, token_weight))
        groups = self.groups
        for group_no in found:
            group = groups[group_no]
            holds = 0
            for listed in group.tokens:
                holds |= held.get(listed, 0)
            if holds & required != required:
                continue
            # Summed in the order of `weight`, mandatory tokens first: the same sum to the last bit.
            shared_weight = base
            for bit, token_weight in optional:
                if holds & bit:
                    shared_weight += token_weight
            if shared_weight < needed:
                continue
            bound = self._bound(group_no, group, shared_weight, query_weight, cost, held, min_score)
            if bound >= min_score and bound > ranked.get(group_no, 0.0):
                ranked[group_no] = bound

    @staticmethod
    def _sources(
        weight: dict[str, float],
        mandatory: list[str],
        volume: dict[str, int],
        query_weight: float,
        needed: float,
    ) -> list[str]:
        """The query tokens whose neighbours' groups are gathered."""
        if mandatory:
            # Every candidate holds each of these: gather from the one with the fewest postings.
            return [min(mandatory, key=volume.__getitem__)]
        # The most informative tokens first, until those left could not carry a match alone.
        sources: list[str] = []
        remaining = query_weight
        for token in sorted(weight, key=lambda t: (-weight[t], t)):
            sources.append(token)
            remaining -= weight[token]
            if remaining < needed:
                break
        return sources

    def _gather(self, sources: list[str], neighbours: dict[str, dict[str, float]], limit: float) -> set[int]:
        """The groups holding a neighbour of a source token, no heavier than `limit`."""
        found: set[int] = set()
        postings, totals = self.postings, self._group_totals
        for token in sources:
            for listed in neighbours[token]:
                posting = postings[listed]
                # Ordered by total: when the heaviest is light enough, so is every one.
                if totals[posting[-1]] <= limit:
                    found.update(posting)
                else:
                    found.update(islice(posting, bisect_right(posting, limit, key=totals.__getitem__)))
        return found

    def _bound(
        self,
        group_no: int,
        group: TokenGroup,
        shared_weight: float,
        query_weight: float,
        cost: float,
        matchable: dict[str, int],
        min_score: float,
    ) -> float:
        """An upper bound of the group's score (-1 when it cannot reach `min_score`). It grows with
        the reachable weight, at most the group's total: a group that fails with all of it
        reachable fails (the margin only absorbs rounding). `matchable`: the listed words some
        query token may stand for."""
        listed_total = self._group_totals[group_no]
        unshared = shared_weight + cost * (query_weight - shared_weight)
        if shared_weight + listed_total < min_score * (unshared + listed_total) * (1 - 1e-9):
            return -1.0
        # Every query token with a neighbour here aligned perfectly, and so every listed token
        # that is such a neighbour; the other listed tokens are left over.
        tokens = group.tokens
        if all(t in matchable for t in tokens):
            reachable = listed_total
        else:
            # Summed in order from 0.0, as `sum` would (a loop: no generator, no zip called by name).
            reachable = 0.0
            weights = group.weights
            for i in range(len(tokens)):
                if tokens[i] in matchable:
                    reachable += weights[i]
        # A long name, or one whose ends are held, may be short of one word at DROPPED_WORD_COST
        # (see `align`).
        short_of_one = len(tokens) >= DROPPED_WORD_NAME or (
            len(tokens) == 3 and tokens[0] in matchable and tokens[2] in matchable
        )
        listed_cost = DROPPED_WORD_COST if short_of_one else UNMATCHED_LISTED_COST
        return (shared_weight + reachable) / (
            shared_weight
            + cost * (query_weight - shared_weight)
            + reachable
            + listed_cost * (listed_total - reachable)
        )

    # --- scoring --------------------------------------------------------------------------------

    def match(self, query: NameQuery, *, min_score: float) -> list[Match]:
        # A filler word written onto a word ("OFHUMANITY"): the name without it is aligned as well.
        unglued = self._unglued(query.tokens)
        ranked = self._candidates(query, min_score, unglued)
        if not ranked:
            return []
        neighbours = {t: self.neighbours(t) for t in (*query.tokens, *(unglued or ()))}

        def weights_and_costs(tokens: tuple[str, ...]) -> tuple[list[float], list[float]]:
            weights = [self.query_weight(t, neighbours[t]) for t in tokens]
            costs = [
                unmatched_query_cost(t, w, self.weights.get(t)) for t, w in zip(tokens, weights, strict=True)
            ]
            return weights, costs

        query_weights, query_costs = weights_and_costs(query.tokens)
        if unglued is not None:
            unglued_weights, unglued_costs = weights_and_costs(unglued)
        if query.ranked is not None:
            neighbours.update((t, self.neighbours(t)) for t in query.ranked if t not in neighbours)
            rank_w, rank_c = weights_and_costs(query.ranked)
        computed: dict[tuple[str, str], float] = {}
        # A name with one informative word carries little evidence: that word must be spelled
        # right to the letter, bar one slip in a long word or another romanisation of it.
        informative = [t for t in query.tokens if len(display_token(t)) >= 3 and generic_factor(t) == 1.0]
        strict = informative[0] if len(informative) == 1 and STRICT_SINGLE_WORD else None

        def known(q: str, listed: str) -> float:
            value = neighbours[q].get(listed, 0.0)
            if q == strict and value < 1.0:
                return strict_similarity(q, listed, value, query_listed=q in self.postings)
            return value

        def exact(q: str, listed: str) -> float:
            pair = (q, listed)
            value = computed.get(pair)
            if value is None:
                # Most leftover pairs share little: Indel in C says so before the full comparison
                # (an abbreviation shares little by its nature: "intl", "international").
                if Indel.normalized_similarity(q, listed, score_cutoff=0.5) == 0.0:
                    value = abbreviation_similarity(q, listed)
                else:
                    value = token_similarity(q, listed)
                    if q == strict and value < 1.0:
                        value = strict_similarity(q, listed, value, query_listed=q in self.postings)
                computed[pair] = value
            return value

        best: dict[int, Match] = {}
        compact = "".join(display_token(t) for t in query.tokens)
        for group_no, _ in ranked:
            group = self.groups[group_no]
            scored = align(
                query.tokens, query_weights, group.tokens, group.weights, known, exact, query_costs
            )
            if query.ranked is not None:  # the rank is optional on both sides (`AnalysedName.ranked`)
                with_rank = align(query.ranked, rank_w, group.tokens, group.weights, known, exact, rank_c)
                scored = with_rank if with_rank.score > scored.score else scored
            if scored.score < COMPACT_SCORE and len(compact) >= MIN_COMPACT:
                scored = _compact_match(query.tokens, group.tokens, compact) or scored
            if unglued is not None:
                respaced = align(
                    unglued, unglued_weights, group.tokens, group.weights, known, exact, unglued_costs
                )
                # A guess at the spacing is never certain: at most a romanisation's score.
                if min(respaced.score, ROMANISATION_MAX) > scored.score:
                    scored = dataclasses.replace(respaced, score=min(respaced.score, ROMANISATION_MAX))
            if scored.score < min_score:
                continue
            for name_no in group.names:
                self._keep_best(best, query, name_no, scored)
        return [best[n] for n in sorted(best)]

    def _keep_best(self, best: dict[int, Match], query: NameQuery, name_no: int, scored: NameScore) -> None:
        name = self.names[name_no]
        entry = self.entries[name.entry]
        if query.entry_type is not None and entry.entry_type not in (None, query.entry_type):
            return
        current = best.get(name.entry)
        # The better score; on a tie the entry's own name before an alias, a strong alias before a weak one.
        if current is not None and (
            current.name_score.score,
            not current.matched_alias,
            not current.weak_alias,
        ) >= (
            scored.score,
            not name.alias,
            not name.weak,
        ):
            return
        agreement = (
            query.country in entry.countries if query.country is not None and entry.countries else None
        )
        best[name.entry] = Match(entry, name.text, name.alias, scored, agreement, name.weak)
