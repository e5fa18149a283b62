"""Orders: `orders show ID` (decision, reasons, trail verification), `queue` (what waits for a
person) and `submit FILE` (publish orders from JSON or CSV to orders.submitted.v1).

`submit` reads a JSON file (one order, a list of orders, or {"orders": [...]}, each as the contract
`orders.submitted.v1` states it) or a CSV file with one row per order line:

    order_id, occurred_at, source, ship_from_country, destination_country, end_use, incoterms,
    payment_terms, <role>_name, <role>_country, <role>_address, <role>_city, <role>_subdivision
    (role: buyer, ultimate_consignee, intermediate_consignee, end_user, freight_forwarder,
    purchaser_agent, supplier), line_no, sku, description, quantity, unit_price, currency, hs_code, eccn

The order's columns are taken from its first row. A CSV order without `event_id` gets one derived from
its content (uuid5), so submitting the same file twice publishes the same events (records keeps
each once); without `occurred_at`, it is the file's modification time. Every order is validated
before anything is sent: one invalid order (named with its row and field) and nothing is published.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from exportwatch.cli.common import CommandFailed, JsonOption, age, cli_of, err, out, print_json, run
from exportwatch.cli.ops import _records_call
from exportwatch.client import OrderPublisher, PublishedOrder
from shared import tracing
from shared.events import EXPORTWATCH_NS, PartyRole, SubmittedOrder
from shared.kafka import describe_validation_error
from shared.kafka_security import client_options
from shared.settings import Settings, load_settings

orders_app = typer.Typer(help="One order: its decision, reasons and decision trail.", no_args_is_help=True)
ROLES: tuple[str, ...] = get_args(PartyRole)
PARTY_FIELDS = ("name", "country", "address", "city", "subdivision")
ORDER_FIELDS = ("source", "ship_from_country", "destination_country", "end_use", "incoterms", "payment_terms")
LINE_FIELDS = ("sku", "description", "unit_price", "currency", "hs_code", "eccn")
MAX_FILE_BYTES = 64 * 1024 * 1024


# --- orders show, queue ----------------------------------------------------------------------------


@orders_app.command("show")
def show(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="the order id, e.g. SO-2026-000117")],
    as_json: JsonOption = False,
) -> None:
    """The order's current decision with every reason, its review, and whether its trail verifies
    (the hash chain of 15 CFR 762 records). Exits 1 if the trail does not verify."""

    async def fetch(records: Any) -> tuple[Any, Any]:
        return await records.order(order_id), await records.trail(order_id)

    order, trail = run(_records_call(cli_of(ctx), fetch))
    if as_json:
        print_json({"order": order, "trail": trail})
    else:
        _show_order(order, trail)
    if not trail.chain_valid:
        raise typer.Exit(1)


def _show_order(order: Any, trail: Any) -> None:
    decision = order.decision
    headline = f"{order.order_id} -> {order.destination_country}: {order.status}"
    if decision is not None:
        headline += f", {decision.decision} (score {decision.risk_score}, policy {decision.policy_version})"
    if order.review is not None:
        headline += (
            f"; reviewed {order.review.review_decision} by {order.review.reviewer}: {order.review.comment}"
        )
    out.print(headline, highlight=False)
    if decision is not None:
        reasons = Table(title="Reasons")
        for column in ("code", "severity", "party / line", "why"):
            reasons.add_column(column, overflow="fold")
        for reason in decision.reasons:
            where = reason.party_role or (f"line {reason.line_no}" if reason.line_no else "")
            reasons.add_row(reason.code, reason.severity, where, reason.message)
        out.print(reasons)
    verified = (
        "[green]verifies[/green]"
        if trail.chain_valid
        else f"[red]BROKEN[/red]: {'; '.join(trail.chain_problems)}"
    )
    out.print(f"trail: {len(trail.steps)} steps, hash chain {verified}")
    for step in trail.steps:
        out.print(
            f"  {step.seq:>2} {step.stage:<12} {step.topic}[{step.partition}]@{step.offset}  {step.received_at:%Y-%m-%d %H:%M:%S}",
            highlight=False,
        )


def queue(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option(help="only orders with this reason code")] = None,
    destination: Annotated[str | None, typer.Option(help="only orders to this country (ISO-2)")] = None,
    list_id: Annotated[str | None, typer.Option("--list", help="only orders matched on this list")] = None,
    min_age_hours: Annotated[
        float | None, typer.Option(help="only orders waiting at least this long")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: JsonOption = False,
) -> None:
    """HOLD and BLOCK orders waiting for a reviewer, oldest first, with the queue's counts."""

    async def fetch(records: Any) -> Any:
        return await records.review_queue(
            reason=reason, destination=destination, list_id=list_id, min_age_hours=min_age_hours, limit=limit
        )

    found = run(_records_call(cli_of(ctx), fetch))
    if as_json:
        print_json(found)
        return
    table = Table(title=f"Review queue: {found.total} waiting ({found.awaiting_approval} awaiting approval)")
    for column in ("order", "decision", "score", "to", "reasons", "lists", "waiting", "review"):
        table.add_column(column, overflow="fold", no_wrap=column in ("order", "decision"))
    for item in found.items:
        pending = item.pending_review
        review = (
            f"{pending.requested_decision} by {pending.requested_by_name} ({pending.status})"
            if pending
            else ""
        )
        table.add_row(
            item.order_id, item.decision, str(item.risk_score), item.destination_country or "",
            ", ".join(item.reason_codes), ", ".join(item.lists), age(item.age_seconds), review,
        )  # fmt: skip
    out.print(table)
    if found.by_decision:
        out.print(
            "by decision: " + ", ".join(f"{k} {v}" for k, v in found.by_decision.items()), highlight=False
        )


