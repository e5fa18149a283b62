"""The dashboard's pages of the trail as system of record (services/records/dashboard/trail_views.py):
every order with filters and keyset pages, the post-shipment alerts and their badge, a legal hold
placed and released from the order page (admins only), the dossier link."""

from __future__ import annotations

import re

import pytest

from services.records.dashboard import trail_views
from tests.api.test_dashboard import csrf, sign_in
from tests.api.test_records_api import Records
from tests.records_support import alert, decided, list_change, shipped, submitted


async def test_orders_are_listed_with_the_apis_filters_and_a_next_page(
    records: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = submitted("SO-2026-000601", destination_country="CN")
    released = submitted("SO-2026-000602")
    await records.consume(blocked, decided(blocked, "BLOCK"), released, decided(released, "RELEASE"))
    await records.consume(shipped(released))
    browser = await sign_in(records, "viewer-1")
    everything = await browser.get("/ui/orders")
    assert everything.status_code == 200
    assert "SO-2026-000601" in everything.text and "SO-2026-000602" in everything.text
    only_cn = await browser.get("/ui/orders", params={"destination": "cn", "decision": "BLOCK"})
    assert "SO-2026-000601" in only_cn.text and "SO-2026-000602" not in only_cn.text
    by_name = await browser.get("/ui/orders", params={"party": "muster maschinenbau", "shipped": "yes"})
    assert "SO-2026-000602" in by_name.text and "SO-2026-000601" not in by_name.text
    nothing = await browser.get("/ui/orders", params={"party": "nobody of that name"})
    assert "No order with these filters" in nothing.text

    monkeypatch.setattr(trail_views, "PAGE", 1)  # one order a page, to follow the cursor
    first = await browser.get("/ui/orders")
    link = re.search(r'href="([^"]+)" data-testid="next-page"', first.text)
    assert link is not None
    second = await browser.get(link.group(1).replace("&amp;", "&"))
    shown = [re.findall(r'data-order="([^"]+)"', page.text) for page in (first, second)]
    assert len(shown[0]) == len(shown[1]) == 1 and shown[0] != shown[1]
    forged = await browser.get("/ui/orders", params={"cursor": "not-a-cursor"})
    assert forged.status_code == 200 and "not a cursor of this API" in forged.text


async def test_open_alerts_are_counted_in_the_badge_and_acknowledged_by_a_reviewer(records: Records) -> None:
    order = submitted("SO-2026-000611")
    decision = decided(order, "RELEASE")
    await records.consume(order, decision, shipped(order), alert(decision, list_change(list_id="SDN")))
    viewer = await sign_in(records, "viewer-1")
    badge = await viewer.get("/ui/alerts/badge", headers={"HX-Request": "true"})
    assert re.search(r'data-testid="alerts-badge"[^>]*>1<', badge.text), badge.text
    page = await viewer.get("/ui/alerts")
    assert "SO-2026-000611" in page.text and "SDN" in page.text
    assert 'data-action="acknowledge"' not in page.text  # a viewer may not

    reviewer = await sign_in(records, "reviewer-1")
    page = await reviewer.get("/ui/alerts")
    event_id = re.search(r'data-alert="([^"]+)"', page.text)
    assert event_id is not None
    done = await reviewer.post(
        f"/ui/alerts/{event_id.group(1)}/acknowledge",
        data={"csrf_token": csrf(page.text), "comment": "shipment checked; disclosure filed"},
    )
    assert done.status_code == 303 and "acknowledged" in done.headers["location"]
    badge = await reviewer.get("/ui/alerts/badge")
    assert re.search(r'data-testid="alerts-badge"[^>]*>0<', badge.text), badge.text
    order_page = await reviewer.get("/ui/orders/SO-2026-000611")
    assert "shipment checked; disclosure filed" in order_page.text and "1Z999AA10123456784" in order_page.text


async def test_an_admin_places_and_releases_a_legal_hold_from_the_order_page(records: Records) -> None:
    order = submitted("SO-2026-000621")
    await records.consume(order, decided(order, "HOLD"))
    reviewer = await sign_in(records, "reviewer-1")
    page = await reviewer.get("/ui/orders/SO-2026-000621")
    assert 'data-action="hold"' not in page.text
    refused = await reviewer.post(
        "/ui/orders/SO-2026-000621/hold", data={"csrf_token": csrf(page.text), "reason": "subpoena"}
    )
    assert refused.status_code == 403

    admin = await sign_in(records, "admin-1")
    page = await admin.get("/ui/orders/SO-2026-000621")
    assert 'data-action="hold"' in page.text
    placed = await admin.post(
        "/ui/orders/SO-2026-000621/hold", data={"csrf_token": csrf(page.text), "reason": "subpoena 2026-17"}
    )
    assert placed.status_code == 303 and "placed" in placed.headers["location"]
    page = await admin.get("/ui/orders/SO-2026-000621")
    assert re.search(r'data-testid="legal-hold">in force<', page.text) and "subpoena 2026-17" in page.text
    hold_id = re.search(r'name="hold_id" value="([^"]+)"', page.text)
    assert hold_id is not None
    released = await admin.post(
        "/ui/orders/SO-2026-000621/hold/release",
        data={"csrf_token": csrf(page.text), "hold_id": hold_id.group(1), "reason": "matter closed"},
    )
    assert released.status_code == 303 and "released" in released.headers["location"]
    page = await admin.get("/ui/orders/SO-2026-000621")
    assert re.search(r'data-testid="legal-hold">none<', page.text) and "matter closed" in page.text


async def test_the_order_page_links_the_dossier_served_to_the_signed_in_viewer(records: Records) -> None:
    order = submitted("SO-2026-000631")
    await records.consume(order, decided(order, "BLOCK"))
    viewer = await sign_in(records, "viewer-1")
    page = await viewer.get("/ui/orders/SO-2026-000631")
    link = re.search(r'href="([^"]+)" data-testid="dossier"', page.text)
    assert link is not None
    pdf = await viewer.get(link.group(1))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    missing = await viewer.get("/ui/orders/SO-2026-999999/dossier.pdf")
    assert missing.status_code == 404
