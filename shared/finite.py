"""The base of every event model: no NaN and no infinity anywhere in an event.

JSON has no such numbers (RFC 8259, section 6), yet pydantic's JSON parser reads `NaN` and
`Infinity`, and a number beyond a double's range (`1e999`) as infinity. A stage that parses its
input in one pass (`model_validate_json`, shared/codec.py) relies on the models to refuse them:
every float field is finite (`allow_inf_nan=False`), and so is every number among the fields a
sender added beyond the contract (`extra="allow"`: kept and passed on, typed as `FiniteJson` here).
An event made in Python with a NaN score is refused the same way instead of being written as null.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

# Any JSON value whose numbers are all finite.
FiniteJson = TypeAliasType(
    "FiniteJson",
    "Union[None, bool, int, Annotated[float, Field(allow_inf_nan=False)], str, list[FiniteJson], "
    "dict[str, FiniteJson]]",
)


class Event(BaseModel):
    """An event of the contract, or a part of one (shared/events.py)."""

    model_config = ConfigDict(allow_inf_nan=False)

    __pydantic_extra__: dict[str, FiniteJson] = Field(init=False)
