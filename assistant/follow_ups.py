"""When to write to an organiser again: reminders, deadlines, clarifications, digests.

Pure rules over what was sent and when, so the service can ask them on every tick and a test
can state each one in a line:
- one reminder, `reminder_after_hours` after the question, only while the meeting is far enough
  away that an answer can still arrive before the deadline;
- the deadline is `decide_before_hours` before the meeting: then the assistant decides on what
  it has and says so;
- at most one clarification per meeting in any 24 hours, so a confused exchange never floods;
- an organiser gets at most `daily_question_cap` questions in 24 hours; the rest of the day's
  new meetings wait for one digest.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

DAY = timedelta(hours=24)


class Kind(enum.StrEnum):
    QUESTION = "question"
    REMINDER = "reminder"
    CLARIFICATION = "clarification"
    CONFIRMATION = "confirmation"
    DIGEST = "digest"


@dataclass(frozen=True)
class Sent:
    kind: Kind
    organiser: str
    meeting: str  # the meeting's key in the store ('' for a digest)
    at: datetime


def deadline(meeting_start: datetime, decide_before_hours: int) -> datetime:
    return meeting_start - timedelta(hours=decide_before_hours)


def reminder_due(
    sent: Sequence[Sent], meeting: str, meeting_start: datetime, now: datetime, *,
    reminder_after_hours: int, decide_before_hours: int,
) -> bool:
    """True once per unanswered question, when a reminder still has time to help."""
    mine = [s for s in sent if s.meeting == meeting]
    asked = [s.at for s in mine if s.kind in (Kind.QUESTION, Kind.DIGEST)]
    if not asked or any(s.kind is Kind.REMINDER for s in mine):
        return False
    due = min(asked) + timedelta(hours=reminder_after_hours)
    # A reminder needs a few hours before the deadline to be of any use.
    return due <= now < deadline(meeting_start, decide_before_hours) - timedelta(hours=2)


def deadline_passed(meeting_start: datetime, now: datetime, decide_before_hours: int) -> bool:
    return now >= deadline(meeting_start, decide_before_hours)


def clarification_allowed(sent: Sequence[Sent], meeting: str, now: datetime) -> bool:
    return not any(s.kind is Kind.CLARIFICATION and s.meeting == meeting and now - s.at < DAY
                   for s in sent)


def split_for_cap(
    sent: Sequence[Sent], organiser: str, waiting: Sequence[str], now: datetime, cap: int
) -> tuple[list[str], list[str]]:
    """(meetings to ask one by one now, meetings for the digest) for one organiser.

    The questions of the last 24 hours count against the cap; whatever does not fit goes into
    one digest, which itself counts as one more email.
    """
    recent = sum(1 for s in sent if s.organiser == organiser and now - s.at < DAY
                 and s.kind in (Kind.QUESTION, Kind.DIGEST))
    room = max(cap - recent, 0)
    if len(waiting) <= room:
        return list(waiting), []
    singles = list(waiting[: max(room - 1, 0)])  # keep one slot for the digest itself
    return singles, list(waiting[len(singles) :])
