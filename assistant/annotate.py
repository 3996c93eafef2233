"""Plan the invite's annotation: the description block, the shorter end, the video link.

Planning is pure: it says what the event should look like and leaves writing it (with the
provider's ETag) to the calendar adapters. Planning an already-annotated meeting gives the
same result as planning the original, so a later run replaces the block, never adds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from assistant import block
from assistant.models import Format, Meeting, Recommendation
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
    original_end: datetime | None = None,
) -> AnnotationPlan:
    """Plan the annotation of meeting for recommendation.

    original_end is the end the meeting had before the assistant shortened it, when it did:
    the duration rule applies to that, so a second run does not shorten 80 minutes to 70, and
    a meeting that turns in person gets its hour back.
    """
    virtual = recommendation.format is Format.VIRTUAL
    end, minutes = _end_and_minutes(meeting, virtual, virtual_minutes, original_end)
    add_video_link = virtual and not meeting.video_link
    context = {
        "virtual": virtual,
        "reasons": recommendation.invite_reasons[:MAX_INVITE_REASONS],
        "minutes": minutes,
        "adding_video_link": add_video_link,
        "organisation_name": organisation_name,
    }
    if meeting.description_is_html:
        new_block = block.wrap_html(renderer.render("annotation.html.j2", context))
    else:
        body = renderer.render("annotation.txt.j2", context)
        new_block = block.wrap_text(body, block.newline_of(meeting.description))
    return AnnotationPlan(
        description=block.put_block(meeting.description, new_block, meeting.description_is_html),
        description_is_html=meeting.description_is_html,
        end=end,
        add_video_link=add_video_link,
    )


def _end_and_minutes(
    meeting: Meeting, virtual: bool, virtual_minutes: int, original_end: datetime | None
) -> tuple[datetime | None, int | None]:
    """The new end (None: keep it) and, when shortened, the minutes the meeting now lasts."""
    span = meeting.timed_span
    if span is None:
        return None, None  # all-day events keep their dates
    start, current_end = span
    full_end = original_end or current_end
    target = full_end
    if virtual:
        target = start + virtual_duration(full_end - start, virtual_minutes)
    minutes = int((target - start).total_seconds() // 60) if target < full_end else None
    return (target if target != current_end else None), minutes
