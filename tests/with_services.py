"""Run a command with a real Kafka broker and a real PostgreSQL started on free ports.

`make test` calls `python -m tests.with_services -- pytest ...`. Both servers live in a throwaway
directory and are stopped (exactly the processes started here) when the command ends, whether it
passed, failed or was interrupted. The command sees:

- EXPORTWATCH_TEST_KAFKA_BOOTSTRAP  host:port of the broker
- EXPORTWATCH_TEST_POSTGRES_URL     postgresql+asyncpg://... of a database it may use
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploy.kafka.broker import KafkaBroker, ensure_jars
from deploy.postgres.pg import PostgresServer, ensure_postgres


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: python -m tests.with_services -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    ensure_jars()
    ensure_postgres()
    with tempfile.TemporaryDirectory(prefix="exportwatch-test-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # PostgreSQL runs as the postgres user and must traverse this folder
        started = time.monotonic()
        broker = KafkaBroker.start(data_dir=root / "kafka", log_file=root / "kafka.log")
        try:
            postgres = PostgresServer.start(data_dir=root / "pg")
            try:
                print(
                    f"[with_services] kafka {broker.bootstrap_servers} and postgres on port {postgres.port} "
                    f"ready in {time.monotonic() - started:.1f}s",
                    flush=True,
                )
                env = dict(os.environ)
                env["EXPORTWATCH_TEST_KAFKA_BOOTSTRAP"] = broker.bootstrap_servers
                env["EXPORTWATCH_TEST_POSTGRES_URL"] = postgres.url
                child = subprocess.Popen(argv, env=env)
                try:
                    return child.wait()
                except KeyboardInterrupt:
                    child.send_signal(signal.SIGINT)
                    return child.wait()
            finally:
                postgres.stop()
        finally:
            broker.stop()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
