"""The 21 sample orders of `make run` (samples/orders.json) through the three stages' handlers, in
process: classifier (with the sample catalog) -> screening (every configured list) -> risk.

What `make run` prints is what this test asserts: each order's decision and the reason codes behind
it, at least five orders of each decision, and a release that says what it did not evaluate."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from services.classifier.app import open_catalog
from services.classifier.handler import ClassifierHandler
from services.risk.handler import RiskHandler
from services.screening.handler import ScreeningHandler
from shared.events import DecidedOrder
from shared.kafka import Incoming, Outgoing
from shared.settings import REPO_ROOT, Settings
from tests import classifier_support
from tests.risk_support import risk_runtime, sqlite_url
from tests.screening_support import loaded_screening

EXPECTED = {
    "SO-2026-000101": ("RELEASE", ["NO_LICENSE_REQUIRED"]),
    "SO-2026-000102": ("RELEASE", ["NO_LICENSE_REQUIRED"]),
    "SO-2026-000103": ("RELEASE", ["NO_LICENSE_REQUIRED"]),
    "SO-2026-000104": ("RELEASE", ["NO_LICENSE_REQUIRED"]),
    "SO-2026-000105": ("RELEASE", ["NO_LICENSE_REQUIRED"]),
    "SO-2026-000106": ("LICENSE_REQUIRED", ["LICENSE_REQUIRED"]),
    "SO-2026-000107": ("LICENSE_REQUIRED", ["LICENSE_REQUIRED"]),
    "SO-2026-000108": ("LICENSE_REQUIRED", ["RESTRICTED_PARTY"]),
    "SO-2026-000109": ("LICENSE_REQUIRED", ["LICENSE_REQUIRED"]),
    "SO-2026-000110": ("LICENSE_REQUIRED", ["LICENSE_REQUIRED"]),
    "SO-2026-000111": ("HOLD", ["UNCLASSIFIED_ITEM"]),
    "SO-2026-000112": ("HOLD", ["INVALID_ECCN"]),
    "SO-2026-000113": ("HOLD", ["ITAR_ITEM", "RED_FLAG_END_USE_UNDISCLOSED"]),
    "SO-2026-000114": ("HOLD", ["POTENTIAL_MATCH"]),
    "SO-2026-000115": ("HOLD", ["ECCN_DISCREPANCY", "LICENSE_REQUIRED"]),
    "SO-2026-000116": ("BLOCK", ["EMBARGOED_DESTINATION"]),
    "SO-2026-000117": ("BLOCK", ["DENIED_PARTY"]),
    "SO-2026-000118": ("BLOCK", ["EMBARGOED_DESTINATION", "RED_FLAG_ROUTING"]),
    "SO-2026-000119": ("BLOCK", ["DENIED_PARTY"]),
    "SO-2026-000120": ("BLOCK", ["DENIED_PARTY"]),
    # "Cooling circuit of a missile propellant test stand": knowledge of a 744.3 end use.
    "SO-2026-000121": (
        "HOLD",
        ["END_USE_LICENSE_REQUIRED", "RED_FLAG_PAYMENT", "RED_FLAG_SENSITIVE_END_USE"],
    ),
}


ORDERS: list[dict[str, Any]] = json.loads((REPO_ROOT / "samples" / "orders.json").read_text())


def _next(out: Outgoing) -> Incoming:
    return Incoming(out.topic, 0, 0, out.key.encode(), out.value, 0)


@pytest.fixture(scope="module")
async def decided(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DecidedOrder]:
    settings = Settings(
        catalog_database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.db'}",
        catalog_seed_csv=REPO_ROOT / "samples" / "catalog.csv",
    )
    reference = classifier_support.reference()
    catalog = await open_catalog(settings, reference.ccl)
    try:
        classify = ClassifierHandler(
            settings=settings, reference=lambda: reference, catalog=lambda: catalog.snapshot
        )
        screen = ScreeningHandler(settings, loaded_screening()[1])
        # make run's risk: the bundled data only, no Part 746 fetched yet, an empty licence ledger.
        async with risk_runtime(
            settings, sqlite_url(tmp_path_factory.mktemp("risk")), with_part746=False
        ) as runtime:
            decide = RiskHandler(settings=settings, runtime=runtime)
            out: dict[str, DecidedOrder] = {}
            for order in ORDERS:
                submitted = Incoming(
                    "orders.submitted.v1", 0, 0, order["order_id"].encode(), json.dumps(order).encode(), 0
                )
                [classified] = await classify(submitted)
                [screened] = await screen(_next(classified))
                [decision] = await decide(_next(screened))
                out[order["order_id"]] = DecidedOrder.model_validate_json(decision.value)
            return out
    finally:
        await catalog.close()


def test_every_sample_order_gets_its_decision_and_reasons(decided: dict[str, DecidedOrder]) -> None:
    got = {
        order_id: (event.decision.decision, sorted({r.code for r in event.decision.reasons}))
        for order_id, event in decided.items()
    }
    assert got == EXPECTED
    counts = Counter(decision for decision, _ in got.values())
    assert min(counts[d] for d in ("RELEASE", "LICENSE_REQUIRED", "HOLD", "BLOCK")) >= 5


def test_a_release_says_which_red_flags_were_evaluated_and_what_was_not(
    decided: dict[str, DecidedOrder],
) -> None:
    [release] = decided["SO-2026-000101"].decision.reasons
    evidence = release.evidence
    assert "RED_FLAG_SENSITIVE_END_USE" in evidence["red_flags_evaluated"]
    kyc = [n for n in evidence["not_evaluated"] if "732 Supp. 3" in n]
    assert kyc and all("does not show" in n for n in kyc)
