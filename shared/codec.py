"""How a stage reads a message: `decode_json` (bytes -> JSON object, or a PoisonMessage naming what
is wrong), `require_key` (the Kafka key is the order id) and `read_event` (bytes -> model in one pass
by pydantic's own JSON parser).

`decode_json` reads a message with Python's json module and the handler then validates the dict:
two passes over every event (records keeps the dict). `read_event` parses and validates the bytes at
once (`model_validate_json`; docs/benchmarks.md, "Pipeline", says what that saves). The refusals
stay those of `decode_json`, word for word:

- pydantic's JSON parser reads `NaN`, `Infinity` and `-Infinity`, and a number beyond a double's
  range (`1e999`) as infinity, which JSON has not (RFC 8259, section 6). The event models refuse
  them wherever they would be kept (shared/finite.py: every float field, every field a sender added);
  such a refusal is worded again by `decode_json`, which names the field and the token as ever.
  A field the contract does not define, inside a section that ignores unknown fields, is skipped
  unread, non-finite or not: it is not passed on, so nothing non-finite travels.
- bytes that are not UTF-8, not JSON or not a JSON object: `decode_json` says which, as before.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shared.kafka import Incoming, PoisonMessage

M = TypeVar("M", bound=BaseModel)

# At the message's root, these say the bytes were not a JSON object at all.
_NOT_AN_OBJECT = frozenset({"json_invalid", "json_type", "model_type", "model_attributes_type"})


def _worded_by_decode_json(error: ErrorDetails) -> bool:
    return error["type"] == "finite_number" or (not error["loc"] and error["type"] in _NOT_AN_OBJECT)


def read_event(message: Incoming, model: type[M]) -> M:
    """The message's event, parsed and validated once. Raises PoisonMessage (no value, not JSON, a
    non-finite number: the field named) or ValidationError (the contract), which the consumer loop
    dead-letters."""
    if message.value is None:
        decode_json(message)  # raises: a tombstone is no event
    try:
        return model.model_validate_json(message.value or b"")
    except ValidationError as exc:
        if any(_worded_by_decode_json(error) for error in exc.errors()):
            decode_json(message)  # raises the PoisonMessage that names the field or what the bytes are
        raise


def decode_json(message: Incoming) -> dict[str, Any]:
    """Bytes -> JSON object, or a PoisonMessage that says exactly what is wrong."""
    if message.value is None:
        raise PoisonMessage("EmptyMessage", "message value is empty (tombstone); expected a JSON object")
    try:
        text = message.value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PoisonMessage("InvalidEncoding", f"message is not UTF-8: {exc}") from exc
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotAJsonNumber as exc:
        path = _path_of_non_finite(text) or "(message)"
        # Python's json reads NaN and Infinity, and 1e999 as Infinity; none is a JSON number (RFC
        # 8259, section 6), none survives the trip through the pipeline unchanged (pydantic writes
        # them as null) and PostgreSQL's JSON refuses them: every stage refuses them here, alike.
        why = (
            "is not a JSON number (RFC 8259 has no NaN or Infinity)"
            if exc.token in ("NaN", "Infinity", "-Infinity")
            else "is beyond a double's range: it would be read as Infinity, which JSON has not"
        )
        raise PoisonMessage("InvalidJson", f"{path}: {exc.token} {why}") from exc
    except json.JSONDecodeError as exc:
        raise PoisonMessage(
            "InvalidJson", f"message is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(data, dict):
        raise PoisonMessage("InvalidJson", f"message is JSON {type(data).__name__}, expected an object")
    return data


class _NotAJsonNumber(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _refuse_constant(token: str) -> Any:
    raise _NotAJsonNumber(token)


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NotAJsonNumber(token)
    return value


class _Marked:
    def __init__(self, token: str) -> None:
        self.token = token


def _path_of_non_finite(text: str) -> str | None:
    """Where the first NaN or Infinity of `text` is, as a dotted path (`lines.0.quantity`)."""

    def mark(token: str) -> Any:
        value = float(token)
        return value if math.isfinite(value) else _Marked(token)

    def find(value: Any, path: str) -> str | None:
        if isinstance(value, _Marked):
            return path
        children = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        for name, child in children:
            found = find(child, f"{path}.{name}" if path else str(name))
            if found is not None:
                return found
        return None

    try:
        return find(json.loads(text, parse_constant=_Marked, parse_float=mark), "")
    except ValueError:
        return None


def require_key(message: Incoming, order_id: str) -> None:
    """The Kafka key of an order's event must be its `order_id` (docs/integration.md): the key is
    what puts every event of one order on one partition, in order. An event under another key could
    be overtaken by its own amendment, so it is refused as a contract violation (`KeyMismatch`)."""
    key = message.key.decode("utf-8", "replace") if message.key is not None else None
    if key == order_id:
        return
    found = (
        f"the Kafka key is missing; it must be the order_id {_shown(order_id)}"
        if key is None
        else f"the Kafka key {_shown(key)} is not the order_id {_shown(order_id)}"
    )
    raise PoisonMessage(
        "KeyMismatch",
        f"key: {found} (an order's events are keyed by its order_id: one partition keeps them in order)",
    )


def _shown(value: str, limit: int = 140) -> str:
    shown = json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= limit else f'{shown[: limit - 4]}..."'
