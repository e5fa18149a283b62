"""The labelled set: listed names perturbed the way orders misspell them (positives, each with the
entry it must find) and real-world names of unlisted persons and companies (negatives).

Deterministic: a fixed seed, the loaded lists and the pinned `faker` version give the same set on
every run. The perturbations are written here, independently of the matcher's normaliser: the
Latin -> Cyrillic/Greek/Arabic renderings and the romanisation variants are the bench's own tables.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import JaroWinkler

from services.screening.domain import ListEntry
from services.screening.index import TokenIndex
from services.screening.normalise import (
    ABJAD_MARK,
    GENERIC_WORDS,
    LEGAL_FORM_WORDS,
    analyse_name,
    display_token,
    skeleton,
)

SEED = 20261130


@dataclass(frozen=True)
class Positive:
    kind: str
    query: str
    source_name: str
    list_id: str
    entry_id: str
    # Every (list_id, entry_id) that lists the source name: a name shared by several entries finds
    # any of them.
    acceptable: frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Negative:
    query: str
    locale: str
    kind: str  # person | company


# --- helpers --------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z]+")
# Legal forms as the bench knows them, by class: variants an order may write for the same form.
FORM_VARIANTS: dict[str, tuple[str, ...]] = {
    "llc": ("LLC", "L.L.C.", "Limited Liability Company", "OOO", "ООО", "TOV", "Sp. z o.o."),
    "jsc": (
        "JSC",
        "AO",
        "OAO",
        "ZAO",
        "PJSC",
        "OJSC",
        "CJSC",
        "Joint Stock Company",
        "АО",
        "ПАО",
        "Public Joint Stock Company",
        "Open Joint Stock Company",
        "Closed Joint Stock Company",
    ),
    "ltd": (
        "Ltd",
        "Ltd.",
        "Limited",
        "Co., Ltd.",
        "Company Limited",
        "Co. Ltd",
        "PLC",
        "Pvt. Ltd.",
        "Private Limited",
    ),
    "inc": ("Inc.", "Incorporated", "Corp.", "Corporation"),
    "gmbh": ("GmbH", "G.m.b.H.", "Gesellschaft mit beschränkter Haftung"),
    "ag": ("AG", "Aktiengesellschaft"),
    "sa": ("S.A.", "SA", "Sociedad Anónima", "Société Anonyme", "S.A. de C.V.", "C.A."),
    "sarl": ("SARL", "S.à r.l.", "S.R.L.", "B.V."),
    "fze": ("FZE", "FZCO", "Free Zone Establishment", "FZ-LLC", "DMCC"),
}
# Which words are legal forms decides only where a perturbation applies (a form is not dropped,
# moved or respelled as if it were a name); the normaliser's list is the broadest there is.
_FORM_WORDS = set(LEGAL_FORM_WORDS) | {
    w.casefold()
    for variants in FORM_VARIANTS.values()
    for v in variants
    for w in re.findall(r"[^\W\d_]+", v.replace(".", ""))
}
# Legal forms written in several words, kept together when the words of a name are moved.
_FORM_PHRASE = re.compile(
    r"(?i)\b(obshchestvo s ogranichennoi otvetstvennostyu|obshchestvo s ogranichennoy otvetstvennostyu|"
    r"(?:open |closed |public )?joint[- ]stock company|limited liability company|company limited|"
    r"co\.,? ltd\.?|(?:otkrytoe |zakrytoe |publichnoe )?aktsionernoe obshchestvo|s\.a\. de c\.v\.)"
)
_FORM_PATTERN = re.compile(
    r"(?i)(?<![\w])("
    + "|".join(
        sorted(
            (re.escape(v) for variants in FORM_VARIANTS.values() for v in variants if v.isascii()),
            key=len,
            reverse=True,
        )
    )
    + r")(?![\w])"
)


def display_name(entry: ListEntry, name: str) -> str:
    """How an order would write a listed name: "LAST, First" as "First LAST"."""
    if entry.entry_type == "individual" and name.count(",") == 1:
        last, first = (part.strip() for part in name.split(","))
        if first and last:
            return f"{first} {last}"
    return name


def _words(name: str) -> list[str]:
    return name.split()


def _alpha_positions(name: str, minimum: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _WORD.finditer(name) if m.end() - m.start() >= minimum]


# --- perturbations --------------------------------------------------------------------------------


def typo(rng: random.Random, name: str) -> str | None:
    spans = _alpha_positions(name, 4)
    if not spans:
        return None
    start, end = rng.choice(spans)
    at = rng.randrange(start, end)
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    operation = rng.choice(("substitute", "insert", "delete"))
    if operation == "substitute":
        while letter == name[at].lower():
            letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
        return name[:at] + (letter.upper() if name[at].isupper() else letter) + name[at + 1 :]
    if operation == "insert":
        return name[:at] + (letter.upper() if name[at].isupper() else letter) + name[at:]
    return name[:at] + name[at + 1 :]


def transposition(rng: random.Random, name: str) -> str | None:
    options = [
        i
        for start, end in _alpha_positions(name, 4)
        for i in range(start, end - 1)
        if name[i].lower() != name[i + 1].lower()
    ]
    if not options:
        return None
    i = rng.choice(options)
    return name[:i] + name[i + 1] + name[i] + name[i + 2 :]


def _is_form(word: str) -> bool:
    return word.replace(".", "").strip(",&").casefold() in _FORM_WORDS


def _distinctive(word: str) -> bool:
    bare = re.sub(r"[^\w]", "", word).casefold()
    return len(bare) >= 3 and not _is_form(word) and bare not in GENERIC_WORDS


def drop_token(rng: random.Random, name: str) -> str | None:
    """A middle word left out (a second given name, a patronymic, a word inside a company name),
    where the rest still names the party: two distinctive words at least (not legal forms, not
    generic words such as "trading" or "group"); "ALPHA TRADING FZE" is no longer "ALPHA TECH
    TRADING FZE" more than any other Alpha."""
    words = _words(name)
    middle = [
        i
        for i in range(1, len(words) - 1)
        if not _is_form(words[i]) and sum(_distinctive(w) for n, w in enumerate(words) if n != i) >= 2
    ]
    if not middle:
        return None
    drop = rng.choice(middle)
    return " ".join(w for i, w in enumerate(words) if i != drop)


