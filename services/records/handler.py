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
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.records import service
from services.records.alerts import measure_alerts
from services.records.batch import OrderEvent
from services.records.models import ReferenceKind
from services.records.policy import RecordsPolicy, load_records_policy
from shared.codec import decode_json, read_event, require_key
from shared.events import (
    EXPORTWATCH_NS,
    TOPIC_ALERTS,
    TOPIC_CLASSIFIED,
    TOPIC_CLEARANCES,
    TOPIC_DEADLETTER,
    TOPIC_DECIDED,
    TOPIC_LISTS_UPDATED,
    TOPIC_REVIEW_STEPS,
    TOPIC_REVIEWED,
    TOPIC_SCREENED,
    TOPIC_SHIPPED,
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
from shared.kafka import Incoming, Outgoing, PoisonMessage, describe_validation_error
from shared.lifecycle_events import OrderAlert, ShippedOrder
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
    TOPIC_SHIPPED: ("shipped", ShippedOrder),
    TOPIC_ALERTS: ("alert", OrderAlert),
}


class RecordsHandler:
    """`policy`: the records section of the policy (default: read from the settings' policy file);
    `list_updated`: called after a list update was recorded (wakes the re-screening)."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        policy: RecordsPolicy | None = None,
        list_updated: Callable[[], None] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._policy = policy or load_records_policy(settings.policy_file)
        self._list_updated = list_updated
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
            event = _read(message, model)
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
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                raw=message.value or b"",
            )
            STEPS.labels(stage, "recorded" if new else "duplicate").inc()
            if not new:
                log.info("%s event already recorded; redelivery ignored", stage)
            elif isinstance(event, OrderAlert):
                log.warning("post-shipment alert %s recorded: a person must look at it", event.event_id)
                await measure_alerts(self._sessionmaker)
        return []

    async def handle_batch(self, messages: Sequence[Incoming]) -> list[list[Outgoing] | None]:
        """A whole poll in one transaction (service.record_batch). A message that does not decode,
        validate or fit the database is left (None) to the one-at-a-time path, which skips or
        dead-letters it with its usual error; it is written nowhere here."""
        parsed = [self._parse(message) for message in messages]
        kept = [found for found in parsed if found is not None]
        if not kept:
            return [None] * len(messages)
        new = iter(
            await service.record_batch(
                sessionmaker=self._sessionmaker, items=[item for _, item in kept], policy=self._policy
            )
        )
        results: list[list[Outgoing] | None] = []
        lists_updated = alerts = False
        for found in parsed:
            if found is None:
                results.append(None)
                continue
            stage, item = found
            recorded = next(new)
            STEPS.labels(stage, "recorded" if recorded else "duplicate").inc()
            lists_updated |= recorded and stage == "list_updated"
            if recorded and isinstance(item, OrderEvent) and isinstance(item.event, OrderAlert):
                alerts = True
                log.warning("post-shipment alert %s recorded: a person must look at it", item.event.event_id)
            results.append([])
        if alerts:
            await measure_alerts(self._sessionmaker)
        if lists_updated and self._list_updated is not None:
            self._list_updated()
        return results

    def _parse(self, message: Incoming) -> tuple[str, service.Recordable] | None:
        """`message` as what record_batch keeps, with its stage for the metrics; None when the
        one-at-a-time path must decide (it raises, skips or dead-letters there)."""
        if message.topic not in self._reference and message.topic not in self._models:
            return None
        try:
            if message.topic in self._reference:
                reference = self._reference_of(message)
                service.require_storable_reference(reference)
                return reference.kind, reference
            stage, model = self._models[message.topic]
            event = _read(message, model)
            service.require_storable(event)
        except (PoisonMessage, ValidationError):
            return None
        if isinstance(event, DeadLetter):
            return stage, event
        return stage, OrderEvent(
            event, message.value or b"", message.topic, message.partition, message.offset
        )

    def _reference_of(self, message: Incoming) -> service.Reference:
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
        return service.Reference(
            event_id=event_id,
            kind=kind,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=key,
            raw=message.value or b"",
            payload=payload,
        )

    async def _record_reference(self, message: Incoming) -> list[Outgoing]:
        """List updates and clearances are not order steps but belong to the audit trail: who
        cleared which hit, when, and which list versions came and went. The clearances topic is
        compacted (only the latest per key survives there), so records keeps every one."""
        reference = self._reference_of(message)
        kind = reference.kind
        new = await service.record_reference(
            sessionmaker=self._sessionmaker, reference=reference, policy=self._policy
        )
        STEPS.labels(kind, "recorded" if new else "duplicate").inc()
        if new and kind == "list_updated" and self._list_updated is not None:
            self._list_updated()
        return []


def _read(message: Incoming, model: type[service.RecordedEvent]) -> service.RecordedEvent:
    """The message's event, parsed and validated in one pass (shared/codec.py read_event). Raises
    PoisonMessage or ValidationError."""
    if message.value is not None and (b"NaN" in message.value or b"Infinity" in message.value):
        # records keeps the bytes as received, and read_event skips a field no model defines
        # unread: NaN or Infinity there would be stored, and the trail's readers (json.loads, then
        # a JSON response) choke on it. decode_json refuses it, naming the field, as it always has;
        # a string that merely says "NaN" passes it and goes on to read_event.
        decode_json(message)
    event = read_event(message, model)
    if not isinstance(event, DeadLetter):  # a dead letter keeps the key of what it sets aside
        require_key(message, event.order_id)
    return event
