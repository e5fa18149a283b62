"""withdrawn: a version that takes a SKU out of the catalog

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

A SKU is removed from the catalog by a version of its own (`withdrawn`), never by deleting its
rows: the classification behind a past decision stays readable (15 CFR 762.6). Nullable: every
row written before means "not withdrawn".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_products") as batch_op:
        batch_op.add_column(sa.Column("withdrawn", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_products") as batch_op:
        batch_op.drop_column("withdrawn")
