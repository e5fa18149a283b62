"""Who may call what: API keys with roles on every HTTP route of every service.

Two parts, both put in place by the service scaffold (`shared/service.py` `build_app`), so no route
can be left out by forgetting it:

- `BearerAuth`, an ASGI middleware, authenticates every request before anything else reads it
  (the body included): `Authorization: Bearer <key>` must name a key in force, or the answer is 401
  with `WWW-Authenticate: Bearer`. Only the ops endpoints (/healthz, /readyz, /metrics) and paths a
  service signs in by its own session (the dashboard's pages, which check a cookie instead) pass
  without one.
- `require(role)`, a route dependency, answers 403 when the key's role is below the route's. The
  scaffold gives every route `viewer` at least and refuses to build an app with a route that
  changes something (any method but GET) without a role of its own.

Roles: viewer < reviewer < approver < admin (shared/keystore.py). The identity of every action is
the key's (name, role, id), never a name sent in a request body; the routes pass it to the use
cases, which write it into the trail. Failed attempts are counted by reason in
`exportwatch_auth_failures_total`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.routing import APIRoute
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.keystore import ROLE_RANK, Failure, Identity, KeyStore, Role

log = logging.getLogger("exportwatch.auth")

AUTH_FAILURES = Counter(
    "exportwatch_auth_failures_total",
    "Requests refused: no key (missing), not a key (malformed), no such key or a wrong secret "
    "(unknown), a revoked key, an unreadable keys file, a role too low (forbidden)",
    ["service", "reason"],
)

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
ROLE_EXTENSION = "x-required-role"

_EXPLAINED: dict[str, str] = {
    "missing": "this endpoint needs an API key: send Authorization: Bearer <key>",
    "malformed": "the Authorization header holds no API key (expected Bearer ewk_<id>_<secret>)",
    "unknown": "the API key is not known",
    "revoked": "the API key has been revoked",
    "keys_file_invalid": "the service cannot read its keys file; no key is accepted (see its log)",
}


def bearer_token(authorization: str | None) -> str | None:
    """The credentials of an `Authorization: Bearer ...` header; None without one."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return "\x00"  # present but not a bearer key: malformed
    return credentials.strip()


def explain(failure: Failure) -> str:
    return _EXPLAINED[failure]


def count_failure(service: str, reason: str) -> None:
    AUTH_FAILURES.labels(service, reason).inc()


class BearerAuth:
    """Authenticates every HTTP request outside `public` paths and `session_prefixes` before the
    app sees it; puts the Identity in `scope["state"]["identity"]`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: KeyStore,
        service: str,
        session_prefixes: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.store = store
        self.service = service
        self.session_prefixes = tuple(session_prefixes)

    def _exempt(self, path: str) -> bool:
        return path in PUBLIC_PATHS or any(
            path == prefix or path.startswith(f"{prefix}/") for prefix in self.session_prefixes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization")
        token = bearer_token(authorization.decode("latin-1") if authorization is not None else None)
        found = self.store.check(token)
        if isinstance(found, Identity):
            scope.setdefault("state", {})["identity"] = found
            await self.app(scope, receive, send)
            return
        count_failure(self.service, found)
        if found == "keys_file_invalid":
            log.error("refusing every API key: %s", self.store.error)
        await _refuse(send, found)


async def _refuse(send: Send, failure: Failure) -> None:
    body = json.dumps({"detail": explain(failure)}).encode()
    challenge = (
        'Bearer realm="exportwatch"'
        if failure == "missing"
        else 'Bearer realm="exportwatch", error="invalid_token"'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RoleRequirement:
    """The dependency `require(role)` makes: the caller's Identity if its role is high enough.
    `default` marks the router-wide `viewer` the scaffold gives every route."""

    def __init__(self, role: Role, *, default: bool = False) -> None:
        self.role = role
        self.default = default

    def __repr__(self) -> str:
        return f"require({self.role!r})"

    def __call__(self, request: Request) -> Identity:
        identity = getattr(request.state, "identity", None)
        if not isinstance(identity, Identity):
            # Only reachable if a route escaped both the middleware and its session check.
            raise HTTPException(401, explain("missing"), headers={"WWW-Authenticate": "Bearer"})
        if not identity.may(self.role):
            count_failure(request.app.state.service_name, "forbidden")
            raise HTTPException(
                403,
                f"this needs the {self.role} role or higher; key {identity.name!r} has the "
                f"{identity.role} role",
            )
        return identity


def require(role: Role) -> Any:
    """`dependencies=[require("admin")]` on a route, or `who: Annotated[Identity, require(...)]`."""
    return Depends(RoleRequirement(role))


def default_role() -> Any:
    """The router-wide dependency every route gets from the scaffold: at least `viewer`."""
    return Depends(RoleRequirement("viewer", default=True))


ViewerDep = Annotated[Identity, require("viewer")]
ReviewerDep = Annotated[Identity, require("reviewer")]
ApproverDep = Annotated[Identity, require("approver")]
AdminDep = Annotated[Identity, require("admin")]


def _own_requirements(route: APIRoute) -> list[RoleRequirement]:
    """The role requirements a route declares itself (its decorator's dependencies and parameters)."""
    found: list[RoleRequirement] = []
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, RoleRequirement):
            found.append(dependant.call)
        pending.extend(dependant.dependencies)
    return found


def required_role(route: APIRoute) -> Role | None:
    """The role a route needs: the highest it declares; `viewer` (the scaffold's default) for a read
    that declares none; None for a change that declares none (refused by `declare_roles`)."""
    roles: list[Role] = [r.role for r in _own_requirements(route) if not r.default]
    if roles:
        return sorted(roles, key=ROLE_RANK.__getitem__)[-1]
    changes = bool((route.methods or set()) - {"GET", "HEAD"})
    return None if changes else "viewer"


def _api_routes(routes: Sequence[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif (inner := getattr(route, "original_router", None)) is not None:
            found.extend(_api_routes(inner.routes))  # a router included in this one
    return found


def declare_roles(routes: Sequence[Any], *, where: str) -> None:
    """Check every route of a router before it is included: a route that changes something (any
    method but GET) must declare its own role (the router-wide `viewer` is no answer for a change);
    state each route's role in the OpenAPI document (`x-required-role`)."""
    for route in _api_routes(routes):
        role = required_role(route)
        if role is None:
            raise RuntimeError(
                f"{where}: {sorted(route.methods or ())} {route.path} declares no role: give it "
                "dependencies=[require(...)] or an ...Dep parameter (shared/auth.py)"
            )
        route.openapi_extra = {**(route.openapi_extra or {}), ROLE_EXTENSION: role}
