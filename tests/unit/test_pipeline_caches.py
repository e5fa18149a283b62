"""The pipeline's caches (issue 13): each gives exactly what the uncached path gives, forgets what it
held when the data behind it changes, and stays within its bound."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from services.classifier.reference import ReferenceData
from services.screening import service
from services.screening.cache import ScreeningCache
from services.screening.clearing import ClearanceBook, message_key, new_clearance
from services.screening.registry import ListSnapshot
from shared.events import Party, PartyScreening, Screening
from tests.screening_support import loaded_lists

LISTED = "DENA TANKERS FZE"  # on OFAC's SDN list (and the CSL)


def parties(*names: tuple[str, str], address: str | None = None) -> list[Party]:
    return [
        Party(role="buyer" if i == 0 else "end_user", name=name, country=country, address=address)
        for i, (name, country) in enumerate(names)
    ]


ORDERS = [
    parties((LISTED, "AE"), ("Muster Maschinenbau GmbH", "DE")),
    parties(("Muster Maschinenbau GmbH", "DE"), (LISTED, "AE"), (LISTED, "AE")),
    parties((LISTED, "AE"), ("Muster Maschinenbau GmbH", "DE"), address="Port Rashid, Dubai"),
    parties(("Chengdu Latest Electronics Technology Company", "CN"), (LISTED, "AE")),
]


def dumped(screening: Screening) -> dict[str, Any]:
    return screening.model_dump(mode="json")


def test_cached_screening_is_the_screeners_own_answer_and_repeats_are_not_matched_again() -> None:
    snapshot = loaded_lists()
    cache = ScreeningCache(100)
    for order in ORDERS * 2:
        assert dumped(cache.screen_parties(snapshot, order)) == dumped(
            snapshot.screener.screen_parties(order)
        )
    # Distinct (name, country, address): 5; every other party of the 18 was answered from memory.
    assert (cache.misses, cache.hits, len(cache)) == (5, 13, 5)
    assert cache.screen_parties(snapshot, ORDERS[0]).parties[0].matches, "the listed name still matches"


class CountingScreener:
    """A screener whose every answer names the call that made it, to tell fresh from remembered."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def screen_parties(self, given: Sequence[Party]) -> Screening:
        self.calls += 1
        answer: Screening = self.inner.screen_parties(given)
        return answer.model_copy(update={"policy_version": f"call-{self.calls}"})


def test_a_list_swap_empties_the_cache() -> None:
    snapshot = loaded_lists()
    old, new = CountingScreener(snapshot.screener), CountingScreener(snapshot.screener)
    first = dataclasses.replace(snapshot, screener=cast(Any, old))
    cache = ScreeningCache(100)
    cache.screen_parties(first, ORDERS[0])
    assert len(cache) == 2 and cache.misses == 2
    # An update builds a new snapshot (generation + 1): nothing found on the old one is reused.
    swapped = dataclasses.replace(first, generation=first.generation + 1, screener=cast(Any, new))
    again = cache.screen_parties(swapped, ORDERS[0])
    assert cache.misses == 4 and cache.hits == 0
    assert again.policy_version == "call-1" and (old.calls, new.calls) == (1, 1)


def test_the_cache_keeps_at_most_its_size_and_zero_keeps_nothing() -> None:
    snapshot = loaded_lists()
    bounded = ScreeningCache(2)
    for order in ORDERS:
        bounded.screen_parties(snapshot, order)
    assert len(bounded) == 2
    off = ScreeningCache(0)
    for order in ORDERS:
        assert dumped(off.screen_parties(snapshot, order)) == dumped(snapshot.screener.screen_parties(order))
    # Only the repeat within one order (as the screener itself does) is not matched twice.
    assert len(off) == 0 and (off.misses, off.hits) == (8, 1)


def test_a_clearance_applies_to_a_name_already_in_the_cache() -> None:
    snapshot: ListSnapshot = loaded_lists()
    cache, book = ScreeningCache(100), ClearanceBook()
    before = service.screen_parties(snapshot=snapshot, book=book, parties=ORDERS[0], cache=cache)
    hit = before.parties[0].matches[0]
    clearance = new_clearance(
        event_id="c-1",
        party_name=LISTED,
        list_id=hit.list_id,
        entry_id=hit.entry_id,
        entry_version=None,
        reviewer="a.reviewer",
        reason="Different company",
        cleared_at=datetime(2026, 12, 7, tzinfo=UTC),
        list_ids=snapshot.catalog.list_ids(),
        entry_versions=snapshot.entry_versions,
    )
    book.put(message_key(clearance), clearance)
    after = service.screen_parties(snapshot=snapshot, book=book, parties=ORDERS[0], cache=cache)
    assert cache.hits == 2, "the second order was answered from the cache"
    party: PartyScreening = after.parties[0]
    assert (hit.list_id, hit.entry_id) in {(m.list_id, m.entry_id) for m in party.cleared_matches}
    assert (hit.list_id, hit.entry_id) not in {(m.list_id, m.entry_id) for m in party.matches}


def test_the_classifiers_suggestions_are_remembered_per_ccl() -> None:
    class Index:
        def __init__(self) -> None:
            self.calls = 0

        def suggest(self, description: str, hs_code: str | None = None) -> list[Any]:
            self.calls += 1
            return [f"{description}/{hs_code}/{self.calls}"]

    index = Index()
    reference = ReferenceData(ccl=None, eu_annex=None, suggestions=index)  # type: ignore[arg-type]
    first = reference.suggest("thermal camera", "9025.80")
    assert reference.suggest("thermal camera", "9025.80") == first and index.calls == 1
    assert reference.suggest("thermal camera", None) != first and index.calls == 2
    # A CCL update is a new ReferenceData: its suggestions are ranked afresh.
    updated = dataclasses.replace(reference)
    assert updated.suggest("thermal camera", "9025.80") != first and index.calls == 3
