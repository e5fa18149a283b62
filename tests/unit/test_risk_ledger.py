"""The licence ledger on SQLite and on PostgreSQL (the `postgres_url` server; those cases are
integration tests): a covered line is released naming its licence and draw-down, a replay draws
once, an amendment or a block gives the draw-down back, 50 concurrent orders never overdraw, and
expired or exhausted licences never cover."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.risk import service
from services.risk.ledger import Ledger, LedgerConflict, LicenceSpec, from_micros
from services.risk.service import RiskRuntime
from shared.events import DecidedOrder, ScreenedOrder, SubmittedOrder
from shared.settings import Settings
from tests import risk_samples as s
from tests.records_support import DATABASES, fresh_database, server_url
from tests.risk_support import NOW, risk_runtime

BUYER = "Muster Maschinenbau GmbH"


@pytest.fixture(params=DATABASES)
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RiskRuntime]:
    async with fresh_database(request.param, tmp_path, server_url(request)) as url:
        async with risk_runtime(Settings(), url) as opened:
            yield opened


def licence(number: str = "D100001", **changes: Any) -> LicenceSpec:
    spec = LicenceSpec(
        number=number,
        authority="BIS",
        eccns=("6A003.b.4",),
        skus=(),
        countries=("CN",),
        parties=((BUYER, "CN"),),
        currency="USD",
        value_limit=Decimal("25000.00"),
        quantity_limit=20,
        valid_from=NOW - timedelta(days=30),
        valid_until=NOW + timedelta(days=365),
        provisos=("No reexport without BIS authorisation",),
    )
    return replace(spec, **changes)


def screened(
    data_dir: Path,
    *,
    order_id: str = "SO-L-1",
    quantity: int = 2,
    unit_price: str = "1250.00",
    event_id: str | None = None,
    occurred_at: str = "2026-11-30T12:00:00Z",
    sdn_buyer: bool = False,
) -> ScreenedOrder:
    body = s.order_json("CN", order_id=order_id)
    body["parties"] = [
        {"role": "buyer", "name": BUYER, "country": "CN"},
        {"role": "ultimate_consignee", "name": BUYER, "country": "CN"},
    ]
    body["lines"][0].update(quantity=quantity, unit_price=unit_price)
    body["event_id"] = event_id or str(uuid.uuid4())
    body["occurred_at"] = occurred_at
    order = SubmittedOrder.model_validate(body)
    matches = {"buyer": [s.match("SDN", 0.99)]} if sdn_buyer else None
    event = s.screened_event(
        order, s.classification(s.classified(data_dir, 1, "6A003.b.4.b")), s.screening(order, matches)
    )
    event["event_id"] = str(uuid.uuid4())
    return ScreenedOrder.model_validate(event)


def codes(decided: DecidedOrder) -> list[str]:
    return [r.code for r in decided.decision.reasons]


async def usage(runtime: RiskRuntime, number: str = "D100001") -> tuple[Decimal | None, int, list[str]]:
    found = await runtime.require_ledger().licence(number)
    assert found is not None
    held, rows = found
    return from_micros(held.value_used_micros), held.quantity_used, [r.status for r in rows]


async def test_a_covered_line_is_released_naming_the_licence_and_its_drawdown(
    runtime: RiskRuntime, data_dir: Path
) -> None:
    await service.add_licence(runtime, licence())
    decided = await service.decide_order(screened=screened(data_dir), runtime=runtime)
    assert (decided.decision.decision, codes(decided)) == (
        "RELEASE",
        ["LICENSE_COVERED", "NO_LICENSE_REQUIRED"],
    )
    covered = decided.decision.reasons[0]
    assert covered.evidence["licence_number"] == "D100001" and covered.evidence["drawdown_id"]
    assert "No reexport" in covered.message and covered.score_contribution == 0
    assert decided.decision.line_determinations[0].authorised_by == "licence D100001"
    assert await usage(runtime) == (Decimal("2500"), 2, ["drawn"])


async def test_without_a_licence_the_line_stays_licence_required_and_says_why(
    runtime: RiskRuntime, data_dir: Path
) -> None:
    await service.add_licence(runtime, licence(countries=("IN",)))
    decided = await service.decide_order(screened=screened(data_dir), runtime=runtime)
    assert decided.decision.decision == "LICENSE_REQUIRED"
    reason = decided.decision.reasons[0]
    assert "not valid for CN" in reason.evidence["ledger"]["why"]


async def test_a_replayed_order_draws_once_and_gets_the_same_decision(
    runtime: RiskRuntime, data_dir: Path
) -> None:
    await service.add_licence(runtime, licence())
    event = screened(data_dir)
    first = await service.decide_order(screened=event, runtime=runtime)
    runtime.clock = lambda: NOW + timedelta(hours=5)  # a restart later, same event
    second = await service.decide_order(screened=event, runtime=runtime)
    assert first.model_dump_json() == second.model_dump_json()
    assert await usage(runtime) == (Decimal("2500"), 2, ["drawn"])


async def test_an_amended_order_gives_its_drawdown_back(runtime: RiskRuntime, data_dir: Path) -> None:
    await service.add_licence(runtime, licence())
    await service.decide_order(screened=screened(data_dir, quantity=2), runtime=runtime)
    amended = screened(data_dir, quantity=5, occurred_at="2026-11-30T13:00:00Z")
    decided = await service.decide_order(screened=amended, runtime=runtime)
    assert decided.decision.decision == "RELEASE"
    value, quantity, statuses = await usage(runtime)
    assert (value, quantity, sorted(statuses)) == (Decimal("6250"), 5, ["drawn", "reversed"])
    _, rows = await runtime.require_ledger().licence("D100001") or (None, [])
    reversed_row = next(r for r in rows if r.status == "reversed")
    assert reversed_row.reversal_reason == f"amended by order version {amended.order.event_id}"


async def test_an_older_version_arriving_late_draws_nothing(runtime: RiskRuntime, data_dir: Path) -> None:
    await service.add_licence(runtime, licence())
    await service.decide_order(
        screened=screened(data_dir, occurred_at="2026-11-30T13:00:00Z"), runtime=runtime
    )
    late = await service.decide_order(screened=screened(data_dir, quantity=3), runtime=runtime)
    assert late.decision.decision == "LICENSE_REQUIRED"
    assert "newer version" in late.decision.reasons[0].evidence["ledger"]["why"]
    assert (await usage(runtime))[:2] == (Decimal("2500"), 2)


async def test_a_blocked_version_gives_the_drawdown_back(runtime: RiskRuntime, data_dir: Path) -> None:
    await service.add_licence(runtime, licence())
    await service.decide_order(screened=screened(data_dir), runtime=runtime)
    blocked = screened(data_dir, occurred_at="2026-11-30T14:00:00Z", sdn_buyer=True)
    decided = await service.decide_order(screened=blocked, runtime=runtime)
    assert decided.decision.decision == "BLOCK"
    assert await usage(runtime) == (Decimal("0"), 0, ["reversed"])


async def test_expired_and_exhausted_licences_never_cover(runtime: RiskRuntime, data_dir: Path) -> None:
    await service.add_licence(
        runtime,
        licence("D1-EXPIRED", valid_from=NOW - timedelta(days=400), valid_until=NOW - timedelta(days=1)),
    )
    await service.add_licence(runtime, licence("D2-SMALL", quantity_limit=3))
    first = await service.decide_order(
        screened=screened(data_dir, order_id="SO-A", quantity=2), runtime=runtime
    )
    second = await service.decide_order(
        screened=screened(data_dir, order_id="SO-B", quantity=2), runtime=runtime
    )
    assert (
        codes(first)[0] == "LICENSE_COVERED"
        and first.decision.reasons[0].evidence["licence_number"] == "D2-SMALL"
    )
    assert second.decision.decision == "LICENSE_REQUIRED"
    why = second.decision.reasons[0].evidence["ledger"]["why"]
    assert "licence D1-EXPIRED: expired on" in why and "licence D2-SMALL: remaining quantity 1 < 2" in why


async def test_a_licence_naming_parties_covers_only_orders_to_them(
    runtime: RiskRuntime, data_dir: Path
) -> None:
    await service.add_licence(runtime, licence(parties=(("Another Buyer Ltd", "CN"),)))
    decided = await service.decide_order(screened=screened(data_dir), runtime=runtime)
    assert decided.decision.decision == "LICENSE_REQUIRED"
    assert "does not name" in decided.decision.reasons[0].evidence["ledger"]["why"]


async def test_fifty_concurrent_orders_never_overdraw_one_licence(
    runtime: RiskRuntime, data_dir: Path
) -> None:
    # Room for 7 orders of 3 units (value limit 7 x 3,750 = 26,250; quantity limit 21): 43 must not fit.
    await service.add_licence(runtime, licence(value_limit=Decimal("26250"), quantity_limit=21))
    # Two ledgers on the same database: two risk instances deciding at once.
    other = Ledger.open(str(runtime.require_ledger().engine.url.render_as_string(hide_password=False)))
    second = replace(runtime, ledger=other)
    events = [screened(data_dir, order_id=f"SO-C-{n:02}", quantity=3) for n in range(50)]
    try:
        decided = await asyncio.gather(
            *(
                service.decide_order(screened=e, runtime=r)
                for e, r in zip(events, itertools.cycle([runtime, second]), strict=False)
            )
        )
    finally:
        await other.close()
    released = [d for d in decided if d.decision.decision == "RELEASE"]
    assert len(released) == 7 and len(decided) - len(released) == 43
    assert await usage(runtime) == (Decimal("26250"), 21, ["drawn"] * 7)
    # And again, all 50 replayed concurrently: still 7 draw-downs, the same 7 orders released.
    again = await asyncio.gather(*(service.decide_order(screened=e, runtime=runtime) for e in events))
    assert [d.decision.decision for d in again] == [d.decision.decision for d in decided]
    assert await usage(runtime) == (Decimal("26250"), 21, ["drawn"] * 7)


async def test_the_database_refuses_an_overdraw_even_if_the_code_were_wrong(runtime: RiskRuntime) -> None:
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from services.risk.ledger import Licence

    await service.add_licence(runtime, licence())
    ledger = runtime.require_ledger()
    with pytest.raises(IntegrityError, match="quantity_within_limit"):
        async with ledger.sessions() as session, session.begin():
            await session.execute(update(Licence).values(quantity_used=21))


async def test_a_duplicate_licence_number_is_refused(runtime: RiskRuntime) -> None:
    from services.risk.ledger import LicenceExists

    await service.add_licence(runtime, licence())
    with pytest.raises(LicenceExists, match="D100001"):
        await service.add_licence(runtime, licence())


def test_now_is_utc() -> None:
    assert NOW.tzinfo is UTC and NOW < datetime(2027, 1, 1, tzinfo=UTC)


async def test_a_poll_settled_in_one_transaction_decides_as_one_order_at_a_time_would(
    runtime: RiskRuntime, data_dir: Path, tmp_path: Path
) -> None:
    # One poll holding an order, its replay, its amendment, a blocked order and a late older
    # version: the decisions and the ledger equal those of the same events one at a time.
    await service.add_licence(runtime, licence())
    first = screened(data_dir, quantity=2)
    amended = screened(data_dir, quantity=5, occurred_at="2026-11-30T13:00:00Z")
    late = screened(data_dir, quantity=3, occurred_at="2026-11-30T12:30:00Z")
    blocked = screened(data_dir, order_id="SO-L-2", sdn_buyer=True)
    other = screened(data_dir, order_id="SO-L-3", quantity=1)
    poll = [first, first, amended, late, blocked, other]
    batched = await service.decide_orders(orders=poll, runtime=runtime)
    in_batch = await usage(runtime)

    one_by_one_db = f"sqlite+aiosqlite:///{tmp_path / 'one-by-one.db'}"
    async with risk_runtime(Settings(), one_by_one_db) as alone:
        await service.add_licence(alone, licence())
        single = [await service.decide_order(screened=e, runtime=alone) for e in poll]
        assert in_batch == await usage(alone)
    assert [(d.decision.decision, codes(d)) for d in batched] == [
        (d.decision.decision, codes(d)) for d in single
    ]
    assert [d.decision.decision for d in batched] == [
        "RELEASE",
        "RELEASE",
        "RELEASE",
        "LICENSE_REQUIRED",
        "BLOCK",
        "RELEASE",
    ]
    value, quantity, statuses = in_batch
    assert (value, quantity, sorted(statuses)) == (Decimal("7500"), 6, ["drawn", "drawn", "reversed"])


async def test_two_instances_settling_polls_at_once_never_overdraw(
    runtime: RiskRuntime, data_dir: Path
) -> None:
    await service.add_licence(runtime, licence(value_limit=Decimal("26250"), quantity_limit=21))
    other = Ledger.open(str(runtime.require_ledger().engine.url.render_as_string(hide_password=False)))
    second = replace(runtime, ledger=other)
    events = [screened(data_dir, order_id=f"SO-P-{n:02}", quantity=3) for n in range(40)]
    try:
        polls = await asyncio.gather(
            *(
                service.decide_orders(orders=events[start : start + 10], runtime=r)
                for start, r in zip(range(0, 40, 10), itertools.cycle([runtime, second]), strict=False)
            )
        )
    finally:
        await other.close()
    decided = [d for poll in polls for d in poll]
    assert sum(d.decision.decision == "RELEASE" for d in decided) == 7
    assert await usage(runtime) == (Decimal("26250"), 21, ["drawn"] * 7)


@pytest.mark.integration
async def test_a_line_another_instance_draws_while_a_poll_settles_fails_the_poll_writing_nothing(
    postgres_url: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL only: SQLite serialises whole transactions, so no other instance can write between
    # a poll's read of its orders' draw-downs and its insert. Here one does, in that very gap.
    async with fresh_database("postgresql", tmp_path, postgres_url) as url:
        async with risk_runtime(Settings(), url) as runtime:
            await service.add_licence(runtime, licence())
            event = screened(data_dir, quantity=2)
            other = Ledger.open(url)
            ledger = runtime.require_ledger()
            original = Ledger._licences

            async def meanwhile(self: Ledger, session: Any, *, lock: bool) -> Any:
                if self is ledger and not await usage(runtime) == (Decimal("2500"), 2, ["drawn"]):
                    await service.decide_order(screened=event, runtime=replace(runtime, ledger=other))
                return await original(self, session, lock=lock)

            monkeypatch.setattr(Ledger, "_licences", meanwhile)
            try:
                with pytest.raises(LedgerConflict, match="drawn down by another instance"):
                    await service.decide_orders(orders=[event], runtime=runtime)
            finally:
                await other.close()
            monkeypatch.undo()
            # The other instance's draw-down stands alone; the poll, one by one, reuses it.
            assert await usage(runtime) == (Decimal("2500"), 2, ["drawn"])
            again = await service.decide_order(screened=event, runtime=runtime)
            assert again.decision.decision == "RELEASE"
            assert await usage(runtime) == (Decimal("2500"), 2, ["drawn"])


async def test_a_polls_new_drawdowns_are_inserted_by_one_statement(
    runtime: RiskRuntime, data_dir: Path
) -> None:
    # Five orders each drawing a line, one of them twice in the poll (a replay): one INSERT for the
    # four before the replay is read back, one for the last; every order keeps its own row's id.
    from sqlalchemy import event

    await service.add_licence(runtime, licence())
    poll = [screened(data_dir, order_id=f"SO-I-{n}", quantity=1) for n in range(4)]
    poll = [*poll, poll[1], screened(data_dir, order_id="SO-I-9", quantity=1)]
    inserts: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO LICENCE_DRAWDOWNS"):
            inserts.append(len(parameters) if many else 1)

    engine = runtime.require_ledger().engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        decided = await service.decide_orders(orders=poll, runtime=runtime)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(inserts) == 2, inserts
    assert [d.decision.decision for d in decided] == ["RELEASE"] * 6
    drawdowns = [
        next(r.evidence["drawdown_id"] for r in d.decision.reasons if r.code == "LICENSE_COVERED")
        for d in decided
    ]
    assert len(set(drawdowns)) == 5 and drawdowns[1] == drawdowns[4], drawdowns
    assert await usage(runtime) == (Decimal("6250"), 5, ["drawn"] * 5)
