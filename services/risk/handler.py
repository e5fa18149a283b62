"""orders.screened.v1 -> decision -> orders.decided.v1."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.risk import service
from services.risk.domain import ReferenceData, RiskPolicy
from shared import metrics
from shared.events import TOPIC_DECIDED, ScreenedOrder, envelope_dump
from shared.kafka import Incoming, Outgoing, decode_json
from shared.logging import log_context
from shared.settings import Settings

SERVICE = service.SERVICE

log = logging.getLogger("exportwatch.risk")


@dataclass(frozen=True)
class RiskHandler:
    settings: Settings
    refdata: ReferenceData
    policy: RiskPolicy

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        screened = ScreenedOrder.model_validate(decode_json(message))
        with log_context(order_id=screened.order_id, event_id=screened.event_id):
            decided = service.decide_order(screened=screened, refdata=self.refdata, policy=self.policy)
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
