"""Plan the invite's annotation: the description block, the shorter end, the video link.

Planning is pure: it says what the event should look like and leaves writing it (with the
provider's ETag) to the calendar adapters. Planning an already-annotated meeting gives the
same result as planning the original, so a later run replaces the block, never adds one. The
note is written in the customers' language, its reasons too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from assistant import block
from assistant.edits import HumanEdit, human_edits, note_digest
from assistant.language import DEFAULT
from assistant.language.phrases import voice
from assistant.models import AssistantMark, Format, Meeting, Recommendation
from assistant.rendering import Renderer

HOUR = timedelta(minutes=60)
MAX_INVITE_REASONS = 3  # an invite is read in passing: the strongest few reasons, not all


@dataclass(frozen=True)
class AnnotationPlan:
    """What the event should become. end=None leaves the end time as it is."""

    description: str
    description_is_html: bool
    end: datetime | None
    add_video_link: bool
    mark: AssistantMark  # stored with the event, so the next run can tell a person's edits


def virtual_duration(duration: timedelta, target_minutes: int) -> timedelta:
    """The length of a virtual meeting: an hour becomes the target, longer ones lose as much.

    At a target of 50: 30 stays 30, 55 and 60 become 50, 90 becomes 80. Never longer.
    """
    target = timedelta(minutes=target_minutes)
    if duration <= target:
        return duration
    if duration <= HOUR:
        return target
    return duration - (HOUR - target)


def plan_annotation(
    meeting: Meeting,
    recommendation: Recommendation,
    renderer: Renderer,
    *,
    organisation_name: str,
    virtual_minutes: int,
    language: str = DEFAULT,
) -> AnnotationPlan | None:
    """Plan the annotation of meeting for recommendation, its note in language; None leaves
    the event alone.

    The meeting's mark says what the assistant wrote last. A person who removed or edited the
    note is not overruled (None); a person who changed the length keeps it, now and later. The
    duration rule applies to the length before the assistant shortened it, so a second run does
    not shorten 80 minutes to 70, and a meeting that turns in person gets its hour back.
    """
    edits = human_edits(meeting)
    if edits & {HumanEdit.NOTE_REMOVED, HumanEdit.NOTE_EDITED}:
        return None
    mark = meeting.mark
    length_by_person = HumanEdit.LENGTH_CHANGED in edits or bool(mark and mark.length_by_person)
    virtual = recommendation.format is Format.VIRTUAL
    end, minutes, minutes_before = _length(meeting, virtual, virtual_minutes, length_by_person)
    link_added_before = bool(mark and mark.video_link_added)
    # A link we added that is gone again was removed by a person: do not add it back.
    add_video_link = virtual and not meeting.video_link and not link_added_before
    our_link_is_there = virtual and link_added_before and bool(meeting.video_link)
    context = {
        "virtual": virtual,
        "reasons": [voice(language).say(reason)
                    for reason in recommendation.invite_reasons[:MAX_INVITE_REASONS]],
        "minutes": minutes,
        # Kept on later runs while our link is there, so the note does not change needlessly.
        "adding_video_link": add_video_link or our_link_is_there,
        "organisation_name": organisation_name,
    }
    if meeting.description_is_html:
        new_block = block.wrap_html(renderer.render("annotation.html.j2", context, language),
                                    language)
    else:
        body = renderer.render("annotation.txt.j2", context, language)
        new_block = block.wrap_text(body, block.newline_of(meeting.description), language)
    description = block.put_block(meeting.description, new_block, meeting.description_is_html)
    return AnnotationPlan(
        description=description,
        description_is_html=meeting.description_is_html,
        end=end,
        add_video_link=add_video_link,
        mark=AssistantMark(
            format=recommendation.format,
            block_hash=note_digest(description, meeting.description_is_html) or "",
            minutes_set=minutes,
            minutes_before=minutes_before,
            length_by_person=length_by_person,
            video_link_added=add_video_link or (virtual and link_added_before),
        ),
    )


def applied(meeting: Meeting, plan: AnnotationPlan) -> Meeting:
    """The meeting as it reads once plan is written (the provider's own additions aside)."""
    return replace(
        meeting,
        description=plan.description,
        end=plan.end or meeting.end,
        mark=plan.mark,
    )


def _length(
    meeting: Meeting, virtual: bool, virtual_minutes: int, length_by_person: bool
) -> tuple[datetime | None, int | None, int | None]:
    """The new end (None: keep it), the minutes it now lasts if shortened, and the length before.

    The length before is what the meeting had when the assistant first shortened it; it is
    carried in the mark so the rule is always applied to the organiser's own length.
    """
    span = meeting.timed_span
    if span is None or length_by_person:
        return None, None, None  # all-day events keep their dates; a person's length is kept
    start, current_end = span
    mark = meeting.mark
    before = mark.minutes_before if mark and mark.minutes_set is not None else None
    full_end = start + timedelta(minutes=before) if before else current_end
    target = full_end
    if virtual:
        target = start + virtual_duration(full_end - start, virtual_minutes)
    if target >= full_end:
        return (full_end if full_end != current_end else None), None, None
    minutes = int((target - start).total_seconds() // 60)
    full_minutes = int((full_end - start).total_seconds() // 60)
    return (target if target != current_end else None), minutes, full_minutes
