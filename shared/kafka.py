"""The one consumer loop every service uses, and the producer it publishes with.

Two ways to read: a consumer group shares a topic's partitions between a service's instances
(`ConsumerRunner`, the pipeline's stages); a follower reads every partition in full on every
instance, without a group, to rebuild state such as the clearances (`FollowingRunner`). Both run
the same loop, hand each message to a handler and publish what it returns (dead letters included).

Semantics (docs/architecture.md, "Delivery"): at-least-once. A batch's outputs are produced and acknowledged by the
broker (acks=all, idempotent producer) before the batch's offsets are committed (`offset + 1` per
partition). A message that cannot be decoded or validated goes to `orders.deadletter.v1` with its
raw bytes, origin and a clear error, and the loop moves on. An unexpected handler failure (a
database that is away, a broker that times out) is retried with backoff from the same offset; it
never kills the loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from shared import metrics, tracing
from shared.events import EXPORTWATCH_NS, TOPIC_DEADLETTER, DeadLetter, envelope_dump
from shared.kafka_security import client_options
from shared.logging import log_context
from shared.settings import Settings

log = logging.getLogger("exportwatch.kafka")


class PoisonMessage(Exception):
    """The message itself is bad (undecodable, invalid): retrying cannot help. Dead-letter it."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True)
class Incoming:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    # The record's headers (the W3C trace context among them; shared/tracing.py).
    headers: tracing.Headers = ()


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: str
    value: bytes
    # Set by the consumer loop (the trace context of the record it came from); handlers leave it.
    headers: tracing.Headers = ()


Handler = Callable[[Incoming], Awaitable[Sequence[Outgoing]]]
# How a command published by HTTP reaches the broker: returns once the broker acknowledged it.
Publish = Callable[[Outgoing], Awaitable[None]]


class PublishError(Exception):
    """The broker did not take an event (not connected, or it failed): nothing was published."""