def add_token(rng: random.Random, name: str, common: Sequence[str]) -> str | None:
    """A generic word or common name added: one of the lists' most frequent words."""
    words = _words(name)
    word = rng.choice(common)
    # Not inside a legal form written in several words ("JOINT ... STOCK COMPANY").
    places = [
        i
        for i in range(len(words) + 1)
        if not (0 < i < len(words) and _is_form(words[i - 1]) and _is_form(words[i]))
    ]
    at = rng.choice(places)
    return " ".join([*words[:at], word, *words[at:]])


def reorder(rng: random.Random, name: str) -> str | None:
    """The words of the name in another order; its legal form stays where it is."""
    words = [w.strip(",") for w in _words(name)]
    movable = [i for i, w in enumerate(words) if not _is_form(w)]
    if len(movable) < 2:
        return None
    order = movable[:]
    while order == movable:
        rng.shuffle(order)
    out = words[:]
    for target, source in zip(movable, order, strict=True):
        out[target] = words[source]
    return " ".join(out)


def legal_form(rng: random.Random, name: str, entry: ListEntry) -> str | None:
    """The company's legal form written another way, or added where the list writes none."""
    if entry.entry_type not in ("entity", None):
        return None
    found = _FORM_PATTERN.search(name)
    if found is None:
        form_class = rng.choice(list(FORM_VARIANTS))
        return f"{name} {rng.choice(FORM_VARIANTS[form_class])}"
    written = found.group(1).casefold()
    form_class = next(c for c, vs in FORM_VARIANTS.items() if any(v.casefold() == written for v in vs))
    others = [v for v in FORM_VARIANTS[form_class] if v.casefold() != written]
    replacement = rng.choice(others)
    rest = (name[: found.start()] + name[found.end() :]).strip(" ,")
    # Russian forms are written first ("OOO Romashka"), others last.
    return f"{replacement} {rest}" if rng.random() < 0.5 else f"{rest} {replacement}"


_DIACRITICS = {
    "a": "áàâäãå", "e": "éèêë", "i": "íìîïı", "o": "óòôöõø", "u": "úùûü", "c": "çč", "s": "şšś",
    "n": "ñń", "z": "žźż", "g": "ğ", "r": "ř", "l": "ł", "y": "ýÿ",
}  # fmt: skip


