"""The decision trail's rules, pure: which order version is current, which decision and review
count, and how the per-order hash chain makes an edited trail detectable.

15 CFR 762.6 asks for export records to be kept five years; 15 CFR 762.4 wants them kept in the form
received, and 15 CFR 762.5(b)(4) wants electronic records that preserve the original, record every
change with who and when, and cannot be altered once recorded. Each trail step therefore stores the
bytes received, their SHA-256, and a hash chained to the previous step of the same order; a review
is a new step (with its reviewer and time), never an edit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, cast

from shared.events import DecisionCode, ReviewedOrder

# prev_hash of an order's first step.
GENESIS_HASH = "0" * 64


def payload_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def chain_hash(prev_hash: str, payload_sha256: str, event_id: str) -> str:
    """step_hash = sha256(prev_hash + payload_sha256 + event_id); the two hex digests are fixed-width,
    so the concatenation is unambiguous."""
    return hashlib.sha256(f"{prev_hash}{payload_sha256}{event_id}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainLink:
    """One stored trail step as the chain verification sees it."""

    seq: int
    event_id: str
    raw: bytes
    payload: Any
    payload_sha256: str
    prev_hash: str
    step_hash: str


def verify_chain(links: Sequence[ChainLink]) -> list[str]:
    """Every way the stored trail disagrees with itself; empty when the chain verifies.

    Catches an edited payload (JSON column or raw bytes), an edited hash, and a deleted or
    reordered step. It cannot catch a rewrite of the whole chain from the edited step onwards:
    that needs the head hash anchored outside the database.
    """
    problems: list[str] = []
    expected_prev = GENESIS_HASH
    for position, link in enumerate(links, start=1):
        where = f"step {link.seq} (event {link.event_id})"
        if link.seq != position:
            problems.append(f"{where}: expected step {position}; a step is missing or out of order")
        if link.prev_hash != expected_prev:
            problems.append(f"{where}: prev_hash {link.prev_hash[:12]} does not match the previous step_hash")
        if payload_digest(link.raw) != link.payload_sha256:
            problems.append(f"{where}: stored bytes do not match payload_sha256")
        if _parsed(link.raw) != link.payload:
            problems.append(f"{where}: payload differs from the bytes received")
        if chain_hash(link.prev_hash, link.payload_sha256, link.event_id) != link.step_hash:
            problems.append(
                f"{where}: step_hash does not match sha256(prev_hash + payload_sha256 + event_id)"
            )
        expected_prev = link.step_hash
    return problems


def _parsed(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --- the order's current state -------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class OrderVersion:
    """One submitted event of an order; the latest one is the order's current state.

    Later `occurred_at` wins; the event id breaks ties, so every records instance and every
    replay, whatever order the topics are read in, agrees on the same current version.
    """

    occurred_at: datetime
    submitted_event_id: str


@dataclass(frozen=True)
class CurrentDecision:
    decided_event_id: str
    decision: str
    risk_score: int
    reason_codes: tuple[str, ...]


@dataclass(frozen=True, order=True)
class Review:
    """A reviewer's decision; the latest (reviewed_at, then event id) of one decision counts."""

    reviewed_at: datetime
    review_event_id: str
    review_decision: str
    reviewer: str
    comment: str


@dataclass(frozen=True)
class OrderState:
    version: OrderVersion | None = None
    destination_country: str | None = None
    decision: CurrentDecision | None = None
    review: Review | None = None


def distinct_codes(codes: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


def apply_version(
    state: OrderState,
    *,
    version: OrderVersion,
    destination_country: str,
    decision: CurrentDecision | None = None,
    review: Review | None = None,
) -> OrderState:
    """An event carrying order `version` (and, for a decided event, its decision) was recorded.

    A newer version replaces the state and drops the old version's decision and review: an
    amended order is assessed again (docs/architecture.md, "Contracts"). An older version, arriving late, changes nothing;
    its steps stay in the trail. `review` is the latest review already recorded for `decision`
    (topics are read independently, so a review can be seen before the decision it reviews).
    """
    if state.version is None or version > state.version:
        return OrderState(version, destination_country, decision, review if decision else None)
    if version == state.version and decision is not None:
        return replace(state, decision=decision, review=review)
    return state


def apply_review(
    state: OrderState, *, review: Review, submitted_event_id: str, decided_event_id: str
) -> OrderState:
    """A review counts only for the decision that is current, and only if no later review exists."""
    current = (
        state.version is not None
        and state.version.submitted_event_id == submitted_event_id
        and state.decision is not None
        and state.decision.decided_event_id == decided_event_id
    )
    if current and (state.review is None or review > state.review):
        return replace(state, review=review)
    return state


class NothingToReview(Exception):
    """The order's current version has no decision yet: there is nothing a reviewer could act on."""


def review_event(
    state: OrderState,
    *,
    event_id: str,
    order_id: str,
    review_decision: Literal["RELEASE", "BLOCK", "LICENSE_REQUIRED"],
    reviewer: str,
    comment: str,
    reviewed_at: datetime,
) -> ReviewedOrder:
    """A reviewer's decision on the current decision of the order's current version.

    A review is a new fact, not derived from an event, so it has its own id and the reviewer's time.
    It names the decision and the order version it reviewed: if the order is amended meanwhile, the
    review still enters the trail but does not apply to the new version (`apply_review`)."""
    if state.version is None or state.decision is None:
        submitted = state.version.submitted_event_id if state.version is not None else None
        raise NothingToReview(
            f"order {order_id!r} has no decision for its current version "
            f"(submitted event {submitted}) yet; nothing to review"
        )
    return ReviewedOrder(
        event_id=event_id,
        order_id=order_id,
        decided_event_id=state.decision.decided_event_id,
        submitted_event_id=state.version.submitted_event_id,
        # Stored from a validated DecidedOrder, so one of the four.
        original_decision=cast(DecisionCode, state.decision.decision),
        review_decision=review_decision,
        reviewer=reviewer,
        comment=comment,
        reviewed_at=reviewed_at,
    )
