"""A real single-node Apache Kafka (KRaft) broker for development, tests and CI.

No Docker and no Kafka tarball: the broker's jars come from Maven Central via
``deploy/kafka/pom.xml`` (``mvn dependency:copy-dependencies``) and are cached
under ``<repo>/.cache/kafka-jars/<version>/``, so only a fresh machine
downloads them. The broker runs on the machine's Java 17 as
``java -cp '<jars>/*' kafka.Kafka server.properties`` with a static one-voter
KRaft quorum (``controller.quorum.voters=1@127.0.0.1:<controller_port>``),
which lets the same data directory be started again on the same ports.

Python API::

    from deploy.kafka.broker import KafkaBroker, create_topics, free_port

    with KafkaBroker.start(data_dir=tmp_path / "kafka") as broker:
        await create_topics(broker.bootstrap_servers, {"orders": 3})
        ...

Command line (from the repository root)::

    python -m deploy.kafka.broker fetch
    python -m deploy.kafka.broker run --port 9092 --controller-port 9093 --data-dir var/kafka
    python -m deploy.kafka.broker create-topics --bootstrap 127.0.0.1:9092 --partitions 3 t1 t2

Data directory layout (``data_dir``)::

    server.properties   written on every start
    kraft/              Kafka's log.dirs (metadata log and topic partitions)
    broker.log          the broker's stdout/stderr (default ``log_file``)
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import ctypes
import ctypes.util
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Self

from shared.kafka_security import KafkaClientSettings, client_options, client_settings

if TYPE_CHECKING:
    from deploy.kafka.secure import BrokerSecurity

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.xml"


def _pom_property(name: str) -> str:
    match = re.search(rf"<{re.escape(name)}>\s*([^<\s]+)\s*</{re.escape(name)}>", POM.read_text("utf-8"))
    if match is None:
        raise RuntimeError(f"property {name} not found in {POM}")
    return match.group(1)


KAFKA_VERSION = _pom_property("kafka.version")
"""Kafka version, read from deploy/kafka/pom.xml (the single source of truth)."""

JARS_DIR = REPO_ROOT / ".cache" / "kafka-jars" / KAFKA_VERSION
"""Default jar cache (``.cache/`` is git-ignored). ``EXPORTWATCH_KAFKA_JARS`` overrides it."""

JARS_DIR_ENV = "EXPORTWATCH_KAFKA_JARS"
MARKER_NAME = ".complete"
READY_LINE = b"Kafka Server started"
DEFAULT_JAVA17_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")

BROKER_JVM_OPTS: tuple[str, ...] = (
    "-Xmx512m",
    "-Xms256m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
# The storage formatter is a short-lived tool: favour start-up time.
TOOL_JVM_OPTS: tuple[str, ...] = (
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)


# --------------------------------------------------------------------------- Java 17


def _java_major(home: Path) -> int | None:
    """Major version of the JDK/JRE at ``home`` (from its ``release`` file), or None."""
    try:
        text = (home / "release").read_text("utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)', text, re.MULTILINE)
    return int(match.group(1)) if match else None


def java17_home() -> Path:
    """Home of a Java 17 runtime: ``$JAVA_HOME`` if it is 17, else the Debian OpenJDK 17.

    The newer JDK installed beside it (Temurin 25) is deliberately not used.
    """
    candidates: list[Path] = []
    env_home = os.environ.get("JAVA_HOME")
    if env_home:
        candidates.append(Path(env_home))
    candidates.append(DEFAULT_JAVA17_HOME)
    candidates.extend(sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*")))
    for home in candidates:
        if _java_major(home) == 17 and (home / "bin" / "java").is_file():
            return home
    raise RuntimeError(
        "Java 17 not found (looked at $JAVA_HOME and /usr/lib/jvm/java-17-openjdk-*); "
        "install it with: apt-get install -y openjdk-17-jdk-headless"
    )


def java17() -> Path:
    """Path of the Java 17 ``java`` executable."""
    return java17_home() / "bin" / "java"


# --------------------------------------------------------------------------- jars


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _jars_complete(jars_dir: Path) -> bool:
    """True if ``jars_dir`` holds a finished copy made from the current pom.xml."""
    marker = jars_dir / MARKER_NAME
    try:
        lines = marker.read_text("utf-8").splitlines()
    except OSError:
        return False
    if not lines or lines[0] != f"pom-sha256 {_pom_digest()}":
        return False
    names = [line for line in lines[1:] if line]
    return bool(names) and all((jars_dir / name).is_file() for name in names)


def default_jars_dir() -> Path:
    env = os.environ.get(JARS_DIR_ENV)
    return Path(env) if env else JARS_DIR


def ensure_jars(jars_dir: Path | None = None) -> Path:
    """Make sure the broker's jars are in ``jars_dir`` (default :data:`JARS_DIR`) and return it.

    Runs ``mvn dependency:copy-dependencies`` (with Java 17) only when the folder
    is missing or incomplete; a marker file written after a successful copy
    records the pom.xml it came from and the jars it holds. The copy goes to a
    temporary sibling folder that is renamed into place, under a file lock, so
    an interrupted or concurrent fetch never leaves a half-filled folder.
    """
    target = (jars_dir or default_jars_dir()).resolve()
    if _jars_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _jars_complete(target):  # another process finished it meanwhile
            return target
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("mvn not found on PATH; install it with: apt-get install -y maven")
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        env = dict(os.environ, JAVA_HOME=str(java17_home()))
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ]
        result = subprocess.run(
            cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        jars = sorted(p.name for p in tmp.glob("*.jar")) if tmp.is_dir() else []
        if result.returncode != 0 or not any(n.startswith(f"kafka_2.13-{KAFKA_VERSION}") for n in jars):
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(
                f"fetching Kafka jars failed (exit {result.returncode}): {' '.join(cmd)}\n"
                f"{result.stdout}\n{result.stderr}"
            )
        (tmp / MARKER_NAME).write_text("\n".join([f"pom-sha256 {_pom_digest()}", *jars]) + "\n", "utf-8")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


# --------------------------------------------------------------------------- ports


def _free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    return _free_ports(1)[0]


# --------------------------------------------------------------------------- broker


def _random_cluster_id() -> str:
    """A Kafka cluster id, as ``kafka.tools.StorageTool random-uuid`` makes it (no JVM needed)."""
    while True:
        raw = bytearray(os.urandom(16))
        raw[6] = (raw[6] & 0x0F) | 0x40  # UUID version 4, like java.util.UUID.randomUUID()
        raw[8] = (raw[8] & 0x3F) | 0x80
        text = base64.urlsafe_b64encode(bytes(raw)).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that look like command-line options
            return text


def server_properties(
    *,
    port: int,
    controller_port: int,
    log_dir: Path,
    security: BrokerSecurity | None = None,
    ssl_port: int | None = None,
) -> str:
    """The ``server.properties`` of the one-node broker+controller: plaintext, or with `security`
    TLS + SCRAM on `port`, mutual TLS on `ssl_port` and the controller, and ACLs enforced."""
    settings: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": 1,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        "log.cleaner.dedupe.buffer.size": 2097152,
        "num.network.threads": 2,
        "num.io.threads": 2,
        "background.threads": 2,
        "num.recovery.threads.per.data.dir": 1,
        "auto.create.topics.enable": "false",
    }
    if security is not None:
        if ssl_port is None:
            raise ValueError("a secured broker needs ssl_port (its mutual-TLS listener)")
        settings.update(
            security.server_properties(port=port, ssl_port=ssl_port, controller_port=controller_port)
        )
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _log_tail(path: Path, lines: int = 40, since: int = 0) -> str:
    """The broker log from byte ``since`` on: its first ERROR/FATAL lines, then its last ``lines`` lines."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    all_lines = text.splitlines()
    errors = [line for line in all_lines if re.match(r"\[[^]]*\] (ERROR|FATAL) ", line)][:5]
    tail = all_lines[-lines:]
    head = [*errors, "..."] if errors and errors[0] not in tail else []
    return "\n".join(head + tail)


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent dies (Linux only).

    libc and ``prctl`` are looked up here, in the parent, so the child only
    makes one plain call between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)

    return preexec


