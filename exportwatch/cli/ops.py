"""On-call commands: `status`, `lists status|update`, `ccl status|update`, `deadletters list|replay`,
`bench list|run`."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from typing import Annotated, Any

import httpx
import typer
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from exportwatch.cli.common import (
    Cli,
    CommandFailed,
    JsonOption,
    age,
    call,
    cli_of,
    explain,
    out,
    print_json,
    run,
)
from exportwatch.client import ExportwatchError, RecordsClient
from shared.settings import REPO_ROOT, SERVICE_PORTS

# --- status ---------------------------------------------------------------------------------------


def _lag(metrics: str, service: str) -> dict[str, float]:
    """Consumer lag per topic of `service` (summed over partitions), from its /metrics."""
    by_topic: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        if family.name != "exportwatch_consumer_lag":
            continue
        for sample in family.samples:
            if sample.labels.get("service") == service:
                topic = sample.labels.get("topic", "?")
                by_topic[topic] = by_topic.get(topic, 0.0) + sample.value
    return by_topic


async def _service(cli: Cli, service: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"url": cli.urls[service], "reachable": False, "ready": False}
    async with cli.client(service, timeout=10.0) as client:
        try:
            ready = await client.get("/readyz")
            metrics = await client.get("/metrics")
        except httpx.TransportError as exc:
            entry["error"] = explain(service, cli.urls[service], exc)
            return entry
    entry["reachable"] = True
    try:
        readiness = ready.json()
    except ValueError:
        readiness = {"ready": False, "answer": ready.text[:200]}
    entry["ready"] = ready.status_code == 200 and readiness.get("ready") is True
    entry["not_ready"] = sorted(k for k, v in readiness.items() if v is False and k != "ready")
    by_topic = _lag(metrics.text, service)
    entry["lag_by_topic"] = by_topic
    entry["lag"] = sum(by_topic.values()) if by_topic else None
    return entry


async def _reference(cli: Cli) -> dict[str, Any]:
    """List and CCL ages (screening's GET /lists, the classifier's GET /ccl); an error per part."""
    found: dict[str, Any] = {}
    try:
        lists = await call(cli, "screening", "GET", "/lists")
        found["lists"] = [
            {
                "source": s["source_id"],
                "version": s["version"],
                "published": s["published"],
                "age_seconds": s["age_seconds"],
                "entries": s["entries"],
                "last_update": s["last_update_outcome"],
                "last_update_error": s["last_update_error"],
            }
            for s in lists["sources"]
        ]
    except CommandFailed as exc:
        found["lists_error"] = str(exc)
    try:
        ccl = await call(cli, "classifier", "GET", "/ccl")
        issued = datetime.combine(date.fromisoformat(ccl["issue_date"]), datetime.min.time(), UTC)
        found["ccl"] = {
            "version": ccl["version"],
            "issue_date": ccl["issue_date"],
            "age_seconds": (datetime.now(UTC) - issued).total_seconds(),
            "entries": ccl["entries"],
        }
    except CommandFailed as exc:
        found["ccl_error"] = str(exc)
    return found


async def gather_status(cli: Cli) -> dict[str, Any]:
    services = {name: await _service(cli, name) for name in SERVICE_PORTS}
    return {"services": services, **await _reference(cli)}


def _show_status(found: dict[str, Any]) -> None:
    table = Table(title="Services")
    for column in ("service", "url", "ready", "consumer lag", "lag per topic"):
        table.add_column(column)
    down = []
    for name, entry in found["services"].items():
        if not entry["reachable"]:
            table.add_row(name, entry["url"], "[red]down[/red]", "-", "-")
            down.append(entry["error"])
            continue
        ready = "[green]yes[/green]" if entry["ready"] else f"[red]no[/red] ({', '.join(entry['not_ready'])})"
        lag = "-" if entry["lag"] is None else f"{entry['lag']:.0f}"
        topics = ", ".join(f"{t} {v:.0f}" for t, v in sorted(entry["lag_by_topic"].items()))
        table.add_row(name, entry["url"], ready, lag, topics or "not consuming yet")
    if found["services"]:
        out.print(table)
    for error in down:
        out.print(error, highlight=False)
    if "lists" in found:
        lists = Table(title="Screening lists")
        for column in ("source", "published", "age", "entries", "last update"):
            lists.add_column(column)
        for row in found["lists"]:
            update = row["last_update"] + (
                f": {row['last_update_error']}" if row["last_update_error"] else ""
            )
            lists.add_row(
                row["source"], row["published"] or "?", age(row["age_seconds"]), str(row["entries"]), update
            )
        out.print(lists)
    else:
        out.print(f"lists: {found['lists_error']}", highlight=False)
    if "ccl" in found:
        ccl = found["ccl"]
        out.print(
            f"CCL {ccl['version']}: eCFR {ccl['issue_date']}, {age(ccl['age_seconds'])} old, {ccl['entries']} ECCNs"
        )
    else:
        out.print(f"CCL: {found['ccl_error']}", highlight=False)


def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Readiness and consumer lag of every service (/readyz, /metrics), and the list and CCL ages.
    Exits 1 when a service is down or not ready."""
    found = run(gather_status(cli_of(ctx)))
    if as_json:
        print_json(found)
    else:
        _show_status(found)
    if not all(s["ready"] for s in found["services"].values()):
        raise typer.Exit(1)


