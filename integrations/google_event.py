"""Read a Google Calendar API v3 Events resource into the core's Meeting.

Follows https://developers.google.com/calendar/api/v3/reference/events#resource:
- start/end carry `date` (all-day) or `dateTime` (RFC 3339, with an offset in responses) and an
  optional IANA `timeZone`, which is also how a `dateTime` without offset is to be read;
- attendees have `email`, `displayName`, `organizer`, `self`, `resource` (rooms),
  `optional` and `responseStatus` (needsAction, declined, tentative, accepted);
- a video link is `hangoutLink` or a `conferenceData.entryPoints[]` entry whose
  `entryPointType` is "video";
- an incremental sync (syncToken) returns deleted events with `status: "cancelled"` and often
  little more than the id (https://developers.google.com/calendar/api/guides/sync);
- `recurringEventId` links an instance to its series; a master carries `recurrence`.
Descriptions may hold the HTML that Google's web UI writes (<br>, <b>, <ul>, <a>).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from assistant.annotate import AnnotationPlan
from assistant.edits import mark_from_properties, mark_to_properties
from assistant.errors import UnreadableEvent
from assistant.models import Attendee, EventRemoved, Meeting, Person, Provider, Response
from integrations.event_json import (
    calendar_date,
    flag,
    items,
    mapping,
    required_text,
    text,
    timestamp,
)

_RESPONSES = {
    "accepted": Response.ACCEPTED,
    "tentative": Response.TENTATIVE,
    "declined": Response.DECLINED,
    "needsAction": Response.NEEDS_ACTION,
}
_HTML_TAG = re.compile(r"<(br|p|div|span|b|i|u|a|ul|ol|li|html|body)\b[^>]*>", re.IGNORECASE)


def read_google_event(resource: Mapping[str, Any]) -> Meeting | EventRemoved:
    """The meeting an event resource describes, or EventRemoved for a deleted one.

    Raises UnreadableEvent when the resource lacks an id or usable start and end.
    """
    if not isinstance(resource, Mapping):
        raise UnreadableEvent("a Google event must be a JSON object")
    event_id = required_text(resource, "id")
    series_id = text(resource, "recurringEventId")
    cancelled = text(resource, "status") == "cancelled"
    if cancelled and "start" not in resource:
        return EventRemoved(Provider.GOOGLE, event_id, series_id)
    if resource.get("recurrence"):
        series_id = series_id or event_id
    start, zone_name = _read_time(mapping(resource, "start"), "start")
    end, _ = _read_time(mapping(resource, "end"), "end")
    if type(start) is not type(end):
        raise UnreadableEvent("start and end must both be dates or both be date-times")
    description = text(resource, "description")
    return Meeting(
        provider=Provider.GOOGLE,
        event_id=event_id,
        title=text(resource, "summary"),
        organizer=_person(mapping(resource, "organizer")),
        attendees=tuple(_attendee(item) for item in items(resource, "attendees")),
        start=start,
        end=end,
        time_zone=zone_name,
        location=text(resource, "location"),
        description=description,
        description_is_html=bool(_HTML_TAG.search(description)),
        video_link=_video_link(resource),
        cancelled=cancelled,
        series_id=series_id,
        etag=text(resource, "etag"),
        organizer_is_owner=flag(mapping(resource, "organizer"), "self"),
        mark=mark_from_properties(mapping(mapping(resource, "extendedProperties"), "private")),
    )


def patch_for(resource: Mapping[str, Any], plan: AnnotationPlan) -> dict[str, Any]:
    """The events.patch body that makes resource read as planned; {} when it already does.

    Only what changes is sent. The end keeps the event's own time zone; the mark goes in
    extendedProperties.private, whose keys a patch merges rather than replaces. The Meet
    request id is derived from the event, so a retried write cannot create a second meeting.
    """
    body: dict[str, Any] = {}
    if plan.description != text(resource, "description"):
        body["description"] = plan.description
    if plan.end is not None:
        end = dict(mapping(resource, "end"))
        zone = text(end, "timeZone")
        moment = plan.end.astimezone(ZoneInfo(zone)) if zone else plan.end
        body["end"] = {"dateTime": moment.isoformat(), **({"timeZone": zone} if zone else {})}
    if plan.add_video_link:
        body["conferenceData"] = {"createRequest": {
            "requestId": "meeting-format-" + required_text(resource, "id")[:40],
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
        }}
    stored = mapping(mapping(resource, "extendedProperties"), "private")
    wanted = mark_to_properties(plan.mark)
    if any(stored.get(key) != value for key, value in wanted.items()):
        body["extendedProperties"] = {"private": wanted}
    return body


def _read_time(when: Mapping[str, Any], field: str) -> tuple[datetime | date, str]:
    zone_name = text(when, "timeZone")
    if when.get("date") is not None:
        return calendar_date(text(when, "date"), f"{field}.date"), zone_name
    if when.get("dateTime") is None:
        raise UnreadableEvent(f"{field} has neither 'date' nor 'dateTime'")
    return timestamp(text(when, "dateTime"), f"{field}.dateTime", _zone(zone_name)), zone_name


def _zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise UnreadableEvent(f"unknown time zone {name!r}") from err


def _person(data: Mapping[str, Any]) -> Person:
    return Person(email=text(data, "email"), name=text(data, "displayName"))


def _attendee(data: Mapping[str, Any]) -> Attendee:
    return Attendee(
        person=_person(data),
        response=_RESPONSES.get(text(data, "responseStatus"), Response.NEEDS_ACTION),
        optional=flag(data, "optional"),
        is_resource=flag(data, "resource"),
    )


def _video_link(resource: Mapping[str, Any]) -> str:
    for entry in items(mapping(resource, "conferenceData"), "entryPoints"):
        if text(entry, "entryPointType") == "video" and text(entry, "uri"):
            return text(entry, "uri")
    return text(resource, "hangoutLink")
