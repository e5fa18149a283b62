"""orders.screened.v1 -> decision (and the licence ledger's draw-downs) -> orders.decided.v1."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.risk import service
from services.risk.service import RiskRuntime
from shared import metrics
from shared.codec import read_event
from shared.events import TOPIC_DECIDED, ScreenedOrder, envelope_dump
from shared.kafka import Incoming, Outgoing, require_key
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
            decision = decided.decision
            metrics.DECISIONS.labels(decision.decision).inc()
            log.info(
                "decided %s (risk score %d; %s)",
                decision.decision,
                decision.risk_score,
                ", ".join(sorted({r.code for r in decision.reasons})),
            )
        return [
            Outgoing(
                topic=self.settings.topic(TOPIC_DECIDED), key=screened.order_id, value=envelope_dump(decided)
            )
        ]
