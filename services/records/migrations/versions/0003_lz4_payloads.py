"""payloads compressed with lz4 on PostgreSQL

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 19:40:00

On PostgreSQL the large columns (the trail's and the reference events' payloads, the outbox's
messages) are compressed with lz4 instead of pglz when they are stored out of line or compressed
(TOAST), where the server supports it (built with lz4: `default_toast_compression` then offers
it). Profiled under the pipeline bench, pglz compressing the payloads was most of the server's
work per trail step (docs/benchmarks.md, "Records on PostgreSQL"). A column's method applies to
the values written after the change; each stored value names its own method, so rows stored
before read as they always did and nothing is rewritten. SQLite has no such setting: nothing
changes there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LARGE_COLUMNS = {
    "trail_steps": ("payload", "payload_raw"),
    "reference_events": ("payload", "payload_raw"),
    "outbox": ("value",),
}


def _set_compression(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    offered = bind.execute(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    if method not in (offered or []):
        return
    # Revisions run in one transaction: 0002 read these tables through server-side cursors, which
    # stay open until the transaction ends, and ALTER TABLE refuses a table an open cursor reads.
    op.execute("CLOSE ALL")
    for table, columns in LARGE_COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {column} SET COMPRESSION {method}" for column in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
