"""The live list state of one screening instance, and how it changes while serving.

`ListSnapshot` is everything one answer is computed from (the loaded sources, the catalogue, the
screener and its index, each entry's version); it is immutable. `ScreeningRuntime.snapshot` is the
one reference that an update swaps: the new snapshot is built off the event loop while the old one
keeps serving, then assigned in one statement. A request reads `runtime.snapshot` once and computes
its whole answer from it, so it is answered by exactly one list version, old or new, never a mix.

An update that fails (network refused, file truncated, format changed) keeps the previous version,
counts the failure, logs it and shows it in `GET /lists`; it never makes the service unready.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import httpx
from prometheus_client import Counter, Gauge

from services.screening.clearances import ClearanceBook, ClearanceFeed, clearance_name
from services.screening.domain import EntryType, ListCatalog, Screener, ScreeningPolicy, TokenIndex
from services.screening.lists import ListFormatError, LoadedSource, load_source, parse_sources
from services.screening.update import (
    UpdateError,
    accept,
    effective_folder,
    fetch_verified,
    make_client,
    reject,
)
from shared.events import (
    EXPORTWATCH_NS,
    TOPIC_LISTS_UPDATED,
    ClearedMatch,
    ListsUpdated,
    Party,
    PartyMatch,
    Screening,
    envelope_dump,
)
from shared.kafka import Outgoing
from shared.policy import load_policy
from shared.settings import Settings

log = logging.getLogger("exportwatch.screening.registry")

LIST_AGE = Gauge(
    "exportwatch_screening_list_age_seconds",
    "Seconds since the loaded copy of a list source was published (since it was loaded if undated)",
    ["source"],
)
LIST_ENTRIES = Gauge("exportwatch_screening_list_entries", "Entries loaded per list source", ["source"])
LIST_UPDATES = Counter(
    "exportwatch_screening_list_updates_total", "List update attempts by outcome", ["source", "outcome"]
)
LIST_UPDATE_FAILURES = Counter(
    "exportwatch_screening_list_update_failures_total",
    "List updates that failed (fetch refused, copy broken or truncated); the previous version stays",
    ["source"],
)
UNPUBLISHED_CHANGES = Gauge(
    "exportwatch_screening_list_changes_unpublished",
    "lists.updated.v1 events waiting for the broker",
)

# Matches the screener may return beyond the policy's limit, so that cleared matches, set aside,
# do not push real ones out of the answer.
CLEARED_HEADROOM = 20

Publish = Callable[[Outgoing], Awaitable[None]]


# --- snapshot ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListSnapshot:
    generation: int
    sources: tuple[LoadedSource, ...]
    catalog: ListCatalog
    screener: Screener
    policy: ScreeningPolicy
    # (list_id, entry_id) -> the entry's version across every source that carries it.
    entry_versions: Mapping[tuple[str, str], str]
    built_at: datetime
    build_seconds: float

    def source(self, kind: str) -> LoadedSource | None:
        return next((s for s in self.sources if s.info.kind == kind), None)


def combined_version(versions: Iterable[str]) -> str:
    """One entry's version over the sources that carry it (the SDN comes from OFAC and the CSL): a
    change in any copy is a change of the entry."""
    distinct = sorted(set(versions))
    if len(distinct) == 1:
        return distinct[0]
    return hashlib.sha256("+".join(distinct).encode()).hexdigest()[:16]


def build_snapshot(
    sources: Sequence[LoadedSource], policy: ScreeningPolicy, *, generation: int, now: datetime
) -> ListSnapshot:
    """Catalogue, index and screener over `sources` (seconds of CPU: call it off the event loop).
    Raises ValueError when the policy has no effect for a loaded list."""
    started = time.perf_counter()
    catalog = ListCatalog.of((s.info, s.entries) for s in sources)
    index = TokenIndex.build(entry for s in sources for entry in s.entries)
    wide = dataclasses.replace(policy, max_matches_per_party=policy.max_matches_per_party + CLEARED_HEADROOM)
    screener = Screener(index, wide, catalog.lists)
    entry_versions = {
        key: combined_version(e.content_version for e in entries) for key, entries in catalog.entries.items()
    }
    elapsed = time.perf_counter() - started
    log.info(
        "lists indexed (generation %d) in %.2fs: %d entries from %d sources",
        generation,
        elapsed,
        sum(len(s.entries) for s in sources),
        len(sources),
    )
    return ListSnapshot(generation, tuple(sources), catalog, screener, policy, entry_versions, now, elapsed)


# --- what changed --------------------------------------------------------------------------------


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


# --- per-source status -----------------------------------------------------------------------------

Outcome = Literal["loaded", "updated", "unchanged", "failed"]


@dataclass
class SourceStatus:
    kind: str
    configured_folder: str
    loaded_at: datetime
    last_attempt_at: datetime | None = None
    last_outcome: Outcome = "loaded"
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    failures_total: int = 0


@dataclass(frozen=True)
class UpdateOutcome:
    source: str
    outcome: Outcome
    old_version: str | None
    new_version: str | None
    published: str | None = None
    entries: int | None = None
    added: int = 0
    changed: int = 0
    removed: int = 0
    error: str | None = None


def published_age_seconds(published: str | None, loaded_at: datetime, now: datetime) -> float:
    if published is not None:
        try:
            start = datetime.combine(date.fromisoformat(published), datetime.min.time(), UTC)
            return max(0.0, (now - start).total_seconds())
        except ValueError:
            pass
    return max(0.0, (now - loaded_at).total_seconds())


# --- the runtime -----------------------------------------------------------------------------------


def load_initial(settings: Settings, *, now: datetime) -> tuple[ListSnapshot, dict[str, SourceStatus]]:
    """Policy + configured sources (or their newer verified cached copies) -> the first snapshot."""
    policy = load_policy(settings.policy_file)
    screening_policy = ScreeningPolicy.from_section(policy.version, policy.section("screening"))
    data_dir = settings.require_data_dir()
    sources: list[LoadedSource] = []
    status: dict[str, SourceStatus] = {}
    for spec in parse_sources(settings.screening_sources):
        configured = data_dir / spec.folder
        sources.append(load_source(spec.kind, effective_folder(settings, spec.kind, configured)))
        status[spec.kind] = SourceStatus(spec.kind, str(configured), loaded_at=now)
    return build_snapshot(sources, screening_policy, generation=1, now=now), status


@dataclass
class ScreenedName:
    """One party's answer: what to act on, and what a reviewer cleared (kept as evidence)."""

    matches: list[PartyMatch]
    cleared: list[ClearedMatch]


