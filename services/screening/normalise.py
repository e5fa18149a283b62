"""Name normalisation for screening: the same function for listed names and for party names.

A name becomes a tuple of identifying tokens: NFKC, transliterated into ASCII (own tables for
Cyrillic, Greek and Arabic/Persian, `unidecode` for every other script), case-folded, without
diacritics, punctuation, titles or filler words. Company legal forms are recognised across
languages (GmbH, Aktiengesellschaft, OOO, ООО, ZAO, PJSC, Co. Ltd, S.A. de C.V., Şirketi, FZE, ...)
and set apart with a canonical form, so that a form neither creates a match nor hides one.
"LAST, First" (OFAC's form for individuals) becomes "first last".

Words written in Arabic script carry no short vowels: "محمد" is "mhmd" whether the person writes
Muhammad, Mohamed or Mohammad. Such tokens are marked (`ABJAD_MARK`) and compared through their
consonant skeletons (`skeleton`) rather than letter by letter.

Pure functions, no I/O; the caches only remember earlier answers.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, TypeVar

from rapidfuzz.distance import OSA

from services.screening.calibration import world_ranks
from services.screening.edits import RewriteFilter
from services.screening.scripts import ABJAD_MARK as ABJAD_MARK
from services.screening.scripts import GREEK_MARK as GREEK_MARK
from services.screening.scripts import HAN_MARK as HAN_MARK
from services.screening.scripts import WORD as _WORD
from services.screening.scripts import transliterate as _transliterate
from services.screening.vocabulary import AMBIGUOUS_FORMS as _AMBIGUOUS_FORMS
from services.screening.vocabulary import GENERIC_WORDS as GENERIC_WORDS
from services.screening.vocabulary import LEGAL_FORMS, RANKS, SLAVIC_SYSTEMS
from services.screening.vocabulary import ORGANISATION_WORDS as ORGANISATION_WORDS

_V = TypeVar("_V")

# Answers remembered per word (a dict each, emptied when full; see `_remember`): every listed word
# and the words orders bring.
_MEMO_LIMIT: Final = 262_144


def _remember(memo: dict[str, _V], token: str, value: _V, limit: int) -> _V:
    """`value` remembered for `token` in `memo`, which is emptied when it holds `limit` answers: a
    plain dict read by the compiled matcher in C, cheaper than an LRU cache's bookkeeping, and the
    answers a workload needs come straight back."""
    if len(memo) >= limit:
        memo.clear()
    memo[token] = value
    return value


# --- tokenising --------------------------------------------------------------------------------

_APOSTROPHES: Final = re.compile(r"['`´’‘ʼ]")


_DOTTED: Final = re.compile(r"(?<!\w)(?:[^\W\d_]\.){2,}")
# Initials and legal forms written letter by letter with spaces or dots between ("t f m c",
# "S. de R. L.", "g m b h", "L. T. D."): one word, as the lists write them ("TFMC", "GMBH"). Letters
# joined by "&" or "+" stay apart: "H&M" is two names' initials, not a word.
_LETTER_RUN: Final = re.compile(r"(?<![^\W_])[^\W\d_](?:[ .]+[^\W\d_](?![^\W_]))+(?![^\W_])")
# Legal forms written onto the name without a space ("MERCURYLLC", "CHARSOLIMITED", "JSCNIIGRAFIT"):
# no word of three letters or more ends (or begins) so.
_GLUED: Final = re.compile(
    r"([a-z]{3,}?)(llc|ltd|ltda|limited|gmbh|ojsc|pjsc|cjsc|jsc|oao|ooo|zao|fzco|fze|dmcc|plc|corp|corporation|company)"
)
_GLUED_FIRST: Final = re.compile(r"(llc|ooo|oao|zao|jsc|ojsc|pjsc|cjsc)([a-z]{3,})")


def split_words(text: str) -> list[str]:
    """Casefolded ASCII tokens of `text`; initials written with dots are one token ("S.A." -> "sa",
    "U.S.A." -> "usa"), a legal form glued to the name is split off ("MERCURYLLC")."""
    if text.isascii():
        # Most names: nothing to compose, fold or transliterate.
        folded = text.lower().replace("'", "").replace("`", "")
    else:
        # Casefolding the Turkish dotted capital I leaves a combining dot above ("İ" -> "i̇").
        folded = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", text).casefold().replace("\u0307", ""))
    # Letters apart first, so that "S.à r.l." is one run ("sàrl"), not "sà" and "rl".
    folded = _LETTER_RUN.sub(lambda m: m.group(0).replace(" ", "").replace(".", "") + " ", folded)
    if "." in folded:
        folded = _DOTTED.sub(lambda m: m.group(0).replace(".", "") + " ", folded)
    tokens: list[str] = []
    for token in _WORD.findall(folded) if folded.isascii() else _transliterate(folded):
        glued = (_GLUED.fullmatch(token) or _GLUED_FIRST.fullmatch(token)) if len(token) >= 6 else None
        if glued is not None:
            tokens.extend(glued.groups())
        else:
            tokens.append(token)
    return _respace_forms(tokens) if len(tokens) > 1 or (tokens and len(tokens[0]) >= 5) else tokens


# --- legal forms, titles, filler words -----------------------------------------------------------


# Titles and honorifics carry no identity: "AL ZAWAHIRI, Dr. Ayman" is listed with one, an order
# usually without. Generational suffixes and degrees likewise.
_HONORIFICS: Final = frozenset(
    "mr mrs ms miss mx dr prof professor sir dame herr frau mme mlle "
    "sheikh shaykh sheik shaikh cheikh haji hajji hadji alhaj alhajj mullah mulla maulvi maulana "
    "ing dipl mag mba phd jr sr esq rev".split()
)
_STOPWORDS: Final = frozenset("the and of und et y".split())
STOPWORDS: Final = _STOPWORDS
_ABJAD_TITLE_SKELETONS: Final = frozenset({"hj", "$5"})

_DROPPED: Final = _HONORIFICS | _STOPWORDS


# Titles of five letters or more are recognised with one slip ("Sheih", "Shmaykh", "Schaykh"),
# four-letter ones with two letters swapped ("Hjai"); written in Greek script, as Greek spells them.
_LONG_HONORIFICS: Final = ("sheikh", "shaykh", "shaikh", "cheikh", "sheik", "hajji", "hadji", "alhaj", "alhajj",
                    "maulvi", "maulana", "professor")  # fmt: skip
_SHORT_HONORIFICS: Final = tuple(h for h in _HONORIFICS if len(h) == 4)


# What a word is when it is not part of a name (`_filler_kind`).
NAME_WORD: Final = 0
STOPWORD: Final = 1
TITLE: Final = 2  # a title or honorific: evidence that the party is a person
LEADING_TITLE: Final = 3  # a title only where the name begins: a rank, a title with a slip

_FILLERS: Final[dict[str, int]] = {}


def _filler_kind(token: str) -> int:
    """A filler word ("the"), a title ("Dr", "Sheikh", in Arabic or Greek script too), or a title
    only at the start of a name: a rank ("Col."), a title with a slip ("Sheih", "Hjai") or in
    another romanisation ("Schaykh"); else NAME_WORD."""
    known = _FILLERS.get(token)
    return _remember(_FILLERS, token, _filler_kind_of(token), _MEMO_LIMIT) if known is None else known


def _filler_kind_of(token: str) -> int:
    if token.startswith(ABJAD_MARK):
        return TITLE if skeleton(token) in _ABJAD_TITLE_SKELETONS else NAME_WORD
    if token.startswith(GREEK_MARK):
        if token[1:] in _STOPWORDS:
            return STOPWORD
        return TITLE if greek_key(token) in _GREEK_HONORIFICS else NAME_WORD
    if token in _STOPWORDS:
        return STOPWORD
    if token in _HONORIFICS:
        return TITLE
    if token in RANKS:
        return LEADING_TITLE
    if not token.isalpha() or len(token) < 4:
        return NAME_WORD
    slip = token in _TITLE_SLIPS or (len(token) >= 5 and spelling(token) in _SPELLED_HONORIFICS)
    return LEADING_TITLE if slip else NAME_WORD


def _without_titles(tokens: list[str]) -> tuple[list[str], bool, list[str]]:
    """`tokens` without filler words and titles, whether a title was written (a person), and the
    rank words taken off the name's start. A rank or a title with a slip counts only where the name
    begins ("Brig. Gen. X", "Sheih X"): "ALI ALHAY" keeps its surname, "John MAJOR" his."""
    kept: list[str] = []
    ranks: list[str] = []
    person = False
    leading = True
    for token in tokens:
        kind = _filler_kind(token)
        if kind == TITLE or (kind == LEADING_TITLE and leading):
            # A rank or a title with a slip may be a vessel's name ("CAPTAIN YAKUBOVICH"): only a
            # title as written is evidence of a person.
            person = person or kind == TITLE
            if kind == LEADING_TITLE and token in RANKS:
                ranks.append(token)
            continue
        if kind == STOPWORD:
            continue
        kept.append(token)
        leading = False
    return kept, person, ranks


def _slips(word: str, *, swaps_only: bool = False) -> set[str]:
    """Every string one slip from `word`: two letters swapped, or (unless `swaps_only`) a letter
    left out, added inside or changed."""
    out = {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    if not swaps_only:
        letters = "abcdefghijklmnopqrstuvwxyz"
        out.update(word[:i] + word[i + 1 :] for i in range(len(word)))
        # A letter added inside the word only: added at either end it may make another name
        # ("Sheikhi", "Hajja").
        out.update(word[:i] + c + word[i:] for i in range(1, len(word)) for c in letters)
        out.update(word[:i] + c + word[i + 1 :] for i in range(len(word)) for c in letters)
    return out


def _phrases() -> dict[str, list[tuple[tuple[str, ...], str]]]:
    by_head: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
    for canonical, written in LEGAL_FORMS.items():
        for phrase in written:
            words = tuple(phrase.split())
            by_head[words[0]].append((words, canonical))
    for options in by_head.values():
        options.sort(key=lambda option: -len(option[0]))
    return dict(by_head)


_PHRASES_BY_HEAD: Final = _phrases()
_FORM_WORDS: Final = frozenset(
    word for phrases in LEGAL_FORMS.values() for p in phrases for word in p.split()
)
_STANDALONE_FORMS: Final = frozenset(p for phrases in LEGAL_FORMS.values() for p in phrases if " " not in p)
LEGAL_FORM_WORDS: Final = _FORM_WORDS
# Abbreviations no name is spelled like: recognised with one typo even at four letters ("OSJC").
# Form words read back from another romanisation of Cyrillic from this length: "SAO" is a name
# ("Sao Paulo") before it is ZAO in German spelling.
SLAVIC_FORM_WORD: Final = 6
_ABBREVIATIONS: Final = frozenset("ojsc pjsc cjsc gmbh kgaa bvba fzco fzllc mchj spzoo".split())
# Form words are recognised with one typo ("LIMITED LIABILITY COMPAYY", "JOINT STOKC COMPANY"): left
# in place they would be the only unmatched tokens of an otherwise exact name. A word that is a form
# on its own needs six letters for that ("Lida" is a name, not "LTDA"); a word that is a form only
# within a phrase four, since the whole phrase must then follow.
_TYPO_TOLERANT: Final = tuple(
    sorted(
        w
        for w in _FORM_WORDS
        if len(w) >= 6
        or (len(w) >= 4 and w.isalpha() and (w not in _STANDALONE_FORMS or w in _ABBREVIATIONS))
    )
)


def _one_slip_keys() -> dict[str, tuple[str, ...]]:
    """Each typo-tolerant form word, and each string it gives with one letter left out, to the forms
    that give it. A word one slip from a form (a letter changed, left out, added, or two swapped)
    gives, with at most one letter left out, a key the form gives: the forms to compare a word with
    are under its own keys, a few lookups instead of an edit distance to each form of its length."""
    keys: dict[str, list[str]] = defaultdict(list)
    for form in _TYPO_TOLERANT:
        for key in dict.fromkeys([form, *(form[:i] + form[i + 1 :] for i in range(len(form)))]):
            keys[key].append(form)
    return {key: tuple(forms) for key, forms in keys.items()}


_ONE_SLIP_KEYS: Final = _one_slip_keys()


def _near_forms(token: str) -> list[str]:
    """The typo-tolerant forms that may be one slip from `token` (each still to be checked), by
    length, then alphabetically."""
    found: set[str] = set()
    for key in (token, *(token[:i] + token[i + 1 :] for i in range(len(token)))):
        forms = _ONE_SLIP_KEYS.get(key)
        if forms is not None:
            found.update(forms)
    return sorted(found, key=lambda form: (len(form), form))


# Form words that no name holds as a part: split off when written onto a name ("COMPANYMORDOV",
# "OBSHCHESTVOBELARUSKALIY", "LIMITEDLIABILITY"). Shorter ones ("stock", "joint", "public") only
# beside another form word ("JOINTSTOCK"), so that "STOCKHOLM" stays one word.
_GLUABLE_FORMS: Final = frozenset(
    w for w in _FORM_WORDS if w.isalpha() and (len(w) >= 9 or (w in _STANDALONE_FORMS and len(w) >= 7))
)
_GLUABLE_BY_LENGTH: Final = sorted({len(w) for w in _GLUABLE_FORMS}, reverse=True)
_LONG_FORM_WORDS: Final = frozenset(w for w in _FORM_WORDS if w.isalpha() and len(w) >= 6)
# Form words a slipped boundary is read into: four letters or more ("Chris Pa" is not "Chri SpA").
_SHIFTABLE_FORMS: Final = frozenset(w for w in _FORM_WORDS if w.isalpha() and len(w) >= 4)


_CLOSING_FORMS: Final = frozenset(("ltd", "llc", "inc", "plc", "gmbh", "jsc"))


def _short_forms(head: str, tail: str) -> bool:
    """Whether a short word is two forms written together ("COLTD", "COINC"): a form on its own and
    one that only closes a name, so that "SALTY" is not "SAL" and "TY", nor "SASCO" "SAS" and "CO"."""
    return head in _STANDALONE_FORMS and tail in _CLOSING_FORMS


def _split_glued_form(token: str) -> tuple[str, str] | None:
    if len(token) < 5 or not token.isalpha() or token in _FORM_WORDS:
        return None
    for cut in range(1, len(token)):
        head, tail = token[:cut], token[cut:]
        # Two forms written as one ("COLTD", "LIMITEDLIABILITY"); two short ambiguous ones ("sa"
        # and "ag") may be a name.
        if head in _FORM_WORDS and tail in _FORM_WORDS and (len(token) >= 8 or _short_forms(head, tail)):
            return head, tail
    if len(token) < 8:
        return None
    for length in _GLUABLE_BY_LENGTH:
        if len(token) - length < 3:
            continue
        if token[:length] in _GLUABLE_FORMS:
            return token[:length], token[length:]
        if token[-length:] in _GLUABLE_FORMS:
            return token[:-length], token[-length:]
    return None


def _shifted_form(first: str, second: str) -> tuple[str, str] | None:
    """Two words whose boundary slipped by one letter where one of them is a legal-form word
    ("STOC KCOMPANY", "LIMITEDL IABILITY", "TRADIN GDMCC", "COPROV ASARL"): the words as meant."""
    if first in _FORM_WORDS or second in _FORM_WORDS or not (first.isalpha() and second.isalpha()):
        return None
    joined = first + second
    for cut in (len(first) - 1, len(first) + 1):
        head, tail = joined[:cut], joined[cut:]
        if min(len(head), len(tail)) >= 2 and (head in _SHIFTABLE_FORMS or tail in _SHIFTABLE_FORMS):
            return head, tail
    return None


def _respace_forms(tokens: list[str]) -> list[str]:
    """Legal-form words written with the wrong spacing: two pieces of one form word joined back
    ("LIA BILITY", "CORPO RATION"), a boundary slipped by a letter ("STOC KCOMPANY"), a form word
    glued to a name or to another form split off."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if i + 1 < len(tokens):
            joined = token + tokens[i + 1]
            if joined in _LONG_FORM_WORDS and (token not in _FORM_WORDS or tokens[i + 1] not in _FORM_WORDS):
                out.append(joined)
                i += 2
                continue
            shifted = _shifted_form(token, tokens[i + 1])
            if shifted is not None:
                tokens = [*tokens[:i], *shifted, *tokens[i + 2 :]]
                token = tokens[i]
        split = _split_glued_form(token)
        if split is None:
            out.append(token)
        else:
            out.extend(part for part in split if part)
        i += 1
    return out


