"""Properties of the event contract (shared/events.py), over orders Hypothesis makes up.

- Round trip: any order the contract accepts comes out of `envelope_dump` as it went in (every
  field, unknown ones included, nothing added), is accepted again as the same order, and travels
  unchanged inside the later stages' envelopes.
- Rejection: any single invalid value in an otherwise valid order is refused with a
  `ValidationError` whose description (the dead letter's error) names the field and the value.
- No other failure: whatever JSON object or bytes arrive, decoding and validating raise only the
  two errors the consumer loop turns into dead letters, never anything that would be retried
  (records retries forever: an unexpected exception there would stall a partition).
"""

from __future__ import annotations

import copy
import json
import string
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.codec import decode_json
from shared.events import (
    ISO_COUNTRIES,
    ISO_CURRENCIES,
    ClassifiedOrder,
    DeadLetter,
    DecidedOrder,
    ListsUpdated,
    ReviewedOrder,
    ScreenedOrder,
    ScreeningClearance,
    SubmittedOrder,
    envelope_dump,
)
from shared.kafka import Incoming, PoisonMessage, describe_validation_error
from tests.records_support import classified, decided, screened  # the stages' envelopes

CONTRACT = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

COUNTRIES = sorted(ISO_COUNTRIES)
CURRENCIES = sorted(ISO_CURRENCIES)
ROLES = [
    "buyer",
    "ultimate_consignee",
    "intermediate_consignee",
    "end_user",
    "freight_forwarder",
    "purchaser_agent",
]
NAMED = set(SubmittedOrder.model_fields) | {"schema"}


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


# Text the contract keeps as sent: no control characters, not blank, no surrounding blanks, NFC.
_letters = st.characters(codec="utf-8", categories=["L", "N", "P", "Zs", "S"])
text = st.text(_letters, min_size=1, max_size=40).map(lambda s: _nfc(" ".join(s.split()))).filter(bool)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(string.ascii_letters, max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
unknown_fields = st.dictionaries(
    st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).filter(
        lambda k: k not in NAMED | {"schema_"}
    ),
    json_values,
    max_size=3,
)
timezones = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))])


@st.composite
def parties(draw: st.DrawFn) -> list[dict[str, Any]]:
    first_role = draw(st.sampled_from(["buyer", "ultimate_consignee"]))
    roles = [first_role, *draw(st.lists(st.sampled_from(ROLES), max_size=3))]
    found = []
    for role in roles:
        party: dict[str, Any] = {
            "role": role,
            "name": draw(text),
            "country": draw(st.sampled_from(COUNTRIES)),
        }
        if draw(st.booleans()):
            party["city"] = draw(text)
        found.append(party)
    return found


@st.composite
def lines(draw: st.DrawFn) -> list[dict[str, Any]]:
    numbers = draw(st.lists(st.integers(1, 10_000), min_size=1, max_size=4, unique=True))
    found = []
    for number in numbers:
        line: dict[str, Any] = {
            "line_no": number,
            "sku": draw(text),
            "description": draw(text),
            "quantity": draw(st.integers(1, 10**9)),
            "unit_price": draw(st.from_regex(r"\A[0-9]{1,15}(\.[0-9]{1,6})?\Z")),
            "currency": draw(st.sampled_from(CURRENCIES)),
        }
        if draw(st.booleans()):
            line["eccn"] = draw(st.sampled_from(["EAR99", "6A003.b.4.b", "5A002.a", "3A001", "9X515.a"]))
        if draw(st.booleans()):
            line["hs_code"] = draw(st.from_regex(r"\A[0-9]{4}(\.[0-9]{2}){0,3}\Z"))
        extra = draw(unknown_fields)
        found.append(extra | line)
    return found


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    moment = draw(
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=timezones)
    )
    order: dict[str, Any] = {
        "schema": "order.submitted.v1",
        "event_id": str(draw(st.uuids())),
        "order_id": draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,40}\Z")),
        "occurred_at": moment.isoformat().replace("+00:00", "Z"),
        "source": draw(text),
        "ship_from_country": draw(st.sampled_from(COUNTRIES)),
        "destination_country": draw(st.sampled_from(COUNTRIES)),
        "parties": draw(parties()),
        "lines": draw(lines()),
    }
    if draw(st.booleans()):
        order["end_use"] = draw(text)
    if draw(st.booleans()):
        order["transit_countries"] = draw(st.lists(st.sampled_from(COUNTRIES), max_size=3))
    return order | draw(unknown_fields)


