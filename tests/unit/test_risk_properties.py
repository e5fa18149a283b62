"""Properties over generated orders (hypothesis): no EAR99 order to Russia or Belarus, and no order
with a party in the covered regions of Ukraine, is ever RELEASEd — with or without Part 746 loaded,
whatever the HTS codes, end-use statements, other parties and lines, and even under a policy that
lets every licence exception be self-applied. (No licence ledger here: a licence the company holds
is the one thing that may authorise such an order, see test_risk_ledger.py.)"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.risk.domain import ReferenceData, RiskPolicy, decide
from services.risk.refdata import load_reference_data
from shared.events import SubmittedOrder
from shared.policy import load_policy
from shared.settings import Settings
from tests import risk_samples as s
from tests.risk_support import fixture_codes, part746

DATA = Settings().require_data_dir()
REFDATA: ReferenceData = load_reference_data(DATA)
POLICY = RiskPolicy.from_policy(load_policy(Settings().policy_file))
GENEROUS = replace(
    POLICY,
    exceptions={k: replace(v, self_apply=True, facts=()) for k, v in (POLICY.exceptions or {}).items()},
)
PART746 = part746()
LISTED = sorted({f"{c[:4]}.{c[4:]}" for codes in fixture_codes().values() for c in codes if len(c) == 6})

hts_codes = st.one_of(
    st.none(),
    st.sampled_from(LISTED),
    st.from_regex(r"\A[0-9]{4}\.[0-9]{2}(\.[0-9]{2})?\Z"),
    st.from_regex(r"\A[0-9]{4}\Z"),
)
end_uses = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "Production line maintenance",
            "Not for military use",
            "Civilian research only",
            "Temporary exhibition, returned within a year",
            "Spare parts for a bakery",
        ]
    ),
)
countries = st.sampled_from(["DE", "CN", "US", "TR", "KZ", "AE", "RU", "BY", "UA", "GB"])
ccl_items = st.sampled_from(["3A001", "2B001", "5A992", "3C005", "3A991", "5A002"])
REGION_ADDRESSES = [
    {"subdivision": "UA-43"},
    {"subdivision": "UA-40"},
    {"subdivision": "UA-14"},
    {"subdivision": "UA-09"},
    {"city": "Simferopol"},
    {"city": "СЕВАСТОПОЛЬ"},
    {"address": "vul. Artema 1, Donetsk"},
    {"address": "Луганськ, вул. Садова 2"},
    {"city": "Yalta", "address": "Krym"},
]


@st.composite
def lines(draw: st.DrawFn, *, ear99_only: bool) -> list[tuple[str | None, str | None]]:
    """(ECCN or None for EAR99, HTS code) per line; at least one EAR99 line."""
    count = draw(st.integers(min_value=1, max_value=4))
    found: list[tuple[str | None, str | None]] = [(None, draw(hts_codes))]
    for _ in range(count - 1):
        eccn = None if ear99_only else draw(st.one_of(st.none(), ccl_items))
        found.append((eccn, draw(hts_codes)))
    return draw(st.permutations(found))


def build(
    destination: str,
    line_specs: list[tuple[str | None, str | None]],
    parties: list[dict[str, Any]],
    end_use: str | None,
) -> tuple[SubmittedOrder, Any]:
    body = s.order_json(destination, lines=len(line_specs), parties=parties, end_use=end_use)
    classified = []
    for n, (eccn, hts) in enumerate(line_specs, start=1):
        if hts:
            body["lines"][n - 1]["hs_code"] = hts
        classified.append(s.ear99(n) if eccn is None else s.classified(DATA, n, eccn))
    return SubmittedOrder.model_validate(body), s.classification(*classified)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    destination=st.sampled_from(["RU", "BY"]),
    line_specs=lines(ear99_only=False),
    other=countries,
    end_use=end_uses,
    loaded=st.booleans(),
    generous=st.booleans(),
)
def test_no_ear99_order_to_russia_or_belarus_is_released(
    destination: str,
    line_specs: list[tuple[str | None, str | None]],
    other: str,
    end_use: str | None,
    loaded: bool,
    generous: bool,
) -> None:
    parties = [
        {"role": "buyer", "name": "Buyer Co", "country": other},
        {"role": "ultimate_consignee", "name": "Consignee Co", "country": destination},
    ]
    order, classification = build(destination, line_specs, parties, end_use)
    decision = decide(
        order,
        classification,
        s.screening(order),
        REFDATA,
        GENEROUS if generous else POLICY,
        PART746 if loaded else None,
        "not loaded (property test)",
    )
    assert decision.decision != "RELEASE", [r.message for r in decision.reasons]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    destination=countries,
    where=st.sampled_from(REGION_ADDRESSES),
    role=st.sampled_from(["buyer", "ultimate_consignee", "end_user", "intermediate_consignee", "supplier"]),
    line_specs=lines(ear99_only=True),
    end_use=end_uses,
    generous=st.booleans(),
)
def test_no_order_with_a_party_in_a_covered_region_is_released(
    destination: str,
    where: dict[str, str],
    role: str,
    line_specs: list[tuple[str | None, str | None]],
    end_use: str | None,
    generous: bool,
) -> None:
    parties = [
        {"role": "buyer", "name": "Buyer Co", "country": destination},
        {"role": role, "name": "Region Party", "country": "UA", **where},
    ]
    if role != "buyer":
        parties.append({"role": "ultimate_consignee", "name": "Buyer Co", "country": destination})
    order, classification = build(destination, line_specs, parties, end_use)
    decision = decide(
        order, classification, s.screening(order), REFDATA, GENEROUS if generous else POLICY, PART746
    )
    assert decision.decision == "BLOCK", [r.message for r in decision.reasons]
    assert any(r.code == "EMBARGOED_REGION" for r in decision.reasons)


def test_the_generators_reach_listed_and_unlisted_codes() -> None:
    # The property is only as good as its inputs: the listed codes come from the fixture's tables.
    assert len(LISTED) > 50 and "8542.39" in LISTED