# --- submit ---------------------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CommandFailed(f"{path}: larger than {MAX_FILE_BYTES} bytes; split it")
        return path.read_bytes()
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror}") from exc


def orders_from_json(raw: bytes, where: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, order) per order of a JSON file."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise CommandFailed(f"{where}: not JSON: {exc}") from exc
    if isinstance(document, dict) and isinstance(document.get("orders"), list):
        document = document["orders"]
    items = document if isinstance(document, list) else [document]
    if not all(isinstance(i, dict) for i in items):
        raise CommandFailed(f'{where}: expected an order object, a list of them, or {{"orders": [...]}}')
    return [(f"{where} order {n}", item) for n, item in enumerate(items, start=1)]


def _party(row: dict[str, str], role: str) -> dict[str, str] | None:
    fields = {f: row.get(f"{role}_{f}", "").strip() for f in PARTY_FIELDS}
    if not fields["name"]:
        return None
    return {"role": role, **{k: v for k, v in fields.items() if v}}


def _line(row: dict[str, str], number: int) -> dict[str, Any]:
    line: dict[str, Any] = {k: row.get(k, "").strip() for k in LINE_FIELDS if row.get(k, "").strip()}
    for key, default in (("line_no", str(number)), ("quantity", "")):
        value = row.get(key, "").strip() or default
        line[key] = int(value) if value.isdigit() else value
    return line


def _csv_order(rows: list[tuple[int, dict[str, str]]], default_time: str) -> dict[str, Any]:
    first = rows[0][1]
    order: dict[str, Any] = {"schema": "order.submitted.v1", "order_id": first["order_id"].strip()}
    order["occurred_at"] = first.get("occurred_at", "").strip() or default_time
    order.update({k: first[k].strip() for k in ORDER_FIELDS if first.get(k, "").strip()})
    order.setdefault("source", "exportwatch-cli")
    order["parties"] = [p for role in ROLES if (p := _party(first, role)) is not None]
    order["lines"] = [_line(row, n) for n, (_, row) in enumerate(rows, start=1)]
    given = first.get("event_id", "").strip()
    canonical = json.dumps(order, sort_keys=True, ensure_ascii=False)
    order["event_id"] = given or str(uuid.uuid5(EXPORTWATCH_NS, f"exportwatch-cli:{canonical}"))
    return order


