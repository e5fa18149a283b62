"""Hand-written cases: the occupied regions (746.6), Part 746 by HTS-6, Part 744 end-use and
end-user rules, Entity List scopes, licence exceptions with their conditions, red flags with
negation, and reasons (one per code and party, collapsed parties, score contributions)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.risk.domain import ReferenceData, RiskPolicy, decide
from services.risk.refdata import load_reference_data
from services.risk.rules import ExceptionRule, find_terms, term_pattern
from shared.events import Decision, LineClassification, MatchEvidence, PartyMatch, Reason, SubmittedOrder
from shared.policy import Policy, load_policy
from shared.settings import Settings
from tests import risk_samples as s
from tests.risk_support import part746


@pytest.fixture(scope="module")
def refdata(data_dir: Path) -> ReferenceData:
    return load_reference_data(data_dir)


@pytest.fixture(scope="module")
def policy() -> RiskPolicy:
    return RiskPolicy.from_policy(load_policy(Settings().policy_file))


def order(
    destination: str,
    *,
    parties: list[dict[str, Any]] | None = None,
    end_use: str | None = "Production line maintenance",
    hs_code: str | None = None,
    quantity: int = 2,
    unit_price: str = "1250.00",
    currency: str = "USD",
) -> SubmittedOrder:
    body = s.order_json(destination, parties=parties, end_use=end_use)
    body["lines"][0].update(quantity=quantity, unit_price=unit_price, currency=currency)
    if hs_code:
        body["lines"][0]["hs_code"] = hs_code
    return SubmittedOrder.model_validate(body)


def run(
    the_order: SubmittedOrder,
    line: LineClassification,
    refdata: ReferenceData,
    policy: RiskPolicy,
    matches: dict[str, list[PartyMatch]] | None = None,
    *,
    with_part746: bool = True,
) -> Decision:
    screening = s.screening(the_order, matches)
    loaded = part746() if with_part746 else None
    return decide(the_order, s.classification(line), screening, refdata, policy, loaded, "not cached (test)")


def codes(decision: Decision) -> list[str]:
    return [r.code for r in decision.reasons]


def reason(decision: Decision, code: str) -> Reason:
    return next(r for r in decision.reasons if r.code == code)


def el_match(score: float, requirement: str | None, list_id: str = "EL", entry_id: str = "E-1") -> PartyMatch:
    found = s.match("EL", score, entry_id=entry_id)
    evidence = MatchEvidence(
        party_country="CN", entry_countries=["CN"], country_agreement=True, license_requirement=requirement
    )
    return found.model_copy(update={"list_id": list_id, "evidence": evidence})


# --- the occupied regions of Ukraine (15 CFR 746.6) ---------------------------------------------


def ua_party(**fields: str) -> list[dict[str, Any]]:
    return [{"role": "buyer", "name": "Promtekh TOV", "country": fields.pop("country", "UA"), **fields}]


@pytest.mark.parametrize(
    ("fields", "region"),
    [
        ({"subdivision": "UA-43"}, "crimea"),
        ({"subdivision": "UA-40"}, "sevastopol"),
        ({"city": "Сімферополь", "address": "вул. Гоголя 5"}, "crimea"),
        ({"city": "Simferopol"}, "crimea"),
        ({"address": "ul. Lenina 3, Donetsk"}, "dnr"),
        ({"address": "пр. Миру 10, Луганськ"}, "lnr"),
        ({"city": "Севастополь", "country": "RU"}, "sevastopol"),
        ({"address": "Krym, Yalta, Naberezhna 1"}, "crimea"),
    ],
)
def test_a_party_in_a_covered_region_blocks(
    fields: dict[str, str], region: str, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    destination = fields.get("country", "UA")
    decision = run(order(destination, parties=ua_party(**fields)), s.ear99(1), refdata, policy)
    found = reason(decision, "EMBARGOED_REGION")
    assert decision.decision == "BLOCK"
    assert found.evidence["region"] == region and "746.6" in found.message
    assert found.evidence.get("subdivision") or found.evidence["matched_terms"]


@pytest.mark.parametrize("fields", [{"subdivision": "UA-23"}, {"city": "Kherson"}, {"address": "Melitopol"}])
def test_zaporizhzhia_and_kherson_are_held_for_review(
    fields: dict[str, str], refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = run(order("UA", parties=ua_party(**fields)), s.ear99(1), refdata, policy)
    assert (decision.decision, codes(decision)) == ("HOLD", ["REGION_REVIEW"])


def test_kyiv_is_not_a_covered_region(refdata: ReferenceData, policy: RiskPolicy) -> None:
    decision = run(
        order("UA", parties=ua_party(city="Kyiv", subdivision="UA-30")), s.ear99(1), refdata, policy
    )
    assert decision.decision == "RELEASE"
    assert "crimea" in decision.reasons[-1].evidence["regions_evaluated"]


def test_a_subdivision_outside_the_party_country_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"subdivision 'UA-43' is not in country 'RU'"):
        order("RU", parties=ua_party(subdivision="UA-43", country="RU"))
    with pytest.raises(ValidationError, match=r"'XX-99' is not an ISO 3166-2 subdivision"):
        order("UA", parties=ua_party(subdivision="XX-99"))


# --- Part 746 by HTS-6 (Russia and Belarus) --------------------------------------------------------


def test_ear99_to_russia_without_part_746_is_held_citing_what_is_missing(
    refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = run(order("RU", hs_code="8413.70"), s.ear99(1), refdata, policy, with_part746=False)
    found = reason(decision, "PART_746_UNDETERMINED")
    assert decision.decision == "HOLD"
    assert "Supplements No. 2, 4, 5, 6 and 7 to Part 746" in found.message and "not loaded" in found.message


def test_ear99_listed_in_a_supplement_needs_a_licence_citing_it(
    refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = run(order("BY", hs_code="8413.70.1000"), s.ear99(1), refdata, policy)
    found = reason(decision, "LICENSE_REQUIRED")
    assert decision.decision == "LICENSE_REQUIRED"
    assert "Supplement No. 4 to Part 746 lists HTS 841370" in found.message
    assert found.evidence["listed"][0]["supplement"] == "Supplement No. 4 to Part 746"


def test_ear99_without_hts_or_unlisted_is_held(refdata: ReferenceData, policy: RiskPolicy) -> None:
    no_code = run(order("RU"), s.ear99(1), refdata, policy)
    unlisted = run(order("RU", hs_code="9401.31"), s.ear99(1), refdata, policy)
    assert reason(no_code, "PART_746_UNDETERMINED").evidence["missing"] == "hs_code (HTS-6)"
    assert "744.21(a)(2)" in reason(unlisted, "PART_746_UNDETERMINED").message
    assert no_code.decision == unlisted.decision == "HOLD"


# --- Part 744 end-use and end-user rules ------------------------------------------------------------


def test_a_supplement_2_item_to_china_without_an_end_use_is_held_naming_the_fact(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = run(order("CN", end_use=None), s.classified(data_dir, 1, "3A991"), refdata, policy)
    found = reason(decision, "END_USE_UNDETERMINED")
    assert decision.decision == "HOLD"
    assert found.evidence["missing_fact"] == "end_use" and "744.21(a)(1)" in found.message


def test_a_military_end_use_in_china_needs_a_licence_and_a_negated_one_does_not(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    line = s.classified(data_dir, 1, "3A991")
    military = run(order("CN", end_use="Radar upgrades for the navy"), line, refdata, policy)
    civilian = run(order("CN", end_use="Not for military use; civilian only"), line, refdata, policy)
    assert "END_USE_LICENSE_REQUIRED" in codes(military)
    assert reason(military, "END_USE_LICENSE_REQUIRED").evidence["regulation"] == "15 CFR 744.21(a)(1)"
    assert civilian.decision == "RELEASE"


def test_an_item_outside_supplement_2_to_china_is_not_reached_by_744_21(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = run(order("CN", end_use=None), s.classified(data_dir, 1, "3C005"), refdata, policy)
    assert "END_USE_UNDETERMINED" not in codes(decision)


@pytest.mark.parametrize(
    ("destination", "end_use", "section"),
    [
        ("DE", "Parts for a uranium enrichment cascade", "15 CFR 744.2"),
        ("BR", "Test rig for ballistic missile components", "15 CFR 744.3"),
        ("TR", "Production of nerve agents", "15 CFR 744.4"),
        ("RU", "Equipment for the FSB signals unit", "15 CFR 744.22"),
    ],
)
def test_proliferation_and_intelligence_end_uses_need_a_licence_for_any_item(
    destination: str, end_use: str, section: str, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = run(order(destination, end_use=end_use, hs_code="9401.31"), s.ear99(1), refdata, policy)
    sections = [r.evidence["regulation"] for r in decision.reasons if r.code == "END_USE_LICENSE_REQUIRED"]
    assert section in sections and decision.decision != "RELEASE"


# --- Entity List and MEU List: the listing's own licence requirement ----------------------------


def test_an_entity_listed_for_all_items_needs_a_licence_even_for_ear99(
    refdata: ReferenceData, policy: RiskPolicy
) -> None:
    match = el_match(0.97, "For all items subject to the EAR. (See § 744.11 of the EAR)")
    decision = run(order("CN"), s.ear99(1), refdata, policy, {"buyer": [match]})
    assert codes(decision) == ["RESTRICTED_PARTY"]
    assert reason(decision, "RESTRICTED_PARTY").evidence["lines_in_scope"] == [1]


def test_an_meu_listing_covers_only_supplement_2_items(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    meu = el_match(0.97, "For any item subject to the EAR listed in supplement no. 2 to part 744.", "MEU")
    ear99 = run(order("CN"), s.ear99(1), refdata, policy, {"buyer": [meu]})
    listed = run(order("CN"), s.classified(data_dir, 1, "3A991"), refdata, policy, {"buyer": [meu]})
    assert ear99.decision == "RELEASE"
    assert ear99.reasons[-1].evidence["listings_out_of_scope"][0]["scope"] == "part744_supp2"
    assert "reaches none of the lines" in ear99.reasons[-1].message
    assert codes(listed) == ["RESTRICTED_PARTY"]


def test_a_listing_for_ccl_items_does_not_catch_ear99(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    match = el_match(
        0.99, "For items on the CCL and EAR99 items listed in supplement no. 7 to part 746 of the EAR"
    )
    unlisted = run(order("CN", hs_code="9401.31"), s.ear99(1), refdata, policy, {"buyer": [match]})
    supp7 = run(order("CN", hs_code="8542.39"), s.ear99(1), refdata, policy, {"buyer": [match]})
    assert unlisted.decision == "RELEASE" and codes(supp7) == ["RESTRICTED_PARTY"]


# --- reasons: one per code and party, collapsed parties, weaker candidates, contributions -------------


def test_repeated_matches_of_one_party_in_two_roles_are_one_reason_listing_every_entry(
    refdata: ReferenceData, policy: RiskPolicy
) -> None:
    candidates = [s.match("SDN", 0.90, entry_id=str(n), entry_name=f"NAME {n}") for n in range(15)]
    decision = run(
        order("DE"), s.ear99(1), refdata, policy, {"buyer": candidates, "ultimate_consignee": candidates}
    )
    (found,) = decision.reasons
    assert found.code == "POTENTIAL_MATCH" and found.evidence["roles"] == ["buyer", "ultimate_consignee"]
    assert len(found.evidence["matches"]) == 15


def test_a_confirmed_match_is_not_raised_by_weaker_candidates_of_the_same_or_lower_effect(
    refdata: ReferenceData, policy: RiskPolicy
) -> None:
    confirmed = el_match(0.97, "For all items subject to the EAR", entry_id="E-1")
    weaker = [el_match(0.90, None, entry_id="E-2"), s.match("UVL", 0.99, entry_id="U-1")]
    decision = run(order("CN"), s.ear99(1), refdata, policy, {"buyer": [confirmed, *weaker]})
    assert (decision.decision, codes(decision)) == ("LICENSE_REQUIRED", ["RESTRICTED_PARTY"])
    assert len(reason(decision, "RESTRICTED_PARTY").evidence["weaker_candidates"]) == 2
    stronger = run(order("CN"), s.ear99(1), refdata, policy, {"buyer": [confirmed, s.match("SDN", 0.90)]})
    assert (stronger.decision, codes(stronger)) == ("HOLD", ["RESTRICTED_PARTY", "POTENTIAL_MATCH"])


def test_each_reason_states_its_contribution_to_the_score(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = run(
        order("CN", end_use=None),
        s.classified(data_dir, 1, "3A991"),
        refdata,
        policy,
        {"buyer": [s.match("UVL", 0.9)]},
    )
    contributions = [r.score_contribution or 0 for r in decision.reasons]
    assert all(r.score_contribution is not None for r in decision.reasons)
    assert sum(contributions) == decision.risk_score
    assert max(contributions) == max(policy.scores[r.code] for r in decision.reasons)


def test_a_supplier_is_screened_but_receives_no_export(refdata: ReferenceData, policy: RiskPolicy) -> None:
    parties = [
        {"role": "buyer", "name": "Muster GmbH", "country": "DE"},
        {"role": "supplier", "name": "Listed Parts Co", "country": "CN"},
    ]
    listed = el_match(0.99, "For all items subject to the EAR")
    decision = run(order("DE", parties=parties), s.ear99(1), refdata, policy, {"supplier": [listed]})
    assert (decision.decision, codes(decision)) == ("HOLD", ["POTENTIAL_MATCH"])
    assert "responsible sourcing" in decision.reasons[0].message
    denied = run(
        order("DE", parties=parties), s.ear99(1), refdata, policy, {"supplier": [s.match("SDN", 0.99)]}
    )
    assert denied.decision == "BLOCK"


# --- licence exceptions with their conditions ------------------------------------------------------


def self_applied(policy: RiskPolicy, *symbols: str) -> RiskPolicy:
    rules: dict[str, ExceptionRule] = dict(policy.exceptions or {})
    for symbol in symbols:
        rules[symbol] = replace(rules[symbol], self_apply=True)
    return replace(policy, exceptions=rules)


def test_lvs_within_the_value_limit_is_released_only_when_the_policy_self_applies_it(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    line = s.classified(data_dir, 1, "3C005")  # NS2; LVS $3,000; GBS Yes
    shown = run(order("BR"), line, refdata, policy)
    applied = run(order("BR"), line, refdata, self_applied(policy, "LVS"))
    assert shown.decision == "LICENSE_REQUIRED" and "eligible, subject to" in shown.reasons[0].message
    assert (applied.decision, codes(applied)) == ("RELEASE", ["LICENSE_EXCEPTION", "NO_LICENSE_REQUIRED"])
    assert applied.line_determinations[0].authorised_by == "licence exception LVS"


def test_lvs_over_the_value_limit_or_in_another_currency_is_not_self_applied(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    line = s.classified(data_dir, 1, "3C005")
    only_lvs = self_applied(policy, "LVS")
    over = run(order("BR", quantity=3), line, refdata, only_lvs)
    euros = run(order("BR", currency="EUR"), line, refdata, only_lvs)
    why = {
        e["entry"]: e["why"]
        for e in reason(over, "LICENSE_REQUIRED").evidence["license_exceptions_not_offered"]
    }
    assert "exceeds the entry's LVS value $3000" in why["LVS: $3,000"]
    offered = reason(euros, "LICENSE_REQUIRED").evidence["license_exceptions_possible"][0]
    assert offered["facts_missing"] == ["the line's value in USD (it is 2500.00 EUR)"]
    assert over.decision == euros.decision == "LICENSE_REQUIRED"


def test_no_exception_while_a_red_flag_is_raised(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    the_order = order("BR", end_use="unknown")
    decision = run(the_order, s.classified(data_dir, 1, "3C005"), refdata, self_applied(policy, "LVS", "GBS"))
    evidence = reason(decision, "LICENSE_REQUIRED").evidence
    assert evidence["license_exceptions_possible"] == []
    assert all("red flag" in e["why"] for e in evidence["license_exceptions_not_offered"])


def test_tmp_is_offered_only_when_the_end_use_names_a_temporary_export(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    line = s.classified(data_dir, 1, "3A001")
    plain = run(order("CN"), line, refdata, policy)
    exhibition = run(
        order("CN", end_use="Temporary exhibition at a trade show, returned in May"), line, refdata, policy
    )
    assert "TMP" not in plain.line_determinations[0].license_exceptions_possible
    tmp = next(
        e
        for e in reason(exhibition, "LICENSE_REQUIRED").evidence["license_exceptions_possible"]
        if e["symbol"] == "TMP"
    )
    assert tmp["facts_missing"] and tmp["section"] == "15 CFR 740.9"


def test_part_746_requirements_bar_exceptions(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = run(
        order("RU"), s.classified(data_dir, 1, "3C005"), refdata, self_applied(policy, "LVS", "GBS")
    )
    assert decision.decision == "LICENSE_REQUIRED"
    assert all("746.8(c)" in e["why"] for e in decision.reasons[0].evidence["license_exceptions_not_offered"])


# --- red flags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Not for military use", ()),
        ("non-military research", ()),
        ("No military end use; civilian only", ()),
        ("Civilian only, never for weapons", ()),
        ("For the army; not for resale", ("army",)),
        ("Supplied to the navy but not for weapons", ("navy",)),
        ("Military training", ("military",)),
    ],
)
def test_negated_and_hedged_mentions_are_not_hits(text: str, found: tuple[str, ...]) -> None:
    pattern = term_pattern(["military", "army", "navy", "weapons"])
    assert find_terms(pattern, text).found == found


def test_no_end_user_for_a_controlled_item_through_an_intermediary(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    parties = [
        {"role": "buyer", "name": "Delta Trading", "country": "AE"},
        {"role": "freight_forwarder", "name": "Gulf Cargo", "country": "AE"},
    ]
    decision = run(order("AE", parties=parties), s.classified(data_dir, 1, "3A001"), refdata, policy)
    assert "RED_FLAG_NO_END_USER" in codes(decision)


def test_buyer_in_another_country_without_an_intermediate_consignee(
    refdata: ReferenceData, policy: RiskPolicy
) -> None:
    parties = [
        {"role": "buyer", "name": "Alpine Holding AG", "country": "CH"},
        {"role": "ultimate_consignee", "name": "Alpine Works", "country": "DE"},
    ]
    flagged = run(order("DE", parties=parties), s.ear99(1), refdata, policy)
    explained = run(
        order(
            "DE",
            parties=[*parties, {"role": "intermediate_consignee", "name": "Alpine Hub", "country": "CH"}],
        ),
        s.ear99(1),
        refdata,
        policy,
    )
    assert codes(flagged) == ["RED_FLAG_BUYER_COUNTRY"] and explained.decision == "RELEASE"


def test_crime_control_items_raise_a_human_rights_flag_outside_a_1(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    line = s.classified(data_dir, 1, "4A003")  # CC1
    assert "RED_FLAG_HUMAN_RIGHTS" in codes(run(order("VE"), line, refdata, policy))
    assert "RED_FLAG_HUMAN_RIGHTS" not in codes(run(order("DE"), line, refdata, policy))


# --- the policy names the key at fault ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("regions", "rules", 0, "effect"),
            "maybe",
            r"regions\.rules\[0\]\.effect must be 'block' or 'review'",
        ),
        (
            ("end_use_controls", "rules", 1, "items"),
            "some",
            r"end_use_controls\.rules\[1\]\.items must be one of",
        ),
        (
            ("licence_exceptions", "exceptions", "LVS", "self_apply"),
            "yes",
            r"exceptions\.LVS\.self_apply must be",
        ),
        (("risk", "scores", "LICENSE_COVERED"), 10, r"release reasons must be 0"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_key(path: tuple[Any, ...], value: Any, message: str) -> None:
    content = load_policy(Settings().policy_file).content
    broken: Any = __import__("copy").deepcopy(content)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        RiskPolicy.from_policy(Policy(version="test", content=broken))
