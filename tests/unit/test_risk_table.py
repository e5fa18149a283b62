"""The decision table, scenario by scenario, against outcomes this test works out itself from the
data files — the Country Chart and Country Groups CSVs, the CCL index, and the Part 746 fixture read
with its own XML walk — without any of the service's code.

The oracle below is the law as the files state it, for items no chart footnote names:
1. a destination or party country in Country Group E:1/E:2 (740 Supp. 1): BLOCK;
2. a checked country (destination, ultimate consignee, end user) without a chart row: HOLD;
3. Russia or Belarus checked (746.8): a CCL item needs a licence; an EAR99 item needs one when a
   Supplement (2, 4, 5, 6, 7) to Part 746 lists its HTS-6 code, else it is held (no code, or a code
   the supplements do not list);
4. otherwise a CCL item needs a licence when any of its chart columns is marked X in a checked
   country's row (738.4); EAR99 needs none.
The most severe outcome wins. Scenarios avoid what the oracle does not model: chart footnotes that
name ECCNs (firearms, 0A919, India's 6A003.b.4.b), UN arms-embargo destinations, CC items.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from services.risk.domain import ReferenceData, RiskPolicy, decide
from services.risk.refdata import load_reference_data
from shared.events import LineClassification, SubmittedOrder
from shared.policy import load_policy
from shared.settings import Settings
from tests import risk_samples as s
from tests.risk_support import PART746_XML, part746

DATA = Settings().require_data_dir()
SEVERITY = {"RELEASE": 0, "LICENSE_REQUIRED": 1, "HOLD": 2, "BLOCK": 3}


def _csv(relative: str) -> dict[str, dict[str, str]]:
    with (DATA / relative).open(encoding="utf-8") as f:
        return {row["iso2"] if "iso2" in row else row["eccn"]: row for row in csv.DictReader(f)}


CHART = _csv("controls/us/us_country_chart_part738_supp1.csv")
GROUPS = _csv("controls/us/us_country_groups_part740_supp1.csv")
CCL = _csv("controls/us/us_ccl_part774_supp1_index.csv")


def _fixture_hts() -> dict[int, set[str]]:
    """HTS-6 codes per item supplement, straight from the fixture's table cells."""
    found: dict[int, set[str]] = {}
    for div in ET.parse(PART746_XML).getroot().iter("DIV9"):
        number = re.match(r"Supplement No\. (\d+) to Part 746", div.get("N", ""))
        if number is None or int(number[1]) not in (2, 4, 5, 6, 7):
            continue
        cells = ("".join(td.itertext()).strip() for td in div.iter("TD"))
        found[int(number[1])] = {c.replace(".", "") for c in cells if re.fullmatch(r"\d{4}\.\d{2}", c)}
    return found


HTS = _fixture_hts()
LISTED = {code for codes in HTS.values() for code in codes}


@dataclass(frozen=True)
class Item:
    label: str
    eccn: str | None  # None: EAR99
    hs_code: str | None = None


CCL_ITEMS = [Item(e, e) for e in ("3A001", "2B001", "5A992", "3C005", "1C350", "5A002", "3A991", "1A004")]
EAR99_ITEMS = [
    *(Item(f"EAR99 HTS {sorted(HTS[n])[0]} (Supp. {n})", None, sorted(HTS[n])[0]) for n in sorted(HTS)),
    Item("EAR99 HTS 940131 (listed nowhere)", None, "9401.31"),
    Item("EAR99 without HTS", None, None),
]
DESTINATIONS = ["DE", "GB", "JP", "CA", "BR", "AE", "TR", "UA", "CN", "VE", "MM", "KH", "RU", "BY"]
DESTINATIONS += ["IR", "CU", "KP", "SY", "GL"]
END_USERS = [("DE", "CN"), ("GB", "RU"), ("JP", "SY"), ("CA", "BY")]


def expected(countries: list[str], item: Item) -> str:
    outcome = 0
    for iso2 in countries:
        groups = GROUPS.get(iso2, {})
        if groups.get("E:1") == "X" or groups.get("E:2") == "X":
            return "BLOCK"
        row = CHART.get(iso2)
        if row is None:
            outcome = max(outcome, SEVERITY["HOLD"])
            continue
        if iso2 in ("RU", "BY"):
            if item.eccn is not None:
                outcome = max(outcome, SEVERITY["LICENSE_REQUIRED"])
            else:
                listed = item.hs_code is not None and item.hs_code.replace(".", "")[:6] in LISTED
                outcome = max(outcome, SEVERITY["LICENSE_REQUIRED" if listed else "HOLD"])
            continue
        if item.eccn is not None:
            columns = [c for c in CCL[item.eccn]["country_chart_columns"].split(";") if c]
            if any(row[c].strip().upper() == "X" for c in columns):
                outcome = max(outcome, SEVERITY["LICENSE_REQUIRED"])
    return next(k for k, v in SEVERITY.items() if v == outcome)


@dataclass(frozen=True)
class Scenario:
    destination: str
    end_user: str | None
    item: Item

    @property
    def id(self) -> str:
        via = f"+end_user_{self.end_user}" if self.end_user else ""
        return f"{self.destination}{via}:{self.item.label}"


SCENARIOS = [Scenario(d, None, i) for d in DESTINATIONS for i in (*CCL_ITEMS, *EAR99_ITEMS)]
SCENARIOS += [Scenario(d, u, i) for d, u in END_USERS for i in (*CCL_ITEMS[:3], *EAR99_ITEMS[-2:])]


@pytest.fixture(scope="module")
def refdata() -> ReferenceData:
    return load_reference_data(DATA)


@pytest.fixture(scope="module")
def policy() -> RiskPolicy:
    return RiskPolicy.from_policy(load_policy(Settings().policy_file))


def _line(item: Item) -> LineClassification:
    return s.ear99(1) if item.eccn is None else s.classified(DATA, 1, item.eccn)


def test_there_are_at_least_sixty_scenarios_and_every_outcome_occurs() -> None:
    assert len(SCENARIOS) >= 60
    outcomes = {expected([x.destination, *([x.end_user] if x.end_user else [])], x.item) for x in SCENARIOS}
    assert outcomes == set(SEVERITY)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[x.id for x in SCENARIOS])
def test_scenario(scenario: Scenario, refdata: ReferenceData, policy: RiskPolicy) -> None:
    parties = [
        {"role": "buyer", "name": "Buyer Co", "country": scenario.destination},
        {"role": "ultimate_consignee", "name": "Buyer Co", "country": scenario.destination},
    ]
    if scenario.end_user:
        parties.append({"role": "end_user", "name": "End User Co", "country": scenario.end_user})
    body = s.order_json(scenario.destination, parties=parties)
    if scenario.item.hs_code:
        body["lines"][0]["hs_code"] = scenario.item.hs_code
    order = SubmittedOrder.model_validate(body)
    decision = decide(
        order, s.classification(_line(scenario.item)), s.screening(order), refdata, policy, part746()
    )
    countries = [scenario.destination, *([scenario.end_user] if scenario.end_user else [])]
    assert decision.decision == expected(countries, scenario.item), [r.message for r in decision.reasons]
    # Every reason names its rule and source, and no code repeats for one party.
    for reason in decision.reasons:
        assert re.search(r"15 CFR|Supp|list version|Part 74", reason.message), reason.message
    keyed = [(r.code, r.party_role, r.line_no) for r in decision.reasons]
    assert len(keyed) == len(set(keyed))
