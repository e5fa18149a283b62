"""The one consumer loop every service uses, and the producer it publishes with.

Two ways to read: a consumer group shares a topic's partitions between a service's instances
(`ConsumerRunner`, the pipeline's stages); a follower reads every partition in full on every
instance, without a group, to rebuild state such as the clearances (`shared/following.py`). Both run
the same loop, hand each message to a handler and publish what it returns (dead letters included).

Semantics (docs/architecture.md, "Delivery"): at-least-once. A batch's outputs are produced and acknowledged by the
broker (acks=all, idempotent producer) before the batch's offsets are committed (`offset + 1` per
partition). The loop handles the next poll while the broker acknowledges the last one's outputs;
the next poll's outputs are sent only once the last one has landed (acknowledged, then committed in
one commit for all its partitions), so each partition's outputs keep their order, and a partition
whose outputs were not acknowledged is read again from where that poll began. A message that cannot
be decoded or validated goes to `orders.deadletter.v1` with its raw bytes, origin and a clear error,
and the loop moves on. An unexpected handler failure (a database that is away, a broker that times
out) is retried with backoff from the same offset; it never kills the loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Protocol, runtime_checkable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import ValidationError

from shared import metrics, tracing
from shared.events import EXPORTWATCH_NS, TOPIC_DEADLETTER, DeadLetter, envelope_dump
from shared.failures import is_transient
from shared.kafka_security import client_options
from shared.logging import exception_message, log_context, personal_data_logged, stack_of
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


@runtime_checkable
class HandlesBatches(Protocol):
    """A handler that can also take a whole poll at once (records: one database transaction per
    poll). `handle_batch` returns, for each message in order, its outputs, or None for a message it
    left to the one-at-a-time path (a message it could not decode or validate, which that path
    dead-letters with its usual error). It either handles the batch whole or raises, having changed
    nothing; the loop then handles every message of the poll one at a time, as without a batch."""

    async def __call__(self, message: Incoming) -> Sequence[Outgoing]: ...

    async def handle_batch(self, messages: Sequence[Incoming]) -> Sequence[Sequence[Outgoing] | None]: ...


# How a command published by HTTP reaches the broker: returns once the broker acknowledged it.
Publish = Callable[[Outgoing], Awaitable[None]]


class PublishError(Exception):
    """The broker did not take an event (not connected, or it failed): nothing was published."""


# Fields whose values may name a person: the parties to an order (names, addresses), what screening
# matched them with, the stated end use. Their values are withheld from logs unless allowed.
_PERSONAL_FIELDS = frozenset({"parties", "screening", "end_use", "name", "address", "city", "party_name"})


def describe_validation_error(exc: ValidationError, limit: int = 10, *, values: bool = True) -> str:
    """`parties.0.country: 'XX' is not an ISO 3166-1 alpha-2 country code (input: 'XX')`.

    With `values=False` (a log line, by default: EXPORTWATCH_LOG_PERSONAL_DATA) the value of a field
    that may name a person is left out; the dead letter itself always names it."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(message)"
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        if not values and _PERSONAL_FIELDS.intersection(str(p) for p in err["loc"]):
            if isinstance(value, str) and value:
                msg = msg.replace(repr(value), "(the value)").replace(value, "(the value)")
            parts.append(f"{loc}: {msg} (input withheld: personal data)")
            continue
        shown = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, dict) else "{...}"
        if len(shown) > 120:
            shown = shown[:117] + "..."
        parts.append(f"{loc}: {msg} (input: {shown})")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"... and {more} more errors")
    return "; ".join(parts)


# The producer's limit on one request (aiokafka's default, stated here so that the consumer loop
# knows an output it cannot publish before it tries, and cuts a dead letter to fit).
MAX_REQUEST_BYTES = 1_048_576
# What a dead letter's error text and key may take at most; the payload gets the rest of the request.
_ERROR_CHARS = 16_000
_KEY_BYTES = 16_384
# Record and batch framing around key and value (aiokafka's estimate is below 100 bytes).
_FRAMING_BYTES = 512
# The note a cut dead letter's error ends with; records refuses to replay such a dead letter.
TRUNCATED_NOTE = "[payload truncated"


