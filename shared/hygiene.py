"""What every service's HTTP side does the same way, whatever the route: plain ASGI middleware that
`build_app` (shared/service.py) puts around every app.

- A body over `EXPORTWATCH_HTTP_MAX_BODY_BYTES` is refused with 413 naming the limit, before it is
  read whole when the client declares its length, as soon as it passes the limit otherwise.
- A request that has not begun its answer within `EXPORTWATCH_HTTP_REQUEST_TIMEOUT_S` is cancelled
  and answered 503; a few long-running operations (fetching the CCL, the lists, Part 746) are
  exempt and keep their own timeouts.
- An exception no route handled never shows its stack trace: a dependency that is away (a
  database, the broker: shared/failures.py) is a 503 naming it; anything else is a 500 with an
  error id that is logged with the traceback, so on-call can find it from what the client saw.
- Security headers: `X-Content-Type-Options: nosniff` on every answer; on HTML pages a Content
  Security Policy from this origin only, no framing, no referrer, no caching.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.failures import unavailable_dependency
from shared.logging import exception_message, stack_of

log = logging.getLogger("exportwatch.http")

# Scripts, styles and images from this origin only, no framing (clickjacking), no referrer that would
# carry order ids to other sites, nothing kept in a shared cache.
PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# FastAPI's /docs and /redoc load Swagger UI and ReDoc from jsDelivr and start them with an inline
# script: that much is allowed on those two pages only, and still no framing.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; worker-src blob:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
EVERY_RESPONSE: dict[str, str] = {"X-Content-Type-Options": "nosniff"}


def _encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def send_json(send: Send, status: int, body: dict[str, Any], headers: Mapping[str, str] = {}) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *_encoded(headers),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class SecurityHeaders:
    """`EVERY_RESPONSE` on every answer, `PAGE_HEADERS` on HTML pages (DOCS_CSP on the API docs),
    and `extra[prefix]` on every answer under a prefix (a service's browser pages); a header the
    response sets itself is kept."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        docs_paths: frozenset[str] = frozenset(),
        extra: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.app = app
        self.docs_paths = docs_paths
        self.every = _encoded(EVERY_RESPONSE)
        self.page = _encoded(PAGE_HEADERS)
        self.docs = _encoded({**PAGE_HEADERS, "Content-Security-Policy": DOCS_CSP})
        self.extra = {prefix: _encoded(headers) for prefix, headers in (extra or {}).items()}

    def _wanted(self, path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        wanted = list(self.every)
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        if content_type.startswith(b"text/html"):
            wanted += self.docs if path in self.docs_paths else self.page
        for prefix, extra in self.extra.items():
            if path == prefix or path.startswith(f"{prefix}/"):
                wanted += extra
        return wanted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in self._wanted(path, headers):
                    if name not in present:
                        headers.append((name, value))
                        present.add(name)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    """Raised to the app from `receive` once the body passes the limit (the app may turn it into
    another answer, e.g. FastAPI's 400 for an unreadable body: BodyLimit answers 413 instead)."""


class BodyLimit:
    """Refuses a request body over `limit` bytes with 413, naming the limit."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _refusal(self) -> dict[str, Any]:
        return {
            "detail": f"the request body is larger than the limit of {self.limit} bytes "
            "(EXPORTWATCH_HTTP_MAX_BODY_BYTES); send less, e.g. a catalog import in several files"
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await send_json(send, 413, self._refusal(), {"Connection": "close"})
            return
        received = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body it could not read whole; 413 goes out instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if exceeded and not started:
            await send_json(send, 413, self._refusal(), {"Connection": "close"})


class RequestTimeout:
    """Cancels a request that has not begun its answer after `seconds` (503, naming the limit).
    Once the answer has begun (a long download streams), the request runs to its end."""

    def __init__(self, app: ASGIApp, *, seconds: float, exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.seconds = seconds
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.exempt:
            await self.app(scope, receive, send)
            return
        started = False
        try:
            async with asyncio.timeout(self.seconds) as deadline:

                async def send_started(message: Message) -> None:
                    nonlocal started
                    if message["type"] == "http.response.start":
                        started = True
                        deadline.reschedule(None)
                    await send(message)

                await self.app(scope, receive, send_started)
        except TimeoutError:
            if started or not deadline.expired():
                raise  # a timeout of the route's own (a dependency's), for ErrorBoundary to answer
            log.warning(
                "%s %s cancelled: no answer within %.0fs",
                scope.get("method"),
                scope.get("path"),
                self.seconds,
            )
            await send_json(
                send,
                503,
                {
                    "detail": f"the request took longer than {self.seconds:g} s "
                    "(EXPORTWATCH_HTTP_REQUEST_TIMEOUT_S) and was cancelled; a command may or may not "
                    "have taken effect: look before you send it again"
                },
                {"Retry-After": "5"},
            )


class ErrorBoundary:
    """The last line: an exception that escaped every route and handler. Its stack trace goes to the
    log, never to the client."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            error_id = uuid.uuid4().hex[:16]
            away = unavailable_dependency(exc)
            self._log(scope, exc, error_id, away)
            if started:
                raise  # the answer has begun: the server can only close the connection
            if away is not None:
                body = {
                    "detail": f"{self.service}: {away} is unavailable ({type(exc).__name__}); retry later",
                    "error_id": error_id,
                }
                await send_json(send, 503, body, {"Retry-After": "5"})
            else:
                body = {
                    "detail": f"{self.service}: internal error; the operators can look it up by its "
                    f"error id {error_id}",
                    "error_id": error_id,
                }
                await send_json(send, 500, body)

    def _log(self, scope: Scope, exc: Exception, error_id: str, away: str | None) -> None:
        where = f"{scope.get('method')} {scope.get('path')}"
        # An exception's message may quote a request's data (a name in a validation error); its
        # type and stack say where it happened without that.
        message = exception_message(exc)
        extra = {"error_id": error_id, "exc_type": type(exc).__name__}
        if away is not None:
            log.warning(
                "%s: %s is unavailable: %s: %s", where, away, type(exc).__name__, message, extra=extra
            )
            return
        stack = stack_of(exc)
        log.error(
            "%s failed, error id %s: %s: %s",
            where,
            error_id,
            type(exc).__name__,
            message,
            extra={**extra, "stack": stack},
        )
