"""The OCI image definition: linted by hadolint, multi-stage, non-root, slim, with the compiled
matcher, and the service chosen by the container's argument."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from deploy.container import entrypoint, pins
from shared.settings import SERVICE_PORTS
from tests.deploy.deploy_support import ROOT

CONTAINERFILE = ROOT / "deploy" / "container" / "Containerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text("utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_containerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(CONTAINERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_reports_a_bad_containerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python:latest\nRUN cd /app && pip install fastapi\n", encoding="utf-8")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_image_is_multi_stage_from_a_slim_python_and_runs_as_a_non_root_user() -> None:
    stages = _stages()
    assert len(stages) >= 2
    args = dict(a.split("=", 1) for k, a in _instructions() if k == "ARG" and "=" in a)
    assert "slim" in args["PYTHON_IMAGE"]
    assert all(stage[0][1].startswith("${PYTHON_IMAGE}") for stage in stages)
    runtime = stages[-1]
    users = [a for k, a in runtime if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert not any("gcc" in a for k, a in runtime if k == "RUN"), "the compiler stays in the build stage"
    assert [a for k, a in runtime if k == "ENTRYPOINT"] == ['["python", "-m", "deploy.container.entrypoint"]']
    exposed = {int(p) for k, a in runtime if k == "EXPOSE" for p in a.split()}
    assert exposed == set(SERVICE_PORTS.values())


def test_the_screening_matcher_is_compiled_in_the_build_stage() -> None:
    build = _stages()[0]
    assert any("-m deploy.native build" in a for k, a in build if k == "RUN")


def test_every_copied_path_exists_in_the_repository() -> None:
    for kind, argument in _instructions():
        if kind == "COPY" and not argument.startswith("--from"):
            *sources, _ = argument.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_image_pins_are_the_pyproject_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert pins.pins("runtime") == project["dependencies"]
    native = pins.pins("native")
    assert {r.split("==")[0] for r in native} == {"mypy", "setuptools"}
    assert set(native) <= set(project["optional-dependencies"]["dev"])


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_the_argument_chooses_the_service(service: str) -> None:
    assert entrypoint.command([service]) == [sys.executable, "-m", f"services.{service}"]


@pytest.mark.parametrize("argv", [[], ["billing"], ["records", "risk"]])
def test_an_unknown_argument_is_refused_with_the_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert entrypoint.main(argv) == 2
    error = capsys.readouterr().err
    assert "usage: exportwatch {classifier|screening|risk|records|create-topics}" in error
    assert f"given: {' '.join(argv) or 'nothing'}" in error


def test_every_service_module_the_entrypoint_names_exists() -> None:
    for service in SERVICE_PORTS:
        assert (ROOT / "services" / service / "__main__.py").is_file()
