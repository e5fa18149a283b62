"""Know Your Customer red flags (15 CFR 732 Supp. 3) from the real policy file: each is a HOLD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.risk.domain import ReferenceData, RiskPolicy, decide
from services.risk.red_flags import parse_rules
from services.risk.refdata import load_reference_data
from shared.events import SubmittedOrder
from shared.policy import load_policy
from shared.settings import Settings
from tests import risk_samples as rs


@pytest.fixture(scope="module")
def refdata(data_dir: Path) -> ReferenceData:
    return load_reference_data(data_dir)


@pytest.fixture(scope="module")
def policy() -> RiskPolicy:
    return RiskPolicy.from_policy(load_policy(Settings().policy_file))


def submitted(destination: str = "DE", **changes: Any) -> SubmittedOrder:
    body = rs.order_json(destination)
    body.update(changes)
    return SubmittedOrder.model_validate(body)


def codes_of(
    order: SubmittedOrder, refdata: ReferenceData, policy: RiskPolicy, *lines: Any
) -> dict[str, str]:
    decision = decide(
        order, rs.classification(*(lines or (rs.ear99(1),))), rs.screening(order), refdata, policy
    )
    found: dict[str, str] = {r.code: r.severity for r in decision.reasons}
    return found | {"_decision": decision.decision}


@pytest.mark.parametrize(
    "end_use",
    ["Spare parts for army vehicles", "Cooling of a MISSILE test stand", "uranium enrichment research"],
)
def test_a_sensitive_end_use_holds_even_an_ear99_order(
    end_use: str, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    found = codes_of(submitted(end_use=end_use), refdata, policy)
    assert found["RED_FLAG_SENSITIVE_END_USE"] == "HOLD"
    assert found["_decision"] == "HOLD"


def test_sensitive_terms_match_whole_words_only(refdata: ReferenceData, policy: RiskPolicy) -> None:
    # "armyworm" and "Navyblue" are not "army"/"navy": whole words only.
    found = codes_of(submitted(end_use="Armyworm monitoring in Navyblue fields"), refdata, policy)
    assert "RED_FLAG_SENSITIVE_END_USE" not in found
    assert found["_decision"] == "RELEASE"


def test_a_placeholder_end_use_for_a_controlled_item_is_a_red_flag(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    line = rs.classified(data_dir, 1, "5A992.c")
    assert "RED_FLAG_END_USE_UNDISCLOSED" in codes_of(
        submitted("GB", end_use="unknown"), refdata, policy, line
    )
    # A missing end use is not a red flag (the field is optional), nor a placeholder for EAR99 goods.
    assert "RED_FLAG_END_USE_UNDISCLOSED" not in codes_of(submitted("GB"), refdata, policy, line)
    assert "RED_FLAG_END_USE_UNDISCLOSED" not in codes_of(submitted("GB", end_use="unknown"), refdata, policy)


def test_a_freight_forwarder_as_ultimate_consignee_is_a_red_flag(
    refdata: ReferenceData, policy: RiskPolicy
) -> None:
    by_role = submitted(
        parties=[
            {"role": "buyer", "name": "Muster Maschinenbau GmbH", "country": "DE"},
            {"role": "ultimate_consignee", "name": "Rhein Spedition GmbH", "country": "DE"},
            {"role": "freight_forwarder", "name": "Rhein Spedition GmbH", "country": "DE"},
        ]
    )
    decision = decide(by_role, rs.classification(rs.ear99(1)), rs.screening(by_role), refdata, policy)
    flag = next(r for r in decision.reasons if r.code == "RED_FLAG_FORWARDER_AS_CONSIGNEE")
    assert flag.party_role == "ultimate_consignee"
    assert "red flag 9" in flag.evidence["regulation"]
    by_name = submitted(
        parties=[
            {"role": "buyer", "name": "Muster Maschinenbau GmbH", "country": "DE"},
            {"role": "ultimate_consignee", "name": "Baltic Cargo Logistics OU", "country": "DE"},
        ]
    )
    assert "RED_FLAG_FORWARDER_AS_CONSIGNEE" in codes_of(by_name, refdata, policy)


def test_routing_through_an_embargoed_country_or_a_consignee_abroad_is_a_red_flag(
    refdata: ReferenceData, policy: RiskPolicy
) -> None:
    via_syria = submitted("AE", transit_countries=["TR", "SY"])
    decision = decide(via_syria, rs.classification(rs.ear99(1)), rs.screening(via_syria), refdata, policy)
    routing = next(r for r in decision.reasons if r.code == "RED_FLAG_ROUTING")
    assert routing.evidence["transit_countries"] == {"SY": ["E:1"]}
    consignee_abroad = submitted(
        "AE",
        parties=[
            {"role": "buyer", "name": "Gulf Trading LLC", "country": "AE"},
            {"role": "ultimate_consignee", "name": "Caspian Machinery", "country": "AZ"},
        ],
    )
    assert "RED_FLAG_ROUTING" in codes_of(consignee_abroad, refdata, policy)
    assert "RED_FLAG_ROUTING" not in codes_of(submitted("AE", transit_countries=["NL"]), refdata, policy)


def test_cash_payment_terms_are_a_red_flag_and_the_score_comes_from_the_policy(
    refdata: ReferenceData, policy: RiskPolicy
) -> None:
    order = submitted(payment_terms="Cash on pickup")
    decision = decide(order, rs.classification(rs.ear99(1)), rs.screening(order), refdata, policy)
    assert [r.code for r in decision.reasons] == ["RED_FLAG_PAYMENT"]
    assert decision.risk_score == policy.scores["RED_FLAG_PAYMENT"]
    assert "NET30" not in str(codes_of(submitted(payment_terms="NET30"), refdata, policy))


def test_an_incomplete_red_flag_rule_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match=r"red_flags.rules\[0\].code"):
        parse_rules({"rules": [{"code": "FLAG", "kind": "routing", "score": 10}]}, "policy test")
    with pytest.raises(ValueError, match="needs terms"):
        parse_rules({"rules": [{"code": "RED_FLAG_X", "kind": "payment_terms", "score": 10}]}, "policy test")
