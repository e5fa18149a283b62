"""`lists update`: fetch each list from its publisher, keep it in a local cache, verify it.

    python -m services.screening.update [--source KIND ...] [--cache-dir var/lists] [--base-url URL]
    python -m services.screening.update --service http://127.0.0.1:8002   # ask the running service

Each kind's official files are downloaded into `<cache>/<kind>/<UTC timestamp>.partial/`, with a
`manifest.json` (URLs, sizes, sha256, the publisher's Last-Modified). The copy is then loaded with
the kind's own loader; it is kept (renamed to `<timestamp>/`, manifest marked verified) only if it
parses, skips few rows and is not drastically smaller than the list it would replace. Otherwise it is
renamed `<timestamp>.rejected/` for inspection and the list in use stays as it is.

The running service does the same on `POST /lists/update` (and every
`EXPORTWATCH_SCREENING_REFRESH_INTERVAL_S`), then swaps its index and publishes `lists.updated.v1`;
at start-up it loads a verified cached copy when that is newer than the configured folder. Without
`--service` this command only fetches and verifies: the next service start (or update) uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import hashlib
import json
import logging
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from services.screening.lists import (
    MANIFEST,
    ListFormatError,
    LoadedSource,
    folder_date,
    load_source,
    parse_sources,
)
from shared.http import Progress, download
from shared.settings import Settings, load_settings

log = logging.getLogger("exportwatch.screening.update")


@dataclass(frozen=True)
class PublishedFile:
    name: str  # the file name the loader reads
    urls: tuple[str, ...]  # the official URL first; then the publisher's own alternates
    required: bool = True


_OFAC = "https://www.treasury.gov/ofac/downloads"
# The publishers' official download locations. OFAC's legacy files now redirect to its Sanctions List
# Service (sanctionslistservice.ofac.treas.gov); redirects are followed. BIS moved its site to bis.gov
# in 2025, so the DPL is tried at its long-standing address, then at the new media host.
PUBLISHED_FILES: dict[str, tuple[PublishedFile, ...]] = {
    "ofac_sdn": (
        PublishedFile("sdn.csv", (f"{_OFAC}/sdn.csv",)),
        PublishedFile("alt.csv", (f"{_OFAC}/alt.csv",)),
        PublishedFile("add.csv", (f"{_OFAC}/add.csv",)),
        PublishedFile("sdn_comments.csv", (f"{_OFAC}/sdn_comments.csv",), required=False),
    ),
    "ofac_non_sdn": (
        PublishedFile("cons_prim.csv", (f"{_OFAC}/consolidated/cons_prim.csv",)),
        PublishedFile("cons_alt.csv", (f"{_OFAC}/consolidated/cons_alt.csv",)),
        PublishedFile("cons_add.csv", (f"{_OFAC}/consolidated/cons_add.csv",)),
        PublishedFile("cons_comments.csv", (f"{_OFAC}/consolidated/cons_comments.csv",), required=False),
    ),
    "csl": (
        PublishedFile(
            "consolidated.csv",
            ("https://data.trade.gov/downloadable_consolidated_screening_list/v1/consolidated.csv",),
        ),
    ),
    "bis_dpl": (
        PublishedFile(
            "dpl.txt", ("https://www.bis.doc.gov/dpl/dpl.txt", "https://media.bis.gov/dpl/dpl.txt")
        ),
    ),
    "un_sc": (
        PublishedFile("consolidated.xml", ("https://scsanctions.un.org/resources/xml/en/consolidated.xml",)),
    ),
    "uk_ofsi": (
        PublishedFile(
            "ConList.csv", ("https://ofsistorage.blob.core.windows.net/publishlive/2022format/ConList.csv",)
        ),
    ),
}
# Far above any list's size (the largest, the CSL, is ~20 MB): a runaway response is cut off.
MAX_FILE_BYTES = 256 * 1024 * 1024
# A source whose load skips more than this share of its rows has changed format: refused.
MAX_SKIPPED_SHARE = 0.05
# Verified copies kept per kind (older ones are deleted; rejected ones are kept for inspection).
KEEP_VERIFIED = 5
USER_AGENT = "exportwatch-lists-update/0.1 (+restricted-party screening)"


class UpdateError(Exception):
    """A list could not be fetched or its new copy was refused; the list in use stays."""


def mirrored(url: str, base_url: str | None) -> str:
    """The official URL, or the same path on a mirror (tests serve files from 127.0.0.1)."""
    if base_url is None:
        return url
    parts = urlsplit(url)
    return f"{base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def make_client(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(
            settings.screening_update_timeout_s, connect=min(10.0, settings.screening_update_timeout_s)
        ),
        follow_redirects=True,
        headers={"User-Agent": USER_AGENT},
    )


def _last_modified(headers: httpx.Headers) -> str | None:
    value = headers.get("last-modified")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).astimezone(UTC).date().isoformat()
    except (TypeError, ValueError):
        return None


async def fetch_source(
    kind: str,
    *,
    client: httpx.AsyncClient,
    cache_dir: Path,
    base_url: str | None,
    now: datetime,
    progress: Callable[[str], Progress] | None = None,
) -> Path:
    """Download a kind's files into `<cache>/<kind>/<stamp>.partial/` with a manifest; returns it.
    `progress(file name)`, if given, makes the callback each file's download reports to."""
    folder = cache_dir / kind / (now.strftime("%Y%m%dT%H%M%S%fZ") + ".partial")
    files: dict[str, dict[str, Any]] = {}
    blobs: dict[str, bytes] = {}
    published: str | None = None
    for published_file in PUBLISHED_FILES[kind]:
        errors: list[str] = []
        for official in published_file.urls:
            url = mirrored(official, base_url)
            try:
                body, headers = await download(
                    client,
                    url,
                    max_bytes=MAX_FILE_BYTES,
                    error=UpdateError,
                    progress=progress(published_file.name) if progress is not None else None,
                )
            except UpdateError as exc:
                errors.append(str(exc))
                continue
            blobs[published_file.name] = body
            files[published_file.name] = {
                "url": url,
                "bytes": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "last_modified": headers.get("last-modified"),
                "etag": headers.get("etag"),
            }
            published = published or _last_modified(headers)
            break
        else:
            if published_file.required:
                raise UpdateError(f"{kind}: cannot fetch {published_file.name}: {'; '.join(errors)}")
            log.info("%s: optional %s not fetched: %s", kind, published_file.name, "; ".join(errors))
    manifest = {
        "kind": kind,
        "fetched_at": now.isoformat(),
        # The publisher's Last-Modified of the first file; formats that state their own date (UN, OFSI)
        # override it when loaded.
        "published": published or now.date().isoformat(),
        "published_from": "last-modified" if published else "fetch date",
        "files": files,
        "verified": False,
    }
    await asyncio.to_thread(_write_folder, folder, blobs, manifest)
    return folder


