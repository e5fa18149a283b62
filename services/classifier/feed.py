"""The catalog as every classifier instance holds it: catalog.products.v1 out and in.

A new version of a SKU is stored in the catalog database first (catalog.py: the database is
authoritative and keeps the history). The instance that stored it then publishes the version on the
compacted topic `catalog.products.v1`, keyed by SKU (`CatalogFeed`); every instance, that one too,
follows the topic in full without a consumer group (`CatalogFollower`, on the shared consumer loop)
and applies what it reads to its in-memory catalog. So a product classified through one instance is
used by all of them at once, not after their next restart; an instance that starts reads the topic
from the beginning and is ready only once it caught up.

A version the broker did not take (broker away, the app running without Kafka) waits here and is
offered again every few seconds; the database has it already, and it is in this instance's catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Gauge

from services.classifier.catalog import CatalogProduct, CatalogStore
from shared.catalog_events import CatalogEntry
from shared.codec import read_event
from shared.events import envelope_dump
from shared.kafka import Incoming, Outgoing, PoisonMessage, Publish, PublishError
from shared.service import Periodic

log = logging.getLogger("exportwatch.classifier.feed")

UNPUBLISHED = Gauge(
    "exportwatch_classifier_catalog_unpublished",
    "Catalog versions stored but not yet taken by the broker (catalog.products.v1)",
)
# How often versions the broker did not take are offered again.
RETRY_SECONDS = 5.0


def entry_of(product: CatalogProduct) -> CatalogEntry:
    return CatalogEntry(
        sku=product.sku,
        version=product.version,
        eccn=product.eccn,
        classified_by=product.classified_by,
        classified_at=product.classified_at,
        rationale=product.rationale,
        reference_documents=list(product.reference_documents),
        withdrawn=product.withdrawn,
    )


def product_of(entry: CatalogEntry) -> CatalogProduct:
    return CatalogProduct(
        sku=entry.sku,
        version=entry.version,
        eccn=entry.eccn,
        classified_by=entry.classified_by,
        classified_at=entry.classified_at,
        rationale=entry.rationale,
        reference_documents=tuple(entry.reference_documents),
        withdrawn=entry.withdrawn,
    )


class CatalogFeed:
    """Publishes every version this instance stored; what the broker did not take waits (the
    newest per SKU) until `flush` gets it through."""

    def __init__(self, publish: Publish, topic: str) -> None:
        self._publish = publish
        self.topic = topic
        self._waiting: dict[str, CatalogProduct] = {}

    @property
    def unpublished(self) -> int:
        return len(self._waiting)

    async def announce(self, products: Sequence[CatalogProduct]) -> None:
        for product in products:
            held = self._waiting.get(product.sku)
            if held is None or held.version <= product.version:
                self._waiting[product.sku] = product
        await self.flush()

    async def flush(self) -> None:
        try:
            for sku, product in list(self._waiting.items()):
                await self._publish(Outgoing(self.topic, sku, envelope_dump(entry_of(product))))
                if self._waiting.get(sku) is product:
                    del self._waiting[sku]
        except PublishError as exc:
            log.warning("%d catalog versions wait for the broker: %s", len(self._waiting), exc)
        finally:
            UNPUBLISHED.set(len(self._waiting))

    def retrying(self) -> Periodic:
        """The background retry of what waits (started and stopped with the runtime)."""
        return Periodic("classifier-catalog-feed", RETRY_SECONDS, self.flush)


@dataclass(frozen=True)
class CatalogFollower:
    """Kafka -> the in-memory catalog. A message that is not a catalog entry raises, and the consumer
    loop dead-letters it like any other."""

    store: CatalogStore

    async def __call__(self, message: Incoming) -> list[Outgoing]:
        key = message.key.decode("utf-8", "replace") if message.key is not None else None
        if message.value is None:
            # 15 CFR 762.6: the classification behind a past decision is kept five years, so a SKU
            # leaves the catalog by a withdrawn version, and no instance publishes a tombstone.
            raise PoisonMessage(
                "EmptyMessage",
                f"key: a tombstone for SKU {key!r}: a SKU leaves the catalog by a version with "
                "withdrawn: true (every version is kept), not by a tombstone",
            )
        entry = read_event(message, CatalogEntry)
        if key != entry.sku:
            raise PoisonMessage(
                "KeyMismatch",
                f"key: the Kafka key {key!r} is not the sku {entry.sku!r} "
                "(catalog.products.v1 is keyed by SKU: compaction keeps the newest version per key)",
            )
        if self.store.apply(product_of(entry)):
            what = "withdrawn" if entry.withdrawn else entry.eccn
            log.info("catalog: %s version %d (%s) applied", entry.sku, entry.version, what)
        return []
