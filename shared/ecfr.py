"""The eCFR versioner API, for every updater that reads a part of title 15 (Part 774 for the
classifier, Part 746 for risk; `make run` on a fresh machine also Parts 738, 740, 744 and title 22's
Part 121, the USML): which date to fetch, and the part's XML as of that date.

The API (https://www.ecfr.gov/developers/documentation/api/v1) serves `titles.json` (per title its
`up_to_date_as_of`), `versions/title-15.json?part=N` (the dates on which part N changed) and
`full/{date}/title-15.xml?part=N` (the part's text as of `date`). The date fetched is the last date
the part changed up to the title's `up_to_date_as_of`, so two fetches between amendments give the
same date and the same bytes. Failures raise the caller's error class, naming the URL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

from shared.http import Progress, download

ECFR_API_URL = "https://www.ecfr.gov/api/versioner/v1"
TITLE = 15
MAX_XML_BYTES = 64 * 1024 * 1024
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def api_client(
    api_url: str = ECFR_API_URL,
    *,
    user_agent: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=api_url,
        transport=transport,
        timeout=TIMEOUT,
        follow_redirects=True,
        headers={"User-Agent": user_agent},
    )


async def get(
    client: httpx.AsyncClient,
    path: str,
    error: type[Exception],
    params: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> bytes:
    body, _ = await download(
        client, path, max_bytes=MAX_XML_BYTES, params=params, error=error, progress=progress
    )
    return body


def parse_json(raw: bytes, what: str, error: type[Exception]) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise error(f"{what}: not JSON: {exc}") from exc


async def latest_part_date(
    client: httpx.AsyncClient, part: str, error: type[Exception], *, title: int = TITLE
) -> str:
    """The last date `part` changed, no later than the date its title is up to date as of."""
    titles = parse_json(await get(client, "titles.json", error), "titles.json", error)
    found = next(
        (t for t in titles.get("titles", []) if isinstance(t, dict) and t.get("number") == title), None
    )
    if found is None:
        raise error(f"titles.json: title {title} is not listed")
    up_to_date = found.get("up_to_date_as_of") or found.get("latest_issue_date")
    if not isinstance(up_to_date, str) or not _DATE.fullmatch(up_to_date):
        raise error(f"titles.json: title {title} has no usable date ({up_to_date!r})")
    path = f"versions/title-{title}.json"
    versions = parse_json(await get(client, path, error, {"part": part}), path, error)
    dates = [
        v["date"]
        for v in versions.get("content_versions", [])
        if isinstance(v, dict) and isinstance(v.get("date"), str) and v["date"] <= up_to_date
    ]
    return max(dates, default=up_to_date)


async def fetch_part_xml(
    client: httpx.AsyncClient,
    date: str,
    part: str,
    error: type[Exception],
    *,
    title: int = TITLE,
    progress: Progress | None = None,
) -> tuple[bytes, str]:
    """The part's XML as of `date`, and the URL it came from."""
    if not _DATE.fullmatch(date):
        raise error(f"date {date!r} is not YYYY-MM-DD")
    path = f"full/{date}/title-{title}.xml"
    xml = await get(client, path, error, {"part": part}, progress)
    return xml, f"{client.base_url}{path}?part={part}"
