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
    data = _plain(meeting)
    data["start"], data["end"] = _moment(meeting.start), _moment(meeting.end)
    return data


def _plain(value: Any) -> Any:
    """Dataclasses as dicts and tuples as lists, all the way down; other values as they are.

    Not dataclasses.asdict, which deep-copies every value: a meeting's values are immutable,
    and the copies were a tenth of the CPU of storing a burst's new meetings.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name))
                for field in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


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
