"""What changed between two versions of a list, and the good-guy list that depends on it.

Pure: sources are built from plain values, no files, no broker.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from services.screening.changes import change_event, diff_source
from services.screening.clearing import ClearanceBook, ScreenedName, clearance_name
from services.screening.domain import ListEntry, ListInfo, ScreeningPolicy, SourceInfo
from services.screening.lists import LoadedSource, new_entry
from services.screening.registry import ListSnapshot, build_snapshot, combined_version
from services.screening.service import screen_name
from shared.events import ScreeningClearance

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POLICY = ScreeningPolicy("test-1", 0.86, 0.95, 5, {"UN": "block"})


def un_entry(entry_id: str, name: str, *aliases: str) -> ListEntry:
    return new_entry(
        source_id="un_sc",
        list_id="UN",
        entry_id=entry_id,
        name=name,
        aliases=aliases,
        entry_type="entity",
        programs=["DPRK"],
        countries=["KP"],
    )


def source(version: str, *entries: ListEntry) -> LoadedSource:
    info = SourceInfo(
        source_id="un_sc",
        kind="un_sc",
        folder="/lists/un",
        files=("consolidated.xml",),
        version=version,
        published="2026-02-27",
        rows_read=len(entries),
        rows_skipped=0,
        skipped_examples=(),
        lists=(
            ListInfo(
                "un_sc",
                "UN",
                "UN Security Council Consolidated List (UN)",
                version,
                "2026-02-27",
                len(entries),
                sum(len(e.aliases) for e in entries),
            ),
        ),
    )
    return LoadedSource(info, list(entries))


KOMID = un_entry("KPe.001", "KOREA MINING DEVELOPMENT TRADING CORPORATION", "KOMID")
TANCHON = un_entry("KPe.002", "TANCHON COMMERCIAL BANK")
GREEN_PINE = un_entry("KPe.010", "GREEN PINE ASSOCIATED CORPORATION")


def test_diff_names_added_changed_and_removed_entries_by_content_version() -> None:
    old = source("sha256:aaa", KOMID, TANCHON, GREEN_PINE)
    komid_changed = un_entry("KPe.001", "KOREA MINING DEVELOPMENT TRADING CORPORATION", "KOMID", "CHANGGWANG")
    new = source(
        "sha256:bbb", komid_changed, GREEN_PINE, un_entry("KPe.030", "KOREA RYONBONG GENERAL CORPORATION")
    )

    [change] = diff_source(old, new)

    assert (change.source, change.list_id, change.old_version, change.new_version) == (
        "un_sc",
        "UN",
        "sha256:aaa",
        "sha256:bbb",
    )
    assert (change.added, change.changed, change.removed) == (("KPe.030",), ("KPe.001",), ("KPe.002",))
    assert change.entries == 3


def test_a_first_load_is_all_added_and_the_event_carries_the_diff() -> None:
    [change] = diff_source(None, source("sha256:aaa", KOMID, TANCHON))
    assert (change.old_version, change.added, change.changed, change.removed) == (
        None,
        ("KPe.001", "KPe.002"),
        (),
        (),
    )

    event = change_event(change, NOW)
    body = json.loads(event.value)
    assert (event.topic, event.key) == ("lists.updated.v1", "UN")
    assert body["schema"] == "list.updated.v1"
    assert (body["new_version"], body["added"], body["updated_at"]) == (
        "sha256:aaa",
        ["KPe.001", "KPe.002"],
        "2026-11-30T12:00:00Z",
    )
    # Every instance announces the same change under the same event id (records keeps one).
    assert change_event(change, NOW).value == event.value


def test_entry_version_over_two_sources_changes_when_either_copy_changes() -> None:
    assert combined_version(["v1"]) == combined_version(["v1", "v1"]) == "v1"
    both = combined_version(["v1", "v2"])
    assert both not in ("v1", "v2")
    assert combined_version(["v2", "v1"]) == both != combined_version(["v1", "v3"])


class Lists:
    """A snapshot of some entries and a clearance book, as one screening instance holds them."""

    def __init__(self, *entries: ListEntry) -> None:
        self.snapshot = build_snapshot([source("sha256:aaa", *entries)], POLICY, generation=1, now=NOW)
        self.clearances = ClearanceBook()

    def screen_name(self, snapshot: ListSnapshot, name: str, country: str | None = None) -> ScreenedName:
        return screen_name(snapshot=snapshot, book=self.clearances, name=name, country=country)


def runtime_over(*entries: ListEntry) -> Lists:
    return Lists(*entries)


def clearance(party_name: str, entry: ListEntry, version: str) -> ScreeningClearance:
    return ScreeningClearance(
        event_id="c-1",
        party_name=party_name,
        normalised_name=clearance_name(party_name),
        list_id=entry.list_id,
        entry_id=entry.entry_id,
        entry_version=version,
        reviewer="a.reviewer",
        reason="Different company: Korea Mining of Toronto, incorporated 1998",
        cleared_at=NOW,
    )


def test_a_cleared_pair_stops_matching_until_the_entry_changes() -> None:
    runtime = runtime_over(KOMID, TANCHON)
    [hit] = runtime.screen_name(runtime.snapshot, "Korea Mining Development Trading Corp.", "KP").matches
    assert (hit.entry_id, hit.entry_version) == ("KPe.001", KOMID.content_version)

    assert hit.entry_version is not None
    runtime.clearances.put(
        "UN:KPe.001:x", clearance("KOREA MINING DEVELOPMENT TRADING CORP", KOMID, hit.entry_version)
    )
    cleared = runtime.screen_name(runtime.snapshot, "Korea Mining Development Trading Corp.", "KP")
    assert cleared.matches == []
    [kept] = cleared.cleared
    assert (kept.entry_id, kept.cleared_by, kept.cleared_at) == ("KPe.001", "a.reviewer", NOW)
    assert kept.score == hit.score  # the evidence stays explainable

    # The publisher changes the entry (a new alias): a new version, and the hit is back.
    changed = un_entry("KPe.001", "KOREA MINING DEVELOPMENT TRADING CORPORATION", "KOMID", "CHANGGWANG")
    runtime.snapshot = build_snapshot([source("sha256:bbb", changed, TANCHON)], POLICY, generation=2, now=NOW)
    again = runtime.screen_name(runtime.snapshot, "Korea Mining Development Trading Corp.", "KP")
    assert [m.entry_id for m in again.matches] == ["KPe.001"] and again.cleared == []
    [state] = runtime.clearances.states(runtime.snapshot.entry_versions)
    assert state.in_force is False and "changed" in (state.why_not or "")


def test_a_clearance_is_for_one_name_and_one_entry() -> None:
    runtime = runtime_over(KOMID, TANCHON)
    runtime.clearances.put("k", clearance("Tanchon Commercial Bank", TANCHON, TANCHON.content_version))

    assert [m.entry_id for m in runtime.screen_name(runtime.snapshot, "KOMID").matches] == ["KPe.001"]
    assert runtime.screen_name(runtime.snapshot, "TANCHON COMMERCIAL BANK").matches == []
    assert [
        m.entry_id for m in runtime.screen_name(runtime.snapshot, "Tanchon Commercial Bank Ltd").matches
    ] == []


def test_a_tombstone_revokes_a_clearance() -> None:
    book = ClearanceBook()
    book.put("UN:KPe.002:tanchon commercial bank", clearance("Tanchon Commercial Bank", TANCHON, "v1"))
    assert book.in_force("UN", "KPe.002", "tanchon commercial bank", "v1") is not None

    assert book.revoke("UN:KPe.002:tanchon commercial bank") is True
    assert book.in_force("UN", "KPe.002", "tanchon commercial bank", "v1") is None
    assert len(book) == 0