_FORM_WORDS_OF: Final[dict[str, frozenset[str]]] = {}


def _form_words(token: str) -> frozenset[str]:
    """The legal-form words `token` may be: itself, or those one typo away (see _TYPO_TOLERANT)."""
    known = _FORM_WORDS_OF.get(token)
    return _remember(_FORM_WORDS_OF, token, _form_words_of(token), _MEMO_LIMIT) if known is None else known


def _typed_forms(token: str) -> frozenset[str]:
    """The typo-tolerant forms one slip from `token`. In four letters only two swapped ("OSJC"):
    "BABA" is a name, not a slip for "BVBA"."""
    return frozenset(
        form
        for form in _near_forms(token)
        if OSA.distance(form, token, score_cutoff=1) <= 1 and (len(form) > 4 or sorted(form) == sorted(token))
    )


def _form_words_of(token: str) -> frozenset[str]:
    if token in _FORM_WORDS:
        return frozenset({token})
    if token.startswith(GREEK_MARK):
        return _form_words(token[1:])
    if token.startswith(HAN_MARK):
        return frozenset({token[1:]}) if token[1:] in _FORM_WORDS else frozenset()
    if len(token) < 3 or not token.isalpha():
        return frozenset()
    typed = _typed_forms(token)
    if typed or len(token) < SLAVIC_FORM_WORD or not _SLAVIC_FORM_FILTER.may_reach(token):
        return typed
    # A Russian form word in another romanisation ("OBSCHTSCHESTWO", "OBCHTCHESTVO", "AKCZIONERNOE"
    # for obshchestvo, aktsionernoe): read back by the systems' letters, as the name's words are.
    return frozenset(form for respelled in slavic_respellings(token) for form in _form_words(respelled))


