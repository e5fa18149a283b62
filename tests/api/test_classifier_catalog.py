"""The catalog repository on a real database: SQLite (a temporary file) and PostgreSQL (the
`postgres_url` fixture; those cases are `integration` tests). Every change is a new version."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.classifier import catalog
from services.classifier.catalog import CatalogImportError, CatalogProductRow, CatalogStore
from services.classifier.domain import canonical_eccn
from shared.db import make_engine, make_sessionmaker
from tests import classifier_support as support
from tests.records_support import DATABASES

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(params=DATABASES)
def catalog_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    url: str = request.getfixturevalue("postgres_url")
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


async def test_csv_import_reads_carriage_returns_as_line_ends_and_refuses_what_is_not_csv(
    session: AsyncSession, sku: str
) -> None:
    # Found by the API fuzzer: "\r0" was a 500 (csv.Error: new-line character seen in unquoted field).
    validate = partial(canonical_eccn, support.ccl())
    old_mac = f"sku,eccn,classified_by,rationale\r{sku}-CR,EAR99,A. Keller,old line ends\r"
    result = await catalog.import_csv(session, old_mac, validate_eccn=validate, classified_at=T0)
    assert result.created == [f"{sku}-CR"]
    with pytest.raises(CatalogImportError, match="header: missing column"):
        await catalog.import_csv(session, "\r0", validate_eccn=validate, classified_at=T0)
    huge = f"sku,eccn,classified_by,rationale\n{sku}-H,EAR99,A. Keller,{'x' * 200_000}\n"
    with pytest.raises(
        CatalogImportError, match=r"line 2: not readable as CSV: field larger than field limit"
    ):
        await catalog.import_csv(session, huge, validate_eccn=validate, classified_at=T0)


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


async def test_reference_documents_are_a_part_of_the_version(session: AsyncSession, sku: str) -> None:
    first, _ = await catalog.put(
        session, sku=sku, eccn="5A002.a", classified_by="M. Ortiz", rationale=None, classified_at=T0,
        reference_documents=["CCATS G178812"],
    )  # fmt: skip
    again, created = await catalog.put(
        session, sku=sku, eccn="5A002.a", classified_by="M. Ortiz", rationale=None, classified_at=T0,
        reference_documents=["CCATS G178812"],
    )  # fmt: skip
    assert (again, created) == (first, False)
    second, created = await catalog.put(
        session, sku=sku, eccn="5A002.a", classified_by="M. Ortiz", rationale=None, classified_at=T0,
        reference_documents=["CCATS G178812", "ENC annual self-classification report 2026"],
    )  # fmt: skip
    assert (second.version, created) == (2, True)
    assert [p.reference_documents for p in await catalog.history(session, sku)] == [
        ("CCATS G178812",),
        ("CCATS G178812", "ENC annual self-classification report 2026"),
    ]


async def test_csv_round_trip_keeps_documents_and_refuses_bad_ones(session: AsyncSession, sku: str) -> None:
    validate = partial(canonical_eccn, support.ccl())
    text = (
        "sku,eccn,classified_by,rationale,reference_documents\n"
        f'{sku}-A,3A001.a.7,J. Brandt,"FPGA, >700 I/O",CCATS G1 ; Data sheet DS890\n'
    )
    await catalog.import_csv(session, text, validate_eccn=validate, classified_at=T0)
    [product] = [p for p in await catalog.all_versions(session) if p.sku == f"{sku}-A"]
    assert product.reference_documents == ("CCATS G1", "Data sheet DS890")
    exported = catalog.products_csv([product])
    again = await catalog.import_csv(session, exported, validate_eccn=validate, classified_at=T0)
    assert again.unchanged == [f"{sku}-A"]  # the export reads back as the same version

    too_long = f"sku,eccn,classified_by,reference_documents\n{sku}-B,EAR99,A. Keller,{'x' * 600}\n"
    with pytest.raises(CatalogImportError, match=rf"line 2: reference_documents for sku '{sku}-B'"):
        await catalog.import_csv(session, too_long, validate_eccn=validate, classified_at=T0)


async def test_a_catalog_table_from_before_reference_documents_is_upgraded_in_place(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TABLE catalog_products (id INTEGER PRIMARY KEY, sku VARCHAR(128), version INTEGER, "
                "eccn VARCHAR(40), classified_by VARCHAR(256), classified_at DATETIME, rationale TEXT)"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO catalog_products (sku, version, eccn, classified_by, classified_at) "
                "VALUES ('OLD-1', 1, 'EAR99', 'A. Keller', '2026-01-02 03:04:05')"
            )
        )
    store = CatalogStore(engine)
    await store.open()
    try:
        old = await store.get_current("OLD-1")
        assert old is not None and (old.eccn, old.reference_documents) == ("EAR99", ())
        new, created = await store.put(
            sku="OLD-1", eccn="EAR99", classified_by="A. Keller", rationale=None, classified_at=T0,
            reference_documents=["Packing list"],
        )  # fmt: skip
        assert (new.version, created) == (2, True)
    finally:
        await store.close()
