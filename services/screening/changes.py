"""What changed between two versions of a list, and how each change is announced.

A swapped list publishes one `lists.updated.v1` per list of its source, with the entry ids added,
changed (their content version differs) and removed, so records (and anyone reading the topic) can
tell which orders to screen again. An announcement the broker does not take stays queued, in order,
and is retried; the queue's length is a gauge, so a change is never silently announced late.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Gauge

from services.screening.lists import LoadedSource
from shared.events import EXPORTWATCH_NS, TOPIC_LISTS_UPDATED, ListsUpdated, envelope_dump
from shared.kafka import Outgoing, Publish
from shared.service import Periodic
from shared.settings import Settings

log = logging.getLogger("exportwatch.screening.changes")

UNPUBLISHED_CHANGES = Gauge(
    "exportwatch_screening_list_changes_unpublished",
    "lists.updated.v1 events waiting for the broker",
)
# How often queued announcements are offered to the broker again.
RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class ListChange:
    source: str
    list_id: str
    list_name: str
    old_version: str | None
    new_version: str
    published: str | None
    entries: int
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]


def diff_source(old: LoadedSource | None, new: LoadedSource) -> list[ListChange]:
    """Per list of a source: entry ids added, changed (content version differs) and removed."""

    def by_list(source: LoadedSource | None) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for entry in source.entries if source is not None else ():
            out.setdefault(entry.list_id, {})[entry.entry_id] = entry.content_version
        return out

    before, after = by_list(old), by_list(new)
    names = {i.list_id: i.name for s in (old, new) if s is not None for i in s.info.lists}
    changes = []
    for list_id in sorted(set(before) | set(after)):
        was, now = before.get(list_id, {}), after.get(list_id, {})
        changes.append(
            ListChange(
                source=new.info.kind,
                list_id=list_id,
                list_name=names[list_id],
                old_version=old.info.version if old is not None and list_id in before else None,
                new_version=new.info.version,
                published=new.info.published,
                entries=len(now),
                added=tuple(sorted(set(now) - set(was))),
                changed=tuple(sorted(e for e in set(now) & set(was) if now[e] != was[e])),
                removed=tuple(sorted(set(was) - set(now))),
            )
        )
    return changes


def change_event(change: ListChange, now: datetime) -> Outgoing:
    # Deterministic id: every screening instance publishes the same change, records keeps one.
    event_id = str(
        uuid.uuid5(
            EXPORTWATCH_NS,
            f"lists.updated:{change.source}:{change.list_id}:{change.old_version}:{change.new_version}",
        )
    )
    event = ListsUpdated(
        event_id=event_id,
        source=change.source,
        list_id=change.list_id,
        list_name=change.list_name,
        old_version=change.old_version,
        new_version=change.new_version,
        published=change.published,
        entries=change.entries,
        added=list(change.added),
        changed=list(change.changed),
        removed=list(change.removed),
        updated_at=now,
    )
    return Outgoing(topic=TOPIC_LISTS_UPDATED, key=change.list_id, value=envelope_dump(event))


@dataclass
class ChangePublisher:
    """The announcements of swapped lists, published in order; what the broker does not take waits
    and is offered again every RETRY_SECONDS while the service runs."""

    settings: Settings
    publish: Publish
    unpublished: list[Outgoing] = field(default_factory=list)

    async def announce(self, changes: list[ListChange], now: datetime) -> None:
        self.unpublished.extend(change_event(c, now) for c in changes)
        await self.flush()

    async def flush(self) -> None:
        """Publish the pending events in order; stop at the first the broker does not take."""
        while self.unpublished:
            event = self.unpublished[0]
            try:
                await self.publish(Outgoing(self.settings.topic(event.topic), event.key, event.value))
            except Exception as exc:
                log.warning("lists.updated.v1 not published yet (%d waiting): %s", len(self.unpublished), exc)
                break
            self.unpublished.pop(0)
        UNPUBLISHED_CHANGES.set(len(self.unpublished))

    def retrying(self) -> Periodic:
        """The background retry of what waits (started and stopped with the runtime)."""
        return Periodic("screening-list-events", RETRY_SECONDS, self.flush)
