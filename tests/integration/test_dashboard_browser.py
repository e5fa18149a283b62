"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, against the
records service started as a process on the real broker.

Two approvers release a BLOCKed order (the first approval leaves it blocked, the second releases it,
once its outcome came back from orders.reviewed.v1), and a viewer sees no action and is refused if
it posts anyway. Screenshots go to the test's folder; with EXPORTWATCH_SCREENSHOT_DIR set, the queue
and the order page are also written there (docs/dashboard.png is made that way)."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from deploy.browser import FLAGS, ensure_chromium
from deploy.kafka.broker import free_port
from deploy.local.stack import ServiceProcess, start_service, wait_ready
from shared.events import TOPIC_DECIDED, TOPIC_SUBMITTED
from tests.auth_support import bearer, key
from tests.integration.kafka_helpers import create_prefixed_topics, publish, unique_prefix, wait_for
from tests.records_support import decided, submitted

pytestmark = pytest.mark.integration

VIEWPORT = {"width": 1280, "height": 900}


@dataclass
class Served:
    records: ServiceProcess
    order_id: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    prefix = unique_prefix()
    await create_prefixed_topics(kafka_bootstrap, prefix, partitions=1)
    tmp = tmp_path_factory.mktemp("dashboard")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "EXPORTWATCH_TOPIC_PREFIX": prefix,
        "EXPORTWATCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'records.db'}",
    }
    records = start_service("records", port=free_port(), env=env, log_dir=tmp / "logs")
    try:
        wait_ready([records], timeout=120)
        order_id = f"SO-UI-{uuid.uuid4().hex[:6].upper()}"
        held_id = f"SO-UI-{uuid.uuid4().hex[:6].upper()}"
        orders = [(order_id, "BLOCK"), (held_id, "HOLD")]
        for number, decision in orders:
            order = submitted(number, destination_country="DE")
            await publish(
                kafka_bootstrap, f"{prefix}{TOPIC_SUBMITTED}", [(number, json.dumps(order).encode())]
            )
            await publish(
                kafka_bootstrap,
                f"{prefix}{TOPIC_DECIDED}",
                [(number, json.dumps(decided(order, decision)).encode())],  # type: ignore[arg-type]
            )
        async with httpx.AsyncClient(base_url=records.url, headers=bearer("viewer-1"), timeout=10) as client:

            async def queued() -> bool:
                body = (await client.get("/queue")).json()
                return {number for number, _ in orders} <= {i["order_id"] for i in body["items"]}

            await wait_for(queued, timeout=60, what="the orders in the review queue")
        yield Served(records, order_id)
    finally:
        records.stop()
        print(f"--- records log tail ---\n{records.log_tail(30)}")


@pytest_asyncio.fixture(loop_scope="session")
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    chromium = ensure_chromium()
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "profile"),  # a fresh profile every time
            executable_path=str(chromium),
            headless=True,
            args=list(FLAGS),
            viewport=VIEWPORT,  # type: ignore[arg-type]
            timezone_id="Europe/Berlin",
            locale="en-GB",
        )
        try:
            yield context
        finally:
            await context.close()


async def sign_in(page: Page, served: Served, name: str) -> None:
    await page.goto(f"{served.records.url}/ui/login")
    await page.get_by_label("API key").fill(key(name))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text(name)


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def screenshot(page: Page, tmp_path: Path, name: str) -> Any:
    return page.screenshot(path=str(tmp_path / name), full_page=False)


def keep(tmp_path: Path, name: str, as_name: str) -> None:
    target = os.environ.get("EXPORTWATCH_SCREENSHOT_DIR")
    if target:
        shutil.copyfile(tmp_path / name, Path(target) / as_name)


