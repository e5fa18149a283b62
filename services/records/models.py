"""The trail database: every event of every order, kept for the five years of 15 CFR 762.6.

Portable across SQLite (the embedded default) and PostgreSQL (production): JSON payloads,
timestamps stored in UTC and read back timezone-aware, 64-bit Kafka offsets. The tables are
created at startup with `metadata.create_all`; Alembic migrations are future work (the first
change to an existing table needs them).

Insert-if-absent is race-safe with several records instances: every natural key (`event_id`,
`order_id`) has a unique constraint and rows are inserted with `INSERT ... ON CONFLICT DO NOTHING`
(both dialects have it), see repository.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import UtcDateTime, table_metadata

STAGES = ("submitted", "classified", "screened", "decided", "reviewed")
ReferenceKind = Literal["list_updated", "clearance", "clearance_revoked"]
REFERENCE_KINDS: tuple[str, ...] = get_args(ReferenceKind)

# Ids are bounded so that they fit a btree index on PostgreSQL; the handler refuses longer ones.
ID_LENGTH = 128


class Base(DeclarativeBase):
    """The trail database's one declarative base."""

    metadata = table_metadata()


class TrailStep(Base):
    """One event of one order, exactly as received, linked into the order's hash chain."""

    __tablename__ = "trail_steps"
    __table_args__ = (
        # `seq` is the step's position in its order's chain: one step per position, so a chain can
        # never fork even if two instances append to the same order (the order row lock prevents
        # that; this is the backstop). Its index also serves every lookup by order_id.
        UniqueConstraint("order_id", "seq"),
        CheckConstraint(f"stage IN ({', '.join(repr(s) for s in STAGES)})", name="stage"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    seq: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16))
    schema: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    # The order version the step belongs to: the submitted event's own id, `order.event_id` inside
    # an envelope, `submitted_event_id` of a review.
    submitted_event_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The bytes as received (15 CFR 762.4: keep the record in the form received); without them an
    # edit of `payload` could not be told from a re-serialisation.
    payload_raw: Mapped[bytes] = mapped_column(LargeBinary)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    step_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Order(Base):
    """The current state of an order: a projection of its trail, rebuilt by replaying the topics.

    A row without `current_submitted_event_id` exists only as the lock target of an order whose
    only recorded step so far is a review (seen before the decision it reviews); it is not listed.
    """

    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    current_submitted_event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    current_occurred_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    destination_country: Mapped[str | None] = mapped_column(String(2))
    decision: Mapped[str | None] = mapped_column(String(16), index=True)
    risk_score: Mapped[int | None] = mapped_column(Integer)
    decided_event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    reason_codes: Mapped[list[str]] = mapped_column(JSON)
    review_event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    review_decision: Mapped[str | None] = mapped_column(String(16))
    reviewer: Mapped[str | None] = mapped_column(Text)
    review_comment: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class StoredDeadLetter(Base):
    """An `orders.deadletter.v1` event: a message some service could not process, with its bytes."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    service: Mapped[str] = mapped_column(Text)
    source_topic: Mapped[str] = mapped_column(Text)
    source_partition: Mapped[int] = mapped_column(Integer)
    source_offset: Mapped[int] = mapped_column(BigInteger)
    error_type: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    payload_b64: Mapped[str] = mapped_column(Text)
    key_b64: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ReferenceEvent(Base):
    """An event about the reference data rather than an order: a list version change
    (`lists.updated.v1`) or a reviewer's clearance of a screening hit (`screening.clearances.v1`),
    kept for the audit trail in full, since the clearances topic itself is compacted."""

    __tablename__ = "reference_events"
    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in REFERENCE_KINDS)})", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(24), index=True)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    payload_raw: Mapped[bytes] = mapped_column(LargeBinary)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
