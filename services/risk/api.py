"""HTTP for on-call engineers and compliance: what-if assessments, the data behind decisions, the
licences held and their draw-downs, the policy reload and the Part 746 update."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, params, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.risk import service
from services.risk.domain import embargo_groups
from services.risk.ledger import Drawdown, Licence, LicenceExists, LicenceSpec, from_micros
from services.risk.part746 import Part746Error
from services.risk.service import PolicyRefused, RiskRuntime
from shared.auth import require
from shared.events import (
    Classification,
    CountryCode,
    CurrencyCode,
    DecimalString,
    Decision,
    LongText,
    Screening,
    SubmittedOrder,
    Text,
    Timestamp,
)
from shared.service import runtime_dependency

RuntimeDep = Annotated[RiskRuntime, Depends(runtime_dependency(RiskRuntime))]
Iso2 = Annotated[
    str,
    Path(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, upper case (e.g. DE, HK)"),
]
LicenceNumber = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$", examples=["D1234567"])]
LicensedItem = Annotated[
    str, Field(pattern=r"^(?:EAR99|\d[A-E]\d{3}(?:\.[a-z0-9]+)*)$", examples=["3A001.a.7", "EAR99"])
]

router = APIRouter(tags=["risk"])
# Routes that change what risk decides (licences, the policy, Part 746): admin keys only.
ADMIN_DEPENDENCIES: list[params.Depends] = [require("admin")]
admin_router = APIRouter(tags=["risk admin"], dependencies=ADMIN_DEPENDENCIES)


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
    summary="What-if: decide a screened order without publishing anything (the licence ledger is not drawn)",
    dependencies=[require("viewer")],
)
async def assess(body: AssessRequest, runtime: RuntimeDep) -> Decision:
    return service.assess_order(
        order=body.order, classification=body.classification, screening=body.screening, runtime=runtime
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


# --- licences held (the ledger) ------------------------------------------------------------------


class LicenceParty(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    country: CountryCode


class LicenceIn(BaseModel):
    """A licence the company holds, as issued: what it covers, to where and whom, how much, until when."""

    model_config = ConfigDict(extra="forbid")

    number: LicenceNumber
    authority: Text = "BIS"
    eccns: list[LicensedItem] = Field(
        default_factory=list, description="ECCNs (a paragraph covers its sub-paragraphs) or EAR99"
    )
    skus: list[Text] = Field(default_factory=list, description="items by SKU, besides or instead of ECCNs")
    countries: list[CountryCode] = Field(min_length=1, description="destination countries it is valid for")
    parties: list[LicenceParty] = Field(
        default_factory=list,
        description="named parties; when given, every consignee, end user and buyer must be one",
    )
    value_limit: DecimalString | None = None
    currency: CurrencyCode = "USD"
    quantity_limit: Annotated[int, Field(ge=1)] | None = None
    valid_from: Timestamp
    valid_until: Timestamp
    provisos: list[LongText] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> LicenceIn:
        if not self.eccns and not self.skus:
            raise ValueError("eccns and skus are both empty: a licence covers some item")
        if self.value_limit is None and self.quantity_limit is None:
            raise ValueError("value_limit and quantity_limit are both missing: a licence has a limit")
        if self.valid_until <= self.valid_from:
            raise ValueError(
                f"valid_until {self.valid_until.isoformat()!r} is not after valid_from {self.valid_from.isoformat()!r}"
            )
        return self


class DrawdownOut(BaseModel):
    id: int
    order_id: str
    order_version: str
    line_no: int
    eccn: str
    quantity: int
    value: str
    currency: str
    status: str
    decided_at: datetime
    reversed_at: datetime | None
    reversal_reason: str | None


class LicenceOut(BaseModel):
    number: str
    authority: str
    eccns: list[str]
    skus: list[str]
    countries: list[str]
    parties: list[dict[str, str]]
    currency: str
    value_limit: str | None
    value_used: str
    value_remaining: str | None
    quantity_limit: int | None
    quantity_used: int
    quantity_remaining: int | None
    valid_from: datetime
    valid_until: datetime
    provisos: list[str]
    drawdowns: list[DrawdownOut] | None = None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def _licence_out(licence: Licence, drawdowns: list[Drawdown] | None = None) -> LicenceOut:
    limit = licence.value_limit_micros
    return LicenceOut(
        number=licence.number,
        authority=licence.authority,
        eccns=licence.eccns,
        skus=licence.skus,
        countries=licence.countries,
        parties=licence.parties,
        currency=licence.currency,
        value_limit=_money(from_micros(limit)),
        value_used=_money(from_micros(licence.value_used_micros)) or "0",
        value_remaining=_money(from_micros(limit - licence.value_used_micros)) if limit is not None else None,
        quantity_limit=licence.quantity_limit,
        quantity_used=licence.quantity_used,
        quantity_remaining=licence.quantity_limit - licence.quantity_used if licence.quantity_limit else None,
        valid_from=licence.valid_from,
        valid_until=licence.valid_until,
        provisos=licence.provisos,
        drawdowns=None
        if drawdowns is None
        else [
            DrawdownOut(
                id=d.id,
                order_id=d.order_id,
                order_version=d.order_version,
                line_no=d.line_no,
                eccn=d.eccn,
                quantity=d.quantity,
                value=_money(from_micros(d.value_micros)) or "0",
                currency=d.currency,
                status=d.status,
                decided_at=d.decided_at,
                reversed_at=d.reversed_at,
                reversal_reason=d.reversal_reason,
            )
            for d in drawdowns
        ],
    )


@admin_router.post(
    "/licences",
    status_code=status.HTTP_201_CREATED,
    summary="Record a licence the company holds (lines it covers are released with LICENSE_COVERED)",
    responses={409: {"description": "a licence with this number is already held"}},
)
async def add_licence(body: LicenceIn, runtime: RuntimeDep) -> LicenceOut:
    spec = LicenceSpec(
        number=body.number,
        authority=body.authority,
        eccns=tuple(body.eccns),
        skus=tuple(body.skus),
        countries=tuple(dict.fromkeys(body.countries)),
        parties=tuple((p.name, p.country) for p in body.parties),
        currency=body.currency,
        value_limit=Decimal(body.value_limit) if body.value_limit is not None else None,
        quantity_limit=body.quantity_limit,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        provisos=tuple(body.provisos),
    )
    try:
        licence = await service.add_licence(runtime, spec)
    except LicenceExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return _licence_out(licence, [])


@router.get("/licences", summary="The licences held, with what remains of each")
async def list_licences(runtime: RuntimeDep) -> list[LicenceOut]:
    return [_licence_out(licence) for licence in await service.list_licences(runtime)]


@router.get(
    "/licences/{number}", summary="One licence: what remains, and every draw-down with its order and line"
)
async def get_licence(number: Annotated[str, Path(max_length=64)], runtime: RuntimeDep) -> LicenceOut:
    found = await service.get_licence(runtime, number)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"number {number!r}: no licence with this number is held"
        )
    return _licence_out(*found)


# --- the policy and Part 746 ------------------------------------------------------------------


@admin_router.post(
    "/policy/reload",
    summary="Read the policy file again and put it in force (no restart); a refused file changes nothing",
    responses={422: {"description": "the file is refused; the detail names the key at fault"}},
)
async def reload_policy(runtime: RuntimeDep) -> PolicyOut:
    try:
        policy = await service.reload_policy(runtime)
    except PolicyRefused as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{exc}; policy {runtime.policy.version} stays in force",
        ) from exc
    return PolicyOut(version=policy.version, content=policy.content)


class Part746StatusOut(BaseModel):
    loaded: bool
    version: str | None
    why_not_loaded: str | None
    issue_date: str | None
    source: str | None
    supplements: dict[str, dict[str, Any]]


def _part746_out(runtime: RiskRuntime) -> Part746StatusOut:
    loaded = runtime.part746
    if loaded is None:
        return Part746StatusOut(
            loaded=False,
            version=None,
            why_not_loaded=runtime.part746_missing,
            issue_date=None,
            source=None,
            supplements={},
        )
    return Part746StatusOut(
        loaded=True,
        version=loaded.version,
        why_not_loaded=None,
        issue_date=loaded.issue_date,
        source=loaded.source,
        supplements={
            str(n): {"title": s.title, "sections": list(s.sections), "hts_codes": len(s.items)}
            for n, s in sorted(loaded.supplements.items())
        },
    )


@router.get("/part746", summary="The Part 746 HTS-6 supplements in force, or why none is")
async def part746_status(runtime: RuntimeDep) -> Part746StatusOut:
    return _part746_out(runtime)


class Part746UpdateIn(BaseModel):
    date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None


@admin_router.post(
    "/part746/update",
    summary="Fetch Part 746 from the eCFR, verify it and swap it in",
    responses={
        502: {"description": "the eCFR could not be read or sent no plausible Part 746; nothing changed"}
    },
)
async def part746_update(
    runtime: RuntimeDep, body: Annotated[Part746UpdateIn | None, Body()] = None
) -> Part746StatusOut:
    try:
        await service.update_part746(runtime, date=body.date if body else None)
    except Part746Error as exc:
        kept = runtime.part746.version if runtime.part746 else "none"
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, f"Part 746 not updated ({exc}); the one in force ({kept}) stays"
        ) from exc
    return _part746_out(runtime)


router.include_router(admin_router)
