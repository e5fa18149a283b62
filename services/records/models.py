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

import re
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import UtcDateTime, table_metadata

STAGES = ("submitted", "classified", "screened", "decided", "reviewed", "review_step")
ReferenceKind = Literal["list_updated", "clearance", "clearance_revoked"]
REFERENCE_KINDS: tuple[str, ...] = get_args(ReferenceKind)

# Ids are bounded so that they fit a btree index on PostgreSQL; the handler refuses longer ones.
ID_LENGTH = 128
KEY_ID_LENGTH = 64
REVIEW_STATUSES = ("pending", "approved", "rejected", "superseded")


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


class DecisionMatch(Base):
    """One list entry a decision matched (a party's match in its screening section), so the review
    queue can be filtered by list and an entry's orders found without reading the payloads."""

    __tablename__ = "decision_matches"
    __table_args__ = (
        UniqueConstraint("decided_event_id", "party_role", "party_name", "list_id", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    decided_event_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    party_role: Mapped[str] = mapped_column(String(32))
    party_name: Mapped[str] = mapped_column(Text)
    list_id: Mapped[str] = mapped_column(String(32), index=True)
    entry_id: Mapped[str] = mapped_column(String(200))
    entry_version: Mapped[str | None] = mapped_column(String(80))
    score: Mapped[float] = mapped_column(Float)


class ReviewRequest(Base):
    """A request to change one decision of one order version, and where its four-eyes review stands.

    Raising severity is approved by its requester alone (approvals_required 1); lowering it needs two
    approvals by two different approver keys (docs/architecture.md, "Reviews"). The workflow's state
    lives here; each step is also published to orders.review-steps.v1 (through the outbox) and kept
    in the trail.
    """

    __tablename__ = "review_requests"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in REVIEW_STATUSES)})", name="status"),
        # One open request per decision; a second waits until the first is approved or rejected.
        Index(
            "ix_review_requests_one_pending",
            "decided_event_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    submitted_event_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    decided_event_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    # The decision in effect when requested: the machine's, or an earlier review's.
    original_decision: Mapped[str] = mapped_column(String(16))
    requested_decision: Mapped[str] = mapped_column(String(16))
    reason_codes: Mapped[list[str]] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(Text)
    approvals_required: Mapped[int] = mapped_column(Integer)
    requested_by_key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    requested_by_name: Mapped[str] = mapped_column(Text)
    requested_by_role: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_by_name: Mapped[str | None] = mapped_column(Text)
    close_comment: Mapped[str | None] = mapped_column(Text)
    # The orders.reviewed.v1 event of an approved request.
    reviewed_event_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))


class ReviewApproval(Base):
    """One approval of a review request; a key approves a request at most once (the database says
    so, whatever the application checks)."""

    __tablename__ = "review_approvals"
    __table_args__ = (UniqueConstraint("request_id", "approver_key_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("review_requests.request_id"))
    approver_key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    approver_name: Mapped[str] = mapped_column(Text)
    approver_role: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OutboxMessage(Base):
    """An event to publish, written in the same transaction as the state it announces (the
    transactional outbox): a workflow step is never half done, and no transaction waits on Kafka.
    The relay (outbox.py) publishes unpublished rows in id order and marks them."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    topic: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(Text)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    # A relay that took the row owns it until then (several records instances share the outbox).
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class DashboardSession(Base):
    """A browser signed in to the dashboard: the cookie holds a random id, this row its SHA-256,
    the key it was signed in with (checked again on every request, so a revoked key signs out) and
    the session's CSRF token."""

    __tablename__ = "dashboard_sessions"

    session_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        await connection.run_sync(_allow_every_stage)


def _allow_every_stage(connection: Connection) -> None:
    """A trail database created before a stage existed refuses it by its CHECK constraint, and records
    would retry that step forever. Widen the constraint in place (it only ever allows more). Until
    Alembic migrations exist, this is the one change made to an existing table."""
    check = f"stage IN ({', '.join(repr(s) for s in STAGES)})"
    missing = f"'{STAGES[-1]}'"
    if connection.dialect.name == "postgresql":
        current = connection.execute(
            text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ck_trail_steps_stage'")
        ).scalar()
        if current is not None and missing not in current:
            connection.execute(text("ALTER TABLE trail_steps DROP CONSTRAINT ck_trail_steps_stage"))
            connection.execute(
                text(f"ALTER TABLE trail_steps ADD CONSTRAINT ck_trail_steps_stage CHECK ({check})")
            )
    elif connection.dialect.name == "sqlite":
        sql = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'trail_steps'")
        ).scalar()
        if sql is not None and missing not in sql:
            # SQLite cannot alter a constraint; its documented way for a change that leaves the stored
            # rows valid (a CHECK that allows more) is to edit the schema text and bump its version.
            widened = re.sub(r"CHECK \(stage IN \([^)]*\)\)", f"CHECK ({check})", sql)
            version = int(connection.execute(text("PRAGMA schema_version")).scalar() or 0)
            connection.execute(text("PRAGMA writable_schema = ON"))
            connection.execute(
                text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'trail_steps'"),
                {"sql": widened},
            )
            connection.execute(text(f"PRAGMA schema_version = {version + 1}"))
            connection.execute(text("PRAGMA writable_schema = OFF"))
