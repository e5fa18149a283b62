"""The four-eyes review through the records API: who may do what, what waits for a second approver,
what is refused, and what reaches orders.reviewed.v1 (only the final outcome)."""

from __future__ import annotations

import json

from shared.events import TOPIC_CLEARANCES, TOPIC_REVIEW_STEPS, TOPIC_REVIEWED
from tests.api.test_records_api import Records
from tests.auth_support import bearer
from tests.records_support import decided, submitted

RELEASE = {
    "review_decision": "RELEASE",
    "comment": "The Entity List entry is another company (other address).",
}


async def _held(records: Records, order_id: str, decision: str = "BLOCK") -> dict[str, object]:
    order = submitted(order_id)
    event = decided(order, decision)  # type: ignore[arg-type]
    await records.consume(order, event)
    records.capture()
    return event


async def test_releasing_a_block_needs_two_distinct_approvers(records: Records) -> None:
    await _held(records, "SO-2026-000401")

    first = await records.client.post(
        "/orders/SO-2026-000401/review", json=RELEASE, headers=bearer("approver-1")
    )
    assert first.status_code == 202, first.text
    body = first.json()
    assert (body["status"], body["approvals"], body["approvals_required"]) == ("awaiting_approval", 1, 2)
    assert body["reviewed"] is None
    assert body["request"]["reason_codes"] == ["POTENTIAL_MATCH", "LICENSE_REQUIRED"]  # what it overrules

    await records.loop_back()
    order = (await records.client.get("/orders/SO-2026-000401")).json()
    assert order["review"] is None and order["status"] == "decided"  # not released yet
    [pending] = order["review_requests"]
    assert (pending["status"], pending["requested_by_name"]) == ("pending", "approver-1")
    assert [a["approver_name"] for a in pending["approvals"]] == ["approver-1"]
    assert [p.topic for p in records.broker.published] == [TOPIC_REVIEW_STEPS]  # no outcome published

    again = await records.client.post(
        "/orders/SO-2026-000401/review", json=RELEASE, headers=bearer("approver-1")
    )
    assert again.status_code == 409 and "already approved" in again.json()["detail"]

    second = await records.client.post(
        "/orders/SO-2026-000401/review/approve", json={"comment": "Agreed."}, headers=bearer("approver-2")
    )
    assert second.status_code == 202, second.text
    outcome = second.json()
    assert (outcome["status"], outcome["approvals"]) == ("approved", 2)
    reviewed = outcome["reviewed"]
    assert reviewed["review_decision"] == "RELEASE" and reviewed["reviewer"] == "approver-2"
    assert [a["approver"]["name"] for a in reviewed["approvals"]] == ["approver-1", "approver-2"]

    published = await records.loop_back()
    outcomes = [json.loads(p.value) for p in published if p.topic == TOPIC_REVIEWED]
    assert [o["event_id"] for o in outcomes] == [reviewed["event_id"]]  # one outcome, after the second
    order = (await records.client.get("/orders/SO-2026-000401")).json()
    assert order["status"] == "reviewed" and order["review"]["review_decision"] == "RELEASE"
    trail = (await records.client.get("/orders/SO-2026-000401/trail")).json()
    steps = [
        (s["stage"], s["payload"].get("action"), s["payload"].get("actor", {}).get("name"))
        for s in trail["steps"]
    ]
    assert steps[2:] == [
        ("review_step", "requested", "approver-1"),
        ("review_step", "approved", "approver-2"),
        ("reviewed", None, None),
    ]
    assert trail["chain_valid"] is True


async def test_a_reviewer_may_raise_alone_but_not_approve_a_lowering(records: Records) -> None:
    await _held(records, "SO-2026-000402", "HOLD")
    requested = await records.client.post(
        "/orders/SO-2026-000402/review", json=RELEASE, headers=bearer("reviewer-1")
    )
    assert requested.status_code == 202
    assert (requested.json()["approvals"], requested.json()["approvals_required"]) == (0, 2)
    refused = await records.client.post("/orders/SO-2026-000402/review/approve", headers=bearer("reviewer-1"))
    assert refused.status_code == 403 and "approver" in refused.json()["detail"]

    raised = await records.client.post(
        "/orders/SO-2026-000402/review",
        json={"review_decision": "BLOCK", "comment": "The consignee is a front company."},
        headers=bearer("reviewer-1"),
    )
    assert raised.status_code == 202 and raised.json()["status"] == "approved"
    order = (await records.client.get("/orders/SO-2026-000402")).json()
    assert [r["status"] for r in order["review_requests"]] == ["superseded", "approved"]


async def test_a_rejection_ends_the_request_and_publishes_no_outcome(records: Records) -> None:
    await _held(records, "SO-2026-000403")
    await records.client.post("/orders/SO-2026-000403/review", json=RELEASE, headers=bearer("approver-1"))
    rejected = await records.client.post(
        "/orders/SO-2026-000403/review/reject",
        json={"comment": "The address matches the listed entry."},
        headers=bearer("approver-2"),
    )
    assert rejected.status_code == 202 and rejected.json()["status"] == "rejected"
    late = await records.client.post("/orders/SO-2026-000403/review/approve", headers=bearer("approver-2"))
    assert late.status_code == 409
    published = await records.relay()
    assert TOPIC_REVIEWED not in {p.topic for p in published}
    actions = [json.loads(p.value)["action"] for p in published]
    assert actions == ["requested", "rejected"]


