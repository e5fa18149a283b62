"""The dependency lock agrees with pyproject, and the audit says clearly what it found or could not do."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from deploy import dependencies
from deploy.dependencies import LOCK, PYPROJECT, canonical, check, locked_versions

LOCK_LINE = "{name}=={version} \\\n    --hash=sha256:{digest}\n"


def _lock(tmp_path: Path, pins: dict[str, str]) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text("".join(LOCK_LINE.format(name=n, version=v, digest="0" * 64) for n, v in pins.items()))
    return path


def test_the_committed_lock_pins_every_pyproject_requirement() -> None:
    assert check(PYPROJECT, LOCK) == []
    locked = locked_versions(LOCK)
    assert locked["aiokafka"] == "0.14.0" and locked["pydantic-settings"] == "2.16.3"
    # Hashes for every locked requirement: pip installs it in hash-checking mode.
    assert LOCK.read_text().count("==") == len(locked) and "--hash=sha256:" in LOCK.read_text()


def test_an_unpinned_or_unlocked_requirement_is_named(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["fastapi==0.163.2", "rapidfuzz>=3"]\n'
        '[project.optional-dependencies]\ndev = ["Pytest==9.2.0"]\n'
    )
    problems = check(pyproject, _lock(tmp_path, {"fastapi": "0.163.1", "pytest": "9.2.0"}))
    assert problems == [
        "pyproject.toml pins fastapi==0.163.2 but requirements.lock has fastapi==0.163.1: run `make lock`",
        "pyproject.toml: 'rapidfuzz>=3' is not pinned to one version (name==version)",
    ]
    assert canonical("Pydantic_Settings") == "pydantic-settings"


def test_a_known_vulnerability_fails_the_audit_naming_package_advisory_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # pip-audit's JSON report, as it prints it for a vulnerable pin.
    report = {
        "dependencies": [
            {"name": "idna", "version": "3.21", "vulns": []},
            {
                "name": "urllib3",
                "version": "1.26.0",
                "vulns": [
                    {
                        "id": "PYSEC-2021-108",
                        "fix_versions": ["1.26.5"],
                        "description": "Catastrophic backtracking in the authority regex.",
                    }
                ],
            },
        ]
    }
    monkeypatch.setattr(dependencies, "run_pip_audit", lambda lock, timeout: report)
    code = dependencies.main(["--lock", str(_lock(tmp_path, {"idna": "3.21", "urllib3": "1.26.0"})), "audit"])
    err = capsys.readouterr().err
    assert code == 1
    assert "VULNERABLE urllib3 1.26.0: PYSEC-2021-108 (fixed in 1.26.5) Catastrophic backtracking" in err
    assert "1 known vulnerabilities" in err and "make lock" in err


class _FakePyPI(BaseHTTPRequestHandler):
    """The per-project JSON of a PyPI mirror that serves no per-release JSON."""

    projects: ClassVar[dict[str, dict[str, object]]] = {}

    def do_GET(self) -> None:
        name = self.path.strip("/").split("/")[0]
        body = self.projects.get(name)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        if body is not None:
            self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_pypi() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _FakePyPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_without_per_release_data_the_newest_release_is_checked_and_older_pins_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_pypi: str
) -> None:
    _FakePyPI.projects = {
        "jinja2": {
            "info": {"version": "3.1.9"},
            "vulnerabilities": [{"id": "GHSA-test", "fixed_in": [], "summary": "Sandbox escape"}],
        },
        "idna": {"info": {"version": "3.22"}, "vulnerabilities": []},
    }
    skipped = "Dependency not found on PyPI and could not be audited"
    report = {"dependencies": [{"name": n, "skip_reason": f"{skipped}: {n}"} for n in ("jinja2", "idna")]}
    monkeypatch.setattr(dependencies, "run_pip_audit", lambda lock, timeout: report)
    result = dependencies.audit(_lock(tmp_path, {"jinja2": "3.1.9", "idna": "3.21"}), base_url=fake_pypi)
    assert [str(f) for f in result.findings] == [
        "jinja2 3.1.9: GHSA-test (no fixed release yet) Sandbox escape"
    ]
    assert result.checked == ["jinja2"]
    assert result.unchecked == {
        "idna": "per-release advisories unavailable, and 3.21 is not the newest release (3.22)"
    }


def test_an_unreachable_pypi_is_a_failed_audit_not_a_clean_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The real pip-audit, its requests routed to a proxy that refuses connections.
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    code = dependencies.main(["--lock", str(_lock(tmp_path, {"idna": "3.21"})), "audit", "--timeout", "3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "FAILED TO RUN, PyPI's vulnerability data could not be reached" in err
    assert "No vulnerability was found or ruled out" in err
