"""The `exportwatch` command line against the four real apps, each served by uvicorn on a port of
its own in a thread (no broker: their publishers are stand-ins that keep what they are given).

Every command goes through Typer as a person types it (CliRunner), over HTTP, with the API key of
the session's keys file; `submit` publishes over the real broker (tests/integration)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.completion
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from exportwatch.cli import app as cli_app
from services.classifier.app import create_app as classifier_app
from services.records.app import create_app as records_app
from services.records.handler import RecordsHandler
from services.risk.app import create_app as risk_app
from services.screening.app import create_app as screening_app
from shared import metrics
from shared.kafka import Outgoing
from shared.settings import REPO_ROOT, load_settings
from tests.auth_support import key
from tests.classifier_support import EcfrServer
from tests.records_support import dead_letter, decided, message, submitted
from tests.reference_mirror import DATE, part774
from tests.screening_support import publisher_mirror

DPL = "bis_dpl:screening/us_bis_dpl/2023-11-30"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Served:
    """An app under uvicorn in a thread with its own event loop (so its database stays on it)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on")
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            assert self.thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

    def on_loop(self, work: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Stack:
    servers: dict[str, Served]
    published: list[Outgoing]
    ecfr: EcfrServer
    lists_mirror: Any

    def urls(self) -> list[str]:
        return [f"--{name}-url={served.url}" for name, served in self.servers.items()]

    def invoke(self, *args: str, api_key: str | None = None) -> Any:
        given = [f"--api-key={api_key or key('admin-1')}", *self.urls(), *args]
        return CliRunner().invoke(cli_app, given)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("cli")
    published: list[Outgoing] = []

    async def keep(outgoing: Outgoing) -> None:
        published.append(outgoing)

    with (
        EcfrServer(parts={"15/774": part774(data_dir)}, date=DATE) as ecfr,
        publisher_mirror(tmp / "mirror") as mirror,
    ):
        mirror.publish_copy("bis_dpl", data_dir / "screening" / "us_bis_dpl" / "2023-11-30")
        common: dict[str, Any] = {"ecfr_api_url": ecfr.api_url, "screening_update_base_url": mirror.base_url}
        servers = {
            "classifier": Served(
                classifier_app(
                    load_settings(
                        "classifier",
                        catalog_database_url=f"sqlite+aiosqlite:///{tmp / 'catalog.db'}",
                        catalog_seed_csv=REPO_ROOT / "samples" / "catalog.csv",
                        ccl_cache_dir=tmp / "ccl",
                        **common,
                    ),
                    start_kafka=False,
                )
            ),
            "screening": Served(
                screening_app(
                    load_settings(
                        "screening", screening_sources=DPL, screening_cache_dir=tmp / "lists", **common
                    ),
                    start_kafka=False,
                    publish=keep,
                )
            ),
            "risk": Served(
                risk_app(
                    load_settings(
                        "risk",
                        risk_database_url=f"sqlite+aiosqlite:///{tmp / 'risk.db'}",
                        part746_cache_dir=tmp / "part746",
                    ),
                    start_kafka=False,
                )
            ),
            "records": Served(
                records_app(
                    load_settings("records", database_url=f"sqlite+aiosqlite:///{tmp / 'records.db'}"),
                    start_kafka=False,
                    publish=keep,
                )
            ),
        }
        for served in servers.values():
            served.start()
        try:
            yield Stack(servers, published, ecfr, mirror)
        finally:
            for served in servers.values():
                served.stop()


def _seed(stack: Stack, *events: dict[str, Any]) -> None:
    records = stack.servers["records"]
    handler = RecordsHandler(
        settings=load_settings("records"), sessionmaker=records.app.state.runtime.sessionmaker
    )

    async def consume() -> None:
        for offset, event in enumerate(events, start=len(stack.published) * 100):
            await handler(message(event, offset=offset))

    records.on_loop(consume())


def test_status_shows_readiness_lag_per_service_and_list_and_ccl_ages(stack: Stack) -> None:
    metrics.CONSUMER_LAG.labels("risk", "orders.screened.v1", "0").set(7)
    metrics.CONSUMER_LAG.labels("risk", "orders.screened.v1", "1").set(5)
    metrics.CONSUMER_LAG.labels("records", "orders.decided.v1", "2").set(3)
    done = stack.invoke("status", "--json")
    assert done.exit_code == 0, done.output
    found = json.loads(done.stdout)
    assert set(found["services"]) == {"classifier", "screening", "risk", "records"}
    assert all(s["reachable"] and s["ready"] for s in found["services"].values())
    assert found["services"]["risk"]["lag"] == 12
    assert found["services"]["risk"]["lag_by_topic"] == {"orders.screened.v1": 12}
    assert found["services"]["records"]["lag_by_topic"]["orders.decided.v1"] == 3
    [dpl] = found["lists"]
    assert dpl["source"] == "bis_dpl" and dpl["entries"] > 200 and dpl["age_seconds"] > 86400
    assert found["ccl"]["issue_date"] and found["ccl"]["entries"] > 600
    table = stack.invoke("status")
    assert (
        table.exit_code == 0 and "risk" in table.stdout and "12" in table.stdout and "bis_dpl" in table.stdout
    )


def test_status_names_a_service_that_is_down_and_exits_1(stack: Stack) -> None:
    closed = _free_port()
    done = CliRunner().invoke(
        cli_app,
        [f"--api-key={key()}", *stack.urls(), f"--risk-url=http://127.0.0.1:{closed}", "status", "--json"],
    )
    assert done.exit_code == 1
    risk = json.loads(done.stdout)["services"]["risk"]
    assert not risk["reachable"] and f"cannot reach risk at http://127.0.0.1:{closed}" in risk["error"]
    assert "make run" in risk["error"]


def test_orders_show_gives_decision_reasons_and_trail_verification(stack: Stack) -> None:
    order = submitted("SO-CLI-000001")
    _seed(stack, order, decided(order, "HOLD"))
    done = stack.invoke("orders", "show", "SO-CLI-000001", "--json")
    assert done.exit_code == 0, done.output
    found = json.loads(done.stdout)
    assert found["order"]["decision"]["decision"] == "HOLD"
    assert "POTENTIAL_MATCH" in [r["code"] for r in found["order"]["decision"]["reasons"]]
    assert found["trail"]["chain_valid"] is True and len(found["trail"]["steps"]) == 2
    shown = stack.invoke("orders", "show", "SO-CLI-000001")
    assert "POTENTIAL_MATCH" in shown.stdout and "hash chain verifies" in shown.stdout
    missing = stack.invoke("orders", "show", "SO-NOT-THERE")
    assert missing.exit_code == 1 and "not found" in missing.stderr


def test_queue_lists_held_orders_with_filters(stack: Stack) -> None:
    held, blocked = submitted("SO-CLI-000002"), submitted("SO-CLI-000003", destination_country="FR")
    _seed(stack, held, decided(held, "HOLD"), blocked, decided(blocked, "BLOCK"))
    done = stack.invoke("queue", "--json")
    assert done.exit_code == 0, done.output
    queued = {item["order_id"]: item["decision"] for item in json.loads(done.stdout)["items"]}
    assert queued["SO-CLI-000002"] == "HOLD" and queued["SO-CLI-000003"] == "BLOCK"
    french = json.loads(stack.invoke("queue", "--destination=FR", "--json").stdout)
    assert [item["order_id"] for item in french["items"]] == ["SO-CLI-000003"]
    assert "SO-CLI-000002" in stack.invoke("queue").stdout


def test_deadletters_list_and_replay_with_an_admin_key_only(stack: Stack) -> None:
    raw = b'{"schema": "order.submitted.v1", "order_id": '
    letter = dead_letter(raw, offset=4242)
    _seed(stack, letter)
    listed = json.loads(stack.invoke("deadletters", "list", "--json").stdout)
    assert letter["event_id"] in {d["event_id"] for d in listed}
    assert letter["event_id"] in stack.invoke("deadletters", "list").stdout
    refused = stack.invoke("deadletters", "replay", letter["event_id"], api_key=key("viewer-1"))
    assert refused.exit_code == 1 and "role is too low" in refused.stderr and "403" in refused.stderr
    done = stack.invoke("deadletters", "replay", letter["event_id"], "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["topic"] == "orders.submitted.v1"
    assert stack.published[-1].value == raw


def test_lists_status_and_update_through_the_publishers_mirror(stack: Stack) -> None:
    [dpl] = json.loads(stack.invoke("lists", "status", "--json").stdout)
    assert dpl["source"] == "bis_dpl" and dpl["version"]
    done = stack.invoke("lists", "update", "--source=bis_dpl", "--json")
    assert done.exit_code == 0, done.output
    [outcome] = json.loads(done.stdout)
    assert outcome["source"] == "bis_dpl" and outcome["outcome"] in {"unchanged", "updated"}
    stack.lists_mirror.withdraw("bis_dpl", "dpl.txt")
    failed = stack.invoke("lists", "update", "--source=bis_dpl")
    assert failed.exit_code == 1 and "failed" in failed.stdout


def test_ccl_status_and_update_from_the_ecfr(stack: Stack) -> None:
    before = json.loads(stack.invoke("ccl", "status", "--json").stdout)
    done = stack.invoke("ccl", "update", "--json")
    assert done.exit_code == 0, done.output
    after = json.loads(stack.invoke("ccl", "status", "--json").stdout)
    assert after["issue_date"] == DATE and after["version"] != before["version"]
    assert any("/full/" in r for r in stack.ecfr.requests)


def test_a_missing_or_refused_key_is_explained(stack: Stack) -> None:
    done = stack.invoke("queue", api_key="ewk_nosuch_secret")
    assert done.exit_code == 1
    assert "refused the API key" in done.stderr and "EXPORTWATCH_API_KEY" in done.stderr


def test_bench_lists_the_suites_and_refuses_an_unknown_one() -> None:
    listed = CliRunner().invoke(cli_app, ["bench", "list", "--json"])
    assert listed.exit_code == 0 and {"classification", "screening"} <= set(json.loads(listed.stdout))
    unknown = CliRunner().invoke(cli_app, ["bench", "run", "nosuch"])
    assert unknown.exit_code == 1 and "unknown benchmark suite(s) nosuch" in unknown.stderr


def test_shell_completion_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Typer takes the shell from the parent process (shellingham), not from the argument: under
    # `make test` that is sh, for which it has no script.
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    done = CliRunner().invoke(cli_app, ["--show-completion", "bash"])
    assert done.exit_code == 0 and "complete" in done.stdout and "exportwatch" in done.stdout.lower()
