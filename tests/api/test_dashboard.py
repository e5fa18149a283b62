"""The dashboard's pages through ASGI: signing in with a key, the session cookie's flags, CSRF,
security headers, the pages and the charts (SVG drawn on the server)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import httpx

from shared.keystore import create_key, default_keys_file, revoke_key
from tests.api.test_records_api import Records
from tests.auth_support import key
from tests.records_support import decided, submitted

ORIGIN = "http://t"


async def sign_in(
    records: Records, name: str = "approver-1", api_key: str | None = None
) -> httpx.AsyncClient:
    browser = httpx.AsyncClient(transport=records.client._transport, base_url=ORIGIN)
    form = await browser.get("/ui/login")
    assert form.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    response = await browser.post(
        "/ui/login",
        data={"csrf_token": token.group(1), "api_key": api_key or key(name)},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 303, response.text
    return browser


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_signing_in_sets_an_httponly_strict_session_cookie_not_the_key(records: Records) -> None:
    browser = await sign_in(records)
    cookie = next(c for c in browser.cookies.jar if c.name == "exportwatch_session")
    assert key("approver-1") not in (cookie.value or "")
    form = await browser.get("/ui/login")
    # The flags the server set: HttpOnly and SameSite=Strict, scoped to the dashboard.
    login = await browser.post("/ui/login", data={"csrf_token": csrf(form.text), "api_key": key("viewer-1")})
    set_cookie = login.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie and "Path=/ui" in set_cookie


async def test_a_wrong_key_or_a_forged_sign_in_is_refused(records: Records) -> None:
    browser = httpx.AsyncClient(transport=records.client._transport, base_url=ORIGIN)
    form = await browser.get("/ui/login")
    wrong = await browser.post("/ui/login", data={"csrf_token": csrf(form.text), "api_key": "ewk_nope"})
    assert wrong.status_code == 401 and "not accepted" in wrong.text
    forged = await browser.post(
        "/ui/login", data={"csrf_token": "guess", "api_key": key("admin-1")}, headers={"Origin": ORIGIN}
    )
    assert forged.status_code == 401 and "expired" in forged.text
    other_site = await browser.post(
        "/ui/login",
        data={"csrf_token": csrf((await browser.get("/ui/login")).text), "api_key": key("admin-1")},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 401


async def test_pages_carry_the_security_headers_and_show_the_queue_and_the_order(records: Records) -> None:
    order = submitted("SO-2026-000501")
    await records.consume(order, decided(order, "BLOCK"))
    browser = await sign_in(records)
    queue = await browser.get("/ui/")
    assert queue.status_code == 200 and "SO-2026-000501" in queue.text
    assert "default-src 'self'" in queue.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in queue.headers["content-security-policy"]
    assert queue.headers["x-frame-options"] == "DENY" and queue.headers["referrer-policy"] == "no-referrer"
    table = await browser.get("/ui/queue-table", params={"decision": "HOLD"}, headers={"HX-Request": "true"})
    assert "SO-2026-000501" not in table.text and "Nothing waits" in table.text
    page = await browser.get("/ui/orders/SO-2026-000501")
    assert page.status_code == 200
    for shown in ("BLOCK", "POTENTIAL_MATCH", "Muster Maschinenbau", "hash chain verifies", "Submit review"):
        assert shown in page.text, shown


async def test_a_form_without_the_sessions_csrf_token_is_refused(records: Records) -> None:
    order = submitted("SO-2026-000502")
    await records.consume(order, decided(order, "BLOCK"))
    browser = await sign_in(records)
    page = await browser.get("/ui/orders/SO-2026-000502")
    data = {"review_decision": "HOLD", "comment": "hold it"}
    refused = await browser.post("/ui/orders/SO-2026-000502/review", data=data)
    assert refused.status_code == 403 and "CSRF" in refused.text
    accepted = await browser.post(
        "/ui/orders/SO-2026-000502/review", data={**data, "csrf_token": csrf(page.text)}
    )
    assert accepted.status_code == 303 and "final" in accepted.headers["location"]


async def test_a_revoked_keys_session_ends_at_once(records: Records) -> None:
    path = default_keys_file()
    token, _ = create_key(path, name="temp-reviewer", role="reviewer", now=datetime.now(UTC))
    browser = await sign_in(records, api_key=token)
    assert (await browser.get("/ui/")).status_code == 200
    revoke_key(path, name="temp-reviewer", now=datetime.now(UTC))
    after = await browser.get("/ui/")
    assert after.status_code == 303 and after.headers["location"] == "/ui/login"


async def test_charts_are_svg_drawn_on_the_server_with_their_numbers(records: Records) -> None:
    for number, decision in (("SO-2026-000503", "BLOCK"), ("SO-2026-000504", "RELEASE")):
        order = submitted(number, destination_country="CN")
        await records.consume(order, decided(order, decision))  # type: ignore[arg-type]
    browser = await sign_in(records)
    page = await browser.get("/ui/charts")
    assert page.status_code == 200 and "<table>" in page.text and "CN" in page.text
    for name in ("decisions-per-day", "top-reasons", "top-destinations", "backlog-age"):
        svg = await browser.get(f"/ui/charts/{name}.svg")
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.text.lstrip().startswith("<svg") and "<script" not in svg.text
    assert (await browser.get("/ui/charts/nope.svg")).status_code == 404


async def test_signing_out_ends_the_session(records: Records) -> None:
    browser = await sign_in(records)
    page = await browser.get("/ui/")
    out = await browser.post("/ui/logout", data={"csrf_token": csrf(page.text)})
    assert out.status_code == 303
    assert (await browser.get("/ui/")).status_code == 303


async def test_the_order_page_shows_matched_names_side_by_side_and_the_country_chart_cells(
    records: Records,
) -> None:
    order = submitted("SO-2026-000505", destination_country="CN")
    decision = decided(order, "BLOCK")
    match, licence = decision["decision"]["reasons"]
    match["evidence"] = {
        "party_name": "Lingoe Process Engineering Ltd",
        "party_country": "CN",
        "list_id": "SDN",
        "list_name": "Specially Designated Nationals",
        "list_version": "sha256:0123456789ab",
        "list_effect": "block",
        "entry_id": "17292",
        "entry_name": "LINGOE PROCESS ENGINEERING LIMITED",
        "matched_name": "LINGOE PROCESS ENGINEERING LIMITED",
        "matched_alias": False,
        "score": 0.97,
        "review_threshold": 0.86,
        "block_threshold": 0.95,
        "entry_countries": ["CN"],
        "regulation": "31 CFR 501; 15 CFR 744.8",
    }
    licence["evidence"] = {
        "eccn": "5A002.a",
        "countries": [
            {
                "country": "CN",
                "roles": ["destination"],
                "chart_row": "CN",
                "columns_marked": ["NS1", "AT1"],
                "footnotes": [],
                "part_746": [],
            }
        ],
        "regulation": "15 CFR 738.4; 15 CFR 738 Supp. 1",
    }
    await records.consume(order, decision)
    browser = await sign_in(records, "viewer-1")
    page = (await browser.get("/ui/orders/SO-2026-000505")).text
    assert 'aria-label="Matched names"' in page and "Lingoe Process Engineering Ltd" in page
    assert "LINGOE PROCESS ENGINEERING LIMITED" in page and "0.970" in page and "<meter" in page
    assert 'aria-label="Country Chart cells"' in page and "NS1, AT1" in page and "5A002.a" in page
    assert "15 CFR 738.4" in page
    # The screening section: every party of the decision's own screening, read from its bytes.
    parties = decision["screening"]["parties"]
    assert parties and all(html.escape(f"{p['role']}: {p['name']}") in page for p in parties), parties
    assert "Submit review" not in page and "Not a match" not in page  # a viewer's page has no action
