"""Committed files generated from the code, and the check that they still match it.

The event catalogue (deploy/catalogue.py) and the generated Kubernetes resources (deploy/manifests.py)
share this: `write` makes the files what the code says (removing files it no longer makes) and
`check` names every file that differs, is missing or is left over, so a test and CI fail on drift.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

Render = Callable[[], dict[Path, str]]


def drift(files: dict[Path, str], owned: list[Path], root: Path = ROOT) -> list[str]:
    """Paths (relative to `root`) of generated files that do not match `files`; `owned` are the
    generated files now on disk (those not in `files` are left over)."""
    stale = [p for p, text in files.items() if not p.is_file() or p.read_text("utf-8") != text]
    extra = [p for p in owned if p not in files]
    return sorted(str(p.relative_to(root)) for p in stale + extra)


def write(files: dict[Path, str], owned: list[Path], root: Path = ROOT) -> list[str]:
    changed = drift(files, owned, root)
    for path in owned:
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return changed


def main(
    argv: list[str] | None,
    *,
    prog: str,
    what: str,
    render: Render,
    owned: Callable[[], list[Path]],
    root: Path = ROOT,
) -> int:
    """`write` or `check` the files `render` makes; `owned` lists the generated files on disk."""
    parser = argparse.ArgumentParser(prog=prog, description=f"Write or check the {what}.")
    parser.add_argument("command", choices=["write", "check"])
    args = parser.parse_args(argv)
    if args.command == "write":
        changed = write(render(), owned(), root)
        print(f"{what}: {len(changed)} file(s) updated" + (f": {', '.join(changed)}" if changed else ""))
        return 0
    stale = drift(render(), owned(), root)
    if stale:
        print(
            f"{what} out of date with the code: {', '.join(stale)}; run `{prog} write` "
            "(make generate) and commit the result",
            file=sys.stderr,
        )
        return 1
    print(f"{what}: up to date")
    return 0
