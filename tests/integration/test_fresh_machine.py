"""`make run` from a clone with no snapshot beside it: with a local mirror standing in for the
publishers it fetches every source, verifies it, starts and decides the sample orders; without one
it stops at once, saying in one line what is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.kafka.broker import JARS_DIR, JARS_DIR_ENV, ensure_jars, free_port
from shared.settings import REPO_ROOT
from tests.reference_mirror import publishers
from tests.unit.test_samples_pipeline import EXPECTED

pytestmark = pytest.mark.integration


def _clone(tmp_path: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored) in a folder with nothing beside it."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    clone = tmp_path / "elsewhere" / "exportwatch"
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    assert not (clone.parent / "shared").exists()
    return clone


def _environment(clone: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EXPORTWATCH_DATA_DIR", "EXPORTWATCH_ECFR", "EXPORTWATCH_SCREENING"))
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    ports = {
        "EXPORTWATCH_KAFKA_PORT": free_port(),
        "EXPORTWATCH_KAFKA_CONTROLLER_PORT": free_port(),
        "EXPORTWATCH_KAFKA_SSL_PORT": free_port(),
        **{
            f"EXPORTWATCH_{s.upper()}_PORT": free_port()
            for s in ("classifier", "screening", "risk", "records")
        },
    }
    env.update({k: str(v) for k, v in ports.items()})
    env[JARS_DIR_ENV] = str(JARS_DIR)
    env["PYTHONPATH"] = str(clone)
    return {**env, **extra}


def _run(clone: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.local.run", "--no-serve", "--var-dir", str(clone / "var")],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_make_run_from_a_clone_fetches_verifies_and_decides_the_samples(
    data_dir: Path, tmp_path: Path
) -> None:
    ensure_jars()
    clone = _clone(tmp_path)
    with publishers(data_dir, tmp_path / "mirror") as mirror:
        done = _run(clone, _environment(clone, **mirror.environment()), timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert (
        "no reference snapshot" in output and f"reference data: {clone / 'var' / 'data'} (fetched)" in output
    )
    assert (clone / "var" / "data" / "manifest.json").is_file()
    decided = dict(
        re.findall(r"^\s+(SO-\d{4}-\d{6})\s+(RELEASE|LICENSE_REQUIRED|HOLD|BLOCK)\s", done.stdout, re.M)
    )
    assert decided == {order_id: decision for order_id, (decision, _) in EXPECTED.items()}, output[-4000:]
    assert f"{len(EXPECTED)}/{len(EXPECTED)} sample orders decided" in done.stdout


def test_make_run_from_a_clone_without_a_mirror_fails_in_one_clear_line(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    # Nothing listens on the discard port: the publishers are unreachable, as offline.
    env = _environment(
        clone,
        EXPORTWATCH_ECFR_API_URL="http://127.0.0.1:9/api/versioner/v1",
        EXPORTWATCH_SCREENING_UPDATE_BASE_URL="http://127.0.0.1:9",
    )
    done = _run(clone, env, timeout=120)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("reference data missing:") and "EXPORTWATCH_DATA_DIR" in line
    assert "15 CFR 774" in line and "ofac_sdn" in line
    assert done.stdout.strip() == ""
    assert not (clone / "var" / "data").exists() and not (clone / "var" / "kafka").exists()
