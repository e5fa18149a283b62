"""The real lists, loaded and indexed once per test session for the screening unit tests."""

from __future__ import annotations

import functools

from services.screening.app import load_screening
from services.screening.domain import ListCatalog, Screener
from shared.settings import Settings


@functools.cache
def loaded_screening() -> tuple[ListCatalog, Screener]:
    return load_screening(Settings())
