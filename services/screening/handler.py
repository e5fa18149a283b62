"""orders.classified.v1 -> screen every party of the order -> orders.screened.v1."""

from __future__ import annotations

from services.screening.domain import Screener
from shared.events import (
    TOPIC_SCREENED,
    ClassifiedOrder,
    ScreenedOrder,
    derived_event_id,
    envelope_dump,
)
from shared.kafka import Incoming, Outgoing, decode_json
from shared.logging import log_context
from shared.settings import Settings

STAGE = "screening"


class ScreeningHandler:
    """Deterministic for the same input, policy and list versions: no clock, no randomness."""

    def __init__(self, settings: Settings, screener: Screener) -> None:
        self.settings = settings
        self.screener = screener

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        # A ValidationError here is the runner's cue to dead-letter the message.
        classified = ClassifiedOrder.model_validate(decode_json(message))
        with log_context(order_id=classified.order_id, event_id=classified.event_id):
            screened = ScreenedOrder(
                event_id=derived_event_id(classified.event_id, STAGE),
                order_id=classified.order_id,
                causation_id=classified.event_id,
                produced_by=STAGE,
                order=classified.order,
                classification=classified.classification,
                screening=self.screener.screen_parties(classified.order.parties),
            )
        return [
            Outgoing(
                topic=self.settings.topic(TOPIC_SCREENED),
                key=classified.order_id,
                value=envelope_dump(screened),
            )
        ]
