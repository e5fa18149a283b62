"""The matcher's word lookups made cheaper for speed (issue #14, sixth round) answer as their
definitions do: one edit away through the deletion table (SymSpell), and a word of another script
transliterated once and remembered."""

from __future__ import annotations

import random

from services.screening import scripts
from services.screening.edits import deletions, one_edit_away


def _symspell(word: str, words: dict[str, int], table: dict[str, tuple[str, ...]]) -> set[str]:
    """The definition, in sets: entries `word` is one deletion of, entries that are one deletion of
    `word`, and entries sharing a deletion with it."""
    near = set(table.get(word, ()))
    near |= words.keys() & deletions(word)
    for variant in table.keys() & deletions(word):
        near |= set(table[variant])
    return near


def test_one_edit_away_finds_what_the_deletion_table_defines() -> None:
    rng = random.Random(14)
    vocabulary = {"".join(rng.choice("abcde") for _ in range(rng.randint(3, 7))) for _ in range(400)}
    words = dict.fromkeys(vocabulary, 0)
    table: dict[str, list[str]] = {}
    for word in vocabulary:
        for variant in deletions(word):
            table.setdefault(variant, []).append(word)
    frozen = {k: tuple(v) for k, v in table.items()}
    queries = [
        *sorted(vocabulary)[:50],
        *("".join(rng.choice("abcdef") for _ in range(5)) for _ in range(200)),
    ]
    found_any = 0
    for query in queries:
        expected = _symspell(query, words, frozen)
        assert one_edit_away(query, words, frozen) == expected, query
        found_any += bool(expected)
    assert found_any > 100  # the vocabulary is dense enough for most queries to have neighbours


def test_a_word_of_another_script_reads_the_same_remembered_or_not() -> None:
    names = ["Владимир Путин", "Δημήτρης Παπαδόπουλος", "عبدالرحمن الحسن", "王 小明", "Mónica Rincón"]
    scripts._WORD_TOKENS.clear()
    first = [scripts.transliterate(name.casefold()) for name in names]
    assert scripts._WORD_TOKENS  # remembered
    again = [scripts.transliterate(name.casefold()) for name in names]
    assert again == first
    assert first[0] == ["vladimir", "putin"]
    assert first[2] == ["~bdlrhmn", "al", "~hsn"]


def test_the_remembered_words_stay_bounded() -> None:
    scripts._WORD_TOKENS.clear()
    for number in range(scripts.WORD_MEMO + 10):
        word = "ж" + "".join(chr(0x0430 + int(d)) for d in str(number))
        assert scripts.transliterate(word)
    assert len(scripts._WORD_TOKENS) <= scripts.WORD_MEMO
