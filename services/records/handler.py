"""records' consumer: every event of every topic becomes a trail step (or a dead-letter row).

records publishes nothing in reply (its review steps and outcomes leave through its outbox, not the
consumer loop), so the handler always returns []. Its runner
retries a failing write forever (`max_attempts=None`): a trail step must never be dropped because
the database is briefly away. The flip side is that anything the database would refuse every time
must be refused here, before the write, as a dead letter, or it would stall its partition forever.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import service
from services.records.models import ReferenceKind
from shared.events import (
    EXPORTWATCH_NS,
    TOPIC_CLASSIFIED,
    TOPIC_CLEARANCES,
    TOPIC_DEADLETTER,
    TOPIC_DECIDED,
    TOPIC_LISTS_UPDATED,
    TOPIC_REVIEW_STEPS,
    TOPIC_REVIEWED,
    TOPIC_SCREENED,
    TOPIC_SUBMITTED,
    ClassifiedOrder,
    DeadLetter,
    DecidedOrder,
    ListsUpdated,
    ReviewedOrder,
    ReviewStep,
    ScreenedOrder,
    ScreeningClearance,
    SubmittedOrder,
)
from shared.kafka import (
    Incoming,
    Outgoing,
    PoisonMessage,
    decode_json,
    describe_validation_error,
    require_key,
)
from shared.logging import log_context, personal_data_logged
from shared.settings import Settings

log = logging.getLogger("exportwatch.records")

STEPS = Counter(
    "exportwatch_records_steps_total",
    "Events consumed by records, by stage and outcome (recorded, duplicate, skipped_invalid)",
    ["stage", "outcome"],
)

_MODELS: dict[str, tuple[str, type[service.RecordedEvent]]] = {
    TOPIC_SUBMITTED: ("submitted", SubmittedOrder),
    TOPIC_CLASSIFIED: ("classified", ClassifiedOrder),
    TOPIC_SCREENED: ("screened", ScreenedOrder),
    TOPIC_DECIDED: ("decided", DecidedOrder),
    TOPIC_REVIEWED: ("reviewed", ReviewedOrder),
    TOPIC_REVIEW_STEPS: ("review_step", ReviewStep),
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
            if not isinstance(event, DeadLetter):  # a dead letter keeps the key of what it sets aside
                require_key(message, event.order_id)
        except (PoisonMessage, ValidationError) as exc:
            if message.topic != self._submitted_topic:
                raise
            # The classifier reads the same message and dead-letters it with its raw bytes; that
            # dead letter, recorded by records from orders.deadletter.v1, is the one authoritative
            # record of the bad input. A second one from here would only double-count it.
            reason = (
                describe_validation_error(exc, values=personal_data_logged())
                if isinstance(exc, ValidationError)
                else str(exc)
            )
            log.info(
                "skipping invalid submitted message %s[%d]@%d (the classifier dead-letters it): %s",
                message.topic,
                message.partition,
                message.offset,
                reason,
            )
            STEPS.labels(stage, "skipped_invalid").inc()
            return []
        # A valid order the database cannot store is records' own finding: dead-lettered from here
        # (service.require_storable raises PoisonMessage).
        with log_context(order_id=getattr(event, "order_id", None), event_id=event.event_id):
            new = await service.record_event(
                sessionmaker=self._sessionmaker,
                event=event,
                payload=payload,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                raw=message.value or b"",
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
        new = await service.record_reference(
            sessionmaker=self._sessionmaker,
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
