"""The re-screening bench (bench/rescreen), small: every order it fills is asked for, and every
planted party a full screening matches to an entry of the change comes back as an amended
screening (unshipped) or a post-shipment alert (shipped); nothing else does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.rescreen import __main__ as bench
from services.screening.service import build_runtime
from shared.settings import Settings
from tests.screening_support import loaded_lists


def _loaded() -> bench.Screening:
    """The lists the test session loaded once, not a fresh load (seconds of CPU)."""

    async def publish(outgoing: object) -> None:
        pass

    runtime = build_runtime(Settings(), publish, loaded_lists())
    runtime.clearances_caught_up.set()
    return bench.Screening(Settings(), runtime.snapshot, runtime)


def test_the_delta_finds_every_planted_party_the_full_screening_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "_load", _loaded)
    out = tmp_path / "rescreen.json"
    # The exit status says whether the run met 60 s; a small run always does, but the figures are
    # what is checked here.
    bench.main(
        ["--orders", "400", "--planted", "20", "--customers", "150", "--db", "sqlite", "--skip-recall",
         "--work-dir", str(tmp_path), "--output", str(out)]
    )  # fmt: skip
    [run] = json.loads(out.read_text())["runs"]
    assert run["orders"] == run["requests"] == 400 and run["parties"] == 1200
    assert run["planted"] == 20 and run["shipped"] == 40
    outcomes = run["outcomes"]
    assert outcomes.get("amended", 0) + outcomes.get("alert", 0) == run["planted_found_by_full_screening"] > 0
    assert outcomes.get("alert", 0) <= run["planted_shipped"]
    assert outcomes["none"] == 400 - run["planted_found_by_full_screening"]
    assert run["records_select_s"] > 0 and run["screening_delta_s"] > 0
