"""API keys for the tests: one keys file per test session, a key per role (two approvers).

tests/conftest.py writes the file before any test runs and points EXPORTWATCH_API_KEYS_FILE at it,
so every app a test builds (and every service process it starts) accepts these keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from shared.keystore import Role, create_key, revoke_key

# name -> (role, key); filled by `write_keys`.
KEYS: dict[str, tuple[Role, str]] = {}
NAMES: dict[str, Role] = {
    "viewer-1": "viewer",
    "reviewer-1": "reviewer",
    "approver-1": "approver",
    "approver-2": "approver",
    "admin-1": "admin",
}


# A key that was made and then revoked: refused like an unknown one.
REVOKED: dict[str, str] = {}


def write_keys(path: Path) -> None:
    for name, role in NAMES.items():
        token, _ = create_key(path, name=name, role=role, now=datetime.now(UTC))
        KEYS[name] = (role, token)
    token, _ = create_key(path, name="revoked-1", role="admin", now=datetime.now(UTC))
    revoke_key(path, name="revoked-1", now=datetime.now(UTC))
    REVOKED["revoked-1"] = token


def key(name: str = "admin-1") -> str:
    return KEYS[name][1]


def bearer(name: str = "admin-1") -> dict[str, str]:
    """The Authorization header of the named test key (admin by default)."""
    return {"Authorization": f"Bearer {key(name)}"}
