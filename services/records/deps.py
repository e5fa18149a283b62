"""What every records route shares: the runtime, a read transaction, and the checks of query values
FastAPI cannot state (a time zone on a moment) as 422s naming the parameter and the value."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, status
from pydantic import BeforeValidator
from sqlalchemy.ext.asyncio import AsyncSession

from services.records.service import RecordsRuntime
from shared.service import runtime_dependency

RuntimeDep = Annotated[RecordsRuntime, Depends(runtime_dependency(RecordsRuntime))]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    # The one place a read request's transaction is opened and closed.
    async with runtime.sessionmaker() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_8601_text(value: object) -> object:
    # pydantic reads a bare number as a Unix timestamp; a moment in the trail's queries is written
    # as ISO 8601 (what the OpenAPI document's date-time format promises), so "0.5" is a 422.
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("an ISO 8601 date and time is needed, e.g. 2026-12-01T00:00:00Z")
    return value


# A moment in a query: ISO 8601 text only (the time zone is checked by `aware`, naming the parameter).
IsoMoment = Annotated[datetime | None, BeforeValidator(_iso_8601_text)]


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
