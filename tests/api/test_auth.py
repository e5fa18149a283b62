"""Every endpoint of every service needs a valid API key with a role high enough.

The routes are read from each app's own OpenAPI document (with the role each one states in
`x-required-role`) and its route table (the dashboard's pages are not in the document), so a route
added tomorrow is covered by these tests without naming it here: a new unprotected route fails."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from shared.auth import AUTH_FAILURES, PUBLIC_PATHS, ROLE_EXTENSION
from shared.keystore import ROLE_RANK, ROLES
from shared.settings import SERVICE_PORTS, load_settings
from tests.auth_support import KEYS, NAMES, REVOKED, bearer

SERVICES = tuple(SERVICE_PORTS)
WELL_FORMED_UNKNOWN = "ewk_0123456789abcdef_" + "0" * 64


@cache
def app_of(service: str) -> FastAPI:
    # No lifespan: nothing is loaded, so an authorised call answers 503 (or 422) instead of working;
    # the checks under test come first.
    module = importlib.import_module(f"services.{service}.app")
    app: FastAPI = module.create_app(load_settings(service), start_kafka=False)
    return app


def operations(service: str) -> Iterator[tuple[str, str, str]]:
    """(method, path with its parameters filled in, required role) of every documented operation."""
    for path, methods in app_of(service).openapi()["paths"].items():
        for method, operation in methods.items():
            if path in PUBLIC_PATHS:
                continue
            yield method.upper(), re.sub(r"\{[^}]+\}", "x-1", path), operation[ROLE_EXTENSION]


CASES = [pytest.param(s, m, p, r, id=f"{s} {m} {p}") for s in SERVICES for m, p, r in operations(s)]


def _wrong_secret(key: str) -> str:
    return key[:-1] + ("1" if key.endswith("0") else "0")


def client(service: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app_of(service)), base_url="http://t")


def failures(service: str, reason: str) -> float:
    value = AUTH_FAILURES.labels(service, reason)._value.get()
    return float(value)


def test_every_service_documents_a_role_on_every_operation_and_the_bearer_scheme() -> None:
    for service in SERVICES:
        document = app_of(service).openapi()
        assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
        found = list(operations(service))
        assert found, service
        assert {role for _, _, role in found} <= set(ROLES)


@pytest.mark.parametrize(("service", "method", "path", "role"), CASES)
async def test_no_key_a_malformed_an_unknown_or_a_revoked_key_is_401(
    service: str, method: str, path: str, role: str
) -> None:
    async with client(service) as c:
        for reason, headers in [
            ("missing", {}),
            ("malformed", {"Authorization": "Bearer not-a-key"}),
            ("malformed", {"Authorization": f"Basic {KEYS['admin-1'][1]}"}),
            ("unknown", {"Authorization": f"Bearer {WELL_FORMED_UNKNOWN}"}),
            ("unknown", {"Authorization": f"Bearer {_wrong_secret(KEYS['admin-1'][1])}"}),
            ("revoked", {"Authorization": f"Bearer {REVOKED['revoked-1']}"}),
        ]:
            before = failures(service, reason)
            # Even a body that is not JSON is refused for the key first: nothing is read before it.
            response = await c.request(method, path, headers=headers, content=b"{not json")
            assert response.status_code == 401, (reason, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert failures(service, reason) == before + 1


@pytest.mark.parametrize(("service", "method", "path", "role"), CASES)
async def test_a_role_below_the_routes_is_403_and_the_role_itself_passes(
    service: str, method: str, path: str, role: str
) -> None:
    async with client(service) as c:
        for name, key_role in NAMES.items():
            response = await c.request(method, path, headers=bearer(name), json={})
            if ROLE_RANK[key_role] < ROLE_RANK[role]:
                assert response.status_code == 403, (name, response.text)
                assert f"needs the {role} role" in response.json()["detail"]
            else:
                assert response.status_code not in (401, 403), (name, response.text)


@pytest.mark.parametrize("service", SERVICES)
async def test_only_health_readiness_and_metrics_answer_without_a_key(service: str) -> None:
    app = app_of(service)
    async with client(service) as c:
        for path in sorted(PUBLIC_PATHS):
            assert (await c.get(path)).status_code in (200, 503), path
        for path in ("/docs", "/openapi.json", "/no-such-path"):
            assert (await c.get(path)).status_code == 401, path
        # Every route of the table, documented or not: a bearer key or the dashboard's session.
        for context in iter_route_contexts(app.routes):
            path = context.path or ""
            methods: set[str] = context.methods or {"GET"}
            if path in PUBLIC_PATHS or _public_page(path):
                continue
            concrete = re.sub(r"\{[^}]+\}", "x-1", path)
            for method in methods - {"HEAD"}:
                response = await c.request(method, concrete, follow_redirects=False)
                if path.startswith("/ui"):
                    # Pages: not signed in, the browser is sent to the sign-in form.
                    assert response.status_code == 303, (method, path, response.status_code)
                    assert response.headers["location"] == "/ui/login"
                else:
                    assert response.status_code == 401, (method, path)


def _public_page(path: str) -> bool:
    # The sign-in form and the static files it needs; they read nothing from the database.
    return path in ("/ui", "/ui/login") or path.startswith("/ui/static/")


async def test_a_bearer_key_alone_does_not_open_the_dashboards_pages() -> None:
    async with client("records") as c:
        response = await c.get("/ui/", headers=bearer(), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"


def _route_roles(service: str) -> dict[str, Any]:
    return {f"{m} {p}": r for m, p, r in operations(service)}


def test_the_roles_of_the_commands_are_as_the_issue_states() -> None:
    assert _route_roles("records")["POST /orders/x-1/review"] == "reviewer"
    assert _route_roles("records")["POST /orders/x-1/review/approve"] == "approver"
    assert _route_roles("records")["POST /deadletters/x-1/replay"] == "admin"
    assert _route_roles("screening")["POST /lists/update"] == "admin"
    assert _route_roles("screening")["POST /screen"] == "viewer"
    assert _route_roles("screening")["POST /clearances"] == "reviewer"
    assert _route_roles("classifier")["POST /ccl/update"] == "admin"
    assert _route_roles("classifier")["POST /classify"] == "viewer"
    assert _route_roles("risk")["POST /assess"] == "viewer"
