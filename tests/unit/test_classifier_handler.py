"""orders.submitted.v1 in, orders.classified.v1 out: deterministic, keyed by order, bad input refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from services.classifier.catalog import CatalogSnapshot
from services.classifier.handler import ClassifierHandler
from shared.events import TOPIC_CLASSIFIED, ClassifiedOrder, derived_event_id
from shared.kafka import Incoming, PoisonMessage
from shared.settings import Settings
from tests import classifier_support as support

SNAPSHOT = CatalogSnapshot(products={}, eccn_by_sku={"TC-640": "6A003.b.4.b"}, version="1-skus+sha256:abc")


@pytest.fixture(scope="module")
def handler() -> ClassifierHandler:
    return ClassifierHandler(
        settings=Settings(topic_prefix="t1."),
        ccl=support.ccl(),
        catalog=lambda: SNAPSHOT,
        suggest=support.suggestions().suggest,
    )


def incoming(value: bytes | None) -> Incoming:
    return Incoming("t1.orders.submitted.v1", 0, 7, b"SO-TEST-0001", value, 0)


def encoded(order: dict[str, Any]) -> bytes:
    return json.dumps(order).encode()


ORDER = support.submitted_order(
    support.order_line(1, "TC-640", "Uncooled thermal imaging camera", eccn="EAR99"),
    support.order_line(2, "NS-2448", "Ethernet switch", eccn="5a992.c"),
    support.order_line(3, "CUSTOM-1", "Digital storage oscilloscope"),
)


async def test_order_is_classified_per_line_and_published_keyed_by_order(handler: ClassifierHandler) -> None:
    [out] = await handler(incoming(encoded(ORDER)))
    assert (out.topic, out.key) == ("t1." + TOPIC_CLASSIFIED, "SO-TEST-0001")
    event = ClassifiedOrder.model_validate_json(out.value)
    assert event.event_id == derived_event_id(support.SUBMITTED_EVENT_ID, "classifier")
    assert (event.causation_id, event.produced_by) == (support.SUBMITTED_EVENT_ID, "classifier")
    assert event.order.lines[0].eccn == "EAR99"  # the submitted order travels unchanged
    assert event.classification.ccl_version == support.ccl().version
    assert event.classification.catalog_version == SNAPSHOT.version
    assert [(line.source, line.status, line.eccn) for line in event.classification.lines] == [
        ("catalog", "classified", "6A003.b.4.b"),
        ("erp", "classified", "5A992.c"),
        ("none", "unclassified", None),
    ]
    assert event.classification.lines[0].discrepancy is not None


async def test_redelivered_order_gives_byte_identical_output(handler: ClassifierHandler) -> None:
    first = await handler(incoming(encoded(ORDER)))
    second = await handler(incoming(encoded(ORDER)))
    assert first == second


async def test_undecodable_message_is_poison(handler: ClassifierHandler) -> None:
    with pytest.raises(PoisonMessage, match="not valid JSON"):
        await handler(incoming(b"{not json"))


async def test_order_breaking_the_input_contract_fails_validation(handler: ClassifierHandler) -> None:
    bad = support.submitted_order(support.order_line(1, "X", "thing"))
    bad["lines"][0]["quantity"] = 0
    with pytest.raises(ValidationError, match="quantity"):
        await handler(incoming(encoded(bad)))
