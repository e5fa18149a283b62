"""A list update builds the next index beside the one still serving (services/screening/updater.py):
what both generations hold alike is shared, not copied, and the answers are those of an index built
from nothing."""

from __future__ import annotations

import dataclasses

import pytest

from services.screening.domain import ListCatalog, Screener, TokenIndex
from tests.screening_support import loaded_screening

TABLES = (
    "names",
    "groups",
    "postings",
    "weights",
    "compact",
    "keys",
    "key_deletions",
    "deletions",
    "skeletons",
    "greek_keys",
    "generic_by_initial",
    "_listed_neighbours",
)


@pytest.fixture(scope="module")
def generations() -> tuple[TokenIndex, TokenIndex, TokenIndex]:
    """The serving index (3,000 real entries), the next one built beside it after an update that
    renames one entry and drops another, and the same next one built from nothing."""
    loaded: tuple[ListCatalog, Screener] = loaded_screening()
    assert isinstance(loaded[1].matcher, TokenIndex)
    entries = loaded[1].matcher.entries[:3000]
    serving = TokenIndex.build(entries)
    updated = [*entries[:10], dataclasses.replace(entries[10], name="QUORTENVALE HOLDINGS"), *entries[12:]]
    return serving, TokenIndex.build(updated, serving), TokenIndex.build(updated)


def test_the_next_index_answers_as_one_built_from_nothing(
    generations: tuple[TokenIndex, TokenIndex, TokenIndex],
) -> None:
    _, shared, fresh = generations
    for table in TABLES:
        assert getattr(shared, table) == getattr(fresh, table), table
    assert "quortenvale" in shared.postings
    assert set(shared.postings) != set(generations[0].postings)


def test_words_tables_and_neighbours_both_generations_hold_are_shared(
    generations: tuple[TokenIndex, TokenIndex, TokenIndex],
) -> None:
    serving, shared, fresh = generations
    words = [
        t
        for t in serving.postings
        if len(t) >= 6 and t.isalpha() and serving.deletions.get(t[1:]) == fresh.deletions.get(t[1:])
    ]
    assert len(words) > 100
    held = {t: t for t in shared.postings}
    for word in words[:100]:
        assert held[word] is word
        assert shared._listed_neighbours[word] is serving._listed_neighbours[word]
        assert fresh._listed_neighbours[word] is not serving._listed_neighbours[word]
        assert shared.deletions[word[1:]] is serving.deletions[word[1:]]
        assert fresh.deletions[word[1:]] is not serving.deletions[word[1:]]
    # A word only the update brings has nothing to share.
    assert "quortenvale" not in serving._listed_neighbours


def test_one_word_is_one_string_however_many_names_hold_it(
    generations: tuple[TokenIndex, TokenIndex, TokenIndex],
) -> None:
    _, _, fresh = generations
    holders: dict[str, set[int]] = {}
    for group in fresh.groups:
        for token in group.tokens:
            holders.setdefault(token, set()).add(id(token))
    assert any(len(group.names) > 1 for group in fresh.groups)
    assert all(len(ids) == 1 for ids in holders.values())
    for name in fresh.names:
        assert name.tokens is fresh.groups[name.group].tokens
