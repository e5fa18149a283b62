"""The product catalog: the compliance team's ECCN per SKU, versioned, in SQLite or PostgreSQL.

Every change is a new row (`version` n+1 of the SKU); nothing is ever updated or deleted, so the
classification behind any past decision can be read back. A SKU leaves the catalog by a version of
its own (`withdrawn`: the catalog no longer classifies it) and comes back by a new classification. All queries live here; callers own the
session and commit.

CSV (import and export): `sku,eccn,classified_by,rationale,reference_documents`, UTF-8 with a header
row; `reference_documents` lists the documents behind the classification (CCATS numbers, data
sheets, manufacturer statements) separated by " ; ". An export adds `version`, `classified_at`
and `withdrawn` (in the full history), which an import ignores, so an export imports back as it was.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import make_sessionmaker, table_metadata
from shared.migrations import Schema, migrate

CSV_COLUMNS = ("sku", "eccn", "classified_by", "rationale", "reference_documents")
EXPORT_COLUMNS = (*CSV_COLUMNS, "version", "classified_at", "withdrawn")
DOCUMENT_SEPARATOR = " ; "
MAX_SKU_LENGTH = 128
MAX_DOCUMENTS = 50
MAX_DOCUMENT_LENGTH = 512


class Base(DeclarativeBase):
    """The catalog database's one declarative base."""

    metadata = table_metadata()


