"""One long-lived pipeline for the whole fault suite: the scenarios run against it in turn."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from deploy.local.stack import REPO_ROOT
from tests.faults.harness import FaultStack
from tests.faults.scenarios import Ledger

REPORT_DIR = REPO_ROOT / "var" / "faults"


def _traversable_tempdir() -> Path:
    # Not under pytest's basetemp: that is 0700 and PostgreSQL runs as the postgres user.
    root = Path(tempfile.mkdtemp(prefix="exportwatch-faults-"))
    root.chmod(0o755)
    return root


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def stack() -> AsyncIterator[FaultStack]:
    root = _traversable_tempdir()
    pipeline = await FaultStack.start(root)
    try:
        yield pipeline
    finally:
        codes = pipeline.stop()
        # The logs of the last run are kept beside its report (var/ is not committed).
        shutil.rmtree(REPORT_DIR / "logs", ignore_errors=True)
        shutil.copytree(root / "logs", REPORT_DIR / "logs")
        print(f"\nfault suite: instances stopped with {codes}; logs in {REPORT_DIR / 'logs'}")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def ledger() -> Iterator[Ledger]:
    """What the scenarios published and measured; written to var/faults/ for docs/reliability.md."""
    book = Ledger()
    yield book
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "last-run.json").write_text(json.dumps(book.report(), indent=2) + "\n")
    (REPORT_DIR / "last-run.md").write_text(book.table() + "\n")
    print(f"\nfault suite report: {REPORT_DIR / 'last-run.md'}\n{book.table()}")
