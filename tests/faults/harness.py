"""The fault suite's pipeline: a broker, a PostgreSQL and the services, each a process of its own.

Everything here is what an operator would touch: processes (started with `deploy/local/stack.py`
and kept running by the launcher's supervisor, as in `make run`), signals, the broker's data
directory, the database server, and HTTP. Nothing reaches into a service's internals.

- The broker is this suite's own (`deploy/kafka/broker.py`), so it can be killed with SIGKILL and
  started again on the same data directory and ports.
- PostgreSQL is this suite's own (`deploy/postgres/pg.py`), so it can be stopped and started again
  on the same data directory and port while records writes its trail and risk its licence ledger
  there (each its own database, as in production).
- records runs twice (`records` and `records-2`, one consumer group), so that pausing one past its
  session timeout makes the group hand its partitions to the other: a real rebalance.
- A thread samples every instance's `/readyz` a few times a second; the scenarios read from it
  whether readiness went false and came back.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from deploy.kafka.broker import KafkaBroker, create_topics, free_port
from deploy.local.stack import REPO_ROOT, ServiceProcess, start_process
from deploy.local.supervisor import Supervised
from deploy.postgres.pg import PostgresServer
from shared.events import ALL_TOPICS, TOPIC_CONFIGS
from tests.faults.traffic import SCREENING_SOURCES

# Two records instances: the pause scenario needs a second member in records' consumer group.
INSTANCES = ("classifier", "screening", "risk", "records", "records-2")


def _service_of(instance: str) -> str:
    return instance.split("-")[0]


@dataclass(frozen=True)
class Sample:
    at: float
    ready: bool
    detail: str


class ReadinessLog:
    """`/readyz` of each instance, sampled every `interval` seconds by a thread of its own.

    A process that is gone, paused or too slow to answer within `timeout` counts as not ready:
    that is what a Kubernetes readiness probe would conclude.
    """

    def __init__(self, urls: dict[str, str], interval: float = 0.3, timeout: float = 2.0) -> None:
        self.urls = urls
        self.interval = interval
        self.timeout = timeout
        self.samples: dict[str, list[Sample]] = {name: [] for name in urls}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(name,), name=f"readyz-{name}", daemon=True)
            for name in urls
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 1)

    def _probe(self, url: str) -> tuple[bool, str]:
        request = urllib.request.Request(f"{url}/readyz")  # public: no key
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return True, response.read().decode()[:300]
        except urllib.error.HTTPError as exc:
            return False, f"{exc.code}: {exc.read().decode(errors='replace')[:300]}"
        except (OSError, http.client.HTTPException) as exc:
            # HTTPException: a process killed mid-answer (IncompleteRead); not OSError, and it
            # ended the sampling thread of the killed instance once.
            return False, f"{type(exc).__name__}: {exc}"

    def _run(self, name: str) -> None:
        # One thread per instance: a paused instance's probe blocks for `timeout` without delaying
        # the samples of the others.
        while not self._stop.is_set():
            ok, detail = self._probe(self.urls[name])
            with self._lock:
                self.samples[name].append(Sample(time.monotonic(), ok, detail))
            self._stop.wait(self.interval)

    def since(self, name: str, start: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples[name] if s.at >= start]

    def not_ready_seconds(self, name: str, start: float) -> float:
        """How long `name` was seen not ready after `start` (sum of the gaps between samples)."""
        samples = self.since(name, start)
        return sum(b.at - a.at for a, b in itertools.pairwise(samples) if not a.ready)

    def went_down_and_up(self, name: str, start: float) -> bool:
        samples = self.since(name, start)
        return any(not s.ready for s in samples) and bool(samples) and samples[-1].ready

    def stayed_ready(self, name: str, start: float) -> bool:
        samples = self.since(name, start)
        return bool(samples) and all(s.ready for s in samples)

    def ready_now(self, name: str) -> bool:
        return self._probe(self.urls[name])[0]


@dataclass
class FaultStack:
    """The processes under test and the levers to hurt them."""

    root: Path
    broker: KafkaBroker
    postgres: PostgresServer
    services: dict[str, Supervised]
    readiness: ReadinessLog
    supervisor_events: list[str] = field(default_factory=list)
    _supervising: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    # --- start and stop --------------------------------------------------------------------------

    @classmethod
    async def start(cls, root: Path, *, partitions: int = 3) -> FaultStack:
        """Broker, PostgreSQL, topics and the five instances in `root` (a folder the postgres user
        can traverse); returns once all are ready. Blocks
        the event loop while the servers start: the broker must be started by the thread that runs
        the scenarios (it dies with the thread that started it)."""
        broker = KafkaBroker.start(data_dir=root / "kafka", log_file=root / "logs" / "kafka.log")
        postgres: PostgresServer | None = None
        try:
            postgres = PostgresServer.start(data_dir=root / "pg")
            await create_topics(
                broker.bootstrap_servers, dict.fromkeys(ALL_TOPICS, partitions), configs=TOPIC_CONFIGS
            )
            # Risk's licence ledger on the same server, in a database of its own, as in production.
            risk_url = await _create_database(postgres.url, "risk_ledger")
            events: list[str] = []
            services = {
                name: Supervised(
                    name,
                    launch=_launcher(name, root, broker.bootstrap_servers, postgres.url, risk_url),
                    # A restart right away (as a kubelet does the first time): the scenarios measure
                    # the pipeline's recovery, not the backoff.
                    initial_backoff=0.5,
                    ready_check=lambda p: p.readiness()[0],
                    report=events.append,
                )
                for name in INSTANCES
            }
            stack = cls(
                root=root,
                broker=broker,
                postgres=postgres,
                services=services,
                readiness=ReadinessLog({}),
                supervisor_events=events,
            )
            started = [service.start() for service in services.values()]
            stack.readiness = ReadinessLog({p.name: p.url for p in started})
            stack._start_supervisor()
            stack.wait_all_ready(timeout=300)
            stack.readiness.start()
            return stack
        except BaseException:
            for service in locals().get("services", {}).values():
                service.stop()
            if postgres is not None:
                postgres.stop()
            broker.stop()
            raise

    def _start_supervisor(self) -> None:
        def supervise() -> None:
            while not self._supervising.wait(0.2):
                for service in self.services.values():
                    service.check()

        self._supervisor = threading.Thread(target=supervise, name="supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> dict[str, int | None]:
        self.readiness.stop()
        self._supervising.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        codes: dict[str, int | None] = {}
        for name, service in self.services.items():
            if service.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(service.pid, signal.SIGCONT)  # a paused process cannot honour SIGTERM
            codes[name] = service.stop(timeout=30)
        self.broker.stop()
        self.postgres.stop()
        return codes

    # --- observation -----------------------------------------------------------------------------

    def url(self, instance: str) -> str:
        current = self.services[instance].current
        assert current is not None
        return current.url

    def process(self, instance: str) -> ServiceProcess:
        current = self.services[instance].current
        assert current is not None
        return current

    def wait_all_ready(self, timeout: float) -> float:
        """Seconds until every instance answered 200 on /readyz; TimeoutError naming the laggards."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            waiting = {
                name: service.current.readiness()[1] if service.current is not None else "not started"
                for name, service in self.services.items()
                if not (service.running and service.current is not None and service.current.readiness()[0])
            }
            if not waiting:
                return time.monotonic() - started
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {name} ---\n{self.process(name).log_tail(20)}" for name in waiting)
                raise TimeoutError(f"not ready after {timeout:.0f}s: {json.dumps(waiting)[:1500]}\n{tails}")
            time.sleep(0.3)

    def log_tails(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- {name} (restarts {s.restarts}) ---\n{s.current.log_tail(lines) if s.current else ''}"
            for name, s in self.services.items()
        )

    def log_lines(self, instance: str) -> list[dict[str, object]]:
        """The JSON lines of every incarnation of `instance` so far (one file per instance)."""
        path = self.process(instance).log_path
        found: list[dict[str, object]] = []
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    found.append(json.loads(line))
        return found

    def count_in_logs(self, text: str, *instances: str) -> int:
        """Log lines of `instances` (every incarnation) whose message contains `text`."""
        return sum(
            1 for name in instances for line in self.log_lines(name) if text in str(line.get("msg", ""))
        )

    # --- faults ----------------------------------------------------------------------------------

    def kill(self, instance: str) -> int:
        """SIGKILL the instance (no clean-up of any kind); the supervisor starts it again."""
        pid = self.services[instance].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        return pid

    def pause(self, instance: str) -> None:
        pid = self.services[instance].pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)

    def resume(self, instance: str) -> None:
        pid = self.services[instance].pid
        assert pid is not None
        os.kill(pid, signal.SIGCONT)

    def kill_broker_and_restart(self) -> float:
        """SIGKILL the broker, then start it on the same data directory and ports; returns the
        seconds it was away. Called from the thread that started the first one (the broker dies
        with the thread that started it: deploy/kafka/broker.py)."""
        old = self.broker
        started = time.monotonic()
        old.process.send_signal(signal.SIGKILL)
        old.process.wait(timeout=30)
        old.stop()  # forgets it; the process is reaped
        self.broker = KafkaBroker.start(
            data_dir=old.data_dir,
            port=old.port,
            controller_port=old.controller_port,
            reuse_data=True,
            log_file=old.log_file,
        )
        return time.monotonic() - started

    def stop_postgres(self) -> None:
        self.postgres.stop()

    def start_postgres(self) -> None:
        self.postgres = PostgresServer.start(data_dir=self.postgres.data_dir, port=self.postgres.port)