def _write_folder(folder: Path, blobs: dict[str, bytes], manifest: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=False)
    for name, body in blobs.items():
        (folder / name).write_bytes(body)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def verify_source(kind: str, folder: Path, current: LoadedSource | None, *, min_ratio: float) -> LoadedSource:
    """Load a fetched copy and refuse it if it is broken or truncated (raises UpdateError)."""
    try:
        loaded = load_source(kind, folder)
    except ListFormatError as exc:
        raise UpdateError(f"{kind}: the fetched copy does not parse: {exc}") from exc
    info = loaded.info
    entries = len(loaded.entries)
    if entries == 0:
        raise UpdateError(f"{kind}: the fetched copy has no entries")
    if info.rows_read and info.rows_skipped / info.rows_read > MAX_SKIPPED_SHARE:
        raise UpdateError(
            f"{kind}: the fetched copy skips {info.rows_skipped} of {info.rows_read} rows "
            f"(over {MAX_SKIPPED_SHARE:.0%}; first: {info.skipped_examples[:3]}); the format may have changed"
        )
    if current is not None and entries < min_ratio * len(current.entries):
        raise UpdateError(
            f"{kind}: the fetched copy has {entries} entries, under {min_ratio:.0%} of the {len(current.entries)} "
            "in use; refused as truncated"
        )
    return loaded


def accept(folder: Path, loaded: LoadedSource) -> Path:
    """Mark a verified copy: rename `<stamp>.partial` to `<stamp>`, record what was loaded."""
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest.update(
        verified=True,
        version=loaded.info.version,
        published=loaded.info.published,
        entries=len(loaded.entries),
        rows_skipped=loaded.info.rows_skipped,
    )
    manifest_path.write_text(json.dumps(manifest, indent=2))
    final = folder.with_name(folder.name.removesuffix(".partial"))
    folder.rename(final)
    _prune(final.parent)
    return final


def reject(folder: Path, why: str) -> None:
    """Keep a refused copy for inspection, out of the way of start-up."""
    if not folder.exists():
        return
    manifest_path = folder / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        manifest["rejected"] = why
        manifest_path.write_text(json.dumps(manifest, indent=2))
    folder.rename(folder.with_name(folder.name.removesuffix(".partial") + ".rejected"))


def discard(folder: Path) -> None:
    """An unchanged copy adds nothing: removed."""
    shutil.rmtree(folder, ignore_errors=True)


async def fetch_verified(
    kind: str,
    *,
    client: httpx.AsyncClient,
    settings: Settings,
    current: LoadedSource | None,
    now: datetime,
) -> tuple[Path | None, LoadedSource]:
    """A copy of `kind` fetched from its publisher, verified against `current`, and where it is kept;
    None for where when it is the version in use (the copy is then discarded). A copy that fails is
    kept as `.rejected` and the error (UpdateError, ListFormatError, OSError) raised to the caller."""
    folder: Path | None = None
    try:
        folder = await fetch_source(
            kind,
            client=client,
            cache_dir=settings.screening_cache_dir,
            base_url=settings.screening_update_base_url,
            now=now,
        )
        loaded = await asyncio.to_thread(
            verify_source, kind, folder, current, min_ratio=settings.screening_update_min_ratio
        )
    except (UpdateError, ListFormatError, OSError) as exc:
        if folder is not None:
            await asyncio.to_thread(reject, folder, str(exc))
        raise
    if current is not None and loaded.info.version == current.info.version:
        await asyncio.to_thread(discard, folder)
        return None, loaded
    return folder, loaded


