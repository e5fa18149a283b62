"""`make run`: the whole pipeline on the embedded defaults, with the sample orders flowing.

Starts a local Kafka broker (127.0.0.1:9092, data kept under var/kafka), creates the topics,
starts the four services (records on SQLite under var/), publishes samples/orders.json, prints
each decision as it lands, then keeps serving until Ctrl-C or SIGTERM, when it stops everything
it started. While serving it supervises: a service or the broker that dies is started again
(deploy/local/supervisor.py), and each restart is printed with the restart count.

Reference data first (deploy/local/reference_data.py): EXPORTWATCH_DATA_DIR, else the snapshot
beside the checkout, else every source fetched from its publisher into var/data/ (with a progress
bar per file, each verified); without any, one line says what is missing and the launcher exits 2.

`--secure` runs the broker with TLS + SCRAM + ACLs (deploy/kafka/secure.py; its data under
var/kafka-secure) and each service as its own principal, `User:exportwatch-<service>`, allowed
only its own topics and group. Ports: EXPORTWATCH_KAFKA_PORT, EXPORTWATCH_KAFKA_CONTROLLER_PORT,
EXPORTWATCH_KAFKA_SSL_PORT (--secure) and EXPORTWATCH_<SERVICE>_PORT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.kafka.acls import grant, pipeline_acls, principal_name
from deploy.kafka.broker import KafkaBroker, create_topics, ensure_jars
from deploy.kafka.secure import BrokerSecurity
from deploy.local.reference_data import ReferenceDataMissing, choose
from deploy.local.stack import REPO_ROOT, SERVICES, start_service, wait_ready
from deploy.local.supervisor import Supervised, describe_exit, status_line
from shared.events import ALL_TOPICS, TOPIC_CONFIGS, TOPIC_DECIDED, TOPIC_SUBMITTED
from shared.kafka_security import KafkaClientSettings, client_options
from shared.keystore import KEYS_FILE_VARIABLE, create_key, read_keys
from shared.settings import load_settings, port_from_env, service_port

VAR = REPO_ROOT / "var"


def _print(msg: str) -> None:
    print(msg, flush=True)


def _stamp(msg: str) -> None:
    _print(f"[{time.strftime('%H:%M:%S')}] {msg}")


async def publish_and_watch(
    kafka: KafkaClientSettings, orders: list[dict[str, Any]], timeout: float
) -> dict[str, str]:
    """Publish the sample orders and print each decision as it arrives on orders.decided.v1."""
    producer = AIOKafkaProducer(**client_options(kafka), acks="all", enable_idempotence=True)
    await producer.start()
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False, group_id=None)
    await consumer.start()
    seen: dict[str, str] = {}
    try:
        partitions = await producer.partitions_for(TOPIC_DECIDED)  # fetches the topic's metadata
        tps = [TopicPartition(TOPIC_DECIDED, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # pin the positions before publishing, so no decision is missed
            await consumer.position(tp)
        wanted = {o["order_id"]: o["event_id"] for o in orders}
        for order in orders:
            await producer.send_and_wait(
                TOPIC_SUBMITTED, json.dumps(order).encode(), key=order["order_id"].encode()
            )
        _print(f"published {len(orders)} sample orders to {TOPIC_SUBMITTED}; decisions as they land:")
        deadline = time.monotonic() + timeout
        while len(seen) < len(wanted) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = json.loads(record.value)
                    order_id = event["order_id"]
                    if wanted.get(order_id) != event["order"]["event_id"] or order_id in seen:
                        continue
                    decision = event["decision"]
                    codes = ", ".join(sorted({r["code"] for r in decision["reasons"]})) or "-"
                    seen[order_id] = decision["decision"]
                    _print(
                        f"  {order_id:<16} {decision['decision']:<17} score {decision['risk_score']:>3}  {codes}"
                    )
        missing = sorted(set(wanted) - set(seen))
        if missing:
            _print(f"no decision within {timeout:.0f}s for: {', '.join(missing)} (see var/logs/)")
    finally:
        await consumer.stop()
        await producer.stop()
    return seen


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kafka-port", type=int, default=port_from_env("EXPORTWATCH_KAFKA_PORT", 9092))
    parser.add_argument(
        "--controller-port", type=int, default=port_from_env("EXPORTWATCH_KAFKA_CONTROLLER_PORT", 9093)
    )
    parser.add_argument(
        "--ssl-port",
        type=int,
        default=port_from_env("EXPORTWATCH_KAFKA_SSL_PORT", 9094),
        help="with --secure: the broker's client-certificate (mutual TLS) listener",
    )
    parser.add_argument(
        "--partitions", type=int, default=int(os.environ.get("EXPORTWATCH_TOPIC_PARTITIONS", 3))
    )
    parser.add_argument("--samples", type=Path, default=REPO_ROOT / "samples" / "orders.json")
    parser.add_argument("--var-dir", type=Path, default=VAR, help="broker data, databases and logs (var/)")
    parser.add_argument(
        "--secure", action="store_true", help="TLS + SCRAM + ACLs on the broker, one principal per service"
    )
    parser.add_argument(
        "--no-serve", action="store_true", help="stop after the sample decisions (smoke test)"
    )
    parser.add_argument(
        "--refresh-data",
        action="store_true",
        help="without a snapshot: fetch the reference data again even if <var>/data is complete",
    )
    return parser.parse_args(argv)


def _start_broker(args: argparse.Namespace, security: BrokerSecurity | None) -> KafkaBroker:
    var: Path = args.var_dir
    return KafkaBroker.start(
        data_dir=var / ("kafka-secure" if security is not None else "kafka"),
        port=args.kafka_port,
        controller_port=args.controller_port,
        ssl_port=args.ssl_port if security is not None else None,
        reuse_data=True,
        log_file=var / "logs" / "kafka.log",
        security=security,
    )


def keys_file(args: argparse.Namespace) -> Path:
    """The API keys file every service reads: EXPORTWATCH_API_KEYS_FILE, else <var>/api-keys.json."""
    given = os.environ.get(KEYS_FILE_VARIABLE)
    return Path(given) if given else args.var_dir / "api-keys.json"


def ensure_admin_key(args: argparse.Namespace) -> None:
    """First start: a keys file with one admin key. The key goes to <var>/admin.key (mode 0600),
    never to the terminal, which may be logged; only where it is is printed."""
    path = keys_file(args)
    in_force = [k for k in read_keys(path) if k.active]
    if in_force:
        _print(f"API keys: {path} ({len(in_force)} in force; `exportwatch keys list`)")
        return
    token, record = create_key(path, name="admin", role="admin", now=datetime.now(UTC))
    secret_file: Path = args.var_dir / "admin.key"
    descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    _print(
        f"API keys: created {path} (mode 0600) with one admin key, {record.name!r}; the key itself is "
        f"in {secret_file} (mode 0600). More keys: exportwatch keys create --name NAME --role ROLE"
    )


def _service_env(args: argparse.Namespace, broker: KafkaBroker, name: str) -> dict[str, str]:
    var: Path = args.var_dir
    env = {
        **args.data_environment,
        KEYS_FILE_VARIABLE: str(keys_file(args)),
        "EXPORTWATCH_DATABASE_URL": os.environ.get(
            "EXPORTWATCH_DATABASE_URL", f"sqlite+aiosqlite:///{var / 'records.db'}"
        ),
        "EXPORTWATCH_CATALOG_DATABASE_URL": os.environ.get(
            "EXPORTWATCH_CATALOG_DATABASE_URL", f"sqlite+aiosqlite:///{var / 'catalog.db'}"
        ),
        "EXPORTWATCH_CATALOG_SEED_CSV": os.environ.get(
            "EXPORTWATCH_CATALOG_SEED_CSV", str(REPO_ROOT / "samples" / "catalog.csv")
        ),
    }
    if broker.security is None:
        return {**env, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    return {**env, **broker.security.client_environment(broker.bootstrap_servers, principal_name(name))}


def _serve(args: argparse.Namespace, broker: KafkaBroker, services: list[Supervised]) -> KafkaBroker:
    """Supervise until a signal: restart whatever dies, print each change with a status line.
    Returns the broker in use (a new object after the broker was restarted)."""
    broker_restarts = 0
    while True:
        before = [(s.restarts, s.restart_at, s.awaiting_ready) for s in services]
        for service in services:
            service.check()
        if broker.process.poll() is not None:
            broker_restarts += 1
            _stamp(
                f"kafka: exited with {describe_exit(broker.process.returncode)}; restarting on the same data "
                f"(restarts {broker_restarts})"
            )
            broker.stop()
            broker = _start_broker(args, broker.security)
            _stamp(f"kafka: ready again at {broker.bootstrap_servers} (restarts {broker_restarts})")
        if before != [(s.restarts, s.restart_at, s.awaiting_ready) for s in services]:
            _print(f"  status: {status_line(services)}")
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # Explicit handlers: a launcher started from a script or in the background may inherit an
    # ignored SIGINT, and SIGTERM (systemd, CI) must clean up exactly like Ctrl-C does.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    args.var_dir.mkdir(parents=True, exist_ok=True)
    # First, before anything starts: the reference data (a snapshot, or fetched from the publishers).
    try:
        data = choose(args.var_dir, load_settings("launcher"), refresh=args.refresh_data)
    except ReferenceDataMissing as exc:
        print(exc, file=sys.stderr, flush=True)
        return 2
    args.data_environment = data.environment
    _print(f"reference data: {data.data_dir} ({data.origin})")
    ensure_jars()
    ensure_admin_key(args)
    security = BrokerSecurity.create(args.var_dir / "kafka-secure" / "tls") if args.secure else None
    broker = _start_broker(args, security)
    services: list[Supervised] = []
    try:
        admin = broker.client()
        _print(f"kafka ready at {admin.describe()} ({time.monotonic() - started:.1f}s)")
        asyncio.run(create_topics(admin, dict.fromkeys(ALL_TOPICS, args.partitions), configs=TOPIC_CONFIGS))
        if security is not None:
            granted = asyncio.run(grant(admin, pipeline_acls()))
            _print(
                f"{granted} ACLs for the services' principals (User:exportwatch-<service>); client "
                f"certificates on 127.0.0.1:{broker.ssl_port}; CA {security.ca_file}"
            )
        for name in SERVICES:
            launch = partial(
                start_service,
                name,
                port=service_port(name),
                env=_service_env(args, broker, name),
                log_dir=args.var_dir / "logs",
            )
            services.append(
                Supervised(name, launch=launch, ready_check=lambda p: p.readiness()[0], report=_stamp)
            )
        wait_ready([service.start() for service in services], timeout=180)
        _print(
            f"services ready ({time.monotonic() - started:.1f}s): "
            + ", ".join(f"{s.name} {s.current.url}" for s in services if s.current is not None)
        )
        orders = json.loads(args.samples.read_text())
        decided = asyncio.run(publish_and_watch(admin, orders, timeout=60))
        counts: dict[str, int] = {}
        for decision in decided.values():
            counts[decision] = counts.get(decision, 0) + 1
        _print(
            f"{len(decided)}/{len(orders)} sample orders decided in {time.monotonic() - started:.1f}s: {counts}"
        )
        if args.no_serve:
            return 0 if len(decided) == len(orders) else 1
        records_port = service_port("records")
        key_file = args.var_dir / "admin.key"
        _print(
            f"dashboard: http://127.0.0.1:{records_port}/ui/ (sign in with the key in {key_file})\n"
            f'serving; try: curl -H "Authorization: Bearer $(cat {key_file})" '
            f"'localhost:{records_port}/queue'   (Ctrl-C stops everything; a service that dies is restarted)"
        )
        broker = _serve(args, broker, services)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        _print("stopping services and broker...")
        for service in reversed(services):
            service.stop()
        broker.stop()
        _print("stopped.")


if __name__ == "__main__":
    sys.exit(main())
