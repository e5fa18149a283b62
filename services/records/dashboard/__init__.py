"""The compliance dashboard records serves at /ui/: the review queue, each order with its evidence,
trail and reviews, dead letters and charts, for people signed in with an API key.

Server-rendered pages (Jinja2) with htmx (vendored from the npm package `htmx.org`, static/), no
JavaScript build. `pages()` hands the scaffold (shared/service.py `Pages`) the signed-in routes, the
public ones (the sign-in form and static files); every answer under /ui/ gets the security headers
of a page (shared/hygiene.py), redirects and fragments too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.records.dashboard import views
from services.records.dashboard.sessions import PREFIX, RuntimeDep, login_token, sign_in, signed_in
from shared.hygiene import PAGE_HEADERS
from shared.keystore import Identity
from shared.service import Pages

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {
    "htmx.min.js": "text/javascript",
    "app.js": "text/javascript",
    "app.css": "text/css",
}
public = APIRouter(prefix=PREFIX, include_in_schema=False)


@public.get("")
async def root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@public.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    response = HTMLResponse("")
    token = login_token(request, response)
    rendered = views.page(request, "login.html", login_csrf=token)
    rendered.raw_headers.extend(h for h in response.raw_headers if h[0] == b"set-cookie")
    return rendered


@public.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    response = RedirectResponse(f"{PREFIX}/", status_code=303)
    found = await sign_in(request, runtime, response)
    if isinstance(found, Identity):
        return response
    refused = HTMLResponse("")
    token = login_token(request, refused)
    rendered = views.page(request, "login.html", status=401, login_csrf=token, error=found)
    rendered.raw_headers.extend(h for h in refused.raw_headers if h[0] == b"set-cookie")
    return rendered


@public.get("/static/{name}")
async def static(name: Annotated[str, PathParam(max_length=64)]) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(
        STATIC / name, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"}
    )


def pages() -> Pages:
    return Pages(
        prefix=PREFIX, router=views.router, public=public, authenticate=signed_in, headers=PAGE_HEADERS
    )


def install_error_pages(app: FastAPI) -> None:
    """Errors under /ui/ as pages (a 403 says which role is needed), the API's stay JSON."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if not (path == PREFIX or path.startswith(f"{PREFIX}/")) or exc.status_code == 303:
            default: Response = await http_exception_handler(request, exc)
            return default
        if "hx-request" in request.headers and exc.headers and "HX-Redirect" in exc.headers:
            return Response(status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 401:
            return RedirectResponse(f"{PREFIX}/login", status_code=303)
        return views.page(request, "error.html", status=exc.status_code, detail=exc.detail)

    app.add_exception_handler(StarletteHTTPException, handler)
