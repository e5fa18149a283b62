"""records' use cases: record what the bus carries, replay a dead letter (reviews: reviews.py).

Commands take their dependencies as keyword arguments (the session factory, how to publish, the
topic names) and raise the errors below; the routes and the handler translate HTTP and Kafka to
these calls and back. A command that publishes reads what it needs in its own short transaction and
closes it before the broker round trip: no database connection waits on Kafka.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import chain, repository, rescreen
from services.records.anchors import AnchorBook, Anchorer
from services.records.audit import ChainEntry
from services.records.batch import OrderEvent, record_order_events
from services.records.models import ID_LENGTH, ReferenceKind
from services.records.outbox import OutboxRelay
from services.records.policy import RecordsPolicy
from services.records.reviews import Topics
from shared.events import DeadLetter, ListsUpdated, ReviewedOrder, ReviewStep
from shared.kafka import Outgoing, PoisonMessage, Publish, payload_was_truncated
from shared.lifecycle_events import OrderAlert, ShippedOrder
from shared.settings import Settings

Sessions = async_sessionmaker[AsyncSession]
RecordedEvent = repository.TrailEvent | DeadLetter
T = TypeVar("T")


@dataclass(frozen=True)
class RecordsRuntime:
    """What the routes and the handler share, built once by the app's lifespan: the trail database,
    the outbox relay (woken after a review command commits) and the topic names of the reviews."""

    settings: Settings
    sessionmaker: Sessions
    outbox: OutboxRelay
    topics: Topics
    policy: RecordsPolicy
    # The anchors of the audit chain this instance knows (the anchors topic and the anchor file).
    anchors: AnchorBook
    # Publishes the re-screen requests of list changes (woken when one is recorded).
    rescreen: rescreen.RescreenDispatcher
    # Anchors the chain's head (periodically, and on shutdown).
    anchorer: Anchorer


class DeadLetterNotFound(LookupError):
    """No dead letter has this event id."""


class NotReplayable(Exception):
    """The dead letter came from a topic that is evidence to read, not input to run again."""


# --- recording (the handler) ---------------------------------------------------------------------


async def record_event(
    *,
    sessionmaker: Sessions,
    event: RecordedEvent,
    topic: str,
    partition: int,
    offset: int,
    raw: bytes,
) -> bool:
    """Keep an order event as a trail step, or a dead letter as a dead-letter row, and chain it;
    False if it was already recorded. Raises PoisonMessage for what the database would refuse on
    every retry."""
    require_storable(event)
    async with sessionmaker() as session, session.begin():
        if isinstance(event, DeadLetter):
            entry = await repository.record_dead_letter(session=session, letter=event)
        else:
            entry = await repository.record_event(
                session=session,
                topic=topic,
                partition=partition,
                offset=offset,
                raw=raw,
                event=event,
            )
        if entry is None:
            return False
        await chain.append(session, [entry], datetime.now(UTC))
        return True


@dataclass(frozen=True)
class Reference:
    """A consumed list update, clearance or clearance revocation (record_reference's arguments)."""

    event_id: str
    kind: ReferenceKind
    topic: str
    partition: int
    offset: int
    key: str | None
    raw: bytes
    payload: dict[str, Any] | None


Recordable = OrderEvent | DeadLetter | Reference


async def record_reference(
    *, sessionmaker: Sessions, reference: Reference, policy: RecordsPolicy | None = None
) -> bool:
    """Keep a list update, a clearance or a clearance's revocation, and chain it; False if already
    recorded. A list update that added or changed entries also schedules the re-screening of the
    open orders (rescreen.py), in the same transaction: kept once, never lost."""
    require_storable_reference(reference)
    return (await record_batch(sessionmaker=sessionmaker, items=[reference], policy=policy))[0]


def require_storable_reference(reference: Reference) -> None:
    # The same refusals as for order events; the key is stored too, tombstones included.
    require_storable_values(
        ids={"event_id": reference.event_id},
        texts={"key": reference.key} if reference.key is not None else {},
        moments={},
    )


async def record_batch(
    *, sessionmaker: Sessions, items: Sequence[Recordable], policy: RecordsPolicy | None = None
) -> list[bool]:
    """Keep a whole consumer poll in one transaction and chain it with one lock: for each item,
    True if it was new. The same rows, chain entries and re-screen schedules as record_event and
    record_reference one by one, in the same order; the items passed require_storable already."""
    async with sessionmaker() as session, session.begin():
        now = datetime.now(UTC)
        found: list[ChainEntry | None] = [None] * len(items)
        positions = [i for i, item in enumerate(items) if isinstance(item, OrderEvent)]
        events = [item for item in items if isinstance(item, OrderEvent)]
        for position, entry in zip(positions, await record_order_events(session, events, now), strict=True):
            found[position] = entry
        for position, item in enumerate(items):
            if isinstance(item, DeadLetter):
                found[position] = await repository.record_dead_letter(session=session, letter=item)
            elif isinstance(item, Reference):
                found[position] = entry = await repository.record_reference_event(
                    session=session,
                    event_id=item.event_id,
                    kind=item.kind,
                    topic=item.topic,
                    partition=item.partition,
                    offset=item.offset,
                    key=item.key,
                    raw=item.raw,
                    payload=item.payload,
                )
                if entry is not None and item.kind == "list_updated" and item.payload is not None and policy:
                    update = ListsUpdated.model_validate(item.payload)
                    await rescreen.schedule(session, update, policy=policy, now=now)
        await chain.append(session, [entry for entry in found if entry is not None], now)
    return [entry is not None for entry in found]


def require_storable(event: RecordedEvent) -> None:
    """Refuse, as a poison message, what the database would refuse on every retry (records retries
    a failing write forever, so such a message would stall its partition)."""
    ids = {"event_id": event.event_id}
    texts: dict[str, str] = {}
    moments: dict[str, datetime] = {}
    match event:
        case ShippedOrder():
            moments = {"shipped_at": event.shipped_at}
        case OrderAlert():
            ids |= {
                "submitted_event_id": event.submitted_event_id,
                "decided_event_id": event.decided_event_id,
            }
        case ReviewedOrder():
            ids |= {
                "submitted_event_id": event.submitted_event_id,
                "decided_event_id": event.decided_event_id,
            }
            moments = {"reviewed_at": event.reviewed_at}
        case ReviewStep():
            ids |= {
                "submitted_event_id": event.submitted_event_id,
                "decided_event_id": event.decided_event_id,
            }
            moments = {"occurred_at": event.occurred_at}
        case DeadLetter():
            texts = {"service": event.service, "source_topic": event.source_topic, "error": event.error}
            texts |= {
                "error_type": event.error_type,
                "payload_b64": event.payload_b64,
                "key_b64": event.key_b64 or "",
            }
            moments = {"failed_at": event.failed_at}
    require_storable_values(ids, texts, moments)


def require_storable_values(ids: dict[str, str], texts: dict[str, str], moments: dict[str, datetime]) -> None:
    """The checks every stored event needs: ids that fit their column, no NUL in ids or text
    columns, and aware timestamps."""
    for name, value in ids.items():
        if len(value) > ID_LENGTH:
            raise PoisonMessage(
                "UnstorableEvent", f"{name}: longer than {ID_LENGTH} characters ({len(value)})"
            )
    for name, value in (ids | texts).items():
        # PostgreSQL text cannot hold U+0000 (the JSON payload column can: it keeps the escape).
        if "\x00" in value:
            raise PoisonMessage("UnstorableEvent", f"{name}: contains the NUL character (U+0000)")
    for name, moment in moments.items():
        # Ordering reviews and storing timestamps needs a time zone (the input contract demands one).
        if moment.tzinfo is None:
            raise PoisonMessage("UnstorableEvent", f"{name}: {moment.isoformat()!r} has no time zone")
    # NaN and Infinity are refused where the payload is parsed (handler._read).


# --- commands (HTTP) -----------------------------------------------------------------------------


async def run_review(runtime: RecordsRuntime, command: Callable[..., Awaitable[T]], **arguments: Any) -> T:
    """A review use case (reviews.py) on the runtime's database and topics, at this moment; the
    outbox relay is woken once the command committed, so its events leave without waiting a poll."""
    result = await command(
        sessionmaker=runtime.sessionmaker, topics=runtime.topics, now=datetime.now(UTC), **arguments
    )
    runtime.outbox.wake()
    return result


@dataclass(frozen=True)
class Replayed:
    event_id: str
    topic: str
    key: str
    size: int


async def replay_dead_letter(
    *, sessionmaker: Sessions, publish: Publish, replayable_topics: set[str], event_id: str
) -> Replayed:
    """Publish a dead letter's original bytes and key again to the topic it came from.

    For on-call, once the cause is fixed: the message is processed as new; if it fails again that is
    a new dead letter (a new origin offset), never a silent drop. Raises DeadLetterNotFound,
    NotReplayable, or PublishError (nothing replayed)."""
    async with sessionmaker() as session:
        letter = await repository.get_dead_letter(session=session, event_id=event_id)
    if letter is None:
        raise DeadLetterNotFound(f"dead letter {event_id!r} not found")
    # Only the pipeline's own inputs: a dead letter of the dead-letter topic itself, or of a
    # review, is evidence to read, not something to re-run.
    if letter.source_topic not in replayable_topics:
        raise NotReplayable(
            f"dead letter {event_id!r} came from {letter.source_topic!r}; "
            f"only {sorted(replayable_topics)} are replayed"
        )
    if payload_was_truncated(letter.error):
        raise NotReplayable(
            f"dead letter {event_id!r} holds only the beginning of its message (too large to carry whole); "
            "replaying it would publish a different message: its producer must send it again"
        )
    key = base64.b64decode(letter.key_b64).decode("utf-8", "replace") if letter.key_b64 else event_id
    value = base64.b64decode(letter.payload_b64)
    await publish(Outgoing(topic=letter.source_topic, key=key, value=value))
    return Replayed(event_id=event_id, topic=letter.source_topic, key=key, size=len(value))
