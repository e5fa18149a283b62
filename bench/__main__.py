"""`python -m bench [suite ...]`: run the named benchmark suites, or all of them."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def suites() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.ispkg)


def main(argv: list[str]) -> int:
    chosen = argv or suites()
    unknown = sorted(set(chosen) - set(suites()))
    if unknown:
        print(f"unknown benchmark suite(s): {', '.join(unknown)}; available: {', '.join(suites())}")
        return 2
    status = 0
    for suite in chosen:
        print(f"=== bench.{suite} ===", flush=True)
        module = importlib.import_module(f"bench.{suite}.__main__")
        status |= int(module.main([]))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
