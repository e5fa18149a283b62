"""The matcher's fast paths answer exactly as the plain computations they replace, on every word of
the lists' names (and on the words the fast paths exist to find)."""

from __future__ import annotations

import functools
import re
from collections import defaultdict

from rapidfuzz.distance import OSA

from services.screening import normalise
from services.screening.normalise import split_words
from services.screening.vocabulary import SLAVIC_SYSTEMS
from tests.screening_support import loaded_screening


@functools.cache
def _listed_words() -> frozenset[str]:
    """Every word of every listed name and alias, as the normaliser splits them (forms and titles
    still in)."""
    catalog = loaded_screening()[0]
    return frozenset(
        word
        for entries in catalog.entries.values()
        for entry in entries
        for name in (entry.name, *entry.aliases)
        for word in split_words(name)
    )


def _typed_by_every_form(token: str) -> frozenset[str]:
    """The typo-tolerant forms one slip from `token`, by an edit distance to each form of its length
    or one letter off (the computation `normalise._typed_forms` replaced)."""
    by_length: dict[int, list[str]] = defaultdict(list)
    for form in normalise._TYPO_TOLERANT:
        by_length[len(form)].append(form)
    return frozenset(
        form
        for length in (len(token) - 1, len(token), len(token) + 1)
        for form in by_length.get(length, ())
        if OSA.distance(form, token, score_cutoff=1) <= 1 and (len(form) > 4 or sorted(form) == sorted(token))
    )


def test_form_words_with_a_slip_are_found_by_their_keys_as_by_every_form() -> None:
    # The listed words, and every slip of every typo-tolerant form: the words that have forms.
    slipped = {slip for form in normalise._TYPO_TOLERANT for slip in normalise._slips(form)}
    words = sorted(_listed_words() | slipped)
    found = 0
    for word in words:
        expected = _typed_by_every_form(word)
        got = normalise._typed_forms(word)
        # The same set, built in the same order (a frozenset's iteration order follows it).
        assert (list(got), got) == (list(expected), expected), word
        found += bool(got)
    assert len(words) > 50_000 and found > 10_000


def _spelled(system: dict[str, str], found: re.Match[str]) -> str:
    return system[found.group(0)]


def _respellings_by_every_pattern(token: str) -> tuple[str, ...]:
    """`normalise.slavic_respellings` with every system's pattern run on every word (the computation
    the first-letter test in front of them skips)."""
    out: list[str] = []
    for number, (system, pattern) in enumerate(zip(SLAVIC_SYSTEMS, normalise._SLAVIC_PATTERNS, strict=True)):
        respelled = pattern.sub(functools.partial(_spelled, system), token)
        if respelled != token:
            out.append(respelled)
        if number == 0:
            voiced = normalise._GERMAN_S.sub("z", respelled)
            if voiced != respelled:
                out.append(voiced)
    return tuple(dict.fromkeys(out))


def test_romanisations_are_read_back_as_by_running_every_system() -> None:
    words = sorted(_listed_words())
    respelled = 0
    for word in words:
        expected = _respellings_by_every_pattern(word)
        assert normalise._slavic_respellings_of(word) == expected, word
        respelled += bool(expected)
    assert respelled > 10_000


def _form_words_by_every_respelling(token: str) -> frozenset[str]:
    """`normalise._form_words_of` with every word of six letters or more read back through the
    romanisation systems (the computation `_SLAVIC_FORM_FILTER` spares most words)."""
    if token in normalise._FORM_WORDS:
        return frozenset({token})
    if len(token) < 3 or not token.isalpha():
        return frozenset()
    typed = normalise._typed_forms(token)
    if typed or len(token) < normalise.SLAVIC_FORM_WORD:
        return typed
    return frozenset(
        form
        for respelled in normalise.slavic_respellings(token)
        for form in _form_words_by_every_respelling(respelled)
    )


def test_russian_forms_in_other_romanisations_are_read_as_by_respelling_every_word() -> None:
    # The listed words, and the forms' own words written in the other systems (the words the
    # respelling exists for: "obschtschestwo", "akcionernoe", "otkrytoje").
    written = {respelled for form in normalise._FORM_WORDS for respelled in _respellings_written(form)}
    words = sorted(w for w in _listed_words() | written if w.isalpha())
    spared = read_back = 0
    for word in words:
        expected = _form_words_by_every_respelling(word)
        assert normalise._form_words_of(word) == expected, word
        if len(word) >= normalise.SLAVIC_FORM_WORD and not normalise._typed_forms(word):
            spared += not normalise._SLAVIC_FORM_FILTER.may_reach(word)
            read_back += bool(expected)
    assert read_back > 20 and spared > len(words) // 2, (read_back, spared, len(words))


def _respellings_written(form: str) -> set[str]:
    """`form` as each system writes it: every spelling a system reads back replaced by the system's
    own (BGN/PCGN "shch" as German "schtsch", "ts" as "z" ...), one system at a time."""
    out = set()
    for system in SLAVIC_SYSTEMS:
        written = form
        for spelled, read in sorted(system.items(), key=lambda item: -len(item[1])):
            written = written.replace(read, spelled)
        out.add(written)
    return out