def _is_form_word(token: str) -> bool:
    return bool(_form_words(token))


_SLIPPED_ABBREVIATIONS: Final[dict[str, frozenset[str]]] = {}
_ABBREVIATION_LENGTHS: Final = (min(map(len, _ABBREVIATIONS)), max(map(len, _ABBREVIATIONS)))


def _slipped_abbreviation(token: str) -> frozenset[str]:
    """The abbreviation (`_ABBREVIATIONS`) that the word ending a name may be with one slip of any
    kind ("ROCHEM SERVICE GSBH", "VEB LEASING OJS", "WE FREIGHT FZCH"), when no name in the world
    table is spelled so: "BABA" is a name (Ali Baba), "GSBH" no one's. Only at the end, where a form
    stands; inside a name one edit reads too many words as forms."""
    known = _SLIPPED_ABBREVIATIONS.get(token)
    if known is not None:
        return known
    slipped: frozenset[str] = frozenset()
    if _ABBREVIATION_LENGTHS[0] - 1 <= len(token) <= _ABBREVIATION_LENGTHS[1] + 1 and token.isalpha():
        slipped = frozenset(
            form
            for form in _ABBREVIATIONS
            if abs(len(form) - len(token)) <= 1 and OSA.distance(form, token, score_cutoff=1) <= 1
        )
        if slipped and token in world_ranks():
            slipped = frozenset()
    return _remember(_SLIPPED_ABBREVIATIONS, token, slipped, _MEMO_LIMIT)