_running: set[KafkaBroker] = set()
_running_lock = threading.Lock()


def _stop_all_at_exit() -> None:
    with _running_lock:
        brokers = list(_running)
    for broker in brokers:
        broker.stop(timeout=15)


atexit.register(_stop_all_at_exit)


@dataclass(eq=False)
class KafkaBroker:
    """A running single-node Kafka broker started by :meth:`start`; stop it with :meth:`stop`."""

    bootstrap_servers: str
    port: int
    controller_port: int
    data_dir: Path
    log_file: Path
    pid: int
    process: subprocess.Popen[bytes] = field(repr=False)
    startup_seconds: float = 0.0
    """Seconds from the call of :meth:`start` until the broker logged that it had started."""
    security: BrokerSecurity | None = field(default=None, repr=False)
    ssl_port: int | None = None
    """The mutual-TLS listener of a secured broker (clients authenticated by certificate)."""

    def client(self, user: str | None = None) -> KafkaClientSettings:
        """How a client reaches this broker: plaintext, or on a secured broker as `user` with
        SCRAM over TLS (default: the admin, a super user)."""
        if self.security is None:
            return KafkaClientSettings(
                kafka_bootstrap_servers=self.bootstrap_servers, kafka_security_protocol="PLAINTEXT"
            )
        return self.security.client(self.bootstrap_servers, *([user] if user else []))

    @property
    def ssl_bootstrap_servers(self) -> str:
        if self.ssl_port is None:
            raise ValueError("this broker has no mutual-TLS listener (started without security)")
        return f"127.0.0.1:{self.ssl_port}"

    @classmethod
    def start(
        cls,
        *,
        data_dir: Path,
        port: int | None = None,
        controller_port: int | None = None,
        reuse_data: bool = False,
        ready_timeout: float = 90.0,
        log_file: Path | None = None,
        jars_dir: Path | None = None,
        die_with_parent: bool = True,
        security: BrokerSecurity | None = None,
        ssl_port: int | None = None,
    ) -> KafkaBroker:
        """Format (if needed) and start a broker, and wait until it accepts clients.

        ``port``/``controller_port`` default to free ports. With ``reuse_data``
        an already formatted ``data_dir`` is started as it is (topics, offsets
        and messages kept); without it ``data_dir/kraft`` is wiped and formatted
        anew. Ready means the log line ``Kafka Server started`` appeared within
        ``ready_timeout`` seconds (not counting a first jar download); if the
        process exits first, or the deadline passes, the broker is stopped and
        RuntimeError/TimeoutError raised with the log's tail. ``die_with_parent`` makes the kernel kill the broker if
        the Python process (strictly: the thread that called ``start``) dies
        without stopping it. Jars are fetched first if needed (see
        :func:`ensure_jars`). With ``security`` (`deploy.kafka.secure.BrokerSecurity`) the broker
        speaks only TLS: SCRAM on ``port``, client certificates on ``ssl_port`` (default: free),
        its users written at format time and the StandardAuthorizer on; grant the services' ACLs
        with `deploy.kafka.acls.grant` once it runs.
        """
        t0 = time.monotonic()
        jars = ensure_jars(jars_dir)
        deadline = time.monotonic() + ready_timeout  # a first jar download does not count
        java = str(java17())
        spare = [p for p in _free_ports(4) if p not in (port, controller_port, ssl_port)]
        port = spare.pop() if port is None else port
        controller_port = spare.pop() if controller_port is None else controller_port
        if security is not None and ssl_port is None:
            ssl_port = spare.pop()
        if len({port, controller_port, ssl_port if security is not None else None}) < (
            3 if security is not None else 2
        ):
            raise ValueError("port, controller_port and ssl_port must differ")

        data_dir = data_dir.resolve()
        log_dir = data_dir / "kraft"
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = (log_file or data_dir / "broker.log").resolve()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        config = data_dir / "server.properties"
        properties = server_properties(
            port=port, controller_port=controller_port, log_dir=log_dir, security=security, ssl_port=ssl_port
        )
        config.touch(mode=0o600)  # may name key files; no password is in it (SCRAM users are in the log)
        config.write_text(properties, "utf-8")
        if not reuse_data:
            shutil.rmtree(log_dir, ignore_errors=True)
        users_marker = data_dir / "scram-users.sha256"
        users_digest = _users_digest(security)
        formatted = (log_dir / "meta.properties").is_file()
        if formatted and users_digest != (
            users_marker.read_text("utf-8").strip() if users_marker.is_file() else ""
        ):
            raise RuntimeError(
                f"{log_dir} was formatted with other SCRAM users than {'these' if security else 'none'} "
                "(users are written only when the storage is formatted): start it without reuse_data "
                "(`--fresh`) or use another data directory"
            )
        classpath = f"{jars}/*"
        log4j = f"-Dlog4j2.configurationFile={LOG4J_CONFIG}"

        with log_path.open("ab") as log:
            offset = log.tell()
            if not formatted:
                log_dir.mkdir(parents=True, exist_ok=True)
                fmt = subprocess.run(
                    [java, *TOOL_JVM_OPTS, log4j, "-cp", classpath, "kafka.tools.StorageTool", "format",
                     "-t", _random_cluster_id(), "-c", str(config), "-g",
                     *(security.format_args() if security is not None else [])],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False,
                )  # fmt: skip
                if fmt.returncode != 0:
                    log.flush()
                    raise RuntimeError(
                        f"formatting {log_dir} failed (exit {fmt.returncode}); log {log_path}:\n"
                        f"{_log_tail(log_path, since=offset)}"
                    )
                users_marker.write_text(users_digest + "\n", "utf-8")
                log.flush()
                offset = log.tell()
            process = subprocess.Popen(
                [java, *BROKER_JVM_OPTS, log4j, "-cp", classpath, "kafka.Kafka", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches Python, which stops the broker
                preexec_fn=_parent_death_signal() if die_with_parent else None,
            )
        broker = cls(
            bootstrap_servers=f"127.0.0.1:{port}",
            port=port,
            controller_port=controller_port,
            data_dir=data_dir,
            log_file=log_path,
            pid=process.pid,
            process=process,
            security=security,
            ssl_port=ssl_port if security is not None else None,
        )
        with _running_lock:
            _running.add(broker)
        try:
            broker._wait_ready(offset, deadline)
        except BaseException:
            broker.stop(timeout=10)
            raise
        broker.startup_seconds = time.monotonic() - t0
        return broker

    def _wait_ready(self, offset: int, deadline: float) -> None:
        carry = b""
        with self.log_file.open("rb") as log:
            log.seek(offset)
            while True:
                chunk = log.read()
                if chunk:
                    text = carry + chunk
                    if READY_LINE in text:
                        return
                    carry = text[-len(READY_LINE) :]
                    continue
                code = self.process.poll()
                if code is not None:
                    raise RuntimeError(
                        f"Kafka exited with code {code} before it was ready; log {self.log_file}:\n"
                        f"{_log_tail(self.log_file, since=offset)}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"Kafka did not log {READY_LINE.decode()!r} in time; log {self.log_file}:\n"
                        f"{_log_tail(self.log_file, since=offset)}"
                    )
                time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM the broker process this object started, wait, SIGKILL after ``timeout`` s.

        Returns the exit code: 143 (128 + SIGTERM) is the JVM's normal code after
        Kafka's clean shutdown, -9 means it had to be killed, None that it could
        not be reaped. Safe to call more than once.
        """
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)  # Popen never signals a reaped pid
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    try:
                        self.process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        return None
            return self.process.returncode
        finally:
            with _running_lock:
                _running.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _users_digest(security: BrokerSecurity | None) -> str:
    """What a formatted data directory records about its SCRAM users (no password in clear)."""
    if security is None:
        return ""
    text = "\n".join(f"{user}:{password}" for user, password in sorted(security.passwords.items()))
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- topics


async def create_topics(
    kafka: str | KafkaClientSettings,
    topics: dict[str, int],
    timeout: float = 60,
    configs: dict[str, dict[str, str]] | None = None,
) -> None:
    """Create ``topics`` (name -> partition count, replication factor 1) and wait until they are usable.

    Idempotent: a topic that already exists is left as it is (whatever its
    partition count). Transient errors (broker still starting, controller not
    ready) are retried until ``timeout`` seconds have passed. Returns once every
    partition of every topic has a leader, so producers can send at once.
    ``kafka`` is the connection (a bare ``host:port`` takes TLS and SASL from the
    ``EXPORTWATCH_KAFKA_*`` environment, see `shared.kafka_security`).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError, for_code

    if not topics:
        return
    options = client_options(client_settings(kafka))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    request_timeout_ms = max(1000, min(30_000, int(timeout * 1000)))
    last_error: BaseException | None = None

    while True:
        admin = AIOKafkaAdminClient(**options, request_timeout_ms=request_timeout_ms)
        try:
            await admin.start()
            pending = dict(topics)
            while pending:
                response = await admin.create_topics(
                    [NewTopic(name=name, num_partitions=count, replication_factor=1,
                              topic_configs=(configs or {}).get(name, {}))
                     for name, count in pending.items()],
                    timeout_ms=request_timeout_ms,
                )  # fmt: skip
                retry: dict[str, int] = {}
                for topic, code, *message in response.topic_errors:
                    if code in (0, TopicAlreadyExistsError.errno):
                        continue
                    error = for_code(code)(f"creating topic {topic!r}: {message[0] if message else ''}")
                    if not error.retriable:
                        raise error
                    retry[topic] = pending[topic]
                    last_error = error
                pending = retry
                if pending:
                    if loop.time() > deadline:
                        raise TimeoutError(f"creating topics {sorted(pending)} timed out: {last_error!r}")
                    await asyncio.sleep(0.2)

            while True:  # wait until metadata shows a leader for every partition
                ready = True
                for meta in await admin.describe_topics(list(topics)):
                    partitions = meta["partitions"]
                    if meta["error_code"] != 0 or not partitions:
                        ready = False
                    elif any(p["error_code"] != 0 or p["leader"] < 0 for p in partitions):
                        ready = False
                if ready:
                    return
                if loop.time() > deadline:
                    raise TimeoutError(f"topics {sorted(topics)} have no leaders after {timeout} s")
                await asyncio.sleep(0.1)
        except (KafkaError, OSError) as error:
            # Connection refused/timeouts while the broker starts are worth retrying.
            if isinstance(error, KafkaError) and not (
                error.retriable or isinstance(error, KafkaTimeoutError)
            ):
                raise
            last_error = error
        finally:
            await admin.close()
        if loop.time() > deadline:
            raise TimeoutError(f"creating topics {sorted(topics)} timed out: {last_error!r}")
        await asyncio.sleep(0.5)


# --------------------------------------------------------------------------- CLI


def _cmd_fetch(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    path = ensure_jars(args.jars_dir)
    print(f"Kafka {KAFKA_VERSION} jars in {path} ({time.monotonic() - t0:.1f}s)", flush=True)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    security = None
    if args.secure:
        from deploy.kafka.secure import BrokerSecurity

        security = BrokerSecurity.create(args.data_dir / "tls")
    broker = KafkaBroker.start(
        data_dir=args.data_dir,
        port=args.port,
        controller_port=args.controller_port,
        reuse_data=not args.fresh,
        ready_timeout=args.ready_timeout,
        log_file=args.log_file,
        jars_dir=args.jars_dir,
        security=security,
    )
    try:
        if args.topics:
            asyncio.run(create_topics(broker.client(), dict.fromkeys(args.topics, args.partitions)))
        if security is not None:
            from deploy.kafka.acls import grant, pipeline_acls

            asyncio.run(grant(broker.client(), pipeline_acls(topic_prefix=args.topic_prefix)))
        print(
            f"Kafka {KAFKA_VERSION} ready: bootstrap={broker.bootstrap_servers} pid={broker.pid} "
            f"started_in={broker.startup_seconds:.1f}s log={broker.log_file}",
            flush=True,
        )
        if security is not None:
            print(
                f"SASL_SSL (SCRAM-SHA-512/256) on {broker.bootstrap_servers}, client certificates on "
                f"{broker.ssl_bootstrap_servers}; CA {security.ca_file}; users and passwords in "
                f"{security.folder / 'credentials.json'}; ACLs granted to the services' principals",
                flush=True,
            )
        while not stop_requested.is_set():
            if broker.process.poll() is not None:
                print(
                    f"Kafka exited on its own with code {broker.process.returncode}; "
                    f"log {broker.log_file}:\n{_log_tail(broker.log_file)}",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            stop_requested.wait(0.5)
    finally:
        code = broker.stop()
    print(f"Kafka stopped (exit code {code})", flush=True)
    return 0


def _cmd_create_topics(args: argparse.Namespace) -> int:
    asyncio.run(
        create_topics(args.bootstrap, dict.fromkeys(args.topics, args.partitions), timeout=args.timeout)
    )
    print(f"topics ready on {args.bootstrap}: {', '.join(args.topics)}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.kafka.broker", description="Local single-node Kafka (KRaft) broker."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser("fetch", help="download the broker's jars (once) into the cache")
    fetch.add_argument("--jars-dir", type=Path, default=None, help=f"default {JARS_DIR}")
    fetch.set_defaults(func=_cmd_fetch)

    run = sub.add_parser("run", help="start a broker in the foreground; SIGINT/SIGTERM stops it")
    run.add_argument("--port", type=int, default=9092)
    run.add_argument("--controller-port", type=int, default=9093)
    run.add_argument("--data-dir", type=Path, default=Path("var/kafka"))
    run.add_argument("--fresh", action="store_true", help="wipe the data directory's Kafka data first")
    run.add_argument("--log-file", type=Path, default=None, help="default <data-dir>/broker.log")
    run.add_argument("--ready-timeout", type=float, default=90.0)
    run.add_argument("--jars-dir", type=Path, default=None)
    run.add_argument("--topics", nargs="*", default=[], help="topics to create once ready")
    run.add_argument("--partitions", type=int, default=3, help="partitions of --topics")
    run.add_argument(
        "--secure",
        action="store_true",
        help="TLS + SCRAM + ACLs (CA, certificates and passwords kept in <data-dir>/tls; format anew with --fresh)",
    )
    run.add_argument(
        "--topic-prefix",
        default=os.environ.get("EXPORTWATCH_TOPIC_PREFIX", ""),
        help="with --secure: the prefix of the topics the services' ACLs name",
    )
    run.set_defaults(func=_cmd_run)

    create = sub.add_parser(
        "create-topics", help="create topics (existing ones are fine); TLS/SASL from EXPORTWATCH_KAFKA_*"
    )
    create.add_argument("--bootstrap", default="127.0.0.1:9092")
    create.add_argument("--partitions", type=int, default=3)
    create.add_argument("--timeout", type=float, default=60.0)
    create.add_argument("topics", nargs="+")
    create.set_defaults(func=_cmd_create_topics)

    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    raise SystemExit(main())
