"""The compiled matcher (mypyc, `make native`): used only when built from the sources beside it, and
answering exactly as the interpreted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import services.screening.index as index_module
from bench.screening.labelled import negatives, positives
from services.screening import (
    COMPILED_MODULES,
    MANIFEST_NAME,
    MATCHER_BUILD,
    _Sources,
    matcher_build,
    source_digest,
)
from tests.screening_support import loaded_screening

ROOT = Path(__file__).resolve().parents[2]


def _package(directory: Path, *, compiled: tuple[str, ...] = COMPILED_MODULES, manifest: bool = True) -> None:
    for module in COMPILED_MODULES:
        (directory / f"{module}.py").write_text(f"NAME = {module!r}\n")
    for module in compiled:
        (directory / f"{module}{EXTENSION_SUFFIXES[0]}").write_bytes(b"\x7fELF")
    if manifest:
        digests = {m: source_digest(directory / f"{m}.py") for m in COMPILED_MODULES}
        (directory / MANIFEST_NAME).write_text(json.dumps({"sources": digests, "mypy": "2.4.1"}))


def test_a_build_from_the_sources_beside_it_is_used(tmp_path: Path) -> None:
    _package(tmp_path)
    assert matcher_build(tmp_path, environ={}).build == "compiled"


def test_no_build_means_the_sources(tmp_path: Path) -> None:
    _package(tmp_path, compiled=(), manifest=False)
    state = matcher_build(tmp_path, environ={})
    assert (state.build, state.detail) == ("interpreted", "not compiled (make native)")


def test_an_edited_source_is_never_shadowed_by_its_old_build(tmp_path: Path) -> None:
    _package(tmp_path)
    (tmp_path / "scoring.py").write_text("NAME = 'edited'\n")
    state = matcher_build(tmp_path, environ={})
    assert state.build == "interpreted"
    assert "scoring.py changed since the build" in state.detail


def test_a_partial_build_or_a_lost_manifest_means_the_sources(tmp_path: Path) -> None:
    _package(tmp_path, compiled=("normalise", "scoring"))
    state = matcher_build(tmp_path, environ={})
    assert state.build == "interpreted" and "missing:" in state.detail and "index" in state.detail
    (tmp_path / f"index{EXTENSION_SUFFIXES[0]}").write_bytes(b"\x7fELF")
    (tmp_path / MANIFEST_NAME).unlink()
    state = matcher_build(tmp_path, environ={})
    assert state.build == "interpreted" and MANIFEST_NAME in state.detail


def test_the_build_can_be_switched_off(tmp_path: Path) -> None:
    _package(tmp_path)
    state = matcher_build(tmp_path, environ={"EXPORTWATCH_NATIVE": "0"})
    assert (state.build, state.detail) == ("interpreted", "EXPORTWATCH_NATIVE=0")


def test_the_sources_are_imported_ahead_of_a_build(tmp_path: Path) -> None:
    _package(tmp_path)
    finder = _Sources("somepackage", tmp_path, COMPILED_MODULES)
    spec = finder.find_spec("somepackage.index", None)
    assert spec is not None and spec.origin == str(tmp_path / "index.py")
    assert finder.find_spec("somepackage.api", None) is None


def test_the_running_matcher_is_the_one_reported() -> None:
    compiled = not index_module.__file__.endswith(".py")
    assert compiled == (MATCHER_BUILD.build == "compiled"), (index_module.__file__, MATCHER_BUILD)
    if os.environ.get("EXPORTWATCH_REQUIRE_NATIVE") == "1":
        # `make test` builds it first: the tests below then compare the two builds for real.
        assert MATCHER_BUILD.build == "compiled", MATCHER_BUILD.detail


_CHILD = """
import json, sys
from services.screening import MATCHER_BUILD
from tests.screening_support import loaded_screening
screener = loaded_screening()[1]
names = json.load(sys.stdin)
out = {n: [m.model_dump(mode="json") for m in screener.screen_name(n)] for n in names}
json.dump({"build": MATCHER_BUILD.build, "answers": out}, sys.stdout)
"""


def test_compiled_and_interpreted_matchers_answer_alike() -> None:
    if MATCHER_BUILD.build != "compiled":
        pytest.skip(f"matcher not compiled here ({MATCHER_BUILD.detail}); make test builds it")
    screener = loaded_screening()[1]
    index = screener.matcher
    # Listed names perturbed every way the bench knows (Arabic and Greek script among them) and
    # unlisted real-world names: every path of normalisation, retrieval and alignment.
    names = [p.query for p in positives(index, sources=120, seed=5)] + [
        n.query for n in negatives(index, count=600, seed=5)
    ]
    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(names),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "EXPORTWATCH_NATIVE": "0"},
        timeout=300,
        check=True,
    )
    interpreted = json.loads(child.stdout)
    assert interpreted["build"] == "interpreted"
    # Every figure and piece of evidence of every match, as the child's came: through JSON.
    compiled = json.loads(
        json.dumps({n: [m.model_dump(mode="json") for m in screener.screen_name(n)] for n in names})
    )
    assert sum(1 for answer in compiled.values() if answer) > 100  # hits among them, not only misses
    differ = [n for n in names if compiled[n] != interpreted["answers"][n]]
    assert not differ, [(n, compiled[n], interpreted["answers"][n]) for n in differ[:5]]