def diacritics(rng: random.Random, name: str) -> str | None:
    out = []
    changed = False
    for ch in name:
        options = _DIACRITICS.get(ch.lower())
        if options and rng.random() < 0.35:
            mark = rng.choice(options)
            out.append(mark.upper() if ch.isupper() else mark)
            changed = True
        else:
            out.append(ch)
    return "".join(out) if changed else None


def spacing(rng: random.Random, name: str) -> str | None:
    """Spaces and punctuation written differently: two words joined, a word split, hyphens, dots."""
    words = _words(name)
    choice = rng.choice(("join", "split", "hyphen", "dots", "case"))
    if choice == "join" and len(words) >= 2:
        i = rng.randrange(len(words) - 1)
        return " ".join([*words[:i], words[i] + words[i + 1], *words[i + 2 :]])
    if choice == "split":
        long_words = [i for i, w in enumerate(words) if len(w) >= 8 and w.isalpha()]
        if long_words:
            i = rng.choice(long_words)
            cut = rng.randrange(3, len(words[i]) - 2)
            return " ".join([*words[:i], words[i][:cut], words[i][cut:], *words[i + 1 :]])
    if choice == "hyphen" and len(words) >= 2:
        return "-".join(words) if rng.random() < 0.5 else ", ".join(words)
    if choice == "dots":
        return " ".join(f"{w}." if rng.random() < 0.4 else w for w in words).replace(" ", "  ", 1)
    return name.lower() if name.isupper() else name.upper()


_TO_CYRILLIC = (
    ("shch", "щ"), ("sch", "щ"), ("zh", "ж"), ("kh", "х"), ("ts", "ц"), ("ch", "ч"), ("sh", "ш"),
    ("yu", "ю"), ("ya", "я"), ("yo", "ё"), ("ye", "е"), ("iy", "ий"), ("yy", "ый"), ("ij", "ий"),
    ("ju", "ю"), ("ja", "я"), ("je", "е"),
    ("a", "а"), ("b", "б"), ("v", "в"), ("g", "г"), ("d", "д"), ("e", "е"), ("z", "з"), ("i", "и"),
    ("y", "й"), ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("r", "р"),
    ("s", "с"), ("t", "т"), ("u", "у"), ("f", "ф"), ("h", "х"), ("c", "к"), ("w", "в"), ("x", "кс"),
    ("q", "к"), ("j", "дж"),
)  # fmt: skip
_TO_GREEK = (
    ("th", "θ"), ("kh", "χ"), ("ch", "χ"), ("ps", "ψ"), ("ph", "φ"), ("ou", "ου"), ("ks", "ξ"), ("x", "ξ"),
    ("a", "α"), ("b", "μπ"), ("v", "β"), ("g", "γ"), ("d", "δ"), ("e", "ε"), ("z", "ζ"), ("i", "ι"),
    ("k", "κ"), ("l", "λ"), ("m", "μ"), ("n", "ν"), ("o", "ο"), ("p", "π"), ("r", "ρ"), ("s", "σ"),
    ("t", "τ"), ("u", "ου"), ("f", "φ"), ("y", "ι"), ("h", "χ"), ("c", "κ"), ("w", "β"), ("q", "κ"),
    ("j", "τζ"),
)  # fmt: skip
_TO_ARABIC = (
    ("sh", "ش"), ("kh", "خ"), ("th", "ث"), ("dh", "ذ"), ("gh", "غ"), ("ch", "تش"), ("ee", "ي"),
    ("ii", "ي"), ("oo", "و"), ("ou", "و"), ("uu", "و"), ("aa", "ا"), ("b", "ب"), ("t", "ت"),
    ("j", "ج"), ("h", "ه"), ("d", "د"), ("r", "ر"), ("z", "ز"), ("s", "س"), ("f", "ف"), ("q", "ق"),
    ("k", "ك"), ("l", "ل"), ("m", "م"), ("n", "ن"), ("w", "و"), ("y", "ي"), ("p", "ب"), ("v", "ف"),
    ("g", "ج"), ("c", "ك"), ("x", "كس"),
)  # fmt: skip


