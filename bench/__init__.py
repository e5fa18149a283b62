"""Benchmarks: `make bench` runs every suite; `make bench-<suite>` one of them.

Conventions (docs/benchmarks.md reports the figures):
- Each suite is a package `bench.<suite>` with `main(argv: list[str]) -> int` in its `__main__.py`.
- Speed is compared as a ratio against a baseline run in the same process, on the same input,
  so a slower or busier machine shifts both; absolute figures are reported with the machine.
- Results are written as JSON to var/bench/<suite>.json and printed as a Markdown table.
- Nothing here is a test: no timing assertion lives in tests/.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "var" / "bench"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(suite: str, results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{suite}.json"
    path.write_text(json.dumps({"suite": suite, "machine": machine(), **results}, indent=2, default=str))
    return path
