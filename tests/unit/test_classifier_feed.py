"""The catalog feed's rules without a broker: which version an instance keeps, what waits for the
broker, and what the follower refuses (the two-instance test on the real broker is
tests/integration/test_classifier_instances.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.classifier.catalog import CatalogProduct, CatalogStore
from services.classifier.feed import CatalogFeed, CatalogFollower, entry_of, product_of
from shared.db import make_engine
from shared.events import envelope_dump
from shared.kafka import Incoming, Outgoing, PoisonMessage, PublishError

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def product(version: int, eccn: str = "EAR99", sku: str = "SKU-1") -> CatalogProduct:
    return CatalogProduct(sku, version, eccn, "A. Keller", T0, "why", ("CCATS G123",))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CatalogStore]:
    opened = CatalogStore(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"))
    await opened.open()
    yield opened
    await opened.close()


def message(key: str | None, value: bytes | None) -> Incoming:
    return Incoming("catalog.products.v1", 0, 7, key.encode() if key else None, value, 0)


def test_an_entry_round_trips_between_product_and_event() -> None:
    original = product(3, "6A003.b.4.b")
    assert product_of(entry_of(original)) == original
    assert entry_of(original).model_dump(by_alias=True)["schema"] == "catalog.product.v1"


async def test_a_newer_version_replaces_an_older_one_and_never_the_reverse(store: CatalogStore) -> None:
    assert store.apply(product(2, "5A992.c"))
    before = store.snapshot.version
    assert not store.apply(product(1, "EAR99"))
    assert not store.apply(product(2, "5A992.c"))
    assert store.snapshot.version == before
    assert store.apply(product(3, "5A002.a"))
    assert store.snapshot.eccn_by_sku == {"SKU-1": "5A002.a"}
    assert store.snapshot.version != before


async def test_a_stored_version_is_in_the_catalog_at_once_and_announced(tmp_path: Path) -> None:
    announced: list[CatalogProduct] = []

    async def announce(products: Sequence[CatalogProduct]) -> None:
        announced.extend(products)

    store = CatalogStore(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"), announce=announce)
    await store.open()
    stored, created = await store.put(
        sku="SKU-9", eccn="EAR99", classified_by="A", rationale=None, classified_at=T0
    )
    again, created_again = await store.put(
        sku="SKU-9", eccn="EAR99", classified_by="A", rationale=None, classified_at=T0
    )
    assert (created, created_again) == (True, False)
    assert announced == [stored] and store.current("SKU-9") == stored == again
    await store.close()


async def test_what_the_broker_did_not_take_waits_and_goes_out_newest_first() -> None:
    sent: list[Outgoing] = []
    broker_up = False

    async def publish(outgoing: Outgoing) -> None:
        if not broker_up:
            raise PublishError("Kafka is not connected")
        sent.append(outgoing)

    feed = CatalogFeed(publish, "p.catalog.products.v1")
    await feed.announce([product(1)])
    await feed.announce([product(2, "5A992.c"), product(1, sku="SKU-2")])
    assert feed.unpublished == 2 and sent == []
    broker_up = True
    await feed.flush()
    assert feed.unpublished == 0
    assert [(o.topic, o.key) for o in sent] == [
        ("p.catalog.products.v1", "SKU-1"),
        ("p.catalog.products.v1", "SKU-2"),
    ]
    assert sent[0].value == envelope_dump(entry_of(product(2, "5A992.c")))


async def test_the_follower_applies_an_entry_under_its_own_sku(store: CatalogStore) -> None:
    follower = CatalogFollower(store)
    assert await follower(message("SKU-1", envelope_dump(entry_of(product(4, "3A001.a.7"))))) == []
    assert store.current("SKU-1") == product(4, "3A001.a.7")


async def test_the_follower_refuses_a_tombstone_another_key_and_a_bad_field(store: CatalogStore) -> None:
    follower = CatalogFollower(store)
    with pytest.raises(
        PoisonMessage, match=r"tombstone for SKU 'SKU-1': a SKU leaves the catalog by a version"
    ):
        await follower(message("SKU-1", None))
    with pytest.raises(PoisonMessage, match="the Kafka key 'SKU-2' is not the sku 'SKU-1'") as refused:
        await follower(message("SKU-2", envelope_dump(entry_of(product(1)))))
    assert refused.value.error_type == "KeyMismatch"
    with pytest.raises(ValidationError, match="version"):
        await follower(
            message(
                "SKU-1",
                b'{"sku": "SKU-1", "version": 0, "eccn": "EAR99", "classified_by": "A", '
                b'"classified_at": "2026-12-01T00:00:00Z"}',
            )
        )
    with pytest.raises(PoisonMessage, match=r"version: NaN is not a JSON number"):
        await follower(message("SKU-1", b'{"sku": "SKU-1", "version": NaN}'))
    assert store.current("SKU-1") is None


async def test_a_withdrawn_version_from_another_instance_takes_the_sku_out(store: CatalogStore) -> None:
    follower = CatalogFollower(store)
    await follower(message("SKU-1", envelope_dump(entry_of(product(1, "3A001.a.7")))))
    assert store.snapshot.eccn_by_sku == {"SKU-1": "3A001.a.7"}
    withdrawn = CatalogProduct("SKU-1", 2, "3A001.a.7", "M. Ortiz", T0, "discontinued", (), withdrawn=True)
    assert product_of(entry_of(withdrawn)) == withdrawn
    await follower(message("SKU-1", envelope_dump(entry_of(withdrawn))))
    assert store.snapshot.eccn_by_sku == {} and store.current("SKU-1") == withdrawn
    # An older version read late does not bring it back; a newer classification does.
    await follower(message("SKU-1", envelope_dump(entry_of(product(1, "3A001.a.7")))))
    assert store.snapshot.eccn_by_sku == {}
    await follower(message("SKU-1", envelope_dump(entry_of(product(3, "EAR99")))))
    assert store.snapshot.eccn_by_sku == {"SKU-1": "EAR99"}
