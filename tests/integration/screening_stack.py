"""screening, risk and records running in the test's process on topics of their own, screening with
the OFAC consolidated non-SDN list only (small, so the tests are quick) and updating it from a local
stand-in publisher: the stack of the list-update tests (test_screening_lists_kafka.py,
test_rescreen_kafka.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from services.records.app import create_app as create_records
from services.risk.app import create_app as create_risk
from services.screening.app import create_app as create_screening
from shared.settings import Settings
from tests.auth_support import bearer
from tests.integration.kafka_helpers import create_prefixed_topics, unique_prefix, wait_for
from tests.screening_support import PublisherMirror, publisher_mirror

NON_SDN = "screening/us_ofac_non_sdn/2025-12-19"


@dataclass
class Stack:
    prefix: str
    bootstrap: str
    mirror: PublisherMirror
    screening: httpx.AsyncClient
    records: httpx.AsyncClient
    cons_prim: bytes

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"


@asynccontextmanager
async def screening_stack(
    kafka_bootstrap: str,
    data_dir: Path,
    tmp: Path,
    *,
    risk: dict[str, Any] | None = None,
    records: dict[str, Any] | None = None,
) -> AsyncIterator[Stack]:
    """The three apps, started and ready, with `risk` and `records` settings beyond the defaults."""
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=3)
    common: dict[str, Any] = {"kafka_bootstrap_servers": kafka_bootstrap, "topic_prefix": prefix}
    async with AsyncExitStack() as exit_stack:
        mirror = exit_stack.enter_context(publisher_mirror(tmp / "publishers"))
        mirror.publish_copy("ofac_non_sdn", data_dir / NON_SDN)
        apps: dict[str, FastAPI] = {
            "screening": create_screening(
                Settings(
                    **common,
                    service_name="screening",
                    screening_sources=f"ofac_non_sdn:{NON_SDN}",
                    screening_cache_dir=tmp / "cache",
                    screening_update_base_url=mirror.base_url,
                )
            ),
            "risk": create_risk(Settings(**common, service_name="risk", **(risk or {}))),
            "records": create_records(
                Settings(
                    **common,
                    service_name="records",
                    database_url=f"sqlite+aiosqlite:///{tmp / 'records.db'}",
                    **(records or {}),
                )
            ),
        }
        clients = {}
        for name, app in apps.items():
            await exit_stack.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await exit_stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url=f"http://{name}",
                    timeout=30,
                    headers=bearer(),
                )
            )
        for name, client in clients.items():

            async def ready(client: httpx.AsyncClient = client) -> bool:
                return (await client.get("/readyz")).status_code == 200

            await wait_for(ready, timeout=60, what=f"{name} ready")
        yield Stack(
            prefix,
            kafka_bootstrap,
            mirror,
            clients["screening"],
            clients["records"],
            (data_dir / NON_SDN / "cons_prim.csv").read_bytes(),
        )