def _render(word: str, table: Sequence[tuple[str, str]]) -> str:
    word = word.lower().replace("'", "")
    out: list[str] = []
    i = 0
    while i < len(word):
        for latin, letters in table:
            if word.startswith(latin, i):
                out.append(letters)
                i += len(latin)
                break
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


# Russian writes the legal form in its own words, not the English abbreviation letter by letter.
_CYRILLIC_FORMS = {
    "llc": "ООО", "ooo": "ООО", "jsc": "АО", "ao": "АО", "ojsc": "ОАО", "oao": "ОАО", "cjsc": "ЗАО",
    "zao": "ЗАО", "pjsc": "ПАО", "pao": "ПАО", "ltd": "ООО", "limited": "ООО", "co": "", "company": "",
}  # fmt: skip


def to_cyrillic(name: str) -> str:
    name = name.replace("'", "")
    words = re.findall(r"[A-Za-z0-9]+", _FORM_PHRASE.sub(" ", name))
    forms = [m.casefold() for m in _FORM_PHRASE.findall(name)]
    rendered = [
        _CYRILLIC_FORMS[w.casefold()] if w.casefold() in _CYRILLIC_FORMS else _render(w, _TO_CYRILLIC)
        for w in words
    ]
    if any("joint" in f or "aktsionernoe" in f for f in forms):
        rendered.insert(0, "АО")
    elif forms:
        rendered.insert(0, "ООО")
    return " ".join(w for w in rendered if w)


def to_greek(name: str) -> str:
    rendered = [_render(w, _TO_GREEK) for w in re.findall(r"[A-Za-z0-9]+", name.replace("'", ""))]
    return " ".join(w[:-1] + "ς" if w.endswith("σ") else w for w in rendered)


# Digraphs first: "gh" is غ in Persian as in Arabic, never گ followed by ه.
_TO_PERSIAN = (("ch", "چ"), ("zh", "ژ"), ("gh", "غ"), ("p", "پ"), ("g", "گ"), ("v", "و"))


def _arabic_word(word: str, persian: bool = False) -> str:
    """Arabic script writes consonants and long vowels: a word-initial vowel becomes alif, short
    vowels inside the word are not written, a final -a is ta marbuta, a final -i/-y is ya."""
    word = word.lower()
    if word in ("al", "el"):
        return "ال"
    prefix = ""
    if word.startswith(("al-", "el-")):
        prefix, word = "ال", word[3:]
    if not word:
        return prefix
    first = "ا" if word[0] in "aeiou" else ""
    core = word[1:] if first else word
    ending = ""
    if core.endswith(("a", "ah")) and len(core) > 2:
        core, ending = core.rstrip("h")[:-1], "ة"
    elif core.endswith(("i", "y", "ee")) and len(core) > 2:
        core, ending = core.rstrip("iye"), "ي"
    core = re.sub(r"(.)\1", r"\1", core)  # shadda is not written
    rendered = _render(core, (*_TO_PERSIAN, *_TO_ARABIC) if persian else _TO_ARABIC)
    rendered = "".join(c for c in rendered if c not in "aeiou")
    return prefix + first + rendered + ending


def to_arabic(name: str, *, persian: bool = False) -> str:
    """Arabic (or, for Iranian and Afghan parties, Persian) script; legal forms stay in Latin
    letters, as Gulf and Iranian companies write them."""
    words = [w for w in re.findall(r"[A-Za-z0-9.-]+", name.replace("'", "")) if w.strip("-.")]
    return " ".join(w if _is_form(w) else _arabic_word(w.strip("."), persian) for w in words)


