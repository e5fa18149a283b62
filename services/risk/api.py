"""HTTP for on-call engineers and compliance: what-if assessments and the data behind decisions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict

from services.risk import service
from services.risk.domain import embargo_groups
from services.risk.service import RiskRuntime
from shared.auth import require
from shared.events import Classification, Decision, Screening, SubmittedOrder
from shared.service import runtime_dependency

RuntimeDep = Annotated[RiskRuntime, Depends(runtime_dependency(RiskRuntime))]
Iso2 = Annotated[
    str,
    Path(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, upper case (e.g. DE, HK)"),
]

router = APIRouter(tags=["risk"])


class AssessRequest(BaseModel):
    """A ScreenedOrder-shaped body; envelope fields (event_id, ...) may be present and are ignored."""

    model_config = ConfigDict(extra="ignore")

    order: SubmittedOrder
    classification: Classification
    screening: Screening


class Footnote(BaseModel):
    number: int
    text: str


class ChartRowOut(BaseModel):
    country: str
    iso2: str
    columns_marked: list[str]
    columns_not_marked: list[str]
    footnotes: list[Footnote]
    embargo_pointer: str | None


class Part746Out(BaseModel):
    destination: str
    codes: list[str]
    restriction_type: str
    ear_sections: str
    un_arms_embargo: bool
    note: str


class CountryOut(BaseModel):
    iso2: str
    chart_row_iso2: str
    inheritance: str | None
    chart_row: ChartRowOut | None
    country_groups: list[str]
    embargoed: bool
    embargo_country_groups: list[str]
    part_746: list[Part746Out]
    data_versions: dict[str, str]


class PolicyOut(BaseModel):
    version: str
    content: dict[str, Any]


class RefDataOut(BaseModel):
    versions: dict[str, str]
    chart_rows: int
    chart_columns: list[str]
    country_groups: list[str]
    part_746_destinations: int
    license_exceptions: int


@router.post(
    "/assess",
    summary="What-if: decide a screened order without publishing anything",
    dependencies=[require("viewer")],
)
async def assess(body: AssessRequest, runtime: RuntimeDep) -> Decision:
    return service.assess(
        order=body.order,
        classification=body.classification,
        screening=body.screening,
        refdata=runtime.refdata,
        policy=runtime.risk_policy,
    )


@router.get("/policy", summary="The policy in force: version and content")
async def policy(runtime: RuntimeDep) -> PolicyOut:
    return PolicyOut(version=runtime.policy.version, content=runtime.policy.content)


@router.get("/refdata", summary="Versions of the reference data behind every decision")
async def refdata(runtime: RuntimeDep) -> RefDataOut:
    data = runtime.refdata
    return RefDataOut(
        versions=dict(data.versions),
        chart_rows=len(data.chart),
        chart_columns=list(data.chart_columns),
        country_groups=list(data.group_names),
        part_746_destinations=len({e for entries in data.part746.values() for e in entries}),
        license_exceptions=len(data.license_exceptions),
    )


@router.get(
    "/countries/{iso2}", summary="Country Chart row, Country Groups and Part 746 entries of a country"
)
async def country(iso2: Iso2, runtime: RuntimeDep) -> CountryOut:
    data = runtime.refdata
    profile = data.profile(iso2)
    if not profile.known:
        raise HTTPException(
            status_code=404,
            detail=(
                f"iso2={iso2!r}: no Country Chart row, Country Group entry or Part 746 entry; "
                "orders to it are held (UNKNOWN_DESTINATION_ROW)"
            ),
        )
    row = profile.chart
    return CountryOut(
        iso2=iso2,
        chart_row_iso2=profile.row_iso2,
        inheritance=profile.inheritance.basis if profile.inheritance else None,
        chart_row=None
        if row is None
        else ChartRowOut(
            country=row.country,
            iso2=row.iso2,
            columns_marked=[c for c in data.chart_columns if c in row.marked_columns],
            columns_not_marked=[c for c in data.chart_columns if c not in row.marked_columns],
            footnotes=[Footnote(number=n, text=data.chart_footnotes.get(n, "")) for n in row.footnotes],
            embargo_pointer=row.embargo_pointer,
        ),
        country_groups=[g for g in data.group_names if g in profile.groups],
        embargoed=bool(embargo_groups(profile, runtime.risk_policy)),
        embargo_country_groups=list(runtime.risk_policy.embargo_country_groups),
        part_746=[
            Part746Out(
                destination=e.destination,
                codes=list(e.codes),
                restriction_type=e.restriction_type,
                ear_sections=e.ear_sections,
                un_arms_embargo=e.un_arms_embargo,
                note=e.note,
            )
            for e in profile.part746
        ],
        data_versions={
            k: data.versions[k] for k in ("country_chart", "country_groups", "embargoed_destinations")
        },
    )
