"""orders.classified.v1 -> screen every party of the order -> orders.screened.v1."""

from __future__ import annotations

from services.screening.domain import Screener
from services.screening.registry import ScreeningRuntime
from shared.events import (
    TOPIC_SCREENED,
    ClassifiedOrder,
    ScreenedOrder,
    Screening,
    derive,
    envelope_dump,
)
from shared.kafka import Incoming, Outgoing, decode_json
from shared.logging import log_context
from shared.settings import Settings

STAGE = "screening"


class ScreeningHandler:
    """Deterministic for the same input, policy, list versions and clearances: no clock, no randomness.

    `screening` is the service's runtime (current lists, swapped by updates, and clearances) or, in
    tests and benchmarks, a bare `Screener`."""

    def __init__(self, settings: Settings, screening: Screener | ScreeningRuntime) -> None:
        self.settings = settings
        self.screening = screening

    async def _screen(self, classified: ClassifiedOrder) -> Screening:
        if isinstance(self.screening, ScreeningRuntime):
            # An order screened before the clearances published earlier are read would be held for
            # a match a reviewer has already cleared.
            await self.screening.clearances_loaded()
        return self.screening.screen_parties(classified.order.parties)

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        # A ValidationError here is the runner's cue to dead-letter the message.
        classified = ClassifiedOrder.model_validate(decode_json(message))
        with log_context(order_id=classified.order_id, event_id=classified.event_id):
            screened = ScreenedOrder(
                **derive(classified, STAGE),
                classification=classified.classification,
                screening=await self._screen(classified),
            )
        return [
            Outgoing(
                topic=self.settings.topic(TOPIC_SCREENED),
                key=classified.order_id,
                value=envelope_dump(screened),
            )
        ]