# Known alternative romanisations of the same name (documented spellings, not the matcher's keys).
_ROMANISATIONS: tuple[tuple[str, ...], ...] = (
    ("muhammad", "mohammed", "mohamed", "mohammad", "muhammed", "mohamad", "mohamad"),
    ("ahmad", "ahmed"), ("yusuf", "youssef", "yousef", "yusef", "yousif"),
    ("hussein", "husain", "hussain", "husayn", "hossein"), ("hassan", "hasan"),
    ("abdullah", "abdallah", "abdulla"), ("abdul", "abdel"), ("mahmoud", "mahmud"),
    ("mustafa", "mostafa", "moustafa"), ("omar", "umar"), ("osama", "usama"), ("khalid", "khaled"),
    ("saeed", "said", "sayeed"), ("ibrahim", "ebrahim", "ibraheem"), ("yasin", "yassin", "yaseen"),
    ("suleiman", "sulaiman", "soliman"), ("ismail", "ismael", "esmail"), ("rahman", "rehman"),
    ("sergei", "sergey", "serguei"), ("yevgeniy", "evgeny", "evgenii", "yevgeny", "evgeniy"),
    ("dmitri", "dmitry", "dmitriy"), ("yuri", "yury", "yuriy", "iurii"),
    ("aleksandr", "alexander", "aleksander"), ("aleksei", "alexey", "aleksey", "alexei"),
    ("andrei", "andrey"), ("nikolai", "nikolay"), ("mikhail", "michail"), ("yakov", "iakov"),
    ("vyacheslav", "viacheslav"), ("pyotr", "petr"), ("fyodor", "fedor"), ("ilya", "ilia"),
    ("vasily", "vasiliy", "vasilii"), ("anatoly", "anatoliy", "anatolii"), ("valery", "valeriy", "valerii"),
    ("gennady", "gennadiy", "gennadii"), ("arkady", "arkadiy", "arkadii"), ("grigory", "grigoriy"),
    ("zhou", "chou"), ("xu", "hsu"), ("zhang", "chang"), ("li", "lee"), ("kim", "gim"),
)  # fmt: skip
_VARIANT_OF = {spelling: group for group in _ROMANISATIONS for spelling in group}
_ROMANISATION_RULES = (
    (r"iy\b", "y"), (r"ii\b", "y"), (r"kh", "h"), (r"ks", "x"), (r"ou", "u"), (r"ph", "f"),
    (r"ov\b", "off"), (r"ev\b", "eff"), (r"ya", "ia"), (r"yu", "iu"), (r"zh", "j"), (r"ts", "tz"),
    (r"ee", "i"), (r"\by", "j"), (r"sh", "sch"), (r"q", "k"),
)  # fmt: skip


def romanisation(rng: random.Random, name: str) -> str | None:
    words = _words(name)
    options: list[tuple[int, str]] = []
    for i, word in enumerate(words):
        bare = word.strip(",.").casefold()
        if _is_form(word):
            continue
        for spelling in _VARIANT_OF.get(bare, ()):
            if spelling != bare:
                options.append((i, spelling))
        for pattern, replacement in _ROMANISATION_RULES:
            if len(bare) >= 4 and re.search(pattern, bare):
                options.append((i, re.sub(pattern, replacement, bare, count=1)))
    if not options:
        return None
    i, spelling = rng.choice(options)
    written = spelling.upper() if words[i].isupper() else spelling.capitalize()
    return " ".join([*words[:i], written, *words[i + 1 :]])


_CYRILLIC_COUNTRIES = frozenset("RU UA BY KZ KG TJ UZ TM AM AZ GE MD BG RS MK".split())
_ARABIC_COUNTRIES = frozenset("AE SA IQ SY LB JO YE PS EG LY TN DZ MA SD SO KW QA BH OM MR IR AF PK".split())
_GREEK_COUNTRIES = frozenset({"GR", "CY"})

KINDS = (
    "exact",
    "typo",
    "transposition",
    "drop_token",
    "add_token",
    "reorder",
    "legal_form",
    "diacritics",
    "spacing_punctuation",
    "translit_cyrillic",
    "translit_greek",
    "translit_arabic",
    "romanisation",
)


def perturb(kind: str, rng: random.Random, name: str, entry: ListEntry, common: Sequence[str]) -> str | None:
    countries = set(entry.countries)
    if kind == "exact":
        return name
    if kind == "typo":
        return typo(rng, name)
    if kind == "transposition":
        return transposition(rng, name)
    if kind == "drop_token":
        return drop_token(rng, name)
    if kind == "add_token":
        return add_token(rng, name, common)
    if kind == "reorder":
        return reorder(rng, name)
    if kind == "legal_form":
        return legal_form(rng, name, entry)
    if kind == "diacritics":
        return diacritics(rng, name)
    if kind == "spacing_punctuation":
        return spacing(rng, name)
    if kind == "translit_cyrillic":
        return to_cyrillic(name) if countries & _CYRILLIC_COUNTRIES else None
    if kind == "translit_greek":
        # Few listed parties are Greek or Cypriot; individuals of any country are rendered too.
        return to_greek(name) if countries & _GREEK_COUNTRIES or entry.entry_type == "individual" else None
    if kind == "translit_arabic":
        # Names of people from the Arab world, Iran and Afghanistan, as their own script writes them
        # (a company's English words spelled out in Arabic letters would test nothing real).
        if not countries & _ARABIC_COUNTRIES or entry.entry_type != "individual":
            return None
        return to_arabic(name, persian=bool(countries & {"IR", "AF"}))
    if kind == "romanisation":
        return romanisation(rng, name)
    raise ValueError(kind)


