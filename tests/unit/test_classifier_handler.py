"""orders.submitted.v1 in, orders.classified.v1 out: deterministic, keyed by order, bad input refused;
stamped with the CCL version in force; an unclassified line reaches risk's HOLD with its suggestions."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.classifier.catalog import CatalogSnapshot
from services.classifier.handler import ClassifierHandler
from services.risk.domain import RiskPolicy, decide
from services.risk.refdata import load_reference_data as load_risk_data
from shared.events import TOPIC_CLASSIFIED, ClassifiedOrder, derived_event_id
from shared.kafka import Incoming, PoisonMessage
from shared.policy import load_policy
from shared.settings import Settings
from tests import classifier_support as support
from tests import risk_samples

SNAPSHOT = CatalogSnapshot(products={}, eccn_by_sku={"TC-640": "6A003.b.4.b"}, version="1-skus+sha256:abc")


@pytest.fixture(scope="module")
def handler() -> ClassifierHandler:
    return ClassifierHandler(
        settings=Settings(topic_prefix="t1."), reference=support.reference, catalog=lambda: SNAPSHOT
    )


def incoming(value: bytes | None) -> Incoming:
    return Incoming("t1.orders.submitted.v1", 0, 7, b"SO-TEST-0001", value, 0)


def encoded(order: dict[str, Any]) -> bytes:
    return json.dumps(order).encode()


ORDER = support.submitted_order(
    support.order_line(1, "TC-640", "Uncooled thermal imaging camera", eccn="EAR99"),
    support.order_line(2, "NS-2448", "Ethernet switch", eccn="5a992.c"),
    support.order_line(3, "CUSTOM-1", "Digital storage oscilloscope"),
)


async def test_order_is_classified_per_line_and_published_keyed_by_order(handler: ClassifierHandler) -> None:
    [out] = await handler(incoming(encoded(ORDER)))
    assert (out.topic, out.key) == ("t1." + TOPIC_CLASSIFIED, "SO-TEST-0001")
    event = ClassifiedOrder.model_validate_json(out.value)
    assert event.event_id == derived_event_id(support.SUBMITTED_EVENT_ID, "classifier")
    assert (event.causation_id, event.produced_by) == (support.SUBMITTED_EVENT_ID, "classifier")
    assert event.order.lines[0].eccn == "EAR99"  # the submitted order travels unchanged
    assert event.classification.ccl_version == support.ccl().version
    assert event.classification.catalog_version == SNAPSHOT.version
    assert [(line.source, line.status, line.eccn) for line in event.classification.lines] == [
        ("catalog", "classified", "6A003.b.4.b"),
        ("erp", "classified", "5A992.c"),
        ("none", "unclassified", None),
    ]
    assert event.classification.lines[0].discrepancy is not None


async def test_redelivered_order_gives_byte_identical_output(handler: ClassifierHandler) -> None:
    first = await handler(incoming(encoded(ORDER)))
    second = await handler(incoming(encoded(ORDER)))
    assert first == second


async def test_undecodable_message_is_poison(handler: ClassifierHandler) -> None:
    with pytest.raises(PoisonMessage, match="not valid JSON"):
        await handler(incoming(b"{not json"))


async def test_order_breaking_the_input_contract_fails_validation(handler: ClassifierHandler) -> None:
    bad = support.submitted_order(support.order_line(1, "X", "thing"))
    bad["lines"][0]["quantity"] = 0
    with pytest.raises(ValidationError, match="quantity"):
        await handler(incoming(encoded(bad)))


async def test_unclassified_line_and_erp_catalog_disagreement_are_held_by_risk_with_evidence(
    handler: ClassifierHandler, data_dir: Path
) -> None:
    # The contract between the two services: the classifier's suggestions, unchanged, are the
    # evidence of risk's UNCLASSIFIED_ITEM reason, and the line's HOLD names the best of them.
    [out] = await handler(incoming(encoded(ORDER)))
    event = ClassifiedOrder.model_validate_json(out.value)
    unclassified = event.classification.lines[2]
    assert unclassified.status == "unclassified" and unclassified.suggestions

    policy = RiskPolicy.from_policy(load_policy(Settings().policy_file))
    decision = decide(
        event.order,
        event.classification,
        risk_samples.screening(event.order),
        load_risk_data(data_dir),
        policy,
    )
    [reason] = [r for r in decision.reasons if r.code == "UNCLASSIFIED_ITEM"]
    assert decision.decision == "HOLD" and reason.line_no == 3
    # Line 1: the ERP says EAR99, the catalog 6A003.b.4.b - the disagreement is a reason too.
    [discrepancy] = [r for r in decision.reasons if r.code == "ECCN_DISCREPANCY"]
    assert discrepancy.line_no == 1 and discrepancy.severity == "HOLD"
    assert (discrepancy.evidence["erp_eccn"], discrepancy.evidence["eccn_used"]) == ("EAR99", "6A003.b.4.b")
    assert reason.evidence["suggestions"] == [s.model_dump() for s in unclassified.suggestions]
    assert unclassified.suggestions[0].eccn in reason.message


async def test_a_swapped_ccl_is_stamped_on_the_next_order() -> None:
    # The handler reads the reference data per order: an eCFR update in between changes the
    # version stamped on the output, never half of an order.
    current = {"reference": support.reference()}
    swapping = ClassifierHandler(
        settings=Settings(topic_prefix="t1."),
        reference=lambda: current["reference"],
        catalog=lambda: SNAPSHOT,
    )
    before = ClassifiedOrder.model_validate_json((await swapping(incoming(encoded(ORDER))))[0].value)
    renamed = replace(support.ccl(), version="ecfr-2026-09-24+sha256:000000000000")
    current["reference"] = replace(support.reference(), ccl=renamed)
    after = ClassifiedOrder.model_validate_json((await swapping(incoming(encoded(ORDER))))[0].value)
    assert before.classification.ccl_version == support.ccl().version
    assert after.classification.ccl_version == "ecfr-2026-09-24+sha256:000000000000"
