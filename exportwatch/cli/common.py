"""What every `exportwatch` command shares: where the services are, which API key to send, how a
failed call is explained, and how results are printed (tables for people, `--json` for scripts).

The API key: `--api-key`, else EXPORTWATCH_API_KEY, else the file `make run` writes (`var/admin.key`).
A service's URL: `--<service>-url`, else EXPORTWATCH_<SERVICE>_URL, else http://127.0.0.1:<its port>
(EXPORTWATCH_<SERVICE>_PORT, default 8001-8004, as `make run` starts it).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from pydantic import BaseModel
from rich.console import Console

from exportwatch.client import ExportwatchError
from shared.settings import REPO_ROOT, SERVICE_PORTS, service_port

T = TypeVar("T")
API_KEY_VARIABLE = "EXPORTWATCH_API_KEY"
ADMIN_KEY_FILE = REPO_ROOT / "var" / "admin.key"
out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of tables")]


class CommandFailed(Exception):
    """A command that cannot do its job; the message says why and what to do (exit code 1)."""


def service_url(service: str) -> str:
    given = os.environ.get(f"EXPORTWATCH_{service.upper()}_URL")
    return (given or f"http://127.0.0.1:{service_port(service)}").rstrip("/")


def find_api_key(given: str | None) -> str | None:
    if given:
        return given.strip()
    from_env = os.environ.get(API_KEY_VARIABLE)
    if from_env:
        return from_env.strip()
    try:
        return ADMIN_KEY_FILE.read_text("utf-8").strip() or None
    except OSError:
        return None


@dataclass
class Cli:
    """The root options, passed to every command through Typer's context."""

    api_key: str | None = None
    urls: dict[str, str] = field(default_factory=lambda: {s: service_url(s) for s in SERVICE_PORTS})
    # Tests (and embedding applications) may reach an app without a socket.
    transports: Mapping[str, httpx.AsyncBaseTransport] = field(default_factory=dict)
    timeout: float = 30.0

    def client(self, service: str, *, timeout: float | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.AsyncClient(
            base_url=self.urls[service],
            headers=headers,
            timeout=timeout or self.timeout,
            transport=self.transports.get(service),
        )

    def records_url(self) -> str:
        return self.urls["records"]


def cli_of(ctx: typer.Context) -> Cli:
    found = ctx.find_root().obj
    if not isinstance(found, Cli):
        found = Cli(api_key=find_api_key(None))
        ctx.find_root().obj = found
    return found


def explain(service: str, url: str, exc: BaseException) -> str:
    """What went wrong with a call, in words an operator can act on."""
    if isinstance(exc, httpx.TransportError):
        return (
            f"cannot reach {service} at {url} ({type(exc).__name__}: {exc or 'no answer'}): is it running? "
            f"`make run` starts all four; or give --{service}-url / EXPORTWATCH_{service.upper()}_URL"
        )
    if isinstance(exc, ExportwatchError):
        return _status_words(service, exc.status, exc.detail, str(exc).split(":", 1)[0])
    return f"{service}: {type(exc).__name__}: {exc}"


def _status_words(service: str, status: int, detail: Any, call: str) -> str:
    if status == 401:
        return (
            f"{service} refused the API key ({call}: 401 {detail}): pass --api-key, set "
            f"{API_KEY_VARIABLE}, or check {ADMIN_KEY_FILE}; `exportwatch keys list` shows the keys in force"
        )
    if status == 403:
        return (
            f"{service}: this key's role is too low ({call}: 403 {detail}); an admin can make a key with "
            "the role needed: `exportwatch keys create --name NAME --role ROLE`"
        )
    if status == 404:
        return f"{service}: not found ({call}: 404 {detail})"
    if status == 503:
        return f"{service} is not ready ({call}: 503 {detail}); `exportwatch status` says why"
    return f"{service}: {call}: HTTP {status}: {detail}"


async def call(cli: Cli, service: str, method: str, path: str, **kwargs: Any) -> Any:
    """One HTTP call to a service; its JSON, or CommandFailed explaining the failure."""
    async with cli.client(service, timeout=kwargs.pop("timeout", None)) as client:
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CommandFailed(explain(service, cli.urls[service], exc)) from exc
    if response.is_success:
        return response.json() if response.content else None
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    error = ExportwatchError(method, path, response.status_code, detail)
    raise CommandFailed(explain(service, cli.urls[service], error)) from error


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's work; a CommandFailed ends the command with its message and exit code 1."""
    try:
        return asyncio.run(coroutine)
    except CommandFailed as exc:
        err.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from exc


def print_json(value: Any) -> None:
    """JSON on stdout, nothing else: what a script parses."""

    def default(obj: Any) -> Any:
        if isinstance(obj, BaseModel):
            return obj.model_dump(mode="json", by_alias=True)
        if isinstance(obj, Path):
            return str(obj)
        return str(obj)

    typer.echo(json.dumps(value, default=default, indent=2, ensure_ascii=False))


def age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    days = seconds / 86400
    return f"{days:.1f} d" if days >= 1 else f"{seconds / 3600:.1f} h"
