"""The Arabic article written onto a listed word: "ALBAKHATRA", "ELSAYED", "ALMAHA".

Lists romanise the article al- (ال) three ways: apart ("AL ZAWAHIRI"), hyphenated ("AL-ZAWAHIRI")
or glued ("ALBAKHATRA"); parties write it each way too, or leave it out ("Khalid Bakhatra"), and
Arabic script writes it as a prefix that the normaliser sets apart ("البخترة" -> "al" + the word).
A name written apart or hyphenated on the list matches all of these already (the article is a
particle of two letters, and a word glued by the party is read as two listed words); a name the
list glues did not. At index time such a name is also indexed with the article apart, beside its
written form (`article_variant`), so that the same reading covers both.

Which glued words carry the article is read from the word and the entry, not from a list of names:
- the entry is tied to a country whose names are Arabic or Persian (`ARTICLE_COUNTRIES`): "Alcides"
  of Colombia is a name of its own;
- the rest is a word of `MIN_REST` letters or more, not beginning with a vowel or "l" ("Alexandria",
  "Alliance" and "Allahverdi" stay whole; the article before a vowel or l is written apart or
  hyphenated in romanisations);
- the whole is not a name in its own right that the rest is not (`known`: the world's first and
  last names, services/screening/name_ranks.txt): "Alireza" is Ali + Reza, not al + "ireza";
  "Alhassan" is al + Hassan.

Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

# The Arab League's members, Iran and Afghanistan (ISO 3166-1 alpha-2): where names carry the
# article al-, and lists romanise it glued now and then.
ARTICLE_COUNTRIES: Final = frozenset(
    "AE BH DJ DZ EG IQ JO KM KW LB LY MA MR OM PS QA SA SD SO SY TN YE IR AF".split()
)
ARTICLES: Final = ("al", "el")
MIN_REST: Final = 4
_NOT_AFTER_ARTICLE: Final = frozenset("aeioul")


def glued_article(token: str, known: Callable[[str], bool]) -> str | None:
    """The word of `token` without a glued article, or None when it carries none."""
    if len(token) < len(ARTICLES[0]) + MIN_REST or not token.isalpha() or not token.isascii():
        return None
    if not token.startswith(ARTICLES):
        return None
    rest = token[2:]
    if rest[0] in _NOT_AFTER_ARTICLE:
        return None
    if known(token) and not known(rest):
        return None
    return rest


def article_variant(
    tokens: tuple[str, ...],
    countries: Iterable[str],
    known: Callable[[str], bool],
    words: dict[str, str],
) -> tuple[str, ...] | None:
    """`tokens` with every glued article set apart ("albakhatra" -> "al", "bakhatra"), for an
    entry tied to one of ARTICLE_COUNTRIES; None when nothing changes (or `tokens` is empty).
    Each word is `words`' string for it (added when new): one string however many names hold it."""
    if not tokens or not ARTICLE_COUNTRIES.intersection(countries):
        return None
    out: list[str] = []
    changed = False
    for token in tokens:
        rest = glued_article(token, known)
        if rest is None:
            out.append(token)
        else:
            out += (token[:2], rest)
            changed = True
    return tuple(words.setdefault(t, t) for t in out) if changed else None
