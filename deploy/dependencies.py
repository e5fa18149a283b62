"""The project's dependencies: one lock with hashes, kept in step with pyproject, and audited.

    python -m deploy.dependencies lock    # requirements.lock from pyproject.toml (pip-compile, hashes)
    python -m deploy.dependencies check   # pyproject pins exact versions, all of them in the lock
    python -m deploy.dependencies audit   # the lock against PyPI's vulnerability data (pip-audit)

`make venv` installs the lock (pip verifies every file's SHA-256), `make test` runs check and audit.

Audit outcomes (exit codes):
- 0  no known vulnerability in any locked version that could be checked; packages that could not
     be checked are listed by name with the reason (see below);
- 1  a known vulnerability: package, version, advisory id, fixed versions and summary;
- 2  PyPI could not be reached at all (a network failure, not a finding): the audit did not
     happen, and `make test` fails with that message. Offline: `make test AUDIT=off`.
- 3  with --strict, some packages could not be checked.

pip-audit asks PyPI's per-release JSON (`/pypi/<name>/<version>/json`) for each pin. Where that
answers 404 (a PyPI mirror that serves only the per-project JSON) the package is checked against
the per-project JSON instead, whose `vulnerabilities` are those of the newest release: exact when
the pin is the newest release, otherwise the package is reported as not checked.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = REPO_ROOT / "pyproject.toml"
LOCK = REPO_ROOT / "requirements.lock"
PYPI_JSON = "https://pypi.org/pypi"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    """PEP 503 normalised name: `Pydantic_Settings` and `pydantic-settings` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path = LOCK) -> dict[str, str]:
    """`name==version` lines of the lock (hash and comment lines skipped)."""
    pins: dict[str, str] = {}
    for line in lock.read_text("utf-8").splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def declared_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    project = tomllib.loads(pyproject.read_text("utf-8"))["project"]
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    return [*project.get("dependencies", []), *(r for group in extras.values() for r in group)]


def check(pyproject: Path = PYPROJECT, lock: Path = LOCK) -> list[str]:
    """What is wrong between pyproject and the lock (empty: they agree)."""
    if not lock.is_file():
        return [f"{lock.name} is missing: run `make lock`"]
    locked = locked_versions(lock)
    problems = []
    for requirement in declared_requirements(pyproject):
        match = _PIN.match(requirement)
        if match is None:
            problems.append(f"pyproject.toml: {requirement!r} is not pinned to one version (name==version)")
            continue
        name, version = canonical(match.group(1)), match.group(2)
        if locked.get(name) != version:
            found = f"{name}=={locked[name]}" if name in locked else "absent"
            problems.append(
                f"pyproject.toml pins {name}=={version} but {lock.name} has {found}: run `make lock`"
            )
    return problems


def lock(pyproject: Path = PYPROJECT, output: Path = LOCK) -> int:
    """Resolve pyproject (with the dev extra) into `output`, every file's hash included."""
    command = [
        sys.executable, "-m", "piptools", "compile", "--quiet", "--extra", "dev", "--generate-hashes",
        "--allow-unsafe", "--strip-extras", "--no-header", "--output-file", str(output), str(pyproject),
    ]  # fmt: skip
    return subprocess.run(command, cwd=REPO_ROOT, check=False).returncode


@dataclass
class Finding:
    name: str
    version: str
    advisory: str
    fixed_in: list[str]
    summary: str

    def __str__(self) -> str:
        fixed = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fixed release yet"
        summary = " ".join(self.summary.split())
        return f"{self.name} {self.version}: {self.advisory} ({fixed}) {summary[:200]}"


@dataclass
class AuditResult:
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    unchecked: dict[str, str] = field(default_factory=dict)
    unreachable: str | None = None


