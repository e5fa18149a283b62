"""The dashboard's pages of the trail as system of record: every order with the API's filters, the
post-shipment alerts (and the badge counting the open ones), legal holds on an order, its dossier.
Each calls the same use case as the API (search.py, alerts.py, retention.py, dossier.py) with the
signed-in key's identity; the roles are the API's (a hold: admin; acknowledging an alert: reviewer).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.records import alerts, dossier, retention, search
from services.records.dashboard.sessions import PREFIX, RuntimeDep, SignedDep, read_form
from services.records.dashboard.views import back, field, page
from shared.auth import require

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE = 100
REVIEW_STATES = ("unreviewed", "pending", "reviewed")
YES_NO = {"yes": True, "no": False}


def _day(text: str, *, end: bool) -> datetime | None:
    """A date field (YYYY-MM-DD) as the start of that day, or the start of the next one for `end`."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None
    moment = datetime.combine(day, time(0), tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


def _order_filter(request: Request) -> search.OrderFilter:
    """The query string as a filter; a value the API would refuse is ignored here (a form field)."""
    params = request.query_params

    def text(name: str, longest: int = 200) -> str | None:
        value = (params.get(name) or "").strip()
        return value[:longest] or None

    decision, review = text("decision"), text("review")
    country, destination = text("party_country", 2), text("destination", 2)
    return search.OrderFilter(
        decision=decision if decision in search.DECISIONS else None,
        review=review if review in REVIEW_STATES else None,  # type: ignore[arg-type]
        reason=text("reason", 64),
        party=text("party"),
        party_country=country.upper() if country else None,
        destination=destination.upper() if destination else None,
        list_id=text("list", 32),
        entry_id=text("entry", 128),
        decided_from=_day(params.get("decided_from", ""), end=False),
        decided_to=_day(params.get("decided_to", ""), end=True),
        shipped=YES_NO.get(params.get("shipped", "")),
        legal_hold=YES_NO.get(params.get("legal_hold", "")),
    )


@router.get("/orders")
async def orders_page(request: Request, runtime: RuntimeDep, signed: SignedDep) -> HTMLResponse:
    wanted = _order_filter(request)
    cursor = request.query_params.get("cursor") or None
    error = None
    async with runtime.sessionmaker() as session:
        try:
            found = await search.search_orders(session, wanted, limit=PAGE, cursor=cursor)
        except search.BadCursor as exc:
            error, found = str(exc), await search.search_orders(session, wanted, limit=PAGE)
    again = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    more = (
        f"{PREFIX}/orders?"
        + "&".join(f"{k}={quote(v)}" for k, v in again.items())
        + f"&cursor={found.next_cursor}"
        if found.next_cursor
        else None
    )
    return page(
        request,
        "orders.html",
        active="orders",
        orders=found.orders,
        more=more,
        params=request.query_params,
        error=error,
        review_states=REVIEW_STATES,
    )


# --- post-shipment alerts --------------------------------------------------------------------------


@router.get("/alerts")
async def alerts_page(request: Request, runtime: RuntimeDep, signed: SignedDep) -> HTMLResponse:
    state = request.query_params.get("state", "open")
    wanted: alerts.AlertState | None = (
        "open" if state == "open" else "acknowledged" if state == "acknowledged" else None
    )
    async with runtime.sessionmaker() as session:
        found = await alerts.list_alerts(session, state=wanted, order_id=None, limit=200, offset=0)
        open_now = await alerts.open_count(session)
    return page(
        request,
        "alerts.html",
        active="alerts",
        alerts=found,
        open_now=open_now,
        state=state,
        notice=request.query_params.get("notice"),
    )


@router.get("/alerts/badge")
async def alerts_badge(request: Request, runtime: RuntimeDep, signed: SignedDep) -> HTMLResponse:
    async with runtime.sessionmaker() as session:
        count = await alerts.open_count(session)
    return page(request, "_alerts_badge.html", open_alerts=count)


@router.post("/alerts/{event_id}/acknowledge", dependencies=[require("reviewer")])
async def acknowledge(event_id: str, request: Request, runtime: RuntimeDep, signed: SignedDep) -> Response:
    form = await read_form(request)
    comment = field(form, "comment")
    try:
        if not comment:
            raise ValueError("say what was done about the alert")
        alert = await alerts.acknowledge(
            runtime.sessionmaker,
            event_id=event_id,
            comment=comment,
            who=signed.identity,
            now=datetime.now(UTC),
        )
        notice = f"alert on {alert.order_id} acknowledged"
    except (alerts.AlertNotFound, alerts.AlertAlreadyAcknowledged, ValueError) as exc:
        notice = f"not acknowledged: {exc}"
    await alerts.measure_alerts(runtime.sessionmaker)
    return RedirectResponse(f"{PREFIX}/alerts?notice={quote(notice)}", status_code=303)


# --- an order's legal holds and dossier ------------------------------------------------------------


@router.post("/orders/{order_id}/hold", dependencies=[require("admin")])
async def place_hold(order_id: str, request: Request, runtime: RuntimeDep, signed: SignedDep) -> Response:
    form = await read_form(request)
    reason = field(form, "reason")
    try:
        if not reason:
            raise retention.HoldRefused(422, "say why the order is held (the matter, the request)")
        await retention.place_hold(
            runtime.sessionmaker, order_id=order_id, reason=reason, who=signed.identity, now=datetime.now(UTC)
        )
    except retention.HoldRefused as exc:
        return back(order_id, f"no legal hold placed: {exc}")
    return back(order_id, "legal hold placed: the order is kept past its retention period")


@router.post("/orders/{order_id}/hold/release", dependencies=[require("admin")])
async def release_hold(order_id: str, request: Request, runtime: RuntimeDep, signed: SignedDep) -> Response:
    form = await read_form(request)
    reason = field(form, "reason")
    hold_id = field(form, "hold_id") or None
    try:
        if not reason:
            raise retention.HoldRefused(422, "say why the hold ends")
        await retention.release_hold(
            runtime.sessionmaker,
            order_id=order_id,
            hold_id=hold_id,
            reason=reason,
            who=signed.identity,
            now=datetime.now(UTC),
        )
    except retention.HoldRefused as exc:
        return back(order_id, f"legal hold not released: {exc}")
    return back(order_id, "legal hold released")


@router.get("/orders/{order_id}/dossier.pdf")
async def get_dossier(order_id: str, runtime: RuntimeDep, signed: SignedDep) -> Response:
    who = signed.identity
    async with runtime.sessionmaker() as session:
        pdf = await dossier.dossier_bytes(
            session,
            order_id,
            font=runtime.settings.dossier_font,
            generated_at=datetime.now(UTC),
            generated_by=f"{who.name} ({who.role})",
        )
    if pdf is None:
        raise HTTPException(404, f"order {order_id!r} not found")
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="dossier-{quote(order_id, safe="")}.pdf"'},
    )
