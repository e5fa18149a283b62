"""Name scoring for screening: token similarity, token weights and one-to-one token alignment.

A score says how much of both names' information is aligned: every token carries a weight (its
rarity on the lists, discounted for short tokens), every aligned pair counts with its similarity,
every token left over costs its weight. Identical token sets score exactly 1.0, in any order.

Pure functions; no I/O.

Compiled with mypyc when built (`make native`; see services/screening/__init__.py): sums of floats
start at 0.0, since mypyc reads `sum()` of a generator as an int otherwise and fails at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from services.screening.normalise import (
    ABJAD_MARK,
    GENERIC_WORDS,
    GREEK_MARK,
    HAN_MARK,
    display_token,
    greek_key,
    romanisation_key,
    skeleton,
    skeletons,
    slavic_respellings,
    sounds,
    spelling,
    split_words,
)

TOKEN_PAIR_MIN: Final = 0.8
"""Two tokens less similar than this are not aligned at all."""

SHORT_TOKEN: Final = 4
"""Tokens of this many letters or fewer are compared letter by letter, not by Jaro-Winkler."""

SHORT_ONE_EDIT: Final = 0.8
"""A short token one slip from another ("luis"/"lusi", "kwon"/"kwof") is at least this similar,
unless the slip is its first letter changed (`_short_slip`)."""

ROMANISATION_MAX: Final = 0.95
"""Two romanisations of one name ("yevgeniy"/"evgenii") align at most this well: only the same
spelling is certain."""

ABJAD_SIMILARITY: Final = 0.92
"""A token written in Arabic script aligns with a romanised one at most this well: its short vowels
are unknown, so the best such name match is a potential match for review, never a certain one."""

UNMATCHED_LISTED_COST: Final = 0.45
"""Share of its weight that a listed token left unmatched costs. Lists spell names in full
(patronymics, second given names, "... Trading Company"); orders often shorten them."""

UNMATCHED_QUERY_COST: Final = 0.8
"""Share of its weight that a party's token the list lacks costs: it says the party may be someone
else."""


DROPPED_WORD_NAME: Final = 4
DROPPED_WORD_COST: Final = 0.2
"""Share of its weight that one listed word left out of a name of DROPPED_WORD_NAME words or more
costs, when it is not the name's most telling word and the party's name is all found in it; and
one word left out of the middle of a name of three words or more whose first and last words the
party's name holds, every other word spelled as listed (`dropped_middle`: one shortening at a time;
a slip beside it is as likely another person, "Julie Ramirez" for "Julio Cesar RAMIREZ")."""


def dropped_middle(listed_length: int, dropped: int, first_held: bool, last_held: bool) -> bool:
    """Whether the listed word at `dropped` is one left out of the middle of the name, its first and
    last words held: records shorten names so, a patronymic or a second given name ("Viktor BOUT"
    for "Viktor Anatolijevitch BOUT", "Diego ROMERO" for "Diego AYALA ROMERO"), a word inside a
    company's name ("Nordic Machinery" for "Nordic Heavy Machinery"), however rare that word is:
    the ends of a name are what an order keeps of it."""
    return listed_length >= 3 and 0 < dropped < listed_length - 1 and first_held and last_held


COMMON_WORD_DISCOUNT: Final = 0.7
"""Share of `UNMATCHED_QUERY_COST` waived for a party's word as frequent on the lists as can be
(a given name, "trading", a city): such a word says little about who the party is not."""


def unmatched_query_cost(token: str, weight: float, idf: float | None) -> float:
    """What a party's token the list lacks costs: `UNMATCHED_QUERY_COST` of its weight for a word
    the lists hold rarely, down to (1 - COMMON_WORD_DISCOUNT) of that for the most frequent (`idf`
    its rarity on the lists); a word the lists never hold costs as the rarest would, whatever
    listed word it resembles."""
    if idf is None:
        return UNMATCHED_QUERY_COST * max(weight, length_factor(token) * generic_factor(token))
    return UNMATCHED_QUERY_COST * (1 - COMMON_WORD_DISCOUNT * (1 - idf)) * weight


def _edit_similarity(query: str, listed: str) -> float:
    """Jaro-Winkler for tokens one edit apart (it keeps "hazprom"/"gazprom" at 0.90, where an edit
    ratio gives 0.86), for tokens of five letters or more; beyond one edit the share of letters
    spelled right caps it, because Jaro-Winkler rewards a shared prefix ("siemens"/"siemensstadt"
    0.92) and scattered shared letters ("acme"/"amen", "angela"/"rangel")."""
    longest = max(len(query), len(listed))
    edits = OSA.distance(query, listed)
    letters = 1 - edits / longest
    if min(len(query), len(listed)) <= SHORT_TOKEN:
        # In a word of four letters or fewer one slip is a quarter of it ("peng"/"teng", "jin"/"jing").
        return max(letters, SHORT_ONE_EDIT) if _short_slip(query, listed, edits) else letters
    similarity = JaroWinkler.normalized_similarity(query, listed)
    if edits <= 1:
        # Jaro matches letters greedily within a window, so a repeated letter can pull it down
        # ("rystrobank"/"bystrobank" 0.86); one edit in n letters is never worth less than 1 - 1/n.
        return max(similarity, letters)
    return min(similarity, letters)


# First letters romanisations write for one sound ("Kim"/"Gim", "Yong"/"Jong", "Dae"/"Tae").
_INITIAL_VARIANTS: Final = frozenset(
    frozenset(pair) for pair in ("gk", "kc", "kq", "dt", "bp", "jy", "iy", "ij", "cs", "sz", "fv", "wv")
)


def _short_slip(query: str, listed: str, edits: int) -> bool:
    """One slip in a short word, other than its first letter changed for another sound: "Ting" and
    "Ming", "Jara" and "Lara" are other names, "Kim" and "Gim" one."""
    if edits != 1:
        return False
    if query[0] == listed[0] or query[1:] != listed[1:]:
        return True
    return frozenset((query[0], listed[0])) in _INITIAL_VARIANTS


def romanisation_similarity(query: str, listed: str) -> float:
    """How close two Latin tokens are as romanisations: an edit distance in which a different vowel
    costs half a letter (the mean of the distances between their `spelling`s, vowels kept, and
    between their `romanisation_key`s, vowels alike), after respelling digraphs that stand for one
    sound. "mohammed"/"muhammad" 0.88, "youssef"/"yusuf" 0.90, "hussein"/"hassan" 0.75."""
    spelled_q, spelled_l = spelling(query), spelling(listed)
    longest = max(len(spelled_q), len(spelled_l))
    if not longest:
        return 0.0
    if min(len(query), len(listed)) <= SHORT_TOKEN and spelled_q != spelled_l:
        # In a short word another vowel is another name ("pin"/"pan", "jing"/"zhang"), unless the
        # two are one spelling written two ways ("yuri"/"iurii").
        return 0.0
    cost = Levenshtein.distance(spelled_q, spelled_l) + Levenshtein.distance(
        romanisation_key(query), romanisation_key(listed)
    )
    return min(ROMANISATION_MAX, 1 - 0.5 * cost / longest)


# `sounds` of the words compared through short skeletons, remembered: a word in Arabic script is
# compared with every listed word of its skeleton, hundreds for two consonants.
_SOUNDS: dict[tuple[str, bool, bool], str] = {}
SOUNDS_MEMO: Final = 100_000


def _sounds(token: str, digraphs: bool, vowel_h: bool) -> str:
    key = (token, digraphs, vowel_h)
    known = _SOUNDS.get(key)
    if known is None:
        if len(_SOUNDS) >= SOUNDS_MEMO:
            _SOUNDS.clear()
        known = _SOUNDS[key] = sounds(token, digraphs=digraphs, vowel_h=vowel_h)
    return known


def _short_skeletons_agree(query: str, listed: str, consonants: int) -> bool:
    """Whether two tokens of one skeleton of three consonants or fewer, shared by many names
    ("ishaq", "shuwayki"), are one name. A word in Arabic script leaves its short vowels out:
    - with two consonants or fewer, a romanisation of it is up to about twice as long ("مس"/"musse",
      "اتلة"/"ataullah"), never shorter by more than a letter (two words in one script: as long
      as each other, give or take a letter);
    - the long vowels it writes must all be heard, in place, in the romanisation: "الأيوبي"
      (al-Ayyubi) is not "Pouya", "الحكير" (al-Hukair) not "Haucore", though their consonants
      agree; an initial alif stands for any vowel."""
    query_length, listed_length = len(display_token(query)), len(display_token(listed))
    if query.startswith(ABJAD_MARK) == listed.startswith(ABJAD_MARK):
        return consonants > 2 or abs(query_length - listed_length) <= 1
    written, heard = (query, listed) if query.startswith(ABJAD_MARK) else (listed, query)
    if consonants <= 2:
        written_length, heard_length = (
            (query_length, listed_length) if written is query else (listed_length, query_length)
        )
        if not written_length - 1 <= heard_length <= 2 * written_length + 1:
            return False
    # The romanised word as Arabic or Persian spells it: "z" may be ض ("Reza" رضا), "v" و ("Javad").
    spelled = [heard]
    if "z" in heard:
        spelled.append(heard.replace("z", "d"))
    if "v" in heard:
        spelled.extend([h.replace("v", "w") for h in spelled])
    # A Latin final h after a vowel is a vowel's ("Fatemeh" فاطمه) or a consonant's ("Saleh" صالح).
    readings = [_sounds(h, True, final_h) for h in spelled for final_h in (True, False)]
    for heard_letters in dict.fromkeys(readings):
        for written_letters in dict.fromkeys((_sounds(written, True, True), _sounds(written, False, True))):
            heard_rest = heard_letters
            if written_letters[:1] == "A":
                written_letters = written_letters[1:]
                heard_rest = heard_letters[1:] if heard_letters[:1] in ("A", "W", "Y") else heard_letters
            remaining = iter(heard_rest)
            if all(letter in remaining for letter in written_letters):
                return True
    return False


ABBREVIATION: Final = 0.9
"""A word written shortened the way records shorten it ("Intl", "Mfg", "Trdg", "Md") aligns with the
word at most this well."""
MUHAMMAD_SHORT: Final = frozenset(("md", "mohd", "muhd", "mhd"))


def abbreviation_similarity(query: str, listed: str) -> float:
    """ABBREVIATION where one token is the other shortened: a generic word of company names cut
    short ("tech", "univ": three letters or more of its beginning) or contracted (`_contracted`:
    "intl", "natl", "devt", "mgmt", "grp"), or a usual short form of Muhammad ("Md", "Mohd");
    else 0. Names are never read as abbreviations: "Ali" is not "Alawi"."""
    short, long = (query, listed) if len(query) < len(listed) else (listed, query)
    if len(short) < 2 or short[0] != long[0] or not (short.isalpha() and long.isalpha()):
        return 0.0
    if short in MUHAMMAD_SHORT:
        return ABBREVIATION if skeleton(long) == "mhmd" else 0.0
    if long not in GENERIC_WORDS or len(long) < len(short) + 2:
        return 0.0
    if len(short) >= 3 and long.startswith(short):
        return ABBREVIATION
    return ABBREVIATION if _contracted(short, long) else 0.0


def _contracted(short: str, long: str) -> bool:
    """Whether `short` is `long` contracted as records contract a word: its beginning, then
    consonants of the rest in order down to its last letter, four letters or more ("natl"
    national, "devt" development, "prodn" production, "mgmt"); in three letters only all of its
    consonants ("grp" group), since three letters are as often an acronym ("CMS" is not
    "commodities", "INT" not "investment"). A vowel after the beginning makes a name ("Ting" is
    not "trading", "Natan" not "national"); so does a word that does not end as the generic word."""
    if len(short) < 3 or short[-1] != long[-1]:
        return False
    if len(short) == 3:
        return short == "".join(letter for letter in long if letter not in "aeiouy")
    kept = 0
    while kept < len(short) - 1 and short[kept] == long[kept]:
        kept += 1
    rest = short[kept:]
    if any(letter in "aeiouy" for letter in rest):
        return False
    remaining = iter(long[kept:])
    return all(letter in remaining for letter in rest)


def token_similarity(query: str, listed: str) -> float:
    """0..1; 1.0 only for equal tokens. Numbers match only exactly (a vessel's IMO number, "Plant
    No. 5"); tokens written in Arabic script through their consonant skeletons."""
    if query == listed:
        return 1.0
    if query.startswith(HAN_MARK) or listed.startswith(HAN_MARK):
        return 1.0 if display_token(query) == display_token(listed) else 0.0
    if query.startswith(ABJAD_MARK) or listed.startswith(ABJAD_MARK):
        return _abjad_similarity(query, listed)
    if query.startswith(GREEK_MARK) or listed.startswith(GREEK_MARK):
        return _greek_similarity(query, listed)
    if not (query.isalpha() and listed.isalpha()):
        return 0.0
    return max(
        _edit_similarity(query, listed),
        romanisation_similarity(query, listed),
        abbreviation_similarity(query, listed),
    )


def _abjad_similarity(query: str, listed: str) -> float:
    """Two tokens, one at least written in Arabic script, through their consonant skeletons (a Latin
    token's Persian and Arabic spellings too: `skeletons`)."""
    for query_skeleton in skeletons(query):
        for listed_skeleton in skeletons(listed):
            if query_skeleton == listed_skeleton:
                if len(query_skeleton) <= 3 and not _short_skeletons_agree(
                    query, listed, len(query_skeleton)
                ):
                    return 0.0
                return ABJAD_SIMILARITY
    query_skeleton, listed_skeleton = skeleton(query), skeleton(listed)
    if min(len(query_skeleton), len(listed_skeleton)) < 5:
        return 0.0  # a skeleton of four consonants is most of a name: one off is another name
    return ABJAD_SIMILARITY * (
        1 - OSA.distance(query_skeleton, listed_skeleton) / max(len(query_skeleton), len(listed_skeleton))
    )


GREEK_MAX: Final = ROMANISATION_MAX
"""A token written in Greek script aligns with a Latin one at most this well: Greek spells foreign
sounds its own way (μπ for b, ντ for d or nt, χ for h, kh or ch), so only the same script is certain."""


def _greek_similarity(query: str, listed: str) -> float:
    """The better of two readings: the Greek token's letters as romanised (`token_similarity` of the
    plain spellings) and both tokens as Greek would write them (`greek_key`), where one letter off
    in n costs 1/n as in an edit distance."""
    plain_query, plain_listed = display_token(query), display_token(listed)
    if plain_query == plain_listed:
        return GREEK_MAX
    plain = (
        token_similarity(plain_query, plain_listed)
        if plain_query.isalpha() and plain_listed.isalpha()
        else 0.0
    )
    key_query, key_listed = greek_key(query), greek_key(listed)
    longest = max(len(key_query), len(key_listed))
    if key_query == key_listed:
        keyed = 1.0
    elif min(len(key_query), len(key_listed)) <= SHORT_TOKEN:
        keyed = 0.0  # in a short word another letter is another name
    else:
        keyed = 1 - OSA.distance(key_query, key_listed) / longest
    return min(GREEK_MAX, max(plain, keyed))


GENERIC_WEIGHT: Final = 0.5
"""Weight factor of a generic word of company names ("trading", "group", "international")."""


def generic_factor(token: str) -> float:
    """GENERIC_WEIGHT for a generic word of company names ("trading", "group"), else 1."""
    return GENERIC_WEIGHT if token in GENERIC_WORDS else 1.0


def strict_similarity(query: str, listed: str, similarity: float, *, query_listed: bool = False) -> float:
    """`similarity` held to the share of letters spelled right (one slip in five letters is 0.8),
    unless the two spell one sound in two romanisations ("khalil"/"halil"): for a name of one
    informative word, where Jaro-Winkler's reward for a shared beginning ("horak"/"horae" 0.92) or a
    vowel read another way ("horak"/"hirak") would be all the evidence.

    One slip in a word of SLIP_WORD letters or more scores ONE_SLIP at least, just over the review
    threshold: whether it is a typo or another real name ("Masson"/"MASON") is for the calibrated
    evidence to say, by how common the word is in the world and on the lists (`common_slip`,
    `world_common`), not for the spelling alone. A letter added or left out at the end is another
    name more often than not ("Martins"); a party word the lists hold (`query_listed`: "MARTINS",
    "RIVERA") is another listed name, read as itself."""
    if not (query.isalpha() and listed.isalpha()):
        return similarity  # Arabic or Greek script, numbers: compared their own way
    if similarity <= ABBREVIATION and abbreviation_similarity(query, listed) > 0.0:
        # A generic word written short ("Res" for RESEARCH, "Engg" for ENGINEERING) is that word,
        # not a slip of it: its letters are not all there by the nature of the shortening.
        return similarity
    edits = OSA.distance(query, listed)
    letters = 1 - edits / max(len(query), len(listed))
    if spelling(query) == spelling(listed) and min(len(query), len(listed)) > SHORT_TOKEN:
        return min(similarity, max(letters, ROMANISATION_MAX))
    if min(len(query), len(listed)) > SHORT_TOKEN and any(
        spelling(respelled) == spelling(listed) for respelled in slavic_respellings(query)
    ):
        # Another romanisation of Cyrillic ("OXRANA" GOST 7.79 for OKHRANA, "KRIMTEZ" German for
        # KRYMTETS): read back by that system's letters, the word is spelled as listed. As one
        # slip: whether it is the listed name ("Senko" read "Zenko") is the evidence's to say.
        return min(similarity, max(letters, ONE_SLIP))
    if edits == 1 and abs(len(query) - len(listed)) == 1 and (query[:-1] == listed or listed[:-1] == query):
        # A letter added or left out at the end: another name more often than not ("Martins",
        # "Martin"; "Roberts", "Robert").
        return min(similarity, letters * LISTED_SLIP)
    if edits == 1 and not query_listed and min(len(query), len(listed)) >= SLIP_WORD:
        return min(similarity, max(letters, ONE_SLIP))
    return min(similarity, letters * LISTED_SLIP if query_listed else letters)


SLIP_WORD: Final = 6
ONE_SLIP: Final = 0.85
"""One slip in a word of SLIP_WORD letters ("DARKNO"/"DARKON", "Bavaud"/"BAVAND") scores this, just
over the review threshold, where 1 - 1/6 would leave it under; the calibrated evidence lowers it
for a word common in the world or on the lists, where one letter off is often another name."""

LISTED_SLIP: Final = 0.97
"""Factor on the share of letters spelled right when the party's word is itself a listed word."""


def similar_tokens(query: str, listed: Sequence[str], minimum: float = TOKEN_PAIR_MIN) -> dict[str, float]:
    """`token_similarity` of `query` with each of `listed`, kept where at least `minimum`: the same
    figures, with the distances computed for all of `listed` at once (in C)."""
    if not listed:
        return {}
    if query.startswith(ABJAD_MARK) or not query.isalpha():
        return {t: s for t in listed if (s := token_similarity(query, t)) >= minimum}
    # Two passes in C keep the few that may reach `minimum`: by Jaro-Winkler (an edit-based figure
    # is at most it, bar one edit in a long word, which Jaro-Winkler then rates higher still), or
    # by romanisation key (a variant costs at least half a letter per key edit, twice over).
    alpha = [t for t in listed if t.isalpha()]
    spelled_query = spelling(query)
    key_query = romanisation_key(query)
    allowed = int((1 - minimum) * (len(spelled_query) + 2) + 1e-9)
    if len(alpha) <= 12:
        plausible: Iterable[int] = range(len(alpha))
    else:
        plausible = _plausible(query, key_query, alpha, minimum, allowed)
    out: dict[str, float] = {}
    for i in plausible:
        token = alpha[i]
        similarity = _listed_similarity(query, token, spelled_query, key_query, allowed)
        if similarity >= minimum:
            out[token] = similarity
    return out


def _listed_similarity(query: str, token: str, spelled_query: str, key_query: str, allowed: int) -> float:
    """`token_similarity` of two Latin tokens, with the query's spelling and key computed once."""
    if token == query:
        return 1.0
    edits = OSA.distance(query, token)
    letters = 1 - edits / (len(query) if len(query) > len(token) else len(token))
    if len(query) <= SHORT_TOKEN or len(token) <= SHORT_TOKEN:
        similarity = max(letters, SHORT_ONE_EDIT) if _short_slip(query, token, edits) else letters
    else:
        jaro_winkler = JaroWinkler.normalized_similarity(query, token)
        if edits <= 1:
            similarity = jaro_winkler if jaro_winkler > letters else letters
        else:
            similarity = jaro_winkler if jaro_winkler < letters else letters
    if similarity < ROMANISATION_MAX and (
        (len(query) > SHORT_TOKEN and len(token) > SHORT_TOKEN) or spelling(token) == spelled_query
    ):
        key_edits = Levenshtein.distance(key_query, romanisation_key(token), score_cutoff=allowed)
        if key_edits <= allowed:
            spelled = spelling(token)
            longest = len(spelled_query) if len(spelled_query) > len(spelled) else len(spelled)
            variant = 1 - 0.5 * (Levenshtein.distance(spelled_query, spelled) + key_edits) / longest
            if variant > similarity:
                similarity = variant if variant < ROMANISATION_MAX else ROMANISATION_MAX
    if similarity < ABBREVIATION:
        similarity = max(similarity, abbreviation_similarity(query, token))
    return similarity


def _plausible(query: str, key_query: str, alpha: list[str], minimum: float, allowed: int) -> set[int]:
    plausible = {
        i
        for _, _, i in process.extract(
            query, alpha, scorer=JaroWinkler.normalized_similarity, score_cutoff=minimum - 0.01, limit=None
        )
    }
    plausible.update(
        i
        for _, _, i in process.extract(
            key_query,
            [romanisation_key(t) for t in alpha],
            scorer=Levenshtein.distance,
            score_cutoff=allowed,
            limit=None,
        )
    )
    return plausible


def length_factor(token: str) -> float:
    """Tokens under six letters say less: initials and particles ("al", "fy", "de")."""
    return min(1.0, (len(display_token(token)) + 2) / 8)


def token_weight(token: str, idf: Mapping[str, float]) -> float:
    """How much a token identifies a name: its rarity on the lists (1.0 for a token not listed),
    discounted by `length_factor` and `generic_factor`."""
    return idf.get(token, 1.0) * length_factor(token) * generic_factor(token)


@dataclass(frozen=True, slots=True)
class NameScore:
    score: float
    pairs: tuple[tuple[str, str, float], ...]
    unmatched_query: tuple[str, ...]
    unmatched_listed: tuple[str, ...]
    # The share of each name's weight left unaligned (the calibrated signals read them).
    query_unexplained: float = 0.0
    listed_unexplained: float = 0.0


def align(
    query: Sequence[str],
    query_weights: Sequence[float],
    listed: Sequence[str],
    listed_weights: Sequence[float],
    similarity: Callable[[str, str], float],
    leftover_similarity: Callable[[str, str], float] | None = None,
    query_costs: Sequence[float] | None = None,
) -> NameScore:
    """One-to-one alignment of tokens, most similar pairs first; the score is the weighted share of
    both names' tokens that are aligned, each pair counting with its similarity. Identical token
    multisets score 1.0; every token left over lowers the score by a share of its weight:
    `UNMATCHED_QUERY_COST` for the party's, `UNMATCHED_LISTED_COST` for the list's (all of it, and
    without the generic-word discount, when the party's name aligns only one informative word).

    `query_costs` are what each party's token costs when left over (`unmatched_query_cost`;
    `UNMATCHED_QUERY_COST` of its weight when not given).

    `similarity` may know only the likely pairs (the index's neighbours); `leftover_similarity`
    then compares the tokens left over on both sides once more. A word written as two, or two words
    written as one ("MELNICHE NKO", "AZATFERDINANDOVICH"), align as one pair.
    """
    compare_leftovers = leftover_similarity or similarity
    # (query positions, listed positions, similarity); positions are runs of adjacent tokens
    pairs: list[tuple[tuple[int, ...], tuple[int, ...], float]] = []
    used_q: set[int] = set()
    used_l: set[int] = set()

    def pair_greedily(
        compare: Callable[[str, str], float], rows: Iterable[int], columns: Sequence[int]
    ) -> None:
        candidates: list[tuple[float, int, int]] = []
        for qi in rows:
            q = query[qi]
            for li in columns:
                pair_similarity = compare(q, listed[li])
                if pair_similarity >= TOKEN_PAIR_MIN:
                    candidates.append((pair_similarity, qi, li))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        for pair_similarity, qi, li in candidates:
            if qi in used_q or li in used_l:
                continue
            used_q.add(qi)
            used_l.add(li)
            pairs.append(((qi,), (li,), pair_similarity))

    pair_greedily(similarity, range(len(query)), range(len(listed)))
    if len(used_q) < len(query) and len(used_l) < len(listed):
        pair_greedily(
            compare_leftovers,
            [qi for qi in range(len(query)) if qi not in used_q],
            [li for li in range(len(listed)) if li not in used_l],
        )
    left_over_both = len(used_q) < len(query) and len(used_l) < len(listed)
    if left_over_both or (
        (len(used_q) < len(query) or len(used_l) < len(listed)) and any(p[2] < 1.0 for p in pairs)
    ):
        _join_split_words(query, listed, pairs, used_q, used_l, compare_leftovers)

    aligned = sum(
        (
            s * (sum((query_weights[i] for i in qs), 0.0) + sum((listed_weights[i] for i in ls), 0.0))
            for qs, ls, s in pairs
        ),
        0.0,
    )
    left_q = [qi for qi in range(len(query)) if qi not in used_q]
    left_l = [li for li in range(len(listed)) if li not in used_l]
    # A listed name shortened by an order ("Khalid Qaddour" for "Khalid Ahmed Qaddour") keeps two
    # informative words at least; one word found in a longer listed name is weak evidence, and the
    # listed words it leaves over count in full.
    informative = sum(
        1
        for qs, _, _ in pairs
        for i in qs
        if len(display_token(query[i])) >= 3 and generic_factor(query[i]) == 1.0
    )
    dropped = [li for li in left_l if len(display_token(listed[li])) > 2]
    if (
        len(dropped) == 1
        and not left_q
        and informative >= 2
        and all(p[2] >= 1.0 for p in pairs)
        and dropped_middle(len(listed), dropped[0], 0 in used_l, len(listed) - 1 in used_l)
    ) or (
        len(dropped) == 1
        and not left_q
        and len(listed) >= DROPPED_WORD_NAME
        and listed_weights[dropped[0]] <= max((listed_weights[li] for li in used_l), default=0.0)
    ):
        # A long name short of one word, and not its most telling one ("Nordic Machinery Trading"
        # for "Nordic Heavy Machinery Trading"), with a particle before it ("AL-CHAM"): how records
        # shorten long names.
        listed_left_over = DROPPED_WORD_COST * listed_weights[dropped[0]] + UNMATCHED_LISTED_COST * sum(
            (listed_weights[li] for li in left_l if li != dropped[0]), 0.0
        )
    elif informative >= 2:
        listed_left_over = UNMATCHED_LISTED_COST * sum((listed_weights[li] for li in left_l), 0.0)
    else:
        # Nor is a generic word left over then a detail: "WAGNER" is not "WAGNER GROUP".
        listed_left_over = sum((listed_weights[li] / generic_factor(listed[li]) for li in left_l), 0.0)
    total = (
        sum((query_weights[qi] for qi in used_q), 0.0)
        + (
            sum((query_costs[qi] for qi in left_q), 0.0)
            if query_costs is not None
            else UNMATCHED_QUERY_COST * sum((query_weights[qi] for qi in left_q), 0.0)
        )
        + sum((listed_weights[li] for li in used_l), 0.0)
        + listed_left_over
    )
    score = min(1.0, aligned / total) if total else 0.0
    query_total = sum(query_weights, 0.0)
    listed_total = sum(listed_weights, 0.0)
    pairs.sort(key=lambda p: p[0][0])
    return NameScore(
        score=round(score, 4),
        pairs=tuple(
            (
                " ".join(display_token(query[i]) for i in qs),
                " ".join(display_token(listed[i]) for i in ls),
                round(s, 4),
            )
            for qs, ls, s in pairs
        ),
        unmatched_query=tuple(display_token(query[i]) for i in left_q),
        unmatched_listed=tuple(display_token(listed[i]) for i in left_l),
        query_unexplained=round(sum((query_weights[i] for i in left_q), 0.0) / query_total, 4)
        if query_total
        else 0.0,
        listed_unexplained=round(sum((listed_weights[i] for i in left_l), 0.0) / listed_total, 4)
        if listed_total
        else 0.0,
    )


JOINED_MIN: Final = ROMANISATION_MAX
"""Two words of one side written as one word of the other align when at least this similar."""


def _join_split_words(
    query: Sequence[str],
    listed: Sequence[str],
    pairs: list[tuple[tuple[int, ...], tuple[int, ...], float]],
    used_q: set[int],
    used_l: set[int],
    compare: Callable[[str, str], float],
) -> None:
    """Words written together on one side and apart on the other ("MELNICHE NKO"/"MELNICHENKO",
    "ANDREYIGOREVICH"/"ANDREY IGOREVICH") align as one pair: unaligned neighbours, written
    together, are compared with unaligned words of the other side, and aligned pairs grow by an
    unaligned neighbour when the words written together match better."""

    def joined(tokens: Sequence[str], positions: Sequence[int]) -> str:
        return "".join(display_token(tokens[i]) for i in positions)

    def similarity(query_positions: Sequence[int], listed_positions: Sequence[int]) -> float:
        q, words = joined(query, query_positions), joined(listed, listed_positions)
        if q == words:
            return 1.0
        if abs(len(q) - len(words)) > 0.25 * max(len(q), len(words)):
            return 0.0
        return compare(q, words)

    # Seed: two adjacent unaligned words of one side against one unaligned word of the other.
    for side_q in (True, False):
        tokens, used, other_tokens, other_used = (
            (query, used_q, listed, used_l) if side_q else (listed, used_l, query, used_q)
        )
        for i in range(len(tokens) - 1):
            if i in used or i + 1 in used:
                continue
            best: tuple[float, int] | None = None
            for j in range(len(other_tokens)):
                if j in other_used:
                    continue
                value = similarity((i, i + 1), (j,)) if side_q else similarity((j,), (i, i + 1))
                # Written apart and misspelled is one slip too many: "Kayla Li" is not "KAYALI".
                if value >= JOINED_MIN and (best is None or value > best[0]):
                    best = (value, j)
            if best is not None:
                value, j = best
                pairs.append(((i, i + 1), (j,), value) if side_q else ((j,), (i, i + 1), value))
                used.update((i, i + 1))
                other_used.add(j)
    # Grow: an aligned pair takes in an unaligned neighbour when that matches better.
    grown = True
    while grown:
        grown = False
        for n, (qs, ls, current) in enumerate(pairs):
            if current >= 1.0:
                continue
            options: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
            for extra in (qs[0] - 1, qs[-1] + 1):
                if 0 <= extra < len(query) and extra not in used_q:
                    options.append((tuple(sorted((*qs, extra))), ls))
            for extra in (ls[0] - 1, ls[-1] + 1):
                if 0 <= extra < len(listed) and extra not in used_l:
                    options.append((qs, tuple(sorted((*ls, extra)))))
            for new_qs, new_ls in options:
                value = similarity(new_qs, new_ls)
                if value > current and value >= JOINED_MIN:
                    pairs[n] = (new_qs, new_ls, value)
                    used_q.update(new_qs)
                    used_l.update(new_ls)
                    grown = True
                    break
            if grown:
                break


def score_names(query: Sequence[str], listed: Sequence[str], weights: Mapping[str, float]) -> NameScore:
    """`align` with token weights from `weights` (inverse document frequencies) and
    `token_similarity`: the reference the index's faster path agrees with."""
    query_weights = [token_weight(t, weights) for t in query]
    return align(
        query,
        query_weights,
        listed,
        [token_weight(t, weights) for t in listed],
        token_similarity,
        query_costs=[
            unmatched_query_cost(t, w, weights.get(t)) for t, w in zip(query, query_weights, strict=True)
        ],
    )


# Country, entity type and the commonness of the names are weighed by the calibrated signals
# (services/screening/calibration.py); an address naming the same place moves a name score that
# reaches the review threshold closer by ADDRESS_NUDGE (not calibrated: the labelled sets carry no
# addresses), and only the same name scores 1.0.
NEAR_EXACT: Final = 0.99
ADDRESS_NUDGE: Final = 0.02
# A party written with a legal form or a word only organisations' names hold ("... LLC", "... Group")
# is an organisation, and a party written with a title ("Dr.", "Col.") a person.
NOT_COMPANIES: Final = frozenset(("individual", "vessel", "aircraft"))
"""Entry types a party written as an organisation cannot be."""
NOT_PERSONS: Final = frozenset(("entity", "vessel", "aircraft"))
"""Entry types a party written with a title cannot be."""


def type_conflict(
    organisation: bool, person: bool, entry_type: str | None, *, unexplained: bool = False
) -> str | None:
    """The entry type a party's name contradicts: an organisation's against an individual, vessel
    or aircraft entry, a titled person's against an entity, vessel or aircraft entry, and a name
    with words beyond a vessel's or aircraft's (`unexplained`: "Christina Diaz" is a person or a
    company, not the vessel CHRISTINA; an order's parties are never vessels)."""
    if entry_type is None:
        return None
    if unexplained and entry_type in ("vessel", "aircraft"):
        return entry_type
    if organisation and entry_type in NOT_COMPANIES:
        return entry_type
    if person and not organisation and entry_type in NOT_PERSONS:
        return entry_type
    return None


# Words every address has; they say nothing about where it is.
_ADDRESS_WORDS: Final = frozenset(
    "street st str strasse road rd avenue ave av building bldg floor fl no number office room box po "
    "district city province region area zone industrial park block lane house unit suite tower center "
    "centre plaza square km apt apartment flat village town main north south east west new".split()
)


def address_agreement(party_address: str | None, entry_addresses: Sequence[str]) -> tuple[bool, str] | None:
    """Whether the party's address names a place one of the entry's addresses names (a city, a
    district, a street), and which address; None when either side has no address."""
    if not party_address or not entry_addresses:
        return None
    party_words = {w for w in split_words(party_address) if len(w) >= 3 and w.isalpha()} - _ADDRESS_WORDS
    if not party_words:
        return None
    best: tuple[int, str] | None = None
    for address in entry_addresses:
        shared = len(party_words.intersection(split_words(address)))
        if shared and (best is None or shared > best[0]):
            best = (shared, address)
    return (True, best[1]) if best is not None else (False, entry_addresses[0])