async def test_two_approvers_release_a_blocked_order_in_the_browser(
    served: Served, browser: BrowserContext, tmp_path: Path
) -> None:
    page = await browser.new_page()
    await sign_in(page, served, "approver-1")

    # The queue: oldest first, with counts; keyboard reachable from the first Tab.
    await expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    await expect(page.get_by_test_id("queue-counts")).to_contain_text("BLOCK")
    await screenshot(page, tmp_path, "queue.png")
    keep(tmp_path, "queue.png", "dashboard-queue.png")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    link = page.get_by_role("link", name=served.order_id)
    await expect(link).to_be_visible()
    zone = await page.locator("[data-zone]").first.text_content()
    assert zone == "Europe/Berlin"  # times are shown in the viewer's zone
    first_time = page.locator("time[datetime]").first
    assert await first_time.text_content() != await first_time.get_attribute("datetime")

    # The order: BLOCK, the first approval leaves it blocked.
    await link.click()
    await expect(page.get_by_test_id("machine-decision")).to_have_text("BLOCK")
    await expect(page.get_by_test_id("chain")).to_contain_text("hash chain verifies")
    await page.get_by_label("RELEASE").check()
    await page.get_by_label("Comment (why)").fill(
        "The Entity List entry is a different company (other city)."
    )
    await page.locator("button[data-action=review]").click()
    await expect(page.get_by_role("status")).to_contain_text("1 of 2 approvals")
    await expect(page.get_by_test_id("approvals")).to_contain_text("approver-1")
    await expect(page.get_by_test_id("review-decision")).to_contain_text("awaiting approval")
    assert await page.locator("button[data-action=approve]").count() == 0  # not twice by the same key
    await sign_out(page)

    # A second approver releases it.
    await sign_in(page, served, "approver-2")
    await page.goto(f"{served.records.url}/ui/orders/{served.order_id}")
    await page.get_by_label("Comment (optional)").fill("Agreed: different company.")
    await page.locator("button[data-action=approve]").click()
    await expect(page.get_by_role("status")).to_contain_text("RELEASE is final")

    # Released once the outcome came back from orders.reviewed.v1 (the outbox, the broker, the trail).
    async def released() -> bool:
        await page.reload()
        text = await page.get_by_test_id("review-decision").text_content() or ""
        return "RELEASE" in text

    await wait_for(released, timeout=30, interval=0.5, what="the release recorded")
    await expect(page.get_by_test_id("review-decision")).to_contain_text("by approver-2")
    await expect(page.locator("ol.history")).to_contain_text("approved by approver-2")
    await screenshot(page, tmp_path, "order.png")
    keep(tmp_path, "order.png", "dashboard.png")
    for name in ("queue.png", "order.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_viewer_sees_no_action_and_is_refused_if_it_posts_anyway(
    served: Served, browser: BrowserContext
) -> None:
    page = await browser.new_page()
    await sign_in(page, served, "viewer-1")
    await page.goto(f"{served.records.url}/ui/orders/{served.order_id}")
    await expect(page.get_by_role("heading", name=f"Order {served.order_id}")).to_be_visible()
    assert await page.locator("button[data-action]").count() == 0
    assert await page.locator("form[action*='/orders/']").count() == 0

    # Posting anyway, with the session's own cookie and CSRF token: 403, nothing recorded.
    headers = await page.locator("body").get_attribute("hx-headers") or "{}"
    token = json.loads(headers)["X-CSRF-Token"]
    for action in ("approve", "review", "not-a-match"):
        response = await page.request.post(
            f"{served.records.url}/ui/orders/{served.order_id}/{action}",
            form={"csrf_token": token, "review_decision": "RELEASE", "comment": "viewer tries"},
            max_redirects=0,
        )
        assert response.status == 403, (action, response.status)
        assert re.search(r"needs the (approver|reviewer) role", await response.text())
    # Without the CSRF token even a reviewer's post would be refused; a viewer's is refused first.
    forged = await page.request.post(
        f"{served.records.url}/ui/orders/{served.order_id}/review", form={"comment": "x"}, max_redirects=0
    )
    assert forged.status == 403