async def test_a_review_of_a_decision_amended_since_is_refused_saying_so(records: Records) -> None:
    first = await _held(records, "SO-2026-000404")
    amended = submitted("SO-2026-000404", occurred_at="2026-12-01T08:00:00Z")
    await records.consume(amended, decided(amended, "BLOCK"))
    response = await records.client.post(
        "/orders/SO-2026-000404/review",
        json={**RELEASE, "decided_event_id": first["event_id"]},
        headers=bearer("approver-1"),
    )
    assert response.status_code == 409
    assert "has since been amended" in response.json()["detail"]


async def test_a_pending_request_on_an_amended_decision_cannot_be_approved(records: Records) -> None:
    await _held(records, "SO-2026-000405")
    await records.client.post("/orders/SO-2026-000405/review", json=RELEASE, headers=bearer("approver-1"))
    amended = submitted("SO-2026-000405", occurred_at="2026-12-01T08:00:00Z")
    await records.consume(amended, decided(amended, "BLOCK"))
    response = await records.client.post(
        "/orders/SO-2026-000405/review/approve", headers=bearer("approver-2")
    )
    assert response.status_code == 409 and "amended" in response.json()["detail"]


async def test_a_lowering_must_name_every_reason_it_overrules(records: Records) -> None:
    await _held(records, "SO-2026-000406")
    response = await records.client.post(
        "/orders/SO-2026-000406/review",
        json={**RELEASE, "reason_codes": ["POTENTIAL_MATCH"]},
        headers=bearer("approver-1"),
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "reason_codes"] and "LICENSE_REQUIRED" in error["msg"]
    unknown = await records.client.post(
        "/orders/SO-2026-000406/review",
        json={**RELEASE, "reason_codes": ["POTENTIAL_MATCH", "LICENSE_REQUIRED", "EMBARGOED_DESTINATION"]},
        headers=bearer("approver-1"),
    )
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["input"] == "EMBARGOED_DESTINATION"


async def test_not_a_match_publishes_a_clearance_for_the_matched_entry_version(records: Records) -> None:
    await _held(records, "SO-2026-000407", "HOLD")
    response = await records.client.post(
        "/orders/SO-2026-000407/not-a-match",
        json={
            "party_name": "Muster Maschinenbau GmbH",
            "list_id": "EL",
            "entry_id": "csl-12345",
            "reason": "Registered in Stuttgart since 1961; the listed entity is in Minsk",
        },
        headers=bearer("reviewer-1"),
    )
    assert response.status_code == 202, response.text
    published = await records.loop_back()
    [clearance] = [p for p in published if p.topic == TOPIC_CLEARANCES]
    body = json.loads(clearance.value)
    assert clearance.key == "EL:csl-12345:muster maschinenbau"
    assert (body["reviewer"], body["list_id"], body["entry_id"]) == ("reviewer-1", "EL", "csl-12345")
    trail = (await records.client.get("/orders/SO-2026-000407/trail")).json()
    [step] = [s for s in trail["steps"] if s["stage"] == "review_step"]
    assert step["payload"]["action"] == "match_cleared"
    assert step["payload"]["cleared"]["clearance_event_id"] == body["event_id"]

    missing = await records.client.post(
        "/orders/SO-2026-000407/not-a-match",
        json={"party_name": "Someone Else", "list_id": "EL", "entry_id": "csl-12345", "reason": "no"},
        headers=bearer("reviewer-1"),
    )
    assert missing.status_code == 404


async def test_the_queue_lists_held_and_blocked_orders_oldest_first_with_counts(records: Records) -> None:
    await _held(records, "SO-2026-000408", "HOLD")
    await _held(records, "SO-2026-000409", "BLOCK")
    await _held(records, "SO-2026-000410", "RELEASE")
    queue = (await records.client.get("/queue")).json()
    assert [i["order_id"] for i in queue["items"]] == ["SO-2026-000408", "SO-2026-000409"]
    assert queue["by_decision"] == {"HOLD": 1, "BLOCK": 1} and queue["by_list"] == {"EL": 2}
    assert queue["items"][0]["lists"] == ["EL"]
    blocked = (await records.client.get("/queue", params={"decision": "BLOCK", "list": "EL"})).json()
    assert [i["order_id"] for i in blocked["items"]] == ["SO-2026-000409"]
    none = (await records.client.get("/queue", params={"list": "SDN"})).json()
    assert none["total"] == 0
    aged = (await records.client.get("/queue", params={"min_age_hours": 1})).json()
    assert aged["total"] == 0  # decided a moment ago
    bad = await records.client.get("/queue", params={"destination": "germany"})
    assert bad.status_code == 422
