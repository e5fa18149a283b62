"""The contract's events about an order after its decision, and records' audit anchors
(docs/architecture.md, "Contracts"); the topics are named with the others in shared/events.py.

- `orders.shipped.v1` (`ShippedOrder`, published by the ERP): the order left; records marks it shipped.
- `orders.rescreen.v1` (`RescreenRequest`, records -> screening): screen an open order's parties
  again against the entries a list change added or changed.
- `orders.alerts.v1` (`OrderAlert`, screening -> records): a list change made a party of a shipped
  order match; not an amendment, a person must look at it.
- `records.anchors.v1` (`ChainAnchor`, records): the head of the store-wide audit chain.

Additive changes only, as for every event of the contract.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from shared.events import (
    ClassifiedOrder,
    EventId,
    ListChangeRef,
    PartyScreening,
    SubmittedEventId,
    Text,
    Timestamp,
)
from shared.finite import Event

# --- orders.shipped.v1 (the ERP) ----------------------------------------------------------------


class ShippedOrder(Event):
    """The ERP shipped an order: records marks it shipped (docs/integration.md). `event_id` is the
    ERP's own UUID for this shipment, so a resent event is recorded once."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    schema_: Literal["order.shipped.v1"] = Field(alias="schema")
    event_id: SubmittedEventId
    order_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
    shipped_at: Timestamp
    carrier_reference: Text
    # The order version shipped (its submitted event's id), when the ERP knows it.
    submitted_event_id: SubmittedEventId | None = None


# --- orders.rescreen.v1 (records -> screening) and orders.alerts.v1 (screening -> records) -------


class RescreenRequest(Event):
    """Screen an open order's parties again after a list change (records, from its trail): the
    classified envelope as records stored it, the parties' screening of the decision in force, and
    the change. Its id is a uuid5 of the change and the decision, so a resent request is the same."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["order.rescreen-request.v1"] = Field(default="order.rescreen-request.v1", alias="schema")
    event_id: EventId
    order_id: str
    decided_event_id: EventId
    list_change: ListChangeRef
    # When the ERP shipped the order; a new match on a shipped order is an alert, not an amendment.
    shipped_at: datetime | None = None
    previous: list[PartyScreening]
    classified: ClassifiedOrder

    @model_validator(mode="after")
    def _one_order(self) -> RescreenRequest:
        if self.order_id != self.classified.order_id:
            raise ValueError(
                f"order_id {self.order_id!r} differs from classified.order_id {self.classified.order_id!r}"
            )
        return self


class OrderAlert(Event):
    """Something a person must look at that is not a new decision: a list change made a party of an
    order already shipped match an entry (`post_shipment_match`, with the parties' new matches)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["order.alert.v1"] = Field(default="order.alert.v1", alias="schema")
    event_id: EventId
    order_id: str
    kind: Literal["post_shipment_match"]
    submitted_event_id: EventId
    decided_event_id: EventId
    shipped_at: datetime | None = None
    list_change: ListChangeRef
    parties: list[PartyScreening]
    raised_at: Timestamp
    produced_by: str = "screening"


# --- records.anchors.v1 (records) ---------------------------------------------------------------


class ChainAnchor(Event):
    """The head of records' store-wide audit chain at one moment: position `seq`, its `chain_hash`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["records.anchor.v1"] = Field(default="records.anchor.v1", alias="schema")
    event_id: EventId
    chain_id: str
    seq: int = Field(ge=0)
    chain_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    anchored_at: Timestamp
    instance: str
