"""Pinned requirements for the image, read from pyproject.toml so the image and `make venv` agree.

    python deploy/container/pins.py runtime   the project's dependencies
    python deploy/container/pins.py native    what `python -m deploy.native build` needs (mypy,
                                              setuptools: pinned in the dev extra)

Run with the bare interpreter of the build stage (standard library only).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent.parent / "pyproject.toml"
NATIVE_BUILD = ("mypy", "setuptools")


def pins(which: str, pyproject: Path = PYPROJECT) -> list[str]:
    project = tomllib.loads(pyproject.read_text("utf-8"))["project"]
    if which == "runtime":
        return list(project["dependencies"])
    if which == "native":
        dev: list[str] = project["optional-dependencies"]["dev"]
        found = [r for r in dev if re.split(r"[=<>!~\[ ]", r, maxsplit=1)[0].lower() in NATIVE_BUILD]
        if len(found) != len(NATIVE_BUILD):
            raise SystemExit(f"pyproject.toml dev extra lacks a pin for one of {NATIVE_BUILD}: {found}")
        return found
    raise SystemExit(f"usage: pins.py runtime|native (given {which!r})")


if __name__ == "__main__":
    print("\n".join(pins(sys.argv[1] if len(sys.argv) > 1 else "")))
