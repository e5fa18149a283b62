"""The versioned policy file: thresholds, list effects, risk scores, red-flag rules.

Rules a compliance officer may change are data, not code. The version stamped on every decision is
the file's own `policy_version` plus a hash of its content, so an edit without a version bump is
still told apart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Policy:
    version: str
    content: dict[str, Any]

    def section(self, name: str) -> dict[str, Any]:
        value = self.content.get(name)
        if not isinstance(value, dict):
            raise ValueError(f"policy {self.version}: section {name!r} is missing or not an object")
        return value


def load_policy(path: Path) -> Policy:
    raw = path.read_bytes()
    try:
        content = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"policy file {path}: invalid JSON: {exc}") from exc
    declared = content.get("policy_version")
    if not isinstance(declared, str) or not declared:
        raise ValueError(f"policy file {path}: 'policy_version' must be a non-empty string")
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return Policy(version=f"{declared}+sha256:{digest}", content=content)
