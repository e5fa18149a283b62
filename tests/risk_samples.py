"""Plain inputs for the risk tests: orders, classifier-like lines from the real CCL index, matches.

Classified lines take their reasons for control, Country Chart columns and licence exceptions from
the CCL index CSV in the reference data, as the classifier does, so tests decide on real columns.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path
from typing import Any

from shared.events import (
    Classification,
    EccnSuggestion,
    LineClassification,
    MatchEvidence,
    PartyMatch,
    PartyScreening,
    ScreenedList,
    Screening,
    SubmittedOrder,
)

CCL_INDEX = "controls/us/us_ccl_part774_supp1_index.csv"
CCL_VERSION = "sha256:dba1e99589a5 eCFR 2026-07-23"
SUBMITTED_EVENT_ID = "5f0c3a0e-8d57-4a3e-9a53-0b8c9e0d2f11"

SCREENED_LISTS = [
    ScreenedList(
        list_id="SDN",
        name="OFAC SDN",
        version="sha256:aaaaaaaaaaaa 2026-07-31",
        entries=19181,
        effect="block",
    ),
    ScreenedList(
        list_id="EL",
        name="BIS Entity List",
        version="sha256:bbbbbbbbbbbb 2026-07-31",
        entries=3420,
        effect="licence",
    ),
    ScreenedList(
        list_id="UVL",
        name="BIS Unverified List",
        version="sha256:cccccccccccc 2026-07-31",
        entries=222,
        effect="review",
    ),
]
_LIST_BY_ID = {lst.list_id: lst for lst in SCREENED_LISTS}


@functools.cache
def _ccl_index(data_dir: Path) -> dict[str, dict[str, str]]:
    with (data_dir / CCL_INDEX).open(encoding="utf-8") as f:
        return {row["eccn"]: row for row in csv.DictReader(f)}


def classified(data_dir: Path, line_no: int, eccn: str, **overrides: Any) -> LineClassification:
    row = _ccl_index(data_dir)[eccn.split(".")[0]]
    values: dict[str, Any] = {
        "line_no": line_no,
        "sku": f"SKU-{line_no}",
        "eccn": eccn,
        "source": "erp",
        "status": "classified",
        "erp_eccn": eccn,
        "heading": row["heading"],
        "reasons_for_control": [c for c in row["reason_codes"].split(";") if c],
        "country_chart_columns": [c for c in row["country_chart_columns"].split(";") if c],
        "license_exceptions": [e.strip() for e in row["license_exceptions"].split(" | ") if e.strip()],
    }
    values.update(overrides)
    return LineClassification(**values)


def ear99(line_no: int) -> LineClassification:
    return LineClassification(
        line_no=line_no, sku=f"SKU-{line_no}", eccn="EAR99", source="erp", status="ear99", erp_eccn="EAR99"
    )


def unclassified(line_no: int) -> LineClassification:
    return LineClassification(
        line_no=line_no,
        sku=f"SKU-{line_no}",
        eccn=None,
        source="none",
        status="unclassified",
        suggestions=[
            EccnSuggestion(
                eccn="6A003", score=0.71, heading="Cameras ...", matched_text="thermal imaging camera"
            )
        ],
    )


def invalid(line_no: int) -> LineClassification:
    return LineClassification(
        line_no=line_no,
        sku=f"SKU-{line_no}",
        eccn=None,
        source="erp",
        status="invalid",
        erp_eccn="6A999",
        error="6A999 is not on the Commerce Control List",
    )


def itar(line_no: int) -> LineClassification:
    return LineClassification(
        line_no=line_no,
        sku=f"SKU-{line_no}",
        eccn="9A004",
        source="erp",
        status="itar",
        erp_eccn="9A004",
        heading="Space launch vehicles ... subject to the ITAR",
    )


def order_json(
    destination: str,
    *,
    lines: int = 1,
    parties: list[dict[str, str]] | None = None,
    order_id: str = "SO-2026-000123",
    end_use: str | None = "Production line maintenance",
) -> dict[str, Any]:
    order: dict[str, Any] = {
        "schema": "order.submitted.v1",
        "event_id": SUBMITTED_EVENT_ID,
        "order_id": order_id,
        "occurred_at": "2026-11-30T12:00:00Z",
        "source": "erp-eu1",
        "ship_from_country": "US",
        "destination_country": destination,
        "parties": parties
        or [
            {"role": "buyer", "name": "Muster Maschinenbau GmbH", "country": destination},
            {"role": "ultimate_consignee", "name": "Muster Maschinenbau GmbH", "country": destination},
        ],
        "lines": [
            {
                "line_no": n,
                "sku": f"SKU-{n}",
                "description": "Uncooled thermal imaging camera, 640x512",
                "quantity": 2,
                "unit_price": "1250.00",
                "currency": "USD",
            }
            for n in range(1, lines + 1)
        ],
    }
    if end_use is not None:
        order["end_use"] = end_use
    return order


def order(
    destination: str,
    *,
    lines: int = 1,
    parties: list[dict[str, str]] | None = None,
    end_use: str | None = "Production line maintenance",
) -> SubmittedOrder:
    return SubmittedOrder.model_validate(
        order_json(destination, lines=lines, parties=parties, end_use=end_use)
    )


def classification(*lines: LineClassification) -> Classification:
    return Classification(ccl_version=CCL_VERSION, lines=list(lines))


def match(
    list_id: str, score: float, *, entry_id: str = "36", entry_name: str = "ROSOBORONEXPORT"
) -> PartyMatch:
    listed = _LIST_BY_ID[list_id]
    return PartyMatch(
        list_id=list_id,
        list_name=listed.name,
        list_version=listed.version,
        entry_id=entry_id,
        entry_name=entry_name,
        matched_name=entry_name,
        matched_alias=False,
        score=score,
        effect=listed.effect,
        evidence=MatchEvidence(party_country="RU", entry_countries=["RU"], country_agreement=True),
    )


def screening(the_order: SubmittedOrder, matches: dict[str, list[PartyMatch]] | None = None) -> Screening:
    found = matches or {}
    return Screening(
        policy_version="2026.11.30-2+sha256:000000000000",
        review_threshold=0.86,
        block_threshold=0.95,
        lists=SCREENED_LISTS,
        parties=[
            PartyScreening(role=p.role, name=p.name, country=p.country, matches=found.get(p.role, []))
            for p in the_order.parties
        ],
    )


def screened_event(
    the_order: SubmittedOrder, the_classification: Classification, the_screening: Screening
) -> dict[str, Any]:
    """An orders.screened.v1 envelope as the screening service publishes it."""
    return {
        "schema": "order.screened.v1",
        "event_id": "0b7f3c1e-1111-5222-8333-944455556666",
        "order_id": the_order.order_id,
        "causation_id": "0b7f3c1e-0000-5000-8000-900000000000",
        "produced_by": "screening",
        "order": json.loads(the_order.model_dump_json(by_alias=True)),
        "classification": the_classification.model_dump(mode="json"),
        "screening": the_screening.model_dump(mode="json"),
    }
