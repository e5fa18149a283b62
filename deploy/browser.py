"""Debian's Chromium for the dashboard's browser test (make test): installed with apt when missing,
like PostgreSQL (deploy/postgres/pg.py). Playwright drives it through `executable_path`; no browser is
downloaded from anywhere else.

    python -m deploy.browser ensure     # prints the browser's path
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
PACKAGES = ("chromium", "chromium-driver")
# Flags for a headless run that reaches nothing but the page under test.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


class BrowserError(RuntimeError):
    pass


def ensure_chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        raise BrowserError(
            f"{CHROMIUM} is missing and apt-get is not available: install Chromium by other means"
        )
    prefix = [] if _is_root() else ["sudo", "-n"]
    for command in (
        [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update"],
        [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", *PACKAGES],
    ):
        print("deploy.browser: running " + " ".join(command), file=sys.stderr, flush=True)
        if subprocess.run(command, stdin=subprocess.DEVNULL, check=False).returncode != 0:
            raise BrowserError(f"{' '.join(command)!r} failed")
    if not CHROMIUM.exists():
        raise BrowserError(f"installed {', '.join(PACKAGES)} but {CHROMIUM} is still missing")
    return CHROMIUM


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def main(argv: list[str]) -> int:
    if argv != ["ensure"]:
        print("usage: python -m deploy.browser ensure", file=sys.stderr)
        return 2
    print(ensure_chromium())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
