"""`exportwatch`: the command line of the project (installed with the package, pyproject
[project.scripts]). Each group of commands is a module of this package with its own Typer app,
added below; `exportwatch --help` lists them."""

from __future__ import annotations

import typer

from exportwatch.cli import keys

app = typer.Typer(
    name="exportwatch",
    help="Exportwatch: export-control checks of ERP orders. Commands for operators and compliance officers.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(keys.app, name="keys")


def main() -> None:
    app()
