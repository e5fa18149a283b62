"""What the records API answers and accepts, read from the stored rows by attribute
(pydantic `from_attributes`): a response field is named as the row's attribute it shows."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from shared.events import Decision, LongText, Text


class ReviewRequest(BaseModel):
    """A compliance officer's decision on an order's current (machine) decision."""

    model_config = ConfigDict(extra="forbid")

    review_decision: Literal["RELEASE", "BLOCK", "LICENSE_REQUIRED"]
    reviewer: Text
    comment: LongText


class FromRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class OrderSummary(FromRow):
    order_id: str
    destination_country: str | None
    decision: str | None
    risk_score: int | None
    reason_codes: list[str]
    review_decision: str | None
    updated_at: datetime


class OrderReview(FromRow):
    review_event_id: str
    review_decision: str
    reviewer: str
    comment: str
    reviewed_at: datetime


class OrderOut(FromRow):
    order_id: str
    status: Literal["pending", "decided", "reviewed"]
    destination_country: str | None
    submitted_event_id: str | None
    occurred_at: datetime | None
    decided_event_id: str | None
    decision: Decision | None
    review: OrderReview | None
    order: dict[str, Any]
    updated_at: datetime


class TrailStepOut(FromRow):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    seq: int
    stage: str
    schema_: str = Field(alias="schema")
    event_id: str
    submitted_event_id: str
    topic: str
    partition: int
    offset: int
    received_at: datetime
    payload: dict[str, Any]
    payload_sha256: str
    prev_hash: str
    step_hash: str


class TrailOut(FromRow):
    order_id: str
    chain_valid: bool
    chain_problems: list[str]
    steps: list[TrailStepOut]


class DeadLetterOut(FromRow):
    event_id: str
    service: str
    source_topic: str
    source_partition: int
    source_offset: int
    error_type: str
    error: str
    key_b64: str | None
    payload_b64: str
    failed_at: datetime
    received_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str | None:
        return _utf8(self.key_b64) if self.key_b64 is not None else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def payload_text(self) -> str | None:
        return _utf8(self.payload_b64)


def _utf8(b64: str) -> str | None:
    """The bytes as text where they are UTF-8 (most dead messages are: bad JSON, bad fields)."""
    try:
        return base64.b64decode(b64, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


class StatsOut(FromRow):
    orders: int
    pending: int
    decisions: dict[str, int]
    reviewed: int
    dead_letters: int


class ReferenceEventOut(FromRow):
    event_id: str
    kind: str
    topic: str
    partition: int
    offset: int
    key: str | None
    payload: dict[str, Any] | None
    payload_sha256: str
    received_at: datetime
