"""The decision table (docs/architecture.md) over the real Country Chart, Country Groups and Part 746 data."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from services.risk.domain import REASON_SEVERITY, ReferenceData, RiskPolicy, decide, footnote_names
from services.risk.refdata import load_reference_data
from shared.events import Decision, LineClassification, PartyMatch, Reason, most_severe
from shared.policy import Policy, load_policy
from shared.settings import Settings
from tests import risk_samples as s


@pytest.fixture(scope="module")
def refdata(data_dir: Path) -> ReferenceData:
    return load_reference_data(data_dir)


@pytest.fixture(scope="module")
def policy() -> RiskPolicy:
    return RiskPolicy.from_policy(load_policy(Settings().policy_file))


@dataclass(frozen=True)
class Case:
    destination: str
    lines: list[str]  # an ECCN, or "EAR99" / "unclassified" / "invalid" / "itar"
    decision: str
    codes: list[str]
    parties: list[dict[str, str]] | None = None
    matches: dict[str, list[PartyMatch]] = field(default_factory=dict)


def _line(data_dir: Path, line_no: int, spec: str) -> LineClassification:
    builders = {"EAR99": s.ear99, "unclassified": s.unclassified, "invalid": s.invalid, "itar": s.itar}
    return builders[spec](line_no) if spec in builders else s.classified(data_dir, line_no, spec)


def _decide(case: Case, data_dir: Path, refdata: ReferenceData, policy: RiskPolicy) -> Decision:
    order = s.order(case.destination, lines=len(case.lines), parties=case.parties)
    lines = [_line(data_dir, n, spec) for n, spec in enumerate(case.lines, start=1)]
    return decide(order, s.classification(*lines), s.screening(order, case.matches), refdata, policy)


def _codes(decision: Decision) -> list[str]:
    return [r.code for r in decision.reasons]


def _reason(decision: Decision, code: str) -> Reason:
    return next(r for r in decision.reasons if r.code == code)


def _parties(destination: str, **others: str) -> list[dict[str, str]]:
    return [
        {"role": "buyer", "name": "Buyer Co", "country": destination},
        *({"role": role, "name": f"{role} Co", "country": c} for role, c in others.items()),
    ]


CASES = {
    "clean_ear99_to_germany_is_released": Case("DE", ["EAR99"], "RELEASE", ["NO_LICENSE_REQUIRED"]),
    # One reason per embargoed country: the destination and the parties in it are its evidence.
    "iran_destination_is_blocked": Case("IR", ["EAR99"], "BLOCK", ["EMBARGOED_DESTINATION"]),
    "cuban_end_user_blocks_order_to_germany": Case(
        "DE", ["EAR99"], "BLOCK", ["EMBARGOED_DESTINATION"], parties=_parties("DE", end_user="CU")
    ),
    "sdn_match_at_block_threshold_is_denied_party": Case(
        "DE", ["EAR99"], "BLOCK", ["DENIED_PARTY"], matches={"buyer": [s.match("SDN", 0.97)]}
    ),
    "entity_list_match_requires_licence": Case(
        "DE", ["EAR99"], "LICENSE_REQUIRED", ["RESTRICTED_PARTY"], matches={"buyer": [s.match("EL", 0.96)]}
    ),
    "sdn_match_between_thresholds_is_held": Case(
        "DE", ["EAR99"], "HOLD", ["POTENTIAL_MATCH"], matches={"buyer": [s.match("SDN", 0.90)]}
    ),
    "unverified_list_match_is_held_whatever_the_score": Case(
        "DE", ["EAR99"], "HOLD", ["POTENTIAL_MATCH"], matches={"buyer": [s.match("UVL", 0.99)]}
    ),
    "thermal_camera_6a003_to_china_requires_licence": Case(
        "CN", ["6A003.b.4.b"], "LICENSE_REQUIRED", ["LICENSE_REQUIRED"]
    ),
    "thermal_camera_6a003_to_uk_is_released_no_x_in_gb_row": Case(
        "GB", ["6A003.b.4.b"], "RELEASE", ["NO_LICENSE_REQUIRED"]
    ),
    # Germany's row marks RS1, one of 6A003's columns: the chart (not the NS2 column) requires a licence.
    "thermal_camera_6a003_to_germany_requires_licence_for_rs1": Case(
        "DE", ["6A003.b.4.b"], "LICENSE_REQUIRED", ["LICENSE_REQUIRED"]
    ),
    "ns2_only_machine_tool_2b001_to_germany_is_released": Case(
        "DE", ["2B001"], "RELEASE", ["NO_LICENSE_REQUIRED"]
    ),
    "unclassified_line_is_held": Case("DE", ["unclassified"], "HOLD", ["UNCLASSIFIED_ITEM"]),
    "invalid_eccn_is_held": Case("DE", ["invalid"], "HOLD", ["INVALID_ECCN"]),
    "itar_item_is_held": Case("DE", ["itar"], "HOLD", ["ITAR_ITEM"]),
    "destination_without_chart_row_is_held": Case("GL", ["EAR99"], "HOLD", ["UNKNOWN_DESTINATION_ROW"]),
    "eccn_without_chart_column_is_held": Case("DE", ["9A018"], "HOLD", ["NO_COUNTRY_CHART_COLUMN"]),
    "any_ccl_item_to_russia_requires_licence_746_8": Case(
        "RU", ["3A991"], "LICENSE_REQUIRED", ["LICENSE_REQUIRED"]
    ),
    "firearm_0a501_to_uk_requires_licence_by_footnote_10": Case(
        "GB", ["0A501"], "LICENSE_REQUIRED", ["LICENSE_REQUIRED"]
    ),
    "embargo_outranks_hold_and_licence": Case(
        "IR", ["unclassified", "6A003"], "BLOCK", ["EMBARGOED_DESTINATION", "UNCLASSIFIED_ITEM"]
    ),
    "hold_outranks_licence_required": Case(
        "CN", ["unclassified", "6A003"], "HOLD", ["UNCLASSIFIED_ITEM", "LICENSE_REQUIRED"]
    ),
    "licence_required_outranks_release": Case(
        "DE", ["EAR99", "3A001"], "LICENSE_REQUIRED", ["LICENSE_REQUIRED"]
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_decision_table(case: Case, data_dir: Path, refdata: ReferenceData, policy: RiskPolicy) -> None:
    decision = _decide(case, data_dir, refdata, policy)
    assert (decision.decision, _codes(decision)) == (case.decision, case.codes)
    assert len(decision.line_determinations) == len(case.lines)


def test_severity_order_is_block_hold_licence_release() -> None:
    assert most_severe(["RELEASE", "LICENSE_REQUIRED", "HOLD", "BLOCK"]) == "BLOCK"
    assert most_severe(["LICENSE_REQUIRED", "RELEASE", "HOLD"]) == "HOLD"
    assert most_severe(["RELEASE", "LICENSE_REQUIRED"]) == "LICENSE_REQUIRED"
    assert most_severe([]) == "RELEASE"
    assert set(REASON_SEVERITY.values()) == {"BLOCK", "HOLD", "LICENSE_REQUIRED", "RELEASE"}
    assert {c for c, s in REASON_SEVERITY.items() if s == "RELEASE"} == {
        "LICENSE_COVERED",
        "LICENSE_EXCEPTION",
    }


def test_licence_required_names_columns_country_and_regulation(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = _decide(Case("CN", ["6A003.b.4.b"], "", []), data_dir, refdata, policy)
    reason = _reason(decision, "LICENSE_REQUIRED")
    assert "NS2" in reason.message and "CN (China)" in reason.message and "15 CFR 738.4" in reason.message
    assert reason.line_no == 1
    assert reason.evidence["countries"][0]["columns_marked"] == ["NS2", "NP1", "RS1", "RS2"]
    assert reason.evidence["data_versions"]["country_chart"] == refdata.versions["country_chart"]
    determination = decision.line_determinations[0]
    assert determination.license_required is True
    assert determination.columns_applicable == ["NS2", "NP1", "RS1", "RS2"]
    assert determination.countries_checked == ["CN"]
    # China is in neither Country Group B nor A:5: no exception is offered.
    assert determination.license_exceptions_possible == []


def test_hong_kong_is_decided_on_the_china_row(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = _decide(Case("HK", ["6A003.b.4.b"], "", []), data_dir, refdata, policy)
    country = _reason(decision, "LICENSE_REQUIRED").evidence["countries"][0]
    assert decision.decision == "LICENSE_REQUIRED"
    assert (country["country"], country["chart_row"]) == ("HK", "CN")
    assert "85 FR 83788" in country["inheritance"]
    assert decision.line_determinations[0].columns_applicable == ["NS2", "NP1", "RS1", "RS2"]


def test_liechtenstein_follows_switzerland(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = _decide(Case("LI", ["3A001"], "", []), data_dir, refdata, policy)
    country = _reason(decision, "LICENSE_REQUIRED").evidence["countries"][0]
    assert country["chart_row"] == "CH" and "footnote 5" in country["inheritance"]


def test_end_user_country_is_checked_besides_destination(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    # 2B001 (NS2, NP1) needs no licence to Germany but does to a Chinese end user (15 CFR 738.4).
    case = Case("DE", ["2B001"], "", [], parties=_parties("DE", end_user="CN"))
    decision = _decide(case, data_dir, refdata, policy)
    reason = _reason(decision, "LICENSE_REQUIRED")
    assert decision.decision == "LICENSE_REQUIRED"
    assert [c["country"] for c in reason.evidence["countries"]] == ["CN"]
    assert reason.evidence["countries"][0]["roles"] == ["end_user"]
    assert decision.line_determinations[0].countries_checked == ["DE", "CN"]


def test_exceptions_offered_only_where_country_group_allows(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    # 3C005 (NS2 only; LVS $3,000, GBS Yes): Brazil is in Country Group B, China is not.
    to_brazil = _decide(Case("BR", ["3C005"], "", []), data_dir, refdata, policy)
    to_china = _decide(Case("CN", ["3C005"], "", []), data_dir, refdata, policy)
    assert to_brazil.line_determinations[0].license_exceptions_possible == ["LVS", "GBS"]
    offered = _reason(to_brazil, "LICENSE_REQUIRED").evidence["license_exceptions_possible"]
    assert [(e["symbol"], e["section"]) for e in offered] == [
        ("LVS", "15 CFR 740.3"),
        ("GBS", "15 CFR 740.4"),
    ]
    assert all("subject to" in e["note"] and e["conditions"] for e in offered)
    # 3C005's LVS value is $3,000 and the line is 2 x $1,250: within it, nothing left to confirm.
    assert offered[0]["value_limit_usd"] == "3000" and offered[0]["facts_missing"] == []
    assert to_china.line_determinations[0].license_exceptions_possible == []
    not_offered = _reason(to_china, "LICENSE_REQUIRED").evidence["license_exceptions_not_offered"]
    assert {e["why"] for e in not_offered} == {"CN not in Country Group B"}


def test_denied_party_reason_names_list_entry_and_version(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    case = Case("DE", ["EAR99"], "", [], matches={"buyer": [s.match("SDN", 0.97, entry_id="17029")]})
    reason = _reason(_decide(case, data_dir, refdata, policy), "DENIED_PARTY")
    assert reason.party_role == "buyer"
    assert "SDN entry 17029 'ROSOBORONEXPORT'" in reason.message
    assert "31 CFR 501.805" in reason.message  # the policy's rationale for the SDN list
    assert reason.evidence["list_version"] == s.SCREENED_LISTS[0].version


def test_embargo_reason_cites_country_group_and_part_746(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    reason = _decide(Case("IR", ["EAR99"], "", []), data_dir, refdata, policy).reasons[0]
    assert reason.party_role is None
    assert "E:1" in reason.message and "15 CFR 746.7" in reason.message
    assert reason.evidence["country_groups"] == ["D:2", "D:3", "D:4", "D:5", "E:1"]


def test_unclassified_reason_carries_the_suggestions(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    reason = _reason(
        _decide(Case("DE", ["unclassified"], "", []), data_dir, refdata, policy), "UNCLASSIFIED_ITEM"
    )
    assert reason.evidence["suggestions"][0]["eccn"] == "6A003"
    assert "6A003" in reason.message


def test_eccn_discrepancy_is_held_and_the_used_eccn_still_checked(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    line = s.classified(data_dir, 1, "3A001", catalog_eccn="3A991", discrepancy="ERP 3A001, catalog 3A991")
    order = s.order("DE")
    decision = decide(order, s.classification(line), s.screening(order), refdata, policy)
    assert decision.decision == "HOLD"
    assert _codes(decision) == ["ECCN_DISCREPANCY", "LICENSE_REQUIRED"]


def test_release_explains_what_was_checked(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    decision = _decide(Case("GB", ["EAR99", "6A003.b.4.b"], "", []), data_dir, refdata, policy)
    (reason,) = decision.reasons
    assert (reason.code, reason.severity, decision.risk_score) == ("NO_LICENSE_REQUIRED", "RELEASE", 0)
    assert [line["eccn"] for line in reason.evidence["lines"]] == ["EAR99", "6A003.b.4.b"]
    assert reason.evidence["countries_checked"] == [
        {"country": "GB", "roles": ["destination", "ultimate_consignee"], "chart_row": "GB"}
    ]
    assert reason.evidence["screened_lists"] == {lst.list_id: lst.version for lst in s.SCREENED_LISTS}
    assert reason.evidence["not_evaluated"]


def test_data_versions_name_every_source(data_dir: Path, refdata: ReferenceData, policy: RiskPolicy) -> None:
    versions = _decide(Case("DE", ["EAR99"], "", []), data_dir, refdata, policy).data_versions
    assert versions["ccl"] == s.CCL_VERSION
    assert versions["list:SDN"] == s.SCREENED_LISTS[0].version
    assert versions["country_chart"].startswith("sha256:") and versions["country_chart"].endswith(
        "eCFR 2026-07-23"
    )
    assert {"country_groups", "embargoed_destinations", "license_exceptions", "screening_policy"} <= set(
        versions
    )


def test_risk_score_is_max_plus_increment_per_additional_reason(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    single = _decide(Case("DE", ["unclassified"], "", []), data_dir, refdata, policy)
    double = _decide(Case("DE", ["unclassified", "itar"], "", []), data_dir, refdata, policy)
    blocked = _decide(Case("IR", ["unclassified"], "", []), data_dir, refdata, policy)
    assert single.risk_score == policy.scores["UNCLASSIFIED_ITEM"]
    assert double.risk_score == policy.scores["ITAR_ITEM"] + policy.additional_reason_increment
    assert blocked.risk_score == 100


def test_decision_is_deterministic(data_dir: Path, refdata: ReferenceData, policy: RiskPolicy) -> None:
    case = Case("CN", ["6A003.b.4.b", "unclassified"], "", [], matches={"buyer": [s.match("EL", 0.99)]})
    assert _decide(case, data_dir, refdata, policy) == _decide(case, data_dir, refdata, policy)


def test_policy_without_a_score_for_a_reason_code_is_refused() -> None:
    content = load_policy(Settings().policy_file).content
    scores = {k: v for k, v in content["risk"]["scores"].items() if k != "ECCN_DISCREPANCY"}
    broken = Policy(version="test", content={**content, "risk": {**content["risk"], "scores": scores}})
    with pytest.raises(ValueError, match="ECCN_DISCREPANCY"):
        RiskPolicy.from_policy(broken)


def test_policy_thresholds_come_from_the_policy(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    stricter = replace(policy, block_threshold=0.99)
    case = Case("DE", ["EAR99"], "", [], matches={"buyer": [s.match("SDN", 0.97)]})
    assert _decide(case, data_dir, refdata, stricter).decision == "HOLD"


def test_no_exception_offered_while_a_party_matches_a_list(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    # Entity List parties: licence exceptions excluded (15 CFR 744.11(a)), whatever the destination.
    case = Case("BR", ["3C005"], "", [], matches={"buyer": [s.match("EL", 0.96)]})
    decision = _decide(case, data_dir, refdata, policy)
    assert _codes(decision) == ["RESTRICTED_PARTY", "LICENSE_REQUIRED"]
    assert decision.line_determinations[0].license_exceptions_possible == []
    not_offered = _reason(decision, "LICENSE_REQUIRED").evidence["license_exceptions_not_offered"]
    assert all("744.11(a)" in e["why"] for e in not_offered)


def test_exception_symbols_as_the_classifier_sends_them_are_evaluated(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    # The classifier sends the symbols already narrowed to the item's paragraph.
    line = s.classified(data_dir, 1, "3C005", license_exceptions=["LVS", "GBS", "ENC"])
    order = s.order("BR")
    decision = decide(order, s.classification(line), s.screening(order), refdata, policy)
    assert decision.line_determinations[0].license_exceptions_possible == ["LVS", "GBS"]
    not_offered = _reason(decision, "LICENSE_REQUIRED").evidence["license_exceptions_not_offered"]
    assert [e["entry"] for e in not_offered] == ["ENC"]


@pytest.mark.parametrize(
    ("eccn", "named"),
    [
        ("0A501", True),
        ("0A501.a", True),
        ("0A501.y", False),
        ("0A504.i", True),
        ("0A504", True),
        ("0A503", False),
    ],
)
def test_footnote_10_names_firearms_except_0a501_y(refdata: ReferenceData, eccn: str, named: bool) -> None:
    assert footnote_names(eccn, refdata.chart_footnotes[10]) is named


def test_india_footnote_7_is_cited_for_6a003_b_4_b(
    data_dir: Path, refdata: ReferenceData, policy: RiskPolicy
) -> None:
    reason = _reason(
        _decide(Case("IN", ["6A003.b.4.b"], "", []), data_dir, refdata, policy), "LICENSE_REQUIRED"
    )
    assert [f["number"] for f in reason.evidence["countries"][0]["footnotes"]] == [7]
    assert "footnote 7" in reason.message
