"""ScreeningHandler: a classified order in, the same envelope with every party screened out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from services.screening.handler import ScreeningHandler
from shared.events import TOPIC_SCREENED, ClassifiedOrder, ScreenedOrder, derived_event_id
from shared.kafka import Incoming, PoisonMessage
from shared.policy import load_policy
from shared.settings import Settings
from tests.screening_support import loaded_screening

SUBMITTED_EVENT_ID = "5f0c3a0e-8d57-4a3e-9a53-0b8c9e0d2f11"
CLASSIFIED_EVENT_ID = "0b7e2f4c-8f3a-5d1e-9c2b-1a2b3c4d5e6f"


def classified_order() -> dict[str, Any]:
    return {
        "schema": "order.classified.v1",
        "event_id": CLASSIFIED_EVENT_ID,
        "order_id": "SO-2026-000123",
        "causation_id": SUBMITTED_EVENT_ID,
        "produced_by": "classifier",
        "order": {
            "schema": "order.submitted.v1",
            "event_id": SUBMITTED_EVENT_ID,
            "order_id": "SO-2026-000123",
            "occurred_at": "2026-11-30T12:00:00Z",
            "source": "erp-eu1",
            "ship_from_country": "US",
            "destination_country": "AE",
            "parties": [
                {"role": "buyer", "name": "Muster Maschinenbau GmbH", "country": "DE"},
                {"role": "ultimate_consignee", "name": "DENA TANKERS FZE", "country": "AE"},
                {
                    "role": "end_user",
                    "name": "Chengdu Latest Electronics Technology Company",
                    "country": "CN",
                },
                {"role": "freight_forwarder", "name": "Dandong Nondestructive Electronics", "country": "CN"},
                {"role": "purchaser_agent", "name": "DENA TANKERS FZE", "country": "AE"},
            ],
            "lines": [
                {
                    "line_no": 1,
                    "sku": "TC-640",
                    "description": "Uncooled thermal imaging camera, 640x512",
                    "quantity": 2,
                    "unit_price": "1250.00",
                    "currency": "USD",
                    "eccn": "6A003.b.4.b",
                }
            ],
        },
        "classification": {
            "ccl_version": "sha256:0123456789ab",
            "lines": [
                {
                    "line_no": 1,
                    "sku": "TC-640",
                    "eccn": "6A003.B.4.B",
                    "source": "erp",
                    "status": "classified",
                    "reasons_for_control": ["NS", "RS", "AT"],
                }
            ],
        },
    }


def incoming(value: bytes) -> Incoming:
    return Incoming("t.orders.classified.v1", 0, 7, b"SO-2026-000123", value, 0)


@pytest.fixture(scope="module")
def handler() -> ScreeningHandler:
    _, screener = loaded_screening()
    return ScreeningHandler(Settings(topic_prefix="t."), screener)


async def test_classified_order_becomes_screened_order_with_every_party_screened(
    handler: ScreeningHandler,
) -> None:
    [out] = await handler(incoming(json.dumps(classified_order()).encode()))

    assert out.topic == f"t.{TOPIC_SCREENED}"
    assert out.key == "SO-2026-000123"
    screened = ScreenedOrder.model_validate_json(out.value)
    assert screened.event_id == derived_event_id(CLASSIFIED_EVENT_ID, "screening")
    assert screened.causation_id == CLASSIFIED_EVENT_ID
    assert screened.produced_by == "screening"
    assert screened.order == ClassifiedOrder.model_validate(classified_order()).order
    assert screened.classification.ccl_version == "sha256:0123456789ab"

    parties = screened.screening.parties
    assert [p.role for p in parties] == [
        "buyer",
        "ultimate_consignee",
        "end_user",
        "freight_forwarder",
        "purchaser_agent",
    ]
    found = {p.role: [(m.list_id, m.effect, m.score) for m in p.matches] for p in parties}
    assert found["buyer"] == []
    assert found["ultimate_consignee"] == [("SDN", "block", 1.0)]
    assert found["end_user"] == [("EL", "licence", 1.0)]
    assert found["freight_forwarder"] == [("UVL", "review", 1.0)]
    assert found["purchaser_agent"] == found["ultimate_consignee"]

    screening = screened.screening
    policy = load_policy(Settings().policy_file)
    assert screening.policy_version == policy.version
    thresholds = policy.section("screening")
    assert (screening.review_threshold, screening.block_threshold) == (
        thresholds["review_threshold"],
        thresholds["block_threshold"],
    )
    assert {s.list_id for s in screening.lists} >= {"SDN", "EL", "DPL", "UVL", "MEU"}


async def test_same_input_gives_byte_identical_output(handler: ScreeningHandler) -> None:
    message = incoming(json.dumps(classified_order()).encode())
    first, second = await handler(message), await handler(message)
    assert first == second


async def test_order_violating_the_contract_raises_validation_error_for_dead_lettering(
    handler: ScreeningHandler,
) -> None:
    bad = classified_order()
    bad["order"]["parties"][0]["country"] = "XX"
    with pytest.raises(ValidationError, match="is not an ISO 3166-1 alpha-2 country code"):
        await handler(incoming(json.dumps(bad).encode()))


async def test_message_that_is_not_json_is_a_poison_message(handler: ScreeningHandler) -> None:
    with pytest.raises(PoisonMessage, match="not valid JSON"):
        await handler(incoming(b"{not json"))
