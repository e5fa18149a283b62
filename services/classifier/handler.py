"""orders.submitted.v1 -> classification per line -> orders.classified.v1."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from services.classifier import service
from services.classifier.catalog import CatalogSnapshot
from services.classifier.reference import ReferenceData
from shared.codec import read_event, require_key
from shared.events import TOPIC_CLASSIFIED, SubmittedOrder, envelope_dump
from shared.kafka import Incoming, Outgoing
from shared.logging import log_context
from shared.settings import Settings

SERVICE = service.SERVICE

log = logging.getLogger("exportwatch.classifier")


@dataclass(frozen=True)
class ClassifierHandler:
    settings: Settings
    # The CCL and suggestion index in force (swapped whole by an eCFR update) and the catalog
    # snapshot current at the time of the call (refreshed by the API after writes); both versions
    # are stamped on the output, so a re-delivery after an update is explainable.
    reference: Callable[[], ReferenceData]
    catalog: Callable[[], CatalogSnapshot]
    # Set once the catalog versions other instances stored are known (feed.py); None: no feed.
    catalog_caught_up: asyncio.Event | None = None

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        order = read_event(message, SubmittedOrder)
        require_key(message, order.order_id)
        if self.catalog_caught_up is not None:
            # A line classified before the catalog is complete would say UNCLASSIFIED (or an older
            # ECCN) for a SKU another instance has classified.
            await self.catalog_caught_up.wait()
        with log_context(order_id=order.order_id, event_id=order.event_id):
            classified = service.classify_order(
                order=order, reference=self.reference(), snapshot=self.catalog()
            )
            classification = classified.classification
            statuses = Counter(line.status for line in classification.lines)
            log.info("classified %d lines: %s", len(classification.lines), dict(sorted(statuses.items())))
        return [
            Outgoing(
                topic=self.settings.topic(TOPIC_CLASSIFIED),
                key=order.order_id,
                value=envelope_dump(classified),
            )
        ]