# --- the sets -------------------------------------------------------------------------------------


def _token_multiset(name: str) -> tuple[str, ...]:
    return tuple(sorted(analyse_name(name).tokens))


def common_words(index: TokenIndex, count: int = 300) -> list[str]:
    """The lists' most frequent words that are not legal forms: 'trading', 'international', 'ali'."""
    counts: Counter[str] = Counter()
    for group in index.groups:
        counts.update(t for t in group.tokens if t.isalpha() and len(t) >= 3 and t not in _FORM_WORDS)
    return [word.capitalize() for word, _ in counts.most_common(count)]


def positives(index: TokenIndex, *, sources: int, seed: int = SEED) -> list[Positive]:
    """`sources` listed names (primary names and strong aliases, at least two letters' worth of
    identity), each perturbed once per kind where the kind applies."""
    rng = random.Random(seed)
    entries_by_group: dict[int, set[tuple[str, str]]] = {}
    for name in index.names:
        entry = index.entries[name.entry]
        entries_by_group.setdefault(name.group, set()).add((entry.list_id, entry.entry_id))
    eligible = [
        n
        for n in index.names
        if not n.weak
        and n.text.isascii()
        and sum(len(t) for t in index.groups[n.group].tokens) >= 6
        and not any(ch.isdigit() for ch in n.text)
    ]
    chosen = rng.sample(eligible, sources)
    common = common_words(index)
    out: list[Positive] = []
    for name in chosen:
        entry = index.entries[name.entry]
        written = display_name(entry, name.text)
        acceptable = frozenset(entries_by_group[name.group])
        for kind in KINDS:
            query = perturb(kind, rng, written, entry, common)
            if query is None or not query.strip():
                continue
            out.append(Positive(kind, query, name.text, entry.list_id, entry.entry_id, acceptable))
    return out


NEGATIVE_LOCALES = (
    "en_US", "en_GB", "en_IN", "en_AU", "en_CA", "de_DE", "de_AT", "de_CH", "fr_FR", "fr_CH", "it_IT",
    "es_ES", "es_MX", "es_AR", "es_CO", "pt_BR", "pt_PT", "nl_NL", "nl_BE", "sv_SE", "no_NO", "da_DK",
    "fi_FI", "pl_PL", "cs_CZ", "sk_SK", "hu_HU", "ro_RO", "bg_BG", "hr_HR", "sl_SI", "el_GR", "tr_TR",
    "ru_RU", "uk_UA", "ar_AA", "ar_SA", "ar_EG", "fa_IR", "he_IL", "hi_IN", "zh_CN", "zh_TW", "ja_JP",
    "ko_KR", "vi_VN", "id_ID", "th_TH", "fil_PH", "az_AZ", "ka_GE", "hy_AM", "lt_LT", "lv_LV", "et_EE",
)  # fmt: skip


@dataclass(frozen=True)
class NegativeSet:
    negatives: list[Negative]
    # Generated names left out as not clearly unlisted, by reason.
    left_out: dict[str, int]
    # Names of two words or more that a listed name holds with more words: kept apart, reported,
    # not counted as negatives (they are the drop_token positives' own pattern).
    shortened_listed: list[Negative]


def negatives(index: TokenIndex, *, count: int, seed: int = SEED) -> list[Negative]:
    return negative_set(index, count=count, seed=seed).negatives


