"""Throw-away PostgreSQL server for tests and local runs (stdlib only).

Finds (or installs from Debian packages) the PostgreSQL server binaries, creates a
cluster with ``initdb`` and runs ``postgres`` in the foreground as a child process
tuned for speed, not durability (``fsync=off`` and friends): never point it at data
you care about.

PostgreSQL refuses to run as root. When this process is root, the data directory and
the socket directory are handed to the ``postgres`` system user and the server
binaries run as that user (uid/gid switched by :mod:`subprocess` right before
``exec``, like ``setpriv`` does, so the pid we hold *is* the postmaster). Every
directory above the data directory must then be traversable by that user.

Library use::

    with PostgresServer.start(data_dir=tmp / "pgdata") as pg:
        engine = create_async_engine(pg.url)

Command line::

    python -m deploy.postgres.pg run --data-dir var/pgdata [--port 5433]
    python -m deploy.postgres.pg ensure   # install if needed, print the bin dir
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["DATABASE", "PostgresError", "PostgresServer", "ensure_postgres", "free_port"]

DATABASE = "exportwatch"
SUPERUSER = "postgres"
SYSTEM_USER = "postgres"
PG_ROOT = Path("/usr/lib/postgresql")
HOST = "127.0.0.1"

# Unix socket paths are limited to 107 bytes ("<dir>/.s.PGSQL.NNNNN" included).
_MAX_SOCKET_DIR_LEN = 80
_INITDB_TIMEOUT = 300.0
_CLIENT_TIMEOUT = 30.0


class PostgresError(RuntimeError):
    """PostgreSQL could not be installed, initialised, started or reached."""


# --------------------------------------------------------------------------- binaries


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in path.name.split("."))
    except ValueError:
        return (-1,)


def _is_server_bin_dir(path: Path) -> bool:
    return all(os.access(path / exe, os.X_OK) for exe in ("postgres", "initdb", "pg_isready", "psql"))


def _find_bin_dir() -> Path | None:
    """Highest-version Debian bin dir, else whatever ``pg_config --bindir`` says."""
    if PG_ROOT.is_dir():
        candidates = [d / "bin" for d in PG_ROOT.iterdir() if _is_server_bin_dir(d / "bin")]
        if candidates:
            return max(candidates, key=lambda b: _version_key(b.parent))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        if out and _is_server_bin_dir(Path(out)):
            return Path(out)
    return None


def _privileged_prefix() -> list[str]:
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True).returncode == 0:
        return [sudo, "-n"]
    raise PostgresError(
        "PostgreSQL server binaries not found under /usr/lib/postgresql and this process is "
        "neither root nor allowed passwordless sudo; install them with "
        "'apt-get install -y postgresql' (as root) and retry."
    )


def _install_postgres() -> None:
    if shutil.which("apt-get") is None:
        raise PostgresError(
            "PostgreSQL server binaries not found and apt-get is not available to install them; "
            "install PostgreSQL (server + client tools) by other means."
        )
    prefix = _privileged_prefix()
    # sudo drops most of the environment, so pass DEBIAN_FRONTEND through env(1).
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    for cmd in (
        [*prefix, *env_cmd, "apt-get", "update"],
        [*prefix, *env_cmd, "apt-get", "install", "-y", "postgresql"],
    ):
        print("deploy.postgres: running " + " ".join(cmd), file=sys.stderr, flush=True)
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, check=False)
        if result.returncode != 0:
            raise PostgresError(f"{' '.join(cmd)!r} failed with exit code {result.returncode}")


def ensure_postgres() -> Path:
    """Return the PostgreSQL server bin directory, installing the Debian package if needed.

    Picks the highest version under ``/usr/lib/postgresql/*/bin``.
    """
    found = _find_bin_dir()
    if found is not None:
        return found
    _install_postgres()
    found = _find_bin_dir()
    if found is None:
        raise PostgresError("installed the 'postgresql' package but found no server binaries afterwards")
    return found


# --------------------------------------------------------------------------- helpers


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on *host* a moment ago (the usual bind-to-0 trick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class _RunAs:
    """Identity the server binaries run as; ``None`` fields mean "as this process"."""

    uid: int | None = None
    gid: int | None = None

    def popen_kwargs(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        # setgroups([]) + setgid + setuid in the child right before exec (no fork of
        # an intermediate runuser/su process, so Popen.pid is the server itself).
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    cmd = [
        "useradd",
        "--system",
        "--no-create-home",
        "--home-dir",
        "/var/lib/postgresql",
        "--shell",
        "/usr/sbin/nologin",
    ]
    try:
        grp.getgrnam(SYSTEM_USER)
        cmd += ["--gid", SYSTEM_USER]
    except KeyError:
        cmd += ["--user-group"]
    result = subprocess.run([*cmd, SYSTEM_USER], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PostgresError(f"could not create system user {SYSTEM_USER!r}: {result.stderr.strip()}")
    return pwd.getpwnam(SYSTEM_USER)


def _run_as() -> _RunAs:
    if os.geteuid() != 0:
        return _RunAs()
    user = _ensure_system_user()
    return _RunAs(uid=user.pw_uid, gid=user.pw_gid)


def _clean_env() -> dict[str, str]:
    """Our environment without PG* variables (PGDATA, PGPORT, ... would confuse the tools)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "5"
    return env


def _pick_locale() -> str:
    """``C.UTF-8`` when the C library has it (proper ctype for non-ASCII names), else ``C``."""
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "C"
    names = {line.strip().lower().replace("-", "") for line in out.splitlines()}
    return "C.UTF-8" if "c.utf8" in names else "C"


def _socket_dir_for(data_dir: Path) -> Path:
    candidate = data_dir.parent / f"{data_dir.name}.sock"
    if len(str(candidate)) <= _MAX_SOCKET_DIR_LEN:
        return candidate
    return Path(tempfile.mkdtemp(prefix="pgsock-"))


def _tail(path: Path, limit: int = 4000, offset: int = 0) -> str:
    """Last *limit* characters of the server log, ignoring its first *offset* bytes."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no server log)"
    return text[-limit:]


def _check_access(path: Path, run_as: _RunAs, env: dict[str, str]) -> None:
    """Fail early, with a useful message, when the server user cannot write into *path*."""
    if run_as.uid is None:
        return
    probe = subprocess.run(
        ["test", "-w", str(path), "-a", "-x", str(path)],
        cwd="/",
        env=env,
        check=False,
        **run_as.popen_kwargs(),
    )
    if probe.returncode != 0:
        raise PostgresError(
            f"user {SYSTEM_USER!r} cannot use {path}: every directory above it must be "
            f"traversable by that user (e.g. chmod o+x on each, or create the temp dir with mode 0o755)"
        )


def _prepare_dir(path: Path, run_as: _RunAs, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    run_as.chown(path)
    path.chmod(mode)


def _initdb(bin_dir: Path, data_dir: Path, run_as: _RunAs, env: dict[str, str]) -> None:
    cmd = [
        str(bin_dir / "initdb"),
        "--pgdata",
        str(data_dir),
        "--username",
        SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        f"--locale={_pick_locale()}",
        "--no-sync",
        "--no-instructions",
    ]
    result = subprocess.run(
        cmd,
        cwd="/",
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=_INITDB_TIMEOUT,
        check=False,
        **run_as.popen_kwargs(),
    )
    if result.returncode != 0:
        raise PostgresError(
            f"initdb failed (exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
        )


def _child_pids(parent: int) -> list[int]:
    """Pids whose parent is *parent* (Linux ``/proc``; empty elsewhere)."""
    pids: list[int] = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:
            continue
        # Format: "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(parent):
            pids.append(int(entry.parent.name))
    return pids


def _client_args(port: int, database: str) -> list[str]:
    return ["-h", HOST, "-p", str(port), "-U", SUPERUSER, "-d", database]


def _is_ready(bin_dir: Path, port: int, env: dict[str, str]) -> bool:
    result = subprocess.run(
        [str(bin_dir / "pg_isready"), "-q", "-t", "2", *_client_args(port, "postgres")],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=10,
        check=False,
    )
    return result.returncode == 0


def _create_database(bin_dir: Path, port: int, database: str, env: dict[str, str]) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise ValueError(f"unsupported database name {database!r}")
    script = (
        f"SELECT 'CREATE DATABASE {database}' "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}')\\gexec\n"
    )
    result = subprocess.run(
        [str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *_client_args(port, "postgres")],
        input=script,
        env=env,
        capture_output=True,
        text=True,
        timeout=_CLIENT_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise PostgresError(f"could not create database {database!r}: {result.stderr.strip()}")


# --------------------------------------------------------------------------- server


@dataclass
class PostgresServer:
    """A running postmaster started (and owned) by this process."""

    data_dir: Path
    port: int
    pid: int
    bin_dir: Path
    socket_dir: Path
    log_path: Path
    database: str = DATABASE
    startup_seconds: float = 0.0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        """SQLAlchemy URL: ``postgresql+asyncpg://postgres@127.0.0.1:PORT/exportwatch``."""
        return f"postgresql+asyncpg://{SUPERUSER}@{HOST}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """libpq/asyncpg DSN: ``postgresql://postgres@127.0.0.1:PORT/exportwatch``."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{self.database}"

    @classmethod
    def start(
        cls,
        *,
        data_dir: Path,
        port: int | None = None,
        ready_timeout: float = 60.0,
        settings: Sequence[str] = (),
    ) -> PostgresServer:
        """initdb *data_dir* (unless it already holds a cluster), start the server, wait
        until it accepts connections (at most *ready_timeout* seconds after launch) and
        create the ``exportwatch`` database if missing. With ``port=None`` a free port is
        picked (and re-picked, up to 3 times, if someone grabs it first). *settings* are
        further ``name=value`` server settings (e.g. the bench's
        ``shared_preload_libraries=pg_stat_statements``)."""
        t0 = time.monotonic()
        bin_dir = ensure_postgres()
        data_dir = Path(data_dir).absolute()
        run_as = _run_as()
        env = _clean_env()

        if not (data_dir / "PG_VERSION").is_file():
            _prepare_dir(data_dir, run_as, 0o700)
            _check_access(data_dir, run_as, env)
            _initdb(bin_dir, data_dir, run_as, env)
        else:
            _check_access(data_dir, run_as, env)
        socket_dir = _socket_dir_for(data_dir)
        _prepare_dir(socket_dir, run_as, 0o700)
        log_path = data_dir / "server.log"

        attempts = 3 if port is None else 1
        for attempt in range(1, attempts + 1):
            chosen = port if port is not None else free_port()
            log_offset = log_path.stat().st_size if log_path.exists() else 0
            server = cls._launch(bin_dir, data_dir, socket_dir, log_path, chosen, run_as, env, settings)
            try:
                if server._wait_ready(ready_timeout, env):
                    _create_database(bin_dir, chosen, DATABASE, env)
                    server.startup_seconds = time.monotonic() - t0
                    return server
            except BaseException:
                server.stop(timeout=10)
                raise
            log = _tail(log_path, offset=log_offset)
            if attempt < attempts and ("could not bind" in log or "already in use" in log):
                continue
            raise PostgresError(f"PostgreSQL exited before becoming ready on port {chosen}:\n{log}")
        raise AssertionError("unreachable")

    @classmethod
    @contextlib.contextmanager
    def scratch(cls, *, prefix: str, settings: Sequence[str] = ()) -> Iterator[PostgresServer]:
        """A server on a fresh cluster in a temporary directory, stopped and removed afterwards.
        The directory is not under the checkout: the ``postgres`` user must traverse every
        folder above its data."""
        root = Path(tempfile.mkdtemp(prefix=prefix))
        root.chmod(0o755)
        try:
            with cls.start(data_dir=root / "data", settings=settings) as server:
                yield server
        finally:
            shutil.rmtree(root, ignore_errors=True)

    @classmethod
    def _launch(
        cls,
        bin_dir: Path,
        data_dir: Path,
        socket_dir: Path,
        log_path: Path,
        port: int,
        run_as: _RunAs,
        env: dict[str, str],
        settings: Sequence[str] = (),
    ) -> PostgresServer:
        cmd = [
            str(bin_dir / "postgres"),
            "-D",
            str(data_dir),
            "-p",
            str(port),
            "-k",
            str(socket_dir),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
        for setting in settings:
            cmd += ["-c", setting]
        with log_path.open("ab") as log:
            # New session: a Ctrl-C on our terminal reaches us, not the server directly;
            # we then stop it in order.
            process = subprocess.Popen(
                cmd,
                cwd="/",
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **run_as.popen_kwargs(),
            )
        server = cls(
            data_dir=data_dir,
            port=port,
            pid=process.pid,
            bin_dir=bin_dir,
            socket_dir=socket_dir,
            log_path=log_path,
            _process=process,
        )
        atexit.register(server.stop)
        return server

    def _wait_ready(self, timeout: float, env: dict[str, str]) -> bool:
        """True once accepting connections; False if the postmaster exited first."""
        assert self._process is not None
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            if self._process.poll() is not None:
                atexit.unregister(self.stop)
                return False
            if _is_ready(self.bin_dir, self.port, env):
                return True
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"PostgreSQL not ready on port {self.port} after {timeout:.0f}s:\n{_tail(self.log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT) of our postmaster; after *timeout*, SIGKILL it and its children."""
        process = self._process
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                # Backends call setsid(), so killpg would miss them: kill the postmaster's
                # direct children (its backends and auxiliary processes) by pid, then it.
                for pid in (*_child_pids(process.pid), process.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                process.wait()

    def wait(self) -> int:
        """Block until the postmaster exits; return its exit code."""
        assert self._process is not None
        return self._process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- CLI


def _cmd_run(args: argparse.Namespace) -> int:
    stop_requested = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop_requested.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    if stop_requested.is_set():
        return 0
    server = PostgresServer.start(
        data_dir=Path(args.data_dir), port=args.port, ready_timeout=args.ready_timeout
    )
    print(server.url, flush=True)
    print(
        f"deploy.postgres: ready in {server.startup_seconds:.2f}s (pid {server.pid}, "
        f"log {server.log_path}); stop with Ctrl-C / SIGTERM",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop_requested.wait(0.5):
            if not server.running:
                print(
                    f"deploy.postgres: server exited on its own, see {server.log_path}",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
    finally:
        server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.postgres.pg", description=(__doc__ or "").split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="start a server in the foreground; prints its URL; stops on SIGINT/SIGTERM"
    )
    run.add_argument("--data-dir", required=True, help="cluster directory (created and initdb'ed if needed)")
    run.add_argument("--port", type=int, default=None, help="TCP port on 127.0.0.1 (default: a free one)")
    run.add_argument("--ready-timeout", type=float, default=60.0)
    sub.add_parser("ensure", help="install PostgreSQL if needed and print its bin directory")
    args = parser.parse_args(argv)
    try:
        if args.command == "ensure":
            print(ensure_postgres())
            return 0
        return _cmd_run(args)
    except PostgresError as exc:
        print(f"deploy.postgres: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
