"""One edit away, through a table of deletions (SymSpell): what the matcher's index
(services/screening/index.py) looks a word's neighbours up with.

Pure functions, no I/O.
"""

from __future__ import annotations

from collections import defaultdict
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


def _without(word: str, letters: frozenset[str]) -> str:
    return "".join(letter for letter in word if letter not in letters)


def _subsequences(word: str) -> set[str]:
    """Every string `word` holds in order (letters left out anywhere), the empty one and itself among them."""
    found = {""}
    for letter in word:
        found |= {held + letter for held in found}
    return found


def _one_short(word: str) -> set[str]:
    """`word` itself, and `word` with one letter left out."""
    return {word, *deletions(word)}


class RewriteFilter:
    """Which words some chain of rewritings may turn into a target word, or into a word one slip (a
    letter changed, left out, added, or two swapped) from a "near" target: a test that is never
    wrong when it says no, made to spare the rewriting of words that cannot become a target.

    A rule replaces a spelling by another wherever it is found and leaves every other letter where
    it was. So the letters no rule's spelling holds or writes ("fixed") come out of any chain in the
    same order, and the letters no rule takes away ("kept": none fewer in the replacement, in the
    same order) come out in order, other letters perhaps between them. A word that becomes a target
    has the target's fixed letters and, in order, kept letters the target holds; one that becomes a
    word one slip from a near target has fixed letters one slip from the target's and, with at most
    one left out, kept letters the target holds in order. The targets' fixed letters are keys to the
    kept letters they hold in order: a word's are looked up, a few dict and set lookups."""

    def __init__(self, rules: list[tuple[str, str]], targets: list[str], near_targets: list[str]) -> None:
        self.touched = frozenset("".join(spelled + written for spelled, written in rules))
        taken = {
            letter
            for spelled, written in rules
            for letter in spelled
            if spelled.count(letter) > written.count(letter)
        }
        # A kept letter must also keep its place among the other kept letters in every rule.
        moved = True
        while moved:
            moved = False
            for spelled, written in rules:
                kept = _without(spelled, frozenset(taken))
                if kept not in _subsequences(_without(written, frozenset(taken))):
                    taken |= set(kept)
                    moved = True
        self.taken = frozenset(taken)
        self._drop_touched = str.maketrans(dict.fromkeys("".join(sorted(self.touched))))
        self._drop_taken = str.maketrans(dict.fromkeys("".join(sorted(self.taken))))
        # A target's fixed letters -> the kept letters it holds in order (every target's with those
        # fixed letters); for the near targets, under their fixed letters with one left out too.
        exact: dict[str, set[str]] = defaultdict(set)
        for target in targets:
            exact[_without(target, self.touched)] |= _subsequences(_without(target, self.taken))
        near: dict[str, set[str]] = defaultdict(set)
        for target in near_targets:
            held = _subsequences(_without(target, self.taken))
            for fixed in _one_short(_without(target, self.touched)):
                near[fixed] |= held
        self.exact = {fixed: frozenset(held) for fixed, held in exact.items()}
        self.near = {fixed: frozenset(held) for fixed, held in near.items()}

    def may_reach(self, word: str) -> bool:
        fixed, kept = word.translate(self._drop_touched), word.translate(self._drop_taken)
        held = self.exact.get(fixed)
        if held is not None and kept in held:
            return True
        for i in range(len(fixed) + 1):
            held = self.near.get(fixed[:i] + fixed[i + 1 :] if i < len(fixed) else fixed)
            if held is not None and (
                kept in held or any(kept[:j] + kept[j + 1 :] in held for j in range(len(kept)))
            ):
                return True
        return False
