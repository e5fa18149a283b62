"""The image's entry point: the one OCI image runs any service, chosen by its first argument.

    exportwatch classifier | screening | risk | records   the service (python -m services.<name>)
    exportwatch create-topics                             every topic of the contract, with its
                                                          settings (compose's one-shot set-up)

The service replaces this process (exec), so the container's signals reach it directly: on SIGTERM
uvicorn stops the service, which finishes the batch in hand and commits before it exits.
"""

from __future__ import annotations

import asyncio
import os
import sys

from shared.settings import SERVICE_PORTS

USAGE = f"usage: exportwatch {{{'|'.join(SERVICE_PORTS)}|create-topics}}"


def command(argv: list[str]) -> list[str]:
    """The process to exec for `argv` (the container's arguments); ValueError with the usage."""
    if len(argv) != 1 or argv[0] not in (*SERVICE_PORTS, "create-topics"):
        given = " ".join(argv) or "nothing"
        raise ValueError(f"{USAGE} (given: {given})")
    if argv[0] == "create-topics":
        return [sys.executable, "-m", "deploy.container.entrypoint", "--create-topics"]
    return [sys.executable, "-m", f"services.{argv[0]}"]


async def create_all_topics() -> None:
    from deploy.kafka.broker import create_topics
    from shared.events import ALL_TOPICS, TOPIC_CONFIGS
    from shared.settings import Settings

    settings = Settings()
    await create_topics(
        settings.kafka_bootstrap_servers,
        {settings.topic(t): settings.topic_partitions for t in ALL_TOPICS},
        timeout=120,
        configs={settings.topic(t): c for t, c in TOPIC_CONFIGS.items()},
    )
    print(f"topics ready: {', '.join(settings.topic(t) for t in ALL_TOPICS)}")


def main(argv: list[str]) -> int:
    if argv == ["--create-topics"]:
        asyncio.run(create_all_topics())
        return 0
    try:
        cmd = command(argv)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    os.execv(cmd[0], cmd)
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
