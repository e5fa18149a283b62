"""The `records` section of policy/policy.json: how long records are kept, which orders are open.

Changing a value changes what is re-screened and what is purged: bump `policy_version` and say why
in the change log, as for every other section. Checked when records starts (a bad value stops it,
naming the key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.policy import load_policy


@dataclass(frozen=True)
class RecordsPolicy:
    version: str
    # 15 CFR 762.6(a): five years from the latest of the export (shipment), the decision, ...
    retention_years: int
    # An order decided this many days ago or less, and not shipped, is open: re-screened when a
    # list changes.
    open_order_days: int
    # A shipped order is still re-screened for this many days after shipment; a new match raises a
    # post-shipment alert (never an amendment).
    post_shipment_alert_days: int
    # Outbox rows already published are deleted after this many days (the events themselves are
    # trail steps, kept with their orders).
    published_outbox_days: int

    @classmethod
    def from_section(cls, version: str, section: Mapping[str, Any]) -> RecordsPolicy:
        def whole(key: str, low: int, high: int) -> int:
            value = section.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(
                    f"policy {version}: records.{key}={value!r} must be a whole number from {low} to {high}"
                )
            return value

        retention = whole("retention_years", 5, 100)
        return cls(
            version=version,
            retention_years=retention,
            open_order_days=whole("open_order_days", 1, 3650),
            post_shipment_alert_days=whole("post_shipment_alert_days", 0, 3650),
            published_outbox_days=whole("published_outbox_days", 1, 3650),
        )

    def open_since(self, now: datetime) -> datetime:
        return now - timedelta(days=self.open_order_days)

    def shipped_since(self, now: datetime) -> datetime:
        return now - timedelta(days=self.post_shipment_alert_days)

    def retention_until(self, *moments: datetime | None) -> datetime | None:
        """The end of retention: `retention_years` after the latest of `moments` (15 CFR 762.6:
        the decision, the shipment), None when none is known yet."""
        known = [m for m in moments if m is not None]
        if not known:
            return None
        latest = max(known)
        try:
            return latest.replace(year=latest.year + self.retention_years)
        except ValueError:  # 29 February
            return latest.replace(year=latest.year + self.retention_years, day=28)


def load_records_policy(path: Path) -> RecordsPolicy:
    policy = load_policy(path)
    return RecordsPolicy.from_section(policy.version, policy.section("records"))
