"""List updates while serving: fetch each source from its publisher, verify, swap, announce.

One update at a time (`ListUpdater.update_lists`, on `POST /lists/update` and every
`EXPORTWATCH_SCREENING_REFRESH_INTERVAL_S`); screening goes on throughout. The next snapshot is built
off the event loop beside the serving one and swapped in one assignment (registry.py). An update that
fails (network refused, file truncated, format changed) keeps the previous version, counts the
failure, logs it and shows it in `GET /lists`; it never makes the service unready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client import Counter

from services.screening.changes import ChangePublisher, ListChange, diff_source
from services.screening.domain import TokenIndex
from services.screening.lists import ListFormatError, LoadedSource
from services.screening.registry import ListRegistry, ListSnapshot, UpdateOutcome, build_snapshot
from services.screening.update import UpdateError, accept, fetch_verified, make_client, reject
from shared.service import Periodic
from shared.settings import Settings

log = logging.getLogger("exportwatch.screening.updater")

LIST_UPDATES = Counter(
    "exportwatch_screening_list_updates_total", "List update attempts by outcome", ["source", "outcome"]
)
LIST_UPDATE_FAILURES = Counter(
    "exportwatch_screening_list_update_failures_total",
    "List updates that failed (fetch refused, copy broken or truncated); the previous version stays",
    ["source"],
)


@dataclass
class ListUpdater:
    """Updates the registry's lists from their publishers and announces what changed."""

    settings: Settings
    registry: ListRegistry
    changes: ChangePublisher
    # How the publishers are reached (tests: a local stand-in or a refusing transport).
    http_transport: httpx.AsyncBaseTransport | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def update_lists(self, kinds: Sequence[str] | None = None) -> list[UpdateOutcome]:
        """Fetch, verify, swap, publish. One update at a time; screening goes on throughout."""
        async with self._lock:
            return await self._update(
                list(kinds) if kinds else [s.info.kind for s in self.registry.snapshot.sources]
            )

    async def _update(self, kinds: list[str]) -> list[UpdateOutcome]:
        current = self.registry.snapshot
        outcomes: dict[str, UpdateOutcome] = {}
        fetched: dict[str, tuple[Path, LoadedSource]] = {}
        async with make_client(self.settings, self.http_transport) as client:
            for kind in kinds:
                now = self.clock()
                status = self.registry.status[kind]
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
        # that the two together stay within the memory budget (docs/benchmarks.md),
        # and what both generations hold alike is shared, not copied.
        previous = current.screener.matcher if isinstance(current.screener.matcher, TokenIndex) else None
        if previous is not None:
            previous.trim_caches()
        try:
            snapshot = await asyncio.to_thread(
                build_snapshot,
                sources,
                current.policy,
                generation=current.generation + 1,
                now=now,
                previous=previous,
            )
        except ValueError as exc:  # e.g. a list the policy has no effect for
            outcomes = {}
            for kind, (folder, _) in fetched.items():
                await asyncio.to_thread(reject, folder, str(exc))
                outcomes[kind] = self._failed(
                    kind, current.source(kind), f"the new copy cannot be screened: {exc}"
                )
            return outcomes
        announced: list[ListChange] = []
        # The swap: one reference. Requests that already hold the old snapshot finish on it.
        self.registry.snapshot = snapshot
        outcomes = {}
        for kind, (folder, loaded) in fetched.items():
            await asyncio.to_thread(accept, folder, loaded)
            old = current.source(kind)
            changes = diff_source(old, loaded)
            announced.extend(changes)
            status = self.registry.status[kind]
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
        await self.changes.announce(announced, now)
        return outcomes

    def _failed(self, kind: str, old: LoadedSource | None, error: str) -> UpdateOutcome:
        status = self.registry.status[kind]
        status.last_outcome, status.last_error, status.last_error_at = "failed", error, self.clock()
        status.consecutive_failures += 1
        status.failures_total += 1
        LIST_UPDATES.labels(kind, "failed").inc()
        LIST_UPDATE_FAILURES.labels(kind).inc()
        log.error("%s: list update failed, keeping %s: %s", kind, old.info.version if old else None, error)
        return UpdateOutcome(kind, "failed", old.info.version if old else None, None, error=error)

    def refreshing(self) -> Periodic | None:
        """The periodic update (EXPORTWATCH_SCREENING_REFRESH_INTERVAL_S), None when it is off."""
        interval = self.settings.screening_refresh_interval_s
        return Periodic("screening-list-refresh", interval, self.update_lists) if interval > 0 else None
