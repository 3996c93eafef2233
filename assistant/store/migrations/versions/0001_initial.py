"""The first schema: calendars, meetings, conversations, answers, outbox, audit, leases.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from assistant.store.tables import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendars",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("sync_due", UtcDateTime, nullable=False, index=True),
        sa.Column("last_synced_at", UtcDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires", UtcDateTime),
        sa.UniqueConstraint("provider", "address"),
    )
    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("calendar_id", sa.Integer, sa.ForeignKey("calendars.id"), nullable=False,
                  index=True),
        sa.Column("event_id", sa.String(1024), nullable=False),
        sa.Column("series_id", sa.String(1024), nullable=False),
        sa.Column("etag", sa.String(256), nullable=False),
        sa.Column("organiser", sa.String(320), nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("start_at", UtcDateTime),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("first_seen_at", UtcDateTime, nullable=False),
        sa.Column("last_seen_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("calendar_id", "event_id"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id"), nullable=False,
                  unique=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("why", sa.Text, nullable=False),
        sa.Column("customer_domains", sa.JSON, nullable=False),
        sa.Column("questions", sa.JSON, nullable=False),
        sa.Column("token", sa.String(64)),
        sa.Column("organiser_choice", sa.String(16)),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("left_alone", sa.Boolean, nullable=False),
        *(sa.Column(name, UtcDateTime) for name in (
            "deadline_at", "asked_at", "reminded_at", "clarified_at", "answered_at",
            "decided_at", "annotated_at", "cancelled_at")),
        sa.Column("detected_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"),
                  nullable=False),
        sa.Column("row_key", sa.String(32), nullable=False),
        sa.Column("side", sa.String(1), nullable=False),
        sa.Column("provenance", sa.String(16), nullable=False),
        sa.Column("why", sa.Text, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("conversation_id", "row_key"),
    )
    op.create_table(
        "recommendations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id"),
                  nullable=False, index=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(32), nullable=False),
        sa.Column("without_answer", sa.Boolean, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String(255), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("email_kind", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False, index=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id")),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires", UtcDateTime),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("done_at", UtcDateTime),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UtcDateTime, nullable=False, index=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id")),
        sa.Column("calendar", sa.String(320), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "inbound_mail",
        sa.Column("message_key", sa.String(255), primary_key=True),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "used_links",
        sa.Column("nonce", sa.String(32), primary_key=True),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("calendar_id", sa.Integer, sa.ForeignKey("calendars.id"), nullable=False,
                  index=True),
        sa.Column("channel_id", sa.String(255), nullable=False, unique=True),
        sa.Column("resource_id", sa.String(255), nullable=False),
        sa.Column("token", sa.String(255), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("expires", UtcDateTime, nullable=False),
    )
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64)),
        sa.Column("expires", UtcDateTime),
    )


def downgrade() -> None:
    for table in ("job_leases", "channels", "used_links", "inbound_mail", "audit", "outbox",
                  "recommendations", "answers", "conversations", "meetings", "calendars"):
        op.drop_table(table)
