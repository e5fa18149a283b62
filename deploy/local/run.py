"""`make run`: the whole pipeline on the embedded defaults, with the sample orders flowing.

Starts a local Kafka broker (127.0.0.1:9092, data kept under var/kafka), creates the topics,
starts the four services (records on SQLite under var/), publishes samples/orders.json, prints
each decision as it lands, then keeps serving until Ctrl-C, when it stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.kafka.broker import KafkaBroker, create_topics, ensure_jars
from deploy.local.stack import REPO_ROOT, SERVICES, ServiceProcess, start_service, wait_ready
from shared.events import ALL_TOPICS, TOPIC_CONFIGS, TOPIC_DECIDED, TOPIC_SUBMITTED
from shared.settings import SERVICE_PORTS

VAR = REPO_ROOT / "var"


def _print(msg: str) -> None:
    print(msg, flush=True)


async def publish_and_watch(bootstrap: str, orders: list[dict[str, Any]], timeout: float) -> dict[str, str]:
    """Publish the sample orders and print each decision as it arrives on orders.decided.v1."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kafka-port", type=int, default=int(os.environ.get("EXPORTWATCH_KAFKA_PORT", 9092)))
    parser.add_argument(
        "--controller-port", type=int, default=int(os.environ.get("EXPORTWATCH_KAFKA_CONTROLLER_PORT", 9093))
    )
    parser.add_argument(
        "--partitions", type=int, default=int(os.environ.get("EXPORTWATCH_TOPIC_PARTITIONS", 3))
    )
    parser.add_argument("--samples", type=Path, default=REPO_ROOT / "samples" / "orders.json")
    parser.add_argument(
        "--no-serve", action="store_true", help="stop after the sample decisions (smoke test)"
    )
    args = parser.parse_args(argv)

    started = time.monotonic()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # Explicit handlers: a launcher started from a script or in the background may inherit an
    # ignored SIGINT, and SIGTERM (systemd, CI) must clean up exactly like Ctrl-C does.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    ensure_jars()
    VAR.mkdir(exist_ok=True)
    broker = KafkaBroker.start(
        data_dir=VAR / "kafka",
        port=args.kafka_port,
        controller_port=args.controller_port,
        reuse_data=True,
        log_file=VAR / "logs" / "kafka.log",
    )
    services: list[ServiceProcess] = []
    try:
        bootstrap = broker.bootstrap_servers
        _print(f"kafka ready at {bootstrap} ({time.monotonic() - started:.1f}s)")
        asyncio.run(
            create_topics(bootstrap, dict.fromkeys(ALL_TOPICS, args.partitions), configs=TOPIC_CONFIGS)
        )
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EXPORTWATCH_DATABASE_URL": os.environ.get(
                "EXPORTWATCH_DATABASE_URL", f"sqlite+aiosqlite:///{VAR / 'records.db'}"
            ),
            "EXPORTWATCH_CATALOG_SEED_CSV": os.environ.get(
                "EXPORTWATCH_CATALOG_SEED_CSV", str(REPO_ROOT / "samples" / "catalog.csv")
            ),
        }
        for name in SERVICES:
            services.append(start_service(name, port=SERVICE_PORTS[name], env=env, log_dir=VAR / "logs"))
        wait_ready(services, timeout=180)
        _print(
            f"services ready ({time.monotonic() - started:.1f}s): "
            + ", ".join(f"{s.name} {s.url}" for s in services)
        )
        orders = json.loads(args.samples.read_text())
        decided = asyncio.run(publish_and_watch(bootstrap, orders, timeout=60))
        counts: dict[str, int] = {}
        for decision in decided.values():
            counts[decision] = counts.get(decision, 0) + 1
        _print(
            f"{len(decided)}/{len(orders)} sample orders decided in {time.monotonic() - started:.1f}s: {counts}"
        )
        if args.no_serve:
            return 0 if len(decided) == len(orders) else 1
        _print("serving; try: curl 'localhost:8004/orders?decision=HOLD'   (Ctrl-C stops everything)")
        while True:
            for service in services:
                if service.process.poll() is not None:
                    _print(
                        f"{service.name} exited with {service.process.returncode}; stopping:\n{service.log_tail()}"
                    )
                    return 1
            time.sleep(0.5)
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
