"""The launcher's supervisor on real child processes: killed ones come back, stopping stops all."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from deploy.local.stack import ServiceProcess, start_process
from deploy.local.supervisor import Supervised, status_line

# A stand-in service: says it is up, serves until SIGTERM, then exits 0 like uvicorn's clean stop.
SERVICE = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("up", flush=True)
while True:
    time.sleep(0.05)
"""
CRASHING = "import sys; sys.exit(3)"


def _launcher(tmp_path: Path, code: str) -> Callable[[], ServiceProcess]:
    return partial(start_process, "child", [sys.executable, "-c", code], env={}, log_dir=tmp_path)


def _until(condition: Callable[[], bool], supervised: Supervised, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {timeout}s: {supervised.status()}")
        supervised.check()
        time.sleep(0.02)


def test_a_killed_service_is_restarted_with_its_restart_count_and_stops_cleanly(tmp_path: Path) -> None:
    events: list[str] = []
    child = Supervised(
        "child",
        launch=_launcher(tmp_path, SERVICE),
        initial_backoff=0.1,
        ready_check=lambda p: b"up" in p.log_path.read_bytes(),
        report=events.append,
    )
    first = child.start()
    _until(lambda: b"up" in first.log_path.read_bytes(), child)
    os.kill(first.process.pid, signal.SIGKILL)

    _until(lambda: child.restarts == 1 and child.running and not child.awaiting_ready, child)
    assert child.pid != first.process.pid
    assert first.process.returncode == -signal.SIGKILL
    assert child.last_exit == -signal.SIGKILL
    assert "child up (pid" in status_line([child]) and "restarts 1)" in status_line([child])
    assert events[0].startswith("child: exited with signal SIGKILL") and "restart 1 in 0.1s" in events[0]
    assert any("restarted (pid" in e and "restarts 1" in e for e in events)
    logged = [json.loads(line) for line in first.log_path.read_text().splitlines() if line.startswith("{")]
    assert [(e["logger"], e["restarts"]) for e in logged] == [
        ("exportwatch.supervisor", n) for n in (0, 1, 1)
    ]
    assert logged[0]["exit"] == -signal.SIGKILL

    current = child.current
    assert current is not None
    # Both children write to one log, so "up" was there before the second one started: wait for its
    # own "up" (its SIGTERM handler is installed by then) before stopping it.
    _until(lambda: first.log_path.read_text().splitlines().count("up") >= 2, child)
    assert child.stop(timeout=10) == 0  # SIGTERM honoured, no SIGKILL needed
    child.check()
    assert child.restarts == 1 and not child.running and current.process.poll() == 0


def test_a_crash_loop_backs_off_exponentially_up_to_the_cap(tmp_path: Path) -> None:
    events: list[str] = []
    looping = Supervised(
        "child",
        launch=_launcher(tmp_path, CRASHING),
        initial_backoff=0.1,
        max_backoff=0.4,
        report=events.append,
    )
    looping.start()
    _until(lambda: looping.restarts >= 4 and looping.restart_at is not None, looping)
    delays = [e.split(" in ")[-1] for e in events if "exited with exit code 3" in e]
    assert delays[:4] == ["0.1s", "0.2s", "0.4s", "0.4s"]  # doubling, then the cap
    looping.stop()
    restarts = looping.restarts
    time.sleep(0.3)
    looping.check()
    assert looping.restarts == restarts  # stopped for good: nothing restarts any more


@pytest.mark.parametrize("exit_code", [0, 1])
def test_any_exit_is_restarted_not_only_crashes(tmp_path: Path, exit_code: int) -> None:
    # A Deployment's restartPolicy is Always: a service that ends on its own is not "done".
    service = Supervised(
        "child", launch=_launcher(tmp_path, f"import sys; sys.exit({exit_code})"), initial_backoff=0.01
    )
    service.start()
    _until(lambda: service.restarts == 1, service)
    service.stop()