def _same_json(left: Any, right: Any) -> bool:
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@CONTRACT
@given(orders())
def test_an_accepted_order_comes_out_as_it_went_in(order: dict[str, Any]) -> None:
    model = SubmittedOrder.model_validate(order)
    wire = envelope_dump(model)
    out = json.loads(wire)
    # Every field as sent, nothing added; the time as the same instant (its spelling may differ).
    assert _moment(out.pop("occurred_at")) == _moment(order["occurred_at"])
    sent = {k: v for k, v in order.items() if k != "occurred_at"}
    assert _same_json(out, sent)
    # Accepted again as the very same order, and the wire form is stable from then on.
    again = SubmittedOrder.model_validate(decode_json(Incoming("orders.submitted.v1", 0, 0, None, wire, 0)))
    assert again == model
    assert envelope_dump(again) == wire


@CONTRACT
@given(orders())
def test_the_submitted_order_travels_unchanged_through_every_stage(order: dict[str, Any]) -> None:
    submitted_wire = json.loads(envelope_dump(SubmittedOrder.model_validate(order)))
    stages: list[tuple[dict[str, Any], type[BaseModel]]] = [
        (classified(order), ClassifiedOrder),
        (screened(order), ScreenedOrder),
        (decided(order), DecidedOrder),
    ]
    for envelope, model in stages:
        parsed = model.model_validate(json.loads(json.dumps(envelope)))
        assert json.loads(envelope_dump(parsed))["order"] == submitted_wire


# One invalid value at a time: (where, the value, what the description must say about the field).
INVALID: list[tuple[str, Any, str]] = [
    ("destination_country", "XX", "destination_country"),
    ("destination_country", "de", "destination_country"),
    ("ship_from_country", 49, "ship_from_country"),
    ("order_id", "", "order_id"),
    ("order_id", "-SO 1", "order_id"),
    ("order_id", "x" * 129, "order_id"),
    ("event_id", "not-a-uuid", "event_id"),
    ("occurred_at", "2026-11-30T12:00:00", "occurred_at"),
    ("occurred_at", "yesterday", "occurred_at"),
    ("source", "   ", "source"),
    ("source", "erp\x07", "source"),
    ("schema", "order.submitted.v2", "schema"),
    ("parties", [], "parties"),
    ("parties.0.country", "ZZ", "parties.0.country"),
    ("parties.0.role", "customer", "parties.0.role"),
    ("parties.0.name", "", "parties.0.name"),
    ("lines", [], "lines"),
    ("lines.0.quantity", 0, "lines.0.quantity"),
    ("lines.0.quantity", -3, "lines.0.quantity"),
    ("lines.0.quantity", "two", "lines.0.quantity"),
    ("lines.0.quantity", 1.5, "lines.0.quantity"),
    ("lines.0.unit_price", "12,50", "lines.0.unit_price"),
    ("lines.0.unit_price", 12.5, "lines.0.unit_price"),
    ("lines.0.unit_price", "-1.00", "lines.0.unit_price"),
    ("lines.0.currency", "usd", "lines.0.currency"),
    ("lines.0.currency", "XYZ", "lines.0.currency"),
    ("lines.0.line_no", 0, "lines.0.line_no"),
    ("lines.0.hs_code", "85", "lines.0.hs_code"),
    ("lines.0.eccn", "   ", "lines.0.eccn"),
    ("lines.0.description", "d" * 4001, "lines.0.description"),
    ("transit_countries", ["NL", "Holland"], "transit_countries.1"),
]


