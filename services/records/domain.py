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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from unidecode import unidecode

from services.records.audit import StepFields, step_hash
from shared.events import DECISION_SEVERITY

# prev_hash of an order's first step.
GENESIS_HASH = "0" * 64


def payload_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def chain_hash(prev_hash: str, payload_sha256: str, event_id: str) -> str:
    """A step's hash of hash_version 1 (steps stored before the store-wide chain):
    sha256(prev_hash + payload_sha256 + event_id); the two hex digests are fixed-width, so the
    concatenation is unambiguous. Version 2 (audit.step_hash) also covers the stage, topic,
    partition, offset, time received and order."""
    return hashlib.sha256(f"{prev_hash}{payload_sha256}{event_id}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainLink:
    """One stored trail step as the chain verification sees it; `fields` its other columns (a
    version 2 step's hash covers them)."""

    seq: int
    event_id: str
    raw: bytes
    payload: Any
    payload_sha256: str
    prev_hash: str
    step_hash: str
    fields: StepFields | None = None

    def expected_hash(self) -> str:
        fields = self.fields
        if fields is None or fields.hash_version == 1:
            return chain_hash(self.prev_hash, self.payload_sha256, self.event_id)
        return step_hash(
            prev_hash=self.prev_hash,
            event_id=self.event_id,
            order_id=fields.order_id,
            seq=self.seq,
            stage=fields.stage,
            schema=fields.schema,
            topic=fields.topic,
            partition=fields.partition,
            offset=fields.offset,
            submitted_event_id=fields.submitted_event_id,
            received_at=fields.received_at,
            payload_sha256=self.payload_sha256,
        )


def verify_chain(links: Sequence[ChainLink]) -> list[str]:
    """Every way the stored trail disagrees with itself; empty when the chain verifies.

    Catches an edited payload (JSON column or raw bytes), an edited hash or (version 2) edited
    metadata, and a deleted or reordered step. A rewrite of the whole chain from the edited step
    onwards is caught by the store-wide chain and its anchors (audit.py), not here.
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
        # A step stored with its payload once has JSON null here: its bytes are its only copy.
        if link.payload is not None and _parsed(link.raw) != link.payload:
            problems.append(f"{where}: payload differs from the bytes received")
        if link.expected_hash() != link.step_hash:
            covered = (
                "sha256(prev_hash + payload_sha256 + event_id)"
                if link.fields is None or link.fields.hash_version == 1
                else "its position, stage, topic, partition, offset, time received and bytes"
            )
            problems.append(f"{where}: step_hash does not match {covered}")
        expected_prev = link.step_hash
    return problems


def _parsed(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def search_text(text: str) -> str:
    """A name as the order search compares it: transliterated to ASCII (accents and scripts folded:
    "Müller" and "MULLER" are one), case-folded, one space between words."""
    # unidecode leaves ASCII as it is, character by character: skipped when there is nothing to fold.
    return " ".join((text if text.isascii() else unidecode(text)).casefold().split())


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


# --- four eyes -----------------------------------------------------------------------------------

# Lowering a decision lets goods move that the checks stopped (or drops a licence requirement): no one
# person may do that alone (separation of duties), so two approvers with keys of their own must agree.
APPROVALS_TO_LOWER = 2
# Decisions that let goods move (or move under a licence): reaching one by review is a lowering.
LOWERED = ("RELEASE", "LICENSE_REQUIRED")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")


class InvalidReview(ValueError):
    """A review request that cannot be made as given; names the field and the value (422)."""

    def __init__(self, field: str, value: object, message: str) -> None:
        super().__init__(f"{field}: {value!r}: {message}")
        self.field = field
        self.value = value
        self.message = message


@dataclass(frozen=True)
class ReviewRule:
    """What a review of the decision in effect into `requested` takes."""

    in_effect: str
    requested: str
    approvals_required: int
    # The decision's reason codes more severe than the requested decision: what a lowering overrules.
    overruled: tuple[str, ...]

    @property
    def lowers(self) -> bool:
        return self.approvals_required > 1


def review_rule(*, in_effect: str, requested: str, reasons: Sequence[tuple[str, str]]) -> ReviewRule:
    """Raising severity (anything to HOLD or BLOCK, or RELEASE to LICENSE_REQUIRED) takes effect with
    one reviewer; lowering it (BLOCK or HOLD to LICENSE_REQUIRED or RELEASE, LICENSE_REQUIRED to
    RELEASE) needs two approvals by two different approver keys. `reasons` are the decision's
    (code, severity) pairs."""
    lowers = requested in LOWERED and DECISION_SEVERITY[requested] < DECISION_SEVERITY[in_effect]
    overruled = distinct_codes(
        code for code, severity in reasons if DECISION_SEVERITY[severity] > DECISION_SEVERITY[requested]
    )
    return ReviewRule(in_effect, requested, APPROVALS_TO_LOWER if lowers else 1, overruled)


def review_reason_codes(
    given: Sequence[str] | None, *, rule: ReviewRule, reasons: Sequence[tuple[str, str]]
) -> tuple[str, ...]:
    """The reason codes a review names. A lowering names the decision's reasons it overrules, every
    one of them (default: exactly those); a raise may name its own (default: none)."""
    on_decision = distinct_codes(code for code, _ in reasons)
    if given is None:
        return rule.overruled if rule.lowers else ()
    for code in given:
        if not _CODE.match(code):
            raise InvalidReview("reason_codes", code, "a reason code is upper case, e.g. POTENTIAL_MATCH")
        if rule.lowers and code not in on_decision:
            raise InvalidReview(
                "reason_codes",
                code,
                f"not a reason of the decision under review (its reasons: {list(on_decision)})",
            )
    missing = [code for code in rule.overruled if code not in given]
    if rule.lowers and missing:
        raise InvalidReview(
            "reason_codes",
            list(given),
            f"{rule.in_effect} to {rule.requested} overrules {list(rule.overruled)}: name each (missing {missing})",
        )
    return distinct_codes(given)


def counts_as_approval(role: str, rule: ReviewRule) -> bool:
    """The requester's own request is the first approval when the requester could approve it: any
    reviewer for a raise, an approver for a lowering."""
    return role in ("approver", "admin") or not rule.lowers
