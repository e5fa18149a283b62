"""The clearance rule: a reviewer's "not a match", and how it sets a hit aside. Pure: no I/O, no clock.

A clearance says: this party name is not this list entry, as the entry stood at `entry_version`.
It sets that (name, entry) pair aside until the publisher changes the entry: a changed entry (new
alias, new address, new programme) must be judged again, so the hit comes back by itself. A set-aside
hit is not dropped: it travels in the screening section as `cleared_matches`, the evidence of who
cleared it, when and why; risk acts on `matches` only.

Names are compared after the matcher's own normalisation (`clearance_name`), so a clearance covers
exactly the spellings the matcher cannot tell apart either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.screening.domain import NameQuery
from shared.events import ClearedMatch, PartyMatch, ScreeningClearance, clearance_key


def clearance_name(name: str) -> str:
    """The party name as clearances compare it: the matcher's own normalisation (transliterated,
    case-folded, legal forms and titles dropped, "LAST, First" reordered), so "Acme GmbH" cleared is
    "ACME GMBH" cleared, exactly the names the matcher cannot tell apart either."""
    tokens = NameQuery.of(name).tokens
    return " ".join(tokens) if tokens else " ".join(name.casefold().split())


def message_key(clearance: ScreeningClearance) -> str:
    """The Kafka key of a clearance: one per (entry, normalised party name)."""
    return clearance_key(clearance.list_id, clearance.entry_id, clearance_name(clearance.party_name))


@dataclass(frozen=True)
class ClearanceState:
    key: str
    clearance: ScreeningClearance
    in_force: bool
    current_entry_version: str | None
    why_not: str | None


class ClearanceBook:
    """Clearances by (list_id, entry_id, normalised name). Changed only by the clearance follower
    (one task) and the clearance command, read by screening, all on one event loop: no lock."""

    def __init__(self) -> None:
        self._by_key: dict[str, ScreeningClearance] = {}
        self._by_pair: dict[tuple[str, str, str], str] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def put(self, key: str, clearance: ScreeningClearance) -> None:
        """Record a clearance under its Kafka key (a later one for the same key replaces it)."""
        self.revoke(key)
        self._by_key[key] = clearance
        # Normalised here, not trusted from the message: this instance's matcher decides which party
        # names are the same name.
        self._by_pair[(clearance.list_id, clearance.entry_id, clearance_name(clearance.party_name))] = key

    def revoke(self, key: str) -> bool:
        old = self._by_key.pop(key, None)
        if old is None:
            return False
        pair = (old.list_id, old.entry_id, clearance_name(old.party_name))
        if self._by_pair.get(pair) == key:
            del self._by_pair[pair]
        return True

    def find(self, list_id: str, entry_id: str, name_key: str) -> ScreeningClearance | None:
        key = self._by_pair.get((list_id, entry_id, name_key))
        return self._by_key.get(key) if key is not None else None

    def in_force(
        self, list_id: str, entry_id: str, name_key: str, entry_version: str | None
    ) -> ScreeningClearance | None:
        """The clearance of this pair if the entry is still the version that was cleared."""
        found = self.find(list_id, entry_id, name_key)
        if found is None or entry_version is None or found.entry_version != entry_version:
            return None
        return found

    def states(self, entry_versions: Mapping[tuple[str, str], str]) -> list[ClearanceState]:
        out = []
        for key, clearance in sorted(self._by_key.items(), key=lambda kc: (kc[1].cleared_at, kc[1].event_id)):
            current = entry_versions.get((clearance.list_id, clearance.entry_id))
            why = (
                "the entry is no longer on the loaded lists"
                if current is None
                else f"the entry changed since it was cleared (now {current})"
                if current != clearance.entry_version
                else None
            )
            out.append(ClearanceState(key, clearance, why is None, current, why))
        return out


@dataclass
class ScreenedName:
    """One party's answer: what to act on, and what a reviewer cleared (kept as evidence)."""

    matches: list[PartyMatch]
    cleared: list[ClearedMatch]


def set_aside(
    name: str,
    found: Sequence[PartyMatch],
    *,
    entry_versions: Mapping[tuple[str, str], str],
    book: ClearanceBook,
    limit: int,
) -> ScreenedName:
    """`found` (the matches of `name`) stamped with their entry versions (over every source that
    carries the entry), those a reviewer cleared for this name and entry version apart, the rest
    cut to the policy's `limit`."""
    name_key = clearance_name(name) if found and len(book) else None
    kept: list[PartyMatch] = []
    cleared: list[ClearedMatch] = []
    for match in found:
        version = entry_versions.get((match.list_id, match.entry_id))
        stamped = match.model_copy(update={"entry_version": version})
        clearance = (
            book.in_force(match.list_id, match.entry_id, name_key, version) if name_key is not None else None
        )
        if clearance is None:
            kept.append(stamped)
        else:
            cleared.append(
                ClearedMatch(
                    **stamped.model_dump(),
                    cleared_by=clearance.reviewer,
                    cleared_at=clearance.cleared_at,
                    clearance_reason=clearance.reason,
                    clearance_id=clearance.event_id,
                )
            )
    return ScreenedName(kept[:limit], cleared)


class ClearanceRefused(ValueError):
    """A clearance that may not be given; `kind` says why: "unknown" (no such list or entry) or
    "changed" (the reviewer saw another version of the entry)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def new_clearance(
    *,
    event_id: str,
    party_name: str,
    list_id: str,
    entry_id: str,
    entry_version: str | None,
    reviewer: str,
    reason: str,
    cleared_at: datetime,
    list_ids: set[str],
    entry_versions: Mapping[tuple[str, str], str],
) -> ScreeningClearance:
    """A clearance of a loaded entry, tied to its current version. `entry_version` is the version the
    reviewer saw (a hit's entry_version), None for the current one: if the entry changed since, the
    reviewer must judge the current entry (ClearanceRefused "changed")."""
    current = entry_versions.get((list_id, entry_id))
    if list_id not in list_ids:
        raise ClearanceRefused("unknown", f"list_id {list_id!r} is not loaded")
    if current is None:
        raise ClearanceRefused("unknown", f"entry_id {entry_id!r} is not on list {list_id!r}")
    if entry_version is not None and entry_version != current:
        raise ClearanceRefused(
            "changed",
            f"entry_version {entry_version!r}: the entry has changed since (now {current!r}); "
            "screen the party again and review the current entry",
        )
    return ScreeningClearance(
        event_id=event_id,
        party_name=party_name,
        normalised_name=clearance_name(party_name),
        list_id=list_id,
        entry_id=entry_id,
        entry_version=current,
        reviewer=reviewer,
        reason=reason,
        cleared_at=cleared_at,
    )