def _fetch_json(url: str, timeout: float) -> dict[str, object] | None:
    """The JSON at `url`, None on 404; other failures raise (the caller calls them unreachable)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: dict[str, object] = json.loads(response.read())
            return data
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _vulnerabilities(payload: dict[str, object]) -> list[dict[str, object]]:
    found = payload.get("vulnerabilities") or []
    return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []


def newest_release_advisories(
    name: str, version: str, *, timeout: float, base_url: str = PYPI_JSON
) -> tuple[list[Finding] | None, str]:
    """The advisories of `name==version` from the per-project JSON, exact only when `version` is
    the newest release; (None, why) when that JSON cannot say."""
    payload = _fetch_json(f"{base_url}/{name}/json", timeout)
    if payload is None:
        return None, "not on PyPI"
    info = payload.get("info")
    newest = info.get("version") if isinstance(info, dict) else None
    if newest != version:
        return None, f"per-release advisories unavailable, and {version} is not the newest release ({newest})"
    return [
        Finding(
            name=name,
            version=version,
            advisory=str(v.get("id")),
            fixed_in=[str(f) for f in v.get("fixed_in") or []],  # type: ignore[attr-defined]
            summary=str(v.get("summary") or v.get("details") or ""),
        )
        for v in _vulnerabilities(payload)
    ], "newest release"


def run_pip_audit(lock: Path, timeout: float) -> dict[str, object]:
    """pip-audit over the lock: no resolution (every pin exact, every file hashed), JSON report."""
    command = [
        sys.executable, "-m", "pip_audit", "--disable-pip", "--require-hashes", "--requirement", str(lock),
        "--format", "json", "--progress-spinner", "off", "--timeout", str(int(timeout)),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    try:
        report: dict[str, object] = json.loads(result.stdout)
    except json.JSONDecodeError:
        said = [line.strip() for line in result.stderr.splitlines() if line.strip()] or ["(nothing)"]
        raise ConnectionError(
            f"pip-audit gave no report (exit {result.returncode}): {said[-1][:600]}"
        ) from None
    return report


def audit(lock: Path = LOCK, *, timeout: float = 15.0, base_url: str = PYPI_JSON) -> AuditResult:
    result = AuditResult()
    try:
        report = run_pip_audit(lock, timeout)
    except ConnectionError as exc:
        result.unreachable = str(exc)
        return result
    dependencies = report.get("dependencies")
    for dep in dependencies if isinstance(dependencies, list) else []:
        name = str(dep.get("name"))
        if "skip_reason" not in dep:
            result.checked.append(name)
            result.findings += [
                Finding(name, str(dep.get("version")), str(v["id"]), list(v.get("fix_versions") or []),
                        str(v.get("description") or ""))
                for v in dep.get("vulns") or []
            ]  # fmt: skip
            continue
        version = locked_versions(lock).get(canonical(name), "?")
        try:
            findings, why = newest_release_advisories(name, version, timeout=timeout, base_url=base_url)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            result.unreachable = f"{base_url}/{name}/json: {exc}"
            return result
        if findings is None:
            result.unchecked[name] = why
        else:
            result.checked.append(name)
            result.findings += findings
    if not result.checked and not result.unchecked:
        result.unreachable = f"pip-audit reported no dependency at all: {json.dumps(report)[:400]}"
    return result


def _cmd_audit(args: argparse.Namespace) -> int:
    result = audit(args.lock, timeout=args.timeout)
    if result.unreachable is not None:
        print(
            f"dependency audit: FAILED TO RUN, PyPI's vulnerability data could not be reached: {result.unreachable}\n"
            "  No vulnerability was found or ruled out. CI reaches PyPI; offline, run `make test AUDIT=off`.",
            file=sys.stderr,
        )
        return 2
    for finding in result.findings:
        print(f"dependency audit: VULNERABLE {finding}", file=sys.stderr)
    if result.unchecked:
        print(
            f"dependency audit: {len(result.unchecked)} of {len(result.checked) + len(result.unchecked)} locked "
            "packages could not be checked (PyPI served no advisories for their versions):",
            file=sys.stderr,
        )
        for name, why in sorted(result.unchecked.items()):
            print(f"  not checked: {name}: {why}", file=sys.stderr)
    if result.findings:
        print(
            f"dependency audit: {len(result.findings)} known vulnerabilities in {args.lock.name}; upgrade the "
            "pins in pyproject.toml (fixed versions above) and run `make lock`",
            file=sys.stderr,
        )
        return 1
    print(
        f"dependency audit: no known vulnerability in the {len(result.checked)} checked packages of {args.lock.name}"
    )
    return 3 if args.strict and result.unchecked else 0


def _cmd_check(args: argparse.Namespace) -> int:
    problems = check(args.pyproject, args.lock)
    for problem in problems:
        print(f"dependency pins: {problem}", file=sys.stderr)
    if not problems:
        print(f"dependency pins: pyproject.toml and {args.lock.name} agree")
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.dependencies", description=__doc__.split("\n")[0])
    parser.add_argument("--lock", type=Path, default=LOCK)
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lock", help="write requirements.lock from pyproject.toml (pip-compile, with hashes)")
    sub.add_parser("check", help="pyproject pins exact versions and the lock has each of them")
    audit_cmd = sub.add_parser("audit", help="known vulnerabilities of the locked versions (pip-audit)")
    audit_cmd.add_argument("--timeout", type=float, default=15.0)
    audit_cmd.add_argument("--strict", action="store_true", help="fail (3) if a package could not be checked")
    args = parser.parse_args(argv)
    if args.command == "lock":
        return lock(args.pyproject, args.lock)
    return _cmd_check(args) if args.command == "check" else _cmd_audit(args)


if __name__ == "__main__":
    raise SystemExit(main())
