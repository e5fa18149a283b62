"""One pass per event (shared/codec.py): every stage's input read by pydantic's JSON parser gives
the very event, and the very refusal, that json.loads plus validation gave (decode_json)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.classifier import service as classifier
from services.classifier.catalog import CatalogSnapshot
from shared.codec import decode_json, read_event
from shared.events import ClassifiedOrder, ScreenedOrder, SubmittedOrder, envelope_dump
from shared.kafka import Incoming, PoisonMessage
from tests.classifier_support import order_line, reference, submitted_order


def incoming(value: bytes | None, topic: str = "orders.submitted.v1") -> Incoming:
    return Incoming(topic, 0, 1, b"SO-TEST-0001", value, 0)


def two_passes(message: Incoming, model: type[BaseModel]) -> BaseModel:
    """What every stage did before: json.loads (refusing what JSON has not), then validation."""
    return model.model_validate(decode_json(message))


def outcome(read: Callable[[], BaseModel]) -> tuple[str, str]:
    try:
        return ("event", read().model_dump_json(by_alias=True))
    except PoisonMessage as exc:
        return (f"PoisonMessage {exc.error_type}", str(exc))
    except ValidationError as exc:
        return ("ValidationError", json.dumps(exc.errors(include_url=False), default=str))


def order() -> dict[str, Any]:
    return submitted_order(
        order_line(1, "TC-640", "Thermal camera", eccn="6A003.b.4.b"), order_line(2, "X", "Pump")
    )


def classified() -> dict[str, Any]:
    event = classifier.classify_order(
        order=SubmittedOrder.model_validate(order()),
        reference=reference(),
        snapshot=CatalogSnapshot(products={}, eccn_by_sku={}, version="0-skus"),
    )
    data: dict[str, Any] = json.loads(envelope_dump(event))
    return data


def with_token(data: dict[str, Any], path: list[str | int], token: str) -> bytes:
    """`data` as JSON with `token` written, unquoted, at `path` (a number JSON does not have)."""
    marker = "__TOKEN__"
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = marker
    return json.dumps(data).replace(f'"{marker}"', token).encode()


CASES: list[tuple[str, type[BaseModel], Callable[[], bytes | None]]] = [
    ("a valid order", SubmittedOrder, lambda: json.dumps(order()).encode()),
    ("a valid classified envelope", ClassifiedOrder, lambda: json.dumps(classified()).encode()),
    (
        "NaN in a field the ERP added to a party",
        SubmittedOrder,
        lambda: with_token(order(), ["parties", 0, "score"], "NaN"),
    ),
    (
        "Infinity in a line's own field",
        SubmittedOrder,
        lambda: with_token(order(), ["lines", 1, "weight"], "Infinity"),
    ),
    (
        "1e999 deep in an added field",
        SubmittedOrder,
        lambda: with_token(order(), ["erp_x"], '[1, {"y": 1e999}]'),
    ),
    ("-Infinity at the root", SubmittedOrder, lambda: with_token(order(), ["extra"], "-Infinity")),
    (
        "NaN as a suggestion's score",
        ClassifiedOrder,
        lambda: with_token(
            {
                **classified(),
                "classification": {
                    **classified()["classification"],
                    "lines": [
                        {
                            **classified()["classification"]["lines"][1],
                            "suggestions": [{"eccn": "2B350", "score": 0.5}],
                        }
                    ],
                },
            },
            ["classification", "lines", 0, "suggestions", 0, "score"],
            "NaN",
        ),
    ),
    (
        "NaN in an order inside an envelope",
        ScreenedOrder,
        lambda: with_token(classified(), ["order", "parties", 0, "n"], "NaN"),
    ),
    (
        "a string that says NaN",
        SubmittedOrder,
        lambda: with_token(order(), ["parties", 0, "note"], '"NaN 1e999 Infinity"'),
    ),
    ("not UTF-8", SubmittedOrder, lambda: b'{"order_id": "\xff"}'),
    ("not JSON", SubmittedOrder, lambda: b'{"order_id": '),
    ("empty", SubmittedOrder, lambda: b""),
    ("a JSON array", SubmittedOrder, lambda: b"[1, 2]"),
    ("a JSON string", ClassifiedOrder, lambda: b'"order"'),
    ("a tombstone", SubmittedOrder, lambda: None),
    (
        "a contract violation",
        SubmittedOrder,
        lambda: json.dumps({**order(), "destination_country": "XX"}).encode(),
    ),
    ("a float where a text is", SubmittedOrder, lambda: json.dumps({**order(), "source": 1.5}).encode()),
]


@pytest.mark.parametrize(("case", "model", "raw"), CASES, ids=[c[0] for c in CASES])
def test_one_pass_gives_the_event_or_the_refusal_two_passes_gave(
    case: str, model: type[BaseModel], raw: Callable[[], bytes | None]
) -> None:
    message = incoming(raw())
    one = outcome(lambda: read_event(message, model))
    assert one == outcome(lambda: two_passes(message, model))
    if "NaN" in case or "Infinity" in case or "1e999" in case:
        if case != "a string that says NaN":
            assert one[0] == "PoisonMessage InvalidJson", one


def test_the_refusal_names_the_field_and_the_token() -> None:
    with pytest.raises(PoisonMessage) as refused:
        read_event(incoming(with_token(order(), ["lines", 0, "weight_kg"], "1e999")), SubmittedOrder)
    assert str(refused.value) == (
        "lines.0.weight_kg: 1e999 is beyond a double's range: it would be read as Infinity, which JSON has not"
    )
