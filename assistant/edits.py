"""Tell the assistant's own changes from a person's, so that it never fights a human.

Every write leaves an AssistantMark on the event: the format, a digest of the note's visible
text, and the length it set. On the next run, a note that is gone or reads differently, or a
length that is neither ours nor the original, means a person acted after us, and we leave that
alone. The mark travels as a flat string map because that is what both providers store
(Google's extendedProperties.private, Microsoft's single-value extended properties).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from html.parser import HTMLParser

from assistant import block
from assistant.models import AssistantMark, Format, Meeting

PROPERTY_PREFIX = "meetingFormat."  # Google allows 44-character keys: keep the names short


class HumanEdit(enum.StrEnum):
    NOTE_REMOVED = "note_removed"
    NOTE_EDITED = "note_edited"
    LENGTH_CHANGED = "length_changed"


def human_edits(meeting: Meeting) -> frozenset[HumanEdit]:
    """What a person changed of the assistant's last write; empty when it never wrote."""
    mark = meeting.mark
    if mark is None:
        return frozenset()
    edits = set()
    digest = note_digest(meeting.description, meeting.description_is_html)
    if digest is None:
        edits.add(HumanEdit.NOTE_REMOVED)
    elif digest != mark.block_hash:
        edits.add(HumanEdit.NOTE_EDITED)
    minutes = meeting_minutes(meeting)
    if mark.minutes_set is not None and minutes is not None and minutes != mark.minutes_set:
        edits.add(HumanEdit.LENGTH_CHANGED)
    return frozenset(edits)


def note_digest(description: str, is_html: bool) -> str | None:
    """A digest of the note's visible text, or None when the description has no note.

    Visible text, with whitespace collapsed, because providers re-serialise what they store
    (Outlook rewrites HTML, line endings change) without anyone having edited a word.
    """
    span = block.find_block(description, is_html)
    if span is None:
        return None
    note = description[span[0] : span[1]]
    words = " ".join((_visible_text(note) if is_html else note).split())
    return hashlib.sha256(words.encode()).hexdigest()[:32]


def meeting_minutes(meeting: Meeting) -> int | None:
    span = meeting.timed_span
    if span is None:
        return None
    return int((span[1] - span[0]).total_seconds() // 60)


def mark_to_properties(mark: AssistantMark) -> dict[str, str]:
    """The mark as string properties; absent values are empty strings, which reads back as None."""
    values = {
        "format": mark.format.value,
        "note": mark.block_hash,
        "minutesSet": "" if mark.minutes_set is None else str(mark.minutes_set),
        "minutesBefore": "" if mark.minutes_before is None else str(mark.minutes_before),
        "lengthByPerson": "1" if mark.length_by_person else "",
        "videoLinkAdded": "1" if mark.video_link_added else "",
    }
    return {PROPERTY_PREFIX + key: value for key, value in values.items()}


def mark_from_properties(properties: Mapping[str, object]) -> AssistantMark | None:
    """The mark stored in properties, or None when there is none or it is damaged.

    A damaged mark (someone edited the properties by hand) counts as no mark: the assistant
    then treats the event as new to it, which at worst re-renders its note.
    """
    values = {
        key[len(PROPERTY_PREFIX) :]: value
        for key, value in properties.items()
        if isinstance(key, str) and key.startswith(PROPERTY_PREFIX) and isinstance(value, str)
    }
    try:
        return AssistantMark(
            format=Format(values["format"]),
            block_hash=values["note"],
            minutes_set=_minutes(values.get("minutesSet", "")),
            minutes_before=_minutes(values.get("minutesBefore", "")),
            length_by_person=values.get("lengthByPerson") == "1",
            video_link_added=values.get("videoLinkAdded") == "1",
        )
    except (KeyError, ValueError):
        return None


def _minutes(text: str) -> int | None:
    if not text:
        return None
    minutes = int(text)
    if minutes <= 0:
        raise ValueError(f"a length of {minutes} minutes")
    return minutes


def _visible_text(html: str) -> str:
    parser = _TextCollector()
    parser.feed(html)
    parser.close()
    return " ".join(parser.parts)


class _TextCollector(HTMLParser):
    """The text a reader sees in an HTML fragment (comments and tags dropped, entities read)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
