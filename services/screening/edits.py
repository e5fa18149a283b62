"""One edit away, through a table of deletions (SymSpell): what the matcher's index
(services/screening/index.py) looks a word's neighbours up with.

Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping


def deletions(token: str) -> set[str]:
    return {token[:i] + token[i + 1 :] for i in range(len(token))}


def one_edit_away(word: str, words: Mapping[str, object], table: Mapping[str, tuple[str, ...]]) -> set[str]:
    """The entries of `words` one insertion, deletion, substitution or transposition from `word`,
    through `table` (each string one letter short of an entry -> those entries: SymSpell)."""
    near = set(table.get(word, ()))
    variants = deletions(word)
    near.update(words.keys() & variants)
    for variant in table.keys() & variants:
        near.update(table[variant])
    return near
