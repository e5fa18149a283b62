"""`exportwatch`: the command line of the project (installed with the package, pyproject
[project.scripts]). Each group of commands is a module of this package with its own Typer app,
added below; `exportwatch --help` lists them. `exportwatch --install-completion` installs shell
completion (bash, zsh, fish, PowerShell).

Where the services are and which API key is sent: exportwatch/cli/common.py (flags, then
EXPORTWATCH_<SERVICE>_URL and EXPORTWATCH_API_KEY, then `make run`'s defaults and var/admin.key)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from exportwatch.cli import keys, ops, orders
from exportwatch.cli.common import Cli, find_api_key, service_url

app = typer.Typer(
    name="exportwatch",
    help="Exportwatch: export-control checks of ERP orders. Commands for operators and compliance officers.",
    no_args_is_help=True,
)


def _url(service: str) -> Any:
    return typer.Option(
        f"--{service}-url",
        help=f"the {service} service (default: EXPORTWATCH_{service.upper()}_URL, else make run's address)",
        show_default=False,
    )


@app.callback()
def root(
    ctx: typer.Context,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="API key (default: $EXPORTWATCH_API_KEY, else var/admin.key, which make run writes)",
            show_default=False,
        ),
    ] = None,
    classifier_url: Annotated[str | None, _url("classifier")] = None,
    screening_url: Annotated[str | None, _url("screening")] = None,
    risk_url: Annotated[str | None, _url("risk")] = None,
    records_url: Annotated[str | None, _url("records")] = None,
) -> None:
    given = {
        "classifier": classifier_url,
        "screening": screening_url,
        "risk": risk_url,
        "records": records_url,
    }
    ctx.obj = Cli(
        api_key=find_api_key(api_key),
        urls={s: (u.rstrip("/") if u else service_url(s)) for s, u in given.items()},
    )


app.command()(ops.status)
app.command()(orders.queue)
app.command()(orders.submit)
app.add_typer(orders.orders_app, name="orders")
app.add_typer(ops.deadletters_app, name="deadletters")
app.add_typer(ops.lists_app, name="lists")
app.add_typer(ops.ccl_app, name="ccl")
app.add_typer(ops.bench_app, name="bench")
app.add_typer(keys.app, name="keys")


def main() -> None:
    app()
