"""The input contract `orders.submitted.v1`, exactly as docs/architecture.md states it, and the
envelope every later stage derives from it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.codec import decode_json
from shared.events import (
    Classification,
    ClassifiedOrder,
    DecidedOrder,
    SubmittedOrder,
    derive,
    derived_event_id,
    envelope_dump,
    most_severe,
)
from shared.kafka import Incoming, PoisonMessage, describe_validation_error

DESIGN_EXAMPLE: dict[str, Any] = {
    "schema": "order.submitted.v1",
    "event_id": "5f0c3a0e-8d57-4a3e-9a53-0b8c9e0d2f11",
    "order_id": "SO-2026-000123",
    "occurred_at": "2026-11-30T12:00:00Z",
    "source": "erp-eu1",
    "ship_from_country": "US",
    "destination_country": "DE",
    "parties": [
        {
            "role": "buyer",
            "name": "Muster Maschinenbau GmbH",
            "address": "Hauptstr. 1",
            "city": "Stuttgart",
            "country": "DE",
        },
        {"role": "ultimate_consignee", "name": "Muster Maschinenbau GmbH", "country": "DE"},
    ],
    "lines": [
        {
            "line_no": 1,
            "sku": "TC-640",
            "description": "Uncooled thermal imaging camera, 640x512",
            "quantity": 2,
            "unit_price": "1250.00",
            "currency": "USD",
            "hs_code": "8525.89",
            "eccn": "6A003.b.4.b",
        }
    ],
    "end_use": "Predictive maintenance of packaging lines",
    "transit_countries": ["NL"],
    "payment_terms": "NET30",
    "incoterms": "DAP",
}


def changed(path: str, value: Any) -> dict[str, Any]:
    order = copy.deepcopy(DESIGN_EXAMPLE)
    target: Any = order
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return order


_DELETE = object()


def error_of(order: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        SubmittedOrder.model_validate(order)
    return describe_validation_error(info.value)


def test_the_design_example_is_valid_and_round_trips_unchanged() -> None:
    order = SubmittedOrder.model_validate(DESIGN_EXAMPLE)
    again = json.loads(envelope_dump(order))
    for key, value in DESIGN_EXAMPLE.items():
        assert again[key] == value, key
    assert order.lines[0].eccn == "6A003.b.4.b"  # paragraphs keep their CCL case


def test_unknown_fields_are_kept_but_ignored() -> None:
    order = SubmittedOrder.model_validate({**DESIGN_EXAMPLE, "erp_batch": "B-7", "priority": 3})
    dumped = json.loads(envelope_dump(order))
    assert dumped["erp_batch"] == "B-7" and dumped["priority"] == 3


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("destination_country", "XX", "destination_country: 'XX' is not an ISO 3166-1 alpha-2"),
        ("destination_country", "de", "destination_country: 'de' is not an ISO 3166-1 alpha-2"),
        ("parties.0.country", "Germany", "parties.0.country: 'Germany' is not an ISO 3166-1 alpha-2"),
        ("lines.0.unit_price", "12,50", "lines.0.unit_price: '12,50' is not a non-negative decimal string"),
        ("lines.0.unit_price", 1250.0, "lines.0.unit_price"),
        ("lines.0.currency", "EURO", "lines.0.currency: 'EURO' is not an ISO 4217"),
        ("lines.0.quantity", 0, "lines.0.quantity"),
        ("parties.0.role", "reseller", "parties.0.role"),
        ("parties.0.name", "   ", "parties.0.name: must not be empty"),
        ("parties.0.name", "ACME\x00Corp", "contains control characters"),
        ("occurred_at", "2026-11-30T12:00:00", "occurred_at: '2026-11-30T12:00:00' has no time zone"),
        ("event_id", "not-a-uuid", "event_id"),
        ("schema", "order.submitted.v2", "schema"),
        ("transit_countries", ["NL", "ZZ"], "transit_countries.1: 'ZZ'"),
        ("lines", [], "lines: List should have at least 1 item"),
    ],
)
def test_invalid_orders_are_refused_naming_the_field_and_value(path: str, value: Any, expected: str) -> None:
    assert expected in error_of(changed(path, value))


def test_an_order_needs_a_buyer_or_an_ultimate_consignee() -> None:
    order = changed("parties", [{"role": "end_user", "name": "Someone", "country": "DE"}])
    assert "must include a 'buyer' or an 'ultimate_consignee'" in error_of(order)


def test_line_numbers_must_be_unique() -> None:
    order = changed("lines", [DESIGN_EXAMPLE["lines"][0], DESIGN_EXAMPLE["lines"][0]])
    assert "line_no 1 appears more than once" in error_of(order)


def test_missing_required_fields_are_named() -> None:
    assert "order_id: Field required" in error_of(changed("order_id", _DELETE))


@pytest.mark.parametrize(
    ("raw", "error_type"),
    [
        (b"\xff\xfe", "InvalidEncoding"),
        (b"{not json", "InvalidJson"),
        (b"[1, 2]", "InvalidJson"),
        (None, "EmptyMessage"),
    ],
)
def test_undecodable_messages_are_poison(raw: bytes | None, error_type: str) -> None:
    with pytest.raises(PoisonMessage) as info:
        decode_json(Incoming("orders.submitted.v1", 0, 7, b"SO-1", raw, 0))
    assert info.value.error_type == error_type


def test_derived_event_ids_are_deterministic_per_stage() -> None:
    first = derived_event_id("5f0c3a0e-8d57-4a3e-9a53-0b8c9e0d2f11", "classifier")
    assert first == derived_event_id("5f0c3a0e-8d57-4a3e-9a53-0b8c9e0d2f11", "classifier")
    assert first != derived_event_id("5f0c3a0e-8d57-4a3e-9a53-0b8c9e0d2f11", "screening")


def test_the_most_severe_decision_wins() -> None:
    assert most_severe(["RELEASE", "LICENSE_REQUIRED", "HOLD"]) == "HOLD"
    assert most_severe(["HOLD", "BLOCK", "LICENSE_REQUIRED"]) == "BLOCK"
    assert most_severe(["RELEASE", "LICENSE_REQUIRED"]) == "LICENSE_REQUIRED"
    assert most_severe([]) == "RELEASE"


def test_a_decided_envelope_refuses_a_decision_outside_the_four() -> None:
    with pytest.raises(ValidationError):
        DecidedOrder.model_validate(
            {
                "schema": "order.decided.v1",
                "event_id": "e",
                "order_id": "SO-2026-000123",
                "causation_id": "c",
                "produced_by": "risk",
                "order": DESIGN_EXAMPLE,
                "classification": {"ccl_version": "v", "lines": []},
                "screening": {
                    "policy_version": "p",
                    "review_threshold": 0.8,
                    "block_threshold": 0.9,
                    "lists": [],
                    "parties": [],
                },
                "decision": {"decision": "MAYBE", "risk_score": 0, "reasons": [], "policy_version": "p"},
            }
        )


def test_the_order_event_id_is_a_uuid_kept_as_its_canonical_text() -> None:
    upper = SubmittedOrder.model_validate(DESIGN_EXAMPLE | {"event_id": DESIGN_EXAMPLE["event_id"].upper()})
    assert upper.event_id == DESIGN_EXAMPLE["event_id"] and isinstance(upper.event_id, str)
    with pytest.raises(ValidationError) as info:
        SubmittedOrder.model_validate(DESIGN_EXAMPLE | {"event_id": "order-17"})
    assert "event_id: 'order-17' is not a UUID" in describe_validation_error(info.value)


def test_derive_gives_the_next_stage_its_envelope_from_the_order_or_an_envelope() -> None:
    order = SubmittedOrder.model_validate(DESIGN_EXAMPLE)
    classified = ClassifiedOrder(
        **derive(order, "classifier"), classification=Classification(ccl_version="v", lines=[])
    )
    assert (classified.event_id, classified.causation_id, classified.produced_by) == (
        derived_event_id(order.event_id, "classifier"),
        order.event_id,
        "classifier",
    )
    assert classified.order is order and classified.order_id == order.order_id
    header = derive(classified, "screening")
    assert (header["causation_id"], header["order"]) == (classified.event_id, order)
    assert header["event_id"] == derived_event_id(classified.event_id, "screening")
    assert classified.submitted_event_id == order.event_id


def test_an_envelope_naming_two_orders_is_refused_by_the_model() -> None:
    envelope = {
        "schema": "order.classified.v1",
        "event_id": "e",
        "order_id": "SO-2026-999999",
        "causation_id": "c",
        "produced_by": "classifier",
        "order": DESIGN_EXAMPLE,
        "classification": {"ccl_version": "v", "lines": []},
    }
    with pytest.raises(ValidationError) as info:
        ClassifiedOrder.model_validate(envelope)
    assert "order_id 'SO-2026-999999' differs from order.order_id 'SO-2026-000123'" in (
        describe_validation_error(info.value)
    )
