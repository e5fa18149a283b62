"""API keys: the file every service reads, and how keys are made, listed and revoked.

A key is `ewk_<key id>_<secret>`: 8 random bytes of key id (hex, looked up) and 32 random bytes of
secret (hex). The file keeps per key its name, role, key id, the SHA-256 of the secret, and when it
was created and revoked; never the secret. A plain SHA-256 is enough because the secret is 256 bits
of randomness, not a password: there is nothing to guess from the hash, so no slow password hash is
needed (and every request can afford the check).

The file is JSON, written whole to a temporary file beside it and renamed over it (mode 0600), under
an exclusive lock on `<file>.lock`, so two `exportwatch keys ...` at once never lose each other's
change and a reader never sees half a file. Services reload it when its identity changes (inode,
size, modification time), so a revocation takes effect on the next request without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Role = Literal["viewer", "reviewer", "approver", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
# viewer < reviewer < approver < admin: a role may do everything the roles below it may.
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}

KEY_PREFIX = "ewk"
_KEY = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{16}})_([0-9a-f]{{64}})$")
KEYS_FILE_VARIABLE = "EXPORTWATCH_API_KEYS_FILE"

KeyName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")]


def default_keys_file() -> Path:
    """`EXPORTWATCH_API_KEYS_FILE`, else `var/api-keys.json` in the checkout."""
    given = os.environ.get(KEYS_FILE_VARIABLE)
    if given:
        return Path(given)
    return Path(__file__).resolve().parent.parent / "var" / "api-keys.json"


def at_least(role: str, required: str) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[required]


class KeyRecord(BaseModel):
    """One key as the file keeps it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    name: KeyName
    role: Role
    secret_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    keys: list[KeyRecord] = Field(default_factory=list)


class KeyFileError(ValueError):
    """The keys file cannot be read as a keys file; the message names the file and what is wrong."""


class KeyCommandError(ValueError):
    """A key command that cannot be done (a name already in use, no such key)."""


@dataclass(frozen=True)
class Identity:
    """Who is calling: the key's name and role, and its id (names can be reused after a revocation,
    ids never are)."""

    key_id: str
    name: str
    role: Role

    def may(self, required: str) -> bool:
        return at_least(self.role, required)


def parse_key(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    found = _KEY.match(token)
    return (found.group(1), found.group(2)) if found else None


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_key(*, name: str, role: Role, now: datetime) -> tuple[str, KeyRecord]:
    """A fresh key (shown once) and the record the file keeps of it."""
    key_id, secret = secrets.token_hex(8), secrets.token_hex(32)
    record = KeyRecord(
        key_id=key_id, name=name, role=role, secret_sha256=secret_digest(secret), created_at=now
    )
    return f"{KEY_PREFIX}_{key_id}_{secret}", record


# --- the file ----------------------------------------------------------------------------------


def read_keys(path: Path) -> list[KeyRecord]:
    """The keys of `path`; an absent file has none. KeyFileError names the file and the problem."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot be read: {exc}") from exc
    try:
        parsed = KeysFile.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise KeyFileError(f"{path}: not a keys file: {exc}") from exc
    ids = [k.key_id for k in parsed.keys]
    if len(set(ids)) != len(ids):
        raise KeyFileError(f"{path}: a key id appears twice")
    return parsed.keys


def write_keys(path: Path, keys: list[KeyRecord]) -> None:
    """Replace the file in one rename, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = KeysFile(keys=keys).model_dump_json(indent=2).encode("utf-8") + b"\n"
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f"{path.name}.lock")
    descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def create_key(path: Path, *, name: str, role: Role, now: datetime) -> tuple[str, KeyRecord]:
    """Add a key named `name` (unique among the keys in force); returns the key, to show once."""
    with _locked(path):
        keys = read_keys(path)
        if any(k.name == name and k.active for k in keys):
            raise KeyCommandError(f"a key named {name!r} is in force; revoke it first or choose another name")
        token, record = new_key(name=name, role=role, now=now)
        write_keys(path, [*keys, record])
    return token, record


def revoke_key(path: Path, *, name: str, now: datetime) -> KeyRecord:
    """Revoke the key in force named `name`; it is kept, with its revocation time, for the audit."""
    with _locked(path):
        keys = read_keys(path)
        found = next((k for k in keys if k.name == name and k.active), None)
        if found is None:
            raise KeyCommandError(f"no key named {name!r} is in force in {path}")
        revoked = found.model_copy(update={"revoked_at": now})
        write_keys(path, [revoked if k is found else k for k in keys])
    return revoked


# --- what a service reads ---------------------------------------------------------------------

Failure = Literal["missing", "malformed", "unknown", "revoked", "keys_file_invalid"]

# Compared against when a key id is unknown, so an unknown id costs the same as a wrong secret.
_DUMMY_DIGEST = "0" * 64


class KeyStore:
    """The keys of one file, reloaded when the file changes. `check` answers an Identity or why not.

    An unreadable or invalid file refuses every key (and says so in the log and the failure reason)
    rather than keep serving keys it may have revoked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Not a stamp any file has: the first check always reads the file.
        self._stamp: tuple[int, int, int] | None = (-1, -1, -1)
        self._keys: dict[str, KeyRecord] = {}
        self.error: str | None = None

    def _reload_if_changed(self) -> None:
        try:
            info = self.path.stat()
            stamp: tuple[int, int, int] | None = (info.st_ino, info.st_size, info.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._keys = {k.key_id: k for k in read_keys(self.path)}
            self.error = None
        except KeyFileError as exc:
            self._keys, self.error = {}, str(exc)

    def keys(self) -> list[KeyRecord]:
        self._reload_if_changed()
        return list(self._keys.values())

    def identity(self, key_id: str) -> Identity | Failure:
        """The identity of a key in force by its id (a dashboard session names its key by id and
        is checked again on every request, so a revoked key signs its sessions out)."""
        self._reload_if_changed()
        if self.error is not None:
            return "keys_file_invalid"
        record = self._keys.get(key_id)
        if record is None:
            return "unknown"
        if not record.active:
            return "revoked"
        return Identity(key_id=record.key_id, name=record.name, role=record.role)

    def check(self, token: str | None) -> Identity | Failure:
        """The identity of `token` (the bearer key), or the reason it is refused."""
        self._reload_if_changed()
        if self.error is not None:
            return "keys_file_invalid"
        if not token:
            return "missing"
        parsed = parse_key(token)
        if parsed is None:
            return "malformed"
        key_id, secret = parsed
        record = self._keys.get(key_id)
        expected = record.secret_sha256 if record is not None else _DUMMY_DIGEST
        # Constant-time: how long the comparison takes says nothing about how much of it matched.
        if not hmac.compare_digest(secret_digest(secret), expected) or record is None:
            return "unknown"
        if not record.active:
            return "revoked"
        return Identity(key_id=record.key_id, name=record.name, role=record.role)