async def _create_database(server_url: str, name: str) -> str:
    url = make_url(server_url)
    connection = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


def _launcher(
    instance: str, root: Path, bootstrap: str, database_url: str, risk_database_url: str
) -> Callable[[], ServiceProcess]:
    service = _service_of(instance)
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EXPORTWATCH_DATABASE_URL": database_url,
        "EXPORTWATCH_RISK_DATABASE_URL": risk_database_url,
        "EXPORTWATCH_PART746_CACHE_DIR": str(root / "part746"),
        "EXPORTWATCH_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'catalog.db'}",
        "EXPORTWATCH_CATALOG_SEED_CSV": str(REPO_ROOT / "samples" / "catalog.csv"),
        "EXPORTWATCH_CCL_CACHE_DIR": str(root / "ccl"),
        "EXPORTWATCH_SCREENING_CACHE_DIR": str(root / "lists"),
        "EXPORTWATCH_SCREENING_SOURCES": SCREENING_SOURCES,
        # Short retry backoff: the scenarios measure recovery within seconds of the broker or the
        # database coming back, not a 30 s sleep that happened to be in progress.
        "EXPORTWATCH_KAFKA_RETRY_BACKOFF_MAX_S": "2",
        # Offsets committed on an interval: a kill -9 then re-delivers up to a second of polls
        # already published, and the scenarios show nothing lost and nothing recorded twice.
        "EXPORTWATCH_KAFKA_COMMIT_INTERVAL_MS": "1000",
        f"EXPORTWATCH_{service.upper()}_PORT": str(port),
    }
    return partial(
        start_process,
        instance,
        [sys.executable, "-m", f"services.{service}"],
        env=env,
        log_dir=root / "logs",
        port=port,
    )
