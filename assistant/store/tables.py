"""The assistant's state, as SQLAlchemy 2 tables: what it watches, saw, asked, decided and did.

Every outside effect is an `Outbox` row first, written in the same transaction as the state
change that called for it, with a unique idempotency key: a crash before the commit leaves
neither, a crash after it leaves a row that some worker delivers, and a second attempt to
enqueue the same effect finds the key taken. Leases (an owner and an expiry) let several
workers share calendars, outbox rows and the singleton jobs; an expired lease is free again,
so a worker that died holds nothing for long. Schema changes go through Alembic
(assistant/store/migrations); a test checks that the migrations and these tables agree.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no zone: store naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class State(enum.StrEnum):
    """Where a meeting's conversation is."""

    DETECTED = "detected"  # a customer meeting, its question not yet sent (waiting for the cap)
    ASKED = "asked"
    REMINDED = "reminded"
    ANSWERED = "answered"  # the organiser answered; the annotation is on its way
    DECIDED = "decided"  # decided without an answer (nothing to ask, or the deadline passed)
    ANNOTATED = "annotated"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # not a customer meeting (or not ours to touch): nothing to do

    @property
    def open(self) -> bool:
        """Still waiting for the organiser."""
        return self in (State.DETECTED, State.ASKED, State.REMINDED)


class WatchedCalendar(Base):
    """A calendar the assistant watches, or was told to: paused and removed ones stay here."""

    __tablename__ = "calendars"
    __table_args__ = (UniqueConstraint("provider", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    cursor: Mapped[str | None] = mapped_column(Text)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="config")  # who added it: config, cli
    # Removed calendars keep their rows (their meetings and audit refer to them), unwatched.
    removed_at: Mapped[datetime | None]
    removed_by: Mapped[str | None] = mapped_column(String(16))  # config or cli (or admin page)
    sync_due: Mapped[datetime] = mapped_column(index=True)
    last_synced_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires: Mapped[datetime | None]
    # The owner's language as the provider states it, negotiated to a supported one ("":
    # none, or not one we write); None until read.
    owner_language: Mapped[str | None] = mapped_column(String(16))
    owner_language_read_at: Mapped[datetime | None]

    @property
    def watching(self) -> bool:
        return not self.paused and self.removed_at is None

    @classmethod
    def watched(cls) -> Any:
        """The SQL condition of `watching`."""
        return (cls.paused.is_(False)) & (cls.removed_at.is_(None))


class SeenMeeting(Base):
    __tablename__ = "meetings"
    __table_args__ = (UniqueConstraint("calendar_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(1024))
    series_id: Mapped[str] = mapped_column(String(1024), default="")
    etag: Mapped[str] = mapped_column(String(256), default="")
    organiser: Mapped[str] = mapped_column(String(320), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    start_at: Mapped[datetime | None]
    snapshot: Mapped[dict[str, Any]]  # the Meeting as last read (assistant.store.codec)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]

    calendar: Mapped[WatchedCalendar] = relationship()
    conversation: Mapped[Conversation | None] = relationship(back_populates="meeting")


class Conversation(Base):
    """The assistant's exchange with the organiser about one meeting (its id is in the token)."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    why: Mapped[str] = mapped_column(Text, default="")  # detection's reason, or why skipped
    customer_domains: Mapped[list[Any]] = mapped_column(default=list)
    questions: Mapped[list[Any]] = mapped_column(default=list)  # row numbers, in asked order
    token: Mapped[str | None] = mapped_column(String(64))
    organiser_choice: Mapped[str | None] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer, default=0)  # bumps when a rewrite is due
    # Bumps each time the conversation (re)opens: a meeting cancelled and restored, or one
    # that lost its customers and gained them back, is asked again, under fresh keys.
    round: Mapped[int] = mapped_column(Integer, default=0)
    left_alone: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline_at: Mapped[datetime | None]
    detected_at: Mapped[datetime]
    asked_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    clarified_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    # The Date of the last reply applied: an older one arriving later is the same mail again.
    last_reply_written_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    annotated_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]

    meeting: Mapped[SeenMeeting] = relationship(back_populates="conversation")
    answers: Mapped[list[Answer]] = relationship(cascade="all, delete-orphan")

    @classmethod
    def first_for(cls, meeting: SeenMeeting, now: datetime) -> Conversation:
        """A new conversation (nothing to do yet) about meeting, usable before it is flushed:
        column defaults only apply at the INSERT, and a batch inserts its rows at the end."""
        return cls(meeting=meeting, state=State.SKIPPED, detected_at=now, why="",
                   customer_domains=[], questions=[], revision=0, round=0, left_alone=False)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("conversation_id", "row_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    row_key: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(1))
    provenance: Mapped[str] = mapped_column(String(16))
    why: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class RememberedAnswer(Base):
    """An organiser's latest answer about a customer (a row that describes the customer, such
    as its values): reused for that customer's next meetings until it is too old or an admin
    forgets it."""

    __tablename__ = "remembered_answers"
    __table_args__ = (UniqueConstraint("domain", "row_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(255))
    row_key: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(1))
    organiser: Mapped[str] = mapped_column(String(320))
    answered_at: Mapped[datetime]
    conversation_id: Mapped[int | None]  # where it was said (no key: it may outlive it)


class RecommendationRecord(Base):
    __tablename__ = "recommendations"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    format: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str] = mapped_column(String(32))
    without_answer: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[dict[str, Any]]  # totals, reasons and rows, as `assistant recommend --json`
    at: Mapped[datetime]


class Outbox(Base):
    """One effect to deliver: an email (its whole message) or an event write."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # email or annotate
    email_kind: Mapped[str] = mapped_column(String(16), default="")  # question, reminder, ...
    recipient: Mapped[str] = mapped_column(String(320), default="", index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires: Mapped[datetime | None]
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class AuditEntry(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    calendar: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    # So that an entry can be written about a conversation not yet flushed (without its id).
    conversation: Mapped[Conversation | None] = relationship()

    @classmethod
    def of(cls, talk: Conversation | None, at: datetime, action: str, detail: str) -> AuditEntry:
        """What the assistant did about talk's meeting (or about no meeting), and why."""
        calendar = talk.meeting.calendar.address if talk is not None else ""
        return cls(at=at, conversation=talk, calendar=calendar,
                   action=action, detail=detail[:4000])


class HandledReply(Base):
    """A reply already handled, by Message-ID (or a digest of the bytes): never handled twice."""

    __tablename__ = "inbound_mail"

    message_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    outcome: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class UsedLink(Base):
    """A one-click answer link already used: each works once."""

    __tablename__ = "used_links"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime]


class PushChannel(Base):
    """A Google push channel or Graph subscription for one watched calendar."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id"), index=True)
    channel_id: Mapped[str] = mapped_column(String(255), unique=True)
    resource_id: Mapped[str] = mapped_column(String(255), default="")
    token: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(Text)
    expires: Mapped[datetime]

    calendar: Mapped[WatchedCalendar] = relationship()


class JobLease(Base):
    """Jobs that one worker at a time runs (the inbox poll, follow-ups, channel renewal)."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    expires: Mapped[datetime | None]
