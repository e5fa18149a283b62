"""Keep the launcher's services running the way a Kubernetes Deployment keeps its pods.

A service that exits (a crash, an out-of-memory kill, `kill -9`) is started again after a delay
that doubles with each consecutive failure (1 s, 2 s, 4 s ... up to 30 s, like the kubelet's
CrashLoopBackOff) and goes back to the first delay once an incarnation has run for a minute. Each
exit and restart is printed with the service's restart count, and written as a JSON line into
the service's own log, so `var/logs/<service>.log` tells where one incarnation ended and the next
began. Stopping (Ctrl-C, SIGTERM) ends every incarnation and restarts none.

The restarts are harmless to the data: consumers commit only after their outputs are
acknowledged, handlers are deterministic and records stores each event once, so an incarnation
killed mid-batch leaves its successor to redo that batch (docs/operations.md).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from deploy.local.stack import ServiceProcess


def describe_exit(code: int) -> str:
    """`exit code 1`, or `signal SIGKILL` for a process a signal ended (Popen's negative codes)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


@dataclass
class Supervised:
    """One service under supervision: `launch` starts an incarnation, `check` is called often."""

    name: str
    launch: Callable[[], ServiceProcess]
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    # An incarnation that ran this long was healthy: the next failure waits the first delay again.
    healthy_after: float = 60.0
    # Called with a running incarnation; True once it serves (its /readyz answers 200).
    ready_check: Callable[[ServiceProcess], bool] | None = None
    report: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic

    current: ServiceProcess | None = None
    restarts: int = 0
    last_exit: int | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    awaiting_ready: bool = False
    stopping: bool = False
    _backoff: float = field(default=0.0, repr=False)

    def start(self) -> ServiceProcess:
        self._backoff = self.initial_backoff
        self.current = self.launch()
        self.started_at = self.clock()
        return self.current

    @property
    def pid(self) -> int | None:
        return self.current.process.pid if self.current is not None else None

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.process.poll() is None

    def check(self) -> None:
        """Notice an exit and schedule the restart; restart when its delay is over; notice when a
        restarted incarnation is ready again."""
        if self.stopping or self.current is None:
            return
        now = self.clock()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self._restart(now)
            return
        code = self.current.process.poll()
        if code is None:
            if now - self.started_at >= self.healthy_after:
                self._backoff = self.initial_backoff
            if self.awaiting_ready and self.ready_check is not None and self.ready_check(self.current):
                self.awaiting_ready = False
                self._event(
                    f"ready again after {now - self.started_at:.1f}s (restarts {self.restarts})", level="INFO"
                )
            return
        self.last_exit = code
        self.current.stop()  # reaps nothing more; closes the log file handle
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.max_backoff)
        self.restart_at = now + delay
        self._event(
            f"exited with {describe_exit(code)} after {now - self.started_at:.1f}s; "
            f"restart {self.restarts + 1} in {delay:.1f}s",
            exit=code,
        )

    def _restart(self, now: float) -> None:
        self.restarts += 1
        self.restart_at = None
        self.current = self.launch()
        self.started_at = now
        self.awaiting_ready = self.ready_check is not None
        self._event(f"restarted (pid {self.current.process.pid}, restarts {self.restarts})")

    def _event(self, message: str, *, level: str = "WARNING", **extra: object) -> None:
        self.report(f"{self.name}: {message}")
        if self.current is None:
            return
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "service": self.name,
            "logger": "exportwatch.supervisor",
            "msg": message,
            "restarts": self.restarts,
            **extra,
        }
        with self.current.log_path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")

    def status(self) -> str:
        """`up (pid 1234, restarts 1)`, or why it is not."""
        if self.restart_at is not None:
            wait = max(0.0, self.restart_at - self.clock())
            state = f"restarting in {wait:.0f}s after {describe_exit(self.last_exit or 0)}"
        elif self.running:
            state = f"{'starting' if self.awaiting_ready else 'up'} (pid {self.pid}"
            return f"{state}, restarts {self.restarts})"
        else:
            state = "stopped"
        return f"{state} (restarts {self.restarts})"

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop for good: SIGTERM the running incarnation (SIGKILL after `timeout`), restart none."""
        self.stopping = True
        self.restart_at = None
        return self.current.stop(timeout) if self.current is not None else None


def status_line(services: list[Supervised]) -> str:
    return " · ".join(f"{s.name} {s.status()}" for s in services)
