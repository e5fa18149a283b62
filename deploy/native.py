"""Compile the screening matcher with mypyc: `python -m deploy.native ensure | build | status | clean`.

The matcher and the screening rules (the modules `services.screening.COMPILED_MODULES` names:
scripts, normalise, scoring, edits, index, calibration and domain) are compiled in place to C extensions beside their sources, with one shared library for them
all, and `services/screening/native.json` records the SHA-256 of each source they were built from.
Python imports a compiled module ahead of its source; `services/screening/__init__.py` allows it only
while every recorded digest matches the source beside it, so an edited source is never shadowed by
an old build. The compiled and the interpreted matcher give the same answers (a test compares them).

`ensure` builds only when the build in place would not be used (a source changed, a module is
missing) or came from another mypy: `make native` runs it, and `make run`, `make test` and
`make bench` run that first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.metadata import version
from pathlib import Path

from services.screening import COMPILED_MODULES, MANIFEST_NAME, matcher_build, source_digest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "services" / "screening"
# The name of the library they share (services/screening/matcher__mypyc.*.so).
GROUP = "services.screening.matcher"


def _compiled_files() -> list[Path]:
    stems = [*COMPILED_MODULES, GROUP.rsplit(".", 1)[1] + "__mypyc"]
    return [PACKAGE_DIR / f"{stem}{suffix}" for stem in stems for suffix in EXTENSION_SUFFIXES]


def clean() -> None:
    for path in [*_compiled_files(), PACKAGE_DIR / MANIFEST_NAME]:
        path.unlink(missing_ok=True)


def build() -> None:
    # Imported here: only the build needs mypyc and setuptools (the dev extra).
    from mypyc.build import mypycify
    from setuptools import Distribution

    started = time.monotonic()
    clean()
    sources = [f"services/screening/{m}.py" for m in COMPILED_MODULES]
    digests = {m: source_digest(PACKAGE_DIR / f"{m}.py") for m in COMPILED_MODULES}
    with tempfile.TemporaryDirectory(prefix="exportwatch-native-") as work:
        extensions = mypycify(sources, opt_level="3", group_name=GROUP, target_dir=f"{work}/c")
        distribution = Distribution({"name": "exportwatch-matcher", "ext_modules": extensions})
        command = distribution.get_command_obj("build_ext")
        command.inplace = True
        command.build_temp = f"{work}/temp"
        distribution.run_command("build_ext")
    manifest = {
        "sources": digests,
        "mypy": version("mypy"),
        "python": sys.version.split()[0],
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (PACKAGE_DIR / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    state = matcher_build(PACKAGE_DIR)
    if state.build != "compiled":
        raise SystemExit(f"native build finished but the matcher would not use it: {state.detail}")
    print(f"compiled {', '.join(sources)} in {time.monotonic() - started:.0f} s ({state.detail})")


def up_to_date() -> bool:
    """Whether the build in place is used (whatever EXPORTWATCH_NATIVE says) and came from this mypy."""
    if matcher_build(PACKAGE_DIR, environ={}).build != "compiled":
        return False
    manifest = json.loads((PACKAGE_DIR / MANIFEST_NAME).read_text(encoding="utf-8"))
    return bool(manifest.get("mypy") == version("mypy"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.native", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("ensure", "build", "status", "clean"))
    args = parser.parse_args(argv)
    # mypyc names the modules by their paths, relative to the checkout's root.
    if Path.cwd() != ROOT:
        raise SystemExit(f"run from the checkout's root ({ROOT})")
    if args.command == "ensure":
        if up_to_date():
            print(f"compiled matcher up to date ({matcher_build(PACKAGE_DIR, environ={}).detail})")
        else:
            build()
    elif args.command == "build":
        build()
    elif args.command == "clean":
        clean()
        print("removed the compiled matcher; the sources will be imported")
    else:
        state = matcher_build(PACKAGE_DIR)
        print(f"{state.build}: {state.detail}")


if __name__ == "__main__":
    main()
