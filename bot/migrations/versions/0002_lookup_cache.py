"""Lookup results shared by every replica (the /metric cache and its single flight).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lookup_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rows", sa.Text, nullable=True),
        sa.Column("expires_at", UtcDateTime, nullable=True),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_lookup_cache_expires_at", "lookup_cache", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_lookup_cache_expires_at", table_name="lookup_cache")
    op.drop_table("lookup_cache")
