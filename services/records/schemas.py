"""What the records API answers and accepts, built from the stored rows."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.records.models import Order, ReferenceEvent, StoredDeadLetter, TrailStep
from services.records.repository import OrderDetail, Stats, Trail
from shared.events import Decision, LongText, Text


class ReviewRequest(BaseModel):
    """A compliance officer's decision on an order's current (machine) decision."""

    model_config = ConfigDict(extra="forbid")

    review_decision: Literal["RELEASE", "BLOCK", "LICENSE_REQUIRED"]
    reviewer: Text
    comment: LongText


class OrderSummary(BaseModel):
    order_id: str
    destination_country: str | None
    decision: str | None
    risk_score: int | None
    reason_codes: list[str]
    review_decision: str | None
    updated_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderSummary:
        return cls(
            order_id=order.order_id,
            destination_country=order.destination_country,
            decision=order.decision,
            risk_score=order.risk_score,
            reason_codes=order.reason_codes,
            review_decision=order.review_decision,
            updated_at=order.updated_at,
        )


class OrderReview(BaseModel):
    review_event_id: str
    review_decision: str
    reviewer: str
    comment: str
    reviewed_at: datetime


class OrderOut(BaseModel):
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

    @classmethod
    def of(cls, detail: OrderDetail) -> OrderOut:
        row = detail.order
        review = (
            OrderReview(
                review_event_id=detail.review.review_event_id,
                review_decision=detail.review.review_decision,
                reviewer=detail.review.reviewer,
                comment=detail.review.comment,
                reviewed_at=detail.review.reviewed_at,
            )
            if detail.review is not None
            else None
        )
        status: Literal["pending", "decided", "reviewed"] = (
            "reviewed" if review is not None else "decided" if detail.decision is not None else "pending"
        )
        return cls(
            order_id=row.order_id,
            status=status,
            destination_country=row.destination_country,
            submitted_event_id=row.current_submitted_event_id,
            occurred_at=row.current_occurred_at,
            decided_event_id=row.decided_event_id,
            decision=detail.decision,
            review=review,
            order=detail.submitted_order,
            updated_at=row.updated_at,
        )


class TrailStepOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

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

    @classmethod
    def of(cls, step: TrailStep) -> TrailStepOut:
        return cls(
            seq=step.seq,
            stage=step.stage,
            schema_=step.schema,
            event_id=step.event_id,
            submitted_event_id=step.submitted_event_id,
            topic=step.topic,
            partition=step.partition,
            offset=step.offset,
            received_at=step.received_at,
            payload=step.payload,
            payload_sha256=step.payload_sha256,
            prev_hash=step.prev_hash,
            step_hash=step.step_hash,
        )


class TrailOut(BaseModel):
    order_id: str
    chain_valid: bool
    chain_problems: list[str]
    steps: list[TrailStepOut]

    @classmethod
    def of(cls, trail: Trail) -> TrailOut:
        return cls(
            order_id=trail.order_id,
            chain_valid=trail.chain_valid,
            chain_problems=trail.problems,
            steps=[TrailStepOut.of(step) for step in trail.steps],
        )


class DeadLetterOut(BaseModel):
    event_id: str
    service: str
    source_topic: str
    source_partition: int
    source_offset: int
    error_type: str
    error: str
    key: str | None
    key_b64: str | None
    payload_text: str | None
    payload_b64: str
    failed_at: datetime
    received_at: datetime

    @classmethod
    def of(cls, letter: StoredDeadLetter) -> DeadLetterOut:
        return cls(
            event_id=letter.event_id,
            service=letter.service,
            source_topic=letter.source_topic,
            source_partition=letter.source_partition,
            source_offset=letter.source_offset,
            error_type=letter.error_type,
            error=letter.error,
            key=_utf8(letter.key_b64) if letter.key_b64 is not None else None,
            key_b64=letter.key_b64,
            payload_text=_utf8(letter.payload_b64),
            payload_b64=letter.payload_b64,
            failed_at=letter.failed_at,
            received_at=letter.received_at,
        )


def _utf8(b64: str) -> str | None:
    """The bytes as text where they are UTF-8 (most dead messages are: bad JSON, bad fields)."""
    try:
        return base64.b64decode(b64, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


class StatsOut(BaseModel):
    orders: int
    pending: int
    decisions: dict[str, int]
    reviewed: int
    dead_letters: int

    @classmethod
    def of(cls, stats: Stats) -> StatsOut:
        return cls(
            orders=stats.orders,
            pending=stats.pending,
            decisions=stats.decisions,
            reviewed=stats.reviewed,
            dead_letters=stats.dead_letters,
        )


class ReferenceEventOut(BaseModel):
    event_id: str
    kind: str
    topic: str
    partition: int
    offset: int
    key: str | None
    payload: dict[str, Any] | None
    payload_sha256: str
    received_at: datetime

    @classmethod
    def of(cls, event: ReferenceEvent) -> ReferenceEventOut:
        return cls(
            event_id=event.event_id,
            kind=event.kind,
            topic=event.topic,
            partition=event.partition,
            offset=event.offset,
            key=event.key,
            payload=event.payload,
            payload_sha256=event.payload_sha256,
            received_at=event.received_at,
        )
