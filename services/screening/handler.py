"""orders.classified.v1 -> screen every party of the order -> orders.screened.v1 (and, by topic,
orders.rescreen.v1 -> rescreen.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.screening import service
from services.screening.domain import Screener
from services.screening.service import STAGE, ScreeningRuntime
from shared.codec import read_event, require_key
from shared.events import TOPIC_SCREENED, ClassifiedOrder, ScreenedOrder, derive, envelope_dump
from shared.kafka import Handler, Incoming, Outgoing, PoisonMessage
from shared.logging import log_context
from shared.settings import Settings

__all__ = ["STAGE", "ScreeningHandler", "TopicRouter"]


@dataclass(frozen=True)
class TopicRouter:
    """One consumer group, several topics: each message to its topic's handler."""

    handlers: Mapping[str, Handler]

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        handler = self.handlers.get(message.topic)
        if handler is None:
            raise PoisonMessage("UnknownTopic", f"screening does not consume topic {message.topic!r}")
        return list(await handler(message))


class ScreeningHandler:
    """Deterministic for the same input, policy, list versions and clearances: no clock, no randomness.

    `screening` is the service's runtime (current lists, swapped by updates, and clearances) or, in
    tests and benchmarks, a bare `Screener`."""

    def __init__(self, settings: Settings, screening: Screener | ScreeningRuntime) -> None:
        self.settings = settings
        self.screening = screening

    async def _screen(self, classified: ClassifiedOrder) -> ScreenedOrder:
        if isinstance(self.screening, ScreeningRuntime):
            return await service.screen_order(runtime=self.screening, classified=classified)
        screening = self.screening.screen_parties(classified.order.parties)
        return ScreenedOrder(
            **derive(classified, STAGE), classification=classified.classification, screening=screening
        )

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        # A ValidationError here is the runner's cue to dead-letter the message.
        classified = read_event(message, ClassifiedOrder)
        require_key(message, classified.order_id)
        with log_context(order_id=classified.order_id, event_id=classified.event_id):
            screened = await self._screen(classified)
        return [
            Outgoing(
                topic=self.settings.topic(TOPIC_SCREENED),
                key=classified.order_id,
                value=envelope_dump(screened),
            )
        ]
