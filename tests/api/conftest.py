"""Fixtures shared by the API tests: `records` (the records app on a fresh SQLite database, its
outbox relayed by the test itself) for the review tests too."""

from tests.api.test_records_api import records

__all__ = ["records"]
