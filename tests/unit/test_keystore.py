"""API keys: made, listed and revoked in the keys file (hashes only, mode 0600), checked by id and
secret, reloaded when the file changes."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exportwatch.cli import app
from shared.keystore import (
    Identity,
    KeyCommandError,
    KeyStore,
    create_key,
    parse_key,
    read_keys,
    revoke_key,
    secret_digest,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_new_key_is_kept_as_a_hash_in_a_file_only_its_owner_reads(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    token, record = create_key(path, name="a.compliance", role="approver", now=NOW)
    key_id, secret = parse_key(token) or ("", "")
    assert (key_id, record.secret_sha256) == (record.key_id, secret_digest(secret))
    assert secret not in path.read_text() and token not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [k.name for k in read_keys(path)] == ["a.compliance"]


def test_a_key_is_checked_by_id_and_secret_and_a_revoked_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    token, record = create_key(path, name="ops", role="admin", now=NOW)
    store = KeyStore(path)
    assert store.check(token) == Identity(record.key_id, "ops", "admin")
    assert store.check(None) == "missing"
    assert store.check("Bearer-ish") == "malformed"
    assert store.check(token[:-1] + ("1" if token.endswith("0") else "0")) == "unknown"
    assert store.check("ewk_0000000000000000_" + "0" * 64) == "unknown"
    revoke_key(path, name="ops", now=NOW)
    assert store.check(token) == "revoked"  # reloaded: the file changed
    assert store.identity(record.key_id) == "revoked"


def test_names_are_unique_among_keys_in_force_and_reusable_after_a_revocation(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    create_key(path, name="erp-eu1", role="viewer", now=NOW)
    with pytest.raises(KeyCommandError, match="in force"):
        create_key(path, name="erp-eu1", role="viewer", now=NOW)
    revoke_key(path, name="erp-eu1", now=NOW)
    create_key(path, name="erp-eu1", role="viewer", now=NOW)
    assert [(k.name, k.active) for k in read_keys(path)] == [("erp-eu1", False), ("erp-eu1", True)]
    with pytest.raises(KeyCommandError, match="no key named 'nobody'"):
        revoke_key(path, name="nobody", now=NOW)


def test_a_broken_keys_file_refuses_every_key_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    token, _ = create_key(path, name="ops", role="admin", now=NOW)
    store = KeyStore(path)
    assert isinstance(store.check(token), Identity)
    path.write_text(json.dumps({"version": 1, "keys": [{"name": "x"}]}))
    os.utime(path, ns=(1, 1))
    assert store.check(token) == "keys_file_invalid"
    assert store.error is not None and str(path) in store.error


def test_the_command_line_prints_the_new_key_last_and_never_lists_secrets(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    runner = CliRunner()
    made = runner.invoke(
        app, ["keys", "create", "--name", "j.doe", "--role", "reviewer", "--file", str(path)]
    )
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert KeyStore(path).check(token) == Identity(read_keys(path)[0].key_id, "j.doe", "reviewer")
    listed = runner.invoke(app, ["keys", "list", "--file", str(path)])
    assert "j.doe" in listed.stdout and token.split("_")[2] not in listed.stdout
    revoked = runner.invoke(app, ["keys", "revoke", "j.doe", "--file", str(path)])
    assert revoked.exit_code == 0 and KeyStore(path).check(token) == "revoked"
    wrong = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "boss", "--file", str(path)])
    assert wrong.exit_code != 0
