"""What to do about a meeting when it appears or changes: pure rules the service applies.

The service keeps the state (assistant.store) and the effects (the outbox); these functions
only decide, from the meeting as it reads now, its assessment and the clock:
- a meeting starts a conversation only if it is a customer meeting its organiser owns, at set
  times, still ahead; otherwise it is skipped with a reason an admin can read;
- with rows worth asking (answers that could change the format) and time before the
  deadline, the organiser is asked; with nothing worth asking, or no time left, the assistant
  decides at once on what it has, and says why it did not ask;
- an annotated meeting that changed is written again only if the plan differs from what the
  event already says (our own write comes back through the sync and must not echo forever).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from assistant import follow_ups
from assistant.annotate import AnnotationPlan
from assistant.assess import Assessment
from assistant.config import Policy
from assistant.edits import HumanEdit, human_edits
from assistant.language import N_, Nn_
from assistant.language.phrases import Phrase
from assistant.models import Meeting


class Opening(enum.StrEnum):
    SKIP = "skip"
    ASK = "ask"
    DECIDE = "decide"  # nothing worth asking, or too late to ask


class Unasked(enum.StrEnum):
    """Why a meeting was decided without asking its organiser anything."""

    SETTLED = "settled"  # no answer could change the format
    TOO_LATE = "too_late"  # too close to the meeting to wait for one


@dataclass(frozen=True)
class Start:
    opening: Opening
    why: str
    deadline: datetime | None = None
    unasked: Unasked | None = None  # with DECIDE


def start(assessment: Assessment, now: datetime, policy: Policy) -> Start:
    """How a conversation about a newly seen (or newly qualifying) meeting begins."""
    meeting, detection = assessment.meeting, assessment.detection
    if not detection.is_customer_meeting:
        return Start(Opening.SKIP, detection.why)
    if not meeting.organizer_is_owner:
        return Start(Opening.SKIP, "a copy of a meeting someone else organises")
    span = meeting.timed_span
    if span is None or span[1] <= now:
        return Start(Opening.SKIP, "it is in the past")
    if span[0] <= now:
        return Start(Opening.SKIP, "it has already started")
    if is_series_exception(meeting):
        return Start(Opening.SKIP, "one occurrence of a series, which is handled as a whole")
    deadline = decision_deadline(span[0], policy)
    if not assessment.questions:
        return Start(Opening.DECIDE, "no answer could change the format", deadline,
                     Unasked.SETTLED)
    if now >= deadline:
        return Start(Opening.DECIDE, "too close to the meeting to ask", deadline,
                     Unasked.TOO_LATE)
    return Start(Opening.ASK, detection.why, deadline)


def decision_deadline(meeting_start: datetime, policy: Policy) -> datetime:
    return follow_ups.deadline(meeting_start, policy.decide_before_hours)


def is_series_exception(meeting: Meeting) -> bool:
    """A moved or edited occurrence of a series: the series itself carries the conversation."""
    return bool(meeting.series_id) and meeting.series_id != meeting.event_id


def rewrite_needed(meeting: Meeting, plan: AnnotationPlan | None) -> bool:
    """True when writing plan would change what the event says now, and it is ours to change.

    A person who set the length back has the last word: while the format stays, the event is
    not written again (even the note's "50 minutes" line stays, rather than send every guest
    another update right after theirs).
    """
    if plan is None:
        return False
    if (HumanEdit.LENGTH_CHANGED in human_edits(meeting) and meeting.mark is not None
            and plan.mark.format is meeting.mark.format):
        return False
    return (plan.description != meeting.description or plan.add_video_link
            or (plan.end is not None and plan.end != meeting.end) or plan.mark != meeting.mark)


def changes_made(before: Meeting, plan: AnnotationPlan) -> list[Phrase]:
    """What a write of plan changed, in the organiser's words, for the confirmation email."""
    changes = [Phrase(N_("the invite now says which format and why"))]
    span = before.timed_span
    if plan.end is not None and span is not None:
        minutes = int((plan.end - span[0]).total_seconds() // 60)
        was = int((span[1] - span[0]).total_seconds() // 60)
        changes.append(Phrase(*Nn_("shortened: {count} minute instead of {was}",
                                   "shortened: {count} minutes instead of {was}"),
                              count=minutes, was=was) if minutes < was else
                       Phrase(*Nn_("given back its length: {count} minute instead of {was}",
                                   "given back its length: {count} minutes instead of {was}"),
                              count=minutes, was=was))
    if plan.add_video_link:
        changes.append(Phrase(N_("a video link was added")))
    return changes
