"""The records HTTP API of the trail as system of record: audit verification, exports, the dossier,
legal holds and post-shipment alerts. Included in api.py's router; routes hold no rule (verify.py,
exports.py, dossier.py, retention.py, alerts.py do).

Roles: reading one order's dossier, its holds and the alerts needs `viewer`; verifying the whole
store (a full read) and acknowledging an alert `reviewer`; a bulk export of every record, and
placing or releasing a legal hold, `admin`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from services.records import alerts, dossier, exports, retention, verify
from services.records.deps import IsoMoment, RuntimeDep, SessionDep, aware
from shared.auth import AdminDep, ReviewerDep, ViewerDep, require
from shared.events import LongText

trail_router = APIRouter()


class VerifyOut(BaseModel):
    ok: bool
    orders_checked: int
    steps_checked: int
    anchors_checked: int
    chain_positions_checked: int
    head: dict[str, Any]
    problems: list[str]
    problems_total: int
    range: dict[str, str | None]


@trail_router.get(
    "/audit/verify",
    summary="Recompute the store-wide chain and every order's chain from the stored records and check "
    "them against the anchors; names each problem (which record, which order, what is wrong)",
    dependencies=[require("reviewer")],
)
async def audit_verify(
    runtime: RuntimeDep,
    start: Annotated[IsoMoment, Query(alias="from")] = None,
    end: Annotated[IsoMoment, Query(alias="to")] = None,
) -> VerifyOut:
    filed, unreadable = runtime.anchors.read_file()
    report = await verify.verify(
        runtime.sessionmaker,
        [*runtime.anchors.published(), *filed],
        anchor_problems=unreadable,
        start=aware("from", start),
        end=aware("to", end),
    )
    return VerifyOut.model_validate(report, from_attributes=True)


@trail_router.get(
    "/exports/trail",
    summary="Every trail step recorded in [from, to), with its per-order and store-wide hashes, "
    "streamed as JSON lines or CSV",
    dependencies=[require("admin")],
    response_class=StreamingResponse,
)
async def export_trail(
    runtime: RuntimeDep,
    start: Annotated[IsoMoment, Query(alias="from")] = None,
    end: Annotated[IsoMoment, Query(alias="to")] = None,
    format: exports.ExportFormat = "jsonl",
) -> StreamingResponse:
    body = exports.export_trail(
        runtime.sessionmaker, start=aware("from", start), end=aware("to", end), fmt=format
    )
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    name = f"exportwatch-trail.{format}"
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@trail_router.get(
    "/orders/{order_id}/dossier.pdf",
    summary="The auditor's dossier of an order (PDF): order, decision, reasons with evidence and "
    "regulation, versions, reviews with identities, the trail with hashes and its verification",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def get_dossier(order_id: str, session: SessionDep, runtime: RuntimeDep, who: ViewerDep) -> Response:
    pdf = await dossier.dossier_bytes(
        session,
        order_id,
        font=runtime.settings.dossier_font,
        generated_at=datetime.now(UTC),
        generated_by=f"{who.name} ({who.role})",
    )
    if pdf is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id!r} not found")
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="dossier-{order_id}.pdf"'},
    )


# --- legal holds -----------------------------------------------------------------------------------


class HoldBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: LongText


class ReleaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: LongText
    hold_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class HoldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    hold_id: str
    order_id: str
    reason: str
    placed_by_name: str
    placed_by_key_id: str
    placed_at: datetime
    released_at: datetime | None
    released_by_name: str | None
    released_by_key_id: str | None
    release_reason: str | None


def _hold_error(exc: retention.HoldRefused) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@trail_router.post(
    "/orders/{order_id}/hold",
    status_code=status.HTTP_201_CREATED,
    summary="Place a legal hold: the order is not purged while it is in force (15 CFR 762.6(b))",
)
async def place_hold(order_id: str, body: HoldBody, who: AdminDep, runtime: RuntimeDep) -> HoldOut:
    try:
        hold = await retention.place_hold(
            runtime.sessionmaker, order_id=order_id, reason=body.reason, who=who, now=datetime.now(UTC)
        )
    except retention.HoldRefused as exc:
        raise _hold_error(exc) from exc
    return HoldOut.model_validate(hold)


@trail_router.post(
    "/orders/{order_id}/hold/release",
    summary="Release a legal hold (the only one in force, or the one named)",
)
async def release_hold(order_id: str, body: ReleaseBody, who: AdminDep, runtime: RuntimeDep) -> HoldOut:
    try:
        hold = await retention.release_hold(
            runtime.sessionmaker,
            order_id=order_id,
            hold_id=body.hold_id,
            reason=body.reason,
            who=who,
            now=datetime.now(UTC),
        )
    except retention.HoldRefused as exc:
        raise _hold_error(exc) from exc
    return HoldOut.model_validate(hold)


@trail_router.get("/orders/{order_id}/holds", summary="The order's legal holds, in force and released")
async def list_holds(order_id: str, session: SessionDep) -> list[HoldOut]:
    return [HoldOut.model_validate(hold) for hold in await retention.holds_of(session, order_id)]


# --- alerts ----------------------------------------------------------------------------------------


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event_id: str
    order_id: str
    kind: str
    submitted_event_id: str
    decided_event_id: str
    list_change_event_id: str
    list_id: str
    list_version: str
    entries: list[dict[str, Any]]
    shipped_at: datetime | None
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledgement: str | None


class AlertsOut(BaseModel):
    open: int
    alerts: list[AlertOut]


class AcknowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: LongText


@trail_router.get(
    "/alerts",
    summary="Post-shipment alerts (a list change matches a party of a shipped order), newest first, "
    "with the number still open",
)
async def list_alerts(
    session: SessionDep,
    state: alerts.AlertState | None = None,
    order_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AlertsOut:
    found = await alerts.list_alerts(session, state=state, order_id=order_id, limit=limit, offset=offset)
    return AlertsOut(
        open=await alerts.open_count(session), alerts=[AlertOut.model_validate(a) for a in found]
    )


@trail_router.post(
    "/alerts/{event_id}/acknowledge",
    summary="A reviewer has looked at the alert (say what was done): it leaves the open alerts",
)
async def acknowledge_alert(
    event_id: str, body: AcknowledgeBody, who: ReviewerDep, runtime: RuntimeDep
) -> AlertOut:
    try:
        alert = await alerts.acknowledge(
            runtime.sessionmaker, event_id=event_id, comment=body.comment, who=who, now=datetime.now(UTC)
        )
    except alerts.AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except alerts.AlertAlreadyAcknowledged as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    await alerts.measure_alerts(runtime.sessionmaker)
    return AlertOut.model_validate(alert)
