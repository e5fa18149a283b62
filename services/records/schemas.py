"""What the records API answers and accepts, read from the stored rows by attribute
(pydantic `from_attributes`): a response field is named as the row's attribute it shows."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field

from services.records.review_store import RequestView
from shared.events import Decision, LongText, ReviewDecisionCode, ReviewedOrder, Text


def _identity_from_key(value: object) -> None:
    raise ValueError(
        "who acts is the API key's name and role, never a field of the request: leave it out and "
        "send the key in Authorization"
    )


# Refused when sent (422 naming it): the identity of every action comes from the API key.
NotSent = Annotated[
    Any, AfterValidator(_identity_from_key), Field(description="not accepted: the API key says who acts")
]
ReasonCode = Annotated[str, Field(min_length=2, max_length=64)]


class ReviewBody(BaseModel):
    """A reviewer's decision on the decision in effect (the machine's, or an earlier review's)."""

    model_config = ConfigDict(extra="forbid")

    review_decision: ReviewDecisionCode
    comment: LongText
    reason_codes: Annotated[list[ReasonCode], Field(max_length=50)] | None = Field(
        default=None,
        description="the decision's reason codes the review overrules (a lowering must name each; "
        "default: exactly those) or, for a raise, the reviewer's own",
    )
    decided_event_id: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="the decision the reviewer looked at: refused (409) if amended since"
    )
    reviewer: NotSent = None


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: LongText | None = None
    decided_event_id: Annotated[str, Field(max_length=128)] | None = None
    reviewer: NotSent = None


class CommentBody(BaseModel):
    """A rejection's or a request for information's reason."""

    model_config = ConfigDict(extra="forbid")

    comment: LongText
    reviewer: NotSent = None


class NotAMatchBody(BaseModel):
    """A party of the current decision is not the list entry it matched."""

    model_config = ConfigDict(extra="forbid")

    party_name: Text
    list_id: Annotated[str, Field(min_length=1, max_length=32)]
    entry_id: Annotated[str, Field(min_length=1, max_length=200)]
    reason: LongText
    reviewer: NotSent = None


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
    created_at: datetime | None = None
    decided_at: datetime | None = None
    shipped_at: datetime | None = None
    legal_hold: bool = False


class OrderReview(FromRow):
    review_event_id: str
    review_decision: str
    reviewer: str
    comment: str
    reviewed_at: datetime


class ApprovalOut(FromRow):
    approver_name: str
    approver_role: str
    approver_key_id: str
    approved_at: datetime
    comment: str | None


class ReviewRequestOut(FromRow):
    """A review request and where its four-eyes review stands."""

    request_id: str
    status: Literal["pending", "approved", "rejected", "superseded"]
    decided_event_id: str
    submitted_event_id: str
    original_decision: str
    requested_decision: str
    reason_codes: list[str]
    comment: str
    approvals_required: int
    requested_by_name: str
    requested_by_role: str
    requested_by_key_id: str
    requested_at: datetime
    closed_at: datetime | None
    closed_by_name: str | None
    close_comment: str | None
    reviewed_event_id: str | None
    approvals: list[ApprovalOut]

    @classmethod
    def of(cls, view: RequestView) -> ReviewRequestOut:
        row = view.request
        return cls.model_validate(
            {
                **{name: getattr(row, name) for name in cls.model_fields if name != "approvals"},
                "approvals": [ApprovalOut.model_validate(a) for a in view.approvals],
            }
        )


class ReviewOutcomeOut(BaseModel):
    """Where a review stands after a command: `awaiting_approval` (a lowering with fewer approvals than
    it needs), `approved` (final: `reviewed` is the event published on orders.reviewed.v1) or
    `rejected`."""

    status: Literal["awaiting_approval", "approved", "rejected"]
    approvals: int
    approvals_required: int
    request: ReviewRequestOut
    reviewed: ReviewedOrder | None


class OrderOut(FromRow):
    order_id: str
    status: Literal["pending", "decided", "reviewed"]
    shipped_at: datetime | None = None
    carrier_reference: str | None = None
    legal_hold: bool = False
    destination_country: str | None
    submitted_event_id: str | None
    occurred_at: datetime | None
    decided_event_id: str | None
    decision: Decision | None
    review: OrderReview | None
    order: dict[str, Any]
    updated_at: datetime
    # The review requests on this order version, oldest first; `review` stays null until one is
    # approved and its outcome recorded.
    review_requests: list[ReviewRequestOut] = Field(default_factory=list)


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
    # The event as received (TrailStep.content: the stored bytes, parsed).
    payload: dict[str, Any] = Field(validation_alias="content")
    payload_sha256: str
    prev_hash: str
    step_hash: str
    hash_version: int


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
    # Of the orders decided in [start, end) (all, without a range):
    start: datetime | None = None
    end: datetime | None = None
    decided: int = 0
    by_day: list[dict[str, Any]] = Field(default_factory=list)
    by_reason: dict[str, int] = Field(default_factory=dict)
    by_destination: dict[str, int] = Field(default_factory=dict)
    by_list: dict[str, int] = Field(default_factory=dict)
    # Seconds from records first seeing the order version to its decision: count, p50, p90, p95, p99, max.
    latency_seconds: dict[str, float | int | None] = Field(default_factory=dict)


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


class QueueItemOut(BaseModel):
    order_id: str
    decision: str
    risk_score: int | None
    destination_country: str | None
    reason_codes: list[str]
    lists: list[str]
    decided_event_id: str
    decided_at: datetime
    age_seconds: float
    pending_review: ReviewRequestOut | None


class QueueOut(BaseModel):
    """HOLD and BLOCK orders waiting for a reviewer, oldest decision first, and the counts of the
    whole filtered queue."""

    total: int
    awaiting_approval: int
    by_decision: dict[str, int]
    by_reason: dict[str, int]
    by_destination: dict[str, int]
    by_list: dict[str, int]
    items: list[QueueItemOut]
