"""Scripts other than Latin, read into ASCII tokens: Cyrillic (BGN/PCGN, as the US lists spell
Russian names), Greek (close to ELOT 743, the romanisation of Greek passports), Arabic and Persian
(consonantal, marked: `ABJAD_MARK`), Chinese characters (marked: `HAN_MARK`), and `unidecode`'s
tables for every other script. Part of the name normalisation (services/screening/normalise.py),
apart by concern.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from unidecode import unidecode

# Russian, Ukrainian, Belarusian, Bulgarian, Serbian/Macedonian and Kazakh letters, romanised the
# way the US lists spell them (BGN/PCGN: "Yevgeniy", "Obshchestvo", "Otvetstvennostyu"); unidecode
# writes "Evgenii" and "otvetstvennost'iu" instead.


_CYRILLIC: Final = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
    "є": "ye", "і": "i", "ї": "yi", "ґ": "g", "ў": "w",
    "ђ": "dj", "ј": "j", "љ": "lj", "њ": "nj", "ћ": "c", "џ": "dz", "ѓ": "gj", "ќ": "kj", "ѕ": "dz",
    "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h",
}  # fmt: skip
# BGN/PCGN writes е and ё as "ye"/"yo" at the start of a word and after a vowel or a sign.
_CYRILLIC_IOTATED: Final = {"е": "ye", "ё": "yo"}
_CYRILLIC_VOWELS: Final = frozenset("аеёиоуыэюяєіїъь")

# Modern Greek, close to ELOT 743 (the romanisation of Greek passports): "Δημήτρης" is "dimitris",
# where unidecode's classical table writes "demetres". Greek has no b, d, j or h: foreign names are
# written with μπ, ντ, τζ and χ ("Τζαμπούρ" is "Jabur", "Λάντεν" is "Laden"), and the lists hold
# foreign names, so those are read as b, d, j and kh (a Greek "Λαμπράκης" reads "labrakis", one
# letter from "Lambrakis").
_GREEK_DIGRAPHS: Final = (
    ("ου", "ou"), ("αι", "ai"), ("ει", "ei"), ("οι", "oi"), ("αυ", "av"), ("ευ", "ev"),
    ("γγ", "ng"), ("γκ", "gk"), ("μπ", "b"), ("ντζ", "nj"), ("ντ", "d"), ("τσ", "ts"), ("τζ", "j"),
)  # fmt: skip
_GREEK: Final = {
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th", "ι": "i",
    "κ": "k", "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p", "ρ": "r", "σ": "s",
    "ς": "s", "τ": "t", "υ": "y", "φ": "f", "χ": "kh", "ψ": "ps", "ω": "o",
}  # fmt: skip

# Arabic and Persian letters, consonantal (Arabic script writes no short vowels). Long vowels are
# written with alif, waw and ya, which romanise as "a", "w"/"u" and "y"/"i": kept as consonants
# here and folded away by `skeleton`.
_ARABIC: Final = {
    "ا": "a", "أ": "a", "إ": "i", "آ": "a", "ٱ": "a", "ب": "b", "ت": "t", "ث": "th", "ج": "j",
    "ح": "h", "خ": "kh", "د": "d", "ذ": "dh", "ر": "r", "ز": "z", "س": "s", "ش": "sh", "ص": "s",
    "ض": "d", "ط": "t", "ظ": "z", "ع": "", "غ": "gh", "ف": "f", "ق": "q", "ك": "k", "ل": "l",
    "م": "m", "ن": "n", "ه": "h", "ة": "a", "و": "w", "ي": "y", "ى": "a", "ء": "", "ؤ": "",
    "ئ": "", "پ": "p", "چ": "ch", "ژ": "zh", "گ": "g", "ک": "k", "ی": "y", "ۀ": "h", "ہ": "h",
    "ے": "y", "ٹ": "t", "ڈ": "d", "ڑ": "r", "ں": "n",
    # Vowel signs, when a name is written with them (Quranic or pedagogical spelling).
    "\u064e": "a", "\u064f": "u", "\u0650": "i", "\u064b": "", "\u064c": "", "\u064d": "",
    "\u0651": "", "\u0652": "", "\u0670": "a", "\u0640": "",
}  # fmt: skip
_ARABIC_ARTICLE: Final = "ال"
# آل ("Āl", the house or family of: آل سعود, آل ثاني) is the particle romanisations and the lists
# write "Al" ("AL SAUD", "AL THANI"), as they write the article: read so, not as a name of its own.
# (The article itself is written onto its word; ال standing alone is as often another name's letters,
# "Il" of "PAK Chun Il".)
_ARABIC_HOUSE: Final = "آل"
# Titles written in Arabic script ("the professor", "the sheikh", "Mr", "Mrs", "Dr", "Hajji"); not
# Persian سید: Seyyed is a name the lists write ("RAHIMI, Seyyed Mehdi"), as its Latin spelling is.
_ARABIC_TITLES: Final = frozenset(
    "الأستاذ الأستاذة الاستاذ الاستاذة السيد السيدة الدكتور الدكتورة الشيخ الحاج السید آقای خانم دکتر مهندس".split()
)

ABJAD_MARK: Final = "~"
"""Prefix of a token transliterated from Arabic script: its short vowels are unknown."""

GREEK_MARK: Final = "="
"""Prefix of a token transliterated from Greek script. Greek has no b, d, j, h or sh: foreign names
are written with μπ, ντ, τζ, χ and σ, so such a token is also compared through `greek_key`."""

HAN_MARK: Final = "^"
"""Prefix of a syllable read from a Chinese character: the character is exact, so is the syllable
("王" is "wang", never "yang"); such tokens match only their very spelling."""


def _is_arabic(ch: str) -> bool:
    code = ord(ch)
    return 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0xFB50 <= code <= 0xFEFF


def _is_cyrillic(ch: str) -> bool:
    return 0x0400 <= ord(ch) <= 0x052F


def _is_han(ch: str) -> bool:
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def _is_greek(ch: str) -> bool:
    return 0x0370 <= ord(ch) <= 0x03FF or 0x1F00 <= ord(ch) <= 0x1FFF


def _cyrillic_word(word: str) -> str:
    out: list[str] = []
    previous = ""
    for ch in word:
        if ch in _CYRILLIC_IOTATED and (not previous or previous in _CYRILLIC_VOWELS):
            out.append(_CYRILLIC_IOTATED[ch])
        else:
            out.append(_CYRILLIC.get(ch, ch))
        previous = ch
    return "".join(out)


def _greek_word(word: str) -> str:
    # Accents and diaeresis carry stress, not sound, in romanisation.
    bare = "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))
    for digraph, latin in _GREEK_DIGRAPHS:
        bare = bare.replace(digraph, latin)
    # At the start of a word γκ is g ("Γκάτσος" is "Gatsos").
    for digraph, initial in (("gk", "g"),):
        if bare.startswith(digraph):
            bare = initial + bare[2:]
    return "".join(_GREEK.get(c, c) for c in bare.replace("gk", "g"))


def _arabic_words(word: str) -> list[str]:
    """One written Arabic word -> tokens: the article "al" apart, then the consonantal rest."""
    if word in _ARABIC_TITLES:
        return []
    if word == _ARABIC_HOUSE:
        return ["al"]
    tokens: list[str] = []
    if word.startswith(_ARABIC_ARTICLE) and len(word) > 3:
        tokens.append("al")
        word = word[2:]
    # In "Abd al-..." and "...-Allah" written as one word (عبدالرحمن, عبدالله, نصرالله) the article's
    # alif is not heard: "Abdullah", "Nasrallah". Only the name's own long vowels are.
    if word.startswith("عبدال") and len(word) > 5:
        word = "عبد" + word[4:]
    elif word.endswith("الله") and len(word) > 4:
        word = word[:-4] + "لله"
    # A final ه after two letters or more is mostly a vowel ("Odeh" عوده, "Zadeh" زاده, "Mahdieh"
    # مهدیه): read "e", so that it does not join the letter before it into a digraph ("dh").
    final_vowel = len(word) >= 3 and word[-1] == "ه"
    latin = "".join(
        _ARABIC.get(c, c if not _is_arabic(c) else "") for c in (word[:-1] if final_vowel else word)
    )
    latin += "e" if final_vowel else ""
    if latin:
        tokens.append(ABJAD_MARK + latin)
    return tokens


WORD: Final = re.compile(r"[^\W_]+", re.UNICODE)


# The tokens of each word written in another script, remembered (a dict emptied when full): given
# names and surnames recur from order to order, and unidecode's tables are read in Python code.
_WORD_TOKENS: Final[dict[str, tuple[str, ...]]] = {}
WORD_MEMO: Final = 16_384


def transliterate(text: str) -> list[str]:
    """Lower-case ASCII words (joined letters and digits), script by script."""
    words: list[str] = []
    for word in WORD.findall(text):
        if word.isascii():
            words.append(word)
            continue
        known = _WORD_TOKENS.get(word)
        if known is None:
            if len(_WORD_TOKENS) >= WORD_MEMO:
                _WORD_TOKENS.clear()
            known = _WORD_TOKENS[word] = tuple(_word_tokens(word))
        words.extend(known)
    return words


def _word_tokens(word: str) -> list[str]:
    """The ASCII tokens of one word in a script other than Latin (or Latin with diacritics)."""
    first = word[0]
    if _is_arabic(first):
        return _arabic_words(word)
    if _is_cyrillic(first):
        return WORD.findall(unidecode(_cyrillic_word(word)))
    if _is_greek(first):
        return [GREEK_MARK + w for w in WORD.findall(unidecode(_greek_word(word)))]
    if _is_han(first):
        return [HAN_MARK + syllable for syllable in WORD.findall(unidecode(word).casefold())]
    # Latin with diacritics, CJK, Hangul, Devanagari, Hebrew, ...: unidecode's tables.
    return WORD.findall(unidecode(word).casefold())
