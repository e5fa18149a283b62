"""Screening's use cases: screen a name or an order's parties, clear a match, update the lists.

Commands take their dependencies as keyword arguments; routes and the Kafka handler translate HTTP
and Kafka to these calls and back. The rules live in domain.py (the screening rules, compiled with
the matcher) and clearing.py (the clearance rule); docs/architecture.md lists where each one is.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from services.screening.changes import ChangePublisher
from services.screening.clearing import ClearanceBook, ScreenedName, message_key, new_clearance, set_aside
from services.screening.domain import EntryType
from services.screening.registry import ListRegistry, ListSnapshot, SourceStatus, UpdateOutcome, load_initial
from services.screening.updater import ListUpdater
from shared.events import (
    TOPIC_CLEARANCES,
    ClassifiedOrder,
    Party,
    ScreenedOrder,
    Screening,
    ScreeningClearance,
    derive,
    envelope_dump,
)
from shared.kafka import Outgoing, Publish
from shared.settings import Settings

STAGE = "screening"


@dataclass
class ScreeningRuntime:
    """One instance's screening: its lists (registry), the reviewers' clearances (book), the list
    updater and the announcements of list changes. Built whole by `open_runtime`."""

    settings: Settings
    registry: ListRegistry
    clearances: ClearanceBook
    updater: ListUpdater
    changes: ChangePublisher
    # Set once every clearance published before start-up is known (the follower caught up).
    clearances_caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def snapshot(self) -> ListSnapshot:
        return self.registry.snapshot


def build_runtime(
    settings: Settings,
    publish: Publish,
    lists: ListSnapshot | None = None,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
) -> ScreeningRuntime:
    """The configured lists (or `lists`, already loaded) with an empty clearance book. Seconds of
    CPU when loading: call it off the event loop."""
    now = datetime.now(UTC)
    if lists is None:
        lists, status = load_initial(settings, now=now)
    else:
        status = {s.info.kind: SourceStatus(s.info.kind, s.info.folder, loaded_at=now) for s in lists.sources}
    registry = ListRegistry(lists, status)
    changes = ChangePublisher(settings, publish)
    updater = ListUpdater(settings, registry, changes, http_transport=http_transport)
    return ScreeningRuntime(settings, registry, ClearanceBook(), updater, changes)


# --- screening ---------------------------------------------------------------------------------


def screen_name(
    *,
    snapshot: ListSnapshot,
    book: ClearanceBook,
    name: str,
    country: str | None = None,
    entry_type: EntryType | None = None,
    address: str | None = None,
) -> ScreenedName:
    """Matches of one name on `snapshot`, stamped with their entry versions; those a reviewer
    cleared for this name and entry version set aside as `cleared`."""
    found = snapshot.screener.screen_name(name, country, entry_type, address=address)
    return set_aside(
        name,
        found,
        entry_versions=snapshot.entry_versions,
        book=book,
        limit=snapshot.policy.max_matches_per_party,
    )


def screen_parties(*, snapshot: ListSnapshot, book: ClearanceBook, parties: Sequence[Party]) -> Screening:
    """Every party of one order on one snapshot (the same lists for the whole order)."""
    screening = snapshot.screener.screen_parties(parties)
    screened = []
    for party in screening.parties:
        answer = set_aside(
            party.name,
            party.matches,
            entry_versions=snapshot.entry_versions,
            book=book,
            limit=snapshot.policy.max_matches_per_party,
        )
        screened.append(
            party.model_copy(update={"matches": answer.matches, "cleared_matches": answer.cleared})
        )
    return screening.model_copy(update={"parties": screened})


async def screen_order(*, runtime: ScreeningRuntime, classified: ClassifiedOrder) -> ScreenedOrder:
    """The next stage's envelope: every party of the order screened on the lists in use."""
    # An order screened before the clearances published earlier are read would be held for a match
    # a reviewer has already cleared.
    await runtime.clearances_caught_up.wait()
    screening = screen_parties(
        snapshot=runtime.snapshot, book=runtime.clearances, parties=classified.order.parties
    )
    return ScreenedOrder(
        **derive(classified, STAGE), classification=classified.classification, screening=screening
    )


# --- commands ------------------------------------------------------------------------------------


async def clear_match(
    *,
    snapshot: ListSnapshot,
    book: ClearanceBook,
    publish: Publish,
    topic: str,
    party_name: str,
    list_id: str,
    entry_id: str,
    entry_version: str | None,
    reviewer: str,
    reason: str,
    now: datetime,
) -> tuple[str, ScreeningClearance]:
    """Publish a reviewer's "not a match" to the compacted clearances topic; (key, clearance).

    Raises ClearanceRefused (clearing.py) or PublishError (nothing published). Every instance, this
    one too, reads it back from the topic; it is also put in this instance's book at once."""
    clearance = new_clearance(
        event_id=str(uuid.uuid4()),
        party_name=party_name,
        list_id=list_id,
        entry_id=entry_id,
        entry_version=entry_version,
        reviewer=reviewer,
        reason=reason,
        cleared_at=now,
        list_ids=snapshot.catalog.list_ids(),
        entry_versions=snapshot.entry_versions,
    )
    key = message_key(clearance)
    await publish(Outgoing(topic, key, envelope_dump(clearance)))
    book.put(key, clearance)
    return key, clearance


async def update_lists(*, updater: ListUpdater, kinds: Sequence[str] | None = None) -> list[UpdateOutcome]:
    """Fetch, verify, swap and announce the named sources (default: all). Screening goes on."""
    return await updater.update_lists(kinds)


def clearances_topic(settings: Settings) -> str:
    return settings.topic(TOPIC_CLEARANCES)