def negative_set(index: TokenIndex, *, count: int, seed: int = SEED) -> NegativeSet:
    """`count` names of persons and companies from `faker`'s locales that are clearly not listed.
    Left out: a name whose normalised tokens equal a listed name's (in any order); a name written
    in Arabic script whose consonant skeletons equal a listed name's (Arabic script writes nothing
    more than the skeleton, so that is the same written name); a name of two or more words all of
    which one listed name holds ("Michael Clark" for "JAMES MICHAEL CLARK": a listed name written
    shorter, the very pattern of the drop_token positives)."""
    from faker import Faker  # a bench dependency only

    listed = {tuple(sorted(display_token(t) for t in g.tokens)) for g in index.groups}
    listed_specific = {tuple(sorted(w for w in name if w not in GENERIC_WORDS)) for name in listed} - {()}
    by_prefix: dict[str, list[str]] = {}
    for token in index.postings:
        if token.isalpha() and len(token) >= 3:
            by_prefix.setdefault(token[:2], []).append(token)
    listed_skeletons = {tuple(sorted(skeleton(t) for t in g.tokens)) for g in index.groups}
    fakers = {}
    for n, locale in enumerate(NEGATIVE_LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed + n)
        fakers[locale] = fake
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Negative] = []
    shortened: list[Negative] = []
    left_out: Counter[str] = Counter()
    while len(out) < count:
        locale = NEGATIVE_LOCALES[len(out) % len(NEGATIVE_LOCALES)]
        fake = fakers[locale]
        kind = "company" if rng.random() < 0.5 else "person"
        name = fake.company() if kind == "company" else fake.name()
        if name in seen:
            continue
        seen.add(name)
        tokens = analyse_name(name).tokens
        if not tokens or tuple(sorted(display_token(t) for t in tokens)) in listed:
            left_out["equal to a listed name"] += 1
            continue
        if any(t.startswith(ABJAD_MARK) for t in tokens) and tuple(sorted(skeleton(t) for t in tokens)) in (
            listed_skeletons
        ):
            left_out["same Arabic-script skeleton as a listed name"] += 1
            continue
        plain = [display_token(t) for t in tokens]
        if tuple(sorted(w for w in plain if w not in GENERIC_WORDS)) in listed_specific:
            left_out["equal to a listed name, generic words aside"] += 1
            continue
        if len(set(plain)) >= 2 and all(t in index.postings for t in plain):
            holders = set(index.postings[plain[0]]).intersection(*(index.postings[t] for t in plain[1:]))
            if holders:
                left_out["a listed name written shorter"] += 1
                shortened.append(Negative(name, locale, kind))
                continue
        if len(set(plain)) >= 2 and _spelled_like_listed(index, plain, by_prefix):
            left_out["a listed name (or part of one) spelled another way"] += 1
            continue
        out.append(Negative(name, locale, kind))
    return NegativeSet(out, dict(left_out), shortened)


SPELLING_VARIANT_JW = 0.93
"""Jaro-Winkler at or above which two words are taken as one name spelled two ways when deciding
whether a generated name is clearly unlisted ("Aleksander"/"Aleksandr", "Natalia"/"Natalya",
"Rodriguez"/"Rodriquez"); the bench's own criterion, not the matcher's."""


def _spelled_like_listed(index: TokenIndex, words: Sequence[str], by_prefix: dict[str, list[str]]) -> bool:
    """Whether one listed name holds every word of `words`, each exactly or spelled another way
    ("Aleksander Stepanov" for "STEPANOV, Aleksandr Mikhailovich"): not a clear non-match."""
    holders: set[int] | None = None
    for word in dict.fromkeys(words):
        if not word.isalpha() or len(word) < 3:
            return False
        variants = [
            t
            for t in by_prefix.get(word[:2], ())
            if t == word or JaroWinkler.normalized_similarity(word, t) >= SPELLING_VARIANT_JW
        ]
        groups = {g for t in variants for g in index.postings[t]}
        holders = groups if holders is None else holders & groups
        if not holders:
            return False
    return bool(holders)


def script_of(text: str) -> str:
    for ch in text:
        if ch.isalpha() and not ch.isascii():
            name = unicodedata.name(ch, "")
            first = name.split(" ")[0] if name else "OTHER"
            return "LATIN" if first == "LATIN" else first
    return "LATIN"


def summarise_kinds(items: Iterable[Positive]) -> dict[str, int]:
    return dict(Counter(p.kind for p in items))
