"""Screening test support: the real lists loaded once per session, and a stand-in publisher.

The publishers' hosts are not reachable from tests; `PublisherMirror` serves list files from a
temporary folder on 127.0.0.1 under the official URL paths (`/ofac/downloads/sdn.csv`,
`/resources/xml/en/consolidated.xml`, ...), so `lists update` runs its real HTTP code against it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from services.screening.app import policy_screener
from services.screening.domain import ListCatalog, Screener
from services.screening.registry import ListSnapshot, load_initial
from services.screening.update import PUBLISHED_FILES
from shared.settings import Settings


@functools.cache
def loaded_lists() -> ListSnapshot:
    """Every configured list, loaded and indexed once per test session (seconds of CPU)."""
    snapshot, _ = load_initial(Settings(), now=datetime.now(UTC))
    return snapshot


def loaded_screening() -> tuple[ListCatalog, Screener]:
    snapshot = loaded_lists()
    return snapshot.catalog, policy_screener(snapshot)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class PublisherMirror:
    """A directory served over HTTP in the publishers' URL layout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_Quiet, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="publisher-mirror", daemon=True)

    def path_of(self, kind: str, name: str) -> Path:
        published = next(f for f in PUBLISHED_FILES[kind] if f.name == name)
        return self.root / urlsplit(published.urls[0]).path.lstrip("/")

    def publish(self, kind: str, name: str, data: bytes) -> None:
        path = self.path_of(kind, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def publish_copy(self, kind: str, source: Path) -> None:
        for published in PUBLISHED_FILES[kind]:
            if (source / published.name).is_file():
                self.publish(kind, published.name, (source / published.name).read_bytes())

    def withdraw(self, kind: str, name: str) -> None:
        self.path_of(kind, name).unlink(missing_ok=True)


@contextmanager
def publisher_mirror(root: Path) -> Iterator[PublisherMirror]:
    mirror = PublisherMirror(root)
    mirror.thread.start()
    try:
        yield mirror
    finally:
        mirror.server.shutdown()
        mirror.server.server_close()
        mirror.thread.join(timeout=10)