class CatalogProductRow(Base):
    __tablename__ = "catalog_products"
    # Two writers racing for the same next version: one insert fails instead of both "winning".
    __table_args__ = (UniqueConstraint("sku", "version", name="uq_catalog_products_sku_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(MAX_SKU_LENGTH), index=True)
    version: Mapped[int] = mapped_column(Integer)
    eccn: Mapped[str] = mapped_column(String(40))
    classified_by: Mapped[str] = mapped_column(String(256))
    classified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rationale: Mapped[str | None] = mapped_column(Text)
    # JSON list of strings; NULL in rows written before the column existed.
    reference_documents: Mapped[str | None] = mapped_column(Text)
    # True: this version takes the SKU out of the catalog (NULL in rows written before: not withdrawn).
    withdrawn: Mapped[bool | None] = mapped_column(Boolean)


CATALOG_SCHEMA = Schema(
    name="catalog",
    directory=Path(__file__).parent / "migrations",
    metadata=lambda: Base.metadata,
    marker_table=CatalogProductRow.__tablename__,
    baseline="0001",
    lock_key=0x6578_7077_6361_0001,
)


@dataclass(frozen=True, slots=True)
class CatalogProduct:
    sku: str
    version: int
    eccn: str
    classified_by: str
    classified_at: datetime
    rationale: str | None
    reference_documents: tuple[str, ...] = ()
    # This version withdrew the SKU: the catalog does not classify it (its eccn is the last one it had).
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """The current version of every SKU, as the handler reads it; `version` names its content."""

    products: Mapping[str, CatalogProduct]
    eccn_by_sku: Mapping[str, str]
    version: str


class CatalogConflict(Exception):
    """Another writer stored a version of the same SKU at the same time; retry the request."""


class CatalogImportError(ValueError):
    """The CSV was refused as a whole; `errors` name the line, the column and the value."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: list[str]
    unchanged: list[str]
    # The versions the import stored (one per SKU of `created`).
    stored: list[CatalogProduct] = field(default_factory=list)


# Returns the canonical ECCN or raises ValueError naming the value (the caller knows the CCL).
EccnValidator = Callable[[str], str]


def _product(row: CatalogProductRow) -> CatalogProduct:
    classified_at = row.classified_at
    if classified_at.tzinfo is None:  # SQLite keeps no zone; everything is stored in UTC
        classified_at = classified_at.replace(tzinfo=UTC)
    documents = tuple(json.loads(row.reference_documents)) if row.reference_documents else ()
    return CatalogProduct(
        sku=row.sku,
        version=row.version,
        eccn=row.eccn,
        classified_by=row.classified_by,
        classified_at=classified_at,
        rationale=row.rationale,
        reference_documents=documents,
        withdrawn=bool(row.withdrawn),
    )


def split_documents(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(DOCUMENT_SEPARATOR.strip()) if part.strip())


def check_documents(documents: Sequence[str]) -> str | None:
    """Why a list of reference documents is refused, or None."""
    if len(documents) > MAX_DOCUMENTS:
        return f"{len(documents)} reference documents; at most {MAX_DOCUMENTS}"
    for document in documents:
        if not document.strip() or len(document) > MAX_DOCUMENT_LENGTH:
            return f"reference document {document!r} must be 1-{MAX_DOCUMENT_LENGTH} characters"
    return None


async def get_current(session: AsyncSession, sku: str) -> CatalogProduct | None:
    row = await session.scalar(
        select(CatalogProductRow)
        .where(CatalogProductRow.sku == sku)
        .order_by(CatalogProductRow.version.desc())
        .limit(1)
    )
    return _product(row) if row is not None else None


async def history(session: AsyncSession, sku: str) -> list[CatalogProduct]:
    rows = await session.scalars(
        select(CatalogProductRow).where(CatalogProductRow.sku == sku).order_by(CatalogProductRow.version)
    )
    return [_product(row) for row in rows]


async def put(
    session: AsyncSession,
    *,
    sku: str,
    eccn: str,
    classified_by: str,
    rationale: str | None,
    classified_at: datetime,
    reference_documents: Sequence[str] = (),
) -> tuple[CatalogProduct, bool]:
    """Store a new version of `sku` unless the current one says the same; (product, created)."""
    documents = tuple(reference_documents)
    current = await get_current(session, sku)
    if (
        current is not None
        and not current.withdrawn
        and (
            current.eccn,
            current.classified_by,
            current.rationale,
            current.reference_documents,
        )
        == (eccn, classified_by, rationale, documents)
    ):
        return current, False
    row = CatalogProductRow(
        sku=sku,
        version=(current.version if current else 0) + 1,
        eccn=eccn,
        classified_by=classified_by,
        classified_at=classified_at.astimezone(UTC),
        rationale=rationale,
        reference_documents=json.dumps(list(documents)) if documents else None,
    )
    return await _add(session, row), True


async def withdraw(
    session: AsyncSession, *, sku: str, withdrawn_by: str, reason: str | None, withdrawn_at: datetime
) -> tuple[CatalogProduct, bool] | None:
    """Take `sku` out of the catalog by a new version; (that version, created), or None if the
    catalog never had the SKU. A SKU already withdrawn stays as it is."""
    current = await get_current(session, sku)
    if current is None:
        return None
    if current.withdrawn:
        return current, False
    row = CatalogProductRow(
        sku=sku,
        version=current.version + 1,
        eccn=current.eccn,
        classified_by=withdrawn_by,
        classified_at=withdrawn_at.astimezone(UTC),
        rationale=reason,
        reference_documents=None,
        withdrawn=True,
    )
    return await _add(session, row), True


async def _add(session: AsyncSession, row: CatalogProductRow) -> CatalogProduct:
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise CatalogConflict(
            f"SKU {row.sku!r}: version {row.version} was written concurrently; retry"
        ) from exc
    return _product(row)


async def import_csv(
    session: AsyncSession, text: str, *, validate_eccn: EccnValidator, classified_at: datetime
) -> ImportResult:
    """Import `sku,eccn,classified_by,rationale[,reference_documents]` rows: all of them or, on any
    bad row, none."""
    # newline="": the csv module reads the line ends itself (a bare CR is one, not field content).
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return await _import_rows(session, reader, validate_eccn=validate_eccn, classified_at=classified_at)
    except csv.Error as exc:  # not CSV at all (a field over the csv module's limit, ...): a 422, not a 500
        # line_num counts the lines read whole; the one that failed is the next.
        raise CatalogImportError([f"line {reader.line_num + 1}: not readable as CSV: {exc}"]) from exc


async def _import_rows(
    session: AsyncSession,
    reader: csv.DictReader[str],
    *,
    validate_eccn: EccnValidator,
    classified_at: datetime,
) -> ImportResult:
    missing = [c for c in CSV_COLUMNS[:3] if c not in (reader.fieldnames or [])]
    if missing:
        raise CatalogImportError(
            [f"header: missing column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}"]
        )
    rows: list[tuple[str, str, str, str | None, tuple[str, ...]]] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        sku = (record.get("sku") or "").strip()
        classified_by = (record.get("classified_by") or "").strip()
        rationale = (record.get("rationale") or "").strip() or None
        if not sku or len(sku) > MAX_SKU_LENGTH:
            errors.append(f"line {line}: sku {sku!r} must be 1-{MAX_SKU_LENGTH} characters")
            continue
        if sku in first_line:
            errors.append(f"line {line}: sku {sku!r} appears again (first on line {first_line[sku]})")
            continue
        first_line[sku] = line
        if not classified_by:
            errors.append(f"line {line}: classified_by is empty for sku {sku!r}")
        documents = split_documents(record.get("reference_documents") or "")
        if problem := check_documents(documents):
            errors.append(f"line {line}: reference_documents for sku {sku!r}: {problem}")
        try:
            eccn = validate_eccn((record.get("eccn") or "").strip())
        except ValueError as exc:
            errors.append(f"line {line}: eccn {exc}")
            continue
        rows.append((sku, eccn, classified_by, rationale, documents))
    if errors:
        raise CatalogImportError(errors)
    created: list[str] = []
    unchanged: list[str] = []
    stored: list[CatalogProduct] = []
    for sku, eccn, classified_by, rationale, documents in rows:
        product, is_new = await put(
            session,
            sku=sku,
            eccn=eccn,
            classified_by=classified_by,
            rationale=rationale,
            classified_at=classified_at,
            reference_documents=documents,
        )
        (created if is_new else unchanged).append(sku)
        if is_new:
            stored.append(product)
    return ImportResult(created=created, unchanged=unchanged, stored=stored)


async def all_versions(session: AsyncSession) -> list[CatalogProduct]:
    rows = await session.scalars(select(CatalogProductRow))
    return sorted((_product(row) for row in rows), key=lambda p: (p.sku, p.version))


def products_csv(products: Sequence[CatalogProduct]) -> str:
    """The CSV an import reads back (plus version and classified_at), one row per product version."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for p in products:
        writer.writerow(
            [
                p.sku,
                p.eccn,
                p.classified_by,
                p.rationale or "",
                DOCUMENT_SEPARATOR.join(p.reference_documents),
                p.version,
                p.classified_at.astimezone(UTC).isoformat(),
                "true" if p.withdrawn else "",
            ]
        )
    return out.getvalue()


async def load_current(session: AsyncSession) -> dict[str, CatalogProduct]:
    """The current version of every SKU."""
    latest = (
        select(CatalogProductRow.sku, func.max(CatalogProductRow.version).label("version"))
        .group_by(CatalogProductRow.sku)
        .subquery()
    )
    rows = await session.scalars(
        select(CatalogProductRow).join(
            latest, (CatalogProductRow.sku == latest.c.sku) & (CatalogProductRow.version == latest.c.version)
        )
    )
    return {row.sku: _product(row) for row in rows}


def snapshot_of(current: Mapping[str, CatalogProduct]) -> CatalogSnapshot:
    # Sorted here, not in SQL: PostgreSQL collations order punctuation differently from SQLite.
    products = {sku: current[sku] for sku in sorted(current) if not current[sku].withdrawn}
    digest = hashlib.sha256()
    for sku, product in products.items():
        digest.update(f"{sku}\t{product.version}\t{product.eccn}\n".encode())
    return CatalogSnapshot(
        products=products,
        eccn_by_sku={sku: product.eccn for sku, product in products.items()},
        version=f"{len(products)}-skus+sha256:{digest.hexdigest()[:12]}",
    )


async def load_snapshot(session: AsyncSession) -> CatalogSnapshot:
    return snapshot_of(await load_current(session))


# Told of every version this instance stored (feed.py publishes them to the other instances).
Announce = Callable[[Sequence[CatalogProduct]], Awaitable[None]]


async def _nobody(products: Sequence[CatalogProduct]) -> None:
    return None


class CatalogStore:
    """The catalog as the service uses it: sessions and commits in one place, and the in-memory
    current version of every SKU that the handler classifies with (`snapshot`).

    The database is authoritative: every version is stored there first, and it alone holds the
    history. The in-memory state starts from the database and then follows the changes of every
    instance (`apply`, fed by catalog.products.v1 through feed.py); this instance's own writes are
    applied at once and handed to `announce`, which publishes them to the others.
    """

    def __init__(self, engine: AsyncEngine, *, announce: Announce = _nobody) -> None:
        self._engine = engine
        self._sessions = make_sessionmaker(engine)
        self._write_lock = asyncio.Lock()
        self._announce = announce
        self._current: dict[str, CatalogProduct] = {}
        self._snapshot: CatalogSnapshot | None = CatalogSnapshot(
            products={}, eccn_by_sku={}, version="not loaded"
        )

    async def open(self) -> None:
        await migrate(self._engine, CATALOG_SCHEMA)
        async with self._sessions() as session:
            self._current = await load_current(session)
        self._snapshot = None

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def snapshot(self) -> CatalogSnapshot:
        # Built when first read after a change, not per change: following the topic from the
        # beginning applies every SKU once, and a rebuild per SKU would cost n² there.
        if self._snapshot is None:
            self._snapshot = snapshot_of(self._current)
        return self._snapshot

    def current(self, sku: str) -> CatalogProduct | None:
        """The SKU's newest version, a withdrawal included."""
        return self._current.get(sku)

    def apply(self, product: CatalogProduct) -> bool:
        """Take a version another instance (or this one) stored, unless a newer one is held; True if
        the current state changed. Versions of a SKU are numbered by the one catalog database, so the
        higher one is the later; at an equal number the record read last wins (the topic orders
        the records of one SKU alike for every instance)."""
        held = self._current.get(product.sku)
        if held == product or (held is not None and held.version > product.version):
            return False
        self._current[product.sku] = product
        self._snapshot = None
        return True

    async def get_current(self, sku: str) -> CatalogProduct | None:
        """The SKU's newest version in the database (this instance's `current` follows every instance)."""
        async with self._sessions() as session:
            return await get_current(session, sku)

    async def history(self, sku: str) -> list[CatalogProduct]:
        async with self._sessions() as session:
            return await history(session, sku)

    async def all_versions(self) -> list[CatalogProduct]:
        async with self._sessions() as session:
            return await all_versions(session)

    async def put(
        self,
        *,
        sku: str,
        eccn: str,
        classified_by: str,
        rationale: str | None,
        classified_at: datetime,
        reference_documents: Sequence[str] = (),
    ) -> tuple[CatalogProduct, bool]:
        async with self._write_lock, self._sessions() as session:
            product, created = await put(
                session,
                sku=sku,
                eccn=eccn,
                classified_by=classified_by,
                rationale=rationale,
                classified_at=classified_at,
                reference_documents=reference_documents,
            )
            await session.commit()
        if created:
            await self._stored([product])
        return product, created

    async def withdraw(
        self, *, sku: str, withdrawn_by: str, reason: str | None, withdrawn_at: datetime
    ) -> tuple[CatalogProduct, bool] | None:
        async with self._write_lock, self._sessions() as session:
            outcome = await withdraw(
                session, sku=sku, withdrawn_by=withdrawn_by, reason=reason, withdrawn_at=withdrawn_at
            )
            await session.commit()
        if outcome is not None and outcome[1]:
            await self._stored([outcome[0]])
        return outcome

    async def import_csv(
        self, text: str, *, validate_eccn: EccnValidator, classified_at: datetime
    ) -> ImportResult:
        async with self._write_lock, self._sessions() as session:
            result = await import_csv(session, text, validate_eccn=validate_eccn, classified_at=classified_at)
            await session.commit()
        if result.stored:
            await self._stored(result.stored)
        return result

    async def _stored(self, products: Sequence[CatalogProduct]) -> None:
        for product in products:
            self.apply(product)
        await self._announce(products)