def _prune(kind_dir: Path) -> None:
    verified = sorted(p for p in kind_dir.iterdir() if p.is_dir() and "." not in p.name)
    for old in verified[:-KEEP_VERIFIED]:
        shutil.rmtree(old, ignore_errors=True)


def newest_verified(cache_dir: Path, kind: str) -> tuple[Path, str | None] | None:
    """The newest verified cached copy of a kind and its publication date, if any."""
    kind_dir = cache_dir / kind
    if not kind_dir.is_dir():
        return None
    for folder in sorted((p for p in kind_dir.iterdir() if p.is_dir() and "." not in p.name), reverse=True):
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        if manifest.get("verified") is True:
            published = manifest.get("published")
            return folder, published if isinstance(published, str) else None
    return None


def effective_folder(settings: Settings, kind: str, configured: Path) -> Path:
    """The folder to load a kind from: a verified cached copy when it is at least as new as the
    configured folder (named by date), else the configured folder."""
    cached = newest_verified(settings.screening_cache_dir, kind)
    if cached is None:
        return configured
    folder, published = cached
    configured_date = folder_date(configured)
    if configured_date is None or (published is not None and published >= configured_date):
        log.info(
            "%s: loading the cached copy %s (published %s) instead of %s", kind, folder, published, configured
        )
        return folder
    return configured


# --- command line --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchReport:
    kind: str
    outcome: str  # verified | unchanged | failed
    folder: str | None
    version: str | None
    published: str | None
    entries: int | None
    error: str | None


async def fetch_and_verify(
    settings: Settings, kinds: Sequence[str], transport: httpx.AsyncBaseTransport | None = None
) -> list[FetchReport]:
    specs = {s.kind: s for s in parse_sources(settings.screening_sources)}
    reports: list[FetchReport] = []
    async with make_client(settings, transport) as client:
        for kind in kinds:
            spec = specs.get(kind)
            current = None
            if spec is not None:
                folder = effective_folder(settings, kind, settings.require_data_dir() / spec.folder)
                try:
                    current = await asyncio.to_thread(load_source, kind, folder)
                except ListFormatError as exc:
                    log.warning("%s: the list in use does not load (%s); no size check against it", kind, exc)
            try:
                fetched, loaded = await fetch_verified(
                    kind, client=client, settings=settings, current=current, now=datetime.now(UTC)
                )
            except UpdateError as exc:
                reports.append(FetchReport(kind, "failed", None, None, None, None, str(exc)))
                continue
            if fetched is None:
                assert current is not None  # only a copy of the version in use is not kept
                reports.append(
                    FetchReport(
                        kind,
                        "unchanged",
                        current.info.folder,
                        loaded.info.version,
                        loaded.info.published,
                        len(loaded.entries),
                        None,
                    )
                )
                continue
            final = accept(fetched, loaded)
            reports.append(
                FetchReport(
                    kind,
                    "verified",
                    str(final),
                    loaded.info.version,
                    loaded.info.published,
                    len(loaded.entries),
                    None,
                )
            )
    return reports


def _print_table(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items() if v is not None))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.screening.update", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--source", action="append", help="a kind to update (default: every configured kind)")
    parser.add_argument("--cache-dir", type=Path, help="where fetched lists are kept (default: setting)")
    parser.add_argument("--base-url", help="fetch from this mirror instead of the publishers' hosts")
    parser.add_argument(
        "--service", help="ask the running screening service to update (POST <url>/lists/update)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides: dict[str, object] = {}
    if args.cache_dir is not None:
        overrides["screening_cache_dir"] = args.cache_dir
    if args.base_url is not None:
        overrides["screening_update_base_url"] = args.base_url
    settings = load_settings("screening", **overrides)
    configured = [s.kind for s in parse_sources(settings.screening_sources)]
    kinds = args.source or configured
    unknown = sorted(set(kinds) - set(PUBLISHED_FILES))
    if unknown:
        parser.error(f"--source {unknown[0]!r}: use one of {sorted(PUBLISHED_FILES)}")
    if args.service:
        return _ask_service(args.service, kinds if args.source else None, settings)
    reports = asyncio.run(fetch_and_verify(settings, kinds))
    _print_table([r.__dict__ for r in reports])
    return 1 if any(r.outcome == "failed" for r in reports) else 0


def _ask_service(url: str, kinds: list[str] | None, settings: Settings) -> int:
    body: dict[str, Any] = {"sources": kinds} if kinds else {}
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/lists/update", json=body, timeout=settings.screening_update_timeout_s * 10
        )
    except httpx.HTTPError as exc:
        print(f"cannot reach the screening service at {url}: {exc}", file=sys.stderr)
        return 2
    if response.status_code != 200:
        print(f"{url}/lists/update: HTTP {response.status_code}: {response.text}", file=sys.stderr)
        return 2
    outcomes = response.json()["outcomes"]
    _print_table(outcomes)
    return 1 if any(o["outcome"] == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
