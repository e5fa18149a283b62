"""One hop of the bare Kafka relay: consume a batch, produce it on, wait for the acks, commit.

`python -m bench.pipeline.relay --bootstrap H:P --source T1 --target T2 --group G`

Four of these in a chain carry the bench's orders over four hops, as the pipeline does (submitted
-> classified -> screened -> decided), with no work done on the messages: the speed of the
transport alone, the ceiling the pipeline is compared with. The clients are the services' own:
`shared.kafka.make_producer` (acks=all, idempotent, the same linger) and `make_consumer` (manual
commits, read_committed), polled in batches of the services' size, so the ratio pipeline/relay
measures what the services add to the transport.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiokafka import TopicPartition

from shared.kafka import make_consumer, make_producer
from shared.settings import load_settings


async def relay(bootstrap: str, source: str, target: str, group: str) -> None:
    settings = load_settings(group, kafka_bootstrap_servers=bootstrap)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    producer = make_producer(settings)
    consumer = make_consumer(settings, group_id=group, client_id=f"{group}-consumer")
    await producer.start()
    await consumer.start()
    consumer.subscribe([source])
    print(f"relay {source} -> {target} started", flush=True)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=settings.consumer_batch_size)
            if not batch:
                continue
            futures = [
                await producer.send(target, value=record.value, key=record.key)
                for records in batch.values()
                for record in records
            ]
            await asyncio.gather(*futures)
            offsets: dict[TopicPartition, int] = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await consumer.commit(offsets)
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args(argv)
    asyncio.run(relay(args.bootstrap, args.source, args.target, args.group))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
