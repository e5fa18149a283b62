"""reference_documents on catalogs made before the column existed

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

A catalog written before `reference_documents` existed was stamped at the baseline without it (the
start-up used to add it in place). Add it there, nullable: older rows have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("catalog_products")}
    if "reference_documents" not in columns:
        with op.batch_alter_table("catalog_products") as batch_op:
            batch_op.add_column(sa.Column("reference_documents", sa.Text(), nullable=True))


def downgrade() -> None:
    pass
