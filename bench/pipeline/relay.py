"""One hop of the bare Kafka relay: consume a batch, produce it on, wait for the acks, commit.

`python -m bench.pipeline.relay --bootstrap H:P --source T1 --target T2 --group G`

Four of these in a chain carry the bench's orders over four hops, as the pipeline does (submitted
-> classified -> screened -> decided), with no work done on the messages: the speed of the
transport alone, the ceiling the pipeline is compared with. The clients are the services' own:
`shared.kafka.make_producer` (acks=all, idempotent, the same linger) and `make_consumer` (manual
commits, read_committed), polled in batches of the services' size, and offsets are committed as
the consumer loop commits them (every poll, or at most every `EXPORTWATCH_KAFKA_COMMIT_INTERVAL_MS`:
`shared.kafka.CommitPolicy`), so the ratio pipeline/relay measures what the services add to the
transport.

`--gather-ms`: each fetch waits up to that long for a fuller batch (make_consumer's `gather_ms`).
`--counts FILE`: every request this process sends to the broker is counted by kind (Fetch,
Produce, OffsetCommit, Heartbeat, Metadata...); on SIGUSR1 the counts so far are appended to FILE
as one JSON line, so a bench takes the difference over a phase (bench/pipeline/transport.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.conn import AIOKafkaConnection

from shared.kafka import CommitPolicy, make_consumer, make_producer
from shared.settings import load_settings

REQUESTS: Counter[str] = Counter()


def count_requests() -> None:
    """Count every request aiokafka sends from this process, by its kind (the request's class)."""
    send = AIOKafkaConnection.send

    def counted(self: AIOKafkaConnection, request: Any, expect_response: bool = True) -> Any:
        REQUESTS[type(request).__name__.removesuffix("Request")] += 1
        return send(self, request, expect_response)

    AIOKafkaConnection.send = counted


def dump_counts(path: Path) -> None:
    with path.open("a") as out:
        out.write(json.dumps({"t": time.time(), "requests": dict(REQUESTS)}) + "\n")


async def relay(
    bootstrap: str, source: str, target: str, group: str, *, gather_ms: int = 0, counts: Path | None = None
) -> None:
    settings = load_settings(group, kafka_bootstrap_servers=bootstrap)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if counts is not None:
        loop.add_signal_handler(signal.SIGUSR1, dump_counts, counts)
    producer = make_producer(settings)
    consumer = make_consumer(settings, group_id=group, client_id=f"{group}-consumer", gather_ms=gather_ms)
    commits = CommitPolicy(settings.kafka_commit_interval_ms)
    await producer.start()
    await consumer.start()
    consumer.subscribe([source])
    print(f"relay {source} -> {target} started", flush=True)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=settings.consumer_batch_size)
            if batch:
                futures = [
                    await producer.send(target, value=record.value, key=record.key)
                    for records in batch.values()
                    for record in records
                ]
                await asyncio.gather(*futures)
                commits.add({tp: records[-1].offset + 1 for tp, records in batch.items()})
            due: dict[TopicPartition, int] = commits.due()
            if due:
                await consumer.commit(due)
    finally:
        if commits.pending:
            await consumer.commit(commits.take())
        await consumer.stop()
        await producer.stop()


def stop_relays(relays: list[subprocess.Popen[bytes]]) -> None:
    """Stop relay processes (each commits what it holds back), killing any that hangs."""
    for process in relays:
        process.terminate()
    for process in relays:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--gather-ms", type=int, default=0, help="each fetch waits up to this long")
    parser.add_argument("--counts", type=Path, help="on SIGUSR1, append the request counts here")
    args = parser.parse_args(argv)
    if args.counts is not None:
        count_requests()
    asyncio.run(
        relay(
            args.bootstrap, args.source, args.target, args.group, gather_ms=args.gather_ms, counts=args.counts
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
