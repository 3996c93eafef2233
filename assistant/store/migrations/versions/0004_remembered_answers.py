"""Organisers' answers about a customer are remembered for that customer's next meetings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from assistant.store.tables import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remembered_answers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("row_key", sa.String(32), nullable=False),
        sa.Column("side", sa.String(1), nullable=False),
        sa.Column("organiser", sa.String(320), nullable=False),
        sa.Column("answered_at", UtcDateTime, nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.UniqueConstraint("domain", "row_key"),
    )


def downgrade() -> None:
    op.drop_table("remembered_answers")
