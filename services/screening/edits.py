"""One edit away, through a table of deletions (SymSpell): what the matcher's index
(services/screening/index.py) looks a word's neighbours up with.

Pure functions, no I/O.
"""

from __future__ import annotations

from typing import TypeVar

_T = TypeVar("_T")


def deletions(token: str) -> set[str]:
    return {token[:i] + token[i + 1 :] for i in range(len(token))}


def one_edit_away(word: str, words: dict[str, _T], table: dict[str, tuple[str, ...]]) -> set[str]:
    """The entries of `words` one insertion, deletion, substitution or transposition from `word`,
    through `table` (each string one letter short of an entry -> those entries: SymSpell)."""
    near = set(table.get(word, ()))
    # Each deletion looked up as it is made: no set of them, no intersections (a word the lists do
    # not hold is looked up this way at first sight, with its romanisation key and its respellings).
    for i in range(len(word)):
        variant = word[:i] + word[i + 1 :]
        if variant in words:
            near.add(variant)
        found = table.get(variant)
        if found is not None:
            near.update(found)
    return near
