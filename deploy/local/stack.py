"""Start the four services as separate processes, the way they run in production.

Used by `make run` (deploy/local/run.py) and by the end-to-end test, so both exercise the very
same entry points (`python -m services.<name>`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("classifier", "screening", "risk", "records")


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def readiness(self) -> tuple[bool, str]:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                return True, response.read().decode()
        except urllib.error.HTTPError as exc:
            return False, exc.read().decode(errors="replace")
        except OSError as exc:
            return False, str(exc)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
        return self.process.returncode


def start_process(
    name: str, command: list[str], *, env: dict[str, str], log_dir: Path, port: int = 0
) -> ServiceProcess:
    """Start `command` as a process of its own, its output appended to `log_dir/<name>.log`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        # Own session: a Ctrl-C in the terminal reaches only the launcher, which stops the
        # services in order (consumers leave their groups cleanly) before the broker.
        start_new_session=True,
    )
    return ServiceProcess(name=name, port=port, process=process, log_path=log_path, _log=log)


def start_service(name: str, *, port: int, env: dict[str, str], log_dir: Path) -> ServiceProcess:
    """`python -m services.<name>` on `port`, the way production starts it."""
    return start_process(
        name,
        [sys.executable, "-m", f"services.{name}"],
        env={**env, f"EXPORTWATCH_{name.upper()}_PORT": str(port)},
        log_dir=log_dir,
        port=port,
    )


def wait_ready(services: list[ServiceProcess], *, timeout: float = 120.0) -> None:
    """Wait until every service answers 200 on /readyz; fail fast if one exits."""
    deadline = time.monotonic() + timeout
    pending = list(services)
    while pending:
        for service in list(pending):
            if service.process.poll() is not None:
                raise RuntimeError(
                    f"{service.name} exited with {service.process.returncode} before it was ready:\n"
                    f"{service.log_tail()}"
                )
            ok, _ = service.readiness()
            if ok:
                pending.remove(service)
        if pending and time.monotonic() > deadline:
            details = {s.name: s.readiness()[1] for s in pending}
            raise TimeoutError(f"not ready after {timeout:.0f}s: {json.dumps(details)[:2000]}")
        if pending:
            time.sleep(0.3)


def get_json(url: str, timeout: float = 5.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())
