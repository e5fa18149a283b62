"""The live list state of one screening instance.

`ListSnapshot` is everything one answer is computed from (the loaded sources, the catalogue, the
screener and its index, each entry's version); it is immutable. `ListRegistry.snapshot` is the one
reference that an update swaps (updater.py): the new snapshot is built off the event loop while the
old one keeps serving, then assigned in one statement. A request reads the snapshot once and
computes its whole answer from it, so it is answered by exactly one list version, never a mix.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from prometheus_client import Gauge

from services.screening.domain import ListCatalog, Screener, ScreeningPolicy, TokenIndex
from services.screening.entries import ListEntry
from services.screening.lists import LoadedSource, load_source, parse_sources
from services.screening.update import effective_folder
from shared.policy import load_policy
from shared.settings import Settings

log = logging.getLogger("exportwatch.screening.registry")

LIST_AGE = Gauge(
    "exportwatch_screening_list_age_seconds",
    "Seconds since the loaded copy of a list source was published (since it was loaded if undated)",
    ["source"],
)
LIST_ENTRIES = Gauge("exportwatch_screening_list_entries", "Entries loaded per list source", ["source"])

# Matches the screener may return beyond the policy's limit, so that cleared matches, set aside,
# do not push real ones out of the answer.
CLEARED_HEADROOM = 20

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


def _serving_entries(previous: TokenIndex) -> dict[tuple[str, str, str], ListEntry]:
    return {(e.source_id, e.list_id, e.entry_id): e for e in previous.entries}


def _share_entries(sources: Sequence[LoadedSource], by_key: Mapping[tuple[str, str, str], ListEntry]) -> None:
    """Each entry of `sources` equal to one the serving generation holds (`by_key`) becomes that
    one, in place: a list update re-reads whole files, most of whose entries have not changed, and
    their new copies are freed before the next file is read and the next index is built beside the
    serving one (the update's memory peak)."""
    for source in sources:
        entries = source.entries
        for i, entry in enumerate(entries):
            earlier = by_key.get((entry.source_id, entry.list_id, entry.entry_id))
            if earlier is not None and earlier is not entry and earlier == entry:
                entries[i] = earlier


def build_snapshot(
    sources: Sequence[LoadedSource],
    policy: ScreeningPolicy,
    *,
    generation: int,
    now: datetime,
    previous: TokenIndex | None = None,
) -> ListSnapshot:
    """Catalogue, index and screener over `sources` (seconds of CPU: call it off the event loop);
    `previous`, the index still serving, shares what is equal in both (TokenIndex.build).
    Raises ValueError when the policy has no effect for a loaded list."""
    started = time.perf_counter()
    if previous is not None:
        _share_entries(sources, _serving_entries(previous))
    catalog = ListCatalog.of((s.info, s.entries) for s in sources)
    index = TokenIndex.build((entry for s in sources for entry in s.entries), previous)
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


def load_initial(
    settings: Settings, *, now: datetime, previous: TokenIndex | None = None
) -> tuple[ListSnapshot, dict[str, SourceStatus]]:
    """Policy + configured sources (or their newer verified cached copies) -> the first snapshot
    (`previous`: as for build_snapshot)."""
    policy = load_policy(settings.policy_file)
    screening_policy = ScreeningPolicy.from_section(policy.version, policy.section("screening"))
    data_dir = settings.require_data_dir()
    sources: list[LoadedSource] = []
    status: dict[str, SourceStatus] = {}
    serving = _serving_entries(previous) if previous is not None else {}
    for spec in parse_sources(settings.screening_sources):
        configured = data_dir / spec.folder
        sources.append(load_source(spec.kind, effective_folder(settings, spec.kind, configured)))
        _share_entries(sources[-1:], serving)
        status[spec.kind] = SourceStatus(spec.kind, str(configured), loaded_at=now)
    return build_snapshot(sources, screening_policy, generation=1, now=now, previous=previous), status


class ListRegistry:
    """The lists of one instance: the snapshot in use (swapped whole by an update), each source's
    update status, and their gauges (computed when scraped)."""

    def __init__(
        self,
        snapshot: ListSnapshot,
        status: dict[str, SourceStatus],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.snapshot = snapshot
        self.status = status
        self.clock = clock
        for kind in status:
            # Computed when scraped, so the age grows between updates without a timer.
            LIST_AGE.labels(kind).set_function(functools.partial(self.age_seconds, kind))
            LIST_ENTRIES.labels(kind).set_function(functools.partial(self.entries, kind))

    def age_seconds(self, kind: str) -> float:
        source = self.snapshot.source(kind)
        status = self.status[kind]
        return published_age_seconds(
            source.info.published if source else None, status.loaded_at, self.clock()
        )

    def entries(self, kind: str) -> float:
        source = self.snapshot.source(kind)
        return float(len(source.entries)) if source is not None else 0.0
