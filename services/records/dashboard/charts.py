"""The dashboard's charts: what the trail database says, drawn as SVG on the server (pygal), no
script in the browser. Each chart comes with the numbers it shows (for a table beside it, and for
screen readers)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pygal
from pygal.style import Style
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.records.models import Order, TrailStep
from services.records.queue import QueueFilter, review_queue

DECISIONS = ("RELEASE", "LICENSE_REQUIRED", "HOLD", "BLOCK")
# Colour-blind safe (Okabe-Ito), one colour per decision throughout the dashboard.
DECISION_COLOURS = {
    "RELEASE": "#009E73",
    "LICENSE_REQUIRED": "#0072B2",
    "HOLD": "#E69F00",
    "BLOCK": "#D55E00",
}
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 h", 3600.0),
    ("1-4 h", 4 * 3600.0),
    ("4-24 h", 24 * 3600.0),
    ("1-3 days", 3 * 86400.0),
    ("> 3 days", float("inf")),
)


def _style(colours: tuple[str, ...]) -> Style:
    return Style(
        background="transparent",
        plot_background="transparent",
        foreground="#1f2933",
        foreground_strong="#1f2933",
        foreground_subtle="#9aa5b1",
        colors=colours,
        font_family="system-ui, sans-serif",
        label_font_size=13,
        major_label_font_size=13,
        legend_font_size=13,
        title_font_size=16,
        value_font_size=12,
    )


def _chart(
    kind: type[pygal.graph.graph.Graph], title: str, colours: tuple[str, ...], **options: object
) -> pygal.graph.graph.Graph:
    return kind(
        title=title,
        style=_style(colours),
        js=[],  # no script from anywhere: the image is drawn complete on the server
        disable_xml_declaration=True,
        width=760,
        height=340,
        legend_at_bottom=True,
        print_values=False,
        **options,
    )


_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


def render(chart: pygal.graph.graph.Graph) -> str:
    """The chart's SVG without pygal's inline configuration script (the drawing needs none, and the
    dashboard serves no inline script)."""
    svg: str = chart.render(is_unicode=True)
    return _SCRIPT.sub("", svg)


@dataclass(frozen=True)
class Table:
    """What a chart shows, as rows of numbers."""

    columns: list[str]
    rows: list[tuple[str, list[int]]]


async def _decided(session: AsyncSession, since: datetime) -> list[tuple[Order, datetime]]:
    query = (
        select(Order, TrailStep.received_at)
        .join(TrailStep, TrailStep.event_id == Order.decided_event_id)
        .where(TrailStep.received_at >= since)
    )
    return [(order, at) for order, at in (await session.execute(query))]


async def decisions_per_day(session: AsyncSession, *, now: datetime, days: int = 14) -> tuple[str, Table]:
    """Orders per day (UTC) of their current decision, by outcome."""
    first = (now - timedelta(days=days - 1)).date()
    rows = await _decided(session, datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo))
    counts: Counter[tuple[date, str]] = Counter((at.date(), order.decision or "") for order, at in rows)
    day_list = [first + timedelta(days=n) for n in range(days)]
    chart = _chart(
        pygal.StackedBar,
        f"Decisions per day, last {days} days (UTC)",
        tuple(DECISION_COLOURS[d] for d in DECISIONS),
        x_label_rotation=-30,
    )
    chart.x_labels = [d.strftime("%d %b") for d in day_list]
    for decision in DECISIONS:
        chart.add(decision, [counts[(d, decision)] for d in day_list])
    table = Table(
        ["day", *DECISIONS], [(d.isoformat(), [counts[(d, x)] for x in DECISIONS]) for d in day_list]
    )
    return render(chart), table


async def top_reasons(
    session: AsyncSession, *, now: datetime, days: int = 30, top: int = 10
) -> tuple[str, Table]:
    rows = await _decided(session, now - timedelta(days=days))
    counts = Counter(code for order, _ in rows for code in order.reason_codes).most_common(top)
    chart = _chart(pygal.HorizontalBar, f"Top reasons, last {days} days", ("#0072B2",), show_legend=False)
    chart.x_labels = [code for code, _ in counts]
    chart.add("orders", [n for _, n in counts])
    return render(chart), Table(["reason", "orders"], [(code, [n]) for code, n in counts])


async def top_destinations(
    session: AsyncSession, *, now: datetime, days: int = 30, top: int = 10
) -> tuple[str, Table]:
    rows = await _decided(session, now - timedelta(days=days))
    by_country = Counter(order.destination_country or "?" for order, _ in rows)
    countries = [c for c, _ in by_country.most_common(top)]
    split = Counter((order.destination_country or "?", order.decision or "") for order, _ in rows)
    chart = _chart(
        pygal.HorizontalStackedBar,
        f"Top destinations, last {days} days",
        tuple(DECISION_COLOURS[d] for d in DECISIONS),
    )
    chart.x_labels = countries
    for decision in DECISIONS:
        chart.add(decision, [split[(c, decision)] for c in countries])
    table = Table(["destination", *DECISIONS], [(c, [split[(c, d)] for d in DECISIONS]) for c in countries])
    return render(chart), table


async def backlog_age(session: AsyncSession, *, now: datetime) -> tuple[str, Table]:
    """How long the orders in the review queue have waited, by decision."""
    queue = await review_queue(session, QueueFilter(), now=now, limit=100_000, offset=0)
    counts: Counter[tuple[str, str]] = Counter()
    for item in queue.items:
        label = next(name for name, upper in AGE_BUCKETS if item.age_seconds < upper)
        counts[(label, item.decision)] += 1
    chart = _chart(
        pygal.StackedBar,
        "Review backlog by age",
        (DECISION_COLOURS["HOLD"], DECISION_COLOURS["BLOCK"]),
    )
    chart.x_labels = [name for name, _ in AGE_BUCKETS]
    for decision in ("HOLD", "BLOCK"):
        chart.add(decision, [counts[(name, decision)] for name, _ in AGE_BUCKETS])
    table = Table(
        ["waiting", "HOLD", "BLOCK"],
        [(name, [counts[(name, "HOLD")], counts[(name, "BLOCK")]]) for name, _ in AGE_BUCKETS],
    )
    return render(chart), table


CHARTS = {
    "decisions-per-day": decisions_per_day,
    "top-reasons": top_reasons,
    "top-destinations": top_destinations,
    "backlog-age": backlog_age,
}
