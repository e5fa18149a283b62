"""The catalog repository on a real database: SQLite (a temporary file) always, and PostgreSQL too
when EXPORTWATCH_TEST_POSTGRES_URL is set (`make test`). Every change is a new version."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.classifier import catalog
from services.classifier.catalog import CatalogImportError, CatalogProductRow
from services.classifier.domain import canonical_eccn
from shared.db import make_engine, make_sessionmaker
from tests import classifier_support as support

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    url = os.environ.get("EXPORTWATCH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("EXPORTWATCH_TEST_POSTGRES_URL is not set")
    return url


@pytest.fixture
async def session(catalog_db_url: str) -> AsyncIterator[AsyncSession]:
    engine = make_engine(catalog_db_url)
    async with engine.begin() as connection:
        await connection.run_sync(catalog.Base.metadata.create_all)
    try:
        async with make_sessionmaker(engine)() as s:
            yield s
            await s.rollback()
    finally:
        await engine.dispose()


@pytest.fixture
def sku() -> str:
    # The PostgreSQL database outlives a test run: each test writes SKUs of its own.
    return f"TEST-{uuid.uuid4().hex[:10]}"


async def test_each_change_is_a_new_version_and_old_versions_stay(session: AsyncSession, sku: str) -> None:
    first, created = await catalog.put(
        session, sku=sku, eccn="EAR99", classified_by="A. Keller", rationale=None, classified_at=T0
    )
    assert (first.version, created) == (1, True)
    second, created = await catalog.put(
        session,
        sku=sku,
        eccn="6A003.b.4.b",
        classified_by="M. Ortiz",
        rationale="microbolometer",
        classified_at=T0 + timedelta(days=1),
    )
    assert (second.version, created) == (2, True)
    await session.commit()

    assert await catalog.get_current(session, sku) == second
    versions = await catalog.history(session, sku)
    assert [(p.version, p.eccn, p.classified_by) for p in versions] == [
        (1, "EAR99", "A. Keller"),
        (2, "6A003.b.4.b", "M. Ortiz"),
    ]
    assert versions[0].classified_at == T0  # read back as an aware UTC time on SQLite too
    rows = await session.scalars(select(CatalogProductRow).where(CatalogProductRow.sku == sku))
    assert len(list(rows)) == 2


async def test_putting_the_same_classification_again_adds_no_version(session: AsyncSession, sku: str) -> None:
    kwargs = {"sku": sku, "eccn": "2B230", "classified_by": "A. Keller", "rationale": "manometer"}
    await catalog.put(session, **kwargs, classified_at=T0)
    again, created = await catalog.put(session, **kwargs, classified_at=T0 + timedelta(hours=1))
    assert (again.version, again.classified_at, created) == (1, T0, False)


async def test_unknown_sku_has_no_current_version_and_no_history(session: AsyncSession, sku: str) -> None:
    assert await catalog.get_current(session, sku) is None
    assert await catalog.history(session, sku) == []


async def test_csv_import_stores_every_row_and_the_snapshot_shows_current_versions(
    session: AsyncSession, sku: str
) -> None:
    validate = partial(canonical_eccn, support.ccl())
    text = f"sku,eccn,classified_by,rationale\n{sku}-A,5a992.C,A. Keller,switch\n{sku}-B,EAR99,A. Keller,\n"
    result = await catalog.import_csv(session, text, validate_eccn=validate, classified_at=T0)
    assert result.created == [f"{sku}-A", f"{sku}-B"]
    await catalog.put(
        session, sku=f"{sku}-B", eccn="7A994", classified_by="J. Brandt", rationale=None, classified_at=T0
    )
    await session.commit()

    snapshot = await catalog.load_snapshot(session)
    assert snapshot.eccn_by_sku[f"{sku}-A"] == "5A992.c"  # stored in canonical form
    assert (snapshot.products[f"{sku}-B"].version, snapshot.eccn_by_sku[f"{sku}-B"]) == (2, "7A994")
    assert snapshot.version == (await catalog.load_snapshot(session)).version
    again = await catalog.import_csv(session, text, validate_eccn=validate, classified_at=T0)
    assert again.unchanged == [f"{sku}-A"] and again.created == [f"{sku}-B"]  # back to EAR99: a change


async def test_csv_import_with_one_bad_row_stores_nothing_and_names_each_problem(
    session: AsyncSession, sku: str
) -> None:
    text = (
        "sku,eccn,classified_by,rationale\n"
        f"{sku}-A,EAR99,A. Keller,ok\n"
        f"{sku}-B,3A004,A. Keller,missing entry\n"
        f"{sku}-A,EAR99,A. Keller,duplicate\n"
        f"{sku}-C,2B230,,no author\n"
    )
    with pytest.raises(CatalogImportError) as refused:
        await catalog.import_csv(
            session, text, validate_eccn=partial(canonical_eccn, support.ccl()), classified_at=T0
        )
    assert refused.value.errors == [
        "line 3: eccn '3A004' is not a valid ECCN: 3A004 is not on the Commerce Control List "
        f"({support.ccl().version}); other entries (3E001) refer to it but the loaded copy has no entry for it",
        f"line 4: sku '{sku}-A' appears again (first on line 2)",
        f"line 5: classified_by is empty for sku '{sku}-C'",
    ]
    assert await catalog.get_current(session, f"{sku}-A") is None


async def test_csv_without_the_required_columns_is_refused(session: AsyncSession) -> None:
    with pytest.raises(CatalogImportError, match="missing column"):
        await catalog.import_csv(session, "sku,code\nA,EAR99\n", validate_eccn=str, classified_at=T0)
