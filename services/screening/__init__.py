"""Screening service: every party of an order against the restricted-party and sanctions lists.

The matcher and the screening rules (`COMPILED_MODULES`: `scripts`, `normalise`, `scoring`, `edits`,
`index`, `calibration`, `domain`; no I/O but `calibration`'s one read of its name-rank table) may be
compiled with mypyc (`make native`, see deploy/native.py): the same source, the same answers, about
a third faster. A compiled module is used only when it was built from the source beside it:
`native.json` records each source's SHA-256 at build time. Otherwise, or with EXPORTWATCH_NATIVE=0, the sources are
imported, all of them together, and `MATCHER_BUILD` says which ran and why (the service logs it at
start and `GET /lists` reports it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path
from types import ModuleType

COMPILED_MODULES = ("scripts", "normalise", "scoring", "edits", "index", "calibration", "domain")
MANIFEST_NAME = "native.json"


@dataclass(frozen=True)
class MatcherBuild:
    """Which build of the matcher runs: "compiled" (mypyc) or "interpreted", and why."""

    build: str
    detail: str


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def matcher_build(
    directory: Path, modules: Sequence[str] = COMPILED_MODULES, environ: dict[str, str] | None = None
) -> MatcherBuild:
    """Whether the compiled modules in `directory` may be used: all of them built, each from the
    source now beside it, and not switched off by EXPORTWATCH_NATIVE=0."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("EXPORTWATCH_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return MatcherBuild("interpreted", "EXPORTWATCH_NATIVE=0")
    built = [
        m for m in modules if any((directory / f"{m}{suffix}").exists() for suffix in EXTENSION_SUFFIXES)
    ]
    if not built:
        return MatcherBuild("interpreted", "not compiled (make native)")
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
        recorded = {m: str(manifest["sources"][m]) for m in modules}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return MatcherBuild("interpreted", f"{MANIFEST_NAME} unreadable ({exc!r}); run make native")
    missing = [m for m in modules if m not in built]
    if missing:
        return MatcherBuild("interpreted", f"compiled modules missing: {', '.join(missing)}; run make native")
    changed = [m for m in modules if source_digest(directory / f"{m}.py") != recorded[m]]
    if changed:
        names = ", ".join(f"{m}.py" for m in changed)
        return MatcherBuild("interpreted", f"stale: {names} changed since the build; run make native")
    return MatcherBuild("compiled", f"mypyc {manifest.get('mypy', '?')}, built {manifest.get('built', '?')}")


class _Sources(MetaPathFinder):
    """Imports the named modules from their .py sources, ahead of a compiled module beside them."""

    def __init__(self, package: str, directory: Path, modules: Sequence[str]) -> None:
        self._paths = {f"{package}.{m}": directory / f"{m}.py" for m in modules}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        source = self._paths.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


MATCHER_BUILD = matcher_build(Path(__file__).parent)
if MATCHER_BUILD.build != "compiled":
    sys.meta_path.insert(0, _Sources(__name__, Path(__file__).parent, COMPILED_MODULES))
