"""Meetings to JSON and back, so the store can keep the event as it last read.

The service needs the meeting long after the sync that saw it (a reply, a deadline, a
confirmation), and reading it again from the provider for every email would cost a round trip
each. Dataclasses become plain dicts; datetimes and dates are ISO strings tagged by kind.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from assistant.models import AssistantMark, Attendee, Format, Meeting, Person, Provider, Response


def meeting_to_json(meeting: Meeting) -> dict[str, Any]:
    data = dataclasses.asdict(meeting)
    data["start"], data["end"] = _moment(meeting.start), _moment(meeting.end)
    return data


def meeting_from_json(data: dict[str, Any]) -> Meeting:
    mark = data.get("mark")
    return Meeting(
        **{**data,
           "provider": Provider(data["provider"]),
           "organizer": Person(**data["organizer"]),
           "attendees": tuple(
               Attendee(Person(**a["person"]), Response(a["response"]), a["optional"],
                        a["is_resource"]) for a in data["attendees"]),
           "start": _from_moment(data["start"]),
           "end": _from_moment(data["end"]),
           "mark": AssistantMark(**{**mark, "format": Format(mark["format"])}) if mark else None},
    )


def _moment(value: datetime | date) -> dict[str, str]:
    kind = "datetime" if isinstance(value, datetime) else "date"
    return {kind: value.isoformat()}


def _from_moment(value: dict[str, str]) -> datetime | date:
    if "datetime" in value:
        return datetime.fromisoformat(value["datetime"])
    return date.fromisoformat(value["date"])