def dead_letter_for(
    message: Incoming,
    *,
    service: str,
    error_type: str,
    error: str,
    topic: str,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> Outgoing:
    """The dead letter for `message`, counted in `exportwatch_events_deadlettered_total` (every dead
    letter is made here: the consumer loop's and the screening clearance feed's).

    It carries the message's bytes whole when they fit in one request of `max_bytes`; otherwise
    their beginning, the whole message's size and SHA-256, and a note saying so, so that a message
    too large to publish is set aside like any other instead of stalling its partition."""
    metrics.DEAD_LETTERED.labels(service, message.topic, error_type).inc()
    # One dead letter per origin position: a redelivery produces the same event_id, deduplicated by records.
    event_id = str(
        uuid.uuid5(
            EXPORTWATCH_NS, f"deadletter:{service}:{message.topic}:{message.partition}:{message.offset}"
        )
    )
    payload = message.value or b""
    if len(error) > _ERROR_CHARS:
        error = f"{error[:_ERROR_CHARS]}... ({len(error) - _ERROR_CHARS} more characters)"
    source_key = message.key if message.key is None or len(message.key) <= _KEY_BYTES else None
    if message.key is not None and source_key is None:
        error += f" [key truncated: the first {_KEY_BYTES} of its {len(message.key)} bytes are kept]"
    letter = DeadLetter(
        event_id=event_id,
        service=service,
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        key_b64=base64.b64encode(message.key[:_KEY_BYTES]).decode() if message.key is not None else None,
        payload_b64="",
        error_type=error_type,
        error=error,
        failed_at=datetime.now(UTC),
        payload_size=len(payload),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
    )
    key = source_key.decode("utf-8", "replace") if source_key else event_id
    room = max_bytes - _FRAMING_BYTES - len(key.encode()) - len(envelope_dump(letter)) - 1024
    kept = payload[: max(0, room) // 4 * 3]
    if len(kept) < len(payload):
        letter.error += (
            f" {TRUNCATED_NOTE}: its first {len(kept)} of {len(payload)} bytes are kept, to fit the "
            f"producer's limit of {max_bytes} bytes; SHA-256 of all {len(payload)} bytes "
            f"{letter.payload_sha256}; the whole message is at {message.topic}[{message.partition}]"
            f"@{message.offset} until the topic's retention removes it]"
        )
        letter.payload_truncated = True
    letter.payload_b64 = base64.b64encode(kept).decode()
    return Outgoing(topic=topic, key=key, value=envelope_dump(letter))


def payload_was_truncated(error: str) -> bool:
    """Whether a dead letter's error says its payload is only the beginning of the message."""
    return TRUNCATED_NOTE in error


def record_size(outgoing: Outgoing) -> int:
    """The size the producer counts against its request limit for this record."""
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(
        outgoing.key.encode(), outgoing.value, list(outgoing.headers)
    )
    return size


# Client construction stays in these two functions: connection settings (addresses, security) are
# added here once for every producer and consumer of every service.
def make_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=f"{settings.service_name}-producer",
        max_request_size=MAX_REQUEST_BYTES,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=settings.kafka_max_batch_bytes,
        compression_type=None if settings.kafka_compression == "none" else settings.kafka_compression,
        request_timeout_ms=30_000,
    )


# A gathering consumer's fetch waits until this much is waiting (or its time is up).
GATHER_BYTES = 1_048_576

# How long a stopping consumer loop waits for its last poll's delivery (acknowledgements, commit).
LAND_ON_STOP_S = 5.0


def make_consumer(
    settings: Settings, *, group_id: str | None, client_id: str, gather_ms: int = 0
) -> AIOKafkaConsumer:
    """A consumer that commits by hand (`group_id`) or, without a group, commits nothing; with
    `gather_ms`, each fetch waits up to that long for GATHER_BYTES to be waiting."""
    gather: dict[str, int] = (
        {"fetch_min_bytes": GATHER_BYTES, "fetch_max_wait_ms": gather_ms} if gather_ms else {}
    )
    return AIOKafkaConsumer(
        **client_options(settings),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_interval_ms=300_000,
        max_partition_fetch_bytes=settings.kafka_max_partition_fetch_bytes,
        **gather,
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


@dataclass
class CommitPolicy:
    """When a consumer commits the offsets whose outputs the broker acknowledged: at once
    (`interval_ms` 0, every poll), or gathered and committed at most every `interval_ms`, so that a
    moderate load does not cost the broker an OffsetCommit (an append to `__consumer_offsets`) for
    every poll of one or two events. Only acknowledged offsets are ever added, so what is committed
    late is never ahead of what was published; a crash re-delivers at most an interval's polls,
    which handlers redo deterministically and records deduplicates by event_id (docs/architecture.md,
    "Delivery")."""

    interval_ms: int
    pending: dict[TopicPartition, int] = field(default_factory=dict)
    _last: float = field(default_factory=time.monotonic)

    def add(self, offsets: dict[TopicPartition, int]) -> None:
        self.pending.update(offsets)

    def due(self) -> dict[TopicPartition, int]:
        """The offsets to commit now (empty until the interval since the last commit is up)."""
        if not self.pending or (time.monotonic() - self._last) * 1000 < self.interval_ms:
            return {}
        return self.take()

    def take(self) -> dict[TopicPartition, int]:
        """Every pending offset, now (on a revocation, on stopping)."""
        taken, self.pending = self.pending, {}
        self._last = time.monotonic()
        return taken


@dataclass
class _Part:
    """One partition's messages of a poll, handled: where the poll began reading it (where to read
    again from if its outputs are not published) and each message with its outputs."""

    first: int
    handled: list[tuple[Incoming, list[Outgoing]]]


async def _first_error(futures: Sequence[asyncio.Future[Any]]) -> BaseException | None:
    """Wait for every send's acknowledgement; the first failure, or None when all were acknowledged."""
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    return next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # The poll whose outputs are on their way is committed while its partitions are still ours,
        # so their next owner does not redo it.
        try:
            await self.runner.land()
            await self.runner.flush()  # offsets held back by the commit interval, too
        except Exception as exc:  # the loop sees the same failure and acts on it
            log.warning("the delivery in flight failed during a rebalance: %s", exception_message(exc))
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
    # Wait up to this long for a fuller fetch (make_consumer); 0: read as soon as anything arrives.
    gather_ms: int = 0
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    joined: bool = False
    started: bool = False
    last_poll: float = 0.0
    consumer: AIOKafkaConsumer | None = None
    processed: int = 0
    # The previous poll's delivery (publish, acknowledgement, commit), overlapping this poll's handling.
    _in_flight: asyncio.Future[dict[TopicPartition, int]] | None = None
    # Acknowledged offsets not yet committed (EXPORTWATCH_KAFKA_COMMIT_INTERVAL_MS); made by run().
    _commits: CommitPolicy | None = None

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
            self.settings,
            group_id=self.group_id or self.service,
            client_id=f"{self.service}-consumer",
            gather_ms=self.gather_ms,
        )

    def _subscribe(self, consumer: AIOKafkaConsumer) -> None:
        consumer.subscribe(self.topics, listener=_Listener(self))

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        # Only partitions still ours: a rebalance may have taken one while its outputs were on the way.
        owned = consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in owned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took a partition away; its next owner redoes the poll (at-least-once).
            shown = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(offsets))
            log.warning("commit failed after a rebalance for %s: %s", shown, exc)

    async def flush(self) -> None:
        """Commit every acknowledged offset still pending (a revocation, the loop stopping)."""
        if self.consumer is not None and self._commits is not None and self._commits.pending:
            await self._commit(self.consumer, self._commits.take())

    async def _land_and_flush(self) -> None:
        await self.land()
        await self.flush()

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
        self._commits = CommitPolicy(self.settings.kafka_commit_interval_ms)
        self._subscribe(consumer)
        self.started = True
        try:
            while not self.stop_event.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=self.settings.consumer_batch_size)
                self.last_poll = time.monotonic()
                parts = await self._handle(consumer, batch)
                # The previous poll's outputs were acknowledged (and its offsets committed) while this
                # one was handled. Outputs go out only after it, so each partition's stay in order.
                await self._landed(consumer, parts)
                self._in_flight = asyncio.ensure_future(self._deliver(consumer, parts))
                if not self.settings.consumer_overlap:
                    await self._landed(consumer, {})
                await self._after_poll(consumer)
        finally:
            try:
                # What was acknowledged before the stop is committed (the poll in flight landed, then
                # what the commit interval held back). A delivery or a commit that does not end (a
                # broker that does not answer) is not waited for: its polls are read again by the
                # next owner, which is what at-least-once allows.
                await asyncio.wait_for(self._land_and_flush(), timeout=LAND_ON_STOP_S)
            except TimeoutError:
                log.warning(
                    "the last poll's delivery did not end within %.0fs of stopping; not committed",
                    LAND_ON_STOP_S,
                )
            except Exception as exc:
                log.warning("the last poll's delivery failed on stopping: %s", exception_message(exc))
            finally:
                self.started = False
                await consumer.stop()

    async def _landed(self, consumer: AIOKafkaConsumer, parts: dict[TopicPartition, _Part]) -> None:
        """Land the poll in flight; each partition it could not publish is read again from where
        that poll began, and what `parts` (the poll handled since) holds of it is dropped."""
        failed = await self.land()
        self._in_flight = None
        for tp, offset in failed.items():
            parts.pop(tp, None)
            if tp in consumer.assignment():
                consumer.seek(tp, offset)

    async def land(self) -> dict[TopicPartition, int]:
        """Wait for the poll whose outputs are on their way: its offsets committed where the broker
        acknowledged them. Returns the partitions it could not publish, with the offset to read
        them again from (the loop alone acts on it; the rebalance listener only waits)."""
        flight = self._in_flight
        if flight is None:
            return {}
        return await asyncio.shield(flight)

    async def _handle(
        self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[Any]]
    ) -> dict[TopicPartition, _Part]:
        """Each partition's messages of a poll with their outputs (a whole-poll handler first, then
        one at a time for what it left)."""
        done = await self._handle_poll(batch)
        parts: dict[TopicPartition, _Part] = {}
        for tp, records in batch.items():
            if self.stop_event.is_set():
                break
            handled: list[tuple[Incoming, list[Outgoing]]] = []
            for record in records:
                message = incoming(record)
                known = done.get((message.topic, message.partition, message.offset))
                result = known if known is not None else await self._handle_with_retry(message)
                if result is None:  # stopping mid-retry: do not commit past this record
                    break
                handled.append((message, self._publishable(message, result)))
            if not handled:
                continue
            parts[tp] = _Part(records[0].offset, handled)
            if handled[-1][0].offset != records[-1].offset:
                consumer.seek(tp, handled[-1][0].offset + 1)
        return parts

    async def _handle_poll(
        self, batch: dict[TopicPartition, list[Any]]
    ) -> dict[tuple[str, int, int], list[Outgoing]]:
        """The outputs of the messages a batch handler handled in one go, by (topic, partition,
        offset); empty when the handler takes one message at a time, or when the batch failed (then
        every message goes the one-at-a-time way, with its retries and dead letters)."""
        if not isinstance(self.handler, HandlesBatches) or not batch:
            return {}
        # In the order they were produced across the poll's partitions (each partition's own order
        # kept): records appends an order's steps from several topics in the order they happened.
        messages = [incoming(record) for record in heapq.merge(*batch.values(), key=attrgetter("timestamp"))]
        started = time.perf_counter()
        try:
            with tracing.consuming_all(self.service, messages) as carried:
                results = await self.handler.handle_batch(messages)
        except Exception as exc:
            metrics.HANDLER_ERRORS.labels(self.service, "(batch)").inc()
            shown = str(exc) if is_transient(exc) else exception_message(exc)
            log.warning(
                "a poll of %d messages failed as a batch (%s: %s); handling them one at a time",
                len(messages),
                type(exc).__name__,
                shown,
            )
            return {}
        # The poll's time shared by its messages: the latency histogram stays per message.
        each = (time.perf_counter() - started) / len(messages)
        done: dict[tuple[str, int, int], list[Outgoing]] = {}
        handled: dict[str, int] = {}
        for message, outputs, headers in zip(messages, results, carried, strict=True):
            if outputs is None:
                continue
            handled[message.topic] = handled.get(message.topic, 0) + 1
            # One order, one trace: what this record produced continues its trace.
            done[(message.topic, message.partition, message.offset)] = [
                Outgoing(out.topic, out.key, out.value, headers or out.headers) for out in outputs
            ]
        for topic, count in handled.items():
            metrics.EVENTS_IN.labels(self.service, topic).inc(count)
            latency = metrics.HANDLER_LATENCY.labels(self.service, topic)
            for _ in range(count):
                latency.observe(each)
        self.processed += len(done)
        return done

    async def _deliver(
        self, consumer: AIOKafkaConsumer, parts: dict[TopicPartition, _Part]
    ) -> dict[TopicPartition, int]:
        """Publish a poll's outputs, and commit each partition whose outputs the broker acknowledged
        (all partitions in one commit). Returns the partitions not published, with the offset to
        read them again from: nothing of them is committed, and handlers are deterministic and
        records deduplicates by event_id, so handling them again is harmless."""
        sent: dict[TopicPartition, list[asyncio.Future[Any]] | BaseException] = {}
        owned = consumer.assignment()
        for tp, part in parts.items():
            if tp not in owned:  # taken by a rebalance while handled: its next owner handles it again
                continue
            try:
                sent[tp] = [await self._send(out) for _, outs in part.handled for out in outs]
            except KafkaError as exc:
                sent[tp] = exc
        offsets: dict[TopicPartition, int] = {}
        failed: dict[TopicPartition, int] = {}
        for tp, futures in sent.items():
            part = parts[tp]
            error = futures if isinstance(futures, BaseException) else await _first_error(futures)
            if isinstance(error, MessageSizeTooLargeError | RecordListTooLargeError):
                # The broker refused an output that the producer let through (a topic whose limit is
                # below the producer's): find which, one message at a time, and set that one aside.
                try:
                    await self._publish_each(part.handled)  # counts what it publishes
                except KafkaError as exc:
                    error = exc
                else:
                    offsets[tp] = part.handled[-1][0].offset + 1
                    continue
            if error is not None:
                log.warning("publish failed for %s[%d]: %s; rewinding", tp.topic, tp.partition, error)
                failed[tp] = part.first
                continue
            offsets[tp] = part.handled[-1][0].offset + 1
            for _, outs in part.handled:
                for out in outs:
                    metrics.EVENTS_OUT.labels(self.service, out.topic).inc()
        # An empty poll comes here too (every 500 ms when idle): offsets held back are committed
        # once their interval is up even when nothing more arrives.
        if self._commits is None:
            await self._commit(consumer, offsets)
        else:
            self._commits.add(offsets)
            await self._commit(consumer, self._commits.due())
        return failed

    def _publishable(self, message: Incoming, outputs: list[Outgoing]) -> list[Outgoing]:
        """`outputs`, or a dead letter instead when one of them is over the producer's request
        limit: the producer would refuse it every time, and retrying would stall the partition."""
        for out in outputs:
            size = record_size(out)
            if size > MAX_REQUEST_BYTES and out.topic != self.deadletter_topic:
                return [
                    self._too_large(message, out.topic, size, f"the producer's limit of {MAX_REQUEST_BYTES}")
                ]
        return outputs

    async def _publish_each(self, handled: list[tuple[Incoming, list[Outgoing]]]) -> None:
        for message, outputs in handled:
            try:
                await self._publish(outputs)
            except (MessageSizeTooLargeError, RecordListTooLargeError) as exc:
                size = max(record_size(out) for out in outputs)
                topics = ", ".join(sorted({out.topic for out in outputs}))
                await self._publish([self._too_large(message, topics, size, f"the broker's limit ({exc})")])

    def _too_large(self, message: Incoming, topic: str, size: int, limit: str) -> Outgoing:
        return self._dead_letter(
            message,
            "OutputTooLarge",
            f"the {topic} event this message gives is {size} bytes, over {limit} bytes; "
            "it is set aside rather than retried (a retry would be refused the same way)",
        )

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
        attempt = failures = 0
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
                error = describe_validation_error(exc)
                logged = describe_validation_error(exc, values=personal_data_logged())
                return [self._dead_letter(message, "SchemaValidationError", error, logged=logged)]
            except Exception as exc:
                metrics.HANDLER_ERRORS.labels(self.service, message.topic).inc()
                # A dependency that is away (shared/failures.py) is waited for however long it takes:
                # the message is valid, and giving up would dead-letter it. Only other failures count.
                transient = is_transient(exc)
                failures += 0 if transient else 1
                # A connection error says nothing about the order; any other may quote it.
                shown = str(exc) if transient else exception_message(exc)
                if self.max_attempts is not None and failures >= self.max_attempts:
                    log.error(
                        "handler failed %d times; dead-lettering: %s: %s",
                        failures,
                        type(exc).__name__,
                        shown,
                        extra={"stack": stack_of(exc)},
                    )
                    error = f"{type(exc).__name__}: {exc}"
                    logged = f"{type(exc).__name__}: {shown}"
                    return [self._dead_letter(message, "HandlerError", error, logged=logged)]
                log.warning(
                    "handler failed (attempt %d, %s) on %s[%d]@%d: %s: %s; retrying in %.1fs",
                    attempt,
                    "transient: retried until it works" if transient else f"failure {failures}",
                    message.topic,
                    message.partition,
                    message.offset,
                    type(exc).__name__,
                    shown,
                    delay,
                )
                try:
                    await asyncio.wait_for(self.stop_event.wait(), timeout=delay)
                    return None
                except TimeoutError:
                    delay = min(delay * 2, self.settings.kafka_retry_backoff_max_s)

    def _dead_letter(
        self, message: Incoming, error_type: str, error: str, *, logged: str | None = None
    ) -> Outgoing:
        key = message.key.decode("utf-8", "replace") if message.key else None
        with log_context(order_id=key, event_id=None):
            log.warning(
                "dead-lettering %s[%d]@%d: %s: %s",
                message.topic,
                message.partition,
                message.offset,
                error_type,
                error if logged is None else logged,
            )
        return dead_letter_for(
            message, service=self.service, error_type=error_type, error=error, topic=self.deadletter_topic
        )

    async def _send(self, out: Outgoing) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await self.producer.send(
            out.topic, value=out.value, key=out.key.encode("utf-8"), headers=list(out.headers) or None
        )
        return future

    async def _publish(self, outputs: list[Outgoing]) -> None:
        if not outputs:
            return
        await asyncio.gather(*[await self._send(out) for out in outputs])
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