# --- lists and CCL --------------------------------------------------------------------------------

lists_app = typer.Typer(
    help="The screening lists: their versions and ages, and updates.", no_args_is_help=True
)
ccl_app = typer.Typer(
    help="The Commerce Control List in use, and its update from the eCFR.", no_args_is_help=True
)


@lists_app.command("status")
def lists_status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Each list source: version, publication date, age, entries, the last update and its error."""
    found = run(_reference(cli_of(ctx)))
    if "lists_error" in found:
        run(_fail(found["lists_error"]))
    if as_json:
        print_json(found["lists"])
        return
    _show_status({"services": {}, "lists": found["lists"], "ccl_error": "(see `exportwatch ccl status`)"})


async def _fail(message: str) -> None:
    raise CommandFailed(message)


@lists_app.command("update")
def lists_update(
    ctx: typer.Context,
    source: Annotated[list[str] | None, typer.Option(help="a list kind to update (default: all)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch the lists from their publishers, verify, swap while serving (an admin key). Exits 1 if
    an update failed (the list in use stays)."""
    body = {"sources": source} if source else {}
    outcomes = run(call(cli_of(ctx), "screening", "POST", "/lists/update", json=body, timeout=900.0))[
        "outcomes"
    ]
    if as_json:
        print_json(outcomes)
    else:
        table = Table(title="List updates")
        for column in ("source", "outcome", "version", "entries", "+ / ~ / -", "error"):
            table.add_column(column)
        for o in outcomes:
            changes = f"{o.get('added', 0)} / {o.get('changed', 0)} / {o.get('removed', 0)}"
            table.add_row(
                o["source"], o["outcome"], o.get("new_version") or o.get("old_version") or "-",
                str(o.get("entries") or "-"), changes, o.get("error") or "",
            )  # fmt: skip
        out.print(table)
    if any(o["outcome"] == "failed" for o in outcomes):
        raise typer.Exit(1)