@dataclass(frozen=True, slots=True)
class AnalysedName:
    """A name taken apart: the tokens that identify it, the legal forms written with it, and
    whether a title was written with it (evidence of a person, as a legal form is of a company)."""

    tokens: tuple[str, ...]
    forms: tuple[str, ...] = ()
    titled: bool = False
    # Rank words taken off the name's start ("General", "Major", "Col."): a title before a person's
    # name, a word of an organisation's ("GENERAL TECHNOLOGY LIMITED"). Which one the name alone
    # does not say, so the rank is optional on both sides: `ranked` is the reading with it.
    ranks: tuple[str, ...] = ()

    @property
    def ranked(self) -> tuple[str, ...] | None:
        """The tokens with the rank words written before them; None when the name has none."""
        return (*self.ranks, *self.tokens) if self.ranks else None

    @property
    def readings(self) -> tuple[tuple[str, ...], ...]:
        """The tokens, and the `ranked` reading when the name begins with a rank word."""
        return (self.tokens,) if not self.ranks else (self.tokens, (*self.ranks, *self.tokens))


def _take_forms(tokens: list[str]) -> tuple[list[str], list[str]]:
    candidates = [_form_words(t) for t in tokens]
    if len(tokens) >= 2 and not candidates[-1]:
        candidates[-1] = _slipped_abbreviation(tokens[-1])
    if not any(candidates):
        return tokens, []
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        found = max(
            (
                (words, form)
                for head in candidates[i]
                for words, form in _PHRASES_BY_HEAD.get(head, ())
                if i + len(words) <= len(tokens)
                and all(word in candidates[i + k] for k, word in enumerate(words))
            ),
            key=lambda option: len(option[0]),
            default=None,
        )
        if found is None:
            i += 1
            continue
        words, form = found
        spans.append((i, i + len(words), form))
        i += len(words)
    accepted = _accepted_forms(tokens, spans)
    covered = {i for start, end, _ in accepted for i in range(start, end)}
    kept = [t for i, t in enumerate(tokens) if i not in covered]
    if not kept:
        return tokens, []
    return kept, list(dict.fromkeys(form for _, _, form in accepted))


