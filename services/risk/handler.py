"""orders.screened.v1 -> decision (and the licence ledger's draw-downs) -> orders.decided.v1."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from services.risk import service
from services.risk.service import RiskRuntime
from shared import metrics
from shared.codec import read_event, require_key
from shared.events import TOPIC_DECIDED, DecidedOrder, ScreenedOrder, envelope_dump
from shared.kafka import Incoming, Outgoing, PoisonMessage
from shared.logging import log_context
from shared.settings import Settings

SERVICE = service.SERVICE

log = logging.getLogger("exportwatch.risk")


@dataclass(frozen=True)
class RiskHandler:
    """Reads the runtime's policy and Part 746 once per order, so a reload between two orders
    never mixes two versions within one decision."""

    settings: Settings
    runtime: RiskRuntime

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        screened = read_event(message, ScreenedOrder)
        require_key(message, screened.order_id)
        with log_context(order_id=screened.order_id, event_id=screened.event_id):
            decided = await service.decide_order(screened=screened, runtime=self.runtime)
        return self._publish(screened, decided)

    async def handle_batch(self, messages: Sequence[Incoming]) -> list[list[Outgoing] | None]:
        """A whole poll, the licence ledger settled in one transaction (service.decide_orders). A
        message that does not decode or validate is left (None) to __call__, which dead-letters
        it with its usual error."""
        parsed: list[ScreenedOrder | None] = []
        for message in messages:
            try:
                screened = read_event(message, ScreenedOrder)
                require_key(message, screened.order_id)
            except (PoisonMessage, ValidationError):
                parsed.append(None)
                continue
            parsed.append(screened)
        valid = [screened for screened in parsed if screened is not None]
        decided = iter(await service.decide_orders(orders=valid, runtime=self.runtime) if valid else [])
        return [None if screened is None else self._publish(screened, next(decided)) for screened in parsed]

    def _publish(self, screened: ScreenedOrder, decided: DecidedOrder) -> list[Outgoing]:
        decision = decided.decision
        metrics.DECISIONS.labels(decision.decision).inc()
        with log_context(order_id=screened.order_id, event_id=screened.event_id):
            log.info(
                "decided %s (risk score %d; %s)",
                decision.decision,
                decision.risk_score,
                ", ".join(sorted({r.code for r in decision.reasons})),
            )
        return [
            Outgoing(
                topic=self.settings.topic(TOPIC_DECIDED), key=decided.order_id, value=envelope_dump(decided)
            )
        ]
