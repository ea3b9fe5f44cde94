"""Request follow-ups: the issue as last told to its requester.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "followup_issues",
        sa.Column("repo", sa.String(200), primary_key=True),
        sa.Column("issue_number", sa.Integer, primary_key=True),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.Column("github_updated_at", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("followup_issues")
