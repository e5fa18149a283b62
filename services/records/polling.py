"""A background task of records that publishes what its database holds: woken after a commit that
gave it work, and every `poll_seconds` (another instance's rows, retries after the broker or the
database was away), with a doubling back-off on failure. The outbox relay and the re-screen
dispatcher are two of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

from shared.kafka import PublishError

log = logging.getLogger(__name__)


class PollingTask(ABC):
    """Subclasses give `name` (the task's and the logs' name) and `work()` (one pass: publish all
    there is now; raises PublishError when the broker did not take something)."""

    name = "records-task"

    def __init__(self, *, poll_seconds: float, backoff_max: float) -> None:
        self._poll = poll_seconds
        self._backoff_max = backoff_max
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def work(self) -> None: ...

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def _run(self) -> None:
        delay = self._poll
        while not self._stop.is_set():
            try:
                await self.work()
                delay = self._poll
            except PublishError as exc:
                delay = min(max(delay * 2, self._poll), self._backoff_max)
                log.warning(
                    "%s: the broker did not take an event (%s); again in %.0fs", self.name, exc, delay
                )
            except Exception:  # the task must outlive any one failure (a database away)
                delay = min(max(delay * 2, self._poll), self._backoff_max)
                log.exception("%s failed; again in %.0fs", self.name, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