def decode_json(message: Incoming) -> dict[str, Any]:
    """Bytes -> JSON object, or a PoisonMessage that says exactly what is wrong."""
    if message.value is None:
        raise PoisonMessage("EmptyMessage", "message value is empty (tombstone); expected a JSON object")
    try:
        text = message.value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PoisonMessage("InvalidEncoding", f"message is not UTF-8: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PoisonMessage(
            "InvalidJson", f"message is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(data, dict):
        raise PoisonMessage("InvalidJson", f"message is JSON {type(data).__name__}, expected an object")
    return data


def describe_validation_error(exc: ValidationError, limit: int = 10) -> str:
    """`parties.0.country: 'XX' is not an ISO 3166-1 alpha-2 country code (input: 'XX')`."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(message)"
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        shown = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, dict) else "{...}"
        if len(shown) > 120:
            shown = shown[:117] + "..."
        parts.append(f"{loc}: {msg} (input: {shown})")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"... and {more} more errors")
    return "; ".join(parts)


def dead_letter_for(message: Incoming, *, service: str, error_type: str, error: str, topic: str) -> Outgoing:
    """The dead letter for `message`, counted in `exportwatch_events_deadlettered_total` (every dead
    letter is made here: the consumer loop's and the screening clearance feed's)."""
    metrics.DEAD_LETTERED.labels(service, message.topic, error_type).inc()
    # One dead letter per origin position: a redelivery produces the same event_id, deduplicated by records.
    event_id = str(
        uuid.uuid5(
            EXPORTWATCH_NS, f"deadletter:{service}:{message.topic}:{message.partition}:{message.offset}"
        )
    )
    letter = DeadLetter(
        event_id=event_id,
        service=service,
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        key_b64=base64.b64encode(message.key).decode() if message.key is not None else None,
        payload_b64=base64.b64encode(message.value or b"").decode(),
        error_type=error_type,
        error=error,
        failed_at=datetime.now(UTC),
    )
    key = message.key.decode("utf-8", "replace") if message.key else event_id
    return Outgoing(topic=topic, key=key, value=envelope_dump(letter))


# Client construction stays in these two functions: connection settings (addresses, security) are
# added here once for every producer and consumer of every service.
def make_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=f"{settings.service_name}-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=30_000,
    )


def make_consumer(settings: Settings, *, group_id: str | None, client_id: str) -> AIOKafkaConsumer:
    """A consumer that commits by hand (`group_id`) or, without a group, commits nothing."""
    return AIOKafkaConsumer(
        **client_options(settings),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_interval_ms=300_000,
    )


def incoming(record: Any) -> Incoming:
    """An aiokafka ConsumerRecord as a handler reads it."""
    return Incoming(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        record.timestamp,
        tracing.headers_for(record.headers),
    )


async def start_with_retry(
    client: AIOKafkaProducer | AIOKafkaConsumer,
    *,
    what: str,
    stop: asyncio.Event,
    backoff_max: float,
) -> bool:
    """Start a client, retrying with exponential backoff while the broker is away. False if stopped."""
    delay = 0.5
    while not stop.is_set():
        try:
            await client.start()
            return True
        except KafkaError as exc:
            log.warning("kafka %s cannot connect yet: %s; retrying in %.1fs", what, exc, delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, backoff_max)
    return False


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Batches are processed and committed before the next poll, so nothing is pending here.
        log.info("partitions revoked: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.runner.joined = True
        log.info("partitions assigned: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


@dataclass
class ConsumerRunner:
    """Consume `topics` in group `group_id`, hand each message to `handler`, publish, then commit."""

    settings: Settings
    service: str
    topics: list[str]
    handler: Handler
    producer: AIOKafkaProducer
    group_id: str | None = None
    # None: retry a failing message forever (records: losing a trail step is worse than stalling).
    max_attempts: int | None = 8
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    joined: bool = False
    started: bool = False
    last_poll: float = 0.0
    consumer: AIOKafkaConsumer | None = None
    processed: int = 0

    @property
    def deadletter_topic(self) -> str:
        return self.settings.topic(TOPIC_DEADLETTER)

    def ready(self) -> tuple[bool, dict[str, Any]]:
        fresh = time.monotonic() - self.last_poll < 15.0
        assignment = sorted(
            f"{tp.topic}[{tp.partition}]" for tp in (self.consumer.assignment() if self.consumer else [])
        )
        detail = {
            "consumer_started": self.started,
            "group_joined": self.joined,
            "polling": fresh,
            "assignment": assignment,
        }
        return self.started and self.joined and fresh, detail

    async def stop(self) -> None:
        self.stop_event.set()

    def _make_consumer(self) -> AIOKafkaConsumer:
        return make_consumer(
            self.settings, group_id=self.group_id or self.service, client_id=f"{self.service}-consumer"
        )

    def _subscribe(self, consumer: AIOKafkaConsumer) -> None:
        consumer.subscribe(self.topics, listener=_Listener(self))

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
        except CommitFailedError as exc:
            # A rebalance took the partition away; its next owner redoes the batch (at-least-once).
            log.warning("commit failed after rebalance for %s[%d]: %s", tp.topic, tp.partition, exc)

    async def _after_poll(self, consumer: AIOKafkaConsumer) -> None:
        await self._update_lag(consumer)

    async def run(self) -> None:
        consumer = self._make_consumer()
        self.consumer = consumer
        if not await start_with_retry(
            consumer,
            what="consumer",
            stop=self.stop_event,
            backoff_max=self.settings.kafka_retry_backoff_max_s,
        ):
            return
        self._subscribe(consumer)
        self.started = True
        try:
            while not self.stop_event.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=self.settings.consumer_batch_size)
                self.last_poll = time.monotonic()
                for tp, records in batch.items():
                    if self.stop_event.is_set():
                        break
                    await self._process_partition(consumer, tp, records)
                await self._after_poll(consumer)
        finally:
            self.started = False
            await consumer.stop()

    async def _process_partition(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[Any]
    ) -> None:
        outputs: list[Outgoing] = []
        last_offset: int | None = None
        for record in records:
            result = await self._handle_with_retry(incoming(record))
            if result is None:  # stopping mid-retry: do not commit past this record
                break
            outputs.extend(result)
            last_offset = record.offset
        if last_offset is None:
            return
        try:
            await self._publish(outputs)
        except KafkaError as exc:
            # Not acknowledged: commit nothing, rewind, and the records are handled again (handlers
            # are deterministic and records deduplicates by event_id, so this is harmless).
            log.warning("publish failed for %s[%d]: %s; rewinding", tp.topic, tp.partition, exc)
            consumer.seek(tp, records[0].offset)
            await asyncio.sleep(1.0)
            return
        await self._commit(consumer, tp, last_offset + 1)
        if last_offset != records[-1].offset:
            consumer.seek(tp, last_offset + 1)

    async def _handle_with_retry(self, message: Incoming) -> list[Outgoing] | None:
        # Every log line about this message carries its order id (the key), even before parsing.
        key = message.key.decode("utf-8", "replace") if message.key else None
        with log_context(order_id=key, event_id=None):
            if not tracing.enabled():  # the default: no span, the record's trace headers passed on
                outputs = await self._attempts(message)
                carried = tracing.passed_on(message.headers)
            else:
                with tracing.consuming(
                    self.service,
                    message.topic,
                    message.partition,
                    message.offset,
                    message.key,
                    message.headers,
                ) as carried:
                    outputs = await self._attempts(message)
        if not carried or not outputs:
            return outputs
        # One order, one trace: what this record produced (dead letters too) continues its trace.
        return [Outgoing(out.topic, out.key, out.value, carried) for out in outputs]

    async def _attempts(self, message: Incoming) -> list[Outgoing] | None:
        attempt = 0
        delay = 0.2
        while True:
            attempt += 1
            started = time.perf_counter()
            metrics.EVENTS_IN.labels(self.service, message.topic).inc()
            try:
                outs = list(await self.handler(message))
                metrics.HANDLER_LATENCY.labels(self.service, message.topic).observe(
                    time.perf_counter() - started
                )
                self.processed += 1
                return outs
            except PoisonMessage as exc:
                return [self._dead_letter(message, exc.error_type, str(exc))]
            except ValidationError as exc:
                return [self._dead_letter(message, "SchemaValidationError", describe_validation_error(exc))]
            except Exception as exc:
                metrics.HANDLER_ERRORS.labels(self.service, message.topic).inc()
                if self.max_attempts is not None and attempt >= self.max_attempts:
                    log.exception("handler failed %d times; dead-lettering", attempt)
                    return [self._dead_letter(message, "HandlerError", f"{type(exc).__name__}: {exc}")]
                log.warning(
                    "handler failed (attempt %d) on %s[%d]@%d: %s: %s; retrying in %.1fs",
                    attempt,
                    message.topic,
                    message.partition,
                    message.offset,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                try:
                    await asyncio.wait_for(self.stop_event.wait(), timeout=delay)
                    return None
                except TimeoutError:
                    delay = min(delay * 2, self.settings.kafka_retry_backoff_max_s)

    def _dead_letter(self, message: Incoming, error_type: str, error: str) -> Outgoing:
        key = message.key.decode("utf-8", "replace") if message.key else None
        with log_context(order_id=key, event_id=None):
            log.warning(
                "dead-lettering %s[%d]@%d: %s: %s",
                message.topic,
                message.partition,
                message.offset,
                error_type,
                error,
            )
        return dead_letter_for(
            message, service=self.service, error_type=error_type, error=error, topic=self.deadletter_topic
        )

    async def _publish(self, outputs: list[Outgoing]) -> None:
        if not outputs:
            return
        futures = [
            await self.producer.send(
                out.topic, value=out.value, key=out.key.encode("utf-8"), headers=list(out.headers) or None
            )
            for out in outputs
        ]
        await asyncio.gather(*futures)
        for out in outputs:
            metrics.EVENTS_OUT.labels(self.service, out.topic).inc()

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await consumer.position(tp)
            except Exception:  # position unknown during a rebalance
                continue
            metrics.CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(
                max(0, highwater - position)
            )


@dataclass
class FollowingRunner(ConsumerRunner):
    """Reads `topics` in full on every instance: no consumer group (so no instance shares out the
    partitions, and aiokafka assigns this one every partition, including any added later), from the
    beginning, committing nothing. Ready once it has read everything that was on the topics when
    their partitions were first assigned: state rebuilt from a compacted topic is complete then."""

    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    _targets: dict[TopicPartition, int] | None = None

    def _make_consumer(self) -> AIOKafkaConsumer:
        return make_consumer(self.settings, group_id=None, client_id=f"{self.service}-follower")

    def _subscribe(self, consumer: AIOKafkaConsumer) -> None:
        consumer.subscribe(self.topics)

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        return None  # nothing to commit without a group: every start reads from the beginning

    async def _after_poll(self, consumer: AIOKafkaConsumer) -> None:
        assigned = sorted(consumer.assignment())
        self.joined = bool(assigned)
        if self._targets is None and assigned:
            self._targets = await consumer.end_offsets(assigned)
            log.info(
                "following %s up to offsets %s",
                ", ".join(self.topics),
                {f"{tp.topic}[{tp.partition}]": offset for tp, offset in self._targets.items()},
            )
        if self._targets is not None and not self.caught_up.is_set():
            for tp, end in self._targets.items():
                if await consumer.position(tp) < end:
                    return
            self.caught_up.set()
            log.info("caught up with %s", ", ".join(self.topics))

    def ready(self) -> tuple[bool, dict[str, Any]]:
        ok, detail = super().ready()
        return ok and self.caught_up.is_set(), {**detail, "caught_up": self.caught_up.is_set()}
