"""GET /orders/{id}/dossier.pdf: what an auditor asks for about one export decision, in one document.

The order as received, the decision in force with every reason (its evidence and the regulation it
applies), the data and policy versions it was made on, any amendment after a list change, the
reviews with who requested and who approved (API key names and ids), the shipment, legal holds and
alerts, and the whole trail with its hashes and the result of verifying it (the order's own chain,
and each step against its position in the store-wide chain). Rendered with fpdf2.

Names on orders come in many scripts: the dossier uses a TrueType font that has them
(`EXPORTWATCH_DOSSIER_FONT`, else DejaVu Sans where the system has it); without one it falls back to
a built-in font and transliterates (unidecode), and says so on the first page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from unidecode import unidecode

from services.records import chain, repository, retention, review_store
from services.records.models import ChainLinkRow, OrderAlertRow

SYSTEM_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
)


def find_font(configured: Path | None) -> Path | None:
    if configured is not None:
        return configured if configured.is_file() else None
    return next((path for path in SYSTEM_FONTS if path.is_file()), None)


@dataclass(frozen=True)
class DossierData:
    detail: repository.OrderDetail
    trail: repository.Trail
    chain_problems: list[str]
    requests: list[review_store.RequestView]
    holds: list[Any]
    alerts: list[OrderAlertRow]


async def gather(session: AsyncSession, order_id: str) -> DossierData | None:
    detail = await repository.get_order(session=session, order_id=order_id)
    trail = await repository.get_trail(session=session, order_id=order_id)
    if detail is None or trail is None:
        return None
    positions = {
        row.record_id: row
        for row in await session.scalars(
            select(ChainLinkRow).where(ChainLinkRow.kind == "trail_step", ChainLinkRow.order_id == order_id)
        )
    }
    problems = []
    for step in trail.steps:
        position = positions.get(step.event_id)
        if position is None:
            problems.append(f"step {step.seq} ({step.event_id}) has no position in the store-wide chain")
        elif position.record_hash != chain.step_fields(step).record_hash():
            problems.append(
                f"step {step.seq} ({step.event_id}) differs from what chain position {position.seq} holds"
            )
    alerts = list(
        await session.scalars(
            select(OrderAlertRow).where(OrderAlertRow.order_id == order_id).order_by(OrderAlertRow.id)
        )
    )
    return DossierData(
        detail=detail,
        trail=trail,
        chain_problems=problems,
        requests=await review_store.requests_of(session, order_id, None),
        holds=await retention.holds_of(session, order_id),
        alerts=alerts,
    )


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


class _Document:
    def __init__(self, font: Path | None, title: str) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_title(title)
        self.pdf.set_creator("Exportwatch records")
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.unicode = font is not None
        if font is not None:
            self.pdf.add_font("Body", "", str(font))
            self.family = "Body"
        else:
            self.family = "Helvetica"
        self.pdf.add_page()

    def text(self, value: str) -> str:
        return value if self.unicode else unidecode(value).encode("latin-1", "replace").decode("latin-1")

    def heading(self, value: str, size: int = 12) -> None:
        self.pdf.set_font(self.family, size=size)
        self.pdf.ln(2)
        self.pdf.multi_cell(0, 6, self.text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.set_font(self.family, size=8)

    def line(self, value: str) -> None:
        self.pdf.set_font(self.family, size=8)
        self.pdf.multi_cell(
            0, 4, self.text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT, wrapmode=WrapMode.CHAR
        )

    def lines(self, values: Sequence[str]) -> None:
        for value in values:
            self.line(value)


def _order_lines(order: dict[str, Any]) -> list[str]:
    lines = [
        f"Order {order.get('order_id')}  version {order.get('event_id')}  occurred at {order.get('occurred_at')}",
        f"Source {order.get('source')}; ship from {order.get('ship_from_country')} to {order.get('destination_country')}",
        f"End use: {order.get('end_use') or '-'}",
    ]
    for party in order.get("parties", []):
        where = ", ".join(
            str(party[k]) for k in ("address", "city", "subdivision", "country") if party.get(k)
        )
        lines.append(f"  party {party.get('role')}: {party.get('name')} ({where})")
    for line in order.get("lines", []):
        lines.append(
            f"  line {line.get('line_no')}: {line.get('sku')} {line.get('description')!s} x{line.get('quantity')} "
            f"at {line.get('unit_price')} {line.get('currency')}; ECCN {line.get('eccn') or '-'}; HS {line.get('hs_code') or '-'}"
        )
    return lines


def _decision_lines(data: DossierData) -> list[str]:
    decision = data.detail.decision
    if decision is None:
        return ["No decision recorded for the current version."]
    out = [
        f"Decision {decision.decision}, risk score {decision.risk_score} (decided event {data.detail.decided_event_id})",
        f"Policy version {decision.policy_version}",
    ]
    out.extend(
        f"  data version {name}: {version}" for name, version in sorted(decision.data_versions.items())
    )
    for number, reason in enumerate(decision.reasons, start=1):
        where = f" line {reason.line_no}" if reason.line_no is not None else ""
        who = f" party {reason.party_role}" if reason.party_role else ""
        out.append(f"Reason {number}: {reason.code} ({reason.severity}){where}{who}: {reason.message}")
        for key, value in reason.evidence.items():
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            out.append(f"    {key}: {shown[:600]}")
    return out


def _review_lines(data: DossierData) -> list[str]:
    out: list[str] = []
    review = data.detail.review
    if review is not None:
        out.append(
            f"Review in effect: {review.review_decision} by {review.reviewer} at {_when(review.reviewed_at)}: {review.comment}"
        )
    for view in data.requests:
        request = view.request
        out.append(
            f"Request {request.request_id}: {request.original_decision} -> {request.requested_decision} "
            f"({request.status}) by {request.requested_by_name} ({request.requested_by_role}, key "
            f"{request.requested_by_key_id}) at {_when(request.requested_at)}: {request.comment}"
        )
        for approval in view.approvals:
            out.append(
                f"    approved by {approval.approver_name} ({approval.approver_role}, key {approval.approver_key_id}) "
                f"at {_when(approval.approved_at)}{': ' + approval.comment if approval.comment else ''}"
            )
        if request.closed_at is not None:
            out.append(
                f"    closed {request.status} by {request.closed_by_name} at {_when(request.closed_at)}"
            )
    return out or ["No reviews."]


def _other_lines(data: DossierData) -> list[str]:
    row = data.detail.row
    out = [
        f"Shipped at {_when(row.shipped_at)} (carrier reference {row.carrier_reference or '-'}, event {row.shipped_event_id or '-'})"
        if row.shipped_at
        else "Not shipped."
    ]
    for hold in data.holds:
        released = (
            f"; released by {hold.released_by_name} at {_when(hold.released_at)}: {hold.release_reason}"
            if hold.released_at
            else " (in force)"
        )
        out.append(
            f"Legal hold {hold.hold_id} by {hold.placed_by_name} at {_when(hold.placed_at)}: {hold.reason}{released}"
        )
    for alert in data.alerts:
        entries = ", ".join(
            f"{e['list_id']} {e['entry_id']} ({e['party_role']} {e['party_name']})" for e in alert.entries
        )
        state = f"acknowledged by {alert.acknowledged_by}" if alert.acknowledged_at else "open"
        out.append(
            f"Post-shipment alert {alert.event_id} ({state}): list {alert.list_id} version {alert.list_version}: {entries}"
        )
    return out


def render(data: DossierData, *, font: Path | None, generated_at: datetime, generated_by: str) -> bytes:
    order_id = data.detail.order_id
    doc = _Document(font, f"Export decision dossier: order {order_id}")
    doc.heading(f"Export decision dossier: order {order_id}", size=14)
    doc.line(
        f"Generated {_when(generated_at)} by {generated_by} from the Exportwatch decision trail (15 CFR 762)."
    )
    if not doc.unicode:
        doc.line(
            "No Unicode font was found (EXPORTWATCH_DOSSIER_FONT): names are transliterated to ASCII here."
        )
    doc.heading("The order, as received")
    doc.lines(_order_lines(data.detail.order))
    doc.heading("The decision in force")
    doc.lines(_decision_lines(data))
    decision = data.detail.decision
    if decision is not None:
        decided = next((s for s in data.trail.steps if s.event_id == data.detail.decided_event_id), None)
        amendment = decided.content.get("screening", {}).get("amendment") if decided is not None else None
        if amendment:
            change = amendment.get("list_change", {})
            doc.line(
                f"Amended after list change {change.get('event_id')}: {change.get('list_id')} version "
                f"{change.get('new_version')} (was {change.get('old_version')}), amending decision "
                f"{amendment.get('amends_decided_event_id')}"
            )
    doc.heading("Reviews")
    doc.lines(_review_lines(data))
    doc.heading("Shipment, legal holds, alerts")
    doc.lines(_other_lines(data))
    doc.heading("Trail")
    problems = data.trail.problems + data.chain_problems
    doc.line(
        "Verification: the order's chain and every step's position in the store-wide chain verify."
        if not problems
        else f"Verification FAILED ({len(problems)} problems):"
    )
    doc.lines([f"  {p}" for p in problems])
    for step in data.trail.steps:
        doc.line(
            f"Step {step.seq} {step.stage} {step.schema}: event {step.event_id}, received {_when(step.received_at)} "
            f"from {step.topic}[{step.partition}]@{step.offset}"
        )
        doc.line(f"    payload sha256 {step.payload_sha256}")
        doc.line(f"    prev hash {step.prev_hash}")
        doc.line(f"    step hash {step.step_hash} (hash version {step.hash_version})")
    return bytes(doc.pdf.output())


async def dossier_bytes(
    session: AsyncSession, order_id: str, *, font: Path | None, generated_at: datetime, generated_by: str
) -> bytes | None:
    data = await gather(session, order_id)
    if data is None:
        return None
    return render(data, font=find_font(font), generated_at=generated_at, generated_by=generated_by)
