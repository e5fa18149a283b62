"""The dashboard's pages: the review queue, an order, dead letters, charts. Server-rendered (Jinja2),
enhanced by htmx where a part of the page changes (the queue's filters); every form also works as a
plain POST followed by a redirect. Commands call the same use cases as the API, with the signed-in
key's identity."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.records import alerts, queue, repository, retention, review_store, reviews, service
from services.records.dashboard import charts
from services.records.dashboard.sessions import PREFIX, RuntimeDep, SignedDep, read_form, sign_out
from services.records.domain import InvalidReview
from services.records.queue import QueueFilter
from services.records.service import RecordsRuntime
from shared.auth import require
from shared.events import DECISION_SEVERITY
from shared.kafka import PublishError
from shared.topology import REPLAYABLE_TOPICS

HERE = Path(__file__).parent
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["tojson_pretty"] = lambda value: json.dumps(
    value, indent=2, ensure_ascii=False, default=str
)
TEMPLATES.filters["iso"] = lambda moment: (
    moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else ""
)
TEMPLATES.filters["short"] = lambda value: (value or "")[:12]
TEMPLATES.filters["age"] = lambda seconds: _age(seconds)
TEMPLATES.globals["PREFIX"] = PREFIX
TEMPLATES.globals["DECISIONS"] = ("RELEASE", "LICENSE_REQUIRED", "HOLD", "BLOCK")

AGES = {"": None, "1": 1.0, "4": 4.0, "24": 24.0, "72": 72.0}
router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    signed = getattr(request.state, "signed", None)
    html = TEMPLATES.get_template(template).render(
        request=request,
        me=signed.identity if signed else None,
        csrf_token=signed.csrf_token if signed else "",
        **context,
    )
    return HTMLResponse(html, status_code=status)


def back(order_id: str, notice: str) -> RedirectResponse:
    return RedirectResponse(
        f"{PREFIX}/orders/{quote(order_id, safe='')}?notice={quote(notice)}", status_code=303
    )


def field(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[-1].strip()


# --- the queue ------------------------------------------------------------------------------------


def _filter(request: Request) -> QueueFilter:
    params = request.query_params
    age = AGES.get(params.get("age", ""), None)
    decision = params.get("decision") or None
    return QueueFilter(
        reason=params.get("reason") or None,
        destination=(params.get("destination") or "").upper() or None,
        list_id=params.get("list") or None,
        min_age=timedelta(hours=age) if age is not None else None,
        decision=decision if decision in queue.QUEUED_DECISIONS else None,
    )


async def _queue(runtime: RecordsRuntime, request: Request) -> dict[str, Any]:
    wanted = _filter(request)
    async with runtime.sessionmaker() as session:
        found = await queue.review_queue(session, wanted, now=datetime.now(UTC), limit=200, offset=0)
        # The filter menus offer every value of the unfiltered queue.
        everything = await queue.review_queue(
            session, QueueFilter(), now=datetime.now(UTC), limit=0, offset=0
        )
    return {"queue": found, "everything": everything, "wanted": wanted, "params": request.query_params}


@router.get("/")
async def queue_page(request: Request, runtime: RuntimeDep, signed: SignedDep) -> HTMLResponse:
    return page(request, "queue.html", **await _queue(runtime, request))


@router.get("/queue-table")
async def queue_table(request: Request, runtime: RuntimeDep, signed: SignedDep) -> HTMLResponse:
    return page(request, "_queue_table.html", **await _queue(runtime, request))


# --- an order -------------------------------------------------------------------------------------


async def _order_context(runtime: RecordsRuntime, order_id: str) -> dict[str, Any]:
    async with runtime.sessionmaker() as session:
        detail = await repository.get_order(session=session, order_id=order_id)
        if detail is None:
            raise HTTPException(404, f"order {order_id!r} not found")
        trail = await repository.get_trail(session=session, order_id=order_id)
        requests = await review_store.requests_of(session, order_id, detail.submitted_event_id)
        holds = await retention.holds_of(session, order_id)
        order_alerts = await alerts.list_alerts(session, state=None, order_id=order_id, limit=50, offset=0)
    steps = trail.steps if trail is not None else []
    decided = next((s.content for s in steps if s.event_id == detail.decided_event_id), None)
    pending = next(
        (
            v
            for v in requests
            if v.request.status == "pending" and v.request.decided_event_id == detail.decided_event_id
        ),
        None,
    )
    return {
        "detail": detail,
        "trail": trail,
        "requests": requests,
        "pending": pending,
        "parties": (decided or {}).get("screening", {}).get("parties", []),
        "review_steps": [s.content for s in steps if s.stage == "review_step"],
        "severity": DECISION_SEVERITY,
        "holds": holds,
        "order_alerts": order_alerts,
    }


@router.get("/orders/{order_id}")
async def order_page(order_id: str, request: Request, runtime: RuntimeDep, signed: SignedDep) -> HTMLResponse:
    context = await _order_context(runtime, order_id)
    return page(request, "order.html", notice=request.query_params.get("notice"), **context)


async def _refused(
    request: Request, runtime: RecordsRuntime, order_id: str, exc: reviews.ReviewRefused | InvalidReview
) -> HTMLResponse:
    status = 422 if isinstance(exc, InvalidReview) else exc.status
    context = await _order_context(runtime, order_id)
    return page(request, "order.html", status=status, error=str(exc), **context)


@router.post("/orders/{order_id}/review", dependencies=[require("reviewer")])
async def review(order_id: str, request: Request, runtime: RuntimeDep, signed: SignedDep) -> Response:
    form = await read_form(request)
    decision = field(form, "review_decision")
    if decision not in DECISION_SEVERITY:
        return await _refused(
            request, runtime, order_id, InvalidReview("review_decision", decision, "choose a decision")
        )
    codes = [c for c in form.get("reason_codes", []) if c]
    try:
        outcome = await service.run_review(
            runtime,
            reviews.request_review,
            order_id=order_id,
            requested=decision,
            comment=field(form, "comment") or "",
            reason_codes=codes or None,
            decided_event_id=field(form, "decided_event_id") or None,
            who=signed.identity,
        )
    except (reviews.ReviewRefused, InvalidReview) as exc:
        return await _refused(request, runtime, order_id, exc)
    request_row = outcome.request
    if outcome.reviewed is not None:
        return back(order_id, f"{request_row.requested_decision} recorded: the review is final")
    return back(
        order_id,
        f"review to {request_row.requested_decision} requested: {len(outcome.approvals)} of "
        f"{request_row.approvals_required} approvals",
    )


@router.post("/orders/{order_id}/approve", dependencies=[require("approver")])
async def approve(order_id: str, request: Request, runtime: RuntimeDep, signed: SignedDep) -> Response:
    form = await read_form(request)
    try:
        outcome = await service.run_review(
            runtime,
            reviews.approve,
            order_id=order_id,
            comment=field(form, "comment") or None,
            decided_event_id=field(form, "decided_event_id") or None,
            who=signed.identity,
        )
    except reviews.ReviewRefused as exc:
        return await _refused(request, runtime, order_id, exc)
    if outcome.reviewed is not None:
        return back(order_id, f"approved: {outcome.request.requested_decision} is final")
    return back(order_id, f"approved: {len(outcome.approvals)} of {outcome.request.approvals_required}")


@router.post("/orders/{order_id}/reject", dependencies=[require("approver")])
async def reject(order_id: str, request: Request, runtime: RuntimeDep, signed: SignedDep) -> Response:
    form = await read_form(request)
    try:
        await service.run_review(
            runtime,
            reviews.reject,
            order_id=order_id,
            comment=field(form, "comment"),
            who=signed.identity,
        )
    except reviews.ReviewRefused as exc:
        return await _refused(request, runtime, order_id, exc)
    except ValueError as exc:  # a blank comment
        return await _refused(request, runtime, order_id, InvalidReview("comment", "", str(exc)))
    return back(order_id, "request rejected: the decision stands")


@router.post("/orders/{order_id}/request-information", dependencies=[require("reviewer")])
async def request_information(
    order_id: str, request: Request, runtime: RuntimeDep, signed: SignedDep
) -> Response:
    form = await read_form(request)
    try:
        await service.run_review(
            runtime,
            reviews.request_information,
            order_id=order_id,
            comment=field(form, "comment"),
            who=signed.identity,
        )
    except reviews.ReviewRefused as exc:
        return await _refused(request, runtime, order_id, exc)
    except ValueError as exc:
        return await _refused(request, runtime, order_id, InvalidReview("comment", "", str(exc)))
    return back(order_id, "information requested")


@router.post("/orders/{order_id}/not-a-match", dependencies=[require("reviewer")])
async def not_a_match(order_id: str, request: Request, runtime: RuntimeDep, signed: SignedDep) -> Response:
    form = await read_form(request)
    try:
        clearance = await service.run_review(
            runtime,
            reviews.clear_match,
            order_id=order_id,
            party_name=field(form, "party_name"),
            list_id=field(form, "list_id"),
            entry_id=field(form, "entry_id"),
            reason=field(form, "reason"),
            who=signed.identity,
        )
    except reviews.ReviewRefused as exc:
        return await _refused(request, runtime, order_id, exc)
    except ValueError as exc:
        return await _refused(request, runtime, order_id, InvalidReview("reason", "", str(exc)))
    return back(
        order_id,
        f"{clearance.party_name!r} cleared against {clearance.list_id} {clearance.entry_id}: screening "
        "sets this pair aside until the entry changes",
    )


# --- dead letters, charts, signing out ---------------------------------------------------------------


@router.get("/deadletters")
async def dead_letters(request: Request, runtime: RuntimeDep, signed: SignedDep) -> HTMLResponse:
    async with runtime.sessionmaker() as session:
        letters = await repository.list_dead_letters(session=session, limit=100, offset=0)
    replayable = {runtime.settings.topic(t) for t in REPLAYABLE_TOPICS}
    return page(
        request,
        "deadletters.html",
        letters=letters,
        replayable=replayable,
        notice=request.query_params.get("notice"),
    )


@router.post("/deadletters/{event_id}/replay", dependencies=[require("admin")])
async def replay(event_id: str, request: Request, runtime: RuntimeDep, signed: SignedDep) -> Response:
    try:
        replayed = await service.replay_dead_letter(
            sessionmaker=runtime.sessionmaker,
            publish=request.app.state.publish,
            replayable_topics={runtime.settings.topic(t) for t in REPLAYABLE_TOPICS},
            event_id=event_id,
        )
        notice = f"replayed {replayed.size} bytes to {replayed.topic}"
    except (service.DeadLetterNotFound, service.NotReplayable, PublishError) as exc:
        notice = f"not replayed: {exc}"
    return RedirectResponse(f"{PREFIX}/deadletters?notice={quote(notice)}", status_code=303)


@router.get("/charts")
async def charts_page(request: Request, runtime: RuntimeDep, signed: SignedDep) -> HTMLResponse:
    tables = {}
    async with runtime.sessionmaker() as session:
        for name, draw in charts.CHARTS.items():
            _, tables[name] = await draw(session, now=datetime.now(UTC))
    return page(request, "charts.html", tables=tables)


@router.get("/charts/{name}.svg")
async def chart(name: str, runtime: RuntimeDep, signed: SignedDep) -> Response:
    draw = charts.CHARTS.get(name)
    if draw is None:
        raise HTTPException(404, f"no chart {name!r}; charts: {sorted(charts.CHARTS)}")
    async with runtime.sessionmaker() as session:
        svg, _ = await draw(session, now=datetime.now(UTC))
    # pygal styles its drawing inline; the image runs no script (and is served as an image).
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "Cache-Control": "no-store",
        },
    )


@router.post("/logout", dependencies=[require("viewer")])
async def logout(request: Request, runtime: RuntimeDep, signed: SignedDep) -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    await sign_out(request, runtime, response)
    return response
