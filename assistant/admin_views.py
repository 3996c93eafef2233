"""What the admin page shows, read from the store: a few bounded, read-only queries per page.

Each function takes an open session and returns plain frozen values, so the templates never
touch the database. Nothing secret is read: no reply tokens, channel secrets or cursors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.calendar_admin import IN_FLIGHT, CalendarHealth, health
from assistant.store.tables import (
    AuditEntry,
    Conversation,
    Outbox,
    RecommendationRecord,
    SeenMeeting,
    WatchedCalendar,
)

MEETINGS_SHOWN = 200
RECOMMENDATIONS_SHOWN = 50
AUDIT_PER_PAGE = 50


@dataclass(frozen=True)
class Overview:
    calendars: list[CalendarHealth]
    conversations: dict[str, int]  # by state
    outbox: dict[str, int]  # effects by state: pending, failed (done ones are not counted)

    @property
    def in_flight(self) -> int:
        return sum(self.conversations.get(state, 0) for state in IN_FLIGHT)


@dataclass(frozen=True)
class MeetingInFlight:
    state: str
    title: str
    organiser: str
    calendar: str
    provider: str
    start_at: datetime | None
    detected_at: datetime
    asked_at: datetime | None
    reminded_at: datetime | None
    deadline_at: datetime | None
    questions: int  # how many rows the organiser is asked
    customers: list[str]
    event_id: str  # the provider's id, for `assistant preview --calendar --event`


@dataclass(frozen=True)
class RecentRecommendation:
    at: datetime
    format: str
    decided_by: str
    without_answer: bool
    reasons: list[str]
    totals: dict[str, int]
    title: str
    organiser: str
    start_at: datetime | None


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    action: str
    calendar: str
    detail: str
    title: str  # the meeting's, when the entry is about one


@dataclass(frozen=True)
class AuditPage:
    lines: list[AuditLine]
    page: int  # 1 is the newest
    pages: int
    total: int


def overview(session: Session, now: datetime) -> Overview:
    states = dict(session.execute(select(Conversation.state, func.count())
                                  .group_by(Conversation.state)).all())
    outbox = dict(session.execute(select(Outbox.state, func.count())
                                  .where(Outbox.state.in_(("pending", "failed")))
                                  .group_by(Outbox.state)).all())
    return Overview(health(session, now), {str(k): int(v) for k, v in states.items()},
                    {str(k): int(v) for k, v in outbox.items()})


def meetings_in_flight(session: Session, limit: int = MEETINGS_SHOWN) -> list[MeetingInFlight]:
    """Conversations still under way, the soonest meeting first."""
    rows = session.execute(
        select(Conversation, SeenMeeting, WatchedCalendar)
        .join(SeenMeeting, Conversation.meeting_id == SeenMeeting.id)
        .join(WatchedCalendar, SeenMeeting.calendar_id == WatchedCalendar.id)
        .where(Conversation.state.in_(IN_FLIGHT))
        .order_by(SeenMeeting.start_at.is_(None), SeenMeeting.start_at, Conversation.id)
        .limit(limit)).all()
    return [MeetingInFlight(
        state=talk.state, title=seen.title, organiser=seen.organiser, calendar=calendar.address,
        provider=calendar.provider, start_at=seen.start_at, detected_at=talk.detected_at,
        asked_at=talk.asked_at, reminded_at=talk.reminded_at, deadline_at=talk.deadline_at,
        questions=len(talk.questions or []), customers=[str(d) for d in talk.customer_domains],
        event_id=seen.event_id)
        for talk, seen, calendar in rows]


def recent_recommendations(session: Session, limit: int = RECOMMENDATIONS_SHOWN
                           ) -> list[RecentRecommendation]:
    """The latest recommendations, newest first, with their reasons."""
    rows = session.execute(
        select(RecommendationRecord, SeenMeeting)
        .join(Conversation, RecommendationRecord.conversation_id == Conversation.id)
        .join(SeenMeeting, Conversation.meeting_id == SeenMeeting.id)
        .order_by(RecommendationRecord.at.desc(), RecommendationRecord.id.desc())
        .limit(limit)).all()
    return [RecentRecommendation(
        at=record.at, format=record.format, decided_by=record.decided_by,
        without_answer=record.without_answer, reasons=_strings(record.detail.get("reasons")),
        totals=_totals(record.detail.get("totals")), title=seen.title,
        organiser=seen.organiser, start_at=seen.start_at)
        for record, seen in rows]


def audit_page(session: Session, page: int, per_page: int = AUDIT_PER_PAGE) -> AuditPage:
    """One page of the audit log, newest first; a page past the end shows the last one."""
    total = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = session.execute(
        select(AuditEntry, SeenMeeting.title)
        .outerjoin(Conversation, AuditEntry.conversation_id == Conversation.id)
        .outerjoin(SeenMeeting, Conversation.meeting_id == SeenMeeting.id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .offset((page - 1) * per_page).limit(per_page)).all()
    lines = [AuditLine(entry.at, entry.action, entry.calendar, entry.detail, title or "")
             for entry, title in rows]
    return AuditPage(lines, page, pages, total)


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _totals(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int)}
