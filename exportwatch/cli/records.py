"""`exportwatch records`: the trail database's retention, run by operators (a cron job, daily).

`exportwatch records purge` deletes the orders whose retention has ended (the policy's
`records.retention_years`, 5 by default, from the later of the decision and the shipment; 15 CFR
762.6) and are not under a legal hold, leaving a tombstone for each (chained, so verification still
passes), and published outbox rows past `records.published_outbox_days`. `--dry-run` lists what would
go and deletes nothing. The database is the records service's (EXPORTWATCH_DATABASE_URL, or
`--database-url`), migrated to the newest schema first.
"""

from __future__ import annotations

import asyncio
import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.records import retention
from services.records.models import create_schema
from services.records.policy import load_records_policy
from shared.db import make_engine, make_sessionmaker
from shared.settings import load_settings

app = typer.Typer(help="The trail database: retention and legal holds (purge).", no_args_is_help=True)
err = Console(stderr=True)


async def _purge(url: str, policy_file: Path, *, dry_run: bool, purged_by: str) -> retention.PurgeReport:
    policy = load_records_policy(policy_file)
    engine = make_engine(url)
    try:
        await create_schema(engine)
        return await retention.purge(
            make_sessionmaker(engine),
            policy=policy,
            now=datetime.now(UTC),
            purged_by=purged_by,
            dry_run=dry_run,
        )
    finally:
        await engine.dispose()


@app.command()
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would be purged; delete nothing")
    ] = False,
    database_url: Annotated[
        str | None, typer.Option(help="the trail database (default: $EXPORTWATCH_DATABASE_URL)")
    ] = None,
    policy_file: Annotated[
        Path | None, typer.Option(help="the policy (default: $EXPORTWATCH_POLICY_FILE, policy/policy.json)")
    ] = None,
) -> None:
    """Delete the orders past their retention (not under a legal hold), leaving tombstones."""
    overrides: dict[str, object] = {}
    if database_url is not None:
        overrides["database_url"] = database_url
    if policy_file is not None:
        overrides["policy_file"] = policy_file
    try:
        settings = load_settings("records", **overrides)
        report = asyncio.run(
            _purge(
                settings.database_url,
                settings.policy_file,
                dry_run=dry_run,
                purged_by=f"exportwatch records purge ({getpass.getuser()})",
            )
        )
    except (ValueError, OSError) as exc:
        err.print(f"[red]not purged:[/red] {exc}")
        raise typer.Exit(1) from exc
    title = "would be purged (dry run)" if dry_run else f"purged (purge {report.purge_id})"
    table = Table(title=f"orders whose retention ended before {report.cutoff.date().isoformat()}: {title}")
    for column in ("order", "decision", "decided", "shipped", "retention until"):
        table.add_column(column)
    for order in report.orders:
        table.add_row(
            order.order_id,
            order.decision or "-",
            order.decided_at.date().isoformat() if order.decided_at else "-",
            order.shipped_at.date().isoformat() if order.shipped_at else "-",
            order.retention_until.date().isoformat(),
        )
    Console().print(table)
    verb = "would purge" if dry_run else "purged"
    typer.echo(
        f"{verb} {len(report.orders)} orders ({report.steps_deleted} trail steps); "
        f"{report.held_back} past retention kept under legal hold"
        + (
            ""
            if dry_run
            else f"; {report.outbox_deleted} published outbox rows and {report.sessions_deleted} expired sessions deleted"
        )
    )
