"""The licence ledger: licences the company holds, and each order line's draw-down against them,
in risk's own database (SQLite by default, PostgreSQL in production and tests).

Exactly once per order line: `licence_drawdowns` has one row per (order, order version, line), a
unique constraint (`uq_licence_drawdowns_order_id_order_version_line_no`), inserted with ON CONFLICT
DO NOTHING before any licence is charged; a transaction that finds the row taken rolls back and
reads the winner's row. A redelivered or replayed order finds its rows and reuses them verbatim,
covered or not, so it gets the same decision (docs/architecture.md, "The licence ledger").

Never over a limit: the licences an order may draw from are locked for the transaction (SELECT ...
FOR UPDATE on PostgreSQL; on SQLite every transaction begins IMMEDIATE, so writers are serialised),
the remaining value and quantity are checked under that lock, and CHECK constraints
(`ck_licences_value_within_limit`, `ck_licences_quantity_within_limit`) refuse an overdraw even if
the code were wrong. Expired, not yet valid or exhausted licences never cover.

Reversal: when a newer version of the order (an amendment: later `occurred_at`, then event id)
arrives, or a version is BLOCKed, the active draw-downs of that and older versions are reversed and
their value and quantity given back; the rows stay, with when and why.

Money is stored in micro-units (integers: the contract's decimals have at most 6 places), so both
databases compare limits exactly. Constraint names follow `shared.db.NAMING_CONVENTION` so a
migration can refer to them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.risk.domain import Coverage, LicenceNeed
from services.risk.parties import party_key
from shared.db import UtcDateTime, make_engine, table_metadata
from shared.events import SubmittedOrder
from shared.migrations import Schema, migrate

log = logging.getLogger("exportwatch.risk")

MICROS = Decimal(1_000_000)
# PostgreSQL: deadlock detected, serialization failure; both mean "try the transaction again".
_RETRY_SQLSTATES = {"40P01", "40001"}
_ATTEMPTS = 8


def to_micros(value: Decimal) -> int:
    return int((value * MICROS).to_integral_value())


def from_micros(value: int | None) -> Decimal | None:
    return None if value is None else (Decimal(value) / MICROS).normalize()


class Base(DeclarativeBase):
    """Risk's database: one declarative base."""

    metadata = table_metadata()


