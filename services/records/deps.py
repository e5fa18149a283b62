"""What every records route shares: the runtime, a read transaction, and the checks of query values
FastAPI cannot state (a time zone on a moment) as 422s naming the parameter and the value."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.records.service import RecordsRuntime
from shared.service import runtime_dependency

RuntimeDep = Annotated[RecordsRuntime, Depends(runtime_dependency(RecordsRuntime))]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    # The one place a read request's transaction is opened and closed.
    async with runtime.sessionmaker() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def query_error(name: str, value: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"loc": ["query", name], "msg": message, "type": "value_error", "input": value}],
    )


def aware(name: str, value: datetime | None) -> datetime | None:
    """A moment from the query, refused (422) without a time zone: the trail stores UTC instants."""
    if value is not None and value.tzinfo is None:
        raise query_error(name, value.isoformat(), "needs a time zone, e.g. 2026-12-01T00:00:00Z")
    return value
