"""A follower: a consumer loop that reads its topics in full on every instance, without a consumer
group, to rebuild state kept on a compacted topic (screening's clearances, the classifier's
catalog, records' anchors). It runs the shared loop (`shared/kafka.py`) and commits nothing."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import ConsumerRunner, make_consumer

log = logging.getLogger("exportwatch.kafka")


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

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
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
