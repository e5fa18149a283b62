"""The headers every test sends to a service over HTTP (the fault suite and the API fuzzer).

One place, so that when the services require an API key (a Bearer key from
`EXPORTWATCH_API_KEYS_FILE`) adding the Authorization header here is the only change.
"""

from __future__ import annotations


def auth_headers() -> dict[str, str]:
    return {}
