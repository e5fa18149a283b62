"""`exportwatch keys`: the API keys every service accepts (shared/keystore.py).

The keys file (`--file`, else EXPORTWATCH_API_KEYS_FILE, else var/api-keys.json) keeps each key's
name, role and the SHA-256 of its secret, mode 0600; services reload it when it changes, so a new or
revoked key counts on the next request. A new key is printed once, as the last line, and nowhere
else: keep it in a password manager or a secret store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.keystore import (
    ROLES,
    KeyCommandError,
    KeyFileError,
    Role,
    create_key,
    default_keys_file,
    read_keys,
    revoke_key,
)

app = typer.Typer(
    help="Create, list and revoke API keys (roles: viewer < reviewer < approver < admin).",
    no_args_is_help=True,
)
err = Console(stderr=True)

FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file", "-f", help="keys file (default: $EXPORTWATCH_API_KEYS_FILE, else var/api-keys.json)"
    ),
]


def _file(given: Path | None) -> Path:
    return given if given is not None else default_keys_file()


def _role(value: str) -> Role:
    if value not in ROLES:
        raise typer.BadParameter(f"{value!r}: choose one of {', '.join(ROLES)}")
    return value


@app.command()
def create(
    name: Annotated[str, typer.Option(help="who or what the key is for, e.g. a.compliance or erp-eu1")],
    role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")],
    file: FileOption = None,
) -> None:
    """Make a key; it is printed once, as the last line."""
    path = _file(file)
    try:
        token, record = create_key(path, name=name, role=_role(role), now=datetime.now(UTC))
    except (KeyCommandError, KeyFileError, ValueError) as exc:
        err.print(f"[red]not created:[/red] {exc}")
        raise typer.Exit(1) from exc
    err.print(f"created key {record.name!r} ({record.role}, id {record.key_id}) in {path}")
    err.print("the key is shown once, below; only its SHA-256 is kept")
    typer.echo(token)


@app.command("list")
def list_keys(file: FileOption = None) -> None:
    """Every key of the file: name, role, id, created, revoked (never a secret)."""
    path = _file(file)
    try:
        keys = read_keys(path)
    except KeyFileError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    table = Table(title=f"API keys in {path}")
    for column in ("name", "role", "key id", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.name,
            key.role,
            key.key_id,
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    Console().print(table)


@app.command()
def revoke(
    name: Annotated[str, typer.Argument(help="the name of the key in force")], file: FileOption = None
) -> None:
    """Revoke the key in force with this name (kept in the file, with the time, for the audit)."""
    path = _file(file)
    try:
        record = revoke_key(path, name=name, now=datetime.now(UTC))
    except (KeyCommandError, KeyFileError) as exc:
        err.print(f"[red]not revoked:[/red] {exc}")
        raise typer.Exit(1) from exc
    typer.echo(
        f"revoked key {record.name!r} (id {record.key_id}); services refuse it from their next request"
    )
