"""Signing in to the dashboard with an API key, and the browser session that follows.

The key is sent once, in the sign-in form, and checked like a bearer key. The browser then holds
only a random session id in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS); the database
keeps its SHA-256, the key's id and the session's CSRF token. Every request looks the key up again
by id, so a revoked key's sessions end at once. Every form posts the session's CSRF token (a field,
or the X-CSRF-Token header for htmx), compared in constant time, and a cross-origin POST is refused
by its Origin header as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request, Response
from sqlalchemy import delete, select

from services.records.models import DashboardSession
from services.records.service import RecordsRuntime
from shared.auth import count_failure
from shared.keystore import Identity, KeyStore
from shared.service import runtime_dependency

COOKIE = "exportwatch_session"
LOGIN_COOKIE = "exportwatch_login"
PREFIX = "/ui"
# A working shift; then the key is asked for again.
LIFETIME = timedelta(hours=10)
MAX_FORM_BYTES = 64 * 1024

RuntimeDep = Annotated[RecordsRuntime, Depends(runtime_dependency(RecordsRuntime))]


@dataclass(frozen=True)
class Signed:
    """The signed-in browser: who, and the token its forms must carry."""

    identity: Identity
    csrf_token: str


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


class SignInNeeded(HTTPException):
    """Not signed in (or no longer): a page sends the browser to the sign-in form."""

    def __init__(self, request: Request) -> None:
        if request.method == "GET" and "hx-request" not in request.headers:
            super().__init__(303, "sign in first", headers={"Location": f"{PREFIX}/login"})
        else:
            super().__init__(401, "sign in first", headers={"HX-Redirect": f"{PREFIX}/login"})


async def signed_in(request: Request) -> Signed:
    """The pages' authentication: the session cookie's key, still in force. Puts the Identity where
    the role checks read it (`request.state.identity`)."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        raise SignInNeeded(request)
    runtime = runtime_dependency(RecordsRuntime)(request)
    now = datetime.now(UTC)
    async with runtime.sessionmaker() as session:
        row = await session.scalar(
            select(DashboardSession).where(
                DashboardSession.session_sha256 == _digest(session_id), DashboardSession.expires_at > now
            )
        )
    keys: KeyStore = request.app.state.keys
    identity = keys.identity(row.key_id) if row is not None else "unknown"
    if not isinstance(identity, Identity) or row is None:
        raise SignInNeeded(request)
    request.state.identity = identity
    signed = Signed(identity, row.csrf_token)
    request.state.signed = signed
    if request.method not in ("GET", "HEAD"):
        await _check_csrf(request, signed)
    return signed


SignedDep = Annotated[Signed, Depends(signed_in)]


async def read_form(request: Request) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body (what the dashboard's forms send), kept on the
    request so the CSRF check and the route read it once."""
    cached: dict[str, list[str]] | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    request.state.form = form
    return form


def same_origin(request: Request) -> bool:
    """False for a POST whose Origin names another site. Under `Referrer-Policy: no-referrer` the
    browser sends `Origin: null` even for the page's own forms: then the CSRF token decides alone."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return hmac.compare_digest(origin, expected)


async def _check_csrf(request: Request, signed: Signed) -> None:
    form = await read_form(request)
    sent = request.headers.get("x-csrf-token") or (form.get("csrf_token") or [""])[-1]
    if not same_origin(request) or not hmac.compare_digest(sent, signed.csrf_token):
        count_failure(request.app.state.service_name, "csrf")
        raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the page and try again")


# --- signing in and out ------------------------------------------------------------------------


def login_token(request: Request, response: Response) -> str:
    """The sign-in form's own CSRF token (double-submitted: a cookie and a field)."""
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_hex(16)
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path=PREFIX
    )
    return token


async def sign_in(request: Request, runtime: RecordsRuntime, response: Response) -> Identity | str:
    """Check the form's key; on success open a session (its cookie set on `response`). The refusal
    says why in words, and counts as a failed attempt."""
    form = await read_form(request)
    sent = (form.get("csrf_token") or [""])[-1]
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not same_origin(request) or not hmac.compare_digest(sent, expected):
        count_failure(request.app.state.service_name, "csrf")
        return "the sign-in form expired; please try again"
    keys: KeyStore = request.app.state.keys
    found = keys.check((form.get("api_key") or [""])[-1].strip() or None)
    if not isinstance(found, Identity):
        count_failure(request.app.state.service_name, found)
        return "that API key is not accepted" if found != "missing" else "enter your API key"
    session_id, now = secrets.token_urlsafe(32), datetime.now(UTC)
    async with runtime.sessionmaker() as session, session.begin():
        await session.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))
        session.add(
            DashboardSession(
                session_sha256=_digest(session_id),
                key_id=found.key_id,
                csrf_token=secrets.token_hex(32),
                created_at=now,
                expires_at=now + LIFETIME,
            )
        )
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path=PREFIX,
    )
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return found


async def sign_out(request: Request, runtime: RecordsRuntime, response: Response) -> None:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        async with runtime.sessionmaker() as session, session.begin():
            await session.execute(
                delete(DashboardSession).where(DashboardSession.session_sha256 == _digest(session_id))
            )
    response.delete_cookie(COOKIE, path=PREFIX)


def _secure(request: Request) -> bool:
    # Secure cookies over HTTPS (behind a TLS proxy too: uvicorn honours X-Forwarded-Proto from it).
    return request.url.scheme == "https"