@ccl_app.command("status")
def ccl_status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The CCL in use: version (eCFR date and hash), entries, warnings."""
    found = run(call(cli_of(ctx), "classifier", "GET", "/ccl"))
    if as_json:
        print_json(found)
        return
    out.print(
        f"CCL {found['version']}: eCFR {found['issue_date']}, {found['entries']} ECCNs, from {found['source']}"
    )
    for warning in found["warnings"][:10]:
        out.print(f"  warning: {warning}", highlight=False)


@ccl_app.command("update")
def ccl_update(
    ctx: typer.Context,
    on: Annotated[
        str | None, typer.Option("--date", help="eCFR date YYYY-MM-DD (default: the latest)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch Part 774 from the eCFR, rebuild and verify the CCL, swap it in (an admin key). A failed
    fetch keeps the CCL in use."""
    body = {"date": on} if on else None
    found = run(call(cli_of(ctx), "classifier", "POST", "/ccl/update", json=body, timeout=600.0))
    if as_json:
        print_json(found)
        return
    out.print(
        " ".join(f"{k}={v}" for k, v in found.items() if not isinstance(v, list | dict)), highlight=False
    )


# --- dead letters ---------------------------------------------------------------------------------

deadletters_app = typer.Typer(help="Messages a service gave up on, and their replay.", no_args_is_help=True)


def _records(cli: Cli) -> RecordsClient:
    return RecordsClient(cli.records_url(), api_key=cli.api_key, transport=cli.transports.get("records"))


async def _records_call(cli: Cli, work: Any) -> Any:
    async with _records(cli) as records:
        try:
            return await work(records)
        except (ExportwatchError, httpx.TransportError) as exc:
            raise CommandFailed(explain("records", cli.records_url(), exc)) from exc


@deadletters_app.command("list")
def deadletters_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Dead letters, newest first: service, origin, the error naming the field and the value."""
    letters = run(_records_call(cli_of(ctx), lambda r: r.dead_letters(limit=limit)))
    if as_json:
        print_json(letters)
        return
    table = Table(title=f"Dead letters ({len(letters)})")
    for column in ("event id", "service", "origin", "error type", "error", "failed at"):
        table.add_column(column, overflow="fold", no_wrap=column == "event id")
    for letter in letters:
        origin = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
        table.add_row(
            letter.event_id, letter.service, origin, letter.error_type, letter.error,
            letter.failed_at.isoformat(timespec="seconds"),
        )  # fmt: skip
    out.print(table)


@deadletters_app.command("replay")
def deadletters_replay(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="the dead letter's event id (`deadletters list`)")],
    as_json: JsonOption = False,
) -> None:
    """Publish a dead letter's original bytes and key again to its source topic (an admin key)."""
    replay = run(_records_call(cli_of(ctx), lambda r: r.replay(event_id)))
    if as_json:
        print_json(replay)
        return
    out.print(
        f"replayed {replay.replayed}: {replay.bytes} bytes, key {replay.key!r}, to {replay.topic}",
        highlight=False,
    )


# --- benchmarks -----------------------------------------------------------------------------------

bench_app = typer.Typer(help="The benchmark suites under bench/ (docs/benchmarks.md).", no_args_is_help=True)


def _suites() -> list[str]:
    folder = REPO_ROOT / "bench"
    if not folder.is_dir():
        raise CommandFailed(f"no bench/ folder in {REPO_ROOT}: the benchmarks run from a checkout")
    return sorted(p.name for p in folder.iterdir() if (p / "__main__.py").is_file())


@bench_app.command("list")
def bench_list(as_json: JsonOption = False) -> None:
    """The suites there are."""
    suites = run(_async(_suites))
    if as_json:
        print_json(suites)
        return
    for suite in suites:
        out.print(suite)


async def _async(work: Any) -> Any:
    return work()


@bench_app.command("run")
def bench_run(
    suite: Annotated[list[str] | None, typer.Argument(help="suites (default: all)")] = None,
) -> None:
    """Run suites (`python -m bench`); their reports print as they run. Exit code: the suites'."""
    chosen = suite or []
    known = run(_async(_suites))
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        run(_fail(f"unknown benchmark suite(s) {', '.join(unknown)}; available: {', '.join(known)}"))
    done = subprocess.run([sys.executable, "-m", "bench", *chosen], cwd=REPO_ROOT, check=False)
    raise typer.Exit(done.returncode)
