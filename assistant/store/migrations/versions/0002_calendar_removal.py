"""Calendars can be removed (by an admin, or by leaving the config) without losing their history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from assistant.store.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("calendars", sa.Column("removed_at", UtcDateTime))
    op.add_column("calendars", sa.Column("removed_by", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("calendars") as batch:
        batch.drop_column("removed_by")
        batch.drop_column("removed_at")
