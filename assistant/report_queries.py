"""The team report's reads: a handful of queries, whatever the number of meetings.

One for the calendars, one for the meetings and their conversations (only the snapshot's end
and mark, never whole snapshots), one each for recommendations, organisers' answers and emails
delivered. assistant.team_report counts what they return.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.orm import Session

from assistant.config import in_domains
from assistant.models import Provenance
from assistant.store.tables import (
    Answer,
    Conversation,
    Outbox,
    RecommendationRecord,
    SeenMeeting,
    State,
    WatchedCalendar,
)


class TalkRow(NamedTuple):
    """One conversation and its meeting, as much as the report needs (no whole snapshot)."""

    id: int
    state: State
    questions: tuple[int, ...]
    organiser_choice: str | None
    asked_at: datetime | None
    reminded_at: datetime | None
    answered_at: datetime | None
    left_alone: bool
    week_of: datetime  # the meeting's start (its detection when it has no start)
    start: datetime | None
    end: datetime | None
    removed: bool
    mark: dict[str, Any] | None


class Decisions(NamedTuple):
    """A conversation's recommendations: the latest, the first answered, what was inferred."""

    format: str
    decided_by: str
    totals: dict[str, int]
    rows: dict[str, list[str]]
    first_answer_at: datetime | None
    filled_earlier: frozenset[str]  # rows an earlier record had inferred or from config


@dataclass(frozen=True)
class Scope:
    where: tuple[ColumnElement[bool], ...]

    def conversation_ids(self) -> Any:
        return (select(Conversation.id).join(SeenMeeting, Conversation.meeting_id == SeenMeeting.id)
                .where(*self.where))

    def organisers(self) -> Any:
        return (select(SeenMeeting.organiser).join(Conversation).where(*self.where)
                .distinct())


def calendars_named(session: Session, teams: tuple[str, ...]) -> dict[int, str]:
    """The watched calendars the teams name, by id (all of them for a domain team)."""
    addresses = {t.lower() for t in teams if "@" in t}
    domains = [t.lower().lstrip("@.") for t in teams if "@" not in t]
    rows = session.execute(select(WatchedCalendar.id, WatchedCalendar.address)).all()
    return {row.id: row.address.lower() for row in rows
            if row.address.lower() in addresses
            or in_domains(row.address.rpartition("@")[2], domains)}


def scope_of(teams: tuple[str, ...], calendars: dict[int, str], since: date) -> Scope:
    starts = func.coalesce(SeenMeeting.start_at, Conversation.detected_at)
    where: list[ColumnElement[bool]] = [
        Conversation.round >= 1, starts >= datetime.combine(since, time(), UTC)]
    if teams:
        wanted: list[ColumnElement[bool]] = []
        named = {t.lower() for t in teams if "@" in t}
        ids = [cid for cid, address in calendars.items() if address in named]
        if ids:
            wanted.append(SeenMeeting.calendar_id.in_(ids))
        for domain in (t.lower().lstrip("@.") for t in teams if "@" not in t):
            escaped = domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            wanted.append(SeenMeeting.organiser.like(f"%@{escaped}", escape="\\"))
            wanted.append(SeenMeeting.organiser.like(f"%.{escaped}", escape="\\"))
        where.append(or_(*wanted) if wanted else false())
    return Scope(tuple(where))


def talks_in(session: Session, scope: Scope) -> list[TalkRow]:
    query = (
        select(Conversation.id, Conversation.state, Conversation.questions,
               Conversation.organiser_choice, Conversation.asked_at, Conversation.reminded_at,
               Conversation.answered_at, Conversation.left_alone, Conversation.detected_at,
               SeenMeeting.start_at, SeenMeeting.removed,
               SeenMeeting.snapshot[("end", "datetime")].as_string().label("end"),
               SeenMeeting.snapshot["mark"].label("mark"))
        .join(SeenMeeting, Conversation.meeting_id == SeenMeeting.id).where(*scope.where))
    talks = []
    for row in session.execute(query):
        end = datetime.fromisoformat(row.end) if row.end else None
        talks.append(TalkRow(
            id=row.id, state=State(row.state), questions=tuple(row.questions or ()),
            organiser_choice=row.organiser_choice, asked_at=row.asked_at,
            reminded_at=row.reminded_at, answered_at=row.answered_at,
            left_alone=bool(row.left_alone), week_of=row.start_at or row.detected_at,
            start=row.start_at, end=end, removed=bool(row.removed),
            mark=row.mark if isinstance(row.mark, dict) else None))
    return talks


def decisions_in(session: Session, scope: Scope) -> dict[int, Decisions]:
    query = (select(RecommendationRecord.conversation_id, RecommendationRecord.format,
                    RecommendationRecord.decided_by, RecommendationRecord.without_answer,
                    RecommendationRecord.at,
                    RecommendationRecord.detail["totals"].label("totals"),
                    RecommendationRecord.detail["rows"].label("rows"))
             .where(RecommendationRecord.conversation_id.in_(scope.conversation_ids()))
             .order_by(RecommendationRecord.conversation_id, RecommendationRecord.id))
    by_talk: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(query):
        by_talk[row[0]].append(row)
    found = {}
    for talk_id, history in by_talk.items():
        _, format_, decided_by, _, _, totals, rows = history[-1]
        answered = [at for _, _, _, without, at, _, _ in history if not without]
        filled = frozenset(key for *_, earlier in history[:-1]
                           for kind in ("inferred", "defaulted")
                           for key in (earlier or {}).get(kind, ()))
        found[talk_id] = Decisions(format_, decided_by, totals or {}, rows or {},
                                  min(answered) if answered else None, filled)
    return found


def organiser_rows_in(session: Session, scope: Scope) -> dict[int, tuple[str, ...]]:
    query = select(Answer.conversation_id, Answer.row_key).where(
        Answer.provenance == Provenance.ORGANISER.value,
        Answer.conversation_id.in_(scope.conversation_ids()))
    rows: dict[int, list[str]] = defaultdict(list)
    for talk_id, key in session.execute(query):
        rows[talk_id].append(key)
    return {talk_id: tuple(keys) for talk_id, keys in rows.items()}


EMAIL_KINDS = ("question", "digest", "reminder", "clarification", "confirmation")


def emails_sent_in(session: Session, scope: Scope, since: date) -> tuple[tuple[str, int], ...]:
    """Emails delivered about the report's meetings (digests: to their organisers, since)."""
    about_meetings = Outbox.conversation_id.in_(scope.conversation_ids())
    digests = (Outbox.conversation_id.is_(None) & Outbox.recipient.in_(scope.organisers())
               & (Outbox.created_at >= datetime.combine(since, time(), UTC)))
    counts = dict(session.execute(
        select(Outbox.email_kind, func.count()).where(
            Outbox.kind == "email", Outbox.state == "done", or_(about_meetings, digests))
        .group_by(Outbox.email_kind)).all())
    kinds = [*EMAIL_KINDS, *sorted(set(counts) - set(EMAIL_KINDS))]
    return tuple((kind, counts.get(kind, 0)) for kind in kinds)
