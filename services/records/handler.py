"""records' consumer: every event of every topic becomes a trail step (or a dead-letter row).

records publishes nothing in reply (docs/architecture.md), so the handler always returns []. Its runner
retries a failing write forever (`max_attempts=None`): a trail step must never be dropped because
the database is briefly away. The flip side is that anything the database would refuse every time
must be refused here, before the write, as a dead letter, or it would stall its partition forever.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import repository
from services.records.models import ID_LENGTH, ReferenceKind
from shared.events import (
    EXPORTWATCH_NS,
    TOPIC_CLASSIFIED,
    TOPIC_CLEARANCES,
    TOPIC_DEADLETTER,
    TOPIC_DECIDED,
    TOPIC_LISTS_UPDATED,
    TOPIC_REVIEWED,
    TOPIC_SCREENED,
    TOPIC_SUBMITTED,
    ClassifiedOrder,
    DeadLetter,
    DecidedOrder,
    ListsUpdated,
    ReviewedOrder,
    ScreenedOrder,
    ScreeningClearance,
    SubmittedOrder,
)
from shared.kafka import Incoming, Outgoing, PoisonMessage, decode_json, describe_validation_error
from shared.logging import log_context
from shared.settings import Settings

log = logging.getLogger("exportwatch.records")

STEPS = Counter(
    "exportwatch_records_steps_total",
    "Events consumed by records, by stage and outcome (recorded, duplicate, skipped_invalid)",
    ["stage", "outcome"],
)

RecordedEvent = repository.TrailEvent | DeadLetter

_MODELS: dict[str, tuple[str, type[RecordedEvent]]] = {
    TOPIC_SUBMITTED: ("submitted", SubmittedOrder),
    TOPIC_CLASSIFIED: ("classified", ClassifiedOrder),
    TOPIC_SCREENED: ("screened", ScreenedOrder),
    TOPIC_DECIDED: ("decided", DecidedOrder),
    TOPIC_REVIEWED: ("reviewed", ReviewedOrder),
    TOPIC_DEADLETTER: ("deadletter", DeadLetter),
}


class RecordsHandler:
    def __init__(self, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._models = {settings.topic(topic): model for topic, model in _MODELS.items()}
        self._submitted_topic = settings.topic(TOPIC_SUBMITTED)
        self._reference: dict[str, tuple[ReferenceKind, type[ListsUpdated | ScreeningClearance]]] = {
            settings.topic(TOPIC_LISTS_UPDATED): ("list_updated", ListsUpdated),
            settings.topic(TOPIC_CLEARANCES): ("clearance", ScreeningClearance),
        }

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        if message.topic in self._reference:
            return await self._record_reference(message)
        if message.topic not in self._models:
            raise PoisonMessage("UnknownTopic", f"records does not consume topic {message.topic!r}")
        stage, model = self._models[message.topic]
        try:
            payload = decode_json(message)
            event = model.model_validate(payload)
        except (PoisonMessage, ValidationError) as exc:
            if message.topic != self._submitted_topic:
                raise
            # The classifier reads the same message and dead-letters it with its raw bytes; that
            # dead letter, recorded by records from orders.deadletter.v1, is the one authoritative
            # record of the bad input. A second one from here would only double-count it.
            reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            log.info(
                "skipping invalid submitted message %s[%d]@%d (the classifier dead-letters it): %s",
                message.topic,
                message.partition,
                message.offset,
                reason,
            )
            STEPS.labels(stage, "skipped_invalid").inc()
            return []
        # A valid order the database cannot store is records' own finding: dead-lettered from here.
        _require_storable(event, payload)
        raw = message.value or b""
        with log_context(order_id=getattr(event, "order_id", None), event_id=event.event_id):
            async with self._sessionmaker() as session, session.begin():
                if isinstance(event, DeadLetter):
                    new = await repository.record_dead_letter(session=session, letter=event)
                else:
                    new = await repository.record_event(
                        session=session,
                        topic=message.topic,
                        partition=message.partition,
                        offset=message.offset,
                        raw=raw,
                        payload=payload,
                        event=event,
                    )
            STEPS.labels(stage, "recorded" if new else "duplicate").inc()
            if not new:
                log.info("%s event already recorded; redelivery ignored", stage)
        return []

    async def _record_reference(self, message: Incoming) -> list[Outgoing]:
        """List updates and clearances are not order steps but belong to the audit trail: who
        cleared which hit, when, and which list versions came and went. The clearances topic is
        compacted (only the latest per key survives there), so records keeps every one."""
        kind, model = self._reference[message.topic]
        key = message.key.decode("utf-8", "replace") if message.key is not None else None
        payload: dict[str, Any] | None = None
        if message.value is None and model is ScreeningClearance:
            # A tombstone on a clearance key revokes the clearance: record the revocation itself.
            kind = "clearance_revoked"
            event_id = str(
                uuid.uuid5(EXPORTWATCH_NS, f"revoked:{message.topic}:{message.partition}:{message.offset}")
            )
        else:
            payload = decode_json(message)
            event_id = model.model_validate(payload).event_id  # ValidationError -> dead letter
        # The same refusals as for order events; the key is stored too, tombstones included.
        _require_storable_values(
            ids={"event_id": event_id},
            texts={"key": key} if key is not None else {},
            moments={},
            payload=payload,
        )
        async with self._sessionmaker() as session, session.begin():
            new = await repository.record_reference_event(
                session=session,
                event_id=event_id,
                kind=kind,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=key,
                raw=message.value or b"",
                payload=payload,
            )
        STEPS.labels(kind, "recorded" if new else "duplicate").inc()
        return []


def _require_storable(event: RecordedEvent, payload: dict[str, Any]) -> None:
    """Refuse, as a poison message, what the database would refuse on every retry."""
    ids = {"event_id": event.event_id}
    texts: dict[str, str] = {}
    moments: dict[str, datetime] = {}
    match event:
        case ReviewedOrder():
            ids |= {
                "submitted_event_id": event.submitted_event_id,
                "decided_event_id": event.decided_event_id,
            }
            moments = {"reviewed_at": event.reviewed_at}
        case DeadLetter():
            texts = {"service": event.service, "source_topic": event.source_topic, "error": event.error}
            texts |= {
                "error_type": event.error_type,
                "payload_b64": event.payload_b64,
                "key_b64": event.key_b64 or "",
            }
            moments = {"failed_at": event.failed_at}
    _require_storable_values(ids, texts, moments, payload)


def _require_storable_values(
    ids: dict[str, str], texts: dict[str, str], moments: dict[str, datetime], payload: Any
) -> None:
    """The checks every stored event needs: ids that fit their column, no NUL in ids or text
    columns, aware timestamps, and a payload PostgreSQL accepts as JSON."""
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
    if (path := _non_finite_number(payload, "")) is not None:
        # Python's json accepts NaN and Infinity; they are not JSON (RFC 8259) and PostgreSQL refuses them.
        raise PoisonMessage(
            "UnstorableEvent", f"{path or '(message)'}: NaN and Infinity are not JSON numbers"
        )


def _non_finite_number(value: Any, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, item in children:
        if (found := _non_finite_number(item, f"{path}.{key}" if path else str(key))) is not None:
            return found
    return None