def _accepted_forms(tokens: list[str], spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """The form spans that are forms: an ambiguous form counts only at either end of the name or
    next to another form (the "CO" of "CO., LTD.", the "KG" of "GMBH & CO. KG")."""
    accepted: list[tuple[int, int, str]] = []
    last = len(tokens)
    for n, (start, end, form) in enumerate(spans):
        single = end - start == 1 and tokens[start] in _AMBIGUOUS_FORMS
        touching = (n > 0 and spans[n - 1][1] == start) or (n + 1 < len(spans) and spans[n + 1][0] == end)
        if not single or start == 0 or end == last or touching:
            accepted.append((start, end, form))
    return accepted


@lru_cache(maxsize=131072)
def analyse_name(name: str, *, entity: bool = True, reorder: bool = True) -> AnalysedName:
    """Identifying tokens and legal forms of a name.

    `entity=False` (a listed individual) keeps every token: "AO, Ming" is a person, not a form.
    `reorder` turns "LAST, First" into "first last" for names that may be individuals.
    A name made only of titles, filler words or forms keeps its tokens, so it still matches itself.
    """
    head, comma, tail = name.partition(",")
    if comma and "," not in tail:
        head_tokens, tail_tokens = split_words(head), split_words(tail)
        # "Siemens, AG" is a company with its form, not a surname; only reorder a real given name.
        if reorder and any(not _is_form_word(t) for t in tail_tokens):
            tokens = tail_tokens + head_tokens
        else:
            tokens = head_tokens + tail_tokens
    else:
        tokens = split_words(name)
    kept, titled, ranks = _without_titles(tokens)
    if not kept:
        kept, titled, ranks = tokens, False, []
    if not entity:
        return AnalysedName(tuple(kept), (), titled, tuple(ranks))
    identifying, forms = _take_forms(kept)
    return AnalysedName(tuple(identifying), tuple(forms), titled, tuple(ranks))


def normalise_name(name: str, *, entry_type: str | None = None) -> tuple[str, ...]:
    """Tokens that identify a name: transliterated, casefolded, without punctuation, legal forms,
    titles or filler words; "LAST, First" becomes "first last"."""
    analysed = analyse_name(
        name, entity=entry_type != "individual", reorder=entry_type in (None, "individual")
    )
    return tuple(display_token(t) for t in analysed.tokens)


def display_token(token: str) -> str:
    return token[1:] if token.startswith((ABJAD_MARK, HAN_MARK, GREEK_MARK)) else token


# --- keys for retrieval and comparison -----------------------------------------------------------

# Spellings that different romanisations give the same sound: "Yevgeniy"/"Evgenii",
# "Youssef"/"Yusuf", "Aleksandr"/"Alexander", "Khalil"/"Halil", "Ivanoff"/"Ivanov". Applied in
# order, then repeated letters collapse.
_SPELLING_RULES: Final = (
    ("ca", "ka"), ("co", "ko"), ("cu", "ku"), ("shch", "s"), ("sch", "s"), ("tch", "c"), ("dzh", "j"), ("dj", "j"), ("zh", "j"), ("sh", "s"),
    ("ch", "c"), ("kh", "h"), ("gh", "g"), ("ph", "f"), ("th", "t"), ("dh", "d"), ("ck", "k"),
    ("ts", "c"), ("tz", "c"), ("cz", "c"), ("sz", "s"), ("q", "k"), ("w", "v"), ("ks", "x"),
    ("ou", "u"), ("oo", "u"), ("ee", "i"), ("iy", "i"), ("ii", "i"), ("yi", "i"), ("ey", "ei"),
)  # fmt: skip
_VOWELS: Final = str.maketrans("eiouy", "aaaaa")
_HARD_C: Final = re.compile(r"c(?![ehiyz])")
_RUSSIAN_ENDING: Final = re.compile(r"(?<=\w{3})([oe])(?:ff|w)$")
_REPEATS: Final = re.compile(r"(.)\1+")


# Replacements as functions, not templates (r"\1"): `re` reads a template in Python code on every
# call, while a function is called only where the pattern matches. The same text either way.
def _first_letter(run: re.Match[str]) -> str:
    return run.group(1)


def _ending_v(ending: re.Match[str]) -> str:
    return ending.group(1) + "v"


def _rewrite(text: str, rules: tuple[tuple[str, str], ...]) -> str:
    """`text` with each rule's letters replaced, rule after rule."""
    for written, replacement in rules:
        if written in text:
            text = text.replace(written, replacement)
    return text


_SPELLINGS: Final[dict[str, str]] = {}


def spelling(token: str) -> str:
    """A Latin token respelled so that romanisation variants of one sound coincide, vowels kept:
    "yevgeniy" and "evgenii" are both "evgeni", "youssef" is "yusef", "ivanoff" is "ivanof"."""
    known = _SPELLINGS.get(token)
    return _remember(_SPELLINGS, token, _spelling_of(token), _MEMO_LIMIT) if known is None else known


def _spelling_of(token: str) -> str:
    # A leading "ye"/"yu" is often written without its glide ("Yevgeniy"/"Evgeniy").
    respelled = token[1:] if len(token) > 3 and token[0] == "y" and token[1] in "aeiou" else token
    # Russian -ov/-ev written the German or French way ("Ivanow", "Tupoleff").
    respelled = _RUSSIAN_ENDING.sub(_ending_v, respelled)
    # A hard c is k ("IFC"/"ИФК", "ELECTRONICS"/"ЕЛЕКТРОНИКС", "Marc"/"Mark"); c before e, i or y is
    # not, and ch, cz are digraphs.
    if "c" in respelled:
        respelled = _HARD_C.sub("k", respelled)
    return _REPEATS.sub(_first_letter, _rewrite(respelled, _SPELLING_RULES))


_ROMANISATION_KEYS: Final[dict[str, str]] = {}


def romanisation_key(token: str) -> str:
    """`spelling` with every vowel the same: "mohammed" and "muhammad" are both "mahamad"."""
    known = _ROMANISATION_KEYS.get(token)
    return (
        _remember(_ROMANISATION_KEYS, token, _romanisation_key_of(token), _MEMO_LIMIT)
        if known is None
        else known
    )


def _romanisation_key_of(token: str) -> str:
    return _REPEATS.sub(_first_letter, spelling(token).translate(_VOWELS))


# "tsh" is how Arabic script writes "ch" (تش); ج is "j" or, in Egypt, "g".
# Arabic script has no c, p, v or x: it writes them with ك, ب, ف and كس ("Dominic" is "دومينيك",
# "Pawlowska" "باولوسكا", "Sarvar" "سرفر").
_SKELETON_RULES: Final = (
    ("shch", "$"), ("tsh", "7"), ("sh", "$"), ("kh", "5"), ("gh", "8"), ("th", "0"), ("dh", "9"),
    ("ch", "7"), ("c", "k"), ("q", "k"), ("g", "j"), ("x", "ks"), ("p", "b"), ("v", "f"),
)  # fmt: skip
_SKELETON_LETTERS: Final = tuple(rule for rule in _SKELETON_RULES if len(rule[0]) == 1)
_SKELETON_DROP: Final = re.compile(r"(?<=.)[aeiouyw]|^[aeiou]")
# A final -ah/-eh is ta marbuta or a final vowel (ة/ه), not a consonant: "Ubaydah" is "عبيدة".
_FINAL_VOWEL_H: Final = re.compile(r"(?<=..[aeiou])h$")


_SKELETONS: Final[dict[str, str]] = {}


def skeleton(token: str) -> str:
    """The consonants of a token as Arabic script writes them: "muhammad", "mohamed" and "mhmd"
    (from "محمد") all give "mhmd". Long vowels and glides after the first letter are dropped too,
    since romanisations write them as vowels ("yusuf") or as letters ("ywsf")."""
    known = _SKELETONS.get(token)
    return _remember(_SKELETONS, token, _skeleton_of(token), _MEMO_LIMIT) if known is None else known


def _skeleton_of(token: str) -> str:
    bare = token[1:] if token.startswith(ABJAD_MARK) else _FINAL_VOWEL_H.sub("", token)
    bare = _SKELETON_DROP.sub("", bare)
    # Digraphs after the vowels are gone, so that "t-h" of "tahir" and "طاهر" read alike.
    bare = _REPEATS.sub(_first_letter, _rewrite(bare, _SKELETON_RULES))
    # A final -ah is ta marbuta (ة), written without its h: "Fatimah"/"فاطمة", "Sanaullah"/"سنلة".
    return bare[:-1] if len(bare) > 2 and bare.endswith("h") else bare


_SLAVIC_PATTERNS: Final = tuple(
    re.compile("|".join(sorted(system, key=len, reverse=True))) for system in SLAVIC_SYSTEMS
)
# The letters each system's spellings begin with: a word holding none of them is left as it is by
# that system, and its pattern (a Python call for each spelling found) is not run.
_SLAVIC_FIRST_LETTERS: Final = tuple(frozenset(spelled[0] for spelled in system) for system in SLAVIC_SYSTEMS)
_GERMAN_S: Final = re.compile(r"(?<=[aeiouy])s(?=[aeiouy])|^s(?=[aeiouy])")
_SLAVIC_RESPELLINGS: Final[dict[str, tuple[str, ...]]] = {}
# The words the systems' respellings (the German voiced s among them) may read back as a form word
# or as one a slip from a typo-tolerant one: the others, most words, are not respelled for forms.
_SLAVIC_FORM_FILTER: Final = RewriteFilter(
    [(spelled, written) for system in SLAVIC_SYSTEMS for spelled, written in system.items()] + [("s", "z")],
    sorted(_FORM_WORDS),
    list(_TYPO_TOLERANT),
)


def slavic_respellings(token: str) -> tuple[str, ...]:
    """`token` read back from each other romanisation of Cyrillic into BGN/PCGN, where that changes
    it: "nikolajewitsch" "nikolayevich", "xoxlova" "khokhlova", "chakouta" "shakuta", "sacharow"
    "sakharov" and "zakharov"."""
    known = _SLAVIC_RESPELLINGS.get(token)
    if known is None:
        known = _remember(_SLAVIC_RESPELLINGS, token, _slavic_respellings_of(token), _MEMO_LIMIT)
    return known


def _respelled(token: str, system: dict[str, str], pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda found: system[found.group(0)], token)


def _slavic_respellings_of(token: str) -> tuple[str, ...]:
    out: list[str] = []
    for number, (system, pattern) in enumerate(zip(SLAVIC_SYSTEMS, _SLAVIC_PATTERNS, strict=True)):
        firsts = _SLAVIC_FIRST_LETTERS[number]
        respelled = _respelled(token, system, pattern) if any(letter in firsts for letter in token) else token
        if respelled != token:
            out.append(respelled)
        if number == 0:
            voiced = _GERMAN_S.sub("z", respelled) if "s" in respelled else respelled
            if voiced != respelled:
                out.append(voiced)
    return tuple(dict.fromkeys(out))


_SKELETON_VARIANTS: Final[dict[str, tuple[str, ...]]] = {}


def skeletons(token: str) -> tuple[str, ...]:
    """`skeleton` of a token, and for a Latin token also the skeletons Persian and Arabic spelling
    give it: a "v" written و as in Persian ("Javad" جواد, "Parviz" پرویز) rather than ف, a "z"
    written ض, ذ or ظ, which the romanisation of Arabic reads "d" ("Reza" رضا, "Fazl" فضل)."""
    known = _SKELETON_VARIANTS.get(token)
    return _remember(_SKELETON_VARIANTS, token, _skeletons_of(token), _MEMO_LIMIT) if known is None else known


def _skeletons_of(token: str) -> tuple[str, ...]:
    if token.startswith(ABJAD_MARK) or not ("v" in token or "z" in token):
        return (skeleton(token),)
    spellings = [token]
    if "v" in token:
        spellings.append(token.replace("v", "w"))
    if "z" in token:
        spellings.extend([spelled.replace("z", "d") for spelled in spellings])
    return tuple(dict.fromkeys(skeleton(spelled) for spelled in spellings))


# How Greek writes the sounds it lacks, and how Latin spellings of one sound fold together: "nt"/"nd"
# and "d" (ντ), "mp"/"mb" and "b" (μπ), "j"/"dj"/"tz" (τζ), "h"/"kh"/"ch" (χ), "sh" and "s" (σ),
# "c"/"q" and "k" (κ), "w" and "v" (β), "y" and "i" (ι).
_GREEK_KEY_RULES: Final = (
    ("kh", "h"), ("sch", "s"), ("ch", "h"), ("sh", "s"), ("ph", "f"), ("gh", "g"), ("ck", "k"),
    ("c", "k"), ("q", "k"), ("nt", "d"), ("nd", "d"), ("mp", "b"), ("mb", "b"), ("dzh", "j"),
    ("dj", "j"), ("tz", "j"), ("dz", "j"), ("ks", "x"), ("ou", "u"), ("w", "v"), ("y", "i"),
)  # fmt: skip


_GREEK_KEYS: Final[dict[str, str]] = {}


def greek_key(token: str) -> str:
    """A Latin token (or a Greek one, transliterated) as Greek would write it: "panteleev" and
    "παντελεεβ" are both "padeleev", "valentinovich" and "βαλεντινοβιχ" "valedinovih", "shakur"
    and "σακουρ" or "σχακουρ" "sakur"."""
    known = _GREEK_KEYS.get(token)
    return _remember(_GREEK_KEYS, token, _greek_key_of(token), _MEMO_LIMIT) if known is None else known


def _greek_key_of(token: str) -> str:
    return _REPEATS.sub(
        _first_letter, _rewrite(token[1:] if token.startswith(GREEK_MARK) else token, _GREEK_KEY_RULES)
    )


_GREEK_HONORIFICS: Final = frozenset(greek_key(h) for h in _HONORIFICS if len(h) >= 4)
_TITLE_SLIPS: Final = frozenset(
    slip
    for titles, swaps_only in ((_LONG_HONORIFICS, False), (_SHORT_HONORIFICS, True))
    for title in titles
    for slip in _slips(title, swaps_only=swaps_only)
    if len(slip) >= (4 if swaps_only else 5)
)
_SPELLED_HONORIFICS: Final = frozenset(spelling(h) for h in _HONORIFICS if len(h) >= 5)


_VOWEL_CLASS: Final = str.maketrans("aeiouywv", "AYYWWYWW")


@lru_cache(maxsize=262144)
def sounds(token: str, digraphs: bool = True, vowel_h: bool = True) -> str:
    """A token's letters as Arabic script writes them, vowels kept as the long vowel each would be
    written with (ا "A"; و "W" for o, u, w and, in Persian, v; ي "Y" for e, i, y), consonants as in
    `skeleton`: "ayoubi" and "الأيوبي" are both "AYWbY", "haucore" is "hAWkWrY". Without `digraphs`
    two letters stay two ("dh" of "دهي", Dahi, is not ذ); without `vowel_h` a Latin final h is ح."""
    letters = display_token(token)
    if not token.startswith(ABJAD_MARK):
        letters = _FINAL_VOWEL_H.sub("", letters) if vowel_h else letters
    elif len(letters) > 2 and letters.endswith("e"):
        letters = letters[:-1]  # a final ه read as a vowel (see `scripts._arabic_words`): no long vowel
    letters = _rewrite(letters.translate(_VOWEL_CLASS), _SKELETON_RULES if digraphs else _SKELETON_LETTERS)
    return _REPEATS.sub(_first_letter, letters)