def orders_from_csv(raw: bytes, where: str, default_time: str) -> list[tuple[str, dict[str, Any]]]:
    """One row per order line; an order's rows need not be adjacent (its first row gives its fields)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CommandFailed(f"{where}: not UTF-8: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if "order_id" not in (reader.fieldnames or []):
        raise CommandFailed(f"{where}: the header has no order_id column (it has {reader.fieldnames})")
    grouped: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for row in reader:
        order_id = (row.get("order_id") or "").strip()
        if not order_id:
            raise CommandFailed(f"{where} line {reader.line_num}: order_id is empty")
        grouped.setdefault(order_id, []).append((reader.line_num, {k: v or "" for k, v in row.items() if k}))
    return [
        (f"{where} line {rows[0][0]} (order {order_id})", _csv_order(rows, default_time))
        for order_id, rows in grouped.items()
    ]


def load_orders(path: Path) -> list[SubmittedOrder]:
    """Every order of the file, validated; CommandFailed naming each invalid one and its fields."""
    raw = _read(path)
    if path.suffix.lower() == ".csv":
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
        found = orders_from_csv(raw, str(path), modified.replace("+00:00", "Z"))
    else:
        found = orders_from_json(raw, str(path))
    orders, problems = [], []
    for where, order in found:
        try:
            orders.append(SubmittedOrder.model_validate(order))
        except ValidationError as exc:
            problems.append(f"{where}: {describe_validation_error(exc)}")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise CommandFailed(
            f"{len(problems)} of {len(found)} orders are invalid; nothing was published:\n  {shown}{more}"
        )
    if not orders:
        raise CommandFailed(f"{path}: no orders")
    return orders


async def publish_orders(
    settings: Settings, orders: list[SubmittedOrder], *, show: bool
) -> list[PublishedOrder]:
    options = {k: v for k, v in client_options(settings).items() if k != "bootstrap_servers"}
    publisher = OrderPublisher(
        settings.kafka_bootstrap_servers, topic_prefix=settings.topic_prefix, **options
    )
    published: list[PublishedOrder] = []
    try:
        await publisher.start()
    except Exception as exc:  # aiokafka raises its own KafkaConnectionError and others
        await publisher.stop()
        raise CommandFailed(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({type(exc).__name__}: {exc}); "
            "set --kafka or EXPORTWATCH_KAFKA_BOOTSTRAP_SERVERS (and EXPORTWATCH_KAFKA_SECURITY_PROTOCOL ... "
            "for a secured cluster)"
        ) from exc
    try:
        with Progress(
            TextColumn("publishing to {task.fields[topic]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not show,
        ) as progress:
            task = progress.add_task("publish", total=len(orders), topic=publisher.topic)
            for order in orders:
                published.append(await publisher.publish(order))
                progress.advance(task)
    finally:
        await publisher.stop()
    return published


def submit(
    file: Annotated[Path, typer.Argument(help='orders as JSON (one, a list, or {"orders": [...]}) or CSV')],
    kafka: Annotated[
        str | None, typer.Option(help="bootstrap servers (default: EXPORTWATCH_KAFKA_BOOTSTRAP_SERVERS)")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="validate only; publish nothing")] = False,
    as_json: JsonOption = False,
) -> None:
    """Publish orders to orders.submitted.v1 (key = order id, acks=all, idempotent), with a progress
    bar. Kafka's address and security come from the EXPORTWATCH_KAFKA_* settings, as a service's do."""
    orders = run(_async_load(file))
    if check:
        print_json({"valid": len(orders)}) if as_json else out.print(f"{len(orders)} valid orders in {file}")
        return
    overrides: dict[str, object] = {"kafka_bootstrap_servers": kafka} if kafka else {}
    try:
        settings = load_settings("cli", **overrides)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    tracing.configure(service="cli", exporter=settings.otel_exporter, endpoint=settings.otel_endpoint)
    try:
        published = run(publish_orders(settings, orders, show=not as_json))
    finally:
        tracing.shutdown()
    if as_json:
        print_json([p.__dict__ for p in published])
        return
    out.print(f"published {len(published)} orders to {published[0].topic}", highlight=False)


async def _async_load(file: Path) -> list[SubmittedOrder]:
    return load_orders(file)
