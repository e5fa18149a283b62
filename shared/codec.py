"""A stage's input event read in one pass: bytes -> model by pydantic's own JSON parser.

`decode_json` (shared/kafka.py) reads a message with Python's json module and the handler then
validates the dict: two passes over every event. `read_event` parses and validates the bytes at
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

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shared.kafka import Incoming, decode_json

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
