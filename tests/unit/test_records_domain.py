"""records' pure rules: which order version and decision are current, and the hash chain."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from services.records.domain import (
    GENESIS_HASH,
    ChainLink,
    CurrentDecision,
    InvalidReview,
    OrderState,
    OrderVersion,
    Review,
    apply_review,
    apply_version,
    chain_hash,
    counts_as_approval,
    payload_digest,
    review_reason_codes,
    review_rule,
    verify_chain,
)

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
V1 = OrderVersion(NOON, "5f0c3a0e-0000-4a3e-9a53-0b8c9e0d2f11")
V2 = OrderVersion(NOON + timedelta(hours=1), "1a2b3c4d-0000-4a3e-9a53-0b8c9e0d2f11")
HOLD_V1 = CurrentDecision("d-v1", "HOLD", 72, ("POTENTIAL_MATCH",))
RELEASE = Review(NOON + timedelta(days=1), "r-1", "RELEASE", "j.doe", "Different company.")


def test_newer_version_replaces_state_and_drops_the_old_decision_and_review() -> None:
    decided = OrderState(V1, "DE", HOLD_V1, RELEASE)
    amended = apply_version(decided, version=V2, destination_country="FR")
    assert amended == OrderState(V2, "FR", None, None)


def test_older_version_arriving_late_changes_nothing_even_with_a_decision() -> None:
    current = OrderState(V2, "FR")
    assert apply_version(current, version=V1, destination_country="DE", decision=HOLD_V1) == current


def test_decision_of_the_current_version_becomes_current_with_its_recorded_review() -> None:
    state = apply_version(
        OrderState(V1, "DE"), version=V1, destination_country="DE", decision=HOLD_V1, review=RELEASE
    )
    assert (state.decision, state.review) == (HOLD_V1, RELEASE)


def test_same_occurred_at_is_decided_by_event_id_whatever_the_arrival_order() -> None:
    a = OrderVersion(NOON, "aaaaaaaa-0000-4000-8000-000000000000")
    b = OrderVersion(NOON, "bbbbbbbb-0000-4000-8000-000000000000")
    a_first = apply_version(
        apply_version(OrderState(), version=a, destination_country="DE"), version=b, destination_country="FR"
    )
    b_first = apply_version(
        apply_version(OrderState(), version=b, destination_country="FR"), version=a, destination_country="DE"
    )
    assert a_first == b_first == OrderState(b, "FR")


def test_review_applies_only_to_the_current_decision_and_only_if_later() -> None:
    decided = OrderState(V1, "DE", HOLD_V1)
    reviewed = apply_review(
        decided, review=RELEASE, submitted_event_id=V1.submitted_event_id, decided_event_id="d-v1"
    )
    assert reviewed.review == RELEASE
    older = Review(NOON, "r-0", "BLOCK", "a.smith", "Earlier opinion.")
    assert apply_review(
        reviewed, review=older, submitted_event_id=V1.submitted_event_id, decided_event_id="d-v1"
    ) == (reviewed)
    assert apply_review(
        decided, review=RELEASE, submitted_event_id=V1.submitted_event_id, decided_event_id="d-v0"
    ) == (decided)


def _chain(payloads: list[dict[str, str]]) -> list[ChainLink]:
    links, prev = [], GENESIS_HASH
    for seq, payload in enumerate(payloads, start=1):
        raw = json.dumps(payload).encode()
        digest = payload_digest(raw)
        step = chain_hash(prev, digest, payload["event_id"])
        links.append(ChainLink(seq, payload["event_id"], raw, payload, digest, prev, step))
        prev = step
    return links


def test_intact_chain_verifies_and_an_edited_step_hash_does_not() -> None:
    links = _chain([{"event_id": "e1", "stage": "submitted"}, {"event_id": "e2", "stage": "decided"}])
    assert verify_chain(links) == []
    forged = dataclasses.replace(links[0], step_hash="f" * 64)
    problems = verify_chain([forged, links[1]])
    assert problems == [
        "step 1 (event e1): step_hash does not match sha256(prev_hash + payload_sha256 + event_id)",
        f"step 2 (event e2): prev_hash {links[0].step_hash[:12]} does not match the previous step_hash",
    ]


# --- four eyes -------------------------------------------------------------------------------------

REASONS = [("POTENTIAL_MATCH", "HOLD"), ("LICENSE_REQUIRED", "LICENSE_REQUIRED")]


@pytest.mark.parametrize(
    ("in_effect", "requested", "approvals"),
    [
        ("BLOCK", "RELEASE", 2),
        ("BLOCK", "LICENSE_REQUIRED", 2),
        ("HOLD", "RELEASE", 2),
        ("LICENSE_REQUIRED", "RELEASE", 2),
        ("RELEASE", "BLOCK", 1),
        ("HOLD", "BLOCK", 1),
        ("BLOCK", "HOLD", 1),  # still stopped: one reviewer
        ("RELEASE", "LICENSE_REQUIRED", 1),
        ("RELEASE", "RELEASE", 1),
    ],
)
def test_lowering_needs_two_approvers_and_raising_one(in_effect: str, requested: str, approvals: int) -> None:
    assert (
        review_rule(in_effect=in_effect, requested=requested, reasons=REASONS).approvals_required == approvals
    )


def test_a_lowering_names_what_it_overrules_and_only_reasons_of_the_decision() -> None:
    rule = review_rule(in_effect="HOLD", requested="RELEASE", reasons=REASONS)
    assert review_reason_codes(None, rule=rule, reasons=REASONS) == ("POTENTIAL_MATCH", "LICENSE_REQUIRED")
    with pytest.raises(InvalidReview, match="missing"):
        review_reason_codes(["POTENTIAL_MATCH"], rule=rule, reasons=REASONS)
    with pytest.raises(InvalidReview, match="not a reason"):
        review_reason_codes(["POTENTIAL_MATCH", "LICENSE_REQUIRED", "ITAR_ITEM"], rule=rule, reasons=REASONS)
    partial = review_rule(in_effect="HOLD", requested="LICENSE_REQUIRED", reasons=REASONS)
    assert review_reason_codes(None, rule=partial, reasons=REASONS) == ("POTENTIAL_MATCH",)
    raise_ = review_rule(in_effect="RELEASE", requested="BLOCK", reasons=REASONS)
    assert review_reason_codes(["FRONT_COMPANY"], rule=raise_, reasons=REASONS) == ("FRONT_COMPANY",)


def test_the_requesters_own_request_counts_when_it_could_approve_it() -> None:
    lowering = review_rule(in_effect="BLOCK", requested="RELEASE", reasons=REASONS)
    raising = review_rule(in_effect="RELEASE", requested="BLOCK", reasons=REASONS)
    assert counts_as_approval("approver", lowering) and not counts_as_approval("reviewer", lowering)
    assert counts_as_approval("reviewer", raising)
