"""The good-guy list: reviewers' "not a match" decisions, read by every screening instance.

A clearance says: this party name is not this list entry, as the entry stood at `entry_version`.
It suppresses that (name, entry) pair until the publisher changes the entry: a changed entry (new
alias, new address, new programme) must be judged again, so the hit comes back by itself.

Clearances travel on `screening.clearances.v1`, a compacted topic keyed `list_id:entry_id:name`
(the latest clearance per pair survives compaction; a tombstone on the key revokes it). Every
instance must know every clearance, so `ClearanceFeed` reads all partitions from the beginning
without a consumer group (a group would split the partitions between instances) and keeps reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from services.screening.domain import NameQuery
from shared.events import TOPIC_CLEARANCES, ScreeningClearance, clearance_key
from shared.kafka import Incoming, PoisonMessage, decode_json, describe_validation_error, start_with_retry
from shared.kafka_security import client_options
from shared.settings import Settings

log = logging.getLogger("exportwatch.screening.clearances")


def clearance_name(name: str) -> str:
    """The party name as clearances compare it: the matcher's own normalisation (transliterated,
    case-folded, legal forms and titles dropped, "LAST, First" reordered), so "Acme GmbH" cleared is
    "ACME GMBH" cleared, exactly the names the matcher cannot tell apart either."""
    tokens = NameQuery.of(name).tokens
    return " ".join(tokens) if tokens else " ".join(name.casefold().split())


@dataclass(frozen=True)
class ClearanceState:
    key: str
    clearance: ScreeningClearance
    in_force: bool
    current_entry_version: str | None
    why_not: str | None


class ClearanceBook:
    """Clearances by (list_id, entry_id, normalised name). Mutated only by the feed (one task) and
    read by screening on the same event loop, so no lock is needed."""

    def __init__(self) -> None:
        self._by_key: dict[str, ScreeningClearance] = {}
        self._by_pair: dict[tuple[str, str, str], str] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def put(self, key: str, clearance: ScreeningClearance) -> None:
        """Record a clearance under its Kafka key (a later one for the same key replaces it)."""
        self.revoke(key)
        self._by_key[key] = clearance
        # Normalised here, not trusted from the message: this instance's matcher decides which party
        # names are the same name.
        self._by_pair[(clearance.list_id, clearance.entry_id, clearance_name(clearance.party_name))] = key

    def revoke(self, key: str) -> bool:
        old = self._by_key.pop(key, None)
        if old is None:
            return False
        pair = (old.list_id, old.entry_id, clearance_name(old.party_name))
        if self._by_pair.get(pair) == key:
            del self._by_pair[pair]
        return True

    def find(self, list_id: str, entry_id: str, name_key: str) -> ScreeningClearance | None:
        key = self._by_pair.get((list_id, entry_id, name_key))
        return self._by_key.get(key) if key is not None else None

    def in_force(
        self, list_id: str, entry_id: str, name_key: str, entry_version: str | None
    ) -> ScreeningClearance | None:
        """The clearance of this pair if the entry is still the version that was cleared."""
        found = self.find(list_id, entry_id, name_key)
        if found is None or entry_version is None or found.entry_version != entry_version:
            return None
        return found

    def states(self, entry_versions: Mapping[tuple[str, str], str]) -> list[ClearanceState]:
        out = []
        for key, clearance in sorted(self._by_key.items(), key=lambda kc: (kc[1].cleared_at, kc[1].event_id)):
            current = entry_versions.get((clearance.list_id, clearance.entry_id))
            why = (
                "the entry is no longer on the loaded lists"
                if current is None
                else f"the entry changed since it was cleared (now {current})"
                if current != clearance.entry_version
                else None
            )
            out.append(ClearanceState(key, clearance, why is None, current, why))
        return out


def message_key(clearance: ScreeningClearance) -> str:
    return clearance_key(clearance.list_id, clearance.entry_id, clearance_name(clearance.party_name))


DeadLetterSink = Callable[[Incoming, str, str], Awaitable[None]]


class ClearanceFeed:
    """Reads `screening.clearances.v1` from the beginning into a `ClearanceBook`, then follows it."""

    def __init__(
        self, settings: Settings, book: ClearanceBook, on_invalid: DeadLetterSink | None = None
    ) -> None:
        self.settings = settings
        self.book = book
        self.on_invalid = on_invalid
        self.topic = settings.topic(TOPIC_CLEARANCES)
        self.caught_up = asyncio.Event()
        self.records = 0
        self.invalid = 0
        self.last_poll = 0.0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="screening-clearances")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=30)

    def ready(self) -> tuple[bool, dict[str, Any]]:
        polling = time.monotonic() - self.last_poll < 15.0
        detail = {
            "clearances_caught_up": self.caught_up.is_set(),
            "clearances_polling": polling,
            "clearances": len(self.book),
            "clearance_messages_read": self.records,
            "clearance_messages_invalid": self.invalid,
        }
        return self.caught_up.is_set() and polling, detail

    async def _run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                await self._run()
            except Exception:
                log.exception("clearance feed failed; restarting in 2s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=2.0)

    async def _run(self) -> None:
        # No group: aiokafka then assigns this consumer every partition of the topic (and any added
        # later), whatever other instances read; with no committed offsets it starts at the beginning.
        consumer = AIOKafkaConsumer(
            self.topic,
            **client_options(self.settings),
            group_id=None,
            client_id=f"{self.settings.service_name}-clearances",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        if not await start_with_retry(
            consumer,
            what="clearances consumer",
            stop=self._stop,
            backoff_max=self.settings.kafka_retry_backoff_max_s,
        ):
            return
        # Caught up = read everything that was on the topic when its partitions were first assigned.
        targets: dict[TopicPartition, int] | None = None
        try:
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=1000)
                self.last_poll = time.monotonic()
                for records in batch.values():
                    for record in records:
                        await self._apply(
                            Incoming(
                                record.topic,
                                record.partition,
                                record.offset,
                                record.key,
                                record.value,
                                record.timestamp,
                            )
                        )
                if targets is None and (assigned := sorted(consumer.assignment())):
                    targets = await consumer.end_offsets(assigned)
                    log.info(
                        "reading clearances from %s up to offsets %s",
                        self.topic,
                        {tp.partition: offset for tp, offset in targets.items()},
                    )
                if (
                    targets is not None
                    and not self.caught_up.is_set()
                    and await self._reached(consumer, targets)
                ):
                    self.caught_up.set()
                    log.info("clearances caught up: %d in the book", len(self.book))
        except KafkaError as exc:
            log.warning("clearance feed lost the broker: %s; reconnecting", exc)
        finally:
            await consumer.stop()

    @staticmethod
    async def _reached(consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]) -> bool:
        for tp, end in targets.items():
            if await consumer.position(tp) < end:
                return False
        return True

    async def _apply(self, message: Incoming) -> None:
        self.records += 1
        key = message.key.decode("utf-8", "replace") if message.key is not None else None
        if message.value is None:
            # A tombstone: the clearance under this key is revoked (and compaction will drop both).
            if key is not None and self.book.revoke(key):
                log.info("clearance %s revoked", key)
            return
        try:
            clearance = ScreeningClearance.model_validate(decode_json(message))
        except PoisonMessage as exc:
            await self._invalid(message, exc.error_type, str(exc))
            return
        except ValidationError as exc:
            await self._invalid(message, "SchemaValidationError", describe_validation_error(exc))
            return
        self.book.put(key or clearance.key, clearance)

    async def _invalid(self, message: Incoming, error_type: str, error: str) -> None:
        self.invalid += 1
        log.warning(
            "invalid clearance %s[%d]@%d: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            error_type,
            error,
        )
        if self.on_invalid is not None:
            try:
                await self.on_invalid(message, error_type, error)
            except Exception as exc:  # the broker is away: logged above, the feed moves on
                log.warning("could not dead-letter the invalid clearance: %s", exc)