class ScreeningRuntime:
    """The current snapshot, the list update machinery and the clearances of one instance."""

    def __init__(
        self,
        settings: Settings,
        snapshot: ListSnapshot,
        status: dict[str, SourceStatus],
        *,
        clearances: ClearanceBook | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.status = status
        self.clearances = clearances if clearances is not None else ClearanceBook()
        self.clearance_feed: ClearanceFeed | None = None
        self.publish: Publish | None = None
        self.http_transport = http_transport
        self.clock = clock
        self.unpublished: list[Outgoing] = []
        self._update_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._register_metrics()

    # -- screening --------------------------------------------------------------------------------

    def screen_name(
        self,
        snapshot: ListSnapshot,
        name: str,
        country: str | None = None,
        entry_type: EntryType | None = None,
        address: str | None = None,
    ) -> ScreenedName:
        """Matches of one name on `snapshot`, each stamped with its entry version (over every source
        that carries the entry); those a reviewer cleared for this name and entry version are set
        aside as `cleared`."""
        return self._set_aside(
            snapshot, name, snapshot.screener.screen_name(name, country, entry_type, address=address)
        )

    def _set_aside(self, snapshot: ListSnapshot, name: str, found: Sequence[PartyMatch]) -> ScreenedName:
        """`found` (the matches of `name`) stamped with their entry versions, the cleared ones apart,
        the rest cut to the policy's limit."""
        name_key = clearance_name(name) if found and len(self.clearances) else None
        kept: list[PartyMatch] = []
        cleared: list[ClearedMatch] = []
        for match in found:
            version = snapshot.entry_versions.get((match.list_id, match.entry_id))
            stamped = match.model_copy(update={"entry_version": version})
            clearance = (
                self.clearances.in_force(match.list_id, match.entry_id, name_key, version)
                if name_key is not None
                else None
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
        return ScreenedName(kept[: snapshot.policy.max_matches_per_party], cleared)

    def screen_parties(self, parties: Sequence[Party]) -> Screening:
        """Every party of one order on one snapshot (the same lists for the whole order)."""
        snapshot = self.snapshot
        screening = snapshot.screener.screen_parties(parties)
        screened = []
        for party in screening.parties:
            answer = self._set_aside(snapshot, party.name, party.matches)
            screened.append(
                party.model_copy(update={"matches": answer.matches, "cleared_matches": answer.cleared})
            )
        return screening.model_copy(update={"parties": screened})

    async def clearances_loaded(self) -> None:
        """Wait until every clearance published before start-up is known (no-op without a feed)."""
        if self.clearance_feed is not None:
            await self.clearance_feed.caught_up.wait()

    # -- updates ----------------------------------------------------------------------------------

    async def update_lists(self, kinds: Sequence[str] | None = None) -> list[UpdateOutcome]:
        """Fetch, verify, swap, publish. One update at a time; screening goes on throughout."""
        async with self._update_lock:
            return await self._update(list(kinds) if kinds else [s.info.kind for s in self.snapshot.sources])

    async def _update(self, kinds: list[str]) -> list[UpdateOutcome]:
        current = self.snapshot
        outcomes: dict[str, UpdateOutcome] = {}
        fetched: dict[str, tuple[Path, LoadedSource]] = {}
        async with make_client(self.settings, self.http_transport) as client:
            for kind in kinds:
                now = self.clock()
                status = self.status[kind]
                status.last_attempt_at = now
                old = current.source(kind)
                try:
                    folder, loaded = await fetch_verified(
                        kind, client=client, settings=self.settings, current=old, now=now
                    )
                except (UpdateError, ListFormatError, OSError) as exc:
                    outcomes[kind] = self._failed(kind, old, str(exc))
                    continue
                if folder is None:
                    assert old is not None  # only a copy of the version in use is not kept
                    status.last_outcome, status.last_success_at = "unchanged", now
                    status.consecutive_failures = 0
                    LIST_UPDATES.labels(kind, "unchanged").inc()
                    outcomes[kind] = UpdateOutcome(
                        kind,
                        "unchanged",
                        old.info.version,
                        old.info.version,
                        old.info.published,
                        len(old.entries),
                    )
                    log.info("%s: unchanged (%s)", kind, old.info.version)
                    continue
                fetched[kind] = (folder, loaded)
        if fetched:
            outcomes.update(await self._swap(current, fetched))
        return [outcomes[k] for k in kinds]

    async def _swap(
        self, current: ListSnapshot, fetched: dict[str, tuple[Path, LoadedSource]]
    ) -> dict[str, UpdateOutcome]:
        sources = [fetched[s.info.kind][1] if s.info.kind in fetched else s for s in current.sources]
        now = self.clock()
        # The next index is built beside the serving one: the serving one's caches go first, so
        # that the two together stay within the memory budget (docs/benchmarks.md).
        if isinstance(current.screener.matcher, TokenIndex):
            current.screener.matcher.trim_caches()
        try:
            snapshot = await asyncio.to_thread(
                build_snapshot, sources, current.policy, generation=current.generation + 1, now=now
            )
        except ValueError as exc:  # e.g. a list the policy has no effect for
            outcomes = {}
            for kind, (folder, _) in fetched.items():
                await asyncio.to_thread(reject, folder, str(exc))
                outcomes[kind] = self._failed(
                    kind, current.source(kind), f"the new copy cannot be screened: {exc}"
                )
            return outcomes
        # The swap: one reference. Requests that already hold the old snapshot finish on it.
        self.snapshot = snapshot
        outcomes = {}
        for kind, (folder, loaded) in fetched.items():
            await asyncio.to_thread(accept, folder, loaded)
            old = current.source(kind)
            changes = diff_source(old, loaded)
            self.unpublished.extend(change_event(c, now) for c in changes)
            status = self.status[kind]
            status.last_outcome, status.last_success_at, status.loaded_at = "updated", now, now
            status.consecutive_failures = 0
            LIST_UPDATES.labels(kind, "updated").inc()
            outcomes[kind] = UpdateOutcome(
                kind,
                "updated",
                old.info.version if old else None,
                loaded.info.version,
                loaded.info.published,
                len(loaded.entries),
                sum(len(c.added) for c in changes),
                sum(len(c.changed) for c in changes),
                sum(len(c.removed) for c in changes),
            )
            log.info(
                "%s: updated %s -> %s (%s): +%d ~%d -%d entries; now generation %d",
                kind,
                outcomes[kind].old_version,
                loaded.info.version,
                loaded.info.published,
                outcomes[kind].added,
                outcomes[kind].changed,
                outcomes[kind].removed,
                snapshot.generation,
            )
        await self.flush_changes()
        return outcomes

    def _failed(self, kind: str, old: LoadedSource | None, error: str) -> UpdateOutcome:
        status = self.status[kind]
        status.last_outcome, status.last_error, status.last_error_at = "failed", error, self.clock()
        status.consecutive_failures += 1
        status.failures_total += 1
        LIST_UPDATES.labels(kind, "failed").inc()
        LIST_UPDATE_FAILURES.labels(kind).inc()
        log.error("%s: list update failed, keeping %s: %s", kind, old.info.version if old else None, error)
        return UpdateOutcome(kind, "failed", old.info.version if old else None, None, error=error)

    async def flush_changes(self) -> None:
        """Publish the pending lists.updated.v1 events in order; what the broker does not take stays
        queued and is retried (a list change is never announced silently late: the gauge shows it)."""
        while self.unpublished and self.publish is not None:
            event = self.unpublished[0]
            try:
                await self.publish(Outgoing(self.settings.topic(event.topic), event.key, event.value))
            except Exception as exc:
                log.warning("lists.updated.v1 not published yet (%d waiting): %s", len(self.unpublished), exc)
                break
            self.unpublished.pop(0)
        UNPUBLISHED_CHANGES.set(len(self.unpublished))

    # -- background tasks -----------------------------------------------------------------------

    def start_background(self) -> None:
        self._tasks.append(asyncio.create_task(self._retry_publish(), name="screening-list-events"))
        if self.settings.screening_refresh_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._refresh(), name="screening-list-refresh"))

    async def stop_background(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _sleep(self, seconds: float) -> bool:
        """False when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        return not self._stop.is_set()

    async def _retry_publish(self) -> None:
        while await self._sleep(5.0):
            if self.unpublished:
                await self.flush_changes()

    async def _refresh(self) -> None:
        while await self._sleep(self.settings.screening_refresh_interval_s):
            try:
                await self.update_lists()
            except Exception:  # the loop must outlive any one update
                log.exception("periodic list update failed")

    # -- reporting ------------------------------------------------------------------------------

    def age_seconds(self, kind: str) -> float:
        source = self.snapshot.source(kind)
        status = self.status[kind]
        return published_age_seconds(
            source.info.published if source else None, status.loaded_at, self.clock()
        )

    def entries(self, kind: str) -> float:
        source = self.snapshot.source(kind)
        return float(len(source.entries)) if source is not None else 0.0

    def _register_metrics(self) -> None:
        # Computed when scraped, so the age grows between updates without a timer.
        for kind in self.status:
            LIST_AGE.labels(kind).set_function(functools.partial(self.age_seconds, kind))
            LIST_ENTRIES.labels(kind).set_function(functools.partial(self.entries, kind))