def _set(order: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(order)
    target: Any = changed
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return changed


@CONTRACT
@given(orders(), st.sampled_from(INVALID))
def test_an_invalid_value_is_refused_naming_the_field_and_the_value(
    order: dict[str, Any], invalid: tuple[str, Any, str]
) -> None:
    path, value, field = invalid
    bad = _set(order, path, value)
    with pytest.raises(ValidationError) as refused:
        SubmittedOrder.model_validate(bad)
    error = describe_validation_error(refused.value)
    assert f"{field}:" in error, error
    # The value as the description writes it: as JSON (the dead letter's input) or as Python's repr.
    # In a list, the element that is wrong is the one named.
    offending = value[-1] if isinstance(value, list) and value else value
    spellings = {json.dumps(offending, ensure_ascii=False)[:20], repr(offending)[:20]}
    if len(json.dumps(value)) < 100:
        assert any(spelling in error for spelling in spellings), error


@CONTRACT
@given(orders())
def test_an_order_without_buyer_and_consignee_or_with_a_repeated_line_is_refused(
    order: dict[str, Any],
) -> None:
    others = [dict(p, role="end_user") for p in order["parties"]]
    with pytest.raises(ValidationError) as refused:
        SubmittedOrder.model_validate(order | {"parties": others})
    assert "parties must include a 'buyer' or an 'ultimate_consignee'" in describe_validation_error(
        refused.value
    )

    repeated = order["lines"] + [dict(order["lines"][0])]
    with pytest.raises(ValidationError) as refused:
        SubmittedOrder.model_validate(order | {"lines": repeated})
    assert f"line_no {order['lines'][0]['line_no']} appears more than once" in describe_validation_error(
        refused.value
    )


RECORDED: list[type[BaseModel]] = [
    SubmittedOrder,
    ClassifiedOrder,
    ScreenedOrder,
    DecidedOrder,
    ReviewedOrder,
    DeadLetter,
    ListsUpdated,
    ScreeningClearance,
]


@CONTRACT
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6), st.sampled_from(RECORDED))
def test_any_json_object_is_accepted_or_refused_with_a_validation_error_only(
    payload: dict[str, Any], model: type[BaseModel]
) -> None:
    try:
        model.model_validate(payload)
    except ValidationError as refused:
        assert describe_validation_error(refused)  # the dead letter always says something


@CONTRACT
@given(orders(), st.sampled_from(sorted(NAMED - {"schema"})), json_values)
def test_any_value_in_a_named_field_is_accepted_or_refused_with_a_validation_error_only(
    order: dict[str, Any], name: str, value: Any
) -> None:
    try:
        SubmittedOrder.model_validate(order | {name: value})
    except ValidationError as refused:
        assert name in describe_validation_error(refused)


@CONTRACT
@given(st.one_of(st.binary(max_size=300), st.text(max_size=100).map(str.encode), st.none()))
def test_any_bytes_decode_to_an_object_or_a_poison_message(raw: bytes | None) -> None:
    try:
        decoded = decode_json(Incoming("orders.submitted.v1", 0, 0, b"k", raw, 0))
    except PoisonMessage as poison:
        assert poison.error_type in {"EmptyMessage", "InvalidEncoding", "InvalidJson"}
        assert str(poison)
    else:
        assert isinstance(decoded, dict)


@given(st.uuids(), st.text(string.printable, max_size=30))
def test_a_dead_letter_round_trips_with_its_bytes(event_id: uuid.UUID, error: str) -> None:
    import base64

    raw = json.dumps({"order_id": "SO-1"}).encode() + b"\xff"
    letter = DeadLetter(
        event_id=str(event_id),
        service="classifier",
        source_topic="orders.submitted.v1",
        source_partition=2,
        source_offset=41,
        key_b64=base64.b64encode(b"SO-1").decode(),
        payload_b64=base64.b64encode(raw).decode(),
        error_type="InvalidEncoding",
        error=error,
        failed_at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
    )
    again = DeadLetter.model_validate_json(envelope_dump(letter))
    assert again == letter and base64.b64decode(again.payload_b64) == raw
