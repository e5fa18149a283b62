"""Bounded downloads of publishers' files (lists, the eCFR): one way to fetch, for every updater.

Failures raise the caller's own error class (`error=`), so each updater reports them as its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

# Told the bytes received so far and the total the server announced (Content-Length), if any.
Progress = Callable[[int, int | None], None]


async def download(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    params: Mapping[str, str] | None = None,
    error: type[Exception],
    progress: Progress | None = None,
) -> tuple[bytes, httpx.Headers]:
    """GET `url` (relative to the client's base URL, if any) and return body and headers.

    The body is streamed and refused past `max_bytes`, so a wrong or hostile URL cannot exhaust
    memory. Every failure (HTTP status, transport error, a body over `max_bytes`) raises `error`
    with a message that starts `GET <url>:`. `progress`, if given, is told after each chunk.
    """
    shown = str(client.base_url.join(url)) if str(client.base_url) else url
    try:
        async with client.stream("GET", url, params=params) as response:
            if response.status_code != 200:
                raise error(f"GET {shown}: HTTP {response.status_code}")
            body = bytearray()
            announced = response.headers.get("content-length")
            total = int(announced) if announced is not None and announced.isdigit() else None
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise error(f"GET {shown}: larger than {max_bytes} bytes; refused")
                if progress is not None:
                    progress(len(body), total)
            return bytes(body), response.headers
    except httpx.HTTPError as exc:
        raise error(f"GET {shown}: {type(exc).__name__}: {exc}") from exc
