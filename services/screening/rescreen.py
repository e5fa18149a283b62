"""Delta screening, screening's side: an open order's parties against the entries a list change
added or changed, and an amended screening (or a post-shipment alert) when something new matches.

records sends one `orders.rescreen.v1` request per open order after a `lists.updated.v1` (its
rescreen.py). Here, once per change, a small index of just the added and changed entries is built
from the loaded lists with the matcher's own `TokenIndex.build` (`DeltaCache`); each party of the
order is looked up in it, which costs a fraction of a full screening. Only an order with a candidate
there is screened again in full, on the lists in use (`service.screen_parties`, clearances applied),
and only a match on an added or changed entry that the decision in force did not already have
counts as new. Then:

- the order has shipped: an `orders.alerts.v1` post-shipment alert with the new matches;
- otherwise: the whole screening goes out again on `orders.screened.v1`, classification kept,
  with `screening.amendment` naming the change; risk decides again and the amended decision goes
  to `orders.decided.v1`. A match of the decision in force that the current lists no longer give
  (a removed or changed entry) is carried forward, so a list change never lowers a decision by
  itself (only a review may).

The delta index is a filter, not the judge: its entries' token weights are those of a small list,
so it is asked for candidates at `CANDIDATE_SCORE`, below the review threshold, and the full
screening decides (bench/rescreen measures how many true matches the filter keeps).

Every id is derived from the request's (uuid5), and the request's from the change and the decision,
so a redelivered request yields the same event and records keeps it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import Counter

from services.screening import service
from services.screening.domain import NameQuery, TokenIndex
from services.screening.registry import ListSnapshot
from services.screening.service import STAGE, ScreeningRuntime
from shared.codec import decode_json, require_key
from shared.events import (
    TOPIC_ALERTS,
    TOPIC_SCREENED,
    AmendedMatch,
    ListChangeRef,
    Party,
    PartyMatch,
    PartyScreening,
    ScreenedOrder,
    Screening,
    ScreeningAmendment,
    derived_event_id,
    envelope_dump,
)
from shared.kafka import Incoming, Outgoing
from shared.lifecycle_events import OrderAlert, RescreenRequest
from shared.logging import log_context
from shared.settings import Settings

log = logging.getLogger("exportwatch.screening.rescreen")

# The delta index's score for a candidate: below the policy's review threshold, because its token
# weights come from a few dozen entries, not the whole list (a word frequent on the lists, and so
# light there, weighs as much as a rare one here). bench/rescreen checks that the filter lets
# through every name a full screening finds, on its default seed and two others (docs/benchmarks.md).
CANDIDATE_SCORE = 0.60
# Deltas kept (one per list change and list generation), and party answers kept per delta.
DELTAS = 8
ANSWERS = 200_000

OUTCOMES = Counter(
    "exportwatch_screening_rescreen_total",
    "Re-screen requests after list changes, by outcome (no_candidate, no_new_match, amended, alert)",
    ["outcome"],
)


class ListsNotUpdated(RuntimeError):
    """This instance still has the list version before the change: retried (the consumer backs off)
    after asking its own updater for the new version."""


PartyKey = tuple[str, str, str | None]


def party_key(party: Party) -> PartyKey:
    address = ", ".join(part for part in (party.address, party.city) if part) or None
    return (party.name, party.country, address)


@dataclass
class Delta:
    """The entries one change added or changed, as this instance has them, indexed on their own."""

    change_id: str
    generation: int
    keys: frozenset[tuple[str, str]]
    index: TokenIndex | None
    answers: OrderedDict[PartyKey, bool] = field(default_factory=OrderedDict)

    def may_match(self, party: Party) -> bool:
        """Whether the party has a candidate among the changed entries (cached per party)."""
        if self.index is None:
            return False
        key = party_key(party)
        known = self.answers.get(key)
        if known is not None:
            return known
        name, country, address = key
        found = bool(
            self.index.match(NameQuery.of(name, country, address=address), min_score=CANDIDATE_SCORE)
        )
        self.answers[key] = found
        if len(self.answers) > ANSWERS:
            self.answers.popitem(last=False)
        return found


def build_delta(snapshot: ListSnapshot, change: ListChangeRef) -> Delta:
    """The added and changed entries of `change` that `snapshot` holds (every source's copy)."""
    wanted = [(change.list_id, entry_id) for entry_id in (*change.added, *change.changed)]
    entries = [entry for key in wanted for entry in snapshot.catalog.entries.get(key, ())]
    keys = frozenset(key for key in wanted if key in snapshot.catalog.entries)
    index = TokenIndex.build(entries) if entries else None
    return Delta(change.event_id, snapshot.generation, keys, index)


class DeltaCache:
    def __init__(self, size: int = DELTAS) -> None:
        self._size = size
        self._deltas: OrderedDict[tuple[str, int], Delta] = OrderedDict()

    def get(self, snapshot: ListSnapshot, change: ListChangeRef) -> Delta:
        key = (change.event_id, snapshot.generation)
        delta = self._deltas.get(key)
        if delta is None:
            delta = self._deltas[key] = build_delta(snapshot, change)
            while len(self._deltas) > self._size:
                self._deltas.popitem(last=False)
        return delta


# --- what is new, and what is carried forward ---------------------------------------------------------


def _amended(party: PartyScreening, match: PartyMatch) -> AmendedMatch:
    return AmendedMatch(
        party_role=party.role,
        party_name=party.name,
        list_id=match.list_id,
        entry_id=match.entry_id,
        entry_version=match.entry_version,
        score=match.score,
    )


def new_matches(
    previous: Sequence[PartyScreening], screening: Screening, changed: frozenset[tuple[str, str]]
) -> list[AmendedMatch]:
    """Matches on a changed entry that the decision in force did not have (at this entry version)."""
    before = {(p.role, p.name, m.list_id, m.entry_id, m.entry_version) for p in previous for m in p.matches}
    return [
        _amended(party, match)
        for party in screening.parties
        for match in party.matches
        if (match.list_id, match.entry_id) in changed
        and (party.role, party.name, match.list_id, match.entry_id, match.entry_version) not in before
    ]


def carry_forward(
    previous: Sequence[PartyScreening], screening: Screening
) -> tuple[Screening, list[AmendedMatch]]:
    """`screening` with every match of `previous` it lacks put back (unless a reviewer has cleared it
    since): a list change does not lower a decision by itself."""
    earlier = {(p.role, p.name): p for p in previous}
    carried: list[AmendedMatch] = []
    parties = []
    for party in screening.parties:
        before = earlier.get((party.role, party.name))
        present = {(m.list_id, m.entry_id) for m in (*party.matches, *party.cleared_matches)}
        kept = [m for m in (before.matches if before else []) if (m.list_id, m.entry_id) not in present]
        carried.extend(_amended(party, m) for m in kept)
        parties.append(party.model_copy(update={"matches": [*party.matches, *kept]}) if kept else party)
    return screening.model_copy(update={"parties": parties}), carried


# --- the handler ---------------------------------------------------------------------------------------


class RescreenHandler:
    """orders.rescreen.v1 -> nothing, an amended orders.screened.v1, or an orders.alerts.v1 alert."""

    def __init__(
        self, settings: Settings, runtime: ScreeningRuntime, deltas: DeltaCache | None = None
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.deltas = deltas or DeltaCache()
        self._updating: dict[str, asyncio.Task[object]] = {}

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        # A ValidationError here is the runner's cue to dead-letter the message.
        request = RescreenRequest.model_validate(decode_json(message))
        require_key(message, request.order_id)
        with log_context(order_id=request.order_id, event_id=request.event_id):
            # Clearances published before start-up must be known before anything is screened.
            await self.runtime.clearances_caught_up.wait()
            snapshot = await self._snapshot_for(request.list_change)
            outgoing = rescreen(
                request,
                snapshot=snapshot,
                runtime=self.runtime,
                delta=self.deltas.get(snapshot, request.list_change),
            )
        return [] if outgoing is None else [self._topic(outgoing)]

    def _topic(self, event: ScreenedOrder | OrderAlert) -> Outgoing:
        topic = TOPIC_SCREENED if isinstance(event, ScreenedOrder) else TOPIC_ALERTS
        return Outgoing(self.settings.topic(topic), event.order_id, envelope_dump(event))

    async def _snapshot_for(self, change: ListChangeRef) -> ListSnapshot:
        """The lists in use, once they include the change: an instance still on the version before
        it asks its updater for the new one (once per change) and the request is retried."""
        snapshot = self.runtime.snapshot
        source = snapshot.source(change.source)
        if source is None or change.old_version is None or source.info.version != change.old_version:
            return snapshot
        running = self._updating.get(change.event_id)
        if running is None or running.done():
            updater = self.runtime.updater
            self._updating[change.event_id] = asyncio.create_task(updater.update_lists([change.source]))
        raise ListsNotUpdated(
            f"{change.source} is still at {change.old_version} here (the change {change.event_id} made it "
            f"{change.new_version}); updating it, then the request is retried"
        )


def rescreen(
    request: RescreenRequest, *, snapshot: ListSnapshot, runtime: ScreeningRuntime, delta: Delta
) -> ScreenedOrder | OrderAlert | None:
    """What one request comes to (None: nothing new matches)."""
    order = request.classified.order
    if not any(delta.may_match(party) for party in order.parties):
        OUTCOMES.labels("no_candidate").inc()
        return None
    screening = service.screen_parties(snapshot=snapshot, book=runtime.clearances, parties=order.parties)
    new = new_matches(request.previous, screening, delta.keys)
    if not new:
        OUTCOMES.labels("no_new_match").inc()
        return None
    change = request.list_change
    if request.shipped_at is not None:
        OUTCOMES.labels("alert").inc()
        wanted = {(m.party_role, m.party_name, m.list_id, m.entry_id) for m in new}
        parties = [
            p.model_copy(
                update={
                    "matches": [m for m in p.matches if (p.role, p.name, m.list_id, m.entry_id) in wanted],
                    "cleared_matches": [],
                }
            )
            for p in screening.parties
            if any((p.role, p.name, m.list_id, m.entry_id) in wanted for m in p.matches)
        ]
        log.warning("post-shipment alert: %d new matches after list change %s", len(new), change.event_id)
        return OrderAlert(
            event_id=derived_event_id(request.event_id, "alert"),
            order_id=request.order_id,
            kind="post_shipment_match",
            submitted_event_id=order.event_id,
            decided_event_id=request.decided_event_id,
            shipped_at=request.shipped_at,
            list_change=change,
            parties=parties,
            raised_at=datetime.now(UTC),
        )
    OUTCOMES.labels("amended").inc()
    screening, carried = carry_forward(request.previous, screening)
    amendment = ScreeningAmendment(
        rescreen_request_id=request.event_id,
        list_change=change,
        amends_decided_event_id=request.decided_event_id,
        new_matches=new,
        carried_forward=carried,
    )
    log.info("amended screening: %d new matches after list change %s", len(new), change.event_id)
    return ScreenedOrder(
        event_id=derived_event_id(request.event_id, STAGE),
        order_id=request.order_id,
        causation_id=request.event_id,
        produced_by=STAGE,
        order=order,
        classification=request.classified.classification,
        screening=screening.model_copy(update={"amendment": amendment}),
    )