class Licence(Base):
    __tablename__ = "licences"
    __table_args__ = (
        CheckConstraint(
            "value_limit_micros IS NULL OR value_used_micros <= value_limit_micros", name="value_within_limit"
        ),
        CheckConstraint(
            "quantity_limit IS NULL OR quantity_used <= quantity_limit", name="quantity_within_limit"
        ),
        CheckConstraint("value_used_micros >= 0 AND quantity_used >= 0", name="usage_not_negative"),
    )

    number: Mapped[str] = mapped_column(String(64), primary_key=True)
    authority: Mapped[str] = mapped_column(String(64))
    eccns: Mapped[list[str]] = mapped_column(JSON)
    skus: Mapped[list[str]] = mapped_column(JSON)
    countries: Mapped[list[str]] = mapped_column(JSON)
    parties: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    value_limit_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    quantity_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    value_used_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    quantity_used: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime())
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime())
    provisos: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Drawdown(Base):
    __tablename__ = "licence_drawdowns"
    __table_args__ = (
        UniqueConstraint("order_id", "order_version", "line_no"),
        Index(None, "order_id"),
        Index(None, "licence_number"),
        CheckConstraint("status IN ('drawn', 'not_covered', 'reversed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(128))
    # The submitted event's id: one version of the order.
    order_version: Mapped[str] = mapped_column(String(64))
    order_occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    line_no: Mapped[int] = mapped_column(Integer)
    licence_number: Mapped[str | None] = mapped_column(ForeignKey("licences.number"), nullable=True)
    eccn: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(BigInteger)
    value_micros: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    why: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reversed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reversal_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


LEDGER_SCHEMA = Schema(
    name="risk",
    directory=Path(__file__).parent / "migrations",
    metadata=lambda: Base.metadata,
    marker_table=Licence.__tablename__,
    baseline="0001",
    lock_key=0x6578_7077_7269_0001,
)


class LicenceExists(ValueError):
    """A licence with this number is already held."""


@dataclass(frozen=True)
class LicenceSpec:
    """A licence to record, as the API validated it."""

    number: str
    authority: str
    eccns: tuple[str, ...]
    skus: tuple[str, ...]
    countries: tuple[str, ...]
    parties: tuple[tuple[str, str], ...]
    currency: str
    value_limit: Decimal | None
    quantity_limit: int | None
    valid_from: datetime
    valid_until: datetime
    provisos: tuple[str, ...]


def _eccn_within(eccn: str, licensed: str) -> bool:
    a, b = eccn.lower(), licensed.lower()
    return a == b or a.startswith(b + ".")


def why_not(licence: Licence, need: LicenceNeed, now: datetime) -> str | None:
    """Why the licence does not cover the line, or None if it does (with what remains)."""
    if now < licence.valid_from:
        return f"not valid before {licence.valid_from.date().isoformat()}"
    if now > licence.valid_until:
        return f"expired on {licence.valid_until.date().isoformat()}"
    if not any(_eccn_within(need.eccn, e) for e in licence.eccns) and need.sku not in licence.skus:
        return f"covers {', '.join([*licence.eccns, *licence.skus])}, not {need.eccn} / {need.sku}"
    outside = [c for c in (need.destination, *need.countries) if c not in licence.countries]
    if outside:
        return f"not valid for {', '.join(dict.fromkeys(outside))} (valid for {', '.join(licence.countries)})"
    if licence.parties:
        named = {party_key(p["name"], p["country"]) for p in licence.parties}
        missing = [
            f"{role} {name!r}"
            for role, name, country in need.parties
            if party_key(name, country) not in named
        ]
        if missing:
            return f"does not name {', '.join(missing)}"
    return _capacity(licence, need)


def _capacity(licence: Licence, need: LicenceNeed) -> str | None:
    if licence.value_limit_micros is not None:
        if need.currency != licence.currency:
            return f"its value limit is in {licence.currency}, the line in {need.currency}"
        left = licence.value_limit_micros - licence.value_used_micros
        if to_micros(need.value) > left:
            return f"remaining value {from_micros(left)} {licence.currency} < {need.value} (exhausted or too small)"
    if licence.quantity_limit is not None:
        left_quantity = licence.quantity_limit - licence.quantity_used
        if need.quantity > left_quantity:
            return f"remaining quantity {left_quantity} < {need.quantity} (exhausted or too small)"
    return None


def _version_key(row: Drawdown) -> tuple[datetime, str]:
    return row.order_occurred_at, row.order_version


def _coverage(row: Drawdown, licences: Mapping[str, Licence]) -> Coverage:
    licence = licences.get(row.licence_number or "")
    if row.licence_number is None:
        return Coverage(row.line_no, None, why=row.why, detail={**row.detail, "drawdown_id": row.id})
    return Coverage(
        row.line_no,
        row.licence_number,
        drawdown_id=row.id,
        authority=licence.authority if licence else None,
        provisos=tuple(licence.provisos) if licence else (),
        why=row.why,
        detail={**row.detail, "drawn_at": row.decided_at.isoformat()},
    )


@dataclass(frozen=True)
class Settlement:
    """One order's question to the ledger (Ledger.settle's arguments)."""

    order: SubmittedOrder
    needs: Sequence[LicenceNeed]
    blocked: bool


class LedgerConflict(Exception):
    """A poll's settlement met a line another instance drew down meanwhile (nothing was written)."""


class Ledger:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.postgres = engine.dialect.name == "postgresql"
        if not self.postgres:
            _serialise_sqlite_writers(engine)
        insert = postgresql.insert if self.postgres else sqlite.insert
        self._insert_statement = (
            insert(Drawdown)
            .on_conflict_do_nothing(index_elements=["order_id", "order_version", "line_no"])
            .returning(Drawdown.order_id, Drawdown.order_version, Drawdown.line_no, Drawdown.id)
        )

    @classmethod
    def open(cls, url: str) -> Ledger:
        return cls(make_engine(url))

    async def create(self) -> None:
        """Migrate the ledger's database to the newest schema (shared/migrations.py)."""
        await migrate(self.engine, LEDGER_SCHEMA)

    async def close(self) -> None:
        await self.engine.dispose()

    # --- licences ------------------------------------------------------------------------------

    async def add_licence(self, spec: LicenceSpec, now: datetime) -> Licence:
        licence = Licence(
            number=spec.number,
            authority=spec.authority,
            eccns=list(spec.eccns),
            skus=list(spec.skus),
            countries=list(spec.countries),
            parties=[{"name": n, "country": c} for n, c in spec.parties],
            currency=spec.currency,
            value_limit_micros=to_micros(spec.value_limit) if spec.value_limit is not None else None,
            quantity_limit=spec.quantity_limit,
            value_used_micros=0,
            quantity_used=0,
            valid_from=spec.valid_from,
            valid_until=spec.valid_until,
            provisos=list(spec.provisos),
            created_at=now,
        )
        try:
            async with self.sessions() as session, session.begin():
                session.add(licence)
        except IntegrityError as exc:
            raise LicenceExists(
                f"number {spec.number!r}: a licence with this number is already held"
            ) from exc
        return licence

    async def licences(self) -> list[Licence]:
        async with self.sessions() as session, session.begin():
            return list((await session.scalars(select(Licence).order_by(Licence.number))).all())

    async def licence(self, number: str) -> tuple[Licence, list[Drawdown]] | None:
        async with self.sessions() as session, session.begin():
            licence = await session.get(Licence, number)
            if licence is None:
                return None
            rows = (
                await session.scalars(
                    select(Drawdown).where(Drawdown.licence_number == number).order_by(Drawdown.id)
                )
            ).all()
            return licence, list(rows)

    # --- draw-downs ----------------------------------------------------------------------------

    async def settle(
        self, order: SubmittedOrder, needs: Sequence[LicenceNeed], *, blocked: bool, now: datetime
    ) -> dict[int, Coverage]:
        """The ledger's answer for the order's licence-needing lines, drawing down at most once per
        line; reverses older versions' draw-downs (amendment) and a blocked version's."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self.sessions() as session, session.begin():
                    result = await self._settle(session, order, needs, blocked=blocked, now=now)
                if result is not None:
                    return result
            except DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
                if code not in _RETRY_SQLSTATES or attempt == _ATTEMPTS:
                    raise
                log.warning("ledger transaction for %s retried (%s)", order.order_id, code)
            await asyncio.sleep(0.01 * attempt)
        raise RuntimeError(f"order {order.order_id}: the ledger could not settle after {_ATTEMPTS} attempts")

    async def settle_all(
        self, settlements: Sequence[Settlement], *, now: datetime
    ) -> list[dict[int, Coverage]]:
        """`settle` for a whole consumer poll in one transaction, in the poll's order: an order with
        no licence-needing line and no draw-down on record (most orders) costs no statement of its
        own, and the poll's new draw-downs are inserted by one statement at the end. Raises
        LedgerConflict (nothing written) when another instance took one of the lines meanwhile, or
        the database's error: the caller then settles the orders one by one."""
        async with self.sessions() as session, session.begin():
            ids = {s.order.order_id for s in settlements}
            # Every draw-down of the poll's orders in one query; an order settled earlier in the poll
            # (a later version follows) is read again, as one order at a time would.
            rows = await session.scalars(
                select(Drawdown).where(Drawdown.order_id.in_(ids)).order_by(Drawdown.order_id, Drawdown.id)
            )
            held: dict[str, list[Drawdown] | None] = {
                order_id: list(group) for order_id, group in groupby(rows, key=attrgetter("order_id"))
            }
            licences: dict[str, Licence] | None = None
            results: list[dict[int, Coverage]] = []
            pending: list[tuple[dict[int, Coverage], list[dict[str, Any]]]] = []
            for settlement in settlements:
                order = settlement.order
                if not settlement.needs and order.order_id not in held:
                    results.append({})
                    continue
                if licences is None:  # locked once for the poll, in one order: see _plan
                    licences = await self._licences(session, lock=True)
                known = held.get(order.order_id, [])
                if known is None:
                    # settled earlier in this poll: its rows are read again, so they must be written
                    await self._insert_pending(session, pending, licences)
                result, drafts, _ = await self._plan(
                    session, order, settlement.needs, blocked=settlement.blocked, now=now, rows=known,
                    licences=licences,
                )  # fmt: skip
                if drafts:
                    pending.append((result, drafts))
                results.append(result)
                held[order.order_id] = None
            if licences is not None:
                await self._insert_pending(session, pending, licences)
            await session.flush()
        return results

    async def _insert_pending(
        self,
        session: AsyncSession,
        pending: list[tuple[dict[int, Coverage], list[dict[str, Any]]]],
        licences: Mapping[str, Licence],
    ) -> None:
        """Insert the drafted rows of several orders in one statement and add each line's coverage
        to its order's result; LedgerConflict if any row was already taken."""
        drafts = [draft for _, order_drafts in pending for draft in order_drafts]
        if not drafts:
            return
        inserted = await self._insert(session, drafts)
        if inserted is None:
            taken = sorted({d["order_id"] for d in drafts})
            raise LedgerConflict(f"orders {', '.join(taken)}: a line was drawn down by another instance")
        rows = iter(inserted)  # in the drafts' order
        for result, order_drafts in pending:
            for row in (next(rows) for _ in order_drafts):
                result[row.line_no] = _coverage(row, licences)
        pending.clear()

    async def _settle(
        self,
        session: AsyncSession,
        order: SubmittedOrder,
        needs: Sequence[LicenceNeed],
        *,
        blocked: bool,
        now: datetime,
    ) -> dict[int, Coverage] | None:
        """One order in its own transaction: None when another instance took one of its lines."""
        result, drafts, licences = await self._plan(session, order, needs, blocked=blocked, now=now)
        if drafts:
            inserted = await self._insert(session, drafts)
            if inserted is None:
                await session.rollback()
                return None  # another instance decided the same lines: read its rows on the next attempt
            for row in inserted:
                result[row.line_no] = _coverage(row, licences)
        await session.flush()
        return result

    async def _plan(
        self,
        session: AsyncSession,
        order: SubmittedOrder,
        needs: Sequence[LicenceNeed],
        *,
        blocked: bool,
        now: datetime,
        rows: list[Drawdown] | None = None,
        licences: dict[str, Licence] | None = None,
    ) -> tuple[dict[int, Coverage], list[dict[str, Any]], Mapping[str, Licence]]:
        """Everything but the insert: (the coverage of lines already drawn for this version, the
        rows to insert for the others, the licences they were charged to). Older versions are
        reversed in the session. `rows` (the order's draw-downs) and `licences` (locked) when this
        transaction already read them (Ledger.settle_all); None: read here."""
        if rows is None:
            rows = list(
                (await session.scalars(select(Drawdown).where(Drawdown.order_id == order.order_id))).all()
            )
        if not rows and not needs:
            return {}, [], licences or {}
        mine = {r.line_no: r for r in rows if r.order_version == order.event_id}
        newer, stale, stale_note = _stale(rows, order, blocked=blocked)
        todo = [] if blocked else [n for n in needs if n.line_no not in mine]
        # Every licence is locked, in one order, before anything is written: draw-downs and
        # reversals of concurrent orders queue here instead of reading the same remaining value.
        if licences is None:
            licences = await self._licences(session, lock=bool(stale or todo))
        await self._reverse(stale, licences, stale_note, now)
        if blocked:
            return {}, [], licences
        wanted = {n.line_no for n in needs}
        result = {line_no: _coverage(row, licences) for line_no, row in mine.items() if line_no in wanted}
        return result, [_draft(order, need, licences, now, superseded=newer) for need in todo], licences

    async def _licences(self, session: AsyncSession, *, lock: bool) -> dict[str, Licence]:
        query = select(Licence).order_by(Licence.number)
        if lock and self.postgres:
            query = query.with_for_update()
        return {r.number: r for r in (await session.scalars(query)).all()}

    async def _insert(self, session: AsyncSession, drafts: Sequence[dict[str, Any]]) -> list[Drawdown] | None:
        """Insert the rows, ON CONFLICT DO NOTHING, in one round trip however many (SQLAlchemy's
        insertmanyvalues; one statement compiled once, where a multi-row VALUES clause is compiled
        anew for every size); the rows in the drafts' order, or None if any row was already taken."""
        ids: dict[tuple[str, str, int], int] = {
            (order_id, version, line_no): row_id
            for order_id, version, line_no, row_id in (
                await session.execute(self._insert_statement, list(drafts))
            ).all()
        }
        if len(ids) < len(drafts):
            return None
        return [
            Drawdown(id=ids[(draft["order_id"], draft["order_version"], draft["line_no"])], **draft)
            for draft in drafts
        ]

    @staticmethod
    async def _reverse(
        rows: Sequence[Drawdown], licences: Mapping[str, Licence], reason: str, now: datetime
    ) -> None:
        for row in rows:
            licence = licences.get(row.licence_number or "")
            if licence is not None:
                licence.value_used_micros -= row.value_micros
                licence.quantity_used -= row.quantity
            row.status = "reversed"
            row.reversed_at = now
            row.reversal_reason = reason


def _stale(
    rows: Sequence[Drawdown], order: SubmittedOrder, *, blocked: bool
) -> tuple[bool, list[Drawdown], str]:
    """(a newer version exists, the active draw-downs to give back, why): a blocked version gives
    back its own and older ones; a newer version (an amendment) gives back the older ones."""
    version = (order.occurred_at, order.event_id)
    newer = any(_version_key(r) > version for r in rows)
    if blocked:
        stale = [r for r in rows if r.status == "drawn" and _version_key(r) <= version]
        return newer, stale, f"order version {order.event_id} was BLOCKed"
    stale = [] if newer else [r for r in rows if r.status == "drawn" and _version_key(r) < version]
    return newer, stale, f"amended by order version {order.event_id}"


def _draft(
    order: SubmittedOrder,
    need: LicenceNeed,
    licences: Mapping[str, Licence],
    now: datetime,
    *,
    superseded: bool,
) -> dict[str, Any]:
    """The line's row: the first licence that covers it (charged at once, in the locked rows, so the
    order's next line sees what is left), or why none does."""
    considered: list[dict[str, str]] = []
    chosen: Licence | None = None
    for licence in () if superseded else licences.values():
        why = why_not(licence, need, now)
        if why is None:
            chosen = licence
            break
        considered.append({"licence": licence.number, "why": why})
    if chosen is not None:
        chosen.value_used_micros += to_micros(need.value)
        chosen.quantity_used += need.quantity
        why = f"drawn from licence {chosen.number}"
    elif superseded:
        why = "a newer version of the order has been decided: this version draws nothing"
    else:
        why = "; ".join(f"licence {c['licence']}: {c['why']}" for c in considered) or "no licence is held"
    return {
        "order_id": order.order_id,
        "order_version": order.event_id,
        "order_occurred_at": order.occurred_at,
        "line_no": need.line_no,
        "licence_number": chosen.number if chosen else None,
        "eccn": need.eccn,
        "quantity": need.quantity,
        "value_micros": to_micros(need.value),
        "currency": need.currency,
        "status": "drawn" if chosen else "not_covered",
        "why": why,
        "detail": {"considered": considered, "covered": chosen is not None},
        "decided_at": now,
    }


def _serialise_sqlite_writers(engine: AsyncEngine) -> None:
    """SQLite: every transaction BEGINs IMMEDIATE, taking the write lock up front, so two draw-downs
    never read the same remaining value (with WAL, a deferred reader cannot later upgrade safely)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_immediate(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")
