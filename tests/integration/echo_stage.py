"""A consumer stage as a process of its own, for tests that kill it: the shared consumer loop
(shared/service.py KafkaStage, its settings from the environment as a service reads them) reading
the prefix's submitted topic and echoing each order's id and event id to its classified topic.

`python -m tests.integration.echo_stage --bootstrap H:P --prefix P --group G`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from shared.codec import decode_json
from shared.events import TOPIC_CLASSIFIED, TOPIC_SUBMITTED, SubmittedOrder
from shared.kafka import Incoming, Outgoing
from shared.service import KafkaStage
from shared.settings import load_settings


async def run(bootstrap: str, prefix: str, group: str) -> None:
    settings = load_settings(group, kafka_bootstrap_servers=bootstrap, topic_prefix=prefix)
    out_topic = settings.topic(TOPIC_CLASSIFIED)

    async def echo(message: Incoming) -> Sequence[Outgoing]:
        submitted = SubmittedOrder.model_validate(decode_json(message))
        body = json.dumps({"order_id": submitted.order_id, "event_id": submitted.event_id}).encode()
        return [Outgoing(topic=out_topic, key=submitted.order_id, value=body)]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    stage = KafkaStage(settings=settings, service=group, topics=[TOPIC_SUBMITTED], handler=echo)
    await stage.start()
    print("echo stage started", flush=True)
    try:
        await stop.wait()
    finally:
        await stage.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args(argv)
    asyncio.run(run(args.bootstrap, args.prefix, args.group))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
