"""Risk's admin and ledger routes over HTTP (no Kafka): the licences held, the policy reload, and the
Part 746 update against a local eCFR stand-in (fetch, verify, cache, swap; a failure keeps the one
in force), and what the what-if says with and without Part 746."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.risk.app import create_app
from services.risk.part746 import main as part746_main
from shared.settings import REPO_ROOT, Settings
from tests import risk_samples as s
from tests.auth_support import bearer
from tests.classifier_support import EcfrServer
from tests.risk_support import MIN_CODES_FIXTURE, PART746_DATE, ecfr_part746_server, sqlite_url


@pytest.fixture
def ecfr() -> Iterator[EcfrServer]:
    with ecfr_part746_server() as server:
        yield server


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    target = tmp_path / "policy.json"
    shutil.copyfile(REPO_ROOT / "policy" / "policy.json", target)
    return target


@pytest.fixture
async def client(tmp_path: Path, ecfr: EcfrServer, policy_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        risk_database_url=sqlite_url(tmp_path),
        part746_cache_dir=tmp_path / "part746",
        ecfr_api_url=ecfr.api_url,
        policy_file=policy_file,
    )
    app = create_app(settings, start_kafka=False)
    async with app.router.lifespan_context(app):
        # The stand-in serves a small fixture; the service would refuse it as truncated.
        app.state.runtime.part746_min_codes = MIN_CODES_FIXTURE
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=bearer()
        ) as c:
            yield c


def _write(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content))


LICENCE: dict[str, Any] = {
    "number": "D555001",
    "eccns": ["6A003.b.4"],
    "countries": ["CN"],
    "parties": [{"name": "Muster Maschinenbau GmbH", "country": "CN"}],
    "value_limit": "10000.00",
    "quantity_limit": 8,
    "valid_from": "2026-01-01T00:00:00Z",
    "valid_until": "2099-12-31T00:00:00Z",
    "provisos": ["Report each shipment within 30 days"],
}


async def test_a_licence_is_recorded_listed_and_shown_with_what_remains(client: httpx.AsyncClient) -> None:
    created = await client.post("/licences", json=LICENCE)
    assert created.status_code == 201, created.text
    assert created.json()["value_remaining"] == "10000" and created.json()["drawdowns"] == []
    assert (await client.post("/licences", json=LICENCE)).status_code == 409
    listed = (await client.get("/licences")).json()
    assert [(x["number"], x["quantity_remaining"]) for x in listed] == [("D555001", 8)]
    assert (await client.get("/licences/D555001")).json()["provisos"] == LICENCE["provisos"]
    missing = await client.get("/licences/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"countries": ["ZZ"]}, "countries"),
        ({"eccns": ["not an eccn"]}, "eccns"),
        ({"valid_until": "2025-01-01T00:00:00Z"}, "valid_until"),
        ({"value_limit": None, "quantity_limit": None}, "value_limit"),
        ({"value_limit": "-5"}, "value_limit"),
    ],
)
async def test_a_bad_licence_is_refused_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/licences", json={**LICENCE, **change})
    assert response.status_code == 422
    assert field in response.text


async def test_the_policy_is_reloaded_without_restart_and_a_bad_one_is_refused_naming_the_key(
    client: httpx.AsyncClient, policy_file: Path
) -> None:
    before = (await client.get("/policy")).json()["version"]
    content = json.loads(await asyncio.to_thread(policy_file.read_text))
    content["policy_version"] = "2026.12.07-test"
    content["licence_exceptions"]["exceptions"]["LVS"]["self_apply"] = True
    _write(policy_file, content)
    reloaded = await client.post("/policy/reload")
    assert reloaded.status_code == 200 and reloaded.json()["version"].startswith("2026.12.07-test+sha256:")
    assert reloaded.json()["version"] != before

    content["regions"]["rules"][1]["effect"] = "sometimes"
    _write(policy_file, content)
    refused = await client.post("/policy/reload")
    assert refused.status_code == 422
    assert "regions.rules[1].effect" in refused.json()["detail"]
    assert (await client.get("/policy")).json()["version"] == reloaded.json()["version"]


async def test_part_746_is_fetched_verified_cached_and_swapped(
    client: httpx.AsyncClient, ecfr: EcfrServer, tmp_path: Path, data_dir: Path
) -> None:
    to_russia = s.order_json("RU")
    to_russia["lines"][0]["hs_code"] = "8542.39"
    body = {
        "order": to_russia,
        "classification": s.classification(s.ear99(1)).model_dump(mode="json"),
        "screening": s.screening(s.order("RU")).model_dump(mode="json"),
    }
    assert (await client.get("/part746")).json()["loaded"] is False
    before = (await client.post("/assess", json=body)).json()
    assert before["decision"] == "HOLD" and "not loaded" in before["reasons"][0]["message"]

    updated = await client.post("/part746/update")
    assert updated.status_code == 200, updated.text
    status = updated.json()
    assert status["version"].startswith(f"ecfr-{PART746_DATE}+sha256:")
    assert set(status["supplements"]) == {"2", "4", "5", "6", "7"}
    assert ecfr.requests[-1] == f"/api/versioner/v1/full/{PART746_DATE}/title-15.xml?part=746"
    assert list((tmp_path / "part746").glob("part746-*.json"))

    after = (await client.post("/assess", json=body)).json()
    assert after["decision"] == "LICENSE_REQUIRED"
    assert "Supplement No. 7 to Part 746 lists HTS 854239" in after["reasons"][0]["message"]
    assert after["data_versions"]["part746_supplements"] == status["version"]


async def test_a_failed_or_implausible_fetch_keeps_the_part_746_in_force(
    client: httpx.AsyncClient, ecfr: EcfrServer
) -> None:
    assert (await client.post("/part746/update")).status_code == 200
    version = (await client.get("/part746")).json()["version"]
    ecfr.status = 503
    outage = await client.post("/part746/update")
    assert outage.status_code == 502 and "stays" in outage.json()["detail"]
    ecfr.status = 200
    ecfr.xml = b"<DIV5 N='746'><DIV9 N='Supplement No. 2 to Part 746'><HEAD>x</HEAD></DIV9></DIV5>"
    implausible = await client.post("/part746/update")
    assert implausible.status_code == 502 and "refused" in implausible.json()["detail"]
    assert (await client.get("/part746")).json()["version"] == version


def test_the_command_line_updater_caches_what_the_service_loads_at_start(
    ecfr: EcfrServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.risk import part746

    monkeypatch.setattr(part746, "MIN_CODES", MIN_CODES_FIXTURE)
    code = part746_main(["--api-url", ecfr.api_url, "--cache-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    loaded, why = part746.load_cached(tmp_path, min_codes=MIN_CODES_FIXTURE)
    assert loaded is not None and why is None and len(loaded.supplements[7].items) == 33
