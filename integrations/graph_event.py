"""Read a Microsoft Graph v1.0 event resource into the core's Meeting.

Follows https://learn.microsoft.com/en-us/graph/api/resources/event:
- start/end are dateTimeTimeZone values: a `dateTime` without offset (often with seven
  fractional digits) and a `timeZone` that is "UTC", an IANA name, or a Windows name such as
  "W. Europe Standard Time" when the request asked for it with `Prefer: outlook.timezone`
  (https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone);
- `isAllDay` events start and end at midnight; `isCancelled` marks a cancelled meeting;
- attendees have `type` (required, optional, resource), `status.response` (none, organizer,
  tentativelyAccepted, accepted, declined, notResponded) and `emailAddress`;
- `body` has `contentType` "html" or "text"; Outlook bodies are whole HTML documents;
- the join link is `onlineMeeting.joinUrl` (`onlineMeetingUrl` is its deprecated forerunner);
- `seriesMasterId` links an occurrence or exception to its series (`type` seriesMaster);
- a delta query reports deleted events as `{"id": ..., "@removed": {"reason": "deleted"}}`
  (https://learn.microsoft.com/en-us/graph/delta-query-events).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

from assistant.errors import UnreadableEvent
from assistant.models import Attendee, EventRemoved, Meeting, Person, Provider, Response
from integrations.event_json import (
    flag,
    items,
    mapping,
    required_text,
    text,
    timestamp,
)

_RESPONSES = {
    "accepted": Response.ACCEPTED,
    "organizer": Response.ACCEPTED,
    "tentativelyAccepted": Response.TENTATIVE,
    "declined": Response.DECLINED,
}
_ADDRESS_TYPES = {"streetAddress", "businessAddress", "homeAddress", "hotel", "restaurant"}
_ADDRESS_PARTS = ("street", "city", "postalCode", "state", "countryOrRegion")


def read_graph_event(resource: Mapping[str, Any]) -> Meeting | EventRemoved:
    """The meeting an event resource describes, or EventRemoved for a delta's removed entry.

    Raises UnreadableEvent when the resource lacks an id or usable start and end.
    """
    if not isinstance(resource, Mapping):
        raise UnreadableEvent("a Microsoft Graph event must be a JSON object")
    event_id = required_text(resource, "id")
    series_id = text(resource, "seriesMasterId")
    if "@removed" in resource:
        return EventRemoved(Provider.MICROSOFT, event_id, series_id)
    if text(resource, "type") == "seriesMaster":
        series_id = series_id or event_id
    all_day = flag(resource, "isAllDay")
    start, zone_name = _read_time(mapping(resource, "start"), "start")
    end, _ = _read_time(mapping(resource, "end"), "end")
    body = mapping(resource, "body")
    location, has_address = _location(mapping(resource, "location"))
    return Meeting(
        provider=Provider.MICROSOFT,
        event_id=event_id,
        title=text(resource, "subject"),
        organizer=_person(mapping(mapping(resource, "organizer"), "emailAddress")),
        attendees=tuple(_attendee(item) for item in items(resource, "attendees")),
        start=start.date() if all_day else start,
        end=end.date() if all_day else end,
        time_zone=zone_name,
        location=location,
        has_physical_address=has_address,
        description=text(body, "content"),
        description_is_html=text(body, "contentType").lower() == "html",
        video_link=_video_link(resource),
        cancelled=flag(resource, "isCancelled"),
        series_id=series_id,
        etag=text(resource, "@odata.etag"),
    )


def _read_time(when: Mapping[str, Any], field: str) -> tuple[datetime, str]:
    zone_name = text(when, "timeZone") or "UTC"
    value = text(when, "dateTime")
    if not value:
        raise UnreadableEvent(f"{field} has no 'dateTime'")
    moment = timestamp(value, f"{field}.dateTime", _zone(zone_name))
    return moment, zone_name


def _zone(name: str) -> tzinfo:
    """An IANA zone for a Graph time zone name, which may be IANA or Windows."""
    iana = win_tz.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise UnreadableEvent(f"unknown time zone {name!r}") from err


def _person(email_address: Mapping[str, Any]) -> Person:
    return Person(email=text(email_address, "address"), name=text(email_address, "name"))


def _attendee(data: Mapping[str, Any]) -> Attendee:
    kind = text(data, "type")
    return Attendee(
        person=_person(mapping(data, "emailAddress")),
        response=_RESPONSES.get(text(mapping(data, "status"), "response"), Response.NEEDS_ACTION),
        optional=kind == "optional",
        is_resource=kind == "resource",
    )


def _location(data: Mapping[str, Any]) -> tuple[str, bool]:
    """The location as one line, and whether Graph says it is a postal address."""
    address = mapping(data, "address")
    parts = [text(address, part) for part in _ADDRESS_PARTS if text(address, part)]
    name = text(data, "displayName")
    has_address = bool(parts) or text(data, "locationType") in _ADDRESS_TYPES
    if parts and name and name not in ", ".join(parts):
        return f"{name}, {', '.join(parts)}", has_address
    return (", ".join(parts) if parts else name), has_address


def _video_link(resource: Mapping[str, Any]) -> str:
    return text(mapping(resource, "onlineMeeting"), "joinUrl") or text(
        resource, "onlineMeetingUrl"
    )
