"""A calendar remembers its owner's language as the provider states it, read once, so the
organiser's emails can be written in it without asking the provider each time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from assistant.store.tables import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("calendars", sa.Column("owner_language", sa.String(16)))
    op.add_column("calendars", sa.Column("owner_language_read_at", UtcDateTime))


def downgrade() -> None:
    with op.batch_alter_table("calendars") as batch:
        batch.drop_column("owner_language_read_at")
        batch.drop_column("owner_language")
